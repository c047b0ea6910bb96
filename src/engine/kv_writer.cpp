#include "engine/kv_writer.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "engine/log.h"

namespace wnl {

KvWriter::KvWriter(uint64_t max_queued_bytes) : max_bytes_(max_queued_bytes) {
    thread_ = std::thread([this] { loop(); });
}

KvWriter::~KvWriter() {
    std::deque<Job> dropped;
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
        dropped.swap(jobs_);
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (!dropped.empty()) {
        log(LogLevel::info, "store", "KV writes dropped at close", {{"jobs", dropped.size()}});
    }
}

bool KvWriter::submit(uint64_t bytes, std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        // One job of any size when nothing waits: a state larger than the
        // bound can still be written, alone.
        if (stopping_ || (bytes_ > 0 && bytes_ + bytes > max_bytes_)) return false;
        bytes_ += bytes;
        jobs_.push_back({bytes, ++submitted_, std::move(job)});
    }
    cv_.notify_all();
    return true;
}

// The writer thread may get no CPU while the host is busy (SCHED_IDLE), so
// what is still queued is written here, at the caller's priority; the
// caller waits anyway.
bool KvWriter::flush(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t target = submitted_;
    while (!stopping_ && !jobs_.empty() && jobs_.front().seq <= target &&
           std::chrono::steady_clock::now() < deadline) {
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        running_.insert(job.seq);
        lock.unlock();
        run(job);
        lock.lock();
    }
    return cv_.wait_until(lock, deadline, [&] {
        if (stopping_) return true;
        const bool queued = !jobs_.empty() && jobs_.front().seq <= target;
        const bool running = !running_.empty() && *running_.begin() <= target;
        return !queued && !running;
    });
}

// Runs a job taken off the queue (and entered in running_) on this thread.
void KvWriter::run(Job& job) {
    try {
        job.run();
    } catch (const std::exception& e) {
        log(LogLevel::error, "store", "KV write failed", {{"error", e.what()}});
    } catch (...) {
        log(LogLevel::error, "store", "KV write failed");
    }
    job.run = nullptr;  // its buffers go before the bytes are given back
    {
        std::lock_guard<std::mutex> lock(mu_);
        bytes_ -= job.bytes;
        running_.erase(job.seq);
    }
    cv_.notify_all();
}

uint64_t KvWriter::queued_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bytes_;
}

void KvWriter::loop() {
    // Background work: it yields the CPUs to the decode threads (whose
    // tokens a guest waits for) while they run; between decode steps it has
    // them all. SCHED_IDLE, not a nice value: ggml's workers meet at a
    // barrier after every op, so a writer that takes even a tenth of one
    // CPU from one of them stalls them all (TTFT per turn 1.14x with nice
    // +10 in bench/durable). On Linux the policy is this thread's own.
    sched_param idle{};
    if (::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &idle) != 0) {
        const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
        errno = 0;
        const int nice_now = ::getpriority(PRIO_PROCESS, tid);
        if (errno == 0) ::setpriority(PRIO_PROCESS, tid, std::min(19, nice_now + 10));
    }
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
            running_.insert(job.seq);
        }
        run(job);
    }
}

}  // namespace wnl
