// Hot swap through the WAMR ABI (docs/models.md): what runs finishes on the
// old model, what is queued and what comes later runs on the new one, in
// compute and in streams; sessions keep their text and never the old KV;
// incompatible models and failed loads leave the old model serving.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "integration/swap_fixture.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

std::string config(int max_concurrent, const std::string& extra = "") {
    return "{\"temp\":0,\"max_tokens\":8,\"max_concurrent\":" + std::to_string(max_concurrent) +
           ",\"ctx_size\":256,\"threads\":1,\"logging\":{\"level\":\"warn\"}" + (extra.empty() ? "" : "," + extra) +
           "}";
}

// References run in a decode loop of their own (a queue_size of their own),
// so that they compute from nothing rather than from the served graph's KV,
// with the same slots and context: on random weights, greedy ties are close
// enough that another KV layout can pick another token.
std::string ref_config(int max_concurrent) { return config(max_concurrent, "\"queue_size\":99"); }

const char* kEndless = "{\"max_tokens\":-1,\"ignore_eos\":true,\"context_shifting\":true}";

struct Reply {
    wasi_nn_error rc = runtime_error;
    std::string text;
    json meta;
};

Reply turn(WamrSession& s, graph_execution_context e, const std::string& text, const std::string& opts = "") {
    Reply r;
    std::string meta;
    r.rc = s.turn(e, text, &r.text, opts, &meta);
    if (!meta.empty()) r.meta = json::parse(meta);
    return r;
}

// Opens an endless stream on e and reads its first piece: from then on its
// request runs in a slot until fini_single.
void start_endless_stream(WamrSession& s, graph_execution_context e) {
    ASSERT_EQ(s.set_text(e, 0, "Tell me a long story."), success);
    ASSERT_EQ(s.set_text(e, 1, kEndless), success);
    ASSERT_EQ(WamrApi::get().compute_single(s.ctx(), e), success);
}

int queued(WamrSession& s) { return status_json(s, BACKEND_STATUS_QUEUE)["models"][0]["depth"]["total"].get<int>(); }

TEST(Swap, RunningFinishesOnTheOldModelQueuedComputeRunsOnTheNew) {
    const std::string a = canonical(swap_model_a()), b = canonical(swap_model_b());
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    WamrSession s(a, config(1));
    ASSERT_EQ(s.load_status(), success);
    auto running = s.open();
    auto waiting = s.open();
    start_endless_stream(s, running);
    Reply moved;
    std::thread t([&] { moved = turn(s, waiting, "Hello there."); });
    wait_until([&] { return queued(s) == 1; });  // behind the stream: one slot
    ASSERT_EQ(s.swap(b), success);
    t.join();

    // The queued request was handed back and ran on the new model.
    ASSERT_EQ(moved.rc, success);
    EXPECT_EQ(moved.meta["model_version"]["path"], b);
    EXPECT_EQ(moved.meta["model_version"]["number"], 2);
    EXPECT_EQ(moved.meta["model"], "swap-b");
    WamrSession ref_b(b, ref_config(1));
    Reference expected = reference_reply(ref_b, {}, "Hello there.");
    ASSERT_EQ(expected.rc, success);
    EXPECT_EQ(moved.text, expected.reply);

    // The stream still runs on the old model, which drains.
    json m = model_status(s);
    EXPECT_EQ(m["version"], 2);
    EXPECT_EQ(m["model_version"]["path"], b);
    ASSERT_EQ(m["swap"]["draining"].size(), 1u) << m.dump();
    EXPECT_EQ(m["swap"]["draining"][0]["requests"], 1);
    EXPECT_EQ(m["swap"]["draining"][0]["model_version"]["number"], 1);
    EXPECT_EQ(m["swap"]["swaps"], 1);
    EXPECT_TRUE(m["swap"]["last"].is_object());
    EXPECT_EQ(m["swap"]["last"]["from"], 1);
    EXPECT_EQ(m["swap"]["last"]["to"], 2);
    EXPECT_GT(m["swap"]["last"]["duration_ms"].get<double>(), 0.0);
    EXPECT_EQ(m["swap"]["last"]["requests_moved"], 1);
    EXPECT_EQ(WamrApi::get().compute_single(s.ctx(), running), success);
    ASSERT_EQ(s.fini(running), success);
    std::string meta;
    ASSERT_EQ(s.output(running, 1, &meta), success);
    EXPECT_EQ(json::parse(meta)["model_version"]["number"], 1);
    EXPECT_EQ(json::parse(meta)["model_version"]["path"], a);

    // Its last request ended: the old model is gone from the process.
    m = model_status(s);
    EXPECT_TRUE(m["swap"]["draining"].empty()) << m.dump();
    EXPECT_EQ(loaded_in_process(s)["models_loaded"], 1);  // B's weights, shared by s and ref_b
}

