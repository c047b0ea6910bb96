// bench_embed: embeddings per second of libwasi_nn_llamacpp.so for M inputs
// of about W+2 tokens, spread over C concurrent callers (bench/embed/run.sh;
// docs/bench.md, "Embeddings").
//
//   bench_embed LIB MODEL [-C 1] [-m 256] [-w 98] [-k 1] [-t 2] [-b 2048] [-r 3]
//               [--inputs-out FILE] [--config '"key":value,...']
//
// The library is dlopen()ed, as WAMR's wasi-nn host does. Each of the C
// callers is its own backend context (as each wasm instance is) with the same
// graph config ({"embedding":true, threads T, batch_size B}), so all of them
// share the model's one decode loop. The M inputs are W words each, drawn
// from a fixed list of words that bge's WordPiece vocabulary keeps whole
// (about W+2 tokens with [CLS] and [SEP]), all distinct. A round releases the
// C callers together; they take the inputs K at a time from a shared counter
// (K = 1: one input per call, as one HTTP request per input) until all M are
// embedded. embeddings/s = M / the round's wall time. One untimed warm-up
// round comes first. --config adds graph-config keys (for example
// '"embed_batch_tokens":2048', llama.cpp's packing up to the whole batch).
//
// --inputs-out FILE writes the M inputs as a JSON array (for llama-server's
// clients) and FILE.txt one per line (for llama-embedding -f), then exits.
//
// Output: one JSON line per round ({"kind":"round",...}) and a summary line.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_api.h"

namespace {

const char* const kWords[] = {
    "the",   "of",    "and",    "to",     "in",     "is",    "that",  "for",   "it",    "as",    "was",   "with",
    "be",    "by",    "on",     "not",    "he",     "this",  "are",   "or",    "his",   "from",  "at",    "which",
    "but",   "have",  "an",     "had",    "they",   "you",   "were",  "their", "one",   "all",   "we",    "can",
    "her",   "has",   "there",  "been",   "if",     "more",  "when",  "will",  "would", "who",   "so",    "no",
    "she",   "other", "its",    "may",    "these",  "what",  "them",  "than",  "some",  "him",   "time",  "into",
    "only",  "do",    "about",  "two",    "new",    "could", "first", "after", "years", "like",  "over",  "many",
    "most",  "people", "also",  "made",   "then",   "any",   "now",   "just",  "such",  "our",   "way",   "well",
    "work",  "world", "year",   "between", "life",  "three", "state", "used",  "city",  "music", "school", "house",
    "family", "water", "game",  "team",   "history", "small", "large", "north", "south", "river", "road",  "book"};
constexpr size_t kNumWords = sizeof kWords / sizeof kWords[0];

std::vector<std::string> make_inputs(int m, int w) {
    std::vector<std::string> v;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < m; ++i) {
        std::string s = "input " + std::to_string(i);  // distinct from the first words on
        for (int k = 2; k < w; ++k) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            s += ' ';
            s += kWords[(x >> 33) % kNumWords];
        }
        v.push_back(std::move(s));
    }
    return v;
}

std::string json_string(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
    }
    return o + "\"";
}

struct Caller {
    void* ctx = nullptr;
    graph g = 0;
    graph_execution_context exec = 0;
};

