// "threads" above the CPUs this process may run on is clamped to them: a
// config copied from a bigger machine must not turn into spinning threads
// waiting out each other's time slices. "threads_exact" keeps it.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

// The calling thread (and the threads it starts: the decode loop, its ggml
// pools) runs on the first `n` CPUs of its mask, until the scope ends.
class AffinityScope {
public:
    explicit AffinityScope(int n) {
        ok_ = sched_getaffinity(0, sizeof(saved_), &saved_) == 0;
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int c = 0; ok_ && c < CPU_SETSIZE && count_ < n; ++c) {
            if (CPU_ISSET(c, &saved_)) {
                CPU_SET(c, &set);
                ++count_;
            }
        }
        ok_ = ok_ && sched_setaffinity(0, sizeof(set), &set) == 0;
    }
    ~AffinityScope() {
        if (ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
    }
    bool ok() const { return ok_; }
    int count() const { return count_; }

private:
    cpu_set_t saved_;
    bool ok_ = false;
    int count_ = 0;
};

json status(WamrSession& s, backend_status_type kind) {
    static auto fn = reinterpret_cast<decltype(&::get_backend_status)>(dlsym(WamrApi::get().lib, "get_backend_status"));
    std::vector<char> buf(1 << 16);
    EXPECT_EQ(fn(s.ctx(), kind, buf.data(), static_cast<uint32_t>(buf.size())), success);
    return json::parse(buf.data());
}

// The host's config (the log file and threads_exact are host-only) and the
// guest's graph config.
std::string host(const std::string& log_file, const std::string& extra = "") {
    return "{" + extra + (extra.empty() ? "" : ",") + "\"logging\":{\"level\":\"warn\",\"format\":\"json\",\"file\":\"" +
           log_file + "\"}}";
}
std::string guest(const std::string& threads) {
    return "{\"temp\":0,\"max_tokens\":60,\"ignore_eos\":true," + threads + "}";
}

std::vector<json> log_lines(const std::string& path) {
    std::vector<json> lines;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        json j = json::parse(line, nullptr, false);
        if (!j.is_discarded()) lines.push_back(j);
    }
    return lines;
}

std::string temp_log(const char* name) {
    return std::string(::testing::TempDir()) + "/" + name + "-" + std::to_string(getpid()) + ".log";
}

}  // namespace

TEST(ThreadLimits, ThreadsAboveTheAffinityMaskAreClampedAndGiveTheSameText) {
    AffinityScope mask(2);
    ASSERT_TRUE(mask.ok());
    const int cpus = mask.count();
    const std::string log = temp_log("thread-limits");
    std::remove(log.c_str());

    std::string reply_asked_8, reply_at_cpus;
    {
        WamrSession s(model_path("stories260K.gguf"), host(log), guest("\"threads\":8"));
        ASSERT_EQ(s.load_status(), success);
        auto e = s.open();
        ASSERT_EQ(s.turn(e, "Once upon a time", &reply_asked_8), success);
        const json perf = status(s, BACKEND_STATUS_PERFORMANCE)["models"][0];
        EXPECT_EQ(perf["threads"].get<int>(), cpus);
        EXPECT_EQ(perf["threads_batch"].get<int>(), cpus);  // follows threads
        EXPECT_FALSE(perf["threads_exact"].get<bool>());
        EXPECT_LE(perf["last_step_threads"].get<int>(), cpus);
        EXPECT_GE(perf["last_step_threads"].get<int>(), 1);
        const json model = status(s, BACKEND_STATUS_MODEL)["graphs"][0];
        EXPECT_EQ(model["threads"].get<int>(), cpus);
        EXPECT_EQ(model["threads_batch"].get<int>(), cpus);
    }
    {
        WamrSession s(model_path("stories260K.gguf"), host(log), guest("\"threads\":" + std::to_string(cpus)));
        ASSERT_EQ(s.load_status(), success);
        auto e = s.open();
        ASSERT_EQ(s.turn(e, "Once upon a time", &reply_at_cpus), success);
    }
    EXPECT_FALSE(reply_asked_8.empty());
    EXPECT_EQ(reply_asked_8, reply_at_cpus);

    // One warning for the key asked too high, none for the one at the CPUs.
    int warnings = 0;
    for (const json& j : log_lines(log)) {
        if (j.value("msg", "").find("more threads than usable CPUs") == std::string::npos) continue;
        ++warnings;
        EXPECT_EQ(j.value("level", ""), "warn");
        EXPECT_EQ(j.value("key", ""), "threads");
        EXPECT_EQ(j.value("asked", 0), 8);
        EXPECT_EQ(j.value("used", 0), cpus);
    }
    EXPECT_EQ(warnings, 1);
    std::remove(log.c_str());
}

