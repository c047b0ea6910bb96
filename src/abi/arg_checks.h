// Argument checks shared by the two ABI shims: they read the C arguments
// into engine types, and log a line naming the call and the problem when
// they cannot.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "engine/log.h"

namespace wnl::abi {

// The integer a caller passed for a C enum. A hostile or buggy caller may
// pass any int; reading it through the enum type would be undefined
// behaviour (and UBSan's -fsanitize=enum says so), so copy the bytes.
template <typename Enum>
int raw_enum(const Enum& e) {
    static_assert(sizeof(Enum) == sizeof(int), "C enums here are int-sized");
    int v;
    std::memcpy(&v, &e, sizeof v);
    return v;
}

inline void bad_arg(const char* call, const std::string& what) {
    log(LogLevel::error, "abi", std::string(call) + ": " + what);
}

// Strings that come with a length are read up to their first NUL or their
// length, whichever comes first (strnlen), never `len` bytes blindly: C
// callers pass lengths that count the NUL, that do not, or (a 7-argument
// call of the 8-parameter run_inference) that are whatever was on the stack.
// What follows a NUL is padding, as in any C string.
inline std::string_view bounded_text(const char* p, uint32_t len) { return std::string_view(p, strnlen(p, len)); }

// A required string given with its length.
inline bool required_text(const char* call, const char* what, const char* p, uint32_t len, std::string_view* out) {
    if (!p) {
        bad_arg(call, std::string(what) + " is NULL");
        return false;
    }
    if (len == 0) {
        bad_arg(call, std::string(what) + " has length 0");
        return false;
    }
    *out = bounded_text(p, len);
    return true;
}

// An optional string: NULL means absent whatever the length says (the
// length of a NULL string is often garbage, never a size to trust).
inline void optional_text(const char* p, uint32_t len, std::string_view* out) {
    *out = p ? bounded_text(p, len) : std::string_view();
}

// The element count a dimensions array describes; false on overflow or a
// missing array.
inline bool dims_product(const char* call, const uint32_t* dims, uint32_t n, uint64_t* out) {
    if (n > 8) {
        bad_arg(call, "tensor has " + std::to_string(n) + " dimensions; text takes at most 8");
        return false;
    }
    if (n > 0 && !dims) {
        bad_arg(call, "tensor dimensions buffer is NULL but its size is " + std::to_string(n));
        return false;
    }
    uint64_t p = 1;
    for (uint32_t i = 0; i < n; ++i) {
        p *= dims[i];
        if (p > UINT32_MAX) {
            bad_arg(call, "tensor dimensions overflow 32 bits");
            return false;
        }
    }
    *out = p;
    return true;
}

// Copies text into a caller's buffer of `capacity` bytes, or reports the
// size needed. With_nul: also write a terminating NUL and count it.
enum class CopyResult { ok, too_large };
inline CopyResult copy_out(const std::string& text, uint8_t* buf, uint32_t capacity, bool with_nul,
                           uint32_t* written) {
    const uint64_t need = text.size() + (with_nul ? 1 : 0);
    if (need > capacity) {
        *written = need > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(need);
        return CopyResult::too_large;
    }
    if (!text.empty()) std::memcpy(buf, text.data(), text.size());
    if (with_nul) buf[text.size()] = 0;
    *written = static_cast<uint32_t>(need);
    return CopyResult::ok;
}

}  // namespace wnl::abi
