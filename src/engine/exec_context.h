// What an execution-context handle refers to: a session on a graph, the
// pending input and the last result.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "engine/graph.h"
#include "engine/request.h"
#include "engine/session.h"
#include "engine/status.h"
#include "engine/turn.h"

namespace wnl {

struct ExecContext {
    uint32_t id = 0;
    std::shared_ptr<Graph> graph;
    std::shared_ptr<Session> session;
    // init_execution_context_with_session_id on a named session that already
    // has a handle on this graph returns that handle and counts one more
    // holder; close_execution_context takes one away and closes the handle
    // at zero. Guarded by Backend::mu_.
    uint32_t holders = 1;

    std::string input;  // set_input index 0
    bool has_input = false;
    std::string options;  // set_input index 1: per-request JSON
    std::string output;  // get_output index 0
    std::string metadata;  // get_output index 1
    bool has_output = false;

    // One call at a time per handle; a second concurrent call gets busy.
    std::atomic<bool> in_call{false};
    std::atomic<bool> closed{false};
    std::mutex inflight_mu;
    std::shared_ptr<Request> inflight;  // the running request, for cancellation
    // An open stream (compute_single until fini_single). Set and reset under
    // in_call and inflight_mu, so close and deinit may read it under the mutex.
    std::shared_ptr<Turn> stream;
};

// One call's hold on an execution context: it owns ExecContext::in_call for
// the length of the call, or says why it could not: not_found (unknown or
// closed handle, logged by the lookup) or busy (another call holds it;
// logged here).
class ExecClaim {
public:
    ExecClaim(std::shared_ptr<ExecContext> e, const char* call);
    ~ExecClaim() {
        if (owned_) e_->in_call = false;
    }
    ExecClaim(const ExecClaim&) = delete;
    ExecClaim& operator=(const ExecClaim&) = delete;

    explicit operator bool() const { return owned_; }
    Status status() const { return !e_ ? Status::not_found : owned_ ? Status::ok : Status::busy; }
    ExecContext* operator->() const { return e_.get(); }
    ExecContext& operator*() const { return *e_; }

private:
    std::shared_ptr<ExecContext> e_;
    bool owned_;
};

}  // namespace wnl
