// The JSON configuration reader (SPEC §2).
#include "engine/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace wnl {
namespace {

// Every field, so "unchanged" can be checked in one comparison.
std::string describe(const Config& c) {
    std::ostringstream o;
    auto list = [&o](const auto& v) {
        o << "[";
        for (const auto& x : v) o << x << "|";
        o << "]";
    };
    const auto& m = c.model;
    o << m.n_gpu_layers << ' ' << m.main_gpu << ' ' << m.split_mode << ' ';
    list(m.tensor_split);
    o << ' ' << m.ctx_size << ' ' << m.batch_size << ' ' << m.ubatch_size << ' ' << m.threads << ' '
      << m.threads_batch << ' ' << m.use_mmap << ' ' << m.use_mlock << ' ' << m.flash_attn << ' ' << m.cache_type_k
      << ' ' << m.cache_type_v << ' ' << m.chat_template << ' ' << m.system_prompt << ' ';
    list(m.rpc_servers);
    o << ' ' << static_cast<int>(m.mode) << '\n';
    const auto& s = c.sampling;
    o << s.temp << ' ' << s.top_k << ' ' << s.top_p << ' ' << s.min_p << ' ' << s.typical_p << ' ' << s.repeat_penalty
      << ' ' << s.presence_penalty << ' ' << s.frequency_penalty << ' ' << s.penalty_last_n << ' ' << s.mirostat << ' '
      << s.mirostat_tau << ' ' << s.mirostat_eta << ' ' << s.seed << ' ' << s.dry_multiplier << ' ' << s.dry_base
      << ' ' << s.dry_allowed_length << ' ' << s.dry_penalty_last_n << ' ';
    list(s.dry_sequence_breakers);
    o << ' ' << s.xtc_probability << ' ' << s.xtc_threshold << ' ' << s.dynatemp_range << ' ' << s.dynatemp_exponent
      << " [";
    for (const auto& [t, b] : s.logit_bias) o << t << ':' << b << '|';
    o << "] " << s.grammar << ' ' << s.json_schema << '\n';
    list(c.stopping.stop);
    o << ' ' << c.stopping.max_tokens << ' ' << c.stopping.max_time_ms << ' ' << c.stopping.ignore_eos << '\n';
    const auto& mem = c.memory;
    o << mem.context_shifting << ' ' << mem.cache_prompt << ' ' << mem.max_cache_tokens << ' ' << mem.n_keep << ' '
      << mem.host_cache_bytes << '\n';
    const auto& b = c.backend;
    o << b.max_sessions << ' ' << b.idle_timeout_ms << ' ' << b.auto_cleanup << ' ' << b.max_concurrent << ' '
      << b.queue_size << ' ' << b.default_task_timeout_ms << ' ' << b.priority_scheduling_enabled << ' '
      << b.fair_scheduling_enabled << ' ' << b.queue_warning_threshold << ' ' << b.queue_reject_threshold << ' ';
    list(b.model_dirs);
    o << ' ' << b.threads_exact;
    o << ' ' << (b.guest_paths ? static_cast<int>(*b.guest_paths) : -1) << ' ' << b.share_kv_process << ' ' << b.policy
      << ' ' << m.ctx_limit;
    o << ' ' << b.session_store << ' ' << b.session_namespace << ' ' << b.session_store_bytes << ' '
      << b.session_sync_full;
    const auto& l = c.logging;
    o << '\n' << static_cast<int>(l.level) << ' ' << l.file << ' ' << l.json << ' ';
    list(l.components);
    o << ' ' << l.llama_log << ' ' << l.llama_debug_log << ' ' << l.stream_stdout << '\n';
    o << static_cast<int>(c.request.priority) << ' ' << c.request.timeout_ms;
    return o.str();
}

// A string literal with its embedded NULs.
template <size_t N>
std::string bytes(const char (&s)[N]) {
    return std::string(s, N - 1);
}

struct Applied {
    Status status;
    std::string error;
    Config cfg;
};

Applied apply(std::string_view text, ConfigScope scope = ConfigScope::backend, Config base = Config{}) {
    Applied r{Status::ok, "", std::move(base)};
    r.status = apply_config_json(text, scope, r.cfg, &r.error);
    return r;
}

// Applies text expecting success.
Config ok(std::string_view text, ConfigScope scope = ConfigScope::backend, Config base = Config{}) {
    Applied r = apply(text, scope, std::move(base));
    EXPECT_EQ(r.status, Status::ok) << text << " -> " << r.error;
    return r.cfg;
}

// Applies text expecting rejection; checks the config was left as it was.
std::string rejected(std::string_view text, ConfigScope scope = ConfigScope::backend) {
    Config base;
    base.model.ctx_size = 777;
    base.stopping.stop = {"keep"};
    Applied r = apply(text, scope, base);
    EXPECT_EQ(r.status, Status::invalid_argument) << text;
    EXPECT_EQ(describe(r.cfg), describe(base)) << text;
    EXPECT_FALSE(r.error.empty()) << text;
    return r.error;
}

TEST(Config, EmptyWhitespaceAndNulsMeanNoSettings) {
    const std::string untouched = describe(Config{});
    for (std::string text : {std::string(), std::string("   \n\t\r "), std::string("\0\0", 2),
                             std::string(" \n\0", 3)}) {
        Applied r = apply(text);
        EXPECT_EQ(r.status, Status::ok);
        EXPECT_EQ(describe(r.cfg), untouched);
    }
    EXPECT_EQ(describe(ok("{}")), untouched);
}

TEST(Config, TrailingNulsAreStripped) {
    std::string text = bytes("{\"ctx_size\":1024}\0\0\0");
    EXPECT_EQ(ok(text).model.ctx_size, 1024u);
}

TEST(Config, InvalidJsonIsRejected) {
    EXPECT_NE(rejected("{ctx_size:1}").find("invalid JSON"), std::string::npos);
    rejected("{\"ctx_size\":1");
    rejected("{\"ctx_size\":1}}");
    rejected("{\"ctx_size\":1} x");
    EXPECT_NE(rejected(R"({"temp":1e400})").find("invalid JSON"), std::string::npos);  // overflows a double
}

TEST(Config, TextEndsAtTheFirstNul) {
    EXPECT_EQ(ok(bytes("{\"ctx_size\":1}\0{\"ctx_size\":2}garbage")).model.ctx_size, 1u);
    rejected(bytes("{\"ctx_size\":\0 1}"));
}

TEST(Config, TopLevelMustBeAnObject) {
    for (const char* text : {"[1,2]", "42", "\"ctx_size\"", "null", "true"}) {
        EXPECT_NE(rejected(text).find("must be a JSON object"), std::string::npos) << text;
    }
}

TEST(Config, NullErrorPointerIsAllowed) {
    Config cfg;
    EXPECT_EQ(apply_config_json("{\"ctx_size\":-1}", ConfigScope::backend, cfg, nullptr), Status::invalid_argument);
    EXPECT_EQ(apply_config_json("{\"ctx_size\":10}", ConfigScope::backend, cfg, nullptr), Status::ok);
    EXPECT_EQ(cfg.model.ctx_size, 10u);
}

TEST(Config, OriginalFlatConfigLoads) {
    Config c = ok(R"({"n_gpu_layers":98,"ctx_size":2048,"n_predict":512,"batch_size":512,"threads":8})");
    EXPECT_EQ(c.model.n_gpu_layers, 98);
    EXPECT_EQ(c.model.ctx_size, 2048u);
    EXPECT_EQ(c.stopping.max_tokens, 512);
    EXPECT_EQ(c.model.batch_size, 512u);
    EXPECT_EQ(c.model.threads, 8);
}

TEST(Config, OriginalNestedConfigLoads) {
    Config c = ok(R"({
      "model":{"n_gpu_layers":98,"ctx_size":2048,"n_predict":512,"batch_size":512,"threads":8},
      "sampling":{"temp":0.7,"top_p":0.95,"top_k":40,"repeat_penalty":1.1},
      "stopping":{"max_tokens":512,"ignore_eos":false},
      "memory":{"context_shifting":true,"cache_prompt":true},
      "backend":{"max_sessions":100,"idle_timeout_ms":300000,"auto_cleanup":true,"max_concurrent":8,"queue_size":50}
    })");
    EXPECT_EQ(c.model.n_gpu_layers, 98);
    EXPECT_EQ(c.model.ctx_size, 2048u);
    EXPECT_EQ(c.model.batch_size, 512u);
    EXPECT_EQ(c.model.threads, 8);
    EXPECT_FLOAT_EQ(c.sampling.temp, 0.7f);
    EXPECT_FLOAT_EQ(c.sampling.top_p, 0.95f);
    EXPECT_EQ(c.sampling.top_k, 40);
    EXPECT_FLOAT_EQ(c.sampling.repeat_penalty, 1.1f);
    EXPECT_EQ(c.stopping.max_tokens, 512);
    EXPECT_FALSE(c.stopping.ignore_eos);
    EXPECT_TRUE(c.memory.context_shifting);
    EXPECT_TRUE(c.memory.cache_prompt);
    EXPECT_EQ(c.backend.max_sessions, 100);
    EXPECT_EQ(c.backend.idle_timeout_ms, 300000);
    EXPECT_TRUE(c.backend.auto_cleanup);
    EXPECT_EQ(c.backend.max_concurrent, 8);
    EXPECT_EQ(c.backend.queue_size, 50);
}

