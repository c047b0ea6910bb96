// Sampling off the decode loop's thread, for requests whose sampling a guest
// can make arbitrarily expensive: a grammar checks every candidate token
// against every live parse stack, and a guest picks the grammar (64 KiB of
// alternatives sharing a prefix cost seconds a token over a 49K vocabulary).
// Such a request's logits row is copied to its slot and sampled here while
// the loop decodes everyone else; the slot skips the batches until its token
// is ready. The thread runs at the lowest CPU priority (nice 19): ggml's
// decode threads spin at barriers, so a worker of equal priority taking one
// of their cores would slow every request, not just the one it samples.
// Alone on the machine it runs at full speed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/sampler.h"
#include "engine/status.h"

namespace wnl {

// One token's sampling for one slot. The loop fills sampler and logits and
// does not touch them (or the result) until done is set.
struct SampleJob {
    Sampler* sampler = nullptr;
    std::vector<float> logits;
    // Results: the token (sampled and accepted), or nothing_allowed (not
    // accepted), or a failure (status, error) from llama.cpp.
    llama_token token = LLAMA_TOKEN_NULL;
    bool nothing_allowed = false;
    Status status = Status::ok;
    std::string error;
    std::atomic<bool> done{false};
};

class SampleWorker {
public:
    // on_done runs on the worker after each job, to wake the loop.
    explicit SampleWorker(std::function<void()> on_done) : on_done_(std::move(on_done)) {}
    ~SampleWorker();
    SampleWorker(const SampleWorker&) = delete;
    SampleWorker& operator=(const SampleWorker&) = delete;

    // Queues the job; false when the worker thread cannot be started (the
    // caller then samples inline).
    bool submit(SampleJob* job);
    // Takes the job back if it has not started; true when it was (the job
    // is then not done and will not run).
    bool withdraw(SampleJob* job);
    // Drops every job not started yet, then waits for the running one.
    void drain();

private:
    void run();

    std::function<void()> on_done_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<SampleJob*> jobs_;
    size_t in_flight_ = 0;  // queued or running
    bool stop_ = false;
    bool failed_ = false;  // the thread could not be started
    std::thread thread_;
};

// Runs one job: sample, then accept unless nothing was allowed. Exceptions
// from llama.cpp become the job's status. Never throws.
void run_sample_job(SampleJob& job) noexcept;

}  // namespace wnl
