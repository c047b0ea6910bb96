#include "engine/model.h"

#include <sys/stat.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "engine/log.h"
#include "engine/process_exit.h"
#include "engine/tcp_probe.h"
#include "ggml-backend.h"
#include "ggml-rpc.h"

namespace wnl {

Status check_gguf_header(const std::string& path, std::string* error) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        *error = "model file not found: '" + path + "': " + std::strerror(errno);
        return errno == EACCES ? Status::security : Status::model_not_found;
    }
    if (!S_ISREG(st.st_mode)) {
        *error = "model path is not a regular file: '" + path + "'";
        return Status::invalid_argument;
    }
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        *error = "cannot open model file '" + path + "': " + std::strerror(errno);
        return Status::model_not_found;
    }
    unsigned char head[8] = {};
    size_t got = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
    if (got < sizeof head || std::memcmp(head, "GGUF", 4) != 0) {
        *error = "not a GGUF file (bad magic): '" + path + "'";
        return Status::invalid_encoding;
    }
    uint32_t version = head[4] | (head[5] << 8) | (head[6] << 16) | (uint32_t(head[7]) << 24);
    if (version < 2 || version > 3) {
        *error = "unsupported GGUF version " + std::to_string(version) + " in '" + path +
                 "' (llama.cpp reads versions 2 and 3)";
        return Status::invalid_encoding;
    }
    return Status::ok;
}

bool file_identity(const std::string& path, FileIdentity* out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return false;
    out->device = static_cast<uint64_t>(st.st_dev);
    out->inode = static_cast<uint64_t>(st.st_ino);
    out->bytes = static_cast<uint64_t>(st.st_size);
    out->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    return true;
}

std::string FileIdentity::key() const {
    return std::to_string(device) + ":" + std::to_string(inode) + ":" + std::to_string(bytes) + ":" +
           std::to_string(mtime_ns);
}

static std::string meta_string(const llama_model* m, const char* key) {
    char buf[512];
    int n = llama_model_meta_val_str(m, key, buf, sizeof buf);
    return n >= 0 ? std::string(buf) : std::string();
}

// The devices of each llama.cpp RPC server, for this model only: they are
// not registered globally, so other models keep running locally.
static Status rpc_devices(const std::vector<std::string>& servers, std::vector<ggml_backend_dev_t>* out,
                          std::string* error) {
    for (const auto& endpoint : servers) {
        if (!tcp_reachable(endpoint, 2000, error)) return Status::runtime_error;
        ggml_backend_reg_t reg = ggml_backend_rpc_add_server(endpoint.c_str());
        size_t n = reg ? ggml_backend_reg_dev_count(reg) : 0;
        if (n == 0) {
            *error = "rpc_servers: cannot reach the RPC server at '" + endpoint + "'";
            return Status::runtime_error;
        }
        for (size_t i = 0; i < n; ++i) out->push_back(ggml_backend_reg_dev_get(reg, i));
    }
    return Status::ok;
}

static llama_split_mode split_mode_of(const std::string& s) {
    if (s == "none") return LLAMA_SPLIT_MODE_NONE;
    if (s == "row") return LLAMA_SPLIT_MODE_ROW;
    return LLAMA_SPLIT_MODE_LAYER;
}