TEST(Config, FlatAndNestedMix) {
    Config c = ok(R"({"ctx_size":1024,"sampling":{"temp":0.25},"top_k":10,"stopping":{"stop":["a"]},
                      "logging":{"format":"json","level":"warn"},"max_sessions":7})");
    EXPECT_EQ(c.model.ctx_size, 1024u);
    EXPECT_FLOAT_EQ(c.sampling.temp, 0.25f);
    EXPECT_EQ(c.sampling.top_k, 10);
    EXPECT_EQ(c.stopping.stop, std::vector<std::string>{"a"});
    EXPECT_TRUE(c.logging.json);
    EXPECT_EQ(c.logging.level, LogLevel::warn);
    EXPECT_EQ(c.backend.max_sessions, 7);
}

TEST(Config, SectionsOnlyGroup) {
    Config c = ok(R"({"backend":{"temp":0.5},"sampling":{"ctx_size":100},"runtime":{"max_tokens":9,"priority":"low"},
                      "memory":{"max_sessions":3},"runtime2":{"temp":0.9}})");
    EXPECT_FLOAT_EQ(c.sampling.temp, 0.5f);  // "runtime2" is not a section: an unknown key
    EXPECT_EQ(c.model.ctx_size, 100u);
    EXPECT_EQ(c.stopping.max_tokens, 9);
    EXPECT_EQ(c.request.priority, Priority::low);
    EXPECT_EQ(c.backend.max_sessions, 3);
    // Sections may nest.
    EXPECT_EQ(ok(R"({"runtime":{"sampling":{"top_k":3}}})").sampling.top_k, 3);
}

TEST(Config, LaterKeysWinInDocumentOrder) {
    EXPECT_EQ(ok(R"({"ctx_size":100,"model":{"ctx_size":200}})").model.ctx_size, 200u);
    EXPECT_EQ(ok(R"({"model":{"ctx_size":200},"n_ctx":300})").model.ctx_size, 300u);
    Config c = ok(R"({"enable-debug-log":true,"log_level":"error"})");
    EXPECT_EQ(c.logging.level, LogLevel::error);
    EXPECT_TRUE(c.logging.llama_debug_log);
    c = ok(R"({"log_level":"error","enable-debug-log":true})");
    EXPECT_EQ(c.logging.level, LogLevel::debug);
}

