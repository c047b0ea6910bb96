#include "engine/loop_threads.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "ggml-cpu.h"

namespace wnl {

bool threads_available(int n) {
    std::mutex mu;
    std::condition_variable cv;
    bool release = false;
    bool ok = true;
    std::vector<std::thread> probe;
    try {
        probe.reserve(static_cast<size_t>(n > 0 ? n : 0));
        for (int i = 0; i < n; ++i) {
            probe.emplace_back([&] {
                std::unique_lock<std::mutex> lock(mu);
                cv.wait(lock, [&] { return release; });
            });
        }
    } catch (const std::system_error&) {
        ok = false;
    } catch (const std::bad_alloc&) {
        ok = false;
    }
    {
        std::lock_guard<std::mutex> lock(mu);
        release = true;
    }
    cv.notify_all();
    for (auto& t : probe) t.join();
    return ok;
}

LoopThreads::LoopThreads(llama_context* ctx, int threads, int threads_batch)
    : ctx_(ctx), threads_(threads), threads_batch_(threads_batch) {
    ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
    ggml_threadpool_params tpp_batch = ggml_threadpool_params_default(threads_batch);
    if (!ggml_threadpool_params_match(&tpp, &tpp_batch)) {
        pool_batch_ = ggml_threadpool_new(&tpp_batch);
        tpp.paused = true;  // as llama.cpp's tools: the batch pool runs first
    }
    pool_ = ggml_threadpool_new(&tpp);
    if (pool_) attach(pool_, pool_batch_, threads_, threads_batch_);
}

void LoopThreads::release() {
    if (current_) llama_detach_threadpool(ctx_);
    if (pool_) ggml_threadpool_free(pool_);
    if (pool_batch_) ggml_threadpool_free(pool_batch_);
    for (auto& [key, e] : extra_) ggml_threadpool_free(e.pool);
    pool_ = pool_batch_ = current_ = current_batch_ = nullptr;
    extra_.clear();
}

void LoopThreads::attach(ggml_threadpool* pool, ggml_threadpool* pool_batch, int n, int n_batch) {
    llama_attach_threadpool(ctx_, pool, pool_batch);
    llama_set_n_threads(ctx_, n, n_batch);
    current_ = pool;
    current_batch_ = pool_batch;
}

ggml_threadpool* LoopThreads::extra_pool(int n, bool quiet) {
    const auto key = std::make_pair(n, quiet);
    if (auto it = extra_.find(key); it != extra_.end()) {
        it->second.used = ++use_tick_;
        return it->second.pool;
    }
    if (extra_.size() >= kMaxExtraPools) {
        // The least recently used one goes; never the one attached now,
        // which the CPU backend still points at until the next decode.
        auto oldest = extra_.end();
        for (auto it = extra_.begin(); it != extra_.end(); ++it) {
            if (it->second.pool == current_) continue;
            if (oldest == extra_.end() || it->second.used < oldest->second.used) oldest = it;
        }
        if (oldest != extra_.end()) {
            ggml_threadpool_free(oldest->second.pool);
            extra_.erase(oldest);
        }
    }
    ggml_threadpool_params p = ggml_threadpool_params_default(n);
    if (quiet) p.poll = 0;
    ggml_threadpool* pool = threads_available(n) ? ggml_threadpool_new(&p) : nullptr;
    if (pool) extra_[key] = {pool, ++use_tick_};
    return pool;
}

void LoopThreads::use(int granted, int n_tokens, bool quiet) {
    if (!pool_) return;  // no pool could be made: llama.cpp's own threads
    const int n = std::max(1, std::min(granted, wanted(n_tokens)));
    quiet = quiet && n > 1;  // one thread has no workers to poll
    if (n == wanted(n_tokens) && !quiet) {
        if (current_ != pool_) {
            park();
            attach(pool_, pool_batch_, threads_, threads_batch_);
        }
        return;
    }
    ggml_threadpool* pool = extra_pool(n, quiet);
    if (!pool) return;  // keeps what is attached
    if (current_ != pool) {
        park();
        attach(pool, nullptr, n, n);
    }
}

void LoopThreads::park() {
    if (current_) ggml_threadpool_pause(current_);
    if (current_batch_) ggml_threadpool_pause(current_batch_);
}

}  // namespace wnl
