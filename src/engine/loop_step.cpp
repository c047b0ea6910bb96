// The batch step of a decode loop: one llama_decode over every running
// request (a token for each generating one, then prompt chunks), then
// sampling and the stop checks, and the end of each request.
#include <algorithm>
#include <new>
#include <stdexcept>

#include "common.h"
#include "engine/decode_loop.h"
#include "engine/log.h"

namespace wnl {

void DecodeLoop::end_idle_requests() {
    for (auto& slot : slots_) {
        if (!slot.req) continue;
        // A cancelled request's token not yet being sampled is taken back;
        // one being sampled is the sampling thread's until it is done.
        if (slot.sampling) {
            if (!slot.req->cancelled || !sampling_->withdraw(slot.job.get())) continue;
            slot.sampling = false;
        }
        if (slot.req->cancelled) {
            finish(slot, Status::runtime_error, "cancelled", "request cancelled");
        } else if (slot.req->stopping.max_tokens == 0) {
            finish(slot, Status::ok, "max_tokens");
        }
    }
}

void DecodeLoop::build_batch() {
    common_batch_clear(batch_);
    int32_t budget = static_cast<int32_t>(n_batch_);
    // One token for every generating request first, so prefill never
    // stalls them for more than one chunk.
    for (auto& slot : slots_) {
        if (!slot.req || !slot.generating() || slot.n_generated == 0 || slot.sampling) continue;
        if (slot.cached.size() + 1 >= ctx_per_seq_) {
            if (!slot.req->memory.context_shifting || !shift_context(slot)) {
                finish(slot, Status::context_full, "context_full",
                       "the conversation filled the context (" + std::to_string(ctx_per_seq_) + " tokens)");
                continue;
            }
        }
        slot.batch_index = batch_.n_tokens;
        common_batch_add(batch_, slot.last_token, static_cast<llama_pos>(slot.cached.size()), {slot.seq}, true);
        slot.cached.push_back(slot.last_token);
        --budget;
    }
    // Then prompt chunks, oldest admission first. Beside other requests a
    // step takes at most prefill_chunk prompt tokens: a step is a gap in
    // every stream's tokens, and one whole prompt (or eight arriving
    // together, as after a model swap) would make it many decode steps
    // long. The oldest prompt is first, so it starts generating soonest.
    std::vector<Slot*> prefill;
    size_t active = 0;
    for (auto& slot : slots_) {
        if (!slot.req) continue;
        ++active;
        if (!slot.generating()) prefill.push_back(&slot);
    }
    if (active > 1 && prefill_chunk_ > 0) budget = std::min(budget, static_cast<int32_t>(prefill_chunk_));
    std::sort(prefill.begin(), prefill.end(), [](Slot* a, Slot* b) { return a->last_used < b->last_used; });
    for (Slot* slot : prefill) {
        if (budget <= 0) break;
        const auto& prompt = slot->req->prompt;
        const size_t n = std::min(prompt.size() - slot->prompt_pos, static_cast<size_t>(budget));
        for (size_t i = 0; i < n; ++i) {
            const size_t pos = slot->prompt_pos + i;
            const bool last = pos + 1 == prompt.size();
            if (last) slot->batch_index = batch_.n_tokens;
            common_batch_add(batch_, prompt[pos], static_cast<llama_pos>(pos), {slot->seq}, last);
            slot->cached.push_back(prompt[pos]);
        }
        slot->prompt_pos += n;
        budget -= static_cast<int32_t>(n);
    }
}

bool DecodeLoop::decode_batch(int32_t* rc) {
    const auto t_ask = Clock::now();
    auto t_decode = t_ask;
    const int n_tokens = batch_.n_tokens;
    const int wanted = threads_->wanted(n_tokens);
    // Other processes may hold some of the CPUs: the governor says on how
    // many threads (and how quietly) to run, the arbiter how many of those
    // other models' loops leave this one.
    const ThreadChoice chosen = governor_ ? governor_->choose(n_tokens, wanted) : ThreadChoice{wanted, false};
    const int ask = std::min(wanted, chosen.width);
    ThreadChoice ran{ask, chosen.quiet};
    {
        if (cpus_ && !marked_busy_) {
            cpus_->set_busy(true);
            marked_busy_ = true;
        }
        CpuTurn turn(cpus_, ask, abort_);
        if (!turn.held()) {
            if (governor_) governor_->discard();
            return false;
        }
        ran.width = turn.threads();
        threads_->use(ran.width, n_tokens, ran.quiet);
        t_decode = Clock::now();
        *rc = llama_decode(ctx_, batch_);
        // Another model waits for the CPUs: park this pool's workers now
        // rather than let them poll on through its turn.
        if (cpus_ && cpus_->others_waiting()) threads_->park();
    }
    const double decode_ms = ms_between(t_decode, Clock::now());
    // A step the arbiter narrowed for another model's loop says nothing
    // about the host.
    if (governor_) govern(decode_ms, *rc == 0 && ran.width == ask);
    publish_step(decode_ms, ms_between(t_ask, t_decode), ran);
    std::lock_guard<std::mutex> lock(mu_);
    return !stopping_;
}

// The step's figures and the KV each slot now holds, for status reports.
void DecodeLoop::publish_step(double decode_ms, double wait_ms, ThreadChoice ran) {
    int32_t busy = embed_batch_requests_;
    uint64_t used = 0;
    for (const auto& slot : slots_) {
        busy += slot.req ? 1 : 0;
        used += slot.cached.size();
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.decode_call(batch_.n_tokens, busy, decode_ms);
    stats_.counters.cpu_wait_ms += wait_ms;
    kv_used_ = used;
    last_step_ = ran;
    last_step_.quiet = ran.quiet && ran.width > 1;
    if (governor_) {
        governed_ = governor_->current();
        governor_stats_ = governor_->stats();
    }
    for (size_t i = 0; i < slots_.size(); ++i) resident_[i] = slots_[i].cached.empty() ? "" : slots_[i].session;
}

// Every request with tokens in the failed batch ends; their sequences are
// cleared by finish().
void DecodeLoop::fail_batch(const std::string& why) {
    for (auto& slot : slots_) {
        if (slot.req && (slot.batch_index >= 0 || !slot.generating())) {
            finish(slot, Status::runtime_error, "error", why);
        }
    }
}

template <class F>
void DecodeLoop::guard_slot(Slot& slot, F&& step) noexcept {
    try {
        step();
    } catch (const std::bad_alloc&) {
        if (slot.req && !slot.sampling) finish(slot, Status::missing_memory, "error", "out of memory while sampling");
    } catch (const std::exception& e) {
        // llama.cpp's sampler and grammar throw on states a guest's settings
        // can reach; the request ends, the loop and the others go on.
        if (!slot.req || slot.sampling) return;
        std::string why;
        try {
            why = std::string("sampling failed: ") + e.what();
            log(LogLevel::error, "scheduler", "request failed while sampling",
                {{"session", slot.req->session_key}, {"error", why}});
        } catch (...) {
        }
        finish(slot, Status::runtime_error, "error", why);
    } catch (...) {
        if (slot.req && !slot.sampling) finish(slot, Status::runtime_error, "error", "sampling failed");
    }
}

void DecodeLoop::sample_batch() {
    for (auto& slot : slots_) {
        if (!slot.req || slot.batch_index < 0) continue;
        guard_slot(slot, [&] {
            if (!offload(slot)) after_decode(slot);
        });
    }
}

bool DecodeLoop::offload(Slot& slot) {
    if (!sampling_ || !slot.sampler->has_grammar()) return false;
    const float* row = llama_get_logits_ith(ctx_, slot.batch_index);
    if (!row) return false;
    SampleJob& job = *slot.job;
    job.logits.assign(row, row + llama_vocab_n_tokens(model_->vocab()));
    job.sampler = slot.sampler.get();
    job.token = LLAMA_TOKEN_NULL;
    job.nothing_allowed = false;
    job.status = Status::ok;
    job.error.clear();
    if (!sampling_->submit(&job)) return false;
    slot.batch_index = -1;
    slot.sampling = true;
    return true;
}

bool DecodeLoop::any_sampling() const {
    for (const auto& slot : slots_) {
        if (slot.sampling) return true;
    }
    return false;
}

void DecodeLoop::collect_samples() {
    for (auto& slot : slots_) {
        if (!slot.sampling || !slot.job->done) continue;
        slot.sampling = false;
        SampleJob& job = *slot.job;
        if (job.status != Status::ok) {
            finish(slot, job.status, "error", job.error.empty() ? "sampling failed" : job.error);
            continue;
        }
        guard_slot(slot, [&] { take_token(slot, job.token, job.nothing_allowed); });
    }
}

void DecodeLoop::wait_for_samples() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] {
        if (stopping_ || queue_->size() > 0 || !forget_.empty()) return true;
        for (const auto& slot : slots_) {
            if (slot.sampling && slot.job->done) return true;
        }
        return false;
    });
}

