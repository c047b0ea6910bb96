// libFuzzer harness: sequences of ABI calls against a real tiny model, one
// harness per ABI (WNL_FUZZ_ABI names the fuzz_abi table: fuzz_wamr_abi or
// fuzz_legacy_abi; docs/security.md, "Fuzzing").
//
// Each input is a program: its bytes pick up to kMaxOps calls and their
// arguments. Backend contexts, graphs and execution contexts are passed as
// valid, stale (deinitialised, closed, unloaded) or random handles; strings
// with and without their NUL counted; tensors of every type with missing,
// matching, mismatched and overflowing dimensions; output buffers of every
// capacity, NULL or too small; configs and options as JSON built from a
// dictionary of the real keys and values (sections, hyphens, aliases,
// wrong types, out-of-range values) or raw bytes. Models come from
// ../shared/models: stories260K (and llama-2-tiny-random, the v1 GGUF that
// is refused, missing and non-GGUF files), by name or as bytes; the host's
// swap_graph (with a guest's kind of name and config, "force" at times) and
// reload_aliases come between a guest's calls, on live graphs mostly.
//
// Checked on every call: the return code is one of the ABI's codes; a call
// on a stale, NULL or random context never succeeds; output never exceeds
// the capacity given and reports the size needed when it does not fit, with
// the NUL where the ABI writes one; status and metadata documents are JSON;
// a successful compute has a reply to read. At the end of every input each
// context it opened is deinitialised (which must succeed), and a
// well-behaved request on a context the input never saw must still get the
// exact greedy reply it got before any input ran: the process is alive, the
// shared decode loop still serves, and nothing leaked between tenants.
//
// Bounds, so that one execution takes milliseconds and stays inside
// libFuzzer's memory limit (inputs past them are skipped, not refused by
// the library; the library's own caps are the hardening work's, issue #9
// §2): at most kMaxGenTokens generated tokens per request, kMaxCtxTokens of
// context per loop, 1 thread, 8 slots, kMaxNameLoads loads by name and one
// from bytes per input, kMaxComputes requests per input, 64 stop strings,
// 8 KiB of grammar; no network endpoint but a refused local port; no log
// file but /dev/null, and no log on stderr. The inputs of the holes listed
// in known_holes.h run (they are closed) unless WNL_FUZZ_SKIP_KNOWN_HOLES.
#include <fuzzer/FuzzedDataProvider.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "abi_calls.h"
#include "engine/config.h"
#include "fuzz_support.h"
#include "known_holes.h"

extern "C" const fuzz_abi WNL_FUZZ_ABI;

