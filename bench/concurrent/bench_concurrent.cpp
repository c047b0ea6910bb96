// bench_concurrent: aggregate decode speed and request latency of N
// concurrent requests on ONE graph of libwasi_nn_llamacpp.so (continuous
// batching), measured so that it compares with llama-batched-bench's S_TG for
// npl = N (see docs/bench.md, "Concurrent").
//
//   bench_concurrent LIB MODEL [-N 4] [-p 128] [-n 128] [-t 2] [-r 1] [-b 2048]
//                    [-ub 512] [-fa auto] [-c CTX_PER_SEQ] [--prompts-out FILE]
//                    [--tries 1] [--calibrate-only]
//
// The library is dlopen()ed, as WAMR's wasi-nn host does. One backend, one
// graph loaded with max_concurrent N, ctx_size P+G per sequence (the same KV
// as llama-batched-bench -c N*(P+G) with its default non-unified KV: one
// stream of P+G cells per sequence), cache_prompt false, temp 0, ignore_eos.
//
// N distinct prompts of exactly P tokens each (BOS included; they differ from
// their second token on, so no KV prefix is shared) are calibrated first, one
// after another, untimed; that also warms the model up. An untimed concurrent
// warm-up round follows. Each repeat then opens N fresh anonymous execution
// contexts, releases N threads together from a barrier, and each thread makes
// one compute() call that generates exactly G tokens.
//
// Per request: latency = wall time of the compute() call; from the output
// metadata (get_output index 1) decode_ms = time from the request's first
// token (sampled from the prompt's logits) to its last; G-1 decode steps.
//
// Aggregate decode t/s of a repeat (the "tg_ts" field) counts, like
// llama-batched-bench's S_TG = npl*tg / t_tg, only decode steps in which all
// N sequences generate (every prompt prefilled, none finished), timed on the
// wall clock:
//   first_i = end_i - decode_ms_i   (end_i: the client's time when compute()
//                                    returned; a common return lag cancels)
//   W       = min_i end_i - max_i first_i
//   k       = 2G - 1 - D            (D: llama_decode calls in the round, from
//                                    get_backend_status(PERFORMANCE))
//   tg_ts   = N * k / W
// Why k: every prompt fits one batch, so each request is prefilled in the
// call where it is admitted, yielding its first token there, and then takes
// one token in each of the next G-1 calls. If the first requests are admitted
// at call c1 and the last at cK, D = G + (cK - c1), and the calls after cK up
// to c1 + G - 1 (the first finish) are exactly the steps with N tokens and
// no prompt: k = G - 1 - (cK - c1) = 2G - 1 - D of them, between the last
// first token (max first_i) and the first finish (min end_i). When all N are
// admitted together ("lockstep": D == G), k = G - 1 and W is the whole
// decode phase. llama-server's rounds are measured the same way
// (server_client.py, n_decode_total from /metrics).
// Also reported: "tg_ts_span" = sum_i (output_tokens_i - 1) / (max_i end_i -
// min_i first_i), which charges a staggered admission's prefill to the
// decode phase, and "tg_ts_sum" = sum of the per-request rates
// (output_tokens - 1) / decode_ms (llama-server's predicted_per_second).
//
// Loop counters from get_backend_status(PERFORMANCE) before and after each
// repeat give decode_calls and decode_busy_ms (time inside llama_decode);
// host_ms_per_call = (round wall - busy) / calls is the loop's own time per
// step (batch building, sampling, token_to_piece, locks, thread hand-offs).
//
// Output: one JSON line per repeat ({"kind":"repeat",...}) and a final
// {"kind":"summary",...} line on stdout. Exit status 0 on success, 1 on any
// failure (including a token count other than asked or cached_tokens != 0).
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
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
    std::string lib, model, prompts_out;
    int n_par = 4, p = 128, n = 128, t = 2, r = 1, b = 2048, ub = 512, ctx = 0, tries = 1;
    std::string fa = "auto";
    bool calibrate_only = false;
};

void usage() {
    std::fprintf(stderr,
                 "usage: bench_concurrent LIB MODEL [-N PARALLEL] [-p P] [-n G] [-t T] [-r R] [-b N_BATCH]\n"
                 "                        [-ub N_UBATCH] [-fa on|off|auto] [-c CTX_PER_SEQ]\n"
                 "                        [--tries K] [--prompts-out FILE] [--calibrate-only]\n"
                 "defaults: -N 4 -p 128 -n 128 -t 2 -r 1 --tries 1 -b 2048 -ub 512 -fa auto, -c P+G\n"
                 "--tries K: run a repeat up to K times until its N requests are admitted together;\n"
                 "--prompts-out writes the N calibrated prompts as a JSON array of strings;\n"
                 "--calibrate-only stops after that.\n");
}

