// ThreadGovernor on synthetic step times: a model of a host whose CPUs
// others take and give back, no real timing.
#include "engine/thread_governor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

using namespace wnl;

namespace {

// `free` CPUs are ours alone. Up to that many threads speed a step up
// (sublinearly, as memory-bound decoding does); more than that, and the
// threads beyond share CPUs with other processes, so every barrier waits
// for one to be scheduled: the step takes `collapse` times longer. Quiet
// pools cost a little when nothing competes and save `quiet_gain` of a
// collapsed step. Steps jitter by +-`jitter` (deterministic).
struct Host {
    int free = 2;
    double one_thread_ms = 10;  // a 1-token step on one thread
    double collapse = 4;
    double quiet_gain = 0;
    double jitter = 0.05;
    uint64_t rng = 12345;

    double step(int n_tokens, const ThreadChoice& c) {
        const int w = std::max(1, c.width);
        double ms = one_thread_ms * (1 + 0.02 * (n_tokens - 1)) / std::pow(std::min(w, free > 0 ? free : 1), 0.7);
        if (w > free) ms *= collapse * (c.quiet ? 1 - quiet_gain : 1);
        else if (c.quiet && w > 1) ms *= 1.01;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        const double u = static_cast<double>(rng >> 11) / static_cast<double>(1ULL << 53);  // [0, 1)
        return ms * (1 + jitter * (2 * u - 1));
    }
};

// Runs `steps` steps of `n_tokens` (llama.cpp wanting `wanted` threads);
// returns the step time spent and counts the steps per width.
struct Steps {
    double total_ms = 0;
    int steps_at_max = 0, steps_below_max = 0;
    int last_width = 0;
};

Steps run(ThreadGovernor& g, Host& h, int steps, int n_tokens = 1, int wanted = 0) {
    Steps r;
    if (wanted == 0) wanted = g.max_width();
    for (int i = 0; i < steps; ++i) {
        const ThreadChoice c = g.choose(n_tokens, wanted);
        const ThreadChoice ran{std::min(c.width, wanted), c.quiet};
        const double ms = h.step(n_tokens, ran);
        g.observe(ms);
        r.total_ms += ms;
        (ran.width >= std::min(g.max_width(), wanted) ? r.steps_at_max : r.steps_below_max)++;
        r.last_width = ran.width;
    }
    return r;
}

double ideal_ms(Host h, int steps, int width, int n_tokens = 1) {
    h.jitter = 0;
    return steps * h.step(n_tokens, {width, false});
}

}  // namespace

TEST(ThreadGovernor, StartsAtFullWidthPolling) {
    ThreadGovernor g(4);
    EXPECT_EQ(g.current(), (ThreadChoice{4, false}));
    EXPECT_EQ(g.choose(1, 4), (ThreadChoice{4, false}));  // nothing measured yet: no probe
}

TEST(ThreadGovernor, OneThreadHasNothingToDecide) {
    ThreadGovernor g(1);
    Host h;
    h.free = 0;  // even so
    run(g, h, 500);
    EXPECT_EQ(g.current(), (ThreadChoice{1, false}));
    EXPECT_EQ(g.stats().probes, 0u);
}

TEST(ThreadGovernor, AnIdleHostKeepsFullWidthAndProbesCheaply) {
    ThreadGovernor g(2);
    Host h;
    h.free = 2;
    Steps r = run(g, h, 5000);
    EXPECT_EQ(g.current(), (ThreadChoice{2, false}));
    EXPECT_EQ(g.stats().narrowed, 0u);
    EXPECT_EQ(g.stats().quieted, 0u);
    EXPECT_GT(g.stats().probes, 0u);  // it did look
    EXPECT_LT(r.steps_below_max, 5000 / 100);
    // What the probes cost, over the ideal: within the budget (2 %) plus
    // the early ones, which wait less.
    EXPECT_LT(r.total_ms, 1.03 * ideal_ms(h, 5000, 2));
}

TEST(ThreadGovernor, ABusyHostFromTheStartNarrowsWithinAFewSteps) {
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    Steps first = run(g, h, 12);
    EXPECT_EQ(g.current().width, 1) << "after 12 steps";
    EXPECT_EQ(first.last_width, 1);
    EXPECT_EQ(g.stats().narrowed, 1u);
    // Then it stays there: the probes back up lose, and cost little.
    Steps rest = run(g, h, 5000);
    EXPECT_EQ(g.current().width, 1);
    EXPECT_LT(rest.total_ms, 1.05 * ideal_ms(h, 5000, 1));
    EXPECT_GT(g.stats().probes, 2u);
    EXPECT_EQ(g.stats().widened, 0u);
}

