#include "engine/stop_matcher.h"

#include <deque>

namespace wnl {

StopMatcher::StopMatcher(std::vector<std::string> stops) : nodes_(1) {
    for (auto& s : stops) {
        if (s.empty()) continue;  // would match everywhere
        int32_t at = 0;
        for (char ch : s) {
            const auto c = static_cast<unsigned char>(ch);
            int32_t n = child(at, c);
            if (n < 0) {
                n = static_cast<int32_t>(nodes_.size());
                nodes_[static_cast<size_t>(at)].next.emplace_back(c, n);
                Node fresh;
                fresh.depth = nodes_[static_cast<size_t>(at)].depth + 1;
                nodes_.push_back(std::move(fresh));
            }
            at = n;
        }
        if (nodes_[static_cast<size_t>(at)].stop < 0) {  // a repeated stop string counts once
            nodes_[static_cast<size_t>(at)].stop = static_cast<int32_t>(stops_.size());
            stops_.push_back(std::move(s));
        }
    }
    // Failure and output links, breadth first (a node's fail is shallower).
    std::deque<int32_t> todo;
    for (const auto& [c, n] : nodes_[0].next) todo.push_back(n);
    while (!todo.empty()) {
        const int32_t u = todo.front();
        todo.pop_front();
        for (const auto& [c, v] : nodes_[static_cast<size_t>(u)].next) {
            int32_t f = nodes_[static_cast<size_t>(u)].fail;
            while (f > 0 && child(f, c) < 0) f = nodes_[static_cast<size_t>(f)].fail;
            const int32_t g = child(f, c);
            Node& node = nodes_[static_cast<size_t>(v)];
            node.fail = g >= 0 && g != v ? g : 0;
            const Node& fn = nodes_[static_cast<size_t>(node.fail)];
            node.out = fn.stop >= 0 ? node.fail : fn.out;
            todo.push_back(v);
        }
    }
}

int32_t StopMatcher::child(int32_t node, unsigned char c) const {
    for (const auto& [edge, n] : nodes_[static_cast<size_t>(node)].next) {
        if (edge == c) return n;
    }
    return -1;
}

int32_t StopMatcher::step(int32_t state, unsigned char c) const {
    for (;;) {
        const int32_t n = child(state, c);
        if (n >= 0) return n;
        if (state == 0) return 0;
        state = nodes_[static_cast<size_t>(state)].fail;
    }
}

bool StopMatcher::append(std::string_view piece) {
    if (stopped_) return true;
    const size_t from = text_.size();
    text_.append(piece);
    if (stops_.empty()) return false;
    size_t best_start = std::string::npos;
    int32_t best_stop = -1;
    for (size_t i = from; i < text_.size(); ++i) {
        state_ = step(state_, static_cast<unsigned char>(text_[i]));
        // The longest stop string ending here starts earliest of those that do.
        const Node& here = nodes_[static_cast<size_t>(state_)];
        const int32_t hit = here.stop >= 0 ? state_ : here.out;
        if (hit < 0) continue;
        const Node& h = nodes_[static_cast<size_t>(hit)];
        const size_t start = i + 1 - static_cast<size_t>(h.depth);
        if (start < best_start) {
            best_start = start;
            best_stop = h.stop;
        }
    }
    if (best_stop < 0) return false;
    matched_ = stops_[static_cast<size_t>(best_stop)];
    text_.resize(best_start);
    stopped_ = true;
    return true;
}

size_t StopMatcher::safe_length() const {
    if (stopped_) return text_.size();
    // The automaton's state is the longest suffix of the text that begins a
    // stop string (a whole one would have stopped it).
    const size_t hold = static_cast<size_t>(nodes_[static_cast<size_t>(state_)].depth);
    const size_t safe = text_.size() - hold;
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
