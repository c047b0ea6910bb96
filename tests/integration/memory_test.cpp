// KV reuse across turns, the host-RAM state cache for more sessions than
// slots, and context shifting for conversations longer than the context.
#include <gtest/gtest.h>

#include <map>
#include <thread>
#include <nlohmann/json.hpp>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

json status(WamrSession& s, backend_status_type type) {
    static auto fn = reinterpret_cast<decltype(&::get_backend_status)>(dlsym(WamrApi::get().lib, "get_backend_status"));
    std::vector<char> buf(1 << 20);
    EXPECT_EQ(fn(s.ctx(), type, buf.data(), static_cast<uint32_t>(buf.size())), success);
    return json::parse(buf.data());
}

struct Turn {
    wasi_nn_error rc;
    std::string reply;
    json meta;
};

Turn turn(WamrSession& s, graph_execution_context e, const std::string& text, const std::string& opts = "") {
    Turn t;
    std::string meta;
    t.rc = s.turn(e, text, &t.reply, opts, &meta);
    if (!meta.empty()) t.meta = json::parse(meta);
    return t;
}

std::string user_message(int session, int turn) {
    static const char* words[] = {"dog", "ball", "tree", "cake", "bird", "sun", "boat", "hat"};
    // Distinct per session, so that no two sessions share a history.
    return std::string("Tell me about the ") + words[(session + turn) % 8] + " of Tom number " +
           std::to_string(session) + " and the " + words[(session * 3 + turn) % 8] + ".";
}

std::string chat_config(const std::string& extra) {
    return "{\"temp\":0,\"max_tokens\":16,\"chat_template\":\"chatml\",\"logging\":{\"level\":\"warn\"}" +
           (extra.empty() ? "" : "," + extra) + "}";
}

TEST(Memory, TwentyTurnsReuseTheKvAndMatchAFullPrefill) {
    // One thread, so that no thread governor runs: on a busy host it changes
    // the loop's threads between steps, and this comparison of a reused
    // prefix with a full prefill, token for token over twenty turns, failed
    // there 1 run in 3 (never with WASI_NN_LLAMA_ADAPT_THREADS=0); the
    // governor's own tests are thread_governor_test and thread_limits_test.
    WamrSession reuse(model_path("stories260K.gguf"), chat_config("\"cache_prompt\":true,\"threads\":1"));
    WamrSession fresh(model_path("stories260K.gguf"), chat_config("\"cache_prompt\":false,\"threads\":1"));
    auto a = reuse.open("long-chat");
    auto b = fresh.open("long-chat");
    int previous_reply = 0;
    int first_prompt = 0;
    for (int i = 0; i < 20; ++i) {
        Turn with = turn(reuse, a, user_message(0, i));
        Turn without = turn(fresh, b, user_message(0, i));
        ASSERT_EQ(with.rc, success);
        ASSERT_EQ(without.rc, success);
        EXPECT_EQ(with.reply, without.reply) << "turn " << i;
        EXPECT_EQ(with.meta["input_tokens"], without.meta["input_tokens"]);
        EXPECT_EQ(without.meta["cached_tokens"], 0);
        if (i > 0) {
            // Decoded again: at most the last reply (its text is tokenized
            // anew inside the template) and this turn's own message.
            int decoded = with.meta["input_tokens"].get<int>() - with.meta["cached_tokens"].get<int>();
            EXPECT_GT(with.meta["cached_tokens"].get<int>(), 0) << "turn " << i;
            EXPECT_LE(decoded, previous_reply + first_prompt + 8) << "turn " << i;
            if (i >= 5) EXPECT_LT(decoded * 3, with.meta["input_tokens"].get<int>()) << "turn " << i;
        }
        previous_reply = with.meta["output_tokens"].get<int>();
        if (i == 0) first_prompt = with.meta["input_tokens"].get<int>();
    }
}

// Three turns for each of `sessions` named sessions, round-robin.
std::map<int, std::vector<std::string>> round_robin(WamrSession& s, int sessions, int turns) {
    std::map<int, std::vector<std::string>> replies;
    std::vector<graph_execution_context> execs;
    for (int i = 0; i < sessions; ++i) execs.push_back(s.open("rr-" + std::to_string(i)));
    for (int t = 0; t < turns; ++t) {
        for (int i = 0; i < sessions; ++i) {
            Turn r = turn(s, execs[static_cast<size_t>(i)], user_message(i, t));
            EXPECT_EQ(r.rc, success);
            replies[i].push_back(r.reply);
        }
    }
    return replies;
}

