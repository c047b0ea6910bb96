// The entry points both ABIs share, written once over an ABI's traits: its
// error type and mapping, and how it reads a text tensor. Each ABI's .cpp
// supplies the traits and exports one-line extern "C" functions.
//
// Traits provide: Error; Error map(Status); Tensor; Status tensor_text(call,
// const Tensor*, std::string_view*); constants kEncodingGgml and
// kEncodingAutodetect; kUnparsableRuntimeConfigRunsWithGraphSettings (the
// legacy run_inference's one exception to "invalid JSON is refused").
#pragma once

#include <cstdint>
#include <exception>
#include <new>
#include <string>
#include <string_view>

#include "abi/arg_checks.h"
#include "engine/backend_registry.h"
#include "engine/config.h"

namespace wnl::abi {

template <class Abi>
struct Shim {
    using E = typename Abi::Error;
    static E code(Status s) { return Abi::map(s); }
    static E bad_context() { return code(Status::invalid_argument); }

    // Runs an entry point so that no C++ exception reaches the C caller: out
    // of memory becomes missing_memory, anything else runtime_error.
    template <class F>
    static E run(const char* call, F&& body) {
        try {
            return body();
        } catch (const std::bad_alloc&) {
            log(LogLevel::error, "abi", std::string(call) + ": out of memory");
            return code(Status::missing_memory);
        } catch (const std::exception& e) {
            log(LogLevel::error, "abi", std::string(call) + ": internal error: " + e.what());
        } catch (...) {
            log(LogLevel::error, "abi", std::string(call) + ": internal error");
        }
        return code(Status::runtime_error);
    }

    static E init_backend_with_config(void** ctx, const char* config, uint32_t config_len) {
        if (!ctx) {
            bad_arg("init_backend", "ctx out-pointer is NULL");
            return code(Status::invalid_argument);
        }
        std::string_view cfg;
        optional_text(config, config_len, &cfg);
        return code(open_backend(cfg, ctx));
    }

    static E deinit_backend(void* ctx) { return code(close_backend(ctx)); }

    template <class BuilderArray>
    static E load(void* ctx, const BuilderArray* builder, int encoding, int target, uint32_t* g) {
        auto b = find_backend(ctx, "load");
        if (!b) return bad_context();
        if (!builder || !g) {
            bad_arg("load", "builder or graph out-pointer is NULL");
            return code(Status::invalid_argument);
        }
        if (encoding != Abi::kEncodingGgml && encoding != Abi::kEncodingAutodetect) {
            bad_arg("load", "encoding must be ggml (5) or autodetect (6), got " + std::to_string(encoding));
            return code(Status::invalid_encoding);
        }
        if (target < 0 || target > 2) {
            bad_arg("load", "unknown execution target " + std::to_string(target));
            return code(Status::invalid_argument);
        }
        if (builder->size < 1 || !builder->buf || !builder->buf[0].buf || builder->buf[0].size == 0) {
            bad_arg("load", "builder must hold one non-empty buffer with the GGUF bytes");
            return code(Status::invalid_argument);
        }
        return code(b->load_bytes(builder->buf[0].buf, builder->buf[0].size, g));
    }

    static E load_by_name_with_config(void* ctx, const char* name, uint32_t name_len, const char* config,
                                      uint32_t config_len, uint32_t* g) {
        auto b = find_backend(ctx, "load_by_name");
        if (!b) return bad_context();
        if (!g) {
            bad_arg("load_by_name", "graph out-pointer is NULL");
            return code(Status::invalid_argument);
        }
        std::string_view path, cfg;
        if (!required_text("load_by_name", "name", name, name_len, &path)) return code(Status::invalid_argument);
        optional_text(config, config_len, &cfg);
        return code(b->load_file(path, cfg, g));
    }

    static E swap_graph(void* ctx, uint32_t g, const char* name, uint32_t name_len, const char* config,
                        uint32_t config_len) {
        auto b = find_backend(ctx, "swap_graph");
        if (!b) return bad_context();
        std::string_view path, cfg;
        if (!required_text("swap_graph", "name", name, name_len, &path)) return code(Status::invalid_argument);
        optional_text(config, config_len, &cfg);
        return code(b->swap_graph(g, path, cfg));
    }

    static E reload_aliases(void* ctx) {
        auto b = find_backend(ctx, "reload_aliases");
        return b ? code(b->reload_aliases()) : bad_context();
    }

    static E unload(void* ctx, uint32_t g) {
        auto b = find_backend(ctx, "unload");
        return b ? code(b->unload(g)) : bad_context();
    }

    static E init_execution_context(void* ctx, uint32_t g, uint32_t* exec) {
        auto b = find_backend(ctx, "init_execution_context");
        if (!b) return bad_context();
        if (!exec) {
            bad_arg("init_execution_context", "exec out-pointer is NULL");
            return code(Status::invalid_argument);
        }
        return code(b->init_exec(g, exec));
    }

    // The id is a C string: the ABI gives no length. At most 256 bytes are
    // read before the NUL must appear.
    static E init_execution_context_with_session_id(void* ctx, const char* session_id, uint32_t* exec) {
        auto b = find_backend(ctx, "init_execution_context_with_session_id");
        if (!b) return bad_context();
        if (!session_id || !exec) {
            bad_arg("init_execution_context_with_session_id", "session_id or exec out-pointer is NULL");
            return code(Status::invalid_argument);
        }
        return code(b->init_exec_with_session(std::string_view(session_id, strnlen(session_id, 257)), exec));
    }

