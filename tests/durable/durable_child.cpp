// The process the durable-session tests kill, restart and starve
// (tests/integration/durable_test.cpp). It loads libwasi_nn_llamacpp.so as a
// runtime does, opens a session store and runs chat turns; after each turn
// that returned success it writes one line to stdout, which is a pipe to the
// parent, and flushes it:
//   ack <session> <turn> <reply as hex>
//   fail <session> <turn> <error code>
//   done
//
//   durable_child run   STORE MODEL SESSIONS TURNS [sync] [max_tokens]
//       Runs TURNS turns round-robin over sessions s0..s<SESSIONS-1>, turn t
//       of session s being message(s, t). It first asks the store how many
//       turns each session already has (SESSIONS status) and goes on from
//       there, so a restarted child continues where the killed one was.
//   durable_child fsize STORE MODEL
//       Three turns on s0; then RLIMIT_FSIZE 1 (every file write fails):
//       two attempts at turn 3 must fail; then the limit is lifted and a
//       different turn 3 must succeed. Ends with deinit_backend.
#include <dlfcn.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wasi_nn_llamacpp.h"

namespace {

struct Api {
#define SYM(name) decltype(&::name) name = nullptr;
    SYM(init_backend_with_config)
    SYM(deinit_backend)
    SYM(load_by_name_with_config)
    SYM(init_execution_context_with_session_id)
    SYM(set_input)
    SYM(compute)
    SYM(get_output)
    SYM(get_backend_status)
#undef SYM
};

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "durable_child: %s\n", why.c_str());
    std::exit(2);
}

Api open_api() {
    std::string path = std::string(WNL_LIB_DIR) + "/libwasi_nn_llamacpp.so";
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) die(dlerror());
    Api a;
#define SYM(name)                                                    \
    a.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name)); \
    if (!a.name) die("missing symbol " #name);
    SYM(init_backend_with_config)
    SYM(deinit_backend)
    SYM(load_by_name_with_config)
    SYM(init_execution_context_with_session_id)
    SYM(set_input)
    SYM(compute)
    SYM(get_output)
    SYM(get_backend_status)
#undef SYM
    return a;
}

std::string hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out.empty() ? "-" : out;
}

struct Child {
    Api api;
    void* ctx = nullptr;
    graph g = 0;
    std::map<std::string, graph_execution_context> execs;

    wasi_nn_error open(const std::string& store, const std::string& model, const std::string& sync, int max_tokens) {
        // The store's keys are the host's (init_backend_with_config); the
        // load config is the guest's and may not name them.
        const std::string cfg = "{\"temp\":0,\"max_tokens\":" + std::to_string(max_tokens) +
                                ",\"chat_template\":\"chatml\",\"ctx_size\":2048,\"max_concurrent\":4,\"flash_attn\":\"off\","
                                "\"max_sessions\":256,\"threads\":1,\"logging\":{\"level\":\"warn\"}}";
        std::string host = cfg;
        host.insert(host.size() - 1, ",\"session_store\":\"" + store + "\",\"session_namespace\":\"crash\",\"session_sync\":\"" +
                                         sync + "\",\"session_store_bytes\":0");
        wasi_nn_error rc = api.init_backend_with_config(&ctx, host.data(), static_cast<uint32_t>(host.size()));
        if (rc != success) return rc;
        return api.load_by_name_with_config(ctx, model.data(), static_cast<uint32_t>(model.size()), cfg.data(),
                                            static_cast<uint32_t>(cfg.size()), &g);
    }

    graph_execution_context exec(const std::string& sid) {
        auto it = execs.find(sid);
        if (it != execs.end()) return it->second;
        graph_execution_context e = 0;
        if (api.init_execution_context_with_session_id(ctx, sid.c_str(), &e) != success) die("init_exec " + sid);
        execs[sid] = e;
        return e;
    }

