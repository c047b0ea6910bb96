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
    std::shared_ptr<Model> model;
    std::shared_ptr<DecodeLoop> loop;
    std::string key;  // served_key(): what it is shared under
    uint64_t version = 0;  // increases with every load in the process
    std::atomic<int> graphs{0};  // graph handles on it, over all backend contexts
};

LoopSettings loop_settings_from(const Config& cfg);

// The key a graph loaded from share_as with cfg is served under: graphs with
// equal keys share one ServedModel (weights and decode loop).
std::string served_key(const std::string& share_as, const Config& cfg);

// path must already be canonical. A model loaded from memory passes a
// unique path so that it is never shared.
// share_as names the file for sharing: the canonical path, or for a model
// loaded from memory a name no other load uses.
Status acquire_served_model(const std::string& path, const std::string& share_as, const Config& cfg,
                            std::shared_ptr<ServedModel>* out, std::string* error);

}  // namespace wnl
