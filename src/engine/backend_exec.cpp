// Execution-context handles of a backend context: opening one on a graph
// (anonymous session) or on a named session, where several holders share
// one handle, and closing it.
#include "engine/backend.h"
#include "engine/log.h"

namespace wnl {

Status Backend::new_exec(std::shared_ptr<Graph> g, std::shared_ptr<Session> s, uint32_t* exec) {
    auto e = std::make_shared<ExecContext>();
    e->graph = std::move(g);
    e->session = std::move(s);
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return Status::runtime_error;
    Status room = check_exec_room();
    if (room != Status::ok) return room;
    e->id = next_exec_++;
    if (!e->session) e->session = std::make_shared<Session>("anon-" + std::to_string(e->id), false);
    execs_[e->id] = e;
    if (e->session->named) session_execs_[session_exec_key(e->session->id, e->graph->id)] = e->id;
    *exec = e->id;
    return Status::ok;
}

std::string Backend::session_exec_key(const std::string& session_id, uint32_t graph) {
    return std::to_string(graph) + '/' + session_id;
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
    {
        // Several holders of one session (a host's terms, say, or a client
        // that inits before every request) share its handle on this graph.
        std::lock_guard<std::mutex> lock(mu_);
        if (shut_down_) return Status::runtime_error;
        auto it = session_execs_.find(session_exec_key(id, g->id));
        if (it != session_execs_.end()) {
            auto e = execs_.find(it->second);
            // Not when the session was evicted and made anew meanwhile: that
            // handle carries on with the old one.
            if (e != execs_.end() && e->second->session == session) {
                e->second->holders++;
                *exec = e->second->id;
                log(LogLevel::debug, "session", "session already open on this graph; same handle",
                    {{"session", id}, {"exec", *exec}, {"holders", e->second->holders}});
                return Status::ok;
            }
        }
    }
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
        if (--e->holders > 0) return Status::ok;  // another holder still uses it
        execs_.erase(it);
        if (e->session->named) {
            auto k = session_execs_.find(session_exec_key(e->session->id, e->graph->id));
            if (k != session_execs_.end() && k->second == exec) session_execs_.erase(k);
        }
    }
    e->closed = true;
    {
        std::lock_guard<std::mutex> lock(e->inflight_mu);
        if (e->inflight) e->inflight->cancelled = true;
    }
    close_stream(*e, false);  // an open stream's session must be free again
    if (!e->session->named) forget_keys({session_key(*e->session)});
    return Status::ok;
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

}  // namespace wnl
