// bench_models: decode speed of TWO models served by one process of
// libwasi_nn_llamacpp.so at the same time (see docs/bench.md, "Two models").
//
//   bench_models LIB MODEL_A MODEL_B [-n 128] [-t 2] [-r 3] [--solo]
//
// The library is dlopen()ed, as WAMR's wasi-nn host does. One backend
// context loads both models (two graphs, so two decode loops), each with
// `threads` T, one slot, temp 0, ignore_eos, cache_prompt off. An untimed
// warm-up request runs on each model alone. Each repeat then releases two
// threads together; each makes one request on its own model: a 2-token
// prompt (BOS and one word, like llama-bench's tg from an empty cache),
// exactly N tokens generated.
//
// Per request: tg t/s = (output_tokens - 1) / decode_ms, from the output
// metadata. The pair's "tg_ts_sum" adds the two: the machine's decode
// throughput while both run (they start together and take about as long, so
// the two decode phases overlap; "overlap" reports how much, as the shared
// part of the two phases over the longer). "cpu_wait_ms" is the time both
// loops spent waiting for the other's turn at the CPUs
// (get_backend_status(PERFORMANCE), §7 of docs/status.md).
// --solo runs model A alone instead: the single-model throughput to compare
// the pair's sum with.
//
// Output: one JSON line per repeat ({"kind":"repeat",...}) and a final
// {"kind":"summary",...} line on stdout. Exit status 0 on success, 1 on any
// failure (including a token count other than asked).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_api.h"

namespace {

using Clock = std::chrono::steady_clock;
using bench::json_number;
using bench::median;
using bench::Result;
constexpr const char* kProg = "bench_models";

struct Options {
    std::string lib, model_a, model_b;
    int n = 128, t = 2, r = 3;
    bool solo = false;
};

void usage() {
    std::fprintf(stderr,
                 "usage: bench_models LIB MODEL_A MODEL_B [-n G] [-t T] [-r R] [--solo]\n"
                 "defaults: -n 128 -t 2 -r 3; --solo: model A alone\n");
}

bool parse(int argc, char** argv, Options* o) {
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto num = [&](const char* what) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s: %s needs a value\n", kProg, what);
                std::exit(2);
            }
            const char* v = argv[++i];
            char* end = nullptr;
            long x = std::strtol(v, &end, 10);
            if (!*v || *end || x < 1 || x > 100000) {
                std::fprintf(stderr, "%s: bad value for %s: %s\n", kProg, what, v);
                std::exit(2);
            }
            return static_cast<int>(x);
        };
        if (a == "-n")
            o->n = num("-n");
        else if (a == "-t")
            o->t = num("-t");
        else if (a == "-r")
            o->r = num("-r");
        else if (a == "--solo")
            o->solo = true;
        else if (a == "-h" || a == "--help") {
            usage();
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "%s: unknown option %s\n", kProg, a.c_str());
            usage();
            return false;
        } else {
            pos.push_back(a);
        }
    }
    if (pos.size() != 3 || o->n < 2) {
        usage();
        return false;
    }
    o->lib = pos[0];
    o->model_a = pos[1];
    o->model_b = pos[2];
    return true;
}

struct Served {
    graph g = 0;
    Result last;
    Clock::time_point end;
};

