// Durable sessions through the WAMR ABI (docs/sessions.md): a named
// session goes on after a restart or a crash with nothing acknowledged
// lost; stored KV state is restored when it matches and ignored when it does
// not; the store stays within its bound; a failed write fails the turn.
//
// The crash test kills a child process (tests/durable/durable_child.cpp)
// WNL_CRASH_KILLS times (20 by default; the long run is 200):
//   WNL_CRASH_KILLS=200 build/tests/integration_tests --gtest_filter=Durable.CrashSafety*
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/reference.h"
#include "integration/wamr_client.h"

using namespace wnl_test;
using nlohmann::json;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/wnl-durable-XXXXXX";
    const char* d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    return d ? d : "/tmp";
}

std::string config(const std::string& store, const std::string& extra = "") {
    std::string c = "{\"temp\":0,\"max_tokens\":12,\"chat_template\":\"chatml\",\"ctx_size\":1024,\"threads\":2,"
                    "\"logging\":{\"level\":\"warn\"}";
    if (!store.empty()) c += ",\"session_store\":\"" + store + "\",\"session_namespace\":\"tests\"";
    if (!extra.empty()) c += "," + extra;
    return c + "}";
}

// The same settings as a guest's load config: without the session store's
// keys, which are the host's alone (a guest naming one is refused).
std::string guest(const std::string& host_config) {
    json j = json::parse(host_config);
    for (const char* k : {"session_store", "session_namespace", "session_store_bytes", "session_sync"}) j.erase(k);
    return j.dump();
}

// A backend context on a store, and a graph loaded with the same settings.
struct Stored : WamrSession {
    Stored(const std::string& model, const std::string& host_config)
        : WamrSession(model, host_config, guest(host_config)) {}
};

json status(WamrSession& s, backend_status_type type) {
    static auto fn = reinterpret_cast<decltype(&::get_backend_status)>(dlsym(WamrApi::get().lib, "get_backend_status"));
    std::vector<char> buf(1 << 20);
    EXPECT_EQ(fn(s.ctx(), type, buf.data(), static_cast<uint32_t>(buf.size())), success);
    return json::parse(buf.data());
}

struct Reply {
    wasi_nn_error rc;
    std::string text;
    json meta;
};

Reply turn(WamrSession& s, graph_execution_context e, const std::string& text) {
    Reply r;
    std::string meta;
    r.rc = s.turn(e, text, &r.text, "", &meta);
    if (!meta.empty()) r.meta = json::parse(meta);
    return r;
}

const std::vector<std::string> kMessages = {"Once upon a time", "What did the dog do?", "Then what happened?",
                                            "Where did Lily go?", "Tell me the end."};

// The replies of a session that never restarted.
std::vector<std::string> reference_replies(const std::string& model, size_t turns) {
    WamrSession s(model, config(""));
    auto e = s.open("chat");
    std::vector<std::string> out;
    for (size_t i = 0; i < turns; ++i) out.push_back(turn(s, e, kMessages[i]).text);
    return out;
}

// `turns` turns of session "chat" in a store, then deinit_backend.
std::vector<std::string> first_process(const std::string& model, const std::string& dir, size_t turns) {
    Stored s(model, config(dir));
    auto e = s.open("chat");
    std::vector<std::string> out;
    for (size_t i = 0; i < turns; ++i) {
        Reply r = turn(s, e, kMessages[i]);
        EXPECT_EQ(r.rc, success);
        out.push_back(r.text);
    }
    return out;
}

std::vector<std::string> kv_files(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = opendir((dir + "/kv").c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > 3 && n.compare(n.size() - 3, 3, ".kv") == 0) out.push_back(dir + "/kv/" + n);
    }
    closedir(d);
    return out;
}

