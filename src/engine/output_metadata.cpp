#include "engine/output_metadata.h"

#include <nlohmann/json.hpp>

#include "engine/version.h"

namespace wnl {

std::string output_metadata_json(const RequestResult& r, const std::string& session_id, bool chat,
                                 const std::string& model_name) {
    nlohmann::ordered_json j;
    j["input_tokens"] = r.input_tokens;
    j["output_tokens"] = r.output_tokens;
    j["cached_tokens"] = r.cached_tokens;
    j["stop_reason"] = r.stop_reason;
    j["prefill_ms"] = r.prefill_ms;
    j["decode_ms"] = r.decode_ms;
    j["queue_ms"] = r.queue_ms;
    const int32_t prefilled = r.input_tokens - r.cached_tokens;
    j["prefill_tokens_per_s"] = r.prefill_ms > 0 && r.output_tokens > 0 ? prefilled * 1000.0 / r.prefill_ms : 0.0;
    j["decode_tokens_per_s"] = r.decode_ms > 0 && r.output_tokens > 1 ? (r.output_tokens - 1) * 1000.0 / r.decode_ms : 0.0;
    j["session_id"] = session_id;
    j["mode"] = chat ? "chat" : "completion";
    j["model"] = model_name;
    j["status"] = status_name(r.status);
    if (!r.error.empty()) j["error"] = r.error;
    j["llama_build_number"] = llama_build_number_value();
    j["llama_commit"] = llama_commit_value();
    j["version"] = library_version();
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string embedding_metadata_json(const RequestResult& r, const std::string& session_id, bool rerank,
                                    const std::string& model_name, size_t n_inputs, int32_t n_embd,
                                    const char* pooling, size_t truncated) {
    nlohmann::ordered_json j;
    j["input_tokens"] = r.input_tokens;
    j["output_tokens"] = 0;
    j["cached_tokens"] = 0;
    j["stop_reason"] = r.stop_reason;
    j["n_inputs"] = n_inputs;
    j["n_embedding"] = n_embd;
    j["pooling"] = pooling;
    j["truncated_inputs"] = truncated;
    // The whole call in the loop: embedding has no separate decode phase.
    j["prefill_ms"] = r.prefill_ms;
    j["decode_ms"] = r.decode_ms;
    j["queue_ms"] = r.queue_ms;
    j["inputs_per_s"] = r.prefill_ms > 0 && r.status == Status::ok ? n_inputs * 1000.0 / r.prefill_ms : 0.0;
    j["session_id"] = session_id;
    j["mode"] = rerank ? "rerank" : "embedding";
    j["model"] = model_name;
    j["status"] = status_name(r.status);
    if (!r.error.empty()) j["error"] = r.error;
    j["llama_build_number"] = llama_build_number_value();
    j["llama_commit"] = llama_commit_value();
    j["version"] = library_version();
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace wnl