namespace {

using namespace wnl;
using wnl::fuzz::Hole;

const fuzz_abi& A = WNL_FUZZ_ABI;
const bool kLegacy = std::strcmp(A.name, "legacy") == 0;
const char* harness() { return kLegacy ? "fuzz_abi_legacy" : "fuzz_abi_wamr"; }
#define CHECK(cond, what) WNL_FUZZ_CHECK(harness(), cond, what)

constexpr int kMaxOps = 48;
constexpr size_t kMaxBackends = 4;
constexpr int kMaxNameLoads = 4;
constexpr int kMaxByteLoads = 1;
constexpr int kMaxComputes = 12;
constexpr int32_t kMaxGenTokens = 16;
constexpr uint64_t kMaxCtxTokens = 16384;
constexpr uint32_t kMaxBatch = 4096;
// ggml's workers spin at every barrier: on a shared machine two threads per
// loop spend most of the run waiting for each other. One thread per loop.
constexpr int32_t kMaxThreads = 1;
constexpr int32_t kMaxSlots = 8;
constexpr size_t kMaxStops = 64;
constexpr size_t kMaxStopBytes = 8192;
constexpr size_t kMaxGrammarBytes = 8192;
constexpr size_t kLegacyMaxPrompt = 16u * 1024u * 1024u;  // WASI_NN_LEGACY_MAX_PROMPT

// What the library reads of a text tensor, as the shims do (wamr_abi.cpp,
// legacy_abi.cpp): the harness gates a request on the options the engine
// will see.
std::string engine_text(const fuzz_tensor& t) {
    std::string s;
    if (t.is_null || !t.data) return s;
    if (kLegacy) {  // the dimensions' product, else up to the NUL
        if (t.has_dims && t.n_dims > 0 && t.dims) {
            uint64_t n = 1;
            for (uint32_t i = 0; i < t.n_dims && i < 8; ++i) n = std::min<uint64_t>(n * t.dims[i], UINT64_MAX / 2);
            if (t.n_dims > 8 || n > kLegacyMaxPrompt) return s;
            s.assign(reinterpret_cast<const char*>(t.data), static_cast<size_t>(n));
        } else {
            s.assign(reinterpret_cast<const char*>(t.data));
        }
    } else {
        s.assign(reinterpret_cast<const char*>(t.data), t.size);
    }
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
}

// ---------------------------------------------------------------------------
// Dictionaries: real keys, and for each the values worth trying (valid,
// edge, wrong type, out of range, and the known holes' own inputs).

struct KeyValues {
    const char* key;
    std::vector<const char*> values;
};

const std::vector<KeyValues>& request_keys() {
    static const std::vector<KeyValues> k = {
        {"temp", {"0", "0.0", "0.8", "1.5", "-1", "\"hot\"", "1e39"}},
        {"embd_normalize", {"-1", "0", "2", "1001"}},
        {"truncate", {"true", "false"}},
        {"top_k", {"0", "1", "40", "-5", "100000"}},
        {"top_p", {"0", "0.5", "1", "1.5"}},
        {"min_p", {"0", "0.05", "1"}},
        {"typical_p", {"0.5", "1", "0"}},
        {"repeat_penalty", {"0", "1", "1.1", "1e-45", "1e38"}},
        {"presence_penalty", {"0", "0.5", "-2", "3e38"}},
        {"frequency_penalty", {"0", "0.5", "-2"}},
        {"penalty_last_n", {"-1", "0", "64", "100000"}},
        {"mirostat", {"0", "1", "2", "3"}},
        {"mirostat_tau", {"0", "5", "1e30"}},
        {"mirostat_eta", {"0", "0.1", "1e30"}},
        {"seed", {"-1", "0", "42", "4294967295", "4294967296"}},
        {"dry_multiplier", {"0", "0.8"}},
        {"dry_base", {"0", "1.75", "1e30"}},
        {"dry_allowed_length", {"0", "2", "100000"}},
        {"dry_penalty_last_n", {"-1", "0", "64"}},
        {"dry_sequence_breakers", {"[]", "[\"\\n\"]", "[\"\"]", "[\"a\",\"b\"]", "\"x\""}},
        {"xtc_probability", {"0", "0.5", "1"}},
        {"xtc_threshold", {"0", "0.1", "0.6", "1"}},
        {"dynatemp_range", {"0", "0.5", "10"}},
        {"dynatemp_exponent", {"0", "1", "5"}},
        {"logit_bias", {"{\"2\":false}", "{\"1\":-100}", "[[2,false]]", "[[13,5.5]]", "{\"511\":10}", "{\"512\":1}",
                        "{\"99999\":1}", "[[-1,1]]", "{\"abc\":1}", "{\"1\":true}", "[]", "{}"}},
        {"grammar", {"\"root ::= \\\"a\\\"\"", "\"root ::= [a-z]+\"", "\"root ::= \\\"\\\"\"", "\"root ::= \"",
                     "\"not a grammar\"", "\"%llguidance {}\\nstart: \\\"a\\\"\"", "\"root ::= (\\\"x\\\" root)?\"",
                     "\"root ::= [^\\\\x00]*\"", "\"\""}},
        {"json_schema", {"{\"type\":\"string\"}", "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}",
                         "\"{\\\"type\\\":\\\"number\\\"}\"", "\"\"", "{\"$ref\":\"#/x\"}",
                         "{\"type\":\"string\",\"pattern\":\"^[a-z]{2,3}$\"}", "{\"enum\":[1,2]}", "\"[1]\"",
                         "{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}"}},
        {"stop", {"\"\\n\"", "[\".\",\" was\"]", "[\"\"]", "\"Lily\"", "[\"e\"]", "null", "[\"\\u00e9\"]", "[1]"}},
        {"reverse_prompt", {"\"User:\"", "[\"a\",\"a\"]"}},
        {"max_tokens", {"0", "1", "4", "16", "-1", "100000", "-2"}},
        {"max_time_ms", {"0", "1", "1000"}},
        {"ignore_eos", {"true", "false", "1", "2"}},
        {"mode", {"\"chat\"", "\"completion\"", "\"auto\"", "\"x\""}},
        {"priority", {"\"high\"", "\"low\"", "\"normal\"", "\"urgent\""}},
        {"timeout_ms", {"0", "1", "60000", "-1"}},
        // Not per-request keys: logged and ignored there.
        {"ctx_size", {"64"}},
        {"model_dirs", {"[\"/\"]"}},
        {"foo", {"1"}},
    };
    return k;
}

const std::vector<KeyValues>& model_keys() {
    static const std::vector<KeyValues> k = {
        {"ctx_size", {"0", "16", "64", "128", "256", "2048", "1048576", "-1"}},
        {"batch_size", {"1", "8", "512", "0"}},
        {"ubatch_size", {"1", "8", "512"}},
        {"threads", {"1", "2", "-1", "1024"}},
        {"threads_batch", {"1", "2", "0"}},
        {"flash_attn", {"\"on\"", "\"off\"", "\"auto\"", "true", "1", "\"maybe\""}},
        {"cache_type_k", {"\"f16\"", "\"q8_0\"", "\"q4_0\"", "\"f32\"", "\"bf16\"", "\"q2_k\""}},
        {"cache_type_v", {"\"f16\"", "\"q8_0\"", "\"q4_0\""}},
        {"chat_template", {"\"chatml\"", "\"llama2\"", "\"zephyr\"", "\"gemma\"", "\"phi3\"", "\"\"",
                           "\"{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>\"",
                           "\"{% if %}\"", "\"{{ raise_exception('no') }}\"",
                           "\"{% for i in range(1000000000) %}x{% endfor %}\"", "\"no such template\""}},
        {"system_prompt", {"\"You are a storyteller.\"", "\"\"", "\"<s>\""}},
        {"n_gpu_layers", {"0", "99", "-1"}},
        {"main_gpu", {"0", "5"}},
        {"split_mode", {"\"none\"", "\"row\"", "\"layer\""}},
        {"tensor_split", {"[1,1]", "\"3,1\"", "[]", "[-1]"}},
        {"use_mmap", {"true", "false"}},
        {"use_mlock", {"false", "true"}},
        {"rpc_servers", {"\"127.0.0.1:1\"", "[]"}},
        {"context_shifting", {"false", "true"}},
        {"cache_prompt", {"false", "true"}},
        {"n_keep", {"-1", "0", "4", "100000"}},
        {"max_cache_tokens", {"0", "8"}},
        {"host_cache_bytes", {"0", "1024", "268435456"}},
        {"max_rss_bytes", {"0", "1"}},
        {"max_concurrent", {"1", "2", "4", "300"}},
        {"mode", {"\"chat\"", "\"completion\""}},
        {"max_tokens", {"4", "16", "-1"}},
        {"temp", {"0", "0.8"}},
        {"stop", {"\"\\n\""}},
        // Embedding graphs (docs/embeddings.md), on the decoder model here.
        {"embedding", {"true", "false", "1"}},
        {"reranking", {"true", "false"}},
        {"pooling_type", {"\"mean\"", "\"cls\"", "\"last\"", "\"none\"", "\"rank\"", "7", "-2", "\"bogus\""}},
        {"embd_normalize", {"-1", "0", "1", "2", "1000", "1001"}},
        {"truncate", {"true", "false"}},
    };
    return k;
}

const std::vector<KeyValues>& backend_keys() {
    static const std::vector<KeyValues> k = {
        {"max_sessions", {"1", "2", "128", "0"}},
        {"idle_timeout_ms", {"0", "1", "60000"}},
        {"auto_cleanup", {"true", "false"}},
        {"max_concurrent", {"1", "2", "4", "0", "300"}},
        {"queue_size", {"0", "1", "256", "-1"}},
        {"default_task_timeout_ms", {"0", "1", "10000"}},
        {"priority_scheduling_enabled", {"true", "false"}},
        {"fair_scheduling_enabled", {"true", "false"}},
        {"queue_warning_threshold", {"0", "1"}},
        {"queue_reject_threshold", {"0", "1"}},
        {"model_dirs", {"[\"" WNL_MODELS_DIR "\"]", "[\"/nonexistent\"]", "[\"/\"]", "[\"\"]", "\"/tmp\""}},
        {"level", {"\"none\"", "\"error\"", "\"warn\"", "\"debug\"", "\"loud\""}},
        {"file", {"\"/dev/null\""}},
        {"format", {"\"json\"", "\"text\""}},
        {"components", {"\"abi,config\"", "[\"model\"]"}},
        {"llama_log", {"true", "false"}},
        {"stream_stdout", {"true", "false"}},
        {"ctx_size", {"64", "128", "256"}},
        {"threads", {"1", "2"}},
        {"max_tokens", {"2", "8"}},
    };
    return k;
}

const std::vector<std::pair<const char*, const char*>>& key_aliases() {
    static const std::vector<std::pair<const char*, const char*>> a = {
        {"ctx_size", "n_ctx"},         {"batch_size", "n_batch"},     {"threads", "n_threads"},
        {"temp", "temperature"},       {"max_tokens", "n_predict"},   {"repeat_penalty", "repetition_penalty"},
        {"reverse_prompt", "antiprompt"}, {"level", "log_level"},     {"model_dirs", "allowed_model_dirs"},
        {"n_gpu_layers", "ngl"},       {"file", "log_file"},          {"penalty_last_n", "repeat_last_n"},
    };
    return a;
}

const char* kSections[] = {"sampling", "stopping", "model", "memory", "backend", "logging", "runtime"};

std::string spell_key(FuzzedDataProvider& in, const char* key) {
    std::string k = key;
    switch (in.ConsumeIntegralInRange(0, 5)) {
        case 0:
            for (char& c : k) {
                if (c == '_') c = '-';
            }
            break;
        case 1:
            for (const auto& [from, to] : key_aliases()) {
                if (k == from) k = to;
            }
            break;
        case 2:
            for (char& c : k) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));  // unknown: case matters
            break;
        default: break;
    }
    return k;
}

std::string json_string(const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string fuzz_value(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange(0, 6)) {
        case 0: return std::to_string(in.ConsumeIntegral<int64_t>());
        case 1: return std::to_string(in.ConsumeIntegralInRange<int32_t>(-4, 70000));
        case 2: {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.9g", in.ConsumeFloatingPoint<double>());
            return buf;
        }
        case 3: return json_string(in.ConsumeRandomLengthString(64));
        case 4: return in.ConsumeBool() ? "true" : "null";
        case 5: return "[" + json_string(in.ConsumeRandomLengthString(16)) + "]";
        default: return "{}";
    }
}

