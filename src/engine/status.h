// The engine's result codes. Each ABI maps them to its own numbers
// (src/abi/*_errors.h); the engine never sees an ABI's enum.
#pragma once

namespace wnl {

enum class Status {
    ok = 0,
    invalid_argument,
    invalid_encoding,
    missing_memory,
    busy,
    timeout,
    runtime_error,
    unsupported_operation,
    too_large,
    not_found,
    security,
    end_of_sequence,
    context_full,
    prompt_too_long,
    model_not_found,
    // A model path the host's policy does not let a guest load. One code
    // whether or not the file exists, so refusals reveal nothing about the
    // host's file system.
    path_refused,
};

const char* status_name(Status s);

}  // namespace wnl
