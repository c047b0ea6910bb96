// A hostile guest against libwasi_nn_llamacpp.so (WAMR ABI), dlopen()ed as
// WAMR's wasi-nn host loads it: every hole issue #9 lists, each guarded
// llama.cpp call, each cap, and the odd inputs a guest can send
// (docs/security.md). Each test asserts the exact code; the fixture's
// TearDown then checks that the process lives and that a neighbour's plain
// greedy request, on the same model and decode loop, still gets its exact
// reply.
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "adversarial/adversarial.h"
#include "integration/wamr_client.h"

using namespace wnl_adv;
using wnl_test::WamrApi;
using wnl_test::WamrSession;
using nlohmann::json;

namespace {

struct Reply {
    wasi_nn_error rc = runtime_error;
    std::string text;
    json meta;
};

class Hostile : public ::testing::Test {
protected:
    void SetUp() override {
        log_ = temp_log_path();
        neighbour_ = std::make_unique<WamrSession>(
            model(), R"({"temp":0,"max_tokens":32,"logging":{"level":"info","file":)" + json_str(log_) + "}}",
            R"({"temp":0,"max_tokens":32})");
        ASSERT_EQ(neighbour_->load_status(), success);
        neighbour_exec_ = neighbour_->open();
    }

    void TearDown() override {
        if (neighbour_) {
            std::string reply;
            EXPECT_EQ(neighbour_->turn(neighbour_exec_, kPrompt, &reply), success) << "the neighbour's request failed";
            EXPECT_EQ(reply, kGolden) << "the neighbour's greedy reply changed";
        }
        neighbour_.reset();
        ::unlink(log_.c_str());
    }

    bool logged(const std::string& needle) const { return read_file(log_).find(needle) != std::string::npos; }

    // One turn on a fresh anonymous context of s.
    static Reply run(WamrSession& s, const std::string& options, const std::string& prompt = kPrompt) {
        Reply r;
        auto e = s.open();
        std::string meta;
        r.rc = s.turn(e, prompt, &r.text, options, &meta);
        if (!meta.empty()) r.meta = json::parse(meta);
        return r;
    }
    // set_input index 1 alone: where a bad option is refused.
    static wasi_nn_error options(WamrSession& s, const std::string& opts) {
        auto e = s.open();
        return s.set_text(e, 1, opts);
    }
    // set_input 0 and 1, then compute: a refusal only compute can make.
    static wasi_nn_error compute(WamrSession& s, const std::string& opts, const std::string& prompt = kPrompt) {
        auto e = s.open();
        wasi_nn_error rc = s.set_text(e, 0, prompt);
        if (rc == success) rc = s.set_text(e, 1, opts);
        if (rc == success) rc = WamrApi::get().compute(s.ctx(), e);
        return rc;
    }

    // A fresh backend context (no config) loading the model with graph_cfg.
    static wasi_nn_error load_with(const std::string& graph_cfg) {
        WamrApi& api = WamrApi::get();
        void* ctx = nullptr;
        if (api.init_backend(&ctx) != success) return runtime_error;
        const std::string path = model();
        graph g = 0;
        wasi_nn_error rc = api.load_by_name_with_config(ctx, path.data(), static_cast<uint32_t>(path.size()),
                                                        graph_cfg.data(), static_cast<uint32_t>(graph_cfg.size()), &g);
        api.deinit_backend(ctx);
        return rc;
    }

    std::string log_;
    std::unique_ptr<WamrSession> neighbour_;
    graph_execution_context neighbour_exec_ = 0;
};

std::string repeat(const std::string& s, size_t n) {
    std::string out;
    out.reserve(s.size() * n);
    for (size_t i = 0; i < n; ++i) out += s;
    return out;
}

// ===========================================================================
// The holes issue #9 lists, one test each.

TEST_F(Hostile, LlguidanceGrammarIsRefusedNotAborted) {
    WamrSession g(model(), "{}");
    EXPECT_EQ(options(g, R"({"grammar":"%llguidance {}\nstart: \"a\""})"), invalid_argument);
    // In a graph's config the load is refused instead.
    EXPECT_EQ(load_with(R"({"grammar":"%llguidance {}"})"), invalid_argument);
    EXPECT_TRUE(logged("llguidance"));
}

TEST_F(Hostile, CompleteGrammarWithIgnoreEosEndsTheRequestCleanly) {
    WamrSession g(model(), "{}");
    for (const char* opts : {R"({"grammar":"root ::= \"a\"","ignore_eos":true,"temp":0})",
                             R"({"grammar":"root ::= \"a\"","ignore_eos":true,"max_tokens":-1})",
                             R"({"grammar":"root ::= \"a\"","ignore_eos":true,"temp":1.5,"seed":7})"}) {
        Reply r = run(g, opts);
        ASSERT_EQ(r.rc, success) << opts;
        EXPECT_EQ(r.text, "a") << opts;
        EXPECT_EQ(r.meta["stop_reason"], "grammar") << opts;
        EXPECT_EQ(r.meta["output_tokens"], 1) << opts;
    }
}

