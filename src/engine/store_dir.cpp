#include "engine/store_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <set>

#include "engine/log.h"

namespace wnl {

namespace {

// Stores open in this process, by canonical directory. Never destroyed: a
// host that exits without deinit_backend runs static destructors while
// other threads may still use a store.
// Recursive: a store that fails to open is destroyed while open() holds it.
std::recursive_mutex& registry_mu() {
    static auto* mu = new std::recursive_mutex();
    return *mu;
}
std::map<std::string, std::weak_ptr<DurableStore>>& registry() {
    static auto* stores = new std::map<std::string, std::weak_ptr<DurableStore>>();
    return *stores;
}

// The writer holds at most this much state waiting for the disk (and one
// state of any size when it has nothing else).
constexpr uint64_t kWriterBytes = 512ull << 20;

Status make_dir(const std::string& dir, std::string* error) {
    if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::ok;
        *error = "'" + dir + "' exists and is not a directory";
        return Status::runtime_error;
    }
    *error = "cannot create '" + dir + "': " + std::strerror(errno);
    return Status::runtime_error;
}

}  // namespace

Status DurableStore::open(const StoreSettings& s, std::shared_ptr<DurableStore>* out, std::string* error) {
    std::string dir = s.dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    Status st = make_dir(dir, error);
    if (st != Status::ok) return st;
    char real[PATH_MAX];
    if (!::realpath(dir.c_str(), real)) {
        *error = "cannot resolve '" + dir + "': " + std::strerror(errno);
        return Status::runtime_error;
    }
    std::lock_guard<std::recursive_mutex> lock(registry_mu());
    if (auto open = registry()[real].lock()) {
        const StoreSettings& have = open->settings();
        if (have.sync != s.sync || have.max_bytes != s.max_bytes) {
            log(LogLevel::warn, "store", "session store already open with other settings; those stay",
                {{"dir", std::string(real)}, {"session_store_bytes", have.max_bytes},
                 {"session_sync", have.sync == SyncLevel::full ? "full" : "normal"}});
        }
        *out = std::move(open);
        return Status::ok;
    }
    std::shared_ptr<DurableStore> store(new DurableStore());
    store->settings_ = s;
    store->settings_.dir = real;
    st = store->init(error);
    if (st != Status::ok) return st;
    registry()[real] = store;
    *out = std::move(store);
    return Status::ok;
}

Status DurableStore::init(std::string* error) {
    const std::string& dir = settings_.dir;
    const std::string lock_path = dir + "/LOCK";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) {
        *error = "cannot open '" + lock_path + "': " + std::strerror(errno);
        return Status::runtime_error;
    }
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        *error = "the session store '" + dir + "' is in use by another process";
        return errno == EWOULDBLOCK ? Status::busy : Status::runtime_error;
    }
    Status st = make_dir(dir + "/kv", error);
    if (st != Status::ok) return st;
    // The write-ahead log stays within a sixteenth of the bound (64 KiB to
    // 4 MiB) between checkpoints; the bound keeps room for it.
    wal_bytes_ = bounded() ? std::clamp<uint64_t>(settings_.max_bytes / 16, 64 << 10, 4 << 20) : 4 << 20;
    st = SessionDb::open(dir + "/sessions.db", settings_.sync, wal_bytes_, &db_, error);
    if (st != Status::ok) return st;
    scan_kv_dir();
    writer_ = std::make_unique<KvWriter>(kWriterBytes);
    log(LogLevel::info, "store", "session store opened",
        {{"dir", dir}, {"sync", settings_.sync == SyncLevel::full ? "full" : "normal"},
         {"limit_bytes", settings_.max_bytes}, {"kv_files", kv_files_.size()}, {"bytes", usage_locked()}});
    return Status::ok;
}

DurableStore::~DurableStore() {
    // Under the registry's lock, so that opening the directory again waits
    // for this lock file to be let go instead of finding it held.
    std::lock_guard<std::recursive_mutex> lock(registry_mu());
    if (writer_ && !writer_->flush(std::chrono::seconds(30))) {
        log(LogLevel::warn, "store", "session store closed with KV writes still queued", {{"dir", settings_.dir}});
    }
    writer_.reset();
    db_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
    auto it = registry().find(settings_.dir);
    if (it != registry().end() && it->second.expired()) registry().erase(it);
}

