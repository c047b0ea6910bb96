// Many threads, backend contexts and models at once, with priorities,
// streams, closes and timeouts mixed in: every request must end with a defined
// result, and nothing may crash, hang or race (run under TSan in CI).
//
//   stress_test [threads] [requests_per_thread] [backends] [session_store_dir]
// Defaults are sized for CI; the full load of issue #4 is 64 1000 8. With a
// session store directory, every backend context keeps its named sessions
// there (docs/sessions.md), two contexts to a namespace, so that turns are
// stored, KV files written and read, and sessions evicted under the load.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "wasi_nn_llamacpp.h"

namespace {

struct Api {
#define SYM(name) decltype(&::name) name = nullptr;
    SYM(init_backend_with_config)
    SYM(deinit_backend)
    SYM(load_by_name_with_config)
    SYM(init_execution_context)
    SYM(init_execution_context_with_session_id)
    SYM(close_execution_context)
    SYM(set_input)
    SYM(compute)
    SYM(get_output)
    SYM(compute_single)
    SYM(get_output_single)
    SYM(fini_single)
#undef SYM
};

Api open_api() {
    std::string path = std::string(WNL_LIB_DIR) + "/libwasi_nn_llamacpp.so";
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        std::exit(2);
    }
    Api a;
#define SYM(name)                                                           \
    a.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name));        \
    if (!a.name) {                                                          \
        std::fprintf(stderr, "missing symbol %s\n", #name);                \
        std::exit(2);                                                       \
    }
    SYM(init_backend_with_config)
    SYM(deinit_backend)
    SYM(load_by_name_with_config)
    SYM(init_execution_context)
    SYM(init_execution_context_with_session_id)
    SYM(close_execution_context)
    SYM(set_input)
    SYM(compute)
    SYM(get_output)
    SYM(compute_single)
    SYM(get_output_single)
    SYM(fini_single)
#undef SYM
    return a;
}

struct Backend {
    void* ctx = nullptr;
    graph g = 0;
};

wasi_nn_error set_text(const Api& api, void* ctx, graph_execution_context e, uint32_t index, const std::string& s) {
    uint32_t dim = static_cast<uint32_t>(s.size());
    tensor_dimensions dims{&dim, 1};
    tensor t{};
    t.dimensions = &dims;
    t.type = u8;
    t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(s.data())), dim};
    return api.set_input(ctx, e, index, &t);
}

}  // namespace

