// The host's policy through the WAMR ABI (dlopen): host-only keys, paths,
// aliases, ceilings, the policy file, tenant isolation and the queue share.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/policy_fixture.h"
#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

WamrApi& api() { return WamrApi::get(); }

decltype(&::get_backend_status) status_fn() {
    static auto fn = reinterpret_cast<decltype(&::get_backend_status)>(dlsym(api().lib, "get_backend_status"));
    return fn;
}

const std::string kModel = model_path("stories260K.gguf");
const std::string kQuiet = "{\"logging\":{\"level\":\"error\"}}";

// One backend context, deinitialised at the end.
struct Ctx {
    void* ctx = nullptr;
    wasi_nn_error rc;
    explicit Ctx(const std::string& cfg = "")
        : rc(cfg.empty() ? api().init_backend(&ctx)
                         : api().init_backend_with_config(&ctx, cfg.data(), static_cast<uint32_t>(cfg.size()))) {}
    ~Ctx() {
        if (rc == success) api().deinit_backend(ctx);
    }
    wasi_nn_error load(const std::string& name, const std::string& cfg = "", graph* out = nullptr) {
        graph g = 0;
        wasi_nn_error e = cfg.empty() ? api().load_by_name(ctx, name.data(), static_cast<uint32_t>(name.size()), &g)
                                      : api().load_by_name_with_config(ctx, name.data(),
                                                                       static_cast<uint32_t>(name.size()), cfg.data(),
                                                                       static_cast<uint32_t>(cfg.size()), &g);
        if (out) *out = g;
        return e;
    }
    json status(backend_status_type type) {
        std::vector<char> buf(1 << 20);
        EXPECT_EQ(status_fn()(ctx, type, buf.data(), static_cast<uint32_t>(buf.size())), success);
        return json::parse(buf.data());
    }
};

wasi_nn_error set_text(void* ctx, graph_execution_context e, uint32_t index, const std::string& text) {
    uint32_t dim = static_cast<uint32_t>(text.size());
    tensor_dimensions dims{&dim, 1};
    tensor t{};
    t.dimensions = &dims;
    t.type = u8;
    t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(text.data())), dim};
    return api().set_input(ctx, e, index, &t);
}

// One turn on a fresh anonymous execution context; its metadata.
json turn(Ctx& c, graph g, const std::string& prompt, const std::string& options = "", wasi_nn_error* rc = nullptr) {
    graph_execution_context e = 0;
    EXPECT_EQ(api().init_execution_context(c.ctx, g, &e), success);
    wasi_nn_error r = set_text(c.ctx, e, 0, prompt);
    if (r == success && !options.empty()) r = set_text(c.ctx, e, 1, options);
    if (r == success) r = api().compute(c.ctx, e);
    if (rc) *rc = r;
    json meta;
    if (r == success) {
        std::vector<uint8_t> buf(1 << 16);
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t size = 0;
        EXPECT_EQ(api().get_output(c.ctx, e, 1, &td, &size), success);
        meta = json::parse(std::string(reinterpret_cast<char*>(buf.data()), size));
    } else {
        EXPECT_TRUE(rc) << "turn failed: " << r;
    }
    api().close_execution_context(c.ctx, e);
    return meta;
}

// The process log goes to a file while the object lives (until a backend
// config with other logging settings comes along: logging is process-wide).
class LogFile {
public:
    LogFile() : path_("/tmp/wnl-policy-log-" + std::to_string(::getpid()) + ".txt") {
        std::remove(path_.c_str());
        const std::string cfg = "{\"logging\":{\"level\":\"info\",\"file\":" + json_string(path_) + "}}";
        Ctx c(cfg);
        EXPECT_EQ(c.rc, success);
    }
    ~LogFile() {
        Ctx c("{\"logging\":{\"level\":\"warn\"}}");  // back to stderr
        std::remove(path_.c_str());
    }
    std::string text() const { return read_text(path_); }

private:
    std::string path_;
};

const std::string kLong = "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":60000}";

}  // namespace

