// bench_memory: what session memory buys, through libwasi_nn_llamacpp.so
// (docs/bench.md, "Memory"). Three experiments, one per invocation:
//
//   bench_memory LIB MODEL chat   [common] [--turns 20] [--words 300] [--max-tokens 32] [--ctx 8192]
//   bench_memory LIB MODEL resume [common] [--history 5] [--words 300] [--resume-words 300]
//                                 [--short-words 8] [--max-tokens 32] [--ctx 4096] [--host-cache BYTES]
//   bench_memory LIB MODEL rss    [common] [--turns 1000] [--sessions 200] [--words 16] [--max-tokens 8]
//                                 [--concurrent 8] [--clients 8] [--ctx 1024] [--host-cache 67108864]
//                                 [--sample-every 10] [--warmup 0.2]
//   common: [-t 2] [--seed 1] [-b 512] [-ub 512] [-fa auto]
//
// The library is dlopen()ed, as WAMR's wasi-nn host does. Every request is a
// chat turn (the model must have a chat template), temp 0, ignore_eos, so a
// reply is exactly max_tokens tokens. A user message of W words is W random
// one- or two-letter words ("ab cd e ..."), one token each in mkmodel's
// synthetic vocabulary and in most real ones; every message is different
// (seeded by --seed, the session and the turn).
//
// TTFT is prefill_ms from the output metadata (get_output index 1): from the
// request's admission to a slot to its first sampled token, so it includes
// parking the slot's previous owner and restoring the session's state from
// the host cache, the prefill itself and the first sample; queue wait and
// the host-side template rendering/tokenization are not in it. Each turn
// also reports compute_ms (the whole compute() call, wall clock) and
// ttft_wall_ms = compute_ms - decode_ms (compute() entry to first token,
// including rendering, tokenization and the queue).
//
// chat:   one named session on a graph with cache_prompt on runs --turns
//         turns (one slot, no host cache). The re-prefill baseline is turn N
//         again from nothing: the conversation rendered with the model's
//         ChatML template (every message and reply, then turn N's message)
//         given as one completion-mode prompt to a fresh anonymous context
//         on a second graph handle with cache_prompt off (same model, same
//         decode loop); the program checks that it is exactly as many
//         tokens as turn N's prompt and that none were cached.
// resume: max_concurrent 1. Session A runs --history turns and one more
//         (--resume-words; timed: the same kind of turn with A's KV still in
//         its slot); session B runs one turn and takes the only slot (A's KV
//         is parked in the host cache, or simply lost with --host-cache 0);
//         A's next turn (--resume-words) is timed. Then B once more and A
//         with a short message (--short-words): a turn that is mostly the
//         restore (or the re-prefill). Run it with the cache on and with
//         --host-cache 0.
// rss:    --clients threads run --turns turns, each on a random session of
//         --sessions named ones (not one already in a turn; an execution
//         context opened and closed per turn), max_concurrent --concurrent,
//         host cache --host-cache bytes, context shifting on. Every
//         --sample-every completed turns, get_backend_status(MEMORY) is
//         sampled (process_rss_bytes, host_cache); the summary covers the
//         samples after the first --warmup fraction of the turns.
//
// chat and resume first run one untimed turn in a throwaway session, so the
// first timed turn does not pay for llama.cpp's first-decode setup.
//
// Output: JSON lines on stdout ({"kind":"turn"|"resume"|"sample"|"summary",...}).
// Exit status 0 on success, 1 on any failure (a compute error, a turn that
// did not generate exactly max_tokens tokens), 2 on bad usage.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_api.h"

