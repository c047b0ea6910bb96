// Shares the process's CPUs between the decode loops of several models.
//
// Each loop has its own ggml thread pool, and ggml's workers spin at every
// barrier. When two loops decode at once with more threads between them
// than there are CPUs, each spins through the other's time slices: in CI a
// 2-core run made a 0.3 s generation take 259 s. So while several loops
// have work, each computes on its share of the CPUs (cpus / busy loops, at
// least one thread, never more than it was configured with), side by side;
// a loop alone uses all its threads. When even one thread each is too many
// (more busy loops than CPUs), they also take turns, in arrival order.
// Loops that fit together anyway (16 CPUs, two loops of 8) never wait.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

namespace wnl {

class CpuArbiter {
public:
    explicit CpuArbiter(int cpus);

    // The process-wide arbiter, sized by usable_cpus().
    static CpuArbiter& shared();
    // False when the environment sets WASI_NN_LLAMA_SHARE_CPUS=0: every loop
    // then computes with all its threads whenever it likes (for comparison
    // in bench/models).
    static bool enabled();

    // A loop has requests (true) or has gone idle (false); calls balance.
    void set_busy(bool busy);

    // Blocks until this loop may compute, and returns with how many threads
    // (at most `wanted`). 0, holding nothing, when `abort` turned true while
    // waiting (then call wake() to be seen).
    int acquire(int wanted, const std::atomic<bool>& abort);
    void release(int threads);
    // Re-checks waiters' abort flags.
    void wake();

    bool others_waiting() const;
    int cpus() const { return cpus_; }
    uint64_t waits() const;     // acquires that had to wait for a turn
    uint64_t narrowed() const;  // acquires granted fewer threads than wanted

private:
    const int cpus_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<uint64_t> waiting_;  // tickets, oldest first
    uint64_t next_ticket_ = 0;
    int in_use_ = 0;
    int busy_loops_ = 0;
    uint64_t waits_ = 0;
    uint64_t narrowed_ = 0;
};

// Holds an acquire for one decode; with a null arbiter, all `wanted`.
class CpuTurn {
public:
    CpuTurn(CpuArbiter* arbiter, int wanted, const std::atomic<bool>& abort)
        : arbiter_(arbiter), threads_(arbiter ? arbiter->acquire(wanted, abort) : wanted) {}
    ~CpuTurn() {
        if (arbiter_ && threads_ > 0) arbiter_->release(threads_);
    }
    CpuTurn(const CpuTurn&) = delete;
    CpuTurn& operator=(const CpuTurn&) = delete;
    bool held() const { return threads_ > 0; }
    int threads() const { return threads_; }

private:
    CpuArbiter* arbiter_;
    int threads_;
};

}  // namespace wnl
