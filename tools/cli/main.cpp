// wasi-nn-llama: runs a model through the library's C ABI, loaded with
// dlopen exactly as a WebAssembly runtime loads it.
//
//   wasi-nn-llama run  -m MODEL -p PROMPT [--config JSON] [--stream] [--lib PATH]
//   wasi-nn-llama chat -m MODEL [--config JSON] [--session ID] [--status] [--stream] [--lib PATH]
//   wasi-nn-llama status -m MODEL [-p PROMPT] [--config JSON] [--lib PATH]
#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wasi_nn_llamacpp.h"

namespace {

struct Api {
    void* handle = nullptr;
    decltype(&::init_backend_with_config) init_backend_with_config = nullptr;
    decltype(&::deinit_backend) deinit_backend = nullptr;
    decltype(&::load_by_name_with_config) load_by_name_with_config = nullptr;
    decltype(&::init_execution_context) init_execution_context = nullptr;
    decltype(&::init_execution_context_with_session_id) init_execution_context_with_session_id = nullptr;
    decltype(&::close_execution_context) close_execution_context = nullptr;
    decltype(&::set_input) set_input = nullptr;
    decltype(&::compute) compute = nullptr;
    decltype(&::get_output) get_output = nullptr;
    decltype(&::get_backend_status) get_backend_status = nullptr;
    decltype(&::compute_single) compute_single = nullptr;
    decltype(&::get_output_single) get_output_single = nullptr;
    decltype(&::fini_single) fini_single = nullptr;
};

const char* error_name(int e) {
    switch (e) {
        case success: return "success";
        case invalid_argument: return "invalid_argument";
        case invalid_encoding: return "invalid_encoding";
        case missing_memory: return "missing_memory";
        case busy: return "busy";
        case runtime_error: return "runtime_error";
        case unsupported_operation: return "unsupported_operation";
        case too_large: return "too_large";
        case not_found: return "not_found";
        case end_of_sequence: return "end_of_sequence";
        case context_full: return "context_full";
        case prompt_tool_long: return "prompt_tool_long";
        case model_not_found: return "model_not_found";
        default: return "unknown";
    }
}

std::string self_dir() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string p(buf, static_cast<size_t>(n));
    return p.substr(0, p.find_last_of('/'));
}

bool open_library(const std::string& explicit_path, Api* api) {
    std::vector<std::string> candidates;
    if (!explicit_path.empty()) candidates.push_back(explicit_path);
    if (const char* env = std::getenv("WASI_NN_LLAMA_LIB")) candidates.push_back(env);
    if (explicit_path.empty()) {
        candidates.push_back(self_dir() + "/../lib/libwasi_nn_llamacpp.so");
        candidates.push_back(std::string(WNL_DEFAULT_LIB_DIR) + "/libwasi_nn_llamacpp.so");
        candidates.push_back("libwasi_nn_llamacpp.so");
    }
    std::string errors;
    for (const auto& c : candidates) {
        api->handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (api->handle) break;
        errors += std::string("\n  ") + dlerror();
    }
    if (!api->handle) {
        std::fprintf(stderr, "error: cannot load libwasi_nn_llamacpp.so:%s\n", errors.c_str());
        return false;
    }
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(api->handle, name));
        if (!fn) {
            std::fprintf(stderr, "error: the library lacks the symbol %s\n", name);
            ok = false;
        }
    };
    sym(api->init_backend_with_config, "init_backend_with_config");
    sym(api->deinit_backend, "deinit_backend");
    sym(api->load_by_name_with_config, "load_by_name_with_config");
    sym(api->init_execution_context, "init_execution_context");
    sym(api->init_execution_context_with_session_id, "init_execution_context_with_session_id");
    sym(api->close_execution_context, "close_execution_context");
    sym(api->set_input, "set_input");
    sym(api->compute, "compute");
    sym(api->get_output, "get_output");
    sym(api->get_backend_status, "get_backend_status");
    sym(api->compute_single, "compute_single");
    sym(api->get_output_single, "get_output_single");
    sym(api->fini_single, "fini_single");
    return ok;
}

bool check(wasi_nn_error e, const char* what) {
    if (e == success) return true;
    std::fprintf(stderr, "error: %s failed: %d (%s)\n", what, static_cast<int>(e), error_name(e));
    return false;
}