uint64_t dir_bytes(const std::string& dir) {
    uint64_t total = 0;
    for (const std::string& d : {dir, dir + "/kv"}) {
        DIR* h = opendir(d.c_str());
        if (!h) continue;
        while (dirent* e = readdir(h)) {
            struct stat st {};
            if (::stat((d + "/" + e->d_name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += st.st_size;
        }
        closedir(h);
    }
    return total;
}

}  // namespace

TEST(Durable, ResumeAfterACleanRestartRestoresTheKvFromDisk) {
    const std::string model = model_path("stories260K.gguf");
    const std::vector<std::string> never_restarted = reference_replies(model, 4);
    const std::string dir = temp_dir();
    const std::vector<std::string> before = first_process(model, dir, 3);
    EXPECT_EQ(before, std::vector<std::string>(never_restarted.begin(), never_restarted.begin() + 3));
    ASSERT_EQ(kv_files(dir).size(), 1u) << "deinit_backend wrote the session's KV";

    Stored s(model, config(dir));
    json sessions = status(s, BACKEND_STATUS_SESSIONS);
    ASSERT_EQ(sessions["named"], 1) << sessions.dump();
    EXPECT_EQ(sessions["sessions"][0]["turns"], 3);
    EXPECT_EQ(sessions["sessions"][0]["stored"], true);
    auto e = s.open("chat");
    Reply r = turn(s, e, kMessages[3]);
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.text, never_restarted[3]) << "greedy reply equals that of a process that never restarted";
    EXPECT_GT(r.meta["cached_tokens"].get<int>(), 30) << r.meta.dump();
    json mem = status(s, BACKEND_STATUS_MEMORY);
    EXPECT_EQ(mem["host_cache"]["states_restored_from_store"], 1) << mem.dump();
    EXPECT_EQ(status(s, BACKEND_STATUS_SESSIONS)["store"]["kv_loaded"], 1);
}

TEST(Durable, ABadKvFileIsIgnoredAndTheReplyIsStillRight) {
    const std::string model = model_path("stories260K.gguf");
    const std::vector<std::string> never_restarted = reference_replies(model, 3);
    // The same session on another model: its KV file is the wrong model's.
    const std::string other_dir = temp_dir();
    first_process(model_path("llama-2-tiny-random.gguf"), other_dir, 1);
    ASSERT_EQ(kv_files(other_dir).size(), 1u);
    std::vector<uint8_t> wrong_model;
    {
        std::ifstream in(kv_files(other_dir)[0], std::ios::binary);
        wrong_model.assign(std::istreambuf_iterator<char>(in), {});
    }
    for (const std::string kind : {"truncated", "bit-flipped", "wrong-model"}) {
        SCOPED_TRACE(kind);
        const std::string dir = temp_dir();
        first_process(model, dir, 2);
        auto files = kv_files(dir);
        ASSERT_EQ(files.size(), 1u);
        std::vector<uint8_t> bytes;
        {
            std::ifstream in(files[0], std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), {});
        }
        if (kind == std::string("truncated")) bytes.resize(bytes.size() * 2 / 3);
        if (kind == std::string("bit-flipped")) bytes[bytes.size() / 2] ^= 0x10;
        if (kind == std::string("wrong-model")) bytes = wrong_model;
        {
            std::ofstream out(files[0], std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        }
        Stored s(model, config(dir));
        auto e = s.open("chat");
        Reply r = turn(s, e, kMessages[2]);
        ASSERT_EQ(r.rc, success);
        EXPECT_EQ(r.text, never_restarted[2]);
        EXPECT_EQ(r.meta["cached_tokens"], 0) << "prefilled again from the history";
        json store = status(s, BACKEND_STATUS_SESSIONS)["store"];
        EXPECT_EQ(store["kv_rejected"], 1) << store.dump();
        EXPECT_EQ(store["kv_loaded"], 0);
    }
}

TEST(Durable, ACorruptDatabaseIsAClearErrorNotACrash) {
    const std::string dir = temp_dir();
    {
        std::ofstream out(dir + "/sessions.db", std::ios::binary);
        for (int i = 0; i < 16384; ++i) out.put(static_cast<char>(i * 53 + 1));
    }
    const std::string cfg = config(dir);
    void* ctx = nullptr;
    EXPECT_EQ(WamrApi::get().init_backend_with_config(&ctx, cfg.data(), static_cast<uint32_t>(cfg.size())),
              runtime_error);
    // The store is refused, the process goes on: a good store still opens.
    Stored fine(model_path("stories260K.gguf"), config(temp_dir()));
    ASSERT_EQ(fine.load_status(), success);
    auto e = fine.open("chat");
    EXPECT_EQ(turn(fine, e, "Once upon a time").rc, success);
}

TEST(Durable, BadStoreSettingsAreRefused) {
    for (const std::string bad : {"\"session_store_bytes\":1000", "\"session_sync\":\"sometimes\"",
                                  "\"session_namespace\":\"\"", "\"session_store\":7"}) {
        const std::string cfg = "{" + bad + "}";
        void* ctx = nullptr;
        EXPECT_EQ(WamrApi::get().init_backend_with_config(&ctx, cfg.data(), static_cast<uint32_t>(cfg.size())),
                  invalid_argument)
            << bad;
    }
}

TEST(Durable, AGuestCannotNameTheStore) {
    // Host-only keys (docs/security.md): a guest's load config naming one is
    // refused, and nothing of it opens a directory.
    const std::string dir = temp_dir();
    for (const std::string key : {"\"session_store\":\"" + dir + "/guest\"", std::string("\"session_namespace\":\"a\""),
                                  std::string("\"session_store_bytes\":0"), std::string("\"session_sync\":\"full\""),
                                  std::string("\"backend\":{\"session-store\":\"/tmp\"}")}) {
        WamrSession s(model_path("stories260K.gguf"), config(""), "{" + key + "}");
        EXPECT_EQ(s.load_status(), invalid_argument) << key;
    }
    struct stat st {};
    EXPECT_NE(::stat((dir + "/guest").c_str(), &st), 0) << "a guest's store was created";
}

TEST(Durable, DiskUseStaysUnderTheBoundWithTheOldestOut) {
    const std::string dir = temp_dir();
    const uint64_t bound = 1 << 20;
    // One slot: every turn parks the previous session's KV into the store.
    Stored s(model_path("stories260K.gguf"),
                  config(dir, "\"max_concurrent\":1,\"max_tokens\":40,\"session_store_bytes\":" + std::to_string(bound)));
    std::vector<graph_execution_context> execs;
    for (int i = 0; i < 24; ++i) execs.push_back(s.open("s" + std::to_string(i)));
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 24; ++i) {
            Reply r = turn(s, execs[static_cast<size_t>(i)],
                           "Tell me a long story about a dog named number " + std::to_string(i) + ".");
            ASSERT_EQ(r.rc, success);
            EXPECT_LE(dir_bytes(dir), bound) << "round " << round << " session " << i;
        }
    }
    json store = status(s, BACKEND_STATUS_SESSIONS)["store"];
    EXPECT_LE(store["bytes"].get<uint64_t>(), bound) << store.dump();
    EXPECT_GT(store["kv_written"].get<int>(), 24) << store.dump();
    EXPECT_GT(store["kv_files"].get<int>(), 0);
    EXPECT_LT(store["kv_files"].get<int>(), 24) << "not every session's KV fits: the least recently used went";
    EXPECT_EQ(store["turns_stored"], 48);
    EXPECT_EQ(store["turn_failures"], 0);
}

