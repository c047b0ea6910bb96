#include "engine/loop_threads.h"

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
    for (auto& [n, pool] : narrow_) ggml_threadpool_free(pool);
    pool_ = pool_batch_ = current_ = current_batch_ = nullptr;
    narrow_.clear();
}

void LoopThreads::attach(ggml_threadpool* pool, ggml_threadpool* pool_batch, int n, int n_batch) {
    llama_attach_threadpool(ctx_, pool, pool_batch);
    llama_set_n_threads(ctx_, n, n_batch);
    current_ = pool;
    current_batch_ = pool_batch;
}

void LoopThreads::use(int granted, int n_tokens) {
    if (!pool_) return;  // no pool could be made: llama.cpp's own threads
    if (granted >= wanted(n_tokens)) {
        if (current_ != pool_) {
            park();
            attach(pool_, pool_batch_, threads_, threads_batch_);
        }
        return;
    }
    ggml_threadpool*& narrow = narrow_[granted];
    if (!narrow) {
        ggml_threadpool_params p = ggml_threadpool_params_default(granted);
        if (threads_available(granted)) narrow = ggml_threadpool_new(&p);
        if (!narrow) {
            narrow_.erase(granted);
            return;
        }
    }
    if (current_ != narrow) {
        park();
        attach(narrow, nullptr, granted, granted);
    }
}

void LoopThreads::park() {
    if (current_) ggml_threadpool_pause(current_);
    if (current_batch_) ggml_threadpool_pause(current_batch_);
}

}  // namespace wnl
