// A conversation: its history outlives execution-context handles when it is
// named, and is dropped with its handle when it is anonymous.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/chat_format.h"
#include "engine/request.h"

namespace wnl {

struct Session {
    explicit Session(std::string id_, bool named_) : id(std::move(id_)), named(named_) {}

    const std::string id;
    const bool named;
    // Chat mode: the turns so far, without the system prompt.
    std::vector<ChatMessage> messages;
    // Completion mode: the text so far, continued by each compute.
    std::string transcript;
    // Read by status reports while a turn runs, hence atomic.
    std::atomic<uint64_t> turns{0};
    std::atomic<int32_t> tokens_held{0};  // prompt + reply tokens of the last turn
    std::atomic<Clock::rep> last_used_ticks{Clock::now().time_since_epoch().count()};

    Clock::time_point last_used() const { return Clock::time_point(Clock::duration(last_used_ticks.load())); }
    void touch() { last_used_ticks = Clock::now().time_since_epoch().count(); }
    // Two handles attached to one named session must not run it at once.
    std::atomic<bool> in_use{false};

    // Kept in a session store (durable_store.h): its row there, 0 until its
    // first turn is stored; and whether it has since been removed from the
    // store (evicted or idle), so that nothing of it is written again.
    std::atomic<int64_t> store_id{0};
    std::atomic<bool> removed{false};
};

struct SessionLimits {
    size_t max_sessions = 128;
    int64_t idle_timeout_ms = 0;  // 0 = never
    bool auto_cleanup = true;
};

// The named sessions of one backend context, or of one namespace of a
// session store (shared by the backend contexts that name it).
class SessionStore {
public:
    // Called, outside the store's lock, with the sessions it has just
    // dropped (evicted or idle): the session store removes them from disk.
    using DropHook = std::function<void(const std::vector<std::shared_ptr<Session>>&)>;

    explicit SessionStore(SessionLimits limits, DropHook on_drop = nullptr)
        : limits_(limits), on_drop_(std::move(on_drop)) {}

    // The named session, created if new. Past max_sessions the least
    // recently used one is dropped, and its id added to *dropped.
    std::shared_ptr<Session> attach(const std::string& id, std::vector<std::string>* dropped);
    // Drops sessions idle past idle_timeout_ms when auto_cleanup is on;
    // returns their ids.
    std::vector<std::string> drop_idle(Clock::time_point now);
    size_t size() const;
    std::vector<std::shared_ptr<Session>> list() const;
    const SessionLimits& limits() const { return limits_; }

    // A session read back from a session store.
    void adopt(std::shared_ptr<Session> s);
    // Drops idle sessions and, past max_sessions, the least recently used
    // (after sessions were adopted); returns their ids.
    std::vector<std::string> enforce_limits(Clock::time_point now);
    // Drops the least recently used session that is not running and is not
    // `keep` (to make room in a full store); its id, or empty if none.
    std::string evict_lru(const Session* keep);

private:
    void dropped(const std::vector<std::shared_ptr<Session>>& sessions) const;
    // Under mu_: drops sessions past max_sessions to leave room for `room` more.
    void evict_over(size_t room, std::vector<std::shared_ptr<Session>>* out);

    SessionLimits limits_;
    DropHook on_drop_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace wnl
