// The WAMR >= 2.4 ABI over the engine: argument checks, type translation
// and error mapping only.
#include "wasi_nn_llamacpp.h"

#include "abi/arg_checks.h"
#include "abi/wamr_errors.h"
#include "engine/backend_registry.h"
#include "engine/version.h"

using namespace wnl;
using namespace wnl::abi;

namespace {

constexpr uint64_t kMaxText = 16u * 1024u * 1024u;

// A u8 tensor's bytes: the length is data.size; dimensions, when given,
// must describe it ({len}, {1, len} or {1}).
bool tensor_text(const char* call, const tensor* t, std::string_view* out, wasi_nn_error* err) {
    *err = invalid_argument;
    if (!t) {
        bad_arg(call, "tensor is NULL");
        return false;
    }
    if (t->type != u8) {
        bad_arg(call, "tensor type must be u8 (" + std::to_string(u8) + ") for text, got " + std::to_string(t->type));
        return false;
    }
    if (t->data.size > 0 && !t->data.buf) {
        bad_arg(call, "tensor data is NULL but its size is " + std::to_string(t->data.size));
        return false;
    }
    if (t->data.size > kMaxText) {
        bad_arg(call, "tensor data is " + std::to_string(t->data.size) + " bytes; the limit is 16 MiB");
        *err = too_large;
        return false;
    }
    if (t->dimensions) {
        uint64_t n = 0;
        if (!dims_product(call, t->dimensions->buf, t->dimensions->size, &n)) return false;
        if (t->dimensions->size > 0 && n != t->data.size && n != 1) {
            bad_arg(call, "tensor dimensions describe " + std::to_string(n) + " bytes but data.size is " +
                              std::to_string(t->data.size));
            return false;
        }
    }
    *out = std::string_view(reinterpret_cast<const char*>(t->data.buf), t->data.size);
    // Text sent with its NUL counted in the size.
    while (!out->empty() && out->back() == '\0') out->remove_suffix(1);
    return true;
}

}  // namespace