// Documents worth sending whole.
const std::vector<std::string>& fixed_docs() {
    static const std::vector<std::string> d = {
        "{}", "[]", "null", "1", "\"x\"", "{\"sampling\":{\"temp\":0}}", "{\"runtime\":{\"max_tokens\":2}}",
        "{\"temp\":0,\"max_tokens\":4,\"stop\":[\" was\"]}", "{\"max_tokens\":4,\"ignore_eos\":true}",
        "{\"max_tokens\":3,\"grammar\":\"root ::= \\\"a\\\"\",\"ignore_eos\":true}",
        "{\"max_tokens\":-1,\"ignore_eos\":true}", "{\"max_tokens\":2,\"grammar\":\"%llguidance {}\"}",
        "{\"chat_template\":\"{% for i in range(1000000000) %}x{% endfor %}\"}", "{\"temp\":0,\"max_tokens\":4}\u0000junk",
        "{\"max_tokens\":4", "{\"a\":{\"b\":{\"c\":{\"d\":[[[[[[[[[[[[]]]]]]]]]]]]}}}}", "{\"max_tokens\":1e400}",
        "{\"max_tokens\":4,\"json_schema\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}}}",
        "{\"max_tokens\":4,\"logit_bias\":{\"2\":false},\"json_schema\":{\"type\":\"string\"}}",
        "{\"max_tokens\":8,\"mode\":\"chat\",\"priority\":\"high\"}", "{\"stop\":null,\"max_tokens\":null}",
    };
    return d;
}

// A JSON document for a scope: structured from the dictionary (often with
// `base` first, the settings that keep the harness fast), fixed, raw bytes
// or empty.
std::string make_doc(FuzzedDataProvider& in, const std::vector<KeyValues>& keys, const std::string& base) {
    const int mode = in.ConsumeIntegralInRange(0, 15);
    if (mode == 0) return "";
    if (mode == 1) return in.ConsumeRandomLengthString(512);
    if (mode == 2) return fixed_docs()[in.ConsumeIntegralInRange<size_t>(0, fixed_docs().size() - 1)];
    std::vector<std::string> entries;
    if (!base.empty() && in.ConsumeIntegralInRange(0, 7) != 0) entries.push_back(base);
    const size_t n = in.ConsumeIntegralInRange<size_t>(0, 6);
    for (size_t i = 0; i < n; ++i) {
        const KeyValues& kv = keys[in.ConsumeIntegralInRange<size_t>(0, keys.size() - 1)];
        std::string value = in.ConsumeIntegralInRange(0, 5) == 0
                                ? fuzz_value(in)
                                : kv.values[in.ConsumeIntegralInRange<size_t>(0, kv.values.size() - 1)];
        entries.push_back(json_string(spell_key(in, kv.key)) + ":" + value);
    }
    std::string body;
    for (size_t i = 0; i < entries.size(); ++i) body += (i ? "," : "") + entries[i];
    if (in.ConsumeIntegralInRange(0, 5) == 0) {
        const char* section = kSections[in.ConsumeIntegralInRange<size_t>(0, std::size(kSections) - 1)];
        body = json_string(section) + ":{" + body + "}";
    }
    return "{" + body + "}";
}

const char* kBackendBase = "\"ctx_size\":128,\"max_concurrent\":2,\"threads\":1,\"max_tokens\":4";
const char* kRequestBase = "\"max_tokens\":4";

// ---------------------------------------------------------------------------
// Bounds and known holes, on the settings the engine will use.

std::atomic<unsigned long> g_skips[8];
enum Skip { skip_backend = 0, skip_load, skip_request, skip_budget };

bool apply(const std::string& doc, ConfigScope scope, Config* cfg) {
    std::string err;
    return apply_config_json(doc, scope, *cfg, &err) == Status::ok;
}

bool backend_in_bounds(const Config& c) {
    const auto& l = c.logging;
    if (same_logging(l, LoggingConfig{})) return true;  // the process-wide log is left as it is
    // No files but /dev/null, and nothing on stderr: every refused call logs.
    return l.file == "/dev/null" || (l.file.empty() && l.level == LogLevel::none);
}

bool load_in_bounds(const Config& c) {
    const auto& m = c.model;
    const uint64_t per_seq = m.ctx_size ? m.ctx_size : 4096;
    if (c.backend.max_concurrent > kMaxSlots || per_seq * static_cast<uint64_t>(c.backend.max_concurrent) > kMaxCtxTokens) {
        return false;
    }
    if (m.batch_size > kMaxBatch || m.ubatch_size > kMaxBatch) return false;
    if (m.threads > kMaxThreads || m.threads_batch > kMaxThreads) return false;
    // 0 is the default, as many as there are CPUs (threads_batch 0: as threads).
    if (m.threads == 0 && std::thread::hardware_concurrency() > static_cast<unsigned>(kMaxThreads)) return false;
    for (const auto& s : m.rpc_servers) {
        if (s != "127.0.0.1:1") return false;  // a refused local port; nothing else is reachable or safe
    }
    return true;
}

bool request_in_bounds(const Config& c) {
    const auto& st = c.stopping;
    if (st.max_tokens < 0 || st.max_tokens > kMaxGenTokens) return false;
    size_t stop_bytes = 0;
    for (const auto& s : st.stop) stop_bytes += s.size();
    if (st.stop.size() > kMaxStops || stop_bytes > kMaxStopBytes) return false;
    if (c.sampling.grammar.size() + c.sampling.json_schema.size() > kMaxGrammarBytes) return false;
    return true;
}

// ---------------------------------------------------------------------------
// What one input has opened, so that handles can be picked and requests
// gated.

struct GraphRec {
    uint32_t id;
    Config cfg;
    bool live = true;
    int loads = 1;  // a load by name of the same file and config is the same graph, counted
};

struct CtxRec {
    void* h = nullptr;
    bool live = true;
    Config cfg;
    std::vector<GraphRec> graphs;
};

struct ExecRec {
    size_t ctx;
    uint32_t id;
    std::vector<Config> cfgs;  // the graph it runs on (all live ones, for a session handle)
    std::string options;
    bool live = true;
    int opens = 1;  // inits of one named session share its handle, closed at the last close
};

// A handle as passed: the pointer, and which context it is if it is live.
struct CtxPick {
    void* h;
    int index;  // into ctxs, or -1 when not a live context of this input
};

// Model files and bytes, read once.
struct Assets {
    std::string models;
    std::vector<uint8_t> model_bytes;  // stories260K.gguf
    std::vector<std::string> names;
    void* anchor = nullptr;  // the well-behaved tenant
    uint32_t anchor_graph = 0;
    std::string anchor_reply;
    std::vector<void*> retired;  // every handle an input deinitialised (stale from then on)
};
Assets* g;
// WNL_FUZZ_TRACE=1: each call and its code on stderr (for reading a finding).
bool g_trace = false;

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool valid_code(int c) {
    for (int i = 0; i < A.n_valid_codes; ++i) {
        if (A.valid_codes[i] == c) return true;
    }
    return false;
}

class Sequence {
public:
    explicit Sequence(FuzzedDataProvider& in) : in_(in) {}

    void run() {
        for (int n = 0; n < kMaxOps && in_.remaining_bytes() > 0; ++n) {
            const int op = in_.ConsumeIntegralInRange(0, 19);
            if (g_trace) std::fprintf(stderr, "[trace] op %d, %zu bytes left\n", op, in_.remaining_bytes());
            step(op);
        }
        finish();
    }

private:
    FuzzedDataProvider& in_;
    std::vector<CtxRec> ctxs_;
    std::vector<ExecRec> execs_;
    int name_loads_ = 0, byte_loads_ = 0, computes_ = 0;
    uint32_t last_needed_ = 64;

    int checked(const char* call, int rc) {
        if (g_trace) std::fprintf(stderr, "[trace] %s -> %d\n", call, rc);
        CHECK(valid_code(rc), std::string(call) + " returned " + std::to_string(rc) + ", not a code of this ABI");
        return rc;
    }

