// Unit tests of the stop-string matcher (src/engine/stop_matcher.h,
// SPEC §2 "stopping": a stop string is never emitted, even split across tokens).
#include "engine/stop_matcher.h"

#include <algorithm>
#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace {

using wnl::incomplete_utf8_tail;
using wnl::StopMatcher;

// Feeds `text` one byte at a time; returns the index of the byte whose append
// returned true, or npos if none did.
size_t feed_bytes(StopMatcher& m, std::string_view text) {
    for (size_t i = 0; i < text.size(); ++i) {
        if (m.append(text.substr(i, 1))) return i;
    }
    return std::string::npos;
}

// The reference for safe_length() before any UTF-8 adjustment: the length of
// the longest suffix of `text` that is a proper prefix of some stop string.
size_t reference_hold(const std::string& text, const std::vector<std::string>& stops) {
    size_t hold = 0;
    for (const auto& s : stops) {
        if (s.empty()) continue;
        for (size_t len = std::min(s.size() - 1, text.size()); len > 0; --len) {
            if (text.compare(text.size() - len, len, s, 0, len) == 0) {
                hold = std::max(hold, len);
                break;
            }
        }
    }
    return hold;
}

// ---------------------------------------------------------------------------
// No stop strings / empty stop strings

TEST(StopMatcherTest, NoStopStringsNeverStops) {
    StopMatcher m;
    EXPECT_FALSE(m.append("Hello, "));
    EXPECT_FALSE(m.append("world</s>"));
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.text(), "Hello, world</s>");
    EXPECT_EQ(m.safe_length(), m.text().size());
    EXPECT_EQ(m.matched_stop(), "");
}

TEST(StopMatcherTest, NoStopStringsFreshMatcherIsEmpty) {
    StopMatcher m(std::vector<std::string>{});
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.text(), "");
    EXPECT_EQ(m.safe_length(), 0u);
    EXPECT_FALSE(m.append(""));
    EXPECT_EQ(m.safe_length(), 0u);
}

TEST(StopMatcherTest, EmptyStopStringsAreIgnored) {
    StopMatcher m({"", ""});
    // An empty stop string would match at position 0 of anything.
    EXPECT_FALSE(m.append("abc"));
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.text(), "abc");
    EXPECT_EQ(m.safe_length(), 3u);
}

TEST(StopMatcherTest, EmptyStopStringIgnoredAmongRealOnes) {
    StopMatcher m({"", "END", ""});
    EXPECT_FALSE(m.append("abc E"));
    EXPECT_EQ(m.safe_length(), 4u);  // "E" held back
    EXPECT_TRUE(m.append("ND tail"));
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.text(), "abc ");
    EXPECT_EQ(m.matched_stop(), "END");
}

// ---------------------------------------------------------------------------
// Matching

TEST(StopMatcherTest, StopInsideOnePiece) {
    StopMatcher m({"</s>"});
    EXPECT_TRUE(m.append("Hello</s>world"));
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.text(), "Hello");
    EXPECT_EQ(m.matched_stop(), "</s>");
    EXPECT_EQ(m.safe_length(), 5u);
}

TEST(StopMatcherTest, StopIsWholePiece) {
    StopMatcher m({"</s>"});
    EXPECT_FALSE(m.append("Hi"));
    EXPECT_TRUE(m.append("</s>"));
    EXPECT_EQ(m.text(), "Hi");
    EXPECT_EQ(m.safe_length(), 2u);
}

TEST(StopMatcherTest, StopAtVeryStart) {
    StopMatcher m({"</s>"});
    EXPECT_TRUE(m.append("</s>anything"));
    EXPECT_EQ(m.text(), "");
    EXPECT_EQ(m.safe_length(), 0u);
}

TEST(StopMatcherTest, StopSplitAcrossTwoPieces) {
    StopMatcher m({"</s>"});
    EXPECT_FALSE(m.append("Hello</"));
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.text(), "Hello</");
    EXPECT_EQ(m.safe_length(), 5u);
    EXPECT_TRUE(m.append("s>more"));
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.text(), "Hello");
    EXPECT_EQ(m.matched_stop(), "</s>");
    EXPECT_EQ(m.safe_length(), 5u);
}

