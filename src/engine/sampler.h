// Builds llama.cpp common's sampler chain from our sampling settings.
#pragma once

#include <memory>
#include <string>

#include "engine/config.h"
#include "engine/status.h"

struct common_sampler;
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

}  // namespace wnl