TEST(ThreadGovernor, OthersArrivingAreNoticedAtOnceAndLeavingWithinTheProbeInterval) {
    GovernorParams p;
    ThreadGovernor g(2, p);
    Host h;
    h.free = 2;
    run(g, h, 3000);  // long enough for the probe interval to back off to its maximum
    ASSERT_EQ(g.current().width, 2);

    h.free = 1;
    Steps arrival = run(g, h, 12);
    EXPECT_EQ(g.current().width, 1) << "12 steps after another process took a CPU";
    EXPECT_EQ(g.stats().onsets, 1u);
    EXPECT_EQ(arrival.last_width, 1);

    run(g, h, 2000);
    EXPECT_EQ(g.current().width, 1);

    h.free = 2;
    // Back to full width within one maximal probe interval of step time
    // (plus the steps that the probe itself needs).
    double spent = 0;
    int steps = 0;
    while (g.current().width != 2 && steps < 100000) {
        const ThreadChoice c = g.choose(1, 2);
        const double ms = h.step(1, c);
        g.observe(ms);
        spent += ms;
        ++steps;
    }
    EXPECT_EQ(g.current().width, 2);
    EXPECT_LE(spent, p.max_interval_ms + 20 * h.one_thread_ms);
    EXPECT_EQ(g.stats().widened, 1u);
}

TEST(ThreadGovernor, OnASlowStepOrTwoNothingHappens) {
    ThreadGovernor g(2);
    Host h;
    h.free = 2;
    h.jitter = 0;
    run(g, h, 3000);
    const uint64_t probes = g.stats().probes;
    // A page fault storm, a GC pause: two slow steps, then normal again.
    for (int i = 0; i < 2; ++i) {
        g.choose(1, 2);
        g.observe(h.step(1, {2, false}) * 5);
    }
    run(g, h, 20);
    EXPECT_EQ(g.stats().onsets, 0u);
    EXPECT_EQ(g.stats().probes, probes);
    EXPECT_EQ(g.current().width, 2);
}

TEST(ThreadGovernor, FindsTheFreeCpusOnAWideMachine) {
    for (int free : {1, 3, 5, 7}) {
        ThreadGovernor g(8);
        Host h;
        h.free = free;
        run(g, h, 400);
        EXPECT_EQ(g.current().width, free) << free << " of 8 CPUs free";
        // And stays (the probes either way lose).
        run(g, h, 3000);
        EXPECT_EQ(g.current().width, free) << free << " of 8 CPUs free, later";
    }
}

// A host where others come and go on both CPUs: two polling threads are
// 1.7x slower than when idle, one thread is slower still (it shares its CPU
// too), and quiet pools, whose idle workers leave the CPUs to the others
// between graphs, get back a third of the loss.
double restless(Host& h, const ThreadChoice& c) {
    Host idle = h;
    idle.free = 2;
    const double base = idle.step(1, {c.width, false});
    if (c.width == 1) return base * 1.6;
    return base * 1.7 * (c.quiet ? 0.65 : 1.0);
}

TEST(ThreadGovernor, WhenNarrowingDoesNotHelpItTriesQuietPools) {
    ThreadGovernor g(2);
    Host h;
    h.jitter = 0.02;
    run(g, h, 500);
    ASSERT_EQ(g.current(), (ThreadChoice{2, false}));
    int quiet_steps = 0;
    for (int i = 0; i < 60; ++i) {
        const ThreadChoice c = g.choose(1, 2);
        g.observe(restless(h, c));
        if (i >= 40 && g.current().quiet) ++quiet_steps;
    }
    EXPECT_EQ(g.stats().onsets, 1u);
    EXPECT_EQ(g.stats().narrowed, 0u);
    EXPECT_EQ(g.stats().quieted, 1u);
    EXPECT_EQ(g.current(), (ThreadChoice{2, true}));
    EXPECT_EQ(quiet_steps, 20);
}

