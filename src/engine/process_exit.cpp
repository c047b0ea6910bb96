#include "engine/process_exit.h"

#include <atomic>
#include <mutex>

#include "engine/backend_registry.h"
#include "engine/decode_loop.h"
#include "engine/log.h"

// The handle of this shared library, as the compiler's static destructors
// use it: handlers registered with it run at exit, or when the library is
// unloaded, whichever comes first.
extern "C" {
extern void* __dso_handle;
int __cxa_atexit(void (*fn)(void*), void* arg, void* dso);
}

namespace wnl {

namespace {
std::atomic<bool> g_exiting{false};

void teardown(void*) {
    g_exiting = true;
    stop_llama_log_hook();
    log(LogLevel::debug, "engine", "process exiting or library unloading: closing every backend context");
    // Cancels every request first, while the loops still run to end them...
    close_all_backends();
    // ... then stops the loops that calls still in flight keep alive.
    DecodeLoop::halt_all("the process is exiting");
}
}  // namespace

bool process_exiting() { return g_exiting.load(); }

void arm_exit_teardown() {
    static std::once_flag once;
    std::call_once(once, [] { __cxa_atexit(teardown, nullptr, &__dso_handle); });
}

}  // namespace wnl
