#include "engine/session.h"

#include "engine/log.h"

namespace wnl {

std::shared_ptr<Session> SessionStore::attach(const std::string& id, std::vector<std::string>* dropped) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
        it->second->touch();
        return it->second;
    }
    while (!sessions_.empty() && sessions_.size() >= limits_.max_sessions) {
        // The least recently used session that no open handle holds; if every
        // one is held, the least recently used of all.
        auto lru = sessions_.end();
        for (int pass = 0; pass < 2 && lru == sessions_.end(); ++pass) {
            for (auto i = sessions_.begin(); i != sessions_.end(); ++i) {
                if (pass == 0 && i->second.use_count() > 1) continue;
                if (lru == sessions_.end() || i->second->last_used() < lru->second->last_used()) lru = i;
            }
        }
        log(LogLevel::info, "session", "session evicted (max_sessions reached)",
            {{"session", lru->first}, {"max_sessions", limits_.max_sessions}});
        dropped->push_back(lru->first);
        sessions_.erase(lru);
    }
    auto s = std::make_shared<Session>(id, true);
    sessions_.emplace(id, s);
    log(LogLevel::debug, "session", "session created", {{"session", id}});
    return s;
}

std::vector<std::string> SessionStore::drop_idle(Clock::time_point now) {
    std::vector<std::string> dropped;
    if (!limits_.auto_cleanup || limits_.idle_timeout_ms <= 0) return dropped;
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second->last_used()).count();
        // A session an open handle holds is not idle-dropped: the handle
        // would carry on with a history the store no longer knows.
        if (idle >= limits_.idle_timeout_ms && !it->second->in_use && it->second.use_count() == 1) {
            log(LogLevel::info, "session", "idle session dropped", {{"session", it->first}, {"idle_ms", idle}});
            dropped.push_back(it->first);
            it = sessions_.erase(it);
        } else {
            ++it;
        }
    }
    return dropped;
}

size_t SessionStore::size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sessions_.size();
}

std::vector<std::shared_ptr<Session>> SessionStore::list() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<Session>> out;
    for (const auto& [id, s] : sessions_) out.push_back(s);
    return out;
}

}  // namespace wnl
