// bench_durable: what durable sessions cost and buy, through
// libwasi_nn_llamacpp.so (docs/bench.md, "Durable sessions"). One experiment
// per invocation:
//
//   bench_durable LIB MODEL STORE_DIR restore [common] [--tokens 2000] [--words 400] [--short-words 8]
//                                     [--drop-kv]
//   bench_durable LIB MODEL STORE_DIR ttft    [common] [--turns 20] [--sessions 2] [--history-tokens 2000]
//                                     [--words 16] [--no-store]
//   common: [-t 2] [--seed 1] [--max-tokens 8] [--ctx 4096] [--sync normal|full]
//
// restore: a process's worth of work, then a restart. A named session is
//   built up to --tokens tokens of conversation (turns of --words-word
//   messages) in a session store at STORE_DIR (emptied first); then
//   deinit_backend, which writes its KV state to the store. A new backend
//   context on the same store runs the session's next turn (--short-words):
//   timed. With --drop-kv the KV file is deleted before the restart, so the
//   next turn prefills the whole history from the stored text: the baseline.
// ttft: --sessions named sessions on one slot (max_concurrent 1), each first
//   built up to --history-tokens; then --turns turns round-robin, so that
//   every turn parks the previous session's KV (written to the store) and
//   restores its own from the host cache. Timed: each turn's time to first
//   token and its whole compute() (which includes storing the turn). With
//   --no-store the same without a session store: the baseline.
//
// Times are wall clock from the caller: ttft_wall_ms = compute() entry to
// the first token (compute_ms - decode_ms), so it includes rendering,
// reading a KV file, restoring it and the prefill; compute_ms adds decoding
// and, with a store, the turn's transaction.
//
// Output: JSON lines on stdout ({"kind":"turn"|"restore"|"summary",...}).
// Exit status 0 on success, 1 on any failure, 2 on bad usage.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_api.h"

namespace {

using bench::json_number;
using bench::median;

struct Options {
    std::string lib, model, store, mode;
    int t = 2, max_tokens = 8, ctx = 4096;
    uint64_t seed = 1;
    std::string sync = "normal";
    int tokens = 2000, words = -1, short_words = 8;
    bool drop_kv = false, no_store = false;
    int turns = 20, sessions = 2, history_tokens = 2000;
};

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "bench_durable: %s\n", why.c_str());
    std::exit(1);
}

void usage() {
    std::fprintf(stderr,
                 "usage: bench_durable LIB MODEL STORE_DIR restore|ttft [options]\n"
                 "  common:  -t 2 --seed 1 --max-tokens 8 --ctx 4096 --sync normal|full\n"
                 "  restore: --tokens 2000 --words 400 --short-words 8 [--drop-kv]\n"
                 "  ttft:    --turns 20 --sessions 2 --history-tokens 2000 --words 16 [--no-store]\n");
}

bool parse(int argc, char** argv, Options* o) {
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_durable: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        auto num = [&](long long lo, long long hi) {
            const std::string v = next();
            char* end = nullptr;
            const long long x = std::strtoll(v.c_str(), &end, 10);
            if (v.empty() || *end || x < lo || x > hi) {
                std::fprintf(stderr, "bench_durable: bad value for %s: %s\n", a.c_str(), v.c_str());
                std::exit(2);
            }
            return static_cast<int>(x);
        };
        if (a == "-t") o->t = num(1, 1024);
        else if (a == "--seed") o->seed = static_cast<uint64_t>(num(0, 1 << 30));
        else if (a == "--max-tokens") o->max_tokens = num(1, 100000);
        else if (a == "--ctx") o->ctx = num(64, 1 << 20);
        else if (a == "--sync") o->sync = next();
        else if (a == "--tokens") o->tokens = num(1, 1 << 20);
        else if (a == "--words") o->words = num(1, 100000);
        else if (a == "--short-words") o->short_words = num(1, 100000);
        else if (a == "--drop-kv") o->drop_kv = true;
        else if (a == "--no-store") o->no_store = true;
        else if (a == "--turns") o->turns = num(1, 100000);
        else if (a == "--sessions") o->sessions = num(1, 1000);
        else if (a == "--history-tokens") o->history_tokens = num(0, 1 << 20);
        else if (a == "-h" || a == "--help") {
            usage();
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "bench_durable: unknown option %s\n", a.c_str());
            return false;
        } else {
            pos.push_back(a);
        }
    }
    if (pos.size() != 4 || (pos[3] != "restore" && pos[3] != "ttft") || (o->sync != "normal" && o->sync != "full")) {
        usage();
        return false;
    }
    o->lib = pos[0];
    o->model = pos[1];
    o->store = pos[2];
    o->mode = pos[3];
    if (o->words < 0) o->words = o->mode == "restore" ? 400 : 16;
    return true;
}