struct Options {
    std::string command, model, prompt, config, lib, session;
    bool show_stats = true;
    bool show_status = false;  // chat: print the status documents after each turn
    bool stream = false;  // print the reply piece by piece (compute_single)
};

void usage() {
    std::fprintf(stderr,
                 "usage:\n"
                 "  wasi-nn-llama run  -m MODEL -p PROMPT [--config JSON] [--stream] [--lib PATH] [--quiet]\n"
                 "  wasi-nn-llama chat -m MODEL [--config JSON] [--session ID] [--status] [--stream] [--lib PATH]\n"
                 "                     [--quiet]\n"
                 "  wasi-nn-llama status -m MODEL [-p PROMPT] [--config JSON] [--lib PATH]\n"
                 "\n"
                 "status loads the model, runs PROMPT once if given, and prints the five\n"
                 "get_backend_status documents. In chat, /status prints them too, and\n"
                 "--status prints them after every turn. --stream prints each reply as it is\n"
                 "generated (compute_single / get_output_single / fini_single).\n"
                 "\n"
                 "The library is loaded with dlopen, as a WebAssembly runtime loads it: --lib,\n"
                 "else $WASI_NN_LLAMA_LIB, else ../lib next to this program, else the build tree.\n");
}

bool parse_args(int argc, char** argv, Options* o) {
    if (argc < 2) return false;
    o->command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&](std::string* dst) {
            if (i + 1 >= argc) return false;
            *dst = argv[++i];
            return true;
        };
        if ((a == "-m" || a == "--model") && next(&o->model)) continue;
        if ((a == "-p" || a == "--prompt") && next(&o->prompt)) continue;
        if ((a == "-c" || a == "--config") && next(&o->config)) continue;
        if (a == "--lib" && next(&o->lib)) continue;
        if (a == "--session" && next(&o->session)) continue;
        if (a == "--status") {
            o->show_status = true;
            continue;
        }
        if (a == "--stream") {
            o->stream = true;
            continue;
        }
        if (a == "-q" || a == "--quiet") {
            o->show_stats = false;
            continue;
        }
        std::fprintf(stderr, "error: unexpected argument '%s'\n", a.c_str());
        return false;
    }
    return true;
}

class Client {
public:
    Client(const Api& api, const Options& o) : api_(api), o_(o) {}
    ~Client() {
        if (exec_open_) api_.close_execution_context(ctx_, exec_);
        if (ctx_) api_.deinit_backend(ctx_);
    }

    bool start() {
        if (!check(api_.init_backend_with_config(&ctx_, o_.config.c_str(), static_cast<uint32_t>(o_.config.size())),
                   "init_backend_with_config"))
            return false;
        std::fprintf(stderr, "loading model %s ...\n", o_.model.c_str());
        auto t0 = std::chrono::steady_clock::now();
        graph g = 0;
        // --config is the host's (whoever runs this program): it goes to
        // init_backend_with_config, which applies it to every graph and
        // request, host-only keys (rpc_servers, model_dirs, ...) included.
        // -m is looked up like a guest's name: a policy alias, or a path the
        // host's rules allow.
        if (!check(api_.load_by_name_with_config(ctx_, o_.model.c_str(), static_cast<uint32_t>(o_.model.size()),
                                                 nullptr, 0, &g),
                   "load_by_name_with_config"))
            return false;
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "model loaded: %s in %.1f ms\n", o_.model.c_str(), ms);
        wasi_nn_error e = o_.session.empty()
                              ? api_.init_execution_context(ctx_, g, &exec_)
                              : api_.init_execution_context_with_session_id(ctx_, o_.session.c_str(), &exec_);
        if (!check(e, "init_execution_context")) return false;
        exec_open_ = true;
        return true;
    }

    // Sends one message; prints the reply to stdout.
    bool turn(const std::string& text) {
        uint32_t dim = static_cast<uint32_t>(text.size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(text.data())), dim};
        if (!check(api_.set_input(ctx_, exec_, 0, &t), "set_input")) return false;
        std::string reply, meta;
        wasi_nn_error ce = o_.stream ? stream_reply() : api_.compute(ctx_, exec_);
        if (ce != success && ce != context_full) return check(ce, o_.stream ? "compute_single" : "compute");
        if (!o_.stream) {
            if (!check(output(0, &reply), "get_output")) return false;
            std::fwrite(reply.data(), 1, reply.size(), stdout);
        }
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (o_.show_stats && output(1, &meta) == success) std::fprintf(stderr, "[%s]\n", meta.c_str());
        return ce == success || check(ce, "compute");
    }

    // Prints the five get_backend_status documents, indented.
    bool print_status() {
        static const std::pair<backend_status_type, const char*> kinds[] = {
            {BACKEND_STATUS_MODEL, "model"},       {BACKEND_STATUS_QUEUE, "queue"},
            {BACKEND_STATUS_SESSIONS, "sessions"}, {BACKEND_STATUS_MEMORY, "memory"},
            {BACKEND_STATUS_PERFORMANCE, "performance"}};
        bool ok = true;
        for (const auto& [kind, name] : kinds) {
            std::vector<char> buf(1 << 16);
            wasi_nn_error e = api_.get_backend_status(ctx_, kind, buf.data(), static_cast<uint32_t>(buf.size()));
            if (e == too_large) {
                buf.resize(1 << 22);
                e = api_.get_backend_status(ctx_, kind, buf.data(), static_cast<uint32_t>(buf.size()));
            }
            if (!check(e, "get_backend_status")) {
                ok = false;
                continue;
            }
            auto doc = nlohmann::ordered_json::parse(buf.data(), nullptr, false);
            std::printf("== %s\n%s\n", name, doc.is_discarded() ? buf.data() : doc.dump(2).c_str());
        }
        std::fflush(stdout);
        return ok;
    }