TEST(StopMatcherTest, StopSplitAcrossThreePieces) {
    StopMatcher m({"<|im_end|>"});
    EXPECT_FALSE(m.append("Hi there <"));
    EXPECT_EQ(m.safe_length(), 9u);
    EXPECT_FALSE(m.append("|im_"));
    EXPECT_EQ(m.safe_length(), 9u);
    EXPECT_TRUE(m.append("end|> trailing"));
    EXPECT_EQ(m.text(), "Hi there ");
    EXPECT_EQ(m.matched_stop(), "<|im_end|>");
    EXPECT_EQ(m.safe_length(), 9u);
}

TEST(StopMatcherTest, StopFedByteByByte) {
    const std::string stop = "<|im_end|>";
    const std::string prefix = "The answer is 42.";
    const std::string input = prefix + stop + "ignored";
    StopMatcher m({stop});
    size_t safe_before = 0;
    for (size_t i = 0; i < input.size(); ++i) {
        bool done = m.append(input.substr(i, 1));
        size_t safe = m.safe_length();
        EXPECT_GE(safe, safe_before) << "safe_length went backwards at byte " << i;
        EXPECT_LE(safe, prefix.size()) << "part of the stop string released at byte " << i;
        safe_before = safe;
        if (i < prefix.size() + stop.size() - 1) {
            ASSERT_FALSE(done) << "stopped early at byte " << i;
            if (i < prefix.size()) EXPECT_EQ(safe, i + 1);
            else EXPECT_EQ(safe, prefix.size());
        } else {
            ASSERT_TRUE(done);
            break;
        }
    }
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.text(), prefix);
    EXPECT_EQ(m.safe_length(), prefix.size());
    EXPECT_EQ(m.matched_stop(), stop);
}

TEST(StopMatcherTest, StopSplitAcrossManyUnevenPieces) {
    // A long preamble so the search window (scan_from_) has moved far on.
    std::string pre(1000, 'x');
    StopMatcher m({"0123456789", "q"});
    ASSERT_FALSE(m.append(pre));
    ASSERT_FALSE(m.append("01"));
    ASSERT_FALSE(m.append("2345"));
    ASSERT_FALSE(m.append("678"));
    EXPECT_EQ(m.safe_length(), 1000u);
    ASSERT_TRUE(m.append("9rest"));
    EXPECT_EQ(m.text(), pre);
    EXPECT_EQ(m.matched_stop(), "0123456789");
}

TEST(StopMatcherTest, StopFoundWhenPieceIsLongerThanAnyStop) {
    StopMatcher m({"ab"});
    ASSERT_FALSE(m.append("zzzz"));
    // The stop begins in the middle of a piece much longer than itself.
    ASSERT_TRUE(m.append("yyyyyyyyyyabyyyy"));
    EXPECT_EQ(m.text(), "zzzzyyyyyyyyyy");
}

TEST(StopMatcherTest, FirstOccurrenceOfStopIsUsed) {
    StopMatcher m({"##"});
    EXPECT_TRUE(m.append("a##b##c"));
    EXPECT_EQ(m.text(), "a");
}

TEST(StopMatcherTest, SeveralStopsEarliestMatchWins) {
    {
        StopMatcher m({"STOP", "END"});
        EXPECT_TRUE(m.append("a END b STOP"));
        EXPECT_EQ(m.text(), "a ");
        EXPECT_EQ(m.matched_stop(), "END");
    }
    {
        StopMatcher m({"END", "STOP"});
        EXPECT_TRUE(m.append("a STOP b END"));
        EXPECT_EQ(m.text(), "a ");
        EXPECT_EQ(m.matched_stop(), "STOP");
    }
}

TEST(StopMatcherTest, SeveralStopsEarliestMatchWinsAcrossPieces) {
    // Both stops complete in the same piece; the one that starts earlier wins
    // although it is listed second and ends later.
    StopMatcher m({"XY", "abcd"});
    EXPECT_FALSE(m.append("-ab"));
    EXPECT_EQ(m.safe_length(), 1u);
    EXPECT_TRUE(m.append("cdXY"));
    EXPECT_EQ(m.text(), "-");
    EXPECT_EQ(m.matched_stop(), "abcd");
}

