// Streaming (compute_single / get_output_single / fini_single) on real
// models: the pieces are the reply compute() gives, the turn is recorded in
// the session, and ending or closing a stream early frees everything.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

const std::string kGreedy = "{\"temp\":0,\"max_tokens\":32,\"logging\":{\"level\":\"warn\"}}";
const std::string kChat =
    "{\"temp\":0,\"max_tokens\":24,\"chat_template\":\"chatml\",\"logging\":{\"level\":\"warn\"}}";

std::string joined(const std::vector<std::string>& pieces) {
    return std::accumulate(pieces.begin(), pieces.end(), std::string());
}

std::string metadata(WamrSession& s, graph_execution_context e) {
    std::string meta;
    EXPECT_EQ(s.output(e, 1, &meta), success);
    return meta;
}

TEST(Streaming, PiecesJoinIntoTheComputedReply) {
    WamrSession s(model_path("stories260K.gguf"), kGreedy);
    std::string whole;
    ASSERT_EQ(s.turn(s.open(), "Once upon a time", &whole), success);
    auto e = s.open();  // a fresh session: an anonymous one continues its transcript
    std::vector<std::string> pieces;
    EXPECT_EQ(s.stream(e, "Once upon a time", &pieces), end_of_sequence);
    EXPECT_GE(pieces.size(), 24u) << "about a piece per token (32), a few joined by the detokenizer";
    EXPECT_EQ(joined(pieces), whole);
    EXPECT_EQ(s.fini(e), success);
    json meta = json::parse(metadata(s, e));
    EXPECT_EQ(meta["output_tokens"], 32);
    EXPECT_EQ(meta["stop_reason"], "max_tokens");
}

TEST(Streaming, AStopStringSplitAcrossPiecesIsNeverShown) {
    // The greedy story goes "... a little girl named Lily ..."; "girl named"
    // arrives over several tokens.
    const std::string opts = "{\"stop\":[\"girl named\"]}";
    WamrSession s(model_path("stories260K.gguf"), kGreedy);
    std::string whole;
    ASSERT_EQ(s.turn(s.open(), "Once upon a time", &whole, opts), success);
    auto e = s.open();
    std::vector<std::string> pieces;
    EXPECT_EQ(s.stream(e, "Once upon a time", &pieces, opts), end_of_sequence);
    EXPECT_EQ(joined(pieces), whole);
    EXPECT_EQ(joined(pieces).find("girl named"), std::string::npos);
    EXPECT_NE(whole.find("a little "), std::string::npos) << whole;
    EXPECT_EQ(s.fini(e), success);
    EXPECT_EQ(json::parse(metadata(s, e))["stop_reason"], "stop_string");
}

TEST(Streaming, AStreamedTurnIsPartOfTheSession) {
    WamrSession streamed(model_path("stories260K.gguf"), kChat);
    WamrSession computed(model_path("stories260K.gguf"), kChat);
    auto a = streamed.open("streamed");
    auto b = computed.open("computed");
    std::vector<std::string> pieces;
    std::string first, second_a, second_b;
    ASSERT_EQ(streamed.stream(a, "Tell me about the dog.", &pieces), end_of_sequence);
    ASSERT_EQ(streamed.fini(a), success);
    ASSERT_EQ(computed.turn(b, "Tell me about the dog.", &first), success);
    EXPECT_EQ(joined(pieces), first);
    ASSERT_EQ(streamed.turn(a, "And the ball?", &second_a), success);
    ASSERT_EQ(computed.turn(b, "And the ball?", &second_b), success);
    EXPECT_EQ(second_a, second_b);
    EXPECT_EQ(json::parse(metadata(streamed, a))["input_tokens"], json::parse(metadata(computed, b))["input_tokens"]);
}

TEST(Streaming, ClosingMidStreamFreesTheNamedSession) {
    WamrSession s(model_path("stories260K.gguf"), "{\"temp\":0,\"max_tokens\":400,\"ignore_eos\":true}");
    auto e = s.open("kept");
    ASSERT_EQ(s.set_text(e, 0, "Once upon a time"), success);
    ASSERT_EQ(WamrApi::get().compute_single(s.ctx(), e), success);
    ASSERT_EQ(WamrApi::get().close_execution_context(s.ctx(), e), success);
    auto again = s.open("kept");
    std::string reply;
    EXPECT_EQ(s.turn(again, "Once upon a time", &reply, "{\"max_tokens\":4}"), success);
}

