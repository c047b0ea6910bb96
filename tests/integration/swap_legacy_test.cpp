// swap_graph and unload through the legacy ABI (libwasi_nn_backend.so): the
// same engine, the legacy error numbers.
#include <gtest/gtest.h>

#include <limits.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "integration/legacy_client.h"
#include "integration/reference.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

template <typename F>
F legacy_sym(const char* name) {
    auto fn = reinterpret_cast<F>(dlsym(LegacyApi::get().lib, name));
    if (!fn) throw std::runtime_error(std::string("missing symbol ") + name);
    return fn;
}

std::string real(const std::string& p) {
    char buf[PATH_MAX];
    return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

TEST(SwapLegacy, SwapAndUnloadThroughTheLegacyAbi) {
    LegacyApi& api = LegacyApi::get();
    auto swap_graph = legacy_sym<decltype(&::swap_graph)>("swap_graph");
    auto unload = legacy_sym<decltype(&::unload)>("unload");
    auto status = legacy_sym<decltype(&::get_backend_status)>("get_backend_status");
    const std::string cfg = "{\"temp\":0,\"max_tokens\":12,\"logging\":{\"level\":\"warn\"}}";
    const std::string a = model_path("stories260K.gguf"), other = model_path("llama-2-tiny-random.gguf");
    void* ctx = nullptr;
    ASSERT_EQ(api.init_backend_with_config(&ctx, cfg.c_str(), static_cast<uint32_t>(cfg.size())), success);
    graph g = 0;
    ASSERT_EQ(api.load_by_name_with_config(ctx, a.c_str(), static_cast<uint32_t>(a.size()), cfg.c_str(),
                                           static_cast<uint32_t>(cfg.size()), &g),
              success);
    graph_execution_context e = 0;
    ASSERT_EQ(api.init_execution_context_with_session_id(ctx, "legacy-swap", &e), success);
    auto run = [&](std::string* reply) {
        std::string prompt = "Once upon a time";
        tensor t{};
        t.type = u8;
        t.data = reinterpret_cast<uint8_t*>(prompt.data());
        std::vector<uint8_t> out(1 << 16);
        uint32_t size = static_cast<uint32_t>(out.size());
        wasi_nn_error rc = api.run_inference(ctx, e, 0, &t, out.data(), &size, nullptr, 0);
        if (rc == success && size > 0) reply->assign(reinterpret_cast<char*>(out.data()), size - 1);
        return rc;
    };
    std::string before, after;
    ASSERT_EQ(run(&before), success);
    // The Llama 2 vocabulary is not stories260K's: refused, then forced.
    EXPECT_EQ(swap_graph(ctx, g, other.c_str(), static_cast<uint32_t>(other.size()), nullptr, 0), invalid_argument);
    const std::string force = "{\"force\":true}";
    EXPECT_EQ(swap_graph(ctx, g, other.c_str(), static_cast<uint32_t>(other.size() + 1), force.c_str(),
                         static_cast<uint32_t>(force.size())),
              success);  // a length that counts the NUL works too
    std::vector<char> buf(1 << 16);
    ASSERT_EQ(status(ctx, BACKEND_STATUS_MODEL, buf.data(), static_cast<uint32_t>(buf.size())), success);
    json m = json::parse(buf.data());
    EXPECT_EQ(m["graphs"][0]["version"], 2);
    EXPECT_EQ(m["graphs"][0]["model_version"]["path"], real(other));
    // The session goes on, its text prefilled on the new model.
    ASSERT_EQ(run(&after), success);
    EXPECT_EQ(unload(ctx, g), success);
    EXPECT_EQ(run(&after), not_found);
    EXPECT_EQ(unload(ctx, g), not_found);
    EXPECT_EQ(swap_graph(ctx, g, a.c_str(), static_cast<uint32_t>(a.size()), nullptr, 0), not_found);
    EXPECT_EQ(api.close_execution_context(ctx, e), success);
    EXPECT_EQ(api.deinit_backend(ctx), success);
}

}  // namespace
