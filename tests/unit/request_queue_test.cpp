// Unit tests of the admission queue (src/engine/request_queue.h, SPEC §3
// "Scheduling": priority with aging so none starves, fairness across
// sessions, refusal past queue_size). Time is passed in explicitly, so every
// test is deterministic: a fixed base time point plus milliseconds.
#include "engine/request_queue.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

using wnl::Clock;
using wnl::Priority;
using wnl::QueueSettings;
using wnl::Request;
using wnl::RequestQueue;

const Clock::time_point kBase = Clock::time_point{} + std::chrono::hours(10);

Clock::time_point at(int64_t ms) { return kBase + std::chrono::milliseconds(ms); }

// A request tagged with an id (kept in prompt[0]) so tests can tell them apart.
std::shared_ptr<Request> make(int id, Priority p = Priority::normal, std::string session = "") {
    auto r = std::make_shared<Request>();
    r->prompt = {id};
    r->priority = p;
    r->session_key = std::move(session);
    return r;
}

int id_of(const std::shared_ptr<Request>& r) { return r ? r->prompt.at(0) : -1; }

QueueSettings settings(bool priority = true, bool fair = true, int64_t aging_ms = 2000, size_t capacity = 256) {
    QueueSettings s;
    s.capacity = capacity;
    s.priority_enabled = priority;
    s.fair = fair;
    s.aging_ms = aging_ms;
    return s;
}

std::vector<int> pop_all(RequestQueue& q, Clock::time_point now) {
    std::vector<int> out;
    while (auto r = q.pop(now)) out.push_back(id_of(r));
    return out;
}

// ---------------------------------------------------------------------------
// Basics

TEST(RequestQueueTest, EmptyQueuePopsNull) {
    RequestQueue q(settings());
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.pop(at(0)), nullptr);
    EXPECT_TRUE(q.take_expired(at(0)).empty());
    EXPECT_TRUE(q.take_all().empty());
    EXPECT_FALSE(q.next_deadline().has_value());
}

TEST(RequestQueueTest, PushRecordsEnqueueTime) {
    RequestQueue q(settings());
    auto r = make(1);
    ASSERT_TRUE(q.push(r, at(1234)));
    EXPECT_EQ(r->enqueued_at, at(1234));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.pop(at(1300)), r);
    EXPECT_EQ(q.size(), 0u);
}

TEST(RequestQueueTest, SettingsAreKept) {
    RequestQueue q(settings(false, false, 77, 9));
    EXPECT_EQ(q.settings().capacity, 9u);
    EXPECT_FALSE(q.settings().priority_enabled);
    EXPECT_FALSE(q.settings().fair);
    EXPECT_EQ(q.settings().aging_ms, 77);
}

// ---------------------------------------------------------------------------
// Priority and FIFO

TEST(RequestQueueTest, PriorityOrderHighNormalLow) {
    for (bool fair : {true, false}) {
        RequestQueue q(settings(true, fair));
        ASSERT_TRUE(q.push(make(1, Priority::low, "a"), at(0)));
        ASSERT_TRUE(q.push(make(2, Priority::normal, "b"), at(0)));
        ASSERT_TRUE(q.push(make(3, Priority::high, "c"), at(0)));
        EXPECT_EQ(pop_all(q, at(0)), (std::vector<int>{3, 2, 1})) << "fair=" << fair;
    }
}

TEST(RequestQueueTest, FifoWithinPriority) {
    for (bool fair : {true, false}) {
        RequestQueue q(settings(true, fair));
        for (int i = 1; i <= 6; ++i) ASSERT_TRUE(q.push(make(i, Priority::normal, "s"), at(i)));
        EXPECT_EQ(pop_all(q, at(10)), (std::vector<int>{1, 2, 3, 4, 5, 6})) << "fair=" << fair;
    }
}

TEST(RequestQueueTest, FifoWithinEachPriorityInterleaved) {
    RequestQueue q(settings(true, false));
    q.push(make(1, Priority::normal), at(0));
    q.push(make(2, Priority::high), at(1));
    q.push(make(3, Priority::normal), at(2));
    q.push(make(4, Priority::low), at(3));
    q.push(make(5, Priority::high), at(4));
    q.push(make(6, Priority::normal), at(5));
    q.push(make(7, Priority::low), at(6));
    EXPECT_EQ(pop_all(q, at(10)), (std::vector<int>{2, 5, 1, 3, 6, 4, 7}));
}

