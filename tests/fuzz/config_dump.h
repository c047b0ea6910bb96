// Every field of a Config as text, so that "unchanged" and "the same" are
// one string comparison, and the ranges apply_config_json promises.
#pragma once

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/config.h"

namespace wnl::fuzz {

inline std::string dump_model(const ModelConfig& m) {
    std::ostringstream o;
    o << std::setprecision(9) << m.n_gpu_layers << ' ' << m.main_gpu << ' ' << m.split_mode << " [";
    for (float f : m.tensor_split) o << f << ',';
    o << "] " << m.ctx_size << ' ' << m.batch_size << ' ' << m.ubatch_size << ' ' << m.threads << ' '
      << m.threads_batch << ' ' << m.use_mmap << m.use_mlock << ' ' << m.flash_attn << ' ' << m.cache_type_k << ' '
      << m.cache_type_v << " <" << m.chat_template << "> <" << m.system_prompt << "> [";
    for (const auto& s : m.rpc_servers) o << s << '|';
    o << "] " << static_cast<int>(m.mode);
    return o.str();
}

inline std::string dump_sampling(const SamplingConfig& s) {
    std::ostringstream o;
    o << std::setprecision(9) << s.temp << ' ' << s.top_k << ' ' << s.top_p << ' ' << s.min_p << ' ' << s.typical_p
      << ' ' << s.repeat_penalty << ' ' << s.presence_penalty << ' ' << s.frequency_penalty << ' ' << s.penalty_last_n
      << ' ' << s.mirostat << ' ' << s.mirostat_tau << ' ' << s.mirostat_eta << ' ' << s.seed << ' '
      << s.dry_multiplier << ' ' << s.dry_base << ' ' << s.dry_allowed_length << ' ' << s.dry_penalty_last_n << " [";
    for (const auto& b : s.dry_sequence_breakers) o << b << '|';
    o << "] " << s.xtc_probability << ' ' << s.xtc_threshold << ' ' << s.dynatemp_range << ' ' << s.dynatemp_exponent
      << " [";
    for (const auto& [t, b] : s.logit_bias) o << t << ':' << b << '|';
    o << "] <" << s.grammar << "> <" << s.json_schema << '>';
    return o.str();
}

inline std::string dump_stopping(const StoppingConfig& s) {
    std::ostringstream o;
    o << '[';
    for (const auto& x : s.stop) o << x.size() << ':' << x << '|';
    o << "] " << s.max_tokens << ' ' << s.max_time_ms << ' ' << s.ignore_eos;
    return o.str();
}

inline std::string dump_memory(const MemoryConfig& m) {
    std::ostringstream o;
    o << m.context_shifting << m.cache_prompt << ' ' << m.max_cache_tokens << ' ' << m.n_keep << ' '
      << m.host_cache_bytes << ' ' << m.max_rss_bytes;
    return o.str();
}

inline std::string dump_backend(const BackendConfig& b) {
    std::ostringstream o;
    o << b.max_sessions << ' ' << b.idle_timeout_ms << ' ' << b.auto_cleanup << ' ' << b.max_concurrent << ' '
      << b.queue_size << ' ' << b.default_task_timeout_ms << ' ' << b.priority_scheduling_enabled
      << b.fair_scheduling_enabled << ' ' << b.queue_warning_threshold << ' ' << b.queue_reject_threshold << " [";
    for (const auto& d : b.model_dirs) o << d << '|';
    o << ']';
    return o.str();
}

inline std::string dump_logging(const LoggingConfig& l) {
    std::ostringstream o;
    o << static_cast<int>(l.level) << " <" << l.file << "> " << l.json << " [";
    for (const auto& c : l.components) o << c << '|';
    o << "] " << l.llama_log << l.llama_debug_log << l.stream_stdout;
    return o.str();
}

inline std::string dump_request(const RequestConfig& r) {
    return std::to_string(static_cast<int>(r.priority)) + ' ' + std::to_string(r.timeout_ms);
}

inline std::string dump(const Config& c) {
    return dump_model(c.model) + '\n' + dump_sampling(c.sampling) + '\n' + dump_stopping(c.stopping) + '\n' +
           dump_memory(c.memory) + '\n' + dump_backend(c.backend) + '\n' + dump_logging(c.logging) + '\n' +
           dump_request(c.request);
}

// The first value outside what apply_config_json may produce, or "".
inline std::string range_violation(const Config& c) {
    auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
    auto finite_in = [](double x, double lo, double hi) { return std::isfinite(x) && x >= lo && x <= hi; };
    const double inf = std::numeric_limits<double>::infinity();
    const auto& m = c.model;
    if (m.n_gpu_layers < -1) return "n_gpu_layers < -1";
    if (m.main_gpu < 0) return "main_gpu < 0";
    if (m.split_mode != "none" && m.split_mode != "layer" && m.split_mode != "row") return "split_mode " + m.split_mode;
    if (m.tensor_split.size() > 16) return "tensor_split longer than 16";
    for (float f : m.tensor_split) {
        if (!finite_in(f, 0, inf)) return "tensor_split entry out of range";
    }
    if (m.ctx_size > (1u << 20)) return "ctx_size > 2^20";
    if (m.batch_size < 1 || m.batch_size > (1u << 20)) return "batch_size out of range";
    if (m.ubatch_size < 1 || m.ubatch_size > (1u << 20)) return "ubatch_size out of range";
    if (m.threads < 0 || m.threads > 1024 || m.threads_batch < 0 || m.threads_batch > 1024) return "threads";
    if (m.flash_attn != "on" && m.flash_attn != "off" && m.flash_attn != "auto") return "flash_attn " + m.flash_attn;
    for (const auto* t : {&m.cache_type_k, &m.cache_type_v}) {
        static const char* kTypes[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"};
        bool known = false;
        for (const char* k : kTypes) known = known || *t == k;
        if (!known) return "cache type " + *t;
    }
    if (has_nul(m.chat_template) || has_nul(m.system_prompt)) return "NUL in chat_template or system_prompt";
    for (const auto& s : m.rpc_servers) {
        if (s.empty() || has_nul(s)) return "empty rpc_servers entry";
    }
    const auto& s = c.sampling;
    if (!finite_in(s.temp, 0, inf)) return "temp";
    if (s.top_k < 0) return "top_k < 0";
    if (!finite_in(s.top_p, 0, 1) || !finite_in(s.min_p, 0, 1) || !finite_in(s.typical_p, 0, 1)) return "top_p/min_p/typical_p";
    if (!finite_in(s.repeat_penalty, 0, inf) || !std::isfinite(s.presence_penalty) ||
        !std::isfinite(s.frequency_penalty)) {
        return "penalties";
    }
    if (s.penalty_last_n < -1 || s.dry_penalty_last_n < -1 || s.dry_allowed_length < 0) return "last_n";
    if (s.mirostat < 0 || s.mirostat > 2) return "mirostat";
    if (!finite_in(s.mirostat_tau, 0, inf) || !finite_in(s.mirostat_eta, 0, inf)) return "mirostat tau/eta";
    if (s.seed < -1 || s.seed > 4294967295LL) return "seed";
    if (!finite_in(s.dry_multiplier, 0, inf) || !finite_in(s.dry_base, 0, inf)) return "dry";
    for (const auto& b : s.dry_sequence_breakers) {
        if (has_nul(b)) return "NUL in dry_sequence_breakers";
    }
    if (!finite_in(s.xtc_probability, 0, 1) || !finite_in(s.xtc_threshold, 0, 1)) return "xtc";
    if (!finite_in(s.dynatemp_range, 0, inf) || !finite_in(s.dynatemp_exponent, 0, inf)) return "dynatemp";
    for (const auto& [t, b] : s.logit_bias) {
        if (t < 0) return "logit_bias token < 0";
        if (std::isnan(b) || b == inf) return "logit_bias value NaN or +inf";
    }
    if (has_nul(s.grammar)) return "NUL in grammar";
    if (!s.json_schema.empty()) {
        auto j = nlohmann::json::parse(s.json_schema, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return "json_schema is not a JSON object";
    }
    const auto& st = c.stopping;
    for (size_t i = 0; i < st.stop.size(); ++i) {
        if (st.stop[i].empty()) return "empty stop string";
        if (has_nul(st.stop[i])) return "NUL in stop string";
        for (size_t j = 0; j < i; ++j) {
            if (st.stop[i] == st.stop[j]) return "duplicate stop string";
        }
    }
    if (st.max_tokens < -1) return "max_tokens < -1";
    if (st.max_time_ms < 0) return "max_time_ms < 0";
    const auto& mem = c.memory;
    if (mem.max_cache_tokens < 0 || mem.n_keep < -1) return "max_cache_tokens/n_keep";
    if (mem.host_cache_bytes > static_cast<uint64_t>(INT64_MAX) || mem.max_rss_bytes > static_cast<uint64_t>(INT64_MAX)) {
        return "host_cache_bytes/max_rss_bytes";
    }
    const auto& b = c.backend;
    if (b.max_sessions < 1 || b.idle_timeout_ms < 0 || b.max_concurrent < 1 || b.max_concurrent > 256 ||
        b.queue_size < 0 || b.default_task_timeout_ms < 0 || b.queue_warning_threshold < 0 ||
        b.queue_reject_threshold < 0) {
        return "backend limits";
    }
    for (const auto& d : b.model_dirs) {
        if (d.empty() || has_nul(d)) return "empty model_dirs entry";
    }
    const int level = static_cast<int>(c.logging.level);
    if (level < 0 || level > static_cast<int>(LogLevel::none)) return "log level";
    if (has_nul(c.logging.file)) return "NUL in log file";
    for (const auto& comp : c.logging.components) {
        if (comp.empty() || has_nul(comp)) return "empty log component";
    }
    const int prio = static_cast<int>(c.request.priority);
    if (prio < 0 || prio >= kPriorityCount) return "priority";
    if (c.request.timeout_ms < 0) return "timeout_ms < 0";
    return "";
}

}  // namespace wnl::fuzz
