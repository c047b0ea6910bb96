// The session database (session_db.h): a turn is stored whole or not at
// all, namespaces do not see each other, text comes back byte for byte, and
// a damaged database is a clear error, never a crash.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/session_db.h"

using namespace wnl;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/wnl-sessiondb-XXXXXX";
    const char* d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    return d ? d : "/tmp";
}

std::unique_ptr<SessionDb> open_db(const std::string& path, SyncLevel sync = SyncLevel::normal) {
    std::unique_ptr<SessionDb> db;
    std::string err;
    EXPECT_EQ(SessionDb::open(path, sync, 64 << 10, &db, &err), Status::ok) << err;
    return db;
}

TurnWrite chat_turn(const std::string& ns, const std::string& name, int64_t id, uint64_t turns, const std::string& user,
                    const std::string& reply, size_t drop = 0) {
    TurnWrite t;
    t.id = id;
    t.ns = ns;
    t.name = name;
    t.chat = true;
    t.drop_messages = drop;
    t.append = {{"user", user}, {"assistant", reply}};
    t.turns = turns;
    t.tokens_held = static_cast<int32_t>(10 * turns);
    t.last_used_ms = 1000 + static_cast<int64_t>(turns);
    return t;
}

std::vector<StoredSession> load(SessionDb& db, const std::string& ns) {
    std::vector<StoredSession> out;
    std::string err;
    EXPECT_EQ(db.load(ns, &out, &err), Status::ok) << err;
    return out;
}

}  // namespace

TEST(SessionDb, TurnsComeBackInOrderAfterReopening) {
    const std::string path = temp_dir() + "/sessions.db";
    int64_t id = 0;
    {
        auto db = open_db(path);
        std::string err;
        for (uint64_t t = 1; t <= 5; ++t) {
            ASSERT_EQ(db->commit_turn(chat_turn("ns", "alice", id, t, "q" + std::to_string(t), "a" + std::to_string(t)),
                                      &id, &err),
                      Status::ok)
                << err;
            EXPECT_GT(id, 0);
        }
        struct stat st {};
        EXPECT_EQ(::stat((path + "-wal").c_str(), &st), 0) << "WAL mode";
    }
    auto db = open_db(path);
    auto sessions = load(*db, "ns");
    ASSERT_EQ(sessions.size(), 1u);
    const StoredSession& s = sessions[0];
    EXPECT_EQ(s.id, id);
    EXPECT_EQ(s.name, "alice");
    EXPECT_EQ(s.turns, 5u);
    EXPECT_EQ(s.tokens_held, 50);
    EXPECT_EQ(s.last_used_ms, 1005);
    ASSERT_EQ(s.messages.size(), 10u);
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(s.messages[2 * i].role, "user");
        EXPECT_EQ(s.messages[2 * i].content, "q" + std::to_string(i + 1));
        EXPECT_EQ(s.messages[2 * i + 1].role, "assistant");
        EXPECT_EQ(s.messages[2 * i + 1].content, "a" + std::to_string(i + 1));
    }
}

TEST(SessionDb, NamespacesNeverSeeEachOther) {
    auto db = open_db(temp_dir() + "/sessions.db");
    std::string err;
    int64_t a = 0, b = 0;
    ASSERT_EQ(db->commit_turn(chat_turn("tenant-a", "chat", 0, 1, "from a", "to a"), &a, &err), Status::ok);
    ASSERT_EQ(db->commit_turn(chat_turn("tenant-b", "chat", 0, 1, "from b", "to b"), &b, &err), Status::ok);
    EXPECT_NE(a, b);
    auto in_a = load(*db, "tenant-a");
    auto in_b = load(*db, "tenant-b");
    ASSERT_EQ(in_a.size(), 1u);
    ASSERT_EQ(in_b.size(), 1u);
    EXPECT_EQ(in_a[0].messages[0].content, "from a");
    EXPECT_EQ(in_b[0].messages[0].content, "from b");
    EXPECT_TRUE(load(*db, "tenant-c").empty());
}