TEST_F(Hostile, CompleteGrammarWithIgnoreEosWhileStreaming) {
    WamrSession g(model(), "{}");
    auto e = g.open();
    std::vector<std::string> pieces;
    EXPECT_EQ(g.stream(e, kPrompt, &pieces, R"({"grammar":"root ::= \"a\" \"b\"?","ignore_eos":true,"temp":0})"),
              end_of_sequence);
    std::string all;
    for (const auto& p : pieces) all += p;
    EXPECT_TRUE(all == "a" || all == "ab") << all;
    EXPECT_EQ(g.fini(e), success);
}

// A guest's Jinja is host-only (refused before any template work); the
// template inside GGUF bytes a guest sends renders under bounds instead
// (tests/integration/template_bounds_test.cpp).
TEST_F(Hostile, ChatTemplateThatNeverEndsIsRefused) {
    EXPECT_EQ(load_with(R"({"chat_template":"{% for i in range(1000000000) %}x{% endfor %}"})"), invalid_argument);
}

TEST_F(Hostile, ThreeHundredGraphsWithDifferentContextsEndInBusy) {
    WamrApi& api = WamrApi::get();
    void* ctx = nullptr;
    ASSERT_EQ(api.init_backend(&ctx), success);
    const std::string path = model();
    int loaded = 0, refused = 0;
    std::vector<graph> graphs;
    for (int i = 0; i < 300; ++i) {
        const std::string cfg = "{\"ctx_size\":" + std::to_string(256 + 8 * i) + "}";
        graph g = 0;
        wasi_nn_error rc = api.load_by_name_with_config(ctx, path.data(), static_cast<uint32_t>(path.size()),
                                                        cfg.data(), static_cast<uint32_t>(cfg.size()), &g);
        if (rc == success) {
            ++loaded;
            graphs.push_back(g);
        } else {
            ASSERT_EQ(rc, busy) << "load " << i;
            ++refused;
        }
    }
    EXPECT_EQ(loaded, 4);  // max_llama_contexts
    EXPECT_EQ(refused, 296);
    EXPECT_TRUE(logged("max_llama_contexts"));
    // One unloaded makes room for another.
    ASSERT_EQ(api.unload(ctx, graphs[0]), success);
    const std::string cfg = R"({"ctx_size":4000})";
    graph g = 0;
    EXPECT_EQ(api.load_by_name_with_config(ctx, path.data(), static_cast<uint32_t>(path.size()), cfg.data(),
                                           static_cast<uint32_t>(cfg.size()), &g),
              success);
    EXPECT_EQ(api.deinit_backend(ctx), success);
}

TEST_F(Hostile, GraphsPerContextAreCapped) {
    WamrApi& api = WamrApi::get();
    void* ctx = nullptr;
    ASSERT_EQ(api.init_backend(&ctx), success);
    const std::string path = model();
    std::vector<graph> graphs;
    // Different seeds: different graphs on one shared decode loop (the
    // same file and config again is the same graph, and grows nothing).
    auto load_seed = [&](int seed, graph* g) {
        const std::string cfg = "{\"seed\":" + std::to_string(seed) + "}";
        return api.load_by_name_with_config(ctx, path.data(), static_cast<uint32_t>(path.size()), cfg.data(),
                                            static_cast<uint32_t>(cfg.size()), g);
    };
    for (int i = 0; i < 16; ++i) {
        graph g = 0;
        ASSERT_EQ(load_seed(i, &g), success) << i;
        graphs.push_back(g);
    }
    graph g = 0;
    EXPECT_EQ(load_seed(0, &g), success);  // already loaded: its handle again
    EXPECT_EQ(g, graphs[0]);
    EXPECT_EQ(load_seed(16, &g), busy);
    EXPECT_TRUE(logged("max_graphs"));
    ASSERT_EQ(api.unload(ctx, graphs.back()), success);
    EXPECT_EQ(load_seed(16, &g), success);
    EXPECT_EQ(api.deinit_backend(ctx), success);
}

TEST_F(Hostile, FourThousandLongStopStringsAreRefused) {
    WamrSession g(model(), R"({"temp":0,"max_tokens":32})");
    std::string stops;
    for (int i = 0; i < 4000; ++i) {
        stops += (i ? "," : "") + json_str("q" + std::to_string(i) + repeat("z", 195));
    }
    EXPECT_EQ(options(g, "{\"stop\":[" + stops + "]}"), invalid_argument);
    EXPECT_TRUE(logged("max_stop_strings"));
}

