// Process-wide structured logging (SPEC §3 "Logging").
//
// One logger serves every backend context: llama.cpp's own log hook is
// process-wide, so a per-context logger could not own it. The most recent
// configure_logging() wins.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include "engine/config.h"
#include "engine/status.h"

namespace wnl {

// A key/value pair attached to a log line. Strings are quoted in JSON
// output; numbers and booleans are not.
struct LogField {
    std::string key;
    std::string value;
    bool quoted;

    LogField(std::string k, std::string_view v) : key(std::move(k)), value(v), quoted(true) {}
    LogField(std::string k, const char* v) : key(std::move(k)), value(v ? v : ""), quoted(true) {}
    LogField(std::string k, const std::string& v) : key(std::move(k)), value(v), quoted(true) {}
    LogField(std::string k, bool v) : key(std::move(k)), value(v ? "true" : "false"), quoted(false) {}
    LogField(std::string k, double v);
    LogField(std::string k, float v) : LogField(std::move(k), static_cast<double>(v)) {}
    template <typename T, typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
    LogField(std::string k, T v) : key(std::move(k)), value(std::to_string(v)), quoted(false) {}
};

// Applies level, file, format, component filter and the llama.cpp log
// mapping. An unwritable file returns invalid_argument with *error set, and
// the previous settings stay in force.
Status configure_logging(const LoggingConfig& cfg, std::string* error);

// Back to the defaults (info, text, stderr, all components).
void reset_logging();

bool log_enabled(LogLevel level, std::string_view component);

void log(LogLevel level, std::string_view component, std::string_view message,
         std::initializer_list<LogField> fields = {});

// Routes llama.cpp's and ggml's log through log() under component "llama".
// Idempotent; called when the llama.cpp runtime is first initialised.
void install_llama_log_hook();
// From now on llama.cpp's and ggml's own lines are dropped. For the exit
// teardown (process_exit.h): a thread that first logs through the hook then
// registers a thread_local destructor in this library, which, registered
// while the library is being unloaded, would run after its code is gone.
void stop_llama_log_hook();

}  // namespace wnl