TEST(Config, HyphenatedKeys) {
    Config c = ok(R"({"ctx-size":4096,"n-gpu-layers":33,"n-predict":64,"enable-log":true,"enable-debug-log":true,
                      "stream-stdout":true,"reverse-prompt":"User:","batch-size":256,"ubatch-size":128,
                      "top-p":0.5,"repeat-penalty":1.2,"main-gpu":1,"split-mode":"row","use-mmap":false,
                      "threads-batch":3,"cache-type-k":"q8_0","json-schema":{"type":"object"},
                      "max-time-ms":1500,"ignore-eos":true,"presence-penalty":0.5})");
    EXPECT_EQ(c.model.ctx_size, 4096u);
    EXPECT_EQ(c.model.n_gpu_layers, 33);
    EXPECT_EQ(c.stopping.max_tokens, 64);
    EXPECT_TRUE(c.logging.llama_log);
    EXPECT_TRUE(c.logging.llama_debug_log);
    EXPECT_EQ(c.logging.level, LogLevel::debug);
    EXPECT_TRUE(c.logging.stream_stdout);
    EXPECT_EQ(c.stopping.stop, std::vector<std::string>{"User:"});
    EXPECT_EQ(c.model.batch_size, 256u);
    EXPECT_EQ(c.model.ubatch_size, 128u);
    EXPECT_FLOAT_EQ(c.sampling.top_p, 0.5f);
    EXPECT_FLOAT_EQ(c.sampling.repeat_penalty, 1.2f);
    EXPECT_EQ(c.model.main_gpu, 1);
    EXPECT_EQ(c.model.split_mode, "row");
    EXPECT_FALSE(c.model.use_mmap);
    EXPECT_EQ(c.model.threads_batch, 3);
    EXPECT_EQ(c.model.cache_type_k, "q8_0");
    EXPECT_EQ(c.sampling.json_schema, R"({"type":"object"})");
    EXPECT_EQ(c.stopping.max_time_ms, 1500);
    EXPECT_TRUE(c.stopping.ignore_eos);
    EXPECT_FLOAT_EQ(c.sampling.presence_penalty, 0.5f);
}

TEST(Config, EveryAlias) {
    Config c = ok(R"({"n_ctx":111,"n_batch":222,"n_ubatch":33,"n_threads":4,"n_threads_batch":5,"temperature":0.3,
                      "repeat_last_n":17,"typical":0.9,"mlock":true,"mmap":false,"repetition_penalty":1.3,"ngl":12,
                      "flash-attn":true,"log_file":"/tmp/x.log","log_format":"json","mode":"completion",
                      "components":["model","queue"]})");
    EXPECT_EQ(c.model.ctx_size, 111u);
    EXPECT_EQ(c.model.batch_size, 222u);
    EXPECT_EQ(c.model.ubatch_size, 33u);
    EXPECT_EQ(c.model.threads, 4);
    EXPECT_EQ(c.model.threads_batch, 5);
    EXPECT_FLOAT_EQ(c.sampling.temp, 0.3f);
    EXPECT_EQ(c.sampling.penalty_last_n, 17);
    EXPECT_FLOAT_EQ(c.sampling.typical_p, 0.9f);
    EXPECT_TRUE(c.model.use_mlock);
    EXPECT_FALSE(c.model.use_mmap);
    EXPECT_FLOAT_EQ(c.sampling.repeat_penalty, 1.3f);
    EXPECT_EQ(c.model.n_gpu_layers, 12);
    EXPECT_EQ(c.model.flash_attn, "on");
    EXPECT_EQ(c.logging.file, "/tmp/x.log");
    EXPECT_TRUE(c.logging.json);
    EXPECT_EQ(c.model.mode, PromptMode::completion);
    EXPECT_EQ(c.logging.components, (std::vector<std::string>{"model", "queue"}));

    EXPECT_EQ(ok(R"({"n_predict":77})").stopping.max_tokens, 77);
    EXPECT_EQ(ok(R"({"antiprompt":["A:","B:"]})").stopping.stop, (std::vector<std::string>{"A:", "B:"}));
    EXPECT_EQ(ok(R"({"reverse_prompt":"Q:"})").stopping.stop, std::vector<std::string>{"Q:"});
    for (const char* key : {"max_cache_bytes", "host_cache_bytes", "cache_ram_bytes", "max-cache-bytes"}) {
        std::string text = std::string("{\"") + key + "\":1073741824}";
        EXPECT_EQ(ok(text).memory.host_cache_bytes, 1073741824u) << key;
    }
    for (const char* key : {"model_dirs", "allowed_model_dirs", "model_allowlist"}) {
        std::string text = std::string("{\"") + key + "\":[\"/models\",\"/opt/m\"]}";
        EXPECT_EQ(ok(text).backend.model_dirs, (std::vector<std::string>{"/models", "/opt/m"})) << key;
    }
    for (const char* key : {"log_level", "level", "log-level"}) {
        std::string text = std::string("{\"") + key + "\":\"error\"}";
        EXPECT_EQ(ok(text).logging.level, LogLevel::error) << key;
    }
    EXPECT_EQ(ok(R"({"priority":"high","timeout_ms":2500})").request.priority, Priority::high);
    EXPECT_EQ(ok(R"({"priority":"high","timeout_ms":2500})").request.timeout_ms, 2500);
    EXPECT_EQ(ok(R"({"mode":"chat"})").model.mode, PromptMode::chat);
    EXPECT_EQ(ok(R"({"mode":"auto"})", ConfigScope::backend, ok(R"({"mode":"chat"})")).model.mode,
              PromptMode::automatic);
}