// Each host-only key, in each place a guest writes config: refused, and the
// log names the key. The same key from the host is fine.
TEST(PolicyWamr, GuestHostOnlyKeysAreRefused) {
    LogFile log;
    Ctx c;  // a logging config here would take the log back from the file
    ASSERT_EQ(c.rc, success);
    const std::vector<std::pair<std::string, std::string>> docs = {
        {"rpc_servers", "{\"rpc_servers\":\"127.0.0.1:1\"}"},
        {"rpc_servers", "{\"model\":{\"rpc-servers\":[\"127.0.0.1:1\"]}}"},
        {"model_dirs", "{\"backend\":{\"model_dirs\":[\"/\"]}}"},
        {"model_dirs", "{\"allowed_model_dirs\":[\"/\"]}"},
        {"guest_paths", "{\"guest_paths\":true}"},
        {"file", "{\"logging\":{\"file\":\"/tmp/wnl-guest-log.txt\"}}"},
        {"file", "{\"log-file\":\"/tmp/wnl-guest-log.txt\"}"},
        {"share_kv", "{\"share_kv\":\"process\"}"},
        {"threads_exact", "{\"threads_exact\":true}"},
        {"chat_template", "{\"chat_template\":\"{% for m in messages %}{{ m.content }}{% endfor %}\"}"},
        {"policy", "{\"policy\":{\"models\":{}}}"},
        {"models", "{\"models\":{\"x\":\"/etc/passwd\"}}"},
        {"ceilings", "{\"ceilings\":{\"ctx_size\":null}}"},
        {"session_store", "{\"session_store\":\"/tmp\"}"},
        {"session_namespace", "{\"session_namespace\":\"other\"}"},
        {"session_store_bytes", "{\"session_store_bytes\":1}"},
        {"session_sync", "{\"session_sync\":\"full\"}"},
    };
    graph g = 0;
    ASSERT_EQ(c.load(kModel, "{\"temp\":0,\"max_tokens\":2}", &g), success);
    for (const auto& [key, doc] : docs) {
        EXPECT_EQ(c.load(kModel, doc), invalid_argument) << doc;
        graph_execution_context e = 0;
        ASSERT_EQ(api().init_execution_context(c.ctx, g, &e), success);
        EXPECT_EQ(set_text(c.ctx, e, 1, doc), invalid_argument) << "set_input index 1: " << doc;
        std::string prompt = "Once upon a time";
        uint32_t dim = static_cast<uint32_t>(prompt.size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(prompt.data()), dim};
        uint8_t out[256];
        uint32_t out_size = sizeof out;
        EXPECT_EQ(api().run_inference(c.ctx, e, 0, &t, out, &out_size, doc.data(), static_cast<uint32_t>(doc.size())),
                  invalid_argument)
            << "run_inference: " << doc;
        api().close_execution_context(c.ctx, e);
        EXPECT_NE(log.text().find(key + ": host-only key"), std::string::npos) << key;
    }
    // A built-in template name stays open to guests.
    EXPECT_EQ(c.load(kModel, "{\"chat_template\":\"chatml\"}"), success);

    // From the host the same keys are accepted: a Jinja template in the
    // backend config, and share_kv / guest_paths.
    Ctx host("{\"logging\":{\"level\":\"error\"},\"share_kv\":\"process\",\"guest_paths\":true,"
             "\"chat_template\":\"{% for m in messages %}{{ m.content }}{% endfor %}\"}");
    ASSERT_EQ(host.rc, success);
    EXPECT_EQ(host.load(kModel), success);
}

// rpc_servers would make the host connect where the guest says: nothing may
// connect, from a graph config or a request's options.
TEST(PolicyWamr, GuestRpcServersConnectNowhere) {
    LoopbackListener listener;
    Ctx c(kQuiet);
    ASSERT_EQ(c.rc, success);
    const std::string doc = "{\"n_gpu_layers\":99,\"rpc_servers\":" + json_string(listener.endpoint()) + "}";
    EXPECT_EQ(c.load(kModel, doc), invalid_argument);
    graph g = 0;
    ASSERT_EQ(c.load(kModel, "{\"max_tokens\":2}", &g), success);
    wasi_nn_error rc = success;
    turn(c, g, "Once", doc, &rc);
    EXPECT_EQ(rc, invalid_argument);
    EXPECT_FALSE(listener.connection_arrived());
}