TEST(ThreadGovernor, QuietPoolsAreTurnedOffAgainWhenTheyStopHelping) {
    ThreadGovernor g(2);
    Host h;
    h.jitter = 0.02;
    run(g, h, 300);
    for (int i = 0; i < 60; ++i) {
        const ThreadChoice c = g.choose(1, 2);
        g.observe(restless(h, c));
    }
    ASSERT_EQ(g.current(), (ThreadChoice{2, true}));
    // The host is idle again, where sleeping workers wake late on every graph.
    double spent = 0;
    for (int i = 0; i < 20000 && g.current().quiet; ++i) {
        const ThreadChoice c = g.choose(1, 2);
        const double ms = h.step(1, c) * (c.quiet ? 1.15 : 1.0);
        g.observe(ms);
        spent += ms;
    }
    EXPECT_EQ(g.current(), (ThreadChoice{2, false}));
    EXPECT_EQ(g.stats().unquieted, 1u);
    EXPECT_LE(spent, 2 * GovernorParams{}.max_interval_ms);
}

TEST(ThreadGovernor, ComparesOnlyStepsOfTheSameSize) {
    // Prefill chunks (64 tokens) between single-token steps: a busy host is
    // still found, and no probe compares a chunk with a token.
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    h.jitter = 0;
    for (int i = 0; i < 40; ++i) {
        const int n = i % 4 == 0 ? 64 : 1;
        const ThreadChoice c = g.choose(n, 2);
        g.observe(h.step(n, c));
    }
    EXPECT_EQ(g.current().width, 1);
    EXPECT_EQ(g.stats().onsets, 0u);  // the chunks' longer steps are not a slowdown
}

TEST(ThreadGovernor, AProbeNeverRunsWhereItWouldChangeNothing) {
    // threads 1, threads_batch 2: single-token steps run on one thread
    // whatever the governor allows, so they cannot test "one thread".
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    h.jitter = 0;
    for (int i = 0; i < 300; ++i) {
        const ThreadChoice c = g.choose(1, 1);
        EXPECT_FALSE(g.probing() && c != g.current()) << "step " << i;
        g.observe(h.step(1, {std::min(c.width, 1), c.quiet}));
    }
    EXPECT_EQ(g.stats().probes, 0u);
    // Batches of 8 do run on two threads: there it finds the busy host.
    for (int i = 0; i < 20; ++i) {
        const ThreadChoice c = g.choose(8, 2);
        g.observe(h.step(8, c));
    }
    EXPECT_EQ(g.current().width, 1);
}

TEST(ThreadGovernor, DiscardedStepsTeachNothing) {
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    for (int i = 0; i < 200; ++i) {
        g.choose(1, 2);
        g.discard();
    }
    EXPECT_EQ(g.stats().probes, 0u);
    EXPECT_EQ(g.current().width, 2);
    // An observe() without a choose() before it is ignored too.
    EXPECT_EQ(g.observe(1000).kind, GovernorEvent::none);
}

TEST(ThreadGovernor, AProbeWhoseSizeStopsComingIsDropped) {
    GovernorParams p;
    p.min_samples = 3;
    ThreadGovernor g(2, p);
    Host h;
    h.free = 1;
    h.jitter = 0;
    // Enough 1-token steps for a probe to start on the next one...
    for (int i = 0; i < 3; ++i) {
        g.choose(1, 2);
        g.observe(h.step(1, {2, false}));
    }
    ThreadChoice c = g.choose(1, 2);
    ASSERT_TRUE(g.probing());
    EXPECT_EQ(c.width, 1);
    g.observe(h.step(1, c));
    // ...then only 5-token steps: they run at the current setting while the
    // probe waits for its size; it is dropped without a decision, and the
    // 5-token steps get a probe of their own, which finds the busy host.
    for (int i = 0; i <= p.probe_patience; ++i) {
        c = g.choose(5, 2);
        EXPECT_EQ(c.width, 2) << "step " << i;
        g.observe(h.step(5, c));
    }
    EXPECT_FALSE(g.probing());
    EXPECT_EQ(g.stats().probes, 0u);
    for (int i = 0; i < 40; ++i) {
        c = g.choose(5, 2);
        g.observe(h.step(5, c));
    }
    EXPECT_EQ(g.current().width, 1);
    EXPECT_EQ(g.stats().probes, 1u);
}

TEST(ThreadGovernor, EventsSayWhatWasDecided) {
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    h.jitter = 0;
    GovernorEvent won;
    for (int i = 0; i < 20 && won.kind != GovernorEvent::probe_won; ++i) {
        const ThreadChoice c = g.choose(1, 2);
        won = g.observe(h.step(1, c));
    }
    ASSERT_EQ(won.kind, GovernorEvent::probe_won);
    EXPECT_EQ(won.from, (ThreadChoice{2, false}));
    EXPECT_EQ(won.to, (ThreadChoice{1, false}));
    EXPECT_GT(won.current_ms, won.probe_ms * 2);
    EXPECT_GT(won.next_probe_in_ms, 0);
}

