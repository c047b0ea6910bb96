#include "engine/stop_matcher.h"

#include <algorithm>

namespace wnl {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
    for (auto& s : stops) {
        if (!s.empty()) stops_.push_back(std::move(s));
    }
    for (const auto& s : stops_) longest_stop_ = std::max(longest_stop_, s.size());
}

bool StopMatcher::append(std::string_view piece) {
    if (stopped_) return true;
    text_.append(piece);
    if (stops_.empty()) return false;
    // Only the new text and the tail that could join it need searching.
    size_t best = std::string::npos;
    for (const auto& s : stops_) {
        size_t pos = text_.find(s, scan_from_);
        if (pos != std::string::npos && pos < best) {
            best = pos;
            matched_ = s;
        }
    }
    if (best != std::string::npos) {
        text_.resize(best);
        stopped_ = true;
        return true;
    }
    scan_from_ = text_.size() > longest_stop_ ? text_.size() - longest_stop_ + 1 : 0;
    return false;
}

size_t StopMatcher::safe_length() const {
    if (stopped_) return text_.size();
    size_t hold = 0;
    // The longest suffix of text_ that is a proper prefix of a stop string.
    for (const auto& s : stops_) {
        size_t max_len = std::min(s.size() - 1, text_.size());
        for (size_t len = max_len; len > hold; --len) {
            if (text_.compare(text_.size() - len, len, s, 0, len) == 0) {
                hold = len;
                break;
            }
        }
    }
    size_t safe = text_.size() - hold;
    return safe - incomplete_utf8_tail(std::string_view(text_).substr(0, safe));
}

size_t incomplete_utf8_tail(std::string_view s) {
    // Walk back over at most 3 continuation bytes to the lead byte.
    size_t n = s.size();
    for (size_t back = 1; back <= 4 && back <= n; ++back) {
        unsigned char c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte
        size_t need = (c & 0x80) == 0 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4 : 1;
        return back < need ? back : 0;
    }
    return 0;
}

}  // namespace wnl
