// Continuous batching and the queue, through the WAMR ABI: concurrent
// requests give the same greedy text as when run alone; the queue refuses,
// orders and times out requests as configured; closing a handle cancels.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;
using namespace std::chrono;

namespace {

const std::vector<std::string> kPrompts = {
    "Once upon a time",         "The little dog wanted to", "Tom and Lily went to the park.",
    "One day, a big bear",      "Sue had a red ball.",      "The sun was hot and",
    "Ben liked to eat",         "In the garden there was",
};

std::string config(int max_concurrent, const std::string& extra = "") {
    return "{\"temp\":0,\"max_tokens\":48,\"max_concurrent\":" + std::to_string(max_concurrent) +
           ",\"threads\":2,\"logging\":{\"level\":\"warn\"}" + (extra.empty() ? "" : "," + extra) + "}";
}

TEST(Scheduling, ConcurrentGreedyEqualsSequential) {
    WamrSession s(model_path("stories260K.gguf"), config(8));
    ASSERT_EQ(s.load_status(), success);
    std::vector<std::string> alone(kPrompts.size());
    for (size_t i = 0; i < kPrompts.size(); ++i) {
        auto e = s.open();
        ASSERT_EQ(s.turn(e, kPrompts[i], &alone[i]), success);
    }
    std::vector<graph_execution_context> execs;
    for (size_t i = 0; i < kPrompts.size(); ++i) execs.push_back(s.open());
    std::vector<std::string> together(kPrompts.size());
    std::vector<wasi_nn_error> rcs(kPrompts.size(), runtime_error);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < kPrompts.size(); ++i) {
        threads.emplace_back([&, i] { rcs[i] = s.turn(execs[i], kPrompts[i], &together[i]); });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < kPrompts.size(); ++i) {
        EXPECT_EQ(rcs[i], success) << i;
        EXPECT_EQ(together[i], alone[i]) << "prompt " << i << ": " << kPrompts[i];
    }
}

TEST(Scheduling, BackendContextsShareOneModel) {
    // Two backend contexts (two wasm instances) loading the same file with
    // the same settings run in one decode loop; both get correct output.
    WamrSession a(model_path("stories260K.gguf"), config(4));
    WamrSession b(model_path("stories260K.gguf"), config(4));
    auto ea = a.open();
    auto eb = b.open();
    std::string ra, rb;
    std::thread ta([&] { EXPECT_EQ(a.turn(ea, kPrompts[0], &ra), success); });
    std::thread tb([&] { EXPECT_EQ(b.turn(eb, kPrompts[0], &rb), success); });
    ta.join();
    tb.join();
    EXPECT_EQ(ra, rb);
    EXPECT_EQ(ra.substr(0, 20), ", there was a little");
}

// A request that keeps its slot busy for a while.
const std::string kLong = "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":400}";

TEST(Scheduling, FullQueueRefusesAtOnce) {
    WamrSession s(model_path("stories260K.gguf"), config(1, "\"queue_size\":1"));
    auto running = s.open(), queued = s.open(), refused = s.open();
    std::string r1, r2, r3;
    std::thread t1([&] { EXPECT_EQ(s.turn(running, "Once upon a time", &r1, kLong), success); });
    std::this_thread::sleep_for(milliseconds(100));
    std::thread t2([&] { EXPECT_EQ(s.turn(queued, "Once upon a time", &r2, "{\"max_tokens\":4}"), success); });
    std::this_thread::sleep_for(milliseconds(100));
    auto t0 = steady_clock::now();
    EXPECT_EQ(s.turn(refused, "Once upon a time", &r3), busy);
    EXPECT_LT(duration_cast<milliseconds>(steady_clock::now() - t0).count(), 100);
    t1.join();
    t2.join();
}

TEST(Scheduling, QueuedRequestTimesOut) {
    // One thread per decode: on a loaded machine a multi-threaded decode
    // step can stall for a long time, and this test measures the queue.
    WamrSession s(model_path("stories260K.gguf"), config(1, "\"threads\":1"));
    auto running = s.open(), waiting = s.open();
    std::string r1, r2, meta;
    // The running request holds the only slot for 4 s; the queued one must
    // give up after its own 80 ms, long before.
    const std::string longer = "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":4000}";
    std::thread t1([&] { EXPECT_EQ(s.turn(running, "Once upon a time", &r1, longer), success); });
    std::this_thread::sleep_for(milliseconds(100));
    auto t0 = steady_clock::now();
    EXPECT_EQ(s.turn(waiting, "Once upon a time", &r2, "{\"timeout_ms\":80}", &meta), busy);
    auto waited = duration_cast<milliseconds>(steady_clock::now() - t0).count();
    EXPECT_GE(waited, 75);
    EXPECT_LT(waited, 2500);
    ASSERT_EQ(s.output(waiting, 1, &meta), success);
    EXPECT_EQ(json::parse(meta)["stop_reason"], "timeout");
    t1.join();
}

