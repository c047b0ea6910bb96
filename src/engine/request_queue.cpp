#include "engine/request_queue.h"

#include <algorithm>
#include <tuple>

namespace wnl {

bool RequestQueue::push(std::shared_ptr<Request> r, Clock::time_point now, size_t room) {
    if (entries_.size() >= s_.capacity + room) return false;
    r->enqueued_at = now;
    entries_.push_back({std::move(r), next_order_++});
    return true;
}

bool RequestQueue::over_share(const Request& r, size_t room) const {
    if (r.queue_share >= 1.0 || r.tenant.empty()) return false;
    const auto share = static_cast<size_t>(r.queue_share * static_cast<double>(s_.capacity));
    const size_t allowed = std::max<size_t>(1, share) + room;
    const auto held = static_cast<size_t>(
        std::count_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.req->tenant == r.tenant; }));
    return held >= allowed;
}

int64_t RequestQueue::effective_level(const Entry& e, Clock::time_point now) const {
    int64_t level = static_cast<int64_t>(e.req->priority);
    if (s_.aging_ms > 0) {
        auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.req->enqueued_at).count();
        level -= waited / s_.aging_ms;
    }
    // High is the ceiling: a high request that waits does not climb past
    // the low ones that aged up to it.
    return std::max<int64_t>(level, 0);
}

std::shared_ptr<Request> RequestQueue::pop(Clock::time_point now) {
    if (entries_.empty()) return nullptr;
    size_t best = 0;
    if (s_.priority_enabled) {
        // Lowest effective level, then the session served longest ago (when
        // fair), then the oldest.
        auto key = [&](const Entry& e) {
            const int64_t level = effective_level(e, now);
            uint64_t served = 0;
            // Fairness orders requests at their own level; one that aging has
            // promoted competes on age alone, or it could wait forever behind
            // sessions never served before.
            const bool promoted = level < static_cast<int64_t>(e.req->priority);
            if (s_.fair && !promoted) {
                auto it = last_admitted_.find(e.req->session_key);
                if (it != last_admitted_.end()) served = it->second;
            }
            return std::make_tuple(level, served, e.order);
        };
        auto best_key = key(entries_[0]);
        for (size_t i = 1; i < entries_.size(); ++i) {
            auto k = key(entries_[i]);
            if (k < best_key) {
                best_key = k;
                best = i;
            }
        }
    }
    auto req = std::move(entries_[best].req);
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(best));
    if (s_.fair) {
        last_admitted_[req->session_key] = ++admissions_;
        if (last_admitted_.size() > 4096) {
            // Forget sessions served long ago; they compare as never served.
            for (auto it = last_admitted_.begin(); it != last_admitted_.end();) {
                it = it->second + 2048 < admissions_ ? last_admitted_.erase(it) : std::next(it);
            }
        }
    }
    return req;
}

std::vector<std::shared_ptr<Request>> RequestQueue::take_expired(Clock::time_point now) {
    std::vector<std::shared_ptr<Request>> out;
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->req->cancelled.load() || it->req->deadline <= now) {
            out.push_back(std::move(it->req));
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

std::vector<std::shared_ptr<Request>> RequestQueue::take_all() {
    std::vector<std::shared_ptr<Request>> out;
    for (auto& e : entries_) out.push_back(std::move(e.req));
    entries_.clear();
    return out;
}

std::vector<std::shared_ptr<Request>> RequestQueue::take_owned_by(const void* owner) {
    std::vector<std::shared_ptr<Request>> out;
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->req->owner == owner) {
            out.push_back(std::move(it->req));
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

std::array<size_t, kPriorityCount> RequestQueue::depth_by_priority() const {
    std::array<size_t, kPriorityCount> d{};
    for (const auto& e : entries_) d[static_cast<size_t>(e.req->priority)]++;
    return d;
}

std::optional<Clock::time_point> RequestQueue::next_deadline() const {
    std::optional<Clock::time_point> best;
    for (const auto& e : entries_) {
        if (e.req->deadline != Clock::time_point::max() && (!best || e.req->deadline < *best)) best = e.req->deadline;
    }
    return best;
}

}  // namespace wnl