// Without any policy: the README's job (a .gguf by path) works; other files
// are refused with one code whether or not they exist.
TEST(PolicyWamr, DefaultRulesWithoutPolicy) {
    PolicyTree tree(kModel);
    Ctx c(kQuiet);
    ASSERT_EQ(c.rc, success);
    EXPECT_EQ(c.load(kModel), success);
    EXPECT_EQ(c.load(tree.outside() + "/secret.gguf"), success);
    EXPECT_EQ(c.load(tree.outside() + "/missing.gguf"), model_not_found);
    EXPECT_EQ(c.load(tree.outside() + "/secret.txt"), not_found);
    EXPECT_EQ(c.load(tree.outside() + "/missing.txt"), not_found);
    EXPECT_EQ(c.load("/etc/passwd"), not_found);
    EXPECT_EQ(c.load("/etc/no-such-file"), not_found);
    EXPECT_EQ(c.load(tree.allowed()), not_found);  // a directory
    // A .gguf name that leads to a file that is not one.
    std::filesystem::create_symlink(tree.outside() + "/secret.txt", tree.path("txt.gguf"));
    std::filesystem::create_symlink(tree.outside() + "/gone.txt", tree.path("gone.gguf"));
    EXPECT_EQ(c.load(tree.path("txt.gguf")), not_found);
    EXPECT_EQ(c.load(tree.path("gone.gguf")), not_found);
}

// model_dirs from the host: outside, traversal, symlinks out, existing or
// missing: all the same code; inside, missing is model_not_found.
TEST(PolicyWamr, AllowListRefusesEveryWayOut) {
    PolicyTree tree(kModel);
    for (bool from_file : {false, true}) {
        SCOPED_TRACE(from_file ? "model_dirs from the policy file" : "model_dirs from init_backend_with_config");
        const std::string dirs = "{\"model_dirs\":[" + json_string(tree.allowed()) + "],\"logging\":{\"level\":\"error\"}}";
        const std::string policy_file = tree.path("policy.json");
        PolicyTree::write(policy_file, dirs);
        std::unique_ptr<PolicyEnv> env;
        if (from_file) env = std::make_unique<PolicyEnv>(policy_file);
        Ctx c(from_file ? "" : dirs);
        ASSERT_EQ(c.rc, success);
        EXPECT_EQ(c.load(tree.allowed() + "/model.gguf"), success);
        EXPECT_EQ(c.load(tree.allowed() + "/link-in.gguf"), success);
        EXPECT_EQ(c.load(tree.allowed() + "/./sub/../model.gguf"), success);
        EXPECT_EQ(c.load(tree.allowed() + "/missing.gguf"), model_not_found);
        for (const std::string& refused :
             {tree.outside() + "/secret.gguf", tree.outside() + "/missing.gguf", tree.outside() + "/secret.txt",
              tree.allowed() + "/../outside/secret.gguf", tree.allowed() + "/../outside/missing.gguf",
              tree.allowed() + "/../../../../../../etc/passwd", tree.allowed() + "/link-out.gguf",
              tree.allowed() + "/dangling.gguf", kModel, std::string("/etc/passwd"), std::string("/etc/missing")}) {
            EXPECT_EQ(c.load(refused), not_found) << refused;
        }
        // A guest's own model_dirs cannot widen it.
        EXPECT_EQ(c.load(tree.outside() + "/secret.gguf", "{\"model_dirs\":[" + json_string(tree.outside()) + "]}"),
                  invalid_argument);
    }
}

