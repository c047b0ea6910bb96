#include "engine/version.h"

namespace wnl {

const char* library_version() { return WNL_VERSION; }
const char* llama_commit_value() { return WNL_LLAMA_COMMIT; }
int llama_build_number_value() { return WNL_LLAMA_BUILD_NUMBER; }

}  // namespace wnl
