// Process-wide structured logging (SPEC §3 "Logging").
//
// Design:
// - The settings live in one heap object that is never destroyed, so logging
//   from static destructors or late threads stays safe at process exit.
// - log_enabled() is a relaxed atomic load of the level on the hot path; the
//   component filter (rarely set) is read under a shared lock only when one is
//   configured.
// - A line is formatted completely outside any lock and then written with
//   one write(2) (looped on partial writes) under the write mutex, so lines
//   from concurrent threads never interleave. Output is unbuffered, so each
//   line is "flushed" as soon as it is written.
// - configure_logging() opens the new file before taking any lock; on failure
//   nothing changes. The old file descriptor is swapped out under the write
//   mutex and closed after it, so no thread can write to a closed (or reused)
//   descriptor.
#include "engine/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "llama.h"

namespace wnl {

// ---------------------------------------------------------------------------
// LogField(double)

LogField::LogField(std::string k, double v) : key(std::move(k)), quoted(false) {
    if (std::isnan(v)) {
        value = "nan";
        quoted = true;  // not a JSON number: emitted as a JSON string
        return;
    }
    if (std::isinf(v)) {
        value = v > 0 ? "inf" : "-inf";
        quoted = true;
        return;
    }
    // Fixed notation with 3 decimals, locale-independent; then trailing zeros
    // (and a bare '.') are dropped: 12.3456 -> "12.346", 1.5 -> "1.5", 2 -> "2".
    char buf[512];  // DBL_MAX in fixed notation is 309 digits + ".000"
    auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, 3);
    std::string s = (res.ec == std::errc()) ? std::string(buf, res.ptr) : std::string("0");
    if (s.find('.') != std::string::npos) {
        while (!s.empty() && s.back() == '0') s.pop_back();
        if (!s.empty() && s.back() == '.') s.pop_back();
    }
    if (s == "-0" || s.empty()) s = "0";
    value = std::move(s);
}

namespace {

// ---------------------------------------------------------------------------
// State

constexpr int kFdStderr = STDERR_FILENO;

struct LoggerState {
    std::atomic<int> level{static_cast<int>(LogLevel::info)};
    std::atomic<bool> json{false};
    std::atomic<bool> has_filter{false};
    std::atomic<bool> llama_log{false};
    std::atomic<bool> llama_debug_log{false};

    std::shared_mutex filter_mu;
    std::vector<std::string> components;  // guarded by filter_mu

    std::mutex configure_mu;  // serialises configure_logging() calls

    std::mutex write_mu;
    int fd = kFdStderr;  // guarded by write_mu; kFdStderr or an owned file
    std::string file;    // guarded by write_mu; "" = stderr
};

LoggerState& state() {
    // Deliberately leaked: see the note at the top of the file.
    static LoggerState* s = new LoggerState();
    return *s;
}

// Local names: log_level_name() lives in config.cpp; the logger keeps its own
// spellings so it does not depend on it.
const char* json_level(LogLevel l) {
    switch (l) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
        case LogLevel::none: return "none";
    }
    return "info";
}

const char* text_level(LogLevel l) {  // padded to 5 columns
    switch (l) {
        case LogLevel::debug: return "DEBUG";
        case LogLevel::info: return "INFO ";
        case LogLevel::warn: return "WARN ";
        case LogLevel::error: return "ERROR";
        case LogLevel::none: return "NONE ";
    }
    return "INFO ";
}

// ---------------------------------------------------------------------------
// Encoding helpers

// Length of the well-formed UTF-8 sequence starting at s (n bytes left), or 0
// when the byte at s does not start one (stray continuation byte, overlong
// form, surrogate, code point past U+10FFFF, truncated sequence).
size_t utf8_len(const unsigned char* s, size_t n) {
    const unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    auto cont = [&](size_t i) { return i < n && (s[i] & 0xC0) == 0x80; };
    if (c < 0xE0) return cont(1) ? 2 : 0;
    if (c < 0xF0) {
        if (!cont(1) || !cont(2)) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;   // overlong
        if (c == 0xED && s[1] >= 0xA0) return 0;  // UTF-16 surrogate
        return 3;
    }
    if (c < 0xF5) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;   // overlong
        if (c == 0xF4 && s[1] >= 0x90) return 0;  // > U+10FFFF
        return 4;
    }
    return 0;
}

const char kHex[] = "0123456789abcdef";

