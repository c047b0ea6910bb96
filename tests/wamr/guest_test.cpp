// The wasm guest (examples/guest/chat.c) on a real WAMR 2.4.5 iwasm, with
// libwasi_nn_llamacpp.so behind WAMR's wasi-nn host, against the same
// library called natively in this process the way WAMR's host calls it
// (init_backend, load_by_name_with_config, init_execution_context, then per
// turn set_input 1 and 0, compute, get_output 0 and 1).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

const std::string kModel = model_path("stories260K.gguf");
const std::string kConfig = R"({"chat_template":"chatml","temp":0,"max_tokens":24,"ctx_size":1024})";
const std::vector<std::string> kChat = {"Once upon a time", "What happened next?", "How did it end?"};

struct IwasmRun {
    int rc = -1;
    std::string out, err;
};

// Runs iwasm on the guest: WASI environment variables (iwasm --env) and the
// guest's arguments; extra host environment before the command.
IwasmRun iwasm(const std::vector<std::string>& guest_args, const std::vector<std::string>& guest_env = {},
          const std::string& host_env = "") {
    char err_path[] = "/tmp/wnl-iwasm-err-XXXXXX";
    int fd = mkstemp(err_path);
    if (fd >= 0) close(fd);
    std::string cmd = "LD_LIBRARY_PATH=" + shell_quote(WNL_WAMR_LIBRARY_PATH) + " " + host_env + " " +
                      shell_quote(WNL_IWASM);
    for (const auto& e : guest_env) cmd += " --env=" + shell_quote(e);
    cmd += " " + shell_quote(WNL_GUEST_WASM);
    for (const auto& a : guest_args) cmd += " " + shell_quote(a);
    cmd += " 2>" + shell_quote(err_path);
    IwasmRun r;
    r.out = run_command(cmd, &r.rc);
    std::ifstream f(err_path);
    std::stringstream ss;
    ss << f.rdbuf();
    r.err = ss.str();
    unlink(err_path);
    return r;
}

// WAMR's wasi-nn host prints its own diagnostics on the process's stdout,
// which is also the guest's ("[wasi_nn.c:57 ERROR] Error get_output() -> 7").
// They come as whole lines between the guest's (it flushes once per turn).
std::string without_host_lines(const std::string& out, int* host_lines) {
    std::string kept;
    std::istringstream in(out);
    std::string line;
    *host_lines = 0;
    while (std::getline(in, line)) {
        if (line.rfind("[wasi_nn.c:", 0) == 0) {
            ++*host_lines;
            continue;
        }
        kept += line + "\n";
    }
    return kept;
}

struct Turn {
    std::string reply;
    json meta;
};

// The same conversation through the library in this process, called as
// WAMR's host calls it: plain init_backend, then the guest's calls.
std::vector<Turn> native_chat(const std::string& model, const std::string& config,
                              const std::vector<std::string>& messages, const std::string& options = "") {
    WamrApi& api = WamrApi::get();
    void* ctx = nullptr;
    std::vector<Turn> turns;
    EXPECT_EQ(api.init_backend(&ctx), success);
    graph g = 0;
    EXPECT_EQ(api.load_by_name_with_config(ctx, model.c_str(), static_cast<uint32_t>(model.size()), config.c_str(),
                                           static_cast<uint32_t>(config.size()), &g),
              success);
    graph_execution_context e = 0;
    EXPECT_EQ(api.init_execution_context(ctx, g, &e), success);
    auto set_text = [&](uint32_t index, const std::string& text) {
        uint32_t dim = static_cast<uint32_t>(text.size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(text.data())), dim};
        return api.set_input(ctx, e, index, &t);
    };
    auto output = [&](uint32_t index) {
        std::vector<uint8_t> buf(1 << 16);
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t size = 0;
        EXPECT_EQ(api.get_output(ctx, e, index, &td, &size), success);
        return std::string(reinterpret_cast<char*>(buf.data()), size);
    };
    for (const auto& m : messages) {
        if (!options.empty()) EXPECT_EQ(set_text(1, options), success);
        EXPECT_EQ(set_text(0, m), success);
        EXPECT_EQ(api.compute(ctx, e), success);
        Turn t;
        t.reply = output(0);
        t.meta = json::parse(output(1));
        turns.push_back(t);
    }
    api.deinit_backend(ctx);
    return turns;
}

