// Layout, all integers little-endian:
//   0  8  magic "WNLKVSEQ"
//   8  4  format version (kKvFormatVersion)
//  12  4  identity length I
//  16  4  owner length O
//  20  4  token count T
//  24  8  state length D
//  32  I  identity, O owner, 4*T tokens (int32), D state bytes
//  end 4  CRC-32 (zlib's) of every byte before it
#include "engine/kv_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace wnl {

namespace {

constexpr char kMagic[8] = {'W', 'N', 'L', 'K', 'V', 'S', 'E', 'Q'};
constexpr size_t kHeader = 32;
constexpr uint32_t kMaxText = 1 << 16;  // identity and owner are short lines

void put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
    return v;
}
uint64_t get64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

std::string errno_text(const char* what, const std::string& path) {
    return std::string(what) + " '" + path + "': " + std::strerror(errno);
}

bool write_all(int fd, const void* data, size_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return false;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

bool read_all(int fd, void* data, size_t n) {
    uint8_t* p = static_cast<uint8_t*>(data);
    while (n > 0) {
        ssize_t r = ::read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

// zlib's crc32 of a null buffer is the initial value, not c: empty parts
// (no tokens, an empty state) must leave c as it is.
uint32_t crc(uint32_t c, const void* data, size_t n) {
    if (n == 0) return c;
    return static_cast<uint32_t>(crc32_z(c, static_cast<const Bytef*>(data), n));
}

std::vector<uint8_t> encode_head(const KvFile& f) {
    const size_t d = f.data ? f.data->size() : 0;
    std::vector<uint8_t> head(kHeader + f.identity.size() + f.owner.size() + 4 * f.tokens.size());
    std::memcpy(head.data(), kMagic, sizeof kMagic);
    put32(&head[8], kKvFormatVersion);
    put32(&head[12], static_cast<uint32_t>(f.identity.size()));
    put32(&head[16], static_cast<uint32_t>(f.owner.size()));
    put32(&head[20], static_cast<uint32_t>(f.tokens.size()));
    put64(&head[24], d);
    size_t at = kHeader;
    std::memcpy(&head[at], f.identity.data(), f.identity.size());
    at += f.identity.size();
    std::memcpy(&head[at], f.owner.data(), f.owner.size());
    at += f.owner.size();
    for (llama_token t : f.tokens) {
        put32(&head[at], static_cast<uint32_t>(t));
        at += 4;
    }
    return head;
}

bool fsync_dir_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

std::string kv_identity_string(const KvModelIdentity& id) {
    std::ostringstream s;
    s << "path=" << id.path << ";bytes=" << id.file_bytes << ";mtime_ns=" << id.file_mtime_ns << ";name=" << id.name
      << ";arch=" << id.architecture << ";n_vocab=" << id.n_vocab << ";n_embd=" << id.n_embd
      << ";n_layer=" << id.n_layer << ";type_k=" << id.cache_type_k << ";type_v=" << id.cache_type_v
      << ";flash_attn=" << id.flash_attn << ";ctx_per_seq=" << id.ctx_per_seq << ";llama=" << id.llama_commit;
    std::string out = s.str();
    for (char& c : out) {
        if (c == '\n' || c == '\0') c = ' ';
    }
    return out;
}

uint64_t kv_file_bytes(const KvFile& f) {
    return kHeader + f.identity.size() + f.owner.size() + 4ull * f.tokens.size() + (f.data ? f.data->size() : 0) + 4;
}

const char* kv_read_name(KvRead r) {
    switch (r) {
        case KvRead::ok: return "ok";
        case KvRead::missing: return "missing";
        case KvRead::unreadable: return "unreadable";
        case KvRead::truncated: return "truncated";
        case KvRead::not_a_kv_file: return "not_a_kv_file";
        case KvRead::other_version: return "other_version";
        case KvRead::wrong_model: return "wrong_model";
        case KvRead::wrong_owner: return "wrong_owner";
        case KvRead::too_large: return "too_large";
        case KvRead::corrupt: return "corrupt";
    }
    return "unknown";
}

Status write_kv_temp(const std::string& tmp, const KvFile& f, bool sync, std::string* error) {
    if (f.identity.size() > kMaxText || f.owner.size() > kMaxText || f.tokens.size() > UINT32_MAX) {
        *error = "KV file header fields too long";
        return Status::invalid_argument;
    }
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        *error = errno_text("cannot create", tmp);
        return Status::runtime_error;
    }
    const std::vector<uint8_t> head = encode_head(f);
    uint32_t c = crc(0, head.data(), head.size());
    bool ok = write_all(fd, head.data(), head.size());
    if (ok && f.data && !f.data->empty()) {
        c = crc(c, f.data->data(), f.data->size());
        ok = write_all(fd, f.data->data(), f.data->size());
    }
    uint8_t tail[4];
    put32(tail, c);
    ok = ok && write_all(fd, tail, sizeof tail);
    if (ok && sync) ok = ::fsync(fd) == 0;
    if (!ok) *error = errno_text("cannot write", tmp);
    if (::close(fd) != 0 && ok) {
        ok = false;
        *error = errno_text("cannot close", tmp);
    }
    if (!ok) {
        ::unlink(tmp.c_str());
        return Status::runtime_error;
    }
    return Status::ok;
}

Status publish_kv_file(const std::string& tmp, const std::string& path, bool sync, std::string* error) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        *error = errno_text("cannot rename into", path);
        ::unlink(tmp.c_str());
        return Status::runtime_error;
    }
    if (sync && !fsync_dir_of(path)) {
        *error = errno_text("cannot fsync the directory of", path);
        return Status::runtime_error;
    }
    return Status::ok;
}