// JSON string contents (without the surrounding quotes). Control characters
// are escaped; each byte that is not part of well-formed UTF-8 becomes
// \ufffd, so the output is always valid JSON and valid UTF-8.
void append_json_escaped(std::string& out, std::string_view in) {
    const auto* s = reinterpret_cast<const unsigned char*>(in.data());
    const size_t n = in.size();
    size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; ++i; continue;
            case '\\': out += "\\\\"; ++i; continue;
            case '\n': out += "\\n"; ++i; continue;
            case '\r': out += "\\r"; ++i; continue;
            case '\t': out += "\\t"; ++i; continue;
            case '\b': out += "\\b"; ++i; continue;
            case '\f': out += "\\f"; ++i; continue;
            default: break;
        }
        if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
            ++i;
            continue;
        }
        const size_t len = utf8_len(s + i, n - i);
        if (len == 0) {
            out += "\\ufffd";
            ++i;
        } else {
            out.append(reinterpret_cast<const char*>(s + i), len);
            i += len;
        }
    }
}

// Text output: keeps each entry on one line. Control characters become C
// escapes (\n, \t, \xHH), bytes outside well-formed UTF-8 become \xHH. With
// in_quotes, '"' and '\\' are escaped too.
void append_text_escaped(std::string& out, std::string_view in, bool in_quotes) {
    const auto* s = reinterpret_cast<const unsigned char*>(in.data());
    const size_t n = in.size();
    size_t i = 0;
    auto hex = [&](unsigned char c) {
        out += "\\x";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    };
    while (i < n) {
        const unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7F) {
            if (in_quotes && (c == '"' || c == '\\')) out.push_back('\\');
            out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        if (c == '\n') { out += "\\n"; ++i; continue; }
        if (c == '\r') { out += "\\r"; ++i; continue; }
        if (c == '\t') { out += "\\t"; ++i; continue; }
        if (c < 0x20 || c == 0x7F) { hex(c); ++i; continue; }
        const size_t len = utf8_len(s + i, n - i);
        if (len == 0) {
            hex(c);
            ++i;
        } else {
            out.append(reinterpret_cast<const char*>(s + i), len);
            i += len;
        }
    }
}

// A text value is quoted when it is empty or holds anything that would make
// "key=value" ambiguous: whitespace, '"', '=', '\\', control characters or
// bytes outside well-formed UTF-8.
bool text_needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    const auto* s = reinterpret_cast<const unsigned char*>(v.data());
    const size_t n = v.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = s[i];
        if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c == 0x7F) return true;
        if (c < 0x80) { ++i; continue; }
        const size_t len = utf8_len(s + i, n - i);
        if (len == 0) return true;
        i += len;
    }
    return false;
}

// An unquoted field must be a JSON literal; the LogField constructors only
// make integers, "true"/"false" and fixed-point numbers, but the members are
// public, so anything else is emitted as a string rather than corrupt JSON.
bool is_json_literal(std::string_view v) {
    if (v == "true" || v == "false" || v == "null") return true;
    size_t i = 0;
    const size_t n = v.size();
    if (i < n && v[i] == '-') ++i;
    if (i >= n) return false;
    if (v[i] == '0') {
        ++i;
    } else if (v[i] >= '1' && v[i] <= '9') {
        while (i < n && v[i] >= '0' && v[i] <= '9') ++i;
    } else {
        return false;
    }
    if (i < n && v[i] == '.') {
        ++i;
        const size_t start = i;
        while (i < n && v[i] >= '0' && v[i] <= '9') ++i;
        if (i == start) return false;
    }
    if (i < n && (v[i] == 'e' || v[i] == 'E')) {
        ++i;
        if (i < n && (v[i] == '+' || v[i] == '-')) ++i;
        const size_t start = i;
        while (i < n && v[i] >= '0' && v[i] <= '9') ++i;
        if (i == start) return false;
    }
    return i == n;
}

void append_timestamp(std::string& out) {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
    time_t secs = static_cast<time_t>(ms / 1000);
    int millis = static_cast<int>(ms % 1000);
    if (millis < 0) {  // before 1970: keep the remainder positive
        millis += 1000;
        --secs;
    }
    struct tm tm_utc {};
    gmtime_r(&secs, &tm_utc);
    char buf[64];
    const size_t len = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm_utc);
    out.append(buf, len);
    std::snprintf(buf, sizeof(buf), ".%03dZ", millis);
    out += buf;
}