    // A call on something that is not a live context must fail.
    void expect_refused(const char* call, const CtxPick& c, int rc) {
        if (c.index < 0) CHECK(rc != A.success, std::string(call) + " succeeded on a stale, NULL or random context");
    }

    CtxPick pick_ctx() {
        const int kind = in_.ConsumeIntegralInRange(0, 9);
        if (kind <= 5 && !ctxs_.empty()) {
            // Mostly the newest contexts, live or not.
            size_t i = ctxs_.size() - 1 - std::min<size_t>(ctxs_.size() - 1, in_.ConsumeIntegralInRange<size_t>(0, 3));
            return {ctxs_[i].h, ctxs_[i].live ? static_cast<int>(i) : -1};
        }
        if (kind == 6) {  // one byte whatever the history, so inputs replay alike
            return {g->retired[in_.ConsumeIntegral<uint8_t>() % g->retired.size()], -1};
        }
        if (kind == 7) return {nullptr, -1};
        // A number: near the first handles, or anything.
        uintptr_t v = in_.ConsumeBool() ? 0x574e0001u + in_.ConsumeIntegralInRange<uintptr_t>(0, 64)
                                        : in_.ConsumeIntegral<uintptr_t>();
        void* h = reinterpret_cast<void*>(v);
        if (h == g->anchor) return {nullptr, -1};  // the well-behaved tenant is not the input's to touch
        for (size_t i = 0; i < ctxs_.size(); ++i) {
            if (ctxs_[i].h == h && ctxs_[i].live) return {h, static_cast<int>(i)};
        }
        return {h, -1};
    }

    uint32_t pick_graph(const CtxPick& c) {
        if (c.index >= 0 && !ctxs_[c.index].graphs.empty() && in_.ConsumeIntegralInRange(0, 3) != 0) {
            const auto& gs = ctxs_[c.index].graphs;
            return gs[in_.ConsumeIntegralInRange<size_t>(0, gs.size() - 1)].id;
        }
        return in_.ConsumeBool() ? in_.ConsumeIntegralInRange<uint32_t>(0, 8) : in_.ConsumeIntegral<uint32_t>();
    }

    uint32_t pick_exec(const CtxPick& c) {
        if (in_.ConsumeIntegralInRange(0, 3) != 0) {
            std::vector<const ExecRec*> mine;
            for (const auto& e : execs_) {
                if (c.index >= 0 && e.ctx == static_cast<size_t>(c.index)) mine.push_back(&e);
            }
            if (!mine.empty()) return mine[in_.ConsumeIntegralInRange<size_t>(0, mine.size() - 1)]->id;
        }
        return in_.ConsumeBool() ? in_.ConsumeIntegralInRange<uint32_t>(0, 8) : in_.ConsumeIntegral<uint32_t>();
    }

    ExecRec* find_exec(const CtxPick& c, uint32_t id) {
        if (c.index < 0) return nullptr;
        for (auto& e : execs_) {
            if (e.live && e.ctx == static_cast<size_t>(c.index) && e.id == id) return &e;
        }
        return nullptr;
    }

    uint32_t pick_index() {
        switch (in_.ConsumeIntegralInRange(0, 7)) {
            case 0: return 2;
            case 1: return UINT32_MAX;
            case 2: return in_.ConsumeIntegral<uint32_t>();
            default: return in_.ConsumeBool() ? 0 : 1;
        }
    }

    uint32_t pick_capacity() {
        static const uint32_t kCaps[] = {0, 1, 2, 7, 64, 512, 4096, 65536};
        switch (in_.ConsumeIntegralInRange(0, 4)) {
            case 0: return last_needed_;
            case 1: return last_needed_ > 0 ? last_needed_ - 1 : 0;
            default: return in_.PickValueInArray(kCaps);
        }
    }

    std::string pick_prompt() {
        static const char* kPrompts[] = {
            "Once upon a time", "Lily", " ", "\n\n", "<s>", "</s>", "<s><s></s>",
            "Once upon a time there was a dog. The dog was", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82",
            "\xff\xfe\xfd", "[INST] hi [/INST]", "<|im_start|>user\nhi<|im_end|>", "\xe6\x97",
        };
        const int kind = in_.ConsumeIntegralInRange(0, 9);
        if (kind <= 5) return kPrompts[in_.ConsumeIntegralInRange<size_t>(0, std::size(kPrompts) - 1)];
        if (kind == 6) {  // longer than a small context
            std::string s;
            for (int i = in_.ConsumeIntegralInRange(10, 120); i > 0; --i) s += "the little dog ran to the park. ";
            return s;
        }
        if (kind == 7) return std::string("a\0b", 3);
        return in_.ConsumeRandomLengthString(256);
    }

    // A text tensor laid out as a caller of this ABI would: the buffers it
    // points into are kept in `keep` for the length of the call.
    struct TensorBuffers {
        std::vector<uint8_t> data;
        std::vector<uint32_t> dims;
    };
    fuzz_tensor make_tensor(const std::string& text, TensorBuffers& keep) {
        fuzz_tensor t{};
        const int shape = in_.ConsumeIntegralInRange(0, 15);
        if (shape == 0) {
            t.is_null = 1;
            return t;
        }
        t.type = A.u8_type;
        if (shape == 1) t.type = in_.ConsumeIntegralInRange(0, 8);
        if (shape == 2) t.type = in_.ConsumeIntegral<int>();
        const bool legacy = kLegacy;
        const bool count_nul = in_.ConsumeIntegralInRange(0, 3) == 0;
        const uint32_t len = static_cast<uint32_t>(text.size()) + (count_nul ? 1 : 0);
        // Dimensions.
        const int dims = in_.ConsumeIntegralInRange(0, 9);
        switch (dims) {
            case 0: t.has_dims = 0; break;
            case 1: t.has_dims = 1; t.n_dims = 0; break;
            case 2: keep.dims = {len}; break;
            case 3: keep.dims = {1, len}; break;
            case 4: keep.dims = {1}; break;
            case 5: keep.dims = {len + 1}; break;
            case 6: keep.dims = {65536, 65536}; break;  // overflows 32 bits
            case 7: keep.dims = {4096, 4097}; break;  // past the legacy 16 MiB limit
            case 8: keep.dims.assign(in_.ConsumeIntegralInRange<size_t>(9, 12), 1); break;  // too many
            default:
                keep.dims.resize(in_.ConsumeIntegralInRange<size_t>(1, 4));
                for (auto& d : keep.dims) d = in_.ConsumeIntegralInRange<uint32_t>(0, 300);
        }
        if (dims >= 2) {
            t.has_dims = 1;
            t.n_dims = static_cast<uint32_t>(keep.dims.size());
            t.dims = keep.dims.data();
            if (in_.ConsumeIntegralInRange(0, 15) == 0) t.dims = nullptr;  // size without a buffer
        }
        // Data: exactly the bytes the tensor claims, so ASan sees any read past them.
        size_t bytes = len;
        if (legacy && t.has_dims && t.n_dims > 0 && t.n_dims <= 8 && t.dims) {
            uint64_t n = 1;
            for (uint32_t i = 0; i < t.n_dims; ++i) n = std::min<uint64_t>(n * t.dims[i], UINT64_MAX / 2);
            if (n <= kLegacyMaxPrompt) {
                if (n > 65536) {  // a valid caller would pass that many bytes: too slow here
                    keep.dims = {len};
                    t.n_dims = 1;
                    t.dims = keep.dims.data();
                    n = len;
                }
                bytes = std::max<size_t>(bytes, n);
            }
        } else if (legacy) {
            bytes = text.size() + 1;  // NUL-terminated
        }
        keep.data.assign(bytes, 0);
        if (bytes > 0 && !text.empty()) std::memcpy(keep.data.data(), text.data(), std::min(text.size(), bytes));
        t.data = keep.data.data();
        t.size = len;
        if (in_.ConsumeIntegralInRange(0, 15) == 0) t.data = nullptr;
        if (in_.ConsumeIntegralInRange(0, 31) == 0) t.size = 0;
        return t;
    }

