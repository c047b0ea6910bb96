// Process-wide sharing of loaded models: the same file with the same load
// settings is loaded once, and requests with the same serving settings share
// one decode loop, across every backend context.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/config.h"
#include "engine/decode_loop.h"
#include "engine/model.h"

namespace wnl {

struct ServedModel {
    // The loop first (its thread stops, its llama_context goes), then the
    // weights if nothing else shares them; then the freed pages go back to
    // the OS.
    ~ServedModel();
    std::shared_ptr<Model> model;
    std::shared_ptr<DecodeLoop> loop;
    std::string key;  // served_key(): what it is shared under
    std::atomic<int> graphs{0};  // graphs serving it now, over all backend contexts
};

LoopSettings loop_settings_from(const Config& cfg);

// The key a graph loaded from share_as with cfg is served under: graphs with
// equal keys share one ServedModel (weights and decode loop).
std::string served_key(const std::string& share_as, const Config& cfg);

// path must already be canonical. A model loaded from memory passes a
// unique path so that it is never shared.
// share_as names the file for sharing: the canonical path, or for a model
// loaded from memory a name no other load uses.
// A file rewritten since it was loaded (another size, modification time or
// inode) is loaded again, not shared.
Status acquire_served_model(const std::string& path, const std::string& share_as, const Config& cfg,
                            std::shared_ptr<ServedModel>* out, std::string* error);

// How many models (weights) and decode loops are alive in the process, over
// every backend context, including those still finishing requests.
struct LoadedCounts {
    size_t models = 0;
    size_t loops = 0;
};
LoadedCounts loaded_counts();

}  // namespace wnl
