// The file one stored session's KV state is kept in (docs/sessions.md §4):
// which model and KV layout wrote it, whose it is, the tokens it holds, the
// bytes of llama_state_seq_get_data, and a CRC-32 over all of it. A file
// from another model, a truncated one or a corrupt one is told apart from a
// good one before llama.cpp ever sees its bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/status.h"
#include "llama.h"

namespace wnl {

// What a KV state is only valid for: the model file, the model's shape, the
// KV cache's layout and the llama.cpp that wrote it. The first four fields
// are the model file's identity (hot swap's version reports the same ones).
struct KvModelIdentity {
    std::string path;  // canonical
    uint64_t file_bytes = 0;
    int64_t file_mtime_ns = 0;
    std::string name;  // general.name
    std::string architecture;
    int32_t n_vocab = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    std::string cache_type_k;
    std::string cache_type_v;
    std::string flash_attn;
    uint32_t ctx_per_seq = 0;
    std::string llama_commit;
};

// One line of text naming every field; files compare it byte for byte.
std::string kv_identity_string(const KvModelIdentity& id);

struct KvFile {
    std::string identity;  // kv_identity_string of the loop that wrote it
    std::string owner;     // the session it belongs to (namespace, id)
    std::vector<llama_token> tokens;  // the tokens the state holds, in order
    std::shared_ptr<const std::vector<uint8_t>> data;  // llama_state_seq_get_data
};

inline constexpr uint32_t kKvFormatVersion = 1;

// Bytes the file takes on disk.
uint64_t kv_file_bytes(const KvFile& f);

// Writing is two steps so that the caller can decide, under its own lock,
// whether the file may still appear: write_kv_temp writes the whole file
// under a temporary name (with `sync`, fsync'd); publish_kv_file renames it
// over the real one (with `sync`, the directory is fsync'd after), so a
// reader sees the old file or the new one, never part of one.
Status write_kv_temp(const std::string& tmp_path, const KvFile& f, bool sync, std::string* error);
Status publish_kv_file(const std::string& tmp_path, const std::string& path, bool sync, std::string* error);
// Both steps, for callers with nothing to decide in between.
Status write_kv_file(const std::string& path, const KvFile& f, bool sync, std::string* error);

enum class KvRead { ok, missing, unreadable, truncated, not_a_kv_file, other_version, wrong_model, wrong_owner, too_large, corrupt };
const char* kv_read_name(KvRead r);

// Reads and checks the file: its structure, the identity and owner it was
// written for, and the checksum; *out is filled only on ok. A file larger
// than max_bytes is too_large and not read. *detail says what was wrong.
KvRead read_kv_file(const std::string& path, const std::string& identity, const std::string& owner,
                    uint64_t max_bytes, KvFile* out, std::string* detail);

}  // namespace wnl
