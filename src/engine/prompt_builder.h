// Turns a session's history plus the new input into prompt tokens that fit
// the context: chat turns through the template, or the raw transcript in
// completion mode. When the history no longer fits, the oldest turns are
// dropped (context shifting) or the turn is refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.h"
#include "engine/graph.h"
#include "engine/session.h"
#include "engine/status.h"

namespace wnl {

struct PromptPlan {
    bool chat = false;
    std::vector<llama_token> tokens;
    size_t dropped_messages = 0;  // chat turns left out to fit
    size_t transcript_cut = 0;  // bytes of transcript left out to fit
    int32_t system_tokens = 0;  // leading tokens that hold the system prompt
};

bool use_chat_mode(const GraphModel& g, const Config& cfg);

Status build_prompt(const GraphModel& g, const Config& cfg, const Session& s, std::string_view input,
                    uint32_t ctx_per_seq, PromptPlan* out, std::string* error);

}  // namespace wnl
