#include "engine/llama_runtime.h"

#include <mutex>

#include "engine/log.h"
#include "engine/process_exit.h"
#include "llama.h"

namespace wnl {

static std::mutex g_mu;
static int g_refs = 0;

void llama_runtime_acquire() {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_refs++ == 0) {
        install_llama_log_hook();
        llama_backend_init();
        log(LogLevel::debug, "llama", "llama.cpp runtime initialised");
    }
}

void llama_runtime_release() {
    std::lock_guard<std::mutex> lock(g_mu);
    // Not once the process is exiting: llama.cpp's statics may be gone.
    if (g_refs > 0 && --g_refs == 0 && !process_exiting()) {
        llama_backend_free();
        log(LogLevel::debug, "llama", "llama.cpp runtime freed");
    }
}

}  // namespace wnl
