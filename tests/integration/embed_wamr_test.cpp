// Embedding and reranking graphs through libwasi_nn_llamacpp.so: the vectors
// equal llama-embedding's (built from the same source) for a decoder model
// and a BERT model, reranking scores equal llama.cpp's, batches, the
// per-input context, and every kind of bad input getting its own code.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

#include "integration/embed_reference.h"
#include "integration/embed_wamr.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

const std::vector<std::string> kStories = {"Once upon a time", "The little dog wanted to play",
                                           "Tom and Lily went to the park. They saw a big tree."};
const std::vector<std::string> kSentences = {
    "the cat sat on the mat", "a quick brown fox jumps over the lazy dog", "embeddings map text to vectors",
    "hello world", "what is the capital of france?"};

TEST(EmbedWamr, DecoderModelMatchesLlamaEmbedding) {
    const std::string model = model_path("stories260K.gguf");
    WamrSession s(model, embed_config());
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    int rc = 0;
    Vectors ref = reference_embeddings(model, kStories, "--pooling mean -c 512 -b 512 -ub 512", &rc);
    ASSERT_EQ(rc, 0) << "llama-embedding failed";
    std::string out, meta;
    ASSERT_EQ(embed(s, e, json_array(kStories), &out, "", &meta), success);
    expect_close(parse_ours(out), ref, "batch");
    auto m = json::parse(meta);
    EXPECT_EQ(m["n_inputs"], kStories.size());
    EXPECT_EQ(m["mode"], "embedding");
    EXPECT_EQ(m["pooling"], "mean");
    EXPECT_GT(m["input_tokens"].get<int>(), 10);
    // One input, as plain text, gives the object alone.
    ASSERT_EQ(embed(s, e, kStories[1], &out), success);
    ASSERT_EQ(out[0], '{');
    expect_close(parse_ours(out), {ref[1]}, "single");
}

TEST(EmbedWamr, BertModelMatchesLlamaEmbedding) {
    const std::string model = bert_model();
    int rc = 0;
    Vectors ref = reference_embeddings(model, kSentences, "-c 1024 -b 1024 -ub 1024", &rc);
    ASSERT_EQ(rc, 0) << "llama-embedding failed";
    WamrSession s(model, embed_config());
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string out;
    ASSERT_EQ(embed(s, e, json_array(kSentences), &out), success);
    expect_close(parse_ours(out), ref, "bert mean");
    // The OpenAI / LlamaEdge request shape.
    ASSERT_EQ(embed(s, e, json{{"input", kSentences}}.dump(), &out), success);
    expect_close(parse_ours(out), ref, "bert {input}");
}

TEST(EmbedWamr, NormalizationsMatchLlamaEmbedding) {
    const std::string model = bert_model();
    WamrSession s(model, embed_config());
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    for (int norm : {-1, 0, 1, 2, 3}) {
        int rc = 0;
        Vectors ref = reference_embeddings(model, kSentences, "--embd-normalize " + std::to_string(norm), &rc);
        ASSERT_EQ(rc, 0) << "llama-embedding failed";
        std::string out;
        ASSERT_EQ(embed(s, e, json_array(kSentences), &out, "{\"embd_normalize\":" + std::to_string(norm) + "}"),
                  success);
        expect_close(parse_ours(out), ref, "embd_normalize " + std::to_string(norm), norm == 0 ? 0.5 + 1e-6 : 1e-6);
    }
}

TEST(EmbedWamr, PoolingOverridesMatchLlamaEmbedding) {
    const std::string model = bert_model();
    for (const char* pooling : {"cls", "last", "none"}) {
        int rc = 0;
        Vectors ref = reference_embeddings(model, {kSentences[0], kSentences[1]}, std::string("--pooling ") + pooling,
                                           &rc);
        ASSERT_EQ(rc, 0) << "llama-embedding failed";
        WamrSession s(model, embed_config(std::string("\"pooling_type\":\"") + pooling + "\""));
        ASSERT_EQ(s.load_status(), success);
        auto e = s.open();
        std::string out, meta;
        ASSERT_EQ(embed(s, e, json_array({kSentences[0], kSentences[1]}), &out, "", &meta), success);
        const bool none = std::string(pooling) == "none";
        expect_close(parse_ours(out, none), ref, pooling);
        EXPECT_EQ(json::parse(meta)["pooling"], pooling);
        if (none) {
            auto doc = json::parse(out);
            EXPECT_EQ(doc[0]["n_tokens"].get<size_t>() + doc[1]["n_tokens"].get<size_t>(), ref.size());
        }
    }
}

