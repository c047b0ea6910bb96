#include "engine/idle_cpus.h"

#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace wnl {

int64_t idle_ticks(const std::string& proc_stat, const std::vector<int>& cpus) {
    if (cpus.empty()) return -1;
    std::istringstream in(proc_stat);
    std::string line;
    int64_t total = 0;
    size_t found = 0;
    while (std::getline(in, line)) {
        // "cpuN user nice system idle iowait irq softirq steal ..."
        if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 || line[3] < '0' || line[3] > '9') continue;
        std::istringstream f(line.substr(3));
        int cpu = -1;
        int64_t user, nice, system, idle, iowait;
        if (!(f >> cpu >> user >> nice >> system >> idle >> iowait)) return -1;
        for (int c : cpus) {
            if (c == cpu) {
                total += idle + iowait;
                ++found;
                break;
            }
        }
    }
    return found == cpus.size() ? total : -1;
}

IdleCpus::IdleCpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &set)) cpus_.push_back(c);
        }
    }
    const long hz = sysconf(_SC_CLK_TCK);
    ticks_per_s_ = hz > 0 ? static_cast<double>(hz) : 100.0;
}

double IdleCpus::sample() {
    std::ifstream f("/proc/stat");
    std::stringstream text;
    text << f.rdbuf();
    const int64_t ticks = f.is_open() ? idle_ticks(text.str(), cpus_) : -1;
    const auto now = Clock::now();
    double idle = -1;
    const double seconds = std::chrono::duration<double>(now - last_at_).count();
    if (ticks >= 0 && last_ticks_ >= 0 && seconds > 0) {
        idle = static_cast<double>(ticks - last_ticks_) / ticks_per_s_ / seconds;
        if (idle < 0) idle = 0;
    }
    last_ticks_ = ticks;
    last_at_ = now;
    return idle;
}

}  // namespace wnl
