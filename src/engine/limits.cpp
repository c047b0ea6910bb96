#include "engine/limits.h"

#include <algorithm>

#include "engine/config.h"
#include "engine/log.h"

namespace wnl {

namespace {

Status refuse(const std::string& key, const std::string& cap, int64_t value, int64_t limit, std::string* error) {
    *error = key + ": " + std::to_string(value) + " is over the cap " + cap + " (" + std::to_string(limit) + ")";
    log(LogLevel::warn, "limits", "refused: over a cap", {{"key", key}, {"cap", cap}, {"value", value}, {"limit", limit}});
    return Status::invalid_argument;
}

}  // namespace

Status check_request_limits(const Config& cfg, const Limits& caps, std::string* error) {
    const auto& stops = cfg.stopping.stop;
    if (static_cast<int64_t>(stops.size()) > caps.max_stop_strings) {
        return refuse("stop", "max_stop_strings", static_cast<int64_t>(stops.size()), caps.max_stop_strings, error);
    }
    int64_t stop_bytes = 0;
    for (const auto& s : stops) stop_bytes += static_cast<int64_t>(s.size());
    if (stop_bytes > caps.max_stop_bytes) {
        return refuse("stop", "max_stop_bytes", stop_bytes, caps.max_stop_bytes, error);
    }
    const auto& sampling = cfg.sampling;
    if (static_cast<int64_t>(sampling.grammar.size()) > caps.max_grammar_bytes) {
        return refuse("grammar", "max_grammar_bytes", static_cast<int64_t>(sampling.grammar.size()),
                      caps.max_grammar_bytes, error);
    }
    if (static_cast<int64_t>(sampling.json_schema.size()) > caps.max_grammar_bytes) {
        return refuse("json_schema", "max_grammar_bytes", static_cast<int64_t>(sampling.json_schema.size()),
                      caps.max_grammar_bytes, error);
    }
    if (cfg.stopping.max_tokens > caps.max_output_tokens) {
        return refuse("max_tokens", "max_output_tokens", cfg.stopping.max_tokens, caps.max_output_tokens, error);
    }
    if (caps.max_request_time_ms > 0 && cfg.stopping.max_time_ms > caps.max_request_time_ms) {
        return refuse("max_time_ms", "max_request_time_ms", cfg.stopping.max_time_ms, caps.max_request_time_ms,
                      error);
    }
    return Status::ok;
}

Status check_prompt_size(size_t bytes, const Limits& caps, const char* call) {
    if (static_cast<uint64_t>(bytes) <= static_cast<uint64_t>(caps.max_prompt_bytes)) return Status::ok;
    log(LogLevel::error, "limits", std::string(call) + ": prompt refused: over the cap max_prompt_bytes",
        {{"bytes", bytes}, {"max_prompt_bytes", caps.max_prompt_bytes}});
    return Status::invalid_argument;
}

int32_t effective_max_tokens(int32_t max_tokens, const Limits& caps) {
    return max_tokens < 0 ? caps.max_output_tokens : max_tokens;
}

int64_t effective_max_time_ms(int64_t max_time_ms, const Limits& caps) {
    if (caps.max_request_time_ms <= 0) return max_time_ms;
    return max_time_ms > 0 ? std::min(max_time_ms, caps.max_request_time_ms) : caps.max_request_time_ms;
}

}  // namespace wnl
