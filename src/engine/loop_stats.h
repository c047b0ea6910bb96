// What a decode loop has done: counters, recent latencies and throughput.
// Written by the loop, read by get_backend_status; the loop's mutex guards it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/request.h"
#include "engine/sample_window.h"

namespace wnl {

struct LoopCounters {
    uint64_t admitted = 0;
    uint64_t rejected = 0;  // refused with busy: queue full
    uint64_t timed_out = 0;  // left the queue at their deadline
    uint64_t cancelled = 0;
    uint64_t handed_back = 0;  // taken back unstarted by a swap of their graph's model
    uint64_t completed = 0;
    uint64_t failed = 0;
    uint64_t prompt_tokens = 0;  // prefilled (not cached) by requests that produced a token
    uint64_t rated_requests = 0;  // requests that produced a token
    uint64_t generated_tokens = 0;
    uint64_t decode_calls = 0;
    uint64_t batch_tokens = 0;  // tokens over all decode calls
    uint64_t max_batch_tokens = 0;  // the largest decode call
    uint64_t batch_slots = 0;  // busy slots over all decode calls
    double prefill_ms = 0;  // summed over requests
    double decode_ms = 0;
    double busy_ms = 0;  // wall time inside llama_decode
    double cpu_wait_ms = 0;  // waiting for another model's decode to leave the CPUs (CpuArbiter)
    uint64_t embedded_inputs = 0;  // embedding graphs: inputs (or documents) embedded
    uint64_t embedded_tokens = 0;
};

struct Throughput {
    double prefill_tokens_per_s = 0;
    double decode_tokens_per_s = 0;
};

class LoopStats {
public:
    void request_finished(const RequestResult& r, double latency_ms, double ttft_ms);
    void decode_call(int32_t tokens, int32_t busy_slots, double ms);

    LoopCounters counters;
    SampleWindow queue_wait_ms{1024};
    SampleWindow latency_ms{1024};
    SampleWindow ttft_ms{1024};

    // Per-request rates over the last kRecent requests.
    Throughput recent() const;
    Throughput lifetime() const;

    static constexpr size_t kRecent = 64;

private:
    struct Sample {
        int32_t prefill_tokens;
        double prefill_ms;
        int32_t decode_tokens;
        double decode_ms;
    };
    std::deque<Sample> recent_;
};

}  // namespace wnl
