#include "engine/model_compat.h"

#include <cstring>

namespace wnl {

namespace {

struct NamedToken {
    const char* name;
    llama_token (*get)(const llama_vocab*);
};

constexpr NamedToken kSpecials[] = {
    {"bos", llama_vocab_bos},         {"eos", llama_vocab_eos},         {"eot", llama_vocab_eot},
    {"sep", llama_vocab_sep},         {"nl", llama_vocab_nl},           {"pad", llama_vocab_pad},
    {"mask", llama_vocab_mask},       {"fim_pre", llama_vocab_fim_pre}, {"fim_suf", llama_vocab_fim_suf},
    {"fim_mid", llama_vocab_fim_mid}, {"fim_pad", llama_vocab_fim_pad}, {"fim_rep", llama_vocab_fim_rep},
    {"fim_sep", llama_vocab_fim_sep},
};

constexpr int kSpecialAttrs = LLAMA_TOKEN_ATTR_UNKNOWN | LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED;

std::string token_text(const llama_vocab* v, llama_token t) {
    const char* s = llama_vocab_get_text(v, t);
    return s ? std::string(s) : std::string();
}

}  // namespace

bool swap_compatible(const Model& current, const Model& next, std::string* why) {
    const ModelInfo& a = current.info();
    const ModelInfo& b = next.info();
    if (a.architecture != b.architecture) {
        *why = "architecture differs: '" + a.architecture + "' now, '" + b.architecture + "' in the new model";
        return false;
    }
    const llama_vocab* va = current.vocab();
    const llama_vocab* vb = next.vocab();
    if (llama_vocab_type(va) != llama_vocab_type(vb)) {
        *why = "tokenizer type differs (" + std::to_string(llama_vocab_type(va)) + " now, " +
               std::to_string(llama_vocab_type(vb)) + " in the new model)";
        return false;
    }
    const int32_t n = llama_vocab_n_tokens(va);
    if (n != llama_vocab_n_tokens(vb)) {
        *why = "vocabulary size differs: " + std::to_string(n) + " now, " + std::to_string(llama_vocab_n_tokens(vb)) +
               " in the new model";
        return false;
    }
    for (const auto& s : kSpecials) {
        const llama_token ta = s.get(va), tb = s.get(vb);
        if (ta != tb) {
            *why = std::string("special token ") + s.name + " differs: id " + std::to_string(ta) + " now, " +
                   std::to_string(tb) + " in the new model";
            return false;
        }
    }
    if (llama_vocab_get_add_bos(va) != llama_vocab_get_add_bos(vb) ||
        llama_vocab_get_add_eos(va) != llama_vocab_get_add_eos(vb)) {
        *why = "whether the tokenizer adds BOS / EOS differs";
        return false;
    }
    // llama.cpp reads a vocabulary's tokens only when it has one.
    if (llama_vocab_type(va) == LLAMA_VOCAB_TYPE_NONE) return true;
    // Every special token (control, user-defined, unknown) and every token
    // that ends a generation is the same token, with the same text, in both.
    for (llama_token t = 0; t < n; ++t) {
        const int attr_a = llama_vocab_get_attr(va, t) & kSpecialAttrs;
        const int attr_b = llama_vocab_get_attr(vb, t) & kSpecialAttrs;
        const bool eog_a = llama_vocab_is_eog(va, t), eog_b = llama_vocab_is_eog(vb, t);
        if (attr_a != attr_b || eog_a != eog_b) {
            *why = "token " + std::to_string(t) + " is special in one model and not in the other";
            return false;
        }
        if ((attr_a || eog_a) && token_text(va, t) != token_text(vb, t)) {
            *why = "special token " + std::to_string(t) + " is '" + token_text(va, t) + "' now, '" +
                   token_text(vb, t) + "' in the new model";
            return false;
        }
    }
    return true;
}

}  // namespace wnl
