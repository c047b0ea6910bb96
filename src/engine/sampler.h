// Builds llama.cpp common's sampler chain from our sampling settings.
#pragma once

#include <memory>
#include <string>

#include "engine/config.h"
#include "engine/status.h"

struct common_sampler;
struct llama_context;
struct llama_model;

namespace wnl {

struct SamplerDeleter {
    void operator()(common_sampler* s) const;
};
using SamplerPtr = std::unique_ptr<common_sampler, SamplerDeleter>;

// A grammar or JSON schema that does not compile gives invalid_argument
// with *error naming the key. n_ctx is what a window of -1 means.
Status make_sampler(const llama_model* model, const SamplingConfig& sampling, bool ignore_eos, int32_t n_ctx,
                    SamplerPtr* out, std::string* error);

// True when the settings make the chain pick the highest logit whatever the
// history: temperature <= 0 and nothing that can move, remove or penalise
// the top token (penalties, DRY, XTC, typical-p, mirostat, grammar, bias).
bool is_plain_greedy(const SamplingConfig& sampling);

// The highest-logit token of row idx, found by one pass over the logits:
// what the chain would pick for a plain-greedy request, without building
// and sorting the full candidate list (a measurable share of a batched
// decode step). Returns -1 (LLAMA_TOKEN_NULL) when the chain must decide
// after all: the top token is an end-of-generation token under ignore_eos,
// or one the vocabulary suppresses.
int32_t greedy_token(llama_context* ctx, const llama_model* model, int32_t idx, bool ignore_eos);

}  // namespace wnl
