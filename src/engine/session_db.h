// The session store's database (SQLite, WAL mode): every stored session's
// text history, one transaction per turn. Knows nothing of models, loops or
// KV files; docs/sessions.md §3 has the schema.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/chat_format.h"
#include "engine/status.h"

struct sqlite3;

namespace wnl {

// normal: a committed turn survives a crash of the process (WAL,
// synchronous=NORMAL); full: also a power loss (synchronous=FULL).
enum class SyncLevel { normal, full };

struct StoredSession {
    int64_t id = 0;  // row id: never reused, names the session's KV file
    std::string name;
    std::vector<ChatMessage> messages;
    std::string transcript;
    uint64_t turns = 0;
    int32_t tokens_held = 0;
    int64_t last_used_ms = 0;  // wall clock, ms since the epoch
};

// One turn as it changes a session's stored history.
struct TurnWrite {
    int64_t id = 0;  // 0: the session's first stored turn (a row is made)
    std::string ns;
    std::string name;
    bool chat = true;
    size_t drop_messages = 0;  // oldest messages the prompt left out
    std::vector<ChatMessage> append;
    std::string transcript;  // completion mode: the whole new transcript
    uint64_t turns = 0;  // after the turn
    int32_t tokens_held = 0;
    int64_t last_used_ms = 0;
};

class SessionDb {
public:
    // Opens (creating if new) the database at `path`, checks it (a file that
    // is not a database, or a corrupt one, is runtime_error with *error
    // saying so) and sets WAL mode and the sync level. wal_bytes bounds the
    // write-ahead log between checkpoints.
    static Status open(const std::string& path, SyncLevel sync, uint64_t wal_bytes, std::unique_ptr<SessionDb>* out,
                       std::string* error);
    ~SessionDb();
    SessionDb(const SessionDb&) = delete;
    SessionDb& operator=(const SessionDb&) = delete;

    // Every session of the namespace with its history, oldest use first.
    Status load(const std::string& ns, std::vector<StoredSession>* out, std::string* error);
    // The turn in one transaction: all of it is stored, or none. *id gets
    // the session's row id.
    Status commit_turn(const TurnWrite& t, int64_t* id, std::string* error);
    Status remove(int64_t id, std::string* error);
    // Row ids of every session in every namespace (to find orphaned files).
    Status all_ids(std::vector<int64_t>* out, std::string* error);
    // Gives freed pages back to the file system (after removals).
    void compact();
    // The database's files: the database, its WAL and its shared-memory index.
    uint64_t disk_bytes() const;
    const std::string& path() const { return path_; }

    // Refuses every later write (SQLite's query_only): a store that must not
    // change, and the way tests make a write fail.
    void set_read_only(bool on);

private:
    SessionDb() = default;
    Status exec(const char* sql, std::string* error);
    std::string path_;
    mutable std::mutex mu_;
    sqlite3* db_ = nullptr;
};

}  // namespace wnl