TEST(SessionDb, DroppedMessagesAreTheOldest) {
    auto db = open_db(temp_dir() + "/sessions.db");
    std::string err;
    int64_t id = 0;
    for (uint64_t t = 1; t <= 4; ++t) {
        ASSERT_EQ(db->commit_turn(chat_turn("ns", "s", id, t, "q" + std::to_string(t), "a" + std::to_string(t)), &id, &err),
                  Status::ok);
    }
    // The prompt left out the two oldest turns (four messages).
    ASSERT_EQ(db->commit_turn(chat_turn("ns", "s", id, 5, "q5", "a5", 4), &id, &err), Status::ok) << err;
    auto s = load(*db, "ns");
    ASSERT_EQ(s[0].messages.size(), 6u);
    EXPECT_EQ(s[0].messages.front().content, "q3");
    EXPECT_EQ(s[0].messages.back().content, "a5");
}

TEST(SessionDb, CompletionTranscriptsAndAnyBytesRoundTrip) {
    auto db = open_db(temp_dir() + "/sessions.db");
    std::string err;
    // A reply cut inside a UTF-8 character, an embedded NUL, a name that is
    // not UTF-8.
    const std::string odd_name("se\xff\x00ss", 5);
    const std::string transcript = std::string("Once upon a time \xe2\x82", 19) + std::string("\0tail", 5);
    TurnWrite t;
    t.ns = "ns";
    t.name = odd_name;
    t.chat = false;
    t.transcript = transcript;
    t.turns = 1;
    int64_t id = 0;
    ASSERT_EQ(db->commit_turn(t, &id, &err), Status::ok) << err;
    auto s = load(*db, "ns");
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].name, odd_name);
    EXPECT_EQ(s[0].transcript, transcript);
    EXPECT_TRUE(s[0].messages.empty());
    // A chat turn on it leaves the transcript as it is.
    ASSERT_EQ(db->commit_turn(chat_turn("ns", odd_name, id, 2, "q", std::string("a\0b", 3)), &id, &err), Status::ok);
    s = load(*db, "ns");
    EXPECT_EQ(s[0].transcript, transcript);
    EXPECT_EQ(s[0].messages[1].content, std::string("a\0b", 3));
}

TEST(SessionDb, RemoveTakesTheMessagesWithIt) {
    auto db = open_db(temp_dir() + "/sessions.db");
    std::string err;
    int64_t a = 0, b = 0;
    ASSERT_EQ(db->commit_turn(chat_turn("ns", "a", 0, 1, "q", "r"), &a, &err), Status::ok);
    ASSERT_EQ(db->commit_turn(chat_turn("ns", "b", 0, 1, "q", "r"), &b, &err), Status::ok);
    ASSERT_EQ(db->remove(a, &err), Status::ok) << err;
    auto s = load(*db, "ns");
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].name, "b");
    std::vector<int64_t> ids;
    ASSERT_EQ(db->all_ids(&ids, &err), Status::ok);
    EXPECT_EQ(ids, std::vector<int64_t>{b});
    // A new session of the same name gets a new id: its KV file is never an old one.
    int64_t again = 0;
    ASSERT_EQ(db->commit_turn(chat_turn("ns", "a", 0, 1, "q", "r"), &again, &err), Status::ok);
    EXPECT_GT(again, b);
}

TEST(SessionDb, AFailedWriteStoresNothingAndTheNextOneContinues) {
    const std::string path = temp_dir() + "/sessions.db";
    auto db = open_db(path, SyncLevel::full);
    std::string err;
    int64_t id = 0;
    ASSERT_EQ(db->commit_turn(chat_turn("ns", "s", 0, 1, "q1", "a1"), &id, &err), Status::ok);
    db->set_read_only(true);  // SQLite refuses the write, as on a read-only store
    int64_t unchanged = id;
    EXPECT_EQ(db->commit_turn(chat_turn("ns", "s", id, 2, "q2", "a2"), &unchanged, &err), Status::runtime_error);
    EXPECT_FALSE(err.empty());
    EXPECT_EQ(unchanged, id);
    db->set_read_only(false);
    auto s = load(*db, "ns");
    ASSERT_EQ(s[0].turns, 1u);
    ASSERT_EQ(s[0].messages.size(), 2u);
    ASSERT_EQ(db->commit_turn(chat_turn("ns", "s", id, 2, "q2b", "a2b"), &id, &err), Status::ok) << err;
    db.reset();
    auto reopened = open_db(path);
    s = load(*reopened, "ns");
    ASSERT_EQ(s[0].messages.size(), 4u);
    EXPECT_EQ(s[0].messages[2].content, "q2b");
}