TEST(ThreadLimits, ThreadsBatchIsClampedOnItsOwn) {
    AffinityScope mask(2);
    ASSERT_TRUE(mask.ok());
    const int cpus = mask.count();
    const std::string log = temp_log("thread-limits-batch");
    std::remove(log.c_str());
    {
        WamrSession s(model_path("stories260K.gguf"), host(log), guest("\"threads\":1,\"threads_batch\":64"));
        ASSERT_EQ(s.load_status(), success);
        const json perf = status(s, BACKEND_STATUS_PERFORMANCE)["models"][0];
        EXPECT_EQ(perf["threads"].get<int>(), 1);
        EXPECT_EQ(perf["threads_batch"].get<int>(), cpus);
    }
    int warnings = 0;
    for (const json& j : log_lines(log)) {
        if (j.value("msg", "").find("more threads than usable CPUs") == std::string::npos) continue;
        ++warnings;
        EXPECT_EQ(j.value("key", ""), "threads_batch");
        EXPECT_EQ(j.value("asked", 0), 64);
    }
    EXPECT_EQ(warnings, 1);
    std::remove(log.c_str());
}

TEST(ThreadLimits, ThreadsExactKeepsTheAskedValue) {
    AffinityScope mask(2);
    ASSERT_TRUE(mask.ok());
    const std::string log = temp_log("thread-limits-exact");
    WamrSession s(model_path("stories260K.gguf"), host(log, "\"threads_exact\":true"), guest("\"threads\":8"));
    ASSERT_EQ(s.load_status(), success);
    // No decode here: 8 spinning threads on 2 CPUs are what the clamp avoids.
    const json perf = status(s, BACKEND_STATUS_PERFORMANCE)["models"][0];
    EXPECT_EQ(perf["threads"].get<int>(), 8);
    EXPECT_EQ(perf["threads_batch"].get<int>(), 8);
    EXPECT_TRUE(perf["threads_exact"].get<bool>());
    EXPECT_FALSE(perf["thread_governor"]["enabled"].get<bool>());
    EXPECT_EQ(status(s, BACKEND_STATUS_MODEL)["graphs"][0]["threads"].get<int>(), 8);
    for (const json& j : log_lines(log)) {
        EXPECT_EQ(j.value("msg", "").find("more threads than usable CPUs"), std::string::npos);
    }
    std::remove(log.c_str());
}

// The governor is on by default for a model on the CPUs, and reports.
TEST(ThreadLimits, TheThreadGovernorReportsWhatItUses) {
    AffinityScope mask(2);
    ASSERT_TRUE(mask.ok());
    const int cpus = mask.count();
    const std::string log = temp_log("thread-governor");
    WamrSession s(model_path("stories260K.gguf"), host(log), guest("\"threads\":" + std::to_string(cpus)));
    ASSERT_EQ(s.load_status(), success);
    auto e = s.open();
    std::string reply;
    ASSERT_EQ(s.turn(e, "Once upon a time", &reply), success);
    const json g = status(s, BACKEND_STATUS_PERFORMANCE)["models"][0]["thread_governor"];
    EXPECT_EQ(g["enabled"].get<bool>(), cpus > 1);
    EXPECT_GE(g["threads"].get<int>(), 1);
    EXPECT_LE(g["threads"].get<int>(), cpus);
    for (const char* k : {"slowdowns", "probes", "narrowed", "widened", "quieted", "unquieted"}) {
        EXPECT_TRUE(g[k].is_number_unsigned()) << k;
    }
    EXPECT_TRUE(g["quiet_pools"].is_boolean());
    std::remove(log.c_str());
}
