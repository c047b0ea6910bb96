// A session store without a model (durable_store.h, store_dir.h): sessions
// come back after the store is closed, namespaces stay apart, eviction
// removes sessions from disk, KV files go and come back through the writer
// within the disk bound, and a failed write is an error that stores nothing.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/durable_store.h"
#include "engine/kv_file.h"

using namespace wnl;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/wnl-store-XXXXXX";
    const char* d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    return d ? d : "/tmp";
}

std::shared_ptr<StoreNamespace> open_ns(const std::string& dir, const std::string& ns = "default",
                                        uint64_t max_bytes = 0, SessionLimits limits = {}) {
    StoreSettings s;
    s.dir = dir;
    s.ns = ns;
    s.max_bytes = max_bytes;
    std::shared_ptr<StoreNamespace> out;
    std::string err;
    EXPECT_EQ(StoreNamespace::open(s, limits, &out, &err), Status::ok) << err;
    return out;
}

std::shared_ptr<Session> attach(StoreNamespace& ns, const std::string& id) {
    std::vector<std::string> dropped;
    return ns.sessions()->attach(id, &dropped);
}

// What Backend::record_turn does: the store first, then memory.
Status turn(StoreNamespace& ns, Session& s, const std::string& user, const std::string& reply) {
    TurnWrite w;
    w.chat = true;
    w.append = {{"user", user}, {"assistant", reply}};
    w.turns = s.turns + 1;
    std::vector<std::string> evicted;
    std::string err;
    Status st = ns.commit_turn(s, w, &evicted, &err);
    if (st != Status::ok) return st;
    s.messages.push_back({"user", user});
    s.messages.push_back({"assistant", reply});
    s.turns++;
    return st;
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

std::shared_ptr<const std::vector<uint8_t>> bytes(size_t n, uint8_t seed) {
    auto v = std::make_shared<std::vector<uint8_t>>(n);
    for (size_t i = 0; i < n; ++i) (*v)[i] = static_cast<uint8_t>(i * 31 + seed);
    return v;
}

}  // namespace

TEST(DurableStore, SessionsComeBackWhenTheStoreIsOpenedAgain) {
    const std::string dir = temp_dir();
    {
        auto ns = open_ns(dir);
        auto a = attach(*ns, "alice");
        auto b = attach(*ns, "bob");
        ASSERT_EQ(turn(*ns, *a, "hi", "hello"), Status::ok);
        ASSERT_EQ(turn(*ns, *a, "how are you", "fine"), Status::ok);
        ASSERT_EQ(turn(*ns, *b, "bob here", "hi bob"), Status::ok);
        EXPECT_GT(a->store_id.load(), 0);
    }
    auto ns = open_ns(dir);
    EXPECT_EQ(ns->sessions()->size(), 2u);
    auto a = attach(*ns, "alice");
    ASSERT_EQ(a->messages.size(), 4u);
    EXPECT_EQ(a->messages[2].content, "how are you");
    EXPECT_EQ(a->turns.load(), 2u);
    ASSERT_EQ(turn(*ns, *a, "third", "ok"), Status::ok) << "a restored session continues";
    EXPECT_EQ(ns->report().turns_stored, 1u);
}

TEST(DurableStore, NamespacesAreSeparateAndSharedWithinAProcess) {
    const std::string dir = temp_dir();
    auto one = open_ns(dir, "tenant-1");
    auto two = open_ns(dir, "tenant-2");
    auto again = open_ns(dir, "tenant-1");
    EXPECT_EQ(one.get(), again.get()) << "two backend contexts on one namespace share its sessions";
    EXPECT_NE(one->key_prefix(), two->key_prefix());
    auto s1 = attach(*one, "chat");
    ASSERT_EQ(turn(*one, *s1, "secret of tenant 1", "ok"), Status::ok);
    auto s2 = attach(*two, "chat");
    EXPECT_TRUE(s2->messages.empty());
    ASSERT_EQ(turn(*two, *s2, "tenant 2", "ok"), Status::ok);
    one.reset();
    two.reset();
    again.reset();
    auto reopened = open_ns(dir, "tenant-2");
    auto back = attach(*reopened, "chat");
    ASSERT_EQ(back->messages.size(), 2u);
    EXPECT_EQ(back->messages[0].content, "tenant 2");
}

