// prefill_chunk (docs/config.md): a long prompt that arrives while another
// request generates is prefilled over several steps, at most prefill_chunk
// prompt tokens each, so the running request's tokens keep coming; alone, a
// prompt takes up to batch_size per step. The chunked prompt's greedy reply
// equals the one prefilled in one step beside the same stream.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

std::string config(int chunk) {
    return "{\"temp\":0,\"max_concurrent\":2,\"threads\":2,\"batch_size\":512,\"prefill_chunk\":" +
           std::to_string(chunk) + ",\"logging\":{\"level\":\"warn\"}}";
}

std::string long_prompt() {
    std::string p = "Once upon a time";
    for (int i = 0; i < 30; ++i) p += ", the little cat sat on the mat and";
    return p;
}

json performance(WamrSession& s) { return json::parse(s.status(BACKEND_STATUS_PERFORMANCE))["models"][0]; }

const std::string kReply = "{\"max_tokens\":12}";

TEST(PrefillChunk, AloneAPromptTakesTheWholeBatch) {
    WamrSession s(model_path("stories260K.gguf"), config(16));
    ASSERT_EQ(s.load_status(), success);
    std::string reply, meta;
    ASSERT_EQ(s.turn(s.open(), long_prompt(), &reply, kReply, &meta), success);
    const auto input = json::parse(meta)["input_tokens"].get<uint64_t>();
    ASSERT_GT(input, 100u);
    const json p = performance(s);
    EXPECT_EQ(p["prefill_chunk"], 16);
    EXPECT_EQ(p["max_batch_tokens"].get<uint64_t>(), input) << "a request alone is not chunked";
}

// Runs the long prompt while another request streams; returns its reply and
// the loop's largest decode call.
void beside_a_stream(int chunk, std::string* reply, uint64_t* max_batch, size_t* pieces_during) {
    WamrSession s(model_path("stories260K.gguf"), config(chunk));
    ASSERT_EQ(s.load_status(), success);
    auto streaming = s.open();
    auto chunked = s.open();
    ASSERT_EQ(s.set_text(streaming, 0, "Tom and Lily went"), success);
    ASSERT_EQ(s.set_text(streaming, 1, "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":30000}"), success);
    auto& api = WamrApi::get();
    std::vector<uint8_t> buf(1 << 16);
    auto next_piece = [&] {
        uint32_t size = static_cast<uint32_t>(buf.size());
        return api.compute_single(s.ctx(), streaming) == success &&
               api.get_output_single(s.ctx(), streaming, 0, buf.data(), &size) == success;
    };
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(next_piece());
    std::atomic<bool> done{false};
    wasi_nn_error rc = runtime_error;
    std::thread t([&] {
        rc = s.turn(chunked, long_prompt(), reply, kReply);
        done = true;
    });
    size_t n = 0;
    while (!done) {
        if (!next_piece()) break;
        ++n;
    }
    t.join();
    EXPECT_EQ(s.fini(streaming), success);
    EXPECT_EQ(rc, success);
    *max_batch = performance(s)["max_batch_tokens"].get<uint64_t>();
    *pieces_during = n;
}

TEST(PrefillChunk, BesideAStreamAPromptIsPrefilledInChunks) {
    std::string chunked, whole;
    uint64_t max_chunked = 0, max_whole = 0;
    size_t during_chunked = 0, during_whole = 0;
    beside_a_stream(16, &chunked, &max_chunked, &during_chunked);
    beside_a_stream(0, &whole, &max_whole, &during_whole);
    // One token of the stream, one of the chunked request once it generates,
    // and at most 16 prompt tokens.
    EXPECT_LE(max_chunked, 18u);
    EXPECT_GE(max_whole, 100u) << "prefill_chunk 0: the prompt in one call";
    // The stream got a token in every step of the chunked prefill (the
    // prompt is over 200 tokens: 13 or more steps).
    EXPECT_GE(during_chunked, 13u);
    // The same batch neighbours, the prompt in 16-token pieces or whole:
    // the same greedy reply. (Against the prompt run alone it may part
    // after a few tokens: a batch of two sequences sums in another order.)
    EXPECT_EQ(chunked, whole);
    EXPECT_FALSE(chunked.empty());
}

}  // namespace
