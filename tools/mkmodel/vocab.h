// Tokenizer metadata for wasi-nn-llama-mkmodel: a synthetic SentencePiece
// ("llama") vocabulary, or the tokenizer.* keys copied from another GGUF.
#pragma once

#include <cstdint>
#include <string>

struct gguf_context;

namespace mkmodel {

// <unk>, <s>, </s>, 256 byte tokens, <|im_start|>, <|im_end|>, one filler.
constexpr uint32_t kMinSyntheticVocab = 3 + 256 + 2 + 1;

// Writes tokenizer.ggml.{model,tokens,scores,token_type,bos/eos/unk ids,
// add_bos/add_eos} for a synthetic SPM vocabulary of exactly n_vocab tokens.
void write_synthetic_vocab(gguf_context * dst, uint32_t n_vocab);

// [PAD] [UNK] [CLS] [SEP] [MASK], word-initial "▁x" and continuation "x"
// pieces for a-z and 0-9, "▁" + each ASCII punctuation mark, then filler.
constexpr uint32_t kMinSyntheticWpmVocab = 5 + 2 * 36 + 32 + 1;

// A synthetic WordPiece vocabulary (tokenizer.ggml.model = "bert") of
// exactly n_vocab tokens, laid out the way llama.cpp's converter writes
// BERT's: word starts carry the "▁" prefix, continuations none. Lowercase
// ASCII text tokenizes; anything else becomes [UNK].
void write_synthetic_wpm_vocab(gguf_context * dst, uint32_t n_vocab);

// Copies every "tokenizer.*" key of the GGUF file at `path` into dst and
// returns the number of tokens (length of tokenizer.ggml.tokens).
// Throws std::runtime_error on a missing/unreadable file or vocabulary.
uint32_t copy_tokenizer(gguf_context * dst, const std::string & path, std::string * model_out);

// --chat-template argument -> template text: "chatml" gives the ChatML Jinja
// template, "@PATH" the contents of a file, anything else is used verbatim
// (a Jinja template, or a llama.cpp built-in template name such as "llama3").
std::string resolve_chat_template(const std::string & arg);

}  // namespace mkmodel
