// Two models decoding at once share the CPUs (CpuArbiter) and give the same
// replies as each alone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

json performance(WamrSession& s) {
    static auto fn = reinterpret_cast<decltype(&::get_backend_status)>(dlsym(WamrApi::get().lib, "get_backend_status"));
    std::vector<char> buf(1 << 16);
    EXPECT_EQ(fn(s.ctx(), BACKEND_STATUS_PERFORMANCE, buf.data(), static_cast<uint32_t>(buf.size())), success);
    return json::parse(buf.data());
}

// threads_exact: the loops keep every usable CPU they default to, whatever
// other processes on the machine do (the thread governor would otherwise
// narrow them on a busy host, and then they might fit side by side).
// It is host-only: in the host's config, the rest in the guest's.
const char* kHostConfig = "{\"threads_exact\":true,\"logging\":{\"level\":\"warn\"}}";
const char* kConfig = "{\"temp\":0,\"max_tokens\":150,\"ignore_eos\":true}";

std::vector<std::string> generate(WamrSession& s, int turns) {
    std::vector<std::string> replies;
    auto e = s.open();
    for (int i = 0; i < turns; ++i) {
        std::string reply;
        EXPECT_EQ(s.turn(e, "Once upon a time, " + std::to_string(i), &reply), success);
        replies.push_back(reply);
    }
    return replies;
}

TEST(CpuSharing, TwoModelsAtOnceShareTheCpusAndMatchEachAlone) {
    WamrSession a(model_path("stories260K.gguf"), kHostConfig, kConfig);
    WamrSession b(model_path("llama-2-tiny-random.gguf"), kHostConfig, kConfig);
    const auto a_alone = generate(a, 3);
    const auto b_alone = generate(b, 3);
    auto shared_turns = [](const json& p) {
        return p["cpu_turn_waits"].get<uint64_t>() + p["cpu_turns_narrowed"].get<uint64_t>();
    };
    const uint64_t before = shared_turns(performance(a));

    std::vector<std::string> a_together, b_together;
    std::thread ta([&] { a_together = generate(a, 3); });
    std::thread tb([&] { b_together = generate(b, 3); });
    ta.join();
    tb.join();
    EXPECT_EQ(a_together, a_alone);
    EXPECT_EQ(b_together, b_alone);

    json pa = performance(a), pb = performance(b);
    const int cpus = pa["usable_cpus"].get<int>();
    EXPECT_GE(cpus, 1);
    ASSERT_EQ(pa["models"].size(), 1u);
    EXPECT_TRUE(pa["models"][0]["shares_cpus"].get<bool>());
    // Both loops default to every usable CPU, so they cannot both compute
    // with all of it: turns were narrowed to a share (or, on one CPU, waited
    // for), and counted.
    EXPECT_EQ(pa["models"][0]["threads"].get<int>(), cpus);
    EXPECT_GT(shared_turns(pb), before);
}

}  // namespace