TEST(Durable, MaxSessionsAndIdleTimeoutRemoveSessionsFromTheStore) {
    const std::string model = model_path("stories260K.gguf");
    const std::string dir = temp_dir();
    {
        Stored s(model, config(dir, "\"max_sessions\":2"));
        for (const char* id : {"a", "b", "c"}) {  // c's attach evicts a
            auto e = s.open(id);
            ASSERT_EQ(turn(s, e, std::string("Hello from ") + id).rc, success);
        }
    }
    {
        Stored s(model, config(dir, "\"max_sessions\":2"));
        json sessions = status(s, BACKEND_STATUS_SESSIONS);
        EXPECT_EQ(sessions["named"], 2) << sessions.dump();
        for (const auto& it : sessions["sessions"]) EXPECT_NE(it["id"], "a");
    }
    {
        Stored s(model, config(dir, "\"idle_timeout_ms\":1"));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        EXPECT_EQ(status(s, BACKEND_STATUS_SESSIONS)["named"], 0);
    }
    Stored s(model, config(dir));
    EXPECT_EQ(status(s, BACKEND_STATUS_SESSIONS)["named"], 0) << "gone from disk too";
}

TEST(Durable, AStreamedTurnIsStoredWhenFiniSingleReturns) {
    const std::string model = model_path("stories260K.gguf");
    const std::vector<std::string> never_restarted = reference_replies(model, 2);
    const std::string dir = temp_dir();
    {
        Stored s(model, config(dir));
        auto e = s.open("chat");
        std::vector<std::string> pieces;
        ASSERT_EQ(s.stream(e, kMessages[0], &pieces), end_of_sequence);
        ASSERT_EQ(s.fini(e), success);
        std::string whole;
        for (const auto& p : pieces) whole += p;
        EXPECT_EQ(whole, never_restarted[0]);
    }
    Stored s(model, config(dir));
    auto e = s.open("chat");
    Reply r = turn(s, e, kMessages[1]);
    ASSERT_EQ(r.rc, success);
    EXPECT_EQ(r.text, never_restarted[1]);
}

