// Inputs that reach issue #9's holes. All three are closed, and by default
// (CMake WASI_NN_LLAMA_FUZZ_SKIP_KNOWN_HOLES off) the harnesses run them
// like any other input; each is still counted (WNL_FUZZ_STATS=1 prints the
// counts at exit: "reached", how often the fuzzers went there). With the
// option on they are skipped instead: for a new hole that is known and not
// fixed yet, listed here until it is.
//
// Not listed here are the harnesses' permanent bounds, which keep one
// execution fast and inside libFuzzer's memory limit rather than hiding a
// bug (abi_sequence.h, "Bounds"): at most 16 generated tokens, small
// contexts, few threads, few loads per input, no network endpoints and no
// log files.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/config.h"

namespace wnl::fuzz {

enum class Hole {
    none = 0,
    // A "%llguidance" grammar: llama.cpp's common_sampler_init calls
    // GGML_ABORT (this build has no llguidance). Issue #9, first hole.
    llguidance_grammar,
    // A grammar or json_schema while every end-of-generation token is
    // forbidden (ignore_eos, or a logit_bias of false/-inf): once the grammar
    // is complete llama.cpp throws on the decode-loop thread and the process
    // terminates. Issue #9, second hole.
    grammar_without_eos,
    // A guest Jinja chat_template with unbounded work (range(), repetition
    // with *, macros and recursion, deeply nested loops): load renders it
    // with no time or size bound. Issue #9, third hole.
    unbounded_jinja,
    count
};

inline const char* hole_name(Hole h) {
    switch (h) {
        case Hole::none: return "none";
        case Hole::llguidance_grammar: return "llguidance_grammar";
        case Hole::grammar_without_eos: return "grammar_without_eos";
        case Hole::unbounded_jinja: return "unbounded_jinja";
        case Hole::count: break;
    }
    return "?";
}

inline std::atomic<unsigned long>* hole_counts() {
    static std::atomic<unsigned long> counts[static_cast<int>(Hole::count)];
    return counts;
}

inline void print_hole_counts() {
    for (int i = 1; i < static_cast<int>(Hole::count); ++i) {
        std::fprintf(stderr, "known hole %-22s reached %lu times (%s)\n", hole_name(static_cast<Hole>(i)),
                     hole_counts()[i].load(), WNL_FUZZ_SKIP_KNOWN_HOLES != 0 ? "skipped" : "run");
    }
}

// Counts an input that reaches a hole; true when it must be skipped (the option is on).
inline bool skip_hole(Hole h) {
    if (h == Hole::none) return false;
    hole_counts()[static_cast<int>(h)]++;
    return WNL_FUZZ_SKIP_KNOWN_HOLES != 0;
}

inline bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

inline size_t count_of(std::string_view s, std::string_view what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

// A template override that is Jinja (not empty, not a built-in name: those
// never loop) and could do unbounded work.
inline bool jinja_may_run_unbounded(std::string_view tmpl) {
    return contains(tmpl, "range") || contains(tmpl, "*") || contains(tmpl, "macro") || contains(tmpl, "recursive") ||
           contains(tmpl, "call") || count_of(tmpl, "for") > 2;
}

// The hole a request with these effective settings would reach at compute.
inline Hole request_hole(const Config& c) {
    const auto& s = c.sampling;
    if (s.grammar.compare(0, 11, "%llguidance") == 0) return Hole::llguidance_grammar;
    if (!s.grammar.empty() || !s.json_schema.empty()) {
        bool kills_eos = c.stopping.ignore_eos;
        for (const auto& [tok, bias] : s.logit_bias) kills_eos = kills_eos || std::isinf(bias);
        if (kills_eos) return Hole::grammar_without_eos;
    }
    return Hole::none;
}

// The hole a graph load with these effective settings would reach.
inline Hole load_hole(const Config& c) {
    if (jinja_may_run_unbounded(c.model.chat_template)) return Hole::unbounded_jinja;
    return Hole::none;
}

}  // namespace wnl::fuzz