TEST(EmbedWamr, RerankScoresMatchLlamaCpp) {
    const std::string model = reranker_model();
    const std::string query = "what is a panda?";
    const std::vector<std::string> docs = {
        "hi", "it is a bear", "the giant panda is a bear species endemic to china", "pandas eat bamboo",
        "paris is the capital of france", "a panda is a black and white animal", "stock markets fell today"};
    // llama-embedding's rank pooling over "query\tdocument" lines: with this
    // model's tokenizer keys it builds the pair exactly as llama.cpp's
    // server's /rerank does ([CLS] query [SEP] document [SEP]).
    std::vector<std::string> pairs;
    for (const auto& d : docs) pairs.push_back(query + "\t" + d);
    int rc = 0;
    Vectors ref = reference_embeddings(model, pairs, "--pooling rank --embd-normalize -1", &rc);
    ASSERT_EQ(rc, 0) << "llama-embedding failed";
    ASSERT_EQ(ref.size(), docs.size());

    WamrSession s(model, "{\"reranking\":true,\"threads\":2,\"logging\":{\"level\":\"warn\"}}");
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string out, meta;
    ASSERT_EQ(embed(s, e, json{{"query", query}, {"documents", docs}}.dump(), &out, "", &meta), success);
    auto scores = json::parse(out)["scores"].get<std::vector<double>>();
    ASSERT_EQ(scores.size(), docs.size());
    Vectors ours, theirs;
    for (size_t i = 0; i < docs.size(); ++i) {
        ours.push_back({scores[i]});
        theirs.push_back({ref[i][0]});
    }
    expect_close(ours, theirs, "rerank scores");
    std::vector<size_t> a(docs.size()), b(docs.size());
    std::iota(a.begin(), a.end(), 0);
    std::iota(b.begin(), b.end(), 0);
    std::sort(a.begin(), a.end(), [&](size_t x, size_t y) { return scores[x] > scores[y]; });
    std::sort(b.begin(), b.end(), [&](size_t x, size_t y) { return ref[x][0] > ref[y][0]; });
    EXPECT_EQ(a, b) << "ranking order";
    EXPECT_EQ(json::parse(meta)["mode"], "rerank");
    EXPECT_EQ(json::parse(meta)["pooling"], "rank");
}

TEST(EmbedWamr, SixtyFourInputsInOneCall) {
    const std::string model = bert_model();
    std::vector<std::string> inputs;
    for (int i = 0; i < 64; ++i) {
        inputs.push_back("sentence number " + std::to_string(i) + " says " + kSentences[i % kSentences.size()]);
    }
    int rc = 0;
    Vectors ref = reference_embeddings(model, inputs, "-c 2048 -b 2048 -ub 2048", &rc);
    ASSERT_EQ(rc, 0) << "llama-embedding failed";
    // A 256-token batch: the call is spread over several decodes.
    WamrSession s(model, embed_config("\"batch_size\":256"));
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string out, meta;
    ASSERT_EQ(embed(s, e, json_array(inputs), &out, "", &meta), success);
    expect_close(parse_ours(out), ref, "64 inputs");
    EXPECT_EQ(json::parse(meta)["n_inputs"], 64);
}

// [CLS] + n words + [SEP] with bge's vocabulary: "hello" is one token.
std::string words(int n, const std::string& tail = "") {
    std::string s;
    for (int i = 0; i < n; ++i) s += i ? " hello" : "hello";
    return s + tail;
}

