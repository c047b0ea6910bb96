#include "engine/exec_context.h"

#include <string>

#include "engine/log.h"

namespace wnl {

ExecClaim::ExecClaim(std::shared_ptr<ExecContext> e, const char* call)
    : e_(std::move(e)), owned_(e_ && !e_->in_call.exchange(true)) {
    if (e_ && !owned_) {
        log(LogLevel::warn, "abi", std::string(call) + ": execution context busy in another thread", {{"exec", e_->id}});
    }
}

}  // namespace wnl
