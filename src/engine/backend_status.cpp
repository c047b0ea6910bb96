// get_backend_status: five JSON documents built from the engine's own
// counters (docs/status.md describes every field).
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/backend.h"
#include "engine/cpu_arbiter.h"
#include "engine/embed_io.h"
#include "engine/output_metadata.h"
#include "engine/process_memory.h"
#include "engine/version.h"

namespace wnl {

using nlohmann::ordered_json;

namespace {

struct GraphView {
    uint32_t id;
    std::shared_ptr<Graph> graph;
    std::shared_ptr<GraphModel> model;  // what it serves now
    std::string alias;  // Graph::alias, read under Backend::mu_
    LoopSnapshot loop;
};

ordered_json queue_json(const LoopSnapshot& s) {
    ordered_json j;
    j["depth"] = {{"high", s.queue_depth[0]}, {"normal", s.queue_depth[1]}, {"low", s.queue_depth[2]},
                  {"total", s.queue_depth[0] + s.queue_depth[1] + s.queue_depth[2]}};
    j["wait_ms"] = {{"p50", s.queue_wait_p50}, {"p99", s.queue_wait_p99}};
    j["admitted"] = s.counters.admitted;
    j["rejected"] = s.counters.rejected;
    j["timed_out"] = s.counters.timed_out;
    j["cancelled"] = s.counters.cancelled;
    j["handed_back"] = s.counters.handed_back;
    j["running"] = s.busy_slots;
    j["max_concurrent"] = s.n_slots;
    j["thresholds"] = {{"queue_size", s.queue_capacity},
                       {"warning", s.queue_warning_threshold},
                       {"reject", s.queue_capacity}};
    return j;
}

ordered_json memory_json(const GraphView& v) {
    const LoopSnapshot& s = v.loop;
    ordered_json j;
    j["graph"] = v.id;
    j["model"] = v.model->served->model->info().name;
    j["kv_cells_used"] = s.kv_cells_used;
    j["kv_cells_total"] = s.kv_cells_total;
    j["kv_bytes_used"] = s.kv_cells_used * s.kv_bytes_per_cell;
    j["kv_bytes_total"] = s.kv_cells_total * s.kv_bytes_per_cell;
    j["weights_bytes"] = v.model->served->model->info().size_bytes;
    return j;
}

ordered_json performance_json(const GraphView& v) {
    const LoopSnapshot& s = v.loop;
    const auto& c = s.counters;
    ordered_json j;
    j["graph"] = v.id;
    j["requests_served"] = c.completed;
    j["requests_failed"] = c.failed;
    j["prompt_tokens"] = c.prompt_tokens;
    j["generated_tokens"] = c.generated_tokens;
    j["prefill_tokens_per_s"] = {{"recent", s.recent.prefill_tokens_per_s},
                                 {"lifetime", s.lifetime.prefill_tokens_per_s}};
    j["decode_tokens_per_s"] = {{"recent", s.recent.decode_tokens_per_s},
                                {"lifetime", s.lifetime.decode_tokens_per_s}};
    j["latency_ms"] = {{"p50", s.latency_p50}, {"p95", s.latency_p95}, {"p99", s.latency_p99}};
    j["ttft_ms"] = {{"p50", s.ttft_p50}, {"p95", s.ttft_p95}, {"p99", s.ttft_p99}};
    j["decode_calls"] = c.decode_calls;
    j["batch_occupancy"] = c.decode_calls && s.n_slots
                               ? static_cast<double>(c.batch_slots) / static_cast<double>(c.decode_calls * s.n_slots)
                               : 0.0;
    j["avg_batch_tokens"] = c.decode_calls ? static_cast<double>(c.batch_tokens) / c.decode_calls : 0.0;
    j["max_batch_tokens"] = c.max_batch_tokens;
    j["prefill_chunk"] = s.prefill_chunk;
    j["decode_busy_ms"] = c.busy_ms;
    j["threads"] = s.threads;
    j["threads_batch"] = s.threads_batch;
    j["threads_exact"] = s.threads_exact;
    j["shares_cpus"] = s.shares_cpus;
    j["cpu_wait_ms"] = c.cpu_wait_ms;
    j["last_step_threads"] = s.last_step_threads;
    j["last_step_quiet_pools"] = s.last_step_quiet;
    const GovernorStats& g = s.governor;
    j["thread_governor"] = {{"enabled", s.adapts_threads},
                            {"threads", s.adapts_threads ? s.governed.width : std::max(s.threads, s.threads_batch)},
                            {"quiet_pools", s.adapts_threads && s.governed.quiet},
                            {"slowdowns", g.onsets},
                            {"probes", g.probes},
                            {"narrowed", g.narrowed},
                            {"widened", g.widened},
                            {"quieted", g.quieted},
                            {"unquieted", g.unquieted}};
    if (v.graph->embeds()) {
        j["embedded_inputs"] = c.embedded_inputs;
        j["embedded_tokens"] = c.embedded_tokens;
    }
    return j;
}

ordered_json swap_json(const SwapReport& r) {
    ordered_json j;
    j["in_progress"] = r.loading ? ordered_json{{"path", r.loading_path}, {"loading_ms", r.loading_ms}} : ordered_json();
    j["draining"] = ordered_json::array();
    for (const auto& d : r.draining) {
        j["draining"].push_back({{"model_version", model_version_json(d.version)}, {"requests", d.requests}});
    }
    j["swaps"] = r.swaps;
    j["refused"] = r.refused;
    if (r.has_last) {
        const int64_t at_ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(r.last_at.time_since_epoch()).count();
        j["last"] = {{"at", iso8601_utc(at_ns)},
                     {"duration_ms", r.last_duration_ms},
                     {"from", r.last_from},
                     {"to", r.last_to},
                     {"forced", r.last_forced},
                     {"requests_moved", r.last_moved}};
    } else {
        j["last"] = nullptr;
    }
    j["last_refusal"] = r.last_refusal.empty() ? ordered_json() : ordered_json(r.last_refusal);
    return j;
}

ordered_json model_json(const GraphView& v) {
    const ServedModel& sm = *v.model->served;
    const ModelInfo& i = sm.model->info();
    ordered_json j;
    j["graph"] = v.id;
    j["path"] = i.path;
    j["alias"] = v.alias.empty() ? ordered_json() : ordered_json(v.alias);
    j["name"] = i.name;
    j["architecture"] = i.architecture;
    j["description"] = i.description;
    j["parameters"] = i.n_params;
    j["size_bytes"] = i.size_bytes;
    j["context_per_session"] = sm.loop->ctx_per_seq();
    j["context_train"] = i.n_ctx_train;
    j["vocabulary"] = i.n_vocab;
    j["layers"] = i.n_layer;
    j["embedding"] = i.n_embd;
    j["chat_template"] = v.model->has_template;
    j["kind"] = v.graph->reranks() ? "rerank" : v.graph->embeds() ? "embedding" : "generation";
    if (v.graph->embeds()) {
        j["pooling"] = pooling_name(sm.loop->pooling());
        j["n_embedding"] = sm.loop->n_embd_out();
    }
    j["version"] = v.model->version.number;
    j["model_version"] = model_version_json(v.model->version);
    j["load_ms"] = i.load_ms;
    j["graphs_sharing"] = sm.graphs.load();
    j["threads"] = v.loop.threads;
    j["threads_batch"] = v.loop.threads_batch;
    j["threads_exact"] = v.loop.threads_exact;
    j["swap"] = swap_json(v.graph->swap_report());
    return j;
}

}  // namespace

// What the host's policy lets this context's guests do.
nlohmann::ordered_json Backend::policy_json() const {
    ordered_json p;
    p["sources"] = policy()->sources;
    p["model_dirs"] = config_.backend.model_dirs;
    p["guest_paths"] = guest_paths_allowed();
    p["share_kv"] = config_.backend.share_kv_process ? "process" : "tenant";
    p["ceilings"] = ordered_json::object();
    for (const auto& [key, value] : limits_.ceilings) p["ceilings"][key] = value;
    p["queue_share"] = limits_.queue_share;
    return p;
}

Status Backend::backend_status(StatusKind kind, std::string* out) {
    std::vector<GraphView> views;
    std::vector<std::shared_ptr<ExecContext>> execs;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [id, g] : graphs_) views.push_back({id, g, nullptr, g->alias, {}});
        for (const auto& [id, e] : execs_) execs.push_back(e);
    }
    for (auto& v : views) v.model = v.graph->current();
    // A graph unloaded since the table was read serves nothing.
    views.erase(std::remove_if(views.begin(), views.end(), [](const GraphView& v) { return !v.model; }), views.end());
    std::sort(views.begin(), views.end(), [](const GraphView& a, const GraphView& b) { return a.id < b.id; });
    for (auto& v : views) v.loop = v.model->served->loop->snapshot();

    ordered_json j;
    switch (kind) {
        case StatusKind::queue: {
            j["type"] = "queue";
            j["models"] = ordered_json::array();
            for (const auto& v : views) {
                ordered_json q = queue_json(v.loop);
                q["graph"] = v.id;
                j["models"].push_back(q);
            }
            break;
        }
        case StatusKind::memory: {
            j["type"] = "memory";
            j["process_rss_bytes"] = process_rss_bytes();
            j["models"] = ordered_json::array();
            for (const auto& v : views) j["models"].push_back(memory_json(v));
            // Graphs that share a decode loop share its cache: count each once.
            uint64_t bytes = 0, entries = 0, limit = 0, evictions = 0, saved = 0, restored = 0, stored = 0,
                     from_store = 0;
            std::set<const DecodeLoop*> seen;
            for (const auto& v : views) {
                if (!seen.insert(v.model->served->loop.get()).second) continue;
                bytes += v.loop.host_cache_bytes;
                entries += v.loop.host_cache_entries;
                limit += v.loop.host_cache_limit;
                evictions += v.loop.host_cache_evictions;
                saved += v.loop.states_saved;
                restored += v.loop.states_restored;
                stored += v.loop.states_stored;
                from_store += v.loop.states_restored_from_store;
            }
            j["host_cache"] = {{"bytes", bytes},
                               {"entries", entries},
                               {"limit_bytes", limit},
                               {"evictions", evictions},
                               {"states_saved", saved},
                               {"states_restored", restored},
                               {"states_to_store", stored},
                               {"states_restored_from_store", from_store}};
            j["gpu"] = ordered_json::array();
            for (const auto& d : gpu_memory()) {
                j["gpu"].push_back({{"device", d.name},
                                    {"description", d.description},
                                    {"used_bytes", d.total_bytes - d.free_bytes},
                                    {"free_bytes", d.free_bytes},
                                    {"total_bytes", d.total_bytes}});
            }
            break;
        }
        case StatusKind::sessions: {
            forget_sessions(sessions_->drop_idle(Clock::now()));  // report what idle cleanup leaves
            std::set<std::string> resident;
            for (const auto& v : views) resident.insert(v.loop.resident_sessions.begin(), v.loop.resident_sessions.end());
            std::vector<std::shared_ptr<Session>> all = sessions_->list();
            for (const auto& e : execs) {
                if (e->session && !e->session->named) all.push_back(e->session);
            }
            const auto now = Clock::now();
            size_t active = 0;
            for (const auto& s : all) active += s->in_use ? 1 : 0;
            // The busiest first: running, then most turns, then most recent.
            std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
                if (a->in_use != b->in_use) return a->in_use > b->in_use;
                if (a->turns != b->turns) return a->turns > b->turns;
                return a->last_used() > b->last_used();
            });
            constexpr size_t kCap = 100;
            j["type"] = "sessions";
            j["count"] = all.size();
            j["active"] = active;
            j["idle"] = all.size() - active;
            j["named"] = sessions_->size();
            j["max_sessions"] = config_.backend.max_sessions;
            j["listed"] = std::min(all.size(), kCap);
            j["store"] = nullptr;
            if (store_) {
                const StoreReport r = store_->report();
                j["store"] = {{"dir", r.dir},
                              {"namespace", r.ns},
                              {"sync", r.sync},
                              {"bytes", r.bytes},
                              {"limit_bytes", r.limit_bytes},
                              {"kv_files", r.kv_files},
                              {"kv_bytes", r.kv_bytes},
                              {"writer_queued_bytes", r.writer_queued_bytes},
                              {"turns_stored", r.turns_stored},
                              {"turn_failures", r.turn_failures},
                              {"kv_written", r.kv_written},
                              {"kv_write_failures", r.kv_write_failures},
                              {"kv_skipped", r.kv_skipped},
                              {"kv_loaded", r.kv_loaded},
                              {"kv_rejected", r.kv_rejected},
                              {"sessions_removed", r.sessions_removed}};
            }
            j["sessions"] = ordered_json::array();
            for (size_t i = 0; i < all.size() && i < kCap; ++i) {
                const Session& s = *all[i];
                j["sessions"].push_back(
                    {{"id", s.id},
                     {"named", s.named},
                     {"active", s.in_use.load()},
                     {"turns", s.turns.load()},
                     {"tokens_held", s.tokens_held.load()},
                     {"kv_cached", resident.count(session_key(s)) > 0},
                     {"stored", s.store_id.load() != 0},
                     {"idle_ms", std::chrono::duration_cast<std::chrono::milliseconds>(now - s.last_used()).count()}});
            }
            break;
        }
        case StatusKind::performance: {
            j["type"] = "performance";
            j["usable_cpus"] = CpuArbiter::shared().cpus();
            j["cpu_turn_waits"] = CpuArbiter::shared().waits();
            j["cpu_turns_narrowed"] = CpuArbiter::shared().narrowed();
            j["models"] = ordered_json::array();
            for (const auto& v : views) j["models"].push_back(performance_json(v));
            break;
        }
        case StatusKind::model: {
            j["type"] = "model";
            j["library_version"] = library_version();
            j["llama_commit"] = llama_commit_value();
            j["llama_build_number"] = llama_build_number_value();
            j["graphs"] = ordered_json::array();
            for (const auto& v : views) j["graphs"].push_back(model_json(v));
            j["aliases"] = ordered_json::array();
            const std::shared_ptr<const Policy> policy = this->policy();
            for (const auto& [name, alias] : policy->models) {
                j["aliases"].push_back({{"name", name}, {"path", alias.path}});
            }
            j["policy"] = policy_json();
            // Over the whole process, models still finishing requests included.
            const LoadedCounts loaded = loaded_counts();
            j["process"] = {{"models_loaded", loaded.models}, {"decode_loops", loaded.loops}};
            break;
        }
    }
    *out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return Status::ok;
}

}  // namespace wnl
