// A decode loop's thread governor at work: each step's time goes to the
// ThreadGovernor (thread_governor.h), which narrows the loop's threads while
// other processes hold CPUs; while it is narrowed, the host's idle CPUs
// (/proc/stat) tell it when to widen again.
#include "engine/decode_loop.h"
#include "engine/log.h"

namespace wnl {

void DecodeLoop::govern(double decode_ms, bool as_chosen) {
    if (!as_chosen) {
        governor_->discard();
        return;
    }
    const GovernorEvent ev = governor_->observe(decode_ms);
    // While narrowed: how many CPUs were idle lately (/proc/stat, at most
    // every 100 ms), from the first step narrowed on.
    if (!governor_->wants_idle_cpus()) {
        sampling_idle_ = false;
    } else if (const auto now = Clock::now(); !sampling_idle_ || now - idle_sampled_at_ >= std::chrono::milliseconds(100)) {
        if (!sampling_idle_) idle_cpus_->restart();
        governor_->set_idle_cpus(idle_cpus_->sample());
        sampling_idle_ = true;
        idle_sampled_at_ = now;
    }
    if (ev.kind == GovernorEvent::none || !log_enabled(LogLevel::debug, "scheduler")) return;
    static const char* const kWhat[] = {"", "steps slowed down", "thread setting changed",
                                        "thread probe lost"};
    log(LogLevel::debug, "scheduler", kWhat[ev.kind],
        {{"model", model_->info().name},
         {"threads", ev.from.width},
         {"quiet", ev.from.quiet},
         {"probed_threads", ev.to.width},
         {"probed_quiet", ev.to.quiet},
         {"step_ms", ev.current_ms},
         {"probed_step_ms", ev.probe_ms},
         {"next_probe_in_ms", ev.next_probe_in_ms}});
}

}  // namespace wnl