TEST(EmbedWamr, InputsAtAndPastTheContext) {
    WamrSession s(bert_model(), embed_config("\"ctx_size\":32"));
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string at, meta;
    ASSERT_EQ(embed(s, e, words(30), &at, "", &meta), success);
    EXPECT_EQ(json::parse(meta)["input_tokens"], 32);
    std::string out;
    EXPECT_EQ(embed(s, e, words(31), &out), prompt_tool_long);
    EXPECT_EQ(embed(s, e, json_array({words(3), words(31)}), &out), prompt_tool_long);
    // truncate: the first 31 tokens and the closing [SEP], which is the
    // 30-word input again, whatever followed.
    std::string cut_a, cut_b;
    ASSERT_EQ(embed(s, e, words(30, " world and more"), &cut_a, "{\"truncate\":true}", &meta), success);
    EXPECT_EQ(json::parse(meta)["truncated_inputs"], 1);
    EXPECT_EQ(json::parse(meta)["input_tokens"], 32);
    ASSERT_EQ(embed(s, e, words(40), &cut_b, "{\"truncate\":true}"), success);
    expect_close(parse_ours(cut_a), parse_ours(at), "truncated a");
    expect_close(parse_ours(cut_b), parse_ours(at), "truncated b");
}

TEST(EmbedWamr, NonCausalInputLongerThanTheDefaultUbatch) {
    // 700 tokens: more than the default 512-token ubatch, which a non-causal
    // model must take in one piece (llama.cpp asserts otherwise).
    const std::string model = bert_model();
    const std::string text = words(698);
    int rc = 0;
    Vectors ref = reference_embeddings(model, {text}, "-c 1024 -b 1024 -ub 1024", &rc);
    ASSERT_EQ(rc, 0) << "llama-embedding failed";
    WamrSession s(model, embed_config());
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string out, meta;
    ASSERT_EQ(embed(s, e, text, &out, "", &meta), success);
    EXPECT_EQ(json::parse(meta)["input_tokens"], 700);
    expect_close(parse_ours(out), ref, "700 tokens");
    // Past the model's 1024 trained positions: refused, not an abort, even
    // when the graph asks for a larger context.
    WamrSession big(model, embed_config("\"ctx_size\":2048"));
    ASSERT_EQ(big.load_status(), success);
    auto eb = big.open();
    EXPECT_EQ(embed(big, eb, words(1100), &out), prompt_tool_long);
    ASSERT_EQ(embed(big, eb, text, &out), success);
}

