// What a graph handle refers to. The model behind it can be replaced while
// it serves (swap_graph): a Graph holds the GraphModel it serves now, and
// each turn holds the GraphModel it runs on, so a model a swap replaced
// lives exactly as long as a request still runs on it. Unloading ends the
// graph: it then serves nothing, and its model goes with its last request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/chat_format.h"
#include "engine/config.h"
#include "engine/model_registry.h"
#include "engine/policy.h"

namespace wnl {

// Which model answered: the graph's own counter (1 at load, one more with
// every swap) and the file's identity.
struct ModelVersion {
    uint64_t number = 0;
    std::string path;  // canonical path, or memory:N for a model given as bytes
    uint64_t file_bytes = 0;
    int64_t mtime_ns = 0;  // the file's modification time, ns since the epoch
    std::string name;  // general.name, else the file name
};

// One model as a graph serves it: the shared served model plus the graph's
// settings and chat format for it. Never changed once bound; a swap binds a
// new one.
struct GraphModel {
    std::shared_ptr<ServedModel> served;
    Config config;  // backend config with the graph's own applied on top
    std::unique_ptr<ChatFormat> chat;
    bool has_template = false;  // from the GGUF or chat_template
    ModelVersion version;
    std::atomic<int> requests{0};  // turns running on it (ModelUse)
};

// A turn's hold on the model it runs on (counted in GraphModel::requests,
// which the MODEL status reports for models still draining).
class ModelUse {
public:
    ModelUse() = default;
    explicit ModelUse(std::shared_ptr<GraphModel> m) : m_(std::move(m)) {
        if (m_) m_->requests++;
    }
    ~ModelUse() { reset(); }
    ModelUse(const ModelUse&) = delete;
    ModelUse& operator=(const ModelUse&) = delete;
    ModelUse(ModelUse&& o) noexcept : m_(std::move(o.m_)) {}
    ModelUse& operator=(ModelUse&& o) noexcept {
        if (this != &o) {
            reset();
            m_ = std::move(o.m_);
        }
        return *this;
    }
    void reset() {
        if (m_) m_->requests--;
        m_.reset();
    }
    explicit operator bool() const { return m_ != nullptr; }
    const GraphModel* get() const { return m_.get(); }
    const GraphModel* operator->() const { return m_.get(); }

private:
    std::shared_ptr<GraphModel> m_;
};

// What the MODEL status shows of a graph's swaps.
struct SwapReport {
    bool loading = false;  // a swap is loading its new model now
    std::string loading_path;
    double loading_ms = 0;
    struct Draining {
        ModelVersion version;
        int requests = 0;
    };
    std::vector<Draining> draining;  // models swapped out that still run requests
    uint64_t swaps = 0;
    uint64_t refused = 0;
    bool has_last = false;
    std::chrono::system_clock::time_point last_at{};
    double last_duration_ms = 0;
    uint64_t last_from = 0, last_to = 0;
    bool last_forced = false;
    size_t last_moved = 0;  // queued requests it handed back to the new model
    std::string last_refusal;  // why the last refused swap was refused
};

class Graph {
public:
    ~Graph();
    uint32_t id = 0;
    // Loads of one file with one config in a backend context share the
    // handle: each adds one here, each unload takes one away, and the handle
    // ends at zero. Guarded by Backend::mu_.
    uint32_t loads = 1;
    std::string load_key;  // canonical path + config; empty for loads from bytes
    std::string alias;  // the policy's model alias it was loaded by, if any
    ModelAlias alias_source;  // the alias's path and config then (reload_aliases)
    // Held for the length of a swap: swaps of one graph run one at a time.
    std::mutex swap_mu;

    // The model it serves now; null once unloaded.
    std::shared_ptr<GraphModel> current() const;
    // Its model is an embedding (or reranking) model: compute embeds
    // (backend_embed.cpp). A swap keeps the kind (backend_swap.cpp).
    bool embeds() const;
    // An embedding graph whose pooling is rank: compute scores documents.
    bool reranks() const;
    bool ended() const;
    // The first model, at load.
    void bind(std::shared_ptr<GraphModel> m);
    // Runs submit() (handing a request to m's loop) only while m is still
    // the model served, so that no request reaches a model after the swap
    // that replaced it has taken back its queue. False, without running
    // it, when m was replaced or the graph ended meanwhile.
    bool while_current(const GraphModel* m, const std::function<void()>& submit) const;
    // Makes next the model served and returns the one it replaces; the
    // requests of this graph still queued in the old model's loop are taken
    // out into *queued (the caller hands them back to be started again on
    // next). Null when the graph has ended.
    std::shared_ptr<GraphModel> replace(std::shared_ptr<GraphModel> next,
                                        std::vector<std::shared_ptr<Request>>* queued);
    // Unload: the graph serves nothing from now on. Returns the model it
    // served (null if it had ended already). Queued and running requests
    // finish on it.
    std::shared_ptr<GraphModel> end();

    // The caps (backend_limits.cpp): the served models (decode loops) this
    // graph holds, the one it serves and those still finishing requests,
    // added to *held; and whether the one it serves is shared under `key`.
    // Neither takes a reference, so neither can free a model.
    void served_held(std::unordered_set<const ServedModel*>* held) const;
    bool serves_key(const std::string& key) const;

    // Swap bookkeeping, for the MODEL status.
    void swap_loading(const std::string& path);
    void swap_done(double duration_ms, uint64_t from, uint64_t to, bool forced, size_t moved);
    void swap_refused(const std::string& why);
    SwapReport swap_report() const;

private:
    mutable std::mutex mu_;
    std::shared_ptr<GraphModel> current_;
    bool ended_ = false;
    bool embeds_ = false, reranks_ = false;
    // Swapped out or unloaded; alive while requests run on them. The raw
    // pointer only counts the model's decode loop (served_held), never
    // dereferenced.
    struct Retired {
        std::weak_ptr<GraphModel> model;
        const ServedModel* served = nullptr;
    };
    std::vector<Retired> retired_;
    bool loading_ = false;
    std::string loading_path_;
    std::chrono::steady_clock::time_point loading_since_{};
    uint64_t swaps_ = 0, refused_ = 0;
    bool has_last_ = false;
    std::chrono::system_clock::time_point last_at_{};
    double last_duration_ms_ = 0;
    uint64_t last_from_ = 0, last_to_ = 0;
    bool last_forced_ = false;
    size_t last_moved_ = 0;
    std::string last_refusal_;
};

}  // namespace wnl
