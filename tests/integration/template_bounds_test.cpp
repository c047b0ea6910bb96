// A chat template a guest supplies is parsed and rendered under time, memory
// and output bounds (a child process: src/engine/sandboxed_call.h). Hostile
// templates are refused with invalid_argument at load, or at the turn that
// makes them explode; the process, and everyone else's requests, go on.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;

namespace {

const char* kPlain = "{\"temp\":0,\"max_tokens\":12,\"threads\":2,\"logging\":{\"level\":\"error\"}}";

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

std::string with_template(const std::string& tmpl) {
    return "{\"temp\":0,\"max_tokens\":12,\"threads\":2,\"logging\":{\"level\":\"error\"},\"chat_template\":" +
           json_string(tmpl) + "}";
}

// A guest's Jinja in a graph config is refused outright (host-only,
// docs/security.md §5); the template a guest still controls is the one
// inside GGUF bytes it sends to load. These models are stories260K's
// vocabulary with random weights (tools/mkmodel) and the given template.
std::string model_with_template(const std::string& tmpl) {
    static int n = 0;
    char dir[] = "/tmp/wnl-template-XXXXXX";
    if (!::mkdtemp(dir)) return "";
    const std::string tfile = std::string(dir) + "/template.jinja";
    const std::string out = std::string(dir) + "/model-" + std::to_string(++n) + ".gguf";
    FILE* f = std::fopen(tfile.c_str(), "wb");
    if (!f) return "";
    std::fwrite(tmpl.data(), 1, tmpl.size(), f);
    std::fclose(f);
    const std::string cmd = std::string("'") + WNL_MKMODEL + "' -q --preset tiny --vocab-from '" +
                            model_path("stories260K.gguf") + "' --chat-template '@" + tfile + "' -o '" + out + "'";
    if (std::system(cmd.c_str()) != 0) return "";
    return out;
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::vector<uint8_t> bytes;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return bytes;
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    std::fclose(f);
    return bytes;
}

// The guest's load: the GGUF bytes with `tmpl` inside, on a backend context
// that has only greedy sampling, logging and threads.
wasi_nn_error guest_load(const std::string& tmpl, void** ctx, graph* g) {
    auto& api = WamrApi::get();
    if (api.init_backend_with_config(ctx, kPlain, static_cast<uint32_t>(std::strlen(kPlain))) != success)
        return runtime_error;
    const std::string path = model_with_template(tmpl);
    EXPECT_FALSE(path.empty()) << "mkmodel failed";
    std::vector<uint8_t> bytes = read_file(path);
    EXPECT_FALSE(bytes.empty());
    graph_builder b{bytes.data(), static_cast<uint32_t>(bytes.size())};
    graph_builder_array arr{&b, 1};
    return api.load(*ctx, &arr, ggml, cpu, g);
}

// A well-behaved neighbour still gets its greedy reply.
void expect_neighbour_served() {
    WamrSession s(model_path("stories260K.gguf"), kPlain);
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string reply;
    ASSERT_EQ(s.turn(e, "Once upon a time", &reply), success);
    EXPECT_EQ(reply, ", there was a little girl named Lily. She");
}

const char* kCustom =
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}";

}  // namespace

TEST(TemplateBounds, EndlessLoopTemplateIsRefusedAtLoad) {
    void* ctx = nullptr;
    graph g = 0;
    wasi_nn_error rc = guest_load("{% for i in range(1000000000) %}xxxxxxxxxxxxxxxx{% endfor %}", &ctx, &g);
    EXPECT_EQ(rc, invalid_argument);
    WamrApi::get().deinit_backend(ctx);
    expect_neighbour_served();
}

TEST(TemplateBounds, DeeplyNestedTemplateIsRefusedAtLoad) {
    std::string tmpl;
    for (int i = 0; i < 100000; ++i) tmpl += "{% if true %}";
    tmpl += "x";
    for (int i = 0; i < 100000; ++i) tmpl += "{% endif %}";
    void* ctx = nullptr;
    graph g = 0;
    EXPECT_EQ(guest_load(tmpl, &ctx, &g), invalid_argument);
    WamrApi::get().deinit_backend(ctx);
    std::string parens(200000, '(');
    EXPECT_EQ(guest_load("{{ " + parens + " }}", &ctx, &g), invalid_argument);
    WamrApi::get().deinit_backend(ctx);
    expect_neighbour_served();
}

