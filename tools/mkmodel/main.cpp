// wasi-nn-llama-mkmodel: writes a llama-architecture (decoder) or
// bert-architecture (embedding model or reranker) GGUF model with seeded
// random weights, for speed benchmarks and tests (inference speed does not
// depend on the weight values). Same arguments -> byte-identical file.
//
// The metadata and tensor directory are written with the gguf API; tensor data
// is then generated, converted and streamed in row chunks, so memory stays at
// a few MiB whatever the model size.

#include "bert.h"
#include "rng.h"
#include "tensor_plan.h"
#include "vocab.h"

#include "ggml.h"
#include "gguf.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using mkmodel::Init;
using mkmodel::NormalGen;
using mkmodel::TensorSpec;

struct Options {
    std::string output;
    std::string preset;
    std::string arch = "llama";  // llama | bert
    std::string pooling;  // bert: mean (default), cls, last, none, rank
    bool reranker = false;
    int64_t n_embd = 576;
    int64_t n_layer = 30;
    int64_t n_head = 9;
    int64_t n_head_kv = 3;
    int64_t n_ff = 1536;
    int64_t n_vocab = 32000;
    int64_t n_ctx = 2048;
    std::string type = "q8_0";
    uint64_t seed = 42;
    std::string vocab_from;
    std::string chat_template;  // argument as given; empty = none / keep the copied one
    bool chat_template_set = false;
    std::string name;
    bool tie_embeddings = false;
    double init_std = 0.02;
    double rope_freq_base = 10000.0;
    double rms_eps = 1e-5;
    bool quiet = false;
};

struct Preset {
    const char * name;
    const char * arch;
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    const char * type;
    const char * what;
};

const Preset kPresets[] = {
    {"tiny", "llama", 64, 2, 4, 2, 128, 512, 512, "q8_0", "~160 KiB, for tests"},
    {"135m", "llama", 576, 30, 9, 3, 1536, 32000, 2048, "q8_0", "SmolLM-135M-like shape"},
    {"360m", "llama", 960, 32, 15, 5, 2560, 32000, 2048, "q8_0", "SmolLM-360M-like shape"},
    {"1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, "q8_0", "TinyLlama-1.1B-like shape"},
    {"bert-tiny", "bert", 64, 2, 4, 4, 128, 1000, 512, "f16", "BERT embedding model for tests"},
    {"bge-small", "bert", 384, 12, 12, 12, 1536, 30522, 512, "f16", "bge-small-en / MiniLM-L12-like shape"},
};

void print_help(const char * argv0) {
    std::printf(
        "usage: %s -o OUT.gguf [options]\n"
        "\n"
        "Writes a llama-architecture GGUF model with seeded random weights, for\n"
        "speed benchmarks and tests. Same arguments -> byte-identical file.\n"
        "\n"
        "options:\n"
        "  -o, --output PATH          output file (required)\n"
        "      --preset NAME          shape preset, applied before the other options\n"
        "                             whatever their order (see below)\n"
        "      --arch A               llama (decoder, default) or bert (non-causal\n"
        "                             embedding model; see --pooling, --reranker)\n"
        "      --pooling P            bert: mean (default), cls, last, none or rank\n"
        "      --reranker             bert: add a classification head; pooling rank\n"
        "      --n-embd N             embedding length           (default 576)\n"
        "      --n-layer N            number of blocks           (default 30)\n"
        "      --n-head N             attention heads            (default 9)\n"
        "      --n-head-kv N          key/value heads (GQA; bert: = n-head) (default 3)\n"
        "      --n-ff N               feed-forward length        (default 1536)\n"
        "      --n-vocab N            vocabulary size            (default 32000)\n"
        "      --n-ctx N              training context length    (default 2048)\n"
        "      --type T               f32 | f16 | q8_0 | q4_0 for the matrices, token\n"
        "                             embedding included; norms stay f32 (default q8_0)\n"
        "      --seed N               random seed                (default 42)\n"
        "      --vocab-from GGUF      copy all tokenizer.* keys (tokens, scores, types,\n"
        "                             merges, special ids, chat template...) from another\n"
        "                             GGUF, e.g. llama.cpp's models/ggml-vocab-*.gguf;\n"
        "                             n_vocab then comes from that file\n"
        "      --chat-template T      write tokenizer.chat_template: 'chatml' (the ChatML\n"
        "                             Jinja template), '@FILE' (read from a file), or the\n"
        "                             template text / llama.cpp template name verbatim;\n"
        "                             overrides a copied one, '' removes it\n"
        "      --name NAME            general.name (default: derived from the shape)\n"
        "      --tie-embeddings       no output.weight (llama.cpp reuses token_embd)\n"
        "      --init-std X           standard deviation of matrix weights (default 0.02)\n"
        "      --rope-freq-base X     rope theta                 (default 10000)\n"
        "      --rms-eps X            RMS norm epsilon           (default 1e-5)\n"
        "  -q, --quiet                no progress output\n"
        "  -h, --help                 this text\n"
        "\n"
        "presets:\n",
        argv0);
    for (const Preset & p : kPresets) {
        std::printf("  %-9s %s, n_embd %" PRId64 ", n_layer %" PRId64 ", n_head %" PRId64 "/%" PRId64
                    ", n_ff %" PRId64 ", n_vocab %" PRId64 ", %s  (%s)\n",
                    p.name, p.arch, p.n_embd, p.n_layer, p.n_head, p.n_head_kv, p.n_ff, p.n_vocab, p.type, p.what);
    }
    std::printf(
        "\n"
        "Without --vocab-from a synthetic SentencePiece vocabulary is written: <unk>,\n"
        "<s>, </s>, the 256 byte tokens, <|im_start|>, <|im_end|>, then filler pieces;\n"
        "for --arch bert a synthetic WordPiece one: [PAD] [UNK] [CLS] [SEP] [MASK],\n"
        "letters, digits and punctuation, then filler pieces.\n"
        "\n"
        "example:\n"
        "  %s --preset 135m -o /tmp/smol-135m-q8_0.gguf\n",
        argv0);
}

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int64_t parse_int(const std::string & opt, const std::string & v, int64_t lo, int64_t hi) {
    errno = 0;
    char * end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi) {
        throw UsageError(opt + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "], got '" + v + "'");
    }
    return x;
}

