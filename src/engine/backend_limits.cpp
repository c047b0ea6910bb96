// The caps on what one backend context holds (graphs, decode loops,
// execution contexts) and asks for per request (limits.h). Always read from
// the context's own config: a graph's or a request's config cannot widen
// them.
#include <unordered_set>

#include "engine/backend.h"
#include "engine/limits.h"
#include "engine/log.h"

namespace wnl {

Status Backend::check_graph_room(const std::string& served_key, bool new_graph) const {
    const Limits& caps = config_.limits;
    if (new_graph && graphs_.size() >= static_cast<size_t>(caps.max_graphs)) {
        log(LogLevel::error, "limits", "load refused: the backend context holds max_graphs graphs",
            {{"max_graphs", caps.max_graphs}});
        return Status::busy;
    }
    // Loops held through graphs: the model each serves, and models a swap
    // or an unload took off a graph that still finish requests (through
    // execution contexts of graphs unloaded since, too).
    std::unordered_set<const ServedModel*> held;
    bool shared = false;
    auto hold = [&](const std::shared_ptr<Graph>& g) {
        g->served_held(&held);
        shared = shared || g->serves_key(served_key);
    };
    for (const auto& [id, g] : graphs_) hold(g);
    for (const auto& [id, e] : execs_) hold(e->graph);
    if (!shared && held.size() >= static_cast<size_t>(caps.max_llama_contexts)) {
        log(LogLevel::error, "limits",
            "load refused: a new llama context would pass max_llama_contexts (graphs whose settings differ "
            "each need their own)",
            {{"max_llama_contexts", caps.max_llama_contexts}, {"held", held.size()}});
        return Status::busy;
    }
    return Status::ok;
}

Status Backend::check_exec_room() const {
    const int32_t cap = config_.limits.max_exec_contexts;
    if (execs_.size() >= static_cast<size_t>(cap)) {
        log(LogLevel::error, "limits", "execution context refused: the backend context holds max_exec_contexts",
            {{"max_exec_contexts", cap}});
        return Status::busy;
    }
    return Status::ok;
}

Status Backend::check_request(const Config& cfg, const char* what) const {
    std::string err;
    Status st = check_request_limits(cfg, config_.limits, &err);
    if (st != Status::ok) log(LogLevel::error, "config", std::string(what) + " rejected", {{"error", err}});
    return st;
}

}  // namespace wnl