std::vector<std::string> alone(const std::string& cfg, int session, int turns) {
    WamrSession s(model_path("stories260K.gguf"), cfg);
    auto e = s.open("rr-" + std::to_string(session));
    std::vector<std::string> out;
    for (int t = 0; t < turns; ++t) out.push_back(turn(s, e, user_message(session, t)).reply);
    return out;
}

TEST(Memory, TwoHundredSessionsOnEightSlotsMatchEachSessionAlone) {
    const std::string cfg = chat_config("\"max_concurrent\":8,\"max_sessions\":256,\"ctx_size\":512");
    WamrSession s(model_path("stories260K.gguf"), cfg);
    auto replies = round_robin(s, 200, 3);
    json mem = status(s, BACKEND_STATUS_MEMORY);
    EXPECT_GT(mem["host_cache"]["states_restored"].get<int>(), 150) << mem.dump();
    EXPECT_GT(mem["host_cache"]["entries"].get<int>(), 100);
    for (int i = 0; i < 200; i += 7) {  // every 7th session, run alone
        EXPECT_EQ(replies[i], alone(cfg, i, 3)) << "session " << i;
    }
}

TEST(Memory, RestoredTurnDecodesOnlyNewTokens) {
    WamrSession s(model_path("stories260K.gguf"), chat_config("\"max_concurrent\":1"));
    auto a = s.open("first"), b = s.open("second");
    turn(s, a, user_message(1, 0));
    turn(s, b, user_message(2, 0));  // takes the only slot: a's state is parked
    Turn again = turn(s, a, user_message(1, 1));
    int decoded = again.meta["input_tokens"].get<int>() - again.meta["cached_tokens"].get<int>();
    // Restored: only the last reply (tokenized anew) and the new message
    // are decoded, not the first turn's prompt again.
    EXPECT_GT(again.meta["cached_tokens"].get<int>(), 50);
    EXPECT_LT(decoded * 2, again.meta["input_tokens"].get<int>());
    EXPECT_GE(status(s, BACKEND_STATUS_MEMORY)["host_cache"]["states_restored"].get<int>(), 1);
}

TEST(Memory, EvictedStatePrefillsFromTheTextHistory) {
    // A cache too small for any state: every switch prefills again, and the
    // replies are still those of each session alone.
    const std::string cfg = chat_config("\"max_concurrent\":2,\"host_cache_bytes\":1024");
    WamrSession s(model_path("stories260K.gguf"), cfg);
    auto replies = round_robin(s, 6, 3);
    json mem = status(s, BACKEND_STATUS_MEMORY);
    EXPECT_EQ(mem["host_cache"]["entries"], 0);
    EXPECT_EQ(mem["host_cache"]["states_restored"], 0);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(replies[i], alone(cfg, i, 3)) << "session " << i;
}

TEST(Memory, LruEvictionKeepsTheCacheWithinItsBound) {
    const std::string cfg = chat_config("\"max_concurrent\":1,\"host_cache_bytes\":300000");
    WamrSession s(model_path("stories260K.gguf"), cfg);
    round_robin(s, 12, 2);
    json hc = status(s, BACKEND_STATUS_MEMORY)["host_cache"];
    EXPECT_LE(hc["bytes"].get<uint64_t>(), 300000u);
    EXPECT_GT(hc["evictions"].get<int>(), 0);
}

