// The JSON that get_output index 1 returns about the last compute.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "engine/graph.h"
#include "engine/request.h"

namespace wnl {

std::string output_metadata_json(const RequestResult& r, const std::string& session_id, bool chat,
                                 const ModelVersion& model);

// Which model answered, as the metadata and the MODEL status give it:
// {"number", "path", "file_bytes", "mtime", "name"}.
nlohmann::ordered_json model_version_json(const ModelVersion& v);

// A wall-clock time as ISO 8601 UTC, to the nanosecond.
std::string iso8601_utc(int64_t ns_since_epoch);

// The same for an embedding or reranking call: input_tokens (all inputs),
// n_inputs, n_embedding, pooling, truncated_inputs and the timings.
std::string embedding_metadata_json(const RequestResult& r, const std::string& session_id, bool rerank,
                                    const std::string& model_name, size_t n_inputs, int32_t n_embd,
                                    const char* pooling, size_t truncated);

}  // namespace wnl
