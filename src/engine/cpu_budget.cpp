#include "engine/cpu_budget.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "common.h"

namespace wnl {

int cpus_from_cgroup_v1(long long quota_us, long long period_us) {
    if (quota_us <= 0 || period_us <= 0) return 0;
    return static_cast<int>((quota_us + period_us - 1) / period_us);
}

int cpus_from_cgroup_cpu_max(const std::string& line) {
    std::istringstream in(line);
    std::string quota;
    long long period = 0;
    if (!(in >> quota >> period) || quota == "max") return 0;
    try {
        size_t used = 0;
        const long long q = std::stoll(quota, &used);
        return used == quota.size() ? cpus_from_cgroup_v1(q, period) : 0;
    } catch (...) {
        return 0;
    }
}

static int cgroup_quota_cpus() {
    std::ifstream v2("/sys/fs/cgroup/cpu.max");
    std::string line;
    if (v2 && std::getline(v2, line)) return cpus_from_cgroup_cpu_max(line);
    std::ifstream q("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    long long quota = 0, period = 0;
    if (q >> quota && p >> period) return cpus_from_cgroup_v1(quota, period);
    return 0;
}

static int affinity_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int runnable_cpus() {
    int n = affinity_cpus();
    if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
    if (int q = cgroup_quota_cpus(); q > 0 && (n <= 0 || q < n)) n = q;
    return std::max(1, n);
}

int usable_cpus() {
    int n = common_cpu_get_num_math();
    return std::max(1, n > 0 ? std::min(n, runnable_cpus()) : runnable_cpus());
}

}  // namespace wnl