TEST(SessionDb, AFailureInsideTheTransactionLeavesNoHalfTurn) {
    auto db = open_db(temp_dir() + "/sessions.db");
    std::string err;
    int64_t id = 0;
    ASSERT_EQ(db->commit_turn(chat_turn("ns", "s", 0, 1, "q1", "a1"), &id, &err), Status::ok);
    // A row id the database does not have: the update fails after BEGIN.
    int64_t out = 0;
    EXPECT_EQ(db->commit_turn(chat_turn("ns", "s", id + 100, 2, "q2", "a2", 2), &out, &err), Status::runtime_error);
    EXPECT_NE(err.find("row"), std::string::npos) << err;
    auto s = load(*db, "ns");
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].turns, 1u);
    ASSERT_EQ(s[0].messages.size(), 2u) << "nothing dropped, nothing added";
    EXPECT_EQ(s[0].messages[0].content, "q1");
}

TEST(SessionDb, AFileThatIsNotADatabaseIsAClearError) {
    const std::string path = temp_dir() + "/sessions.db";
    {
        std::ofstream out(path, std::ios::binary);
        for (int i = 0; i < 8192; ++i) out.put(static_cast<char>(i * 37 + 11));
    }
    std::unique_ptr<SessionDb> db;
    std::string err;
    EXPECT_EQ(SessionDb::open(path, SyncLevel::normal, 64 << 10, &db, &err), Status::runtime_error);
    EXPECT_FALSE(db);
    EXPECT_NE(err.find(path), std::string::npos) << err;
    EXPECT_NE(err.find("not a database"), std::string::npos) << err;
}

TEST(SessionDb, CorruptPagesAreFoundWhenOpened) {
    const std::string path = temp_dir() + "/sessions.db";
    {
        auto db = open_db(path);
        std::string err;
        int64_t id = 0;
        for (int i = 0; i < 200; ++i) {
            ASSERT_EQ(db->commit_turn(chat_turn("ns", "s" + std::to_string(i), 0, 1, std::string(300, 'q'),
                                                std::string(300, 'a')),
                                      &id, &err),
                      Status::ok);
        }
        db->compact();  // everything in the database file, the WAL empty
    }
    {
        // Garbage over the pages after the first (the header stays valid).
        std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(4096 * 2);
        for (int i = 0; i < 4096 * 4; ++i) f.put(static_cast<char>(i * 97 + 3));
    }
    std::unique_ptr<SessionDb> db;
    std::string err;
    EXPECT_EQ(SessionDb::open(path, SyncLevel::normal, 64 << 10, &db, &err), Status::runtime_error);
    EXPECT_NE(err.find(path), std::string::npos) << err;
    EXPECT_FALSE(err.empty());
}

TEST(SessionDb, ADatabaseFromANewerLibraryIsRefused) {
    const std::string path = temp_dir() + "/sessions.db";
    {
        auto db = open_db(path);
    }
    {
        // user_version lives at byte 60 of the header, big-endian.
        std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(60);
        const char v[4] = {0, 0, 0, 9};
        f.write(v, 4);
    }
    std::unique_ptr<SessionDb> db;
    std::string err;
    EXPECT_EQ(SessionDb::open(path, SyncLevel::normal, 64 << 10, &db, &err), Status::runtime_error);
    EXPECT_NE(err.find("newer"), std::string::npos) << err;
}

TEST(SessionDb, AnUnreachablePathIsAClearError) {
    std::unique_ptr<SessionDb> db;
    std::string err;
    EXPECT_EQ(SessionDb::open("/nonexistent-wnl-dir/sessions.db", SyncLevel::normal, 64 << 10, &db, &err),
              Status::runtime_error);
    EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
}
