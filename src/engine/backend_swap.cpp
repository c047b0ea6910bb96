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
    // The name and config mean what they mean to load_by_name_with_config:
    // a policy alias, or a path under the host's path rules; the config
    // over the host's (or the alias's), within the ceilings, host-only keys
    // refused. A host that wants more names it in its policy.
    ModelRequest req;
    Status st = resolve_model(std::string(name), config_json, "swap_graph", &req);
    if (st != Status::ok) return refused(st, std::string("the model or its config: ") + status_name(st) + " (see the log)");
    return swap_model(graph, req);
}

Status Backend::swap_model(uint32_t graph_id, const ModelRequest& req) {
    const std::string& path = req.canonical;
    const Config& cfg = req.cfg;
    const bool force = cfg.model.swap_force;
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
    {
        // The old model drains while the new one serves: for a while the
        // graph holds two decode loops, within max_llama_contexts.
        std::lock_guard<std::mutex> lock(mu_);
        Status room = check_graph_room(served_key(path, cfg), /*new_graph=*/false);
        if (room != Status::ok) return refuse(room, "max_llama_contexts: no room for the new model's decode loop");
    }
    log(LogLevel::info, "model", "swap: loading the new model while the graph serves",
        {{"graph", graph_id}, {"path", path}, {"serving", old->version.path}});
    g->swap_loading(path);

    std::shared_ptr<GraphModel> next;
    Status st = make_graph_model(path, path, cfg, req.guest_template, &next);
    if (st != Status::ok) return refuse(st, "the new model did not load (" + std::string(status_name(st)) + ")");
    std::string why;
    // A graph's kind is fixed at load: its callers send generation or
    // embedding input, and "force" cannot change what they send.
    const DecodeLoop& was = *old->served->loop;
    const DecodeLoop& now = *next->served->loop;
    if (was.embedding() != now.embedding() || (was.embedding() && was.pooling() != now.pooling())) {
        return refuse(Status::invalid_argument,
                      "the new model is not the same kind (generation, embedding, and its pooling) as the graph's; "
                      "swap to an embedding model with the graph's embedding settings");
    }
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
        Status room = check_graph_room(next->served->key, /*new_graph=*/false);
        if (room != Status::ok) return refuse(room, "max_llama_contexts: no room for the new model's decode loop");
        if (!g->replace(next, &queued)) return refuse(Status::not_found, "the graph was unloaded");
        // A repeated load of what the graph serves now returns it; one of
        // what it served before loads that anew.
        auto old_load = loads_.find(g->load_key);
        if (old_load != loads_.end() && old_load->second == graph_id) loads_.erase(old_load);
        g->load_key.clear();
        if (loads_.find(req.load_key) == loads_.end()) {
            loads_[req.load_key] = graph_id;
            g->load_key = req.load_key;
        }
        g->alias = req.by_alias ? req.name : "";
        g->alias_source = req.alias;
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

Status Backend::reload_aliases() {
    Config unused;
    std::shared_ptr<const Policy> fresh;
    std::string err;
    Status st = host_config(init_config_, &unused, &fresh, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "policy", "reload_aliases: the policy could not be read again; aliases unchanged",
            {{"error", err}});
        return st;
    }
    {
        // Only the aliases change: what this context's guests may do stays
        // as it opened.
        std::lock_guard<std::mutex> lock(policy_mu_);
        auto next = std::make_shared<Policy>(*policy_);
        next->models = fresh->models;
        policy_ = std::move(next);
    }
    struct Target {
        uint32_t graph;
        std::string alias, config;  // the guest's config text of the load
    };
    std::vector<Target> targets;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [id, g] : graphs_) {
            if (g->alias.empty()) continue;
            auto now = fresh->models.find(g->alias);
            if (now == fresh->models.end()) {
                log(LogLevel::warn, "policy", "reload_aliases: the alias is gone; its graph keeps its model",
                    {{"alias", g->alias}, {"graph", id}});
                continue;
            }
            // Against what the graph serves, so that a swap refused once is
            // tried again by the next reload.
            if (g->alias_source.path == now->second.path && g->alias_source.config == now->second.config) continue;
            // load_key is "alias:NAME\nCONFIG" while the graph serves the alias.
            const size_t nl = g->load_key.find('\n');
            targets.push_back({id, g->alias, nl == std::string::npos ? "" : g->load_key.substr(nl + 1)});
        }
    }
    log(LogLevel::info, "policy", "reload_aliases: aliases read again", {{"graphs_to_swap", targets.size()}});
    Status first = Status::ok;
    for (const auto& t : targets) {
        ModelRequest req;
        st = resolve_model(t.alias, t.config, "reload_aliases", &req);
        if (st == Status::ok) st = swap_model(t.graph, req);
        if (st != Status::ok && first == Status::ok) first = st;
    }
    return first;
}

}  // namespace wnl
