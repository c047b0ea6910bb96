#include "engine/kv_writer.h"

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

bool KvWriter::flush(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t target = submitted_;
    return cv_.wait_for(lock, timeout, [&] { return finished_ >= target || stopping_; });
}

uint64_t KvWriter::queued_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bytes_;
}

void KvWriter::loop() {
    // Background work: on Linux a thread has its own nice value, and this
    // one yields the CPUs to the decode threads (whose tokens a guest waits
    // for) while they run; between decode steps it has them all.
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    errno = 0;
    const int nice_now = ::getpriority(PRIO_PROCESS, tid);
    if (errno == 0) ::setpriority(PRIO_PROCESS, tid, std::min(19, nice_now + 10));
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
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
            finished_ = job.seq;
        }
        cv_.notify_all();
    }
}

}  // namespace wnl
