#include "engine/cpu_budget.h"
#include "engine/idle_cpus.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>
#include <thread>

using namespace wnl;

TEST(CpuBudget, CgroupV2QuotaRoundsUp) {
    EXPECT_EQ(cpus_from_cgroup_cpu_max("200000 100000"), 2);
    EXPECT_EQ(cpus_from_cgroup_cpu_max("150000 100000\n"), 2);
    EXPECT_EQ(cpus_from_cgroup_cpu_max("50000 100000"), 1);
}

TEST(CpuBudget, CgroupV2WithoutALimitIsZero) {
    EXPECT_EQ(cpus_from_cgroup_cpu_max("max 100000"), 0);
    EXPECT_EQ(cpus_from_cgroup_cpu_max(""), 0);
    EXPECT_EQ(cpus_from_cgroup_cpu_max("garbage"), 0);
    EXPECT_EQ(cpus_from_cgroup_cpu_max("12x 100000"), 0);
    EXPECT_EQ(cpus_from_cgroup_cpu_max("100000 0"), 0);
}

TEST(CpuBudget, CgroupV1) {
    EXPECT_EQ(cpus_from_cgroup_v1(-1, 100000), 0);
    EXPECT_EQ(cpus_from_cgroup_v1(400000, 100000), 4);
}

TEST(CpuBudget, NeverMoreThanTheProcessMayRunOn) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
    const int n = usable_cpus();
    EXPECT_GE(n, 1);
    EXPECT_LE(n, CPU_COUNT(&set));
    EXPECT_LE(n, static_cast<int>(std::thread::hardware_concurrency()));
}

TEST(CpuBudget, FollowsANarrowedAffinity) {
    cpu_set_t saved, one;
    ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &saved)) {
            CPU_SET(c, &one);
            break;
        }
    }
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    const int n = usable_cpus();
    ASSERT_EQ(sched_setaffinity(0, sizeof(saved), &saved), 0);
    EXPECT_EQ(n, 1);
}

// The bound on `threads` counts every CPU of the affinity mask (hyperthreads
// too), and never fewer than the default.
TEST(CpuBudget, RunnableCpusAreTheAffinityMask) {
    cpu_set_t saved, two;
    ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
    const int all = runnable_cpus();
    EXPECT_LE(all, CPU_COUNT(&saved));
    EXPECT_GE(all, usable_cpus());
    CPU_ZERO(&two);
    int picked = 0;
    for (int c = 0; c < CPU_SETSIZE && picked < 2; ++c) {
        if (CPU_ISSET(c, &saved)) {
            CPU_SET(c, &two);
            ++picked;
        }
    }
    ASSERT_EQ(sched_setaffinity(0, sizeof(two), &two), 0);
    const int n = runnable_cpus();
    ASSERT_EQ(sched_setaffinity(0, sizeof(saved), &saved), 0);
    // A cgroup quota below the mask would lower it further.
    EXPECT_LE(n, picked);
    EXPECT_GE(n, 1);
}

TEST(CpuBudget, IdleTicksOfSomeCpus) {
    const std::string stat =
        "cpu  100 0 50 1000 20 0 0 0 0 0\n"
        "cpu0 50 0 25 400 10 0 0 0 0 0\n"
        "cpu1 50 0 25 600 10 0 0 0 0 0\n"
        "cpu12 1 2 3 4 5 6 7 8 9 10\n"
        "intr 12345\n";
    EXPECT_EQ(idle_ticks(stat, {0}), 410);
    EXPECT_EQ(idle_ticks(stat, {0, 1}), 1020);
    EXPECT_EQ(idle_ticks(stat, {12}), 9);  // not cpu1's line
    EXPECT_EQ(idle_ticks(stat, {3}), -1);  // no such CPU
    EXPECT_EQ(idle_ticks(stat, {}), -1);
    EXPECT_EQ(idle_ticks("cpu0 1 2\n", {0}), -1);
}

TEST(CpuBudget, IdleCpusAreBetweenNoneAndAll) {
    IdleCpus idle;
    EXPECT_LT(idle.sample(), 0);  // the first sample only starts the window
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const double n = idle.sample();
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
    EXPECT_GE(n, 0);
    // Ticks are coarse (10 ms): allow a tick or two per CPU over the window.
    EXPECT_LE(n, CPU_COUNT(&set) * 1.25);
    idle.restart();
    EXPECT_LT(idle.sample(), 0);
}
