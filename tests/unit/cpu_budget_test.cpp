#include "engine/cpu_budget.h"

#include <gtest/gtest.h>
#include <sched.h>

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
