// Versions compiled in: ours and the llama.cpp we link.
#pragma once

namespace wnl {

const char* library_version();
const char* llama_commit_value();
int llama_build_number_value();

}  // namespace wnl