// A guest's Jinja in its graph config is host-only: refused before any
// template work.
TEST(TemplateBounds, JinjaInAGuestConfigIsRefused) {
    void* ctx = nullptr;
    auto& api = WamrApi::get();
    ASSERT_EQ(api.init_backend_with_config(&ctx, kPlain, static_cast<uint32_t>(std::strlen(kPlain))), success);
    const std::string model = model_path("stories260K.gguf");
    const std::string cfg = with_template("{% for i in range(1000000000) %}x{% endfor %}");
    graph g = 0;
    EXPECT_EQ(api.load_by_name_with_config(ctx, model.data(), static_cast<uint32_t>(model.size()), cfg.data(),
                                           static_cast<uint32_t>(cfg.size()), &g),
              invalid_argument);
    api.deinit_backend(ctx);
    expect_neighbour_served();
}

// The same GGUF gives the same replies whether the guest sent its bytes (its
// template rendered in a child) or the host named its file (in place).
TEST(TemplateBounds, GuestTemplateRendersLikeTheHostsOwn) {
    void* ctx = nullptr;
    graph g = 0;
    ASSERT_EQ(guest_load(kCustom, &ctx, &g), success);
    const std::string path = model_with_template(kCustom);  // byte-identical: mkmodel is deterministic
    WamrSession host(path, kPlain);
    ASSERT_EQ(host.load_status(), success);
    auto& api = WamrApi::get();
    graph_execution_context ge = 0;
    ASSERT_EQ(api.init_execution_context_with_session_id(ctx, "guest", &ge), success);
    auto he = host.open("host");
    for (const char* msg : {"Once upon a time", "What did the dog do?"}) {
        std::string want, got;
        ASSERT_EQ(host.turn(he, msg, &want), success);
        uint32_t n = static_cast<uint32_t>(std::strlen(msg));
        tensor_dimensions dims{&n, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(msg)), n};
        ASSERT_EQ(api.set_input(ctx, ge, 0, &t), success);
        ASSERT_EQ(api.compute(ctx, ge), success);
        std::vector<uint8_t> buf(4096);
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t size = 0;
        ASSERT_EQ(api.get_output(ctx, ge, 0, &td, &size), success);
        got.assign(reinterpret_cast<char*>(buf.data()), size);
        EXPECT_EQ(got, want) << msg;
        EXPECT_FALSE(got.empty());
    }
    api.close_execution_context(ctx, ge);
    api.deinit_backend(ctx);
}

// Harmless at load (llama.cpp renders a template with several sample
// conversations then, to learn what it supports), explosive once a message
// says "boom": the turn that sets it off is refused and the session keeps
// its history.
TEST(TemplateBounds, TemplateThatExplodesLaterFailsOnlyThatTurn) {
    const std::string tmpl = std::string("{% if 'boom' in messages[-1].content %}{% for i in range(1000000000) %}x{% endfor %}{% endif %}") + kCustom;
    void* ctx = nullptr;
    graph g = 0;
    ASSERT_EQ(guest_load(tmpl, &ctx, &g), success);
    auto& api = WamrApi::get();
    graph_execution_context e = 0;
    ASSERT_EQ(api.init_execution_context_with_session_id(ctx, "s", &e), success);
    auto turn = [&](const char* msg) {
        uint32_t n = static_cast<uint32_t>(std::strlen(msg));
        tensor_dimensions dims{&n, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(msg)), n};
        EXPECT_EQ(api.set_input(ctx, e, 0, &t), success);
        return api.compute(ctx, e);
    };
    EXPECT_EQ(turn("Once upon a time"), success);
    EXPECT_EQ(turn("And then, boom?"), invalid_argument);
    EXPECT_EQ(turn("And then?"), success);  // the refused turn left no trace
    api.close_execution_context(ctx, e);
    api.deinit_backend(ctx);
    expect_neighbour_served();
}
