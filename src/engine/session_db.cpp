#include "engine/session_db.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>

namespace wnl {

namespace {

constexpr int kSchemaVersion = 1;

// Text is stored as BLOBs: a reply cut by max_tokens may end inside a UTF-8
// character, and SQLite's TEXT promises nothing about invalid UTF-8.
constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS sessions(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace BLOB NOT NULL,
  name BLOB NOT NULL,
  transcript BLOB NOT NULL DEFAULT x'',
  turns INTEGER NOT NULL DEFAULT 0,
  tokens_held INTEGER NOT NULL DEFAULT 0,
  last_used_ms INTEGER NOT NULL DEFAULT 0,
  UNIQUE(namespace, name));
CREATE TABLE IF NOT EXISTS messages(
  session INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  turn INTEGER NOT NULL,
  role BLOB NOT NULL,
  content BLOB NOT NULL,
  PRIMARY KEY(session, seq)) WITHOUT ROWID;
)";

// One prepared statement; finalised on every way out.
class Stmt {
public:
    Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
    ~Stmt() { sqlite3_finalize(s_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    bool ok() const { return rc_ == SQLITE_OK || rc_ == SQLITE_ROW || rc_ == SQLITE_DONE; }
    Stmt& bind(int i, int64_t v) {
        if (ok()) rc_ = sqlite3_bind_int64(s_, i, v);
        return *this;
    }
    Stmt& bind(int i, const std::string& v) {
        if (ok()) rc_ = sqlite3_bind_blob64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT);
        return *this;
    }
    // SQLITE_ROW or SQLITE_DONE; anything else is an error.
    int step() {
        if (!ok()) return rc_;
        rc_ = sqlite3_step(s_);
        return rc_;
    }
    bool done() { return step() == SQLITE_DONE; }
    int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
    std::string blob(int col) const {
        const void* p = sqlite3_column_blob(s_, col);
        const int n = sqlite3_column_bytes(s_, col);
        return p && n > 0 ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
    }
    std::string text(int col) const {
        const unsigned char* p = sqlite3_column_text(s_, col);
        return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
    }
    std::string error() const { return std::string(sqlite3_errmsg(db_)) + " (code " + std::to_string(rc_) + ")"; }

private:
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
    int rc_ = SQLITE_OK;
};

uint64_t file_bytes(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

Status SessionDb::exec(const char* sql, std::string* error) {
    char* msg = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
    if (rc == SQLITE_OK) return Status::ok;
    *error = std::string(msg ? msg : sqlite3_errstr(rc)) + " (code " + std::to_string(rc) + ")";
    sqlite3_free(msg);
    return Status::runtime_error;
}

Status SessionDb::open(const std::string& path, SyncLevel sync, uint64_t wal_bytes, std::unique_ptr<SessionDb>* out,
                       std::string* error) {
    std::unique_ptr<SessionDb> d(new SessionDb());
    d->path_ = path;
    int rc = sqlite3_open_v2(path.c_str(), &d->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) {
        *error = "cannot open the session database '" + path + "': " +
                 (d->db_ ? sqlite3_errmsg(d->db_) : sqlite3_errstr(rc));
        return Status::runtime_error;
    }
    sqlite3_extended_result_codes(d->db_, 1);
    sqlite3_busy_timeout(d->db_, 5000);
    std::string err;
    auto fail = [&](const char* what) {
        *error = std::string("session database '") + path + "': " + what + ": " + err;
        return Status::runtime_error;
    };
    // auto_vacuum only takes effect before the first table exists.
    if (d->exec("PRAGMA auto_vacuum=INCREMENTAL", &err) != Status::ok) return fail("not usable");
    {
        Stmt s(d->db_, "PRAGMA journal_mode=WAL");
        if (s.step() != SQLITE_ROW) {
            err = s.error();
            return fail("cannot use it");
        }
        if (s.text(0) != "wal") {
            err = "journal mode is " + s.text(0);
            return fail("WAL mode refused");
        }
    }
    {
        // quick_check reads every page: a corrupt file is found now, with a
        // clear message, rather than by some later turn.
        Stmt s(d->db_, "PRAGMA quick_check");
        if (s.step() != SQLITE_ROW) {
            err = s.error();
            return fail("unreadable");
        }
        if (s.text(0) != "ok") {
            err = s.text(0);
            return fail("corrupt (quick_check)");
        }
    }
    const std::string pragmas = std::string("PRAGMA synchronous=") + (sync == SyncLevel::full ? "FULL" : "NORMAL") +
                                ";PRAGMA foreign_keys=ON;PRAGMA journal_size_limit=" + std::to_string(wal_bytes) +
                                ";PRAGMA wal_autocheckpoint=" + std::to_string(std::max<uint64_t>(16, wal_bytes / 4096));
    if (d->exec(pragmas.c_str(), &err) != Status::ok) return fail("settings refused");
    int64_t version = 0;
    {
        Stmt s(d->db_, "PRAGMA user_version");
        if (s.step() != SQLITE_ROW) {
            err = s.error();
            return fail("unreadable");
        }
        version = s.i64(0);
    }
    if (version > kSchemaVersion) {
        err = "schema version " + std::to_string(version) + ", this library knows " + std::to_string(kSchemaVersion);
        return fail("written by a newer library");
    }
    if (version < kSchemaVersion) {
        const std::string create = std::string("BEGIN;") + kSchema + "PRAGMA user_version=" +
                                   std::to_string(kSchemaVersion) + ";COMMIT;";
        if (d->exec(create.c_str(), &err) != Status::ok) {
            d->exec("ROLLBACK", &err);
            return fail("cannot create the schema");
        }
    }
    *out = std::move(d);
    return Status::ok;
}

SessionDb::~SessionDb() {
    if (db_) sqlite3_close_v2(db_);
}

Status SessionDb::load(const std::string& ns, std::vector<StoredSession>* out, std::string* error) {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT id, name, transcript, turns, tokens_held, last_used_ms FROM sessions WHERE namespace=?1 "
           "ORDER BY last_used_ms, id");
    s.bind(1, ns);
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
        StoredSession ss;
        ss.id = s.i64(0);
        ss.name = s.blob(1);
        ss.transcript = s.blob(2);
        ss.turns = static_cast<uint64_t>(std::max<int64_t>(0, s.i64(3)));
        ss.tokens_held = static_cast<int32_t>(s.i64(4));
        ss.last_used_ms = s.i64(5);
        out->push_back(std::move(ss));
    }
    if (rc != SQLITE_DONE) {
        *error = "reading sessions: " + s.error();
        return Status::runtime_error;
    }
    for (auto& ss : *out) {
        Stmt m(db_, "SELECT role, content FROM messages WHERE session=?1 ORDER BY seq");
        m.bind(1, ss.id);
        while ((rc = m.step()) == SQLITE_ROW) ss.messages.push_back({m.blob(0), m.blob(1)});
        if (rc != SQLITE_DONE) {
            *error = "reading messages: " + m.error();
            return Status::runtime_error;
        }
    }
    return Status::ok;
}

Status SessionDb::commit_turn(const TurnWrite& t, int64_t* id_out, std::string* error) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string err;
    auto fail = [&](const std::string& what) {
        *error = what;
        if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK", &err);
        return Status::runtime_error;
    };
    if (exec("BEGIN IMMEDIATE", &err) != Status::ok) return fail("begin: " + err);
    int64_t id = t.id;
    if (id == 0) {
        // A row memory does not know of is stale (a removal that failed):
        // the session as memory has it is the one that goes on.
        Stmt del(db_, "DELETE FROM sessions WHERE namespace=?1 AND name=?2");
        if (!del.bind(1, t.ns).bind(2, t.name).done()) return fail("removing a stale row: " + del.error());
        Stmt ins(db_,
                 "INSERT INTO sessions(namespace, name, transcript, turns, tokens_held, last_used_ms) "
                 "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
        ins.bind(1, t.ns).bind(2, t.name).bind(3, t.transcript).bind(4, static_cast<int64_t>(t.turns));
        ins.bind(5, t.tokens_held).bind(6, t.last_used_ms);
        if (!ins.done()) return fail("inserting the session: " + ins.error());
        id = sqlite3_last_insert_rowid(db_);
    } else {
        Stmt up(db_,
                "UPDATE sessions SET transcript=CASE WHEN ?1 THEN transcript ELSE ?2 END, turns=?3, tokens_held=?4, "
                "last_used_ms=?5 WHERE id=?6");
        up.bind(1, t.chat ? 1 : 0).bind(2, t.transcript).bind(3, static_cast<int64_t>(t.turns));
        up.bind(4, t.tokens_held).bind(5, t.last_used_ms).bind(6, id);
        if (!up.done()) return fail("updating the session: " + up.error());
        if (sqlite3_changes(db_) != 1) return fail("the session's row is gone");
    }
    if (t.drop_messages > 0) {
        Stmt drop(db_,
                  "DELETE FROM messages WHERE session=?1 AND seq IN "
                  "(SELECT seq FROM messages WHERE session=?1 ORDER BY seq LIMIT ?2)");
        if (!drop.bind(1, id).bind(2, static_cast<int64_t>(t.drop_messages)).done())
            return fail("dropping old messages: " + drop.error());
    }
    if (!t.append.empty()) {
        int64_t next = 0;
        {
            Stmt mx(db_, "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session=?1");
            if (mx.bind(1, id).step() != SQLITE_ROW) return fail("reading messages: " + mx.error());
            next = mx.i64(0);
        }
        for (const auto& m : t.append) {
            Stmt ins(db_, "INSERT INTO messages(session, seq, turn, role, content) VALUES(?1, ?2, ?3, ?4, ?5)");
            ins.bind(1, id).bind(2, ++next).bind(3, static_cast<int64_t>(t.turns)).bind(4, m.role).bind(5, m.content);
            if (!ins.done()) return fail("inserting a message: " + ins.error());
        }
    }
    if (exec("COMMIT", &err) != Status::ok) return fail("commit: " + err);
    *id_out = id;
    return Status::ok;
}

Status SessionDb::remove(int64_t id, std::string* error) {
    std::lock_guard<std::mutex> lock(mu_);
    // One statement, so one transaction: the messages go with the row
    // (ON DELETE CASCADE).
    Stmt s(db_, "DELETE FROM sessions WHERE id=?1");
    if (!s.bind(1, id).done()) {
        *error = s.error();
        return Status::runtime_error;
    }
    return Status::ok;
}

Status SessionDb::all_ids(std::vector<int64_t>* out, std::string* error) {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT id FROM sessions");
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out->push_back(s.i64(0));
    if (rc != SQLITE_DONE) {
        *error = s.error();
        return Status::runtime_error;
    }
    return Status::ok;
}

void SessionDb::compact() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string err;
    exec("PRAGMA incremental_vacuum", &err);
    exec("PRAGMA wal_checkpoint(TRUNCATE)", &err);
}

uint64_t SessionDb::disk_bytes() const {
    return file_bytes(path_) + file_bytes(path_ + "-wal") + file_bytes(path_ + "-shm");
}

void SessionDb::set_read_only(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string err;
    exec(on ? "PRAGMA query_only=1" : "PRAGMA query_only=0", &err);
}

}  // namespace wnl
