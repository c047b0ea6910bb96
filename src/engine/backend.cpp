#include "engine/backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "engine/limits.h"
#include "engine/llama_runtime.h"
#include "engine/log.h"
#include "engine/model_path.h"
#include "engine/output_metadata.h"
#include "engine/prompt_builder.h"

namespace wnl {

Status Backend::create(std::string_view config_json, std::shared_ptr<Backend>* out) {
    std::shared_ptr<Backend> b(new Backend());
    std::string err;
    Status st = host_config(config_json, &b->config_, &b->policy_, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "backend config rejected", {{"error", err}});
        return st;
    }
    b->limits_ = b->policy_->limits();
    b->init_config_.assign(config_json);
    // Logging is process-wide: a context whose config says nothing about it
    // must not reset what another context set.
    if (!same_logging(b->config_.logging, LoggingConfig{})) {
        st = configure_logging(b->config_.logging, &err);
        if (st != Status::ok) {
            log(LogLevel::error, "config", "logging config rejected", {{"error", err}});
            return st;
        }
    }
    // A host's lower max_output_tokens lowers the default max_tokens with it;
    // the rest of the backend config must fit its own caps.
    Config& c = b->config_;
    if (c.stopping.max_tokens > c.limits.max_output_tokens) {
        log(LogLevel::info, "limits", "max_tokens lowered to max_output_tokens",
            {{"max_tokens", c.stopping.max_tokens}, {"max_output_tokens", c.limits.max_output_tokens}});
        c.stopping.max_tokens = c.limits.max_output_tokens;
    }
    st = b->check_request(c, "backend config");
    if (st != Status::ok) return st;
    SessionLimits limits;
    const BackendConfig& bc = b->config_.backend;
    limits.max_sessions = static_cast<size_t>(bc.max_sessions);
    limits.idle_timeout_ms = bc.idle_timeout_ms;
    limits.auto_cleanup = bc.auto_cleanup;
    if (!bc.session_store.empty()) {
        StoreSettings ss;
        ss.dir = bc.session_store;
        ss.ns = bc.session_namespace;
        ss.sync = bc.session_sync_full ? SyncLevel::full : SyncLevel::normal;
        ss.max_bytes = bc.session_store_bytes;
        st = StoreNamespace::open(ss, limits, &b->store_, &err);
        if (st != Status::ok) {
            log(LogLevel::error, "store", "session store cannot be used", {{"dir", ss.dir}, {"error", err}});
            return st;
        }
        b->store_->hold();
        b->store_held_ = true;
        b->sessions_ = b->store_->sessions();
    } else {
        b->sessions_ = std::make_shared<SessionStore>(limits);
    }
    static std::atomic<uint64_t> backends{0};
    b->tag_ = "b" + std::to_string(++backends) + "/";  // session keys are unique across contexts
    llama_runtime_acquire();
    b->runtime_held_ = true;
    *out = std::move(b);
    return Status::ok;
}

Backend::~Backend() {
    shut_down();
    {
        std::lock_guard<std::mutex> lock(mu_);
        execs_.clear();
        graphs_.clear();
    }
    sessions_.reset();
    store_.reset();  // the last context on a store closes it (its writer drains first)
    if (runtime_held_) llama_runtime_release();
}

void Backend::shut_down() {
    std::vector<std::shared_ptr<ExecContext>> execs;
    {
        std::lock_guard<std::mutex> lock(mu_);
        shut_down_ = true;
        for (auto& [id, e] : execs_) execs.push_back(e);
    }
    std::vector<std::string> keys;
    for (auto& e : execs) {
        e->closed = true;
        if (!e->session->named) keys.push_back(session_key(*e->session));
        std::lock_guard<std::mutex> lock(e->inflight_mu);
        if (e->inflight) e->inflight->cancelled = true;
    }
    for (auto& e : execs) close_stream(*e, false);
    // The last context on a store's namespace writes its sessions' KV out;
    // while another still serves the namespace, its sessions stay.
    if (store_ && store_held_.exchange(false)) {
        if (store_->release() > 0) {
            named_stay_ = true;
        } else {
            save_stored_sessions();
        }
    }
    // The decode loops outlive this context when others share them: its
    // sessions' cached state goes now rather than waiting to be evicted.
    if (sessions_ && !named_stay_) {
        for (const auto& s : sessions_->list()) keys.push_back(session_key(*s));
    }
    forget_keys(keys);
}

std::shared_ptr<const Policy> Backend::policy() const {
    std::lock_guard<std::mutex> lock(policy_mu_);
    return policy_;
}

// A host that names its models (aliases) and no directories has said where
// models come from: guests may not add their own.
bool Backend::guest_paths_allowed() const {
    return config_.backend.guest_paths.value_or(policy()->models.empty() || !config_.backend.model_dirs.empty());
}

