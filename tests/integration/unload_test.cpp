// unload (docs/models.md): it ends the graph; what already runs finishes,
// later calls on its execution contexts are not_found, and the model's
// memory goes back once nothing runs on it, open handles or not.
#include <gtest/gtest.h>

#include "integration/swap_fixture.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

const std::string kConfig =
    "{\"temp\":0,\"max_tokens\":16,\"max_concurrent\":2,\"ctx_size\":256,\"threads\":1,\"logging\":{\"level\":\"warn\"}}";

TEST(Unload, LaterCallsOnItsContextsAreNotFoundWhatRunsFinishes) {
    auto& api = WamrApi::get();
    WamrSession s(model_path("stories260K.gguf"), kConfig);
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    auto named = s.open("story");
    auto stream = s.open();
    std::string reply;
    ASSERT_EQ(s.turn(e, "Once upon a time", &reply), success);
    ASSERT_EQ(s.set_text(stream, 0, "Once upon a time"), success);
    ASSERT_EQ(s.set_text(stream, 1, "{\"max_tokens\":-1,\"ignore_eos\":true}"), success);
    ASSERT_EQ(api.compute_single(s.ctx(), stream), success);  // running now
    EXPECT_EQ(loaded_in_process(s)["models_loaded"], 1);

    ASSERT_EQ(api.unload(s.ctx(), s.graph_id()), success);
    EXPECT_EQ(api.unload(s.ctx(), s.graph_id()), not_found);
    // The graph is gone from the status; its model is not, while the
    // stream's request runs on it.
    EXPECT_TRUE(status_json(s, BACKEND_STATUS_MODEL)["graphs"].empty());
    EXPECT_EQ(loaded_in_process(s)["models_loaded"], 1);
    EXPECT_EQ(loaded_in_process(s)["decode_loops"], 1);

    // Every later call on a context opened on it: not_found.
    std::string out;
    EXPECT_EQ(s.set_text(e, 0, "Again"), not_found);
    EXPECT_EQ(api.compute(s.ctx(), e), not_found);
    EXPECT_EQ(s.output(e, 0, &out), not_found);
    EXPECT_EQ(s.turn(named, "Again", &out), not_found);
    EXPECT_EQ(api.compute_single(s.ctx(), stream), not_found);
    std::vector<uint8_t> buf(64);
    uint32_t size = static_cast<uint32_t>(buf.size());
    EXPECT_EQ(api.get_output_single(s.ctx(), stream, 0, buf.data(), &size), not_found);
    std::string prompt = "Again";
    uint32_t dim = static_cast<uint32_t>(prompt.size());
    tensor_dimensions dims{&dim, 1};
    tensor t{};
    t.dimensions = &dims;
    t.type = u8;
    t.data = {reinterpret_cast<uint8_t*>(prompt.data()), dim};
    size = static_cast<uint32_t>(buf.size());
    EXPECT_EQ(api.run_inference(s.ctx(), e, 0, &t, buf.data(), &size, nullptr, 0), not_found);
    graph_execution_context fresh = 0;
    EXPECT_EQ(api.init_execution_context(s.ctx(), s.graph_id(), &fresh), not_found);
    EXPECT_EQ(api.init_execution_context_with_session_id(s.ctx(), "story", &fresh), not_found);

    // fini_single ends the stream: the last request on the model, which goes.
    EXPECT_EQ(s.fini(stream), success);
    EXPECT_EQ(loaded_in_process(s)["models_loaded"], 0);
    EXPECT_EQ(loaded_in_process(s)["decode_loops"], 0);
    // The handles still close.
    EXPECT_EQ(s.close(e), success);
    EXPECT_EQ(s.close(named), success);
    EXPECT_EQ(s.close(stream), success);

    // Loading again works, and a session of the same name starts afresh
    // on the new graph.
    graph g2 = 0;
    const std::string path = model_path("stories260K.gguf");
    ASSERT_EQ(api.load_by_name_with_config(s.ctx(), path.data(), static_cast<uint32_t>(path.size()), kConfig.data(),
                                           static_cast<uint32_t>(kConfig.size()), &g2),
              success);
    auto again = s.open("story");
    EXPECT_EQ(s.turn(again, "Once upon a time", &out), success);
}

// Load, chat and unload 50 times in one process, the handle left open at
// each unload: the memory comes back each time.
TEST(Unload, FiftyLoadChatUnloadCyclesGiveTheMemoryBack) {
    auto& api = WamrApi::get();
    void* ctx = nullptr;
    ASSERT_EQ(api.init_backend_with_config(&ctx, kConfig.data(), static_cast<uint32_t>(kConfig.size())), success);
    const std::string path = model_path("stories260K.gguf");
    uint64_t rss_first = 0, rss_last = 0;
    for (int i = 0; i < 50; ++i) {
        graph g = 0;
        ASSERT_EQ(api.load_by_name_with_config(ctx, path.data(), static_cast<uint32_t>(path.size()), kConfig.data(),
                                               static_cast<uint32_t>(kConfig.size()), &g),
                  success)
            << "cycle " << i;
        graph_execution_context e = 0;
        ASSERT_EQ(api.init_execution_context(ctx, g, &e), success);
        std::string prompt = "Once upon a time, " + std::to_string(i);
        uint32_t dim = static_cast<uint32_t>(prompt.size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(prompt.data()), dim};
        ASSERT_EQ(api.set_input(ctx, e, 0, &t), success);
        ASSERT_EQ(api.compute(ctx, e), success) << "cycle " << i;
        ASSERT_EQ(api.unload(ctx, g), success);
        std::vector<char> buf(1 << 16);
        ASSERT_EQ(api.get_backend_status(ctx, BACKEND_STATUS_MODEL, buf.data(), static_cast<uint32_t>(buf.size())),
                  success);
        json m = json::parse(buf.data());
        ASSERT_EQ(m["process"]["models_loaded"], 0) << "cycle " << i << ": the open handle kept the model";
        if (i == 0) rss_first = process_rss();
        if (i == 49) rss_last = process_rss();
        EXPECT_EQ(api.close_execution_context(ctx, e), success);
    }
    EXPECT_EQ(api.deinit_backend(ctx), success);
    if (kRssMeaningful) {
        EXPECT_LE(static_cast<double>(rss_last), 1.10 * static_cast<double>(rss_first))
            << "RSS after the first unload: " << rss_first << ", after the 50th: " << rss_last;
    }
}

}  // namespace
