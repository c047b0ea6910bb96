// Scheduling inside a decode loop: queued requests go into free slots, each
// to the slot whose KV it can reuse the most of, and start there.
#include <algorithm>
#include <new>

#include "engine/decode_loop.h"
#include "engine/log.h"

namespace wnl {

void DecodeLoop::admit_waiting(Clock::time_point now) {
    std::vector<std::shared_ptr<Request>> expired;
    std::vector<std::shared_ptr<Request>> admitted;
    admitted.reserve(slots_.size());  // nothing popped is dropped for want of room
    {
        std::lock_guard<std::mutex> lock(mu_);
        expired = queue_->take_expired(now);
        for (auto& slot : slots_) {
            if (slot.req || queue_->size() == 0) continue;
            admitted.push_back(queue_->pop(now));
            stats_.counters.admitted++;
            stats_.queue_wait_ms.add(ms_between(admitted.back()->enqueued_at, now));
            busy_slots_++;
        }
        for (auto& r : expired) {
            if (!r->cancelled) stats_.counters.timed_out++;
            else stats_.counters.cancelled++;
        }
    }
    end_expired(expired, now);
    for (auto& req : admitted) {
        // Placing parks and restores session state (allocations): a failure
        // ends this request alone.
        Slot* slot = nullptr;
        try {
            slot = &place(*req);
            start(*slot, req, now);
        } catch (const std::exception& e) {
            const Status st = dynamic_cast<const std::bad_alloc*>(&e) ? Status::missing_memory : Status::runtime_error;
            const std::string why = std::string("admitting the request failed: ") + e.what();
            log(LogLevel::error, "scheduler", "request failed at admission", {{"session", req->session_key}, {"error", why}});
            if (slot && slot->req == req) {
                finish(*slot, st, "error", why);
            } else {
                {
                    std::lock_guard<std::mutex> lock(mu_);
                    busy_slots_--;
                }
                finish_unplaced(*req, st, "error", why, now);
            }
        }
    }
    check_rss();
}

void finish_unplaced(Request& r, Status status, const char* stop_reason, const std::string& why,
                     Clock::time_point now) noexcept {
    RequestResult res;
    try {
        res.status = status;
        res.stop_reason = stop_reason;
        res.error = why;
        res.queue_ms = ms_between(r.enqueued_at, now);
    } catch (...) {
        res = RequestResult{};
        res.status = Status::missing_memory;
    }
    r.finish(std::move(res));
}

void DecodeLoop::end_expired(std::vector<std::shared_ptr<Request>>& expired, Clock::time_point now) {
    for (auto& r : expired) {
        if (r->cancelled) {
            finish_unplaced(*r, Status::runtime_error, "cancelled", "request cancelled while queued", now);
        } else {
            finish_unplaced(*r, Status::timeout, "timeout", "request timed out in the queue", now);
        }
    }
}

// The free slot whose cache shares the longest prefix with the prompt, so a
// session's next turn reuses its KV; or, when the session's own state in the
// host cache (or read back from its session store) covers more of the
// prompt than any slot does, the least recently used free slot with that
// state restored into it (its owner's state is parked in turn). A slot's
// tokens count as a prefix only for the tenant that wrote them: another
// tenant's KV would tell it what was said.
DecodeLoop::Slot& DecodeLoop::place(Request& req) {
    Slot* best = nullptr;
    Slot* oldest = nullptr;
    size_t best_common = 0;
    for (auto& slot : slots_) {
        if (slot.req) continue;
        const size_t common = slot.kv_tenant == req.kv_tenant ? common_prefix(slot.cached, req.prompt) : 0;
        if (!best || common > best_common || (common == best_common && slot.last_used < best->last_used)) {
            best = &slot;
            best_common = common;
        }
        if (!oldest || slot.last_used < oldest->last_used) oldest = &slot;
    }
    const CachedState* saved = cache_->find(req.session_key);
    if (saved && saved->kv_tenant != req.kv_tenant) saved = nullptr;  // session keys are per tenant already
    const bool reuse = req.memory.cache_prompt;
    const size_t saved_common = saved && reuse ? common_prefix(saved->tokens, req.prompt) : 0;
    const size_t stored_common = req.stored_data && reuse ? common_prefix(req.stored_tokens, req.prompt) : 0;
    if (std::max(saved_common, stored_common) > best_common) {
        park(*oldest, req.session_key);
        const bool from_store = stored_common > saved_common;
        CachedState state;
        if (from_store) {
            cache_->erase(req.session_key);  // covers less of the prompt
            // Read for this session of this namespace (its file names
            // both): the request's own tenant.
            state.key = req.session_key;
            state.kv_tenant = req.kv_tenant;
            state.tokens = std::move(req.stored_tokens);
            state.data = std::move(req.stored_data);
            state.sink = req.kv_sink;
            state.on_disk = true;
        } else {
            state = cache_->take(req.session_key);
        }
        restore(*oldest, std::move(state), from_store);
        // An older copy of the session's KV in another slot must not be
        // parked over the state just restored.
        for (auto& slot : slots_) {
            if (&slot != oldest && !slot.req && slot.session == req.session_key) {
                slot.session.clear();
                slot.kv_sink.reset();
            }
        }
        req.stored_data.reset();
        return *oldest;
    }
    req.stored_data.reset();  // what the loop holds covers as much
    req.stored_tokens.clear();
    if (saved && best->session == req.session_key) cache_->erase(req.session_key);
    park(*best, req.session_key);
    return *best;
}

void DecodeLoop::start(Slot& slot, std::shared_ptr<Request> req, Clock::time_point now) {
    slot.req = std::move(req);
    Request& r = *slot.req;
    slot.t_admit = now;
    slot.last_used = ++use_tick_;
    slot.n_generated = 0;
    slot.n_cached = 0;
    slot.shown = 0;
    slot.batch_index = -1;
    slot.stop = std::move(r.stop);  // compiled by the caller
    slot.sampler = std::move(r.sampler);  // built by the caller, prompt accepted
    slot.greedy = r.greedy;

    if (r.prompt.empty()) {
        finish(slot, Status::invalid_argument, "error", "empty prompt");
        return;
    }
    if (r.prompt.size() >= ctx_per_seq_) {
        finish(slot, Status::prompt_too_long, "error",
               "prompt is " + std::to_string(r.prompt.size()) + " tokens; the context holds " +
                   std::to_string(ctx_per_seq_));
        return;
    }
    if (!slot.sampler) {
        finish(slot, Status::invalid_argument, "error", "the request has no sampler");
        return;
    }
    const size_t common = reuse_prefix(slot, r);
    slot.session = r.session_key;
    slot.kv_tenant = r.kv_tenant;
    slot.kv_sink = r.kv_sink;
    slot.prompt_pos = common;
    slot.n_cached = static_cast<int32_t>(common);
}

}  // namespace wnl