TEST_F(Hostile, StopListAtTheCapsRunsAndOverThemIsRefused) {
    WamrSession g(model(), R"({"temp":0,"max_tokens":32})");
    auto list = [](int n, size_t each) {
        std::string s;
        for (int i = 0; i < n; ++i) {
            std::string stop = "q" + std::to_string(i);
            stop += repeat("z", each - stop.size());
            s += (i ? "," : "") + json_str(stop);
        }
        return "{\"stop\":[" + s + "]}";
    };
    Reply r = run(g, list(32, 128));  // 32 strings, 4096 bytes: exactly the caps
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.text, kGolden);
    EXPECT_EQ(options(g, list(33, 8)), invalid_argument);
    EXPECT_EQ(options(g, list(31, 133)), invalid_argument);  // 4123 bytes
    EXPECT_TRUE(logged("max_stop_bytes"));
}

TEST_F(Hostile, MaxTokensMinusOneWithIgnoreEosAndShiftingStopsAtTheCeiling) {
    // A small context, so that the run shifts it several times.
    WamrSession g(model(), R"({"temp":0,"ctx_size":64,"max_output_tokens":240})");
    Reply r = run(g, R"({"max_tokens":-1,"ignore_eos":true,"context_shifting":true})");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.meta["output_tokens"], 240);
    EXPECT_EQ(r.meta["stop_reason"], "max_tokens");
    EXPECT_EQ(options(g, R"({"max_tokens":241})"), invalid_argument);
    EXPECT_TRUE(logged("max_output_tokens"));
}

TEST_F(Hostile, ExecutionContextsAreCapped) {
    WamrApi& api = WamrApi::get();
    WamrSession g(model(), "{}");
    std::vector<graph_execution_context> open;
    for (int i = 0; i < 256; ++i) {
        graph_execution_context e = 0;
        ASSERT_EQ(api.init_execution_context(g.ctx(), 0, &e), success) << i;
        open.push_back(e);
    }
    graph_execution_context e = 0;
    EXPECT_EQ(api.init_execution_context(g.ctx(), 0, &e), busy);
    EXPECT_EQ(api.init_execution_context_with_session_id(g.ctx(), "one-more", &e), busy);
    EXPECT_TRUE(logged("max_exec_contexts"));
    ASSERT_EQ(api.close_execution_context(g.ctx(), open.back()), success);
    open.pop_back();
    EXPECT_EQ(api.init_execution_context(g.ctx(), 0, &e), success);
    open.push_back(e);
    for (auto x : open) EXPECT_EQ(api.close_execution_context(g.ctx(), x), success);
}

// ===========================================================================
// Grammars and json_schema (llama.cpp's GBNF parser and the schema converter
// run on the caller's thread; what they throw or abort on is refused first).

TEST_F(Hostile, GrammarsThatDoNotCompileAreRefused) {
    WamrSession g(model(), "{}");
    for (const std::string& grammar : {
             std::string("root ::= ("),                       // unexpected end
             std::string("root ::= undefined-rule"),          // undefined rule
             std::string("root ::= root \"a\""),              // left recursion
             std::string("root ::= \"a\"{5000}"),              // repetition over llama.cpp's threshold
             std::string("root ::= <[99999999999999999999]>"),  // token id out of range
             std::string("root ::= [\\x"),                      // bad escape
             std::string("no rule here"),
             repeat("(", 10000) + "\"a\"" + repeat(")", 10000),  // would overflow the parser's stack
             std::string("root ::= \"") + repeat(")", 5000) + "\" " + repeat("(", 5000) + "\"a\"" + repeat(")", 5000),
         }) {
        EXPECT_EQ(compute(g, "{\"grammar\":" + json_str(grammar) + "}"), invalid_argument) << grammar.substr(0, 60);
    }
    EXPECT_TRUE(logged("nested deeper"));
}

TEST_F(Hostile, GrammarOverTheByteCapIsRefused) {
    WamrSession g(model(), "{}");
    std::string big = "root ::= \"a\"" + repeat(" | \"a\"", 11000);  // > 65536 bytes
    EXPECT_EQ(options(g, "{\"grammar\":" + json_str(big) + "}"), invalid_argument);
    EXPECT_TRUE(logged("max_grammar_bytes"));
}

TEST_F(Hostile, GrammarNoTokenCanFollowEndsTheRequest) {
    WamrSession g(model(), "{}");
    // A token id no vocabulary entry has: nothing can ever match.
    Reply r = run(g, R"({"grammar":"root ::= <[400000]>","temp":0})");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.text, "");
    EXPECT_EQ(r.meta["stop_reason"], "grammar");
}

