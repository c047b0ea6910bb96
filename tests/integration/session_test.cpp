// Sessions keep their history and never see each other's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

const char* kChatConfig =
    "{\"temp\":0,\"max_tokens\":12,\"chat_template\":\"chatml\",\"threads\":2,\"logging\":{\"level\":\"warn\"}}";
const char* kCompletionConfig = "{\"temp\":0,\"max_tokens\":12,\"threads\":2,\"logging\":{\"level\":\"warn\"}}";

struct Turn {
    std::string reply;
    json meta;
};

Turn turn(WamrSession& s, graph_execution_context e, const std::string& text) {
    Turn t;
    std::string meta;
    EXPECT_EQ(s.turn(e, text, &t.reply, "", &meta), success);
    t.meta = json::parse(meta);
    return t;
}

TEST(Sessions, ChatHistoryGrowsWithEachTurn) {
    WamrSession s(model_path("stories260K.gguf"), kChatConfig);
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open("alice");
    Turn t1 = turn(s, e, "Once upon a time");
    Turn t2 = turn(s, e, "Then what happened?");
    EXPECT_EQ(t1.meta["mode"], "chat");
    EXPECT_EQ(t2.meta["session_id"], "alice");
    // Turn 2's prompt holds turn 1's message and reply as well as its own.
    const int t2_alone = [&] {
        auto fresh = s.open();
        return turn(s, fresh, "Then what happened?").meta["input_tokens"].get<int>();
    }();
    EXPECT_GT(t2.meta["input_tokens"].get<int>(), t2_alone + t1.meta["output_tokens"].get<int>());
}

TEST(Sessions, NamedSessionOutlivesItsHandle) {
    WamrSession s(model_path("stories260K.gguf"), kChatConfig);
    auto e1 = s.open("bob");
    Turn t1 = turn(s, e1, "Once upon a time");
    auto e2 = s.open("bob");  // a second handle on the same session
    Turn t2 = turn(s, e2, "Then what happened?");
    auto other = s.open("carol");
    Turn fresh = turn(s, other, "Then what happened?");
    EXPECT_GT(t2.meta["input_tokens"].get<int>(), fresh.meta["input_tokens"].get<int>());
}

TEST(Sessions, InterleavedSessionsDoNotLeak) {
    const std::vector<std::string> a_msgs = {"Once upon a time", "The dog barked.", "What did Lily do?"};
    const std::vector<std::string> b_msgs = {"Tom had a red ball.", "He kicked it far.", "Where did it go?"};
    // Session a alone.
    std::vector<std::string> alone;
    {
        WamrSession s(model_path("stories260K.gguf"), kChatConfig);
        auto e = s.open("a");
        for (const auto& m : a_msgs) alone.push_back(turn(s, e, m).reply);
    }
    // Session a with b's turns in between, on the same graph.
    WamrSession s(model_path("stories260K.gguf"), kChatConfig);
    auto a = s.open("a");
    auto b = s.open("b");
    for (size_t i = 0; i < a_msgs.size(); ++i) {
        EXPECT_EQ(turn(s, a, a_msgs[i]).reply, alone[i]) << "turn " << i;
        turn(s, b, b_msgs[i]);
    }
}

TEST(Sessions, CompletionModeContinuesTheTranscript) {
    WamrSession s(model_path("stories260K.gguf"), kCompletionConfig);
    auto e = s.open();
    Turn t1 = turn(s, e, "Once upon a time");
    Turn t2 = turn(s, e, " The end.");
    EXPECT_EQ(t1.meta["mode"], "completion");
    // The second prompt is the first prompt, its reply and the new text: the
    // same as asking a fresh session for all of it at once.
    auto fresh = s.open();
    Turn whole = turn(s, fresh, std::string("Once upon a time") + t1.reply + " The end.");
    EXPECT_EQ(t2.meta["input_tokens"], whole.meta["input_tokens"]);
    EXPECT_EQ(t2.reply, whole.reply);
    // ...and the second turn reused the first turn's KV cache.
    EXPECT_GT(t2.meta["cached_tokens"].get<int>(), 0);
}

TEST(Sessions, AnonymousSessionIsDroppedAtClose) {
    WamrSession s(model_path("stories260K.gguf"), kCompletionConfig);
    auto e1 = s.open();
    Turn t1 = turn(s, e1, "Once upon a time");
    auto e2 = s.open();
    Turn t2 = turn(s, e2, "Once upon a time");
    EXPECT_EQ(t1.reply, t2.reply);
    EXPECT_EQ(t1.meta["input_tokens"], t2.meta["input_tokens"]);
}

TEST(Sessions, MaxSessionsEvictsLeastRecentlyUsed) {
    std::string cfg =
        "{\"temp\":0,\"max_tokens\":4,\"max_sessions\":2,\"chat_template\":\"chatml\",\"logging\":{\"level\":\"warn\"}}";
    WamrSession s(model_path("stories260K.gguf"), cfg);
    auto x = s.open("x");
    Turn x1 = turn(s, x, "Once upon a time");
    auto y = s.open("y");
    turn(s, y, "Hello");
    s.open("z");  // x is the least recently used: evicted
    auto x_again = s.open("x");
    Turn x2 = turn(s, x_again, "Once upon a time");
    EXPECT_EQ(x2.meta["input_tokens"], x1.meta["input_tokens"]) << "x should have started over";
}

TEST(Sessions, IdleSessionsAreDropped) {
    std::string cfg = "{\"temp\":0,\"max_tokens\":4,\"idle_timeout_ms\":50,\"auto_cleanup\":true,"
                      "\"chat_template\":\"chatml\",\"logging\":{\"level\":\"warn\"}}";
    WamrSession s(model_path("stories260K.gguf"), cfg);
    auto e = s.open("idle");
    Turn t1 = turn(s, e, "Once upon a time");
    // Idle cleanup spares sessions an open handle holds.
    ASSERT_EQ(WamrApi::get().close_execution_context(s.ctx(), e), success);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    auto again = s.open("idle");  // cleanup runs here
    Turn t2 = turn(s, again, "Once upon a time");
    EXPECT_EQ(t2.meta["input_tokens"], t1.meta["input_tokens"]);
}

}  // namespace