// A graph config as the key of a load: up to its first NUL, without the
// blanks around it (so "", "  " and a config counting its NUL are the same).
static std::string config_key(std::string_view text) {
    text = text.substr(0, text.find('\0'));
    const char* blanks = " \t\r\n\f\v";
    const size_t b = text.find_first_not_of(blanks);
    if (b == std::string_view::npos) return "";
    return std::string(text.substr(b, text.find_last_not_of(blanks) - b + 1));
}

Status Backend::guest_model_path(const std::string& name, std::string* canonical) {
    ModelPathRules rules;
    rules.model_dirs = config_.backend.model_dirs;
    rules.guest_paths = guest_paths_allowed();
    std::string why;
    Status st = resolve_guest_model_path(name, rules, canonical, &why);
    if (st == Status::path_refused) {
        log(LogLevel::error, "model", "model path refused by the host's policy", {{"path", name}, {"why", why}});
    } else if (st != Status::ok) {
        log(LogLevel::error, "model", "model file not found", {{"path", name}, {"error", why}});
    }
    return st;
}

Status Backend::resolve_model(const std::string& name_in, std::string_view config_json, const char* call,
                              ModelRequest* out) {
    std::string name(name_in);
    while (!name.empty() && name.back() == '\0') name.pop_back();
    if (name.empty() || name.find('\0') != std::string::npos) {
        log(LogLevel::error, "abi", std::string(call) + ": model name is empty or contains a NUL byte");
        return Status::invalid_argument;
    }
    out->name = name;
    // An alias brings the host's path and config; the caller's config goes
    // over it, held to the ceilings like any guest's.
    Config& cfg = out->cfg;
    cfg = config_;
    std::string err;
    const std::shared_ptr<const Policy> policy = this->policy();
    auto alias = policy->models.find(name);
    out->by_alias = alias != policy->models.end();
    if (out->by_alias && apply_config_json(alias->second.config, ConfigScope::model, cfg, &err) != Status::ok) {
        log(LogLevel::error, "config", "model alias config rejected", {{"alias", name}, {"error", err}});
        return Status::invalid_argument;
    }
    const std::string host_template = cfg.model.chat_template;
    cfg.model.swap_force = false;  // only the caller's own document forces a swap
    Status st = apply_config_json(config_json, ConfigScope::model, cfg, &err, &limits_);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "model config rejected", {{"error", err}});
        return st;
    }
    out->guest_template = cfg.model.chat_template != host_template;
    // The graph's settings are every request's base: a stop list or grammar
    // over the caps would fail each of them, so it fails the load.
    st = check_request(cfg, "model config");
    if (st != Status::ok) return st;
    if (out->by_alias) {
        char real[PATH_MAX];
        if (!::realpath(alias->second.path.c_str(), real)) {
            log(LogLevel::error, "model", "model alias's file not found",
                {{"alias", name}, {"path", alias->second.path}, {"error", std::strerror(errno)}});
            return Status::model_not_found;
        }
        out->canonical = real;
        out->alias = alias->second;
    } else {
        st = guest_model_path(name, &out->canonical);
        if (st != Status::ok) return st;
    }
    // A host may load before every request (HyperBEAM does): the same file
    // with the same config is the graph it already has, so nothing grows.
    // An alias is its own key: two aliases may name one file with different
    // host configs.
    out->load_key = (out->by_alias ? "alias:" + name : out->canonical) + '\n' + config_key(config_json);
    return Status::ok;
}

Status Backend::load_file(std::string_view name, std::string_view config_json, uint32_t* graph) {
    ModelRequest req;
    Status st = resolve_model(std::string(name), config_json, "load", &req);
    if (st != Status::ok) return st;
    const std::string& key = req.load_key;
    std::lock_guard<std::mutex> load_lock(load_mu_);
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (shut_down_) return Status::runtime_error;
        auto it = loads_.find(key);
        if (it != loads_.end()) {
            Graph& g = *graphs_.at(it->second);
            g.loads++;
            last_graph_ = g.id;
            *graph = g.id;
            log(LogLevel::debug, "model", "model already loaded in this context with this config; same graph",
                {{"path", req.canonical}, {"graph", g.id}, {"loads", g.loads}});
            return Status::ok;
        }
    }
    uint32_t id = 0;
    st = register_graph(req.canonical, req.canonical, req.cfg, &id, req.guest_template, req.by_alias ? req.name : "");
    if (st != Status::ok) return st;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = graphs_.find(id);
    if (it != graphs_.end()) {  // not unloaded by another thread meanwhile
        it->second->load_key = key;
        it->second->alias_source = req.alias;
        loads_[key] = id;
    }
    *graph = id;
    return Status::ok;
}

