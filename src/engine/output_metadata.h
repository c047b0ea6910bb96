// The JSON that get_output index 1 returns about the last compute.
#pragma once

#include <string>

#include "engine/request.h"

namespace wnl {

std::string output_metadata_json(const RequestResult& r, const std::string& session_id, bool chat,
                                 const std::string& model_name);

}  // namespace wnl
