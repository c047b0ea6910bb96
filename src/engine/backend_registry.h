// Backend contexts by opaque handle. A handle is a number, never a pointer,
// and is never reused, so a call with a stale or foreign handle finds
// nothing instead of touching freed memory; a call that is still running
// when its context is closed keeps the Backend alive until it returns.
#pragma once

#include <memory>
#include <string_view>

#include "engine/backend.h"

namespace wnl {

Status open_backend(std::string_view config_json, void** handle);
std::shared_ptr<Backend> find_backend(void* handle, const char* call);
Status close_backend(void* handle);
// The process is exiting (process_exit.cpp): closes every context as
// deinit_backend would, and refuses new ones from then on.
void close_all_backends();

}  // namespace wnl
