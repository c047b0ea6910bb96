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

class Backend {
public:
    static Status create(std::string_view config_json, std::shared_ptr<Backend>* out);
    ~Backend();
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    Status load_file(std::string_view path, std::string_view config_json, uint32_t* graph);
    Status load_bytes(const uint8_t* data, size_t size, uint32_t* graph);
    // Ends the graph: later calls on execution contexts opened on it get
    // not_found (close_execution_context and fini_single still work); what
    // is queued or running finishes; its model is freed with its last
    // request (docs/models.md).
    Status unload(uint32_t graph);

    // Hot swap (backend_swap.cpp, docs/models.md): loads the model file
    // `name` with config_json (a graph config over this context's, plus
    // "force": true to skip the compatibility check) while the graph keeps
    // serving, then makes it the graph's model. Requests already running
    // finish on the old model; queued ones and every later one run on the
    // new one; sessions keep their text history. A load failure or an
    // incompatible model leaves the old model serving.
    Status swap_graph(uint32_t graph, std::string_view name, std::string_view config_json);
    // The swap itself, for a file already resolved (canonical path) and a
    // config already layered: what swap_graph calls, and what reloading a
    // policy alias calls for every graph loaded by that alias.
    Status swap_model(uint32_t graph, const std::string& canonical_path, const Config& cfg, bool force);

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
    // The call's hold on the handle; not_found once its graph was unloaded,
    // unless the call may still run then (fini_single).
    ExecClaim claim_exec(uint32_t exec, const char* call, bool after_unload = false);
    // The canonical path of a model file the host names, within model_dirs.
    Status model_file(std::string_view name, const char* call, std::string* canonical);
    // A model as a graph serves it: shared served model, chat format,
    // version (number 1; a swap renumbers it).
    Status make_graph_model(const std::string& path, const std::string& share_as, const Config& cfg,
                            std::shared_ptr<GraphModel>* out);
    Status register_graph(const std::string& path, const std::string& share_as, const Config& cfg, uint32_t* graph);
    // After a swap or unload took `old` off a graph: when no other graph of
    // this context serves from its decode loop, the loop forgets this
    // context's sessions (their parked KV is of a model they no longer use).
    void retire_model(const GraphModel& old);
    Status new_exec(std::shared_ptr<Graph> g, std::shared_ptr<Session> s, uint32_t* exec);
    Status compute_locked(ExecContext& e);
    // backend_turn.cpp: a turn's start (prompt, hand-off to the loop) and end
    // (its record in the session). keep_partial: a stream ended early keeps
    // the text generated so far.
    Status start_turn(ExecContext& e, Turn* turn, bool streaming);
    // The part of start_turn that a swap repeats: the prompt, built for the
    // graph's current model, handed to that model's loop. The session is
    // already the turn's.
    Status submit_turn(ExecContext& e, Turn* turn, bool streaming);
    // The request for one attempt at the turn on model m (prompt, settings).
    Status build_request(ExecContext& e, const GraphModel& m, Turn* turn, bool streaming,
                         std::shared_ptr<Request>* out);
    // A request a swap handed back: its turn starts again on the new model.
    // On failure the turn is given up (session freed) and the code returned.
    Status restart_turn(ExecContext& e, Turn* turn, bool streaming);
    // Ends a turn without recording it: frees the session and the model.
    void abandon_turn(ExecContext& e, Turn& turn);
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
