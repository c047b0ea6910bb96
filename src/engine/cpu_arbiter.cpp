#include "engine/cpu_arbiter.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "engine/cpu_budget.h"

namespace wnl {

CpuArbiter::CpuArbiter(int cpus) : cpus_(std::max(1, cpus)) {}

CpuArbiter& CpuArbiter::shared() {
    // Never destroyed: decode loops may still use it while static
    // destructors run at exit (process_exit.h).
    static CpuArbiter* arbiter = new CpuArbiter(usable_cpus());
    return *arbiter;
}

bool CpuArbiter::enabled() {
    static const bool on = [] {
        const char* v = std::getenv("WASI_NN_LLAMA_SHARE_CPUS");
        return !(v && std::string(v) == "0");
    }();
    return on;
}

void CpuArbiter::set_busy(bool busy) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        busy_loops_ += busy ? 1 : -1;
    }
    cv_.notify_all();
}

int CpuArbiter::acquire(int wanted, const std::atomic<bool>& abort) {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t ticket = next_ticket_++;
    // Alone, a loop keeps the threads it was given, even more than the CPUs.
    int threads = busy_loops_ > 1 ? std::min(wanted, std::max(1, cpus_ / busy_loops_)) : wanted;
    if (threads < wanted) ++narrowed_;
    auto fits = [&] { return in_use_ == 0 || in_use_ + threads <= cpus_; };
    if (waiting_.empty() && fits()) {
        in_use_ += threads;
        return threads;
    }
    ++waits_;
    waiting_.push_back(ticket);
    cv_.wait(lock, [&] { return abort.load() || (waiting_.front() == ticket && fits()); });
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
    cv_.notify_all();  // the next in line is at the front now, and may fit too
    if (abort.load()) return 0;
    in_use_ += threads;
    return threads;
}

void CpuArbiter::release(int threads) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        in_use_ -= threads;
    }
    cv_.notify_all();
}

void CpuArbiter::wake() {
    { std::lock_guard<std::mutex> lock(mu_); }
    cv_.notify_all();
}

bool CpuArbiter::others_waiting() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !waiting_.empty();
}

uint64_t CpuArbiter::waits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waits_;
}

uint64_t CpuArbiter::narrowed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return narrowed_;
}

}  // namespace wnl
