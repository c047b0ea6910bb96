// One turn of a session in flight: the request handed to the decode loop and
// what is needed to record the turn in the session's history when it ends.
// compute() starts and ends a turn in one call; the streaming calls
// (compute_single ... fini_single) keep it open across calls.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "engine/config.h"
#include "engine/graph.h"
#include "engine/prompt_builder.h"
#include "engine/request.h"

namespace wnl {

struct Turn {
    // Replaced when a swap hands the request back unstarted and the turn
    // starts again on the graph's new model. A stream's request and model
    // change under its ExecContext's inflight_mu.
    std::shared_ptr<Request> req;
    ModelUse model;  // the model the request runs on, until the turn ends
    PromptPlan plan;
    std::string input;  // the message, as set_input gave it at the start
    Priority priority = Priority::normal;
    // Set once, by whoever ends the turn (the streaming call that sees the
    // end, fini_single, or close / deinit).
    std::atomic<bool> ended{false};
    Status end_status = Status::ok;  // what compute_single returns after the end
    std::string piece;               // streaming: the text the last compute_single returned
};

}  // namespace wnl
