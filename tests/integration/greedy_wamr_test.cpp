// Greedy output through libwasi_nn_llamacpp.so equals llama-completion's for
// the same model, prompt and length, and does not depend on the run or the
// thread count.
#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;

namespace {

struct Case {
    const char* model;
    const char* prompt;
    int n;
};

std::string greedy_config(int n, int threads) {
    return "{\"temp\":0,\"repeat_penalty\":1.0,\"max_tokens\":" + std::to_string(n) +
           ",\"threads\":" + std::to_string(threads) + ",\"logging\":{\"level\":\"warn\"}}";
}

std::string ours(const Case& c, int threads) {
    WamrSession s(model_path(c.model), greedy_config(c.n, threads));
    EXPECT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string reply;
    EXPECT_EQ(s.turn(e, c.prompt, &reply), success);
    return reply;
}

class GreedyWamr : public ::testing::TestWithParam<Case> {};

TEST_P(GreedyWamr, MatchesLlamaCompletion) {
    const Case& c = GetParam();
    int rc = 0;
    std::string reference = reference_greedy(model_path(c.model), c.prompt, c.n, 2, &rc);
    ASSERT_EQ(rc, 0) << "llama-completion failed";
    EXPECT_EQ(ours(c, 2), reference);
}

TEST_P(GreedyWamr, SameAcrossRunsAndThreadCounts) {
    const Case& c = GetParam();
    std::string first = ours(c, 2);
    EXPECT_EQ(ours(c, 2), first);
    EXPECT_EQ(ours(c, 1), first);
}

INSTANTIATE_TEST_SUITE_P(
    Models, GreedyWamr,
    ::testing::Values(Case{"stories260K.gguf", "Once upon a time", 32},
                      Case{"stories260K.gguf", "Once upon a time", 200},
                      Case{"stories260K.gguf", "The little dog wanted to", 8},
                      Case{"stories260K.gguf", "Tom and Lily went to the park. They saw", 64},
                      Case{"llama-2-tiny-random.gguf", "Once upon a time", 32},
                      Case{"llama-2-tiny-random.gguf", "Привет, мир! สวัสดี", 24},
                      Case{"llama-2-tiny-random.gguf", "def main():\n    print(", 48}),
    [](const ::testing::TestParamInfo<Case>& info) {
        return std::string(info.param.model[0] == 's' ? "stories" : "tiny_random") + "_" +
               std::to_string(info.index) + "_n" + std::to_string(info.param.n);
    });

TEST(GreedyWamrGolden, StoriesMatchesModelCard) {
    // The greedy text documented in ../shared/models/README.md.
    std::string reply = ours({"stories260K.gguf", "Once upon a time", 32}, 2);
    EXPECT_EQ(reply, ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw");
}

}  // namespace
