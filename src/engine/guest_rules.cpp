// The host-only keys and the ceiling table. Adding a cap is one row in
// kCeilings (from_host: the host's own value is the guest's ceiling).
#include "engine/guest_rules.h"

#include <algorithm>

#include "engine/chat_format.h"
#include "engine/cpu_budget.h"

namespace wnl {

namespace {

// Keys that open files or sockets, widen what a guest may reach, or belong
// to the host's policy. Canonical spellings (after aliases and hyphens).
constexpr const char* kHostOnly[] = {
    "rpc_servers",          // opens TCP connections to where the value says
    "model_dirs",           // the allow-list itself
    "guest_paths",          // whether guests may name paths at all
    "file",                 // the log file: opened for writing
    "share_kv",             // whether tenants share KV prefixes
    // More threads than the CPUs, never narrowed for a busy host: one
    // guest's graph would make a loop other guests share (and the host's
    // other work) collapse.
    "threads_exact",
    "policy", "models", "ceilings",  // the policy's own sections
    // Durable sessions (docs/sessions.md): a directory written to, whose
    // sessions are whose in it, its disk bound and how hard it syncs.
    "session_store", "session_namespace", "session_store_bytes", "session_sync",
};

struct CeilingRule {
    const char* key;
    // The ceiling is the host's own value of the key (a cap), not an entry
    // of GuestLimits::ceilings.
    bool from_host;
    int64_t (*get)(const Config&);
    // The value that means "no limit" (or "as many as there are"), and what
    // it becomes under a ceiling. Null when the key has no such value.
    bool (*unlimited)(const Config&);
    void (*bound)(Config&, int64_t ceiling);
};

int64_t threads_now(const Config& c) { return c.model.threads > 0 ? c.model.threads : usable_cpus(); }

// The crash-proofing caps (max_graphs, max_exec_contexts, max_prompt_bytes,
// max_output_tokens, max_request_time_ms, ...) belong here as from_host rows.
const CeilingRule kCeilings[] = {
    {"ctx_size", false, [](const Config& c) -> int64_t { return c.model.ctx_size; },
     [](const Config& c) { return c.model.ctx_size == 0; },
     // 0 is "the model's own, at most 4096": the loop applies the ceiling
     // once the model is known.
     [](Config& c, int64_t n) { c.model.ctx_limit = static_cast<uint32_t>(n); }},
    {"max_concurrent", false, [](const Config& c) -> int64_t { return c.backend.max_concurrent; }, nullptr, nullptr},
    {"threads", false, [](const Config& c) -> int64_t { return c.model.threads; },
     [](const Config& c) { return c.model.threads == 0; },
     [](Config& c, int64_t n) { c.model.threads = static_cast<int32_t>(std::min<int64_t>(usable_cpus(), n)); }},
    {"threads_batch", false, [](const Config& c) -> int64_t { return c.model.threads_batch; },
     [](const Config& c) { return c.model.threads_batch == 0; },
     [](Config& c, int64_t n) { c.model.threads_batch = static_cast<int32_t>(std::min(threads_now(c), n)); }},
    {"batch_size", false, [](const Config& c) -> int64_t { return c.model.batch_size; }, nullptr, nullptr},
    {"ubatch_size", false, [](const Config& c) -> int64_t { return c.model.ubatch_size; }, nullptr, nullptr},
    {"host_cache_bytes", false, [](const Config& c) -> int64_t { return static_cast<int64_t>(c.memory.host_cache_bytes); },
     nullptr, nullptr},
    {"max_time_ms", false, [](const Config& c) -> int64_t { return c.stopping.max_time_ms; },
     [](const Config& c) { return c.stopping.max_time_ms == 0; },
     [](Config& c, int64_t n) { c.stopping.max_time_ms = n; }},
    {"max_tokens", false, [](const Config& c) -> int64_t { return c.stopping.max_tokens; },
     [](const Config& c) { return c.stopping.max_tokens < 0; },
     [](Config& c, int64_t n) { c.stopping.max_tokens = static_cast<int32_t>(n); }},
    // Caps: the host's value bounds the guest's.
    {"max_sessions", true, [](const Config& c) -> int64_t { return c.backend.max_sessions; }, nullptr, nullptr},
    {"max_rss_bytes", true, [](const Config& c) -> int64_t { return static_cast<int64_t>(c.memory.max_rss_bytes); },
     [](const Config& c) { return c.memory.max_rss_bytes == 0; },
     [](Config& c, int64_t n) { c.memory.max_rss_bytes = static_cast<uint64_t>(n); }},
};

}  // namespace

std::map<std::string, int64_t> GuestLimits::default_ceilings() {
    return {
        {"ctx_size", 32768},
        {"max_concurrent", 64},
        {"batch_size", 8192},
        {"ubatch_size", 2048},
        {"host_cache_bytes", int64_t{1} << 30},
    };
}

std::string host_only_reason(const std::string& key, const std::string* text) {
    for (const char* k : kHostOnly) {
        if (key == k) return key + ": host-only key; only the host's policy or init_backend_with_config may set it";
    }
    // A Jinja template is code the template engine runs; built-in names are
    // llama.cpp's own formatters.
    if (key == "chat_template" && text && !text->empty() && !is_builtin_chat_template(*text)) {
        return "chat_template: host-only key when it holds a Jinja template (a policy alias may set one); guests "
               "may name a built-in template such as chatml or llama3";
    }
    return "";
}

bool is_ceiling_key(const std::string& key) {
    for (const auto& r : kCeilings) {
        if (!r.from_host && key == r.key) return true;
    }
    return false;
}

std::vector<std::string> ceiling_keys() {
    std::vector<std::string> out;
    for (const auto& r : kCeilings) {
        if (!r.from_host) out.emplace_back(r.key);
    }
    return out;
}

bool enforce_ceilings(const std::set<std::string>& named, const Config& below, Config& cfg,
                      const GuestLimits& limits, std::string* error) {
    for (const auto& r : kCeilings) {
        int64_t ceiling = 0;
        if (r.from_host) {
            if (r.unlimited && r.unlimited(below)) continue;  // the host set no bound
            ceiling = r.get(below);
        } else {
            auto it = limits.ceilings.find(r.key);
            if (it == limits.ceilings.end()) continue;
            ceiling = it->second;
        }
        if (r.unlimited && r.unlimited(cfg)) {
            r.bound(cfg, ceiling);
            continue;
        }
        if (named.count(r.key) && r.get(cfg) > ceiling) {
            *error = std::string(r.key) + ": " + std::to_string(r.get(cfg)) + " is above the host's ceiling of " +
                     std::to_string(ceiling);
            return false;
        }
    }
    // An embedding graph decodes each input whole, in one ubatch of
    // max(batch_size, ctx_size) tokens (loop_embed.cpp): there the
    // ubatch_size ceiling bounds both.
    auto ub = limits.ceilings.find("ubatch_size");
    if ((cfg.embedding.enabled || cfg.embedding.reranking) && ub != limits.ceilings.end()) {
        const int64_t ceiling = ub->second;
        const std::pair<const char*, int64_t> sizes[] = {{"ctx_size", cfg.model.ctx_size},
                                                          {"batch_size", cfg.model.batch_size}};
        for (const auto& [key, value] : sizes) {
            if (named.count(key) && value > ceiling) {
                *error = std::string(key) + ": " + std::to_string(value) +
                         " is above the host's ceiling of " + std::to_string(ceiling) +
                         " (ubatch_size: an embedding graph decodes each input in one ubatch)";
                return false;
            }
        }
        if (cfg.model.ctx_size == 0) {
            const auto c = static_cast<uint32_t>(ceiling);
            cfg.model.ctx_limit = cfg.model.ctx_limit > 0 ? std::min(cfg.model.ctx_limit, c) : c;
        }
    }
    return true;
}

}  // namespace wnl
