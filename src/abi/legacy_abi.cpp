// The legacy ABI (WAMR <= 2.3.1 and the original wasi_nn_backend header)
// over the engine: argument checks, type translation and error mapping only
// (the shared entry points are in shim.h).
#include <atomic>

#include "abi/legacy_errors.h"
#include "abi/shim.h"
#include "engine/version.h"
#include "wasi_nn_backend.h"

using namespace wnl;
using namespace wnl::abi;

namespace {

constexpr uint64_t kMaxText = WASI_NN_LEGACY_MAX_PROMPT;
// The byte type in each tensor_type numbering: WAMR's ephemeral u8, and the
// original header's up8 (fp16 0, fp32 1, up8 2, ip32 3).
constexpr int kEphemeralU8 = WASI_NN_EPHEMERAL_TENSOR_TYPE_U8;
constexpr int kOriginalUp8 = WASI_NN_ORIGINAL_TENSOR_TYPE_UP8;

struct Legacy {
    using Error = wasi_nn_error;
    using Tensor = tensor;
    static constexpr int kEncodingGgml = ggml;
    static constexpr int kEncodingAutodetect = autodetect;
    static Error map(Status s) { return to_legacy(s); }

    // The original legacy run_inference ran a request whose runtime config
    // did not parse with its defaults; programs written for it rely on that.
    static constexpr bool kUnparsableRuntimeConfigRunsWithGraphSettings = true;

    // A text tensor's bytes. The data pointer carries no size: the length is
    // the product of the dimensions when they are given, else the data is a
    // NUL-terminated string of at most WASI_NN_LEGACY_MAX_PROMPT bytes.
    //
    // Two numberings of tensor_type reach this ABI: WAMR's ephemeral one (u8
    // is 4) and the original header's, built without
    // WASM_ENABLE_WASI_EPHEMERAL_NN (fp16 0, fp32 1, up8 2, ip32 3). Both byte
    // types are text. A tensor of another type without dimensions is read as
    // NUL-terminated text too, as the original library did (HyperBEAM sends
    // its prompt as fp32 with NULL dimensions); with real dimensions it
    // describes numbers, not text, and is refused.
    static Status tensor_text(const char* call, const tensor* t, std::string_view* out) {
        if (!t) {
            bad_arg(call, "tensor is NULL");
            return Status::invalid_argument;
        }
        const int type = raw_enum(t->type);
        const bool byte_type = type == kOriginalUp8 || type == kEphemeralU8;
        const bool has_dims = t->dimensions && t->dimensions->size > 0;
        if (!byte_type && has_dims) {
            bad_arg(call, "tensor type " + std::to_string(type) + " with dimensions is not text; text is u8 (" +
                              std::to_string(kEphemeralU8) + ", or " + std::to_string(kOriginalUp8) +
                              " in the original header's numbering)");
            return Status::invalid_argument;
        }
        if (!byte_type) {
            static std::atomic<bool> logged{false};
            if (!logged.exchange(true)) {
                log(LogLevel::debug, "abi",
                    std::string(call) + ": tensor type " + std::to_string(type) +
                        " without dimensions read as NUL-terminated text, as the original library did (logged once)");
            }
        }
        if (!t->data) {
            bad_arg(call, "tensor data is NULL");
            return Status::invalid_argument;
        }
        const char* data = reinterpret_cast<const char*>(t->data);
        if (has_dims) {
            uint64_t n = 0;
            if (!dims_product(call, t->dimensions->buf, t->dimensions->size, &n)) return Status::invalid_argument;
            if (n > kMaxText) {
                bad_arg(call, "tensor is " + std::to_string(n) + " bytes; the limit is 16 MiB");
                return Status::too_large;
            }
            // Up to the first NUL, as every string with a length (text sent
            // with its NUL counted in the dimensions, or a buffer the
            // dimensions overstate, is read no further).
            *out = std::string_view(data, strnlen(data, static_cast<size_t>(n)));
            return Status::ok;
        }
        size_t n = strnlen(data, kMaxText + 1);
        if (n > kMaxText) {
            bad_arg(call, "NUL-terminated text is longer than the 16 MiB limit");
            return Status::too_large;
        }
        *out = std::string_view(data, n);
        return Status::ok;
    }
};

using S = Shim<Legacy>;

}  // namespace

