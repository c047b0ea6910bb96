#include "engine/cpu_arbiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace wnl;
using namespace std::chrono_literals;

namespace {

// Waits (bounded) until `arbiter` has `n` callers queued.
bool queued(const CpuArbiter& arbiter, uint64_t n) {
    for (int i = 0; i < 2000; ++i) {
        if (arbiter.waits() >= n) return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

}  // namespace

TEST(CpuArbiter, LoopsThatFitTogetherNeverWait) {
    CpuArbiter arbiter(4);
    std::atomic<bool> no{false};
    ASSERT_TRUE(arbiter.acquire(2, no));
    ASSERT_TRUE(arbiter.acquire(2, no));
    EXPECT_EQ(arbiter.waits(), 0u);
    EXPECT_FALSE(arbiter.others_waiting());
    arbiter.release(2);
    arbiter.release(2);
}

TEST(CpuArbiter, ALoopWiderThanTheMachineRunsAlone) {
    CpuArbiter arbiter(2);
    std::atomic<bool> no{false};
    ASSERT_TRUE(arbiter.acquire(8, no));
    std::atomic<bool> second{false};
    std::thread t([&] {
        EXPECT_TRUE(arbiter.acquire(1, no));
        second = true;
        arbiter.release(1);
    });
    ASSERT_TRUE(queued(arbiter, 1));
    EXPECT_TRUE(arbiter.others_waiting());
    EXPECT_FALSE(second.load());
    arbiter.release(8);
    t.join();
    EXPECT_TRUE(second.load());
}

TEST(CpuArbiter, WaitersGoInArrivalOrder) {
    CpuArbiter arbiter(2);
    std::atomic<bool> no{false};
    ASSERT_TRUE(arbiter.acquire(2, no));
    std::vector<int> order;
    std::mutex mu;
    auto waiter = [&](int id, int threads) {
        EXPECT_TRUE(arbiter.acquire(threads, no));
        {
            std::lock_guard<std::mutex> lock(mu);
            order.push_back(id);
        }
        std::this_thread::sleep_for(5ms);
        arbiter.release(threads);
    };
    std::thread a(waiter, 1, 2);
    ASSERT_TRUE(queued(arbiter, 1));
    std::thread b(waiter, 2, 1);  // would fit beside nothing else, but a came first
    ASSERT_TRUE(queued(arbiter, 2));
    std::thread c(waiter, 3, 2);
    ASSERT_TRUE(queued(arbiter, 3));
    arbiter.release(2);
    a.join();
    b.join();
    c.join();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(CpuArbiter, AbortEndsAWaitHoldingNothing) {
    CpuArbiter arbiter(2);
    std::atomic<bool> no{false}, stop{false};
    ASSERT_TRUE(arbiter.acquire(2, no));
    std::atomic<int> result{-1};
    std::thread t([&] { result = arbiter.acquire(2, stop) ? 1 : 0; });
    ASSERT_TRUE(queued(arbiter, 1));
    stop = true;
    arbiter.wake();
    t.join();
    EXPECT_EQ(result.load(), 0);
    EXPECT_FALSE(arbiter.others_waiting());
    arbiter.release(2);
    EXPECT_TRUE(arbiter.acquire(2, no));  // nothing was left held
    arbiter.release(2);
}

TEST(CpuArbiter, ManyThreadsNeverOverlapPastTheBudget) {
    CpuArbiter arbiter(3);
    std::atomic<bool> no{false};
    std::atomic<int> running{0}, worst{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&, i] {
            const int want = 1 + i % 3;
            for (int k = 0; k < 200; ++k) {
                CpuTurn turn(&arbiter, want, no);
                ASSERT_TRUE(turn.held());
                const int now = running += want;
                int w = worst.load();
                while (now > w && !worst.compare_exchange_weak(w, now)) {
                }
                running -= want;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_LE(worst.load(), 3);
    EXPECT_GT(worst.load(), 0);
    EXPECT_EQ(running.load(), 0);
}

TEST(CpuArbiter, BusyLoopsSplitTheCpusAndRunSideBySide) {
    CpuArbiter arbiter(4);
    std::atomic<bool> no{false};
    arbiter.set_busy(true);
    EXPECT_EQ(arbiter.acquire(4, no), 4);  // alone: all it was configured with
    arbiter.release(4);
    arbiter.set_busy(true);
    EXPECT_EQ(arbiter.acquire(4, no), 2);
    EXPECT_EQ(arbiter.acquire(4, no), 2);  // beside the first, without waiting
    EXPECT_EQ(arbiter.waits(), 0u);
    arbiter.release(2);
    EXPECT_EQ(arbiter.acquire(1, no), 1);  // never more than it wants
    arbiter.release(1);
    arbiter.release(2);
    EXPECT_EQ(arbiter.narrowed(), 2u);
    arbiter.set_busy(false);
    EXPECT_EQ(arbiter.acquire(4, no), 4);  // the other went idle: wide again
    arbiter.release(4);
    arbiter.set_busy(false);
}

TEST(CpuArbiter, MoreBusyLoopsThanCpusAlsoTakeTurns) {
    CpuArbiter arbiter(2);
    std::atomic<bool> no{false};
    for (int i = 0; i < 3; ++i) arbiter.set_busy(true);
    EXPECT_EQ(arbiter.acquire(2, no), 1);
    EXPECT_EQ(arbiter.acquire(2, no), 1);
    std::atomic<int> third{0};
    std::thread t([&] { third = arbiter.acquire(2, no); });
    ASSERT_TRUE(queued(arbiter, 1));
    EXPECT_EQ(third.load(), 0);
    arbiter.release(1);
    t.join();
    EXPECT_EQ(third.load(), 1);
    arbiter.release(1);
    arbiter.release(1);
    for (int i = 0; i < 3; ++i) arbiter.set_busy(false);
}
