// Our Sampler (src/engine/sampler.h) builds llama.cpp's sampler chain itself,
// over a logits row it is handed (so that a grammar request can be sampled
// off the decode loop). These tests hold it to llama.cpp common's
// common_sampler, which it replaces: the same token at every step for the
// same settings and seed, on a real model, with and without a grammar; and
// the refusals made before llama.cpp sees a guest's settings.
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

using wnl::SamplingConfig;

class ChainOnModel : public ::testing::Test {
protected:
    void SetUp() override {
        wnl::llama_runtime_acquire();
        model_ = llama_model_load_from_file(WNL_MODELS_DIR "/stories260K.gguf", llama_model_default_params());
        ASSERT_NE(model_, nullptr);
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 512;
        cp.n_threads = cp.n_threads_batch = 1;
        ctx_ = llama_init_from_model(model_, cp);
        ASSERT_NE(ctx_, nullptr);
    }
    void TearDown() override {
        if (ctx_) llama_free(ctx_);
        if (model_) llama_model_free(model_);
        wnl::llama_runtime_release();
    }
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
        std::vector<llama_token> out(text.size() + 8);
        int n = llama_tokenize(llama_model_get_vocab(model_), text.data(), static_cast<int32_t>(text.size()),
                               out.data(), static_cast<int32_t>(out.size()), true, false);
        out.resize(n > 0 ? n : 0);
        return out;
    }

    // Both samplers, fed the same prompt and the same logits, step by step.
    void expect_same_tokens(const SamplingConfig& c, bool ignore_eos, int steps) {
        llama_memory_seq_rm(llama_get_memory(ctx_), 0, -1, -1);
        wnl::SamplerPtr ours;
        std::string err;
        ASSERT_EQ(wnl::make_sampler(model_, c, ignore_eos, 512, &ours, &err), wnl::Status::ok) << err;
        common_params_sampling p;
        p.seed = static_cast<uint32_t>(c.seed);
        p.temp = c.temp;
        p.top_k = c.top_k;
        p.top_p = c.top_p;
        p.min_p = c.min_p;
        p.typ_p = c.typical_p;
        p.penalty_repeat = c.repeat_penalty;
        p.penalty_freq = c.frequency_penalty;
        p.penalty_present = c.presence_penalty;
        p.penalty_last_n = c.penalty_last_n;
        p.mirostat = c.mirostat;
        p.mirostat_tau = c.mirostat_tau;
        p.mirostat_eta = c.mirostat_eta;
        p.dry_multiplier = c.dry_multiplier;
        p.dry_base = c.dry_base;
        p.dry_allowed_length = c.dry_allowed_length;
        p.dry_penalty_last_n = c.dry_penalty_last_n;
        p.dry_sequence_breakers = c.dry_sequence_breakers;
        p.xtc_probability = c.xtc_probability;
        p.xtc_threshold = c.xtc_threshold;
        p.dynatemp_range = c.dynatemp_range;
        p.dynatemp_exponent = c.dynatemp_exponent;
        for (const auto& [t, b] : c.logit_bias) p.logit_bias.push_back({t, b});
        if (ignore_eos) {
            const llama_vocab* vocab = llama_model_get_vocab(model_);
            for (llama_token t = 0; t < llama_vocab_n_tokens(vocab); ++t) {
                if (llama_vocab_is_eog(vocab, t)) p.logit_bias.push_back(llama_logit_bias{t, -INFINITY});
            }
        }
        if (!c.grammar.empty()) p.grammar = common_grammar(COMMON_GRAMMAR_TYPE_USER, c.grammar);
        common_sampler* theirs = common_sampler_init(model_, p);
        ASSERT_NE(theirs, nullptr);
        std::vector<llama_token> prompt = tokenize("Once upon a time, there was a little girl named Lily.");
        wnl::accept_prompt(ours.get(), prompt);
        for (llama_token t : prompt) common_sampler_accept(theirs, t, false);
        decode(prompt, 0);
        llama_pos pos = static_cast<llama_pos>(prompt.size());
        for (int step = 0; step < steps; ++step) {
            bool nothing = false;
            const llama_token a = ours->sample(llama_get_logits_ith(ctx_, -1), &nothing);
            const llama_token b = common_sampler_sample(theirs, ctx_, -1);
            ASSERT_FALSE(nothing) << "step " << step;
            ASSERT_EQ(a, b) << "step " << step;
            ours->accept(a, true);
            common_sampler_accept(theirs, b, true);
            decode({a}, pos++);
        }
        common_sampler_free(theirs);
    }

    llama_model* model_ = nullptr;
    llama_context* ctx_ = nullptr;
};

