// bench_neighbour: one guest's worst settings against another guest's decode
// rate (docs/bench.md, "Hostile neighbour"; issue #9 §3).
//
//   bench_neighbour LIB MODEL [-n 64] [-r 5] [-t 2] [-H 1] [--hostile-tokens 32]
//                   [--warm-ms 500] [--no-grammar] [--print-options]
//
// The library is dlopen()ed, as WAMR's wasi-nn host does. Two backend
// contexts load MODEL with the same serving settings, so their requests share
// one decode loop (and are batched together):
//   victim   one request at a time: a fixed completion prompt, temp 0,
//            ignore_eos, exactly N tokens (-n); its decode rate is
//            (output_tokens - 1) / decode_ms from the reply's metadata.
//   hostile  H threads (-H), each sending in a loop the worst options the
//            default caps allow (--print-options shows them): 32 stop strings
//            of 128 bytes (max_stop_strings, max_stop_bytes), a GBNF grammar
//            of just under 64 KiB whose ~5,000 alternatives share a prefix,
//            so that the grammar keeps thousands of stacks alive at every
//            token (max_grammar_bytes), 1,024 logit_bias entries, DRY with 32
//            sequence breakers and the whole context as its window, and the
//            repetition penalties over the whole context; each request asks
//            for --hostile-tokens tokens.
// Each round runs the victim's request alone, then again while the hostile
// threads run (started --warm-ms before it, cancelled when it ends), and
// prints one JSON line: {"kind":"round","alone_tg_ts":..,"with_tg_ts":..,
// "ratio":..,"hostile_requests":..,"hostile_tokens":..,"hostile_errors":..}.
// The summary line has the medians over the rounds and ratio = median(with)
// / median(alone); the target is ratio >= 0.8. Exit status 0 when every
// request ran (whatever the ratio), 1 when something failed.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
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
using Clock = std::chrono::steady_clock;

struct Options {
    std::string lib, model;
    int n = 64, r = 5, t = 2, hostile = 1, hostile_tokens = 32, warm_ms = 500;
    bool grammar = true, print_options = false;
};

void usage() {
    std::fprintf(stderr,
                 "usage: bench_neighbour LIB MODEL [-n N] [-r R] [-t T] [-H HOSTILE_THREADS]\n"
                 "                       [--hostile-tokens K] [--warm-ms MS] [--no-grammar] [--print-options]\n"
                 "defaults: -n 64 -r 5 -t 2 -H 1 --hostile-tokens 32 --warm-ms 500\n");
}

bool parse(int argc, char** argv, Options* o) {
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto num = [&](const char* what) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_neighbour: %s needs a value\n", what);
                std::exit(2);
            }
            const char* v = argv[++i];
            char* end = nullptr;
            long x = std::strtol(v, &end, 10);
            if (!*v || *end || x < 0 || x > 1000000) {
                std::fprintf(stderr, "bench_neighbour: bad value for %s: %s\n", what, v);
                std::exit(2);
            }
            return static_cast<int>(x);
        };
        if (a == "-n") o->n = num("-n");
        else if (a == "-r") o->r = num("-r");
        else if (a == "-t") o->t = num("-t");
        else if (a == "-H") o->hostile = num("-H");
        else if (a == "--hostile-tokens") o->hostile_tokens = num("--hostile-tokens");
        else if (a == "--warm-ms") o->warm_ms = num("--warm-ms");
        else if (a == "--no-grammar") o->grammar = false;
        else if (a == "--print-options") o->print_options = true;
        else if (a == "-h" || a == "--help") {
            usage();
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "bench_neighbour: unknown option %s\n", a.c_str());
            usage();
            return false;
        } else {
            pos.push_back(a);
        }
    }
    if (pos.size() != 2 || o->n < 2 || o->r < 1 || o->t < 1 || o->hostile < 1 || o->hostile > 3 ||
        o->hostile_tokens < 1) {
        usage();
        return false;
    }
    o->lib = pos[0];
    o->model = pos[1];
    return true;
}

std::string quoted(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '\n') {
            o += "\\n";
            continue;
        }
        if (c == '"' || c == '\\') o.push_back('\\');
        o.push_back(c);
    }
    return o + "\"";
}

// Base-26 lowercase name of k, `width` letters.
std::string letters(int k, int width) {
    std::string s(static_cast<size_t>(width), 'a');
    for (int i = width - 1; i >= 0; --i, k /= 26) s[static_cast<size_t>(i)] = static_cast<char>('a' + k % 26);
    return s;
}