TEST(Swap, QueuedStreamContinuesOnTheNewModel) {
    const std::string a = canonical(swap_model_a()), b = canonical(swap_model_b());
    WamrSession s(a, config(1));
    ASSERT_EQ(s.load_status(), success);
    auto running = s.open();
    auto waiting = s.open();
    start_endless_stream(s, running);
    std::vector<std::string> pieces;
    wasi_nn_error rc = runtime_error;
    std::thread t([&] { rc = s.stream(waiting, "Hello there.", &pieces); });
    wait_until([&] { return queued(s) == 1; });
    ASSERT_EQ(s.swap(b), success);
    t.join();
    EXPECT_EQ(rc, end_of_sequence);
    std::string streamed;
    for (const auto& p : pieces) streamed += p;
    ASSERT_EQ(s.fini(waiting), success);
    std::string meta, whole;
    ASSERT_EQ(s.output(waiting, 1, &meta), success);
    ASSERT_EQ(s.output(waiting, 0, &whole), success);
    EXPECT_EQ(json::parse(meta)["model_version"]["path"], b);
    EXPECT_EQ(streamed, whole);
    WamrSession ref_b(b, ref_config(1));
    EXPECT_EQ(whole, reference_reply(ref_b, {}, "Hello there.").reply);
    ASSERT_EQ(s.fini(running), success);
}

TEST(Swap, SessionsKeepTheirTextHistoryAndNeverTheOldKv) {
    const std::string a = canonical(swap_model_a()), b = canonical(swap_model_b());
    WamrSession s(a, config(2));
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open("chat");
    History h;
    for (const char* msg : {"Hi, who are you?", "Tell me about the sea."}) {
        Reply r = turn(s, e, msg);
        ASSERT_EQ(r.rc, success);
        EXPECT_EQ(r.meta["model_version"]["path"], a);
        h.push_back({msg, r.text});
    }
    ASSERT_EQ(s.swap(b), success);
    // The same handle, the same session, now on B: its whole text history
    // is prefilled again, nothing of A's KV is used.
    Reply after = turn(s, e, "And the mountains?");
    ASSERT_EQ(after.rc, success);
    EXPECT_EQ(after.meta["model_version"]["path"], b);
    EXPECT_EQ(after.meta["cached_tokens"], 0);
    WamrSession ref_b(b, ref_config(2));
    Reference expected = reference_reply(ref_b, h, "And the mountains?");
    EXPECT_EQ(after.text, expected.reply);
    EXPECT_EQ(after.meta["input_tokens"], expected.meta["input_tokens"]);
    h.push_back({"And the mountains?", after.text});
    // From there on B's own KV is reused.
    Reply next = turn(s, e, "Thank you.");
    ASSERT_EQ(next.rc, success);
    EXPECT_GT(next.meta["cached_tokens"].get<int>(), 0);
    EXPECT_EQ(next.text, reference_reply(ref_b, h, "Thank you.").reply);
    // A new handle on the named session continues it too.
    auto again = s.open("chat");
    EXPECT_EQ(json::parse(s.status(BACKEND_STATUS_SESSIONS))["named"], 1);
    h.push_back({"Thank you.", next.text});
    Reply third = turn(s, again, "Bye.");
    ASSERT_EQ(third.rc, success);
    EXPECT_EQ(third.text, reference_reply(ref_b, h, "Bye.").reply);
}

TEST(Swap, IncompatibleModelIsRefusedUnlessForced) {
    // stories260K: 512 tokens; llama-2-tiny-random: the Llama 2 vocabulary.
    const std::string a = canonical(model_path("stories260K.gguf"));
    const std::string other = canonical(model_path("llama-2-tiny-random.gguf"));
    WamrSession s(a, config(2));
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    Reply before = turn(s, e, "Once upon a time");
    ASSERT_EQ(before.rc, success);
    auto stream = s.open();
    start_endless_stream(s, stream);  // running through the refusal

    EXPECT_EQ(s.swap(other), invalid_argument);
    EXPECT_EQ(s.swap(other, "{\"force\":false}"), invalid_argument);
    json m = model_status(s);
    EXPECT_EQ(m["version"], 1);
    EXPECT_EQ(m["path"], a);
    EXPECT_EQ(m["swap"]["refused"], 2);
    EXPECT_EQ(m["swap"]["swaps"], 0);
    EXPECT_NE(m["swap"]["last_refusal"].get<std::string>().find("vocabulary size"), std::string::npos);
    EXPECT_TRUE(m["swap"]["in_progress"].is_null());
    auto fresh = s.open();
    Reply untouched = turn(s, fresh, "Once upon a time");
    ASSERT_EQ(untouched.rc, success);
    EXPECT_EQ(untouched.text, before.text);
    EXPECT_EQ(untouched.meta["model_version"]["number"], 1);
    EXPECT_EQ(WamrApi::get().compute_single(s.ctx(), stream), success);

    // "force" is not a sampling key: a wrong type is refused like any.
    EXPECT_EQ(s.swap(other, "{\"force\":\"yes\"}"), invalid_argument);
    ASSERT_EQ(s.swap(other, "{\"force\":true}"), success);
    m = model_status(s);
    EXPECT_EQ(m["version"], 2);
    EXPECT_EQ(m["path"], other);
    EXPECT_EQ(m["vocabulary"], 32000);
    EXPECT_EQ(m["swap"]["last"]["forced"], true);
    auto later = s.open();
    Reply forced = turn(s, later, "Once upon a time");
    ASSERT_EQ(forced.rc, success);
    EXPECT_EQ(forced.meta["model_version"]["path"], other);
    WamrSession ref(other, ref_config(2));
    auto re = ref.open();
    Reply alone = turn(ref, re, "Once upon a time");
    EXPECT_EQ(forced.text, alone.text);
    ASSERT_EQ(s.fini(stream), success);
}