uint64_t splitmix(uint64_t* s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// W random words of one or two letters, seeded (as bench_memory's).
std::string message(int n_words, uint64_t seed) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 0x1234567ull;
    std::string m;
    for (int i = 0; i < n_words; ++i) {
        uint32_t k = static_cast<uint32_t>(splitmix(&s) % 702);
        if (i) m.push_back(' ');
        if (k < 26) {
            m.push_back(static_cast<char>('a' + k));
        } else {
            k -= 26;
            m.push_back(static_cast<char>('a' + k / 26));
            m.push_back(static_cast<char>('a' + k % 26));
        }
    }
    return m;
}

void remove_tree(const std::string& dir) {
    for (const std::string& sub : {dir + "/kv", dir}) {
        DIR* d = opendir(sub.c_str());
        if (!d) continue;
        while (dirent* e = readdir(d)) {
            const std::string n = e->d_name;
            if (n != "." && n != "..") ::unlink((sub + "/" + n).c_str());
        }
        closedir(d);
        ::rmdir(sub.c_str());
    }
}

struct Turn {
    double input = 0, cached = 0, output = 0, prefill_ms = 0, decode_ms = 0, compute_ms = 0;
    double ttft_wall_ms() const { return compute_ms - decode_ms; }
};

struct Ctx {
    bench::WamrApi api;
    void* ctx = nullptr;
    graph g = 0;