Status Backend::load_bytes(const uint8_t* data, size_t size, uint32_t* graph) {
    // llama.cpp loads from a path; a memfd gives the bytes one without
    // touching the disk.
    int fd = ::memfd_create("wasi-nn-llama-model", MFD_CLOEXEC);
    if (fd < 0) {
        log(LogLevel::error, "model", "memfd_create failed", {{"error", std::strerror(errno)}});
        return Status::runtime_error;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::write(fd, data + done, size - done);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            log(LogLevel::error, "model", "writing model bytes to memfd failed", {{"error", std::strerror(errno)}});
            ::close(fd);
            return Status::missing_memory;
        }
        done += static_cast<size_t>(n);
    }
    // The fd number is reused after close, so it cannot name the model for
    // sharing: every load from memory is its own model.
    static std::atomic<uint64_t> memory_loads{0};
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    std::string share_as = "memory:" + std::to_string(++memory_loads);
    Config cfg = config_;
    std::string err;
    Status st = apply_config_json("", ConfigScope::model, cfg, &err, &limits_);
    if (st == Status::ok) st = register_graph(path, share_as, cfg, graph, /*guest_template=*/true);
    ::close(fd);  // llama.cpp has read or mapped what it needs
    return st;
}

Status Backend::make_graph_model(const std::string& path, const std::string& share_as, const Config& cfg,
                                 bool guest_template, std::shared_ptr<GraphModel>* out) {
    const EmbeddingConfig& emb = cfg.embedding;
    if (emb.reranking && !emb.pooling.empty() && emb.pooling != "rank") {
        log(LogLevel::error, "config", "reranking needs rank pooling; pooling_type says otherwise",
            {{"pooling_type", emb.pooling}});
        return Status::invalid_argument;
    }
    if (!emb.enabled && !emb.reranking && !emb.pooling.empty()) {
        log(LogLevel::warn, "config", "pooling_type ignored: the graph is not an embedding graph (set embedding)",
            {{"pooling_type", emb.pooling}});
    }
    auto m = std::make_shared<GraphModel>();
    m->config = cfg;
    std::string err;
    Status st = acquire_served_model(path, share_as, cfg, &m->served, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "model", "model load failed", {{"path", path}, {"error", err}});
        return st;
    }
    const Model& model = *m->served->model;
    m->has_template = model.info().has_chat_template || !cfg.model.chat_template.empty();
    st = ChatFormat::create(model.get(), cfg.model.chat_template, guest_template, &m->chat, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "model", "chat template rejected", {{"error", err}});
        return st;
    }
    const ModelInfo& info = model.info();
    m->version = {1, share_as, info.file_bytes, info.mtime_ns, info.name};
    *out = std::move(m);
    return Status::ok;
}

Status Backend::register_graph(const std::string& path, const std::string& share_as, const Config& cfg,
                               uint32_t* graph, bool guest_template, const std::string& alias) {
    {
        // Checked before anything is loaded; again at the end, since another
        // thread may have loaded meanwhile.
        std::lock_guard<std::mutex> lock(mu_);
        if (shut_down_) return Status::runtime_error;
        Status room = check_graph_room(served_key(share_as, cfg));
        if (room != Status::ok) return room;
    }
    std::shared_ptr<GraphModel> m;
    Status st = make_graph_model(path, share_as, cfg, guest_template, &m);
    if (st != Status::ok) return st;
    auto g = std::make_shared<Graph>();
    g->alias = alias;
    g->bind(std::move(m));
    std::unique_lock<std::mutex> lock(mu_);
    if (shut_down_) return Status::runtime_error;
    st = check_graph_room(g->current()->served->key);
    if (st != Status::ok) {
        lock.unlock();  // the graph (and perhaps its loop) goes without the lock
        return st;
    }
    g->id = next_graph_++;
    graphs_[g->id] = g;
    last_graph_ = g->id;
    *graph = g->id;
    return Status::ok;
}

Status Backend::unload(uint32_t graph) {
    std::shared_ptr<Graph> g;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = graphs_.find(graph);
        if (it == graphs_.end()) {
            log(LogLevel::error, "abi", "unload: unknown graph handle", {{"graph", graph}});
            return Status::not_found;
        }
        if (--it->second->loads > 0) return Status::ok;  // another load still holds it
        if (!it->second->load_key.empty()) loads_.erase(it->second->load_key);
        g = std::move(it->second);
        graphs_.erase(it);
        if (last_graph_ == graph) {
            last_graph_ = -1;
            for (const auto& [id, other] : graphs_) last_graph_ = std::max<int64_t>(last_graph_, id);
        }
    }
    // Execution contexts keep the Graph, not its model: the model goes with
    // the last request that runs on it.
    std::shared_ptr<GraphModel> old = g->end();
    if (old) {
        log(LogLevel::info, "model", "graph unloaded",
            {{"graph", graph}, {"model", old->version.name}, {"requests_left", old->requests.load()}});
        retire_model(*old);
    }
    return Status::ok;
}

