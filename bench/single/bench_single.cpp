// bench_single: prefill and decode speed of ONE request through
// libwasi_nn_llamacpp.so, measured the way llama-bench measures pp and tg
// (see docs/bench.md, "Single-stream").
//
//   bench_single LIB MODEL [-p 512] [-n 128] [-t 2] [-r 5] [-b 2048] [-ub 512]
//                [-fa auto] [--ctk f16] [--ctv f16] [-c CTX]
//
// The library is dlopen()ed, as WAMR's wasi-nn host does. One backend, one
// graph; for each repeat a fresh anonymous execution context runs a prompt of
// exactly P tokens (BOS included, as llama-bench's pp test) and generates
// exactly N tokens (ignore_eos, temp 0, cache_prompt off, so no KV reuse).
// An untimed warm-up request runs first (llama-bench does a warm-up prompt
// run and a one-token generation run); it also calibrates the prompt text so
// that it tokenizes to exactly P tokens.
//
// From the output metadata (get_output index 1):
//   pp t/s = (input_tokens - cached_tokens) / prefill_ms * 1000
//   tg t/s = (output_tokens - 1) / decode_ms * 1000
// prefill_ms runs from the request's admission to its first sampled token
// (one llama_decode of P tokens, as llama-bench's pp); decode_ms covers the
// N-1 single-token decodes after it (llama-bench's tg: N single-token
// decodes; the rate per token is what is compared).
//
// Output: one JSON line per repeat ({"kind":"repeat",...}) and a final
// {"kind":"summary",...} line with medians, on stdout. Exit status 0 on
// success, 1 on any failure (including cached_tokens != 0 or a token count
// other than asked).
#include <dlfcn.h>

#include <algorithm>
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
using Api = bench::WamrApi;

struct Options {
    std::string lib, model;
    int p = 512, n = 128, t = 2, r = 5, b = 2048, ub = 512, ctx = 0;
    std::string fa = "auto", ctk = "f16", ctv = "f16";
};

void usage() {
    std::fprintf(stderr,
                 "usage: bench_single LIB MODEL [-p P] [-n N] [-t T] [-r R] [-b N_BATCH] [-ub N_UBATCH]\n"
                 "                    [-fa on|off|auto] [--ctk TYPE] [--ctv TYPE] [-c CTX]\n"
                 "defaults: -p 512 -n 128 -t 2 -r 5 -b 2048 -ub 512 -fa auto --ctk f16 --ctv f16,\n"
                 "          -c P+N (llama-bench's n_ctx for a pp/tg test; llama.cpp pads it to a multiple of 256)\n");
}

bool parse(int argc, char** argv, Options* o) {
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&](const char* what) -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_single: %s needs a value\n", what);
                std::exit(2);
            }
            return argv[++i];
        };
        auto num = [&](const char* what) {
            const char* v = next(what);
            char* end = nullptr;
            long x = std::strtol(v, &end, 10);
            if (!*v || *end || x < 0 || x > 1000000) {
                std::fprintf(stderr, "bench_single: bad value for %s: %s\n", what, v);
                std::exit(2);
            }
            return static_cast<int>(x);
        };
        if (a == "-p") o->p = num("-p");
        else if (a == "-n") o->n = num("-n");
        else if (a == "-t") o->t = num("-t");
        else if (a == "-r") o->r = num("-r");
        else if (a == "-b") o->b = num("-b");
        else if (a == "-ub") o->ub = num("-ub");
        else if (a == "-c") o->ctx = num("-c");
        else if (a == "-fa") o->fa = next("-fa");
        else if (a == "--ctk") o->ctk = next("--ctk");
        else if (a == "--ctv") o->ctv = next("--ctv");
        else if (a == "-h" || a == "--help") {
            usage();
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "bench_single: unknown option %s\n", a.c_str());
            usage();
            return false;
        } else {
            pos.push_back(a);
        }
    }
    if (pos.size() != 2 || o->p < 2 || o->n < 2 || o->t < 1 || o->r < 1 || o->b < 1 || o->ub < 1) {
        usage();
        return false;
    }
    o->lib = pos[0];
    o->model = pos[1];
    if (o->ctx == 0) o->ctx = o->p + o->n;  // as llama-bench; llama.cpp pads both to 256
    return true;
}

using Result = bench::Result;

bool run_once(const Api& api, void* ctx, graph g, const std::string& prompt, const std::string& options,
              Result* res) {
    return bench::run_request(api, ctx, g, prompt, options, res, "bench_single");
}