TEST(Memory, DroppedSessionsLeaveTheCache) {
    const std::string cfg = chat_config("\"max_concurrent\":1,\"idle_timeout_ms\":100");
    WamrSession s(model_path("stories260K.gguf"), cfg);
    for (int i = 0; i < 4; ++i) {
        auto e = s.open("drop-" + std::to_string(i));
        ASSERT_EQ(turn(s, e, user_message(i, 0)).rc, success);
        WamrApi::get().close_execution_context(s.ctx(), e);  // named: the session stays
    }
    EXPECT_GT(status(s, BACKEND_STATUS_MEMORY)["host_cache"]["entries"].get<int>(), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    status(s, BACKEND_STATUS_SESSIONS);  // idle cleanup runs
    auto e = s.open();                   // the loop applies the drop on its next turn
    turn(s, e, "hello");
    EXPECT_EQ(status(s, BACKEND_STATUS_MEMORY)["host_cache"]["entries"], 0);
}

TEST(Memory, DeinitForgetsItsSessionsStateInASharedLoop) {
    // Two backend contexts share the model's decode loop and host cache;
    // the one that goes takes its sessions' cached state with it.
    const std::string cfg = chat_config("\"max_concurrent\":1");
    WamrSession stays(model_path("stories260K.gguf"), cfg);
    {
        WamrSession goes(model_path("stories260K.gguf"), cfg);
        for (int i = 0; i < 4; ++i) {
            auto e = goes.open("goes-" + std::to_string(i));
            ASSERT_EQ(turn(goes, e, user_message(i, 0)).rc, success);
            WamrApi::get().close_execution_context(goes.ctx(), e);
        }
        EXPECT_GT(status(stays, BACKEND_STATUS_MEMORY)["host_cache"]["entries"].get<int>(), 0)
            << "the other context sees the shared loop's cache";
    }
    auto e = stays.open();  // the loop applies the forgets on its next turn
    ASSERT_EQ(turn(stays, e, "hello").rc, success);
    EXPECT_EQ(status(stays, BACKEND_STATUS_MEMORY)["host_cache"]["entries"], 0);
}

TEST(Memory, RssAboveTheBoundDropsCachedStateNotRunningRequests) {
    // Any real process is above a 1-byte bound: cached state is dropped,
    // while the requests themselves all complete.
    const std::string cfg = chat_config("\"max_concurrent\":1,\"max_rss_bytes\":1");
    WamrSession s(model_path("stories260K.gguf"), cfg);
    std::vector<graph_execution_context> execs;
    for (int i = 0; i < 6; ++i) execs.push_back(s.open("rss-" + std::to_string(i)));
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 6; ++i) {
            ASSERT_EQ(turn(s, execs[static_cast<size_t>(i)], user_message(i, round)).rc, success);
            std::this_thread::sleep_for(std::chrono::milliseconds(210));  // past the RSS check interval
        }
    }
    json hc = status(s, BACKEND_STATUS_MEMORY)["host_cache"];
    EXPECT_GT(hc["evictions"].get<int>(), 0);
    EXPECT_GT(hc["states_saved"].get<int>(), 0);
    EXPECT_LE(hc["entries"].get<int>(), 1);
}

TEST(Memory, TenThousandTokenConversationOnA2048Context) {
    WamrSession s(model_path("stories260K.gguf"),
                  "{\"temp\":0,\"max_tokens\":120,\"ignore_eos\":true,\"ctx_size\":2048,\"chat_template\":\"chatml\","
                  "\"context_shifting\":true,\"logging\":{\"level\":\"warn\"}}");
    auto e = s.open("marathon");
    int total = 0, turns = 0, max_input = 0;
    while (total < 10000) {
        Turn t = turn(s, e, user_message(turns, turns) + " Once upon a time, there was a little girl.");
        ASSERT_EQ(t.rc, success) << "turn " << turns;
        total += t.meta["output_tokens"].get<int>() + 30;
        max_input = std::max(max_input, t.meta["input_tokens"].get<int>());
        ++turns;
    }
    EXPECT_LE(max_input, 2048);
    EXPECT_GT(turns, 60);
}

TEST(Memory, GenerationPastTheContextShiftsOrStops) {
    const std::string base = "\"temp\":0,\"max_tokens\":700,\"ignore_eos\":true,\"ctx_size\":256,\"logging\":{\"level\":\"warn\"}";
    {
        WamrSession s(model_path("stories260K.gguf"), "{" + base + ",\"context_shifting\":true}");
        auto e = s.open();
        Turn t = turn(s, e, "Once upon a time");
        EXPECT_EQ(t.rc, success);
        EXPECT_EQ(t.meta["output_tokens"], 700);
    }
    {
        WamrSession s(model_path("stories260K.gguf"), "{" + base + ",\"context_shifting\":false}");
        auto e = s.open();
        std::string reply, meta;
        EXPECT_EQ(s.turn(e, "Once upon a time", &reply, "", &meta), context_full);
        ASSERT_EQ(s.output(e, 1, &meta), success);
        EXPECT_EQ(json::parse(meta)["stop_reason"], "context_full");
        EXPECT_FALSE(reply.empty() && meta.empty());
    }
}

TEST(Memory, HistoryBeyondTheContextIsRefusedWithoutShifting) {
    WamrSession s(model_path("stories260K.gguf"),
                  "{\"temp\":0,\"max_tokens\":60,\"ignore_eos\":true,\"ctx_size\":256,\"chat_template\":\"chatml\","
                  "\"context_shifting\":false,\"logging\":{\"level\":\"warn\"}}");
    auto e = s.open("short");
    wasi_nn_error rc = success;
    for (int i = 0; i < 20 && rc == success; ++i) rc = turn(s, e, user_message(i, i)).rc;
    EXPECT_EQ(rc, context_full);
}

}  // namespace
