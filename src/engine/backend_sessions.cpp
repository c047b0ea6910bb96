// Where a backend context's sessions are known on the decode loops it
// shares: their keys and KV tenant, forgetting them there, and, with a
// session store, handing their KV state to it at deinit_backend.
#include <set>

#include "engine/backend.h"
#include "engine/log.h"

namespace wnl {

std::string Backend::named_key(const std::string& id) const { return (store_ ? store_->key_prefix() : tag_) + id; }

std::string Backend::session_key(const Session& s) const { return s.named ? named_key(s.id) : tag_ + s.id; }

std::string Backend::kv_tenant(const Session& s) const {
    if (config_.backend.share_kv_process) return "process";
    return store_ && s.named ? store_->key_prefix() : tag_;
}

void Backend::forget_sessions(const std::vector<std::string>& named_ids) {
    std::vector<std::string> keys;
    for (const auto& id : named_ids) keys.push_back(named_key(id));
    forget_keys(keys);
}

void Backend::forget_keys(const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    std::vector<std::shared_ptr<Graph>> graphs;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [gid, g] : graphs_) graphs.push_back(g);
    }
    for (const auto& g : graphs) {
        auto m = g->current();
        if (!m) continue;
        for (const auto& key : keys) m->served->loop->forget_session(key);
    }
}

void Backend::save_stored_sessions() {
    std::vector<std::shared_ptr<Graph>> graphs;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [id, g] : graphs_) graphs.push_back(g);
    }
    std::set<DecodeLoop*> loops;
    for (const auto& g : graphs) {
        auto m = g->current();
        if (!m) continue;
        DecodeLoop* loop = m->served->loop.get();
        if (!loops.insert(loop).second) continue;
        if (!loop->save_sessions(store_->key_prefix(), std::chrono::seconds(10))) {
            log(LogLevel::warn, "store", "deinit: the decode loop did not hand over its sessions' KV in time");
        }
    }
    if (!store_->flush(std::chrono::seconds(60))) {
        log(LogLevel::warn, "store", "deinit: KV files still being written after 60 s");
    }
}

}  // namespace wnl