// Temporary files are writes a crash cut short; a file whose session is
// not in the database was left by a removal cut short.
void DurableStore::scan_kv_dir() {
    std::vector<int64_t> ids;
    std::string err;
    if (db_->all_ids(&ids, &err) != Status::ok) {
        log(LogLevel::warn, "store", "cannot list stored sessions; KV files kept as they are", {{"error", err}});
        return;
    }
    const std::set<int64_t> known(ids.begin(), ids.end());
    const std::string kv = settings_.dir + "/kv";
    DIR* d = ::opendir(kv.c_str());
    if (!d) return;
    std::vector<std::pair<int64_t, std::pair<uint64_t, int64_t>>> found;  // id, size, mtime
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        const std::string path = kv + "/" + name;
        char* end = nullptr;
        const long long id = std::strtoll(name.c_str(), &end, 10);
        const bool kv_name = end != name.c_str() && std::string(end) == ".kv" && id > 0;
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
            ::unlink(path.c_str());
            continue;
        }
        if (!kv_name) continue;
        if (!known.count(id)) {
            log(LogLevel::info, "store", "orphaned KV file removed", {{"file", path}});
            ::unlink(path.c_str());
            continue;
        }
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) {
            found.push_back({id, {static_cast<uint64_t>(st.st_size),
                                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec}});
        }
    }
    ::closedir(d);
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.second.second < b.second.second; });
    std::lock_guard<std::mutex> lock(files_mu_);
    for (const auto& [id, f] : found) {
        kv_files_[id] = {f.first, ++tick_};
        kv_bytes_ += f.first;
    }
}

Status DurableStore::open_namespace(const std::string& ns, const SessionLimits& limits,
                                    std::shared_ptr<StoreNamespace>* out, std::string* error) {
    std::lock_guard<std::mutex> lock(ns_mu_);
    if (auto open = namespaces_[ns].lock()) {
        *out = std::move(open);
        return Status::ok;
    }
    static std::atomic<uint64_t> opened{0};
    std::shared_ptr<StoreNamespace> n(new StoreNamespace());
    n->store_ = shared_from_this();
    n->ns_ = ns;
    n->prefix_ = "ns" + std::to_string(++opened) + "/";
    StoreNamespace* raw = n.get();  // the SessionStore is the namespace's own
    n->sessions_ = std::make_shared<SessionStore>(
        limits, [raw](const std::vector<std::shared_ptr<Session>>& gone) { raw->removed(gone); });

    std::vector<StoredSession> stored;
    Status st = db_->load(ns, &stored, error);
    if (st != Status::ok) {
        *error = "session database '" + db_->path() + "': " + *error;
        return st;
    }
    const int64_t wall_now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const auto now = Clock::now();
    for (auto& ss : stored) {
        auto s = std::make_shared<Session>(ss.name, true);
        s->messages = std::move(ss.messages);
        s->transcript = std::move(ss.transcript);
        s->turns = ss.turns;
        s->tokens_held = ss.tokens_held;
        s->store_id = ss.id;
        // Idle time goes on across the restart.
        const auto idle = std::chrono::milliseconds(std::max<int64_t>(0, wall_now - ss.last_used_ms));
        s->last_used_ticks = (now - idle).time_since_epoch().count();
        n->sessions_->adopt(std::move(s));
    }
    const auto dropped = n->sessions_->enforce_limits(now);
    log(LogLevel::info, "store", "session namespace opened",
        {{"dir", settings_.dir}, {"namespace", ns}, {"sessions", n->sessions_->size()}, {"dropped", dropped.size()}});
    namespaces_[ns] = n;
    *out = std::move(n);
    return Status::ok;
}

std::string DurableStore::kv_path(int64_t id) const { return settings_.dir + "/kv/" + std::to_string(id) + ".kv"; }

uint64_t DurableStore::budget() const {
    return settings_.max_bytes > 2 * wal_bytes_ ? settings_.max_bytes - 2 * wal_bytes_ : 0;
}

uint64_t DurableStore::usage_locked() const { return db_->disk_bytes() + kv_bytes_ + reserved_; }

bool DurableStore::remove_lru_kv_locked(int64_t except) {
    auto victim = kv_files_.end();
    for (auto it = kv_files_.begin(); it != kv_files_.end(); ++it) {
        if (it->first == except) continue;
        if (victim == kv_files_.end() || it->second.tick < victim->second.tick) victim = it;
    }
    if (victim == kv_files_.end()) return false;
    log(LogLevel::info, "store", "KV file removed to stay within session_store_bytes",
        {{"file", kv_path(victim->first)}, {"bytes", victim->second.bytes}});
    unlink_kv_locked(victim->first);
    return true;
}

void DurableStore::unlink_kv_locked(int64_t id) {
    ::unlink(kv_path(id).c_str());
    auto it = kv_files_.find(id);
    if (it == kv_files_.end()) return;
    kv_bytes_ -= it->second.bytes;
    kv_files_.erase(it);
}

bool DurableStore::room_for_text(uint64_t bytes) {
    if (!bounded()) return true;
    std::lock_guard<std::mutex> lock(files_mu_);
    while (usage_locked() + bytes > budget()) {
        if (!remove_lru_kv_locked(0)) return false;
    }
    return true;
}