TEST(Scheduling, HighPriorityIsAdmittedFirst) {
    WamrSession s(model_path("stories260K.gguf"), config(1));
    auto running = s.open(), low = s.open(), high = s.open();
    std::string r0, rl, rh;
    std::atomic<int> order{0};
    int low_done = 0, high_done = 0;
    // The running request holds the only slot long enough for both others
    // to be queued behind it, even on a loaded machine. The low request is
    // long and the high one short, so the order in which they return is the
    // order they were admitted by a wide margin, not by a thread's luck.
    std::thread t0([&] { s.turn(running, "Once upon a time", &r0, "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":1500}"); });
    std::this_thread::sleep_for(milliseconds(80));
    std::thread tl([&] {
        s.turn(low, "Once upon a time", &rl, "{\"priority\":\"low\",\"max_tokens\":200,\"ignore_eos\":true}");
        low_done = ++order;
    });
    std::this_thread::sleep_for(milliseconds(40));
    std::thread th([&] {
        s.turn(high, "Once upon a time", &rh, "{\"priority\":\"high\",\"max_tokens\":4}");
        high_done = ++order;
    });
    t0.join();
    tl.join();
    th.join();
    EXPECT_EQ(high_done, 1);
    EXPECT_EQ(low_done, 2);
}

TEST(Scheduling, CloseCancelsARunningRequest) {
    WamrSession s(model_path("stories260K.gguf"), config(2));
    auto e = s.open();
    std::string reply;
    wasi_nn_error rc = success;
    auto t0 = steady_clock::now();
    std::thread t([&] {
        rc = s.turn(e, "Once upon a time", &reply, "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":20000}");
    });
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(WamrApi::get().close_execution_context(s.ctx(), e), success);
    t.join();
    EXPECT_EQ(rc, runtime_error);
    EXPECT_LT(duration_cast<milliseconds>(steady_clock::now() - t0).count(), 2000);
    // The handle is gone.
    EXPECT_EQ(s.turn(e, "Once upon a time", &reply), not_found);
}

TEST(Scheduling, DeinitCancelsRunningAndQueuedRequests) {
    auto& api = WamrApi::get();
    void* ctx = nullptr;
    std::string cfg = config(1);
    ASSERT_EQ(api.init_backend_with_config(&ctx, cfg.data(), static_cast<uint32_t>(cfg.size())), success);
    std::string path = model_path("stories260K.gguf");
    graph g = 0;
    ASSERT_EQ(api.load_by_name_with_config(ctx, path.data(), static_cast<uint32_t>(path.size()), cfg.data(),
                                           static_cast<uint32_t>(cfg.size()), &g),
              success);
    graph_execution_context e1 = 0, e2 = 0;
    ASSERT_EQ(api.init_execution_context(ctx, g, &e1), success);
    ASSERT_EQ(api.init_execution_context(ctx, g, &e2), success);
    auto run = [&](graph_execution_context e, wasi_nn_error* rc) {
        std::string prompt = "Once upon a time";
        std::string opts = "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":20000}";
        uint32_t dim = static_cast<uint32_t>(prompt.size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(prompt.data()), dim};
        api.set_input(ctx, e, 0, &t);
        tensor o{};
        o.dimensions = nullptr;
        o.type = u8;
        o.data = {reinterpret_cast<uint8_t*>(opts.data()), static_cast<uint32_t>(opts.size())};
        api.set_input(ctx, e, 1, &o);
        *rc = api.compute(ctx, e);
    };
    wasi_nn_error rc1 = success, rc2 = success;
    std::thread t1(run, e1, &rc1);
    std::this_thread::sleep_for(milliseconds(80));
    std::thread t2(run, e2, &rc2);  // queued behind e1
    std::this_thread::sleep_for(milliseconds(80));
    auto t0 = steady_clock::now();
    EXPECT_EQ(api.deinit_backend(ctx), success);
    t1.join();
    t2.join();
    EXPECT_NE(rc1, success);
    EXPECT_NE(rc2, success);
    EXPECT_LT(duration_cast<milliseconds>(steady_clock::now() - t0).count(), 2000);
    EXPECT_NE(api.compute(ctx, e1), success);  // after deinit: an error, not a crash
}

}  // namespace
