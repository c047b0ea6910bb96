// The ggml thread pools a decode loop computes on: the ones it was
// configured with, and narrower ones for the turns when it shares the CPUs
// with other models' loops (CpuArbiter).
//
// A narrower turn runs on a pool of exactly that many threads, not on the
// full pool with fewer threads asked: a full pool's workers that a graph
// does not need keep polling for work, on the very CPUs the other loop was
// given.
#pragma once

#include <map>

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
    // Makes the next decode of `n_tokens` run on `granted` threads.
    void use(int granted, int n_tokens);
    // Puts the current pools' workers to sleep until the next decode, so
    // that they stop polling for work while another loop computes.
    void park();

    int threads() const { return threads_; }
    int threads_batch() const { return threads_batch_; }

private:
    void attach(ggml_threadpool* pool, ggml_threadpool* pool_batch, int n, int n_batch);

    llama_context* ctx_;
    const int threads_, threads_batch_;
    ggml_threadpool* pool_ = nullptr;
    ggml_threadpool* pool_batch_ = nullptr;   // null when it would equal pool_
    std::map<int, ggml_threadpool*> narrow_;  // by thread count, made on first use
    ggml_threadpool* current_ = nullptr;
    ggml_threadpool* current_batch_ = nullptr;
};

// Whether `n` more threads can exist at once in this process now: ggml
// aborts when it cannot start a pool's worker (pthread_create failing), so a
// pool is made only after this has started and joined as many. False also
// when starting them failed for want of memory.
bool threads_available(int n);

}  // namespace wnl
