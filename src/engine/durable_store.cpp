// A namespace of a session store: its sessions' turns into the database
// before they are acknowledged, their KV state to and from files, and their
// removal when they are evicted or go idle.
#include "engine/durable_store.h"

#include "engine/log.h"
#include "engine/store_dir.h"

namespace wnl {

namespace {

std::string owner_of(const std::string& ns, const std::string& session) { return ns + "\n" + session; }

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class SessionKvSink : public KvSink {
public:
    SessionKvSink(std::weak_ptr<DurableStore> store, std::weak_ptr<Session> session, std::string owner)
        : store_(std::move(store)), session_(std::move(session)), owner_(std::move(owner)) {}

    bool save(const std::string& identity, const std::vector<llama_token>& tokens,
              std::shared_ptr<const std::vector<uint8_t>> data) override {
        auto store = store_.lock();
        if (!store) return false;
        auto s = session_.lock();
        if (!s || s->removed) return false;
        return store->queue_kv(session_, owner_, identity, tokens, std::move(data));
    }

private:
    std::weak_ptr<DurableStore> store_;
    std::weak_ptr<Session> session_;
    std::string owner_;
};

}  // namespace

Status StoreNamespace::open(const StoreSettings& s, const SessionLimits& limits, std::shared_ptr<StoreNamespace>* out,
                            std::string* error) {
    std::shared_ptr<DurableStore> store;
    Status st = DurableStore::open(s, &store, error);
    if (st != Status::ok) return st;
    return store->open_namespace(s.ns, limits, out, error);
}

StoreNamespace::~StoreNamespace() = default;

void StoreNamespace::removed(const std::vector<std::shared_ptr<Session>>& gone) {
    bool any = false;
    for (const auto& s : gone) {
        store_->forget_kv(*s);
        const int64_t id = s->store_id;
        if (id == 0) continue;
        std::string err;
        if (store_->db().remove(id, &err) != Status::ok) {
            // Found again, and removed, when the store is next opened.
            log(LogLevel::error, "store", "removing a session from the store failed",
                {{"session", s->id}, {"error", err}});
            continue;
        }
        store_->counters.sessions_removed++;
        any = true;
    }
    if (any && store_->bounded()) store_->db().compact();  // the disk bound counts the file
}

Status StoreNamespace::commit_turn(Session& s, TurnWrite t, std::vector<std::string>* evicted, std::string* error) {
    if (s.removed) {
        log(LogLevel::debug, "store", "session no longer in the store; turn kept in memory only", {{"session", s.id}});
        return Status::ok;
    }
    t.id = s.store_id;
    t.ns = ns_;
    t.name = s.id;
    t.last_used_ms = wall_ms();
    uint64_t bytes = 512 + (t.chat ? 0 : t.transcript.size());
    for (const auto& m : t.append) bytes += 64 + m.role.size() + m.content.size();
    // Over the bound: the least recently used KV files go first, then the
    // least recently used sessions themselves.
    while (!store_->room_for_text(bytes)) {
        std::string id = sessions_->evict_lru(&s);
        if (id.empty()) {
            store_->counters.turn_failures++;
            *error = "the session store is full (session_store_bytes " +
                     std::to_string(store_->settings().max_bytes) + ") and no other session can be removed";
            return Status::runtime_error;
        }
        evicted->push_back(id);
    }
    int64_t id = 0;
    std::string err;
    if (store_->db().commit_turn(t, &id, &err) != Status::ok) {
        store_->counters.turn_failures++;
        *error = "storing the turn failed: " + err;
        return Status::runtime_error;
    }
    s.store_id = id;
    store_->counters.turns_stored++;
    return Status::ok;
}

std::shared_ptr<KvSink> StoreNamespace::kv_sink(const std::shared_ptr<Session>& s) {
    return std::make_shared<SessionKvSink>(store_, s, owner_of(ns_, s->id));
}

bool StoreNamespace::load_kv(const Session& s, const std::string& identity, uint64_t max_bytes,
                             std::vector<llama_token>* tokens, std::shared_ptr<const std::vector<uint8_t>>* data) {
    const int64_t id = s.store_id;
    if (id == 0 || s.removed) return false;
    KvFile f;
    std::string detail;
    const KvRead r = store_->read_kv(id, identity, owner_of(ns_, s.id), max_bytes, &f, &detail);
    if (r == KvRead::missing) return false;
    if (r != KvRead::ok) {
        log(LogLevel::warn, "store", "stored KV state ignored; the session prefills from its history",
            {{"session", s.id}, {"reason", kv_read_name(r)}, {"detail", detail}});
        return false;
    }
    *tokens = std::move(f.tokens);
    *data = std::move(f.data);
    log(LogLevel::debug, "store", "KV state read from the store", {{"session", s.id}, {"tokens", tokens->size()}});
    return true;
}

bool StoreNamespace::flush(std::chrono::milliseconds timeout) { return store_->flush(timeout); }

void StoreNamespace::hold() {
    std::lock_guard<std::mutex> lock(holders_mu_);
    ++holders_;
}

int StoreNamespace::release() {
    std::lock_guard<std::mutex> lock(holders_mu_);
    return --holders_;
}

StoreReport StoreNamespace::report() const {
    StoreReport r;
    store_->fill(&r);
    r.ns = ns_;
    return r;
}

void StoreNamespace::fail_writes_for_test(bool on) { store_->db().set_read_only(on); }

}  // namespace wnl
