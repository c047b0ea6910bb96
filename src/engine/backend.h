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

#include <nlohmann/json_fwd.hpp>

#include "engine/config.h"
#include "engine/exec_context.h"
#include "engine/graph.h"
#include "engine/guest_rules.h"
#include "engine/policy.h"
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
    // guest_template: the chat template is the guest's choice (its config
    // changed it, or it came inside GGUF bytes the guest sent), so it is
    // rendered under bounds (sandboxed_call.h).
    Status register_graph(const std::string& path, const std::string& share_as, const Config& cfg, uint32_t* graph,
                          bool guest_template, const std::string& alias = "");
    // Where a guest's model name leads: the file's real path, or why not.
    Status guest_model_path(const std::string& name, std::string* canonical);
    Status new_exec(std::shared_ptr<Graph> g, std::shared_ptr<Session> s, uint32_t* exec);
    // backend_limits.cpp: the caps of limits.h on what this context holds
    // (mu_ held). busy, with a log line naming the cap, when one more graph
    // served under `served_key`, or one more execution context, would pass.
    Status check_graph_room(const std::string& served_key) const;
    Status check_exec_room() const;
    // A request's settings and the text it sends, against the caps.
    Status check_request(const Config& cfg, const char* what) const;
    // The key of a named session's shared handle on a graph.
    static std::string session_exec_key(const std::string& session_id, uint32_t graph);
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
    bool guest_paths_allowed() const;
    nlohmann::ordered_json policy_json() const;  // backend_status.cpp

    Config config_;  // the host's: defaults, policy, init_backend_with_config
    std::shared_ptr<const Policy> policy_;  // as it was when this context opened
    GuestLimits limits_;  // what guests' documents are held to
    std::unique_ptr<SessionStore> sessions_;
    std::mutex mu_;
    std::unordered_map<uint32_t, std::shared_ptr<Graph>> graphs_;
    std::unordered_map<uint32_t, std::shared_ptr<ExecContext>> execs_;
    // Graph handles by what was loaded (Graph::load_key), so that a repeated
    // load of the same file and config returns the same handle.
    std::unordered_map<std::string, uint32_t> loads_;
    // The open handle of each named session on each graph
    // (session_exec_key), shared by every init on it.
    std::unordered_map<std::string, uint32_t> session_execs_;
    // Serialises load_file's lookup and registration, so that two threads
    // loading the same file at once get one handle.
    std::mutex load_mu_;
    uint32_t next_graph_ = 0;
    // From 1: hosts keep "no handle" as 0 (HyperBEAM closes only a non-zero
    // one), so handle 0 would never be closed.
    uint32_t next_exec_ = 1;
    int64_t last_graph_ = -1;
    bool shut_down_ = false;
    bool runtime_held_ = false;
    std::string tag_;  // this context's tenant, and the prefix of its session keys
};

}  // namespace wnl
