// Embedding and reranking through the legacy ABI (libwasi_nn_backend.so):
// run_inference with NUL-terminated text, as the original project's suite
// sends it, gives the same vectors as llama-embedding.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/embed_reference.h"
#include "integration/legacy_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

// One backend context and graph; run_inference on a named session.
wasi_nn_error legacy_embed(const std::string& model, const std::string& config, const std::string& input,
                           std::string* out, const std::string& runtime = "") {
    LegacyApi& api = LegacyApi::get();
    void* ctx = nullptr;
    wasi_nn_error rc = api.init_backend_with_config(&ctx, config.c_str(), static_cast<uint32_t>(config.size()));
    if (rc != success) return rc;
    graph g = 0;
    graph_execution_context e = 0;
    rc = api.load_by_name_with_config(ctx, model.c_str(), static_cast<uint32_t>(model.size()), config.c_str(),
                                      static_cast<uint32_t>(config.size()), &g);
    if (rc == success) rc = api.init_execution_context_with_session_id(ctx, "embed", &e);
    if (rc == success) {
        tensor t{};
        t.type = u8;
        t.data = reinterpret_cast<uint8_t*>(const_cast<char*>(input.c_str()));
        std::vector<uint8_t> buf(1 << 20);
        uint32_t size = static_cast<uint32_t>(buf.size());
        rc = api.run_inference(ctx, e, 0, &t, buf.data(), &size, runtime.empty() ? nullptr : runtime.c_str(),
                               static_cast<uint32_t>(runtime.size()));
        if (rc == success && size > 0) out->assign(reinterpret_cast<char*>(buf.data()), size - 1);
        api.close_execution_context(ctx, e);
    }
    api.deinit_backend(ctx);
    return rc;
}

const std::string kConfig = "{\"embedding\":true,\"threads\":2,\"logging\":{\"level\":\"warn\"}}";
const std::vector<std::string> kInputs = {"the cat sat on the mat", "hello world", "what is the capital of france?"};

TEST(EmbedLegacy, BertModelMatchesLlamaEmbedding) {
    const std::string model = bert_model();
    int rc = 0;
    Vectors ref = reference_embeddings(model, kInputs, "", &rc);
    ASSERT_EQ(rc, 0) << "llama-embedding failed";
    std::string out;
    ASSERT_EQ(legacy_embed(model, kConfig, json(kInputs).dump(), &out), success);
    expect_close(parse_ours(out), ref, "legacy bert batch");
    ASSERT_EQ(legacy_embed(model, kConfig, kInputs[2], &out), success);
    expect_close(parse_ours(out), {ref[2]}, "legacy bert single");
}

TEST(EmbedLegacy, DecoderModelMatchesLlamaEmbedding) {
    const std::string model = model_path("stories260K.gguf");
    const std::vector<std::string> inputs = {"Once upon a time", "The little dog wanted to play"};
    int rc = 0;
    Vectors ref = reference_embeddings(model, inputs, "--pooling mean --embd-normalize 1 -c 512 -b 512 -ub 512", &rc);
    ASSERT_EQ(rc, 0) << "llama-embedding failed";
    std::string out;
    ASSERT_EQ(legacy_embed(model, kConfig, json(inputs).dump(), &out, "{\"embd_normalize\":1}"), success);
    expect_close(parse_ours(out), ref, "legacy decoder batch");
}

TEST(EmbedLegacy, RerankAndBadInput) {
    const std::string model = reranker_model();
    const std::string config = "{\"reranking\":true,\"threads\":2,\"logging\":{\"level\":\"warn\"}}";
    const std::string query = "what is a panda?";
    const std::vector<std::string> docs = {"hi", "the giant panda is a bear", "paris is in france"};
    std::vector<std::string> pairs;
    for (const auto& d : docs) pairs.push_back(query + "\t" + d);
    int rc = 0;
    Vectors ref = reference_embeddings(model, pairs, "--pooling rank --embd-normalize -1", &rc);
    ASSERT_EQ(rc, 0) << "llama-embedding failed";
    std::string out;
    ASSERT_EQ(legacy_embed(model, config, json{{"query", query}, {"documents", docs}}.dump(), &out), success);
    auto scores = json::parse(out)["scores"].get<std::vector<double>>();
    ASSERT_EQ(scores.size(), docs.size());
    for (size_t i = 0; i < docs.size(); ++i) expect_close({{scores[i]}}, {{ref[i][0]}}, "legacy score");
    EXPECT_EQ(legacy_embed(model, config, "[\"not\",\"a\",\"rerank\"]", &out), invalid_argument);
    EXPECT_EQ(legacy_embed(bert_model(), kConfig, "[]", &out), invalid_argument);
}

}  // namespace
