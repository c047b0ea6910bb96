// What config.cpp's reader and config_keys.cpp's key table share: the
// document's state, one value with its checked conversions, and the table's
// entry type. Private to those two files.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/config.h"
#include "engine/guest_rules.h"

namespace wnl::config_detail {

// Objects keep the guest's key order, so "last one wins" follows the
// document rather than alphabetical order (enable-debug-log then level, say).
using json = nlohmann::ordered_json;

// Documents deeper than this are refused before parsing: json_schema is
// serialised and later converted to a grammar by recursive code, and section
// descent recurses too.
constexpr int kMaxNesting = 64;

// llama.cpp's llama_max_devices(); a longer tensor_split could not be passed.
constexpr size_t kMaxTensorSplit = 16;

constexpr int64_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Thrown by a setter and caught in apply_config_json; never escapes it.
struct ConfigError {
    std::string message;
};

inline bool nesting_within(std::string_view text, int limit) {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (char ch : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (ch == '\\') {
                escaped = true;
            } else if (ch == '"') {
                in_string = false;
            }
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > limit) return false;
        } else if (ch == ']' || ch == '}') {
            --depth;
        }
    }
    return true;
}

inline bool is_blank(std::string_view text) {
    for (char ch : text) {
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n' && ch != '\f' && ch != '\v') return false;
    }
    return true;
}

inline std::string ascii_lower(std::string s) {
    for (char& ch : s) {
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    return s;
}

inline std::string trim(std::string_view s) {
    size_t b = 0;
    size_t e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return std::string(s.substr(b, e - b));
}

inline std::vector<std::string> split_list(std::string_view s, std::string_view separators) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t end = s.find_first_of(separators, start);
        if (end == std::string_view::npos) end = s.size();
        std::string item = trim(s.substr(start, end - start));
        if (!item.empty()) out.push_back(std::move(item));
        start = end + 1;
    }
    return out;
}

// Stop strings interact across keys: the first "stop" in a document replaces
// the layer below's list, while reverse_prompt/antiprompt (WasmEdge) append
// to whatever the list ends up being. Collected here, written at the end.
struct DocState {
    std::optional<std::vector<std::string>> stop;
    std::vector<std::string> extra_stops;
    const GuestLimits* guest = nullptr;  // the document is a guest's
    std::set<std::string> named;  // canonical keys the document set

    void finish(Config& cfg) const {
        if (!stop && extra_stops.empty()) return;
        std::vector<std::string> out;
        // A guest may send a very long list: a hash set keeps this linear
        // (the count is capped later, by check_request_limits).
        std::unordered_set<std::string> seen;
        auto add = [&out, &seen](const std::string& s) {
            if (s.empty()) return;  // would match everywhere
            if (seen.insert(s).second) out.push_back(s);
        };
        for (const auto& s : stop ? *stop : cfg.stopping.stop) add(s);
        for (const auto& s : extra_stops) add(s);
        cfg.stopping.stop = std::move(out);
    }
};

// One setting as the document gives it, with checked conversions. Every
// failure names the key as the guest spelled it.
struct Value {
    const std::string& key;
    const json& v;
    DocState& doc;

    [[noreturn]] void fail(const std::string& what) const { throw ConfigError{key + ": " + what}; }

    std::string describe() const {
        if (v.is_array() || v.is_object()) return std::string("an ") + v.type_name();
        std::string s = v.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
        if (s.size() > 48) s = s.substr(0, 45) + "...";
        return s;
    }

    [[noreturn]] void wrong_type(const std::string& expected) const {
        fail("must be " + expected + ", got " + describe());
    }

    [[noreturn]] void out_of_range(const std::string& lo, const std::string& hi, bool bounded) const {
        if (bounded) fail("must be between " + lo + " and " + hi + ", got " + describe());
        fail("must be at least " + lo + ", got " + describe());
    }

