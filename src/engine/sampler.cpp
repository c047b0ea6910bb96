#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <new>

#include "json-schema-to-grammar.h"
#include "json.h"

namespace wnl {

Sampler::~Sampler() {
    if (grammar_) llama_sampler_free(grammar_);
    if (chain_) llama_sampler_free(chain_);
}

void Sampler::load(const float* logits) {
    cur_.resize(static_cast<size_t>(n_vocab_));
    for (int32_t t = 0; t < n_vocab_; ++t) cur_[static_cast<size_t>(t)] = llama_token_data{t, logits[t], 0.0f};
}

llama_token_data_array Sampler::candidates() { return {cur_.data(), cur_.size(), -1, false}; }

static bool picked(const llama_token_data_array& a) {
    return a.size > 0 && a.selected >= 0 && static_cast<size_t>(a.selected) < a.size;
}

llama_token Sampler::sample(const float* logits, bool* nothing_allowed) {
    *nothing_allowed = false;
    load(logits);
    llama_token_data_array cur = candidates();
    llama_sampler_apply(chain_, &cur);
    if (!picked(cur)) {
        *nothing_allowed = true;
        return LLAMA_TOKEN_NULL;
    }
    const llama_token id = cur.data[cur.selected].id;
    if (!grammar_) return id;
    // The chain's pick, if the grammar takes it: checking one candidate is
    // far cheaper than masking the whole vocabulary.
    llama_token_data single{id, 1.0f, 0.0f};
    llama_token_data_array one{&single, 1, -1, false};
    llama_sampler_apply(grammar_, &one);
    if (single.logit != -INFINITY) return id;
    load(logits);
    cur = candidates();
    llama_sampler_apply(grammar_, &cur);
    llama_sampler_apply(chain_, &cur);
    if (!picked(cur) || cur.data[cur.selected].logit == -INFINITY) {
        *nothing_allowed = true;
        return LLAMA_TOKEN_NULL;
    }
    return cur.data[cur.selected].id;
}

void Sampler::accept(llama_token token, bool generated) {
    if (generated && grammar_) llama_sampler_accept(grammar_, token);
    llama_sampler_accept(chain_, token);
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

namespace {

Status refuse(std::string* error, std::string why) {
    *error = std::move(why);
    return Status::invalid_argument;
}

// The GBNF text the request's grammar or json_schema gives, or "".
Status grammar_text(const SamplingConfig& s, std::string* out, std::string* error) {
    if (!s.grammar.empty()) {
        // llama.cpp common's sampler aborts the process on llguidance syntax
        // in a build without llguidance, as this one is.
        if (s.grammar.compare(0, 11, "%llguidance") == 0) {
            return refuse(error, "grammar: llguidance grammars (%llguidance) are not supported by this build; use GBNF");
        }
        // Its parser recurses once per level of parentheses.
        if (gbnf_nesting(s.grammar) > kMaxGrammarNesting) {
            return refuse(error, "grammar: parentheses nested deeper than " + std::to_string(kMaxGrammarNesting) +
                                     " levels");
        }
        *out = s.grammar;
        return Status::ok;
    }
    if (s.json_schema.empty()) return Status::ok;
    if (!schema_refs_acyclic(s.json_schema, error)) return Status::invalid_argument;
    try {
        // force_gbnf: never the llguidance form, which would abort as above.
        *out = json_schema_to_grammar(common_json::parse(s.json_schema), true);
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        return refuse(error, std::string("json_schema: cannot convert to a grammar: ") + e.what());
    }
    return Status::ok;
}

}  // namespace

Status make_sampler(const llama_model* model, const SamplingConfig& c, bool ignore_eos, int32_t n_ctx,
                    SamplerPtr* out, std::string* error) {
    const llama_vocab* vocab = llama_model_get_vocab(model);
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    // llama.cpp common throws for these when the chain is built.
    if (!std::isfinite(c.repeat_penalty) || c.repeat_penalty <= 0.0f || !std::isfinite(1.0f / c.repeat_penalty)) {
        return refuse(error, "repeat_penalty: must be finite and greater than 0 (penalty_repeat)");
    }
    if (!std::isfinite(c.frequency_penalty) || !std::isfinite(c.presence_penalty)) {
        return refuse(error, "frequency_penalty, presence_penalty: must be finite");
    }
    if (c.logit_bias.size() > static_cast<size_t>(kMaxLogitBiasEntries)) {
        return refuse(error, "logit_bias: more than " + std::to_string(kMaxLogitBiasEntries) + " entries");
    }
    if (c.dry_sequence_breakers.size() > static_cast<size_t>(kMaxDrySequenceBreakers)) {
        return refuse(error, "dry_sequence_breakers: more than " + std::to_string(kMaxDrySequenceBreakers) + " entries");
    }
    std::vector<llama_logit_bias> bias;
    for (const auto& [tok, b] : c.logit_bias) {
        if (tok < 0 || tok >= n_vocab) {
            return refuse(error, "logit_bias: token id " + std::to_string(tok) + " is outside the vocabulary (" +
                                     std::to_string(n_vocab) + " tokens)");
        }
        bias.push_back({tok, b});
    }
    std::string gbnf;
    Status st = grammar_text(c, &gbnf, error);
    if (st != Status::ok) return st;

    std::unique_ptr<Sampler> s(new Sampler());
    s->n_vocab_ = n_vocab;
    if (!gbnf.empty()) {
        s->grammar_ = llama_sampler_init_grammar(vocab, gbnf.c_str(), "root");
        if (!s->grammar_) {
            return refuse(error, c.grammar.empty() ? "json_schema: the generated grammar does not parse"
                                                   : "grammar: does not parse as GBNF (see the llama log)");
        }
    }
    // As common_sampler_init builds it, with its default order: logit bias
    // (the guest's, end of generation under ignore_eos, the vocabulary's
    // suppressed tokens), then penalties, DRY, top-n-sigma (off), top-k,
    // typical, top-p, min-p, XTC, temperature, and the final pick.
    if (ignore_eos) {
        for (llama_token t = 0; t < n_vocab; ++t) {
            if (llama_vocab_is_eog(vocab, t)) bias.push_back({t, -INFINITY});
        }
    }
    int32_t n_suppress = 0;
    const llama_token* suppress = llama_vocab_get_suppress_tokens(vocab, &n_suppress);
    for (int32_t i = 0; i < n_suppress; ++i) bias.push_back({suppress[i], -INFINITY});
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    s->chain_ = llama_sampler_chain_init(cp);
    auto add = [&](llama_sampler* x) { llama_sampler_chain_add(s->chain_, x); };
    if (!bias.empty()) add(llama_sampler_init_logit_bias(n_vocab, static_cast<int32_t>(bias.size()), bias.data()));
    const uint32_t seed = c.seed < 0 ? LLAMA_DEFAULT_SEED : static_cast<uint32_t>(c.seed);
    if (c.mirostat == 0) {
        // -1 means the whole context, as in llama.cpp's tools; llama.cpp
        // allocates a window of this many tokens up front, and more than the
        // context holds means the same as the whole context.
        const int32_t last_n = c.penalty_last_n < 0 ? n_ctx : std::min(c.penalty_last_n, n_ctx);
        const int32_t dry_last_n = c.dry_penalty_last_n < 0 ? n_ctx : std::min(c.dry_penalty_last_n, n_ctx);
        add(llama_sampler_init_penalties(n_vocab, last_n, c.repeat_penalty, c.frequency_penalty, c.presence_penalty));
        std::vector<const char*> breakers;
        for (const auto& b : c.dry_sequence_breakers) breakers.push_back(b.c_str());
        add(llama_sampler_init_dry(vocab, c.dry_multiplier, c.dry_base, c.dry_allowed_length, dry_last_n,
                                   breakers.data(), breakers.size()));
        add(llama_sampler_init_top_n_sigma(-1.0f));
        add(llama_sampler_init_top_k(c.top_k));
        add(llama_sampler_init_typical(c.typical_p, 0));
        add(llama_sampler_init_top_p(c.top_p, 0));
        add(llama_sampler_init_min_p(c.min_p, 0));
        add(llama_sampler_init_xtc(c.xtc_probability, c.xtc_threshold, 0, seed));
        add(llama_sampler_init_temp_ext(c.temp, c.dynatemp_range, c.dynatemp_exponent));
        add(llama_sampler_init_dist(seed));
    } else if (c.mirostat == 1) {
        add(llama_sampler_init_temp(c.temp));
        add(llama_sampler_init_mirostat(n_vocab, seed, c.mirostat_tau, c.mirostat_eta, 100));
    } else {
        add(llama_sampler_init_temp(c.temp));
        add(llama_sampler_init_mirostat_v2(seed, c.mirostat_tau, c.mirostat_eta));
    }
    *out = std::move(s);
    return Status::ok;
}

void accept_prompt(Sampler* sampler, const std::vector<int32_t>& prompt) {
    for (llama_token t : prompt) sampler->accept(t, false);
}

}  // namespace wnl
