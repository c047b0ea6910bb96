#include "engine/backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "engine/llama_runtime.h"
#include "engine/log.h"
#include "engine/output_metadata.h"
#include "engine/prompt_builder.h"

namespace wnl {

Status Backend::create(std::string_view config_json, std::shared_ptr<Backend>* out) {
    std::shared_ptr<Backend> b(new Backend());
    std::string err;
    Status st = apply_config_json(config_json, ConfigScope::backend, b->config_, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "backend config rejected", {{"error", err}});
        return st;
    }
    // Logging is process-wide: a context whose config says nothing about it
    // must not reset what another context set.
    if (!same_logging(b->config_.logging, LoggingConfig{})) {
        st = configure_logging(b->config_.logging, &err);
        if (st != Status::ok) {
            log(LogLevel::error, "config", "logging config rejected", {{"error", err}});
            return st;
        }
    }
    SessionLimits limits;
    limits.max_sessions = static_cast<size_t>(b->config_.backend.max_sessions);
    limits.idle_timeout_ms = b->config_.backend.idle_timeout_ms;
    limits.auto_cleanup = b->config_.backend.auto_cleanup;
    b->sessions_ = std::make_unique<SessionStore>(limits);
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
    if (runtime_held_) llama_runtime_release();
}

void Backend::shut_down() {
    std::vector<std::shared_ptr<ExecContext>> execs;
    {
        std::lock_guard<std::mutex> lock(mu_);
        shut_down_ = true;
        for (auto& [id, e] : execs_) execs.push_back(e);
    }
    std::vector<std::string> ids;
    for (auto& e : execs) {
        e->closed = true;
        if (!e->session->named) ids.push_back(e->session->id);
        std::lock_guard<std::mutex> lock(e->inflight_mu);
        if (e->inflight) e->inflight->cancelled = true;
    }
    for (auto& e : execs) close_stream(*e, false);
    // The decode loops outlive this context when others share them: its
    // sessions' cached state goes now rather than waiting to be evicted.
    if (sessions_) {
        for (const auto& s : sessions_->list()) ids.push_back(s->id);
    }
    forget_sessions(ids);
}

static bool path_is_within(const std::string& path, const std::string& dir) {
    char real_dir[PATH_MAX];
    if (!::realpath(dir.c_str(), real_dir)) return false;
    std::string d(real_dir);
    if (d.empty() || d.back() != '/') d.push_back('/');
    return path.compare(0, d.size(), d) == 0;
}

Status Backend::model_file(std::string_view name, const char* call, std::string* canonical) {
    std::string path(name);
    while (!path.empty() && path.back() == '\0') path.pop_back();
    if (path.empty() || path.find('\0') != std::string::npos) {
        log(LogLevel::error, "abi", std::string(call) + ": model name is empty or contains a NUL byte");
        return Status::invalid_argument;
    }
    char real[PATH_MAX];
    if (!::realpath(path.c_str(), real)) {
        log(LogLevel::error, "model", "model file not found", {{"path", path}, {"error", std::strerror(errno)}});
        return Status::model_not_found;
    }
    std::string resolved(real);
    // The host's allow-list: a guest's graph config cannot widen it.
    if (!config_.backend.model_dirs.empty()) {
        bool allowed = false;
        for (const auto& dir : config_.backend.model_dirs) allowed = allowed || path_is_within(resolved, dir);
        if (!allowed) {
            log(LogLevel::error, "model", "model path is outside the allowed model directories",
                {{"path", resolved}});
            return Status::security;
        }
    }
    *canonical = std::move(resolved);
    return Status::ok;
}

Status Backend::load_file(std::string_view path, std::string_view config_json, uint32_t* graph) {
    std::string canonical;
    Status st = model_file(path, "load", &canonical);
    if (st != Status::ok) return st;
    Config cfg = config_;
    std::string err;
    st = apply_config_json(config_json, ConfigScope::model, cfg, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "model config rejected", {{"error", err}});
        return st;
    }
    return register_graph(canonical, canonical, cfg, graph);
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
    Status st = register_graph(path, share_as, config_, graph);
    ::close(fd);  // llama.cpp has read or mapped what it needs
    return st;
}

Status Backend::make_graph_model(const std::string& path, const std::string& share_as, const Config& cfg,
                                 std::shared_ptr<GraphModel>* out) {
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
    // A template the guest chose is rendered under bounds: its own Jinja,
    // or the one inside GGUF bytes it sent.
    const bool from_bytes = share_as.rfind("memory:", 0) == 0;
    const bool guest_template = cfg.model.chat_template != config_.model.chat_template;
    st = ChatFormat::create(model.get(), cfg.model.chat_template, from_bytes || guest_template, &m->chat, &err);
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
                               uint32_t* graph) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (shut_down_) return Status::runtime_error;
    }
    std::shared_ptr<GraphModel> m;
    Status st = make_graph_model(path, share_as, cfg, &m);
    if (st != Status::ok) return st;
    auto g = std::make_shared<Graph>();
    g->bind(std::move(m));
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return Status::runtime_error;
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
    std::vector<std::string> ids;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [id, g] : graphs_) {
            auto m = g->current();
            if (m && m->served->loop.get() == loop) return;  // still in use here
        }
        for (const auto& [id, e] : execs_) {
            if (!e->session->named) ids.push_back(e->session->id);
        }
    }
    for (const auto& s : sessions_->list()) ids.push_back(s->id);
    for (const auto& id : ids) loop->forget_session(session_key(id));
}