namespace {

using bench::json_number;
using bench::median;
using Api = bench::WamrApi;

struct Options {
    std::string lib, model, mode;
    int t = 2, b = 512, ub = 512;
    std::string fa = "auto";
    uint64_t seed = 1;
    int turns = -1, words = -1, max_tokens = -1, ctx = -1;
    int history = 5, resume_words = -1, short_words = 8;
    long long host_cache = -1;
    int sessions = 200, concurrent = 8, clients = 8, sample_every = 10;
    double warmup = 0.2;
};

void usage() {
    std::fprintf(stderr,
                 "usage: bench_memory LIB MODEL chat|resume|rss [options]\n"
                 "  common: -t THREADS (2) --seed N (1) -b N_BATCH (512) -ub N_UBATCH (512) -fa auto|on|off (auto)\n"
                 "  chat:   --turns 20 --words 300 --max-tokens 32 --ctx 8192\n"
                 "  resume: --history 5 --words 300 --resume-words 300 --short-words 8 --max-tokens 32 --ctx 4096\n"
                 "          --host-cache BYTES (268435456; 0 = no host cache)\n"
                 "  rss:    --turns 1000 --sessions 200 --words 16 --max-tokens 8 --concurrent 8\n"
                 "          --clients 8 --ctx 1024 --host-cache 67108864 --sample-every 10 --warmup 0.2\n");
}

bool parse(int argc, char** argv, Options* o) {
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_memory: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        auto num = [&](long long lo, long long hi) {
            const char* v = next();
            char* end = nullptr;
            long long x = std::strtoll(v, &end, 10);
            if (!*v || *end || x < lo || x > hi) {
                std::fprintf(stderr, "bench_memory: bad value for %s: %s\n", a.c_str(), v);
                std::exit(2);
            }
            return x;
        };
        if (a == "-t") o->t = static_cast<int>(num(1, 1024));
        else if (a == "-b") o->b = static_cast<int>(num(1, 1 << 20));
        else if (a == "-ub") o->ub = static_cast<int>(num(1, 1 << 20));
        else if (a == "-fa") o->fa = next();
        else if (a == "--seed") o->seed = static_cast<uint64_t>(num(0, 1LL << 62));
        else if (a == "--turns") o->turns = static_cast<int>(num(1, 1000000));
        else if (a == "--words") o->words = static_cast<int>(num(1, 100000));
        else if (a == "--resume-words") o->resume_words = static_cast<int>(num(1, 100000));
        else if (a == "--short-words") o->short_words = static_cast<int>(num(1, 100000));
        else if (a == "--max-tokens") o->max_tokens = static_cast<int>(num(1, 100000));
        else if (a == "--ctx") o->ctx = static_cast<int>(num(16, 1 << 20));
        else if (a == "--history") o->history = static_cast<int>(num(1, 10000));
        else if (a == "--host-cache") o->host_cache = num(0, 1LL << 50);
        else if (a == "--sessions") o->sessions = static_cast<int>(num(1, 100000));
        else if (a == "--concurrent") o->concurrent = static_cast<int>(num(1, 256));
        else if (a == "--clients") o->clients = static_cast<int>(num(1, 256));
        else if (a == "--sample-every") o->sample_every = static_cast<int>(num(1, 1000000));
        else if (a == "--warmup") {
            const char* v = next();
            o->warmup = std::atof(v);
            if (o->warmup < 0 || o->warmup >= 1) {
                std::fprintf(stderr, "bench_memory: --warmup must be in [0, 1)\n");
                std::exit(2);
            }
        } else if (a == "-h" || a == "--help") {
            usage();
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "bench_memory: unknown option %s\n", a.c_str());
            usage();
            return false;
        } else {
            pos.push_back(a);
        }
    }
    if (pos.size() != 3) {
        usage();
        return false;
    }
    o->lib = pos[0];
    o->model = pos[1];
    o->mode = pos[2];
    if (o->mode == "chat") {
        if (o->turns < 0) o->turns = 20;
        if (o->words < 0) o->words = 300;
        if (o->max_tokens < 0) o->max_tokens = 32;
        if (o->ctx < 0) o->ctx = 8192;
    } else if (o->mode == "resume") {
        if (o->words < 0) o->words = 300;
        if (o->resume_words < 0) o->resume_words = o->words;
        if (o->max_tokens < 0) o->max_tokens = 32;
        if (o->ctx < 0) o->ctx = 4096;
        if (o->host_cache < 0) o->host_cache = 268435456;
    } else if (o->mode == "rss") {
        if (o->turns < 0) o->turns = 1000;
        if (o->words < 0) o->words = 16;
        if (o->max_tokens < 0) o->max_tokens = 8;
        if (o->ctx < 0) o->ctx = 1024;
        if (o->host_cache < 0) o->host_cache = 64LL << 20;
        o->clients = std::min(o->clients, o->sessions);  // a client needs a session not in a turn
    } else {
        std::fprintf(stderr, "bench_memory: unknown mode %s\n", o->mode.c_str());
        usage();
        return false;
    }
    return true;
}

