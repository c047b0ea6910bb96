// The host's policy through the legacy ABI (dlopen), the way a native host
// such as HyperBEAM drives it: init_backend_with_config, load_by_name_with_config,
// sessions by id, run_inference. Refused paths are `security` here.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/legacy_client.h"
#include "integration/policy_fixture.h"
#include "integration/reference.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

LegacyApi& api() { return LegacyApi::get(); }

const std::string kModel = model_path("stories260K.gguf");

struct Ctx {
    void* ctx = nullptr;
    wasi_nn_error rc;
    explicit Ctx(const std::string& cfg = "")
        : rc(cfg.empty() ? api().init_backend(&ctx)
                         : api().init_backend_with_config(&ctx, cfg.c_str(), static_cast<uint32_t>(cfg.size()))) {}
    ~Ctx() {
        if (rc == success) api().deinit_backend(ctx);
    }
    wasi_nn_error load(const std::string& name, const std::string& cfg = "", graph* out = nullptr) {
        graph g = 0;
        wasi_nn_error e = cfg.empty() ? api().load_by_name(ctx, name.c_str(), static_cast<uint32_t>(name.size()), &g)
                                      : api().load_by_name_with_config(ctx, name.c_str(),
                                                                       static_cast<uint32_t>(name.size()), cfg.c_str(),
                                                                       static_cast<uint32_t>(cfg.size()), &g);
        if (out) *out = g;
        return e;
    }
    // One turn on the named session of the latest graph: its metadata.
    json infer(const std::string& session, const std::string& prompt, const std::string& runtime = "",
               wasi_nn_error* rc = nullptr) {
        graph_execution_context e = 0;
        wasi_nn_error r = api().init_execution_context_with_session_id(ctx, session.c_str(), &e);
        json meta;
        if (r == success) {
            tensor t{};
            t.type = u8;
            t.data = reinterpret_cast<uint8_t*>(const_cast<char*>(prompt.c_str()));
            std::vector<uint8_t> out(1 << 16);
            uint32_t size = static_cast<uint32_t>(out.size());
            r = api().run_inference(ctx, e, 1, &t, out.data(), &size, runtime.empty() ? nullptr : runtime.c_str(),
                                    static_cast<uint32_t>(runtime.size()));
            if (r == success) meta = json::parse(std::string(reinterpret_cast<char*>(out.data()), size - 1));
            api().close_execution_context(ctx, e);
        }
        if (rc) *rc = r;
        else EXPECT_EQ(r, success) << "run_inference";
        return meta;
    }
    json status(backend_status_type type) {
        std::vector<char> buf(1 << 20);
        EXPECT_EQ(api().get_backend_status(ctx, type, buf.data(), static_cast<uint32_t>(buf.size())), success);
        return json::parse(buf.data());
    }
};

}  // namespace

TEST(PolicyLegacy, GuestHostOnlyKeysAreRefused) {
    LoopbackListener listener;
    Ctx c("{\"logging\":{\"level\":\"error\"}}");
    ASSERT_EQ(c.rc, success);
    for (const std::string& doc :
         {"{\"rpc_servers\":" + json_string(listener.endpoint()) + ",\"n_gpu_layers\":99}",
          std::string("{\"backend\":{\"model_dirs\":[\"/\"]}}"), std::string("{\"guest_paths\":true}"),
          std::string("{\"logging\":{\"file\":\"/tmp/wnl-guest-log.txt\"}}"), std::string("{\"share_kv\":\"process\"}"),
          std::string("{\"chat_template\":\"{{ messages[0].content }}\"}"), std::string("{\"session_store\":\"/tmp\"}"),
          std::string("{\"session_sync\":\"full\"}")}) {
        EXPECT_EQ(c.load(kModel, doc), invalid_argument) << doc;
    }
    ASSERT_EQ(c.load(kModel, "{\"temp\":0,\"max_tokens\":2}"), success);
    wasi_nn_error rc = success;
    c.infer("s", "Once", "{\"rpc_servers\":" + json_string(listener.endpoint()) + "}", &rc);
    EXPECT_EQ(rc, invalid_argument);
    EXPECT_FALSE(listener.connection_arrived());
    EXPECT_FALSE(std::filesystem::exists("/tmp/wnl-guest-log.txt"));
}