    // The request settings each candidate graph would run with; false when
    // any of them is past a bound or reaches a known hole.
    bool request_allowed(const ExecRec* e, const std::string& options) {
        if (!e) return true;  // the engine finds no such handle
        for (const Config& graph_cfg : e->cfgs) {
            Config c = graph_cfg;
            if (!apply(options, ConfigScope::request, &c)) continue;  // the engine refuses it too
            if (!request_in_bounds(c)) return skip(skip_request);
            if (fuzz::skip_hole(fuzz::request_hole(c))) return false;
        }
        return true;
    }

    bool skip(Skip why) {
        g_skips[why]++;
        return false;
    }

    // ---- the calls ----------------------------------------------------

    void step(int op) {
        switch (op) {
            case 0: op_init(); break;
            case 1: op_deinit(); break;
            case 2: case 3: op_load_by_name(); break;
            case 4: op_load_bytes(); break;
            case 5: op_unload(); break;
            case 6: op_init_exec(); break;
            case 7: op_init_exec_session(); break;
            case 8: op_close_exec(); break;
            case 9: case 10: op_set_input(); break;
            case 11: op_compute(); break;
            case 12: op_get_output(); break;
            case 13: op_run_inference(); break;
            case 14: op_status(); break;
            case 15: case 16: op_compute_single(); break;
            case 17: op_get_output_single(); break;
            case 18: op_fini_single(); break;
            default: op_swap(); break;
        }
    }

    void op_init() {
        if (ctxs_.size() >= kMaxBackends) return;
        void* h = nullptr;
        int rc;
        Config cfg;
        if (in_.ConsumeIntegralInRange(0, 7) == 0) {
            rc = checked("init_backend", A.init_backend(&h));
        } else {
            std::string doc = make_doc(in_, backend_keys(), kBackendBase);
            const bool counted_nul = in_.ConsumeBool();
            const bool null_cfg = doc.empty() && in_.ConsumeBool();
            if (apply(doc, ConfigScope::backend, &cfg) && !backend_in_bounds(cfg)) {
                skip(skip_backend);
                return;
            }
            if (in_.ConsumeIntegralInRange(0, 31) == 0) {  // a NULL out-pointer
                rc = checked("init_backend_with_config", A.init_backend_with_config(nullptr, doc.c_str(), doc.size()));
                CHECK(rc != A.success, "init_backend_with_config succeeded with a NULL ctx pointer");
                return;
            }
            rc = checked("init_backend_with_config",
                         A.init_backend_with_config(&h, null_cfg ? nullptr : doc.c_str(),
                                                    static_cast<uint32_t>(doc.size() + (counted_nul ? 1 : 0))));
        }
        if (rc != A.success) return;
        CHECK(h != nullptr, "init_backend succeeded without a context");
        for (const auto& c : ctxs_) CHECK(c.h != h, "init_backend returned a handle already given out");
        CtxRec rec;
        rec.h = h;
        rec.cfg = cfg;
        ctxs_.push_back(std::move(rec));
    }

    void deinit(size_t i) {
        CtxRec& c = ctxs_[i];
        int rc = checked("deinit_backend", A.deinit_backend(c.h));
        CHECK(rc == A.success, "deinit_backend of a live context failed");
        c.live = false;
        for (auto& e : execs_) {
            if (e.ctx == i) e.live = false;
        }
        g->retired.push_back(c.h);
        if (g->retired.size() > 64) g->retired.erase(g->retired.begin());
    }

    void op_deinit() {
        CtxPick c = pick_ctx();
        if (c.index >= 0) {
            deinit(static_cast<size_t>(c.index));
            return;
        }
        int rc = checked("deinit_backend", A.deinit_backend(c.h));
        expect_refused("deinit_backend", c, rc);
    }

    // A load by name (or a swap) on live context c with config doc: within
    // the harness's bounds and not a skipped known hole, and counted. *cfg:
    // the settings the graph would load with.
    bool name_load_allowed(const CtxPick& c, const std::string& doc, Config* cfg) {
        Config settings = ctxs_[c.index].cfg;
        if (apply(doc, ConfigScope::model, &settings)) {
            if (name_loads_ >= kMaxNameLoads || !load_in_bounds(settings)) {
                skip(skip_load);
                return false;
            }
            if (fuzz::skip_hole(fuzz::load_hole(settings))) return false;
        }
        name_loads_++;
        if (cfg) *cfg = std::move(settings);
        return true;
    }

    void op_load_by_name() {
        CtxPick c = pick_ctx();
        const std::string& name = g->names[in_.ConsumeIntegralInRange<size_t>(0, g->names.size() - 1)];
        std::string path = name.empty() ? in_.ConsumeRandomLengthString(128) : name;
        uint32_t len = static_cast<uint32_t>(path.size());
        switch (in_.ConsumeIntegralInRange(0, 7)) {
            case 0: len = len + 1; break;  // the NUL counted
            case 1: len = 0; break;
            case 2: len = len > 0 ? len - 1 : 0; break;
            default: break;
        }
        const char* name_ptr = in_.ConsumeIntegralInRange(0, 31) == 0 ? nullptr : path.c_str();
        const bool with_config = in_.ConsumeIntegralInRange(0, 3) != 0;
        std::string doc = with_config ? make_doc(in_, model_keys(), "") : "";
        const bool null_cfg = doc.empty() && in_.ConsumeBool();
        const bool null_out = in_.ConsumeIntegralInRange(0, 31) == 0;
        if (c.index >= 0 && !name_load_allowed(c, doc, nullptr)) return;
        uint32_t gid = UINT32_MAX;
        int rc = with_config ? A.load_by_name_with_config(c.h, name_ptr, len, null_cfg ? nullptr : doc.c_str(),
                                                          static_cast<uint32_t>(doc.size()), null_out ? nullptr : &gid)
                             : A.load_by_name(c.h, name_ptr, len, null_out ? nullptr : &gid);
        checked("load_by_name", rc);
        expect_refused("load_by_name", c, rc);
        if (rc != A.success || c.index < 0) return;
        CHECK(!null_out, "load_by_name succeeded with a NULL graph pointer");
        // The same file with the same config again is the graph already
        // loaded (HyperBEAM loads before every request), one more load of it.
        for (auto& other : ctxs_[c.index].graphs) {
            if (other.id == gid && other.live) {
                other.loads++;
                return;
            }
        }
        GraphRec gr{gid, ctxs_[c.index].cfg};
        apply(doc, ConfigScope::model, &gr.cfg);
        ctxs_[c.index].graphs.push_back(std::move(gr));
    }