// The idle-CPU hint while narrowed.
TEST(ThreadGovernor, WhileNoCpuIsIdleItDoesNotProbeWider) {
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    h.collapse = 16;  // a busy host where a step on too many threads costs 16 good ones
    run(g, h, 12);
    ASSERT_EQ(g.current().width, 1);
    const uint64_t probes = g.stats().probes;
    double spent = 0;
    for (int i = 0; i < 5000; ++i) {
        g.set_idle_cpus(0.05);
        const ThreadChoice c = g.choose(1, 2);
        EXPECT_EQ(c.width, 1) << "step " << i;
        const double ms = h.step(1, c);
        g.observe(ms);
        spent += ms;
    }
    EXPECT_EQ(g.stats().probes, probes);
    EXPECT_LT(spent, 1.03 * ideal_ms(h, 5000, 1));
}

TEST(ThreadGovernor, WithoutTheHintProbingWiderCostsAtMostTheMaximalInterval) {
    // The same host, no hint: the probes wider follow the schedule, whose
    // longest wait bounds their cost (one collapsed step per 10 s of steps).
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    h.collapse = 16;
    run(g, h, 12);
    ASSERT_EQ(g.current().width, 1);
    Steps r = run(g, h, 20000);
    const double one_collapsed = h.one_thread_ms / std::pow(2, 0.7) * 16;
    const double probes = std::ceil(r.total_ms / GovernorParams{}.max_interval_ms) + 2;
    EXPECT_LT(r.total_ms, ideal_ms(h, 20000, 1) * 1.01 + probes * one_collapsed);
    EXPECT_EQ(g.current().width, 1);
}

TEST(ThreadGovernor, ACpuFallingIdleIsProbedAtOnce) {
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    run(g, h, 12);
    ASSERT_EQ(g.current().width, 1);
    for (int i = 0; i < 3000; ++i) {
        g.set_idle_cpus(0.0);
        const ThreadChoice c = g.choose(1, 2);
        g.observe(h.step(1, c));
    }
    ASSERT_EQ(g.current().width, 1);
    h.free = 2;  // the other process left: its CPU is idle
    int steps = 0;
    while (g.current().width != 2 && steps < 100) {
        g.set_idle_cpus(1.0);
        const ThreadChoice c = g.choose(1, 2);
        g.observe(h.step(1, c));
        ++steps;
    }
    EXPECT_EQ(g.current().width, 2);
    EXPECT_LE(steps, 5);
}

TEST(ThreadGovernor, AnIdleCpuThatDoesNotHelpIsNotProbedOverAndOver) {
    // Idle CPUs that our threads cannot use (a hyperthread sibling of a busy
    // core, another cgroup's quota): the wider probe loses once, then waits
    // for the schedule like any other.
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    run(g, h, 12);
    ASSERT_EQ(g.current().width, 1);
    const uint64_t before = g.stats().probes;
    for (int i = 0; i < 200; ++i) {
        g.set_idle_cpus(1.0);
        const ThreadChoice c = g.choose(1, 2);
        g.observe(h.step(1, c));
    }
    EXPECT_EQ(g.current().width, 1);
    EXPECT_LE(g.stats().probes - before, 2u);
}

TEST(ThreadGovernor, AProbeStartsOnAStepOfTheSizeBeforeIt) {
    // A request: one prompt step (2 tokens), then single-token steps. The
    // probe must not start on the prompt step, whose size does not come
    // again, but on a single-token step.
    ThreadGovernor g(2);
    Host h;
    h.free = 1;
    h.jitter = 0;
    std::vector<int> widths;
    for (int request = 0; request < 2; ++request) {
        const int n = request == 0 ? 2 : 8;  // the warm-up is short
        for (int i = 0; i < n; ++i) {
            const int tokens = i == 0 ? 2 : 1;
            const ThreadChoice c = g.choose(tokens, 2);
            if (request == 1) widths.push_back(c.width);
            g.observe(h.step(tokens, c));
        }
    }
    // Second request: the prompt on 2 threads (it follows a step of
    // another size), then the probe on one thread from the first
    // single-token step on, which wins, and one thread for good.
    EXPECT_EQ(widths, (std::vector<int>{2, 1, 1, 1, 1, 1, 1, 1}));
    EXPECT_EQ(g.current().width, 1);
}
