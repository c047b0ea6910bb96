// libFuzzer harness: the stop-string matcher and its UTF-8 handling
// (StopMatcher, incomplete_utf8_tail; docs/security.md, "Fuzzing").
//
// The input gives up to 8 stop strings and then the pieces of generated
// text, appended one by one as the decode loop appends tokens' pieces. The
// harness streams the text the way loop_step.cpp does (on each append, the
// bytes up to safe_length() not yet shown; at the end, the rest) and checks
// against a reference model of the matcher:
//  - text() is everything appended, cut at the earliest start of a stop
//    string, from the first append that completes one; nothing after;
//  - text() never contains a stop string;
//  - safe_length() never shrinks, never exceeds text(), and while not
//    stopped holds back exactly the longest suffix that begins a stop
//    string plus an incomplete UTF-8 sequence before it;
//  - what was streamed is never taken back: it is always a prefix of
//    text(), and the stream ends equal to text();
//  - while not stopped, the streamed text never ends inside a UTF-8
//    character, one whose bytes so far are a valid start (invalid bytes are
//    passed on as they are; once stopped, text() ends where the stop began,
//    even if a stop string that starts mid-character cut one);
//  - incomplete_utf8_tail() agrees with a reference on every prefix.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/stop_matcher.h"
#include "fuzz_support.h"

namespace {

constexpr const char* kHarness = "fuzz_stop";
using wnl::StopMatcher;

// Reference: k > 0 when the last k bytes are a UTF-8 lead byte that needs
// more than k bytes, followed by k - 1 continuation bytes.
size_t reference_utf8_tail(const std::string& s) {
    auto is_cont = [](unsigned char c) { return (c & 0xC0) == 0x80; };
    for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
        unsigned char lead = static_cast<unsigned char>(s[s.size() - k]);
        if (is_cont(lead)) continue;
        size_t need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

// Whether cutting text at p splits a character: a lead byte before p whose
// sequence runs past p, with every byte of it that text holds so far a
// continuation byte (a sequence already broken by a non-continuation byte
// is not a character, and may be cut anywhere).
bool splits_char(const std::string& text, size_t p) {
    auto is_cont = [](unsigned char c) { return (c & 0xC0) == 0x80; };
    for (size_t back = 1; back <= 3 && back <= p; ++back) {
        const size_t q = p - back;
        unsigned char lead = static_cast<unsigned char>(text[q]);
        if (is_cont(lead)) continue;
        size_t need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
        if (q + need <= p) return false;
        for (size_t i = q + 1; i < q + need && i < text.size(); ++i) {
            if (!is_cont(static_cast<unsigned char>(text[i]))) return false;
        }
        return true;
    }
    return false;
}

// Reference: the longest suffix of text that is a proper prefix of a stop.
size_t reference_hold(const std::string& text, const std::vector<std::string>& stops) {
    size_t hold = 0;
    for (const auto& s : stops) {
        if (s.empty()) continue;
        for (size_t len = std::min(s.size() - 1, text.size()); len > hold; --len) {
            if (text.compare(text.size() - len, len, s, 0, len) == 0) {
                hold = len;
                break;
            }
        }
    }
    return hold;
}

// Earliest start of any non-empty stop in text, or npos.
size_t earliest_stop(const std::string& text, const std::vector<std::string>& stops) {
    size_t best = std::string::npos;
    for (const auto& s : stops) {
        if (!s.empty()) best = std::min(best, text.find(s));
    }
    return best;
}

std::string hex(const std::string& s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s.substr(0, 64)) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out + (s.size() > 64 ? "..." : "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    std::vector<std::string> stops(in.ConsumeIntegralInRange<size_t>(0, 8));
    for (auto& s : stops) s = in.ConsumeRandomLengthString(24);
    StopMatcher m(stops);

    std::string all;  // everything appended, uncut
    std::string streamed;
    size_t last_safe = 0;
    while (in.remaining_bytes() > 0) {
        std::string piece = in.ConsumeRandomLengthString(16);
        const bool was_stopped = m.stopped();
        const bool hit = m.append(piece);
        if (!was_stopped) all += piece;
        WNL_FUZZ_CHECK(kHarness, hit == m.stopped(), "append's result differs from stopped()");
        WNL_FUZZ_CHECK(kHarness, !was_stopped || hit, "append after a stop returned false");

        // The reference: the first append that completes a stop cuts there.
        if (!was_stopped) {
            const size_t cut = earliest_stop(all, stops);
            WNL_FUZZ_CHECK(kHarness, hit == (cut != std::string::npos),
                           "stop detection differs from the reference on " + hex(all));
            if (hit) {
                WNL_FUZZ_CHECK(kHarness, m.text() == all.substr(0, cut), "text() is not cut at the earliest stop");
                bool named = false;
                for (const auto& s : stops) named = named || (!s.empty() && s == m.matched_stop());
                WNL_FUZZ_CHECK(kHarness, named && all.compare(cut, m.matched_stop().size(), m.matched_stop()) == 0,
                               "matched_stop() is not the stop found at the cut");
            } else {
                WNL_FUZZ_CHECK(kHarness, m.text() == all, "text() differs from what was appended");
            }
        }
        const std::string& text = m.text();
        WNL_FUZZ_CHECK(kHarness, earliest_stop(text, stops) == std::string::npos,
                       "text() contains a stop string: " + hex(text));

        const size_t safe = m.safe_length();
        WNL_FUZZ_CHECK(kHarness, safe <= text.size(), "safe_length() past the end of text()");
        WNL_FUZZ_CHECK(kHarness, safe >= last_safe, "safe_length() shrank");
        if (m.stopped()) {
            WNL_FUZZ_CHECK(kHarness, safe == text.size(), "safe_length() is not all of text() once stopped");
        } else {
            const size_t unheld = text.size() - reference_hold(text, stops);
            const size_t expect = unheld - reference_utf8_tail(text.substr(0, unheld));
            WNL_FUZZ_CHECK(kHarness, safe == expect,
                           "safe_length() " + std::to_string(safe) + ", reference " + std::to_string(expect) +
                               " on " + hex(text));
        }
        last_safe = safe;

        // Stream as loop_step.cpp does.
        if (safe > streamed.size()) streamed.append(text, streamed.size(), safe - streamed.size());
        WNL_FUZZ_CHECK(kHarness, text.compare(0, streamed.size(), streamed) == 0,
                       "text already streamed was taken back: " + hex(streamed) + " vs " + hex(text));
        if (!m.stopped()) {
            WNL_FUZZ_CHECK(kHarness, !splits_char(text, streamed.size()),
                           "the streamed text ends inside a UTF-8 character: " + hex(streamed) + " of " + hex(text));
        }
        for (size_t n = 0; n <= text.size() && n <= 8; ++n) {
            std::string prefix = text.substr(0, text.size() - n);
            WNL_FUZZ_CHECK(kHarness, wnl::incomplete_utf8_tail(prefix) == reference_utf8_tail(prefix),
                           "incomplete_utf8_tail differs from the reference on " + hex(prefix));
        }
    }
    // The end of the request: the rest is shown.
    if (m.text().size() > streamed.size()) streamed.append(m.text(), streamed.size(), std::string::npos);
    WNL_FUZZ_CHECK(kHarness, streamed == m.text(), "the stream does not add up to text()");
    return 0;
}
