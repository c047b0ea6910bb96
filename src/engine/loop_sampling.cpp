#include "engine/loop_sampling.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <new>
#include <system_error>

#include "engine/log.h"

namespace wnl {

void run_sample_job(SampleJob& job) noexcept {
    try {
        job.token = job.sampler->sample(job.logits.data(), &job.nothing_allowed);
        if (!job.nothing_allowed) job.sampler->accept(job.token, true);
    } catch (const std::bad_alloc&) {
        job.status = Status::missing_memory;
    } catch (const std::exception& e) {
        job.status = Status::runtime_error;
        try {
            job.error = std::string("sampling failed: ") + e.what();
        } catch (...) {
        }
    } catch (...) {
        job.status = Status::runtime_error;
    }
}

SampleWorker::~SampleWorker() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool SampleWorker::submit(SampleJob* job) {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_) return false;
    if (!thread_.joinable()) {
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error& e) {
            failed_ = true;
            log(LogLevel::warn, "scheduler", "cannot start the sampling thread; grammars are sampled on the loop",
                {{"error", e.what()}});
            return false;
        }
    }
    job->done = false;
    jobs_.push_back(job);
    in_flight_++;
    cv_.notify_all();
    return true;
}

bool SampleWorker::withdraw(SampleJob* job) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
        if (*it == job) {
            jobs_.erase(it);
            in_flight_--;
            cv_.notify_all();
            return true;
        }
    }
    return false;
}

void SampleWorker::drain() {
    std::unique_lock<std::mutex> lock(mu_);
    in_flight_ -= jobs_.size();
    jobs_.clear();
    cv_.wait(lock, [&] { return in_flight_ == 0; });
}

void SampleWorker::run() {
    // Linux: a thread's nice value is its own (setpriority on its tid).
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, nothing left
        SampleJob* job = jobs_.front();
        jobs_.pop_front();
        lock.unlock();
        run_sample_job(*job);
        job->done = true;
        on_done_();
        lock.lock();
        in_flight_--;
        cv_.notify_all();
    }
}

}  // namespace wnl