    void op_load_bytes() {
        CtxPick c = pick_ctx();
        std::vector<uint8_t> bytes;
        switch (in_.ConsumeIntegralInRange(0, 5)) {
            case 0: bytes = g->model_bytes; break;
            case 1: bytes.assign(g->model_bytes.begin(),
                                 g->model_bytes.begin() + in_.ConsumeIntegralInRange<size_t>(0, g->model_bytes.size()));
                break;
            case 2:
                bytes = g->model_bytes;
                for (int i = in_.ConsumeIntegralInRange(1, 4); i > 0; --i) {
                    bytes[in_.ConsumeIntegralInRange<size_t>(0, std::min<size_t>(65535, bytes.size() - 1))] =
                        in_.ConsumeIntegral<uint8_t>();
                }
                break;
            case 3: {
                std::string s = "GGUF" + in_.ConsumeRandomLengthString(256);
                bytes.assign(s.begin(), s.end());
                break;
            }
            default: {
                std::string s = in_.ConsumeRandomLengthString(256);
                bytes.assign(s.begin(), s.end());
            }
        }
        static const int kEncodings[] = {5, 6, 5, 6, 0, 7, -1, 1000};
        const int encoding = in_.ConsumeBool() ? in_.PickValueInArray(kEncodings) : in_.ConsumeIntegral<int>();
        const int target = in_.ConsumeIntegralInRange(0, 7) == 0 ? in_.ConsumeIntegral<int>() : in_.ConsumeIntegralInRange(0, 2);
        const bool builder_null = in_.ConsumeIntegralInRange(0, 15) == 0;
        const uint32_t n_builders = in_.ConsumeIntegralInRange(0, 15) == 0 ? 0 : 1;
        const bool null_buf = in_.ConsumeIntegralInRange(0, 15) == 0;
        const bool null_out = in_.ConsumeIntegralInRange(0, 31) == 0;
        if (c.index >= 0) {
            if (byte_loads_ >= kMaxByteLoads || !load_in_bounds(ctxs_[c.index].cfg)) {
                skip(skip_load);
                return;
            }
            if (fuzz::skip_hole(fuzz::load_hole(ctxs_[c.index].cfg))) return;
            byte_loads_++;
        }
        uint32_t gid = UINT32_MAX;
        int rc = checked("load", A.load(c.h, builder_null, n_builders, null_buf ? nullptr : bytes.data(),
                                        static_cast<uint32_t>(bytes.size()), encoding, target, null_out ? nullptr : &gid));
        expect_refused("load", c, rc);
        if (rc != A.success || c.index < 0) return;
        CHECK(!null_out, "load succeeded with a NULL graph pointer");
        // Bytes are never the same graph twice (each load is its own memfd).
        for (const auto& other : ctxs_[c.index].graphs) {
            CHECK(!(other.id == gid && other.live), "load from bytes returned a graph id in use");
        }
        ctxs_[c.index].graphs.push_back(GraphRec{gid, ctxs_[c.index].cfg});
    }

    void op_unload() {
        CtxPick c = pick_ctx();
        uint32_t gid = pick_graph(c);
        int rc = checked("unload", A.unload(c.h, gid));
        expect_refused("unload", c, rc);
        if (rc == A.success && c.index >= 0) {
            bool known = false;
            for (auto& gr : ctxs_[c.index].graphs) {
                if (gr.id == gid && gr.live) {
                    gr.live = --gr.loads > 0;  // the last unload of a counted graph ends it
                    known = true;
                }
            }
            CHECK(known, "unload succeeded on a graph that is not loaded");
        }
    }

    // The host's hot swap, with a guest's kind of name and config (plus
    // "force" at times), mostly on a live graph while its requests run;
    // sometimes reload_aliases, which without a policy swaps nothing.
    void op_swap() {
        CtxPick c = pick_ctx();
        if (in_.ConsumeIntegralInRange(0, 5) == 0) {
            int rc = checked("reload_aliases", A.reload_aliases(c.h));
            expect_refused("reload_aliases", c, rc);
            return;
        }
        uint32_t gid = pick_graph(c);
        const std::string& name = g->names[in_.ConsumeIntegralInRange<size_t>(0, g->names.size() - 1)];
        std::string path = name.empty() ? in_.ConsumeRandomLengthString(128) : name;
        const uint32_t len = in_.ConsumeIntegralInRange(0, 7) == 0 ? 0 : static_cast<uint32_t>(path.size());
        const char* name_ptr = in_.ConsumeIntegralInRange(0, 31) == 0 ? nullptr : path.c_str();
        std::string doc = in_.ConsumeIntegralInRange(0, 3) != 0 ? make_doc(in_, model_keys(), "") : "";
        std::string sent = doc;
        if (in_.ConsumeIntegralInRange(0, 3) == 0 && sent.size() >= 2 && sent.front() == '{') {
            sent.insert(1, sent == "{}" ? "\"force\":true" : "\"force\":true,");
        }
        const bool null_cfg = sent.empty() && in_.ConsumeBool();
        GraphRec* known = nullptr;
        Config cfg;
        if (c.index >= 0) {
            for (auto& gr : ctxs_[c.index].graphs) {
                if (gr.id == gid && gr.live) known = &gr;
            }
            // A swap loads a model as a load does: the same bounds.
            if (!name_load_allowed(c, doc, &cfg)) return;
        }
        int rc = checked("swap_graph", A.swap_graph(c.h, gid, name_ptr, len, null_cfg ? nullptr : sent.c_str(),
                                                   static_cast<uint32_t>(sent.size())));
        expect_refused("swap_graph", c, rc);
        if (rc != A.success || c.index < 0) return;
        CHECK(known != nullptr, "swap_graph succeeded on a graph that is not loaded");
        known->cfg = cfg;
    }

    // session: from init_execution_context_with_session_id, whose handle for
    // a session already open is that session's (HyperBEAM opens one per
    // request), one more open of it.
    void add_exec(const CtxPick& c, uint32_t id, std::vector<Config> cfgs, bool session = false) {
        for (auto& e : execs_) {
            if (!(e.live && e.ctx == static_cast<size_t>(c.index) && e.id == id)) continue;
            CHECK(session, "init_execution_context returned a handle in use");
            e.opens++;
            return;
        }
        execs_.push_back(ExecRec{static_cast<size_t>(c.index), id, std::move(cfgs), "", true});
    }

    void op_init_exec() {
        CtxPick c = pick_ctx();
        uint32_t gid = pick_graph(c);
        uint32_t id = UINT32_MAX;
        const bool null_out = in_.ConsumeIntegralInRange(0, 31) == 0;
        int rc = checked("init_execution_context", A.init_execution_context(c.h, gid, null_out ? nullptr : &id));
        expect_refused("init_execution_context", c, rc);
        if (rc != A.success || c.index < 0) return;
        CHECK(!null_out, "init_execution_context succeeded with a NULL out-pointer");
        std::vector<Config> cfgs;
        for (const auto& gr : ctxs_[c.index].graphs) {
            if (gr.id == gid && gr.live) cfgs.push_back(gr.cfg);
        }
        CHECK(!cfgs.empty(), "init_execution_context succeeded on a graph that is not loaded");
        add_exec(c, id, std::move(cfgs));
    }

    void op_init_exec_session() {
        CtxPick c = pick_ctx();
        static const char* kIds[] = {"s1", "s2", "user-42", "", "\xff\xfe", "b1/s1", "anon-0"};
        std::string sid;
        switch (in_.ConsumeIntegralInRange(0, 7)) {
            case 0: sid.assign(256, 'x'); break;
            case 1: sid.assign(257 + in_.ConsumeIntegralInRange(0, 64), 'y'); break;
            case 2: sid = in_.ConsumeRandomLengthString(300); break;
            default: sid = kIds[in_.ConsumeIntegralInRange<size_t>(0, std::size(kIds) - 1)];
        }
        const bool null_id = in_.ConsumeIntegralInRange(0, 31) == 0;
        const bool null_out = in_.ConsumeIntegralInRange(0, 31) == 0;
        uint32_t id = UINT32_MAX;
        int rc = checked("init_execution_context_with_session_id",
                         A.init_execution_context_with_session_id(c.h, null_id ? nullptr : sid.c_str(),
                                                                  null_out ? nullptr : &id));
        expect_refused("init_execution_context_with_session_id", c, rc);
        if (rc != A.success || c.index < 0) return;
        CHECK(!null_out && !null_id, "init_execution_context_with_session_id succeeded with a NULL pointer");
        std::vector<Config> cfgs;  // the newest live graph; the harness need not know which
        for (const auto& gr : ctxs_[c.index].graphs) {
            if (gr.live) cfgs.push_back(gr.cfg);
        }
        CHECK(!cfgs.empty(), "init_execution_context_with_session_id succeeded with no graph loaded");
        add_exec(c, id, std::move(cfgs), true);
    }