Status Model::load(const std::string& path, const ModelConfig& cfg, std::shared_ptr<Model>* out,
                   std::string* error) {
    Status st = check_gguf_header(path, error);
    if (st != Status::ok) return st;

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = cfg.n_gpu_layers;
    mp.main_gpu = cfg.main_gpu;
    mp.split_mode = split_mode_of(cfg.split_mode);
    if (cfg.use_mmap) {
        mp.load_mode = cfg.use_mlock ? LLAMA_LOAD_MODE_MMAP_MLOCK : LLAMA_LOAD_MODE_MMAP;
    } else {
        mp.load_mode = cfg.use_mlock ? LLAMA_LOAD_MODE_MLOCK : LLAMA_LOAD_MODE_NONE;
    }
    std::vector<float> split(llama_max_devices(), 0.0f);
    for (size_t i = 0; i < cfg.tensor_split.size() && i < split.size(); ++i) split[i] = cfg.tensor_split[i];
    if (!cfg.tensor_split.empty()) mp.tensor_split = split.data();
    std::vector<ggml_backend_dev_t> devices;
    if (!cfg.rpc_servers.empty()) {
        Status rs = rpc_devices(cfg.rpc_servers, &devices, error);
        if (rs != Status::ok) return rs;
        devices.push_back(nullptr);
        mp.devices = devices.data();
        log(LogLevel::info, "model", "offloading to llama.cpp RPC servers",
            {{"servers", cfg.rpc_servers.size()}, {"devices", devices.size() - 1}});
        if (cfg.n_gpu_layers == 0) {
            log(LogLevel::warn, "model", "rpc_servers is set but n_gpu_layers is 0: no layer will be offloaded");
        }
    } else if (cfg.n_gpu_layers != 0 && !llama_supports_gpu_offload()) {
        log(LogLevel::info, "model", "n_gpu_layers is set but this build has no GPU backend; running on CPU",
            {{"n_gpu_layers", cfg.n_gpu_layers}});
    }

    FileIdentity id;
    file_identity(path, &id);
    log(LogLevel::info, "model", "loading model", {{"path", path}});
    auto t0 = std::chrono::steady_clock::now();
    llama_model* m = llama_model_load_from_file(path.c_str(), mp);
    if (!m) {
        *error = "llama.cpp could not load '" + path + "' (corrupt or unsupported GGUF; see the llama log)";
        return Status::invalid_encoding;
    }
    // llama_tokenize asserts on a special token the vocabulary says it adds
    // but does not have (a WordPiece vocabulary always adds CLS and SEP):
    // such a file is refused here instead of aborting on the first prompt.
    {
        const llama_vocab* v = llama_model_get_vocab(m);
        const enum llama_vocab_type type = llama_vocab_type(v);
        const bool wpm = type == LLAMA_VOCAB_TYPE_WPM;
        const bool no_bos = (llama_vocab_get_add_bos(v) || wpm) && llama_vocab_bos(v) == LLAMA_TOKEN_NULL;
        const bool no_eos = llama_vocab_get_add_eos(v) && llama_vocab_eos(v) == LLAMA_TOKEN_NULL;
        const bool no_sep = wpm && llama_vocab_sep(v) == LLAMA_TOKEN_NULL;
        if (type != LLAMA_VOCAB_TYPE_NONE && (no_bos || no_eos || no_sep)) {
            llama_model_free(m);
            *error = "'" + path + "': the vocabulary adds a " + (no_bos ? "BOS" : no_eos ? "EOS" : "SEP") +
                     " token it does not define";
            return Status::invalid_encoding;
        }
    }
    std::shared_ptr<Model> model(new Model());
    model->model_ = m;
    model->vocab_ = llama_model_get_vocab(m);
    ModelInfo& info = model->info_;
    info.path = path;
    info.name = meta_string(m, "general.name");
    if (info.name.empty()) info.name = path.substr(path.find_last_of('/') + 1);
    info.architecture = meta_string(m, "general.architecture");
    char desc[256] = {};
    llama_model_desc(m, desc, sizeof desc);
    info.description = desc;
    info.n_params = llama_model_n_params(m);
    info.size_bytes = llama_model_size(m);
    info.file_bytes = id.bytes;
    info.mtime_ns = id.mtime_ns;
    info.n_ctx_train = llama_model_n_ctx_train(m);
    info.n_vocab = llama_vocab_n_tokens(model->vocab_);
    info.n_layer = llama_model_n_layer(m);
    info.n_embd = llama_model_n_embd(m);
    info.has_chat_template = llama_model_chat_template(m, nullptr) != nullptr;
    const bool has_device = !cfg.rpc_servers.empty() || ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU) ||
                            ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_IGPU);
    info.fully_offloaded = has_device && (cfg.n_gpu_layers < 0 || cfg.n_gpu_layers > info.n_layer);
    info.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    log(LogLevel::info, "model", "model loaded",
        {{"path", path}, {"name", info.name}, {"arch", info.architecture}, {"params", info.n_params},
         {"ctx_train", info.n_ctx_train}, {"load_ms", info.load_ms}});
    *out = std::move(model);
    return Status::ok;
}

Model::~Model() {
    // Not once the process is exiting: llama.cpp's statics may be gone.
    if (model_ && !process_exiting()) llama_model_free(model_);
}

std::vector<llama_token> Model::tokenize(std::string_view text, bool add_special, bool parse_special) const {
    // llama.cpp takes int32_t lengths and reports an overflowing result as
    // INT32_MIN; max_prompt_bytes keeps real prompts far below either.
    if (text.size() > static_cast<size_t>(INT32_MAX) - 2) return {};
    std::vector<llama_token> tokens(text.size() + 2);
    int n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, parse_special);
    if (n == INT32_MIN) return {};
    if (n < 0) {
        tokens.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, parse_special);
    }
    tokens.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return tokens;
}

std::string Model::token_to_piece(llama_token token) const {
    char buf[128];
    int n = llama_token_to_piece(vocab_, token, buf, sizeof buf, 0, false);
    if (n >= 0) return std::string(buf, static_cast<size_t>(n));
    std::string big(static_cast<size_t>(-n), '\0');
    n = llama_token_to_piece(vocab_, token, big.data(), static_cast<int32_t>(big.size()), 0, false);
    big.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return big;
}

std::string Model::share_key(const std::string& canonical_path, const ModelConfig& c) {
    std::ostringstream k;
    k << canonical_path << '|' << c.n_gpu_layers << '|' << c.main_gpu << '|' << c.split_mode << '|';
    for (float f : c.tensor_split) k << f << ',';
    k << '|' << c.use_mmap << c.use_mlock << '|';
    for (const auto& s : c.rpc_servers) k << s << ',';
    return k.str();
}

}  // namespace wnl