TEST(DurableStore, AnotherProcessHoldingTheStoreIsBusy) {
    const std::string dir = temp_dir();
    // flock conflicts between open file descriptions, as between processes.
    int fd = ::open((dir + "/LOCK").c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    StoreSettings s;
    s.dir = dir;
    std::shared_ptr<StoreNamespace> out;
    std::string err;
    EXPECT_EQ(StoreNamespace::open(s, {}, &out, &err), Status::busy);
    EXPECT_NE(err.find("in use by another process"), std::string::npos) << err;
    ::close(fd);
    EXPECT_EQ(StoreNamespace::open(s, {}, &out, &err), Status::ok) << err;
}

TEST(DurableStore, EvictedAndIdleSessionsLeaveTheDisk) {
    const std::string dir = temp_dir();
    SessionLimits limits;
    limits.max_sessions = 2;
    limits.idle_timeout_ms = 60000;
    {
        auto ns = open_ns(dir, "default", 0, limits);
        for (const char* id : {"s1", "s2", "s3"}) {
            auto s = attach(*ns, id);  // s3's attach evicts s1
            ASSERT_EQ(turn(*ns, *s, std::string("from ") + id, "ok"), Status::ok);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        EXPECT_EQ(ns->report().sessions_removed, 1u);
    }
    {
        auto ns = open_ns(dir, "default", 0, limits);
        EXPECT_EQ(ns->sessions()->size(), 2u);
        std::vector<std::string> ids;
        for (const auto& s : ns->sessions()->list()) ids.push_back(s->id);
        EXPECT_EQ(std::count(ids.begin(), ids.end(), "s1"), 0);
    }
    // Reopened with a lower max_sessions, the least recently used go.
    limits.max_sessions = 1;
    {
        auto ns = open_ns(dir, "default", 0, limits);
        ASSERT_EQ(ns->sessions()->size(), 1u);
        EXPECT_EQ(ns->sessions()->list()[0]->id, "s3");
    }
    // Idle past the timeout (measured across the restart): dropped at open.
    limits.idle_timeout_ms = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    {
        auto ns = open_ns(dir, "default", 0, limits);
        EXPECT_EQ(ns->sessions()->size(), 0u);
    }
    auto ns = open_ns(dir);
    EXPECT_EQ(ns->sessions()->size(), 0u) << "removed from disk, not only from memory";
}

TEST(DurableStore, KvStateGoesToItsFileAndComesBack) {
    const std::string dir = temp_dir();
    const std::string identity = "model-a";
    std::vector<llama_token> tokens = {1, 2, 3, 4, 5};
    int64_t id = 0;
    {
        auto ns = open_ns(dir);
        auto s = attach(*ns, "chat");
        auto sink = ns->kv_sink(s);
        EXPECT_TRUE(sink->save(identity, tokens, bytes(5000, 1)));
        ASSERT_TRUE(ns->flush(std::chrono::seconds(10)));
        EXPECT_EQ(ns->report().kv_written, 0u) << "no turn of it is stored yet: nothing to go with";
        ASSERT_EQ(turn(*ns, *s, "q", "a"), Status::ok);
        EXPECT_TRUE(sink->save(identity, tokens, bytes(5000, 1)));
        ASSERT_TRUE(ns->flush(std::chrono::seconds(10)));
        EXPECT_EQ(ns->report().kv_written, 1u);
        EXPECT_EQ(ns->report().kv_files, 1u);
        id = s->store_id;
    }
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/kv/" + std::to_string(id) + ".kv").c_str(), &st), 0);
    {
        auto ns = open_ns(dir);
        auto s = attach(*ns, "chat");
        std::vector<llama_token> got;
        std::shared_ptr<const std::vector<uint8_t>> data;
        ASSERT_TRUE(ns->load_kv(*s, identity, 1 << 20, &got, &data));
        EXPECT_EQ(got, tokens);
        EXPECT_EQ(*data, *bytes(5000, 1));
        // Another model's loop: ignored, counted, and the file removed.
        EXPECT_FALSE(ns->load_kv(*s, "model-b", 1 << 20, &got, &data));
        EXPECT_EQ(ns->report().kv_rejected, 1u);
        EXPECT_EQ(ns->report().kv_files, 0u);
        EXPECT_FALSE(ns->load_kv(*s, identity, 1 << 20, &got, &data)) << "gone";
    }
}

TEST(DurableStore, ARemovedSessionsStateIsNeverWritten) {
    const std::string dir = temp_dir();
    SessionLimits limits;
    limits.max_sessions = 1;
    auto ns = open_ns(dir, "default", 0, limits);
    auto a = attach(*ns, "a");
    ASSERT_EQ(turn(*ns, *a, "q", "r"), Status::ok);
    auto sink = ns->kv_sink(a);
    auto b = attach(*ns, "b");  // evicts a
    EXPECT_TRUE(a->removed.load());
    EXPECT_FALSE(sink->save("m", {1, 2}, bytes(100, 2)));
    ASSERT_TRUE(ns->flush(std::chrono::seconds(10)));
    EXPECT_EQ(ns->report().kv_files, 0u);
    EXPECT_EQ(turn(*ns, *a, "after", "eviction"), Status::ok) << "kept in memory only";
    EXPECT_EQ(ns->report().turns_stored, 1u);
}

TEST(DurableStore, DiskUseStaysWithinTheBound) {
    const std::string dir = temp_dir();
    const uint64_t bound = 1 << 20;
    auto ns = open_ns(dir, "default", bound);
    std::vector<std::shared_ptr<Session>> sessions;
    for (int i = 0; i < 12; ++i) {
        auto s = attach(*ns, "s" + std::to_string(i));
        ASSERT_EQ(turn(*ns, *s, std::string(2000, 'q'), std::string(2000, 'a')), Status::ok);
        sessions.push_back(s);
        // Each state is a fifth of the bound: only a few fit.
        ASSERT_TRUE(ns->kv_sink(s)->save("m", {1, 2, 3}, bytes(200 << 10, static_cast<uint8_t>(i))));
        ASSERT_TRUE(ns->flush(std::chrono::seconds(10)));
        EXPECT_LE(dir_bytes(dir), bound) << "after session " << i;
    }
    const StoreReport r = ns->report();
    EXPECT_LT(r.kv_files, 12u);
    EXPECT_GT(r.kv_files, 0u);
    EXPECT_LE(r.bytes, bound);
    // The newest states are kept, the oldest went.
    std::vector<llama_token> t;
    std::shared_ptr<const std::vector<uint8_t>> d;
    EXPECT_TRUE(ns->load_kv(*sessions.back(), "m", 1 << 30, &t, &d));
    EXPECT_FALSE(ns->load_kv(*sessions.front(), "m", 1 << 30, &t, &d));
    // A state that cannot fit at all is not written.
    ASSERT_TRUE(ns->kv_sink(sessions[3])->save("m", {1}, bytes(2 << 20, 9)));
    ASSERT_TRUE(ns->flush(std::chrono::seconds(10)));
    EXPECT_GE(ns->report().kv_skipped, 1u);
    EXPECT_LE(dir_bytes(dir), bound);
}

TEST(DurableStore, AFullStoreEvictsTheOldestSessionsThenRefusesTheTurn) {
    const std::string dir = temp_dir();
    const uint64_t bound = 1 << 20;
    auto ns = open_ns(dir, "default", bound);
    std::vector<std::shared_ptr<Session>> held;
    size_t stored = 0;
    // Text alone past the bound: older sessions make room, then, with one
    // session left, its next turn cannot be stored.
    Status st = Status::ok;
    for (int i = 0; i < 400 && st == Status::ok; ++i) {
        auto s = attach(*ns, "only");
        st = turn(*ns, *s, std::string(20000, 'q'), std::string(20000, 'a'));
        if (st == Status::ok) ++stored;
        EXPECT_LE(dir_bytes(dir), bound) << "turn " << i;
    }
    EXPECT_EQ(st, Status::runtime_error);
    EXPECT_GT(stored, 5u);
    EXPECT_EQ(ns->report().turn_failures, 1u);
    EXPECT_EQ(ns->report().turns_stored, stored);
    // Other sessions: the least recently used go to make room.
    auto fresh_dir = temp_dir();
    auto other = open_ns(fresh_dir, "default", bound);
    for (int i = 0; i < 60; ++i) {
        auto s = attach(*other, "s" + std::to_string(i));
        ASSERT_EQ(turn(*other, *s, std::string(20000, 'q'), std::string(20000, 'a')), Status::ok) << i;
        EXPECT_LE(dir_bytes(fresh_dir), bound) << "session " << i;
    }
    EXPECT_GT(other->report().sessions_removed, 0u);
    EXPECT_LT(other->sessions()->size(), 60u);
}

TEST(DurableStore, AFailedWriteIsAnErrorAndStoresNothing) {
    const std::string dir = temp_dir();
    {
        auto ns = open_ns(dir);
        auto s = attach(*ns, "chat");
        ASSERT_EQ(turn(*ns, *s, "one", "1"), Status::ok);
        ns->fail_writes_for_test(true);
        EXPECT_EQ(turn(*ns, *s, "two", "2"), Status::runtime_error);
        EXPECT_EQ(s->turns.load(), 1u) << "memory is not ahead of the store";
        EXPECT_EQ(ns->report().turn_failures, 1u);
        ns->fail_writes_for_test(false);
        ASSERT_EQ(turn(*ns, *s, "three", "3"), Status::ok);
    }
    auto ns = open_ns(dir);
    auto s = attach(*ns, "chat");
    ASSERT_EQ(s->messages.size(), 4u);
    EXPECT_EQ(s->messages[0].content, "one");
    EXPECT_EQ(s->messages[2].content, "three");
}

TEST(DurableStore, LeftoversOfACrashAreCleared) {
    const std::string dir = temp_dir();
    int64_t id = 0;
    {
        auto ns = open_ns(dir);
        auto s = attach(*ns, "chat");
        ASSERT_EQ(turn(*ns, *s, "q", "a"), Status::ok);
        id = s->store_id;
    }
    // A temporary file from a write cut short, and a file of a session
    // that is not in the database.
    for (const std::string& name : std::vector<std::string>{std::to_string(id) + ".kv.tmp", "999.kv"}) {
        int fd = ::open((dir + "/kv/" + name).c_str(), O_WRONLY | O_CREAT, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::write(fd, "x", 1), 1);
        ::close(fd);
    }
    auto ns = open_ns(dir);
    EXPECT_EQ(::access((dir + "/kv/" + std::to_string(id) + ".kv.tmp").c_str(), F_OK), -1);
    EXPECT_EQ(::access((dir + "/kv/999.kv").c_str(), F_OK), -1);
    EXPECT_EQ(ns->sessions()->size(), 1u);
}

TEST(DurableStore, AReadOnlyDirectoryIsAClearError) {
    if (geteuid() == 0) GTEST_SKIP() << "root writes to read-only directories";
    const std::string dir = temp_dir();
    ASSERT_EQ(::chmod(dir.c_str(), 0500), 0);
    StoreSettings s;
    s.dir = dir;
    std::shared_ptr<StoreNamespace> out;
    std::string err;
    EXPECT_EQ(StoreNamespace::open(s, {}, &out, &err), Status::runtime_error);
    EXPECT_FALSE(err.empty());
    ::chmod(dir.c_str(), 0700);
}
