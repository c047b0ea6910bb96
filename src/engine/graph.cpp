#include "engine/graph.h"

#include <algorithm>

namespace wnl {

Graph::~Graph() {
    if (current_) current_->served->graphs--;
}

std::shared_ptr<GraphModel> Graph::current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
}

bool Graph::ended() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
}

bool Graph::embeds() const {
    std::lock_guard<std::mutex> lock(mu_);
    return embeds_;
}

bool Graph::reranks() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reranks_;
}

void Graph::bind(std::shared_ptr<GraphModel> m) {
    std::lock_guard<std::mutex> lock(mu_);
    m->served->graphs++;
    // The kind is the first model's; a swap never changes it.
    embeds_ = m->served->loop->embedding();
    reranks_ = embeds_ && m->served->loop->pooling() == LLAMA_POOLING_TYPE_RANK;
    current_ = std::move(m);
}

bool Graph::while_current(const GraphModel* m, const std::function<void()>& submit) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_.get() != m || !m) return false;
    submit();
    return true;
}

std::shared_ptr<GraphModel> Graph::replace(std::shared_ptr<GraphModel> next,
                                           std::vector<std::shared_ptr<Request>>* queued) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_ || !current_) return nullptr;
    std::shared_ptr<GraphModel> old = std::move(current_);
    next->served->graphs++;
    current_ = std::move(next);
    old->served->graphs--;
    // Under mu_, so no request of this graph can be submitted to the old
    // loop after this (while_current).
    *queued = old->served->loop->take_queued(old.get());
    retired_.erase(
        std::remove_if(retired_.begin(), retired_.end(), [](const Retired& r) { return r.model.expired(); }),
        retired_.end());
    retired_.push_back({old, old->served.get()});
    return old;
}

std::shared_ptr<GraphModel> Graph::end() {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    std::shared_ptr<GraphModel> old = std::move(current_);
    if (old) {
        old->served->graphs--;
        retired_.push_back({old, old->served.get()});
    }
    return old;
}

void Graph::served_held(std::unordered_set<const ServedModel*>* held) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_) held->insert(current_->served.get());
    for (const auto& r : retired_) {
        if (!r.model.expired()) held->insert(r.served);
    }
}

bool Graph::serves_key(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_ && current_->served->key == key;
}

void Graph::swap_loading(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    loading_ = true;
    loading_path_ = path;
    loading_since_ = std::chrono::steady_clock::now();
}

void Graph::swap_done(double duration_ms, uint64_t from, uint64_t to, bool forced, size_t moved) {
    std::lock_guard<std::mutex> lock(mu_);
    loading_ = false;
    swaps_++;
    has_last_ = true;
    last_at_ = std::chrono::system_clock::now();
    last_duration_ms_ = duration_ms;
    last_from_ = from;
    last_to_ = to;
    last_forced_ = forced;
    last_moved_ = moved;
}

void Graph::swap_refused(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    loading_ = false;
    refused_++;
    last_refusal_ = why;
}

SwapReport Graph::swap_report() const {
    SwapReport r;
    std::vector<Retired> retired;
    {
        std::lock_guard<std::mutex> lock(mu_);
        retired = retired_;
        r.loading = loading_;
        if (loading_) {
            r.loading_path = loading_path_;
            r.loading_ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - loading_since_).count();
        }
        r.swaps = swaps_;
        r.refused = refused_;
        r.has_last = has_last_;
        r.last_at = last_at_;
        r.last_duration_ms = last_duration_ms_;
        r.last_from = last_from_;
        r.last_to = last_to_;
        r.last_forced = last_forced_;
        r.last_moved = last_moved_;
        r.last_refusal = last_refusal_;
    }
    // Outside the lock: the last reference to a draining model may be this
    // one, and freeing a model stops its decode loop.
    for (const auto& w : retired) {
        if (auto m = w.model.lock()) r.draining.push_back({m->version, m->requests.load()});
    }
    return r;
}

}  // namespace wnl
