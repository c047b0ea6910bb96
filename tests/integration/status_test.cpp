// get_backend_status follows real activity, and logging goes where it is
// told (a file, JSON lines) or nowhere at all at level none.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;
using namespace std::chrono;

namespace {

decltype(&::get_backend_status) status_fn() {
    static auto fn = reinterpret_cast<decltype(&::get_backend_status)>(dlsym(WamrApi::get().lib, "get_backend_status"));
    return fn;
}

json status(WamrSession& s, backend_status_type type) {
    std::vector<char> buf(1 << 20);
    EXPECT_EQ(status_fn()(s.ctx(), type, buf.data(), static_cast<uint32_t>(buf.size())), success);
    return json::parse(buf.data());
}

const std::string kCfg = "{\"temp\":0,\"max_tokens\":8,\"logging\":{\"level\":\"warn\"}";

TEST(Status, AllFiveDocumentsParse) {
    WamrSession s(model_path("stories260K.gguf"), kCfg + "}");
    for (auto t : {BACKEND_STATUS_QUEUE, BACKEND_STATUS_MEMORY, BACKEND_STATUS_SESSIONS, BACKEND_STATUS_PERFORMANCE,
                   BACKEND_STATUS_MODEL}) {
        json j = status(s, t);
        EXPECT_TRUE(j.is_object());
        EXPECT_TRUE(j.contains("type"));
    }
    json m = status(s, BACKEND_STATUS_MODEL);
    ASSERT_EQ(m["graphs"].size(), 1u);
    EXPECT_EQ(m["graphs"][0]["architecture"], "llama");
    EXPECT_EQ(m["graphs"][0]["vocabulary"], 512);
    EXPECT_EQ(m["graphs"][0]["parameters"], 292800);
    EXPECT_EQ(m["graphs"][0]["chat_template"], false);
    EXPECT_GT(m["graphs"][0]["version"].get<int>(), 0);
    json mem = status(s, BACKEND_STATUS_MEMORY);
    EXPECT_GT(mem["process_rss_bytes"].get<uint64_t>(), 1u << 20);
    EXPECT_GT(mem["models"][0]["kv_cells_total"].get<uint64_t>(), 0u);
}

TEST(Status, ThreadsDefaultToTheUsableCpus) {
    WamrSession def(model_path("stories260K.gguf"), kCfg + "}");
    json p = status(def, BACKEND_STATUS_PERFORMANCE);
    const int cpus = p["usable_cpus"].get<int>();
    EXPECT_GE(cpus, 1);
    EXPECT_LE(cpus, static_cast<int>(std::thread::hardware_concurrency()));
    EXPECT_EQ(p["models"][0]["threads"], cpus);
    EXPECT_EQ(p["models"][0]["threads_batch"], cpus);
    EXPECT_TRUE(p["models"][0]["shares_cpus"].get<bool>());
    // Values within the CPUs are used as set (above them: ThreadLimits.*).
    WamrSession set(model_path("stories260K.gguf"),
                    kCfg + ",\"threads\":1,\"threads_batch\":" + std::to_string(cpus) + "}");
    json q = status(set, BACKEND_STATUS_PERFORMANCE)["models"][0];
    EXPECT_EQ(q["threads"], 1);
    EXPECT_EQ(q["threads_batch"], cpus);
}

TEST(Status, BufferTooSmallIsTooLarge) {
    WamrSession s(model_path("stories260K.gguf"), kCfg + "}");
    char small[16];
    EXPECT_EQ(status_fn()(s.ctx(), BACKEND_STATUS_MODEL, small, sizeof small), too_large);
    EXPECT_EQ(status_fn()(s.ctx(), static_cast<backend_status_type>(9), small, sizeof small), invalid_argument);
}

TEST(Status, ServedCountFollowsRequests) {
    WamrSession s(model_path("stories260K.gguf"), kCfg + ",\"max_concurrent\":3}");
    auto e = s.open();
    std::string reply;
    for (int i = 0; i < 3; ++i) ASSERT_EQ(s.turn(e, "Once upon a time", &reply), success);
    json p = status(s, BACKEND_STATUS_PERFORMANCE)["models"][0];
    EXPECT_EQ(p["requests_served"], 3);
    EXPECT_EQ(p["requests_failed"], 0);
    EXPECT_EQ(p["generated_tokens"], 24);
    EXPECT_GT(p["decode_tokens_per_s"]["lifetime"].get<double>(), 0.0);
    EXPECT_GT(p["latency_ms"]["p50"].get<double>(), 0.0);
    json mem = status(s, BACKEND_STATUS_MEMORY)["models"][0];
    EXPECT_GT(mem["kv_cells_used"].get<int>(), 0);
}

TEST(Status, QueueDepthWhileSlotsAreFull) {
    WamrSession s(model_path("stories260K.gguf"), kCfg + ",\"max_concurrent\":1}");
    auto running = s.open(), q1 = s.open(), q2 = s.open();
    std::string r0, r1, r2;
    const std::string long_opts = "{\"max_tokens\":-1,\"ignore_eos\":true,\"max_time_ms\":1500}";
    std::thread t0([&] { s.turn(running, "Once upon a time", &r0, long_opts); });
    std::this_thread::sleep_for(milliseconds(100));
    std::thread t1([&] { s.turn(q1, "Once upon a time", &r1, "{\"priority\":\"low\"}"); });
    std::thread t2([&] { s.turn(q2, "Once upon a time", &r2, "{\"priority\":\"high\"}"); });
    json q;
    for (int i = 0; i < 100; ++i) {
        q = status(s, BACKEND_STATUS_QUEUE)["models"][0];
        if (q["depth"]["total"] == 2) break;
        std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_EQ(q["depth"]["total"], 2);
    EXPECT_EQ(q["depth"]["high"], 1);
    EXPECT_EQ(q["depth"]["low"], 1);
    EXPECT_EQ(q["running"], 1);
    json sess = status(s, BACKEND_STATUS_SESSIONS);
    EXPECT_EQ(sess["active"], 3);
    t0.join();
    t1.join();
    t2.join();
    q = status(s, BACKEND_STATUS_QUEUE)["models"][0];
    EXPECT_EQ(q["depth"]["total"], 0);
    EXPECT_EQ(q["admitted"], 3);
}

TEST(Status, SessionsAppearAndIdleOnesDisappear) {
    WamrSession s(model_path("stories260K.gguf"), kCfg + ",\"idle_timeout_ms\":150,\"auto_cleanup\":true}");
    auto e = s.open("visible");
    std::string reply;
    ASSERT_EQ(s.turn(e, "Once upon a time", &reply), success);
    json j = status(s, BACKEND_STATUS_SESSIONS);
    ASSERT_EQ(j["named"], 1);
    bool found = false;
    for (const auto& x : j["sessions"]) {
        if (x["id"] == "visible") {
            found = true;
            EXPECT_EQ(x["turns"], 1);
            EXPECT_GT(x["tokens_held"].get<int>(), 5);
            EXPECT_EQ(x["named"], true);
        }
    }
    EXPECT_TRUE(found);
    ASSERT_EQ(WamrApi::get().close_execution_context(s.ctx(), e), success);  // open handles keep sessions
    std::this_thread::sleep_for(milliseconds(250));
    EXPECT_EQ(status(s, BACKEND_STATUS_SESSIONS)["named"], 0);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

TEST(Logging, FileReceivesJsonLinesWithARequestLine) {
    char path[] = "/tmp/wnl-log-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    {
        // The log file is the host's to name (a guest's is refused).
        WamrSession s(model_path("stories260K.gguf"),
                      std::string("{\"temp\":0,\"max_tokens\":4,\"logging\":{\"level\":\"info\",\"format\":\"json\",\"file\":\"") +
                          path + "\"}}",
                      "{\"temp\":0,\"max_tokens\":4}");
        auto e = s.open("logged");
        std::string reply;
        ASSERT_EQ(s.turn(e, "Once upon a time", &reply, "{\"priority\":\"high\"}"), success);
    }
    std::istringstream lines(read_file(path));
    std::string line;
    bool request_line = false;
    int n = 0;
    while (std::getline(lines, line)) {
        json j = json::parse(line);  // every line is one JSON object
        ++n;
        EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("component") && j.contains("msg"));
        if (j["msg"] == "request done") {
            request_line = true;
            EXPECT_EQ(j["session"], "logged");
            EXPECT_EQ(j["priority"], "high");
            EXPECT_EQ(j["input_tokens"], 5);
            EXPECT_EQ(j["output_tokens"], 4);
            EXPECT_TRUE(j.contains("cached_tokens") && j.contains("wait_ms") && j.contains("prefill_ms"));
            EXPECT_EQ(j["stop_reason"], "max_tokens");
        }
    }
    EXPECT_GT(n, 2);
    EXPECT_TRUE(request_line);
    unlink(path);
}

TEST(Logging, NonePrintsNothingThroughAWholeCycle) {
    char path[] = "/tmp/wnl-out-XXXXXX";
    int capture = mkstemp(path);
    ASSERT_GE(capture, 0);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(capture, 1);
    dup2(capture, 2);
    {
        // Load, chat, bad input (which would log errors), close.
        WamrSession s(model_path("stories260K.gguf"),
                      "{\"temp\":0,\"max_tokens\":4,\"chat_template\":\"chatml\",\"logging\":{\"level\":\"none\"}}");
        auto e = s.open("quiet");
        std::string reply;
        s.turn(e, "Once upon a time", &reply);
        s.turn(e, "and then?", &reply);
        s.set_text(e, 7, "bad index");
        s.turn(e, "x", &reply, "{not json");
    }
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(capture);
    EXPECT_EQ(read_file(path), "");
    unlink(path);
}

}  // namespace
