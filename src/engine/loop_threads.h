// The ggml thread pools a decode loop computes on: the ones it was
// configured with, and others for the steps that run on fewer threads
// (while it shares the CPUs with other models' loops, CpuArbiter, or while
// other processes hold some of them, ThreadGovernor) or with quiet pools.
//
// A narrower step runs on a pool of exactly that many threads, not on the
// full pool with fewer threads asked: a full pool's workers that a graph
// does not need keep polling for work, on the very CPUs the other loop or
// process was left. A quiet pool's workers (ggml poll 0) sleep on a
// condition variable as soon as a graph ends, instead of polling for the
// next one for a while: a little slower to start each graph, but they leave
// the CPUs to others between graphs.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "llama.h"

namespace wnl {

class LoopThreads {
public:
    // Creates and attaches persistent pools of `threads` and `threads_batch`
    // (llama.cpp's own tools do the same: without a pool ggml starts and
    // joins threads on every decode).
    LoopThreads(llama_context* ctx, int threads, int threads_batch);
    // Frees the pools: only once `ctx` no longer computes (or is freed).
    ~LoopThreads() { release(); }
    // Detaches the pools from `ctx` and frees them (joining their worker
    // threads), once it computes no more; use() must not follow.
    void release();
    LoopThreads(const LoopThreads&) = delete;
    LoopThreads& operator=(const LoopThreads&) = delete;

    // What llama.cpp would run a batch of `n_tokens` on.
    int wanted(int n_tokens) const { return n_tokens == 1 ? threads_ : threads_batch_; }
    // Makes the next decode of `n_tokens` run on `granted` threads (at most
    // wanted()), on quiet pools if `quiet`.
    void use(int granted, int n_tokens, bool quiet = false);
    // Puts the current pools' workers to sleep until the next decode, so
    // that they stop polling for work while another loop computes.
    void park();

    int threads() const { return threads_; }
    int threads_batch() const { return threads_batch_; }
    size_t extra_pools() const { return extra_.size(); }

    // Pools besides the configured ones that are kept for reuse; the least
    // recently used beyond these are freed (a governor that tries many
    // widths on a big machine would otherwise keep thousands of threads).
    static constexpr size_t kMaxExtraPools = 4;

private:
    void attach(ggml_threadpool* pool, ggml_threadpool* pool_batch, int n, int n_batch);
    ggml_threadpool* extra_pool(int n, bool quiet);

    llama_context* ctx_;
    const int threads_, threads_batch_;
    ggml_threadpool* pool_ = nullptr;
    ggml_threadpool* pool_batch_ = nullptr;  // null when it would equal pool_
    struct Extra {
        ggml_threadpool* pool;
        uint64_t used;  // use_tick_ when last attached
    };
    std::map<std::pair<int, bool>, Extra> extra_;  // by (threads, quiet), made on first use
    uint64_t use_tick_ = 0;
    ggml_threadpool* current_ = nullptr;
    ggml_threadpool* current_batch_ = nullptr;
};

// Whether `n` more threads can exist at once in this process now: ggml
// aborts when it cannot start a pool's worker (pthread_create failing), so a
// pool is made only after this has started and joined as many. False also
// when starting them failed for want of memory.
bool threads_available(int n);

}  // namespace wnl
