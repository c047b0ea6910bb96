// 8 threads embedding (each its own backend context, as 8 wasm instances
// are, all sharing the BERT model's loop) while 8 threads generate on
// another model: every result equals the same call made alone. Run under
// TSan too (scripts/test.sh).
#include <gtest/gtest.h>
#include <dlfcn.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "integration/embed_reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

const std::string kEmbedConfig = "{\"embedding\":true,\"threads\":2,\"logging\":{\"level\":\"warn\"}}";
const std::string kGenConfig =
    "{\"temp\":0,\"max_tokens\":24,\"max_concurrent\":8,\"threads\":2,\"logging\":{\"level\":\"warn\"}}";

std::string inputs_of(int thread, int call) {
    return json({"thread " + std::to_string(thread) + " asks question " + std::to_string(call),
                 "and adds sentence " + std::to_string(call * 7 + thread)})
        .dump();
}

const std::vector<std::string> kPrompts = {"Once upon a time", "The little dog wanted to", "Tom and Lily went",
                                           "One day, a big bear", "Sue had a red ball.", "The sun was hot and",
                                           "Ben liked to eat", "In the garden there was"};

wasi_nn_error embed(WamrSession& s, graph_execution_context e, const std::string& input, std::string* out) {
    wasi_nn_error rc = s.set_text(e, 0, input);
    if (rc == success) rc = WamrApi::get().compute(s.ctx(), e);
    if (rc == success) rc = s.output(e, 0, out);
    return rc;
}

TEST(EmbedConcurrency, EmbeddingWhileGeneratingEqualsAlone) {
    constexpr int kThreads = 8, kCalls = 3;
    const std::string bert = bert_model();
    const std::string stories = model_path("stories260K.gguf");
    // Alone, one call at a time.
    std::vector<std::vector<std::string>> embed_alone(kThreads, std::vector<std::string>(kCalls));
    std::vector<std::string> gen_alone(kThreads);
    {
        WamrSession s(bert, kEmbedConfig);
        ASSERT_EQ(s.load_status(), success);
        auto e = s.open();
        for (int t = 0; t < kThreads; ++t) {
            for (int c = 0; c < kCalls; ++c) ASSERT_EQ(embed(s, e, inputs_of(t, c), &embed_alone[t][c]), success);
        }
        WamrSession g(stories, kGenConfig);
        ASSERT_EQ(g.load_status(), success);
        // Each prompt in a session of its own, as in the threads below (one
        // session's turns would carry the earlier prompts as history).
        for (int t = 0; t < kThreads; ++t) ASSERT_EQ(g.turn(g.open(), kPrompts[t], &gen_alone[t]), success);
    }

    std::vector<std::unique_ptr<WamrSession>> embedders, generators;
    for (int t = 0; t < kThreads; ++t) {
        embedders.push_back(std::make_unique<WamrSession>(bert, kEmbedConfig));
        generators.push_back(std::make_unique<WamrSession>(stories, kGenConfig));
        ASSERT_EQ(embedders.back()->load_status(), success);
        ASSERT_EQ(generators.back()->load_status(), success);
    }
    std::vector<std::vector<std::string>> embed_together(kThreads, std::vector<std::string>(kCalls));
    std::vector<std::string> gen_together(kThreads);
    std::vector<int> failures(2 * kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            WamrSession& s = *embedders[t];
            auto e = s.open();
            for (int c = 0; c < kCalls; ++c) failures[t] += embed(s, e, inputs_of(t, c), &embed_together[t][c]) != success;
        });
        threads.emplace_back([&, t] {
            WamrSession& g = *generators[t];
            auto e = g.open();
            failures[kThreads + t] += g.turn(e, kPrompts[t], &gen_together[t]) != success;
        });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(failures[t], 0) << "embedding thread " << t;
        EXPECT_EQ(failures[kThreads + t], 0) << "generating thread " << t;
        for (int c = 0; c < kCalls; ++c) {
            // The vectors are unit-norm; 1e-5 of the norm allows for ggml's
            // matmul kernels, which differ with the batch an input shares
            // (2 inputs alone, up to 16 together) in the last bits. Text of
            // one sequence leaking into another would be orders larger.
            expect_close(parse_ours(embed_together[t][c]), parse_ours(embed_alone[t][c]),
                         "thread " + std::to_string(t) + " call " + std::to_string(c), 1e-5);
        }
        EXPECT_EQ(gen_together[t], gen_alone[t]) << "prompt " << kPrompts[t];
    }

    // The eight contexts served the BERT model from one loop.
    using status_fn = wasi_nn_error (*)(void*, backend_status_type, char*, uint32_t);
    auto status = reinterpret_cast<status_fn>(dlsym(WamrApi::get().lib, "get_backend_status"));
    ASSERT_NE(status, nullptr);
    std::vector<char> buf(1 << 16);
    ASSERT_EQ(status(embedders[0]->ctx(), BACKEND_STATUS_MODEL, buf.data(), static_cast<uint32_t>(buf.size())), success);
    auto doc = json::parse(buf.data());
    const json& models = doc["graphs"];
    ASSERT_FALSE(models.empty()) << buf.data();
    EXPECT_GE(models[0]["graphs_sharing"].get<int>(), kThreads) << buf.data();
    EXPECT_EQ(models[0]["kind"], "embedding") << buf.data();
}

