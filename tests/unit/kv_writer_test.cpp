// The session store's writer thread (kv_writer.cpp): it runs at idle
// priority, so flush() runs what is still queued on the calling thread
// instead of waiting for CPU time the writer may not get.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "engine/kv_writer.h"

using namespace wnl;
using namespace std::chrono;

TEST(KvWriter, FlushRunsQueuedJobsOnTheCallersThread) {
    KvWriter w(1 << 20);
    std::atomic<bool> release{false}, first_started{false};
    std::thread::id second_ran_on;
    // The writer thread is busy with the first job until the second has run.
    ASSERT_TRUE(w.submit(10, [&] {
        first_started = true;
        while (!release) std::this_thread::sleep_for(milliseconds(1));
    }));
    while (!first_started) std::this_thread::sleep_for(milliseconds(1));
    ASSERT_TRUE(w.submit(10, [&] {
        second_ran_on = std::this_thread::get_id();
        release = true;
    }));
    EXPECT_TRUE(w.flush(seconds(10)));
    EXPECT_EQ(second_ran_on, std::this_thread::get_id());
    EXPECT_EQ(w.queued_bytes(), 0u);
}

TEST(KvWriter, FlushWaitsForTheRunningJobAndTimesOut) {
    KvWriter w(1 << 20);
    std::atomic<bool> release{false}, started{false};
    ASSERT_TRUE(w.submit(10, [&] {
        started = true;
        while (!release) std::this_thread::sleep_for(milliseconds(1));
    }));
    while (!started) std::this_thread::sleep_for(milliseconds(1));
    EXPECT_FALSE(w.flush(milliseconds(50))) << "the writer's job is still running";
    release = true;
    EXPECT_TRUE(w.flush(seconds(10)));
    EXPECT_EQ(w.queued_bytes(), 0u);
}

TEST(KvWriter, BoundRefusesPastItUnlessEmpty) {
    KvWriter w(100);
    std::atomic<bool> release{false}, started{false};
    ASSERT_TRUE(w.submit(500, [&] {  // larger than the bound, alone: taken
        started = true;
        while (!release) std::this_thread::sleep_for(milliseconds(1));
    }));
    while (!started) std::this_thread::sleep_for(milliseconds(1));
    bool ran = false;
    EXPECT_FALSE(w.submit(10, [&] { ran = true; }));
    release = true;
    EXPECT_TRUE(w.flush(seconds(10)));
    EXPECT_FALSE(ran);
}
