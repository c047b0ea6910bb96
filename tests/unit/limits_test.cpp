// The caps on one guest (src/engine/limits.h): read only from a backend
// config, and check_request_limits against them.
#include "engine/limits.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/config.h"

namespace wnl {
namespace {

Config parse(const std::string& text, ConfigScope scope = ConfigScope::backend, Config base = Config{}) {
    std::string err;
    EXPECT_EQ(apply_config_json(text, scope, base, &err), Status::ok) << text << " -> " << err;
    return base;
}

TEST(Limits, DefaultsAreTheDocumentedOnes) {
    Limits l;
    EXPECT_EQ(l.max_graphs, 16);
    EXPECT_EQ(l.max_llama_contexts, 4);
    EXPECT_EQ(l.max_exec_contexts, 256);
    EXPECT_EQ(l.max_stop_strings, 32);
    EXPECT_EQ(l.max_stop_bytes, 4096);
    EXPECT_EQ(l.max_grammar_bytes, 65536);
    EXPECT_EQ(l.max_prompt_bytes, 4 << 20);
    EXPECT_EQ(l.max_output_tokens, 8192);
    EXPECT_EQ(l.max_request_time_ms, 600000);
}

TEST(Limits, EveryCapIsABackendKey) {
    Config c = parse(R"({"backend":{"max_graphs":2,"max_llama_contexts":3,"max_exec_contexts":5,
        "max_stop_strings":7,"max_stop_bytes":11,"max_grammar_bytes":13,"max_prompt_bytes":17,
        "max_output_tokens":19,"max_request_time_ms":23}})");
    EXPECT_EQ(c.limits.max_graphs, 2);
    EXPECT_EQ(c.limits.max_llama_contexts, 3);
    EXPECT_EQ(c.limits.max_exec_contexts, 5);
    EXPECT_EQ(c.limits.max_stop_strings, 7);
    EXPECT_EQ(c.limits.max_stop_bytes, 11);
    EXPECT_EQ(c.limits.max_grammar_bytes, 13);
    EXPECT_EQ(c.limits.max_prompt_bytes, 17);
    EXPECT_EQ(c.limits.max_output_tokens, 19);
    EXPECT_EQ(c.limits.max_request_time_ms, 23);
    EXPECT_EQ(parse(R"({"max-output-tokens":5})").limits.max_output_tokens, 5);  // hyphens too
}

TEST(Limits, AGraphOrRequestConfigCannotSetThem) {
    for (ConfigScope scope : {ConfigScope::model, ConfigScope::request}) {
        Config c = parse(R"({"max_graphs":1000,"max_output_tokens":100000,"max_stop_strings":9999})", scope);
        EXPECT_EQ(c.limits.max_graphs, 16);
        EXPECT_EQ(c.limits.max_output_tokens, 8192);
        EXPECT_EQ(c.limits.max_stop_strings, 32);
    }
}

TEST(Limits, OutOfRangeCapsAreRefused) {
    for (const char* text : {R"({"max_graphs":0})", R"({"max_llama_contexts":-1})", R"({"max_exec_contexts":0})",
                             R"({"max_stop_strings":-1})", R"({"max_prompt_bytes":0})", R"({"max_output_tokens":0})",
                             R"({"max_request_time_ms":-1})", R"({"max_grammar_bytes":"big"})"}) {
        Config c;
        std::string err;
        EXPECT_EQ(apply_config_json(text, ConfigScope::backend, c, &err), Status::invalid_argument) << text;
    }
}

Status check(const std::string& request, const Limits& caps = Limits{}) {
    Config c = parse(request, ConfigScope::request);
    std::string err;
    Status st = check_request_limits(c, caps, &err);
    if (st != Status::ok) {
        EXPECT_FALSE(err.empty());
    }
    return st;
}

