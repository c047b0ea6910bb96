#include "engine/backend_registry.h"

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "engine/log.h"

namespace wnl {

namespace {
std::mutex g_mu;
std::unordered_map<uintptr_t, std::shared_ptr<Backend>> g_backends;
// Starts away from small integers so that a guest's graph or exec number
// passed by mistake as a context is not a valid handle.
uintptr_t g_next = 0x574e0001;
}  // namespace

Status open_backend(std::string_view config_json, void** handle) {
    std::shared_ptr<Backend> b;
    Status st = Backend::create(config_json, &b);
    if (st != Status::ok) return st;
    std::lock_guard<std::mutex> lock(g_mu);
    uintptr_t id = g_next++;
    g_backends.emplace(id, std::move(b));
    *handle = reinterpret_cast<void*>(id);
    return Status::ok;
}

std::shared_ptr<Backend> find_backend(void* handle, const char* call) {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_backends.find(reinterpret_cast<uintptr_t>(handle));
    if (it == g_backends.end()) {
        log(LogLevel::error, "abi", std::string(call) + ": unknown or deinitialised backend context");
        return nullptr;
    }
    return it->second;
}

Status close_backend(void* handle) {
    std::shared_ptr<Backend> b;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        auto it = g_backends.find(reinterpret_cast<uintptr_t>(handle));
        if (it == g_backends.end()) {
            log(LogLevel::error, "abi", "deinit_backend: unknown or already deinitialised backend context");
            return Status::not_found;
        }
        b = std::move(it->second);
        g_backends.erase(it);
    }
    b->shut_down();
    return Status::ok;  // freed when the last running call lets go
}

}  // namespace wnl