// Metadata without the timings and rates, which differ from run to run.
json without_times(json j) {
    auto ends_with = [](const std::string& k, const std::string& suffix) {
        return k.size() > suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    for (auto it = j.begin(); it != j.end();) {
        if (ends_with(it.key(), "_ms") || ends_with(it.key(), "_per_s"))
            it = j.erase(it);
        else
            ++it;
    }
    return j;
}

// Checks the guest's stdout against the native turns: byte for byte
// "user: M\nassistant: REPLY\nmetadata: " per turn, then a JSON line equal
// to the native metadata but for its timings; nothing else.
void expect_transcript(const std::string& out, const std::vector<std::string>& messages,
                       const std::vector<Turn>& native) {
    ASSERT_EQ(messages.size(), native.size());
    size_t pos = 0;
    for (size_t i = 0; i < native.size(); ++i) {
        const std::string head = "user: " + messages[i] + "\nassistant: " + native[i].reply + "\nmetadata: ";
        ASSERT_EQ(out.compare(pos, head.size(), head), 0)
            << "turn " << i << ": expected\n" << head << "\ngot\n" << out.substr(pos);
        pos += head.size();
        size_t eol = out.find('\n', pos);
        ASSERT_NE(eol, std::string::npos);
        json meta = json::parse(out.substr(pos, eol - pos), nullptr, false);
        ASSERT_FALSE(meta.is_discarded()) << out.substr(pos, eol - pos);
        EXPECT_EQ(without_times(meta), without_times(native[i].meta)) << "turn " << i;
        pos = eol + 1;
    }
    EXPECT_EQ(pos, out.size()) << "left over: " << out.substr(pos);
}

std::vector<std::string> args(const std::string& model, const std::string& config,
                              const std::vector<std::string>& messages) {
    std::vector<std::string> a = {model, config, "--"};
    a.insert(a.end(), messages.begin(), messages.end());
    return a;
}

TEST(WamrGuest, MultiTurnChatEqualsNative) {
    const auto native = native_chat(kModel, kConfig, kChat);
    for (const auto& t : native) ASSERT_FALSE(t.reply.empty());
    IwasmRun r = iwasm(args(kModel, kConfig, kChat));
    ASSERT_EQ(r.rc, 0) << r.out << r.err;
    int host_lines = 0;
    std::string out = without_host_lines(r.out, &host_lines);
    EXPECT_EQ(host_lines, 0) << r.out;
    expect_transcript(out, kChat, native);
    // A chat: later turns carry the history, and reuse its KV.
    EXPECT_GT(native[2].meta["input_tokens"].get<int>(), native[1].meta["input_tokens"].get<int>());
    EXPECT_GT(native[2].meta["cached_tokens"].get<int>(), 0);
}

TEST(WamrGuest, RequestOptionsReachTheBackend) {
    // set_input index 1 (CHAT_OPTIONS) is forwarded by WAMR: the options
    // change the replies exactly as they do natively.
    const std::string options = R"({"max_tokens":6})";
    const auto native = native_chat(kModel, kConfig, kChat, options);
    for (const auto& t : native) {
        EXPECT_EQ(t.meta["output_tokens"].get<int>(), 6);
        EXPECT_EQ(t.meta["stop_reason"].get<std::string>(), "max_tokens");
    }
    IwasmRun r = iwasm(args(kModel, kConfig, kChat), {"CHAT_OPTIONS=" + options});
    ASSERT_EQ(r.rc, 0) << r.out << r.err;
    int host_lines = 0;
    expect_transcript(without_host_lines(r.out, &host_lines), kChat, native);
}

TEST(WamrGuest, TooSmallOutputCapacityGetsTooLargeAndTheSizeNeeded) {
    const std::vector<std::string> one = {kChat[0]};
    const auto native = native_chat(kModel, kConfig, one);
    ASSERT_GT(native[0].reply.size(), 8u);
    IwasmRun r = iwasm(args(kModel, kConfig, one), {"CHAT_OUTPUT_CAP=8"});
    ASSERT_EQ(r.rc, 0) << r.out << r.err;
    // The guest offered 8 bytes for each output, got too_large with the
    // exact size needed (no NUL in this ABI), and retried with it.
    const std::string reply_line = "chat: get_output(index 0): too_large, " +
                                   std::to_string(native[0].reply.size()) + " bytes needed (offered 8); retrying";
    EXPECT_NE(r.err.find(reply_line), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chat: get_output(index 1): too_large, "), std::string::npos) << r.err;
    int host_lines = 0;
    std::string out = without_host_lines(r.out, &host_lines);
    EXPECT_EQ(host_lines, 2) << "WAMR's host logs each too_large on stdout:\n" << r.out;
    expect_transcript(out, one, native);
}

TEST(WamrGuest, MissingModel) {
    IwasmRun r = iwasm(args("/nonexistent/wasi-nn-llama/missing.gguf", kConfig, {"hello"}));
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    // With no policy a guest may name *.gguf files (docs/security.md §5): a
    // missing one is model_not_found; any other file, there or not, is
    // not_found, so that a guest cannot probe the host's files.
    EXPECT_NE(r.err.find("chat: load_by_name_with_config failed: error 103 (model_not_found)"), std::string::npos)
        << r.err;
    for (const char* other : {"/etc/passwd", "/etc/wasi-nn-llama-missing"}) {
        IwasmRun o = iwasm(args(other, kConfig, {"hello"}));
        EXPECT_EQ(o.rc, 1) << other;
        EXPECT_NE(o.err.find("chat: load_by_name_with_config failed: error 8 (not_found)"), std::string::npos)
            << other << ": " << o.err;
    }
    EXPECT_EQ(r.out.find("assistant:"), std::string::npos) << r.out;
}

TEST(WamrGuest, InvalidConfig) {
    for (const std::string bad : {R"({"temp":"hot"})", R"({"ctx_size":)", R"({"max_tokens":-5})"}) {
        IwasmRun r = iwasm(args(kModel, bad, {"hello"}));
        EXPECT_EQ(r.rc, 1) << bad << "\n" << r.out << r.err;
        EXPECT_NE(r.err.find("chat: load_by_name_with_config failed: error 1 (invalid_argument)"), std::string::npos)
            << bad << "\n" << r.err;
        // The library's log line says what was wrong.
        EXPECT_NE(r.err.find("[config] model config rejected"), std::string::npos) << bad << "\n" << r.err;
        EXPECT_EQ(r.out.find("assistant:"), std::string::npos) << r.out;
    }
}

// Policy aliases (issue #10): the host names a policy file in
// WASI_NN_LLAMA_POLICY; a guest loads a model by its alias, and with aliases
// and no model_dirs it cannot name a path. A policy file that does not parse
// makes init_backend fail, so the guest's first load does.
std::string write_temp(const std::string& text) {
    char path[] = "/tmp/wnl-policy-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return "";
    if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) path[0] = '\0';
    close(fd);
    return path;
}

TEST(WamrGuest, PolicyAlias) {
    const std::string broken = write_temp("{\"models\": {");
    ASSERT_FALSE(broken.empty());
    IwasmRun probe = iwasm(args(kModel, kConfig, {kChat[0]}), {}, "WASI_NN_LLAMA_POLICY=" + shell_quote(broken));
    unlink(broken.c_str());
    EXPECT_NE(probe.rc, 0) << "the library ignored a malformed WASI_NN_LLAMA_POLICY file";
    // The policy file of issue #10: alias -> path plus a host config.
    const json policy = {{"models", {{"stories", {{"path", kModel}, {"config", json::parse(kConfig)}}}}}};
    const std::string file = write_temp(policy.dump());
    ASSERT_FALSE(file.empty());
    const auto native = native_chat(kModel, kConfig, kChat);
    IwasmRun r = iwasm(args("stories", "{}", kChat), {}, "WASI_NN_LLAMA_POLICY=" + shell_quote(file));
    IwasmRun by_path = iwasm(args(kModel, "{}", {kChat[0]}), {}, "WASI_NN_LLAMA_POLICY=" + shell_quote(file));
    unlink(file.c_str());
    EXPECT_NE(by_path.rc, 0);
    EXPECT_NE((by_path.out + by_path.err).find("not_found"), std::string::npos) << by_path.out << by_path.err;
    ASSERT_EQ(r.rc, 0) << r.out << r.err;
    int host_lines = 0;
    expect_transcript(without_host_lines(r.out, &host_lines), kChat, native);
}

}  // namespace
