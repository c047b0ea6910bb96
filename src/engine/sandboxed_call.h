// Runs a function in a forked child process under a time, memory and output
// bound, for work whose cost a guest controls and that cannot be bounded
// from inside: rendering a Jinja template a guest supplied (a loop over
// range(10**9) or a parser recursion a million levels deep would otherwise
// run for minutes, grow without bound, or overflow the caller's stack). A
// child that runs past its time or output bound is killed; one that runs
// out of its memory bound fails its allocations; either way the caller gets
// an error and the process lives on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "engine/status.h"

namespace wnl {

struct SandboxBounds {
    int64_t time_ms = 3000;            // wall clock, from fork to the result
    size_t max_output = 8u << 20;      // bytes the function may return
    size_t max_memory = 512u << 20;    // address space the child may add
};

// The work: fills *out, or returns non-ok with *error saying why. It runs in
// a copy of this process with one thread (the caller's), so it must not wait
// for anything another thread would do, and must not log.
using SandboxedWork = std::function<Status(std::string* out, std::string* error)>;

// The function's own status and output, or invalid_argument with *error
// naming the bound it crossed (or a crash in the child). runtime_error when
// no child could be started (fork failed).
Status run_sandboxed(const SandboxedWork& work, const SandboxBounds& bounds, std::string* out, std::string* error);

// True in a run_sandboxed child: one thread, with the parent's mutexes as
// fork copied them (perhaps held), so the work must not wait on any.
bool in_sandbox_child();

}  // namespace wnl