TEST(Config, EveryFieldByItsOwnName) {
    Config c = ok(R"({
      "n_gpu_layers":-1,"main_gpu":2,"split_mode":"none","tensor_split":[3,1],"ctx_size":8192,"batch_size":1024,
      "ubatch_size":256,"threads":6,"threads_batch":12,"use_mmap":false,"use_mlock":true,"flash_attn":"off",
      "cache_type_k":"q4_0","cache_type_v":"bf16","chat_template":"chatml","system_prompt":"Be brief.",
      "rpc_servers":["10.0.0.1:50052","10.0.0.2:50052"],"mode":"chat",
      "temp":0.1,"top_k":5,"top_p":0.8,"min_p":0.1,"typical_p":0.7,"repeat_penalty":1.5,"presence_penalty":-0.5,
      "frequency_penalty":0.25,"penalty_last_n":-1,"mirostat":2,"mirostat_tau":3.5,"mirostat_eta":0.2,"seed":42,
      "dry_multiplier":0.8,"dry_base":2.0,"dry_allowed_length":3,"dry_penalty_last_n":128,
      "dry_sequence_breakers":["\n","."],"xtc_probability":0.5,"xtc_threshold":0.2,"dynatemp_range":0.5,
      "dynatemp_exponent":1.5,"logit_bias":[[15,-1.5]],"grammar":"root ::= \"yes\"",
      "json_schema":"{\"type\":\"string\"}",
      "stop":["\n\n"],"max_tokens":-1,"max_time_ms":60000,"ignore_eos":true,
      "context_shifting":false,"cache_prompt":false,"max_cache_tokens":100000,"n_keep":-1,
      "host_cache_bytes":5000000000,
      "max_sessions":9,"idle_timeout_ms":0,"auto_cleanup":false,"max_concurrent":256,"queue_size":0,
      "default_task_timeout_ms":30000,"priority_scheduling_enabled":false,"fair_scheduling_enabled":false,
      "queue_warning_threshold":10,"queue_reject_threshold":20,"model_dirs":"/srv/models","threads_exact":true,
      "level":"none","file":"/var/log/wnl.log","json":true,"components":"model, queue ,,sched",
      "llama_log":true,"llama_debug_log":false,"stream_stdout":true,
      "priority":"low","timeout_ms":1234
    })");
    const auto& m = c.model;
    EXPECT_EQ(m.n_gpu_layers, -1);
    EXPECT_EQ(m.main_gpu, 2);
    EXPECT_EQ(m.split_mode, "none");
    EXPECT_EQ(m.tensor_split, (std::vector<float>{3.0f, 1.0f}));
    EXPECT_EQ(m.ctx_size, 8192u);
    EXPECT_EQ(m.batch_size, 1024u);
    EXPECT_EQ(m.ubatch_size, 256u);
    EXPECT_EQ(m.threads, 6);
    EXPECT_EQ(m.threads_batch, 12);
    EXPECT_FALSE(m.use_mmap);
    EXPECT_TRUE(m.use_mlock);
    EXPECT_EQ(m.flash_attn, "off");
    EXPECT_EQ(m.cache_type_k, "q4_0");
    EXPECT_EQ(m.cache_type_v, "bf16");
    EXPECT_EQ(m.chat_template, "chatml");
    EXPECT_EQ(m.system_prompt, "Be brief.");
    EXPECT_EQ(m.rpc_servers, (std::vector<std::string>{"10.0.0.1:50052", "10.0.0.2:50052"}));
    EXPECT_EQ(m.mode, PromptMode::chat);
    const auto& s = c.sampling;
    EXPECT_FLOAT_EQ(s.temp, 0.1f);
    EXPECT_EQ(s.top_k, 5);
    EXPECT_FLOAT_EQ(s.top_p, 0.8f);
    EXPECT_FLOAT_EQ(s.min_p, 0.1f);
    EXPECT_FLOAT_EQ(s.typical_p, 0.7f);
    EXPECT_FLOAT_EQ(s.repeat_penalty, 1.5f);
    EXPECT_FLOAT_EQ(s.presence_penalty, -0.5f);
    EXPECT_FLOAT_EQ(s.frequency_penalty, 0.25f);
    EXPECT_EQ(s.penalty_last_n, -1);
    EXPECT_EQ(s.mirostat, 2);
    EXPECT_FLOAT_EQ(s.mirostat_tau, 3.5f);
    EXPECT_FLOAT_EQ(s.mirostat_eta, 0.2f);
    EXPECT_EQ(s.seed, 42);
    EXPECT_FLOAT_EQ(s.dry_multiplier, 0.8f);
    EXPECT_FLOAT_EQ(s.dry_base, 2.0f);
    EXPECT_EQ(s.dry_allowed_length, 3);
    EXPECT_EQ(s.dry_penalty_last_n, 128);
    EXPECT_EQ(s.dry_sequence_breakers, (std::vector<std::string>{"\n", "."}));
    EXPECT_FLOAT_EQ(s.xtc_probability, 0.5f);
    EXPECT_FLOAT_EQ(s.xtc_threshold, 0.2f);
    EXPECT_FLOAT_EQ(s.dynatemp_range, 0.5f);
    EXPECT_FLOAT_EQ(s.dynatemp_exponent, 1.5f);
    ASSERT_EQ(s.logit_bias.size(), 1u);
    EXPECT_EQ(s.logit_bias[0].first, 15);
    EXPECT_FLOAT_EQ(s.logit_bias[0].second, -1.5f);
    EXPECT_EQ(s.grammar, "root ::= \"yes\"");
    EXPECT_EQ(s.json_schema, R"({"type":"string"})");
    EXPECT_EQ(c.stopping.stop, std::vector<std::string>{"\n\n"});
    EXPECT_EQ(c.stopping.max_tokens, -1);
    EXPECT_EQ(c.stopping.max_time_ms, 60000);
    EXPECT_TRUE(c.stopping.ignore_eos);
    EXPECT_FALSE(c.memory.context_shifting);
    EXPECT_FALSE(c.memory.cache_prompt);
    EXPECT_EQ(c.memory.max_cache_tokens, 100000);
    EXPECT_EQ(c.memory.n_keep, -1);
    EXPECT_EQ(c.memory.host_cache_bytes, 5000000000ull);
    const auto& b = c.backend;
    EXPECT_EQ(b.max_sessions, 9);
    EXPECT_EQ(b.idle_timeout_ms, 0);
    EXPECT_FALSE(b.auto_cleanup);
    EXPECT_EQ(b.max_concurrent, 256);
    EXPECT_EQ(b.queue_size, 0);
    EXPECT_EQ(b.default_task_timeout_ms, 30000);
    EXPECT_FALSE(b.priority_scheduling_enabled);
    EXPECT_FALSE(b.fair_scheduling_enabled);
    EXPECT_EQ(b.queue_warning_threshold, 10);
    EXPECT_EQ(b.queue_reject_threshold, 20);
    EXPECT_EQ(b.model_dirs, std::vector<std::string>{"/srv/models"});
    EXPECT_TRUE(b.threads_exact);
    const auto& l = c.logging;
    EXPECT_EQ(l.level, LogLevel::none);
    EXPECT_EQ(l.file, "/var/log/wnl.log");
    EXPECT_TRUE(l.json);
    EXPECT_EQ(l.components, (std::vector<std::string>{"model", "queue", "sched"}));
    EXPECT_TRUE(l.llama_log);
    EXPECT_FALSE(l.llama_debug_log);
    EXPECT_TRUE(l.stream_stdout);
    EXPECT_EQ(c.request.priority, Priority::low);
    EXPECT_EQ(c.request.timeout_ms, 1234);
}