// Aliases from the policy file: the host's path and config, the guest's
// config over it within the ceilings; reported in the MODEL status. With
// aliases and no model_dirs, guests name no paths.
TEST(PolicyWamr, AliasesLoadTheHostsModel) {
    PolicyTree tree(kModel);
    LogFile log;
    const std::string policy = tree.path("policy.json");
    PolicyTree::write(policy, "{\"logging\":{\"level\":\"info\"},"
                              "\"models\":{\"tiny\":{\"path\":" + json_string(tree.outside() + "/secret.gguf") +
                                  ",\"config\":{\"ctx_size\":256,\"temp\":0,\"max_tokens\":8,"
                                  "\"chat_template\":\"{% for m in messages %}{{ m.content }}{% endfor %}\"}},"
                                  "\"short\":" + json_string(kModel) + "},"
                              "\"ceilings\":{\"ctx_size\":512,\"max_tokens\":16}}");
    PolicyEnv env(policy);
    Ctx c;
    ASSERT_EQ(c.rc, success);
    graph g = 0;
    ASSERT_EQ(c.load("tiny", "", &g), success);
    json m = c.status(BACKEND_STATUS_MODEL);
    ASSERT_EQ(m["graphs"].size(), 1u);
    EXPECT_EQ(m["graphs"][0]["alias"], "tiny");
    EXPECT_EQ(m["graphs"][0]["context_per_session"], 256);
    EXPECT_EQ(m["graphs"][0]["chat_template"], true);  // the host's Jinja template
    ASSERT_EQ(m["aliases"].size(), 2u);
    EXPECT_EQ(m["aliases"][0]["name"], "short");
    EXPECT_EQ(m["aliases"][1]["name"], "tiny");
    EXPECT_EQ(m["policy"]["guest_paths"], false);
    EXPECT_EQ(m["policy"]["ceilings"]["ctx_size"], 512);

    json meta = turn(c, g, "Once upon a time");
    EXPECT_EQ(meta["output_tokens"], 8);  // the alias's max_tokens
    meta = turn(c, g, "Once upon a time", "{\"max_tokens\":3}");
    EXPECT_EQ(meta["output_tokens"], 3);  // the guest's, over the alias
    wasi_nn_error rc = success;
    turn(c, g, "Once upon a time", "{\"max_tokens\":17}", &rc);
    EXPECT_EQ(rc, invalid_argument);
    EXPECT_NE(log.text().find("max_tokens: 17 is above the host's ceiling of 16"), std::string::npos);
    meta = turn(c, g, "Once upon a time", "{\"max_tokens\":-1,\"ignore_eos\":true}");
    EXPECT_EQ(meta["output_tokens"], 16);  // "no limit" is as many as the ceiling allows

    graph g2 = 0;
    EXPECT_EQ(c.load("tiny", "{\"ctx_size\":512}", &g2), success);
    EXPECT_EQ(c.load("tiny", "{\"ctx_size\":1024}"), invalid_argument);
    EXPECT_NE(log.text().find("ctx_size: 1024 is above the host's ceiling of 512"), std::string::npos);
    EXPECT_EQ(c.load("short"), success);
    // Aliases and no model_dirs: no guest paths, existing or not.
    EXPECT_EQ(c.load(kModel), not_found);
    EXPECT_EQ(c.load(tree.outside() + "/missing.gguf"), not_found);
    EXPECT_EQ(c.load("nope"), not_found);
}

// A native host gives the policy in init_backend_with_config.
TEST(PolicyWamr, PolicySectionOfInitConfig) {
    Ctx c("{\"logging\":{\"level\":\"error\"},\"policy\":{\"models\":{\"m\":{\"path\":" + json_string(kModel) +
          ",\"config\":{\"max_tokens\":5,\"temp\":0}}},\"guest_paths\":true}}");
    ASSERT_EQ(c.rc, success);
    graph g = 0;
    ASSERT_EQ(c.load("m", "", &g), success);
    EXPECT_EQ(turn(c, g, "Once upon a time")["output_tokens"], 5);
    EXPECT_EQ(c.load(kModel), success);  // guest_paths says yes
    // A bad section fails init_backend.
    Ctx bad("{\"policy\":{\"ceilings\":{\"no_such_key\":1}}}");
    EXPECT_EQ(bad.rc, invalid_argument);
}

// A policy file that is malformed or missing fails init_backend, with a
// log line naming the file; one that changes is read again by the next
// init_backend, and a context already open keeps the policy it had.
TEST(PolicyWamr, PolicyFileMalformedMissingChanged) {
    PolicyTree tree(kModel);
    LogFile log;
    const std::string file = tree.path("policy.json");
    {
        PolicyTree::write(file, "{\"models\": {not json");
        PolicyEnv env(file);
        Ctx c;
        EXPECT_EQ(c.rc, invalid_argument);
        const std::string text = log.text();
        EXPECT_NE(text.find("policy file rejected"), std::string::npos);
        EXPECT_NE(text.find(file + ": invalid JSON"), std::string::npos) << text;
    }
    {
        PolicyEnv env(tree.path("missing.json"));
        Ctx c;
        EXPECT_EQ(c.rc, not_found);
        EXPECT_NE(log.text().find("cannot read policy file '" + tree.path("missing.json") + "'"), std::string::npos);
    }
    PolicyTree::write(file, "{\"models\":{\"one\":" + json_string(kModel) + "}}");
    PolicyEnv env(file);
    Ctx a;
    ASSERT_EQ(a.rc, success);
    EXPECT_EQ(a.load("one"), success);
    PolicyTree::write(file, "{\"models\":{\"two\":" + json_string(kModel) + "},\"ceilings\":{\"ctx_size\":300}}");
    Ctx b;
    ASSERT_EQ(b.rc, success);
    EXPECT_EQ(b.load("two"), success);
    EXPECT_EQ(b.load("one"), not_found);  // not an alias any more, and guests name no paths
    EXPECT_EQ(b.load("two", "{\"ctx_size\":400}"), invalid_argument);
    EXPECT_NE(log.text().find("policy file changed; read again"), std::string::npos);
    // The first context keeps the first policy.
    EXPECT_EQ(a.load("one"), success);
    EXPECT_EQ(a.load("two"), not_found);
    EXPECT_EQ(a.load("one", "{\"ctx_size\":400}"), success);
    // Broken again: new contexts fail, open ones keep working.
    PolicyTree::write(file, "[]");
    Ctx c;
    EXPECT_EQ(c.rc, invalid_argument);
    EXPECT_EQ(b.load("two"), success);
}