TEST(RequestQueueTest, PushRefusedAtCapacity) {
    RequestQueue q(settings(true, true, 2000, 3));
    EXPECT_TRUE(q.push(make(1), at(0)));
    EXPECT_TRUE(q.push(make(2), at(0)));
    EXPECT_TRUE(q.push(make(3), at(0)));
    auto refused = make(4, Priority::high);
    EXPECT_FALSE(q.push(refused, at(0)));
    EXPECT_EQ(q.size(), 3u);
    EXPECT_EQ(refused->enqueued_at, Clock::time_point{});  // untouched
    // The refused one is not in the queue; room again after a pop.
    EXPECT_EQ(id_of(q.pop(at(1))), 1);
    EXPECT_TRUE(q.push(make(5), at(1)));
    EXPECT_FALSE(q.push(make(6), at(1)));
    EXPECT_EQ(pop_all(q, at(2)), (std::vector<int>{2, 3, 5}));
}

TEST(RequestQueueTest, ZeroCapacityRefusesEverything) {
    RequestQueue q(settings(true, true, 2000, 0));
    EXPECT_FALSE(q.push(make(1), at(0)));
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.pop(at(0)), nullptr);
}

TEST(RequestQueueTest, PriorityDisabledIsPlainFifo) {
    for (bool fair : {true, false}) {
        RequestQueue q(settings(false, fair));
        q.push(make(1, Priority::low, "chatty"), at(0));
        q.push(make(2, Priority::low, "chatty"), at(0));
        q.push(make(3, Priority::high, "b"), at(1));
        q.push(make(4, Priority::normal, "chatty"), at(2));
        q.push(make(5, Priority::high, "c"), at(3));
        EXPECT_EQ(pop_all(q, at(100000)), (std::vector<int>{1, 2, 3, 4, 5})) << "fair=" << fair;
    }
}

// ---------------------------------------------------------------------------
// Aging

// A low request enqueued at t0 and a new high one pushed before every pop:
// the low one is admitted by the first pop at or after t0 + 2 * aging_ms, and
// not before while a high one waits.
struct AgingCase {
    int64_t step_ms;        // time between pops
    bool fair;
    const char* low_session;
};

void run_aging_stream(const AgingCase& c) {
    const int64_t A = 100;
    const int64_t t0 = 3;
    const int64_t bound = t0 + 2 * A;
    RequestQueue q(settings(true, c.fair, A));
    ASSERT_TRUE(q.push(make(-7, Priority::low, c.low_session), at(t0)));
    int next_id = 1;
    int64_t popped_at = -1;
    for (int64_t t = c.step_ms; t < 100 * A; t += c.step_ms) {
        int id = next_id++;
        ASSERT_TRUE(q.push(make(id, Priority::high, "h"), at(t)));
        auto r = q.pop(at(t));
        ASSERT_NE(r, nullptr);
        if (id_of(r) == -7) {
            popped_at = t;
            break;
        }
        ASSERT_LT(t, bound) << "low request not admitted at t=" << t << " (t0=" << t0 << ", aging=" << A
                            << ", step=" << c.step_ms << ", fair=" << c.fair << ")";
        EXPECT_EQ(id_of(r), id) << "the newest high should have been admitted at t=" << t;
    }
    // The first pop time at or after the bound.
    int64_t first_pop_after_bound = ((bound + c.step_ms - 1) / c.step_ms) * c.step_ms;
    EXPECT_EQ(popped_at, first_pop_after_bound)
        << "step=" << c.step_ms << " fair=" << c.fair << " low_session=" << c.low_session;
}

TEST(RequestQueueTest, AgingAdmitsLowUnderEndlessHighStream) {
    for (int64_t step : {1, 7, 13, 50, 99, 100, 101, 150, 203, 250, 500}) {
        for (bool fair : {true, false}) {
            for (const char* low_session : {"low", "h", ""}) {
                SCOPED_TRACE("step=" + std::to_string(step) + " fair=" + std::to_string(fair) +
                             " low_session=" + low_session);
                run_aging_stream({step, fair, low_session});
            }
        }
    }
}

TEST(RequestQueueTest, AgingNotBeforeTwoAgingPeriods) {
    // Pop exactly one millisecond before and at the bound, highs waiting.
    const int64_t A = 1000;
    for (bool fair : {true, false}) {
        RequestQueue q(settings(true, fair, A));
        q.push(make(100, Priority::low, "low"), at(0));
        q.push(make(1, Priority::high, "h"), at(A));
        q.push(make(2, Priority::high, "h"), at(2 * A - 1));
        q.push(make(3, Priority::high, "h"), at(2 * A - 1));
        // At 2A - 1 the low one is one level up (normal); highs still win.
        EXPECT_EQ(id_of(q.pop(at(2 * A - 1))), 1);
        EXPECT_EQ(id_of(q.pop(at(2 * A - 1))), 2);
        // At 2A it reaches high and is older than the waiting high.
        EXPECT_EQ(id_of(q.pop(at(2 * A))), 100) << "fair=" << fair;
        EXPECT_EQ(id_of(q.pop(at(2 * A))), 3);
    }
}