TEST(Streaming, FiniMidStreamKeepsWhatWasShown) {
    WamrSession s(model_path("stories260K.gguf"), "{\"temp\":0,\"max_tokens\":400,\"ignore_eos\":true}");
    auto e = s.open("early");
    ASSERT_EQ(s.set_text(e, 0, "Once upon a time"), success);
    std::string shown;
    std::vector<uint8_t> buf(4096);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(WamrApi::get().compute_single(s.ctx(), e), success);
        uint32_t size = static_cast<uint32_t>(buf.size());
        ASSERT_EQ(WamrApi::get().get_output_single(s.ctx(), e, 0, buf.data(), &size), success);
        shown.append(reinterpret_cast<char*>(buf.data()), size);
    }
    EXPECT_EQ(s.fini(e), success);
    std::string reply;
    ASSERT_EQ(s.output(e, 0, &reply), success);
    EXPECT_EQ(reply.compare(0, shown.size(), shown), 0) << "the recorded reply starts with what was shown";
    json meta = json::parse(metadata(s, e));
    EXPECT_EQ(meta["stop_reason"], "cancelled");
    EXPECT_LT(meta["output_tokens"].get<int>(), 400);
    // The next turn follows the partial reply: its prompt holds the first
    // prompt, the partial reply and the new text.
    const int partial = meta["output_tokens"].get<int>();
    std::string next;
    ASSERT_EQ(s.turn(e, " The end.", &next, "{\"max_tokens\":2}"), success);
    json next_meta = json::parse(metadata(s, e));
    EXPECT_GE(next_meta["input_tokens"].get<int>(), partial + 6);
    // ... and reuses the cancelled turn's KV rather than prefilling it again.
    EXPECT_GE(next_meta["cached_tokens"].get<int>(), partial) << next_meta.dump();
}

TEST(Streaming, ContextFullEndsTheStream) {
    WamrSession s(model_path("stories260K.gguf"),
                  "{\"temp\":0,\"max_tokens\":700,\"ignore_eos\":true,\"ctx_size\":256,\"context_shifting\":false}");
    auto e = s.open();
    std::vector<std::string> pieces;
    EXPECT_EQ(s.stream(e, "Once upon a time", &pieces), context_full);
    EXPECT_FALSE(pieces.empty());
    EXPECT_EQ(s.fini(e), success);
    EXPECT_EQ(json::parse(metadata(s, e))["stop_reason"], "context_full");
}

TEST(Streaming, ManyStreamsAtOnceEachMatchTheirComputedReply) {
    WamrSession s(model_path("stories260K.gguf"), "{\"temp\":0,\"max_tokens\":48,\"max_concurrent\":4}");
    const std::vector<std::string> prompts = {"Once upon a time", "The dog", "Lily saw a", "One day, Tom"};
    std::vector<std::string> computed(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
        auto e = s.open();
        ASSERT_EQ(s.turn(e, prompts[i], &computed[i]), success);
    }
    std::vector<std::string> streamed(prompts.size());
    std::vector<wasi_nn_error> codes(prompts.size(), success);
    std::vector<graph_execution_context> execs;
    for (size_t i = 0; i < prompts.size(); ++i) execs.push_back(s.open());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < prompts.size(); ++i) {
        threads.emplace_back([&, i] {
            std::vector<std::string> pieces;
            codes[i] = s.stream(execs[i], prompts[i], &pieces);
            streamed[i] = joined(pieces);
            s.fini(execs[i]);
        });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < prompts.size(); ++i) {
        EXPECT_EQ(codes[i], end_of_sequence) << prompts[i];
        EXPECT_EQ(streamed[i], computed[i]) << prompts[i];
    }
}

TEST(Streaming, StreamStdoutPrintsTheReplyAsItIsMade) {
    WamrSession s(model_path("stories260K.gguf"),
                  "{\"temp\":0,\"max_tokens\":32,\"stream-stdout\":true,\"logging\":{\"level\":\"warn\"}}");
    auto e = s.open();
    std::fflush(stdout);
    char tmpl[] = "/tmp/wnl_stdout_XXXXXX";
    const int tmp = ::mkstemp(tmpl);
    ASSERT_GE(tmp, 0);
    const int saved = ::dup(1);
    ::dup2(tmp, 1);
    std::string reply;
    const wasi_nn_error rc = s.turn(e, "Once upon a time", &reply);
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    std::string printed(4096, '\0');
    const ssize_t n = ::pread(tmp, printed.data(), printed.size(), 0);
    ::close(tmp);
    ::unlink(tmpl);
    ASSERT_EQ(rc, success);
    printed.resize(n > 0 ? static_cast<size_t>(n) : 0);
    EXPECT_EQ(printed, reply);
}

}  // namespace
