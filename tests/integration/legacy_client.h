// The legacy ABI loaded with dlopen, for tests.
#pragma once

#include <dlfcn.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "wasi_nn_backend.h"

namespace wnl_test {

struct LegacyApi {
    void* lib = nullptr;
    decltype(&::init_backend) init_backend = nullptr;
    decltype(&::init_backend_with_config) init_backend_with_config = nullptr;
    decltype(&::deinit_backend) deinit_backend = nullptr;
    decltype(&::load_by_name) load_by_name = nullptr;
    decltype(&::load_by_name_with_config) load_by_name_with_config = nullptr;
    decltype(&::init_execution_context_with_session_id) init_execution_context_with_session_id = nullptr;
    decltype(&::close_execution_context) close_execution_context = nullptr;
    decltype(&::run_inference) run_inference = nullptr;
    decltype(&::get_backend_status) get_backend_status = nullptr;

    static LegacyApi& get() {
        static LegacyApi api = [] {
            LegacyApi a;
            std::string path = std::string(WNL_LIB_DIR) + "/libwasi_nn_backend.so";
            a.lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!a.lib) throw std::runtime_error(dlerror());
            auto sym = [&](auto& fn, const char* name) {
                fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(a.lib, name));
                if (!fn) throw std::runtime_error(std::string("missing symbol ") + name);
            };
            sym(a.init_backend, "init_backend");
            sym(a.init_backend_with_config, "init_backend_with_config");
            sym(a.deinit_backend, "deinit_backend");
            sym(a.load_by_name, "load_by_name");
            sym(a.load_by_name_with_config, "load_by_name_with_config");
            sym(a.init_execution_context_with_session_id, "init_execution_context_with_session_id");
            sym(a.close_execution_context, "close_execution_context");
            sym(a.run_inference, "run_inference");
            sym(a.get_backend_status, "get_backend_status");
            return a;
        }();
        return api;
    }
};

// Runs one prompt the way the original project's suite does: a
// NUL-terminated u8 tensor without dimensions, through run_inference.
// host_config goes to init_backend_with_config, guest_config to the load.
inline wasi_nn_error legacy_run(const std::string& model, const std::string& host_config,
                                const std::string& guest_config, const std::string& session,
                                const std::string& prompt, std::string* reply) {
    LegacyApi& api = LegacyApi::get();
    void* ctx = nullptr;
    wasi_nn_error rc =
        api.init_backend_with_config(&ctx, host_config.c_str(), static_cast<uint32_t>(host_config.size()));
    if (rc != success) return rc;
    graph g = 0;
    graph_execution_context e = 0;
    rc = api.load_by_name_with_config(ctx, model.c_str(), static_cast<uint32_t>(model.size()), guest_config.c_str(),
                                      static_cast<uint32_t>(guest_config.size()), &g);
    if (rc == success) rc = api.init_execution_context_with_session_id(ctx, session.c_str(), &e);
    if (rc == success) {
        tensor t{};
        t.type = u8;
        t.data = reinterpret_cast<uint8_t*>(const_cast<char*>(prompt.c_str()));
        std::vector<uint8_t> out(1 << 16);
        uint32_t size = static_cast<uint32_t>(out.size());
        rc = api.run_inference(ctx, e, 0, &t, out.data(), &size, nullptr, 0);
        if (rc == success && size > 0) reply->assign(reinterpret_cast<char*>(out.data()), size - 1);
        api.close_execution_context(ctx, e);
    }
    api.deinit_backend(ctx);
    return rc;
}

inline wasi_nn_error legacy_run(const std::string& model, const std::string& config, const std::string& session,
                                const std::string& prompt, std::string* reply) {
    return legacy_run(model, config, config, session, prompt, reply);
}

}  // namespace wnl_test