TEST(Config, WrongTypesAreRejected) {
    struct Case {
        const char* text;
        const char* key;
    };
    for (const Case& t : std::vector<Case>{
             {R"({"ctx_size":"2048"})", "ctx_size"},
             {R"({"n_gpu_layers":true})", "n_gpu_layers"},
             {R"({"top_k":1.5})", "top_k"},
             {R"({"seed":[1]})", "seed"},
             {R"({"temp":"hot"})", "temp"},
             {R"({"temperature":false})", "temperature"},
             {R"({"use_mmap":"yes"})", "use_mmap"},
             {R"({"ignore_eos":2})", "ignore_eos"},
             {R"({"stop":5})", "stop"},
             {R"({"stop":["a",1]})", "stop"},
             {R"({"split_mode":1})", "split_mode"},
             {R"({"tensor_split":true})", "tensor_split"},
             {R"({"tensor_split":"3,x"})", "tensor_split"},
             {R"({"rpc_servers":7})", "rpc_servers"},
             {R"({"model_dirs":3})", "model_dirs"},
             {R"({"logit_bias":"x"})", "logit_bias"},
             {R"({"grammar":{"a":1}})", "grammar"},
             {R"({"dry_sequence_breakers":{"a":1}})", "dry_sequence_breakers"},
             {R"({"components":5})", "components"},
             {R"({"priority":1})", "priority"},
             {R"({"model":{"chat_template":12}})", "chat_template"},
             {R"({"ctx-size":"big"})", "ctx-size"},
         }) {
        std::string error = rejected(t.text);
        EXPECT_EQ(error.rfind(std::string(t.key) + ": ", 0), 0u) << t.text << " -> " << error;
    }
    EXPECT_EQ(rejected(R"({"ctx_size":"2048"})"), "ctx_size: must be an integer, got \"2048\"");
    EXPECT_EQ(rejected(R"({"use_mlock":"yes"})"), "use_mlock: must be a boolean, got \"yes\"");
}

TEST(Config, IntegralFloatsAndZeroOneBooleansAreAccepted) {
    Config c = ok(R"({"ctx_size":2048.0,"max_tokens":-1.0,"use_mmap":0,"ignore_eos":1,"auto_cleanup":0})");
    EXPECT_EQ(c.model.ctx_size, 2048u);
    EXPECT_EQ(c.stopping.max_tokens, -1);
    EXPECT_FALSE(c.model.use_mmap);
    EXPECT_TRUE(c.stopping.ignore_eos);
    EXPECT_FALSE(c.backend.auto_cleanup);
    EXPECT_FLOAT_EQ(ok(R"({"temp":1})").sampling.temp, 1.0f);  // integers are numbers too
}

TEST(Config, OutOfRangeNamesTheKey) {
    EXPECT_EQ(rejected(R"({"ctx_size":-5})"), "ctx_size: must be between 0 and 1048576, got -5");
    EXPECT_EQ(rejected(R"({"ctx_size":1048577})"), "ctx_size: must be between 0 and 1048576, got 1048577");
    EXPECT_EQ(rejected(R"({"n_ctx":-1})"), "n_ctx: must be between 0 and 1048576, got -1");
    EXPECT_EQ(rejected(R"({"top_p":1.5})"), "top_p: must be between 0 and 1, got 1.5");
    EXPECT_EQ(rejected(R"({"temp":-0.1})"), "temp: must be at least 0, got -0.1");
    EXPECT_EQ(rejected(R"({"max_concurrent":257})"), "max_concurrent: must be between 1 and 256, got 257");
    EXPECT_EQ(rejected(R"({"max_sessions":0})"), "max_sessions: must be at least 1, got 0");
    EXPECT_EQ(rejected(R"({"mirostat":3})"), "mirostat: must be between 0 and 2, got 3");
    EXPECT_EQ(rejected(R"({"split_mode":"col"})"), "split_mode: must be one of none, layer, row, got \"col\"");
    struct Case {
        const char* text;
        const char* key;
    };
    for (const Case& t : std::vector<Case>{
             {R"({"ctx_size":18446744073709551615})", "ctx_size"},
             {R"({"batch_size":0})", "batch_size"},
             {R"({"ubatch_size":0})", "ubatch_size"},
             {R"({"batch_size":2000000})", "batch_size"},
             {R"({"prefill_chunk":-1})", "prefill_chunk"},
             {R"({"prefill_chunk":2000000})", "prefill_chunk"},
             {R"({"prefill_chunk":"64"})", "prefill_chunk"},
             {R"({"embed_batch_tokens":0})", "embed_batch_tokens"},
             {R"({"embed_batch_tokens":2000000})", "embed_batch_tokens"},
             {R"({"threads":1025})", "threads"},
             {R"({"threads":-2})", "threads"},
             {R"({"threads_batch":-2})", "threads_batch"},
             {R"({"n_gpu_layers":-2})", "n_gpu_layers"},
             {R"({"n_gpu_layers":3000000000})", "n_gpu_layers"},
             {R"({"main_gpu":-1})", "main_gpu"},
             {R"({"min_p":-0.01})", "min_p"},
             {R"({"typical_p":2})", "typical_p"},
             {R"({"repeat_penalty":-1})", "repeat_penalty"},
             {R"({"penalty_last_n":-2})", "penalty_last_n"},
             {R"({"mirostat_tau":-1})", "mirostat_tau"},
             {R"({"mirostat_eta":-1})", "mirostat_eta"},
             {R"({"seed":-2})", "seed"},
             {R"({"seed":4294967296})", "seed"},
             {R"({"max_tokens":-2})", "max_tokens"},
             {R"({"n_predict":-2})", "n_predict"},
             {R"({"max_time_ms":-1})", "max_time_ms"},
             {R"({"n_keep":-2})", "n_keep"},
             {R"({"queue_size":-1})", "queue_size"},
             {R"({"max_concurrent":0})", "max_concurrent"},
             {R"({"queue_warning_threshold":-1})", "queue_warning_threshold"},
             {R"({"queue_reject_threshold":-1})", "queue_reject_threshold"},
             {R"({"idle_timeout_ms":-1})", "idle_timeout_ms"},
             {R"({"timeout_ms":-1})", "timeout_ms"},
             {R"({"host_cache_bytes":-1})", "host_cache_bytes"},
             {R"({"xtc_probability":1.1})", "xtc_probability"},
             {R"({"dynatemp_range":-0.5})", "dynatemp_range"},
             {R"({"presence_penalty":1e39})", "presence_penalty"},
             {R"({"cache_type_k":"q3"})", "cache_type_k"},
             {R"({"cache_type_v":"f64"})", "cache_type_v"},
             {R"({"flash_attn":"maybe"})", "flash_attn"},
             {R"({"flash_attn":2})", "flash_attn"},
             {R"({"level":"verbose"})", "level"},
             {R"({"log_format":"xml"})", "log_format"},
             {R"({"priority":"urgent"})", "priority"},
             {R"({"mode":"poetry"})", "mode"},
             {R"({"tensor_split":[1,-1]})", "tensor_split"},
             {R"({"tensor_split":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]})", "tensor_split"},
             {R"({"model_dirs":["/a",""]})", "model_dirs"},
             {R"({"file":"/tmp/a\u0000b"})", "file"},
         }) {
        std::string error = rejected(t.text);
        EXPECT_EQ(error.rfind(std::string(t.key) + ": ", 0), 0u) << t.text << " -> " << error;
    }
}

