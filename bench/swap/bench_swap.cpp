// Hot swap under traffic (docs/bench.md, "Hot swap"): C streams of greedy
// chat requests on one graph, each token timestamped as compute_single
// hands it over; after `before` seconds the graph is swapped to model B
// (swap_graph), traffic goes on `after` seconds. With --no-swap the same
// traffic runs without the swap, as the reference.
//
//   bench_swap LIB A B [-c 8] [-n 64] [-t 2] [--before 30] [--after 30]
//              [--window 60] [--no-swap]
//
// Prints one JSON line: the longest gap between consecutive served tokens
// (all streams merged) from the swap's start to 5 s after its end, the
// same figure over the steady traffic before the swap, the median decode
// step, the first prefill on the new model, and the tokens served in the
// `window` seconds centred on the swap (or on the same moment without one).
#include <atomic>
#include <mutex>
#include <thread>

#include "bench_api.h"

namespace {

using Clock = std::chrono::steady_clock;
const char* kProg = "bench_swap";

struct Api {
    bench::WamrApi base;
    decltype(&::compute_single) compute_single = nullptr;
    decltype(&::get_output_single) get_output_single = nullptr;
    decltype(&::fini_single) fini_single = nullptr;
    decltype(&::swap_graph) swap_graph = nullptr;
};

bool load(const std::string& lib, Api* api) {
    if (!bench::load_api(lib, kProg, &api->base)) return false;
    void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    return h && bench::sym(h, "compute_single", &api->compute_single, kProg) &&
           bench::sym(h, "get_output_single", &api->get_output_single, kProg) &&
           bench::sym(h, "fini_single", &api->fini_single, kProg) &&
           bench::sym(h, "swap_graph", &api->swap_graph, kProg);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Shared {
    std::mutex mu;
    std::vector<Clock::time_point> tokens;  // every piece compute_single returned
    std::vector<double> steps_ms;  // gaps within one stream, while no swap runs
    std::vector<std::pair<Clock::time_point, std::string>> metas;  // request end, metadata
    std::atomic<bool> stop{false};
    std::atomic<bool> swapping{false};
    std::atomic<int> failures{0};
};

// One client: request after request, each streamed, the prompt varied so
// that no two requests share a cache.
void client(const Api& api, void* ctx, graph g, int id, int n_predict, Shared* sh) {
    const std::string options = "{\"temp\":0,\"max_tokens\":" + std::to_string(n_predict) + "}";
    for (int round = 0; !sh->stop; ++round) {
        graph_execution_context exec = 0;
        if (api.base.init_execution_context(ctx, g, &exec) != success) {
            sh->failures++;
            return;
        }
        const std::string prompt =
            "Client " + std::to_string(id) + ", request " + std::to_string(round) + ": tell me a story about a cat.";
        bool ok = bench::set_text(api.base, ctx, exec, 0, prompt) == success &&
                  bench::set_text(api.base, ctx, exec, 1, options) == success;
        Clock::time_point last{};
        std::vector<Clock::time_point> mine;
        std::vector<double> steps;
        std::vector<uint8_t> buf(1 << 16);
        while (ok) {
            wasi_nn_error e = api.compute_single(ctx, exec);
            if (e == end_of_sequence) break;
            if (e != success) {
                ok = false;
                break;
            }
            const auto now = Clock::now();
            uint32_t n = static_cast<uint32_t>(buf.size());
            if (api.get_output_single(ctx, exec, 0, buf.data(), &n) != success) ok = false;
            if (n == 0) continue;
            if (last != Clock::time_point{} && !sh->swapping) steps.push_back(ms_between(last, now));
            last = now;
            mine.push_back(now);
        }
        api.fini_single(ctx, exec);
        std::string meta;
        if (ok) {
            std::vector<uint8_t> out(1 << 16);
            tensor_data td{out.data(), static_cast<uint32_t>(out.size())};
            uint32_t n = 0;
            if (api.base.get_output(ctx, exec, 1, &td, &n) == success) meta.assign(reinterpret_cast<char*>(out.data()), n);
        }
        api.base.close_execution_context(ctx, exec);
        if (!ok) {
            std::fprintf(stderr, "%s: client %d: a request failed\n", kProg, id);
            sh->failures++;
            return;
        }
        std::lock_guard<std::mutex> lock(sh->mu);
        sh->tokens.insert(sh->tokens.end(), mine.begin(), mine.end());
        sh->steps_ms.insert(sh->steps_ms.end(), steps.begin(), steps.end());
        sh->metas.emplace_back(Clock::now(), std::move(meta));
    }
}

// The longest gap between consecutive tokens in [from, to], counting the
// last token before `from` (a stall that starts before the window).
double longest_gap(const std::vector<Clock::time_point>& sorted, Clock::time_point from, Clock::time_point to) {
    double worst = 0;
    for (size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i] < from || sorted[i - 1] > to) continue;
        worst = std::max(worst, ms_between(sorted[i - 1], sorted[i]));
    }
    return worst;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: %s LIB A B [-c 8] [-n 64] [-t 2] [--before 30] [--after 30] [--window 60] "
                     "[--no-swap] [--config '\"key\":value,...']\n",
                     kProg);
        return 2;
    }
    const std::string lib = argv[1], model_a = argv[2], model_b = argv[3];
    int clients = 8, n_predict = 64, threads = 2;
    double before_s = 30, after_s = 30, window_s = 60;
    bool swap = true;
    std::string extra;  // more host-config keys, e.g. "\"prefill_chunk\":0"
    for (int i = 4; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : "0"; };
        if (a == "-c") clients = std::atoi(next());
        else if (a == "-n") n_predict = std::atoi(next());
        else if (a == "-t") threads = std::atoi(next());
        else if (a == "--before") before_s = std::atof(next());
        else if (a == "--after") after_s = std::atof(next());
        else if (a == "--window") window_s = std::atof(next());
        else if (a == "--no-swap") swap = false;
        else if (a == "--config") extra = next();
        else {
            std::fprintf(stderr, "%s: unknown argument %s\n", kProg, a.c_str());
            return 2;
        }
    }
    Api api;
    if (!load(lib, &api)) return 1;
    const std::string host = "{\"logging\":{\"level\":\"error\"},\"max_concurrent\":" + std::to_string(clients) +
                             ",\"threads\":" + std::to_string(threads) + ",\"ctx_size\":512,\"max_sessions\":1024" +
                             (extra.empty() ? "" : "," + extra) + "}";
    void* ctx = nullptr;
    if (api.base.init_backend_with_config(&ctx, host.data(), static_cast<uint32_t>(host.size())) != success) {
        std::fprintf(stderr, "%s: init_backend_with_config failed\n", kProg);
        return 1;
    }
    graph g = 0;
    if (api.base.load_by_name_with_config(ctx, model_a.data(), static_cast<uint32_t>(model_a.size()), "", 0, &g) !=
        success) {
        std::fprintf(stderr, "%s: loading %s failed\n", kProg, model_a.c_str());
        return 1;
    }
    Shared sh;
    std::vector<std::thread> pool;
    for (int c = 0; c < clients; ++c) pool.emplace_back(client, std::cref(api), ctx, g, c, n_predict, &sh);
    std::this_thread::sleep_for(std::chrono::duration<double>(before_s));
    const auto t_swap = Clock::now();
    wasi_nn_error swap_rc = success;
    if (swap) {
        sh.swapping = true;
        swap_rc = api.swap_graph(ctx, g, model_b.data(), static_cast<uint32_t>(model_b.size()), nullptr, 0);
        sh.swapping = false;
    }
    const auto t_swapped = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(after_s));
    sh.stop = true;
    for (auto& t : pool) t.join();
    api.base.deinit_backend(ctx);

    std::sort(sh.tokens.begin(), sh.tokens.end());
    const auto start = sh.tokens.empty() ? t_swap : sh.tokens.front();
    const double stall = longest_gap(sh.tokens, t_swap, t_swapped + std::chrono::seconds(5));
    // Steady traffic: from 2 s after the first token to the swap.
    const double steady_gap = longest_gap(sh.tokens, start + std::chrono::seconds(2), t_swap);
    const auto half = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(window_s / 2));
    const auto mid = swap ? t_swap + (t_swapped - t_swap) / 2 : t_swap;
    size_t in_window = 0;
    for (const auto& t : sh.tokens) in_window += (t >= mid - half && t <= mid + half) ? 1 : 0;
    // The first request that ended after the swap on the new model (version 2).
    double first_prefill = 0;
    for (const auto& [at, meta] : sh.metas) {
        if (at < t_swapped || meta.find("\"number\":2") == std::string::npos) continue;
        bench::json_number(meta, "prefill_ms", &first_prefill);
        break;
    }
    std::printf(
        "{\"kind\":\"%s\",\"swap_rc\":%d,\"swap_ms\":%.1f,\"stall_ms\":%.1f,\"steady_max_gap_ms\":%.1f,"
        "\"decode_step_ms\":%.2f,\"first_prefill_ms\":%.1f,\"window_s\":%.1f,\"window_tokens\":%zu,"
        "\"window_tps\":%.2f,\"tokens\":%zu,\"requests\":%zu,\"failures\":%d}\n",
        swap ? "swap" : "no-swap", swap_rc, ms_between(t_swap, t_swapped), swap ? stall : 0.0, steady_gap,
        bench::median(sh.steps_ms), first_prefill, window_s, in_window, in_window / window_s, sh.tokens.size(),
        sh.metas.size(), sh.failures.load());
    return sh.failures == 0 && swap_rc == success ? 0 : 1;
}