uint64_t parse_u64(const std::string & opt, const std::string & v) {
    errno = 0;
    char * end = nullptr;
    const unsigned long long x = std::strtoull(v.c_str(), &end, 0);
    if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0) {
        throw UsageError(opt + ": expected a non-negative integer, got '" + v + "'");
    }
    return x;
}

double parse_double(const std::string & opt, const std::string & v) {
    errno = 0;
    char * end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0 || !(x > 0.0)) {
        throw UsageError(opt + ": expected a positive number, got '" + v + "'");
    }
    return x;
}

void apply_preset(Options & o, const std::string & name) {
    for (const Preset & p : kPresets) {
        if (name == p.name) {
            o.preset = p.name;
            o.arch = p.arch;
            o.n_embd = p.n_embd;
            o.n_layer = p.n_layer;
            o.n_head = p.n_head;
            o.n_head_kv = p.n_head_kv;
            o.n_ff = p.n_ff;
            o.n_vocab = p.n_vocab;
            o.n_ctx = p.n_ctx;
            o.type = p.type;
            return;
        }
    }
    std::string names;
    for (const Preset & p : kPresets) {
        names += names.empty() ? "" : ", ";
        names += p.name;
    }
    throw UsageError("--preset: unknown preset '" + name + "' (known: " + names + ")");
}

