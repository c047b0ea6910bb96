// Typed configuration and the JSON reader that fills it (SPEC §2).
//
// A Config is built in layers: the backend context's config, then the
// graph's (load_by_name_with_config), then a request's (set_input index 1 or
// run_inference's runtime config). Each layer is applied onto a copy of the
// one below, so a key only changes what it names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <optional>
#include <utility>
#include <vector>

#include "engine/limits.h"
#include "engine/status.h"

namespace wnl {

enum class Priority { high = 0, normal = 1, low = 2 };
inline constexpr int kPriorityCount = 3;
const char* priority_name(Priority p);

enum class LogLevel { debug = 0, info, warn, error, none };
const char* log_level_name(LogLevel l);

// How a model's text is turned into a prompt.
enum class PromptMode { automatic, chat, completion };

struct ModelConfig {
    int32_t n_gpu_layers = 0;
    int32_t main_gpu = 0;
    std::string split_mode = "layer";  // none | layer | row
    std::vector<float> tensor_split;
    uint32_t ctx_size = 0;  // per session; 0 = min(model's n_ctx_train, 4096)
    uint32_t ctx_limit = 0;  // a guest's ceiling on ctx_size 0 (auto); 0 = none
    uint32_t batch_size = 512;
    uint32_t ubatch_size = 512;
    uint32_t prefill_chunk = 64;  // prompt tokens per step beside other requests; 0 = batch_size
    int32_t threads = 0;  // 0 = number of cores
    int32_t threads_batch = 0;  // 0 = same as threads
    bool use_mmap = true;
    bool use_mlock = false;
    std::string flash_attn = "auto";  // on | off | auto
    std::string cache_type_k = "f16";
    std::string cache_type_v = "f16";
    std::string chat_template;  // built-in template name or a Jinja string
    std::string system_prompt;
    std::vector<std::string> rpc_servers;  // host:port
    PromptMode mode = PromptMode::automatic;
    // swap_graph's "force": replace the model even when it is not
    // compatible. Read only from swap_graph's own config.
    bool swap_force = false;
};

struct SamplingConfig {
    float temp = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float typical_p = 1.0f;
    float repeat_penalty = 1.0f;
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    int32_t penalty_last_n = 64;
    int32_t mirostat = 0;  // 0, 1 or 2
    float mirostat_tau = 5.0f;
    float mirostat_eta = 0.1f;
    int64_t seed = -1;  // -1 = random
    float dry_multiplier = 0.0f;
    float dry_base = 1.75f;
    int32_t dry_allowed_length = 2;
    int32_t dry_penalty_last_n = -1;
    std::vector<std::string> dry_sequence_breakers = {"\n", ":", "\"", "*"};
    float xtc_probability = 0.0f;
    float xtc_threshold = 0.1f;
    float dynatemp_range = 0.0f;
    float dynatemp_exponent = 1.0f;
    std::vector<std::pair<int32_t, float>> logit_bias;  // token id, bias
    std::string grammar;  // GBNF
    std::string json_schema;  // a JSON Schema document, serialised
};

struct StoppingConfig {
    std::vector<std::string> stop;
    int32_t max_tokens = 512;  // -1 = until end of generation or context
    int64_t max_time_ms = 0;  // 0 = no limit
    bool ignore_eos = false;
};

struct MemoryConfig {
    bool context_shifting = true;
    bool cache_prompt = true;
    int64_t max_cache_tokens = 0;  // 0 = no limit beyond the context
    int32_t n_keep = 0;
    uint64_t host_cache_bytes = 256ull << 20;  // bound on cached session state in RAM
    uint64_t max_rss_bytes = 0;  // above this process RSS, cached state is dropped; 0 = no bound
};

struct BackendConfig {
    int32_t max_sessions = 128;
    int64_t idle_timeout_ms = 30 * 60 * 1000;
    bool auto_cleanup = true;
    int32_t max_concurrent = 4;
    int32_t queue_size = 256;
    int64_t default_task_timeout_ms = 0;  // 0 = none
    bool priority_scheduling_enabled = true;
    bool fair_scheduling_enabled = true;
    int32_t queue_warning_threshold = 0;  // 0 = off
    int32_t queue_reject_threshold = 0;  // 0 = queue_size
    std::vector<std::string> model_dirs;  // allow-list; empty = any file named *.gguf (model_path.h)
    // Whether a guest may name a model path at all; unset: yes, unless the
    // policy defines aliases and no model_dirs.
    std::optional<bool> guest_paths;
    bool share_kv_process = false;  // share_kv "process": KV prefixes shared across backend contexts
    std::string policy;  // init_backend_with_config's "policy" section, as JSON text
    bool threads_exact = false;  // keep threads/threads_batch above the usable CPUs, never narrow them
    // Durable sessions (docs/sessions.md), host-only (guest_rules.cpp): a
    // native host's backend config or the policy file. A directory, or
    // empty for none.
    std::string session_store;
    std::string session_namespace = "default";
    uint64_t session_store_bytes = 1ull << 30;  // disk bound; 0 = none
    bool session_sync_full = false;  // session_sync: "normal" (false) or "full"
};

struct LoggingConfig {
    LogLevel level = LogLevel::info;
    std::string file;  // empty = stderr
    bool json = false;
    std::vector<std::string> components;  // empty = all
    bool llama_log = false;  // enable-log: llama.cpp's own info lines
    bool llama_debug_log = false;  // enable-debug-log
    bool stream_stdout = false;  // stream-stdout: print tokens as generated
};

// Embedding and reranking graphs (docs/embeddings.md). `enabled`,
// `reranking` and `pooling` are fixed when the graph is loaded (they shape its
// llama_context); `normalize` and `truncate` may change per request.
struct EmbeddingConfig {
    bool enabled = false;  // embedding (WasmEdge's key)
    bool reranking = false;  // rank pooling; input {"query":...,"documents":[...]}
    std::string pooling;  // "" = the model's (mean when it names none) | none | mean | cls | last | rank
    uint32_t batch_tokens = 512;  // embed_batch_tokens: most tokens one decode packs from several inputs
    int32_t normalize = 2;  // embd_normalize: -1 none, 0 max-abs, 1 taxicab, 2 euclidean, >2 p-norm
    bool truncate = false;  // an input past the context is cut instead of refused
};

// Per-request settings that are not sampling or stopping.
struct RequestConfig {
    Priority priority = Priority::normal;
    int64_t timeout_ms = 0;  // 0 = backend's default_task_timeout_ms
};

struct Config {
    ModelConfig model;
    SamplingConfig sampling;
    StoppingConfig stopping;
    MemoryConfig memory;
    BackendConfig backend;
    LoggingConfig logging;
    RequestConfig request;
    EmbeddingConfig embedding;
    Limits limits;  // backend group; enforced from the backend context's config only
};

bool same_logging(const LoggingConfig& a, const LoggingConfig& b);

struct GuestLimits;  // guest_rules.h

// Where a JSON document is being applied. A key outside its scope (a model
// key in a per-request config, say) is logged and ignored.
enum class ConfigScope { backend, model, request };

// Applies the JSON text onto cfg. Empty or whitespace-only text (and
// trailing NULs) mean "no settings". Flat and sectioned layouts, hyphenated
// keys and the SPEC §2 aliases are accepted. Invalid JSON, a wrong type or
// an out-of-range value returns invalid_argument with *error naming the key;
// cfg is then left unchanged. Unknown keys are logged and ignored.
//
// guest: the document comes from a guest and is held to these limits
// (guest_rules.h): a host-only key is invalid_argument, and so is a value
// over its ceiling; values meaning "no limit" are bounded by the ceilings,
// even when the text is blank. Null: the host's own document.
Status apply_config_json(std::string_view text, ConfigScope scope, Config& cfg,
                         std::string* error, const GuestLimits* guest = nullptr);

// False, with *why naming the problem, when the text is not JSON at all (a
// syntax error, or nested too deeply to be parsed); true for blank text and
// for any JSON document, even one that apply_config_json then refuses for
// its shape or values.
bool config_text_parses(std::string_view text, std::string* why);

}  // namespace wnl