TEST(StopMatcherTest, SeveralStopsEachCanStop) {
    const std::vector<std::string> stops = {"\n\n", "User:", "###"};
    for (const auto& s : stops) {
        StopMatcher m(stops);
        EXPECT_TRUE(m.append("reply" + s + "junk")) << s;
        EXPECT_EQ(m.text(), "reply") << s;
        EXPECT_EQ(m.matched_stop(), s);
    }
}

TEST(StopMatcherTest, StopThatIsPrefixOfAnother) {
    // Shorter first or longer first: the text is cut at the same place.
    for (auto stops : {std::vector<std::string>{"ab", "abc"}, std::vector<std::string>{"abc", "ab"}}) {
        StopMatcher m(stops);
        EXPECT_TRUE(m.append("xabc"));
        EXPECT_EQ(m.text(), "x");
        EXPECT_TRUE(m.matched_stop() == "ab" || m.matched_stop() == "abc") << m.matched_stop();
    }
    // Fed byte by byte, the shorter one completes first and stops.
    {
        StopMatcher m({"abc", "ab"});
        EXPECT_FALSE(m.append("x"));
        EXPECT_FALSE(m.append("a"));
        EXPECT_EQ(m.safe_length(), 1u);
        EXPECT_TRUE(m.append("b"));
        EXPECT_EQ(m.text(), "x");
        EXPECT_EQ(m.matched_stop(), "ab");
    }
    // The longer one, when the shorter never completes on its own.
    {
        StopMatcher m({"<|end|>", "<|end|>\n"});
        EXPECT_FALSE(m.append("ok<|en"));
        EXPECT_EQ(m.safe_length(), 2u);
        EXPECT_TRUE(m.append("d|>\n"));
        EXPECT_EQ(m.text(), "ok");
    }
}

// ---------------------------------------------------------------------------
// safe_length(): hold back exactly the longest suffix that is a proper prefix

TEST(StopMatcherTest, SafeLengthHoldsLongestPartialStop) {
    StopMatcher m({"abcde"});
    EXPECT_FALSE(m.append("xx"));
    EXPECT_EQ(m.safe_length(), 2u);
    EXPECT_FALSE(m.append("a"));
    EXPECT_EQ(m.safe_length(), 2u);
    EXPECT_FALSE(m.append("b"));
    EXPECT_EQ(m.safe_length(), 2u);
    EXPECT_FALSE(m.append("c"));
    EXPECT_EQ(m.safe_length(), 2u);
    EXPECT_FALSE(m.append("d"));
    EXPECT_EQ(m.safe_length(), 2u);  // "abcd": 4 held, one short of the stop
}

TEST(StopMatcherTest, SafeLengthHoldsLongestAmongSeveralStops) {
    StopMatcher m({"cdX", "abcd"});
    EXPECT_FALSE(m.append("zzabc"));
    // "abc" (prefix of "abcd") beats "c" (prefix of "cdX").
    EXPECT_EQ(m.safe_length(), 2u);
}

TEST(StopMatcherTest, SafeLengthHoldsNothingWhenNoSuffixIsAPrefix) {
    StopMatcher m({"</s>"});
    EXPECT_FALSE(m.append("a<b/s"));
    EXPECT_EQ(m.safe_length(), 5u);
}

TEST(StopMatcherTest, SafeLengthUsesLongestNotShortestOverlap) {
    StopMatcher m({"abab"});
    EXPECT_FALSE(m.append("xaba"));
    EXPECT_EQ(m.safe_length(), 1u);  // "aba", not just "a"
    StopMatcher m2({"aab"});
    EXPECT_FALSE(m2.append("xaa"));
    EXPECT_EQ(m2.safe_length(), 1u);  // "aa"
}