std::string json_string(const std::string& j, const char* key) {
    std::string k = std::string("\"") + key + "\":\"";
    size_t at = j.find(k);
    if (at == std::string::npos) return "";
    at += k.size();
    size_t end = j.find('"', at);
    return end == std::string::npos ? "" : j.substr(at, end - at);
}

uint64_t splitmix(uint64_t* s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// W random words of one or two letters (702 distinct words), seeded.
std::string message(int n_words, uint64_t seed) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 0x1234567ull;
    std::string m;
    m.reserve(static_cast<size_t>(n_words) * 3);
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

uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t s = a * 1000003ull ^ b * 7919ull ^ c;
    return splitmix(&s);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct Turn {
    double input = 0, cached = 0, output = 0, prefill_ms = 0, decode_ms = 0, queue_ms = 0, compute_ms = 0;
    std::string status, meta;
    double ttft_wall_ms() const { return compute_ms - decode_ms; }
};

struct Bench {
    Api api;
    void* ctx = nullptr;

    // One compute on `exec` with `msg`; false on any error (printed). With
    // retry_busy, a `busy` answer (the session is in a compute elsewhere, or
    // the queue is full) is retried.
    bool turn(graph_execution_context exec, const std::string& msg, Turn* out, bool retry_busy = false,
              const std::string& options = "", std::string* text = nullptr) {
        if (!options.empty()) {
            wasi_nn_error eo = bench::set_text(api, ctx, exec, 1, options);
            if (eo != success) {
                std::fprintf(stderr, "bench_memory: set_input(1, %s) failed: %d\n", options.c_str(), eo);
                return false;
            }
        }
        wasi_nn_error e = bench::set_text(api, ctx, exec, 0, msg);
        if (e != success) {
            std::fprintf(stderr, "bench_memory: set_input failed: %d\n", e);
            return false;
        }
        for (;;) {
            auto t0 = std::chrono::steady_clock::now();
            e = api.compute(ctx, exec);
            out->compute_ms = ms_since(t0);
            if (e == busy && retry_busy) {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                continue;
            }
            break;
        }
        std::vector<uint8_t> buf(1 << 16);
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t n = 0;
        wasi_nn_error eo = api.get_output(ctx, exec, 1, &td, &n);
        if (eo == success) out->meta.assign(reinterpret_cast<char*>(buf.data()), n);
        if (e != success) {
            std::fprintf(stderr, "bench_memory: compute failed: %d %s\n", e, out->meta.c_str());
            return false;
        }
        if (eo != success) {
            std::fprintf(stderr, "bench_memory: get_output(1) failed: %d\n", eo);
            return false;
        }
        if (!json_number(out->meta, "input_tokens", &out->input) ||
            !json_number(out->meta, "output_tokens", &out->output) ||
            !json_number(out->meta, "cached_tokens", &out->cached) ||
            !json_number(out->meta, "prefill_ms", &out->prefill_ms) ||
            !json_number(out->meta, "decode_ms", &out->decode_ms) ||
            !json_number(out->meta, "queue_ms", &out->queue_ms)) {
            std::fprintf(stderr, "bench_memory: metadata lacks a field: %s\n", out->meta.c_str());
            return false;
        }
        out->status = json_string(out->meta, "status");
        if (text) {
            std::vector<uint8_t> tb(1 << 20);
            tensor_data tt{tb.data(), static_cast<uint32_t>(tb.size())};
            uint32_t tn = 0;
            if (api.get_output(ctx, exec, 0, &tt, &tn) != success) {
                std::fprintf(stderr, "bench_memory: get_output(0) failed\n");
                return false;
            }
            text->assign(reinterpret_cast<char*>(tb.data()), tn);
        }
        if (json_string(out->meta, "mode") != (options.find("completion") != std::string::npos ? "completion" : "chat")) {
            std::fprintf(stderr, "bench_memory: the model ran in completion mode (no chat template?): %s\n",
                         out->meta.c_str());
            return false;
        }
        return true;
    }

    graph_execution_context open(const std::string& session) {
        graph_execution_context exec = 0;
        wasi_nn_error e = api.init_session(ctx, session.c_str(), &exec);
        if (e != success) {
            std::fprintf(stderr, "bench_memory: init_execution_context_with_session_id(%s) failed: %d\n",
                         session.c_str(), e);
            std::exit(1);
        }
        return exec;
    }

    graph load(const std::string& model, const std::string& cfg) {
        graph g = 0;
        wasi_nn_error e = api.load_by_name_with_config(ctx, model.c_str(), static_cast<uint32_t>(model.size()),
                                                       cfg.c_str(), static_cast<uint32_t>(cfg.size()), &g);
        if (e != success) {
            std::fprintf(stderr, "bench_memory: load_by_name_with_config(%s, %s) failed: %d\n", model.c_str(),
                         cfg.c_str(), e);
            std::exit(1);
        }
        return g;
    }

    struct Mem {
        double rss = 0, bytes = 0, entries = 0, evictions = 0, saved = 0, restored = 0;
        double anon = 0, file = 0;  // RssAnon, RssFile of /proc/self/status (bytes)
    };
    static void rss_split(Mem* m) {
        FILE* f = std::fopen("/proc/self/status", "r");
        if (!f) return;
        char line[256];
        while (std::fgets(line, sizeof line, f)) {
            unsigned long long kb = 0;
            if (std::sscanf(line, "RssAnon: %llu kB", &kb) == 1) m->anon = kb * 1024.0;
            else if (std::sscanf(line, "RssFile: %llu kB", &kb) == 1) m->file = kb * 1024.0;
        }
        std::fclose(f);
    }
    Mem memory() {
        std::vector<char> buf(1 << 16);
        wasi_nn_error e = api.get_backend_status(ctx, BACKEND_STATUS_MEMORY, buf.data(),
                                                 static_cast<uint32_t>(buf.size()));
        Mem m;
        if (e != success) {
            std::fprintf(stderr, "bench_memory: get_backend_status(MEMORY) failed: %d\n", e);
            std::exit(1);
        }
        std::string j(buf.data());
        size_t hc = j.find("\"host_cache\"");
        if (!json_number(j, "process_rss_bytes", &m.rss) || hc == std::string::npos ||
            !json_number(j, "bytes", &m.bytes, hc) || !json_number(j, "entries", &m.entries, hc) ||
            !json_number(j, "evictions", &m.evictions, hc) || !json_number(j, "states_saved", &m.saved, hc) ||
            !json_number(j, "states_restored", &m.restored, hc)) {
            std::fprintf(stderr, "bench_memory: memory status lacks a field: %s\n", j.c_str());
            std::exit(1);
        }
        rss_split(&m);
        return m;
    }
};

void print_turn(const char* phase, int rep_turn, const Turn& r, const char* extra = "") {
    std::printf(
        "{\"kind\":\"turn\",\"phase\":\"%s\",\"turn\":%d,\"input_tokens\":%d,\"cached_tokens\":%d,"
        "\"prefilled_tokens\":%d,\"output_tokens\":%d,\"prefill_ms\":%.3f,\"decode_ms\":%.3f,\"queue_ms\":%.3f,"
        "\"compute_ms\":%.3f,\"ttft_wall_ms\":%.3f%s}\n",
        phase, rep_turn, static_cast<int>(r.input), static_cast<int>(r.cached), static_cast<int>(r.input - r.cached),
        static_cast<int>(r.output), r.prefill_ms, r.decode_ms, r.queue_ms, r.compute_ms, r.ttft_wall_ms(), extra);
    std::fflush(stdout);
}

bool check(const Turn& r, int max_tokens, const char* what) {
    if (r.status != "ok" || static_cast<int>(r.output) != max_tokens) {
        std::fprintf(stderr, "bench_memory: %s: not a clean turn (status %s, %d tokens, want %d): %s\n", what,
                     r.status.c_str(), static_cast<int>(r.output), max_tokens, r.meta.c_str());
        return false;
    }
    return true;
}

// One untimed turn in a throwaway session, so that the first timed turn
// does not pay for llama.cpp's first-decode setup (buffers, thread start).
bool warm_up(Bench& b, const Options& o, int words) {
    graph_execution_context w = b.open("warm-up-" + std::to_string(o.seed));
    Turn r;
    bool ok = b.turn(w, message(words, mix(o.seed, 99, 0)), &r) && check(r, o.max_tokens, "warm-up turn");
    b.api.close_execution_context(b.ctx, w);
    return ok;
}

std::string model_config(const Options& o, int max_concurrent, long long host_cache, bool cache_prompt,
                         bool shifting) {
    char cfg[1024];
    std::snprintf(cfg, sizeof cfg,
                  "{\"threads\":%d,\"threads_batch\":%d,\"ctx_size\":%d,\"batch_size\":%d,\"ubatch_size\":%d,"
                  "\"flash_attn\":\"%s\",\"max_concurrent\":%d,\"host_cache_bytes\":%lld,\"cache_prompt\":%s,\"context_shifting\":%s,"
                  "\"mode\":\"chat\",\"temp\":0,\"ignore_eos\":true,\"max_tokens\":%d,\"queue_size\":1024}",
                  o.t, o.t, o.ctx, o.b, o.ub, o.fa.c_str(), max_concurrent, host_cache, cache_prompt ? "true" : "false",
                  shifting ? "true" : "false", o.max_tokens);
    return cfg;
}

// ---- chat: TTFT per turn of one long conversation, and the re-prefill baseline.
int run_chat(Bench& b, const Options& o) {
    b.load(o.model, model_config(o, 1, 0, true, false));
    graph_execution_context ours = b.open("chat-" + std::to_string(o.seed));
    // Same model, same decode loop (cache_prompt is not part of what a loop
    // is shared on), cache_prompt off: for the re-prefill baseline.
    const graph g_off = b.load(o.model, model_config(o, 1, 0, false, false));
    if (!warm_up(b, o, o.words)) return 1;

    std::vector<Turn> mine(static_cast<size_t>(o.turns));
    // The conversation as the model's ChatML template renders it (what the
    // library tokenizes for turn N): every earlier user message and reply,
    // then turn N's message and the assistant header.
    std::string history;
    std::string msg, reply;
    for (int i = 0; i < o.turns; ++i) {
        msg = message(o.words, mix(o.seed, 1, static_cast<uint64_t>(i)));
        Turn& r = mine[static_cast<size_t>(i)];
        if (!b.turn(ours, msg, &r, false, "", &reply)) return 1;
        if (!check(r, o.max_tokens, "chat turn")) return 1;
        print_turn("ours", i + 1, r);
        if (i + 1 < o.turns) {
            history += "<|im_start|>user\n" + msg + "<|im_end|>\n<|im_start|>assistant\n" + reply + "<|im_end|>\n";
        }
    }
    const std::string full = history + "<|im_start|>user\n" + msg + "<|im_end|>\n<|im_start|>assistant\n";
    // The baseline: a fresh anonymous context, cache_prompt off, given the
    // whole rendered conversation as one completion prompt, so that it
    // prefills exactly the tokens of turn N from nothing.
    graph_execution_context fresh = 0;
    wasi_nn_error e = b.api.init_execution_context(b.ctx, g_off, &fresh);
    if (e != success) {
        std::fprintf(stderr, "bench_memory: init_execution_context failed: %d\n", e);
        return 1;
    }
    Turn base;
    if (!b.turn(fresh, full, &base, false, "{\"mode\":\"completion\"}")) return 1;
    if (!check(base, o.max_tokens, "re-prefill turn")) return 1;
    b.api.close_execution_context(b.ctx, fresh);
    print_turn("reprefill", o.turns, base);
    const Turn& first = mine.front();
    const Turn& last = mine.back();
    if (base.cached != 0 || base.input != last.input) {
        std::fprintf(stderr,
                     "bench_memory: the re-prefill is not turn %d again: %d input tokens (turn %d: %d), %d cached\n",
                     o.turns, static_cast<int>(base.input), o.turns, static_cast<int>(last.input),
                     static_cast<int>(base.cached));
        return 1;
    }
    std::printf(
        "{\"kind\":\"summary\",\"mode\":\"chat\",\"turns\":%d,\"words\":%d,\"max_tokens\":%d,\"ctx\":%d,"
        "\"threads\":%d,\"turn1_prefill_ms\":%.3f,\"turnN_prefill_ms\":%.3f,\"reprefill_prefill_ms\":%.3f,"
        "\"turn1_input\":%d,\"turnN_input\":%d,\"turnN_prefilled\":%d,\"reprefill_input\":%d,"
        "\"turnN_over_turn1\":%.3f,\"reprefill_over_turnN\":%.3f}\n",
        o.turns, o.words, o.max_tokens, o.ctx, o.t, first.prefill_ms, last.prefill_ms, base.prefill_ms,
        static_cast<int>(first.input), static_cast<int>(last.input), static_cast<int>(last.input - last.cached),
        static_cast<int>(base.input), last.prefill_ms / first.prefill_ms, base.prefill_ms / last.prefill_ms);
    return 0;
}

// ---- resume: a session's turn after its slot went to another session.
int run_resume(Bench& b, const Options& o) {
    b.load(o.model, model_config(o, 1, o.host_cache, true, false));
    const std::string sa = "A-" + std::to_string(o.seed), sb = "B-" + std::to_string(o.seed);
    graph_execution_context a = b.open(sa);
    graph_execution_context bb = b.open(sb);
    if (!warm_up(b, o, o.words)) return 1;
    Turn r;
    for (int i = 0; i < o.history; ++i) {
        if (!b.turn(a, message(o.words, mix(o.seed, 2, static_cast<uint64_t>(i))), &r)) return 1;
        if (!check(r, o.max_tokens, "history turn")) return 1;
        print_turn("A-history", i + 1, r);
    }
    // What the same kind of turn costs while A still holds its slot.
    Turn resident;
    if (!b.turn(a, message(o.resume_words, mix(o.seed, 3, 0)), &resident)) return 1;
    if (!check(resident, o.max_tokens, "resident turn")) return 1;
    print_turn("A-resident", o.history + 1, resident);
    Turn other;
    if (!b.turn(bb, message(o.words, mix(o.seed, 4, 0)), &other)) return 1;
    if (!check(other, o.max_tokens, "B turn")) return 1;
    print_turn("B", 1, other);
    const Bench::Mem m0 = b.memory();
    Turn resumed;
    if (!b.turn(a, message(o.resume_words, mix(o.seed, 3, 1)), &resumed)) return 1;
    if (!check(resumed, o.max_tokens, "resumed turn")) return 1;
    const Bench::Mem m1 = b.memory();
    char extra[160];
    std::snprintf(extra, sizeof extra, ",\"states_saved\":%.0f,\"states_restored\":%.0f", m1.saved, m1.restored);
    print_turn("A-resumed", o.history + 2, resumed, extra);
    // Once more with a short message, so that the resumed turn is mostly the
    // restore itself: B takes the slot back (A parked again), then A.
    Turn other2, resumed_short;
    if (!b.turn(bb, message(o.words, mix(o.seed, 4, 1)), &other2)) return 1;
    if (!check(other2, o.max_tokens, "B turn")) return 1;
    print_turn("B", 2, other2);
    if (!b.turn(a, message(o.short_words, mix(o.seed, 3, 2)), &resumed_short)) return 1;
    if (!check(resumed_short, o.max_tokens, "short resumed turn")) return 1;
    const Bench::Mem m2 = b.memory();
    std::snprintf(extra, sizeof extra, ",\"states_saved\":%.0f,\"states_restored\":%.0f", m2.saved, m2.restored);
    print_turn("A-resumed-short", o.history + 3, resumed_short, extra);
    // Restored = the turn found A's KV again: at least the previous turn's
    // prompt is cached (states_restored also counts B's restores).
    const bool restored = m1.restored > m0.restored && m2.restored > m1.restored &&
                          resumed.cached >= resident.input && resumed_short.cached >= resumed.input;
    if (o.host_cache > 0 && !restored) {
        std::fprintf(stderr,
                     "bench_memory: a resumed turn did not get A's state back from the host cache (cached tokens "
                     "%d and %d, want >= %d and >= %d)\n",
                     static_cast<int>(resumed.cached), static_cast<int>(resumed_short.cached),
                     static_cast<int>(resident.input), static_cast<int>(resumed.input));
        return 1;
    }
    std::printf(
        "{\"kind\":\"resume\",\"host_cache\":%lld,\"history_turns\":%d,\"words\":%d,\"resume_words\":%d,"
        "\"short_words\":%d,\"max_tokens\":%d,\"threads\":%d,\"restored\":%s,\"input_tokens\":%d,"
        "\"cached_tokens\":%d,\"prefill_ms\":%.3f,\"resident_prefill_ms\":%.3f,\"resident_cached_tokens\":%d,"
        "\"resident_input_tokens\":%d,\"short_input_tokens\":%d,\"short_cached_tokens\":%d,"
        "\"short_prefill_ms\":%.3f,\"host_cache_bytes_before\":%.0f}\n",
        o.host_cache, o.history, o.words, o.resume_words, o.short_words, o.max_tokens, o.t,
        restored ? "true" : "false", static_cast<int>(resumed.input), static_cast<int>(resumed.cached),
        resumed.prefill_ms, resident.prefill_ms, static_cast<int>(resident.cached), static_cast<int>(resident.input),
        static_cast<int>(resumed_short.input), static_cast<int>(resumed_short.cached), resumed_short.prefill_ms,
        m0.bytes);
    return 0;
}

// ---- rss: process RSS over many turns across many sessions.
int run_rss(Bench& b, const Options& o) {
    b.load(o.model, model_config(o, o.concurrent, o.host_cache, true, true));
    const Bench::Mem m_start = b.memory();
    std::printf(
        "{\"kind\":\"sample\",\"turn\":0,\"rss\":%.0f,\"rss_anon\":%.0f,\"rss_file\":%.0f,\"host_cache_bytes\":%.0f,"
        "\"entries\":%.0f}\n",
        m_start.rss, m_start.anon, m_start.file, m_start.bytes, m_start.entries);
    std::atomic<int> next{0}, done{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    struct Sample {
        int turn;
        Bench::Mem m;
    };
    std::vector<Sample> samples;
    std::vector<double> prefill, cached_frac;
    // Each turn goes to a random session among those not in a turn already
    // (uniform, seeded): some come back while their state is still in the
    // host cache (restored), others after it was evicted (prefilled again).
    std::vector<bool> busy_session(static_cast<size_t>(o.sessions), false);
    uint64_t pick_state = mix(o.seed, 6, 0);
    auto t0 = std::chrono::steady_clock::now();
    auto worker = [&]() {
        for (;;) {
            const int t = next++;
            if (t >= o.turns || failed) return;
            int s;
            {
                std::lock_guard<std::mutex> lock(mu);
                do {
                    s = static_cast<int>(splitmix(&pick_state) % static_cast<uint64_t>(o.sessions));
                } while (busy_session[static_cast<size_t>(s)]);
                busy_session[static_cast<size_t>(s)] = true;
            }
            graph_execution_context exec = b.open("s" + std::to_string(s) + "-" + std::to_string(o.seed));
            Turn r;
            bool ok = b.turn(exec, message(o.words, mix(o.seed, 5 + static_cast<uint64_t>(s), static_cast<uint64_t>(t))),
                             &r, true) &&
                      check(r, o.max_tokens, "rss turn");
            b.api.close_execution_context(b.ctx, exec);
            if (!ok) {
                failed = true;
                return;
            }
            const int d = ++done;
            std::lock_guard<std::mutex> lock(mu);
            busy_session[static_cast<size_t>(s)] = false;
            prefill.push_back(r.prefill_ms);
            cached_frac.push_back(r.input > 0 ? r.cached / r.input : 0);
            if (d % o.sample_every == 0) {
                Sample smp{d, b.memory()};
                samples.push_back(smp);
                std::printf(
                    "{\"kind\":\"sample\",\"turn\":%d,\"rss\":%.0f,\"rss_anon\":%.0f,\"rss_file\":%.0f,"
                    "\"host_cache_bytes\":%.0f,\"entries\":%.0f,\"evictions\":%.0f,\"states_saved\":%.0f,"
                    "\"states_restored\":%.0f}\n",
                    d, smp.m.rss, smp.m.anon, smp.m.file, smp.m.bytes, smp.m.entries, smp.m.evictions, smp.m.saved,
                    smp.m.restored);
                std::fflush(stdout);
            }
        }
    };
    std::vector<std::thread> th;
    for (int i = 0; i < o.clients; ++i) th.emplace_back(worker);
    for (auto& x : th) x.join();
    if (failed) return 1;
    const double wall_s = ms_since(t0) / 1000.0;
    std::vector<double> rss;
    for (const auto& s : samples) {
        if (s.turn > o.warmup * o.turns) rss.push_back(s.m.rss);
    }
    if (rss.empty()) {
        std::fprintf(stderr, "bench_memory: no samples after warm-up\n");
        return 1;
    }
    const double med = median(rss);
    const double lo = *std::min_element(rss.begin(), rss.end());
    const double hi = *std::max_element(rss.begin(), rss.end());
    const double dev = std::max(hi - med, med - lo) / med;
    // Least-squares slope over the post-warm-up samples, in bytes per 100 turns.
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    size_t n = 0;
    for (const auto& s : samples) {
        if (s.turn <= o.warmup * o.turns) continue;
        sx += s.turn, sy += s.m.rss, sxx += double(s.turn) * s.turn, sxy += double(s.turn) * s.m.rss, ++n;
    }
    const double slope = n > 1 ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 100.0 : 0.0;
    const Bench::Mem& last = samples.back().m;
    double first_anon = 0;
    for (const auto& s : samples) {
        if (s.turn > o.warmup * o.turns) {
            first_anon = s.m.anon;
            break;
        }
    }
    std::printf(
        "{\"kind\":\"summary\",\"mode\":\"rss\",\"turns\":%d,\"sessions\":%d,\"words\":%d,\"max_tokens\":%d,"
        "\"concurrent\":%d,\"clients\":%d,\"ctx\":%d,\"host_cache_limit\":%lld,\"threads\":%d,\"wall_s\":%.1f,"
        "\"samples_after_warmup\":%zu,\"rss_start\":%.0f,\"rss_min\":%.0f,\"rss_max\":%.0f,\"rss_median\":%.0f,"
        "\"rss_max_dev\":%.4f,\"rss_slope_per_100_turns\":%.0f,\"host_cache_bytes\":%.0f,\"host_cache_entries\":%.0f,"
        "\"evictions\":%.0f,\"states_saved\":%.0f,\"states_restored\":%.0f,\"prefill_ms_median\":%.3f,"
        "\"cached_fraction_median\":%.3f,\"rss_anon_start\":%.0f,\"rss_anon_after_warmup\":%.0f,"
        "\"rss_anon_end\":%.0f,\"rss_file_end\":%.0f}\n",
        o.turns, o.sessions, o.words, o.max_tokens, o.concurrent, o.clients, o.ctx, o.host_cache, o.t, wall_s,
        rss.size(), m_start.rss, lo, hi, med, dev, slope, last.bytes, last.entries, last.evictions, last.saved,
        last.restored, median(prefill), median(cached_frac), m_start.anon, first_anon, last.anon, last.file);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, &o)) return 2;

    Bench b;
    Api& api = b.api;
    if (!bench::load_api(o.lib, "bench_memory", &api)) return 1;
    // max_sessions above the rss test's session count, so no session's
    // history is dropped for the store's sake.
    char backend_cfg[256];
    std::snprintf(backend_cfg, sizeof backend_cfg,
                  "{\"logging\":{\"level\":\"error\"},\"max_sessions\":%d,\"idle_timeout_ms\":0}",
                  std::max(256, o.sessions + 16));
    wasi_nn_error e = api.init_backend_with_config(&b.ctx, backend_cfg, static_cast<uint32_t>(std::strlen(backend_cfg)));
    if (e != success) {
        std::fprintf(stderr, "bench_memory: init_backend_with_config failed: %d\n", e);
        return 1;
    }
    int rc = 1;
    if (o.mode == "chat") rc = run_chat(b, o);
    else if (o.mode == "resume") rc = run_resume(b, o);
    else rc = run_rss(b, o);
    api.deinit_backend(b.ctx);
    // The library stays loaded: llama.cpp's static state does not expect to
    // be unmapped.
    return rc;
}
