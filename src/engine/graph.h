// What a graph handle refers to: a served model plus the settings it was
// loaded with.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/chat_format.h"
#include "engine/config.h"
#include "engine/model_registry.h"

namespace wnl {

struct Graph {
    ~Graph() {
        if (served) served->graphs--;
    }
    uint32_t id = 0;
    std::shared_ptr<ServedModel> served;
    Config config;  // backend config with the graph's own applied on top
    std::unique_ptr<ChatFormat> chat;
    bool has_template = false;  // from the GGUF or chat_template

    // Loaded with embedding (or reranking): compute embeds (backend_embed.cpp).
    bool embeds() const { return served->loop->embedding(); }
    // An embedding graph whose pooling is rank: compute scores documents.
    bool reranks() const { return embeds() && served->loop->pooling() == LLAMA_POOLING_TYPE_RANK; }
};

}  // namespace wnl