TEST(StopMatcherTest, SafeLengthReleasesWhenTextDiverges) {
    StopMatcher m({"</s>"});
    EXPECT_FALSE(m.append("a</"));
    EXPECT_EQ(m.safe_length(), 1u);
    EXPECT_FALSE(m.append("x"));
    EXPECT_EQ(m.safe_length(), 4u);
    EXPECT_EQ(m.text(), "a</x");
}

TEST(StopMatcherTest, SafeLengthDivergenceThatStartsANewPartial) {
    StopMatcher m({"<<>"});
    EXPECT_FALSE(m.append("a<<"));
    EXPECT_EQ(m.safe_length(), 1u);
    // "a<<<": the first '<' is released, "<<" is still a prefix.
    EXPECT_FALSE(m.append("<"));
    EXPECT_EQ(m.safe_length(), 2u);
    EXPECT_FALSE(m.append("x"));
    EXPECT_EQ(m.safe_length(), 5u);
}

TEST(StopMatcherTest, SafeLengthAfterOverlapThenMatch) {
    StopMatcher m({"abab"});
    EXPECT_FALSE(m.append("xaba"));
    EXPECT_TRUE(m.append("b"));
    EXPECT_EQ(m.text(), "x");
}

TEST(StopMatcherTest, SafeLengthEqualsTextSizeOnceStopped) {
    // "ab" would be held back as a prefix of "abc" while running; once
    // stopped, nothing more can come, so all of text() is safe.
    StopMatcher m({"</s>", "abc"});
    EXPECT_TRUE(m.append("xab</s>"));
    EXPECT_EQ(m.text(), "xab");
    EXPECT_EQ(m.safe_length(), 3u);
}

// Random byte-by-byte and piece-wise feeds checked against a brute-force
// reference: the stop position, the held-back tail, monotonic release.
TEST(StopMatcherTest, RandomFeedsMatchReference) {
    std::mt19937 rng(12345);
    const std::vector<std::vector<std::string>> stop_sets = {
        {"abc"}, {"aa", "bca"}, {"abab", "bb", "cab"}, {"a", "bc"}, {"cccc", "ccb"},
    };
    for (const auto& stops : stop_sets) {
        for (int trial = 0; trial < 300; ++trial) {
            std::string input;
            int len = 1 + static_cast<int>(rng() % 30);
            for (int i = 0; i < len; ++i) input.push_back("abc"[rng() % 3]);

            // Reference: grow the text piece by piece; stop at the first
            // piece after which some stop string occurs; cut at the earliest.
            StopMatcher m(stops);
            std::string ref;
            size_t pos = 0;
            size_t prev_safe = 0;
            std::string released;
            bool ref_stopped = false;
            while (pos < input.size()) {
                size_t n = 1 + rng() % 4;
                std::string piece = input.substr(pos, n);
                pos += piece.size();
                ref += piece;
                size_t cut = std::string::npos;
                for (const auto& s : stops) cut = std::min(cut, ref.find(s));
                bool done = m.append(piece);
                SCOPED_TRACE("stops[0]=" + stops[0] + " input=" + input + " so far=" + ref);
                if (cut != std::string::npos) {
                    ref.resize(cut);
                    ASSERT_TRUE(done);
                    ASSERT_TRUE(m.stopped());
                    ASSERT_EQ(m.text(), ref);
                    ASSERT_EQ(m.safe_length(), ref.size());
                    ref_stopped = true;
                } else {
                    ASSERT_FALSE(done);
                    ASSERT_EQ(m.text(), ref);
                    ASSERT_EQ(m.safe_length(), ref.size() - reference_hold(ref, stops));
                }
                // What was released stays released and unchanged.
                ASSERT_GE(m.safe_length(), prev_safe);
                ASSERT_EQ(m.text().substr(0, prev_safe), released);
                prev_safe = m.safe_length();
                released = m.text().substr(0, prev_safe);
                if (ref_stopped) break;
            }
            // Whatever was released never contains a stop string.
            for (const auto& s : stops) ASSERT_EQ(released.find(s), std::string::npos);
        }
    }
}

// ---------------------------------------------------------------------------
// UTF-8