bool parse(int argc, char** argv, Options* o) {
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&](const char* what) -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_concurrent: %s needs a value\n", what);
                std::exit(2);
            }
            return argv[++i];
        };
        auto num = [&](const char* what) {
            const char* v = next(what);
            char* end = nullptr;
            long x = std::strtol(v, &end, 10);
            if (!*v || *end || x < 0 || x > 1000000) {
                std::fprintf(stderr, "bench_concurrent: bad value for %s: %s\n", what, v);
                std::exit(2);
            }
            return static_cast<int>(x);
        };
        if (a == "-N") o->n_par = num("-N");
        else if (a == "-p") o->p = num("-p");
        else if (a == "-n") o->n = num("-n");
        else if (a == "-t") o->t = num("-t");
        else if (a == "-r") o->r = num("-r");
        else if (a == "-b") o->b = num("-b");
        else if (a == "-ub") o->ub = num("-ub");
        else if (a == "-c") o->ctx = num("-c");
        else if (a == "--tries") o->tries = num("--tries");
        else if (a == "-fa") o->fa = next("-fa");
        else if (a == "--prompts-out") o->prompts_out = next("--prompts-out");
        else if (a == "--calibrate-only") o->calibrate_only = true;
        else if (a == "-h" || a == "--help") {
            usage();
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "bench_concurrent: unknown option %s\n", a.c_str());
            usage();
            return false;
        } else {
            pos.push_back(a);
        }
    }
    if (pos.size() != 2 || o->n_par < 1 || o->n_par > 64 || o->p < 3 || o->n < 2 || o->t < 1 || o->r < 1 ||
        o->tries < 1 || o->b < 1 || o->ub < 1) {
        usage();
        return false;
    }
    o->lib = pos[0];
    o->model = pos[1];
    if (o->ctx == 0) o->ctx = o->p + o->n;
    return true;
}

std::string json_string(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o.push_back('\\');
        o.push_back(c);
    }
    return o + "\"";
}

struct Result {
    double input = 0, output = 0, cached = 0, queue_ms = 0, prefill_ms = 0, decode_ms = 0;
    Clock::time_point t_call, t_ret;
    std::string meta;
    wasi_nn_error err = success;
    double wall_ms() const { return std::chrono::duration<double, std::milli>(t_ret - t_call).count(); }
};

bool read_meta(const Api& api, void* ctx, graph_execution_context exec, Result* res) {
    std::vector<uint8_t> buf(1 << 16);
    tensor_data out{buf.data(), static_cast<uint32_t>(buf.size())};
    uint32_t n = 0;
    wasi_nn_error e = api.get_output(ctx, exec, 1, &out, &n);
    if (e != success) {
        std::fprintf(stderr, "bench_concurrent: get_output(1) failed: %d\n", e);
        return false;
    }
    res->meta.assign(reinterpret_cast<char*>(buf.data()), n);
    if (!json_number(res->meta, "input_tokens", &res->input) ||
        !json_number(res->meta, "output_tokens", &res->output) ||
        !json_number(res->meta, "cached_tokens", &res->cached) ||
        !json_number(res->meta, "queue_ms", &res->queue_ms) ||
        !json_number(res->meta, "prefill_ms", &res->prefill_ms) ||
        !json_number(res->meta, "decode_ms", &res->decode_ms)) {
        std::fprintf(stderr, "bench_concurrent: metadata lacks a field: %s\n", res->meta.c_str());
        return false;
    }
    return true;
}

// One request on a fresh anonymous execution context (sequential use).
bool run_once(const Api& api, void* ctx, graph g, const std::string& prompt, const std::string& options,
              Result* res) {
    graph_execution_context exec = 0;
    wasi_nn_error e = api.init_execution_context(ctx, g, &exec);
    if (e != success) {
        std::fprintf(stderr, "bench_concurrent: init_execution_context failed: %d\n", e);
        return false;
    }
    bool ok = false;
    do {
        if ((e = bench::set_text(api, ctx, exec, 0, prompt)) != success || (e = bench::set_text(api, ctx, exec, 1, options)) != success) {
            std::fprintf(stderr, "bench_concurrent: set_input failed: %d\n", e);
            break;
        }
        res->t_call = Clock::now();
        e = api.compute(ctx, exec);
        res->t_ret = Clock::now();
        if (e != success) {
            std::fprintf(stderr, "bench_concurrent: compute failed: %d\n", e);
            break;
        }
        ok = read_meta(api, ctx, exec, res);
    } while (false);
    api.close_execution_context(ctx, exec);
    return ok;
}

