// A GGUF model's weights and vocabulary, loaded once and shared.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.h"
#include "engine/status.h"
#include "llama.h"

namespace wnl {

struct ModelInfo {
    std::string path;
    std::string name;  // general.name, else the file name
    std::string architecture;
    std::string description;  // llama_model_desc
    uint64_t n_params = 0;
    uint64_t size_bytes = 0;
    uint64_t file_bytes = 0;  // the file's size and modification time when it was loaded
    int64_t mtime_ns = 0;
    int32_t n_ctx_train = 0;
    int32_t n_vocab = 0;
    int32_t n_layer = 0;
    int32_t n_embd = 0;
    bool has_chat_template = false;
    bool fully_offloaded = false;  // every layer on a GPU or RPC device: host threads mostly wait
    double load_ms = 0;
};

class Model {
public:
    // Checks the file before llama.cpp sees it: a missing file gives
    // model_not_found, a file that is not GGUF (or a GGUF version llama.cpp
    // no longer reads) invalid_encoding.
    static Status load(const std::string& path, const ModelConfig& cfg,
                       std::shared_ptr<Model>* out, std::string* error);
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    llama_model* get() const { return model_; }
    const llama_vocab* vocab() const { return vocab_; }
    const ModelInfo& info() const { return info_; }

    // Empty when the text is too long for llama.cpp's int32_t lengths.
    std::vector<llama_token> tokenize(std::string_view text, bool add_special, bool parse_special) const;
    std::string token_to_piece(llama_token token) const;

    // The key under which identical loads are shared.
    static std::string share_key(const std::string& canonical_path, const ModelConfig& cfg);

private:
    Model() = default;
    llama_model* model_ = nullptr;
    const llama_vocab* vocab_ = nullptr;
    ModelInfo info_;
};

// What tells one version of a file from another: a file rewritten in place
// (same path, new contents) is a different model.
struct FileIdentity {
    uint64_t device = 0, inode = 0, bytes = 0;
    int64_t mtime_ns = 0;
    std::string key() const;
};
// False when the file cannot be stat()ed.
bool file_identity(const std::string& path, FileIdentity* out);

// Reads the GGUF magic and version; ok when llama.cpp can be asked to load it.
Status check_gguf_header(const std::string& path, std::string* error);

}  // namespace wnl