void DecodeLoop::after_decode(Slot& slot) {
    Request& r = *slot.req;
    const int32_t idx = slot.batch_index;
    slot.batch_index = -1;
    llama_token tok = slot.greedy ? greedy_token(ctx_, model_->get(), idx, r.stopping.ignore_eos) : LLAMA_TOKEN_NULL;
    bool nothing_allowed = false;
    if (tok == LLAMA_TOKEN_NULL) {
        const float* row = llama_get_logits_ith(ctx_, idx);
        if (!row) throw std::runtime_error("llama.cpp has no logits for the request's batch row");
        tok = slot.sampler->sample(row, &nothing_allowed);
    }
    // A token nothing allowed is arbitrary: accepting it would make
    // llama.cpp's grammar throw ("empty grammar stack") or abort (an end of
    // generation the grammar does not allow).
    if (!nothing_allowed) slot.sampler->accept(tok, true);
    take_token(slot, tok, nothing_allowed);
}

void DecodeLoop::take_token(Slot& slot, llama_token tok, bool nothing_allowed) {
    Request& r = *slot.req;
    auto now = Clock::now();
    if (nothing_allowed) {
        // The grammar admits no token the rest of the chain allows: it is
        // complete and end of generation is forbidden (ignore_eos, or a
        // bias), or nothing the model can emit continues it. The request
        // ends with its text (docs/abi.md, stop_reason "grammar").
        if (slot.sampler->has_grammar()) {
            finish(slot, Status::ok, "grammar");
        } else {
            finish(slot, Status::runtime_error, "error", "the sampler found no token to pick");
        }
        return;
    }
    if (slot.n_generated == 0) slot.t_first_token = now;

    if (!r.stopping.ignore_eos && llama_vocab_is_eog(model_->vocab(), tok)) {
        finish(slot, Status::ok, "eos");
        return;
    }
    slot.n_generated++;
    slot.last_token = tok;
    const bool hit_stop = slot.stop.append(model_->token_to_piece(tok));
    if (r.on_text) {
        size_t safe = slot.stop.safe_length();
        if (safe > slot.shown) {
            r.on_text(std::string_view(slot.stop.text()).substr(slot.shown, safe - slot.shown));
            slot.shown = safe;
        }
    }
    if (hit_stop) {
        finish(slot, Status::ok, "stop_string");
    } else if (r.stopping.max_tokens >= 0 && slot.n_generated >= r.stopping.max_tokens) {
        finish(slot, Status::ok, "max_tokens");
    } else if (r.stopping.max_time_ms > 0 &&
               ms_between(slot.t_admit, now) >= static_cast<double>(r.stopping.max_time_ms)) {
        finish(slot, Status::ok, "time_limit");
    }
}