extern "C" {

wasi_nn_error init_backend(void** ctx) { return init_backend_with_config(ctx, nullptr, 0); }

wasi_nn_error init_backend_with_config(void** ctx, const char* config, uint32_t config_len) {
    if (!ctx) {
        bad_arg("init_backend", "ctx out-pointer is NULL");
        return invalid_argument;
    }
    std::string_view cfg;
    if (!optional_text("init_backend_with_config", "config", config, config_len, &cfg)) return invalid_argument;
    return to_wamr(open_backend(cfg, ctx));
}

wasi_nn_error deinit_backend(void* ctx) { return to_wamr(close_backend(ctx)); }

wasi_nn_error load(void* ctx, graph_builder_array* builder, graph_encoding encoding, execution_target target,
                   graph* g) {
    auto b = find_backend(ctx, "load");
    if (!b) return invalid_argument;
    if (!builder || !g) {
        bad_arg("load", "builder or graph out-pointer is NULL");
        return invalid_argument;
    }
    if (encoding != ggml && encoding != autodetect) {
        bad_arg("load", "encoding must be ggml (5) or autodetect (6), got " + std::to_string(encoding));
        return invalid_encoding;
    }
    if (target != cpu && target != gpu && target != tpu) {
        bad_arg("load", "unknown execution target " + std::to_string(target));
        return invalid_argument;
    }
    if (builder->size < 1 || !builder->buf || !builder->buf[0].buf || builder->buf[0].size == 0) {
        bad_arg("load", "builder must hold one non-empty buffer with the GGUF bytes");
        return invalid_argument;
    }
    return to_wamr(b->load_bytes(builder->buf[0].buf, builder->buf[0].size, g));
}

wasi_nn_error load_by_name(void* ctx, const char* name, uint32_t name_len, graph* g) {
    return load_by_name_with_config(ctx, name, name_len, nullptr, 0, g);
}

wasi_nn_error load_by_name_with_config(void* ctx, const char* name, uint32_t name_len, const char* config,
                                       uint32_t config_len, graph* g) {
    auto b = find_backend(ctx, "load_by_name");
    if (!b) return invalid_argument;
    std::string_view path, cfg;
    if (!g) {
        bad_arg("load_by_name", "graph out-pointer is NULL");
        return invalid_argument;
    }
    if (!required_text("load_by_name", "name", name, name_len, &path)) return invalid_argument;
    if (!optional_text("load_by_name_with_config", "config", config, config_len, &cfg)) return invalid_argument;
    return to_wamr(b->load_file(path, cfg, g));
}

wasi_nn_error unload(void* ctx, graph g) {
    auto b = find_backend(ctx, "unload");
    if (!b) return invalid_argument;
    return to_wamr(b->unload(g));
}

wasi_nn_error init_execution_context(void* ctx, graph g, graph_execution_context* exec) {
    auto b = find_backend(ctx, "init_execution_context");
    if (!b) return invalid_argument;
    if (!exec) {
        bad_arg("init_execution_context", "exec out-pointer is NULL");
        return invalid_argument;
    }
    return to_wamr(b->init_exec(g, exec));
}

wasi_nn_error init_execution_context_with_session_id(void* ctx, const char* session_id,
                                                     graph_execution_context* exec) {
    auto b = find_backend(ctx, "init_execution_context_with_session_id");
    if (!b) return invalid_argument;
    if (!session_id || !exec) {
        bad_arg("init_execution_context_with_session_id", "session_id or exec out-pointer is NULL");
        return invalid_argument;
    }
    return to_wamr(b->init_exec_with_session(std::string_view(session_id, strnlen(session_id, 257)), exec));
}

wasi_nn_error close_execution_context(void* ctx, graph_execution_context exec) {
    auto b = find_backend(ctx, "close_execution_context");
    if (!b) return invalid_argument;
    return to_wamr(b->close_exec(exec));
}

wasi_nn_error set_input(void* ctx, graph_execution_context exec, uint32_t index, tensor* t) {
    auto b = find_backend(ctx, "set_input");
    if (!b) return invalid_argument;
    std::string_view text;
    wasi_nn_error err;
    if (!tensor_text("set_input", t, &text, &err)) return err;
    if (index == 0 && text.empty()) {
        bad_arg("set_input", "prompt is empty");
        return invalid_argument;
    }
    return to_wamr(b->set_input(exec, index, text));
}

wasi_nn_error compute(void* ctx, graph_execution_context exec) {
    auto b = find_backend(ctx, "compute");
    if (!b) return invalid_argument;
    return to_wamr(b->compute(exec));
}

wasi_nn_error get_output(void* ctx, graph_execution_context exec, uint32_t index, tensor_data* out,
                         uint32_t* out_size) {
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
    Status st = b->get_output(exec, index, &text);
    if (st != Status::ok) return to_wamr(st);
    if (copy_out(text, out->buf, out->size, false, out_size) == CopyResult::too_large) {
        bad_arg("get_output", "output is " + std::to_string(text.size()) + " bytes; the buffer holds " +
                                  std::to_string(out->size));
        return too_large;
    }
    return success;
}

wasi_nn_error run_inference(void* ctx, graph_execution_context exec, uint32_t index, tensor* input, uint8_t* out,
                            uint32_t* out_size, const char* runtime_config, uint32_t runtime_config_len) {
    auto b = find_backend(ctx, "run_inference");
    if (!b) return invalid_argument;
    std::string_view text, cfg;
    wasi_nn_error err;
    if (!tensor_text("run_inference", input, &text, &err)) return err;
    if (text.empty()) {
        bad_arg("run_inference", "prompt is empty");
        return invalid_argument;
    }
    if (!out || !out_size) {
        bad_arg("run_inference", "output buffer or out_size is NULL");
        return invalid_argument;
    }
    if (!optional_text("run_inference", "runtime_config", runtime_config, runtime_config_len, &cfg)) {
        return invalid_argument;
    }
    const uint32_t capacity = *out_size;
    std::string result;
    Status st = b->run_inference(exec, index, text, cfg, &result);
    if (st != Status::ok && st != Status::context_full) return to_wamr(st);
    if (copy_out(result, out, capacity, true, out_size) == CopyResult::too_large) {
        bad_arg("run_inference", "output needs " + std::to_string(*out_size) + " bytes; the buffer holds " +
                                     std::to_string(capacity));
        return too_large;
    }
    return to_wamr(st);
}

wasi_nn_error get_backend_status(void* ctx, backend_status_type type, char* buf, uint32_t buf_size) {
    auto b = find_backend(ctx, "get_backend_status");
    if (!b) return invalid_argument;
    if (type < BACKEND_STATUS_QUEUE || type > BACKEND_STATUS_MODEL) {
        bad_arg("get_backend_status", "unknown status type " + std::to_string(type));
        return invalid_argument;
    }
    if (!buf || buf_size == 0) {
        bad_arg("get_backend_status", "buffer is NULL or has size 0");
        return invalid_argument;
    }
    std::string json;
    Status st = b->backend_status(static_cast<StatusKind>(type), &json);
    if (st != Status::ok) return to_wamr(st);
    uint32_t written = 0;
    if (copy_out(json, reinterpret_cast<uint8_t*>(buf), buf_size, true, &written) == CopyResult::too_large) {
        bad_arg("get_backend_status", "status needs " + std::to_string(written) + " bytes");
        return too_large;
    }
    return success;
}

wasi_nn_error compute_single(void* ctx, graph_execution_context) {
    if (!find_backend(ctx, "compute_single")) return invalid_argument;
    bad_arg("compute_single", "streaming is not supported yet");
    return unsupported_operation;
}

wasi_nn_error get_output_single(void* ctx, graph_execution_context, uint32_t, uint8_t*, uint32_t*) {
    if (!find_backend(ctx, "get_output_single")) return invalid_argument;
    bad_arg("get_output_single", "streaming is not supported yet");
    return unsupported_operation;
}

wasi_nn_error fini_single(void* ctx, graph_execution_context) {
    if (!find_backend(ctx, "fini_single")) return invalid_argument;
    bad_arg("fini_single", "streaming is not supported yet");
    return unsupported_operation;
}

const char* wasi_nn_llama_version(void) { return library_version(); }

}  // extern "C"