    void op_close_exec() {
        CtxPick c = pick_ctx();
        uint32_t id = pick_exec(c);
        ExecRec* e = find_exec(c, id);
        int rc = checked("close_execution_context", A.close_execution_context(c.h, id));
        expect_refused("close_execution_context", c, rc);
        if (e) {
            CHECK(rc == A.success, "close_execution_context of an open handle failed");
            e->live = --e->opens > 0;
        } else if (c.index >= 0) {
            CHECK(rc != A.success, "close_execution_context succeeded on a handle that is not open");
        }
    }

    void op_set_input() {
        CtxPick c = pick_ctx();
        uint32_t id = pick_exec(c);
        uint32_t index = pick_index();
        std::string text = index == 1 || (index > 1 && in_.ConsumeBool()) ? make_doc(in_, request_keys(), kRequestBase)
                                                                          : pick_prompt();
        TensorBuffers keep;
        fuzz_tensor t = make_tensor(text, keep);
        int rc = checked("set_input", A.set_input(c.h, id, index, &t));
        expect_refused("set_input", c, rc);
        ExecRec* e = find_exec(c, id);
        if (rc == A.success && e && index == 1) e->options = engine_text(t);
    }

    bool may_compute(const CtxPick& c, uint32_t id, const std::string& options) {
        ExecRec* e = find_exec(c, id);
        if (!e) return true;
        if (computes_ >= kMaxComputes) return skip(skip_budget);
        if (!request_allowed(e, options)) return false;
        computes_++;
        return true;
    }

    // After a successful compute the reply is there to read.
    void expect_reply(const CtxPick& c, uint32_t id) {
        std::vector<uint8_t> buf(1 << 20);
        uint32_t out_size = 0;
        int rc = checked("get_output", A.get_output(c.h, id, 0, buf.data(), static_cast<uint32_t>(buf.size()), 0, &out_size));
        CHECK(rc == A.success, "get_output after a successful compute failed: " + std::to_string(rc));
    }

    void op_compute() {
        CtxPick c = pick_ctx();
        uint32_t id = pick_exec(c);
        ExecRec* e = find_exec(c, id);
        if (!may_compute(c, id, e ? e->options : "")) return;
        int rc = checked("compute", A.compute(c.h, id));
        expect_refused("compute", c, rc);
        if (rc == A.success) expect_reply(c, id);
    }

    // Output checks shared by the get_output family: nothing past the
    // capacity (ASan: the buffer is exactly that size), the size needed when
    // it does not fit, the NUL where the ABI writes one.
    void check_output(const char* call, int rc, const std::vector<uint8_t>& buf, bool buf_null, uint32_t cap,
                      const uint32_t* out_size, bool writes_nul, bool is_json) {
        // too_large with *out_size untouched is about the input (run_inference's
        // prompt past the limit); otherwise it is the size the output needs.
        if (rc == A.too_large && out_size && *out_size != cap && *out_size != 0xdeadbeef) {
            CHECK(*out_size > cap, std::string(call) + ": too_large but the size needed fits");
            last_needed_ = *out_size;
        }
        if (rc != A.success || !out_size) return;
        CHECK(*out_size <= cap, std::string(call) + " reports more bytes than the capacity");
        CHECK(!buf_null || *out_size == 0, std::string(call) + " wrote into a NULL buffer");
        size_t n = *out_size;
        if (writes_nul) {
            CHECK(n >= 1 && buf[n - 1] == 0, std::string(call) + ": no NUL at the end of the output");
            n -= 1;
        }
        if (is_json && n > 0) {
            auto j = nlohmann::json::parse(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), nullptr, false);
            CHECK(!j.is_discarded() && j.is_object(), std::string(call) + ": metadata is not a JSON object");
        }
    }

    void op_get_output() {
        CtxPick c = pick_ctx();
        uint32_t id = pick_exec(c);
        uint32_t index = pick_index();
        uint32_t cap = pick_capacity();
        const bool buf_null = in_.ConsumeIntegralInRange(0, 15) == 0;
        const bool struct_null = in_.ConsumeIntegralInRange(0, 31) == 0;
        const bool size_null = in_.ConsumeIntegralInRange(0, 31) == 0;
        std::vector<uint8_t> buf(cap);
        uint32_t out_size = 0xdeadbeef;
        int rc = checked("get_output", A.get_output(c.h, id, index, buf_null ? nullptr : buf.data(), cap, struct_null,
                                                    size_null ? nullptr : &out_size));
        expect_refused("get_output", c, rc);
        // The legacy ABI has no output struct to leave out: struct_null changes nothing there.
        if ((struct_null && A.get_output_has_struct) || size_null) {
            CHECK(rc != A.success, "get_output succeeded without an output struct or size");
        }
        check_output("get_output", rc, buf, buf_null, cap, size_null ? nullptr : &out_size, A.get_output_writes_nul,
                     index == 1);
    }

    void op_run_inference() {
        CtxPick c = pick_ctx();
        uint32_t id = pick_exec(c);
        uint32_t index = pick_index();
        std::string prompt = pick_prompt();
        TensorBuffers keep;
        fuzz_tensor t = make_tensor(prompt, keep);
        std::string doc = make_doc(in_, request_keys(), kRequestBase);
        const bool null_cfg = doc.empty() && in_.ConsumeBool();
        uint32_t cap = pick_capacity();
        const bool buf_null = in_.ConsumeIntegralInRange(0, 15) == 0;
        const bool size_null = in_.ConsumeIntegralInRange(0, 31) == 0;
        if (!may_compute(c, id, doc)) return;
        std::vector<uint8_t> buf(cap);
        uint32_t out_size = cap;
        int rc = checked("run_inference",
                         A.run_inference(c.h, id, index, &t, buf_null ? nullptr : buf.data(), size_null ? nullptr : &out_size,
                                         null_cfg ? nullptr : doc.c_str(), static_cast<uint32_t>(doc.size())));
        expect_refused("run_inference", c, rc);
        check_output("run_inference", rc, buf, buf_null, cap, size_null ? nullptr : &out_size, true, index == 1);
    }

    void op_status() {
        CtxPick c = pick_ctx();
        static const int kTypes[] = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, -1, 5, 1000, INT_MIN};
        const int type = in_.PickValueInArray(kTypes);
        static const uint32_t kSizes[] = {0, 1, 16, 256, 4096, 65536};
        const uint32_t size = in_.PickValueInArray(kSizes);
        const bool buf_null = in_.ConsumeIntegralInRange(0, 15) == 0;
        std::vector<char> buf(size);
        int rc = checked("get_backend_status", A.get_backend_status(c.h, type, buf_null ? nullptr : buf.data(), size));
        expect_refused("get_backend_status", c, rc);
        if (rc == A.success) {
            CHECK(!buf_null && type >= 0 && type <= 4, "get_backend_status succeeded on a bad type or buffer");
            auto end = std::find(buf.begin(), buf.end(), '\0');
            CHECK(end != buf.end(), "get_backend_status: no NUL within the buffer");
            auto j = nlohmann::json::parse(buf.begin(), end, nullptr, false);
            CHECK(!j.is_discarded() && j.is_object(), "get_backend_status: not a JSON object");
        }
    }

    void op_compute_single() {
        CtxPick c = pick_ctx();
        uint32_t id = pick_exec(c);
        ExecRec* e = find_exec(c, id);
        if (!may_compute(c, id, e ? e->options : "")) return;
        // A few pieces at once, as a streaming guest reads them.
        for (int n = in_.ConsumeIntegralInRange(1, 8); n > 0; --n) {
            int rc = checked("compute_single", A.compute_single(c.h, id));
            expect_refused("compute_single", c, rc);
            if (rc != A.success) break;
        }
    }

    void op_get_output_single() {
        CtxPick c = pick_ctx();
        uint32_t id = pick_exec(c);
        uint32_t index = pick_index();
        uint32_t cap = pick_capacity();
        const bool buf_null = in_.ConsumeIntegralInRange(0, 15) == 0;
        const bool size_null = in_.ConsumeIntegralInRange(0, 31) == 0;
        std::vector<uint8_t> buf(cap);
        uint32_t out_size = cap;
        int rc = checked("get_output_single",
                         A.get_output_single(c.h, id, index, buf_null ? nullptr : buf.data(), size_null ? nullptr : &out_size));
        expect_refused("get_output_single", c, rc);
        check_output("get_output_single", rc, buf, buf_null, cap, size_null ? nullptr : &out_size,
                     A.get_output_single_writes_nul, index == 1);
    }

    void op_fini_single() {
        CtxPick c = pick_ctx();
        uint32_t id = pick_exec(c);
        int rc = checked("fini_single", A.fini_single(c.h, id));
        expect_refused("fini_single", c, rc);
    }

    void finish() {
        for (size_t i = 0; i < ctxs_.size(); ++i) {
            if (ctxs_[i].live) deinit(i);
        }
    }
};