    // A JSON integer, or a float with an integral value (2048.0).
    int64_t integer(int64_t lo, int64_t hi) const {
        const bool bounded = hi != kI32Max && hi != kI64Max;
        auto range = [&] { out_of_range(std::to_string(lo), std::to_string(hi), bounded); };
        int64_t x = 0;
        if (v.is_number_unsigned()) {
            auto u = v.get<uint64_t>();
            if (u > static_cast<uint64_t>(kI64Max)) range();
            x = static_cast<int64_t>(u);
        } else if (v.is_number_integer()) {
            x = v.get<int64_t>();
        } else if (v.is_number_float()) {
            double d = v.get<double>();
            if (!(d == std::trunc(d))) wrong_type("an integer");
            // Outside ±9e18 the cast below would be undefined.
            if (!(d >= -9.0e18 && d <= 9.0e18)) range();
            x = static_cast<int64_t>(d);
        } else {
            wrong_type("an integer");
        }
        if (x < lo || x > hi) range();
        return x;
    }

    int32_t int32(int64_t lo, int64_t hi = kI32Max) const { return static_cast<int32_t>(integer(lo, hi)); }

    double number(double lo, double hi) const {
        if (!v.is_number()) wrong_type("a number");
        double d = v.get<double>();
        auto fmt = [](double x) {
            std::string s = json(x).dump();
            if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
            return s;
        };
        if (!std::isfinite(d)) fail("must be a finite number, got " + describe());
        if (d < lo || d > hi) out_of_range(fmt(lo), fmt(hi), std::isfinite(hi));
        return d;
    }

    float real(double lo, double hi = kInf) const {
        double d = number(lo, hi);
        if (std::fabs(d) > std::numeric_limits<float>::max()) fail("out of range, got " + describe());
        return static_cast<float>(d);
    }

    // WasmEdge guests sometimes send 0/1 for booleans.
    bool boolean() const {
        if (v.is_boolean()) return v.get<bool>();
        if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) return v.get<int64_t>() == 1;
        wrong_type("a boolean");
    }

    // NULs are refused: everything below hands these to C APIs and paths.
    std::string string() const {
        if (!v.is_string()) wrong_type("a string");
        const auto& s = v.get_ref<const std::string&>();
        if (s.find('\0') != std::string::npos) fail("must not contain NUL characters");
        return s;
    }

    // Case-insensitive; returns the option as listed.
    std::string choice(std::initializer_list<const char*> options) const {
        std::string got = ascii_lower(string());
        std::string listed;
        for (const char* o : options) {
            if (got == o) return got;
            listed += listed.empty() ? "" : ", ";
            listed += o;
        }
        fail("must be one of " + listed + ", got " + describe());
    }

    // A string (one item) or an array of strings.
    std::vector<std::string> strings() const {
        std::vector<std::string> out;
        if (v.is_string()) {
            out.push_back(string());
        } else if (v.is_array()) {
            for (const auto& e : v) out.push_back(Value{key, e, doc}.string());
        } else {
            wrong_type("a string or an array of strings");
        }
        return out;
    }

    // An array of strings or one comma-separated string; blanks dropped.
    std::vector<std::string> list() const {
        if (v.is_string()) return split_list(string(), ",");
        std::vector<std::string> out;
        for (auto& s : strings()) {
            s = trim(s);
            if (!s.empty()) out.push_back(std::move(s));
        }
        return out;
    }
};


// Who may change a key. Only sampling, stopping and request keys may change
// per request: the rest shape a loaded model or the whole backend.
// limits: the caps of limits.h, read from the backend context's config only.
// embedding_mode keys are read per request too, so that a request asking for
// another kind of graph than the one it runs on is refused by the backend
// (check_graph_kind) rather than ignored.
enum class Group { model, sampling, stopping, memory, backend, logging, request, limits, embedding, embedding_mode };

inline bool per_request(Group g) {
    return g == Group::sampling || g == Group::stopping || g == Group::request || g == Group::embedding ||
           g == Group::embedding_mode;
}

using Setter = void (*)(Config&, const Value&);

struct Setting {
    Group group;
    Setter set;
};

// The table (config_keys.cpp): canonical key -> who may set it and how.
const std::unordered_map<std::string, Setting>& settings();
// Other spellings guests use, after hyphens became underscores.
const std::unordered_map<std::string, std::string>& aliases();
bool is_section(const std::string& key);
std::string canonical_key(const std::string& raw);

}  // namespace wnl::config_detail
