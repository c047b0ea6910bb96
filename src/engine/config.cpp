// The JSON reader for Config (SPEC §2). One table maps each canonical key to
// a setter that checks type and range; aliases and hyphenated spellings are
// rewritten to a canonical key first, and sections are only descended into.
#include "engine/config.h"
#include "engine/config_value.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/guest_rules.h"
#include "engine/log.h"

namespace wnl {

const char* priority_name(Priority p) {
    switch (p) {
        case Priority::high: return "high";
        case Priority::normal: return "normal";
        case Priority::low: return "low";
    }
    return "unknown";
}

const char* log_level_name(LogLevel l) {
    switch (l) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
        case LogLevel::none: return "none";
    }
    return "unknown";
}

namespace {

using namespace config_detail;


void apply_object(const json& obj, ConfigScope scope, Config& cfg, DocState& doc) {
    for (const auto& item : obj.items()) {
        const std::string& raw = item.key();
        const json& value = item.value();
        const std::string key = canonical_key(raw);
        if (value.is_object() && is_section(key)) {
            apply_object(value, scope, cfg, doc);
            continue;
        }
        if (doc.guest) {
            std::string reason = host_only_reason(key, value.is_string() ? &value.get_ref<const std::string&>() : nullptr);
            if (!reason.empty()) throw ConfigError{raw == key ? reason : raw + " (" + reason + ")"};
        }
        auto it = settings().find(key);
        if (it == settings().end()) {
            log(LogLevel::warn, "config", "unknown key ignored", {{"key", raw}});
            continue;
        }
        if (scope != ConfigScope::backend && it->second.group == Group::limits) {
            log(LogLevel::warn, "config", "cap ignored: set only in the backend context's config", {{"key", raw}});
            continue;
        }
        if (scope == ConfigScope::request && !per_request(it->second.group)) {
            log(LogLevel::warn, "config", "key not applicable per request; ignored", {{"key", raw}});
            continue;
        }
        // JSON APIs commonly send null for "not set" (OpenAI clients: "stop": null).
        if (value.is_null()) {
            log(LogLevel::debug, "config", "null value ignored", {{"key", raw}});
            continue;
        }
        it->second.set(cfg, Value{raw, value, doc});
        doc.named.insert(key);
    }
}

// The parser's message without its "[json.exception.parse_error.101] " tag.
std::string parse_error_text(const char* what) {
    std::string s = what;
    size_t tag_end = s.find("] ");
    return tag_end == std::string::npos ? s : s.substr(tag_end + 2);
}

}  // namespace

Status apply_config_json(std::string_view text, ConfigScope scope, Config& cfg, std::string* error,
                         const GuestLimits* guest) {
    // Called from catch handlers, so it must not throw itself.
    auto reject = [error](Status status, const std::string& message) noexcept {
        try {
            if (error) *error = message;
            log(LogLevel::warn, "config", "config rejected", {{"error", message}});
        } catch (...) {
        }
        return status;
    };
    try {
        // C-string semantics: the length may count a trailing NUL, and
        // anything after a NUL is padding (the JSON parser stops there too).
        text = text.substr(0, text.find('\0'));
        if (is_blank(text)) {
            if (!guest) return Status::ok;
            text = "{}";  // a guest's blank document is still bounded by the ceilings
        }
        if (!nesting_within(text, kMaxNesting)) {
            return reject(Status::invalid_argument,
                          "config: nested deeper than " + std::to_string(kMaxNesting) + " levels");
        }
        json doc;
        try {
            doc = json::parse(text.begin(), text.end());
        } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e400
            return reject(Status::invalid_argument, "config: invalid JSON: " + parse_error_text(e.what()));
        }
        if (!doc.is_object()) {
            return reject(Status::invalid_argument, std::string("config: must be a JSON object, got ") + doc.type_name());
        }
        Config next = cfg;
        DocState state;
        state.guest = guest;
        apply_object(doc, scope, next, state);
        state.finish(next);
        std::string over;
        if (guest && !enforce_ceilings(state.named, cfg, next, *guest, &over)) {
            return reject(Status::invalid_argument, over);
        }
        cfg = std::move(next);
        return Status::ok;
    } catch (const ConfigError& e) {
        return reject(Status::invalid_argument, e.message);
    } catch (const std::bad_alloc&) {
        return reject(Status::runtime_error, "config: out of memory");
    } catch (const std::exception& e) {
        return reject(Status::invalid_argument, std::string("config: ") + e.what());
    } catch (...) {
        return reject(Status::runtime_error, "config: unexpected error");
    }
}

bool config_text_parses(std::string_view text, std::string* why) {
    text = text.substr(0, text.find('\0'));
    if (is_blank(text)) return true;
    if (!nesting_within(text, kMaxNesting)) {
        if (why) *why = "config: nested deeper than " + std::to_string(kMaxNesting) + " levels";
        return false;
    }
    try {
        const json doc = json::parse(text.begin(), text.end());
        (void)doc;
    } catch (const json::parse_error& e) {
        if (why) *why = "config: invalid JSON: " + parse_error_text(e.what());
        return false;
    } catch (const json::exception&) {
        // It parses; a value is out of range (1e400), which
        // apply_config_json refuses.
    }
    return true;
}

bool same_logging(const LoggingConfig& a, const LoggingConfig& b) {
    return a.level == b.level && a.file == b.file && a.json == b.json && a.components == b.components &&
           a.llama_log == b.llama_log && a.llama_debug_log == b.llama_debug_log && a.stream_stdout == b.stream_stdout;
}

}  // namespace wnl