struct Perf {
    double decode_calls = 0, busy_ms = 0, generated = 0;
};

bool perf(const Api& api, void* ctx, Perf* p) {
    std::vector<char> buf(1 << 16);
    wasi_nn_error e = api.get_backend_status(ctx, BACKEND_STATUS_PERFORMANCE, buf.data(), static_cast<uint32_t>(buf.size()));
    if (e != success) {
        std::fprintf(stderr, "bench_concurrent: get_backend_status(PERFORMANCE) failed: %d\n", e);
        return false;
    }
    std::string j(buf.data());
    if (!json_number(j, "decode_calls", &p->decode_calls) || !json_number(j, "decode_busy_ms", &p->busy_ms) ||
        !json_number(j, "generated_tokens", &p->generated)) {
        std::fprintf(stderr, "bench_concurrent: performance status lacks a field: %s\n", j.c_str());
        return false;
    }
    return true;
}

// Prompt k: a distinct first word, then " a" words. " a" is one token of the
// synthetic SPM vocabulary (and of most real ones); the first words are
// chosen to differ in their first token.
std::string make_prompt(int k, int n_words) {
    static const char* kLead[] = {"b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q",
                                  "r", "s", "t", "u", "v", "w", "x", "y", "z"};
    const int n_lead = static_cast<int>(sizeof kLead / sizeof kLead[0]);
    std::string s = kLead[k % n_lead];
    for (int i = 0; i < k / n_lead; ++i) s += kLead[(k / n_lead + i) % n_lead];  // beyond 25: longer leads
    for (int i = 1; i < n_words; ++i) s += " a";
    return s;
}

// Nearest-rank percentile.
double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t rank = static_cast<size_t>(std::ceil(q / 100.0 * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank > 0 ? rank - 1 : 0)];
}

double ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

struct Round {
    std::vector<Result> res;
    Perf before, after;
};

