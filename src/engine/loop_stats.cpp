#include "engine/loop_stats.h"

#include <algorithm>

namespace wnl {

void LoopStats::request_finished(const RequestResult& r, double latency_ms_, double ttft_ms_) {
    if (r.status == Status::ok || r.status == Status::context_full) {
        counters.completed++;
    } else {
        counters.failed++;
    }
    if (r.stop_reason == "cancelled") counters.cancelled++;
    const int32_t prefilled = r.input_tokens - r.cached_tokens;
    counters.generated_tokens += static_cast<uint64_t>(r.output_tokens);
    // Rates count only requests that got through prefill, so that tokens and
    // times cover the same requests.
    if (r.output_tokens > 0) {
        counters.prompt_tokens += static_cast<uint64_t>(prefilled > 0 ? prefilled : 0);
        counters.rated_requests++;
        counters.prefill_ms += r.prefill_ms;
        counters.decode_ms += r.decode_ms;
        latency_ms.add(latency_ms_);
        ttft_ms.add(ttft_ms_);
        recent_.push_back({prefilled, r.prefill_ms, r.output_tokens - 1, r.decode_ms});
        if (recent_.size() > kRecent) recent_.pop_front();
    }
}

void LoopStats::decode_call(int32_t tokens, int32_t busy_slots, double ms) {
    counters.decode_calls++;
    counters.batch_tokens += static_cast<uint64_t>(tokens);
    counters.max_batch_tokens = std::max<uint64_t>(counters.max_batch_tokens, static_cast<uint64_t>(tokens));
    counters.batch_slots += static_cast<uint64_t>(busy_slots);
    counters.busy_ms += ms;
}

static double rate(double tokens, double ms) { return ms > 0 ? tokens * 1000.0 / ms : 0.0; }

Throughput LoopStats::recent() const {
    double pt = 0, pm = 0, dt = 0, dm = 0;
    for (const auto& s : recent_) {
        pt += s.prefill_tokens;
        pm += s.prefill_ms;
        dt += s.decode_tokens;
        dm += s.decode_ms;
    }
    return {rate(pt, pm), rate(dt, dm)};
}

Throughput LoopStats::lifetime() const {
    // Decode rate counts tokens after the first, which prefill produces.
    const double decode_tokens =
        static_cast<double>(counters.generated_tokens) - static_cast<double>(counters.rated_requests);
    return {rate(static_cast<double>(counters.prompt_tokens), counters.prefill_ms),
            rate(decode_tokens > 0 ? decode_tokens : 0, counters.decode_ms)};
}

}  // namespace wnl