// Returns false when --help was given.
bool parse_args(int argc, char ** argv, Options & o) {
    std::vector<std::pair<std::string, std::string>> args;  // (option, value)
    const std::vector<std::string> flags = {"--tie-embeddings", "--reranker", "-q", "--quiet", "-h", "--help"};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        std::string v;
        const size_t eq = a.find('=');
        if (a.compare(0, 2, "--") == 0 && eq != std::string::npos) {
            v = a.substr(eq + 1);
            a = a.substr(0, eq);
            args.emplace_back(a, v);
            continue;
        }
        if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
            args.emplace_back(a, "");
            continue;
        }
        if (a.empty() || a[0] != '-') {
            throw UsageError("unexpected argument '" + a + "' (the output goes after -o)");
        }
        if (i + 1 >= argc) {
            throw UsageError(a + ": missing value");
        }
        args.emplace_back(a, argv[++i]);
    }
    for (const auto & [a, v] : args) {
        if (a == "-h" || a == "--help") {
            return false;
        }
    }
    for (const auto & [a, v] : args) {
        if (a == "--preset") {
            apply_preset(o, v);
        }
    }
    const int64_t big = int64_t(1) << 31;
    for (const auto & [a, v] : args) {
        if (a == "-o" || a == "--output") o.output = v;
        else if (a == "--preset") {}
        else if (a == "--arch") {
            if (v != "llama" && v != "bert") throw UsageError("--arch: expected llama or bert, got '" + v + "'");
            o.arch = v;
        }
        else if (a == "--pooling") o.pooling = v;
        else if (a == "--reranker") o.reranker = true;
        else if (a == "--n-embd") o.n_embd = parse_int(a, v, 1, big);
        else if (a == "--n-layer") o.n_layer = parse_int(a, v, 1, 100000);
        else if (a == "--n-head") o.n_head = parse_int(a, v, 1, big);
        else if (a == "--n-head-kv") o.n_head_kv = parse_int(a, v, 1, big);
        else if (a == "--n-ff") o.n_ff = parse_int(a, v, 1, big);
        else if (a == "--n-vocab") o.n_vocab = parse_int(a, v, 1, big);
        else if (a == "--n-ctx") o.n_ctx = parse_int(a, v, 1, big);
        else if (a == "--type") o.type = v;
        else if (a == "--seed") o.seed = parse_u64(a, v);
        else if (a == "--vocab-from") o.vocab_from = v;
        else if (a == "--chat-template") { o.chat_template = v; o.chat_template_set = true; }
        else if (a == "--name") o.name = v;
        else if (a == "--tie-embeddings") o.tie_embeddings = true;
        else if (a == "--init-std") o.init_std = parse_double(a, v);
        else if (a == "--rope-freq-base") o.rope_freq_base = parse_double(a, v);
        else if (a == "--rms-eps") o.rms_eps = parse_double(a, v);
        else if (a == "-q" || a == "--quiet") o.quiet = true;
        else throw UsageError("unknown option '" + a + "' (see --help)");
    }
    if (o.output.empty()) {
        throw UsageError("-o/--output is required");
    }
    if (o.arch != "bert" && (o.reranker || !o.pooling.empty())) {
        throw UsageError("--pooling and --reranker are for --arch bert");
    }
    if (o.arch == "bert") {
        o.n_head_kv = o.n_head;  // BERT has no grouped-query attention
        if (o.pooling.empty()) o.pooling = o.reranker ? "rank" : "mean";
        if (o.reranker && o.pooling != "rank") throw UsageError("--reranker needs --pooling rank");
        try {
            mkmodel::bert_pooling_code(o.pooling);
        } catch (const std::invalid_argument & e) {
            throw UsageError(e.what());
        }
    }
    return true;
}

struct TypeInfo {
    const char * name;
    ggml_type type;
    int32_t file_type;  // llama_ftype
};

const TypeInfo kTypes[] = {
    {"f32", GGML_TYPE_F32, 0},
    {"f16", GGML_TYPE_F16, 1},
    {"q4_0", GGML_TYPE_Q4_0, 2},
    {"q8_0", GGML_TYPE_Q8_0, 7},
};

const TypeInfo & find_type(const std::string & name) {
    for (const TypeInfo & t : kTypes) {
        if (name == t.name) {
            return t;
        }
    }
    throw UsageError("--type: unknown type '" + name + "' (f32, f16, q8_0 or q4_0)");
}

