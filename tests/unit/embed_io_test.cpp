// Embedding calls' input parsing and output JSON (embed_io), and their
// configuration keys.
#include "engine/embed_io.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/config.h"

namespace wnl {
namespace {

using nlohmann::json;

Status parse(const std::string& text, EmbedInput* in, size_t max = 8) {
    std::string err;
    Status st = parse_embed_input(text, max, in, &err);
    if (st != Status::ok) {
        EXPECT_FALSE(err.empty()) << "no message for " << text;
    }
    return st;
}

TEST(EmbedInput, PlainTextIsOneInput) {
    EmbedInput in;
    ASSERT_EQ(parse("hello world", &in), Status::ok);
    EXPECT_FALSE(in.batch);
    ASSERT_EQ(in.texts.size(), 1u);
    EXPECT_EQ(in.texts[0], "hello world");
    // A C string's NUL is not part of it.
    ASSERT_EQ(parse(std::string("hi\0", 3), &in), Status::ok);
    EXPECT_EQ(in.texts[0], "hi");
    // Looks like JSON but is not: text.
    ASSERT_EQ(parse("[1] is a citation", &in), Status::ok);
    EXPECT_EQ(in.texts[0], "[1] is a citation");
    ASSERT_EQ(parse("{not json", &in), Status::ok);
    EXPECT_FALSE(in.batch);
}

TEST(EmbedInput, ArraysAndObjects) {
    EmbedInput in;
    ASSERT_EQ(parse("  [\"a\", \"b c\"]", &in), Status::ok);
    EXPECT_TRUE(in.batch);
    EXPECT_EQ(in.texts, (std::vector<std::string>{"a", "b c"}));
    ASSERT_EQ(parse("{\"input\":\"x\",\"model\":\"m\"}", &in), Status::ok);
    EXPECT_FALSE(in.batch);
    EXPECT_EQ(in.texts, std::vector<std::string>{"x"});
    ASSERT_EQ(parse("{\"input\":[\"x\"]}", &in), Status::ok);
    EXPECT_TRUE(in.batch);
}

TEST(EmbedInput, BadShapesHaveTheirCodes) {
    EmbedInput in;
    EXPECT_EQ(parse("", &in), Status::invalid_argument);
    EXPECT_EQ(parse(std::string("\0", 1), &in), Status::invalid_argument);
    EXPECT_EQ(parse("[]", &in), Status::invalid_argument);
    EXPECT_EQ(parse("[\"a\", null]", &in), Status::invalid_argument);
    EXPECT_EQ(parse("[[\"a\"]]", &in), Status::invalid_argument);
    EXPECT_EQ(parse("[\"\"]", &in), Status::invalid_argument);
    EXPECT_EQ(parse("{\"input\":\"\"}", &in), Status::invalid_argument);
    EXPECT_EQ(parse("{\"text\":\"a\"}", &in), Status::invalid_argument);
    EXPECT_EQ(parse("{\"input\":{}}", &in), Status::invalid_argument);
    EXPECT_EQ(parse(std::string(65, '[') + std::string(65, ']'), &in), Status::invalid_argument);
    EXPECT_EQ(parse(json(std::vector<std::string>(9, "a")).dump(), &in), Status::invalid_argument) << "max_inputs";
    EXPECT_EQ(parse(json(std::vector<std::string>(8, "a")).dump(), &in), Status::ok);
}

TEST(EmbedInput, Rerank) {
    EmbedInput in;
    std::string err;
    ASSERT_EQ(parse_rerank_input("{\"query\":\"q\",\"documents\":[\"a\",\"b\"]}", 4, &in, &err), Status::ok);
    EXPECT_EQ(in.query, "q");
    EXPECT_EQ(in.texts, (std::vector<std::string>{"a", "b"}));
    ASSERT_EQ(parse_rerank_input("{\"query\":\"q\",\"texts\":[\"a\"]}", 4, &in, &err), Status::ok);
    for (const char* bad : {"q", "[\"a\"]", "{\"documents\":[\"a\"]}", "{\"query\":1,\"documents\":[\"a\"]}",
                            "{\"query\":\"\",\"documents\":[\"a\"]}", "{\"query\":\"q\"}",
                            "{\"query\":\"q\",\"documents\":\"a\"}", "{\"query\":\"q\",\"documents\":[]}",
                            "{\"query\":\"q\",\"documents\":[\"a\",2]}", "{\"query\":\"q\",\"documents\":[\"\"]}"}) {
        EXPECT_EQ(parse_rerank_input(bad, 4, &in, &err), Status::invalid_argument) << bad;
    }
    EXPECT_EQ(parse_rerank_input("{\"query\":\"q\",\"documents\":[\"a\",\"b\",\"c\"]}", 2, &in, &err),
              Status::invalid_argument);
    EXPECT_NE(err.find("max_embedding_inputs"), std::string::npos) << err;
}

TEST(EmbedInput, RerankTemplateIsBounded) {
    std::string out;
    ASSERT_TRUE(render_rerank_template("<s>{query}</s><s>{document}</s>{quer", "q?", "doc", 100, &out));
    EXPECT_EQ(out, "<s>q?</s><s>doc</s>{quer");
    // A template naming the query many times: refused once past the bound,
    // before the text is built.
    std::string many;
    for (int i = 0; i < 100000; ++i) many += "{query}";
    EXPECT_FALSE(render_rerank_template(many, std::string(1000, 'x'), "d", 1 << 20, &out));
    EXPECT_LE(out.size(), size_t{1} << 20);
    EXPECT_TRUE(render_rerank_template(many, "x", "d", 1 << 20, &out));
    EXPECT_EQ(out, std::string(100000, 'x'));
}

TEST(EmbedOutput, WasmEdgeShapes) {
    const std::vector<std::vector<float>> one = {{0.5f, -0.25f, 1.0f / 3.0f}};
    auto j = json::parse(embeddings_json(one, false, 3, false));
    EXPECT_EQ(j["n_embedding"], 3);
    ASSERT_EQ(j["embedding"].size(), 3u);
    EXPECT_EQ(j["embedding"][2].get<float>(), 1.0f / 3.0f) << "9 digits give the float back exactly";
    auto b = json::parse(embeddings_json({{1, 2}, {3, 4}}, true, 2, false));
    ASSERT_TRUE(b.is_array());
    EXPECT_EQ(b[1]["embedding"][0], 3);
    auto t = json::parse(embeddings_json({{1, 2, 3, 4, 5, 6}}, false, 2, true));
    EXPECT_EQ(t["n_tokens"], 3);
    EXPECT_EQ(t["embedding"][2][1], 6);
    auto nan = json::parse(embeddings_json({{NAN, 1}}, false, 2, false));
    EXPECT_TRUE(nan["embedding"][0].is_null());
    auto s = json::parse(scores_json({{0.75f}, {-2.0f, 9.0f}}));
    EXPECT_EQ(s["scores"], json::parse("[0.75,-2]"));
}

TEST(EmbedConfig, KeysAndScopes) {
    Config c;
    std::string err;
    ASSERT_EQ(apply_config_json("{\"embedding\":true,\"pooling\":\"CLS\",\"embd-normalize\":-1,\"truncate\":1,"
                                "\"max_embedding_inputs\":16}",
                                ConfigScope::model, c, &err),
              Status::ok);
    // The caps are the backend context's own: a graph config's is ignored.
    EXPECT_EQ(c.limits.max_embedding_inputs, 256);
    ASSERT_EQ(apply_config_json("{\"max_embedding_inputs\":16,\"max_embedding_tokens\":1000,"
                                "\"max_embedding_values\":5000}",
                                ConfigScope::backend, c, &err),
              Status::ok);
    EXPECT_EQ(c.limits.max_embedding_tokens, 1000);
    EXPECT_EQ(c.limits.max_embedding_values, 5000);
    EXPECT_TRUE(c.embedding.enabled);
    EXPECT_EQ(c.embedding.pooling, "cls");
    EXPECT_EQ(c.embedding.normalize, -1);
    EXPECT_TRUE(c.embedding.truncate);
    EXPECT_EQ(c.limits.max_embedding_inputs, 16);
    EXPECT_EQ(apply_config_json("{\"pooling_type\":\"max\"}", ConfigScope::model, c, &err), Status::invalid_argument);
    EXPECT_EQ(apply_config_json("{\"embd_normalize\":-2}", ConfigScope::model, c, &err), Status::invalid_argument);
    EXPECT_EQ(apply_config_json("{\"max_embedding_inputs\":0}", ConfigScope::backend, c, &err), Status::invalid_argument);
    // Per request: normalisation and truncation change; the graph kind keys
    // are read (so the backend can refuse a change), the cap is not.
    Config r = c;
    ASSERT_EQ(apply_config_json("{\"embd_normalize\":3,\"reranking\":true,\"max_embedding_inputs\":2}",
                                ConfigScope::request, r, &err),
              Status::ok);
    EXPECT_EQ(r.embedding.normalize, 3);
    EXPECT_TRUE(r.embedding.reranking);
    EXPECT_EQ(r.limits.max_embedding_inputs, 16);
}

}  // namespace
}  // namespace wnl
