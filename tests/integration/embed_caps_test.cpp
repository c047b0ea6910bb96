// What one guest may ask of an embedding graph (docs/embeddings.md §1):
// the host's caps on one call (inputs, tokens, output values) that a
// guest's own config cannot widen, the ubatch ceiling on a guest's
// per-input context, and a GGUF whose pooling llama.cpp would abort on.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "integration/embed_reference.h"
#include "integration/embed_wamr.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

std::string hellos(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += i ? " hello" : "hello";
    return s;
}

TEST(EmbedCaps, HostCapsBindTheGuest) {
    // The host's caps, and a guest config that tries to raise one.
    const std::string host = "{\"max_embedding_inputs\":4,\"max_embedding_tokens\":40,"
                             "\"max_embedding_values\":320,\"logging\":{\"level\":\"warn\"}}";
    WamrSession s(bert_model(), host, embed_config("\"max_embedding_inputs\":100,\"max_embedding_tokens\":100000"));
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string out;
    // bert-tiny is 64 wide: 4 vectors are 256 values, within 320.
    ASSERT_EQ(embed(s, e, json_array({"a", "b", "c", "d"}), &out), success);
    EXPECT_EQ(parse_ours(out).size(), 4u);
    EXPECT_EQ(embed(s, e, json_array({"a", "b", "c", "d", "e"}), &out), invalid_argument) << "max_embedding_inputs";
    // [CLS] + 20 + [SEP] twice is 44 tokens, past 40.
    EXPECT_EQ(embed(s, e, json_array({hellos(20), hellos(20)}), &out), invalid_argument) << "max_embedding_tokens";
    ASSERT_EQ(embed(s, e, json_array({hellos(10), hellos(10)}), &out), success);
    // A request's options cannot raise a cap either.
    EXPECT_EQ(embed(s, e, json_array({"a", "b", "c", "d", "e"}), &out, "{\"max_embedding_inputs\":100}"),
              invalid_argument);

    // Pooling none returns every token's vector: 7 tokens x 64 = 448 values, past 320.
    WamrSession n(bert_model(), host, embed_config("\"pooling_type\":\"none\""));
    ASSERT_EQ(n.load_status(), success);
    auto en = n.open();
    EXPECT_EQ(embed(n, en, hellos(5), &out), invalid_argument) << "max_embedding_values";
    ASSERT_EQ(embed(n, en, hellos(2), &out), success);  // 4 tokens: 256 values
    EXPECT_EQ(json::parse(out)["n_tokens"], 4);
}

TEST(EmbedCaps, GuestContextWithinTheUbatchCeiling) {
    const std::string host = "{\"logging\":{\"level\":\"warn\"},\"policy\":{\"ceilings\":{\"ubatch_size\":600}}}";
    // Each input is decoded whole in one ubatch: a guest's ctx_size or
    // batch_size past the ubatch ceiling is refused at load.
    WamrSession big(bert_model(), host, embed_config("\"ctx_size\":1024"));
    EXPECT_EQ(big.load_status(), invalid_argument);
    WamrSession wide(bert_model(), host, embed_config("\"batch_size\":1024"));
    EXPECT_EQ(wide.load_status(), invalid_argument);
    // The model's own context (1024 positions) is lowered to the ceiling.
    WamrSession s(bert_model(), host, embed_config());
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string out, meta;
    EXPECT_EQ(embed(s, e, hellos(700), &out), prompt_tool_long);
    ASSERT_EQ(embed(s, e, hellos(598), &out, "", &meta), success);  // + [CLS] and [SEP]: 600
    EXPECT_EQ(json::parse(meta)["input_tokens"], 600);
    // A generation graph's own ctx_size ceiling is unchanged by this rule.
    WamrSession gen(model_path("stories260K.gguf"), host, "{\"ctx_size\":1024,\"logging\":{\"level\":\"warn\"}}");
    EXPECT_EQ(gen.load_status(), success);
}

// The bert model with its bert.pooling_type (a u32) set to `value`.
std::string with_pooling_type(uint32_t value) {
    std::ifstream in(bert_model(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string key = "bert.pooling_type";
    size_t at = bytes.find(key);
    if (at == std::string::npos) {
        ADD_FAILURE() << "no " << key << " in the model";
        return "";
    }
    at += key.size() + 4;  // the value follows its u32 type tag
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
    const std::string path = std::string(WNL_BUILD_DIR) + "/test-models/bert-pooling-" + std::to_string(value) + ".gguf";
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

TEST(EmbedCaps, UnknownPoolingInTheFileIsRefused) {
    // llama.cpp would reach GGML_ABORT("unknown pooling type") in the first decode.
    const std::string path = with_pooling_type(9);
    ASSERT_FALSE(path.empty());
    WamrSession bad(path, embed_config());
    EXPECT_EQ(bad.load_status(), invalid_encoding);
    // The same file with a pooling it knows (cls) embeds.
    WamrSession ok(with_pooling_type(2), embed_config());
    ASSERT_EQ(ok.load_status(), success);
    auto e = ok.open();
    std::string out, meta;
    ASSERT_EQ(embed(ok, e, "hello world", &out, "", &meta), success);
    EXPECT_EQ(json::parse(meta)["pooling"], "cls");
}

}  // namespace