TEST(PolicyLegacy, RefusedPathsAreSecurityWhetherOrNotTheyExist) {
    PolicyTree tree(kModel);
    {
        Ctx c("{\"logging\":{\"level\":\"error\"},\"model_dirs\":[" + json_string(tree.allowed()) + "]}");
        ASSERT_EQ(c.rc, success);
        EXPECT_EQ(c.load(tree.allowed() + "/model.gguf"), success);
        EXPECT_EQ(c.load(tree.allowed() + "/missing.gguf"), model_not_found);
        for (const std::string& refused :
             {tree.outside() + "/secret.gguf", tree.outside() + "/missing.gguf",
              tree.allowed() + "/../outside/secret.gguf", tree.allowed() + "/../outside/missing.gguf",
              tree.allowed() + "/link-out.gguf", tree.allowed() + "/dangling.gguf", std::string("/etc/passwd"),
              std::string("/etc/missing")}) {
            EXPECT_EQ(c.load(refused), security) << refused;
        }
    }
    {
        Ctx c("{\"logging\":{\"level\":\"error\"}}");  // no policy: *.gguf anywhere
        ASSERT_EQ(c.rc, success);
        EXPECT_EQ(c.load(tree.outside() + "/secret.gguf"), success);
        EXPECT_EQ(c.load(tree.outside() + "/secret.txt"), security);
        EXPECT_EQ(c.load(tree.outside() + "/missing.txt"), security);
    }
}

// HyperBEAM's configs load with no policy; a guest over a ceiling does not.
TEST(PolicyLegacy, CeilingsAndHyperBeamConfigs) {
    Ctx c("{\"logging\":{\"level\":\"error\"}}");
    ASSERT_EQ(c.rc, success);
    EXPECT_EQ(c.load(kModel, "{\"n_gpu_layers\":98,\"ctx_size\":2048}"), success);
    EXPECT_EQ(c.load(kModel, "{\"model\":{\"n_ctx\":8192},\"sampling\":{\"temperature\":0.7},"
                             "\"stopping\":{\"max_tokens\":512},\"backend\":{\"max_sessions\":2}}"),
              success);
    EXPECT_EQ(c.load(kModel, "{\"ubatch_size\":4096}"), invalid_argument);
    Ctx host("{\"logging\":{\"level\":\"error\"},\"policy\":{\"ceilings\":{\"max_tokens\":6}}}");
    ASSERT_EQ(host.rc, success);
    ASSERT_EQ(host.load(kModel, "{\"temp\":0}"), success);
    wasi_nn_error rc = success;
    host.infer("s", "Once upon a time", "{\"max_tokens\":7}", &rc);
    EXPECT_EQ(rc, invalid_argument);
    EXPECT_EQ(host.infer("s", "Once upon a time", "{\"max_tokens\":-1,\"ignore_eos\":true}")["output_tokens"], 6);
}

TEST(PolicyLegacy, AliasesAndPolicyFile) {
    PolicyTree tree(kModel);
    const std::string file = tree.path("policy.json");
    PolicyTree::write(file, "{\"logging\":{\"level\":\"error\"},\"models\":{\"tiny\":{\"path\":" +
                                json_string(tree.outside() + "/secret.gguf") +
                                ",\"config\":{\"temp\":0,\"max_tokens\":5}}}}");
    PolicyEnv env(file);
    {
        Ctx c;
        ASSERT_EQ(c.rc, success);
        ASSERT_EQ(c.load("tiny"), success);
        EXPECT_EQ(c.infer("s", "Once upon a time")["output_tokens"], 5);
        EXPECT_EQ(c.status(BACKEND_STATUS_MODEL)["graphs"][0]["alias"], "tiny");
        EXPECT_EQ(c.load(kModel), security);  // aliases, no model_dirs: no guest paths
    }
    {
        // Changed: the next context reads it again; an open one keeps its own.
        Ctx before;
        ASSERT_EQ(before.rc, success);
        PolicyTree::write(file, "{\"logging\":{\"level\":\"error\"},\"models\":{\"other\":" + json_string(kModel) +
                                    "},\"ceilings\":{\"ctx_size\":300}}");
        Ctx after;
        ASSERT_EQ(after.rc, success);
        EXPECT_EQ(after.load("other"), success);
        EXPECT_EQ(after.load("tiny"), security);
        EXPECT_EQ(after.load("other", "{\"ctx_size\":400}"), invalid_argument);
        EXPECT_EQ(before.load("tiny"), success);
        EXPECT_EQ(before.load("other"), security);
    }
    PolicyTree::write(file, "{\"models\":{\"tiny\": ");
    Ctx broken;
    EXPECT_EQ(broken.rc, invalid_argument);
    ::setenv("WASI_NN_LLAMA_POLICY", tree.path("nowhere.json").c_str(), 1);
    Ctx missing;
    EXPECT_EQ(missing.rc, not_found);
}

