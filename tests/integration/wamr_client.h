// The WAMR 2.4 ABI loaded with dlopen, with small helpers for tests.
#pragma once

#include <dlfcn.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "wasi_nn_llamacpp.h"

namespace wnl_test {

struct WamrApi {
    void* lib = nullptr;
#define WNL_SYM(name) decltype(&::name) name = nullptr;
    WNL_SYM(init_backend)
    WNL_SYM(init_backend_with_config)
    WNL_SYM(deinit_backend)
    WNL_SYM(load)
    WNL_SYM(load_by_name)
    WNL_SYM(load_by_name_with_config)
    WNL_SYM(init_execution_context)
    WNL_SYM(init_execution_context_with_session_id)
    WNL_SYM(close_execution_context)
    WNL_SYM(set_input)
    WNL_SYM(compute)
    WNL_SYM(get_output)
    WNL_SYM(run_inference)
    WNL_SYM(compute_single)
    WNL_SYM(get_output_single)
    WNL_SYM(fini_single)
    WNL_SYM(unload)
    WNL_SYM(swap_graph)
    WNL_SYM(reload_aliases)
    WNL_SYM(get_backend_status)
#undef WNL_SYM

    static WamrApi& get() {
        static WamrApi api = open();
        return api;
    }

private:
    static WamrApi open() {
        WamrApi a;
        std::string path = std::string(WNL_LIB_DIR) + "/libwasi_nn_llamacpp.so";
        a.lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!a.lib) throw std::runtime_error(dlerror());
#define WNL_SYM(name)                                                              \
    a.name = reinterpret_cast<decltype(&::name)>(dlsym(a.lib, #name));             \
    if (!a.name) throw std::runtime_error("missing symbol " #name);
        WNL_SYM(init_backend)
        WNL_SYM(init_backend_with_config)
        WNL_SYM(deinit_backend)
        WNL_SYM(load)
        WNL_SYM(load_by_name)
        WNL_SYM(load_by_name_with_config)
        WNL_SYM(init_execution_context)
        WNL_SYM(init_execution_context_with_session_id)
        WNL_SYM(close_execution_context)
        WNL_SYM(set_input)
        WNL_SYM(compute)
        WNL_SYM(get_output)
        WNL_SYM(run_inference)
        WNL_SYM(compute_single)
        WNL_SYM(get_output_single)
        WNL_SYM(fini_single)
        WNL_SYM(unload)
        WNL_SYM(swap_graph)
        WNL_SYM(reload_aliases)
        WNL_SYM(get_backend_status)
#undef WNL_SYM
        return a;
    }
};

// One backend context with one graph. The config goes to both
// init_backend_with_config (the host's) and load_by_name_with_config (a
// guest's), unless a separate guest config is given: host-only keys such
// as the log file belong in the host's alone.
class WamrSession {
public:
    WamrSession(const std::string& model, const std::string& config) : WamrSession(model, config, config) {}
    WamrSession(const std::string& model, const std::string& host_config, const std::string& guest_config)
        : api_(WamrApi::get()) {
        if (api_.init_backend_with_config(&ctx_, host_config.data(), static_cast<uint32_t>(host_config.size())) !=
            success)
            throw std::runtime_error("init_backend_with_config failed");
        load_status_ = api_.load_by_name_with_config(ctx_, model.data(), static_cast<uint32_t>(model.size()),
                                                     guest_config.data(),
                                                     static_cast<uint32_t>(guest_config.size()), &graph_);
    }
    ~WamrSession() {
        for (auto e : execs_) api_.close_execution_context(ctx_, e);
        api_.deinit_backend(ctx_);
    }
    wasi_nn_error load_status() const { return load_status_; }
    void* ctx() const { return ctx_; }
    graph graph_id() const { return graph_; }

    // swap_graph on this context's graph.
    wasi_nn_error swap(const std::string& model, const std::string& config = "") {
        return api_.swap_graph(ctx_, graph_, model.data(), static_cast<uint32_t>(model.size()), config.data(),
                               static_cast<uint32_t>(config.size()));
    }
    // A get_backend_status document ("" when it failed).
    std::string status(backend_status_type type) {
        std::vector<char> buf(1 << 20);
        if (api_.get_backend_status(ctx_, type, buf.data(), static_cast<uint32_t>(buf.size())) != success) return "";
        return buf.data();
    }
    // Closes the handle now instead of at the end.
    wasi_nn_error close(graph_execution_context e) {
        for (size_t i = 0; i < execs_.size(); ++i) {
            if (execs_[i] == e) {
                execs_.erase(execs_.begin() + static_cast<std::ptrdiff_t>(i));
                break;
            }
        }
        return api_.close_execution_context(ctx_, e);
    }

    graph_execution_context open(const std::string& session_id = "") {
        graph_execution_context e = 0;
        wasi_nn_error rc = session_id.empty()
                               ? api_.init_execution_context(ctx_, graph_, &e)
                               : api_.init_execution_context_with_session_id(ctx_, session_id.c_str(), &e);
        if (rc != success) throw std::runtime_error("init_execution_context failed: " + std::to_string(rc));
        execs_.push_back(e);
        return e;
    }

    wasi_nn_error set_text(graph_execution_context e, uint32_t index, const std::string& text) {
        uint32_t dim = static_cast<uint32_t>(text.size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(text.data())), dim};
        return api_.set_input(ctx_, e, index, &t);
    }

    wasi_nn_error output(graph_execution_context e, uint32_t index, std::string* out) {
        std::vector<uint8_t> buf(1 << 16);
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t size = 0;
        wasi_nn_error rc = api_.get_output(ctx_, e, index, &td, &size);
        if (rc == success) out->assign(reinterpret_cast<char*>(buf.data()), size);
        return rc;
    }

    // set_input(0) [+ set_input(1)] + compute + get_output(0); metadata into *meta.
    wasi_nn_error turn(graph_execution_context e, const std::string& prompt, std::string* reply,
                       const std::string& options = "", std::string* meta = nullptr) {
        wasi_nn_error rc = set_text(e, 0, prompt);
        if (rc != success) return rc;
        if (!options.empty() && (rc = set_text(e, 1, options)) != success) return rc;
        rc = api_.compute(ctx_, e);
        if (rc != success) return rc;
        if (meta) output(e, 1, meta);
        return output(e, 0, reply);
    }

    // set_input(0) [+ set_input(1)], then compute_single until it stops
    // succeeding; the pieces into *pieces. Returns compute_single's last code
    // (end_of_sequence when the reply is complete). Leaves the stream open.
    wasi_nn_error stream(graph_execution_context e, const std::string& prompt, std::vector<std::string>* pieces,
                         const std::string& options = "") {
        wasi_nn_error rc = set_text(e, 0, prompt);
        if (rc != success) return rc;
        if (!options.empty() && (rc = set_text(e, 1, options)) != success) return rc;
        std::vector<uint8_t> buf(1 << 16);
        while ((rc = api_.compute_single(ctx_, e)) == success) {
            uint32_t size = static_cast<uint32_t>(buf.size());
            wasi_nn_error out = api_.get_output_single(ctx_, e, 0, buf.data(), &size);
            if (out != success) return out;
            pieces->emplace_back(reinterpret_cast<char*>(buf.data()), size);
        }
        return rc;
    }
    wasi_nn_error fini(graph_execution_context e) { return api_.fini_single(ctx_, e); }

private:
    WamrApi& api_;
    void* ctx_ = nullptr;
    graph graph_ = 0;
    wasi_nn_error load_status_ = runtime_error;
    std::vector<graph_execution_context> execs_;
};

}  // namespace wnl_test
