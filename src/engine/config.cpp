// The JSON reader for Config (SPEC §2). One table maps each canonical key to
// a setter that checks type and range; aliases and hyphenated spellings are
// rewritten to a canonical key first, and sections are only descended into.
#include "engine/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/guest_rules.h"
#include "engine/log.h"

namespace wnl {

const char* priority_name(Priority p) {
    switch (p) {
        case Priority::high: return "high";
        case Priority::normal: return "normal";
        case Priority::low: return "low";
    }
    return "unknown";
}

const char* log_level_name(LogLevel l) {
    switch (l) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
        case LogLevel::none: return "none";
    }
    return "unknown";
}

namespace {

// Objects keep the guest's key order, so "last one wins" follows the
// document rather than alphabetical order (enable-debug-log then level, say).
using json = nlohmann::ordered_json;

// Documents deeper than this are refused before parsing: json_schema is
// serialised and later converted to a grammar by recursive code, and section
// descent recurses too.
constexpr int kMaxNesting = 64;

// llama.cpp's llama_max_devices(); a longer tensor_split could not be passed.
constexpr size_t kMaxTensorSplit = 16;

constexpr int64_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Thrown by a setter and caught in apply_config_json; never escapes it.
struct ConfigError {
    std::string message;
};

bool nesting_within(std::string_view text, int limit) {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (char ch : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (ch == '\\') {
                escaped = true;
            } else if (ch == '"') {
                in_string = false;
            }
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > limit) return false;
        } else if (ch == ']' || ch == '}') {
            --depth;
        }
    }
    return true;
}

bool is_blank(std::string_view text) {
    for (char ch : text) {
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n' && ch != '\f' && ch != '\v') return false;
    }
    return true;
}

std::string ascii_lower(std::string s) {
    for (char& ch : s) {
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    return s;
}

std::string trim(std::string_view s) {
    size_t b = 0;
    size_t e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return std::string(s.substr(b, e - b));
}

std::vector<std::string> split_list(std::string_view s, std::string_view separators) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t end = s.find_first_of(separators, start);
        if (end == std::string_view::npos) end = s.size();
        std::string item = trim(s.substr(start, end - start));
        if (!item.empty()) out.push_back(std::move(item));
        start = end + 1;
    }
    return out;
}

// Stop strings interact across keys: the first "stop" in a document replaces
// the layer below's list, while reverse_prompt/antiprompt (WasmEdge) append
// to whatever the list ends up being. Collected here, written at the end.
struct DocState {
    std::optional<std::vector<std::string>> stop;
    std::vector<std::string> extra_stops;
    const GuestLimits* guest = nullptr;  // the document is a guest's
    std::set<std::string> named;  // canonical keys the document set

    void finish(Config& cfg) const {
        if (!stop && extra_stops.empty()) return;
        std::vector<std::string> out;
        // A guest may send a very long list: a hash set keeps this linear
        // (the count is capped later, by check_request_limits).
        std::unordered_set<std::string> seen;
        auto add = [&out, &seen](const std::string& s) {
            if (s.empty()) return;  // would match everywhere
            if (seen.insert(s).second) out.push_back(s);
        };
        for (const auto& s : stop ? *stop : cfg.stopping.stop) add(s);
        for (const auto& s : extra_stops) add(s);
        cfg.stopping.stop = std::move(out);
    }
};

// One setting as the document gives it, with checked conversions. Every
// failure names the key as the guest spelled it.
struct Value {
    const std::string& key;
    const json& v;
    DocState& doc;

    [[noreturn]] void fail(const std::string& what) const { throw ConfigError{key + ": " + what}; }

    std::string describe() const {
        if (v.is_array() || v.is_object()) return std::string("an ") + v.type_name();
        std::string s = v.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
        if (s.size() > 48) s = s.substr(0, 45) + "...";
        return s;
    }

    [[noreturn]] void wrong_type(const std::string& expected) const {
        fail("must be " + expected + ", got " + describe());
    }

    [[noreturn]] void out_of_range(const std::string& lo, const std::string& hi, bool bounded) const {
        if (bounded) fail("must be between " + lo + " and " + hi + ", got " + describe());
        fail("must be at least " + lo + ", got " + describe());
    }