    wasi_nn_error turn(const std::string& sid, const std::string& text, std::string* reply) {
        graph_execution_context e = exec(sid);
        uint32_t dim = static_cast<uint32_t>(text.size());
        tensor_dimensions dims{&dim, 1};
        tensor t{};
        t.dimensions = &dims;
        t.type = u8;
        t.data = {reinterpret_cast<uint8_t*>(const_cast<char*>(text.data())), dim};
        wasi_nn_error rc = api.set_input(ctx, e, 0, &t);
        if (rc == success) rc = api.compute(ctx, e);
        if (rc != success) return rc;
        std::vector<uint8_t> buf(1 << 16);
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t n = 0;
        rc = api.get_output(ctx, e, 0, &td, &n);
        if (rc == success) reply->assign(reinterpret_cast<char*>(buf.data()), n);
        return rc;
    }

    std::map<std::string, int> stored_turns() {
        std::vector<char> buf(1 << 20);
        if (api.get_backend_status(ctx, BACKEND_STATUS_SESSIONS, buf.data(), static_cast<uint32_t>(buf.size())) !=
            success)
            die("status");
        auto j = nlohmann::json::parse(buf.data());
        std::map<std::string, int> out;
        for (const auto& s : j["sessions"]) out[s["id"].get<std::string>()] = s["turns"].get<int>();
        return out;
    }
};

// Short, so that a session's 20 turns stay cheap to prefill (the test
// kills and restarts this process many times).
std::string message(int session, int turn) {
    return "Tom " + std::to_string(session) + " part " + std::to_string(turn) + ".";
}

void report(const char* what, const std::string& sid, int turn, const std::string& tail) {
    std::printf("%s %s %d %s\n", what, sid.c_str(), turn, tail.c_str());
    std::fflush(stdout);
}

int run(Child& c, int sessions, int turns) {
    std::map<std::string, int> done = c.stored_turns();
    const int rounds = (turns + sessions - 1) / sessions;
    int k = 0;
    for (int t = 0; t < rounds; ++t) {
        for (int s = 0; s < sessions && k < turns; ++s, ++k) {
            const std::string sid = "s" + std::to_string(s);
            if (done[sid] > t) continue;
            std::string reply;
            wasi_nn_error rc = c.turn(sid, message(s, t), &reply);
            if (rc != success) {
                report("fail", sid, t, std::to_string(rc));
                return 1;
            }
            report("ack", sid, t, hex(reply));
        }
    }
    std::printf("done\n");
    std::fflush(stdout);
    return 0;
}

int fsize(Child& c) {
    std::string reply;
    for (int t = 0; t < 3; ++t) {
        if (c.turn("s0", message(0, t), &reply) != success) die("turn before the limit");
        report("ack", "s0", t, hex(reply));
    }
    signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG
    rlimit lim{};
    getrlimit(RLIMIT_FSIZE, &lim);
    rlimit tight = lim;
    tight.rlim_cur = 1;
    if (setrlimit(RLIMIT_FSIZE, &tight) != 0) die("setrlimit");
    for (int attempt = 0; attempt < 2; ++attempt) {
        wasi_nn_error rc = c.turn("s0", message(0, 3), &reply);
        report(rc == success ? "ack" : "fail", "s0", 3, rc == success ? hex(reply) : std::to_string(rc));
    }
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) die("setrlimit back");
    wasi_nn_error rc = c.turn("s0", message(0, 103), &reply);
    report(rc == success ? "ack" : "fail", "s0", 3, rc == success ? hex(reply) : std::to_string(rc));
    c.api.deinit_backend(c.ctx);
    std::printf("done\n");
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) die("usage: durable_child run|fsize STORE MODEL ...");
    const std::string mode = argv[1];
    Child c;
    c.api = open_api();
    const std::string sync = mode == "run" && argc > 6 ? argv[6] : "normal";
    const int max_tokens = mode == "run" && argc > 7 ? std::atoi(argv[7]) : 4;
    wasi_nn_error rc = c.open(argv[2], argv[3], sync, max_tokens);
    if (rc != success) {
        std::printf("open-failed %d\n", rc);
        std::fflush(stdout);
        return 3;
    }
    if (mode == "run" && argc >= 6) return run(c, std::atoi(argv[4]), std::atoi(argv[5]));
    if (mode == "fsize") return fsize(c);
    die("unknown mode " + mode);
}
