// llama.cpp's process-wide init and free, counted: the first backend
// context initialises it and the last one frees it.
#pragma once

namespace wnl {

void llama_runtime_acquire();
void llama_runtime_release();

}  // namespace wnl
