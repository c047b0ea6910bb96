// bench_contention: the decode speed of one request through
// libwasi_nn_llamacpp.so, as llama-bench's tg measures it, with the thread
// settings a user would write; run by bench/contention/run.sh while other
// processes hold some of the CPUs (docs/bench.md, "Busy host").
//
//   bench_contention LIB MODEL [-n 128] [-r 1] [-t T] [--exact]
//
// --log debug shows the thread governor's decisions (component scheduler).
// -t 0 (the default) leaves `threads` out of the config: the library's
// default. --exact adds "threads_exact": true (no clamp to the CPUs, no
// adaptation to a busy host). One backend, one graph (one slot, temp 0,
// ignore_eos, cache_prompt off); an untimed warm-up request (2 tokens),
// then R requests of a 2-token prompt generating exactly N tokens, each on
// a fresh anonymous execution context. tg t/s = (output_tokens - 1) /
// decode_ms * 1000 from the output metadata: the N-1 single-token decodes
// after the first token, llama-bench's tg from an (almost) empty cache.
//
// Output: one JSON line per repeat with the rate and what the thread
// governor did by then (get_backend_status PERFORMANCE), then a summary.
// Exit status 0 on success, 1 on any failure.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_api.h"

namespace {

struct Options {
    std::string lib, model;
    int n = 128, r = 1, t = 0;
    bool exact = false;
    std::string prompt = "a";
    std::string log = "error";
};

void usage() {
    std::fprintf(stderr,
                 "usage: bench_contention LIB MODEL [-n N] [-r R] [-t THREADS (0: default)] [--exact]\n"
                 "                        [--prompt TEXT (default \"a\")] [--log LEVEL (default error)]\n");
}

bool parse(int argc, char** argv, Options* o) {
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto num = [&](const char* what) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_contention: %s needs a value\n", what);
                std::exit(2);
            }
            const char* v = argv[++i];
            char* end = nullptr;
            const long x = std::strtol(v, &end, 10);
            if (!*v || *end || x < 0 || x > 100000) {
                std::fprintf(stderr, "bench_contention: bad value for %s: %s\n", what, v);
                std::exit(2);
            }
            return static_cast<int>(x);
        };
        if (a == "-n") o->n = num("-n");
        else if (a == "-r") o->r = num("-r");
        else if (a == "-t") o->t = num("-t");
        else if (a == "--exact") o->exact = true;
        else if (a == "--prompt" && i + 1 < argc) o->prompt = argv[++i];
        else if (a == "--log" && i + 1 < argc) o->log = argv[++i];
        else if (a == "-h" || a == "--help") {
            usage();
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "bench_contention: unknown option %s\n", a.c_str());
            return false;
        } else {
            pos.push_back(a);
        }
    }
    if (pos.size() != 2 || o->n < 2 || o->r < 1) return false;
    o->lib = pos[0];
    o->model = pos[1];
    return true;
}

// The number after `key` in the PERFORMANCE document's first model (-1 if absent).
double perf_number(const std::string& status, const char* key) {
    double v = -1;
    const size_t models = status.find("\"models\"");
    if (models == std::string::npos || !bench::json_number(status, key, &v, models)) return -1;
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, &o)) {
        usage();
        return 2;
    }
    bench::WamrApi api;
    if (!bench::load_api(o.lib, "bench_contention", &api)) return 1;

    std::string threads;
    if (o.t > 0) threads += "\"threads\":" + std::to_string(o.t) + ",";
    // threads_exact is host-only: in the backend's config, not the graph's.
    const std::string host_only = o.exact ? "\"threads_exact\":true," : "";
    const std::string cfg = "{" + threads +
                            "\"ctx_size\":256,\"batch_size\":2048,\"ubatch_size\":512,\"max_concurrent\":1,"
                            "\"mode\":\"completion\",\"context_shifting\":false,\"cache_prompt\":false,"
                            "\"temp\":0,\"ignore_eos\":true,\"logging\":{\"level\":\"" + o.log + "\",\"components\":\"scheduler,config\"}}";
    void* ctx = nullptr;
    const std::string host_cfg = "{" + host_only + cfg.substr(1);
    if (api.init_backend_with_config(&ctx, host_cfg.data(), static_cast<uint32_t>(host_cfg.size())) != success) {
        std::fprintf(stderr, "bench_contention: init_backend_with_config failed\n");
        return 1;
    }
    graph g = 0;
    if (api.load_by_name_with_config(ctx, o.model.c_str(), static_cast<uint32_t>(o.model.size()), cfg.data(),
                                     static_cast<uint32_t>(cfg.size()), &g) != success) {
        std::fprintf(stderr, "bench_contention: load_by_name_with_config(%s) failed\n", o.model.c_str());
        return 1;
    }
    bench::Result res;
    // "a" is BOS + one token of the generated model's vocabulary.
    if (!bench::run_request(api, ctx, g, o.prompt, R"({"max_tokens":2})", &res, "bench_contention")) return 1;
    std::fprintf(stderr, "bench_contention: the prompt is %g tokens\n", res.input);
    const std::string opts = "{\"max_tokens\":" + std::to_string(o.n) + "}";
    std::vector<double> tg;
    std::vector<char> buf(1 << 16);
    for (int i = 0; i < o.r; ++i) {
        if (!bench::run_request(api, ctx, g, o.prompt, opts, &res, "bench_contention")) return 1;
        if (res.output != o.n || res.cached != 0) {
            std::fprintf(stderr, "bench_contention: not a clean measure: output_tokens %g (want %d), cached %g\n%s\n",
                         res.output, o.n, res.cached, res.meta.c_str());
            return 1;
        }
        tg.push_back(res.tg_ts());
        if (api.get_backend_status(ctx, BACKEND_STATUS_PERFORMANCE, buf.data(), static_cast<uint32_t>(buf.size())) !=
            success) {
            std::fprintf(stderr, "bench_contention: get_backend_status failed\n");
            return 1;
        }
        const std::string st(buf.data());
        const size_t gov = st.find("\"thread_governor\"");
        auto gnum = [&](const char* key) {
            double v = -1;
            if (gov != std::string::npos) bench::json_number(st, key, &v, gov);
            return v;
        };
        std::printf(
            "{\"kind\":\"repeat\",\"rep\":%d,\"n_gen\":%d,\"threads_set\":%d,\"exact\":%s,\"tg_ts\":%.3f,"
            "\"decode_ms\":%.3f,\"threads\":%g,\"last_step_threads\":%g,\"governor_threads\":%g,"
            "\"probes\":%g,\"narrowed\":%g,\"widened\":%g,\"quieted\":%g,\"slowdowns\":%g}\n",
            i, o.n, o.t, o.exact ? "true" : "false", res.tg_ts(), res.decode_ms, perf_number(st, "threads"),
            perf_number(st, "last_step_threads"), gnum("threads"), gnum("probes"), gnum("narrowed"),
            gnum("widened"), gnum("quieted"), gnum("slowdowns"));
        std::fflush(stdout);
    }
    std::printf("{\"kind\":\"summary\",\"n_gen\":%d,\"threads_set\":%d,\"exact\":%s,\"repeats\":%d,\"tg_ts_median\":%.3f}\n",
                o.n, o.t, o.exact ? "true" : "false", o.r, bench::median(tg));
    api.deinit_backend(ctx);
    return 0;
}
