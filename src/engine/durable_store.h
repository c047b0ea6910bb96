// Durable sessions (docs/sessions.md): a session store is a directory that
// holds the text history of named sessions (session_db.h, SQLite) and
// their KV state (kv_file.h, one file each, written by kv_writer.h). A
// process opens a directory once (a lock file keeps other processes out)
// and shares it between the backend contexts that name it; a namespace is
// one tenant's named sessions in it, and never sees another's.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/kv_sink.h"
#include "engine/session.h"
#include "engine/session_db.h"
#include "engine/status.h"

namespace wnl {

struct StoreSettings {
    std::string dir;
    std::string ns = "default";
    SyncLevel sync = SyncLevel::normal;
    uint64_t max_bytes = 1ull << 30;  // disk bound; 0 = none
};

struct StoreReport {
    std::string dir, ns, sync;
    uint64_t bytes = 0, limit_bytes = 0, kv_files = 0, kv_bytes = 0, writer_queued_bytes = 0;
    uint64_t turns_stored = 0, turn_failures = 0, kv_written = 0, kv_write_failures = 0, kv_skipped = 0;
    uint64_t kv_loaded = 0, kv_rejected = 0, sessions_removed = 0;
};

class DurableStore;

// One namespace of a store: its sessions in memory (a SessionStore shared
// by every backend context that names it) mirrored on disk.
class StoreNamespace {
public:
    // Opens the directory (first use in the process: creates it, takes its
    // lock, checks the database, clears orphaned files) and reads the
    // namespace's sessions back. busy when another process holds the store;
    // runtime_error (with *error) when it cannot be used.
    static Status open(const StoreSettings& s, const SessionLimits& limits, std::shared_ptr<StoreNamespace>* out,
                       std::string* error);
    ~StoreNamespace();
    StoreNamespace(const StoreNamespace&) = delete;
    StoreNamespace& operator=(const StoreNamespace&) = delete;

    const std::shared_ptr<SessionStore>& sessions() const { return sessions_; }
    const std::string& name() const { return ns_; }
    // Decode loops know its sessions under this prefix (the same in every
    // backend context that shares the namespace).
    const std::string& key_prefix() const { return prefix_; }

    // Stores the turn: all of it or none, before it is acknowledged. Makes
    // room first when the store is over its bound (KV files of the least
    // recently used sessions, then those sessions themselves, whose ids go
    // to *evicted). runtime_error (with *error) when it is not stored.
    // A session already removed from the store is not stored again.
    Status commit_turn(Session& s, TurnWrite t, std::vector<std::string>* evicted, std::string* error);
    // Where the session's KV state is written when it leaves a loop's memory.
    std::shared_ptr<KvSink> kv_sink(const std::shared_ptr<Session>& s);
    // Reads the session's KV file when it matches `identity`; a file that
    // does not (another model, truncated, corrupt) is logged and removed.
    bool load_kv(const Session& s, const std::string& identity, uint64_t max_bytes, std::vector<llama_token>* tokens,
                 std::shared_ptr<const std::vector<uint8_t>>* data);
    // Waits, up to `timeout`, for the KV files queued so far.
    bool flush(std::chrono::milliseconds timeout);

    // Backend contexts using the namespace; the last to leave saves KV.
    void hold();
    // Returns how many still hold it.
    int release();

    StoreReport report() const;
    // Fault injection for tests: refuse every database write from now on.
    void fail_writes_for_test(bool on);

private:
    friend class DurableStore;
    StoreNamespace() = default;
    void removed(const std::vector<std::shared_ptr<Session>>& sessions);

    std::shared_ptr<DurableStore> store_;
    std::string ns_, prefix_;
    std::shared_ptr<SessionStore> sessions_;
    std::mutex holders_mu_;
    int holders_ = 0;
};

}  // namespace wnl