TEST(RequestQueueTest, AgingOneLevelPerPeriod) {
    // A low request reaches normal after aging_ms: it then beats newer normal
    // requests but not high ones.
    const int64_t A = 500;
    RequestQueue q(settings(true, false, A));
    q.push(make(100, Priority::low), at(0));
    q.push(make(1, Priority::normal), at(A - 1));
    EXPECT_EQ(id_of(q.pop(at(A - 1))), 1);
    q.push(make(2, Priority::normal), at(A));
    q.push(make(3, Priority::high), at(A));
    EXPECT_EQ(id_of(q.pop(at(A))), 3);
    EXPECT_EQ(id_of(q.pop(at(A))), 100);
    EXPECT_EQ(id_of(q.pop(at(A))), 2);
}

TEST(RequestQueueTest, AgingDisabledLetsHighStarveLow) {
    RequestQueue q(settings(true, false, 0));
    q.push(make(100, Priority::low), at(0));
    for (int i = 1; i <= 1000; ++i) {
        q.push(make(i, Priority::high), at(i * 1000));
        ASSERT_EQ(id_of(q.pop(at(i * 1000))), i);
    }
    EXPECT_EQ(id_of(q.pop(at(2000000))), 100);
}

// The header promises the bound "even under an endless stream of high ones
// (ties go to the older request)". With fair scheduling on, a low request
// whose session was served before, facing high requests from sessions not
// yet served (many guests), must still be admitted by t0 + 2 * aging_ms.
TEST(RequestQueueTest, AgingBoundHoldsWhenLowSessionWasServedBefore) {
    const int64_t A = 100;
    const int64_t t0 = 10;
    RequestQueue q(settings(true, true, A));
    // An earlier turn of the same chat session, admitted before t0.
    q.push(make(50, Priority::normal, "chat"), at(0));
    ASSERT_EQ(id_of(q.pop(at(0))), 50);
    ASSERT_TRUE(q.push(make(-7, Priority::low, "chat"), at(t0)));
    int64_t popped_at = -1;
    for (int64_t t = 10; t <= 1000; t += 10) {
        int id = static_cast<int>(t);
        q.push(make(id, Priority::high, "guest" + std::to_string(id)), at(t));
        if (id_of(q.pop(at(t))) == -7) {
            popped_at = t;
            break;
        }
    }
    EXPECT_EQ(popped_at, t0 + 2 * A);
}

// The same promise when high requests arrive faster than they are admitted
// (two pushed before every pop, so a backlog of highs enqueued after the low
// one builds up). The low one is older than every waiting high, so once it
// has aged to high it must win the tie ("ties go to the older request").
TEST(RequestQueueTest, AgingBoundHoldsUnderHighBacklog) {
    const int64_t A = 100;
    const int64_t t0 = 5;
    for (bool fair : {false, true}) {
        RequestQueue q(settings(true, fair, A, 100000));
        ASSERT_TRUE(q.push(make(-7, Priority::low, "h"), at(t0)));
        int next_id = 1;
        int64_t popped_at = -1;
        for (int64_t t = 10; t <= 2000; t += 10) {
            q.push(make(next_id++, Priority::high, "h"), at(t));
            q.push(make(next_id++, Priority::high, "h"), at(t));
            if (id_of(q.pop(at(t))) == -7) {
                popped_at = t;
                break;
            }
        }
        EXPECT_EQ(popped_at, 210) << "fair=" << fair << " (first pop at or after t0 + 2A = 205)";
    }
}

// ---------------------------------------------------------------------------
// Fair scheduling

TEST(RequestQueueTest, FairRoundRobinAcrossSessions) {
    RequestQueue q(settings(true, true));
    for (int i = 1; i <= 5; ++i) q.push(make(i, Priority::normal, "chatty"), at(0));
    q.push(make(10, Priority::normal, "b"), at(0));
    q.push(make(20, Priority::normal, "c"), at(0));
    auto order = pop_all(q, at(0));
    ASSERT_EQ(order.size(), 7u);
    // chatty's first, then b and c before chatty's second.
    EXPECT_EQ(order, (std::vector<int>{1, 10, 20, 2, 3, 4, 5}));
}