TEST_F(Hostile, JsonSchemasThatWouldCrashOrThrowAreRefused) {
    WamrSession g(model(), "{}");
    for (const char* schema : {
             R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"allOf":[{"$ref":"#/$defs/a"}]})",  // $ref cycle
             R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"allOf":[{"$ref":"#/$defs/a"}]})",
             R"({"$ref":5})",                                 // non-string $ref
             R"({"type":"array","items":{"type":"string"},"minItems":100000})",  // repetition threshold
             R"({"type":"string","pattern":"^(((((a$"})",          // bad pattern
             R"({"$ref":"https://example.com/schema.json"})",     // remote ref: never fetched
             R"({"type":"object","properties":{"a":{"$ref":"other.json#/x"}}})",
         }) {
        EXPECT_EQ(compute(g, std::string("{\"json_schema\":") + schema + "}"), invalid_argument) << schema;
    }
    EXPECT_TRUE(logged("cycle"));
}

TEST_F(Hostile, JsonSchemaShapesRefusedAtSetInput) {
    WamrSession g(model(), "{}");
    std::string deep = repeat("{\"a\":", 100) + "1" + repeat("}", 100);
    for (const std::string& opts : {std::string(R"({"json_schema":"[1,2]"})"), std::string(R"({"json_schema":5})"),
                                    std::string(R"({"json_schema":"{not json"})"),
                                    "{\"json_schema\":" + deep + "}",
                                    "{\"json_schema\":" + json_str(deep) + "}"}) {
        EXPECT_EQ(options(g, opts), invalid_argument) << opts.substr(0, 60);
    }
}

TEST_F(Hostile, JsonSchemaEnumConstrainsTheReply) {
    WamrSession g(model(), R"({"temp":0,"max_tokens":16})");
    Reply r = run(g, R"({"json_schema":{"enum":["yes","no"]}})");
    ASSERT_EQ(r.rc, success);
    std::string t = r.text;
    while (!t.empty() && (t.back() == ' ' || t.back() == '\n' || t.back() == '\t')) t.pop_back();
    EXPECT_TRUE(t == "\"yes\"" || t == "\"no\"") << r.text;
}

// ===========================================================================
// logit_bias

TEST_F(Hostile, LogitBiasOutsideTheVocabularyOrTooLong) {
    WamrSession g(model(), "{}");
    EXPECT_EQ(compute(g, R"({"logit_bias":[[512,1.0]]})"), invalid_argument);  // n_vocab is 512
    EXPECT_EQ(compute(g, R"({"logit_bias":{"2147483647":-1}})"), invalid_argument);
    EXPECT_EQ(options(g, R"({"logit_bias":[[-1,1.0]]})"), invalid_argument);
    EXPECT_EQ(options(g, R"({"logit_bias":{"99999999999":1}})"), invalid_argument);
    EXPECT_EQ(options(g, R"({"logit_bias":[[5,1e400]]})"), invalid_argument);
    EXPECT_EQ(options(g, R"({"logit_bias":[[5,"nan"]]})"), invalid_argument);
    EXPECT_EQ(options(g, R"({"logit_bias":[[5,true]]})"), invalid_argument);
    EXPECT_EQ(options(g, R"({"logit_bias":[[5]]})"), invalid_argument);
    EXPECT_EQ(options(g, R"({"logit_bias":7})"), invalid_argument);
    std::string many;
    for (int i = 0; i < 1025; ++i) many += (i ? "," : "") + std::string("[") + std::to_string(i % 512) + ",0.5]";
    EXPECT_EQ(options(g, "{\"logit_bias\":[" + many + "]}"), invalid_argument);
    EXPECT_TRUE(logged("logit_bias"));
}

TEST_F(Hostile, LogitBiasBanningEveryTokenStillEnds) {
    WamrSession g(model(), R"({"temp":0,"max_tokens":8})");
    std::string all;
    for (int i = 0; i < 512; ++i) all += (i ? "," : "") + json_str(std::to_string(i)) + ":false";
    Reply r = run(g, "{\"logit_bias\":{" + all + "}}");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.meta["output_tokens"], 8);
}

// ===========================================================================
// Sampler parameters: every range llama.cpp asserts on, allocates by, or
// divides by.

TEST_F(Hostile, SamplerValuesOutOfRangeAreRefusedAtSetInput) {
    WamrSession g(model(), "{}");
    for (const char* opts : {
             R"({"temp":-1})", R"({"temp":1e39})", R"({"temp":"hot"})", R"({"top_p":1.5})", R"({"top_p":-0.1})",
             R"({"min_p":2})", R"({"typical_p":-1})", R"({"repeat_penalty":-1})", R"({"penalty_last_n":-2})",
             R"({"mirostat":3})", R"({"mirostat":-1})", R"({"mirostat_tau":-1})", R"({"seed":-2})",
             R"({"seed":4294967296})", R"({"dry_allowed_length":-1})", R"({"dry_penalty_last_n":-5})",
             R"({"xtc_probability":1.1})", R"({"xtc_threshold":-1})", R"({"dynatemp_range":-1})",
             R"({"top_k":1e30})", R"({"top_k":2.5})", R"({"presence_penalty":"x"})",
             R"({"dry_sequence_breakers":[1,2]})",
         }) {
        EXPECT_EQ(options(g, opts), invalid_argument) << opts;
    }
    std::string breakers;
    for (int i = 0; i < 33; ++i) breakers += (i ? "," : "") + json_str("b" + std::to_string(i));
    EXPECT_EQ(options(g, "{\"dry_sequence_breakers\":[" + breakers + "]}"), invalid_argument);
}

TEST_F(Hostile, RepeatPenaltyLlamaCppRejectsIsRefusedAtCompute) {
    WamrSession g(model(), "{}");
    // llama.cpp's sampler throws for these (not finite, or 1/x not finite).
    EXPECT_EQ(compute(g, R"({"repeat_penalty":0})"), invalid_argument);
    EXPECT_EQ(compute(g, R"({"repeat_penalty":1e-45})"), invalid_argument);
    EXPECT_TRUE(logged("penalty_repeat"));
}

TEST_F(Hostile, SamplerExtremesWithinRangeRunToTheEnd) {
    WamrSession g(model(), R"({"max_tokens":8,"seed":3})");
    for (const char* opts : {
             R"({"penalty_last_n":2147483647,"repeat_penalty":1.3})",  // window clamped to the context
             R"({"dry_multiplier":1,"dry_penalty_last_n":2147483647,"dry_allowed_length":2147483647})",
             R"({"dry_multiplier":1e30,"dry_base":1e30,"dry_allowed_length":0})",
             R"({"dry_multiplier":1,"dry_sequence_breakers":[")" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" R"("]})",
             R"({"top_k":2147483647})", R"({"top_k":-2147483648})", R"({"top_p":0,"min_p":1})",
             R"({"typical_p":0})", R"({"temp":1e38})", R"({"temp":1e-38})",
             R"({"dynatemp_range":1e30,"dynatemp_exponent":1e30})", R"({"xtc_probability":1,"xtc_threshold":0})",
             R"({"mirostat":1,"mirostat_tau":1e30,"mirostat_eta":1e30})",
             R"({"mirostat":2,"mirostat_tau":0,"mirostat_eta":1e30})",
             R"({"repeat_penalty":1e30,"presence_penalty":-3e38,"frequency_penalty":3e38})",
             R"({"seed":4294967295})", R"({"temp":0,"ignore_eos":true,"penalty_last_n":0})",
         }) {
        Reply r = run(g, opts);
        EXPECT_EQ(r.rc, success) << opts;
        EXPECT_LE(r.meta.value("output_tokens", 99), 8) << opts;
    }
}