// The worst per-request settings the default caps allow (limits.h).
std::string hostile_options(int max_tokens, bool with_grammar) {
    std::string o = "{\"max_tokens\":" + std::to_string(max_tokens) + ",\"temp\":0.8,\"seed\":1";
    // max_stop_strings x (max_stop_bytes / max_stop_strings): never matched.
    o += ",\"stop\":[";
    for (int i = 0; i < 32; ++i) {
        std::string s = "#" + letters(i, 3);
        while (s.size() < 128) s += " lily park";
        s.resize(128);
        o += (i ? "," : "") + quoted(s);
    }
    o += "]";
    if (with_grammar) {
        // Alternatives with a common prefix: while it is being matched every
        // one of them is a live stack, checked against every candidate token.
        std::string g = "root ::= w (\" \" w)*\nw ::= ";
        for (int k = 0;; ++k) {
            std::string alt = std::string(k ? " | " : "") + "\"the" + letters(k, 3) + "\"";
            if (g.size() + alt.size() + 1 > 65536 - 64) break;
            g += alt;
        }
        g += "\n";
        o += ",\"grammar\":" + quoted(g);
    }
    // kMaxLogitBiasEntries (ids within any vocabulary of 512 or more; a small
    // bias, so the text still flows).
    o += ",\"logit_bias\":[";
    for (int i = 0; i < 1024; ++i) o += (i ? ",[" : "[") + std::to_string(3 + i % 509) + ",0.01]";
    o += "]";
    // kMaxDrySequenceBreakers, the window = the whole context.
    o += ",\"dry_multiplier\":0.8,\"dry_base\":1.75,\"dry_allowed_length\":2,\"dry_penalty_last_n\":-1";
    o += ",\"dry_sequence_breakers\":[";
    for (int i = 0; i < 32; ++i) o += (i ? "," : "") + quoted("b" + letters(i, 2));
    o += "]";
    o += ",\"repeat_penalty\":1.1,\"presence_penalty\":0.5,\"frequency_penalty\":0.5,\"penalty_last_n\":-1}";
    return o;
}

struct Context {
    void* ctx = nullptr;
    graph g = 0;
};

bool open_context(const Api& api, const Options& o, Context* c) {
    const std::string backend_cfg = R"({"logging":{"level":"error"}})";
    if (api.init_backend_with_config(&c->ctx, backend_cfg.data(), static_cast<uint32_t>(backend_cfg.size())) !=
        success) {
        std::fprintf(stderr, "bench_neighbour: init_backend_with_config failed\n");
        return false;
    }
    // The same serving settings in both contexts: one shared decode loop.
    const std::string cfg = "{\"threads\":" + std::to_string(o.t) + ",\"threads_batch\":" + std::to_string(o.t) +
                            ",\"ctx_size\":2048,\"max_concurrent\":4,\"mode\":\"completion\",\"cache_prompt\":false}";
    wasi_nn_error e = api.load_by_name_with_config(c->ctx, o.model.c_str(), static_cast<uint32_t>(o.model.size()),
                                                   cfg.data(), static_cast<uint32_t>(cfg.size()), &c->g);
    if (e != success) {
        std::fprintf(stderr, "bench_neighbour: load_by_name_with_config(%s) failed: %d\n", o.model.c_str(), e);
        return false;
    }
    return true;
}

const char* kPrompt = "Once upon a time, in a small village by the sea, there lived";

// The hostile guest: H threads, each a request after another on its own
// execution context, until stopped; stop() cancels the ones in flight.
class Hostile {
public:
    Hostile(const Api& api, const Context& c, std::string options, int threads)
        : api_(api), c_(c), options_(std::move(options)), execs_(static_cast<size_t>(threads)) {}

    void start() {
        stop_ = false;
        for (size_t i = 0; i < execs_.size(); ++i) threads_.emplace_back([this, i] { run(i); });
    }
    void stop() {
        stop_ = true;
        {
            std::lock_guard<std::mutex> lock(mu_);
            for (auto& e : execs_) {
                if (e.open) api_.close_execution_context(c_.ctx, e.exec);  // cancels its compute
                e.open = false;
            }
        }
        for (auto& t : threads_) t.join();
        threads_.clear();
    }
    int requests = 0, tokens = 0, errors = 0;

private:
    struct Exec {
        graph_execution_context exec = 0;
        bool open = false;
    };
    void run(size_t i) {
        while (!stop_) {
            graph_execution_context e = 0;
            {
                std::lock_guard<std::mutex> lock(mu_);
                if (stop_ || api_.init_execution_context(c_.ctx, c_.g, &e) != success) break;
                execs_[i] = {e, true};
            }
            bool ok = bench::set_text(api_, c_.ctx, e, 0, kPrompt) == success &&
                      bench::set_text(api_, c_.ctx, e, 1, options_) == success;
            ok = ok && api_.compute(c_.ctx, e) == success;
            std::string meta;
            if (ok) {
                std::vector<uint8_t> buf(1 << 16);
                tensor_data out{buf.data(), static_cast<uint32_t>(buf.size())};
                uint32_t n = 0;
                if (api_.get_output(c_.ctx, e, 1, &out, &n) == success) meta.assign(reinterpret_cast<char*>(buf.data()), n);
            }
            std::lock_guard<std::mutex> lock(mu_);
            if (execs_[i].open) {
                api_.close_execution_context(c_.ctx, e);
                execs_[i].open = false;
                double out_tokens = 0;
                if (ok && json_number(meta, "output_tokens", &out_tokens)) {
                    requests++;
                    tokens += static_cast<int>(out_tokens);
                } else {
                    errors++;
                }
            }
        }
    }