int main(int argc, char** argv) {
    const int n_threads = argc > 1 ? std::atoi(argv[1]) : 16;
    const int n_requests = argc > 2 ? std::atoi(argv[2]) : 12;
    const int n_backends = argc > 3 ? std::atoi(argv[3]) : 4;
    Api api = open_api();
    const std::string models[] = {std::string(WNL_MODELS_DIR) + "/stories260K.gguf",
                                  std::string(WNL_MODELS_DIR) + "/llama-2-tiny-random.gguf"};
    const std::string cfg =
        "{\"temp\":0.7,\"seed\":7,\"max_tokens\":12,\"max_concurrent\":4,\"queue_size\":16,\"ctx_size\":512,"
        "\"threads\":1,\"logging\":{\"level\":\"error\"}}";

    const std::string store = argc > 4 ? argv[4] : "";
    std::vector<Backend> backends(static_cast<size_t>(n_backends));
    for (int i = 0; i < n_backends; ++i) {
        Backend& b = backends[static_cast<size_t>(i)];
        const std::string& m = models[i % 2];
        std::string bcfg = cfg;
        if (!store.empty()) {
            // A small bound and few sessions: KV files come and go, and
            // sessions are evicted from the store while others use it.
            bcfg.insert(bcfg.size() - 1, ",\"session_store\":\"" + store + "\",\"session_namespace\":\"ns" +
                                             std::to_string(i % 4) +
                                             "\",\"session_store_bytes\":4194304,\"max_sessions\":12");
        }
        if (api.init_backend_with_config(&b.ctx, bcfg.data(), static_cast<uint32_t>(bcfg.size())) != success ||
            api.load_by_name_with_config(b.ctx, m.data(), static_cast<uint32_t>(m.size()), cfg.data(),
                                         static_cast<uint32_t>(cfg.size()), &b.g) != success) {
            std::fprintf(stderr, "setup of backend %d failed\n", i);
            return 2;
        }
    }

    std::atomic<int> ok{0}, refused{0}, timed_out{0}, cancelled{0}, other{0}, undefined{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
            const char* priorities[] = {"high", "normal", "low"};
            for (int r = 0; r < n_requests; ++r) {
                Backend& b = backends[rng() % backends.size()];
                graph_execution_context e = 0;
                // Each thread has sessions of its own: inits of one named
                // session share its handle (docs/abi.md §9), and this test
                // counts each call's code as if the handle were the caller's
                // alone. Holders sharing one session across threads:
                // tests/c/hyperbeam_habits_test.c.
                std::string sid = "t" + std::to_string(t) + "-s" + std::to_string(rng() % 4);
                wasi_nn_error rc = (rng() % 2) ? api.init_execution_context(b.ctx, b.g, &e)
                                               : api.init_execution_context_with_session_id(b.ctx, sid.c_str(), &e);
                if (rc != success) {
                    other++;
                    continue;
                }
                std::string opts = std::string("{\"priority\":\"") + priorities[rng() % 3] + "\"";
                if (rng() % 4 == 0) opts += ",\"timeout_ms\":" + std::to_string(1 + rng() % 20);
                opts += ",\"max_tokens\":" + std::to_string(1 + rng() % 16) + "}";
                set_text(api, b.ctx, e, 0, "Once upon a time");
                set_text(api, b.ctx, e, 1, opts);
                const bool close_early = rng() % 8 == 0;
                std::thread closer;
                if (close_early) {
                    closer = std::thread([&api, &b, e, delay = rng() % 5] {
                        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
                        api.close_execution_context(b.ctx, e);
                    });
                }
                // A third of the turns stream: compute_single to the end.
                const bool streamed = rng() % 3 == 0;
                if (streamed) {
                    uint8_t piece[4096];
                    while ((rc = api.compute_single(b.ctx, e)) == success) {
                        uint32_t n = sizeof piece;
                        wasi_nn_error out = api.get_output_single(b.ctx, e, 0, piece, &n);
                        if (out != success && !(close_early && out == not_found)) undefined++;
                    }
                    if (rc == end_of_sequence) rc = success;
                    wasi_nn_error fin = api.fini_single(b.ctx, e);
                    if (fin != success && !(close_early && fin == not_found)) undefined++;
                } else {
                    rc = api.compute(b.ctx, e);
                }
                switch (rc) {
                    case success: {
                        ok++;
                        uint8_t buf[4096];
                        tensor_data td{buf, sizeof buf};
                        uint32_t n = 0;
                        wasi_nn_error out = api.get_output(b.ctx, e, 1, &td, &n);
                        if (out != success && !(close_early && out == not_found)) undefined++;
                        break;
                    }
                    case busy: (close_early ? cancelled : (opts.find("timeout") != std::string::npos ? timed_out : refused))++; break;
                    case runtime_error:
                    case not_found:
                        if (close_early) cancelled++; else undefined++;
                        break;
                    default: other++; break;
                }
                if (closer.joinable()) closer.join();
                else api.close_execution_context(b.ctx, e);
            }
        });
    }
    for (auto& th : threads) th.join();
    for (auto& b : backends) api.deinit_backend(b.ctx);

    const int total = n_threads * n_requests;
    const int ended = ok + refused + timed_out + cancelled + other + undefined;
    std::printf("requests %d: ok %d, refused (busy) %d, timed out %d, cancelled %d, other %d, undefined %d\n", total,
                ok.load(), refused.load(), timed_out.load(), cancelled.load(), other.load(), undefined.load());
    const bool pass = ended == total && undefined == 0 && other == 0 && ok > 0;
    std::printf("%d passed, %d failed\n", pass ? 1 : 0, pass ? 0 : 1);
    return pass ? 0 : 1;
}
