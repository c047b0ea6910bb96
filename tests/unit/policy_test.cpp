// The policy document, its file (WASI_NN_LLAMA_POLICY) and how the host's
// side of a backend context is assembled from it.
#include "engine/policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace wnl {
namespace {

const char* kFull = R"({
  "model_dirs": ["/srv/models"],
  "guest_paths": true,
  "share_kv": "tenant",
  "logging": {"level": "warn"},
  "max_sessions": 64,
  "models": {
    "tiny": {"path": "/srv/models/stories260K.gguf", "config": {"ctx_size": 512, "temp": 0,
             "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}},
    "big": "/srv/models/big.gguf"
  },
  "ceilings": {"ctx_size": 4096, "max_tokens": 1024, "threads": 4, "host_cache_bytes": 0,
               "batch_size": null, "queue_share": 0.25}
})";

TEST(Policy, ParsesEveryPart) {
    Policy p;
    std::string err;
    ASSERT_EQ(Policy::parse(kFull, "test", &p, &err), Status::ok) << err;
    ASSERT_EQ(p.models.size(), 2u);
    EXPECT_EQ(p.models["tiny"].path, "/srv/models/stories260K.gguf");
    EXPECT_NE(p.models["tiny"].config.find("\"ctx_size\":512"), std::string::npos);
    EXPECT_EQ(p.models["big"].path, "/srv/models/big.gguf");
    EXPECT_TRUE(p.models["big"].config.empty());
    ASSERT_EQ(p.configs.size(), 1u);
    GuestLimits g = p.limits();
    EXPECT_EQ(g.ceilings.at("ctx_size"), 4096);
    EXPECT_EQ(g.ceilings.at("max_tokens"), 1024);
    EXPECT_EQ(g.ceilings.at("threads"), 4);
    EXPECT_EQ(g.ceilings.at("host_cache_bytes"), 0);
    EXPECT_EQ(g.ceilings.count("batch_size"), 0u);  // null: no ceiling, not even the default
    EXPECT_EQ(g.ceilings.at("ubatch_size"), 2048);  // untouched default
    EXPECT_DOUBLE_EQ(g.queue_share, 0.25);
    Config cfg;
    ASSERT_EQ(apply_config_json(p.configs[0], ConfigScope::backend, cfg, &err), Status::ok);
    EXPECT_EQ(cfg.backend.model_dirs, std::vector<std::string>{"/srv/models"});
    EXPECT_EQ(cfg.backend.guest_paths, true);
    EXPECT_EQ(cfg.backend.max_sessions, 64);
}

TEST(Policy, RefusesWhatDoesNotParseNamingWhere) {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"{not json", "f.json: invalid JSON"},
        {"[1]", "f.json: must be a JSON object"},
        {R"({"models":[]})", "models: must be an object"},
        {R"({"models":{"a":1}})", "models.a: must be a path or an object"},
        {R"({"models":{"a":{"config":{}}}})", "models.a: \"path\" is missing"},
        {R"({"models":{"a":{"path":"/x","cfg":{}}}})", "models.a: unknown key \"cfg\""},
        {R"({"models":{"a":{"path":"/x","config":{"ctx_size":-1}}}})", "models.a.config: ctx_size"},
        {R"({"models":{"":"/x"}})", "alias name must be 1 to 256 bytes"},
        {R"({"ceilings":{"temp":1}})", "ceilings.temp: not a ceiling"},
        {R"({"ceilings":{"ctx_size":0}})", "ceilings.ctx_size: must be an integer from 1"},
        {R"({"ceilings":{"ctx_size":1.5}})", "ceilings.ctx_size: must be an integer"},
        {R"({"ceilings":{"max_tokens":"9"}})", "ceilings.max_tokens: must be an integer"},
        {R"({"ceilings":{"queue_share":0}})", "ceilings.queue_share: must be a number above 0"},
        {R"({"ceilings":{"queue_share":1.5}})", "ceilings.queue_share"},
        {R"({"max_concurrent":0})", "config: max_concurrent"},
        {R"({"policy":{}})", "cannot hold another \"policy\""},
    };
    for (const auto& [text, want] : bad) {
        Policy p;
        std::string err;
        EXPECT_EQ(Policy::parse(text, "f.json", &p, &err), Status::invalid_argument) << text;
        EXPECT_NE(err.find(want), std::string::npos) << text << " -> " << err;
    }
}

TEST(Policy, LayeringReplacesByName) {
    Policy file, section;
    std::string err;
    ASSERT_EQ(Policy::parse(R"({"models":{"a":"/a","b":"/b"},"ceilings":{"ctx_size":100,"max_tokens":5}})", "file",
                            &file, &err),
              Status::ok);
    ASSERT_EQ(Policy::parse(R"({"models":{"b":"/b2"},"ceilings":{"ctx_size":null},"share_kv":"process"})", "section",
                            &section, &err),
              Status::ok);
    file.layer(section);
    EXPECT_EQ(file.models["a"].path, "/a");
    EXPECT_EQ(file.models["b"].path, "/b2");
    GuestLimits g = file.limits();
    EXPECT_EQ(g.ceilings.count("ctx_size"), 0u);
    EXPECT_EQ(g.ceilings.at("max_tokens"), 5);
    EXPECT_EQ(file.sources, (std::vector<std::string>{"file", "section"}));
    EXPECT_EQ(file.configs.size(), 1u);
}

