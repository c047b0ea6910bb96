// A hostile caller against libwasi_nn_backend.so (legacy ABI): the same
// guards as the WAMR library, with this ABI's codes (it has no busy or
// missing_memory: both read as runtime_error, docs/abi.md §6). After each
// test the process lives and a neighbour's greedy request, through the same
// library, gets its exact reply.
#include <dlfcn.h>

#include <cstring>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "adversarial/adversarial.h"
#include "integration/legacy_client.h"

using namespace wnl_adv;
using wnl_test::LegacyApi;

namespace {

// The entry points legacy_client.h does not resolve.
struct Extra {
    decltype(&::init_execution_context) init_execution_context = nullptr;
    decltype(&::load_by_name) load_by_name = nullptr;
    decltype(&::unload) unload = nullptr;
    static Extra& get() {
        static Extra x = [] {
            Extra e;
            void* lib = LegacyApi::get().lib;
            e.init_execution_context =
                reinterpret_cast<decltype(&::init_execution_context)>(dlsym(lib, "init_execution_context"));
            e.load_by_name = reinterpret_cast<decltype(&::load_by_name)>(dlsym(lib, "load_by_name"));
            e.unload = reinterpret_cast<decltype(&::unload)>(dlsym(lib, "unload"));
            return e;
        }();
        return x;
    }
};

// One backend context with one graph, through the legacy ABI.
class Legacy {
public:
    explicit Legacy(const std::string& cfg) : Legacy(cfg, cfg) {}
    // The host's backend config (a log file is the host's alone) and the
    // guest's graph config.
    Legacy(const std::string& host_cfg, const std::string& cfg) : api_(LegacyApi::get()) {
        rc_ = api_.init_backend_with_config(&ctx_, host_cfg.c_str(), static_cast<uint32_t>(host_cfg.size()));
        if (rc_ != success) return;
        const std::string path = model();
        rc_ = api_.load_by_name_with_config(ctx_, path.c_str(), static_cast<uint32_t>(path.size()), cfg.c_str(),
                                            static_cast<uint32_t>(cfg.size()), &g_);
    }
    ~Legacy() {
        if (ctx_) api_.deinit_backend(ctx_);
    }
    wasi_nn_error status() const { return rc_; }
    void* ctx() const { return ctx_; }
    graph g() const { return g_; }

    // run_inference on a fresh named session: the NUL-terminated prompt and
    // a runtime config, as the original project's callers send them.
    wasi_nn_error run(const std::string& prompt, const std::string& runtime_cfg, std::string* reply,
                      const std::string& session = "s") {
        graph_execution_context e = 0;
        wasi_nn_error rc = api_.init_execution_context_with_session_id(ctx_, session.c_str(), &e);
        if (rc != success) return rc;
        tensor t{};
        t.type = u8;
        std::string text = prompt;
        t.data = reinterpret_cast<uint8_t*>(text.data());
        std::vector<uint8_t> out(1 << 16);
        uint32_t size = static_cast<uint32_t>(out.size());
        rc = api_.run_inference(ctx_, e, 0, &t, out.data(), &size, runtime_cfg.empty() ? nullptr : runtime_cfg.c_str(),
                                static_cast<uint32_t>(runtime_cfg.size()));
        if (rc == success && reply && size > 0) reply->assign(reinterpret_cast<char*>(out.data()), size - 1);
        api_.close_execution_context(ctx_, e);
        return rc;
    }

private:
    LegacyApi& api_;
    void* ctx_ = nullptr;
    graph g_ = 0;
    wasi_nn_error rc_ = runtime_error;
};

class LegacyHostile : public ::testing::Test {
protected:
    void SetUp() override {
        log_ = temp_log_path();
        neighbour_ = std::make_unique<Legacy>(
            R"({"temp":0,"max_tokens":32,"logging":{"level":"info","file":)" + json_str(log_) + "}}",
            R"({"temp":0,"max_tokens":32})");
        ASSERT_EQ(neighbour_->status(), success);
    }
    void TearDown() override {
        std::string reply;
        EXPECT_EQ(neighbour_->run(kPrompt, "", &reply, "neighbour"), success);
        EXPECT_EQ(reply, kGolden);
        neighbour_.reset();
        ::unlink(log_.c_str());
    }
    bool logged(const std::string& needle) const { return read_file(log_).find(needle) != std::string::npos; }

