// What every bench program needs from libwasi_nn_llamacpp.so: its entry
// points, dlopen()ed as WAMR's wasi-nn host loads it, and a reader for the
// numbers in the metadata and status JSON.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "wasi_nn_llamacpp.h"

namespace bench {

struct WamrApi {
    decltype(&::init_backend_with_config) init_backend_with_config = nullptr;
    decltype(&::deinit_backend) deinit_backend = nullptr;
    decltype(&::load_by_name_with_config) load_by_name_with_config = nullptr;
    decltype(&::init_execution_context) init_execution_context = nullptr;
    decltype(&::init_execution_context_with_session_id) init_session = nullptr;
    decltype(&::close_execution_context) close_execution_context = nullptr;
    decltype(&::set_input) set_input = nullptr;
    decltype(&::compute) compute = nullptr;
    decltype(&::get_output) get_output = nullptr;
    decltype(&::get_backend_status) get_backend_status = nullptr;
};

template <typename F>
bool sym(void* h, const char* name, F* out, const char* prog) {
    *out = reinterpret_cast<F>(dlsym(h, name));
    if (!*out) std::fprintf(stderr, "%s: symbol %s missing: %s\n", prog, name, dlerror());
    return *out != nullptr;
}

// dlopen()s `lib` and resolves every entry point; prints why on failure.
inline bool load_api(const std::string& lib, const char* prog, WamrApi* api) {
    void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        std::fprintf(stderr, "%s: dlopen %s: %s\n", prog, lib.c_str(), dlerror());
        return false;
    }
    return sym(h, "init_backend_with_config", &api->init_backend_with_config, prog) &&
           sym(h, "deinit_backend", &api->deinit_backend, prog) &&
           sym(h, "load_by_name_with_config", &api->load_by_name_with_config, prog) &&
           sym(h, "init_execution_context", &api->init_execution_context, prog) &&
           sym(h, "init_execution_context_with_session_id", &api->init_session, prog) &&
           sym(h, "close_execution_context", &api->close_execution_context, prog) &&
           sym(h, "set_input", &api->set_input, prog) && sym(h, "compute", &api->compute, prog) &&
           sym(h, "get_output", &api->get_output, prog) && sym(h, "get_backend_status", &api->get_backend_status, prog);
}

// The value of the first numeric `key` at or after `from` in a JSON document.
inline bool json_number(const std::string& j, const char* key, double* out, size_t from = 0) {
    const std::string k = std::string("\"") + key + "\"";
    size_t at = j.find(k, from);
    if (at == std::string::npos) return false;
    at += k.size();
    while (at < j.size() && (j[at] == ' ' || j[at] == ':')) ++at;
    char* end = nullptr;
    *out = std::strtod(j.c_str() + at, &end);
    return end != j.c_str() + at;
}

// One request's numbers, from its output metadata (get_output index 1).
struct Result {
    double input = 0, output = 0, cached = 0, queue_ms = 0, prefill_ms = 0, decode_ms = 0, wall_ms = 0;
    std::string meta;
    double pp_ts() const { return prefill_ms > 0 ? (input - cached) * 1000.0 / prefill_ms : 0; }
    // Decode steps after the first token (sampled from the prompt's logits).
    double tg_ts() const { return decode_ms > 0 && output > 1 ? (output - 1) * 1000.0 / decode_ms : 0; }
};

inline wasi_nn_error set_text(const WamrApi& api, void* ctx, graph_execution_context exec, uint32_t index,
                              const std::string& text) {
    uint32_t dim = static_cast<uint32_t>(text.size());
    tensor_dimensions dims{&dim, 1};
    tensor t{};
    t.dimensions = &dims;
    t.type = u8;
    t.data.buf = reinterpret_cast<uint8_t*>(const_cast<char*>(text.data()));
    t.data.size = dim;
    return api.set_input(ctx, exec, index, &t);
}

// One request on a fresh anonymous execution context of graph `g`: the
// prompt, the per-request options, compute, the metadata. Prints why on
// failure.
inline bool run_request(const WamrApi& api, void* ctx, graph g, const std::string& prompt, const std::string& options,
                        Result* res, const char* prog) {
    graph_execution_context exec = 0;
    wasi_nn_error e = api.init_execution_context(ctx, g, &exec);
    if (e != success) {
        std::fprintf(stderr, "%s: init_execution_context failed: %d\n", prog, e);
        return false;
    }
    bool ok = false;
    do {
        if ((e = set_text(api, ctx, exec, 0, prompt)) != success) {
            std::fprintf(stderr, "%s: set_input(0) failed: %d\n", prog, e);
            break;
        }
        if ((e = set_text(api, ctx, exec, 1, options)) != success) {
            std::fprintf(stderr, "%s: set_input(1) failed: %d\n", prog, e);
            break;
        }
        auto t0 = std::chrono::steady_clock::now();
        e = api.compute(ctx, exec);
        auto t1 = std::chrono::steady_clock::now();
        if (e != success) {
            std::fprintf(stderr, "%s: compute failed: %d\n", prog, e);
            break;
        }
        std::vector<uint8_t> buf(1 << 16);
        tensor_data out{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t n = 0;
        if ((e = api.get_output(ctx, exec, 1, &out, &n)) != success) {
            std::fprintf(stderr, "%s: get_output(1) failed: %d\n", prog, e);
            break;
        }
        res->meta.assign(reinterpret_cast<char*>(buf.data()), n);
        res->wall_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
        if (!json_number(res->meta, "input_tokens", &res->input) ||
            !json_number(res->meta, "output_tokens", &res->output) ||
            !json_number(res->meta, "cached_tokens", &res->cached) ||
            !json_number(res->meta, "queue_ms", &res->queue_ms) ||
            !json_number(res->meta, "prefill_ms", &res->prefill_ms) ||
            !json_number(res->meta, "decode_ms", &res->decode_ms)) {
            std::fprintf(stderr, "%s: metadata lacks a field: %s\n", prog, res->meta.c_str());
            break;
        }
        ok = true;
    } while (false);
    api.close_execution_context(ctx, exec);
    return ok;
}

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace bench