SamplingConfig seeded(float temp = 0.8f) {
    SamplingConfig c;
    c.temp = temp;
    c.seed = 1234;
    return c;
}

TEST_F(ChainOnModel, DefaultChainPicksAsCommonSampler) { expect_same_tokens(seeded(), false, 60); }

TEST_F(ChainOnModel, EverySamplerOnPicksAsCommonSampler) {
    SamplingConfig c = seeded(1.1f);
    c.top_k = 20;
    c.top_p = 0.9f;
    c.min_p = 0.02f;
    c.typical_p = 0.95f;
    c.repeat_penalty = 1.2f;
    c.presence_penalty = 0.3f;
    c.frequency_penalty = 0.2f;
    c.penalty_last_n = 32;
    c.dry_multiplier = 0.8f;
    c.dry_penalty_last_n = 64;
    c.xtc_probability = 0.5f;
    c.xtc_threshold = 0.1f;
    c.dynatemp_range = 0.3f;
    c.logit_bias = {{5, 1.5f}, {17, -2.0f}};
    expect_same_tokens(c, true, 60);
}

TEST_F(ChainOnModel, MirostatPicksAsCommonSampler) {
    SamplingConfig c = seeded();
    c.mirostat = 1;
    expect_same_tokens(c, false, 40);
    c.mirostat = 2;
    c.mirostat_tau = 3.0f;
    expect_same_tokens(c, false, 40);
}

TEST_F(ChainOnModel, GrammarPicksAsCommonSampler) {
    SamplingConfig c = seeded(0.9f);
    c.grammar = "root ::= [ a-z]+ \".\"";
    expect_same_tokens(c, false, 40);
    c.temp = 0.0f;
    expect_same_tokens(c, false, 40);
}

TEST_F(ChainOnModel, CompleteGrammarUnderIgnoreEosAllowsNothing) {
    SamplingConfig c = seeded(0.0f);
    c.grammar = "root ::= \"a\"";
    wnl::SamplerPtr s;
    std::string err;
    ASSERT_EQ(wnl::make_sampler(model_, c, true, 512, &s, &err), wnl::Status::ok) << err;
    std::vector<llama_token> prompt = tokenize("Once upon a time");
    decode(prompt, 0);
    bool nothing = false;
    llama_token t = s->sample(llama_get_logits_ith(ctx_, -1), &nothing);
    ASSERT_FALSE(nothing);
    s->accept(t, true);  // "a": the grammar is complete
    decode({t}, static_cast<llama_pos>(prompt.size()));
    s->sample(llama_get_logits_ith(ctx_, -1), &nothing);
    EXPECT_TRUE(nothing) << "only end of generation is left, and ignore_eos forbids it";
}

TEST_F(ChainOnModel, SettingsLlamaCppAbortsOrThrowsOnAreRefused) {
    auto refused = [&](SamplingConfig c) {
        wnl::SamplerPtr s;
        std::string err;
        return wnl::make_sampler(model_, c, false, 512, &s, &err) == wnl::Status::invalid_argument && !err.empty();
    };
    SamplingConfig c = seeded();
    c.grammar = "%llguidance {}\nstart: \"a\"";
    EXPECT_TRUE(refused(c));
    c.grammar = "root ::= " + std::string(200, '(') + "\"a\"" + std::string(200, ')');
    EXPECT_TRUE(refused(c));
    c.grammar = "root ::= (";
    EXPECT_TRUE(refused(c));
    c = seeded();
    c.json_schema = R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"allOf":[{"$ref":"#/$defs/a"}]})";
    EXPECT_TRUE(refused(c));
    c.json_schema = R"({"$ref":1})";
    EXPECT_TRUE(refused(c));
    c = seeded();
    c.repeat_penalty = 0.0f;
    EXPECT_TRUE(refused(c));
    c = seeded();
    c.logit_bias = {{512, 1.0f}};
    EXPECT_TRUE(refused(c));
    c = seeded();
    c.penalty_last_n = 2147483647;  // clamped to the context, not 8 GiB
    c.repeat_penalty = 1.1f;
    EXPECT_FALSE(refused(c));
}

TEST(GbnfNesting, CountsOnlyWhatTheParserRecursesOn) {
    EXPECT_EQ(wnl::gbnf_nesting("root ::= ((\"a\") | \"b\")"), 2);
    EXPECT_EQ(wnl::gbnf_nesting("root ::= \"(((\" [(] <(((> # (((\n \"a\""), 0);
    EXPECT_EQ(wnl::gbnf_nesting("root ::= \"\\\"(((\" (\"a\")"), 1);
    EXPECT_EQ(wnl::gbnf_nesting("root ::= \"" + std::string(50, ')') + "\" " + std::string(50, '(')), 50);
}

}  // namespace