void validate_shape(const Options & o, const TypeInfo & t) {
    if (o.n_embd % o.n_head != 0) {
        throw UsageError("--n-embd (" + std::to_string(o.n_embd) + ") must be a multiple of --n-head (" +
                         std::to_string(o.n_head) + ")");
    }
    if (o.n_head % o.n_head_kv != 0) {
        throw UsageError("--n-head (" + std::to_string(o.n_head) + ") must be a multiple of --n-head-kv (" +
                         std::to_string(o.n_head_kv) + ")");
    }
    const int64_t head_dim = o.n_embd / o.n_head;
    if (o.arch == "llama" && head_dim % 2 != 0) {
        throw UsageError("head dimension n_embd/n_head = " + std::to_string(head_dim) +
                         " must be even (rotary embedding)");
    }
    // Matrix rows are n_embd long, except ffn_down's (n_ff).
    const int64_t blck = ggml_blck_size(t.type);
    for (const auto & [what, n] : {std::make_pair("--n-embd", o.n_embd), std::make_pair("--n-ff", o.n_ff)}) {
        if (n % blck != 0) {
            throw UsageError(std::string(what) + " (" + std::to_string(n) + ") must be a multiple of " +
                             std::to_string(blck) + " for --type " + t.name + " (rows are quantized in blocks of " +
                             std::to_string(blck) + ")");
        }
    }
}

std::vector<TensorSpec> plan_tensors(const Options & o, ggml_type wtype) {
    const int64_t head_dim = o.n_embd / o.n_head;
    const int64_t n_embd_kv = head_dim * o.n_head_kv;
    std::vector<TensorSpec> v;
    v.push_back({"token_embd.weight", o.n_embd, o.n_vocab, wtype, Init::Matrix, -1});
    for (int il = 0; il < (int) o.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        v.push_back({p + "attn_norm.weight", o.n_embd, 1, GGML_TYPE_F32, Init::Norm, il});
        v.push_back({p + "attn_q.weight", o.n_embd, o.n_embd, wtype, Init::Matrix, il});
        v.push_back({p + "attn_k.weight", o.n_embd, n_embd_kv, wtype, Init::Matrix, il});
        v.push_back({p + "attn_v.weight", o.n_embd, n_embd_kv, wtype, Init::Matrix, il});
        v.push_back({p + "attn_output.weight", o.n_embd, o.n_embd, wtype, Init::Matrix, il});
        v.push_back({p + "ffn_norm.weight", o.n_embd, 1, GGML_TYPE_F32, Init::Norm, il});
        v.push_back({p + "ffn_gate.weight", o.n_embd, o.n_ff, wtype, Init::Matrix, il});
        v.push_back({p + "ffn_up.weight", o.n_embd, o.n_ff, wtype, Init::Matrix, il});
        v.push_back({p + "ffn_down.weight", o.n_ff, o.n_embd, wtype, Init::Matrix, il});
    }
    v.push_back({"output_norm.weight", o.n_embd, 1, GGML_TYPE_F32, Init::Norm, -1});
    if (!o.tie_embeddings) {
        v.push_back({"output.weight", o.n_embd, o.n_vocab, wtype, Init::Matrix, -1});
    }
    return v;
}

struct GgufDeleter {
    void operator()(gguf_context * c) const { gguf_free(c); }
};
struct GgmlDeleter {
    void operator()(ggml_context * c) const { ggml_free(c); }
};
struct FileCloser {
    void operator()(FILE * f) const { std::fclose(f); }
};

class Output {
public:
    explicit Output(const std::string & path) : path_(path), tmp_(path + ".part") {
        f_ = std::fopen(tmp_.c_str(), "wb");
        if (!f_) {
            throw std::runtime_error("cannot open '" + tmp_ + "' for writing: " + std::strerror(errno));
        }
    }
    ~Output() {
        if (f_) {
            std::fclose(f_);
            std::remove(tmp_.c_str());
        }
    }
    FILE * file() { return f_; }
    void write(const void * data, size_t n) {
        if (n && std::fwrite(data, 1, n, f_) != n) {
            throw std::runtime_error("write to '" + tmp_ + "' failed: " + std::strerror(errno));
        }
        pos_ += n;
    }
    void set_pos(size_t p) { pos_ = p; }
    size_t pos() const { return pos_; }
    void commit() {
        FILE * f = f_;
        f_ = nullptr;
        if (std::fclose(f) != 0) {
            std::remove(tmp_.c_str());
            throw std::runtime_error("closing '" + tmp_ + "' failed: " + std::strerror(errno));
        }
        if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
            std::remove(tmp_.c_str());
            throw std::runtime_error("cannot rename '" + tmp_ + "' to '" + path_ + "': " + std::strerror(errno));
        }
    }

