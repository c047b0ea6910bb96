#include "engine/sampler.h"

#include <cmath>

#include "common.h"
#include "json-schema-to-grammar.h"
#include "json.h"
#include "llama.h"
#include "sampling.h"

namespace wnl {

void SamplerDeleter::operator()(common_sampler* s) const { common_sampler_free(s); }

static common_params_sampling to_common(const llama_model* model, const SamplingConfig& c, bool ignore_eos,
                                        int32_t n_ctx) {
    common_params_sampling p;
    p.seed = c.seed < 0 ? LLAMA_DEFAULT_SEED : static_cast<uint32_t>(c.seed);
    p.temp = c.temp;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.typ_p = c.typical_p;
    p.penalty_repeat = c.repeat_penalty;
    p.penalty_present = c.presence_penalty;
    p.penalty_freq = c.frequency_penalty;
    // -1 means the whole context, as in llama.cpp's tools.
    p.penalty_last_n = c.penalty_last_n < 0 ? n_ctx : c.penalty_last_n;
    p.mirostat = c.mirostat;
    p.mirostat_tau = c.mirostat_tau;
    p.mirostat_eta = c.mirostat_eta;
    p.dry_multiplier = c.dry_multiplier;
    p.dry_base = c.dry_base;
    p.dry_allowed_length = c.dry_allowed_length;
    p.dry_penalty_last_n = c.dry_penalty_last_n < 0 ? n_ctx : c.dry_penalty_last_n;
    p.dry_sequence_breakers = c.dry_sequence_breakers;
    p.xtc_probability = c.xtc_probability;
    p.xtc_threshold = c.xtc_threshold;
    p.dynatemp_range = c.dynatemp_range;
    p.dynatemp_exponent = c.dynatemp_exponent;
    p.ignore_eos = ignore_eos;
    for (const auto& [tok, bias] : c.logit_bias) p.logit_bias.push_back({tok, bias});
    if (ignore_eos) {
        // As common_init_from_params does: forbid every end-of-generation token.
        const llama_vocab* vocab = llama_model_get_vocab(model);
        const int n_vocab = llama_vocab_n_tokens(vocab);
        for (llama_token t = 0; t < n_vocab; ++t) {
            if (llama_vocab_is_eog(vocab, t)) p.logit_bias.push_back({t, -INFINITY});
        }
    }
    return p;
}

bool is_plain_greedy(const SamplingConfig& c) {
    return c.temp <= 0.0f && c.dynatemp_range <= 0.0f && c.mirostat == 0 && c.repeat_penalty == 1.0f &&
           c.presence_penalty == 0.0f && c.frequency_penalty == 0.0f && c.dry_multiplier == 0.0f &&
           c.xtc_probability <= 0.0f && c.typical_p >= 1.0f && c.logit_bias.empty() && c.grammar.empty() &&
           c.json_schema.empty();
}

int32_t greedy_token(llama_context* ctx, const llama_model* model, int32_t idx, bool ignore_eos) {
    const llama_vocab* vocab = llama_model_get_vocab(model);
    const float* logits = llama_get_logits_ith(ctx, idx);
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    if (!logits || n_vocab <= 0) return LLAMA_TOKEN_NULL;
    // Ties (rare with float logits) go to the lowest id.
    int32_t best = 0;
    float best_logit = logits[0];
    for (int32_t t = 1; t < n_vocab; ++t) {
        if (logits[t] > best_logit) {
            best_logit = logits[t];
            best = t;
        }
    }
    if (ignore_eos && llama_vocab_is_eog(vocab, best)) return LLAMA_TOKEN_NULL;
    int32_t n_suppress = 0;
    const llama_token* suppress = llama_vocab_get_suppress_tokens(vocab, &n_suppress);
    for (int32_t i = 0; i < n_suppress; ++i) {
        if (suppress[i] == best) return LLAMA_TOKEN_NULL;
    }
    return best;
}

Status make_sampler(const llama_model* model, const SamplingConfig& sampling, bool ignore_eos, int32_t n_ctx,
                    SamplerPtr* out, std::string* error) {
    common_params_sampling p = to_common(model, sampling, ignore_eos, n_ctx);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (const auto& b : p.logit_bias) {
        if (b.token < 0 || b.token >= n_vocab) {
            *error = "logit_bias: token id " + std::to_string(b.token) + " is outside the vocabulary (" +
                     std::to_string(n_vocab) + " tokens)";
            return Status::invalid_argument;
        }
    }
    if (!sampling.grammar.empty()) {
        p.grammar = common_grammar(COMMON_GRAMMAR_TYPE_USER, sampling.grammar);
    } else if (!sampling.json_schema.empty()) {
        try {
            common_json schema = common_json::parse(sampling.json_schema);
            p.grammar = common_grammar(COMMON_GRAMMAR_TYPE_OUTPUT_FORMAT, json_schema_to_grammar(schema));
        } catch (const std::exception& e) {
            *error = std::string("json_schema: cannot convert to a grammar: ") + e.what();
            return Status::invalid_argument;
        }
    }
    common_sampler* s = nullptr;
    try {
        s = common_sampler_init(model, p);
    } catch (const std::exception& e) {
        *error = std::string("sampling: ") + e.what();
        return Status::invalid_argument;
    }
    if (!s) {
        *error = sampling.grammar.empty() ? "json_schema: the generated grammar does not parse"
                                          : "grammar: does not parse as GBNF";
        return Status::invalid_argument;
    }
    out->reset(s);
    return Status::ok;
}

}  // namespace wnl
