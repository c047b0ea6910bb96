// Durable sessions through the legacy ABI, as a native host (an Erlang NIF)
// uses them: the store in init_backend_with_config, run_inference turns,
// deinit_backend, and the same named session continued by a new backend
// context (docs/sessions.md).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "integration/legacy_client.h"
#include "integration/reference.h"

using namespace wnl_test;

TEST(DurableLegacy, ANativeHostsSessionGoesOnAfterARestart) {
    char tmpl[] = "/tmp/wnl-durable-legacy-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string base = "{\"temp\":0,\"max_tokens\":12,\"chat_template\":\"chatml\",\"ctx_size\":1024,"
                             "\"threads\":2,\"logging\":{\"level\":\"warn\"}";
    const std::string stored = base + ",\"session_store\":\"" + std::string(tmpl) +
                               "\",\"session_namespace\":\"erlang-node\",\"session_sync\":\"full\"}";
    const std::string plain = base + "}";
    const std::string model = model_path("stories260K.gguf");
    // Each legacy_run is a backend context from init to deinit: a restart.
    std::string a1, a2, b1, b2;
    // The store is the host's: in init_backend_with_config only (a guest's
    // load config naming it is refused).
    ASSERT_EQ(legacy_run(model, stored, plain, "node-chat", "Once upon a time", &a1), success);
    ASSERT_EQ(legacy_run(model, stored, plain, "node-chat", "What did the dog do?", &a2), success);
    std::string refused;
    EXPECT_EQ(legacy_run(model, plain, stored, "node-chat", "Once upon a time", &refused), invalid_argument);
    // Without a store the second context starts the session afresh.
    ASSERT_EQ(legacy_run(model, plain, "node-chat", "Once upon a time", &b1), success);
    ASSERT_EQ(legacy_run(model, plain, "node-chat", "What did the dog do?", &b2), success);
    EXPECT_EQ(a1, b1);
    std::string fresh;
    ASSERT_EQ(legacy_run(model, plain, "other", "What did the dog do?", &fresh), success);
    EXPECT_EQ(b2, fresh) << "no store: nothing carried over";
    // With the store, the second turn followed the first: the same reply as
    // two turns in one context.
    LegacyApi& api = LegacyApi::get();
    void* ctx = nullptr;
    ASSERT_EQ(api.init_backend_with_config(&ctx, plain.c_str(), static_cast<uint32_t>(plain.size())), success);
    graph g = 0;
    graph_execution_context e = 0;
    ASSERT_EQ(api.load_by_name_with_config(ctx, model.c_str(), static_cast<uint32_t>(model.size()), plain.c_str(),
                                           static_cast<uint32_t>(plain.size()), &g),
              success);
    ASSERT_EQ(api.init_execution_context_with_session_id(ctx, "one-context", &e), success);
    std::string replies[2];
    const char* prompts[2] = {"Once upon a time", "What did the dog do?"};
    for (int i = 0; i < 2; ++i) {
        tensor t{};
        t.type = u8;
        t.data = reinterpret_cast<uint8_t*>(const_cast<char*>(prompts[i]));
        std::vector<uint8_t> out(1 << 16);
        uint32_t size = static_cast<uint32_t>(out.size());
        ASSERT_EQ(api.run_inference(ctx, e, 0, &t, out.data(), &size, nullptr, 0), success);
        replies[i].assign(reinterpret_cast<char*>(out.data()), size - 1);
    }
    api.deinit_backend(ctx);
    EXPECT_EQ(a2, replies[1]);
    EXPECT_NE(a2, fresh);
}
