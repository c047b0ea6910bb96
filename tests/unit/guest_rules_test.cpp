// A guest's config documents (SPEC §4): host-only keys refused, values held
// to the ceilings, "no limit" bounded by them; the host's documents free.
#include "engine/guest_rules.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/config.h"
#include "engine/cpu_budget.h"

namespace wnl {
namespace {

Status guest(const std::string& doc, Config& cfg, std::string* err, const GuestLimits& limits = GuestLimits{},
             ConfigScope scope = ConfigScope::model) {
    return apply_config_json(doc, scope, cfg, err, &limits);
}

TEST(GuestRules, HostOnlyKeysAreRefusedForGuestsOnly) {
    const std::vector<std::pair<std::string, std::string>> docs = {
        {"rpc_servers", R"({"rpc_servers":"127.0.0.1:50052"})"},
        {"rpc_servers", R"({"model":{"rpc-servers":["10.0.0.1:1"]}})"},
        {"model_dirs", R"({"model_dirs":["/"]})"},
        {"model_dirs", R"({"backend":{"model_allowlist":"/"}})"},
        {"guest_paths", R"({"guest_paths":true})"},
        {"file", R"({"logging":{"file":"/tmp/x.log"}})"},
        {"file", R"({"log_file":"/tmp/x.log"})"},
        {"share_kv", R"({"share_kv":"process"})"},
        {"threads_exact", R"({"threads_exact":true})"},
        {"threads_exact", R"({"backend":{"threads-exact":false}})"},
        {"policy", R"({"policy":{}})"},
        {"models", R"({"models":{}})"},
        {"ceilings", R"({"ceilings":{}})"},
        {"session_store", R"({"session_store":"/var/lib/x"})"},
        {"session_namespace", R"({"session_namespace":"a"})"},
        {"session_store_bytes", R"({"session_store_bytes":1048576})"},
        {"session_sync", R"({"session_sync":"full"})"},
        {"session_store", R"({"backend":{"session-store":"/var/lib/x"}})"},
        {"chat_template", R"({"chat_template":"{{ messages[0].content }}"})"},
    };
    for (const auto& [key, doc] : docs) {
        for (ConfigScope scope : {ConfigScope::model, ConfigScope::request}) {
            Config cfg;
            std::string err;
            EXPECT_EQ(guest(doc, cfg, &err, GuestLimits{}, scope), Status::invalid_argument) << doc;
            EXPECT_NE(err.find(key + ": host-only key"), std::string::npos) << err;
        }
        Config host;
        std::string err;
        EXPECT_EQ(apply_config_json(doc, ConfigScope::backend, host, &err), Status::ok) << doc << ": " << err;
    }
}

TEST(GuestRules, BuiltInTemplateNamesStayOpen) {
    for (const char* name : {"chatml", "llama3", "llama2", "mistral-v7", "gemma"}) {
        Config cfg;
        std::string err;
        EXPECT_EQ(guest(std::string(R"({"chat_template":")") + name + "\"}", cfg, &err), Status::ok) << name << err;
        EXPECT_EQ(cfg.model.chat_template, name);
    }
}

TEST(GuestRules, RefusedDocumentChangesNothing) {
    Config cfg;
    cfg.stopping.max_tokens = 9;
    std::string err;
    EXPECT_EQ(guest(R"({"max_tokens":3,"rpc_servers":"a:1"})", cfg, &err), Status::invalid_argument);
    EXPECT_EQ(cfg.stopping.max_tokens, 9);
    EXPECT_EQ(guest(R"({"max_tokens":3,"ctx_size":999999})", cfg, &err), Status::invalid_argument);
    EXPECT_EQ(cfg.stopping.max_tokens, 9);
}

TEST(GuestRules, CeilingNamesKeyAndCeiling) {
    Config cfg;
    std::string err;
    EXPECT_EQ(guest(R"({"ctx_size":32768})", cfg, &err), Status::ok);
    EXPECT_EQ(guest(R"({"n_ctx":32769})", cfg, &err), Status::invalid_argument);
    EXPECT_EQ(err, "ctx_size: 32769 is above the host's ceiling of 32768");
    for (const char* doc : {R"({"max_concurrent":65})", R"({"batch_size":8193})", R"({"ubatch_size":2049})",
                            R"({"host_cache_bytes":1073741825})"}) {
        Config c;
        EXPECT_EQ(guest(doc, c, &err), Status::invalid_argument) << doc;
        EXPECT_NE(err.find("above the host's ceiling"), std::string::npos);
    }
    // The host's own values are not held to the ceilings.
    Config host;
    EXPECT_EQ(apply_config_json(R"({"ctx_size":65536,"max_concurrent":200})", ConfigScope::backend, host, &err),
              Status::ok);
    // ...and a guest that does not name them leaves them.
    EXPECT_EQ(guest(R"({"temp":0.5})", host, &err), Status::ok);
    EXPECT_EQ(host.model.ctx_size, 65536u);
}

TEST(GuestRules, EmbeddingGraphsHoldTheirInputToTheUbatchCeiling) {
    // An embedding graph decodes each input whole in one ubatch of
    // max(batch_size, ctx_size) tokens (loop_embed.cpp).
    std::string err;
    Config ok;
    EXPECT_EQ(guest(R"({"embedding":true,"ctx_size":2048,"batch_size":2048})", ok, &err), Status::ok) << err;
    for (const char* doc : {R"({"embedding":true,"ctx_size":2049})", R"({"reranking":true,"batch_size":4096})",
                            R"({"embeddings":true,"n_ctx":8192})"}) {
        Config c;
        EXPECT_EQ(guest(doc, c, &err), Status::invalid_argument) << doc;
        EXPECT_NE(err.find("ubatch_size"), std::string::npos) << err;
    }
    // The model's own context (ctx_size 0) is bounded by it.
    GuestLimits limits;
    limits.ceilings["ubatch_size"] = 600;
    Config e;
    ASSERT_EQ(guest(R"({"embedding":true})", e, &err, limits), Status::ok) << err;
    EXPECT_EQ(e.model.ctx_limit, 600u);
    // Generation graphs keep the ctx_size and batch_size ceilings alone.
    Config g;
    EXPECT_EQ(guest(R"({"ctx_size":8192,"batch_size":4096})", g, &err, limits), Status::ok) << err;
    // Sizes below the guest's document are the host's: not held to ceilings.
    EXPECT_EQ(guest(R"({"embedding":true})", g, &err, limits), Status::ok) << err;
}

TEST(GuestRules, NoLimitBecomesTheCeiling) {
    GuestLimits limits;
    limits.ceilings["max_tokens"] = 100;
    limits.ceilings["max_time_ms"] = 5000;
    limits.ceilings["threads"] = 2;
    limits.ceilings["ctx_size"] = 1024;
    Config cfg;
    std::string err;
    ASSERT_EQ(guest(R"({"max_tokens":-1})", cfg, &err, limits), Status::ok) << err;
    EXPECT_EQ(cfg.stopping.max_tokens, 100);
    EXPECT_EQ(cfg.stopping.max_time_ms, 5000);  // inherited 0 ("none") bounded too
    EXPECT_EQ(cfg.model.threads, std::min(2, usable_cpus()));
    EXPECT_EQ(cfg.model.ctx_size, 0u);  // still the model's own...
    EXPECT_EQ(cfg.model.ctx_limit, 1024u);  // ...at most the ceiling
    // A blank document is bounded as well.
    Config blank;
    ASSERT_EQ(guest("", blank, &err, limits), Status::ok);
    EXPECT_EQ(blank.stopping.max_time_ms, 5000);
    // Per request too.
    Config req = cfg;
    EXPECT_EQ(guest(R"({"max_tokens":101})", req, &err, limits, ConfigScope::request), Status::invalid_argument);
    EXPECT_EQ(err, "max_tokens: 101 is above the host's ceiling of 100");
    EXPECT_EQ(guest(R"({"max_tokens":50,"max_time_ms":0})", req, &err, limits, ConfigScope::request), Status::ok);
    EXPECT_EQ(req.stopping.max_tokens, 50);
    EXPECT_EQ(req.stopping.max_time_ms, 5000);
    EXPECT_EQ(guest(R"({"threads":3})", cfg, &err, limits), Status::invalid_argument);
}

TEST(GuestRules, CapsAreBoundedByTheHostsOwnValue) {
    Config host;
    std::string err;
    ASSERT_EQ(apply_config_json(R"({"max_sessions":10,"max_rss_bytes":1000})", ConfigScope::backend, host, &err),
              Status::ok);
    Config g = host;
    EXPECT_EQ(guest(R"({"max_sessions":2,"max_rss_bytes":10})", g, &err), Status::ok) << err;
    EXPECT_EQ(g.backend.max_sessions, 2);
    g = host;
    EXPECT_EQ(guest(R"({"backend":{"max_sessions":11}})", g, &err), Status::invalid_argument);
    EXPECT_EQ(err, "max_sessions: 11 is above the host's ceiling of 10");
    g = host;
    EXPECT_EQ(guest(R"({"max_rss_bytes":0})", g, &err), Status::ok);  // "no bound" is the host's bound
    EXPECT_EQ(g.memory.max_rss_bytes, 1000u);
    // The host set no RSS bound: the guest's is its own business.
    Config free;
    EXPECT_EQ(guest(R"({"max_rss_bytes":123456789})", free, &err), Status::ok);
}

// HyperBEAM's load configs, as it sends them, with no policy.
TEST(GuestRules, DefaultsAdmitHyperBeamConfigs) {
    for (const char* doc :
         {R"({"n_gpu_layers":98,"ctx_size":2048})",
          R"({"model":{"n_ctx":8192,"n_batch":512,"n_gpu_layers":98,"n_threads":8},
              "sampling":{"temperature":0.7,"top_p":0.9,"top_k":40,"repeat_penalty":1.1},
              "stopping":{"max_tokens":512,"stop":["</s>"]},"backend":{"max_sessions":2}})"}) {
        Config cfg;
        std::string err;
        EXPECT_EQ(guest(doc, cfg, &err), Status::ok) << doc << ": " << err;
    }
}

TEST(GuestRules, CeilingKeys) {
    for (const char* k : {"ctx_size", "max_concurrent", "threads", "threads_batch", "batch_size", "ubatch_size",
                          "host_cache_bytes", "max_time_ms", "max_tokens"}) {
        EXPECT_TRUE(is_ceiling_key(k)) << k;
    }
    EXPECT_FALSE(is_ceiling_key("max_sessions"));  // a cap: the host's value is its ceiling
    EXPECT_FALSE(is_ceiling_key("temp"));
    EXPECT_EQ(host_only_reason("temp", nullptr), "");
}

}  // namespace
}  // namespace wnl