Status write_kv_file(const std::string& path, const KvFile& f, bool sync, std::string* error) {
    const std::string tmp = path + ".tmp";
    Status st = write_kv_temp(tmp, f, sync, error);
    return st == Status::ok ? publish_kv_file(tmp, path, sync, error) : st;
}

KvRead read_kv_file(const std::string& path, const std::string& identity, const std::string& owner,
                    uint64_t max_bytes, KvFile* out, std::string* detail) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return KvRead::missing;
        *detail = errno_text("cannot open", path);
        return KvRead::unreadable;
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *detail = "not a regular file";
        return KvRead::unreadable;
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > max_bytes) {
        *detail = std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) + " allowed";
        return KvRead::too_large;
    }
    uint8_t head[kHeader];
    if (size < kHeader + 4 || !read_all(fd, head, kHeader)) {
        *detail = "shorter than its header (" + std::to_string(size) + " bytes)";
        return KvRead::truncated;
    }
    if (std::memcmp(head, kMagic, sizeof kMagic) != 0) {
        *detail = "bad magic";
        return KvRead::not_a_kv_file;
    }
    const uint32_t version = get32(&head[8]);
    if (version != kKvFormatVersion) {
        *detail = "format version " + std::to_string(version) + ", this library reads " +
                  std::to_string(kKvFormatVersion);
        return KvRead::other_version;
    }
    const uint32_t n_id = get32(&head[12]), n_owner = get32(&head[16]), n_tok = get32(&head[20]);
    const uint64_t n_data = get64(&head[24]);
    if (n_id > kMaxText || n_owner > kMaxText || n_data > max_bytes) {
        *detail = "header lengths out of range";
        return KvRead::corrupt;
    }
    const uint64_t expect = kHeader + n_id + n_owner + 4ull * n_tok + n_data + 4;
    if (expect != size) {
        *detail = "header says " + std::to_string(expect) + " bytes, the file has " + std::to_string(size);
        return expect > size ? KvRead::truncated : KvRead::corrupt;
    }
    std::string id(n_id, '\0'), who(n_owner, '\0');
    if (!read_all(fd, id.data(), n_id) || !read_all(fd, who.data(), n_owner)) {
        *detail = errno_text("cannot read", path);
        return KvRead::truncated;
    }
    if (id != identity) {
        *detail = "written for another model or KV layout: " + id;
        return KvRead::wrong_model;
    }
    if (who != owner) {
        *detail = "belongs to another session";
        return KvRead::wrong_owner;
    }
    std::vector<uint8_t> toks(4ull * n_tok);
    auto data = std::make_shared<std::vector<uint8_t>>(n_data);
    uint8_t tail[4];
    if (!read_all(fd, toks.data(), toks.size()) || !read_all(fd, data->data(), data->size()) ||
        !read_all(fd, tail, sizeof tail)) {
        *detail = errno_text("cannot read", path);
        return KvRead::truncated;
    }
    uint32_t c = crc(0, head, kHeader);
    c = crc(c, id.data(), id.size());
    c = crc(c, who.data(), who.size());
    c = crc(c, toks.data(), toks.size());
    c = crc(c, data->data(), data->size());
    if (c != get32(tail)) {
        *detail = "checksum mismatch";
        return KvRead::corrupt;
    }
    out->identity = std::move(id);
    out->owner = std::move(who);
    out->tokens.resize(n_tok);
    for (uint32_t i = 0; i < n_tok; ++i) out->tokens[i] = static_cast<llama_token>(get32(&toks[4ull * i]));
    out->data = std::move(data);
    return KvRead::ok;
}

}  // namespace wnl
