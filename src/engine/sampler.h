// A request's sampler: llama.cpp's sampler chain, built from our sampling
// settings in the order and with the grammar handling of llama.cpp common's
// common_sampler, but over a row of logits it is handed rather than one it
// reads from a llama_context. So the decode loop can hand a copy of the row
// to another thread (loop_sampling.h) when a guest's grammar makes sampling
// expensive, and go on decoding for everyone else.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/status.h"
#include "llama.h"

namespace wnl {

class Sampler {
public:
    ~Sampler();
    Sampler(const Sampler&) = delete;
    Sampler& operator=(const Sampler&) = delete;

    // Picks the next token from `logits` (one per vocabulary entry): the
    // chain's pick, checked against the grammar, and if the grammar refuses
    // it, the chain's pick among the tokens the grammar allows (llama.cpp's
    // grammar rejection sampling). *nothing_allowed: no token survived the
    // grammar and the chain (a complete grammar under ignore_eos, or one
    // nothing the model can emit continues); the token returned is then
    // arbitrary and must not be accepted.
    llama_token sample(const float* logits, bool* nothing_allowed);
    // Records a token: the prompt's (generated false: history only) or one
    // sampled (the grammar advances too; llama.cpp throws when the grammar
    // cannot take it).
    void accept(llama_token token, bool generated);
    bool has_grammar() const { return grammar_ != nullptr; }

private:
    friend Status make_sampler(const llama_model*, const SamplingConfig&, bool, int32_t, std::unique_ptr<Sampler>*,
                               std::string*);
    Sampler() = default;
    void load(const float* logits);
    llama_token_data_array candidates();

    int32_t n_vocab_ = 0;
    llama_sampler* chain_ = nullptr;
    llama_sampler* grammar_ = nullptr;
    std::vector<llama_token_data> cur_;
};
using SamplerPtr = std::unique_ptr<Sampler>;

// Builds the sampler. Everything llama.cpp would abort on, throw on or spend
// unbounded work on is refused first with invalid_argument and *error naming
// the key (docs/security.md, "Guarded llama.cpp calls"): llguidance syntax,
// grammars nested too deep or that do not parse, json_schema $ref cycles or
// schemas that do not convert, out-of-vocabulary logit_bias, repetition
// penalties llama.cpp rejects. n_ctx is what a window of -1 means, and the
// most any window gets. Runs on the caller's thread, never the decode loop's.
Status make_sampler(const llama_model* model, const SamplingConfig& sampling, bool ignore_eos, int32_t n_ctx,
                    SamplerPtr* out, std::string* error);

// Feeds the prompt to the sampler's history (penalties, DRY), as the decode
// loop would before sampling the first token.
void accept_prompt(Sampler* sampler, const std::vector<int32_t>& prompt);

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

// sampler_guards.cpp: checks made before llama.cpp sees a guest's grammar
// or schema. The deepest nesting of parentheses in a GBNF grammar, lexed as
// llama.cpp's parser reads it (literals, classes, token references and
// comments do not count).
int gbnf_nesting(const std::string& grammar);
// False (with *error) when a "$ref" is not a string, not local ("#..."), or
// a chain of "$ref"s that each point at another "$ref" comes back to itself.
bool schema_refs_acyclic(const std::string& schema_json, std::string* error);

}  // namespace wnl