// ===========================================================================
// Prompts and tokenization

TEST_F(Hostile, OddPromptTextIsTokenizedAndRun) {
    WamrSession g(model(), R"({"temp":0,"max_tokens":4})");
    for (const std::string& prompt : {std::string("\xff\xfe\x80 abc \xc3"), std::string("a\0b\0c", 5),
                                      std::string("</s><s></s><unk>"), std::string("   \n\t "),
                                      std::string("\xed\xa0\x80\xf4\x90\x80\x80"), repeat("\xe2\x80\x8b", 300)}) {
        Reply r = run(g, "", prompt);
        EXPECT_EQ(r.rc, success) << prompt.size();
    }
}

TEST_F(Hostile, EmptyPromptIsRefused) {
    WamrSession g(model(), "{}");
    auto e = g.open();
    EXPECT_EQ(g.set_text(e, 0, ""), invalid_argument);
    EXPECT_EQ(g.set_text(e, 0, std::string(3, '\0')), invalid_argument);
    EXPECT_EQ(WamrApi::get().compute(g.ctx(), e), invalid_argument);  // nothing set
}

TEST_F(Hostile, PromptOverTheByteCapIsRefusedBeforeTokenizing) {
    WamrSession g(model(), R"({"max_prompt_bytes":1000,"temp":0,"max_tokens":4})");
    auto e = g.open();
    EXPECT_EQ(g.set_text(e, 0, std::string(1001, 'a')), invalid_argument);
    EXPECT_TRUE(logged("max_prompt_bytes"));
    Reply ok = run(g, "", repeat("a ", 500));
    EXPECT_EQ(ok.rc, success);
    // run_inference takes its own prompt.
    std::string big(1001, 'b');
    uint32_t dim = static_cast<uint32_t>(big.size());
    tensor_dimensions dims{&dim, 1};
    tensor t{};
    t.dimensions = &dims;
    t.type = u8;
    t.data = {reinterpret_cast<uint8_t*>(big.data()), dim};
    std::vector<uint8_t> out(4096);
    uint32_t size = static_cast<uint32_t>(out.size());
    EXPECT_EQ(WamrApi::get().run_inference(g.ctx(), e, 0, &t, out.data(), &size, nullptr, 0), invalid_argument);
}

