// The BERT architecture for wasi-nn-llama-mkmodel: llama.cpp's "bert"
// (non-causal, learned positions, post-norm, GELU feed-forward), as
// embedding models such as bge-small or all-MiniLM are converted, and the
// reranker variant with a classification head (rank pooling).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor_plan.h"

struct gguf_context;

namespace mkmodel {

struct BertShape {
    int64_t n_embd, n_layer, n_head, n_ff, n_vocab, n_ctx;
    bool reranker;  // adds cls / cls.output and rank pooling
};

// "mean", "cls", "last", "none" or "rank" -> llama_pooling_type's number;
// throws std::invalid_argument on anything else.
uint32_t bert_pooling_code(const std::string & name);

std::vector<TensorSpec> plan_bert_tensors(const BertShape & s, ggml_type wtype);

// bert.* hyperparameters, the pooling, and the tokenizer keys BERT needs on
// top of the vocabulary: the token type count, and for a reranker the
// pair form [CLS] query [SEP] document [SEP] (EOS = SEP added, no extra SEP),
// which llama.cpp's server and llama-embedding then both build the same way.
void write_bert_metadata(gguf_context * g, const BertShape & s, uint32_t pooling, float norm_eps);

}  // namespace mkmodel
