// One generation request, handed from a caller's thread to a model's decode
// loop. The caller blocks in wait(); the loop fills in the result.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.h"
#include "engine/embed_job.h"
#include "engine/sampler.h"
#include "engine/kv_sink.h"
#include "engine/status.h"
#include "engine/stop_matcher.h"
#include "llama.h"

namespace wnl {

using Clock = std::chrono::steady_clock;

struct RequestResult {
    Status status = Status::ok;
    std::string error;  // why, when status is not ok
    std::string text;
    // eos | stop_string | max_tokens | time_limit | grammar | context_full | cancelled | timeout | error
    std::string stop_reason;
    int32_t input_tokens = 0;  // prompt tokens
    int32_t cached_tokens = 0;  // prompt tokens already in the KV cache
    int32_t output_tokens = 0;
    double queue_ms = 0;
    double prefill_ms = 0;
    double decode_ms = 0;
    // Internal, never seen by a caller's caller: the request was still
    // queued when a swap replaced its graph's model, and was handed back
    // unstarted so that its turn starts again on the new model.
    bool moved = false;
};

struct Request {
    // What to run.
    std::vector<llama_token> prompt;
    SamplingConfig sampling;
    StoppingConfig stopping;
    MemoryConfig memory;
    Priority priority = Priority::normal;
    Clock::time_point deadline = Clock::time_point::max();  // to be admitted by
    std::string session_key;  // for fair scheduling and KV affinity
    // The graph's model it was built for (a GraphModel): a swap takes that
    // model's queued requests back by it (DecodeLoop::take_queued).
    const void* owner = nullptr;
    // Handed back by a swap and submitted again: it was within a queue's
    // capacity once and is not refused for it again.
    bool resubmitted = false;
    std::string tenant;  // the backend context: its share of the queue
    // Whose KV this request may reuse as a prefix: its own tenant's, or a
    // name several tenants share (share_kv "process").
    std::string kv_tenant;
    double queue_share = 1.0;  // the share of the queue its tenant may hold waiting
    int32_t keep_prefix = 0;  // prompt tokens a context shift keeps (the system prompt)
    // Called on the decode thread with text that is safe to show (no partial
    // stop string, whole UTF-8 characters). Optional.
    std::function<void(std::string_view)> on_text;
    // Set on an embedding graph's requests instead of a prompt (loop_embed.cpp).
    std::shared_ptr<EmbedJob> embed;
    // Built by the caller before submit (make_sampler, with the prompt
    // already accepted; the stop strings compiled), so that the decode loop
    // never spends a guest's setup time. The loop hands the sampler back at
    // the end, to be freed on the caller's thread with the request.
    SamplerPtr sampler;
    bool greedy = false;  // is_plain_greedy(sampling)
    bool has_grammar = false;  // grammar or json_schema
    StopMatcher stop;
    // A session kept in a session store (docs/sessions.md): where its KV
    // state goes when it leaves the loop's memory, and the state read back
    // from the store for this turn, if any (restored when it covers more of
    // the prompt than what the loop has). Optional.
    std::shared_ptr<KvSink> kv_sink;
    std::vector<llama_token> stored_tokens;
    std::shared_ptr<const std::vector<uint8_t>> stored_data;

    // Set by anyone; the loop stops the request within one decode step.
    std::atomic<bool> cancelled{false};
    Clock::time_point enqueued_at{};

    void finish(RequestResult r) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            result_ = std::move(r);
            done_ = true;
        }
        cv_.notify_all();
    }
    const RequestResult& wait() {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return done_; });
        return result_;
    }
    bool done() const {
        std::lock_guard<std::mutex> lock(mu_);
        return done_;
    }

    // Streaming (on_text set to push_text): the pieces of text the loop has
    // produced and the caller has not taken yet, one per push (a token's
    // worth, or what a held-back stop-string prefix released).
    void push_text(std::string_view text) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            unread_.emplace_back(text);
        }
        cv_.notify_all();
    }
    // Waits for the next piece or the end; false at the end with none left.
    // finish() comes after the loop's last push_text, so nothing is missed.
    bool take_text(std::string* out) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !unread_.empty() || done_; });
        if (unread_.empty()) return false;
        *out = std::move(unread_.front());
        unread_.pop_front();
        return true;
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    RequestResult result_;
    std::deque<std::string> unread_;
};

}  // namespace wnl
