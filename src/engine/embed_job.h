// The inputs of one embedding or reranking call and what the decode loop
// makes of them. The caller fills `inputs` (tokenized, each within the
// loop's per-input limit) and `normalize`, hands the job over in a Request,
// and reads `outputs` after Request::wait(): the loop writes them before
// Request::finish, whose mutex orders the two.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "llama.h"

namespace wnl {

struct EmbedJob {
    std::vector<std::vector<llama_token>> inputs;
    int32_t normalize = 2;  // common_embd_normalize's embd_norm; not applied to rank scores
    int64_t max_time_ms = 0;  // running time past which the call ends with timeout; 0 = none

    // One per input, in input order: the pooled vector (n_embd_out floats),
    // the rank pooling's n_cls_out scores, or with pooling none every
    // token's vector one after another.
    std::vector<std::vector<float>> outputs;

    // Loop thread only: inputs handed to a decode so far, and finished.
    size_t next = 0;
    size_t done = 0;
};

}  // namespace wnl