extern "C" {

wasi_nn_error init_backend(void** ctx) {
    return S::run("init_backend", [&] { return S::init_backend_with_config(ctx, nullptr, 0); });
}
wasi_nn_error init_backend_with_config(void** ctx, const char* config, uint32_t config_len) {
    return S::run("init_backend_with_config", [&] { return S::init_backend_with_config(ctx, config, config_len); });
}
wasi_nn_error deinit_backend(void* ctx) {
    return S::run("deinit_backend", [&] { return S::deinit_backend(ctx); });
}
wasi_nn_error load(void* ctx, graph_builder_array* builder, graph_encoding encoding, execution_target target,
                   graph* g) {
    return S::run("load", [&] { return S::load(ctx, builder, raw_enum(encoding), raw_enum(target), g); });
}
wasi_nn_error load_by_name(void* ctx, const char* name, uint32_t name_len, graph* g) {
    return S::run("load_by_name", [&] { return S::load_by_name_with_config(ctx, name, name_len, nullptr, 0, g); });
}
wasi_nn_error load_by_name_with_config(void* ctx, const char* name, uint32_t name_len, const char* config,
                                       uint32_t config_len, graph* g) {
    return S::run("load_by_name_with_config",
                  [&] { return S::load_by_name_with_config(ctx, name, name_len, config, config_len, g); });
}
wasi_nn_error unload(void* ctx, graph g) {
    return S::run("unload", [&] { return S::unload(ctx, g); });
}
wasi_nn_error swap_graph(void* ctx, graph g, const char* name, uint32_t name_len, const char* config,
                         uint32_t config_len) {
    return S::run("swap_graph", [&] { return S::swap_graph(ctx, g, name, name_len, config, config_len); });
}
wasi_nn_error reload_aliases(void* ctx) {
    return S::run("reload_aliases", [&] { return S::reload_aliases(ctx); });
}
wasi_nn_error init_execution_context(void* ctx, graph g, graph_execution_context* exec) {
    return S::run("init_execution_context", [&] { return S::init_execution_context(ctx, g, exec); });
}
wasi_nn_error init_execution_context_with_session_id(void* ctx, const char* session_id, graph_execution_context* exec) {
    return S::run("init_execution_context_with_session_id",
                  [&] { return S::init_execution_context_with_session_id(ctx, session_id, exec); });
}
wasi_nn_error close_execution_context(void* ctx, graph_execution_context exec) {
    return S::run("close_execution_context", [&] { return S::close_execution_context(ctx, exec); });
}
wasi_nn_error set_input(void* ctx, graph_execution_context exec, uint32_t index, tensor* t) {
    return S::run("set_input", [&] { return S::set_input(ctx, exec, index, t); });
}
wasi_nn_error compute(void* ctx, graph_execution_context exec) {
    return S::run("compute", [&] { return S::compute(ctx, exec); });
}

// *out_size is the capacity on entry and the bytes written, counting the
// terminating NUL, on return.
wasi_nn_error get_output(void* ctx, graph_execution_context exec, uint32_t index, uint8_t* out, uint32_t* out_size) {
    return S::run("get_output", [&]() -> wasi_nn_error {
        auto b = find_backend(ctx, "get_output");
        if (!b) return invalid_argument;
        if (!out || !out_size) {
            bad_arg("get_output", "output buffer or out_size is NULL");
            return invalid_argument;
        }
        const uint32_t capacity = *out_size;
        std::string text;
        Status st = S::output_text(b, exec, index, &text);
        if (st != Status::ok) return to_legacy(st);
        if (copy_out(text, out, capacity, true, out_size) == CopyResult::too_large) {
            bad_arg("get_output", "output needs " + std::to_string(*out_size) +
                                      " bytes with its NUL; the buffer holds " + std::to_string(capacity));
            return too_large;
        }
        return success;
    });
}

wasi_nn_error run_inference(void* ctx, graph_execution_context exec, uint32_t index, tensor* input, uint8_t* out,
                            uint32_t* out_size, const char* runtime_config, uint32_t runtime_config_len) {
    return S::run("run_inference", [&] {
        return S::run_inference(ctx, exec, index, input, out, out_size, runtime_config, runtime_config_len);
    });
}
wasi_nn_error get_backend_status(void* ctx, backend_status_type type, char* buf, uint32_t buf_size) {
    return S::run("get_backend_status", [&] { return S::get_backend_status(ctx, raw_enum(type), buf, buf_size); });
}
wasi_nn_error compute_single(void* ctx, graph_execution_context exec) {
    return S::run("compute_single", [&] { return S::compute_single(ctx, exec); });
}
// *out_size: capacity in, bytes written out, counting the terminating NUL.
wasi_nn_error get_output_single(void* ctx, graph_execution_context exec, uint32_t index, uint8_t* out,
                                uint32_t* out_size) {
    return S::run("get_output_single", [&] { return S::get_output_single(ctx, exec, index, out, out_size, true); });
}
wasi_nn_error fini_single(void* ctx, graph_execution_context exec) {
    return S::run("fini_single", [&] { return S::fini_single(ctx, exec); });
}
const char* wasi_nn_llama_version(void) {
    return library_version();
}

}  // extern "C"