    static E close_execution_context(void* ctx, uint32_t exec) {
        auto b = find_backend(ctx, "close_execution_context");
        return b ? code(b->close_exec(exec)) : bad_context();
    }

    static E set_input(void* ctx, uint32_t exec, uint32_t index, const typename Abi::Tensor* t) {
        auto b = find_backend(ctx, "set_input");
        if (!b) return bad_context();
        std::string_view text;
        Status st = Abi::tensor_text("set_input", t, &text);
        if (st != Status::ok) return code(st);
        if (index == 0 && text.empty()) {
            bad_arg("set_input", "prompt is empty");
            return code(Status::invalid_argument);
        }
        return code(b->set_input(exec, index, text));
    }

    static E compute(void* ctx, uint32_t exec) {
        auto b = find_backend(ctx, "compute");
        return b ? code(b->compute(exec)) : bad_context();
    }

    // get_output's text, or the engine's error. The caller checks out and
    // out_size first, by its ABI's output convention.
    static Status output_text(const std::shared_ptr<Backend>& b, uint32_t exec, uint32_t index, std::string* text) {
        return b->get_output(exec, index, text);
    }

    // Output goes to out with *out_size as capacity in and bytes written
    // (with a NUL) out, in both ABIs.
    static E run_inference(void* ctx, uint32_t exec, uint32_t index, const typename Abi::Tensor* input, uint8_t* out,
                           uint32_t* out_size, const char* runtime_config, uint32_t runtime_config_len) {
        auto b = find_backend(ctx, "run_inference");
        if (!b) return bad_context();
        std::string_view text, cfg;
        Status st = Abi::tensor_text("run_inference", input, &text);
        if (st != Status::ok) return code(st);
        if (text.empty()) {
            bad_arg("run_inference", "prompt is empty");
            return code(Status::invalid_argument);
        }
        if (!out || !out_size) {
            bad_arg("run_inference", "output buffer or out_size is NULL");
            return code(Status::invalid_argument);
        }
        optional_text(runtime_config, runtime_config_len, &cfg);
        std::string why;
        if (Abi::kUnparsableRuntimeConfigRunsWithGraphSettings && !config_text_parses(cfg, &why)) {
            // The original legacy library ran such a request with its
            // defaults, and programs written against it rely on that.
            log(LogLevel::warn, "config", "run_inference: runtime config does not parse; running with the graph's settings",
                {{"error", why}});
            cfg = {};
        }
        const uint32_t capacity = *out_size;
        std::string result;
        st = b->run_inference(exec, index, text, cfg, &result);
        if (st != Status::ok && st != Status::context_full) return code(st);
        if (copy_out(result, out, capacity, true, out_size) == CopyResult::too_large) {
            bad_arg("run_inference", "output needs " + std::to_string(*out_size) + " bytes; the buffer holds " +
                                         std::to_string(capacity));
            return code(Status::too_large);
        }
        return code(st);
    }

    // A NUL-terminated JSON document.
    static E get_backend_status(void* ctx, int type, char* buf, uint32_t buf_size) {
        auto b = find_backend(ctx, "get_backend_status");
        if (!b) return bad_context();
        if (type < 0 || type > static_cast<int>(StatusKind::model)) {
            bad_arg("get_backend_status", "unknown status type " + std::to_string(type));
            return code(Status::invalid_argument);
        }
        if (!buf || buf_size == 0) {
            bad_arg("get_backend_status", "buffer is NULL or has size 0");
            return code(Status::invalid_argument);
        }
        std::string json;
        Status st = b->backend_status(static_cast<StatusKind>(type), &json);
        if (st != Status::ok) return code(st);
        uint32_t written = 0;
        if (copy_out(json, reinterpret_cast<uint8_t*>(buf), buf_size, true, &written) == CopyResult::too_large) {
            bad_arg("get_backend_status", "status needs " + std::to_string(written) + " bytes");
            return code(Status::too_large);
        }
        return code(Status::ok);
    }

    static E compute_single(void* ctx, uint32_t exec) {
        auto b = find_backend(ctx, "compute_single");
        return b ? code(b->compute_single(exec)) : bad_context();
    }

    // *out_size is the capacity on entry and the bytes written on return;
    // with_nul: the ABI's output convention (legacy: a NUL, counted).
    static E get_output_single(void* ctx, uint32_t exec, uint32_t index, uint8_t* out, uint32_t* out_size,
                               bool with_nul) {
        auto b = find_backend(ctx, "get_output_single");
        if (!b) return bad_context();
        if (!out_size || (!out && *out_size > 0)) {
            bad_arg("get_output_single", "out_size is NULL, or the buffer is NULL with a non-zero capacity");
            return code(Status::invalid_argument);
        }
        const uint32_t capacity = *out_size;
        std::string text;
        Status st = b->get_output_single(exec, index, &text);
        if (st != Status::ok) return code(st);
        if (copy_out(text, out, capacity, with_nul, out_size) == CopyResult::too_large) {
            bad_arg("get_output_single", "output needs " + std::to_string(*out_size) + " bytes; the buffer holds " +
                                             std::to_string(capacity));
            return code(Status::too_large);
        }
        return code(Status::ok);
    }

    static E fini_single(void* ctx, uint32_t exec) {
        auto b = find_backend(ctx, "fini_single");
        return b ? code(b->fini_single(exec)) : bad_context();
    }
};

}  // namespace wnl::abi
