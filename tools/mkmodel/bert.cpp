#include "bert.h"

#include "gguf.h"

#include <stdexcept>

namespace mkmodel {

uint32_t bert_pooling_code(const std::string & name) {
    // llama.h's enum llama_pooling_type.
    if (name == "none") return 0;
    if (name == "mean") return 1;
    if (name == "cls") return 2;
    if (name == "last") return 3;
    if (name == "rank") return 4;
    throw std::invalid_argument("--pooling: unknown pooling '" + name + "' (mean, cls, last, none or rank)");
}

std::vector<TensorSpec> plan_bert_tensors(const BertShape & s, ggml_type wtype) {
    std::vector<TensorSpec> v;
    const auto f32 = GGML_TYPE_F32;
    v.push_back({"token_embd.weight", s.n_embd, s.n_vocab, wtype, Init::Matrix, -1});
    v.push_back({"token_types.weight", s.n_embd, 2, f32, Init::Matrix, -1});
    v.push_back({"position_embd.weight", s.n_embd, s.n_ctx, f32, Init::Matrix, -1});
    v.push_back({"token_embd_norm.weight", s.n_embd, 1, f32, Init::Norm, -1});
    v.push_back({"token_embd_norm.bias", s.n_embd, 1, f32, Init::Bias, -1});
    for (int il = 0; il < (int) s.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        for (const char * m : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
            v.push_back({p + m + ".weight", s.n_embd, s.n_embd, wtype, Init::Matrix, il});
            v.push_back({p + m + ".bias", s.n_embd, 1, f32, Init::Bias, il});
        }
        v.push_back({p + "attn_output_norm.weight", s.n_embd, 1, f32, Init::Norm, il});
        v.push_back({p + "attn_output_norm.bias", s.n_embd, 1, f32, Init::Bias, il});
        v.push_back({p + "ffn_up.weight", s.n_embd, s.n_ff, wtype, Init::Matrix, il});
        v.push_back({p + "ffn_up.bias", s.n_ff, 1, f32, Init::Bias, il});
        v.push_back({p + "ffn_down.weight", s.n_ff, s.n_embd, wtype, Init::Matrix, il});
        v.push_back({p + "ffn_down.bias", s.n_embd, 1, f32, Init::Bias, il});
        v.push_back({p + "layer_output_norm.weight", s.n_embd, 1, f32, Init::Norm, il});
        v.push_back({p + "layer_output_norm.bias", s.n_embd, 1, f32, Init::Bias, il});
    }
    if (s.reranker) {
        // Small and kept f32: a classification head on a one-wide output.
        v.push_back({"cls.weight", s.n_embd, s.n_embd, f32, Init::Matrix, -1});
        v.push_back({"cls.bias", s.n_embd, 1, f32, Init::Bias, -1});
        v.push_back({"cls.output.weight", s.n_embd, 1, f32, Init::Matrix, -1});
        v.push_back({"cls.output.bias", 1, 1, f32, Init::Bias, -1});
    }
    return v;
}

void write_bert_metadata(gguf_context * g, const BertShape & s, uint32_t pooling, float norm_eps) {
    gguf_set_val_u32(g, "bert.context_length", (uint32_t) s.n_ctx);
    gguf_set_val_u32(g, "bert.embedding_length", (uint32_t) s.n_embd);
    gguf_set_val_u32(g, "bert.block_count", (uint32_t) s.n_layer);
    gguf_set_val_u32(g, "bert.feed_forward_length", (uint32_t) s.n_ff);
    gguf_set_val_u32(g, "bert.attention.head_count", (uint32_t) s.n_head);
    gguf_set_val_f32(g, "bert.attention.layer_norm_epsilon", norm_eps);
    gguf_set_val_bool(g, "bert.attention.causal", false);
    gguf_set_val_u32(g, "bert.pooling_type", pooling);
    gguf_set_val_u32(g, "tokenizer.ggml.token_type_count", 2);
    if (s.reranker) {
        const int64_t sep = gguf_find_key(g, "tokenizer.ggml.seperator_token_id");
        if (sep < 0 || gguf_get_kv_type(g, sep) != GGUF_TYPE_UINT32) {
            throw std::runtime_error("the vocabulary has no tokenizer.ggml.seperator_token_id (a reranker needs SEP)");
        }
        gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", gguf_get_val_u32(g, sep));
        gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", true);
        gguf_set_val_bool(g, "tokenizer.ggml.add_sep_token", false);
    }
}

}  // namespace mkmodel
