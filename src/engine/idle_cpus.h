// How many of the CPUs this process may run on were idle lately: the
// kernel's idle time per CPU (/proc/stat), over the time between two
// samples. A hint for ThreadGovernor: while every one of them is busy, a
// probe with more threads cannot win, and when one falls idle (another
// process left), a probe is worth making at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/request.h"

namespace wnl {

// Idle and iowait ticks summed over `cpus` in a /proc/stat text; -1 when a
// CPU's line is missing or does not parse.
int64_t idle_ticks(const std::string& proc_stat, const std::vector<int>& cpus);

class IdleCpus {
public:
    // The CPUs of the calling thread's affinity mask.
    IdleCpus();
    // The average number of those CPUs that were idle since the previous
    // sample; -1 on the first sample after construction or restart(), or
    // when /proc/stat cannot be read.
    double sample();
    void restart() { last_ticks_ = -1; }

private:
    std::vector<int> cpus_;
    int64_t last_ticks_ = -1;
    Clock::time_point last_at_{};
    double ticks_per_s_;
};

}  // namespace wnl
