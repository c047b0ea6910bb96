// The text of embedding and reranking calls (docs/embeddings.md): what
// set_input index 0 may hold on such a graph, and the JSON that get_output
// index 0 returns. No llama.cpp calls here, so it is unit-tested alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "llama.h"

namespace wnl {

struct EmbedInput {
    bool batch = false;  // the inputs came as an array: the output is an array too
    std::vector<std::string> texts;  // the inputs, or a rerank's documents
    std::string query;  // rerank only
};

// An embedding graph's input: plain text (one input); a JSON array of
// strings (a batch); or a JSON object whose "input" is either (LlamaEdge's
// and OpenAI's request shape). Text that starts with '[' or '{' but is not
// valid JSON is plain text. Empty inputs, non-string items and an empty
// array are invalid_argument, and so is more than max_inputs items (the
// cap max_embedding_inputs).
Status parse_embed_input(std::string_view text, size_t max_inputs, EmbedInput* out, std::string* error);

// A reranking graph's input: {"query": "...", "documents": ["...", ...]}
// ("texts" is accepted for "documents", as llama.cpp's server does). Same
// codes as above; max_inputs bounds the documents.
Status parse_rerank_input(std::string_view text, size_t max_inputs, EmbedInput* out, std::string* error);

// WasmEdge's {"n_embedding":N,"embedding":[...]} per input, an array of
// them for a batch. With pooling none `embedding` holds one vector per
// token and "n_tokens" says how many. Values are written with 9
// significant digits (a float's full precision); a non-finite one as null.
std::string embeddings_json(const std::vector<std::vector<float>>& outputs, bool batch, int32_t n_embd,
                            bool per_token);

// {"scores":[...]} in document order: each document's first rank output.
std::string scores_json(const std::vector<std::vector<float>>& outputs);

// A reranker's "rerank" template (from its GGUF) with {query} and
// {document} put in, in one pass. The template is the file's, which a guest
// may send (load): one naming {query} a million times would make a 4 MiB
// query into terabytes, so the text may not pass max_bytes (false).
bool render_rerank_template(const std::string& tmpl, const std::string& query, const std::string& doc,
                            size_t max_bytes, std::string* out);

const char* pooling_name(enum llama_pooling_type p);

}  // namespace wnl