    // A JSON integer, or a float with an integral value (2048.0).
    int64_t integer(int64_t lo, int64_t hi) const {
        const bool bounded = hi != kI32Max && hi != kI64Max;
        auto range = [&] { out_of_range(std::to_string(lo), std::to_string(hi), bounded); };
        int64_t x = 0;
        if (v.is_number_unsigned()) {
            auto u = v.get<uint64_t>();
            if (u > static_cast<uint64_t>(kI64Max)) range();
            x = static_cast<int64_t>(u);
        } else if (v.is_number_integer()) {
            x = v.get<int64_t>();
        } else if (v.is_number_float()) {
            double d = v.get<double>();
            if (!(d == std::trunc(d))) wrong_type("an integer");
            // Outside ±9e18 the cast below would be undefined.
            if (!(d >= -9.0e18 && d <= 9.0e18)) range();
            x = static_cast<int64_t>(d);
        } else {
            wrong_type("an integer");
        }
        if (x < lo || x > hi) range();
        return x;
    }

    int32_t int32(int64_t lo, int64_t hi = kI32Max) const { return static_cast<int32_t>(integer(lo, hi)); }

    double number(double lo, double hi) const {
        if (!v.is_number()) wrong_type("a number");
        double d = v.get<double>();
        auto fmt = [](double x) {
            std::string s = json(x).dump();
            if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
            return s;
        };
        if (!std::isfinite(d)) fail("must be a finite number, got " + describe());
        if (d < lo || d > hi) out_of_range(fmt(lo), fmt(hi), std::isfinite(hi));
        return d;
    }

    float real(double lo, double hi = kInf) const {
        double d = number(lo, hi);
        if (std::fabs(d) > std::numeric_limits<float>::max()) fail("out of range, got " + describe());
        return static_cast<float>(d);
    }

    // WasmEdge guests sometimes send 0/1 for booleans.
    bool boolean() const {
        if (v.is_boolean()) return v.get<bool>();
        if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) return v.get<int64_t>() == 1;
        wrong_type("a boolean");
    }

    // NULs are refused: everything below hands these to C APIs and paths.
    std::string string() const {
        if (!v.is_string()) wrong_type("a string");
        const auto& s = v.get_ref<const std::string&>();
        if (s.find('\0') != std::string::npos) fail("must not contain NUL characters");
        return s;
    }

    // Case-insensitive; returns the option as listed.
    std::string choice(std::initializer_list<const char*> options) const {
        std::string got = ascii_lower(string());
        std::string listed;
        for (const char* o : options) {
            if (got == o) return got;
            listed += listed.empty() ? "" : ", ";
            listed += o;
        }
        fail("must be one of " + listed + ", got " + describe());
    }

    // A string (one item) or an array of strings.
    std::vector<std::string> strings() const {
        std::vector<std::string> out;
        if (v.is_string()) {
            out.push_back(string());
        } else if (v.is_array()) {
            for (const auto& e : v) out.push_back(Value{key, e, doc}.string());
        } else {
            wrong_type("a string or an array of strings");
        }
        return out;
    }

    // An array of strings or one comma-separated string; blanks dropped.
    std::vector<std::string> list() const {
        if (v.is_string()) return split_list(string(), ",");
        std::vector<std::string> out;
        for (auto& s : strings()) {
            s = trim(s);
            if (!s.empty()) out.push_back(std::move(s));
        }
        return out;
    }
};

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

// Who may change a key. Only sampling, stopping and request keys may change
// per request: the rest shape a loaded model or the whole backend.
// limits: the caps of limits.h, read from the backend context's config only.
// embedding_mode keys are read per request too, so that a request asking for
// another kind of graph than the one it runs on is refused by the backend
// (check_graph_kind) rather than ignored.
enum class Group { model, sampling, stopping, memory, backend, logging, request, limits, embedding, embedding_mode };

bool per_request(Group g) {
    return g == Group::sampling || g == Group::stopping || g == Group::request || g == Group::embedding ||
           g == Group::embedding_mode;
}

using Setter = void (*)(Config&, const Value&);

struct Setting {
    Group group;
    Setter set;
};

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