void DecodeLoop::finish(Slot& slot, Status status, const std::string& stop_reason, const std::string& error) noexcept {
    auto now = Clock::now();
    Request& r = *slot.req;
    RequestResult res;
    const bool had_token = slot.n_generated > 0;
    try {
        res.status = status;
        res.error = error;
        res.stop_reason = stop_reason;
        res.text = slot.stop.text();
        res.input_tokens = static_cast<int32_t>(r.prompt.size());
        res.cached_tokens = slot.n_cached;
        res.output_tokens = slot.n_generated;
        res.queue_ms = ms_between(r.enqueued_at, slot.t_admit);
        res.prefill_ms = ms_between(slot.t_admit, had_token ? slot.t_first_token : now);
        res.decode_ms = had_token ? ms_between(slot.t_first_token, now) : 0.0;
        if (r.on_text && slot.shown < res.text.size()) {
            r.on_text(std::string_view(res.text).substr(slot.shown));
        }
    } catch (...) {
        // Out of memory (the text, the callback's copy): the caller still
        // gets an answer, and the KV is forgotten below.
        res = RequestResult{};
        res.status = status = Status::missing_memory;
        res.stop_reason = "error";
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        busy_slots_--;
        try {
            stats_.request_finished(res, ms_between(r.enqueued_at, now),
                                    had_token ? ms_between(r.enqueued_at, slot.t_first_token) : 0.0);
        } catch (...) {
        }
    }
    // A request cancelled while generating (a stream its guest ended early)
    // leaves whole KV: its prompt and the tokens decoded since, which the
    // session's next turn starts with. Any other failure may leave a
    // half-decoded prompt: forget it.
    const bool whole = status == Status::ok || status == Status::context_full ||
                       (stop_reason == "cancelled" && slot.generating());
    if (!whole) {
        llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
        slot.cached.clear();
    }
    if (slot.forget_session) {
        slot.session.clear();
        slot.kv_sink.reset();
    }
    slot.forget_session = false;
    // Freed with the request, on the caller's thread (a grammar's teardown
    // is the guest's cost, not the loop's).
    r.sampler = std::move(slot.sampler);
    auto req = std::move(slot.req);
    slot.req.reset();
    req->finish(std::move(res));
}

}  // namespace wnl