bool is_reserved_json_key(std::string_view k) {
    return k == "ts" || k == "level" || k == "component" || k == "msg";
}

std::string format_line(bool json, LogLevel level, std::string_view component,
                        std::string_view message, std::initializer_list<LogField> fields) {
    std::string out;
    out.reserve(64 + component.size() + message.size() + fields.size() * 24);
    if (json) {
        out += "{\"ts\":\"";
        append_timestamp(out);
        out += "\",\"level\":\"";
        out += json_level(level);
        out += "\",\"component\":\"";
        append_json_escaped(out, component);
        out += "\",\"msg\":\"";
        append_json_escaped(out, message);
        out += '"';
        for (const LogField& f : fields) {
            out += ",\"";
            // A field may not shadow the fixed keys: it is renamed "_<key>".
            if (is_reserved_json_key(f.key)) out += '_';
            append_json_escaped(out, f.key);
            out += "\":";
            if (!f.quoted && is_json_literal(f.value)) {
                out += f.value;
            } else {
                out += '"';
                append_json_escaped(out, f.value);
                out += '"';
            }
        }
        out += "}\n";
    } else {
        append_timestamp(out);
        out += ' ';
        out += text_level(level);
        out += " [";
        append_text_escaped(out, component, false);
        out += ']';
        if (!message.empty()) {
            out += ' ';
            append_text_escaped(out, message, false);
        }
        for (const LogField& f : fields) {
            out += ' ';
            append_text_escaped(out, f.key, false);
            out += '=';
            if (f.quoted && text_needs_quotes(f.value)) {
                out += '"';
                append_text_escaped(out, f.value, true);
                out += '"';
            } else {
                append_text_escaped(out, f.value, false);
            }
        }
        out += '\n';
    }
    return out;
}

void write_all(int fd, const std::string& line) {
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        const ssize_t w = ::write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;  // nowhere to report a failing log sink
        }
        p += w;
        left -= static_cast<size_t>(w);
    }
}

void emit(LogLevel level, std::string_view component, std::string_view message,
          std::initializer_list<LogField> fields) {
    LoggerState& st = state();
    const std::string line =
        format_line(st.json.load(std::memory_order_relaxed), level, component, message, fields);
    std::lock_guard<std::mutex> lock(st.write_mu);
    write_all(st.fd, line);
}