// N threads, each with its own fresh execution context, released together.
bool run_round(const Api& api, void* ctx, graph g, const std::vector<std::string>& prompts, const std::string& opts,
               Round* round) {
    const size_t n = prompts.size();
    std::vector<graph_execution_context> execs(n, 0);
    round->res.assign(n, Result{});
    for (size_t i = 0; i < n; ++i) {
        wasi_nn_error e = api.init_execution_context(ctx, g, &execs[i]);
        if (e == success) e = bench::set_text(api, ctx, execs[i], 0, prompts[i]);
        if (e == success) e = bench::set_text(api, ctx, execs[i], 1, opts);
        if (e != success) {
            std::fprintf(stderr, "bench_concurrent: preparing context %zu failed: %d\n", i, e);
            for (size_t j = 0; j <= i; ++j) if (execs[j]) api.close_execution_context(ctx, execs[j]);
            return false;
        }
    }
    if (!perf(api, ctx, &round->before)) return false;
    std::mutex mu;
    std::condition_variable cv;
    size_t ready = 0;
    bool go = false;
    std::vector<std::thread> threads;
    for (size_t i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            {
                std::unique_lock<std::mutex> lock(mu);
                ready++;
                cv.notify_all();
                cv.wait(lock, [&] { return go; });
            }
            Result& r = round->res[i];
            r.t_call = Clock::now();
            r.err = api.compute(ctx, execs[i]);
            r.t_ret = Clock::now();
        });
    }
    {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return ready == n; });
        go = true;
    }
    cv.notify_all();
    for (auto& th : threads) th.join();
    bool ok = perf(api, ctx, &round->after);
    for (size_t i = 0; i < n; ++i) {
        if (round->res[i].err != success) {
            std::fprintf(stderr, "bench_concurrent: compute %zu failed: %d\n", i, round->res[i].err);
            ok = false;
        } else if (!read_meta(api, ctx, execs[i], &round->res[i])) {
            ok = false;
        }
        api.close_execution_context(ctx, execs[i]);
    }
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, &o)) return 2;

    Api api;
    if (!bench::load_api(o.lib, "bench_concurrent", &api)) return 1;

    const std::string backend_cfg = R"({"logging":{"level":"error"}})";
    void* ctx = nullptr;
    wasi_nn_error e = api.init_backend_with_config(&ctx, backend_cfg.data(), static_cast<uint32_t>(backend_cfg.size()));
    if (e != success) {
        std::fprintf(stderr, "bench_concurrent: init_backend_with_config failed: %d\n", e);
        return 1;
    }
    // llama-batched-bench's context for -c N*(P+G) -b B -ub UB -npl N with
    // non-unified KV: N sequences of P+G cells each, f16 KV. prefill_chunk 0:
    // each prompt whole in the call that admits it, as both reference tools
    // do, which the step count k above relies on (the decode phase measured
    // is the same with chunks: N tokens a step, no prompt).
    char model_cfg[1024];
    std::snprintf(model_cfg, sizeof model_cfg,
                  "{\"threads\":%d,\"threads_batch\":%d,\"ctx_size\":%d,\"batch_size\":%d,\"ubatch_size\":%d,"
                  "\"flash_attn\":\"%s\",\"cache_type_k\":\"f16\",\"cache_type_v\":\"f16\",\"max_concurrent\":%d,"
                  "\"mode\":\"completion\",\"context_shifting\":false,\"cache_prompt\":false,\"prefill_chunk\":0,"
                  "\"temp\":0,\"ignore_eos\":true,\"max_tokens\":%d}",
                  o.t, o.t, o.ctx, o.b, o.ub, o.fa.c_str(), o.n_par, o.n);
    graph g = 0;
    auto tl0 = Clock::now();
    e = api.load_by_name_with_config(ctx, o.model.c_str(), static_cast<uint32_t>(o.model.size()), model_cfg,
                                     static_cast<uint32_t>(std::strlen(model_cfg)), &g);
    const double load_ms = ms(tl0, Clock::now());
    if (e != success) {
        std::fprintf(stderr, "bench_concurrent: load_by_name_with_config(%s) failed: %d\n", o.model.c_str(), e);
        return 1;
    }

    // Calibration (and warm-up): each prompt to exactly P tokens.
    const std::string warm_opts = R"({"max_tokens":2})";
    std::vector<std::string> prompts;
    for (int k = 0; k < o.n_par; ++k) {
        int n_words = o.p - 1;  // BOS + P-1 words
        Result res;
        bool calibrated = false;
        std::string prompt;
        for (int attempt = 0; attempt < 8; ++attempt) {
            prompt = make_prompt(k, std::max(1, n_words));
            if (!run_once(api, ctx, g, prompt, warm_opts, &res)) return 1;
            const int got = static_cast<int>(res.input);
            if (got == o.p) {
                calibrated = true;
                break;
            }
            n_words += o.p - got;
        }
        if (!calibrated) {
            std::fprintf(stderr, "bench_concurrent: could not build prompt %d of exactly %d tokens (last: %g)\n", k,
                         o.p, res.input);
            return 1;
        }
        prompts.push_back(prompt);
    }
    std::fprintf(stderr, "bench_concurrent: %d prompts of %d tokens; model loaded in %.0f ms\n", o.n_par, o.p, load_ms);
    if (!o.prompts_out.empty()) {
        std::ofstream f(o.prompts_out);
        f << "[";
        for (size_t i = 0; i < prompts.size(); ++i) f << (i ? "," : "") << json_string(prompts[i]);
        f << "]\n";
        if (!f) {
            std::fprintf(stderr, "bench_concurrent: cannot write %s\n", o.prompts_out.c_str());
            return 1;
        }
    }
    if (o.calibrate_only) {
        api.deinit_backend(ctx);
        return 0;
    }

    const std::string opts = "{\"max_tokens\":" + std::to_string(o.n) + "}";
    {
        // Untimed concurrent warm-up: all N slots, a few steps.
        Round warm;
        if (!run_round(api, ctx, g, prompts, R"({"max_tokens":8})", &warm)) return 1;
    }

    std::vector<double> tg, tg_sum, tg_spans, lat, host_ms;
    int lockstep_rounds = 0;
    for (int rep = 0; rep < o.r; ++rep) {
        // A round whose requests were not admitted together may be run again
        // (--tries; by default it is not: tg_ts counts the N-token steps only).
        Round round;
        int attempt = 0;
        for (;;) {
            ++attempt;
            if (!run_round(api, ctx, g, prompts, opts, &round)) return 1;
            const double c = round.after.decode_calls - round.before.decode_calls;
            if (static_cast<int>(c) == o.n || attempt >= o.tries) break;
        }
        double tokens = 0, rate_sum = 0;
        Clock::time_point first_min = Clock::time_point::max(), end_max = Clock::time_point::min();
        Clock::time_point first_max = Clock::time_point::min(), call_min = Clock::time_point::max();
        Clock::time_point end_min = Clock::time_point::max();
        std::vector<double> lats;
        for (const auto& r : round.res) {
            if (r.cached != 0 || r.input != o.p || r.output != o.n) {
                std::fprintf(stderr,
                             "bench_concurrent: repeat %d is not a clean measure: input_tokens %g (want %d), "
                             "cached_tokens %g (want 0), output_tokens %g (want %d)\n%s\n",
                             rep, r.input, o.p, r.cached, r.output, o.n, r.meta.c_str());
                return 1;
            }
            const auto first = r.t_ret - std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double, std::milli>(r.decode_ms));
            first_min = std::min(first_min, first);
            first_max = std::max(first_max, first);
            end_max = std::max(end_max, r.t_ret);
            end_min = std::min(end_min, r.t_ret);
            call_min = std::min(call_min, r.t_call);
            tokens += r.output - 1;
            rate_sum += (r.output - 1) * 1000.0 / r.decode_ms;
            lats.push_back(r.wall_ms());
        }
        const double span_ms = ms(first_min, end_max);
        const double tg_span = tokens * 1000.0 / span_ms;
        const double calls = round.after.decode_calls - round.before.decode_calls;
        const double steady_steps = 2.0 * o.n - 1 - calls;
        const double window_ms = ms(first_max, end_min);
        if (steady_steps < 1 || window_ms <= 0) {
            std::fprintf(stderr,
                         "bench_concurrent: repeat %d has no decode step with all %d requests (%.0f calls for %d "
                         "tokens each): admission too staggered to measure\n",
                         rep, o.n_par, calls, o.n);
            return 1;
        }
        const double tg_ts = o.n_par * steady_steps * 1000.0 / window_ms;
        const double busy = round.after.busy_ms - round.before.busy_ms;
        const double round_ms = ms(call_min, end_max);
        const bool lockstep = static_cast<int>(calls) == o.n;
        lockstep_rounds += lockstep ? 1 : 0;
        const double host = calls > 0 ? (round_ms - busy) / calls : 0;
        tg.push_back(tg_ts);
        tg_sum.push_back(rate_sum);
        tg_spans.push_back(tg_span);
        host_ms.push_back(host);
        lat.insert(lat.end(), lats.begin(), lats.end());
        std::string lat_list;
        for (double l : lats) lat_list += (lat_list.empty() ? "" : ",") + std::to_string(l);
        std::printf(
            "{\"kind\":\"repeat\",\"rep\":%d,\"parallel\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"threads\":%d,"
            "\"tg_ts\":%.3f,\"steady_steps\":%.0f,\"steady_window_ms\":%.3f,\"tg_ts_span\":%.3f,"
            "\"tg_ts_sum\":%.3f,\"decode_span_ms\":%.3f,\"first_token_spread_ms\":%.3f,"
            "\"round_ms\":%.3f,\"decode_calls\":%.0f,\"lockstep\":%s,\"tries\":%d,\"decode_busy_ms\":%.3f,"
            "\"host_ms_per_call\":%.3f,\"latency_ms\":[%s]}\n",
            rep, o.n_par, o.p, o.n, o.t, tg_ts, steady_steps, window_ms, tg_span, rate_sum, span_ms,
            ms(first_min, first_max), round_ms, calls,
            lockstep ? "true" : "false", attempt, busy, host, lat_list.c_str());
        std::fflush(stdout);
    }
    std::printf(
        "{\"kind\":\"summary\",\"model\":\"%s\",\"parallel\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"threads\":%d,"
        "\"n_batch\":%d,\"n_ubatch\":%d,\"flash_attn\":\"%s\",\"ctx_per_seq\":%d,\"repeats\":%d,"
        "\"lockstep_repeats\":%d,\"tg_ts_median\":%.3f,\"tg_ts_span_median\":%.3f,\"tg_ts_sum_median\":%.3f,\"host_ms_per_call_median\":%.3f,"
        "\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f}\n",
        o.model.c_str(), o.n_par, o.p, o.n, o.t, o.b, o.ub, o.fa.c_str(), o.ctx, o.r, lockstep_rounds, median(tg),
        median(tg_spans), median(tg_sum), median(host_ms), percentile(lat, 50), percentile(lat, 99));

    api.deinit_backend(ctx);
    // The library is left loaded: llama.cpp's static state does not expect
    // to be unmapped.
    return 0;
}