TEST_F(Hostile, PromptPastTheDefaultCapAndTheAbiLimit) {
    WamrSession g(model(), "{}");
    auto e = g.open();
    EXPECT_EQ(g.set_text(e, 0, std::string((4u << 20) + 1, 'a')), invalid_argument);  // max_prompt_bytes
    EXPECT_EQ(g.set_text(e, 0, std::string((16u << 20) + 1, 'a')), too_large);  // the ABI's tensor limit
}

TEST_F(Hostile, PromptLongerThanTheContext) {
    WamrSession g(model(), R"({"max_tokens":4})");
    Reply r = run(g, "", repeat("the cat sat. ", 20000));  // 260 KB, far over 2048 tokens
    EXPECT_EQ(r.rc, prompt_tool_long);
}

// ===========================================================================
// Sessions

TEST_F(Hostile, SessionIdsOfOddShape) {
    WamrApi& api = WamrApi::get();
    WamrSession g(model(), R"({"max_sessions":4})");
    graph_execution_context e = 0;
    EXPECT_EQ(api.init_execution_context_with_session_id(g.ctx(), "", &e), invalid_argument);
    EXPECT_EQ(api.init_execution_context_with_session_id(g.ctx(), repeat("s", 257).c_str(), &e), invalid_argument);
    EXPECT_EQ(api.init_execution_context_with_session_id(g.ctx(), nullptr, &e), invalid_argument);
    for (const std::string& id : {repeat("s", 256), std::string("\xff\xfe"), std::string("../../etc/passwd"),
                                  std::string("b1/anon-0"), std::string("%s%n%x"), std::string("a b\tc\n")}) {
        ASSERT_EQ(api.init_execution_context_with_session_id(g.ctx(), id.c_str(), &e), success) << id;
        std::string reply;
        EXPECT_EQ(g.turn(e, kPrompt, &reply, R"({"max_tokens":2})"), success) << id;
        EXPECT_EQ(api.close_execution_context(g.ctx(), e), success);
    }
}

// ===========================================================================
// Configuration documents of the wrong shape

TEST_F(Hostile, BadJsonShapesAreRefusedAtSetInput) {
    WamrSession g(model(), "{}");
    const std::string deep = repeat("{\"a\":", 200) + "1" + repeat("}", 200);
    for (const std::string& opts : {
             std::string("[]"), std::string("null"), std::string("1"), std::string("\"x\""), std::string("{"),
             std::string("{\"a\":"), std::string("{\"max_tokens\":1,}"), deep, repeat("[", 100000),
             std::string(R"({"max_tokens":"10"})"), std::string(R"({"max_tokens":1e20})"),
             std::string(R"({"max_tokens":3.5})"), std::string(R"({"max_tokens":-2})"),
             std::string(R"({"temp":true})"), std::string(R"({"stop":5})"), std::string(R"({"stop":[1]})"),
             std::string(R"({"stop":["a\u0000b"]})"), std::string(R"({"seed":1e308})"),
             std::string(R"({"temp":1e400})"), std::string(R"({"priority":"urgent"})"),
             std::string(R"({"timeout_ms":-1})"), std::string(R"({"max_time_ms":-5})"),
             std::string(R"({"grammar":[]})"), std::string(R"({"grammar":"a\u0000b"})"),
             std::string(R"({"ignore_eos":"yes"})"), std::string(R"({"ignore_eos":2})"),
             std::string("{\"temp\":0.5\xff}"), std::string("{\"\xff\":1"),
         }) {
        EXPECT_EQ(options(g, opts), invalid_argument) << opts.substr(0, 60);
    }
}

TEST_F(Hostile, HarmlessOdditiesAreAccepted) {
    WamrSession g(model(), R"({"temp":0,"max_tokens":32})");
    for (const char* opts : {"{}", "   ", R"({"max_tokens":1,"max_tokens":32})", R"({"unknown_key":[1,{"x":2}]})",
                             R"({"stop":null,"grammar":null})", R"({"runtime":{"sampling":{"temp":0}}})",
                             R"({"ctx_size":512})",  // not per request: ignored
                             "{\"\\u0074emp\":0}"}) {
        Reply r = run(g, opts);
        EXPECT_EQ(r.rc, success) << opts;
        EXPECT_EQ(r.text, kGolden) << opts;
    }
    // A host-only key is refused at any scope, per request too
    // (docs/security.md §5); a load-time key over its ceiling is not applied
    // per request, so it is ignored like any load-time key there.
    EXPECT_EQ(run(g, R"({"rpc_servers":"10.0.0.1:1"})").rc, invalid_argument);
    EXPECT_EQ(run(g, R"({"ctx_size":99999})").rc, success);
}

