// Engine status -> WAMR 2.4 wasi_nn_error.
#pragma once

#include "engine/status.h"
#include "wasi_nn_llamacpp.h"

namespace wnl::abi {

constexpr wasi_nn_error to_wamr(Status s) {
    switch (s) {
        case Status::ok: return success;
        case Status::invalid_argument: return invalid_argument;
        case Status::invalid_encoding: return invalid_encoding;
        case Status::missing_memory: return missing_memory;
        case Status::busy: return busy;
        case Status::timeout: return busy;  // WAMR has no timeout code
        case Status::runtime_error: return runtime_error;
        case Status::unsupported_operation: return unsupported_operation;
        case Status::too_large: return too_large;
        case Status::not_found: return not_found;
        case Status::security: return invalid_argument;  // no security code either
        case Status::end_of_sequence: return end_of_sequence;
        case Status::context_full: return context_full;
        case Status::prompt_too_long: return prompt_tool_long;
        case Status::model_not_found: return model_not_found;
        // Not model_not_found: a refused path must not look like a missing one.
        case Status::path_refused: return not_found;
    }
    return runtime_error;
}

}  // namespace wnl::abi