TEST(EmbedWamr, BadInputGetsItsCode) {
    WamrSession s(bert_model(), embed_config("\"max_embedding_inputs\":4"));
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string out;
    EXPECT_EQ(embed(s, e, "", &out), invalid_argument) << "empty text";
    EXPECT_EQ(embed(s, e, "[]", &out), invalid_argument) << "empty array";
    EXPECT_EQ(embed(s, e, "[\"a\", 3]", &out), invalid_argument) << "non-string item";
    EXPECT_EQ(embed(s, e, "[\"a\", \"\"]", &out), invalid_argument) << "empty item";
    EXPECT_EQ(embed(s, e, "{\"inputs\": [\"a\"]}", &out), invalid_argument) << "object without input";
    EXPECT_EQ(embed(s, e, "{\"input\": 7}", &out), invalid_argument) << "input not text";
    EXPECT_EQ(embed(s, e, std::string(100, '[') + std::string(100, ']'), &out), invalid_argument) << "deep";
    EXPECT_EQ(embed(s, e, json_array({"a", "b", "c", "d", "e"}), &out), invalid_argument) << "too many inputs";
    // Text that only looks like JSON is text.
    EXPECT_EQ(embed(s, e, "[1] is a citation", &out), success);
    // A generation call on an embedding graph, and a request asking for another kind.
    EXPECT_EQ(WamrApi::get().compute_single(s.ctx(), e), invalid_argument);
    EXPECT_EQ(s.set_text(e, 1, "{\"embedding\":false}"), invalid_argument);
    EXPECT_EQ(s.set_text(e, 1, "{\"pooling_type\":\"cls\"}"), invalid_argument);
    EXPECT_EQ(s.set_text(e, 1, "{\"embd_normalize\":\"two\"}"), invalid_argument);
    // Nothing was lost: the graph still embeds.
    ASSERT_EQ(embed(s, e, json_array({"a", "b", "c", "d"}), &out), success);
    EXPECT_EQ(parse_ours(out).size(), 4u);

    WamrSession r(reranker_model(), "{\"reranking\":true,\"max_embedding_inputs\":3,\"logging\":{\"level\":\"warn\"}}");
    ASSERT_EQ(r.load_status(), success);
    auto er = r.open();
    EXPECT_EQ(embed(r, er, "what is a panda?", &out), invalid_argument) << "not an object";
    EXPECT_EQ(embed(r, er, "{\"documents\":[\"a\"]}", &out), invalid_argument) << "no query";
    EXPECT_EQ(embed(r, er, "{\"query\":\"\",\"documents\":[\"a\"]}", &out), invalid_argument) << "empty query";
    EXPECT_EQ(embed(r, er, "{\"query\":\"q\"}", &out), invalid_argument) << "no documents";
    EXPECT_EQ(embed(r, er, "{\"query\":\"q\",\"documents\":[]}", &out), invalid_argument) << "no documents";
    EXPECT_EQ(embed(r, er, "{\"query\":\"q\",\"documents\":\"a\"}", &out), invalid_argument) << "not an array";
    EXPECT_EQ(embed(r, er, "{\"query\":\"q\",\"documents\":[\"a\",\"\"]}", &out), invalid_argument) << "empty doc";
    EXPECT_EQ(embed(r, er, "{\"query\":\"q\",\"documents\":[\"a\",\"b\",\"c\",\"d\"]}", &out), invalid_argument);
    ASSERT_EQ(embed(r, er, "{\"query\":\"q\",\"documents\":[\"a\",\"b\",\"c\"]}", &out), success);
    EXPECT_EQ(json::parse(out)["scores"].size(), 3u);

    // Embedding calls on a generation graph.
    WamrSession g(model_path("stories260K.gguf"), "{\"threads\":2,\"logging\":{\"level\":\"warn\"}}");
    ASSERT_EQ(g.load_status(), success);
    auto eg = g.open();
    EXPECT_EQ(g.set_text(eg, 1, "{\"embedding\":true}"), invalid_argument);
    EXPECT_EQ(g.set_text(eg, 1, "{\"embd_normalize\":1}"), invalid_argument);
    EXPECT_EQ(g.set_text(eg, 1, "{\"reranking\":true}"), invalid_argument);

    // A reranking graph cannot have another pooling.
    WamrSession bad(reranker_model(), "{\"reranking\":true,\"pooling_type\":\"mean\",\"logging\":{\"level\":\"warn\"}}");
    EXPECT_EQ(bad.load_status(), invalid_argument);
}

TEST(EmbedWamr, RunInferenceEmbeds) {
    WamrSession s(bert_model(), embed_config());
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string ref;
    ASSERT_EQ(embed(s, e, json_array(kSentences), &ref), success);
    const std::string input = json_array(kSentences);
    uint32_t dim = static_cast<uint32_t>(input.size());
    tensor_dimensions dims{&dim, 1};
    tensor t{};
    t.dimensions = &dims;
    t.type = u8;
    t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(input.data())), dim};
    std::vector<uint8_t> buf(1 << 20);
    uint32_t size = static_cast<uint32_t>(buf.size());
    const std::string opts = "{\"embd_normalize\":2}";
    ASSERT_EQ(WamrApi::get().run_inference(s.ctx(), e, 0, &t, buf.data(), &size, opts.data(),
                                           static_cast<uint32_t>(opts.size())),
              success);
    ASSERT_GT(size, 0u);
    expect_close(parse_ours(std::string(reinterpret_cast<char*>(buf.data()), size - 1)), parse_ours(ref), "run_inference");
}

}  // namespace