Status Backend::new_exec(std::shared_ptr<Graph> g, std::shared_ptr<Session> s, uint32_t* exec) {
    auto e = std::make_shared<ExecContext>();
    e->graph = std::move(g);
    e->session = std::move(s);
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return Status::runtime_error;
    e->id = next_exec_++;
    if (!e->session) e->session = std::make_shared<Session>("anon-" + std::to_string(e->id), false);
    execs_[e->id] = e;
    *exec = e->id;
    return Status::ok;
}

Status Backend::init_exec(uint32_t graph, uint32_t* exec) {
    std::shared_ptr<Graph> g;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = graphs_.find(graph);
        if (it == graphs_.end()) {
            log(LogLevel::error, "abi", "init_execution_context: unknown graph handle", {{"graph", graph}});
            return Status::not_found;
        }
        g = it->second;
    }
    forget_sessions(sessions_->drop_idle(Clock::now()));
    return new_exec(std::move(g), nullptr, exec);
}

Status Backend::init_exec_with_session(std::string_view session_id, uint32_t* exec) {
    std::string id(session_id);
    if (id.empty() || id.size() > 256) {
        log(LogLevel::error, "abi", "session id must be 1 to 256 bytes", {{"length", id.size()}});
        return Status::invalid_argument;
    }
    std::shared_ptr<Graph> g;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = last_graph_ >= 0 ? graphs_.find(static_cast<uint32_t>(last_graph_)) : graphs_.end();
        if (it == graphs_.end()) {
            log(LogLevel::error, "abi", "init_execution_context_with_session_id: no graph loaded");
            return Status::not_found;
        }
        g = it->second;
    }
    forget_sessions(sessions_->drop_idle(Clock::now()));
    std::vector<std::string> evicted;
    auto session = sessions_->attach(id, &evicted);
    forget_sessions(evicted);
    return new_exec(std::move(g), std::move(session), exec);
}

Status Backend::close_exec(uint32_t exec) {
    std::shared_ptr<ExecContext> e;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = execs_.find(exec);
        if (it == execs_.end()) {
            log(LogLevel::error, "abi", "close_execution_context: unknown or closed handle", {{"exec", exec}});
            return Status::not_found;
        }
        e = it->second;
        execs_.erase(it);
    }
    e->closed = true;
    {
        std::lock_guard<std::mutex> lock(e->inflight_mu);
        if (e->inflight) e->inflight->cancelled = true;
    }
    close_stream(*e, false);  // an open stream's session must be free again
    if (!e->session->named) forget_sessions({e->session->id});
    return Status::ok;
}

std::string Backend::session_key(const std::string& id) const { return tag_ + id; }

void Backend::forget_sessions(const std::vector<std::string>& ids) {
    if (ids.empty()) return;
    std::vector<std::shared_ptr<Graph>> graphs;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [gid, g] : graphs_) graphs.push_back(g);
    }
    for (const auto& g : graphs) {
        auto m = g->current();
        if (!m) continue;
        for (const auto& id : ids) m->served->loop->forget_session(session_key(id));
    }
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

std::shared_ptr<ExecContext> Backend::find_exec(uint32_t exec, const char* call) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = execs_.find(exec);
    if (it == execs_.end()) {
        log(LogLevel::error, "abi", std::string(call) + ": unknown or closed execution context", {{"exec", exec}});
        return nullptr;
    }
    return it->second;
}

Status Backend::set_input(uint32_t exec, uint32_t index, std::string_view data) {
    ExecClaim e = claim_exec(exec, "set_input");
    if (!e) return e.status();
    if (index == 0) {
        e->input.assign(data);
        e->has_input = true;
        return Status::ok;
    }
    if (index == 1) {
        // Checked now, so the caller learns of a bad key at the call that sent it.
        auto m = e->graph->current();
        Config probe = m ? m->config : config_;
        std::string err;
        Status st = apply_config_json(data, ConfigScope::request, probe, &err);
        if (st != Status::ok) {
            log(LogLevel::error, "config", "request options rejected", {{"error", err}});
            return st;
        }
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
    auto m = e->graph->current();
    Config probe = m ? m->config : config_;
    std::string err;
    Status st = apply_config_json(runtime_config, ConfigScope::request, probe, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "runtime config rejected", {{"error", err}});
        return st;
    }
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