TEST(RequestQueueTest, FairRoundRobinThreeBusySessions) {
    RequestQueue q(settings(true, true));
    int id = 0;
    for (const char* s : {"a", "b", "c"}) {
        for (int i = 0; i < 3; ++i) q.push(make(++id, Priority::normal, s), at(0));
    }
    // a: 1 2 3, b: 4 5 6, c: 7 8 9
    EXPECT_EQ(pop_all(q, at(0)), (std::vector<int>{1, 4, 7, 2, 5, 8, 3, 6, 9}));
}

TEST(RequestQueueTest, FairnessRemembersEarlierAdmissions) {
    RequestQueue q(settings(true, true));
    q.push(make(1, Priority::normal, "chatty"), at(0));
    ASSERT_EQ(id_of(q.pop(at(0))), 1);
    // chatty was served last; b, arriving later, goes first.
    q.push(make(2, Priority::normal, "chatty"), at(1));
    q.push(make(3, Priority::normal, "b"), at(2));
    EXPECT_EQ(pop_all(q, at(3)), (std::vector<int>{3, 2}));
}

TEST(RequestQueueTest, UnfairIsFifo) {
    RequestQueue q(settings(true, false));
    for (int i = 1; i <= 5; ++i) q.push(make(i, Priority::normal, "chatty"), at(0));
    q.push(make(10, Priority::normal, "b"), at(0));
    q.push(make(20, Priority::normal, "c"), at(0));
    EXPECT_EQ(pop_all(q, at(0)), (std::vector<int>{1, 2, 3, 4, 5, 10, 20}));
}

TEST(RequestQueueTest, FairnessDoesNotOverridePriority) {
    RequestQueue q(settings(true, true));
    q.push(make(1, Priority::high, "chatty"), at(0));
    q.push(make(2, Priority::high, "chatty"), at(0));
    q.push(make(3, Priority::normal, "b"), at(0));
    EXPECT_EQ(pop_all(q, at(0)), (std::vector<int>{1, 2, 3}));
}

TEST(RequestQueueTest, FairnessWithManySessionsStaysRoundRobin) {
    // More sessions than the queue keeps track of (it forgets sessions served
    // long ago, which then count as never served).
    const int n = 4200;
    RequestQueue q(settings(true, true, 2000, 100000));
    for (int s = 0; s < n; ++s) q.push(make(s, Priority::normal, "s" + std::to_string(s)), at(0));
    // Second requests: the session served last is queued first.
    q.push(make(-3, Priority::normal, "s" + std::to_string(n - 1)), at(0));
    q.push(make(-1, Priority::normal, "s0"), at(0));
    q.push(make(-2, Priority::normal, "s1"), at(0));
    auto order = pop_all(q, at(0));
    ASSERT_EQ(order.size(), static_cast<size_t>(n + 3));
    // Every session's first request comes before any session's second.
    for (int i = 0; i < n; ++i) ASSERT_EQ(order[i], i) << "at " << i;
    // Then the sessions served longest ago first.
    EXPECT_EQ(order[n], -1);
    EXPECT_EQ(order[n + 1], -2);
    EXPECT_EQ(order[n + 2], -3);
}

// ---------------------------------------------------------------------------
// Expiry, depth, deadlines

TEST(RequestQueueTest, TakeExpiredRemovesCancelledAndPastDeadlineOnly) {
    RequestQueue q(settings());
    auto cancelled = make(1);
    auto past = make(2);
    auto future = make(3);
    auto none = make(4);
    auto cancelled_later = make(5);
    past->deadline = at(50);
    future->deadline = at(500);
    q.push(cancelled, at(0));
    q.push(past, at(0));
    q.push(future, at(0));
    q.push(none, at(0));
    q.push(cancelled_later, at(0));
    cancelled->cancelled = true;
    cancelled_later->cancelled.store(true);

    auto expired = q.take_expired(at(100));
    ASSERT_EQ(expired.size(), 3u);
    EXPECT_EQ(expired[0], cancelled);
    EXPECT_EQ(expired[1], past);
    EXPECT_EQ(expired[2], cancelled_later);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_TRUE(q.take_expired(at(100)).empty());
    EXPECT_EQ(q.size(), 2u);

    // Later, the future deadline passes too.
    auto later = q.take_expired(at(501));
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(later[0], future);
    EXPECT_EQ(pop_all(q, at(1000)), (std::vector<int>{4}));
}

TEST(RequestQueueTest, TakeExpiredBeforeDeadlineTakesNothing) {
    RequestQueue q(settings());
    auto r = make(1);
    r->deadline = at(100);
    q.push(r, at(0));
    EXPECT_TRUE(q.take_expired(at(99)).empty());
    EXPECT_EQ(q.size(), 1u);
}

