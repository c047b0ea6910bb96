#include "engine/output_metadata.h"

#include <cstdio>
#include <ctime>

#include "engine/version.h"

namespace wnl {

std::string iso8601_utc(int64_t ns) {
    const int64_t billion = 1000000000;
    std::time_t secs = static_cast<std::time_t>(ns >= 0 ? ns / billion : (ns - billion + 1) / billion);
    const int64_t frac = ns - static_cast<int64_t>(secs) * billion;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(frac));
    return buf;
}

nlohmann::ordered_json model_version_json(const ModelVersion& v) {
    nlohmann::ordered_json j;
    j["number"] = v.number;
    j["path"] = v.path;
    j["file_bytes"] = v.file_bytes;
    j["mtime"] = iso8601_utc(v.mtime_ns);
    j["name"] = v.name;
    return j;
}

std::string output_metadata_json(const RequestResult& r, const std::string& session_id, bool chat,
                                 const ModelVersion& model) {
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
    j["model"] = model.name;
    j["model_version"] = model_version_json(model);
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
