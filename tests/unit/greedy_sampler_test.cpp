// Unit tests of the plain-greedy fast path (src/engine/sampler.h): which
// settings qualify, and that the one-pass argmax picks the token llama.cpp
// common's sampler chain picks at temperature 0, step after step, on a real
// model.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/config.h"
#include "engine/llama_runtime.h"
#include "engine/sampler.h"
#include "llama.h"
#include "sampling.h"

namespace {

using wnl::greedy_token;
using wnl::is_plain_greedy;
using wnl::SamplingConfig;

SamplingConfig greedy() {
    SamplingConfig c;
    c.temp = 0.0f;
    return c;
}

TEST(GreedySampler, TemperatureZeroWithDefaultsQualifies) {
    EXPECT_TRUE(is_plain_greedy(greedy()));
    SamplingConfig c = greedy();
    c.temp = -1.0f;
    c.top_k = 1;
    c.top_p = 0.5f;
    c.min_p = 0.2f;
    EXPECT_TRUE(is_plain_greedy(c)) << "top-k, top-p and min-p always keep the top token";
}

TEST(GreedySampler, AnythingThatCanMoveTheTopTokenDisqualifies) {
    EXPECT_FALSE(is_plain_greedy(SamplingConfig{})) << "default temperature 0.8 samples";
    auto with = [](auto change) {
        SamplingConfig c = greedy();
        change(c);
        return is_plain_greedy(c);
    };
    EXPECT_FALSE(with([](SamplingConfig& c) { c.dynatemp_range = 0.5f; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.mirostat = 2; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.repeat_penalty = 1.1f; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.presence_penalty = 0.5f; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.frequency_penalty = 0.5f; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.dry_multiplier = 0.8f; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.xtc_probability = 0.5f; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.typical_p = 0.9f; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.logit_bias = {{5, 2.0f}}; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.grammar = "root ::= \"a\""; }));
    EXPECT_FALSE(with([](SamplingConfig& c) { c.json_schema = "{}"; }));
}

class GreedyOnModel : public ::testing::Test {
protected:
    void SetUp() override {
        wnl::llama_runtime_acquire();
        llama_model_params mp = llama_model_default_params();
        model_ = llama_model_load_from_file(WNL_MODELS_DIR "/stories260K.gguf", mp);
        ASSERT_NE(model_, nullptr);
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 256;
        cp.n_threads = cp.n_threads_batch = 1;
        ctx_ = llama_init_from_model(model_, cp);
        ASSERT_NE(ctx_, nullptr);
    }
    void TearDown() override {
        if (ctx_) llama_free(ctx_);
        if (model_) llama_model_free(model_);
        wnl::llama_runtime_release();
    }
    // Decodes `tokens` at positions from `pos`, logits for the last one.
    void decode(const std::vector<llama_token>& tokens, llama_pos pos) {
        llama_batch b = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
        for (size_t i = 0; i < tokens.size(); ++i) {
            b.token[i] = tokens[i];
            b.pos[i] = pos + static_cast<llama_pos>(i);
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = i + 1 == tokens.size();
        }
        b.n_tokens = static_cast<int32_t>(tokens.size());
        ASSERT_EQ(llama_decode(ctx_, b), 0);
        llama_batch_free(b);
    }
    std::vector<llama_token> tokenize(const std::string& text) {
        const llama_vocab* vocab = llama_model_get_vocab(model_);
        std::vector<llama_token> out(text.size() + 8);
        int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                               static_cast<int32_t>(out.size()), true, false);
        out.resize(n > 0 ? n : 0);
        return out;
    }
    llama_model* model_ = nullptr;
    llama_context* ctx_ = nullptr;
};

TEST_F(GreedyOnModel, ArgmaxMatchesTheCommonChainAtTemperatureZero) {
    common_params_sampling p;
    p.temp = 0.0f;
    common_sampler* chain = common_sampler_init(model_, p);
    ASSERT_NE(chain, nullptr);
    std::vector<llama_token> prompt = tokenize("Once upon a time, there was a little girl named Lily.");
    ASSERT_GT(prompt.size(), 4u);
    decode(prompt, 0);
    llama_pos pos = static_cast<llama_pos>(prompt.size());
    for (int step = 0; step < 100; ++step) {
        const llama_token fast = greedy_token(ctx_, model_, -1, false);
        const llama_token slow = common_sampler_sample(chain, ctx_, -1);
        ASSERT_EQ(fast, slow) << "step " << step;
        common_sampler_accept(chain, slow, true);
        decode({slow}, pos++);
    }
    common_sampler_free(chain);
}

TEST_F(GreedyOnModel, EndOfGenerationOnTopIsLeftToTheChainUnderIgnoreEos) {
    decode(tokenize("Once upon a time"), 0);
    const llama_vocab* vocab = llama_model_get_vocab(model_);
    const llama_token eos = llama_vocab_eos(vocab);
    ASSERT_GE(eos, 0);
    float* logits = llama_get_logits_ith(ctx_, -1);
    ASSERT_NE(logits, nullptr);
    logits[eos] = 1e9f;  // force end of generation to the top
    EXPECT_EQ(greedy_token(ctx_, model_, -1, false), eos);
    EXPECT_EQ(greedy_token(ctx_, model_, -1, true), LLAMA_TOKEN_NULL);
}

}  // namespace