TEST(StopMatcherTest, SafeLengthNeverSplitsTwoByteCharacter) {
    StopMatcher m;
    const std::string e_acute = "\xC3\xA9";  // é
    EXPECT_FALSE(m.append("a"));
    EXPECT_EQ(m.safe_length(), 1u);
    EXPECT_FALSE(m.append(e_acute.substr(0, 1)));
    EXPECT_EQ(m.safe_length(), 1u);
    EXPECT_FALSE(m.append(e_acute.substr(1, 1)));
    EXPECT_EQ(m.safe_length(), 3u);
}

TEST(StopMatcherTest, SafeLengthNeverSplitsThreeByteCharacter) {
    StopMatcher m;
    const std::string euro = "\xE2\x82\xAC";  // €
    EXPECT_FALSE(m.append(euro.substr(0, 1)));
    EXPECT_EQ(m.safe_length(), 0u);
    EXPECT_FALSE(m.append(euro.substr(1, 1)));
    EXPECT_EQ(m.safe_length(), 0u);
    EXPECT_FALSE(m.append(euro.substr(2, 1)));
    EXPECT_EQ(m.safe_length(), 3u);
}

TEST(StopMatcherTest, SafeLengthNeverSplitsFourByteCharacter) {
    StopMatcher m;
    const std::string emoji = "\xF0\x9F\x98\x80";  // 😀
    EXPECT_FALSE(m.append("ok "));
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_FALSE(m.append(emoji.substr(i, 1)));
        EXPECT_EQ(m.safe_length(), 3u) << "after byte " << i;
    }
    EXPECT_FALSE(m.append(emoji.substr(3, 1)));
    EXPECT_EQ(m.safe_length(), 7u);
}

TEST(StopMatcherTest, SafeLengthOnMixedUtf8TextFedByteByByte) {
    // Every released prefix must end on a character boundary.
    const std::string text = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87!";
    std::vector<size_t> boundaries;  // byte offsets where a character starts, plus the end
    for (size_t i = 0; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) boundaries.push_back(i);
    }
    boundaries.push_back(text.size());
    StopMatcher m({"</s>"});
    for (size_t i = 0; i < text.size(); ++i) {
        ASSERT_FALSE(m.append(text.substr(i, 1)));
        size_t safe = m.safe_length();
        // The largest boundary <= i + 1.
        size_t expected = *(std::upper_bound(boundaries.begin(), boundaries.end(), i + 1) - 1);
        EXPECT_EQ(safe, expected) << "after byte " << i;
    }
    EXPECT_EQ(m.safe_length(), text.size());
}

TEST(StopMatcherTest, Utf8StopStringFedByteByByte) {
    const std::string stop = "\xE2\x96\xA0" "END";  // ■END
    StopMatcher m({stop});
    EXPECT_FALSE(m.append("\xC3\xA9"));
    size_t hit = feed_bytes(m, stop + "tail");
    EXPECT_EQ(hit, stop.size() - 1);
    EXPECT_EQ(m.text(), "\xC3\xA9");
    EXPECT_EQ(m.safe_length(), 2u);
}

TEST(StopMatcherTest, PartialStopAndIncompleteUtf8BothHeld) {
    StopMatcher m({"</s>"});
    // "€" incomplete, then nothing more: held for UTF-8.
    EXPECT_FALSE(m.append("a\xE2\x82"));
    EXPECT_EQ(m.safe_length(), 1u);
    // Complete it and start a stop string: the stop part is held.
    EXPECT_FALSE(m.append("\xAC</"));
    EXPECT_EQ(m.safe_length(), 4u);
}

// ---------------------------------------------------------------------------
// After stopping

TEST(StopMatcherTest, TextAfterStopExcludesStopString) {
    StopMatcher m({"STOP"});
    EXPECT_TRUE(m.append("before STOP after"));
    EXPECT_EQ(m.text(), "before ");
    EXPECT_EQ(m.text().find("STOP"), std::string::npos);
    EXPECT_EQ(m.text().find("after"), std::string::npos);
}

