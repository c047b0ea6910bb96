// A swap is held to the host's policy as a load is (docs/models.md): its
// name is an alias or a path under the path rules, its config is held to
// the ceilings and may not name host-only keys; each refusal leaves the
// old model serving.
#include <gtest/gtest.h>

#include <unistd.h>

#include "integration/policy_fixture.h"
#include "integration/swap_fixture.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

const std::string kSettings =
    "\"temp\":0,\"max_tokens\":8,\"max_concurrent\":2,\"ctx_size\":256,\"threads\":1,\"logging\":{\"level\":\"warn\"}";

std::string reply_version(WamrSession& s) {
    auto e = s.open();
    std::string text, meta;
    if (s.turn(e, "Hello there.", &text, "", &meta) != success) return "";
    return json::parse(meta)["model_version"]["path"].get<std::string>();
}

TEST(SwapPolicy, AliasesAndPathRulesAndHostOnlyKeysApplyToSwaps) {
    const std::string a = canonical(swap_model_a()), b = canonical(swap_model_b());
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    // Aliases and no model directories: guests may not name paths.
    const std::string host = "{" + kSettings + ",\"policy\":{\"models\":{\"a\":{\"path\":" + json(a).dump() +
                             "},\"b\":{\"path\":" + json(b).dump() + "}}}}";
    WamrSession s("a", host, "");
    ASSERT_EQ(s.load_status(), success);
    ASSERT_EQ(reply_version(s), a);

    // A path, even of an aliased file: refused as a guest's load would be.
    EXPECT_EQ(s.swap(b), not_found);
    EXPECT_EQ(s.swap("/no/such/model.gguf"), not_found);  // the same code, existing or not
    // Host-only keys and values over a ceiling in the swap's config.
    EXPECT_EQ(s.swap("b", "{\"rpc_servers\":[\"127.0.0.1:1\"]}"), invalid_argument);
    EXPECT_EQ(s.swap("b", "{\"ctx_size\":1000000}"), invalid_argument);
    EXPECT_EQ(s.swap("c"), not_found);  // neither an alias nor an allowed path
    json m = model_status(s);
    EXPECT_EQ(m["version"], 1);
    EXPECT_EQ(m["alias"], "a");
    EXPECT_EQ(m["swap"]["refused"], 5);
    EXPECT_EQ(reply_version(s), a);

    // By alias: the host's file.
    ASSERT_EQ(s.swap("b"), success);
    m = model_status(s);
    EXPECT_EQ(m["version"], 2);
    EXPECT_EQ(m["alias"], "b");
    EXPECT_EQ(m["model_version"]["path"], b);
    EXPECT_EQ(reply_version(s), b);
    // A load of the alias the graph serves now returns it; the old one's
    // loads a new graph.
    graph g = 0;
    auto& api = WamrApi::get();
    ASSERT_EQ(api.load_by_name(s.ctx(), "b", 1, &g), success);
    EXPECT_EQ(g, s.graph_id());
    ASSERT_EQ(api.load_by_name(s.ctx(), "a", 1, &g), success);
    EXPECT_NE(g, s.graph_id());
}

// The policy file's alias re-pointed, then reload_aliases: the graph loaded
// by it is swapped (the guest's load config kept); one loaded by a path, or
// by an alias that did not change, keeps its model; an incompatible target
// is refused and tried again by the next reload.
TEST(SwapPolicy, ReloadAliasesSwapsTheGraphsOfAChangedAlias) {
    const std::string a = canonical(swap_model_a()), b = canonical(swap_model_b());
    const std::string other = canonical(model_path("stories260K.gguf"));  // another vocabulary
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    char dir[] = "/tmp/wnl-swap-policy-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    const std::string file = std::string(dir) + "/policy.json";
    auto write_policy = [&](const std::string& chat_path) {
        PolicyTree::write(file, "{\"models\":{\"chat\":{\"path\":" + json(chat_path).dump() +
                                    "},\"fixed\":{\"path\":" + json(a).dump() + "}}}");
    };
    write_policy(a);
    {
        PolicyEnv env(file);
        WamrSession s("chat", "{" + kSettings + "}", "{\"max_tokens\":4}");
        ASSERT_EQ(s.load_status(), success);
        auto& api = WamrApi::get();
        graph fixed = 0;
        ASSERT_EQ(api.load_by_name(s.ctx(), "fixed", 5, &fixed), success);
        ASSERT_NE(fixed, s.graph_id());
        EXPECT_EQ(api.reload_aliases(s.ctx()), success);  // nothing changed
        EXPECT_EQ(model_status(s)["version"], 1);

        write_policy(b);
        ASSERT_EQ(api.reload_aliases(s.ctx()), success);
        json m = status_json(s, BACKEND_STATUS_MODEL);
        ASSERT_EQ(m["graphs"].size(), 2u);
        EXPECT_EQ(m["graphs"][0]["version"], 2);
        EXPECT_EQ(m["graphs"][0]["model_version"]["path"], b);
        EXPECT_EQ(m["graphs"][0]["alias"], "chat");
        EXPECT_EQ(m["graphs"][1]["version"], 1);
        EXPECT_EQ(m["graphs"][1]["model_version"]["path"], a);
        auto e = s.open();
        std::string text, meta;
        ASSERT_EQ(s.turn(e, "Hello there.", &text, "", &meta), success);
        json md = json::parse(meta);
        EXPECT_EQ(md["model_version"]["path"], b);
        EXPECT_EQ(md["output_tokens"], 4);  // the guest's load config, kept

        write_policy(other);
        EXPECT_EQ(api.reload_aliases(s.ctx()), invalid_argument);  // not compatible
        EXPECT_EQ(model_status(s)["model_version"]["path"], b);
        EXPECT_EQ(api.reload_aliases(s.ctx()), invalid_argument);  // tried again
        EXPECT_EQ(model_status(s)["swap"]["refused"], 2);
        write_policy("/no/such/file.gguf");
        EXPECT_EQ(api.reload_aliases(s.ctx()), model_not_found);
        EXPECT_EQ(model_status(s)["model_version"]["path"], b);
    }
    ::unlink(file.c_str());
    ::rmdir(dir);
}

}  // namespace