void close_owned(int fd) {
    if (fd >= 0 && fd != kFdStderr) ::close(fd);
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

Status configure_logging(const LoggingConfig& cfg, std::string* error) {
    LoggerState& st = state();
    // Two concurrent configures must not leave a mix of both.
    std::lock_guard<std::mutex> configure_lock(st.configure_mu);

    int new_fd = kFdStderr;
    if (!cfg.file.empty()) {
        new_fd = ::open(cfg.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (new_fd < 0) {
            const int err = errno;
            if (error) {
                *error = "logging.file: cannot open '" + cfg.file + "': " + std::strerror(err);
            }
            return Status::invalid_argument;
        }
    }

    {
        std::unique_lock<std::shared_mutex> lock(st.filter_mu);
        st.components = cfg.components;
        st.has_filter.store(!cfg.components.empty(), std::memory_order_relaxed);
    }
    st.json.store(cfg.json, std::memory_order_relaxed);
    st.llama_log.store(cfg.llama_log, std::memory_order_relaxed);
    st.llama_debug_log.store(cfg.llama_debug_log, std::memory_order_relaxed);

    int old_fd;
    {
        std::lock_guard<std::mutex> lock(st.write_mu);
        old_fd = st.fd;
        st.fd = new_fd;
        st.file = cfg.file;
    }
    close_owned(old_fd);

    // Last, so a line let through by the new level already sees the new sink.
    st.level.store(static_cast<int>(cfg.level), std::memory_order_relaxed);
    return Status::ok;
}

void reset_logging() {
    std::string ignored;
    configure_logging(LoggingConfig{}, &ignored);  // stderr: cannot fail
}

bool log_enabled(LogLevel level, std::string_view component) {
    LoggerState& st = state();
    const int current = st.level.load(std::memory_order_relaxed);
    if (level == LogLevel::none || current == static_cast<int>(LogLevel::none)) return false;
    if (static_cast<int>(level) < current) return false;
    // Component filter. Choice: it applies to every level except error —
    // an error line is always printed (unless the level is none), so a
    // narrow filter set while debugging one component cannot hide failures
    // elsewhere.
    if (level == LogLevel::error || !st.has_filter.load(std::memory_order_relaxed)) return true;
    std::shared_lock<std::shared_mutex> lock(st.filter_mu);
    if (st.components.empty()) return true;  // filter cleared concurrently
    return std::find(st.components.begin(), st.components.end(), component) !=
           st.components.end();
}

void log(LogLevel level, std::string_view component, std::string_view message,
         std::initializer_list<LogField> fields) {
    if (!log_enabled(level, component)) return;
    emit(level, component, message, fields);
}

// ---------------------------------------------------------------------------
// llama.cpp / ggml log hook

namespace {

constexpr std::string_view kLlamaComponent = "llama";
constexpr size_t kMaxPendingLine = 64 * 1024;  // emit a line this long even without '\n'

// llama.cpp delivers a line in fragments (printf-sized pieces, and
// GGML_LOG_LEVEL_CONT pieces that continue the previous line: the model
// loader's progress dots, for one). Fragments are gathered per thread until a
// newline. `level` is the level of the line being gathered; it is kept after
// the line is emitted so a CONT that opens a fresh line inherits it.
struct PendingLine {
    std::string text;
    ggml_log_level level = GGML_LOG_LEVEL_INFO;
    ~PendingLine();
};

// Set when this thread's PendingLine is destroyed. At exit the main thread's
// thread_locals go before static objects, and those still log: a backend
// context the host never deinitialised frees its llama_context then.
thread_local bool t_pending_gone = false;
thread_local PendingLine t_pending;
PendingLine::~PendingLine() { t_pending_gone = true; }

void emit_llama_line(ggml_log_level ll, std::string& text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.empty()) return;
    LoggerState& st = state();
    LogLevel level;
    switch (ll) {
        case GGML_LOG_LEVEL_ERROR: level = LogLevel::error; break;
        case GGML_LOG_LEVEL_WARN: level = LogLevel::warn; break;
        case GGML_LOG_LEVEL_DEBUG:
            if (!st.llama_debug_log.load(std::memory_order_relaxed)) return;
            level = LogLevel::debug;
            break;
        default:  // INFO, and NONE (llama.cpp's unlevelled LLAMA_LOG / GGML_LOG)
            if (!st.llama_log.load(std::memory_order_relaxed) &&
                !st.llama_debug_log.load(std::memory_order_relaxed)) {
                return;
            }
            level = LogLevel::info;
            break;
    }
    wnl::log(level, kLlamaComponent, text);
}

void flush_pending() {
    PendingLine& p = t_pending;
    emit_llama_line(p.level, p.text);
    p.text.clear();
}

std::atomic<bool> g_llama_log_stopped{false};

void llama_log_callback(ggml_log_level level, const char* text, void* /*user_data*/) {
    if (text == nullptr || g_llama_log_stopped.load(std::memory_order_acquire)) return;
    if (t_pending_gone) {  // exiting: nothing left to gather fragments in
        std::string piece(text);
        emit_llama_line(level == GGML_LOG_LEVEL_CONT ? GGML_LOG_LEVEL_INFO : level, piece);
        return;
    }
    PendingLine& p = t_pending;
    if (level != GGML_LOG_LEVEL_CONT) {
        if (!p.text.empty()) flush_pending();  // the previous line never got its '\n'
        p.level = level;
    }
    const char* s = text;
    while (*s != '\0') {
        const char* nl = std::strchr(s, '\n');
        if (nl == nullptr) {
            p.text.append(s);
            if (p.text.size() >= kMaxPendingLine) flush_pending();
            break;
        }
        p.text.append(s, static_cast<size_t>(nl - s));
        flush_pending();
        s = nl + 1;
    }
}

}  // namespace

void stop_llama_log_hook() { g_llama_log_stopped.store(true, std::memory_order_release); }

void install_llama_log_hook() {
    static std::once_flag once;
    std::call_once(once, [] {
        // At this llama.cpp version llama_log_set() also calls ggml_log_set();
        // the explicit call keeps ggml routed should that ever change.
        llama_log_set(llama_log_callback, nullptr);
        ggml_log_set(llama_log_callback, nullptr);
    });
}

}  // namespace wnl
