// A conversation: its history outlives execution-context handles when it is
// named, and is dropped with its handle when it is anonymous.
#pragma once

#include <atomic>
#include <cstdint>
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
};

struct SessionLimits {
    size_t max_sessions = 128;
    int64_t idle_timeout_ms = 0;  // 0 = never
    bool auto_cleanup = true;
};

// The named sessions of one backend context.
class SessionStore {
public:
    explicit SessionStore(SessionLimits limits) : limits_(limits) {}

    // The named session, created if new. Past max_sessions the least
    // recently used one is dropped, and its id added to *dropped.
    std::shared_ptr<Session> attach(const std::string& id, std::vector<std::string>* dropped);
    // Drops sessions idle past idle_timeout_ms when auto_cleanup is on;
    // returns their ids.
    std::vector<std::string> drop_idle(Clock::time_point now);
    size_t size() const;
    std::vector<std::shared_ptr<Session>> list() const;

private:
    SessionLimits limits_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace wnl
