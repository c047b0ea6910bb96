// The key table of the config reader (SPEC §2): each canonical key, who may
// set it and the setter that checks its type and range; the other spellings
// guests use; which keys are sections.
#include <algorithm>
#include <exception>
#include <utility>

#include "engine/config_value.h"
#include "engine/log.h"

namespace wnl::config_detail {

namespace {

void set_flash_attn(Config& c, const Value& v) {
    std::string mode;
    if (v.v.is_boolean()) {
        mode = v.boolean() ? "on" : "off";
    } else if (v.v.is_number()) {
        int64_t n = v.integer(-1, 1);  // llama.cpp's own encoding: -1 auto, 0 off, 1 on
        mode = n < 0 ? "auto" : (n == 1 ? "on" : "off");
    } else {
        mode = v.choice({"on", "off", "auto", "enabled", "disabled"});
        if (mode == "enabled") mode = "on";
        if (mode == "disabled") mode = "off";
    }
    c.model.flash_attn = mode;
}

void set_tensor_split(Config& c, const Value& v) {
    std::vector<float> out;
    if (v.v.is_string()) {
        // "3,1" or llama.cpp's "3/1"; each part read as JSON so the host's
        // locale cannot change the decimal separator.
        for (const auto& part : split_list(v.string(), ",/")) {
            json n = json::parse(part, nullptr, false);
            if (!n.is_number()) v.fail("must be numbers separated by commas, got \"" + part + "\"");
            out.push_back(Value{v.key, n, v.doc}.real(0));
        }
    } else if (v.v.is_array()) {
        for (const auto& e : v.v) out.push_back(Value{v.key, e, v.doc}.real(0));
    } else {
        v.wrong_type("an array of numbers or a comma-separated string");
    }
    if (out.size() > kMaxTensorSplit) v.fail("at most " + std::to_string(kMaxTensorSplit) + " devices");
    c.model.tensor_split = std::move(out);
}

int32_t token_id_key(const Value& v, const std::string& s) {
    bool digits = !s.empty() && s.size() <= 10;
    for (char ch : s) digits = digits && ch >= '0' && ch <= '9';
    if (!digits || std::stoll(s) > kI32Max) v.fail("keys must be token ids (decimal integers), got \"" + s + "\"");
    return static_cast<int32_t>(std::stoll(s));
}

// llama.cpp's server takes false as "never emit this token".
float bias_value(const Value& v) {
    if (v.v.is_boolean()) {
        if (v.v.get<bool>()) v.fail("a bias of true has no meaning; use a number or false");
        return -std::numeric_limits<float>::infinity();
    }
    return v.real(-kInf, kInf);
}

void set_logit_bias(Config& c, const Value& v) {
    std::vector<std::pair<int32_t, float>> out;
    if (v.v.is_array()) {
        for (const auto& e : v.v) {
            if (!e.is_array() || e.size() != 2) v.fail("each entry must be [token_id, bias], got " + Value{v.key, e, v.doc}.describe());
            int32_t token = Value{v.key, e[0], v.doc}.int32(0);
            out.emplace_back(token, bias_value(Value{v.key, e[1], v.doc}));
        }
    } else if (v.v.is_object()) {
        for (const auto& item : v.v.items()) {
            int32_t token = token_id_key(v, item.key());
            out.emplace_back(token, bias_value(Value{v.key, item.value(), v.doc}));
        }
    } else {
        v.wrong_type("[[token_id, bias], ...] or {\"token_id\": bias}");
    }
    // Every entry costs work at every token, on the decode loop.
    if (out.size() > static_cast<size_t>(kMaxLogitBiasEntries)) {
        v.fail("at most " + std::to_string(kMaxLogitBiasEntries) + " entries, got " + std::to_string(out.size()));
    }
    c.sampling.logit_bias = std::move(out);
}

void set_json_schema(Config& c, const Value& v) {
    if (v.v.is_object()) {
        c.sampling.json_schema = v.v.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
        return;
    }
    if (!v.v.is_string()) v.wrong_type("a JSON Schema object or a string holding one");
    std::string text = v.string();
    if (is_blank(text)) {  // "no schema"
        c.sampling.json_schema.clear();
        return;
    }
    if (!nesting_within(text, kMaxNesting)) v.fail("nested deeper than " + std::to_string(kMaxNesting) + " levels");
    json schema = json::parse(text, nullptr, false);
    if (schema.is_discarded() || !schema.is_object()) v.fail("the string must hold a JSON Schema object");
    c.sampling.json_schema = schema.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

void set_level(Config& c, const Value& v) {
    std::string level = v.choice({"debug", "info", "warn", "warning", "error", "none", "off"});
    if (level == "debug") c.logging.level = LogLevel::debug;
    else if (level == "info") c.logging.level = LogLevel::info;
    else if (level == "warn" || level == "warning") c.logging.level = LogLevel::warn;
    else if (level == "error") c.logging.level = LogLevel::error;
    else c.logging.level = LogLevel::none;
}

void set_model_dirs(Config& c, const Value& v) {
    std::vector<std::string> dirs = v.strings();
    for (const auto& d : dirs) {
        if (d.empty()) v.fail("entries must be non-empty paths");
    }
    c.backend.model_dirs = std::move(dirs);
}


}  // namespace

using C = Config;
using V = const Value&;

const std::unordered_map<std::string, Setting>& settings() {
    static const std::unordered_map<std::string, Setting> table = {
        // model
        {"n_gpu_layers", {Group::model, [](C& c, V v) { c.model.n_gpu_layers = v.int32(-1); }}},
        {"main_gpu", {Group::model, [](C& c, V v) { c.model.main_gpu = v.int32(0); }}},
        {"split_mode", {Group::model, [](C& c, V v) { c.model.split_mode = v.choice({"none", "layer", "row"}); }}},
        {"tensor_split", {Group::model, set_tensor_split}},
        {"ctx_size", {Group::model, [](C& c, V v) { c.model.ctx_size = static_cast<uint32_t>(v.integer(0, 1 << 20)); }}},
        {"batch_size", {Group::model, [](C& c, V v) { c.model.batch_size = static_cast<uint32_t>(v.integer(1, 1 << 20)); }}},
        {"ubatch_size", {Group::model, [](C& c, V v) { c.model.ubatch_size = static_cast<uint32_t>(v.integer(1, 1 << 20)); }}},
        {"prefill_chunk", {Group::model, [](C& c, V v) { c.model.prefill_chunk = static_cast<uint32_t>(v.integer(0, 1 << 20)); }}},
        // -1 is llama.cpp's spelling of "auto"; we keep one spelling, 0.
        {"threads", {Group::model, [](C& c, V v) { c.model.threads = std::max(0, v.int32(-1, 1024)); }}},
        {"threads_batch", {Group::model, [](C& c, V v) { c.model.threads_batch = std::max(0, v.int32(-1, 1024)); }}},
        {"use_mmap", {Group::model, [](C& c, V v) { c.model.use_mmap = v.boolean(); }}},
        {"use_mlock", {Group::model, [](C& c, V v) { c.model.use_mlock = v.boolean(); }}},
        {"flash_attn", {Group::model, set_flash_attn}},
        {"cache_type_k", {Group::model, [](C& c, V v) {
             c.model.cache_type_k = v.choice({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"});
         }}},
        {"cache_type_v", {Group::model, [](C& c, V v) {
             c.model.cache_type_v = v.choice({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"});
         }}},
        {"chat_template", {Group::model, [](C& c, V v) { c.model.chat_template = v.string(); }}},
        {"system_prompt", {Group::model, [](C& c, V v) { c.model.system_prompt = v.string(); }}},
        {"rpc_servers", {Group::model, [](C& c, V v) { c.model.rpc_servers = v.list(); }}},
        {"force", {Group::model, [](C& c, V v) { c.model.swap_force = v.boolean(); }}},

        // sampling
        {"temp", {Group::sampling, [](C& c, V v) { c.sampling.temp = v.real(0); }}},
        // llama.cpp treats top_k <= 0 as "whole vocabulary"; 0 is our one spelling.
        {"top_k", {Group::sampling, [](C& c, V v) { c.sampling.top_k = std::max(0, v.int32(-kI32Max - 1)); }}},
        {"top_p", {Group::sampling, [](C& c, V v) { c.sampling.top_p = v.real(0, 1); }}},
        {"min_p", {Group::sampling, [](C& c, V v) { c.sampling.min_p = v.real(0, 1); }}},
        {"typical_p", {Group::sampling, [](C& c, V v) { c.sampling.typical_p = v.real(0, 1); }}},
        {"repeat_penalty", {Group::sampling, [](C& c, V v) { c.sampling.repeat_penalty = v.real(0); }}},
        {"presence_penalty", {Group::sampling, [](C& c, V v) { c.sampling.presence_penalty = v.real(-kInf); }}},
        {"frequency_penalty", {Group::sampling, [](C& c, V v) { c.sampling.frequency_penalty = v.real(-kInf); }}},
        {"penalty_last_n", {Group::sampling, [](C& c, V v) { c.sampling.penalty_last_n = v.int32(-1); }}},
        {"mirostat", {Group::sampling, [](C& c, V v) { c.sampling.mirostat = v.int32(0, 2); }}},
        {"mirostat_tau", {Group::sampling, [](C& c, V v) { c.sampling.mirostat_tau = v.real(0); }}},
        {"mirostat_eta", {Group::sampling, [](C& c, V v) { c.sampling.mirostat_eta = v.real(0); }}},
        {"seed", {Group::sampling, [](C& c, V v) { c.sampling.seed = v.integer(-1, 4294967295LL); }}},
        {"dry_multiplier", {Group::sampling, [](C& c, V v) { c.sampling.dry_multiplier = v.real(0); }}},
        {"dry_base", {Group::sampling, [](C& c, V v) { c.sampling.dry_base = v.real(0); }}},
        {"dry_allowed_length", {Group::sampling, [](C& c, V v) { c.sampling.dry_allowed_length = v.int32(0); }}},
        {"dry_penalty_last_n", {Group::sampling, [](C& c, V v) { c.sampling.dry_penalty_last_n = v.int32(-1); }}},
        // Each breaker costs a pass over the whole vocabulary when the sampler is built.
        {"dry_sequence_breakers", {Group::sampling, [](C& c, V v) {
             auto breakers = v.strings();
             if (breakers.size() > static_cast<size_t>(kMaxDrySequenceBreakers)) {
                 v.fail("at most " + std::to_string(kMaxDrySequenceBreakers) + " entries, got " +
                        std::to_string(breakers.size()));
             }
             c.sampling.dry_sequence_breakers = std::move(breakers);
         }}},
        {"xtc_probability", {Group::sampling, [](C& c, V v) { c.sampling.xtc_probability = v.real(0, 1); }}},
        {"xtc_threshold", {Group::sampling, [](C& c, V v) { c.sampling.xtc_threshold = v.real(0, 1); }}},
        {"dynatemp_range", {Group::sampling, [](C& c, V v) { c.sampling.dynatemp_range = v.real(0); }}},
        {"dynatemp_exponent", {Group::sampling, [](C& c, V v) { c.sampling.dynatemp_exponent = v.real(0); }}},
        {"logit_bias", {Group::sampling, set_logit_bias}},
        {"grammar", {Group::sampling, [](C& c, V v) {
             std::string g = v.string();
             // llama.cpp's sampler aborts the process on these without llguidance.
             if (g.compare(0, 11, "%llguidance") == 0) {
                 v.fail("llguidance grammars (%llguidance) are not supported by this build; use GBNF");
             }
             c.sampling.grammar = std::move(g);
         }}},
        {"json_schema", {Group::sampling, set_json_schema}},

        // stopping
        {"stop", {Group::stopping, [](C&, V v) {
             auto items = v.strings();
             if (!v.doc.stop) v.doc.stop.emplace();
             v.doc.stop->insert(v.doc.stop->end(), items.begin(), items.end());
         }}},
        {"reverse_prompt", {Group::stopping, [](C&, V v) {
             auto items = v.strings();
             v.doc.extra_stops.insert(v.doc.extra_stops.end(), items.begin(), items.end());
         }}},
        {"max_tokens", {Group::stopping, [](C& c, V v) { c.stopping.max_tokens = v.int32(-1); }}},
        {"max_time_ms", {Group::stopping, [](C& c, V v) { c.stopping.max_time_ms = v.integer(0, kI64Max); }}},
        {"ignore_eos", {Group::stopping, [](C& c, V v) { c.stopping.ignore_eos = v.boolean(); }}},

        // memory
        {"context_shifting", {Group::memory, [](C& c, V v) { c.memory.context_shifting = v.boolean(); }}},
        {"cache_prompt", {Group::memory, [](C& c, V v) { c.memory.cache_prompt = v.boolean(); }}},
        {"max_cache_tokens", {Group::memory, [](C& c, V v) { c.memory.max_cache_tokens = v.integer(0, kI64Max); }}},
        {"n_keep", {Group::memory, [](C& c, V v) { c.memory.n_keep = v.int32(-1); }}},
        {"host_cache_bytes", {Group::memory, [](C& c, V v) {
             c.memory.host_cache_bytes = static_cast<uint64_t>(v.integer(0, kI64Max));
         }}},
        {"max_rss_bytes", {Group::memory, [](C& c, V v) {
             c.memory.max_rss_bytes = static_cast<uint64_t>(v.integer(0, kI64Max));
         }}},

        // backend
        {"max_sessions", {Group::backend, [](C& c, V v) { c.backend.max_sessions = v.int32(1); }}},
        {"idle_timeout_ms", {Group::backend, [](C& c, V v) { c.backend.idle_timeout_ms = v.integer(0, kI64Max); }}},
        {"auto_cleanup", {Group::backend, [](C& c, V v) { c.backend.auto_cleanup = v.boolean(); }}},
        {"max_concurrent", {Group::backend, [](C& c, V v) { c.backend.max_concurrent = v.int32(1, 256); }}},
        {"queue_size", {Group::backend, [](C& c, V v) { c.backend.queue_size = v.int32(0); }}},
        {"default_task_timeout_ms", {Group::backend, [](C& c, V v) {
             c.backend.default_task_timeout_ms = v.integer(0, kI64Max);
         }}},
        {"priority_scheduling_enabled", {Group::backend, [](C& c, V v) {
             c.backend.priority_scheduling_enabled = v.boolean();
         }}},
        {"fair_scheduling_enabled", {Group::backend, [](C& c, V v) { c.backend.fair_scheduling_enabled = v.boolean(); }}},
        {"queue_warning_threshold", {Group::backend, [](C& c, V v) { c.backend.queue_warning_threshold = v.int32(0); }}},
        {"queue_reject_threshold", {Group::backend, [](C& c, V v) { c.backend.queue_reject_threshold = v.int32(0); }}},
        {"model_dirs", {Group::backend, set_model_dirs}},
        // Host-only: threads/threads_batch as asked, above the usable CPUs too.
        {"threads_exact", {Group::backend, [](C& c, V v) { c.backend.threads_exact = v.boolean(); }}},
        // caps on one guest (limits.h); a graph or request config cannot widen them
        {"max_graphs", {Group::limits, [](C& c, V v) { c.limits.max_graphs = v.int32(1, 65536); }}},
        {"max_llama_contexts", {Group::limits, [](C& c, V v) { c.limits.max_llama_contexts = v.int32(1, 1024); }}},
        {"max_exec_contexts", {Group::limits, [](C& c, V v) { c.limits.max_exec_contexts = v.int32(1, 1 << 20); }}},
        {"max_stop_strings", {Group::limits, [](C& c, V v) { c.limits.max_stop_strings = v.int32(0, 65536); }}},
        {"max_stop_bytes", {Group::limits, [](C& c, V v) { c.limits.max_stop_bytes = v.integer(0, 1 << 24); }}},
        {"max_grammar_bytes", {Group::limits, [](C& c, V v) { c.limits.max_grammar_bytes = v.integer(0, 1 << 24); }}},
        {"max_prompt_bytes", {Group::limits, [](C& c, V v) { c.limits.max_prompt_bytes = v.integer(1, 1 << 24); }}},
        {"max_output_tokens", {Group::limits, [](C& c, V v) { c.limits.max_output_tokens = v.int32(1); }}},
        {"max_request_time_ms", {Group::limits, [](C& c, V v) { c.limits.max_request_time_ms = v.integer(0, kI64Max); }}},
        {"max_embedding_inputs", {Group::limits, [](C& c, V v) { c.limits.max_embedding_inputs = v.int32(1, 65536); }}},
        {"max_embedding_tokens", {Group::limits, [](C& c, V v) { c.limits.max_embedding_tokens = v.integer(1, int64_t{1} << 30); }}},
        {"max_embedding_values", {Group::limits, [](C& c, V v) { c.limits.max_embedding_values = v.integer(1, int64_t{1} << 32); }}},
        {"guest_paths", {Group::backend, [](C& c, V v) { c.backend.guest_paths = v.boolean(); }}},
        {"share_kv", {Group::backend, [](C& c, V v) {
             c.backend.share_kv_process = v.choice({"tenant", "process"}) == "process";
         }}},
        // Read by Backend::create (policy.h); kept as text until then.
        {"policy", {Group::backend, [](C& c, V v) {
             if (!v.v.is_object()) v.wrong_type("an object");
             c.backend.policy = v.v.dump();
         }}},
        // Durable sessions (docs/sessions.md); host-only (guest_rules.cpp).
        {"session_store", {Group::backend, [](C& c, V v) { c.backend.session_store = v.string(); }}},
        {"session_namespace", {Group::backend, [](C& c, V v) {
             std::string ns = v.string();
             if (ns.empty() || ns.size() > 128) v.fail("must be 1 to 128 bytes, got " + std::to_string(ns.size()));
             c.backend.session_namespace = std::move(ns);
         }}},
        {"session_store_bytes", {Group::backend, [](C& c, V v) {
             const int64_t n = v.integer(0, kI64Max);
             if (n != 0 && n < (1 << 20)) v.fail("must be 0 (no bound) or at least 1048576 (1 MiB), got " + v.describe());
             c.backend.session_store_bytes = static_cast<uint64_t>(n);
         }}},
        {"session_sync", {Group::backend, [](C& c, V v) {
             c.backend.session_sync_full = v.choice({"normal", "full"}) == "full";
         }}},

        // logging
        {"level", {Group::logging, set_level}},
        {"file", {Group::logging, [](C& c, V v) { c.logging.file = v.string(); }}},
        {"format", {Group::logging, [](C& c, V v) { c.logging.json = v.choice({"text", "json"}) == "json"; }}},
        {"json", {Group::logging, [](C& c, V v) { c.logging.json = v.boolean(); }}},
        {"components", {Group::logging, [](C& c, V v) { c.logging.components = v.list(); }}},
        {"llama_log", {Group::logging, [](C& c, V v) { c.logging.llama_log = v.boolean(); }}},
        // Debug lines from llama.cpp are logged at our debug level, so asking
        // for them lowers the level too.
        {"llama_debug_log", {Group::logging, [](C& c, V v) {
             c.logging.llama_debug_log = v.boolean();
             if (c.logging.llama_debug_log) c.logging.level = LogLevel::debug;
         }}},
        {"stream_stdout", {Group::logging, [](C& c, V v) { c.logging.stream_stdout = v.boolean(); }}},

        // per request
        {"mode", {Group::request, [](C& c, V v) {
             std::string m = v.choice({"chat", "completion", "auto"});
             c.model.mode = m == "chat" ? PromptMode::chat
                          : m == "completion" ? PromptMode::completion
                                              : PromptMode::automatic;
         }}},
        {"priority", {Group::request, [](C& c, V v) {
             std::string p = v.choice({"high", "normal", "low"});
             c.request.priority = p == "high" ? Priority::high : p == "low" ? Priority::low : Priority::normal;
         }}},
        {"timeout_ms", {Group::request, [](C& c, V v) { c.request.timeout_ms = v.integer(0, kI64Max); }}},

        // embeddings
        {"embedding", {Group::embedding_mode, [](C& c, V v) { c.embedding.enabled = v.boolean(); }}},
        {"reranking", {Group::embedding_mode, [](C& c, V v) { c.embedding.reranking = v.boolean(); }}},
        {"pooling_type", {Group::embedding_mode, [](C& c, V v) {
             c.embedding.pooling = v.choice({"none", "mean", "cls", "last", "rank"});
         }}},
        {"embed_batch_tokens", {Group::embedding_mode, [](C& c, V v) {
             c.embedding.batch_tokens = static_cast<uint32_t>(v.integer(1, 1 << 20));
         }}},
        // llama.cpp's and WasmEdge's meaning; > 2 is a p-norm.
        {"embd_normalize", {Group::embedding, [](C& c, V v) { c.embedding.normalize = v.int32(-1, 1000); }}},
        {"truncate", {Group::embedding, [](C& c, V v) { c.embedding.truncate = v.boolean(); }}},
    };
    return table;
}

// Other spellings guests use, after hyphens became underscores.
const std::unordered_map<std::string, std::string>& aliases() {
    static const std::unordered_map<std::string, std::string> table = {
        {"n_ctx", "ctx_size"},
        {"n_batch", "batch_size"},
        {"n_ubatch", "ubatch_size"},
        {"n_threads", "threads"},
        {"n_threads_batch", "threads_batch"},
        {"ngl", "n_gpu_layers"},
        {"mmap", "use_mmap"},
        {"mlock", "use_mlock"},
        {"temperature", "temp"},
        {"typical", "typical_p"},
        {"repetition_penalty", "repeat_penalty"},
        {"repeat_last_n", "penalty_last_n"},
        {"n_predict", "max_tokens"},
        {"antiprompt", "reverse_prompt"},
        {"max_cache_bytes", "host_cache_bytes"},
        {"cache_ram_bytes", "host_cache_bytes"},
        {"allowed_model_dirs", "model_dirs"},
        {"model_allowlist", "model_dirs"},
        {"log_level", "level"},
        {"log_file", "file"},
        {"log_format", "format"},
        {"enable_log", "llama_log"},
        {"enable_debug_log", "llama_debug_log"},
        {"embeddings", "embedding"},
        {"rerank", "reranking"},
        {"pooling", "pooling_type"},
    };
    return table;
}

bool is_section(const std::string& key) {
    return key == "model" || key == "sampling" || key == "stopping" || key == "memory" || key == "backend" ||
           key == "logging" || key == "runtime";
}

std::string canonical_key(const std::string& raw) {
    std::string key = raw;
    for (char& ch : key) {
        if (ch == '-') ch = '_';
    }
    auto it = aliases().find(key);
    return it == aliases().end() ? key : it->second;
}

}  // namespace wnl::config_detail