TEST(Swap, FailedLoadLeavesTheOldModelServing) {
    const std::string a = canonical(model_path("stories260K.gguf"));
    const std::string corrupt = std::string(WNL_BUILD_DIR) + "/test-models/corrupt.gguf";
    ASSERT_FALSE(swap_model_a().empty());  // makes the folder
    {
        // A GGUF header, then nothing llama.cpp can read.
        std::ofstream f(corrupt, std::ios::binary | std::ios::trunc);
        f.write("GGUF\x03\x00\x00\x00", 8);
        f << std::string(4096, '\x7f');
    }
    WamrSession s(a, config(2));
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open("story");
    Reply first = turn(s, e, "Once upon a time");
    ASSERT_EQ(first.rc, success);
    auto stream = s.open();
    start_endless_stream(s, stream);

    EXPECT_EQ(s.swap(std::string(WNL_BUILD_DIR) + "/test-models/no-such-model.gguf"), model_not_found);
    EXPECT_EQ(s.swap(corrupt), invalid_encoding);
    EXPECT_EQ(s.swap(""), invalid_argument);
    EXPECT_EQ(s.swap(a, "{\"ctx_size\":\"big\"}"), invalid_argument);
    EXPECT_EQ(WamrApi::get().swap_graph(s.ctx(), s.graph_id() + 7, a.data(), static_cast<uint32_t>(a.size()),
                                        nullptr, 0),
              not_found);
    EXPECT_EQ(WamrApi::get().swap_graph(s.ctx(), s.graph_id(), nullptr, 4, nullptr, 0), invalid_argument);

    json m = model_status(s);
    EXPECT_EQ(m["version"], 1);
    EXPECT_EQ(m["swap"]["refused"], 3);  // the missing file, the corrupt one, the bad config
    EXPECT_NE(m["swap"]["last_refusal"].get<std::string>().find("config"), std::string::npos);
    EXPECT_TRUE(m["swap"]["in_progress"].is_null());
    // The running stream and the session go on as if nothing happened.
    EXPECT_EQ(WamrApi::get().compute_single(s.ctx(), stream), success);
    ASSERT_EQ(s.fini(stream), success);
    Reply second = turn(s, e, " The end.");
    ASSERT_EQ(second.rc, success);
    EXPECT_GT(second.meta["cached_tokens"].get<int>(), 0);  // its KV was kept
    WamrSession ref(a, ref_config(2));
    auto re = ref.open();
    EXPECT_EQ(turn(ref, re, "Once upon a time").text, first.text);
    EXPECT_EQ(turn(ref, re, " The end.").text, second.text);
    std::remove(corrupt.c_str());
}

TEST(Swap, ConcurrentSwapsOfOneGraphRunOneAtATime) {
    const std::string a = canonical(swap_model_a()), b = canonical(swap_model_b());
    WamrSession s(a, config(2));
    ASSERT_EQ(s.load_status(), success);
    wasi_nn_error rc[4] = {runtime_error, runtime_error, runtime_error, runtime_error};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { rc[i] = s.swap(i % 2 ? a : b); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(rc[i], success) << i;
    json m = model_status(s);
    EXPECT_EQ(m["version"], 5);
    EXPECT_EQ(m["swap"]["swaps"], 4);
    EXPECT_TRUE(m["swap"]["draining"].empty());
    auto e = s.open();
    Reply r = turn(s, e, "Hello there.");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.meta["model_version"]["number"], 5);
    EXPECT_EQ(r.meta["model_version"]["path"], m["path"]);
    EXPECT_EQ(loaded_in_process(s)["models_loaded"], 1);
}

}  // namespace