    const Api& api_;
    const Context& c_;
    const std::string options_;
    std::vector<Exec> execs_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
};

bool victim_request(const Api& api, const Context& c, const Options& o, double* tg_ts) {
    bench::Result res;
    const std::string opts = "{\"temp\":0,\"ignore_eos\":true,\"max_tokens\":" + std::to_string(o.n) + "}";
    if (!bench::run_request(api, c.ctx, c.g, kPrompt, opts, &res, "bench_neighbour")) return false;
    if (static_cast<int>(res.output) != o.n) {
        std::fprintf(stderr, "bench_neighbour: the victim got %g tokens, not %d\n", res.output, o.n);
        return false;
    }
    *tg_ts = res.tg_ts();
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, &o)) return 2;
    const std::string hostile_opts = hostile_options(o.hostile_tokens, o.grammar);
    if (o.print_options) {
        std::printf("%s\n", hostile_opts.c_str());
        return 0;
    }
    Api api;
    if (!bench::load_api(o.lib, "bench_neighbour", &api)) return 1;
    Context victim, guest;
    if (!open_context(api, o, &victim) || !open_context(api, o, &guest)) return 1;

    // Warm-up: the victim's request once, untimed. The hostile options must
    // be accepted (they are at the caps, not over them); they are not run
    // to the end here: with a large vocabulary one hostile token can take
    // minutes of the sampling thread's (lowest-priority) time.
    double warm = 0;
    if (!victim_request(api, victim, o, &warm)) return 1;
    {
        graph_execution_context e = 0;
        const bool accepted = api.init_execution_context(guest.ctx, guest.g, &e) == success &&
                              bench::set_text(api, guest.ctx, e, 0, kPrompt) == success &&
                              bench::set_text(api, guest.ctx, e, 1, hostile_opts) == success;
        api.close_execution_context(guest.ctx, e);
        if (!accepted) {
            std::fprintf(stderr, "bench_neighbour: the hostile options were refused\n");
            return 1;
        }
    }

    std::vector<double> alone, with, ratios;
    int hostile_requests = 0, hostile_tokens = 0, hostile_errors = 0;
    for (int round = 1; round <= o.r; ++round) {
        double a = 0, w = 0;
        if (!victim_request(api, victim, o, &a)) return 1;
        Hostile h(api, guest, hostile_opts, o.hostile);
        h.start();
        std::this_thread::sleep_for(std::chrono::milliseconds(o.warm_ms));
        const bool ok = victim_request(api, victim, o, &w);
        h.stop();
        if (!ok) return 1;
        alone.push_back(a);
        with.push_back(w);
        ratios.push_back(a > 0 ? w / a : 0);
        hostile_requests += h.requests;
        hostile_tokens += h.tokens;
        hostile_errors += h.errors;
        std::printf("{\"kind\":\"round\",\"round\":%d,\"alone_tg_ts\":%.3f,\"with_tg_ts\":%.3f,\"ratio\":%.4f,"
                    "\"hostile_requests\":%d,\"hostile_tokens\":%d,\"hostile_errors\":%d}\n",
                    round, a, w, a > 0 ? w / a : 0, h.requests, h.tokens, h.errors);
        std::fflush(stdout);
    }
    const double ma = median(alone), mw = median(with);
    std::printf("{\"kind\":\"summary\",\"model\":\"%s\",\"n\":%d,\"rounds\":%d,\"threads\":%d,\"hostile_threads\":%d,"
                "\"grammar\":%s,\"alone_tg_ts\":%.3f,\"with_tg_ts\":%.3f,\"ratio\":%.4f,\"median_round_ratio\":%.4f,"
                "\"hostile_requests\":%d,\"hostile_tokens\":%d,\"hostile_errors\":%d,\"target\":0.8}\n",
                o.model.c_str(), o.n, o.r, o.t, o.hostile, o.grammar ? "true" : "false", ma, mw, ma > 0 ? mw / ma : 0,
                median(ratios), hostile_requests, hostile_tokens, hostile_errors);
    api.deinit_backend(guest.ctx);
    api.deinit_backend(victim.ctx);
    return 0;
}