private:
    std::string path_;
    std::string tmp_;
    FILE * f_ = nullptr;
    size_t pos_ = 0;
};

// Generates the tensor's values row chunk by row chunk, converts them to its
// type and appends them to the file.
void write_tensor_data(Output & out, const TensorSpec & t, const Options & o) {
    NormalGen gen(mkmodel::tensor_seed(o.seed, t.name));
    const int64_t rows_per_chunk = std::max<int64_t>(1, (int64_t(1) << 20) / t.ne0);
    std::vector<float> src;
    std::vector<uint8_t> dst;
    const float std_w = (float) o.init_std;
    for (int64_t r0 = 0; r0 < t.ne1; r0 += rows_per_chunk) {
        const int64_t nr = std::min(rows_per_chunk, t.ne1 - r0);
        const int64_t n = nr * t.ne0;
        src.resize((size_t) n);
        if (t.init == Init::Norm) {
            for (int64_t i = 0; i < n; ++i) {
                src[i] = 1.0f + 0.02f * gen.next();
            }
        } else if (t.init == Init::Bias) {
            for (int64_t i = 0; i < n; ++i) {
                src[i] = 0.02f * gen.next();
            }
        } else {
            for (int64_t i = 0; i < n; ++i) {
                src[i] = std_w * gen.next();
            }
        }
        const size_t nbytes = ggml_row_size(t.type, t.ne0) * (size_t) nr;
        switch (t.type) {
            case GGML_TYPE_F32:
                out.write(src.data(), nbytes);
                break;
            case GGML_TYPE_F16:
                dst.resize(nbytes);
                ggml_fp32_to_fp16_row(src.data(), reinterpret_cast<ggml_fp16_t *>(dst.data()), n);
                out.write(dst.data(), nbytes);
                break;
            default: {
                dst.resize(nbytes);
                const size_t got = ggml_quantize_chunk(t.type, src.data(), dst.data(), 0, nr, t.ne0, nullptr);
                if (got != nbytes) {
                    throw std::runtime_error("quantization of " + t.name + " produced " + std::to_string(got) +
                                             " bytes, expected " + std::to_string(nbytes));
                }
                out.write(dst.data(), nbytes);
                break;
            }
        }
    }
}

std::string human_count(uint64_t n) {
    char buf[32];
    if (n >= 1000000000ULL) {
        std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
    } else if (n >= 1000000ULL) {
        std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
    } else if (n >= 1000ULL) {
        std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
    } else {
        std::snprintf(buf, sizeof buf, "%" PRIu64, n);
    }
    return buf;
}