TEST(Durable, ContextsOnOneNamespaceShareItsSessionsAndOthersDoNot) {
    const std::string model = model_path("stories260K.gguf");
    const std::vector<std::string> never_restarted = reference_replies(model, 2);
    const std::string dir = temp_dir();
    Stored one(model, config(dir));
    Stored two(model, config(dir));
    Stored other(model, config(dir, "\"session_namespace\":\"someone-else\""));
    auto e1 = one.open("chat");
    ASSERT_EQ(turn(one, e1, kMessages[0]).text, never_restarted[0]);
    auto e2 = two.open("chat");
    Reply continued = turn(two, e2, kMessages[1]);
    EXPECT_EQ(continued.text, never_restarted[1]) << "the second context continues the session";
    EXPECT_EQ(status(other, BACKEND_STATUS_SESSIONS)["named"], 0);
    auto e3 = other.open("chat");
    Reply fresh = turn(other, e3, kMessages[1]);
    EXPECT_LT(fresh.meta["input_tokens"].get<int>(), continued.meta["input_tokens"].get<int>())
        << "another namespace's session of that name is new";
    EXPECT_EQ(fresh.meta["cached_tokens"], 0);
}

// ---- a child process that fails writes, and one that is killed ----

namespace {

struct ChildProc {
    pid_t pid = -1;
    int out = -1;
    std::string buffered;

    static ChildProc spawn(const std::vector<std::string>& args) {
        int fds[2];
        EXPECT_EQ(pipe(fds), 0);
        ChildProc c;
        c.pid = fork();
        if (c.pid == 0) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
            std::vector<char*> argv;
            for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        close(fds[1]);
        c.out = fds[0];
        return c;
    }
    // The next line, or false at the end (or after `timeout` without one).
    bool line(std::string* l, int timeout_ms = 300000) {
        for (;;) {
            size_t nl = buffered.find('\n');
            if (nl != std::string::npos) {
                *l = buffered.substr(0, nl);
                buffered.erase(0, nl + 1);
                return true;
            }
            pollfd p{out, POLLIN, 0};
            if (poll(&p, 1, timeout_ms) <= 0) return false;
            char buf[4096];
            ssize_t n = read(out, buf, sizeof buf);
            if (n <= 0) return false;
            buffered.append(buf, static_cast<size_t>(n));
        }
    }
    int finish(int sig = 0) {
        if (sig) kill(pid, sig);
        int status = 0;
        waitpid(pid, &status, 0);
        close(out);
        return status;
    }
    // Kills the child and reads the whole lines it wrote before it died.
    int kill_and_drain(std::vector<std::string>* rest) {
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        std::string l;
        while (line(&l, 1000)) rest->push_back(l);
        close(out);
        return status;
    }
};

std::string child_path() { return std::string(WNL_BUILD_DIR) + "/tests/durable_child"; }

std::string unhex(const std::string& h) {
    if (h == "-") return "";
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

// What the database holds: session -> (user, assistant) per turn, in order.
struct StoredTurn {
    int64_t turn;
    std::string user, assistant;
};

std::string column_blob(sqlite3_stmt* s, int col) {
    const void* p = sqlite3_column_blob(s, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s, col))) : "";
}