class PolicyFile : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/wnl-policy-unit-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        file_ = dir_ + "/policy.json";
        ::setenv("WASI_NN_LLAMA_POLICY", file_.c_str(), 1);
    }
    void TearDown() override {
        ::unsetenv("WASI_NN_LLAMA_POLICY");
        std::remove(file_.c_str());
        ::rmdir(dir_.c_str());
    }
    void write(const std::string& text) {
        std::ofstream out(file_, std::ios::trunc);
        out << text;
    }
    std::string dir_, file_;
};

TEST_F(PolicyFile, ReadWhenChangedOnly) {
    write(R"({"models":{"a":"/a"}})");
    std::shared_ptr<const Policy> p1, p2, p3;
    std::string err;
    ASSERT_EQ(environment_policy(&p1, &err), Status::ok) << err;
    ASSERT_TRUE(p1);
    EXPECT_EQ(p1->models.count("a"), 1u);
    EXPECT_EQ(p1->sources, std::vector<std::string>{file_});
    ASSERT_EQ(environment_policy(&p2, &err), Status::ok);
    EXPECT_EQ(p1.get(), p2.get());  // unchanged: not parsed again
    write(R"({"models":{"b":"/b"}})");
    ASSERT_EQ(environment_policy(&p3, &err), Status::ok);
    EXPECT_NE(p1.get(), p3.get());
    EXPECT_EQ(p3->models.count("b"), 1u);
    EXPECT_EQ(p1->models.count("a"), 1u);  // a holder keeps what it had
}

TEST_F(PolicyFile, MalformedOrMissingFails) {
    std::shared_ptr<const Policy> p;
    std::string err;
    write("{\"ceilings\":");
    EXPECT_EQ(environment_policy(&p, &err), Status::invalid_argument);
    EXPECT_NE(err.find(file_ + ": invalid JSON"), std::string::npos) << err;
    std::remove(file_.c_str());
    EXPECT_EQ(environment_policy(&p, &err), Status::not_found);
    EXPECT_NE(err.find("cannot read policy file '" + file_ + "'"), std::string::npos) << err;
    Config cfg;
    EXPECT_EQ(host_config("", &cfg, &p, &err), Status::not_found);
    ::setenv("WASI_NN_LLAMA_POLICY", dir_.c_str(), 1);  // a directory
    EXPECT_EQ(environment_policy(&p, &err), Status::invalid_argument);
    ::setenv("WASI_NN_LLAMA_POLICY", "", 1);  // empty: no policy
    EXPECT_EQ(environment_policy(&p, &err), Status::ok);
    EXPECT_FALSE(p);
}

TEST_F(PolicyFile, HostConfigLayers) {
    write(R"({"max_sessions":7,"max_concurrent":3,"models":{"a":"/a"},"ceilings":{"ctx_size":100}})");
    Config cfg;
    std::shared_ptr<const Policy> p;
    std::string err;
    ASSERT_EQ(host_config(R"({"max_concurrent":5,"policy":{"max_sessions":9,"models":{"b":"/b"},
                              "ceilings":{"max_tokens":7}}})",
                          &cfg, &p, &err),
              Status::ok)
        << err;
    EXPECT_EQ(cfg.backend.max_concurrent, 5);  // init config over the file
    EXPECT_EQ(cfg.backend.max_sessions, 9);  // the section over both
    EXPECT_TRUE(cfg.backend.policy.empty());
    EXPECT_EQ(p->models.size(), 2u);
    GuestLimits g = p->limits();
    EXPECT_EQ(g.ceilings.at("ctx_size"), 100);
    EXPECT_EQ(g.ceilings.at("max_tokens"), 7);
    EXPECT_EQ(host_config(R"({"policy":{"ceilings":{"nope":1}}})", &cfg, &p, &err), Status::invalid_argument);
    EXPECT_NE(err.find("ceilings.nope"), std::string::npos);
}

// The session store is the host's (docs/sessions.md): the policy file may
// name it for every backend context, a native host's backend config may
// name its own over it.
TEST_F(PolicyFile, SessionStoreComesFromTheFileOrTheInitConfig) {
    write(R"({"session_store":"/var/lib/wnl","session_namespace":"node-1","session_store_bytes":2097152,
              "session_sync":"full"})");
    Config cfg;
    std::shared_ptr<const Policy> p;
    std::string err;
    ASSERT_EQ(host_config("", &cfg, &p, &err), Status::ok) << err;
    EXPECT_EQ(cfg.backend.session_store, "/var/lib/wnl");
    EXPECT_EQ(cfg.backend.session_namespace, "node-1");
    EXPECT_EQ(cfg.backend.session_store_bytes, 2097152u);
    EXPECT_TRUE(cfg.backend.session_sync_full);
    Config over;
    ASSERT_EQ(host_config(R"({"session_namespace":"node-2","policy":{"session_sync":"normal"}})", &over, &p, &err),
              Status::ok)
        << err;
    EXPECT_EQ(over.backend.session_store, "/var/lib/wnl");
    EXPECT_EQ(over.backend.session_namespace, "node-2");
    EXPECT_FALSE(over.backend.session_sync_full);
}

TEST(Policy, NoPolicyAtAll) {
    ::unsetenv("WASI_NN_LLAMA_POLICY");
    Config cfg;
    std::shared_ptr<const Policy> p;
    std::string err;
    ASSERT_EQ(host_config("", &cfg, &p, &err), Status::ok);
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->models.empty());
    EXPECT_TRUE(p->sources.empty());
    GuestLimits g = p->limits();
    EXPECT_EQ(g.ceilings, GuestLimits::default_ceilings());
    EXPECT_DOUBLE_EQ(g.queue_share, 0.5);
}

}  // namespace
}  // namespace wnl
