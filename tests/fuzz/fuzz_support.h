// Shared by the libFuzzer harnesses (docs/security.md, "Fuzzing"): quiet
// logging, where the test models are, and the failure report.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/config.h"
#include "engine/log.h"

namespace wnl::fuzz {

// The engine logs every refused input; at libFuzzer's rate that is
// megabytes a second. WNL_FUZZ_LOG=debug|info|warn|error shows it (when
// reproducing a finding).
inline LoggingConfig quiet_logging() {
    LoggingConfig l;
    l.level = LogLevel::none;
    if (const char* v = std::getenv("WNL_FUZZ_LOG")) {
        std::string s(v);
        l.level = s == "debug" ? LogLevel::debug
                : s == "info"  ? LogLevel::info
                : s == "warn"  ? LogLevel::warn
                : s == "error" ? LogLevel::error
                               : LogLevel::none;
    }
    return l;
}

inline void set_quiet_logging() {
    std::string err;
    configure_logging(quiet_logging(), &err);
}

// ../shared/models, or $WNL_FUZZ_MODELS.
inline std::string models_dir() {
    if (const char* v = std::getenv("WNL_FUZZ_MODELS")) return v;
    return WNL_MODELS_DIR;
}

// An invariant failed: say which, then abort so libFuzzer saves the input.
[[noreturn]] inline void fail(const char* harness, const std::string& what) {
    std::fprintf(stderr, "\n==%s== INVARIANT FAILED: %s\n", harness, what.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace wnl::fuzz

#define WNL_FUZZ_CHECK(harness, cond, what) \
    do {                                    \
        if (!(cond)) ::wnl::fuzz::fail(harness, std::string(#cond ": ") + (what)); \
    } while (0)