int run(const Options & o) {
    const auto t_start = std::chrono::steady_clock::now();
    const TypeInfo & ti = find_type(o.type);
    Options opt = o;

    std::unique_ptr<gguf_context, GgufDeleter> gctx(gguf_init_empty());
    if (!gctx) {
        throw std::runtime_error("gguf_init_empty failed");
    }
    gguf_context * g = gctx.get();

    // Tokenizer first, into a scratch context: with --vocab-from it fixes n_vocab.
    std::unique_ptr<gguf_context, GgufDeleter> tctx(gguf_init_empty());
    std::string vocab_desc;
    if (!opt.vocab_from.empty()) {
        std::string model;
        opt.n_vocab = mkmodel::copy_tokenizer(tctx.get(), opt.vocab_from, &model);
        const char * slash = std::strrchr(opt.vocab_from.c_str(), '/');
        vocab_desc = std::string(slash ? slash + 1 : opt.vocab_from.c_str()) + " (" + model + ", " +
                     std::to_string(opt.n_vocab) + " tokens)";
    } else if (opt.arch == "bert") {
        mkmodel::write_synthetic_wpm_vocab(tctx.get(), (uint32_t) opt.n_vocab);
        vocab_desc = "synthetic WordPiece (" + std::to_string(opt.n_vocab) + " tokens)";
    } else {
        if (opt.n_vocab < mkmodel::kMinSyntheticVocab) {
            throw UsageError("--n-vocab must be at least " + std::to_string(mkmodel::kMinSyntheticVocab) +
                             " for the synthetic tokenizer (got " + std::to_string(opt.n_vocab) + ")");
        }
        mkmodel::write_synthetic_vocab(tctx.get(), (uint32_t) opt.n_vocab);
        vocab_desc = "synthetic SPM (" + std::to_string(opt.n_vocab) + " tokens)";
    }
    if (opt.chat_template_set) {
        gguf_remove_key(tctx.get(), "tokenizer.chat_template");
        const std::string tmpl = mkmodel::resolve_chat_template(opt.chat_template);
        if (!tmpl.empty()) {
            gguf_set_val_str(tctx.get(), "tokenizer.chat_template", tmpl.c_str());
        }
    }
    const bool has_template = gguf_find_key(tctx.get(), "tokenizer.chat_template") >= 0;

    validate_shape(opt, ti);

    std::string name = opt.name;
    if (name.empty()) {
        name = "mkmodel-" + opt.arch + (opt.reranker ? "-reranker-" : "-") + (opt.preset.empty() ? std::to_string(opt.n_embd) + "x" + std::to_string(opt.n_layer)
                                                       : opt.preset) +
               "-" + ti.name;
    }
    const std::string desc = "random weights (seed " + std::to_string(opt.seed) +
                             ") written by wasi-nn-llama-mkmodel, for benchmarks only";

    const bool bert = opt.arch == "bert";
    const mkmodel::BertShape bert_shape = {opt.n_embd, opt.n_layer, opt.n_head, opt.n_ff, opt.n_vocab, opt.n_ctx,
                                           opt.reranker};
    gguf_set_val_str(g, "general.architecture", opt.arch.c_str());
    gguf_set_val_str(g, "general.type", "model");
    gguf_set_val_str(g, "general.name", name.c_str());
    gguf_set_val_str(g, "general.description", desc.c_str());
    gguf_set_val_u32(g, "general.file_type", (uint32_t) ti.file_type);
    gguf_set_val_u32(g, "general.quantization_version", GGML_QNT_VERSION);
    if (!bert) {
        gguf_set_val_u32(g, "llama.context_length", (uint32_t) opt.n_ctx);
        gguf_set_val_u32(g, "llama.embedding_length", (uint32_t) opt.n_embd);
        gguf_set_val_u32(g, "llama.block_count", (uint32_t) opt.n_layer);
        gguf_set_val_u32(g, "llama.feed_forward_length", (uint32_t) opt.n_ff);
        gguf_set_val_u32(g, "llama.attention.head_count", (uint32_t) opt.n_head);
        gguf_set_val_u32(g, "llama.attention.head_count_kv", (uint32_t) opt.n_head_kv);
        gguf_set_val_u32(g, "llama.rope.dimension_count", (uint32_t) (opt.n_embd / opt.n_head));
        gguf_set_val_f32(g, "llama.rope.freq_base", (float) opt.rope_freq_base);
        gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", (float) opt.rms_eps);
        gguf_set_val_u32(g, "llama.vocab_size", (uint32_t) opt.n_vocab);
    }
    gguf_set_kv(g, tctx.get());
    tctx.reset();
    if (bert) {
        // llama.cpp's default LayerNorm epsilon for BERT conversions.
        mkmodel::write_bert_metadata(g, bert_shape, mkmodel::bert_pooling_code(opt.pooling), 1e-12f);
    }

    const std::vector<TensorSpec> plan = bert ? mkmodel::plan_bert_tensors(bert_shape, ti.type) : plan_tensors(opt, ti.type);

    ggml_init_params ip = {};
    ip.mem_size = ggml_tensor_overhead() * (plan.size() + 1);
    ip.mem_buffer = nullptr;
    ip.no_alloc = true;
    std::unique_ptr<ggml_context, GgmlDeleter> ctx(ggml_init(ip));
    if (!ctx) {
        throw std::runtime_error("ggml_init failed");
    }
    uint64_t n_params = 0;
    for (const TensorSpec & t : plan) {
        ggml_tensor * x = t.ne1 == 1 ? ggml_new_tensor_1d(ctx.get(), t.type, t.ne0)
                                     : ggml_new_tensor_2d(ctx.get(), t.type, t.ne0, t.ne1);
        ggml_set_name(x, t.name.c_str());
        gguf_add_tensor(g, x);
        n_params += (uint64_t) t.ne0 * (uint64_t) t.ne1;
    }

    if (!opt.quiet) {
        std::fprintf(stderr,
                     "mkmodel: %s %s, n_embd %" PRId64 ", n_layer %" PRId64 ", n_head %" PRId64 "/%" PRId64
                     ", n_ff %" PRId64 ", vocab %s, %s params -> %s\n",
                     opt.arch.c_str(), ti.name, opt.n_embd, opt.n_layer, opt.n_head, opt.n_head_kv, opt.n_ff, vocab_desc.c_str(),
                     human_count(n_params).c_str(), opt.output.c_str());
    }

    Output out(opt.output);
    if (!gguf_write_to_file_ptr(g, out.file(), /*only_meta=*/true)) {
        throw std::runtime_error("writing the GGUF header to '" + opt.output + ".part' failed");
    }
    const size_t data_offset = gguf_get_meta_size(g);
    out.set_pos(data_offset);
    const size_t align = gguf_get_alignment(g);
    const bool tty = isatty(STDERR_FILENO);
    static const uint8_t zeros[64] = {};
    int last_layer = -2;
    for (size_t i = 0; i < plan.size(); ++i) {
        const TensorSpec & t = plan[i];
        if (!opt.quiet && t.layer != last_layer && t.layer >= 0) {
            std::fprintf(stderr, tty ? "\rmkmodel: layer %d/%" PRId64 "  " : "mkmodel: layer %d/%" PRId64 "\n",
                         t.layer + 1, opt.n_layer);
            std::fflush(stderr);
        }
        last_layer = t.layer;
        const size_t expect = data_offset + gguf_get_tensor_offset(g, (int64_t) i);
        if (out.pos() != expect) {
            throw std::runtime_error("internal error: " + t.name + " at offset " + std::to_string(out.pos()) +
                                     ", expected " + std::to_string(expect));
        }
        write_tensor_data(out, t, opt);
        const size_t pad = (align - out.pos() % align) % align;
        out.write(zeros, pad);
    }
    if (!opt.quiet && tty) {
        std::fputc('\n', stderr);
    }
    const size_t total = out.pos();
    out.commit();

    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::printf("wrote %s\n", opt.output.c_str());
    std::printf("  name     %s\n", name.c_str());
    std::printf("  arch     %s, n_embd %" PRId64 ", n_layer %" PRId64 ", n_head %" PRId64 ", n_head_kv %" PRId64
                ", n_ff %" PRId64 ", n_ctx %" PRId64 "%s\n",
                opt.arch.c_str(), opt.n_embd, opt.n_layer, opt.n_head, opt.n_head_kv, opt.n_ff, opt.n_ctx,
                opt.tie_embeddings ? ", tied embeddings" : "");
    if (bert) {
        std::printf("  pooling  %s%s\n", opt.pooling.c_str(), opt.reranker ? ", classification head" : "");
    }
    std::printf("  vocab    %s%s\n", vocab_desc.c_str(), has_template ? ", chat template" : "");
    std::printf("  type     %s (norms f32), seed %" PRIu64 "\n", ti.name, opt.seed);
    std::printf("  params   %" PRIu64 " (%s), %zu tensors\n", n_params, human_count(n_params).c_str(), plan.size());
    std::printf("  bytes    %zu (%.1f MiB)\n", total, total / 1048576.0);
    std::printf("  time     %.2f s\n", secs);
    return 0;
}

}  // namespace

int main(int argc, char ** argv) {
    Options o;
    try {
        if (!parse_args(argc, argv, o)) {
            print_help(argv[0]);
            return 0;
        }
        return run(o);
    } catch (const UsageError & e) {
        std::fprintf(stderr, "wasi-nn-llama-mkmodel: %s\n", e.what());
        std::fprintf(stderr, "try '%s --help'\n", argv[0]);
        return 2;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "wasi-nn-llama-mkmodel: error: %s\n", e.what());
        return 1;
    }
}