private:
    // Prints each piece as compute_single makes it, then ends the stream;
    // success when the reply completed (or context_full).
    wasi_nn_error stream_reply() {
        std::vector<uint8_t> buf(4096);
        wasi_nn_error e;
        while ((e = api_.compute_single(ctx_, exec_)) == success) {
            uint32_t size = static_cast<uint32_t>(buf.size());
            wasi_nn_error oe = api_.get_output_single(ctx_, exec_, 0, buf.data(), &size);
            if (oe == too_large) {
                buf.resize(size);
                oe = api_.get_output_single(ctx_, exec_, 0, buf.data(), &size);
            }
            if (oe != success) {
                api_.fini_single(ctx_, exec_);
                return oe;
            }
            std::fwrite(buf.data(), 1, size, stdout);
            std::fflush(stdout);
        }
        wasi_nn_error fe = api_.fini_single(ctx_, exec_);
        if (e == end_of_sequence) return fe;
        return e;
    }

    wasi_nn_error output(uint32_t index, std::string* out) {
        std::vector<uint8_t> buf(4096);
        for (int attempt = 0; attempt < 2; ++attempt) {
            tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
            uint32_t size = 0;
            wasi_nn_error e = api_.get_output(ctx_, exec_, index, &td, &size);
            if (e == too_large) {
                buf.resize(size);
                continue;
            }
            if (e == success) out->assign(reinterpret_cast<char*>(buf.data()), size);
            return e;
        }
        return too_large;
    }

    const Api& api_;
    const Options& o_;
    void* ctx_ = nullptr;
    graph_execution_context exec_ = 0;
    bool exec_open_ = false;
};

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse_args(argc, argv, &o) || (o.command != "run" && o.command != "chat" && o.command != "status")) {
        usage();
        return 2;
    }
    if (o.model.empty() || (o.command == "run" && o.prompt.empty())) {
        usage();
        return 2;
    }
    Api api;
    if (!open_library(o.lib, &api)) return 1;
    Client client(api, o);
    if (!client.start()) return 1;
    if (o.command == "run") return client.turn(o.prompt) ? 0 : 1;
    if (o.command == "status") {
        if (!o.prompt.empty() && !client.turn(o.prompt)) return 1;
        return client.print_status() ? 0 : 1;
    }

    std::fprintf(stderr, "chat: type a message and press Enter; /quit or Ctrl-D ends.\n");
    std::string line;
    for (;;) {
        std::fprintf(stderr, "> ");
        if (!std::getline(std::cin, line) || line == "/quit") break;
        if (line.empty()) continue;
        if (line == "/status") {
            client.print_status();
            continue;
        }
        if (!client.turn(line)) return 1;
        if (o.show_status) client.print_status();
    }
    return 0;
}
