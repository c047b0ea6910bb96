// Requests waiting for a free slot: priority with aging, optional fairness
// across sessions, or plain FIFO.
//
// Aging: every `aging_ms` a request waits lifts it one priority level, so a
// low request enqueued at t is admitted by the first admission after
// t + 2 * aging_ms even under an endless stream of high ones (ties go to the
// older request).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/request.h"

namespace wnl {

struct QueueSettings {
    size_t capacity = 256;
    bool priority_enabled = true;
    bool fair = true;
    int64_t aging_ms = 2000;
};

class RequestQueue {
public:
    explicit RequestQueue(QueueSettings s) : s_(s) {}

    // False when the queue is at capacity. `room` extra entries are allowed
    // for requests that a free slot will take at once.
    bool push(std::shared_ptr<Request> r, Clock::time_point now, size_t room = 0);
    // Whether r's tenant (backend context) already holds its share of the
    // queue: max(1, queue_share x capacity) waiting, plus the same `room`.
    // One tenant cannot fill the queue that other tenants wait in.
    bool over_share(const Request& r, size_t room = 0) const;
    // The request to admit next, or null when empty.
    std::shared_ptr<Request> pop(Clock::time_point now);
    // Removes and returns requests that are cancelled or past their deadline.
    std::vector<std::shared_ptr<Request>> take_expired(Clock::time_point now);
    std::vector<std::shared_ptr<Request>> take_all();
    // Removes and returns the requests built for `owner` (Request::owner).
    std::vector<std::shared_ptr<Request>> take_owned_by(const void* owner);

    size_t size() const { return entries_.size(); }
    std::array<size_t, kPriorityCount> depth_by_priority() const;
    std::optional<Clock::time_point> next_deadline() const;
    const QueueSettings& settings() const { return s_; }

private:
    struct Entry {
        std::shared_ptr<Request> req;
        uint64_t order;
    };
    int64_t effective_level(const Entry& e, Clock::time_point now) const;

    QueueSettings s_;
    std::deque<Entry> entries_;
    uint64_t next_order_ = 0;
    uint64_t admissions_ = 0;
    std::unordered_map<std::string, uint64_t> last_admitted_;  // session -> admission tick
};

}  // namespace wnl