bool DurableStore::queue_kv(std::weak_ptr<Session> session, std::string owner, std::string identity,
                            std::vector<llama_token> tokens, std::shared_ptr<const std::vector<uint8_t>> data) {
    KvFile f;
    f.identity = std::move(identity);
    f.owner = std::move(owner);
    f.tokens = std::move(tokens);
    f.data = std::move(data);
    const uint64_t bytes = kv_file_bytes(f);
    // The job runs on the writer, which this store joins before it goes:
    // `this` outlives it.
    const bool queued = writer_->submit(bytes, [this, session = std::move(session), f = std::move(f)] {
        write_job(session, f);
    });
    if (!queued) {
        counters.kv_skipped++;
        log(LogLevel::info, "store", "KV state not written: the writer is behind", {{"bytes", bytes}});
    }
    return queued;
}

void DurableStore::write_job(const std::weak_ptr<Session>& session, const KvFile& f) {
    auto s = session.lock();
    if (!s || s->removed) return;
    const int64_t id = s->store_id;
    if (id == 0) return;  // no turn of it is stored yet: nothing to go with
    const uint64_t bytes = kv_file_bytes(f);
    {
        std::lock_guard<std::mutex> lock(files_mu_);
        // While it is written the old file is still there: both must fit.
        while (bounded() && usage_locked() + bytes > budget()) {
            if (!remove_lru_kv_locked(-1)) {
                counters.kv_skipped++;
                log(LogLevel::info, "store", "KV state not written: it does not fit within session_store_bytes",
                    {{"session", s->id}, {"bytes", bytes}, {"limit_bytes", settings_.max_bytes}});
                return;
            }
        }
        reserved_ += bytes;
    }
    const std::string path = kv_path(id);
    // Two writes of one session may run at once (the writer thread's and a
    // flushing caller's): each its own temporary file.
    static std::atomic<uint64_t> writes{0};
    const std::string tmp = path + "." + std::to_string(++writes) + ".tmp";
    const bool sync = settings_.sync == SyncLevel::full;
    std::string err;
    Status st = write_kv_temp(tmp, f, sync, &err);
    std::lock_guard<std::mutex> lock(files_mu_);
    reserved_ -= bytes;
    if (st != Status::ok) {
        counters.kv_write_failures++;
        log(LogLevel::warn, "store", "KV file not written", {{"session", s->id}, {"error", err}});
        return;
    }
    if (s->removed) {  // removed while it was being written
        ::unlink(tmp.c_str());
        return;
    }
    st = publish_kv_file(tmp, path, sync, &err);
    if (st != Status::ok) {
        counters.kv_write_failures++;
        log(LogLevel::warn, "store", "KV file not written", {{"session", s->id}, {"error", err}});
        return;
    }
    auto it = kv_files_.find(id);
    if (it != kv_files_.end()) kv_bytes_ -= it->second.bytes;
    kv_files_[id] = {bytes, ++tick_};
    kv_bytes_ += bytes;
    counters.kv_written++;
    log(LogLevel::debug, "store", "KV file written",
        {{"session", s->id}, {"tokens", f.tokens.size()}, {"bytes", bytes}});
}

KvRead DurableStore::read_kv(int64_t id, const std::string& identity, const std::string& owner, uint64_t max_bytes,
                             KvFile* out, std::string* detail) {
    const KvRead r = read_kv_file(kv_path(id), identity, owner, max_bytes, out, detail);
    if (r == KvRead::ok) {
        counters.kv_loaded++;
    } else if (r != KvRead::missing) {
        counters.kv_rejected++;
        std::lock_guard<std::mutex> lock(files_mu_);
        unlink_kv_locked(id);
    }
    return r;
}

void DurableStore::forget_kv(Session& s) {
    std::lock_guard<std::mutex> lock(files_mu_);
    s.removed = true;
    if (s.store_id != 0) unlink_kv_locked(s.store_id);
}

void DurableStore::fill(StoreReport* r) const {
    r->dir = settings_.dir;
    r->sync = settings_.sync == SyncLevel::full ? "full" : "normal";
    r->limit_bytes = settings_.max_bytes;
    r->writer_queued_bytes = writer_->queued_bytes();
    {
        std::lock_guard<std::mutex> lock(files_mu_);
        r->bytes = usage_locked();
        r->kv_files = kv_files_.size();
        r->kv_bytes = kv_bytes_;
    }
    r->turns_stored = counters.turns_stored;
    r->turn_failures = counters.turn_failures;
    r->kv_written = counters.kv_written;
    r->kv_write_failures = counters.kv_write_failures;
    r->kv_skipped = counters.kv_skipped;
    r->kv_loaded = counters.kv_loaded;
    r->kv_rejected = counters.kv_rejected;
    r->sessions_removed = counters.sessions_removed;
}

}  // namespace wnl
