// What a graph handle refers to: a served model plus the settings it was
// loaded with.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/chat_format.h"
#include "engine/config.h"
#include "engine/model_registry.h"

namespace wnl {

struct Graph {
    ~Graph() {
        if (served) served->graphs--;
    }
    uint32_t id = 0;
    // Loads of one file with one config in a backend context share the
    // handle: each adds one here, each unload takes one away, and the handle
    // ends at zero. Guarded by Backend::mu_.
    uint32_t loads = 1;
    std::string load_key;  // canonical path + config; empty for loads from bytes
    std::shared_ptr<ServedModel> served;
    Config config;  // backend config with the graph's own applied on top
    std::unique_ptr<ChatFormat> chat;
    bool has_template = false;  // from the GGUF or chat_template
    std::string alias;  // the policy's model alias it was loaded by, if any

    // Loaded with embedding (or reranking): compute embeds (backend_embed.cpp).
    bool embeds() const { return served->loop->embedding(); }
    // An embedding graph whose pooling is rank: compute scores documents.
    bool reranks() const { return embeds() && served->loop->pooling() == LLAMA_POOLING_TYPE_RANK; }
};

}  // namespace wnl