TEST(Config, BoundaryValuesAndAutoSpellings) {
    EXPECT_EQ(ok(R"({"ctx_size":0})").model.ctx_size, 0u);
    EXPECT_EQ(ok(R"({"ctx_size":1048576})").model.ctx_size, 1048576u);
    EXPECT_EQ(ok(R"({"max_concurrent":1})").backend.max_concurrent, 1);
    EXPECT_EQ(ok(R"({"seed":4294967295})").sampling.seed, 4294967295LL);
    EXPECT_EQ(ok(R"({"seed":-1})", ConfigScope::backend, ok(R"({"seed":5})")).sampling.seed, -1);
    EXPECT_EQ(ok(R"({"seed":0})").sampling.seed, 0);
    EXPECT_EQ(ok(R"({"n_gpu_layers":999})").model.n_gpu_layers, 999);
    EXPECT_EQ(ok(R"({"threads":-1})", ConfigScope::backend, ok(R"({"threads":8})")).model.threads, 0);
    EXPECT_EQ(ok(R"({"threads":1024})").model.threads, 1024);
    EXPECT_EQ(ok(R"({"top_k":-5})").sampling.top_k, 0);
    EXPECT_EQ(ok(R"({"top_k":0})").sampling.top_k, 0);
    EXPECT_EQ(ok(R"({"max_tokens":0})").stopping.max_tokens, 0);
    EXPECT_FLOAT_EQ(ok(R"({"top_p":0})").sampling.top_p, 0.0f);
    EXPECT_FLOAT_EQ(ok(R"({"top_p":1})").sampling.top_p, 1.0f);
    EXPECT_EQ(ok(R"({"ubatch_size":1024,"batch_size":512})").model.ubatch_size, 1024u);  // not clamped here
    EXPECT_EQ(ok(R"({"level":"WARNING"})").logging.level, LogLevel::warn);
    EXPECT_EQ(ok(R"({"level":"off"})").logging.level, LogLevel::none);
    EXPECT_EQ(ok(R"({"level":"debug"})").logging.level, LogLevel::debug);
    EXPECT_EQ(ok(R"({"level":"info"})", ConfigScope::backend, ok(R"({"level":"none"})")).logging.level, LogLevel::info);
    EXPECT_EQ(ok(R"({"cache_type_v":"Q8_0"})").model.cache_type_v, "q8_0");
}

TEST(Config, FlashAttnSpellings) {
    EXPECT_EQ(ok(R"({"flash_attn":true})").model.flash_attn, "on");
    EXPECT_EQ(ok(R"({"flash_attn":false})").model.flash_attn, "off");
    EXPECT_EQ(ok(R"({"flash_attn":"enabled"})").model.flash_attn, "on");
    EXPECT_EQ(ok(R"({"flash_attn":"disabled"})").model.flash_attn, "off");
    EXPECT_EQ(ok(R"({"flash_attn":"on"})").model.flash_attn, "on");
    EXPECT_EQ(ok(R"({"flash_attn":"auto"})", ConfigScope::backend, ok(R"({"flash_attn":"on"})")).model.flash_attn,
              "auto");
    EXPECT_EQ(ok(R"({"flash_attn":-1})", ConfigScope::backend, ok(R"({"flash_attn":"on"})")).model.flash_attn,
              "auto");
    EXPECT_EQ(ok(R"({"flash_attn":1})").model.flash_attn, "on");
    EXPECT_EQ(ok(R"({"flash_attn":0})").model.flash_attn, "off");
}

TEST(Config, UnknownKeysAreIgnored) {
    Config c = ok(R"({"foo":1,"ctx_size":100,"model":"x.gguf","sampling":{"bar":[1,2]},"mmproj":"a","stream":true})");
    EXPECT_EQ(c.model.ctx_size, 100u);
    Config untouched;
    untouched.model.ctx_size = 100;
    EXPECT_EQ(describe(c), describe(untouched));
}

TEST(Config, NullValuesMeanNotSet) {
    Config base;
    base.stopping.stop = {"x"};
    base.sampling.seed = 7;
    Config c = ok(R"({"stop":null,"seed":null,"grammar":null,"temp":0.5})", ConfigScope::backend, base);
    EXPECT_EQ(c.stopping.stop, std::vector<std::string>{"x"});
    EXPECT_EQ(c.sampling.seed, 7);
    EXPECT_FLOAT_EQ(c.sampling.temp, 0.5f);
}

