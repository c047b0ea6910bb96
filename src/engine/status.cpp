#include "engine/status.h"

namespace wnl {

const char* status_name(Status s) {
    switch (s) {
        case Status::ok: return "ok";
        case Status::invalid_argument: return "invalid_argument";
        case Status::invalid_encoding: return "invalid_encoding";
        case Status::missing_memory: return "missing_memory";
        case Status::busy: return "busy";
        case Status::timeout: return "timeout";
        case Status::runtime_error: return "runtime_error";
        case Status::unsupported_operation: return "unsupported_operation";
        case Status::too_large: return "too_large";
        case Status::not_found: return "not_found";
        case Status::security: return "security";
        case Status::end_of_sequence: return "end_of_sequence";
        case Status::context_full: return "context_full";
        case Status::prompt_too_long: return "prompt_too_long";
        case Status::model_not_found: return "model_not_found";
        case Status::path_refused: return "path_refused";
    }
    // A value cast from an out-of-range integer; the name must still be printable.
    return "unknown";
}

}  // namespace wnl