TEST(Limits, StopStringsCountAndBytes) {
    Limits caps;
    caps.max_stop_strings = 2;
    caps.max_stop_bytes = 6;
    EXPECT_EQ(check(R"({"stop":["abc","def"]})", caps), Status::ok);
    EXPECT_EQ(check(R"({"stop":["a","b","c"]})", caps), Status::invalid_argument);
    EXPECT_EQ(check(R"({"stop":["abcd","efg"]})", caps), Status::invalid_argument);
    EXPECT_EQ(check(R"({"stop":["a","a","a","a"]})", caps), Status::ok);  // duplicates count once
}

TEST(Limits, GrammarAndSchemaBytes) {
    Limits caps;
    caps.max_grammar_bytes = 20;
    EXPECT_EQ(check(R"({"grammar":"root ::= \"a\""})", caps), Status::ok);
    EXPECT_EQ(check(R"({"grammar":"root ::= \"aaaaaaaaaaaaaaaaaaaaa\""})", caps), Status::invalid_argument);
    EXPECT_EQ(check(R"({"json_schema":{"type":"string","minLength":1}})", caps), Status::invalid_argument);
}

TEST(Limits, MaxTokensAndRunningTime) {
    Limits caps;
    caps.max_output_tokens = 100;
    caps.max_request_time_ms = 1000;
    EXPECT_EQ(check(R"({"max_tokens":100})", caps), Status::ok);
    EXPECT_EQ(check(R"({"max_tokens":-1})", caps), Status::ok);
    EXPECT_EQ(check(R"({"max_tokens":101})", caps), Status::invalid_argument);
    EXPECT_EQ(check(R"({"max_tokens":10,"max_time_ms":1000})", caps), Status::ok);
    EXPECT_EQ(check(R"({"max_tokens":10,"max_time_ms":1001})", caps), Status::invalid_argument);
    EXPECT_EQ(effective_max_tokens(-1, caps), 100);
    EXPECT_EQ(effective_max_tokens(7, caps), 7);
    EXPECT_EQ(effective_max_time_ms(0, caps), 1000);
    EXPECT_EQ(effective_max_time_ms(300, caps), 300);
    caps.max_request_time_ms = 0;  // no ceiling
    EXPECT_EQ(check(R"({"max_tokens":10,"max_time_ms":99999999})", caps), Status::ok);
    EXPECT_EQ(effective_max_time_ms(0, caps), 0);
}

TEST(Limits, PromptBytes) {
    Limits caps;
    caps.max_prompt_bytes = 10;
    EXPECT_EQ(check_prompt_size(10, caps, "set_input"), Status::ok);
    EXPECT_EQ(check_prompt_size(11, caps, "set_input"), Status::invalid_argument);
}

TEST(Limits, PerTokenCostSettingsAreBoundedAtParse) {
    std::string bias, breakers;
    for (int i = 0; i <= kMaxLogitBiasEntries; ++i) bias += (i ? "," : "") + std::string("[1,0.5]");
    for (int i = 0; i <= kMaxDrySequenceBreakers; ++i) breakers += (i ? "," : "") + std::string("\"x\"");
    for (const std::string& text : {"{\"logit_bias\":[" + bias + "]}", "{\"dry_sequence_breakers\":[" + breakers + "]}",
                                    std::string(R"({"grammar":"%llguidance {}"})")}) {
        Config c;
        std::string err;
        EXPECT_EQ(apply_config_json(text, ConfigScope::request, c, &err), Status::invalid_argument) << text.substr(0, 40);
    }
}

TEST(Limits, AHugeStopListParsesInLinearTime) {
    // 200,000 distinct strings: a quadratic de-duplication would take minutes.
    std::string text = "{\"stop\":[";
    for (int i = 0; i < 200000; ++i) text += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
    text += "]}";
    Config c = parse(text, ConfigScope::request);
    EXPECT_EQ(c.stopping.stop.size(), 200000u);
    std::string err;
    EXPECT_EQ(check_request_limits(c, Limits{}, &err), Status::invalid_argument);
}

}  // namespace
}  // namespace wnl