TEST(RequestQueueTest, DepthByPriority) {
    RequestQueue q(settings(true, false));
    EXPECT_EQ(q.depth_by_priority(), (std::array<size_t, wnl::kPriorityCount>{0, 0, 0}));
    q.push(make(1, Priority::high), at(0));
    q.push(make(2, Priority::normal), at(0));
    q.push(make(3, Priority::low), at(0));
    q.push(make(4, Priority::normal), at(0));
    q.push(make(5, Priority::high), at(0));
    q.push(make(6, Priority::normal), at(0));
    EXPECT_EQ(q.depth_by_priority(), (std::array<size_t, wnl::kPriorityCount>{2, 3, 1}));
    ASSERT_EQ(id_of(q.pop(at(0))), 1);
    EXPECT_EQ(q.depth_by_priority(), (std::array<size_t, wnl::kPriorityCount>{1, 3, 1}));
    // Depth is by requested priority, whatever aging has done.
    EXPECT_EQ(q.depth_by_priority(), (std::array<size_t, wnl::kPriorityCount>{1, 3, 1}));
    q.take_all();
    EXPECT_EQ(q.depth_by_priority(), (std::array<size_t, wnl::kPriorityCount>{0, 0, 0}));
}

TEST(RequestQueueTest, NextDeadline) {
    RequestQueue q(settings(true, false));
    EXPECT_FALSE(q.next_deadline().has_value());
    q.push(make(1, Priority::high), at(0));  // no deadline
    EXPECT_FALSE(q.next_deadline().has_value());
    auto a = make(2, Priority::high);
    a->deadline = at(500);
    auto b = make(3, Priority::normal);
    b->deadline = at(200);
    auto c = make(4, Priority::low);
    c->deadline = at(900);
    q.push(a, at(0));
    q.push(b, at(0));
    q.push(c, at(0));
    ASSERT_TRUE(q.next_deadline().has_value());
    EXPECT_EQ(*q.next_deadline(), at(200));
    // Pops: 1 (no deadline), 2 (500), 3 (200), 4 (900).
    q.pop(at(1));
    EXPECT_EQ(*q.next_deadline(), at(200));
    q.pop(at(1));
    EXPECT_EQ(*q.next_deadline(), at(200));
    q.pop(at(1));
    EXPECT_EQ(*q.next_deadline(), at(900));
    q.pop(at(1));
    EXPECT_FALSE(q.next_deadline().has_value());
}

TEST(RequestQueueTest, TakeAllEmptiesInOrder) {
    RequestQueue q(settings());
    q.push(make(1, Priority::low), at(0));
    q.push(make(2, Priority::high), at(0));
    q.push(make(3), at(0));
    auto all = q.take_all();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(id_of(all[0]), 1);
    EXPECT_EQ(id_of(all[1]), 2);
    EXPECT_EQ(id_of(all[2]), 3);
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.pop(at(0)), nullptr);
}

// SPEC §4: one backend context (tenant) holds at most its share of the
// queue, so others still get in.
TEST(RequestQueueTest, TenantShareOfTheQueue) {
    RequestQueue q(settings(true, true, 2000, 4));
    auto of = [](int id, const char* tenant, double share) {
        auto r = make(id);
        r->tenant = tenant;
        r->queue_share = share;
        return r;
    };
    EXPECT_FALSE(q.over_share(*of(1, "a", 0.5)));
    ASSERT_TRUE(q.push(of(1, "a", 0.5), at(0)));
    ASSERT_TRUE(q.push(of(2, "a", 0.5), at(0)));
    EXPECT_TRUE(q.over_share(*of(3, "a", 0.5)));  // 2 of 4 waiting
    EXPECT_FALSE(q.over_share(*of(3, "a", 0.5), 1));  // a free slot takes one at once
    EXPECT_FALSE(q.over_share(*of(3, "b", 0.5)));
    EXPECT_FALSE(q.over_share(*of(3, "a", 1.0)));  // the whole queue
    EXPECT_FALSE(q.over_share(*of(3, "a", 0.75)));  // 3 of 4
    EXPECT_EQ(id_of(q.pop(at(1))), 1);
    EXPECT_FALSE(q.over_share(*of(3, "a", 0.5)));
    // A share below one place is still one.
    RequestQueue small(settings(true, true, 2000, 2));
    EXPECT_FALSE(small.over_share(*of(1, "a", 0.1)));
    ASSERT_TRUE(small.push(of(1, "a", 0.1), at(0)));
    EXPECT_TRUE(small.over_share(*of(2, "a", 0.1)));
}

}  // namespace