TEST(Config, ErrorLeavesConfigUnchanged) {
    Config base;
    base.model.ctx_size = 4096;
    base.sampling.temp = 0.2f;
    base.stopping.stop = {"old"};
    const std::string before = describe(base);
    for (const char* text : {
             R"({"ctx_size":1000,"stop":["new"],"temp":"hot"})",
             R"({"model":{"ctx_size":1000},"sampling":{"top_k":1},"stopping":{"max_tokens":-9}})",
             R"({"reverse-prompt":"x","logit_bias":[[1,2],[3]]})",
             R"({"n_gpu_layers":5,"json_schema":"{not json"})",
         }) {
        Config cfg = base;
        std::string error;
        EXPECT_EQ(apply_config_json(text, ConfigScope::backend, cfg, &error), Status::invalid_argument) << text;
        EXPECT_EQ(describe(cfg), before) << text;
        EXPECT_FALSE(error.empty());
    }
}

TEST(Config, RequestScopeIgnoresModelBackendMemoryAndLoggingKeys) {
    Config base;
    base.model.ctx_size = 4096;
    Config c = ok(R"({"ctx_size":100,"n_gpu_layers":5,"threads":2,"max_sessions":3,"level":"debug",
                      "context_shifting":false,"host_cache_bytes":1,"model_dirs":["/x"],"enable-log":true,
                      "temp":0.1,"max_tokens":7,"priority":"high","timeout_ms":500,"mode":"completion",
                      "stop":["x"],"reverse-prompt":"y","seed":3,"ignore_eos":true,
                      "model":{"n_predict":12,"batch_size":64}})",
                  ConfigScope::request, base);
    Config expected = base;
    expected.sampling.temp = 0.1f;
    expected.stopping.max_tokens = 12;  // n_predict under "model" is still a stopping key
    expected.request.priority = Priority::high;
    expected.request.timeout_ms = 500;
    expected.model.mode = PromptMode::completion;
    expected.stopping.stop = {"x", "y"};
    expected.sampling.seed = 3;
    expected.stopping.ignore_eos = true;
    EXPECT_EQ(describe(c), describe(expected));
    // Keys that do not apply are not validated either.
    EXPECT_EQ(ok(R"({"ctx_size":"bad","temp":0.4})", ConfigScope::request).sampling.temp, 0.4f);
}

TEST(Config, ModelScopeStillAppliesBackendAndLoggingKeys) {
    Config c = ok(R"({"ctx_size":512,"max_sessions":4,"log_level":"error","priority":"low"})", ConfigScope::model);
    EXPECT_EQ(c.model.ctx_size, 512u);
    EXPECT_EQ(c.backend.max_sessions, 4);
    EXPECT_EQ(c.logging.level, LogLevel::error);
    EXPECT_EQ(c.request.priority, Priority::low);
}

TEST(Config, StopStringsAndReversePrompts) {
    using Strings = std::vector<std::string>;
    EXPECT_EQ(ok(R"({"stop":"END"})").stopping.stop, Strings{"END"});
    EXPECT_EQ(ok(R"({"stop":["a","b","a",""]})").stopping.stop, (Strings{"a", "b"}));
    Config base;
    base.stopping.stop = {"old"};
    // "stop" replaces the layer below; reverse prompts append, whatever the order.
    EXPECT_EQ(ok(R"({"stop":["new"]})", ConfigScope::request, base).stopping.stop, Strings{"new"});
    EXPECT_EQ(ok(R"({"stop":[]})", ConfigScope::request, base).stopping.stop, Strings{});
    EXPECT_EQ(ok(R"({"reverse-prompt":"User:"})", ConfigScope::request, base).stopping.stop,
              (Strings{"old", "User:"}));
    EXPECT_EQ(ok(R"({"reverse-prompt":"User:","stop":["new"]})", ConfigScope::request, base).stopping.stop,
              (Strings{"new", "User:"}));
    EXPECT_EQ(ok(R"({"stop":["new"],"antiprompt":["A","B"]})", ConfigScope::request, base).stopping.stop,
              (Strings{"new", "A", "B"}));
    // Flat and sectioned "stop" in one document both count.
    EXPECT_EQ(ok(R"({"stop":["a"],"stopping":{"stop":["b"]}})", ConfigScope::request, base).stopping.stop,
              (Strings{"a", "b"}));
    // Applying the same WasmEdge config twice does not duplicate.
    Config twice = ok(R"({"reverse-prompt":"Q:"})", ConfigScope::backend, ok(R"({"reverse-prompt":"Q:"})"));
    EXPECT_EQ(twice.stopping.stop, Strings{"Q:"});
}

TEST(Config, LogitBiasForms) {
    Config c = ok(R"({"logit_bias":[[15,-1.5],[2,3],[7,false]]})");
    ASSERT_EQ(c.sampling.logit_bias.size(), 3u);
    EXPECT_EQ(c.sampling.logit_bias[0], (std::pair<int32_t, float>{15, -1.5f}));
    EXPECT_EQ(c.sampling.logit_bias[1], (std::pair<int32_t, float>{2, 3.0f}));
    EXPECT_EQ(c.sampling.logit_bias[2].first, 7);
    EXPECT_TRUE(std::isinf(c.sampling.logit_bias[2].second));
    EXPECT_LT(c.sampling.logit_bias[2].second, 0.0f);

    c = ok(R"({"logit_bias":{"100":5,"42":-100.5}})");
    ASSERT_EQ(c.sampling.logit_bias.size(), 2u);
    EXPECT_EQ(c.sampling.logit_bias[0], (std::pair<int32_t, float>{100, 5.0f}));
    EXPECT_EQ(c.sampling.logit_bias[1], (std::pair<int32_t, float>{42, -100.5f}));

    // Replaces, not appends; [] clears.
    EXPECT_TRUE(ok(R"({"logit_bias":[]})", ConfigScope::backend, c).sampling.logit_bias.empty());

    for (const char* text : {R"({"logit_bias":[[1]]})", R"({"logit_bias":[[1,2,3]]})", R"({"logit_bias":[1,2]})",
                             R"({"logit_bias":[["hello",1]]})", R"({"logit_bias":[[-1,1]]})",
                             R"({"logit_bias":[[1,"x"]]})", R"({"logit_bias":[[1,true]]})",
                             R"({"logit_bias":{"abc":1}})", R"({"logit_bias":{"-1":1}})",
                             R"({"logit_bias":{"99999999999":1}})", R"({"logit_bias":{"1":"x"}})"}) {
        EXPECT_EQ(rejected(text).rfind("logit_bias: ", 0), 0u) << text;
    }
}

