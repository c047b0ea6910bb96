// Finds stop strings in generated text as it grows token by token.
//
// A stop string may be split across tokens, so the tail of the text that
// could still become a stop string is held back from what may be shown; a
// stop string itself is never part of the result.
//
// The stop strings are compiled once into an Aho-Corasick automaton (on the
// caller's thread, before the request reaches the decode loop), so each
// appended byte costs O(1) amortised, and safe_length() O(1), however many
// stop strings there are and however long: the decode loop matches for
// every running request after every token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wnl {

class StopMatcher {
public:
    explicit StopMatcher(std::vector<std::string> stops = {});

    // Appends generated text. Returns true once a stop string is complete;
    // text() then ends just before it. Of the stop strings completed by one
    // append, the one that starts first wins.
    bool append(std::string_view piece);

    bool stopped() const { return stopped_; }
    const std::string& matched_stop() const { return matched_; }

    // Everything generated so far (cut at the stop string once stopped).
    const std::string& text() const { return text_; }

    // How much of text() can be shown now: no partial stop string and no
    // incomplete UTF-8 sequence at its end. Equals text().size() once stopped.
    size_t safe_length() const;

private:
    // A trie node: the prefix of one or more stop strings that leads here.
    struct Node {
        std::vector<std::pair<unsigned char, int32_t>> next;  // trie edges
        int32_t fail = 0;  // the longest proper suffix that is also a node
        int32_t depth = 0;  // bytes of the prefix
        int32_t stop = -1;  // index of the stop string that ends here
        int32_t out = -1;  // the nearest node along fail links that ends a stop string
    };
    int32_t child(int32_t node, unsigned char c) const;
    int32_t step(int32_t state, unsigned char c) const;

    std::vector<std::string> stops_;
    std::vector<Node> nodes_;
    int32_t state_ = 0;  // node of the longest suffix of text_ that is a prefix of a stop string
    std::string text_;
    std::string matched_;
    bool stopped_ = false;
};

// Bytes at the end of s that begin a UTF-8 sequence not yet complete.
size_t incomplete_utf8_tail(std::string_view s);

}  // namespace wnl
