// A session store's directory, opened once per process and shared: the lock
// file that keeps other processes out, the database, the KV files with the
// disk bound over all of it, and the writer thread (docs/sessions.md §3-4).
//
//   <dir>/LOCK          flock'd while a process has the store open
//   <dir>/sessions.db   SQLite (+ -wal, -shm): histories (session_db.h)
//   <dir>/kv/<id>.kv    one session's KV state (kv_file.h), <id> its row
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/durable_store.h"
#include "engine/kv_file.h"
#include "engine/kv_writer.h"
#include "engine/session_db.h"

namespace wnl {

class DurableStore : public std::enable_shared_from_this<DurableStore> {
public:
    // The process's store for s.dir: opened on first use, shared after.
    static Status open(const StoreSettings& s, std::shared_ptr<DurableStore>* out, std::string* error);
    ~DurableStore();
    DurableStore(const DurableStore&) = delete;
    DurableStore& operator=(const DurableStore&) = delete;

    // The namespace's sessions, shared by every backend context naming it.
    Status open_namespace(const std::string& ns, const SessionLimits& limits, std::shared_ptr<StoreNamespace>* out,
                          std::string* error);

    SessionDb& db() { return *db_; }
    const StoreSettings& settings() const { return settings_; }
    bool bounded() const { return settings_.max_bytes > 0; }

    // Makes room for `bytes` more in the database by removing KV files, the
    // least recently written first; false when that is not enough.
    bool room_for_text(uint64_t bytes);
    // Hands a session's state to the writer (see KvSink::save).
    bool queue_kv(std::weak_ptr<Session> session, std::string owner, std::string identity,
                  std::vector<llama_token> tokens, std::shared_ptr<const std::vector<uint8_t>> data);
    // Reads and checks a session's KV file; a bad one is removed.
    KvRead read_kv(int64_t id, const std::string& identity, const std::string& owner, uint64_t max_bytes, KvFile* out,
                   std::string* detail);
    // The session leaves the store: nothing of it is written again, and
    // its KV file goes.
    void forget_kv(Session& s);
    bool flush(std::chrono::milliseconds timeout) { return writer_->flush(timeout); }

    void fill(StoreReport* r) const;
    struct Counters {
        std::atomic<uint64_t> turns_stored{0}, turn_failures{0}, kv_written{0}, kv_write_failures{0}, kv_skipped{0},
            kv_loaded{0}, kv_rejected{0}, sessions_removed{0};
    };
    Counters counters;

private:
    DurableStore() = default;
    Status init(std::string* error);
    void scan_kv_dir();
    std::string kv_path(int64_t id) const;
    uint64_t budget() const;
    // Under files_mu_.
    uint64_t usage_locked() const;
    bool remove_lru_kv_locked(int64_t except);
    void unlink_kv_locked(int64_t id);
    void write_job(const std::weak_ptr<Session>& session, const KvFile& f);

    StoreSettings settings_;
    uint64_t wal_bytes_ = 0;
    int lock_fd_ = -1;
    std::unique_ptr<SessionDb> db_;
    std::unique_ptr<KvWriter> writer_;

    struct KvEntry {
        uint64_t bytes;
        uint64_t tick;  // when written: the least recent goes first
    };
    mutable std::mutex files_mu_;
    std::map<int64_t, KvEntry> kv_files_;
    uint64_t kv_bytes_ = 0, reserved_ = 0, tick_ = 0;

    std::mutex ns_mu_;
    std::map<std::string, std::weak_ptr<StoreNamespace>> namespaces_;
};

}  // namespace wnl