    void open(const Options& o, bool with_store) {
        std::string cfg = "{\"temp\":0,\"ignore_eos\":true,\"max_tokens\":" + std::to_string(o.max_tokens) +
                          ",\"ctx_size\":" + std::to_string(o.ctx) + ",\"max_concurrent\":1,\"threads\":" +
                          std::to_string(o.t) + ",\"host_cache_bytes\":1073741824,\"logging\":{\"level\":\"warn\"}";
        // The store is the host's (init_backend_with_config only); the load
        // config is the guest's.
        std::string host = cfg;
        if (with_store) {
            host += ",\"session_store\":\"" + o.store + "\",\"session_namespace\":\"bench\",\"session_sync\":\"" +
                    o.sync + "\",\"session_store_bytes\":0";
        }
        cfg += "}";
        host += "}";
        if (api.init_backend_with_config(&ctx, host.c_str(), static_cast<uint32_t>(host.size())) != success)
            fail("init_backend_with_config failed: " + host);
        if (api.load_by_name_with_config(ctx, o.model.c_str(), static_cast<uint32_t>(o.model.size()), cfg.c_str(),
                                         static_cast<uint32_t>(cfg.size()), &g) != success)
            fail("load failed: " + o.model);
    }
    void close() {
        auto t0 = std::chrono::steady_clock::now();
        api.deinit_backend(ctx);
        std::printf("{\"kind\":\"deinit\",\"ms\":%.3f}\n",
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        ctx = nullptr;
    }
    graph_execution_context session(const std::string& id) {
        graph_execution_context e = 0;
        if (api.init_session(ctx, id.c_str(), &e) != success) fail("init_execution_context_with_session_id " + id);
        return e;
    }
    Turn turn(graph_execution_context e, const std::string& msg) {
        if (bench::set_text(api, ctx, e, 0, msg) != success) fail("set_input");
        Turn r;
        auto t0 = std::chrono::steady_clock::now();
        wasi_nn_error rc = api.compute(ctx, e);
        r.compute_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (rc != success) fail("compute failed: " + std::to_string(rc));
        std::vector<uint8_t> buf(1 << 16);
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t n = 0;
        if (api.get_output(ctx, e, 1, &td, &n) != success) fail("get_output(1)");
        const std::string meta(reinterpret_cast<char*>(buf.data()), n);
        if (!json_number(meta, "input_tokens", &r.input) || !json_number(meta, "cached_tokens", &r.cached) ||
            !json_number(meta, "output_tokens", &r.output) || !json_number(meta, "prefill_ms", &r.prefill_ms) ||
            !json_number(meta, "decode_ms", &r.decode_ms))
            fail("metadata lacks a field: " + meta);
        return r;
    }
};

void print_turn(const char* phase, int i, const Turn& r) {
    std::printf("{\"kind\":\"turn\",\"phase\":\"%s\",\"turn\":%d,\"input_tokens\":%.0f,\"cached_tokens\":%.0f,"
                "\"output_tokens\":%.0f,\"prefill_ms\":%.3f,\"decode_ms\":%.3f,\"compute_ms\":%.3f,"
                "\"ttft_wall_ms\":%.3f}\n",
                phase, i, r.input, r.cached, r.output, r.prefill_ms, r.decode_ms, r.compute_ms, r.ttft_wall_ms());
    std::fflush(stdout);
}

// Turns of --words-word messages on `e` until the conversation holds
// `tokens` tokens; returns the last turn.
Turn build(Ctx& c, graph_execution_context e, int tokens, int words, uint64_t seed, const char* phase) {
    Turn r;
    for (int i = 0; r.input + r.output < tokens; ++i) {
        r = c.turn(e, message(words, seed * 1000 + static_cast<uint64_t>(i)));
        print_turn(phase, i, r);
        if (i > 1000) fail("the conversation does not grow");
    }
    return r;
}

int restore(const Options& o) {
    remove_tree(o.store);
    {
        Ctx c;
        c.api = {};
        if (!bench::load_api(o.lib, "bench_durable", &c.api)) return 1;
        c.open(o, true);
        build(c, c.session("long"), o.tokens, o.words, o.seed, "build");
        c.close();
    }
    if (o.drop_kv) {
        DIR* d = opendir((o.store + "/kv").c_str());
        int removed = 0;
        while (dirent* e = d ? readdir(d) : nullptr) {
            const std::string n = e->d_name;
            if (n.size() > 3 && n.compare(n.size() - 3, 3, ".kv") == 0) {
                ::unlink((o.store + "/kv/" + n).c_str());
                ++removed;
            }
        }
        if (d) closedir(d);
        if (removed != 1) fail("expected one KV file after deinit, found " + std::to_string(removed));
    }
    Ctx c;
    if (!bench::load_api(o.lib, "bench_durable", &c.api)) return 1;
    c.open(o, true);
    // The first decode of a new context pays for llama.cpp's setup: an
    // untimed anonymous turn first.
    {
        graph_execution_context w = 0;
        if (c.api.init_execution_context(c.ctx, c.g, &w) != success) fail("init_execution_context");
        c.turn(w, message(8, 7));
        c.api.close_execution_context(c.ctx, w);
    }
    Turn r = c.turn(c.session("long"), message(o.short_words, o.seed * 1000 + 999));
    print_turn(o.drop_kv ? "reprefill" : "restore", 0, r);
    const bool restored = r.cached > 0.9 * r.input;
    if (o.drop_kv ? r.cached > r.input / 2 : !restored)
        fail("the next turn did not " + std::string(o.drop_kv ? "prefill the history" : "restore from the store"));
    std::printf("{\"kind\":\"restore\",\"drop_kv\":%s,\"input_tokens\":%.0f,\"cached_tokens\":%.0f,"
                "\"ttft_wall_ms\":%.3f,\"prefill_ms\":%.3f,\"compute_ms\":%.3f}\n",
                o.drop_kv ? "true" : "false", r.input, r.cached, r.ttft_wall_ms(), r.prefill_ms, r.compute_ms);
    c.close();
    return 0;
}

int ttft(const Options& o) {
    remove_tree(o.store);
    Ctx c;
    if (!bench::load_api(o.lib, "bench_durable", &c.api)) return 1;
    c.open(o, !o.no_store);
    std::vector<graph_execution_context> execs;
    for (int s = 0; s < o.sessions; ++s) {
        execs.push_back(c.session("s" + std::to_string(s)));
        build(c, execs.back(), o.history_tokens, 400, o.seed * 100 + static_cast<uint64_t>(s), "build");
    }
    std::vector<double> ttft, compute;
    for (int i = 0; i < o.turns + o.sessions; ++i) {
        const size_t s = static_cast<size_t>(i % o.sessions);
        Turn r = c.turn(execs[s], message(o.words, o.seed * 7919 + static_cast<uint64_t>(i)));
        if (i < o.sessions) continue;  // each session's first switch: warm-up
        if (o.sessions > 1 && r.cached < r.input / 2) fail("a turn did not restore its session's KV");
        print_turn(o.no_store ? "none" : o.sync.c_str(), i, r);
        ttft.push_back(r.ttft_wall_ms());
        compute.push_back(r.compute_ms);
    }
    std::printf("{\"kind\":\"summary\",\"store\":\"%s\",\"turns\":%zu,\"ttft_wall_ms\":%.3f,\"compute_ms\":%.3f}\n",
                o.no_store ? "none" : o.sync.c_str(), ttft.size(), median(ttft), median(compute));
    c.close();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, &o)) return 2;
    return o.mode == "restore" ? restore(o) : ttft(o);
}