TEST(StopMatcherTest, AppendAfterStoppedDoesNothing) {
    StopMatcher m({"STOP", "END"});
    EXPECT_TRUE(m.append("abcSTOP"));
    const std::string text = m.text();
    EXPECT_TRUE(m.append("more text END"));
    EXPECT_TRUE(m.append(""));
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.text(), text);
    EXPECT_EQ(m.text(), "abc");
    EXPECT_EQ(m.matched_stop(), "STOP");
    EXPECT_EQ(m.safe_length(), 3u);
}

// ---------------------------------------------------------------------------
// incomplete_utf8_tail

TEST(StopMatcherTest, IncompleteUtf8TailAscii) {
    EXPECT_EQ(incomplete_utf8_tail(""), 0u);
    EXPECT_EQ(incomplete_utf8_tail("a"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("hello"), 0u);
}

TEST(StopMatcherTest, IncompleteUtf8TailTwoByte) {
    EXPECT_EQ(incomplete_utf8_tail("\xC3"), 1u);
    EXPECT_EQ(incomplete_utf8_tail("ab\xC3"), 1u);
    EXPECT_EQ(incomplete_utf8_tail("\xC3\xA9"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("ab\xC3\xA9"), 0u);
}

TEST(StopMatcherTest, IncompleteUtf8TailThreeByte) {
    EXPECT_EQ(incomplete_utf8_tail("\xE2"), 1u);
    EXPECT_EQ(incomplete_utf8_tail("\xE2\x82"), 2u);
    EXPECT_EQ(incomplete_utf8_tail("x\xE2\x82"), 2u);
    EXPECT_EQ(incomplete_utf8_tail("\xE2\x82\xAC"), 0u);
}

TEST(StopMatcherTest, IncompleteUtf8TailFourByte) {
    EXPECT_EQ(incomplete_utf8_tail("\xF0"), 1u);
    EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F"), 2u);
    EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98"), 3u);
    EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98\x80"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("\xC3\xA9\xF0\x9F\x98"), 3u);
    EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98\x80\xF0\x9F\x98\x80"), 0u);
}

TEST(StopMatcherTest, IncompleteUtf8TailOnlyLooksAtTheEnd) {
    // An incomplete sequence in the middle is not the tail's business.
    EXPECT_EQ(incomplete_utf8_tail("\xE2z"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F" "abc"), 0u);
}

TEST(StopMatcherTest, IncompleteUtf8TailInvalidBytesAreNotHeld) {
    // Stray continuation bytes and invalid lead bytes can never complete;
    // holding them back would hold them forever.
    EXPECT_EQ(incomplete_utf8_tail("\x80"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("a\x80\x80"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("\x80\x80\x80\x80\x80"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("\xFF"), 0u);
    EXPECT_EQ(incomplete_utf8_tail("\xC3\xA9\x80"), 0u);
}

}  // namespace

// ---------------------------------------------------------------------------
// At the caps (32 stop strings, 4096 bytes): the automaton against the plain
// search, on texts fed in random pieces, over a two-letter alphabet so that
// stop strings overlap and share prefixes as much as they can.

TEST(StopMatcherTest, CapSizedStopListMatchesReference) {
    std::mt19937 rng(777);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<std::string> stops;
        for (int i = 0; i < 32; ++i) {
            std::string s;
            const size_t len = 1 + rng() % (trial % 2 ? 128 : 12);
            for (size_t k = 0; k < len; ++k) s.push_back("ab"[rng() % 2]);
            stops.push_back(s);
        }
        std::string input;
        for (int i = 0; i < 400; ++i) input.push_back("ab"[rng() % 2]);
        StopMatcher m(stops);
        std::string ref;
        size_t pos = 0;
        while (pos < input.size()) {
            std::string piece = input.substr(pos, 1 + rng() % 6);
            pos += piece.size();
            ref += piece;
            size_t cut = std::string::npos;
            for (const auto& s : stops) cut = std::min(cut, ref.find(s));
            const bool done = m.append(piece);
            if (cut != std::string::npos) {
                ASSERT_TRUE(done);
                ASSERT_EQ(m.text(), ref.substr(0, cut));
                break;
            }
            ASSERT_FALSE(done);
            ASSERT_EQ(m.safe_length(), ref.size() - reference_hold(ref, stops));
        }
    }
}
