// Whether one model can take another's place behind a graph (swap_graph):
// sessions carry their text history across, but guests also hold token ids
// (logit_bias, stop on a token) and rely on which tokens end a turn, so the
// two models must agree on the architecture and on the vocabulary's size and
// special tokens.
#pragma once

#include <string>

#include "engine/model.h"

namespace wnl {

// True when `next` may replace `current`; otherwise *why says what differs
// (the first difference found).
bool swap_compatible(const Model& current, const Model& next, std::string* why);

}  // namespace wnl
