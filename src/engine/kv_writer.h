// The session store's writer thread: a decode loop hands it a parked
// session's KV state and goes on, so that no loop ever waits for the disk.
// Bounded by the bytes its jobs hold; past the bound a job is refused (the
// state is then not written, which costs a prefill later, never a turn).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

namespace wnl {

class KvWriter {
public:
    explicit KvWriter(uint64_t max_queued_bytes);
    // Finishes the job that is running; the ones still queued are dropped.
    ~KvWriter();
    KvWriter(const KvWriter&) = delete;
    KvWriter& operator=(const KvWriter&) = delete;

    // Queues the job, which holds `bytes` until it has run; false (and the
    // job is destroyed unrun) when that would pass the bound, unless the
    // queue is empty.
    bool submit(uint64_t bytes, std::function<void()> job);
    // Waits until every job submitted before the call has run, running the
    // ones still queued on the calling thread; false if that took longer
    // than `timeout`.
    bool flush(std::chrono::milliseconds timeout);
    uint64_t queued_bytes() const;

private:
    struct Job {
        uint64_t bytes;
        uint64_t seq;
        std::function<void()> run;
    };
    void loop();
    void run(Job& job);

    const uint64_t max_bytes_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    uint64_t bytes_ = 0;  // held by queued and running jobs
    uint64_t submitted_ = 0;
    std::set<uint64_t> running_;  // seq of the jobs being run (the writer's, a flushing caller's)
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace wnl
