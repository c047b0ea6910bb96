// The WAMR >= 2.4 ABI over the engine: argument checks, type translation
// and error mapping only (the shared entry points are in shim.h).
#include "abi/shim.h"
#include "abi/wamr_errors.h"
#include "engine/version.h"
#include "wasi_nn_llamacpp.h"

using namespace wnl;
using namespace wnl::abi;

namespace {

constexpr uint64_t kMaxText = 16u * 1024u * 1024u;

struct Wamr {
    using Error = wasi_nn_error;
    using Tensor = tensor;
    static constexpr int kEncodingGgml = ggml;
    static constexpr int kEncodingAutodetect = autodetect;
    static Error map(Status s) { return to_wamr(s); }
    static constexpr bool kUnparsableRuntimeConfigRunsWithGraphSettings = false;

    // A u8 tensor's bytes: the length is data.size; dimensions, when given,
    // must describe it ({len}, {1, len} or {1}).
    static Status tensor_text(const char* call, const tensor* t, std::string_view* out) {
        if (!t) {
            bad_arg(call, "tensor is NULL");
            return Status::invalid_argument;
        }
        if (t->type != u8) {
            bad_arg(call,
                    "tensor type must be u8 (" + std::to_string(u8) + ") for text, got " + std::to_string(t->type));
            return Status::invalid_argument;
        }
        if (t->data.size > 0 && !t->data.buf) {
            bad_arg(call, "tensor data is NULL but its size is " + std::to_string(t->data.size));
            return Status::invalid_argument;
        }
        if (t->data.size > kMaxText) {
            bad_arg(call, "tensor data is " + std::to_string(t->data.size) + " bytes; the limit is 16 MiB");
            return Status::too_large;
        }
        if (t->dimensions) {
            uint64_t n = 0;
            if (!dims_product(call, t->dimensions->buf, t->dimensions->size, &n)) return Status::invalid_argument;
            if (t->dimensions->size > 0 && n != t->data.size && n != 1) {
                bad_arg(call, "tensor dimensions describe " + std::to_string(n) + " bytes but data.size is " +
                                  std::to_string(t->data.size));
                return Status::invalid_argument;
            }
        }
        *out = std::string_view(reinterpret_cast<const char*>(t->data.buf), t->data.size);
        // Text sent with its NUL counted in the size.
        while (!out->empty() && out->back() == '\0') out->remove_suffix(1);
        return Status::ok;
    }
};

using S = Shim<Wamr>;

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

// out->size is the capacity; no NUL is written or counted.
wasi_nn_error get_output(void* ctx, graph_execution_context exec, uint32_t index, tensor_data* out,
                         uint32_t* out_size) {
    return S::run("get_output", [&]() -> wasi_nn_error {
        auto b = find_backend(ctx, "get_output");
        if (!b) return invalid_argument;
        if (!out || !out_size) {
            bad_arg("get_output", "output buffer or out_size is NULL");
            return invalid_argument;
        }
        if (!out->buf && out->size > 0) {
            bad_arg("get_output", "output buffer is NULL but its capacity is " + std::to_string(out->size));
            return invalid_argument;
        }
        std::string text;
        Status st = S::output_text(b, exec, index, &text);
        if (st != Status::ok) return to_wamr(st);
        if (copy_out(text, out->buf, out->size, false, out_size) == CopyResult::too_large) {
            bad_arg("get_output", "output is " + std::to_string(text.size()) + " bytes; the buffer holds " +
                                      std::to_string(out->size));
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
// *out_size: capacity in, bytes written out; no NUL is written or counted.
wasi_nn_error get_output_single(void* ctx, graph_execution_context exec, uint32_t index, uint8_t* out,
                                uint32_t* out_size) {
    return S::run("get_output_single", [&] { return S::get_output_single(ctx, exec, index, out, out_size, false); });
}
wasi_nn_error fini_single(void* ctx, graph_execution_context exec) {
    return S::run("fini_single", [&] { return S::fini_single(ctx, exec); });
}
const char* wasi_nn_llama_version(void) {
    return library_version();
}

}  // extern "C"