TEST_F(Hostile, GraphOrRequestConfigCannotWidenTheCaps) {
    WamrApi& api = WamrApi::get();
    void* ctx = nullptr;
    ASSERT_EQ(api.init_backend(&ctx), success);
    const std::string path = model();
    const std::string wide = R"({"max_stop_strings":100000,"max_output_tokens":100000,"max_exec_contexts":100000})";
    graph g = 0;
    ASSERT_EQ(api.load_by_name_with_config(ctx, path.data(), static_cast<uint32_t>(path.size()), wide.data(),
                                           static_cast<uint32_t>(wide.size()), &g),
              success);
    graph_execution_context e = 0;
    ASSERT_EQ(api.init_execution_context(ctx, g, &e), success);
    auto set = [&](const std::string& text) {
        uint32_t dim = static_cast<uint32_t>(text.size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(text.data())), dim};
        return api.set_input(ctx, e, 1, &t);
    };
    std::string stops;
    for (int i = 0; i < 40; ++i) stops += (i ? "," : "") + json_str("s" + std::to_string(i));
    EXPECT_EQ(set("{\"stop\":[" + stops + "]}"), invalid_argument);
    EXPECT_EQ(set(R"({"max_tokens":9000})"), invalid_argument);
    EXPECT_EQ(set(R"({"max_output_tokens":100000,"max_tokens":9000})"), invalid_argument);
    EXPECT_TRUE(logged("cap ignored"));
    EXPECT_EQ(api.deinit_backend(ctx), success);
}

TEST_F(Hostile, RunningTimeCeiling) {
    WamrSession g(model(), R"({"max_request_time_ms":300,"max_output_tokens":1000000})");
    EXPECT_EQ(options(g, R"({"max_time_ms":301})"), invalid_argument);
    EXPECT_TRUE(logged("max_request_time_ms"));
    // Far more tokens than 300 ms allow, on any machine: it ends with its text.
    Reply r = run(g, R"({"max_tokens":1000000,"ignore_eos":true,"temp":0})");
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.meta["stop_reason"], "time_limit");
    EXPECT_GT(r.meta["output_tokens"].get<int>(), 0);
}

// ===========================================================================
// Tensors and handles

