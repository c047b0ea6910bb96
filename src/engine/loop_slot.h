// One sequence of a decode loop's llama_context and the request using it:
// what its KV holds (`cached`, `session`), and the running request's
// sampler, stop matcher and progress. Belongs to the loop thread alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/loop_sampling.h"
#include "engine/kv_sink.h"
#include "engine/request.h"
#include "engine/sampler.h"
#include "engine/stop_matcher.h"
#include "llama.h"

namespace wnl {

struct LoopSlot {
    llama_seq_id seq = 0;
    std::shared_ptr<Request> req;
    std::vector<llama_token> cached;  // tokens whose KV this sequence holds
    size_t prompt_pos = 0;  // prompt tokens decoded so far
    int32_t batch_index = -1;  // row of this slot's logits in the batch, or -1
    llama_token last_token = 0;
    SamplerPtr sampler;
    bool greedy = false;  // is_plain_greedy: argmax, no candidate list
    // A grammar request's token being sampled off the loop (loop_sampling.h):
    // while set, the worker owns `sampler` and the job, and the slot takes no
    // batch token.
    bool sampling = false;
    std::unique_ptr<SampleJob> job = std::make_unique<SampleJob>();
    StopMatcher stop;
    size_t shown = 0;  // bytes of text passed to on_text
    int32_t n_generated = 0;
    int32_t n_cached = 0;
    Clock::time_point t_admit, t_first_token;
    uint64_t last_used = 0;
    std::string session;  // whose tokens `cached` holds
    // The session was forgotten while this slot's request ran: once it ends
    // its KV is nobody's to keep (never parked for the session).
    bool forget_session = false;
    std::string kv_tenant;  // the tenant that wrote them: a prefix for it alone
    std::shared_ptr<KvSink> kv_sink;  // where that session's state goes when it leaves (stored sessions)
    bool generating() const { return req && prompt_pos >= req->prompt.size(); }
};

// Tokens a and b share from the start.
inline size_t common_prefix(const std::vector<llama_token>& a, const std::vector<llama_token>& b) {
    size_t n = 0;
    const size_t limit = a.size() < b.size() ? a.size() : b.size();
    while (n < limit && a[n] == b[n]) ++n;
    return n;
}

inline double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Ends a request that holds no slot (expired in the queue, or failed while
// being placed). Never throws: without memory for the result it still ends,
// as missing_memory.
void finish_unplaced(Request& r, Status status, const char* stop_reason, const std::string& why,
                     Clock::time_point now) noexcept;

}  // namespace wnl