// The defaults admit HyperBEAM's configs (flat and nested) and refuse a
// guest's ctx_size over the default ceiling, naming key and ceiling.
TEST(PolicyWamr, DefaultCeilings) {
    LogFile log;
    Ctx c;
    ASSERT_EQ(c.rc, success);
    EXPECT_EQ(c.load(kModel, "{\"n_gpu_layers\":98,\"ctx_size\":2048}"), success);
    EXPECT_EQ(c.load(kModel, "{\"model\":{\"n_ctx\":8192,\"n_batch\":512,\"n_threads\":2},"
                             "\"sampling\":{\"temperature\":0.7,\"top_p\":0.9},\"stopping\":{\"max_tokens\":512},"
                             "\"backend\":{\"max_sessions\":2}}"),
              success);
    EXPECT_EQ(c.load(kModel, "{\"ctx_size\":65536}"), invalid_argument);
    EXPECT_NE(log.text().find("ctx_size: 65536 is above the host's ceiling of 32768"), std::string::npos);
    EXPECT_EQ(c.load(kModel, "{\"max_concurrent\":65}"), invalid_argument);
    // A cap: the host's max_sessions (128 by default) bounds the guest's.
    EXPECT_EQ(c.load(kModel, "{\"max_sessions\":129}"), invalid_argument);
    EXPECT_NE(log.text().find("max_sessions: 129 is above the host's ceiling of 128"), std::string::npos);
}

// Tenants: B never gets a prefix that only A sent, while A's own next
// request reuses it (so the figure is live); with share_kv "process" from
// the host, B reuses A's prefix.
TEST(PolicyWamr, KvPrefixesStayWithinATenant) {
    const std::string cfg = "{\"temp\":0,\"max_tokens\":4,\"max_concurrent\":1,\"logging\":{\"level\":\"error\"}}";
    const std::string prompt = "Once upon a time, there was a little girl named Lily who lived in a small house";
    {
        Ctx a, b;
        graph ga = 0, gb = 0;
        ASSERT_EQ(a.load(kModel, cfg, &ga), success);
        ASSERT_EQ(b.load(kModel, cfg, &gb), success);
        ASSERT_EQ(a.status(BACKEND_STATUS_MODEL)["graphs"][0]["graphs_sharing"], 2);  // one decode loop
        json first = turn(a, ga, prompt);
        EXPECT_EQ(first["cached_tokens"], 0);
        EXPECT_GT(turn(a, ga, prompt)["cached_tokens"], 10);
        json mb = turn(b, gb, prompt);
        EXPECT_EQ(mb["cached_tokens"], 0);
        EXPECT_EQ(mb["input_tokens"], first["input_tokens"]);
        EXPECT_GT(turn(b, gb, prompt)["cached_tokens"], 10);  // B's own
    }
    {
        // Named sessions: A's state parked in the host cache is never
        // restored for B's session of the same name.
        Ctx a, b;
        graph ga = 0, gb = 0;
        ASSERT_EQ(a.load(kModel, cfg, &ga), success);
        ASSERT_EQ(b.load(kModel, cfg, &gb), success);
        graph_execution_context ea = 0, eb = 0;
        ASSERT_EQ(api().init_execution_context_with_session_id(a.ctx, "same-name", &ea), success);
        ASSERT_EQ(set_text(a.ctx, ea, 0, prompt), success);
        ASSERT_EQ(api().compute(a.ctx, ea), success);
        turn(a, ga, "A different story about a dog");  // takes the slot: A's session is parked
        ASSERT_EQ(api().init_execution_context_with_session_id(b.ctx, "same-name", &eb), success);
        ASSERT_EQ(set_text(b.ctx, eb, 0, prompt), success);
        ASSERT_EQ(api().compute(b.ctx, eb), success);
        std::vector<uint8_t> buf(1 << 16);
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t size = 0;
        ASSERT_EQ(api().get_output(b.ctx, eb, 1, &td, &size), success);
        EXPECT_EQ(json::parse(std::string(reinterpret_cast<char*>(buf.data()), size))["cached_tokens"], 0);
        json mem = a.status(BACKEND_STATUS_MEMORY);
        EXPECT_GE(mem["host_cache"]["states_saved"], 1);
        EXPECT_EQ(mem["host_cache"]["states_restored"], 0);
        api().close_execution_context(a.ctx, ea);
        api().close_execution_context(b.ctx, eb);
    }
    {
        PolicyTree tree(kModel);
        PolicyTree::write(tree.path("policy.json"), "{\"share_kv\":\"process\"}");
        PolicyEnv env(tree.path("policy.json"));
        Ctx a, b;
        graph ga = 0, gb = 0;
        ASSERT_EQ(a.load(kModel, cfg, &ga), success);
        ASSERT_EQ(b.load(kModel, cfg, &gb), success);
        EXPECT_EQ(a.status(BACKEND_STATUS_MODEL)["policy"]["share_kv"], "process");
        EXPECT_EQ(turn(a, ga, prompt)["cached_tokens"], 0);
        EXPECT_GT(turn(b, gb, prompt)["cached_tokens"], 10);
    }
}

