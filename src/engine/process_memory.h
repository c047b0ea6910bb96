// Memory the process and its devices use, read from the OS and ggml.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wnl {

uint64_t process_rss_bytes();

struct DeviceMemory {
    std::string name;
    std::string description;
    uint64_t free_bytes = 0;
    uint64_t total_bytes = 0;
};

// GPU (and integrated GPU) devices; empty on a CPU-only build.
std::vector<DeviceMemory> gpu_memory();

}  // namespace wnl
