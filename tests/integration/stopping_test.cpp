// Stop strings, max_tokens, max_time_ms and ignore_eos, with stop_reason in
// the metadata.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

const std::string kGolden =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw";

struct Result {
    wasi_nn_error rc;
    std::string reply;
    json meta;
};

Result run(const std::string& options) {
    WamrSession s(model_path("stories260K.gguf"), "{\"temp\":0,\"max_tokens\":32,\"logging\":{\"level\":\"warn\"}}");
    auto e = s.open();
    Result r;
    std::string meta;
    r.rc = s.turn(e, "Once upon a time", &r.reply, options, &meta);
    if (!meta.empty()) r.meta = json::parse(meta);
    return r;
}

TEST(Stopping, StopStringIsNotEmitted) {
    Result r = run("{\"stop\":[\"Lily\"]}");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.reply, ", there was a little girl named ");
    EXPECT_EQ(r.meta["stop_reason"], "stop_string");
}

TEST(Stopping, StopStringSplitAcrossTokens) {
    // "l na" spans the tokens " girl" and " named".
    Result r = run("{\"stop\":[\"zzz\",\"l na\"]}");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.reply, ", there was a little gir");
    EXPECT_EQ(r.meta["stop_reason"], "stop_string");
}

TEST(Stopping, EarliestOfSeveralStopStringsWins) {
    Result r = run("{\"stop\":[\"park\",\"little\"]}");
    EXPECT_EQ(r.reply, ", there was a ");
}

TEST(Stopping, ReversePromptAsWasmEdgeSendsIt) {
    Result r = run("{\"reverse-prompt\":\"She\"}");
    EXPECT_EQ(r.reply, ", there was a little girl named Lily. ");
}

TEST(Stopping, MaxTokens) {
    Result r = run("{\"max_tokens\":5}");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.meta["output_tokens"], 5);
    EXPECT_EQ(r.meta["stop_reason"], "max_tokens");
    EXPECT_EQ(kGolden.compare(0, r.reply.size(), r.reply), 0);
}

TEST(Stopping, NPredictAliasInRequest) {
    Result r = run("{\"n-predict\":3}");
    EXPECT_EQ(r.meta["output_tokens"], 3);
}

TEST(Stopping, MaxTimeStopsWithTextSoFar) {
    Result r = run("{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":60}");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.meta["stop_reason"], "time_limit");
    EXPECT_GT(r.meta["output_tokens"].get<int>(), 0);
    // Whatever was generated in the time is the start of the greedy story.
    const size_t n = std::min(r.reply.size(), kGolden.size());
    EXPECT_EQ(r.reply.substr(0, n), kGolden.substr(0, n));
}

TEST(Stopping, IgnoreEosRunsToTheLimit) {
    // A tiny-vocabulary model that ends stories with EOS only under a bias:
    // forcing EOS via logit_bias then ignoring it must still reach max_tokens.
    Result forced = run("{\"logit_bias\":[[2, 100.0]]}");
    EXPECT_EQ(forced.meta["stop_reason"], "eos");
    EXPECT_EQ(forced.meta["output_tokens"], 0);
    Result ignored = run("{\"logit_bias\":[[2, 100.0]],\"ignore_eos\":true,\"max_tokens\":6}");
    EXPECT_EQ(ignored.meta["stop_reason"], "max_tokens");
    EXPECT_EQ(ignored.meta["output_tokens"], 6);
}

TEST(Stopping, SeedMakesSamplingReproducible) {
    Result a = run("{\"temp\":0.9,\"seed\":1234}");
    Result b = run("{\"temp\":0.9,\"seed\":1234}");
    Result c = run("{\"temp\":0.9,\"seed\":999}");
    EXPECT_EQ(a.reply, b.reply);
    EXPECT_NE(a.reply, c.reply);
}

TEST(Stopping, GrammarConstrainsOutput) {
    Result r = run("{\"grammar\":\"root ::= \\\" yes\\\" | \\\" no\\\"\",\"max_tokens\":8}");
    ASSERT_EQ(r.rc, success);
    EXPECT_TRUE(r.reply == " yes" || r.reply == " no") << r.reply;
}

}  // namespace
