// One backend context (what init_backend returns): its graphs, execution
// contexts and named sessions. Everything an ABI shim calls is here, in
// ABI-neutral types; models and decode loops are shared process-wide.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "engine/config.h"
#include "engine/durable_store.h"
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
    // Reads the host's policy again (WASI_NN_LLAMA_POLICY, with this
    // context's init_backend_with_config section over it) and takes its
    // model aliases: every graph of this context loaded by an alias whose
    // path or config changed is swapped to what the alias names now, as
    // swap_graph would (the guest's load config kept). Ceilings, host
    // configs and path rules stay as the context opened with. The first
    // failure is returned; the graphs it concerns keep their model.
    Status reload_aliases();

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
    // A model as a graph serves it: shared served model, chat format,
    // version (number 1; a swap renumbers it). guest_template: the chat
    // template is the guest's choice (its config changed it, or it came
    // inside GGUF bytes the guest sent), so it is rendered under bounds
    // (sandboxed_call.h).
    Status make_graph_model(const std::string& path, const std::string& share_as, const Config& cfg,
                            bool guest_template, std::shared_ptr<GraphModel>* out);
    Status register_graph(const std::string& path, const std::string& share_as, const Config& cfg, uint32_t* graph,
                          bool guest_template, const std::string& alias = "");
    // Where a guest's model name leads: the file's real path, or why not.
    Status guest_model_path(const std::string& name, std::string* canonical);
    // What load_by_name_with_config makes of a name and a graph config (a
    // policy alias's path and config, or a guest path under the path
    // rules; the config over the host's, held to the ceilings): the
    // canonical path, the config, and what else a load needs to know.
    struct ModelRequest {
        std::string name;  // as given, without trailing NULs
        std::string canonical;
        std::string load_key;  // what repeated loads share a graph by (Graph::load_key)
        Config cfg;
        bool by_alias = false;
        ModelAlias alias;  // what the alias named, when by_alias
        bool guest_template = false;
    };
    Status resolve_model(const std::string& name, std::string_view config_json, const char* call, ModelRequest* out);
    // The swap itself (backend_swap.cpp), for a model resolve_model found.
    Status swap_model(uint32_t graph, const ModelRequest& req);
    // After a swap or unload took `old` off a graph: when no other graph of
    // this context serves from its decode loop, the loop forgets this
    // context's sessions (their parked KV is of a model they no longer use).
    void retire_model(const GraphModel& old);
    Status new_exec(std::shared_ptr<Graph> g, std::shared_ptr<Session> s, uint32_t* exec);
    // backend_limits.cpp: the caps of limits.h on what this context holds
    // (mu_ held). busy, with a log line naming the cap, when one more graph
    // served under `served_key`, or one more execution context, would pass.
    // new_graph false: a swap, which replaces a graph's model (only the
    // loop cap applies).
    Status check_graph_room(const std::string& served_key, bool new_graph = true) const;
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
    // A turn that should be recorded but could not be stored returns the
    // store's error instead of the request's, with *store_failed set.
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
    Status end_turn(ExecContext& e, Turn& turn, const RequestResult& res, bool keep_partial,
                    bool* store_failed = nullptr);
    // The turn into the session's history: into its session store first
    // (when it has one), then into memory, so that memory is never ahead.
    Status record_turn(ExecContext& e, const Turn& turn, const RequestResult& res);
    // Cancels an open stream's request if it runs, waits for it, and ends
    // the turn unless someone else already did. record: keep it in history
    // (an error when that could not be stored).
    Status close_stream(ExecContext& e, bool record);
    // Sessions share decode loops with other backend contexts: their keys
    // there carry this context's tag, or, for named sessions of a session
    // store, the namespace's (the same in every context that shares it).
    std::string session_key(const Session& s) const;
    std::string named_key(const std::string& id) const;
    void forget_sessions(const std::vector<std::string>& named_ids);
    void forget_keys(const std::vector<std::string>& keys);
    // Whose KV a request on the session may reuse as a prefix: this
    // context's, or for a named session of a session store its namespace's
    // (the contexts that share a namespace share its sessions), or every
    // context's with share_kv "process".
    std::string kv_tenant(const Session& s) const;
    // deinit_backend with a session store: every idle stored session's KV
    // state to its file.
    void save_stored_sessions();
    bool guest_paths_allowed() const;
    nlohmann::ordered_json policy_json() const;  // backend_status.cpp

    Config config_;  // the host's: defaults, policy, init_backend_with_config
    // As it was when this context opened, but for its aliases, which
    // reload_aliases replaces: read through policy().
    std::shared_ptr<const Policy> policy_;
    mutable std::mutex policy_mu_;
    std::shared_ptr<const Policy> policy() const;
    std::string init_config_;  // init_backend_with_config's text, for reload_aliases
    GuestLimits limits_;  // what guests' documents are held to
    std::shared_ptr<StoreNamespace> store_;  // declared before sessions_, which may be its SessionStore
    std::atomic<bool> store_held_{false};
    bool named_stay_ = false;  // another backend context still serves the namespace
    std::shared_ptr<SessionStore> sessions_;
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
