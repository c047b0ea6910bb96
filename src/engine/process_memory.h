// Memory the process and its devices use, read from the OS and ggml.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wnl {

uint64_t process_rss_bytes();

// Gives the heap's free pages back to the OS (glibc's malloc_trim). Called
// when a model is freed: glibc raises its mmap threshold each time a large
// block is freed, so a model's buffers end up on the heap, and without this
// their pages stay resident after the model is gone.
void return_free_heap();

struct DeviceMemory {
    std::string name;
    std::string description;
    uint64_t free_bytes = 0;
    uint64_t total_bytes = 0;
};

// GPU (and integrated GPU) devices; empty on a CPU-only build.
std::vector<DeviceMemory> gpu_memory();

}  // namespace wnl