std::string words(int count) {
    // " a" is one token of the synthetic SPM vocabulary (and of most real
    // ones); the tokenizer's space prefix makes the first "a" one too.
    std::string s;
    s.reserve(static_cast<size_t>(count) * 2);
    for (int i = 0; i < count; ++i) {
        if (i) s.push_back(' ');
        s.push_back('a');
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, &o)) return 2;

    Api api;
    if (!bench::load_api(o.lib, "bench_single", &api)) return 1;

    const std::string backend_cfg = R"({"logging":{"level":"error"}})";
    void* ctx = nullptr;
    wasi_nn_error e = api.init_backend_with_config(&ctx, backend_cfg.data(), static_cast<uint32_t>(backend_cfg.size()));
    if (e != success) {
        std::fprintf(stderr, "bench_single: init_backend_with_config failed: %d\n", e);
        return 1;
    }
    // llama-bench's context for `-p P -n N`: n_batch, n_ubatch, flash_attn,
    // f16 KV, one sequence, n_ctx P+N (both padded by llama.cpp to 256).
    char model_cfg[1024];
    std::snprintf(model_cfg, sizeof model_cfg,
                  "{\"threads\":%d,\"threads_batch\":%d,\"ctx_size\":%d,\"batch_size\":%d,\"ubatch_size\":%d,"
                  "\"flash_attn\":\"%s\",\"cache_type_k\":\"%s\",\"cache_type_v\":\"%s\",\"max_concurrent\":1,"
                  "\"mode\":\"completion\",\"context_shifting\":false,\"cache_prompt\":false,"
                  "\"temp\":0,\"ignore_eos\":true,\"max_tokens\":%d}",
                  o.t, o.t, o.ctx, o.b, o.ub, o.fa.c_str(), o.ctk.c_str(), o.ctv.c_str(), o.n);
    graph g = 0;
    auto tl0 = std::chrono::steady_clock::now();
    e = api.load_by_name_with_config(ctx, o.model.c_str(), static_cast<uint32_t>(o.model.size()), model_cfg,
                                     static_cast<uint32_t>(std::strlen(model_cfg)), &g);
    double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - tl0).count();
    if (e != success) {
        std::fprintf(stderr, "bench_single: load_by_name_with_config(%s) failed: %d\n", o.model.c_str(), e);
        return 1;
    }

    // Warm-up and calibration: P-token prompt, 2 tokens generated (so one
    // single-token decode runs too). Adjust the word count until the prompt
    // is exactly P tokens.
    const std::string warm_opts = R"({"max_tokens":2})";
    const std::string opts = "{\"max_tokens\":" + std::to_string(o.n) + "}";
    int n_words = o.p - 1;  // BOS + P-1 words
    std::string prompt;
    Result res;
    bool calibrated = false;
    for (int attempt = 0; attempt < 8; ++attempt) {
        prompt = words(std::max(1, n_words));
        if (!run_once(api, ctx, g, prompt, warm_opts, &res)) return 1;
        int got = static_cast<int>(res.input);
        if (got == o.p) {
            calibrated = true;
            break;
        }
        n_words += o.p - got;
    }
    if (!calibrated) {
        std::fprintf(stderr, "bench_single: could not build a prompt of exactly %d tokens (last: %d)\n", o.p,
                     static_cast<int>(res.input));
        return 1;
    }
    std::fprintf(stderr, "bench_single: prompt of %d words = %d tokens; model loaded in %.0f ms\n", n_words, o.p,
                 load_ms);

    std::vector<double> pp, tg, wall;
    for (int i = 0; i < o.r; ++i) {
        if (!run_once(api, ctx, g, prompt, opts, &res)) return 1;
        if (res.cached != 0 || res.input != o.p || res.output != o.n) {
            std::fprintf(stderr,
                         "bench_single: repeat %d is not a clean measure: input_tokens %g (want %d), "
                         "cached_tokens %g (want 0), output_tokens %g (want %d)\n%s\n",
                         i, res.input, o.p, res.cached, res.output, o.n, res.meta.c_str());
            return 1;
        }
        pp.push_back(res.pp_ts());
        tg.push_back(res.tg_ts());
        wall.push_back(res.wall_ms);
        std::printf(
            "{\"kind\":\"repeat\",\"rep\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"threads\":%d,\"cached_tokens\":%d,"
            "\"prefill_ms\":%.3f,\"decode_ms\":%.3f,\"compute_ms\":%.3f,\"pp_ts\":%.3f,\"tg_ts\":%.3f}\n",
            i, o.p, o.n, o.t, static_cast<int>(res.cached), res.prefill_ms, res.decode_ms, res.wall_ms, res.pp_ts(),
            res.tg_ts());
        std::fflush(stdout);
    }
    std::printf(
        "{\"kind\":\"summary\",\"model\":\"%s\",\"n_prompt\":%d,\"n_gen\":%d,\"threads\":%d,\"n_batch\":%d,"
        "\"n_ubatch\":%d,\"flash_attn\":\"%s\",\"ctx_size\":%d,\"repeats\":%d,\"pp_ts_median\":%.3f,"
        "\"tg_ts_median\":%.3f,\"compute_ms_median\":%.3f}\n",
        o.model.c_str(), o.p, o.n, o.t, o.b, o.ub, o.fa.c_str(), o.ctx, o.r, median(pp), median(tg), median(wall));

    api.deinit_backend(ctx);
    // The library is left loaded: llama.cpp's static state does not expect
    // to be unmapped.
    return 0;
}
