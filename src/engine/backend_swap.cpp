// Hot swap: the model behind a graph replaced while it serves
// (docs/models.md). The new model loads fully while the old one serves; the
// switch itself is a pointer change under the graph's lock, and the old
// model's queued requests are handed back to start again on the new one.
#include <chrono>

#include "engine/backend.h"
#include "engine/log.h"
#include "engine/model_compat.h"

namespace wnl {

Status Backend::swap_graph(uint32_t graph, std::string_view name, std::string_view config_json) {
    // Refused before it could start: the graph's MODEL status still says why.
    auto refused = [&](Status st, const std::string& why) {
        std::shared_ptr<Graph> g;
        {
            std::lock_guard<std::mutex> lock(mu_);
            auto it = graphs_.find(graph);
            if (it != graphs_.end()) g = it->second;
        }
        if (g) g->swap_refused(why);
        return st;
    };
    std::string canonical;
    Status st = model_file(name, "swap_graph", &canonical);
    if (st != Status::ok) return refused(st, std::string("the model file: ") + status_name(st) + " (see the log)");
    Config cfg = config_;
    cfg.model.swap_force = false;  // only the swap's own document forces it
    std::string err;
    st = apply_config_json(config_json, ConfigScope::model, cfg, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "swap_graph: config rejected", {{"error", err}});
        return refused(st, "config rejected: " + err);
    }
    return swap_model(graph, canonical, cfg, cfg.model.swap_force);
}

Status Backend::swap_model(uint32_t graph_id, const std::string& path, const Config& cfg, bool force) {
    std::shared_ptr<Graph> g;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (shut_down_) return Status::runtime_error;
        auto it = graphs_.find(graph_id);
        if (it == graphs_.end()) {
            log(LogLevel::error, "abi", "swap_graph: unknown graph handle", {{"graph", graph_id}});
            return Status::not_found;
        }
        g = it->second;
    }
    std::lock_guard<std::mutex> one_at_a_time(g->swap_mu);
    const auto t0 = Clock::now();
    std::shared_ptr<GraphModel> old = g->current();
    if (!old) {
        log(LogLevel::error, "abi", "swap_graph: the graph was unloaded", {{"graph", graph_id}});
        return Status::not_found;
    }
    auto refuse = [&](Status st, const std::string& why) {
        g->swap_refused(why);
        log(LogLevel::error, "model", "swap refused; the graph keeps its model",
            {{"graph", graph_id}, {"path", path}, {"serving", old->version.path}, {"error", why}});
        return st;
    };
    log(LogLevel::info, "model", "swap: loading the new model while the graph serves",
        {{"graph", graph_id}, {"path", path}, {"serving", old->version.path}});
    g->swap_loading(path);

    std::shared_ptr<GraphModel> next;
    Status st = make_graph_model(path, path, cfg, &next);
    if (st != Status::ok) return refuse(st, "the new model did not load (" + std::string(status_name(st)) + ")");
    std::string why;
    if (!swap_compatible(*old->served->model, *next->served->model, &why)) {
        if (!force) return refuse(Status::invalid_argument, "not compatible: " + why + " (\"force\": true swaps anyway)");
        log(LogLevel::warn, "model", "swap forced across an incompatibility", {{"graph", graph_id}, {"why", why}});
    }
    next->version.number = old->version.number + 1;

    std::vector<std::shared_ptr<Request>> queued;
    {
        // Not while deinit_backend runs: it cancels what the graph serves,
        // and a model switched in after that would serve no one.
        std::lock_guard<std::mutex> lock(mu_);
        auto it = graphs_.find(graph_id);
        if (shut_down_) return refuse(Status::runtime_error, "the backend context is being destroyed");
        if (it == graphs_.end() || it->second != g) return refuse(Status::not_found, "the graph was unloaded");
        if (!g->replace(next, &queued)) return refuse(Status::not_found, "the graph was unloaded");
    }
    // Queued on the old model, never started: their callers build their
    // turns again for the new one (RequestResult::moved).
    for (auto& r : queued) {
        RequestResult res;
        res.status = Status::runtime_error;
        res.stop_reason = "cancelled";
        if (r->cancelled) {
            res.error = "request cancelled while queued";
        } else {
            res.error = "handed back by a model swap";
            res.moved = true;
        }
        r->finish(std::move(res));
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    g->swap_done(ms, old->version.number, next->version.number, force, queued.size());
    log(LogLevel::info, "model", "graph swapped",
        {{"graph", graph_id},
         {"from", old->version.path},
         {"to", path},
         {"version", next->version.number},
         {"requests_moved", queued.size()},
         {"requests_draining", old->requests.load()},
         {"ms", ms}});
    if (old->served->loop != next->served->loop) retire_model(*old);
    return Status::ok;
}

}  // namespace wnl
