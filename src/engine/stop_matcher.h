// Finds stop strings in generated text as it grows token by token.
//
// A stop string may be split across tokens, so the tail of the text that
// could still become a stop string is held back from what may be shown; a
// stop string itself is never part of the result.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wnl {

class StopMatcher {
public:
    explicit StopMatcher(std::vector<std::string> stops = {});

    // Appends generated text. Returns true once a stop string is complete;
    // text() then ends just before it.
    bool append(std::string_view piece);

    bool stopped() const { return stopped_; }
    const std::string& matched_stop() const { return matched_; }

    // Everything generated so far (cut at the stop string once stopped).
    const std::string& text() const { return text_; }

    // How much of text() can be shown now: no partial stop string and no
    // incomplete UTF-8 sequence at its end. Equals text().size() once stopped.
    size_t safe_length() const;

private:
    std::vector<std::string> stops_;
    std::string text_;
    std::string matched_;
    bool stopped_ = false;
    size_t scan_from_ = 0;
    size_t longest_stop_ = 0;
};

// Bytes at the end of s that begin a UTF-8 sequence not yet complete.
size_t incomplete_utf8_tail(std::string_view s);

}  // namespace wnl
