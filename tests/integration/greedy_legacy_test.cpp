// Greedy output through libwasi_nn_backend.so (legacy ABI) equals
// llama-completion's.
#include <gtest/gtest.h>

#include "integration/legacy_client.h"
#include "integration/reference.h"

using namespace wnl_test;

namespace {

TEST(GreedyLegacy, MatchesLlamaCompletion) {
    const std::pair<const char*, const char*> cases[] = {
        {"stories260K.gguf", "Once upon a time"},
        {"stories260K.gguf", "One day, a big bear"},
        {"llama-2-tiny-random.gguf", "Once upon a time"},
    };
    for (const auto& [file, prompt] : cases) {
        for (int n : {16, 64}) {
            int rc = 0;
            std::string reference = reference_greedy(model_path(file), prompt, n, 2, &rc);
            ASSERT_EQ(rc, 0);
            // The original project's nested layout, with n_predict under model.
            std::string config = "{\"model\":{\"n_predict\":" + std::to_string(n) +
                                 ",\"threads\":2},\"sampling\":{\"temp\":0},\"logging\":{\"level\":\"warn\"}}";
            std::string reply;
            ASSERT_EQ(legacy_run(model_path(file), config, "legacy-greedy", prompt, &reply), success);
            EXPECT_EQ(reply, reference) << file << " / " << prompt << " / n=" << n;
        }
    }
}

}  // namespace
