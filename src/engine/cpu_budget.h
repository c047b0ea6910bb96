// How many threads a decode loop may use: what this process can actually
// run at once, not what the machine has.
#pragma once

#include <string>

namespace wnl {

// Cores that give llama.cpp speed (its own default: physical, non-efficiency
// cores), capped by the CPUs this process is allowed to run on and by a
// cgroup CPU quota. A container pinned to 2 CPUs of a 64-core host gets 2:
// more threads than runnable CPUs make ggml's spinning workers wait out
// each other's time slices, which costs far more than the threads add.
int usable_cpus();

// CPUs this process may run threads on at once: its CPU affinity, capped by
// a cgroup CPU quota. More threads than this always share CPUs, so ggml's
// spinning barriers collapse (the bound for `threads`; hyperthreads count,
// unlike in usable_cpus()).
int runnable_cpus();

// The CPUs a cgroup v2 `cpu.max` line ("200000 100000", "max 100000")
// allows, rounded up; 0 when it sets no limit or does not parse.
int cpus_from_cgroup_cpu_max(const std::string& line);

// The same for cgroup v1's quota and period (quota -1: no limit).
int cpus_from_cgroup_v1(long long quota_us, long long period_us);

}  // namespace wnl