TEST(EmbedConcurrency, InputsOfOneCallShareADecode) {
    WamrSession s(bert_model(), kEmbedConfig);
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    using status_fn = wasi_nn_error (*)(void*, backend_status_type, char*, uint32_t);
    auto status = reinterpret_cast<status_fn>(dlsym(WamrApi::get().lib, "get_backend_status"));
    ASSERT_NE(status, nullptr);
    auto decode_calls = [&] {
        std::vector<char> buf(1 << 16);
        EXPECT_EQ(status(s.ctx(), BACKEND_STATUS_PERFORMANCE, buf.data(), static_cast<uint32_t>(buf.size())), success);
        auto doc = json::parse(buf.data());
        return doc["models"][0]["decode_calls"].get<uint64_t>();
    };
    const uint64_t before = decode_calls();
    std::string out;
    ASSERT_EQ(embed(s, e, json({"one", "two", "three", "four", "five", "six", "seven", "eight"}).dump(), &out), success);
    EXPECT_EQ(decode_calls() - before, 1u) << "8 short inputs fit one 512-token batch";
}

// embed_batch_tokens bounds what one decode packs from several inputs (a
// non-causal model's decode costs the square of its tokens); the
// embeddings are those of a decode that packs them all.
TEST(EmbedConcurrency, PackingStopsAtEmbedBatchTokens) {
    std::vector<std::string> inputs;
    for (int i = 0; i < 12; ++i) {
        std::string text = "input " + std::to_string(i) + ":";
        for (int w = 0; w < 30; ++w) text += " word" + std::to_string((i * 31 + w) % 97);
        inputs.push_back(text);
    }
    using status_fn = wasi_nn_error (*)(void*, backend_status_type, char*, uint32_t);
    auto status = reinterpret_cast<status_fn>(dlsym(WamrApi::get().lib, "get_backend_status"));
    ASSERT_NE(status, nullptr);
    auto run = [&](int batch_tokens, uint64_t* calls, uint64_t* tokens, json* out) {
        WamrSession s(bert_model(), "{\"embedding\":true,\"threads\":2,\"batch_size\":2048,\"embed_batch_tokens\":" +
                                        std::to_string(batch_tokens) + ",\"logging\":{\"level\":\"warn\"}}");
        ASSERT_EQ(s.load_status(), success);
        auto e = s.open();
        std::string text, meta;
        ASSERT_EQ(embed(s, e, json(inputs).dump(), &text), success);
        ASSERT_EQ(s.output(e, 1, &meta), success);
        *tokens = json::parse(meta)["input_tokens"].get<uint64_t>();
        std::vector<char> buf(1 << 16);
        ASSERT_EQ(status(s.ctx(), BACKEND_STATUS_PERFORMANCE, buf.data(), static_cast<uint32_t>(buf.size())), success);
        const json perf = json::parse(buf.data())["models"][0];
        *calls = perf["decode_calls"].get<uint64_t>();
        EXPECT_LE(perf["max_batch_tokens"].get<int>(), batch_tokens);
        *out = json::parse(text);
    };
    uint64_t small_calls = 0, small_tokens = 0, big_calls = 0, big_tokens = 0;
    json small, big;
    run(128, &small_calls, &small_tokens, &small);
    run(2048, &big_calls, &big_tokens, &big);
    ASSERT_EQ(small_tokens, big_tokens);
    ASSERT_GT(small_tokens, 12u * 30u) << "about 35 tokens an input";
    EXPECT_EQ(big_calls, 1u) << "12 inputs, " << big_tokens << " tokens: one decode";
    EXPECT_GE(small_calls, (small_tokens + 127) / 128) << "at most 128 tokens a decode";
    ASSERT_EQ(small.size(), big.size());
    for (size_t i = 0; i < small.size(); ++i) {
        const auto& a = small[i]["embedding"];
        const auto& b = big[i]["embedding"];
        ASSERT_EQ(a.size(), b.size());
        for (size_t j = 0; j < a.size(); ++j) {
            EXPECT_NEAR(a[j].get<double>(), b[j].get<double>(), 1e-4) << "input " << i << " value " << j;
        }
    }
}

}  // namespace
