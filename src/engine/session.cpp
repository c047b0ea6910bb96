#include "engine/session.h"

#include "engine/log.h"

namespace wnl {

void SessionStore::evict_over(size_t room, std::vector<std::shared_ptr<Session>>* out) {
    while (!sessions_.empty() && sessions_.size() + room > limits_.max_sessions) {
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
        out->push_back(lru->second);
        sessions_.erase(lru);
    }
}

void SessionStore::dropped(const std::vector<std::shared_ptr<Session>>& sessions) const {
    if (on_drop_ && !sessions.empty()) on_drop_(sessions);
}

std::shared_ptr<Session> SessionStore::attach(const std::string& id, std::vector<std::string>* dropped_ids) {
    std::vector<std::shared_ptr<Session>> gone;
    std::shared_ptr<Session> s;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = sessions_.find(id);
        if (it != sessions_.end()) {
            it->second->touch();
            return it->second;
        }
        evict_over(1, &gone);
        s = std::make_shared<Session>(id, true);
        sessions_.emplace(id, s);
        log(LogLevel::debug, "session", "session created", {{"session", id}});
    }
    for (const auto& g : gone) dropped_ids->push_back(g->id);
    dropped(gone);
    return s;
}

std::vector<std::string> SessionStore::drop_idle(Clock::time_point now) {
    std::vector<std::string> ids;
    if (!limits_.auto_cleanup || limits_.idle_timeout_ms <= 0) return ids;
    std::vector<std::shared_ptr<Session>> gone;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = sessions_.begin(); it != sessions_.end();) {
            auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second->last_used()).count();
            // A session an open handle holds is not idle-dropped: the handle
            // would carry on with a history the store no longer knows.
            if (idle >= limits_.idle_timeout_ms && !it->second->in_use && it->second.use_count() == 1) {
                log(LogLevel::info, "session", "idle session dropped", {{"session", it->first}, {"idle_ms", idle}});
                gone.push_back(it->second);
                it = sessions_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (const auto& g : gone) ids.push_back(g->id);
    dropped(gone);
    return ids;
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

void SessionStore::adopt(std::shared_ptr<Session> s) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string id = s->id;
    sessions_[id] = std::move(s);
}

std::vector<std::string> SessionStore::enforce_limits(Clock::time_point now) {
    std::vector<std::string> ids = drop_idle(now);
    std::vector<std::shared_ptr<Session>> gone;
    {
        std::lock_guard<std::mutex> lock(mu_);
        evict_over(0, &gone);
    }
    for (const auto& g : gone) ids.push_back(g->id);
    dropped(gone);
    return ids;
}

std::string SessionStore::evict_lru(const Session* keep) {
    std::shared_ptr<Session> victim;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto lru = sessions_.end();
        for (int pass = 0; pass < 2 && lru == sessions_.end(); ++pass) {
            for (auto i = sessions_.begin(); i != sessions_.end(); ++i) {
                const Session& s = *i->second;
                if (&s == keep || s.in_use || (pass == 0 && i->second.use_count() > 1)) continue;
                if (lru == sessions_.end() || s.last_used() < lru->second->last_used()) lru = i;
            }
        }
        if (lru == sessions_.end()) return {};
        log(LogLevel::warn, "session", "session evicted (session store full)", {{"session", lru->first}});
        victim = lru->second;
        sessions_.erase(lru);
    }
    dropped({victim});
    return victim->id;
}

}  // namespace wnl
