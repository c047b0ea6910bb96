#include "engine/model_registry.h"

#include <mutex>
#include <unordered_map>

#include "engine/log.h"
#include "engine/process_memory.h"

namespace wnl {

namespace {
// Never destroyed (process_exit.h): a call still loading while the process
// exits must not find its tables gone.
struct Tables {
    std::unordered_map<std::string, std::weak_ptr<Model>> models;
    std::unordered_map<std::string, std::weak_ptr<ServedModel>> served;
};
std::mutex g_mu;
Tables& tables() {
    static Tables* t = new Tables();
    return *t;
}

template <typename Map>
void forget_expired(Map& m) {
    for (auto it = m.begin(); it != m.end();) it = it->second.expired() ? m.erase(it) : std::next(it);
}
}  // namespace

ServedModel::~ServedModel() {
    loop.reset();
    model.reset();
    return_free_heap();
}

LoopSettings loop_settings_from(const Config& cfg) {
    LoopSettings s;
    s.n_slots = static_cast<uint32_t>(cfg.backend.max_concurrent);
    s.ctx_per_seq = cfg.model.ctx_size;
    // Auto is at most 4096 anyway: a wider ceiling changes nothing, and must
    // not keep loops that would be the same from being shared.
    if (cfg.model.ctx_size == 0 && cfg.model.ctx_limit > 0 && cfg.model.ctx_limit < 4096) s.ctx_limit = cfg.model.ctx_limit;
    s.n_batch = cfg.model.batch_size;
    s.n_ubatch = cfg.model.ubatch_size;
    s.prefill_chunk = cfg.model.prefill_chunk;
    s.threads = cfg.model.threads;
    s.threads_batch = cfg.model.threads_batch;
    s.threads_exact = cfg.backend.threads_exact;
    s.flash_attn = cfg.model.flash_attn;
    s.cache_type_k = cfg.model.cache_type_k;
    s.cache_type_v = cfg.model.cache_type_v;
    const int32_t reject = cfg.backend.queue_reject_threshold;
    s.queue.capacity = static_cast<size_t>(reject > 0 && reject < cfg.backend.queue_size ? reject : cfg.backend.queue_size);
    s.queue.priority_enabled = cfg.backend.priority_scheduling_enabled;
    s.queue.fair = cfg.backend.fair_scheduling_enabled;
    s.queue_warning_threshold = cfg.backend.queue_warning_threshold;
    s.host_cache_bytes = cfg.memory.host_cache_bytes;
    s.max_cache_tokens = cfg.memory.max_cache_tokens;
    s.max_rss_bytes = cfg.memory.max_rss_bytes;
    const EmbeddingConfig& e = cfg.embedding;
    s.embedding = e.enabled || e.reranking;
    if (s.embedding) {
        static const std::pair<const char*, enum llama_pooling_type> kPooling[] = {
            {"none", LLAMA_POOLING_TYPE_NONE}, {"mean", LLAMA_POOLING_TYPE_MEAN}, {"cls", LLAMA_POOLING_TYPE_CLS},
            {"last", LLAMA_POOLING_TYPE_LAST}, {"rank", LLAMA_POOLING_TYPE_RANK}};
        s.pooling = LLAMA_POOLING_TYPE_UNSPECIFIED;
        for (const auto& [name, type] : kPooling) {
            if (e.pooling == name) s.pooling = type;
        }
        if (e.reranking) s.pooling = LLAMA_POOLING_TYPE_RANK;
        s.embed_batch_tokens = e.batch_tokens;
    }
    return s;
}

// A file rewritten since it was loaded (another size, modification time or
// inode) is another model: its identity is part of the key.
static std::string identity_key(const std::string& path) {
    FileIdentity id;
    return file_identity(path, &id) ? id.key() : std::string("?");
}

std::string served_key(const std::string& share_as, const Config& cfg) {
    return Model::share_key(share_as, cfg.model) + "@" + identity_key(share_as) + "#" +
           loop_settings_from(cfg).share_key();
}

Status acquire_served_model(const std::string& path, const std::string& share_as, const Config& cfg,
                            std::shared_ptr<ServedModel>* out, std::string* error) {
    std::lock_guard<std::mutex> lock(g_mu);
    auto& g_models = tables().models;
    auto& g_served = tables().served;
    forget_expired(g_models);
    forget_expired(g_served);
    const std::string model_key = Model::share_key(share_as, cfg.model) + "@" + identity_key(path);
    const LoopSettings settings = loop_settings_from(cfg);
    const std::string key = served_key(share_as, cfg);

    if (auto served = g_served[key].lock()) {
        log(LogLevel::info, "model", "model already loaded; sharing it", {{"path", path}});
        *out = std::move(served);
        return Status::ok;
    }
    std::shared_ptr<Model> model = g_models[model_key].lock();
    if (!model) {
        Status st = Model::load(path, cfg.model, &model, error);
        if (st != Status::ok) return st;
        g_models[model_key] = model;
    }
    auto served = std::make_shared<ServedModel>();
    served->model = model;
    Status st = DecodeLoop::create(model, settings, &served->loop, error);
    if (st != Status::ok) return st;
    served->key = key;
    g_served[key] = served;
    *out = std::move(served);
    return Status::ok;
}

LoadedCounts loaded_counts() {
    std::lock_guard<std::mutex> lock(g_mu);
    LoadedCounts c;
    for (const auto& [key, w] : tables().models) c.models += w.expired() ? 0 : 1;
    for (const auto& [key, w] : tables().served) c.loops += w.expired() ? 0 : 1;
    return c;
}

}  // namespace wnl
