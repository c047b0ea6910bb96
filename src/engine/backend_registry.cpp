#include "engine/backend_registry.h"

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "engine/log.h"

namespace wnl {

namespace {
struct Registry {
    std::mutex mu;
    std::unordered_map<uintptr_t, std::shared_ptr<Backend>> backends;
    // Starts away from small integers so that a guest's graph or exec number
    // passed by mistake as a context is not a valid handle.
    uintptr_t next = 0x574e0001;
    bool closed = false;  // the process is exiting: no new contexts
};

// Never destroyed: a host may exit without deinit_backend, and a static
// table's destructor would free live backends (and their llama.cpp state)
// in whatever order static destructors run. The exit teardown
// (process_exit.cpp) closes them instead, at a known point.
Registry& registry() {
    static Registry* r = new Registry();
    return *r;
}
}  // namespace

Status open_backend(std::string_view config_json, void** handle) {
    {
        Registry& r = registry();
        std::lock_guard<std::mutex> lock(r.mu);
        if (r.closed) {
            log(LogLevel::error, "abi", "init_backend: the process is exiting");
            return Status::runtime_error;
        }
    }
    std::shared_ptr<Backend> b;
    Status st = Backend::create(config_json, &b);
    if (st != Status::ok) return st;
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    if (r.closed) {
        log(LogLevel::error, "abi", "init_backend: the process is exiting");
        return Status::runtime_error;
    }
    uintptr_t id = r.next++;
    r.backends.emplace(id, std::move(b));
    *handle = reinterpret_cast<void*>(id);
    return Status::ok;
}

std::shared_ptr<Backend> find_backend(void* handle, const char* call) {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.backends.find(reinterpret_cast<uintptr_t>(handle));
    if (it == r.backends.end()) {
        log(LogLevel::error, "abi", std::string(call) + ": unknown or deinitialised backend context");
        return nullptr;
    }
    return it->second;
}

Status close_backend(void* handle) {
    std::shared_ptr<Backend> b;
    {
        Registry& r = registry();
        std::lock_guard<std::mutex> lock(r.mu);
        auto it = r.backends.find(reinterpret_cast<uintptr_t>(handle));
        if (it == r.backends.end()) {
            log(LogLevel::error, "abi", "deinit_backend: unknown or already deinitialised backend context");
            return Status::not_found;
        }
        b = std::move(it->second);
        r.backends.erase(it);
    }
    b->shut_down();
    return Status::ok;  // freed when the last running call lets go
}

void close_all_backends() {
    std::unordered_map<uintptr_t, std::shared_ptr<Backend>> all;
    {
        Registry& r = registry();
        std::lock_guard<std::mutex> lock(r.mu);
        r.closed = true;
        all.swap(r.backends);
    }
    for (auto& [id, b] : all) b->shut_down();
}

}  // namespace wnl
