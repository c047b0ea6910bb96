// One backend context (what init_backend returns): its graphs, execution
// contexts and named sessions. Everything an ABI shim calls is here, in
// ABI-neutral types; models and decode loops are shared process-wide.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/config.h"
#include "engine/exec_context.h"
#include "engine/graph.h"
#include "engine/session.h"
#include "engine/status.h"

namespace wnl {

enum class StatusKind { queue = 0, memory, sessions, performance, model };

// A request's options may not turn a generation graph into an embedding one
// or back, nor change its pooling (backend_embed.cpp): invalid_argument.
Status check_graph_kind(const Graph& g, const Config& request);

class Backend {
public:
    static Status create(std::string_view config_json, std::shared_ptr<Backend>* out);
    ~Backend();
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    Status load_file(std::string_view path, std::string_view config_json, uint32_t* graph);
    Status load_bytes(const uint8_t* data, size_t size, uint32_t* graph);
    Status unload(uint32_t graph);

    Status init_exec(uint32_t graph, uint32_t* exec);
    Status init_exec_with_session(std::string_view session_id, uint32_t* exec);
    Status close_exec(uint32_t exec);

    // index 0: prompt text; index 1: per-request options (JSON).
    Status set_input(uint32_t exec, uint32_t index, std::string_view data);
    Status compute(uint32_t exec);
    // index 0: reply; index 1: metadata JSON.
    Status get_output(uint32_t exec, uint32_t index, std::string* out);
    Status run_inference(uint32_t exec, uint32_t index, std::string_view input,
                         std::string_view runtime_config, std::string* out);

    // Streaming, with WasmEdge's meaning: each compute_single returns once
    // more of the reply is ready (get_output_single index 0 gives that
    // piece), end_of_sequence once it is complete (or the turn's error, such
    // as context_full); fini_single ends the stream, cancelling a running
    // one, and records the turn. get_output then gives the whole reply and
    // its metadata.
    Status compute_single(uint32_t exec);
    Status get_output_single(uint32_t exec, uint32_t index, std::string* out);
    Status fini_single(uint32_t exec);

    Status backend_status(StatusKind kind, std::string* json);

    // Cancels every running and queued request; later calls fail.
    void shut_down();

private:
    Backend() = default;
    std::shared_ptr<ExecContext> find_exec(uint32_t exec, const char* call);
    ExecClaim claim_exec(uint32_t exec, const char* call) { return ExecClaim(find_exec(exec, call), call); }
    Status register_graph(const std::string& path, const std::string& share_as, const Config& cfg, uint32_t* graph);
    Status new_exec(std::shared_ptr<Graph> g, std::shared_ptr<Session> s, uint32_t* exec);
    Status compute_locked(ExecContext& e);
    // backend_embed.cpp: compute on an embedding or reranking graph.
    Status embed_locked(ExecContext& e);
    // backend_turn.cpp: a turn's start (prompt, hand-off to the loop) and end
    // (its record in the session). keep_partial: a stream ended early keeps
    // the text generated so far.
    Status start_turn(ExecContext& e, Turn* turn, bool streaming);
    Status end_turn(ExecContext& e, Turn& turn, const RequestResult& res, bool keep_partial);
    // Cancels an open stream's request if it runs, waits for it, and ends
    // the turn unless someone else already did. record: keep it in history.
    void close_stream(ExecContext& e, bool record);
    // Sessions share decode loops with other backend contexts: their keys
    // there carry this context's tag.
    std::string session_key(const std::string& id) const;
    void forget_sessions(const std::vector<std::string>& ids);

    Config config_;
    std::unique_ptr<SessionStore> sessions_;
    std::mutex mu_;
    std::unordered_map<uint32_t, std::shared_ptr<Graph>> graphs_;
    std::unordered_map<uint32_t, std::shared_ptr<ExecContext>> execs_;
    uint32_t next_graph_ = 0;
    uint32_t next_exec_ = 0;
    int64_t last_graph_ = -1;
    bool shut_down_ = false;
    bool runtime_held_ = false;
    std::string tag_;
};

}  // namespace wnl