std::map<std::string, std::vector<StoredTurn>> read_store(const std::string& dir, std::string* problem) {
    std::map<std::string, std::vector<StoredTurn>> out;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2((dir + "/sessions.db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
        *problem = "cannot open the database";
        sqlite3_close(db);
        return out;
    }
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT s.name, s.turns, m.turn, m.role, m.content FROM sessions s LEFT JOIN messages m "
                       "ON m.session = s.id ORDER BY s.name, m.seq",
                       -1, &q, nullptr);
    std::map<std::string, int64_t> declared;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const std::string name = column_blob(q, 0);
        declared[name] = sqlite3_column_int64(q, 1);
        auto& turns = out[name];
        if (sqlite3_column_type(q, 2) == SQLITE_NULL) continue;
        const int64_t t = sqlite3_column_int64(q, 2);
        const std::string role = column_blob(q, 3), content = column_blob(q, 4);
        if (role == "user") {
            turns.push_back({t, content, ""});
        } else if (turns.empty() || turns.back().turn != t || !turns.back().assistant.empty()) {
            *problem += name + ": an assistant message without its user message; ";
        } else {
            turns.back().assistant = content;
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    // The child's sessions never outgrow their context (ctx_size 2048 for
    // 20 turns of ~80 tokens), so no turn is ever dropped from a history.
    for (const auto& [name, turns] : out) {
        if (static_cast<int64_t>(turns.size()) != declared[name]) {
            *problem += name + ": " + std::to_string(turns.size()) + " turns stored, the row says " +
                        std::to_string(declared[name]) + "; ";
        }
        for (size_t i = 0; i < turns.size(); ++i) {
            if (turns[i].turn != static_cast<int64_t>(i + 1)) *problem += name + ": turns out of order; ";
        }
    }
    if (problem->size() > 2000) problem->resize(2000);
    return out;
}

// durable_child's messages and settings, without the store.
std::string crash_message(int session, int turn) {
    return "Tom " + std::to_string(session) + " part " + std::to_string(turn) + ".";
}
const char* kChildConfig =
    "{\"temp\":0,\"max_tokens\":4,\"chat_template\":\"chatml\",\"ctx_size\":2048,\"max_concurrent\":4,"
    "\"flash_attn\":\"off\",\"threads\":1,\"logging\":{\"level\":\"warn\"}}";

}  // namespace

