// The legacy ABI's own codes for the queue: a request still waiting at its
// deadline returns timeout (3), which the WAMR ABI reports as busy.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "integration/legacy_client.h"
#include "integration/reference.h"

using namespace wnl_test;
using namespace std::chrono;

namespace {

TEST(LegacyQueue, WaitingPastTheDeadlineIsTimeout) {
    LegacyApi& api = LegacyApi::get();
    const std::string cfg = "{\"temp\":0,\"max_concurrent\":1,\"threads\":1,\"logging\":{\"level\":\"error\"}}";
    const std::string model = model_path("stories260K.gguf");
    void* ctx = nullptr;
    ASSERT_EQ(api.init_backend_with_config(&ctx, cfg.c_str(), static_cast<uint32_t>(cfg.size())), success);
    graph g = 0;
    ASSERT_EQ(api.load_by_name_with_config(ctx, model.c_str(), static_cast<uint32_t>(model.size()), cfg.c_str(),
                                           static_cast<uint32_t>(cfg.size()), &g),
              success);
    graph_execution_context a = 0, b = 0;
    ASSERT_EQ(api.init_execution_context_with_session_id(ctx, "long", &a), success);
    ASSERT_EQ(api.init_execution_context_with_session_id(ctx, "waiting", &b), success);
    auto infer = [&](graph_execution_context e, const char* runtime_config) {
        tensor t{};
        t.type = u8;
        t.data = reinterpret_cast<uint8_t*>(const_cast<char*>("Once upon a time"));
        std::vector<uint8_t> out(1 << 16);
        uint32_t size = static_cast<uint32_t>(out.size());
        return api.run_inference(ctx, e, 0, &t, out.data(), &size, runtime_config,
                                 static_cast<uint32_t>(strlen(runtime_config)));
    };
    wasi_nn_error long_rc = runtime_error;
    std::thread holder([&] { long_rc = infer(a, "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":4000}"); });
    std::this_thread::sleep_for(milliseconds(150));
    auto t0 = steady_clock::now();
    EXPECT_EQ(infer(b, "{\"timeout_ms\":60}"), timeout);
    // Long before the request holding the slot ends.
    EXPECT_LT(duration_cast<milliseconds>(steady_clock::now() - t0).count(), 2500);
    holder.join();
    EXPECT_EQ(long_rc, success);
    api.deinit_backend(ctx);
}

}  // namespace