TEST(Config, JsonSchemaForms) {
    EXPECT_EQ(ok(R"({"json_schema":{"type":"object","properties":{"a":{"type":"integer"}}}})").sampling.json_schema,
              R"({"type":"object","properties":{"a":{"type":"integer"}}})");
    EXPECT_EQ(ok(R"({"json_schema":"{ \"type\" : \"array\" }"})").sampling.json_schema, R"({"type":"array"})");
    Config with_schema = ok(R"({"json_schema":{"type":"string"}})");
    EXPECT_EQ(ok(R"({"json_schema":""})", ConfigScope::request, with_schema).sampling.json_schema, "");
    EXPECT_EQ(rejected(R"({"json_schema":"{not json"})").rfind("json_schema: ", 0), 0u);
    EXPECT_EQ(rejected(R"({"json_schema":"[1,2]"})").rfind("json_schema: ", 0), 0u);
    EXPECT_EQ(rejected(R"({"json_schema":42})").rfind("json_schema: ", 0), 0u);
    EXPECT_EQ(rejected(R"({"json_schema":["a"]})").rfind("json_schema: ", 0), 0u);
}

TEST(Config, TensorSplitAndRpcServerForms) {
    EXPECT_EQ(ok(R"({"tensor_split":[0.5,0.25,0.25]})").model.tensor_split, (std::vector<float>{0.5f, 0.25f, 0.25f}));
    EXPECT_EQ(ok(R"({"tensor_split":"3,1"})").model.tensor_split, (std::vector<float>{3.0f, 1.0f}));
    EXPECT_EQ(ok(R"({"tensor_split":"3/1.5"})").model.tensor_split, (std::vector<float>{3.0f, 1.5f}));
    EXPECT_EQ(ok(R"({"rpc_servers":"a:1, b:2"})").model.rpc_servers, (std::vector<std::string>{"a:1", "b:2"}));
    EXPECT_EQ(ok(R"({"rpc_servers":["a:1"]})").model.rpc_servers, std::vector<std::string>{"a:1"});
}

TEST(Config, DeepNestingIsRefused) {
    std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
    EXPECT_NE(rejected(deep).find("nested deeper"), std::string::npos);
    std::string sections;
    for (int i = 0; i < 100; ++i) sections += "{\"model\":";
    sections += "{}" + std::string(100, '}');
    rejected(sections);
    std::string schema = "{\"json_schema\":\"" + std::string(100, '[') + std::string(100, ']') + "\"}";
    EXPECT_EQ(rejected(schema).rfind("json_schema: ", 0), 0u);
    // Brackets inside strings do not count.
    std::string grammar = "{\"grammar\":\"" + std::string(100, '[') + "\"}";
    EXPECT_EQ(ok(grammar).sampling.grammar, std::string(100, '['));
}

TEST(Config, LayersApplyOntoEachOther) {
    Config cfg;
    std::string error;
    ASSERT_EQ(apply_config_json(R"({"ctx_size":2048,"temp":0.7,"max_sessions":10})", ConfigScope::backend, cfg, &error),
              Status::ok);
    ASSERT_EQ(apply_config_json(R"({"model":{"ctx_size":1024}})", ConfigScope::model, cfg, &error), Status::ok);
    ASSERT_EQ(apply_config_json(R"({"temperature":0.1,"ctx_size":64})", ConfigScope::request, cfg, &error), Status::ok);
    EXPECT_EQ(cfg.model.ctx_size, 1024u);
    EXPECT_FLOAT_EQ(cfg.sampling.temp, 0.1f);
    EXPECT_EQ(cfg.backend.max_sessions, 10);
    EXPECT_EQ(cfg.sampling.top_k, 40);  // untouched default
}

TEST(Config, NamesOfEnums) {
    EXPECT_STREQ(priority_name(Priority::high), "high");
    EXPECT_STREQ(priority_name(Priority::normal), "normal");
    EXPECT_STREQ(priority_name(Priority::low), "low");
    EXPECT_STREQ(log_level_name(LogLevel::debug), "debug");
    EXPECT_STREQ(log_level_name(LogLevel::info), "info");
    EXPECT_STREQ(log_level_name(LogLevel::warn), "warn");
    EXPECT_STREQ(log_level_name(LogLevel::error), "error");
    EXPECT_STREQ(log_level_name(LogLevel::none), "none");
}

TEST(StatusName, EveryStatusHasItsName) {
    const std::vector<std::pair<Status, const char*>> names = {
        {Status::ok, "ok"},
        {Status::invalid_argument, "invalid_argument"},
        {Status::invalid_encoding, "invalid_encoding"},
        {Status::missing_memory, "missing_memory"},
        {Status::busy, "busy"},
        {Status::timeout, "timeout"},
        {Status::runtime_error, "runtime_error"},
        {Status::unsupported_operation, "unsupported_operation"},
        {Status::too_large, "too_large"},
        {Status::not_found, "not_found"},
        {Status::security, "security"},
        {Status::end_of_sequence, "end_of_sequence"},
        {Status::context_full, "context_full"},
        {Status::prompt_too_long, "prompt_too_long"},
        {Status::model_not_found, "model_not_found"},
        {Status::path_refused, "path_refused"},
    };
    for (const auto& [status, name] : names) EXPECT_STREQ(status_name(status), name);
    EXPECT_STREQ(status_name(static_cast<Status>(999)), "unknown");
}

}  // namespace
}  // namespace wnl

namespace wnl {
namespace {

TEST(Config, SessionStoreKeys) {
    const Config c = ok(R"({"backend":{"session-store":"/var/lib/s","session_namespace":"node-7",
                           "session_store_bytes":1048576,"session_sync":"FULL"}})");
    EXPECT_EQ(c.backend.session_store, "/var/lib/s");
    EXPECT_EQ(c.backend.session_namespace, "node-7");
    EXPECT_EQ(c.backend.session_store_bytes, 1048576u);
    EXPECT_TRUE(c.backend.session_sync_full);
    const Config d = ok("{}");
    EXPECT_TRUE(d.backend.session_store.empty()) << "no store unless the host names one";
    EXPECT_EQ(d.backend.session_namespace, "default");
    EXPECT_EQ(d.backend.session_store_bytes, 1ull << 30);
    EXPECT_FALSE(d.backend.session_sync_full);
    EXPECT_EQ(ok(R"({"session_store_bytes":0})").backend.session_store_bytes, 0u) << "0 = no bound";
    EXPECT_NE(rejected(R"({"session_store_bytes":4096})").find("session_store_bytes"), std::string::npos);
    EXPECT_NE(rejected(R"({"session_sync":"always"})").find("session_sync"), std::string::npos);
    EXPECT_NE(rejected(R"({"session_namespace":""})").find("session_namespace"), std::string::npos);
    EXPECT_NE(rejected(("{\"session_namespace\":\"" + std::string(129, 'n') + "\"}")).find("128"),
              std::string::npos);
    EXPECT_NE(rejected(R"({"session_store":["/a"]})").find("session_store"), std::string::npos);
}

}  // namespace
}  // namespace wnl