void apply_object(const json& obj, ConfigScope scope, Config& cfg, DocState& doc) {
    for (const auto& item : obj.items()) {
        const std::string& raw = item.key();
        const json& value = item.value();
        const std::string key = canonical_key(raw);
        if (value.is_object() && is_section(key)) {
            apply_object(value, scope, cfg, doc);
            continue;
        }
        if (doc.guest) {
            std::string reason = host_only_reason(key, value.is_string() ? &value.get_ref<const std::string&>() : nullptr);
            if (!reason.empty()) throw ConfigError{raw == key ? reason : raw + " (" + reason + ")"};
        }
        auto it = settings().find(key);
        if (it == settings().end()) {
            log(LogLevel::warn, "config", "unknown key ignored", {{"key", raw}});
            continue;
        }
        if (scope != ConfigScope::backend && it->second.group == Group::limits) {
            log(LogLevel::warn, "config", "cap ignored: set only in the backend context's config", {{"key", raw}});
            continue;
        }
        if (scope == ConfigScope::request && !per_request(it->second.group)) {
            log(LogLevel::warn, "config", "key not applicable per request; ignored", {{"key", raw}});
            continue;
        }
        // JSON APIs commonly send null for "not set" (OpenAI clients: "stop": null).
        if (value.is_null()) {
            log(LogLevel::debug, "config", "null value ignored", {{"key", raw}});
            continue;
        }
        it->second.set(cfg, Value{raw, value, doc});
        doc.named.insert(key);
    }
}

// The parser's message without its "[json.exception.parse_error.101] " tag.
std::string parse_error_text(const char* what) {
    std::string s = what;
    size_t tag_end = s.find("] ");
    return tag_end == std::string::npos ? s : s.substr(tag_end + 2);
}

}  // namespace

Status apply_config_json(std::string_view text, ConfigScope scope, Config& cfg, std::string* error,
                         const GuestLimits* guest) {
    // Called from catch handlers, so it must not throw itself.
    auto reject = [error](Status status, const std::string& message) noexcept {
        try {
            if (error) *error = message;
            log(LogLevel::warn, "config", "config rejected", {{"error", message}});
        } catch (...) {
        }
        return status;
    };
    try {
        // C-string semantics: the length may count a trailing NUL, and
        // anything after a NUL is padding (the JSON parser stops there too).
        text = text.substr(0, text.find('\0'));
        if (is_blank(text)) {
            if (!guest) return Status::ok;
            text = "{}";  // a guest's blank document is still bounded by the ceilings
        }
        if (!nesting_within(text, kMaxNesting)) {
            return reject(Status::invalid_argument,
                          "config: nested deeper than " + std::to_string(kMaxNesting) + " levels");
        }
        json doc;
        try {
            doc = json::parse(text.begin(), text.end());
        } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e400
            return reject(Status::invalid_argument, "config: invalid JSON: " + parse_error_text(e.what()));
        }
        if (!doc.is_object()) {
            return reject(Status::invalid_argument, std::string("config: must be a JSON object, got ") + doc.type_name());
        }
        Config next = cfg;
        DocState state;
        state.guest = guest;
        apply_object(doc, scope, next, state);
        state.finish(next);
        std::string over;
        if (guest && !enforce_ceilings(state.named, cfg, next, *guest, &over)) {
            return reject(Status::invalid_argument, over);
        }
        cfg = std::move(next);
        return Status::ok;
    } catch (const ConfigError& e) {
        return reject(Status::invalid_argument, e.message);
    } catch (const std::bad_alloc&) {
        return reject(Status::runtime_error, "config: out of memory");
    } catch (const std::exception& e) {
        return reject(Status::invalid_argument, std::string("config: ") + e.what());
    } catch (...) {
        return reject(Status::runtime_error, "config: unexpected error");
    }
}

bool config_text_parses(std::string_view text, std::string* why) {
    text = text.substr(0, text.find('\0'));
    if (is_blank(text)) return true;
    if (!nesting_within(text, kMaxNesting)) {
        if (why) *why = "config: nested deeper than " + std::to_string(kMaxNesting) + " levels";
        return false;
    }
    try {
        const json doc = json::parse(text.begin(), text.end());
        (void)doc;
    } catch (const json::parse_error& e) {
        if (why) *why = "config: invalid JSON: " + parse_error_text(e.what());
        return false;
    } catch (const json::exception&) {
        // It parses; a value is out of range (1e400), which
        // apply_config_json refuses.
    }
    return true;
}

bool same_logging(const LoggingConfig& a, const LoggingConfig& b) {
    return a.level == b.level && a.file == b.file && a.json == b.json && a.components == b.components &&
           a.llama_log == b.llama_log && a.llama_debug_log == b.llama_debug_log && a.stream_stdout == b.stream_stdout;
}

}  // namespace wnl
