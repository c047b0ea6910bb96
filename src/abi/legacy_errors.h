// Engine status -> legacy wasi_nn_error.
#pragma once

#include "engine/status.h"
#include "wasi_nn_backend.h"

namespace wnl::abi {

constexpr wasi_nn_error to_legacy(Status s) {
    switch (s) {
        case Status::ok: return success;
        case Status::invalid_argument: return invalid_argument;
        case Status::invalid_encoding: return invalid_encoding;
        case Status::missing_memory: return runtime_error;  // no memory code in this ABI
        case Status::busy: return runtime_error;  // nor a busy code; the log line says busy
        case Status::timeout: return timeout;
        case Status::runtime_error: return runtime_error;
        case Status::unsupported_operation: return unsupported_operation;
        case Status::too_large: return too_large;
        case Status::not_found: return not_found;
        case Status::security: return security;
        case Status::end_of_sequence: return end_of_sequence;
        case Status::context_full: return context_full;
        case Status::prompt_too_long: return prompt_tool_long;
        case Status::model_not_found: return model_not_found;
        case Status::path_refused: return security;
    }
    return unknown;
}

}  // namespace wnl::abi