int usage() {
    std::fprintf(stderr,
                 "usage: bench_embed LIB MODEL [-C 1] [-m 256] [-w 98] [-k 1] [-t 2] [-b 2048] [-r 3] "
                 "[--inputs-out FILE] [--config KEYS]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    const std::string lib = argv[1], model = argv[2];
    int callers = 1, m = 256, w = 98, k = 1, threads = 2, batch = 2048, rounds = 3;
    std::string inputs_out, extra;
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        const char* v = argv[++i];
        if (a == "-C") callers = std::atoi(v);
        else if (a == "-m") m = std::atoi(v);
        else if (a == "-w") w = std::atoi(v);
        else if (a == "-k") k = std::atoi(v);
        else if (a == "-t") threads = std::atoi(v);
        else if (a == "-b") batch = std::atoi(v);
        else if (a == "-r") rounds = std::atoi(v);
        else if (a == "--inputs-out") inputs_out = v;
        else if (a == "--config") extra = v;
        else return usage();
    }
    if (callers < 1 || m < 1 || w < 3 || k < 1 || rounds < 1) return usage();
    const std::vector<std::string> inputs = make_inputs(m, w);
    if (!inputs_out.empty()) {
        std::ofstream js(inputs_out), txt(inputs_out + ".txt");
        js << '[';
        for (size_t i = 0; i < inputs.size(); ++i) js << (i ? "," : "") << json_string(inputs[i]);
        js << "]\n";
        // No final newline: llama-embedding would read an empty last input.
        for (size_t i = 0; i < inputs.size(); ++i) txt << (i ? "\n" : "") << inputs[i];
        return js && txt ? 0 : 1;
    }

    bench::WamrApi api;
    if (!bench::load_api(lib, "bench_embed", &api)) return 1;
    const std::string config = "{\"embedding\":true,\"threads\":" + std::to_string(threads) +
                               ",\"batch_size\":" + std::to_string(batch) +
                               ",\"queue_size\":4096,\"logging\":{\"level\":\"warn\"}" +
                               (extra.empty() ? "" : "," + extra) + "}";
    // The cap on inputs per call is the host's (a graph config's is ignored).
    const std::string host = "{\"max_embedding_inputs\":4096,\"logging\":{\"level\":\"warn\"}}";
    std::vector<Caller> cs(static_cast<size_t>(callers));
    for (auto& c : cs) {
        if (api.init_backend_with_config(&c.ctx, host.data(), static_cast<uint32_t>(host.size())) != success ||
            api.load_by_name_with_config(c.ctx, model.data(), static_cast<uint32_t>(model.size()), config.data(),
                                         static_cast<uint32_t>(config.size()), &c.g) != success ||
            api.init_execution_context(c.ctx, c.g, &c.exec) != success) {
            std::fprintf(stderr, "bench_embed: could not load %s\n", model.c_str());
            return 1;
        }
    }

    // One call: inputs [from, to) as a JSON array (or the text alone).
    auto call = [&](Caller& c, size_t from, size_t to, std::vector<uint8_t>& buf, double* tokens) {
        std::string in;
        if (to - from == 1) {
            in = inputs[from];
        } else {
            in = "[";
            for (size_t i = from; i < to; ++i) in += (i > from ? "," : "") + json_string(inputs[i]);
            in += "]";
        }
        if (bench::set_text(api, c.ctx, c.exec, 0, in) != success || api.compute(c.ctx, c.exec) != success) return false;
        tensor_data out{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t n = 0;
        if (api.get_output(c.ctx, c.exec, 1, &out, &n) != success) return false;
        const std::string meta(reinterpret_cast<char*>(buf.data()), n);
        double t = 0;
        if (!bench::json_number(meta, "input_tokens", &t)) return false;
        *tokens += t;
        out = {buf.data(), static_cast<uint32_t>(buf.size())};
        return api.get_output(c.ctx, c.exec, 0, &out, &n) == success && n > 0;
    };

    std::vector<double> rates;
    for (int r = 0; r <= rounds; ++r) {  // round 0 warms up
        std::atomic<size_t> next{0};
        std::atomic<bool> failed{false};
        std::vector<double> tokens(cs.size(), 0);
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> ts;
        for (size_t i = 0; i < cs.size(); ++i) {
            ts.emplace_back([&, i] {
                std::vector<uint8_t> buf(static_cast<size_t>(k) * 64 * 1024 + (1 << 20));
                ready++;
                while (!go) std::this_thread::yield();
                for (;;) {
                    const size_t from = next.fetch_add(static_cast<size_t>(k));
                    if (from >= inputs.size()) break;
                    const size_t to = std::min(inputs.size(), from + static_cast<size_t>(k));
                    if (!call(cs[i], from, to, buf, &tokens[i])) {
                        failed = true;
                        break;
                    }
                }
            });
        }
        while (ready < callers) std::this_thread::yield();
        const auto t0 = std::chrono::steady_clock::now();
        go = true;
        for (auto& t : ts) t.join();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (failed) {
            std::fprintf(stderr, "bench_embed: a call failed\n");
            return 1;
        }
        double tok = 0;
        for (double t : tokens) tok += t;
        if (r == 0) continue;
        const double rate = m * 1000.0 / ms;
        rates.push_back(rate);
        std::printf("{\"kind\":\"round\",\"round\":%d,\"callers\":%d,\"per_call\":%d,\"inputs\":%d,\"tokens\":%.0f,"
                    "\"wall_ms\":%.3f,\"emb_per_s\":%.3f,\"tokens_per_s\":%.3f}\n",
                    r, callers, k, m, tok, ms, rate, tok * 1000.0 / ms);
        std::fflush(stdout);
    }
    std::printf("{\"kind\":\"summary\",\"callers\":%d,\"per_call\":%d,\"inputs\":%d,\"emb_per_s_median\":%.3f}\n",
                callers, k, m, bench::median(rates));
    for (auto& c : cs) {
        api.close_execution_context(c.ctx, c.exec);
        api.deinit_backend(c.ctx);
    }
    return 0;
}