void Backend::retire_model(const GraphModel& old) {
    DecodeLoop* loop = old.served->loop.get();
    std::vector<std::string> keys;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [id, g] : graphs_) {
            auto m = g->current();
            if (m && m->served->loop.get() == loop) return;  // still in use here
        }
        for (const auto& [id, e] : execs_) {
            if (!e->session->named) keys.push_back(session_key(*e->session));
        }
    }
    for (const auto& s : sessions_->list()) keys.push_back(session_key(*s));
    for (const auto& k : keys) loop->forget_session(k);
}

ExecClaim Backend::claim_exec(uint32_t exec, const char* call, bool after_unload) {
    std::shared_ptr<ExecContext> e = find_exec(exec, call);
    if (e && !after_unload && e->graph->ended()) {
        log(LogLevel::error, "abi", std::string(call) + ": the graph of this execution context was unloaded",
            {{"exec", exec}, {"graph", e->graph->id}});
        e = nullptr;
    }
    return ExecClaim(std::move(e), call);
}

Status Backend::set_input(uint32_t exec, uint32_t index, std::string_view data) {
    ExecClaim e = claim_exec(exec, "set_input");
    if (!e) return e.status();
    if (index == 0) {
        Status st = check_prompt_size(data.size(), config_.limits, "set_input");
        if (st != Status::ok) return st;
        e->input.assign(data);
        e->has_input = true;
        return Status::ok;
    }
    if (index == 1) {
        // Checked now, so the caller learns of a bad key at the call that sent it.
        auto m = e->graph->current();
        Config probe = m ? m->config : config_;
        std::string err;
        Status st = apply_config_json(data, ConfigScope::request, probe, &err, &limits_);
        if (st != Status::ok) {
            log(LogLevel::error, "config", "request options rejected", {{"error", err}});
            return st;
        }
        st = check_request(probe, "request options");
        if (st != Status::ok) return st;
        st = check_graph_kind(*e->graph, probe);
        if (st != Status::ok) return st;
        e->options.assign(data);
        return Status::ok;
    }
    log(LogLevel::error, "abi", "set_input: index must be 0 (prompt) or 1 (options)", {{"index", index}});
    return Status::invalid_argument;
}

Status Backend::compute(uint32_t exec) {
    ExecClaim e = claim_exec(exec, "compute");
    if (!e) return e.status();
    return compute_locked(*e);
}

Status Backend::get_output(uint32_t exec, uint32_t index, std::string* out) {
    ExecClaim e = claim_exec(exec, "get_output");
    if (!e) return e.status();
    if (index > 1) {
        log(LogLevel::error, "abi", "get_output: index must be 0 (text) or 1 (metadata)", {{"index", index}});
        return Status::invalid_argument;
    }
    if (!e->has_output) {
        log(LogLevel::error, "abi", "get_output: nothing computed yet on this execution context", {{"exec", exec}});
        return Status::not_found;
    }
    *out = index == 0 ? e->output : e->metadata;
    return Status::ok;
}

Status Backend::run_inference(uint32_t exec, uint32_t index, std::string_view input, std::string_view runtime_config,
                              std::string* out) {
    ExecClaim e = claim_exec(exec, "run_inference");
    if (!e) return e.status();
    if (index > 1) {
        log(LogLevel::error, "abi", "run_inference: index must be 0 (text) or 1 (metadata)", {{"index", index}});
        return Status::invalid_argument;
    }
    Status st = check_prompt_size(input.size(), config_.limits, "run_inference");
    if (st != Status::ok) return st;
    auto m = e->graph->current();
    Config probe = m ? m->config : config_;
    std::string err;
    st = apply_config_json(runtime_config, ConfigScope::request, probe, &err, &limits_);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "runtime config rejected", {{"error", err}});
        return st;
    }
    st = check_request(probe, "runtime config");
    if (st != Status::ok) return st;
    st = check_graph_kind(*e->graph, probe);
    if (st != Status::ok) return st;
    e->input.assign(input);
    e->has_input = true;
    std::string saved = std::move(e->options);
    e->options.assign(runtime_config);
    st = compute_locked(*e);
    e->options = std::move(saved);
    if (e->has_output) *out = index == 0 ? e->output : e->metadata;
    return st;
}


}  // namespace wnl