TEST(Durable, AFailedWriteFailsTheTurnAndLosesNothingAcknowledged) {
    const std::string dir = temp_dir();
    const std::string model = model_path("stories260K.gguf");
    ChildProc c = ChildProc::spawn({child_path(), "fsize", dir, model});
    std::vector<std::string> lines;
    std::string l;
    while (c.line(&l)) lines.push_back(l);
    const int status = c.finish();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    ASSERT_EQ(lines.size(), 7u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(lines[static_cast<size_t>(i)].rfind("ack s0 " + std::to_string(i) + " ", 0), 0u);
    EXPECT_EQ(lines[3].rfind("fail s0 3 ", 0), 0u) << lines[3];
    EXPECT_EQ(lines[4].rfind("fail s0 3 ", 0), 0u) << lines[4];
    ASSERT_EQ(lines[5].rfind("ack s0 3 ", 0), 0u) << "the limit lifted, the session goes on: " << lines[5];
    EXPECT_EQ(lines[6], "done");

    std::string problem;
    auto stored = read_store(dir, &problem);
    EXPECT_TRUE(problem.empty()) << problem;
    ASSERT_EQ(stored["s0"].size(), 4u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(stored["s0"][static_cast<size_t>(i)].user, crash_message(0, i));
        EXPECT_EQ(stored["s0"][static_cast<size_t>(i)].assistant, unhex(lines[static_cast<size_t>(i)].substr(9)));
    }
    EXPECT_EQ(stored["s0"][3].user, crash_message(0, 103)) << "the failed turn is not there";

    // The session in memory was never ahead of the store: the turn after
    // the failures is the one a session without them gives.
    WamrSession ref(model, kChildConfig);
    auto e = ref.open("s0");
    std::string reply;
    for (int t : {0, 1, 2, 103}) ASSERT_EQ(ref.turn(e, crash_message(0, t), &reply), success);
    EXPECT_EQ(reply, stored["s0"][3].assistant);
}

TEST(Durable, CrashSafetyEveryAcknowledgedTurnSurvivesKill9) {
    const char* env = std::getenv("WNL_CRASH_KILLS");
    const int kills = env ? std::atoi(env) : 20;
    const char* seed_env = std::getenv("WNL_CRASH_SEED");
    const unsigned seed = seed_env ? static_cast<unsigned>(std::atoi(seed_env)) : 20261;
    std::printf("crash test: %d kills, seed %u (WNL_CRASH_KILLS, WNL_CRASH_SEED)\n", kills, seed);
    const int sessions = 50, turns = 1000;
    const std::string dir = temp_dir();
    const std::string model = model_path("stories260K.gguf");
    std::mt19937 rng(seed);
    std::map<std::string, std::vector<std::string>> acked;  // session -> reply per turn
    int total_acked = 0, killed = 0, unacked_committed = 0;

    auto check_store = [&](bool final) {
        std::string problem;
        auto stored = read_store(dir, &problem);
        ASSERT_TRUE(problem.empty()) << "after " << killed << " kills: " << problem;
        int extra = 0;
        for (auto& [sid, replies] : acked) {
            const auto& have = stored[sid];
            ASSERT_GE(have.size(), replies.size()) << sid << ": an acknowledged turn is missing";
            for (size_t t = 0; t < replies.size(); ++t) {
                const int s = std::stoi(sid.substr(1));
                ASSERT_EQ(have[t].user, crash_message(s, static_cast<int>(t))) << sid << " turn " << t;
                ASSERT_EQ(have[t].assistant, replies[t]) << sid << " turn " << t;
            }
            // Stored but not acknowledged: the kill fell between the commit
            // and the report. It is the child's own turn, so it counts.
            for (size_t t = replies.size(); t < have.size(); ++t) {
                replies.push_back(have[t].assistant);
                ++extra;
            }
        }
        for (const auto& [sid, have] : stored) {
            if (!acked.count(sid)) {
                extra += static_cast<int>(have.size());
                for (const auto& t : have) acked[sid].push_back(t.assistant);
            }
        }
        ASSERT_LE(extra, 1) << "one turn at a time is in flight, so at most one is stored unacknowledged";
        unacked_committed += extra;
        total_acked += extra;
        if (final) {
            for (int s = 0; s < sessions; ++s) {
                ASSERT_EQ(stored["s" + std::to_string(s)].size(), static_cast<size_t>(turns / sessions)) << s;
            }
        }
    };

    for (;;) {
        ChildProc c = ChildProc::spawn({child_path(), "run", dir, model, std::to_string(sessions),
                                        std::to_string(turns), "normal", "4"});
        const bool kill_this = killed < kills;
        const int remaining = turns - total_acked;
        const int span = std::max(1, 2 * remaining / (kills - killed + 1));
        const int target = total_acked + 1 + static_cast<int>(rng() % static_cast<unsigned>(span));
        bool done = false;
        std::string l;
        auto take_ack = [&](const std::string& line) {
            char what[16], sid[32], tail[8192];
            int t = -1;
            ASSERT_EQ(std::sscanf(line.c_str(), "%15s %31s %d %8191s", what, sid, &t, tail), 4) << line;
            ASSERT_STREQ(what, "ack") << line;
            auto& replies = acked[sid];
            ASSERT_EQ(t, static_cast<int>(replies.size())) << "turns of " << sid << " acknowledged in order";
            replies.push_back(unhex(tail));
            ++total_acked;
        };
        while (c.line(&l)) {
            if (l == "done") {
                done = true;
                break;
            }
            take_ack(l);
            if (HasFatalFailure()) return;
            if (kill_this && total_acked >= target) {
                // Somewhere in the next turn: its prefill, decode, commit, or a KV write.
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
                break;
            }
        }
        int status = 0;
        if (done || !kill_this) {
            status = c.finish();
        } else {
            // Turns the child acknowledged during the sleep (a fast machine
            // does several in 20 ms) are in the pipe: acknowledged all the same.
            std::vector<std::string> rest;
            status = c.kill_and_drain(&rest);
            for (const auto& r : rest) {
                if (r == "done") {
                    done = true;
                    break;
                }
                take_ack(r);
                if (HasFatalFailure()) return;
            }
        }
        if (done) {
            ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
            break;
        }
        ASSERT_TRUE(kill_this) << "the child stopped before the end: status " << status << " after " << l;
        ++killed;
        check_store(false);
        if (HasFatalFailure()) return;
    }
    check_store(true);
    std::printf("crash test: %d kills, %d turns acknowledged, %d stored unacknowledged\n", killed, total_acked,
                unacked_committed);
    EXPECT_EQ(killed, kills);

    // Each session went on as if nothing had happened: its replies are
    // those of the session run alone, never killed (a few of them, each a
    // session's 20 turns in this process).
    std::string problem;
    auto got = read_store(dir, &problem);
    WamrSession ref(model, kChildConfig);
    for (int s : {0, 17, 33, 49}) {
        const std::string sid = "s" + std::to_string(s);
        auto e = ref.open(sid);
        for (size_t t = 0; t < got[sid].size(); ++t) {
            std::string reply;
            ASSERT_EQ(ref.turn(e, crash_message(s, static_cast<int>(t)), &reply), success);
            EXPECT_EQ(got[sid][t].assistant, reply) << sid << " turn " << t;
        }
    }
}

// WAMR's host calls plain init_backend: the policy file is where its store
// comes from (docs/sessions.md §2).
TEST(Durable, APolicyFileGivesAPlainInitBackendAStore) {
    const std::string dir = temp_dir();
    const std::string policy = dir + "/policy.json";
    std::ofstream(policy) << "{\"session_store\":\"" << dir << "/store\",\"session_namespace\":\"wamr-host\"}";
    ::setenv("WASI_NN_LLAMA_POLICY", policy.c_str(), 1);
    struct Unset {
        ~Unset() { ::unsetenv("WASI_NN_LLAMA_POLICY"); }  // on every way out: later tests have no policy
    } unset;
    const std::string model = model_path("stories260K.gguf");
    const std::string cfg = config("");
    std::string first;
    for (int run = 0; run < 2; ++run) {
        WamrApi& api = WamrApi::get();
        void* ctx = nullptr;
        ASSERT_EQ(api.init_backend(&ctx), success);
        graph g = 0;
        ASSERT_EQ(api.load_by_name_with_config(ctx, model.data(), static_cast<uint32_t>(model.size()), cfg.data(),
                                               static_cast<uint32_t>(cfg.size()), &g),
                  success);
        graph_execution_context e = 0;
        ASSERT_EQ(api.init_execution_context_with_session_id(ctx, "chat", &e), success);
        uint32_t dim = static_cast<uint32_t>(kMessages[run].size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(kMessages[run].data())), dim};
        ASSERT_EQ(api.set_input(ctx, e, 0, &t), success);
        ASSERT_EQ(api.compute(ctx, e), success);
        std::vector<uint8_t> buf(1 << 16);
        uint32_t n = 0;
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        ASSERT_EQ(api.get_output(ctx, e, 1, &td, &n), success);
        const json meta = json::parse(std::string(reinterpret_cast<char*>(buf.data()), n));
        if (run == 1) {
            EXPECT_GT(meta["cached_tokens"].get<int>(), 0) << "the second process restored the first's KV";
        }
        api.close_execution_context(ctx, e);
        api.deinit_backend(ctx);
    }
    std::string problem;
    const auto stored = read_store(dir + "/store", &problem);
    EXPECT_EQ(problem, "");
    ASSERT_EQ(stored.count("chat"), 1u);
    EXPECT_EQ(stored.at("chat").size(), 2u);
}
