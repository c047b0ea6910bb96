// Sessions' KV state kept in host RAM after their slot went to another
// session, so that their next turn restores it instead of prefilling again.
// Bounded in bytes; the least recently used state goes first. Used only by
// the decode loop's thread; its size is published for status reports.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "llama.h"

namespace wnl {

struct CachedState {
    std::string key;
    std::string kv_tenant;  // who wrote it
    std::vector<llama_token> tokens;  // what the state holds
    std::vector<uint8_t> data;  // llama_state_seq_get_data
};

class StateCache {
public:
    explicit StateCache(uint64_t limit_bytes) : limit_(limit_bytes) {}

    // Keeps the state, dropping the least recently used ones to stay within
    // the limit. A state larger than the limit is not kept.
    void put(CachedState state);
    // The session's state, or null.
    const CachedState* find(const std::string& key) const;
    // Removes and returns the session's state (empty key when absent).
    CachedState take(const std::string& key);
    void erase(const std::string& key);
    // Drops least recently used states until at most `bytes` remain.
    size_t shrink_to(uint64_t bytes);

    uint64_t bytes() const { return bytes_published_.load(); }
    uint64_t entries() const { return entries_published_.load(); }
    uint64_t evictions() const { return evictions_.load(); }
    uint64_t limit() const { return limit_; }

private:
    void publish();

    uint64_t limit_;
    uint64_t bytes_ = 0;
    std::list<CachedState> lru_;  // most recent first
    std::unordered_map<std::string, std::list<CachedState>::iterator> index_;
    std::atomic<uint64_t> bytes_published_{0};
    std::atomic<uint64_t> entries_published_{0};
    std::atomic<uint64_t> evictions_{0};
};

}  // namespace wnl