// The well-behaved tenant: a fixed greedy request on a context no input
// touches. Returns its reply.
std::string canary_reply() {
    uint32_t exec = 0;
    int rc = A.init_execution_context(g->anchor, g->anchor_graph, &exec);
    CHECK(rc == A.success, "the well-behaved tenant cannot open an execution context: " + std::to_string(rc));
    const std::string prompt = "Once upon a time";
    const std::string options = "{\"temp\":0,\"max_tokens\":6}";
    std::vector<uint32_t> dims;
    auto text_tensor = [&](const std::string& s, std::vector<uint8_t>& keep) {
        keep.assign(s.begin(), s.end());
        keep.push_back(0);
        dims = {static_cast<uint32_t>(s.size())};
        fuzz_tensor t{};
        t.has_dims = 1;
        t.dims = dims.data();
        t.n_dims = 1;
        t.type = A.u8_type;
        t.data = keep.data();
        t.size = static_cast<uint32_t>(s.size());
        return t;
    };
    std::vector<uint8_t> k0, k1;
    fuzz_tensor t0 = text_tensor(prompt, k0);
    rc = A.set_input(g->anchor, exec, 0, &t0);
    CHECK(rc == A.success, "the well-behaved tenant's set_input failed: " + std::to_string(rc));
    fuzz_tensor t1 = text_tensor(options, k1);
    rc = A.set_input(g->anchor, exec, 1, &t1);
    CHECK(rc == A.success, "the well-behaved tenant's options were refused: " + std::to_string(rc));
    rc = A.compute(g->anchor, exec);
    CHECK(rc == A.success, "the well-behaved tenant's compute failed: " + std::to_string(rc));
    std::vector<uint8_t> buf(4096);
    uint32_t n = 0;
    rc = A.get_output(g->anchor, exec, 0, buf.data(), static_cast<uint32_t>(buf.size()), 0, &n);
    CHECK(rc == A.success, "the well-behaved tenant's get_output failed: " + std::to_string(rc));
    if (A.get_output_writes_nul && n > 0) n--;
    rc = A.close_execution_context(g->anchor, exec);
    CHECK(rc == A.success, "the well-behaved tenant's close failed");
    return std::string(reinterpret_cast<char*>(buf.data()), n);
}

void print_stats() {
    std::fprintf(stderr, "skipped past bounds: backend %lu, load %lu, request %lu, per-input budget %lu\n",
                 g_skips[skip_backend].load(), g_skips[skip_load].load(), g_skips[skip_request].load(),
                 g_skips[skip_budget].load());
    fuzz::print_hole_counts();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::set_quiet_logging();
    g = new Assets();
    g->models = fuzz::models_dir();
    g->model_bytes = read_file(g->models + "/stories260K.gguf");
    if (g->model_bytes.size() < 1024) {
        std::fprintf(stderr, "%s: cannot read %s/stories260K.gguf\n", harness(), g->models.c_str());
        std::abort();
    }
    const std::string& m = g->models;
    g->names = {m + "/stories260K.gguf", m + "/stories260K.gguf", m + "/stories260K.gguf",
                m + "/llama-2-tiny-random.gguf", m + "/tinyllamas-stories-260k-f32.gguf", m, m + "/missing.gguf",
                m + "/../models/stories260K.gguf", "/dev/null", "stories260K.gguf", std::string(4097, 'a'), ""};

    // The well-behaved tenant, with the settings the inputs' contexts
    // default to, so that they share its decode loop.
    const std::string cfg = std::string("{") + kBackendBase + "}";
    int rc = A.init_backend_with_config(&g->anchor, cfg.c_str(), static_cast<uint32_t>(cfg.size()));
    if (rc != A.success) {
        std::fprintf(stderr, "%s: init_backend_with_config failed: %d\n", harness(), rc);
        std::abort();
    }
    fuzz::set_quiet_logging();
    const std::string path = m + "/stories260K.gguf";
    rc = A.load_by_name(g->anchor, path.c_str(), static_cast<uint32_t>(path.size()), &g->anchor_graph);
    if (rc != A.success) {
        std::fprintf(stderr, "%s: cannot load %s: %d\n", harness(), path.c_str(), rc);
        std::abort();
    }
    // The other model too, so that an input's load of it shares its weights
    // (its 32,000-token vocabulary takes most of a load's time).
    const std::string other = m + "/llama-2-tiny-random.gguf";
    uint32_t other_graph = 0;
    if (A.load_by_name(g->anchor, other.c_str(), static_cast<uint32_t>(other.size()), &other_graph) != A.success) {
        std::fprintf(stderr, "%s: cannot load %s\n", harness(), other.c_str());
        std::abort();
    }
    // Closed at exit, before the library's own exit teardown (registered at
    // its first llama_context, so it runs after this): that teardown stops
    // what is left open and frees nothing through llama.cpp, which
    // LeakSanitizer's check at exit would report as leaks of the anchor's
    // models and contexts.
    std::atexit([] { A.deinit_backend(g->anchor); });
    g->anchor_reply = canary_reply();
    // ../shared/models/README.md: the greedy continuation of the prompt.
    const std::string reference = ", there was a little girl named Lily. She loved to play outside in the park.";
    if (g->anchor_reply.empty() || reference.compare(0, g->anchor_reply.size(), g->anchor_reply) != 0) {
        std::fprintf(stderr, "%s: the greedy reply '%s' is not the model's known one\n", harness(),
                     g->anchor_reply.c_str());
        std::abort();
    }
    // One stale handle from the start, so that picking one reads the same
    // bytes in the first input as in the millionth.
    void* stale = nullptr;
    if (A.init_backend(&stale) != A.success || A.deinit_backend(stale) != A.success) std::abort();
    g->retired.push_back(stale);
    if (std::getenv("WNL_FUZZ_STATS")) std::atexit(print_stats);
    g_trace = std::getenv("WNL_FUZZ_TRACE") != nullptr;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    Sequence(in).run();
    fuzz::set_quiet_logging();  // an input's backend config may have changed the process-wide log
    const std::string reply = canary_reply();
    CHECK(reply == g->anchor_reply,
          "the well-behaved tenant's reply changed: '" + reply + "', was '" + g->anchor_reply + "'");
    return 0;
}