bool cpu_wait_ms(const bench::WamrApi& api, void* ctx, double* total) {
    std::vector<char> buf(1 << 16);
    if (api.get_backend_status(ctx, BACKEND_STATUS_PERFORMANCE, buf.data(), static_cast<uint32_t>(buf.size())) !=
        success) {
        std::fprintf(stderr, "%s: get_backend_status(PERFORMANCE) failed\n", kProg);
        return false;
    }
    const std::string j(buf.data());
    *total = 0;
    size_t at = 0;
    double v = 0;
    while ((at = j.find("\"cpu_wait_ms\"", at)) != std::string::npos) {
        if (!json_number(j, "cpu_wait_ms", &v, at)) return false;
        *total += v;
        ++at;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, &o)) return 2;
    bench::WamrApi api;
    if (!bench::load_api(o.lib, kProg, &api)) return 1;

    const std::string backend_cfg = R"({"logging":{"level":"error"}})";
    void* ctx = nullptr;
    if (api.init_backend_with_config(&ctx, backend_cfg.data(), static_cast<uint32_t>(backend_cfg.size())) != success) {
        std::fprintf(stderr, "%s: init_backend_with_config failed\n", kProg);
        return 1;
    }
    char model_cfg[512];
    std::snprintf(model_cfg, sizeof model_cfg,
                  "{\"threads\":%d,\"threads_batch\":%d,\"ctx_size\":%d,\"max_concurrent\":1,\"mode\":\"completion\","
                  "\"context_shifting\":false,\"cache_prompt\":false,\"temp\":0,\"ignore_eos\":true}",
                  o.t, o.t, o.n + 16);
    Served a, b;
    for (auto [path, s] : {std::pair{&o.model_a, &a}, std::pair{&o.model_b, &b}}) {
        if (o.solo && s == &b) break;
        if (api.load_by_name_with_config(ctx, path->c_str(), static_cast<uint32_t>(path->size()), model_cfg,
                                         static_cast<uint32_t>(std::strlen(model_cfg)), &s->g) != success) {
            std::fprintf(stderr, "%s: load_by_name_with_config(%s) failed\n", kProg, path->c_str());
            return 1;
        }
    }
    const std::string prompt = "a";
    const std::string opts = "{\"max_tokens\":" + std::to_string(o.n) + "}";
    const std::string warm = R"({"max_tokens":4})";
    auto request = [&](Served* s, const std::string& options) {
        bool ok = bench::run_request(api, ctx, s->g, prompt, options, &s->last, kProg);
        s->end = Clock::now();
        return ok;
    };
    if (!request(&a, warm) || (!o.solo && !request(&b, warm))) return 1;

    std::vector<double> sums, rates_a, rates_b, overlaps, waits;
    for (int rep = 0; rep < o.r; ++rep) {
        double wait0 = 0, wait1 = 0;
        if (!cpu_wait_ms(api, ctx, &wait0)) return 1;
        bool ok_a = true, ok_b = true;
        if (o.solo) {
            ok_a = request(&a, opts);
        } else {
            std::thread tb([&] { ok_b = request(&b, opts); });
            ok_a = request(&a, opts);
            tb.join();
        }
        if (!ok_a || !ok_b || !cpu_wait_ms(api, ctx, &wait1)) return 1;
        for (Served* s : {&a, &b}) {
            if (o.solo && s == &b) continue;
            if (static_cast<int>(s->last.output) != o.n) {
                std::fprintf(stderr, "%s: asked for %d tokens, got %.0f\n", kProg, o.n, s->last.output);
                return 1;
            }
        }
        const double ra = a.last.tg_ts(), rb = o.solo ? 0 : b.last.tg_ts();
        double overlap = 1;
        if (!o.solo) {
            // Decode phases on the client's clock: [end - decode_ms, end].
            auto ms = [](Clock::time_point t) {
                return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
            };
            const double a1 = ms(a.end), a0 = a1 - a.last.decode_ms, b1 = ms(b.end), b0 = b1 - b.last.decode_ms;
            const double shared = std::max(0.0, std::min(a1, b1) - std::max(a0, b0));
            overlap = shared / std::max(a.last.decode_ms, b.last.decode_ms);
        }
        sums.push_back(ra + rb);
        rates_a.push_back(ra);
        rates_b.push_back(rb);
        overlaps.push_back(overlap);
        waits.push_back(wait1 - wait0);
        std::printf(
            "{\"kind\":\"repeat\",\"mode\":\"%s\",\"repeat\":%d,\"tg_ts_a\":%.3f,\"tg_ts_b\":%.3f,"
            "\"tg_ts_sum\":%.3f,\"overlap\":%.3f,\"cpu_wait_ms\":%.3f}\n",
            o.solo ? "solo" : "pair", rep + 1, ra, rb, ra + rb, overlap, wait1 - wait0);
    }
    std::printf(
        "{\"kind\":\"summary\",\"mode\":\"%s\",\"model_a\":\"%s\",\"model_b\":\"%s\",\"n_gen\":%d,"
        "\"threads\":%d,\"repeats\":%d,\"tg_ts_sum_median\":%.3f,\"tg_ts_a_median\":%.3f,"
        "\"tg_ts_b_median\":%.3f,\"overlap_median\":%.3f,\"cpu_wait_ms_median\":%.3f}\n",
        o.solo ? "solo" : "pair", o.model_a.c_str(), o.solo ? "" : o.model_b.c_str(), o.n, o.t, o.r, median(sums),
        median(rates_a), median(rates_b), median(overlaps), median(waits));
    api.deinit_backend(ctx);
    return 0;
}
