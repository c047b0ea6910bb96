#include "engine/process_memory.h"

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdio>

#include "ggml-backend.h"

namespace wnl {

void return_free_heap() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

uint64_t process_rss_bytes() {
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int n = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    if (n != 2) return 0;
    return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

std::vector<DeviceMemory> gpu_memory() {
    std::vector<DeviceMemory> out;
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        auto type = ggml_backend_dev_type(dev);
        if (type != GGML_BACKEND_DEVICE_TYPE_GPU && type != GGML_BACKEND_DEVICE_TYPE_IGPU) continue;
        DeviceMemory m;
        m.name = ggml_backend_dev_name(dev);
        m.description = ggml_backend_dev_description(dev);
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        m.free_bytes = free;
        m.total_bytes = total;
        out.push_back(std::move(m));
    }
    return out;
}

}  // namespace wnl
