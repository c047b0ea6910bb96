// Caps on what one guest can hold or ask for (docs/security.md): backend-
// group configuration keys, enforced always from the backend context's own
// config, so that a graph's or a request's config cannot widen them.
#pragma once

#include <cstdint>
#include <string>

#include "engine/status.h"

namespace wnl {

struct Config;

struct Limits {
    int32_t max_graphs = 16;           // graphs per backend context -> busy
    int32_t max_llama_contexts = 4;    // distinct decode loops its graphs hold -> busy
    int32_t max_exec_contexts = 256;   // open execution contexts -> busy
    int32_t max_stop_strings = 32;     // -> invalid_argument
    int64_t max_stop_bytes = 4096;     // all stop strings together -> invalid_argument
    int64_t max_grammar_bytes = 65536;  // grammar or json_schema text -> invalid_argument
    int64_t max_prompt_bytes = 4ll << 20;  // one set_input / run_inference text -> invalid_argument
    int32_t max_output_tokens = 8192;  // ceiling on max_tokens; -1 means up to it
    int64_t max_request_time_ms = 600000;  // wall clock of a running request; 0 = none
    // Embedding and reranking calls (docs/embeddings.md): what one call may
    // hand the shared loop and get back.
    int32_t max_embedding_inputs = 256;  // inputs (or documents) -> invalid_argument
    int64_t max_embedding_tokens = 262144;  // tokens of all its inputs together -> invalid_argument
    int64_t max_embedding_values = int64_t{4} << 20;  // floats of its output (pooling none: per token) -> invalid_argument
};

// Fixed bounds on settings that cost per-token or setup work in llama.cpp
// (docs/security.md, "Guarded llama.cpp calls"). Not configurable: no
// sensible use comes near them.
inline constexpr int32_t kMaxLogitBiasEntries = 1024;
inline constexpr int32_t kMaxDrySequenceBreakers = 32;
inline constexpr int32_t kMaxGrammarNesting = 128;

// Checks the request-shaping settings of an effective config (backend, graph
// and request layers applied) against the backend context's caps: stop
// strings, grammar and json_schema size, max_tokens, max_time_ms. On a
// refusal returns invalid_argument with *error naming the key and the cap,
// and logs it.
Status check_request_limits(const Config& cfg, const Limits& caps, std::string* error);

// The text of one set_input index 0 or run_inference call.
Status check_prompt_size(size_t bytes, const Limits& caps, const char* call);

// What the loop is given: max_tokens -1 becomes the ceiling, and the
// running-time ceiling applies when the request sets no lower max_time_ms.
int32_t effective_max_tokens(int32_t max_tokens, const Limits& caps);
int64_t effective_max_time_ms(int64_t max_time_ms, const Limits& caps);

}  // namespace wnl
