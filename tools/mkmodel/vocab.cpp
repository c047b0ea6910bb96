#include "vocab.h"

#include "gguf.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace mkmodel {

namespace {

// llama.cpp's llama_token_type values (llama-vocab.h / gguf-py TokenType).
enum : int32_t {
    TT_NORMAL  = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_BYTE    = 6,
};

const char * const kChatmlJinja =
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// The k-th word (k >= 0) over a..z in bijective base 26: a, b, ..., z, aa, ab, ...
std::string word(uint64_t k) {
    std::string w;
    ++k;
    while (k > 0) {
        --k;
        w.insert(w.begin(), (char) ('a' + k % 26));
        k /= 26;
    }
    return w;
}

struct GgufDeleter {
    void operator()(gguf_context * c) const { gguf_free(c); }
};

}  // namespace

void write_synthetic_vocab(gguf_context * dst, uint32_t n_vocab) {
    if (n_vocab < kMinSyntheticVocab) {
        throw std::runtime_error("--n-vocab must be at least " + std::to_string(kMinSyntheticVocab) +
                                 " for the synthetic tokenizer (got " + std::to_string(n_vocab) + ")");
    }
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    tokens.reserve(n_vocab);
    auto add = [&](std::string t, float score, int32_t type) {
        tokens.push_back(std::move(t));
        scores.push_back(score);
        types.push_back(type);
    };
    add("<unk>", 0.0f, TT_UNKNOWN);
    add("<s>", 0.0f, TT_CONTROL);
    add("</s>", 0.0f, TT_CONTROL);
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        add(buf, 0.0f, TT_BYTE);
    }
    // ChatML markers, so a --chat-template chatml model tokenizes its turns
    // the usual way (llama.cpp also treats <|im_end|> as end-of-turn).
    add("<|im_start|>", 0.0f, TT_CONTROL);
    add("<|im_end|>", 0.0f, TT_CONTROL);
    // Filler pieces: "▁" (U+2581, SentencePiece's space), then "▁a", "a",
    // "▁b", "b", ... "▁aa", "aa", ... all distinct, scores descending.
    const std::string space = "\xE2\x96\x81";
    for (uint32_t i = 0; tokens.size() < n_vocab; ++i) {
        std::string piece;
        if (i == 0) {
            piece = space;
        } else {
            const uint64_t j = i - 1;
            piece = (j % 2 == 0 ? space : std::string()) + word(j / 2);
        }
        add(std::move(piece), -(float) i, TT_NORMAL);
    }

    std::vector<const char *> ptrs;
    ptrs.reserve(tokens.size());
    for (const auto & t : tokens) {
        ptrs.push_back(t.c_str());
    }
    gguf_set_val_str(dst, "tokenizer.ggml.model", "llama");
    gguf_set_val_str(dst, "tokenizer.ggml.pre", "default");
    gguf_set_arr_str(dst, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());
    gguf_set_arr_data(dst, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
    gguf_set_arr_data(dst, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
    gguf_set_val_u32(dst, "tokenizer.ggml.bos_token_id", 1);
    gguf_set_val_u32(dst, "tokenizer.ggml.eos_token_id", 2);
    gguf_set_val_u32(dst, "tokenizer.ggml.unknown_token_id", 0);
    gguf_set_val_bool(dst, "tokenizer.ggml.add_bos_token", true);
    gguf_set_val_bool(dst, "tokenizer.ggml.add_eos_token", false);
}

void write_synthetic_wpm_vocab(gguf_context * dst, uint32_t n_vocab) {
    if (n_vocab < kMinSyntheticWpmVocab) {
        throw std::runtime_error("--n-vocab must be at least " + std::to_string(kMinSyntheticWpmVocab) +
                                 " for the synthetic WordPiece tokenizer (got " + std::to_string(n_vocab) + ")");
    }
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    auto add = [&](std::string t, int32_t type) {
        tokens.push_back(std::move(t));
        types.push_back(type);
    };
    add("[PAD]", TT_CONTROL);
    add("[UNK]", TT_UNKNOWN);
    add("[CLS]", TT_CONTROL);
    add("[SEP]", TT_CONTROL);
    add("[MASK]", TT_CONTROL);
    const std::string space = "\xE2\x96\x81";
    const std::string chars = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (char c : chars) add(space + c, TT_NORMAL);
    for (char c : chars) add(std::string(1, c), TT_NORMAL);
    for (char c : std::string("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) add(space + c, TT_NORMAL);
    // Longer pieces, word-initial and continuation in turn: "▁aa", "aa", "▁ab", ...
    for (uint64_t k = 26; tokens.size() < n_vocab; ++k) {
        add(space + word(k), TT_NORMAL);
        if (tokens.size() < n_vocab) add(word(k), TT_NORMAL);
    }
    std::vector<const char *> ptrs;
    for (const auto & t : tokens) ptrs.push_back(t.c_str());
    const std::vector<float> scores(tokens.size(), 0.0f);
    gguf_set_val_str(dst, "tokenizer.ggml.model", "bert");
    gguf_set_arr_str(dst, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());
    gguf_set_arr_data(dst, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
    gguf_set_arr_data(dst, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
    gguf_set_val_u32(dst, "tokenizer.ggml.padding_token_id", 0);
    gguf_set_val_u32(dst, "tokenizer.ggml.unknown_token_id", 1);
    gguf_set_val_u32(dst, "tokenizer.ggml.bos_token_id", 2);
    gguf_set_val_u32(dst, "tokenizer.ggml.cls_token_id", 2);
    gguf_set_val_u32(dst, "tokenizer.ggml.seperator_token_id", 3);
    gguf_set_val_u32(dst, "tokenizer.ggml.mask_token_id", 4);
}

uint32_t copy_tokenizer(gguf_context * dst, const std::string & path, std::string * model_out) {
    gguf_init_params params = {};
    params.no_alloc = true;
    params.ctx = nullptr;
    std::unique_ptr<gguf_context, GgufDeleter> src(gguf_init_from_file(path.c_str(), params));
    if (!src) {
        throw std::runtime_error("cannot read GGUF file '" + path + "' (--vocab-from)");
    }
    const int64_t tok_id = gguf_find_key(src.get(), "tokenizer.ggml.tokens");
    if (tok_id < 0 || gguf_get_kv_type(src.get(), tok_id) != GGUF_TYPE_ARRAY ||
        gguf_get_arr_type(src.get(), tok_id) != GGUF_TYPE_STRING) {
        throw std::runtime_error("'" + path + "' has no tokenizer.ggml.tokens string array (--vocab-from)");
    }
    const int64_t model_id = gguf_find_key(src.get(), "tokenizer.ggml.model");
    if (model_id < 0 || gguf_get_kv_type(src.get(), model_id) != GGUF_TYPE_STRING) {
        throw std::runtime_error("'" + path + "' has no tokenizer.ggml.model (--vocab-from)");
    }
    if (model_out) {
        *model_out = gguf_get_val_str(src.get(), model_id);
    }
    const size_t n_tokens = gguf_get_arr_n(src.get(), tok_id);
    if (n_tokens == 0 || n_tokens > UINT32_MAX) {
        throw std::runtime_error("'" + path + "' has an unusable token count (--vocab-from)");
    }

    const std::string prefix = "tokenizer.";
    const int64_t n_kv = gguf_get_n_kv(src.get());
    for (int64_t i = 0; i < n_kv; ++i) {
        const char * key = gguf_get_key(src.get(), i);
        if (std::string(key).compare(0, prefix.size(), prefix) != 0) {
            continue;
        }
        gguf_context * s = src.get();
        switch (gguf_get_kv_type(s, i)) {
            case GGUF_TYPE_UINT8:   gguf_set_val_u8  (dst, key, gguf_get_val_u8  (s, i)); break;
            case GGUF_TYPE_INT8:    gguf_set_val_i8  (dst, key, gguf_get_val_i8  (s, i)); break;
            case GGUF_TYPE_UINT16:  gguf_set_val_u16 (dst, key, gguf_get_val_u16 (s, i)); break;
            case GGUF_TYPE_INT16:   gguf_set_val_i16 (dst, key, gguf_get_val_i16 (s, i)); break;
            case GGUF_TYPE_UINT32:  gguf_set_val_u32 (dst, key, gguf_get_val_u32 (s, i)); break;
            case GGUF_TYPE_INT32:   gguf_set_val_i32 (dst, key, gguf_get_val_i32 (s, i)); break;
            case GGUF_TYPE_FLOAT32: gguf_set_val_f32 (dst, key, gguf_get_val_f32 (s, i)); break;
            case GGUF_TYPE_UINT64:  gguf_set_val_u64 (dst, key, gguf_get_val_u64 (s, i)); break;
            case GGUF_TYPE_INT64:   gguf_set_val_i64 (dst, key, gguf_get_val_i64 (s, i)); break;
            case GGUF_TYPE_FLOAT64: gguf_set_val_f64 (dst, key, gguf_get_val_f64 (s, i)); break;
            case GGUF_TYPE_BOOL:    gguf_set_val_bool(dst, key, gguf_get_val_bool(s, i)); break;
            case GGUF_TYPE_STRING:  gguf_set_val_str (dst, key, gguf_get_val_str (s, i)); break;
            case GGUF_TYPE_ARRAY: {
                const gguf_type at = gguf_get_arr_type(s, i);
                const size_t n = gguf_get_arr_n(s, i);
                if (at == GGUF_TYPE_STRING) {
                    std::vector<const char *> strs(n);
                    for (size_t j = 0; j < n; ++j) {
                        strs[j] = gguf_get_arr_str(s, i, j);
                    }
                    gguf_set_arr_str(dst, key, strs.data(), n);
                } else if (at == GGUF_TYPE_ARRAY) {
                    throw std::runtime_error(std::string("nested array in key ") + key + " is not supported");
                } else {
                    gguf_set_arr_data(dst, key, at, gguf_get_arr_data(s, i), n);
                }
                break;
            }
            default:
                throw std::runtime_error(std::string("unsupported GGUF value type in key ") + key);
        }
    }
    return (uint32_t) n_tokens;
}

std::string resolve_chat_template(const std::string & arg) {
    if (arg == "chatml") {
        return kChatmlJinja;
    }
    if (!arg.empty() && arg[0] == '@') {
        std::ifstream in(arg.substr(1), std::ios::binary);
        if (!in) {
            throw std::runtime_error("cannot read chat template file '" + arg.substr(1) + "'");
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    return arg;
}

}  // namespace mkmodel
