// Embedding tests' fixtures: BERT-architecture models written at test time
// by wasi-nn-llama-mkmodel (random weights, llama.cpp's BERT WordPiece
// vocabulary), llama.cpp's own llama-embedding as the reference, and the
// comparison of two sets of vectors.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "integration/reference.h"

namespace wnl_test {

using Vectors = std::vector<std::vector<double>>;

inline bool file_exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

// The model NAME written with mkmodel ARGS into the build tree, once
// (mkmodel writes NAME.part and renames it, and the same arguments always
// give the same bytes, so concurrent test processes agree).
inline std::string made_model(const std::string& name, const std::string& args) {
    const std::string dir = std::string(WNL_BUILD_DIR) + "/test-models";
    const std::string path = dir + "/" + name + ".gguf";
    if (file_exists(path)) return path;
    ::mkdir(dir.c_str(), 0755);
    int rc = 0;
    std::string log = run_command(std::string(WNL_MKMODEL) + " -q " + args +
                                      " -o " + shell_quote(path) + " 2>&1",
                                  &rc);
    if (rc != 0) ADD_FAILURE() << "mkmodel " << args << " failed: " << log;
    return path;
}

inline std::string bert_vocab() { return std::string(WNL_LLAMA_SRC) + "/models/ggml-vocab-bert-bge.gguf"; }

// 64 wide, 2 layers, mean pooling, 1024 positions (longer than the
// default 512-token ubatch), bge's WordPiece vocabulary.
inline std::string bert_model() {
    return made_model("bert-embed", "--preset bert-tiny --n-ctx 1024 --vocab-from " + shell_quote(bert_vocab()));
}

// The same with a classification head and rank pooling.
inline std::string reranker_model() {
    return made_model("bert-rerank", "--preset bert-tiny --reranker --vocab-from " + shell_quote(bert_vocab()));
}

// llama-embedding's vectors for these prompts (one per line), from its
// JSON output; extra: pooling, normalisation, batch sizes. Its logger can
// drop the last lines at exit, so an unparsable run is retried.
//
// The reference is llama.cpp's tool, not the code under test, so sanitizer
// reports inside it are not ours to fail on: with rank pooling its
// batch_decode normalises n_embd_out floats out of the n_cls_out-long score
// vector llama.cpp returns (examples/embedding/embedding.cpp:70), which the
// TSan pass's instrumented llama.cpp reports as a heap-use-after-free and
// exits 66 for. Only element 0 (the score) is compared.
inline Vectors reference_embeddings(const std::string& model, const std::vector<std::string>& prompts,
                                    const std::string& extra, int* rc) {
    std::string joined;
    for (size_t i = 0; i < prompts.size(); ++i) joined += (i ? "\n" : "") + prompts[i];
    const std::string cmd = "TSAN_OPTIONS=report_bugs=0 " + std::string(WNL_LLAMA_BIN) + "/llama-embedding -m " +
                            shell_quote(model) + " -t 2 " + extra + " --embd-output-format json -p " +
                            shell_quote(joined) + " 2>/dev/null";
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::string out = run_command(cmd, rc);
        if (*rc != 0) return {};
        const size_t start = out.find("{\n  \"object\"");
        if (start == std::string::npos) continue;
        auto doc = nlohmann::json::parse(out.substr(start), nullptr, false);
        if (doc.is_discarded()) {
            // The JSON is followed by the perf lines on stdout: cut at the last brace.
            const size_t end = out.rfind("\n}");
            if (end == std::string::npos || end < start) continue;
            doc = nlohmann::json::parse(out.substr(start, end + 2 - start), nullptr, false);
            if (doc.is_discarded()) continue;
        }
        Vectors v;
        for (const auto& item : doc["data"]) v.push_back(item["embedding"].get<std::vector<double>>());
        return v;
    }
    *rc = -2;
    return {};
}

// WasmEdge's {"n_embedding":N,"embedding":[...]}, or an array of them.
inline Vectors parse_ours(const std::string& text, bool per_token = false) {
    Vectors v;
    auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
        ADD_FAILURE() << "not JSON: " << text.substr(0, 200);
        return v;
    }
    auto one = [&](const nlohmann::json& o) {
        if (per_token) {
            for (const auto& t : o["embedding"]) v.push_back(t.get<std::vector<double>>());
        } else {
            v.push_back(o["embedding"].get<std::vector<double>>());
        }
        EXPECT_EQ(o["n_embedding"].get<size_t>(), per_token ? v.back().size() : o["embedding"].size());
    };
    if (doc.is_array()) {
        for (const auto& o : doc) one(o);
    } else {
        one(doc);
    }
    return v;
}

// Each value within 1e-4 of the larger magnitude, plus `printed` for the
// digits llama-embedding prints (7 decimals; whole numbers, so 0.5, with
// --embd-normalize 0).
inline void expect_close(const Vectors& ours, const Vectors& ref, const std::string& what, double printed = 1e-6) {
    ASSERT_EQ(ours.size(), ref.size()) << what;
    for (size_t i = 0; i < ours.size(); ++i) {
        ASSERT_EQ(ours[i].size(), ref[i].size()) << what << " vector " << i;
        size_t bad = 0;
        for (size_t k = 0; k < ours[i].size(); ++k) {
            const double a = ours[i][k], b = ref[i][k];
            if (!(std::fabs(a - b) <= 1e-4 * std::max(std::fabs(a), std::fabs(b)) + printed)) {
                if (bad++ < 3) ADD_FAILURE() << what << " vector " << i << "[" << k << "]: " << a << " vs " << b;
            }
        }
        EXPECT_EQ(bad, 0u) << what << " vector " << i;
    }
}

}  // namespace wnl_test