TEST_F(Hostile, MalformedTensors) {
    WamrApi& api = WamrApi::get();
    WamrSession g(model(), "{}");
    auto e = g.open();
    std::string text = "abc";
    uint32_t dim = 5;
    tensor_dimensions dims{&dim, 1};
    tensor t{};
    t.dimensions = &dims;
    t.type = u8;
    t.data = {reinterpret_cast<uint8_t*>(text.data()), 3};
    EXPECT_EQ(api.set_input(g.ctx(), e, 0, &t), invalid_argument);  // dims say 5, data 3
    dim = 3;
    t.type = fp32;
    EXPECT_EQ(api.set_input(g.ctx(), e, 0, &t), invalid_argument);
    const int32_t bogus_type = 1000;  // as a guest's bytes arrive: no enumerator
    std::memcpy(&t.type, &bogus_type, sizeof bogus_type);
    EXPECT_EQ(api.set_input(g.ctx(), e, 0, &t), invalid_argument);
    t.type = u8;
    t.data = {nullptr, 10};
    EXPECT_EQ(api.set_input(g.ctx(), e, 0, &t), invalid_argument);
    EXPECT_EQ(api.set_input(g.ctx(), e, 0, nullptr), invalid_argument);
    uint32_t huge[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    tensor_dimensions overflow{huge, 4};
    t.dimensions = &overflow;
    t.data = {reinterpret_cast<uint8_t*>(text.data()), 3};
    EXPECT_EQ(api.set_input(g.ctx(), e, 0, &t), invalid_argument);
    EXPECT_EQ(api.set_input(g.ctx(), e, 7, &t), invalid_argument);
}

TEST_F(Hostile, StaleAndForeignHandles) {
    WamrApi& api = WamrApi::get();
    void* ctx = nullptr;
    ASSERT_EQ(api.init_backend(&ctx), success);
    EXPECT_EQ(api.compute(ctx, 9999), not_found);
    EXPECT_EQ(api.close_execution_context(ctx, 9999), not_found);
    EXPECT_EQ(api.unload(ctx, 42), not_found);
    graph_execution_context e = 0;
    EXPECT_EQ(api.init_execution_context(ctx, 42, &e), not_found);
    EXPECT_EQ(api.init_execution_context_with_session_id(ctx, "s", &e), not_found);  // no graph yet
    EXPECT_EQ(api.compute(reinterpret_cast<void*>(0x1234), 0), invalid_argument);
    EXPECT_EQ(api.deinit_backend(ctx), success);
    EXPECT_EQ(api.deinit_backend(ctx), not_found);  // docs/abi.md: already deinitialised
    EXPECT_EQ(api.compute(ctx, 0), invalid_argument);
    EXPECT_EQ(api.init_backend(nullptr), invalid_argument);
}

// ===========================================================================
// Repeated and concurrent calls

TEST_F(Hostile, ConcurrentComputeOnOneExecutionContext) {
    WamrSession g(model(), R"({"temp":0,"max_tokens":64})");
    auto e = g.open();
    ASSERT_EQ(g.set_text(e, 0, kPrompt), success);
    std::atomic<int> ok{0}, busy_count{0}, other{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            wasi_nn_error rc = WamrApi::get().compute(g.ctx(), e);
            (rc == success ? ok : rc == busy ? busy_count : other)++;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_GE(ok.load(), 1);
    EXPECT_EQ(ok + busy_count, 4);
    EXPECT_EQ(other.load(), 0);
}

TEST_F(Hostile, HostileStormWhileTheNeighbourGenerates) {
    // Four hostile contexts, on the neighbour's model and loop, each sending
    // refused and aborting-in-llama.cpp requests in a loop while the
    // neighbour runs; the neighbour's replies never change.
    std::atomic<bool> stop{false};
    std::atomic<int> unexpected{0};
    std::vector<std::thread> storm;
    for (int t = 0; t < 4; ++t) {
        storm.emplace_back([&, t] {
            WamrSession g(model(), "{}");
            const char* hostile[] = {
                R"({"grammar":"root ::= \"a\"","ignore_eos":true})",
                R"({"grammar":"root ::= ("})",
                R"({"logit_bias":[[100000,1]]})",
                R"({"max_tokens":100000})",
                R"({"json_schema":{"$ref":5}})",
                R"({"repeat_penalty":0})",
            };
            const wasi_nn_error expected[] = {success,          invalid_argument, invalid_argument,
                                              invalid_argument, invalid_argument, invalid_argument};
            for (int i = 0; !stop && i < 24; ++i) {
                const size_t k = static_cast<size_t>(i + t) % 6;
                wasi_nn_error rc = compute(g, hostile[k]);
                if (rc != expected[k]) unexpected++;
            }
        });
    }
    for (int i = 0; i < 3; ++i) {
        std::string reply;
        auto e = neighbour_->open();
        EXPECT_EQ(neighbour_->turn(e, kPrompt, &reply), success);
        EXPECT_EQ(reply, kGolden);
    }
    stop = true;
    for (auto& t : storm) t.join();
    EXPECT_EQ(unexpected.load(), 0);
}

TEST_F(Hostile, RepeatedOpenCloseAndLoadUnloadStayWithinTheCaps) {
    WamrApi& api = WamrApi::get();
    WamrSession g(model(), "{}");
    for (int i = 0; i < 600; ++i) {  // well past max_exec_contexts, one at a time
        graph_execution_context e = 0;
        ASSERT_EQ(api.init_execution_context(g.ctx(), 0, &e), success) << i;
        ASSERT_EQ(api.close_execution_context(g.ctx(), e), success);
    }
    const std::string path = model();
    for (int i = 0; i < 40; ++i) {  // past max_graphs, one at a time
        graph x = 0;
        ASSERT_EQ(api.load_by_name(g.ctx(), path.data(), static_cast<uint32_t>(path.size()), &x), success) << i;
        ASSERT_EQ(api.unload(g.ctx(), x), success);
    }
}

// ===========================================================================
// Running out of a resource is an error, not an abort.

TEST_F(Hostile, ContextTooLargeForMemoryIsMissingMemory) {
    if (kAddressSanitizer) GTEST_SKIP() << "RLIMIT_AS and a sanitizer's shadow memory do not mix";
    // 4 sequences of 2^20 cells, f32 K and V: about 5 GiB of KV, with 1 GiB
    // of address space left to the process.
    AddressSpaceLimit limit(1ull << 30);
    ASSERT_TRUE(limit.ok());
    // The host's own settings (a guest's ctx_size is held to its ceiling,
    // 32768 by default, and refused above it: the second load).
    const std::string big = R"({"ctx_size":1048576,"max_concurrent":4,"cache_type_k":"f32","cache_type_v":"f32"})";
    WamrSession host(model(), big, "{}");
    EXPECT_EQ(host.load_status(), missing_memory);
    EXPECT_EQ(load_with(big), invalid_argument);
}

TEST_F(Hostile, ContextSettingsLlamaCppRefusesAreInvalid) {
    WamrSession g(model(), R"({"cache_type_v":"q4_0","flash_attn":"off"})");
    EXPECT_EQ(g.load_status(), invalid_argument);
}

}  // namespace