TEST(PolicyLegacy, TenantsDoNotShareKvUnlessTheHostSaysSo) {
    const std::string cfg = "{\"temp\":0,\"max_tokens\":4,\"max_concurrent\":1,\"logging\":{\"level\":\"error\"}}";
    const std::string prompt = "Once upon a time, there was a little girl named Lily who lived in a small house";
    {
        Ctx a(cfg), b(cfg);
        ASSERT_EQ(a.load(kModel, cfg), success);
        ASSERT_EQ(b.load(kModel, cfg), success);
        EXPECT_EQ(a.infer("one", prompt)["cached_tokens"], 0);
        EXPECT_GT(a.infer("two", prompt)["cached_tokens"], 10);
        EXPECT_EQ(b.infer("one", prompt)["cached_tokens"], 0);
    }
    {
        const std::string shared = "{\"temp\":0,\"max_tokens\":4,\"max_concurrent\":1,\"logging\":{\"level\":\"error\"},"
                                   "\"policy\":{\"share_kv\":\"process\"}}";
        Ctx a(shared), b(shared);
        ASSERT_EQ(a.load(kModel, cfg), success);
        ASSERT_EQ(b.load(kModel, cfg), success);
        EXPECT_EQ(a.infer("one", prompt)["cached_tokens"], 0);
        EXPECT_GT(b.infer("one", prompt)["cached_tokens"], 10);
    }
}

// One backend context holds at most its share of the queue; busy is
// runtime_error in this ABI.
TEST(PolicyLegacy, QueueSharePerTenant) {
    const std::string host = "{\"logging\":{\"level\":\"error\"},\"policy\":{\"ceilings\":{\"queue_share\":0.5}}}";
    const std::string cfg = "{\"temp\":0,\"max_tokens\":2,\"max_concurrent\":1,\"queue_size\":2,\"threads\":1}";
    Ctx a(host), b(host);
    ASSERT_EQ(a.rc, success);
    ASSERT_EQ(b.rc, success);
    ASSERT_EQ(a.load(kModel, cfg), success);
    ASSERT_EQ(b.load(kModel, cfg), success);
    auto depth = [&](const char* field) {
        json q = a.status(BACKEND_STATUS_QUEUE)["models"][0];
        return std::string(field) == "running" ? q["running"].get<int>() : q["depth"]["total"].get<int>();
    };
    auto wait_for = [&](const char* field, int want) {
        for (int i = 0; i < 20000 && depth(field) != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return depth(field) == want;
    };
    graph_execution_context running = 0;
    ASSERT_EQ(api().init_execution_context_with_session_id(a.ctx, "long", &running), success);
    wasi_nn_error rc_running = success, rc_waiting = runtime_error, rc_b = runtime_error;
    std::thread t1([&] {
        tensor t{};
        t.type = u8;
        t.data = reinterpret_cast<uint8_t*>(const_cast<char*>("Once upon a time"));
        std::vector<uint8_t> out(1 << 16);
        uint32_t size = static_cast<uint32_t>(out.size());
        const std::string opts = "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":60000}";
        rc_running = api().run_inference(a.ctx, running, 0, &t, out.data(), &size, opts.c_str(),
                                         static_cast<uint32_t>(opts.size()));
    });
    EXPECT_TRUE(wait_for("running", 1));
    std::thread t2([&] { a.infer("waiting", "Once", "", &rc_waiting); });
    EXPECT_TRUE(wait_for("depth", 1));
    wasi_nn_error rc = success;
    a.infer("third", "Once", "", &rc);
    EXPECT_EQ(rc, runtime_error);  // busy: A holds its share
    std::thread t3([&] { b.infer("b", "Once", "", &rc_b); });
    EXPECT_TRUE(wait_for("depth", 2));  // B still got in
    api().close_execution_context(a.ctx, running);  // cancels the long request
    t1.join();
    t2.join();
    t3.join();
    EXPECT_EQ(rc_running, runtime_error);
    EXPECT_EQ(rc_waiting, success);
    EXPECT_EQ(rc_b, success);
}
