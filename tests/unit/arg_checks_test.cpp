// How the ABI shims read strings that come with a length
// (src/abi/arg_checks.h, docs/abi.md §4), and which runtime configs the
// legacy run_inference treats as "does not parse" (config_text_parses).
#include "abi/arg_checks.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "engine/config.h"

namespace {

using wnl::abi::optional_text;
using wnl::abi::required_text;

TEST(ArgChecks, OptionalStringStopsAtItsNulWhateverTheLength) {
    // What HyperBEAM's 7-argument run_inference leaves in runtime_config_len.
    const uint32_t garbage = 0xE6A5F00Du;
    std::string_view out;
    optional_text("{}", garbage, &out);
    EXPECT_EQ(out, "{}");
    optional_text("", garbage, &out);
    EXPECT_EQ(out, "");
    optional_text("{\"seed\":42}\0{junk", garbage, &out);
    EXPECT_EQ(out, "{\"seed\":42}");
}

TEST(ArgChecks, OptionalStringLengthBoundsIt) {
    const char text[] = {'{', '}', 'X', 'Y'};  // no NUL: only len bytes may be read
    std::string_view out;
    optional_text(text, 2, &out);
    EXPECT_EQ(out, "{}");
    optional_text("{}", 3, &out);  // the length counts the NUL
    EXPECT_EQ(out, "{}");
    optional_text("{}", 0, &out);
    EXPECT_EQ(out, "");
}

TEST(ArgChecks, NullOptionalStringIsAbsentWhateverTheLength) {
    std::string_view out = "stale";
    optional_text(nullptr, 0, &out);
    EXPECT_TRUE(out.empty());
    out = "stale";
    optional_text(nullptr, 0xE6A5F00Du, &out);
    EXPECT_TRUE(out.empty());
}

TEST(ArgChecks, RequiredStringStopsAtItsNul) {
    std::string_view out;
    ASSERT_TRUE(required_text("t", "name", "/m.gguf\0junk", 12, &out));
    EXPECT_EQ(out, "/m.gguf");
    ASSERT_TRUE(required_text("t", "name", "/m.gguf", 8, &out));  // counts the NUL
    EXPECT_EQ(out, "/m.gguf");
    const char no_nul[] = {'/', 'a', 'b'};
    ASSERT_TRUE(required_text("t", "name", no_nul, 2, &out));
    EXPECT_EQ(out, "/a");
    EXPECT_FALSE(required_text("t", "name", nullptr, 5, &out));
    EXPECT_FALSE(required_text("t", "name", "/m.gguf", 0, &out));
}

TEST(ArgChecks, WhatDoesNotParse) {
    std::string why;
    EXPECT_FALSE(wnl::config_text_parses("{\"temperature\":0.8,\"invalid_json", &why));
    EXPECT_NE(why.find("invalid JSON"), std::string::npos) << why;
    EXPECT_FALSE(wnl::config_text_parses("{\"max_tokens\":", &why));
    EXPECT_FALSE(wnl::config_text_parses("not json", &why));
    EXPECT_FALSE(wnl::config_text_parses(std::string(65, '[') + std::string(65, ']'), &why));
    EXPECT_NE(why.find("nested"), std::string::npos) << why;
}

TEST(ArgChecks, WhatParsesEvenIfRefusedLater) {
    std::string why;
    EXPECT_TRUE(wnl::config_text_parses("", &why));
    EXPECT_TRUE(wnl::config_text_parses("  \n", &why));
    EXPECT_TRUE(wnl::config_text_parses("{}", &why));
    EXPECT_TRUE(wnl::config_text_parses("{\"temperature\":-1}", &why));  // a bad value: invalid_argument
    EXPECT_TRUE(wnl::config_text_parses("[1,2]", &why));  // not an object: invalid_argument
    EXPECT_TRUE(wnl::config_text_parses("{\"temp\":1e400}", &why));  // out of range: invalid_argument
    EXPECT_TRUE(wnl::config_text_parses(std::string_view("{}\0{junk", 8), &why));
    wnl::Config cfg;
    std::string err;
    EXPECT_EQ(wnl::apply_config_json("{\"temperature\":-1}", wnl::ConfigScope::request, cfg, &err),
              wnl::Status::invalid_argument);
    EXPECT_EQ(wnl::apply_config_json("{\"temp\":1e400}", wnl::ConfigScope::request, cfg, &err),
              wnl::Status::invalid_argument);
}

}  // namespace