    std::string log_;
    std::unique_ptr<Legacy> neighbour_;
};

TEST_F(LegacyHostile, LlguidanceAndCompleteGrammar) {
    Legacy g("{\"temp\":0}");
    ASSERT_EQ(g.status(), success);
    std::string reply;
    EXPECT_EQ(g.run(kPrompt, R"({"grammar":"%llguidance {}"})", &reply), invalid_argument);
    EXPECT_EQ(g.run(kPrompt, R"({"grammar":"root ::= \"a\"","ignore_eos":true})", &reply), success);
    EXPECT_EQ(reply, "a");
}

TEST_F(LegacyHostile, CapsReadAsThisAbisCodes) {
    Legacy g(R"({"max_exec_contexts":2,"max_graphs":1,"max_output_tokens":100,"max_prompt_bytes":64})");
    ASSERT_EQ(g.status(), success);
    Extra& x = Extra::get();
    graph_execution_context a = 0, b = 0, c = 0;
    ASSERT_EQ(x.init_execution_context(g.ctx(), g.g(), &a), success);
    ASSERT_EQ(x.init_execution_context(g.ctx(), g.g(), &b), success);
    EXPECT_EQ(x.init_execution_context(g.ctx(), g.g(), &c), runtime_error);  // busy: max_exec_contexts
    LegacyApi::get().close_execution_context(g.ctx(), a);
    LegacyApi::get().close_execution_context(g.ctx(), b);
    const std::string path = model();
    graph h = 0;
    EXPECT_EQ(x.load_by_name(g.ctx(), path.c_str(), static_cast<uint32_t>(path.size()), &h), runtime_error);  // max_graphs
    std::string reply;
    EXPECT_EQ(g.run(kPrompt, R"({"max_tokens":101})", &reply), invalid_argument);
    EXPECT_EQ(g.run(std::string(65, 'a'), "", &reply), invalid_argument);  // max_prompt_bytes
    EXPECT_TRUE(logged("max_exec_contexts"));
    EXPECT_TRUE(logged("max_graphs"));
}

TEST_F(LegacyHostile, OutOfMemoryForAContextIsRuntimeError) {
    if (kAddressSanitizer) GTEST_SKIP() << "RLIMIT_AS and a sanitizer's shadow memory do not mix";
    AddressSpaceLimit limit(1ull << 30);
    ASSERT_TRUE(limit.ok());
    // The host's own settings: a guest's ctx_size is held to its ceiling.
    const std::string big = R"({"ctx_size":1048576,"max_concurrent":4,"cache_type_k":"f32","cache_type_v":"f32"})";
    Legacy g(big, "{}");
    EXPECT_EQ(g.status(), runtime_error);  // missing_memory has no legacy code
    Legacy guest("{}", big);
    EXPECT_EQ(guest.status(), invalid_argument);
}

TEST_F(LegacyHostile, BadInputsGetTheirCodes) {
    Legacy g("{\"temp\":0,\"max_tokens\":4}");
    ASSERT_EQ(g.status(), success);
    std::string reply;
    EXPECT_EQ(g.run(kPrompt, "[1,2,3]", &reply), invalid_argument);
    EXPECT_EQ(g.run(kPrompt, R"({"logit_bias":[[32000,1]]})", &reply), invalid_argument);
    EXPECT_EQ(g.run(kPrompt, R"({"grammar":"root ::= ((("})", &reply), invalid_argument);
    EXPECT_EQ(g.run("\xff\xfe odd bytes", "", &reply), success);
    EXPECT_EQ(g.run(kPrompt, "", &reply, std::string(300, 's')), invalid_argument);  // session id over 256 bytes
}

}  // namespace
