// Sessions' KV state kept in host RAM after their slot went to another
// session, so that their next turn restores it instead of prefilling again.
// Bounded in bytes; the least recently used state goes first (to the
// session store first, when the session is stored and the store does not
// have it yet). Used by the decode loop's thread; contains() and the
// published sizes may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/kv_sink.h"
#include "llama.h"

namespace wnl {

struct CachedState {
    std::string key;
    std::string kv_tenant;  // who wrote it
    std::vector<llama_token> tokens;  // what the state holds
    std::shared_ptr<const std::vector<uint8_t>> data;  // llama_state_seq_get_data
    std::shared_ptr<KvSink> sink;  // the session store's, for a stored session
    bool on_disk = false;  // the sink has already taken this state
    size_t bytes() const { return data ? data->size() : 0; }
};

class StateCache {
public:
    // on_evict: given each state the bound pushes out (not those erased or taken).
    explicit StateCache(uint64_t limit_bytes, std::function<void(CachedState&)> on_evict = nullptr)
        : limit_(limit_bytes), on_evict_(std::move(on_evict)) {}

    // Keeps the state, dropping the least recently used ones to stay within
    // the limit. A state larger than the limit is not kept.
    void put(CachedState state);
    // The session's state, or null.
    const CachedState* find(const std::string& key) const;
    bool contains(const std::string& key) const;
    // Removes and returns the session's state (empty key when absent).
    CachedState take(const std::string& key);
    void erase(const std::string& key);
    // Drops least recently used states until at most `bytes` remain.
    size_t shrink_to(uint64_t bytes);
    // Calls f on every state, most recent first.
    void for_each(const std::function<void(CachedState&)>& f);

    uint64_t bytes() const { return bytes_published_.load(); }
    uint64_t entries() const { return entries_published_.load(); }
    uint64_t evictions() const { return evictions_.load(); }
    uint64_t limit() const { return limit_; }

private:
    void publish();

    uint64_t limit_;
    std::function<void(CachedState&)> on_evict_;
    uint64_t bytes_ = 0;
    std::list<CachedState> lru_;  // most recent first
    mutable std::mutex index_mu_;  // index_ changes on the loop thread; contains() reads it anywhere
    std::unordered_map<std::string, std::list<CachedState>::iterator> index_;
    std::atomic<uint64_t> bytes_published_{0};
    std::atomic<uint64_t> entries_published_{0};
    std::atomic<uint64_t> evictions_{0};
};

}  // namespace wnl