// A backend context may hold only its share of a loop's queue; another
// context still gets in.
TEST(PolicyWamr, QueueSharePerTenant) {
    const std::string host = "{\"logging\":{\"level\":\"error\"},\"policy\":{\"ceilings\":{\"queue_share\":0.5}}}";
    const std::string cfg = "{\"temp\":0,\"max_tokens\":2,\"max_concurrent\":1,\"queue_size\":2,\"threads\":1}";
    Ctx a(host), b(host);
    ASSERT_EQ(a.rc, success);
    ASSERT_EQ(b.rc, success);
    graph ga = 0, gb = 0;
    ASSERT_EQ(a.load(kModel, cfg, &ga), success);
    ASSERT_EQ(b.load(kModel, cfg, &gb), success);
    graph_execution_context running = 0, waiting = 0;
    ASSERT_EQ(api().init_execution_context(a.ctx, ga, &running), success);
    ASSERT_EQ(api().init_execution_context(a.ctx, ga, &waiting), success);
    auto queue = [&] { return a.status(BACKEND_STATUS_QUEUE)["models"][0]; };
    auto wait_for = [&](const char* field, int want) {
        for (int i = 0; i < 20000; ++i) {
            json q = queue();
            if ((std::string(field) == "running" ? q["running"] : q["depth"]["total"]) == want) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return false;
    };
    wasi_nn_error rc_running = success, rc_waiting = success;
    std::thread t1([&] {
        set_text(a.ctx, running, 0, "Once upon a time");
        set_text(a.ctx, running, 1, kLong);
        rc_running = api().compute(a.ctx, running);
    });
    EXPECT_TRUE(wait_for("running", 1));  // EXPECT: the threads must still be joined
    std::thread t2([&] {
        set_text(a.ctx, waiting, 0, "Once upon a time");
        rc_waiting = api().compute(a.ctx, waiting);
    });
    EXPECT_TRUE(wait_for("depth", 1));
    // A holds one of the two places, its share: its next request is refused.
    wasi_nn_error rc = success;
    turn(a, ga, "Once", "", &rc);
    EXPECT_EQ(rc, busy);
    // B is another tenant: it waits in the other place, and is served.
    wasi_nn_error rc_b = runtime_error;
    std::thread t3([&] { turn(b, gb, "Once", "", &rc_b); });
    EXPECT_TRUE(wait_for("depth", 2));
    api().close_execution_context(a.ctx, running);  // cancels the long request
    t1.join();
    t2.join();
    t3.join();
    EXPECT_EQ(rc_running, runtime_error);  // cancelled
    EXPECT_EQ(rc_waiting, success);
    EXPECT_EQ(rc_b, success);
    api().close_execution_context(a.ctx, waiting);
}
