#include "engine/state_cache.h"

#include "engine/log.h"

namespace wnl {

void StateCache::put(CachedState state) {
    erase(state.key);
    const uint64_t size = state.bytes();
    if (size == 0 || size > limit_) return;
    shrink_to(limit_ - size);
    bytes_ += size;
    lru_.push_front(std::move(state));
    {
        std::lock_guard<std::mutex> lock(index_mu_);
        index_[lru_.front().key] = lru_.begin();
    }
    publish();
}

const CachedState* StateCache::find(const std::string& key) const {
    auto it = index_.find(key);  // the loop thread is the only writer
    return it == index_.end() ? nullptr : &*it->second;
}

bool StateCache::contains(const std::string& key) const {
    std::lock_guard<std::mutex> lock(index_mu_);
    return index_.count(key) > 0;
}

CachedState StateCache::take(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return {};
    CachedState s = std::move(*it->second);
    bytes_ -= s.bytes();
    lru_.erase(it->second);
    {
        std::lock_guard<std::mutex> lock(index_mu_);
        index_.erase(it);
    }
    publish();
    return s;
}

void StateCache::erase(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    bytes_ -= it->second->bytes();
    lru_.erase(it->second);
    {
        std::lock_guard<std::mutex> lock(index_mu_);
        index_.erase(it);
    }
    publish();
}

size_t StateCache::shrink_to(uint64_t bytes) {
    size_t dropped = 0;
    while (bytes_ > bytes && !lru_.empty()) {
        CachedState& victim = lru_.back();
        log(LogLevel::info, "memory", "cached session state evicted",
            {{"session", victim.key}, {"bytes", victim.bytes()}, {"tokens", victim.tokens.size()}});
        if (on_evict_) on_evict_(victim);
        bytes_ -= victim.bytes();
        {
            std::lock_guard<std::mutex> lock(index_mu_);
            index_.erase(victim.key);
        }
        lru_.pop_back();
        ++dropped;
        evictions_++;
    }
    publish();
    return dropped;
}

void StateCache::for_each(const std::function<void(CachedState&)>& f) {
    for (auto& s : lru_) f(s);
}

void StateCache::publish() {
    bytes_published_ = bytes_;
    entries_published_ = lru_.size();
}

}  // namespace wnl
