#include "engine/embed_io.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace wnl {

namespace {

using json = nlohmann::json;

// Deeper documents are refused before parsing: destroying a parsed document
// recurses once per level.
constexpr int kMaxNesting = 64;

bool nesting_within(std::string_view text, int limit) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char ch : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (ch == '\\') escaped = true;
            else if (ch == '"') in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > limit) return false;
        } else if (ch == ']' || ch == '}') {
            --depth;
        }
    }
    return true;
}

std::string_view trim_front(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
    return s.substr(i);
}

// Strings from an array (or a lone string), each non-empty, 1..max of them.
Status take_strings(const json& v, const char* what, size_t max_inputs, std::vector<std::string>* out,
                    std::string* error) {
    if (v.is_string()) {
        out->push_back(v.get<std::string>());
    } else if (v.is_array()) {
        if (v.empty()) {
            *error = std::string(what) + " is an empty array";
            return Status::invalid_argument;
        }
        if (v.size() > max_inputs) {
            *error = std::string(what) + " has " + std::to_string(v.size()) + " items; at most " +
                     std::to_string(max_inputs) + " are taken in one call (max_embedding_inputs)";
            return Status::invalid_argument;
        }
        for (size_t i = 0; i < v.size(); ++i) {
            if (!v[i].is_string()) {
                *error = std::string(what) + "[" + std::to_string(i) + "] must be a string, got " + v[i].type_name();
                return Status::invalid_argument;
            }
            out->push_back(v[i].get<std::string>());
        }
    } else {
        *error = std::string(what) + " must be a string or an array of strings, got " + v.type_name();
        return Status::invalid_argument;
    }
    for (size_t i = 0; i < out->size(); ++i) {
        if ((*out)[i].empty()) {
            *error = out->size() == 1 && v.is_string() ? std::string(what) + " is empty"
                                                       : std::string(what) + "[" + std::to_string(i) + "] is empty";
            return Status::invalid_argument;
        }
    }
    return Status::ok;
}

void append_number(std::string& s, float x) {
    if (!std::isfinite(x)) {
        s += "null";
        return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(x));
    s += buf;
}

void append_vector(std::string& s, const float* v, size_t n) {
    s += '[';
    for (size_t i = 0; i < n; ++i) {
        if (i) s += ',';
        append_number(s, v[i]);
    }
    s += ']';
}

}  // namespace

// A length that counts a trailing NUL (C strings) is accepted.
static std::string_view without_nuls(std::string_view s) {
    while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
    return s;
}

Status parse_embed_input(std::string_view text, size_t max_inputs, EmbedInput* out, std::string* error) {
    *out = EmbedInput{};
    text = without_nuls(text);
    const std::string_view head = trim_front(text);
    if (!head.empty() && (head[0] == '[' || head[0] == '{')) {
        if (!nesting_within(text, kMaxNesting)) {
            *error = "input: nested deeper than " + std::to_string(kMaxNesting) + " levels";
            return Status::invalid_argument;
        }
        json doc = json::parse(text.begin(), text.end(), nullptr, false);
        if (!doc.is_discarded()) {
            if (doc.is_object()) {
                auto it = doc.find("input");
                if (it == doc.end()) {
                    *error = "input: a JSON object must hold \"input\" (a string or an array of strings)";
                    return Status::invalid_argument;
                }
                out->batch = it->is_array();
                return take_strings(*it, "input", max_inputs, &out->texts, error);
            }
            out->batch = true;
            return take_strings(doc, "input", max_inputs, &out->texts, error);
        }
    }
    if (text.empty()) {
        *error = "input is empty";
        return Status::invalid_argument;
    }
    out->texts.emplace_back(text);
    return Status::ok;
}

Status parse_rerank_input(std::string_view text, size_t max_inputs, EmbedInput* out, std::string* error) {
    *out = EmbedInput{};
    text = without_nuls(text);
    out->batch = true;
    if (!nesting_within(text, kMaxNesting)) {
        *error = "rerank input: nested deeper than " + std::to_string(kMaxNesting) + " levels";
        return Status::invalid_argument;
    }
    json doc = json::parse(text.begin(), text.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        *error = "rerank input must be a JSON object {\"query\": \"...\", \"documents\": [\"...\", ...]}";
        return Status::invalid_argument;
    }
    auto q = doc.find("query");
    if (q == doc.end() || !q->is_string()) {
        *error = "rerank input: \"query\" must be a string";
        return Status::invalid_argument;
    }
    out->query = q->get<std::string>();
    if (out->query.empty()) {
        *error = "rerank input: \"query\" is empty";
        return Status::invalid_argument;
    }
    auto d = doc.find("documents");
    if (d == doc.end()) d = doc.find("texts");
    if (d == doc.end() || !d->is_array()) {
        *error = "rerank input: \"documents\" must be an array of strings";
        return Status::invalid_argument;
    }
    return take_strings(*d, "documents", max_inputs, &out->texts, error);
}

std::string embeddings_json(const std::vector<std::vector<float>>& outputs, bool batch, int32_t n_embd,
                            bool per_token) {
    std::string s;
    const size_t n = n_embd > 0 ? static_cast<size_t>(n_embd) : 0;
    if (batch) s += '[';
    for (size_t i = 0; i < outputs.size(); ++i) {
        if (i) s += ',';
        const auto& v = outputs[i];
        s += "{\"n_embedding\":" + std::to_string(n_embd);
        if (per_token) {
            const size_t tokens = n ? v.size() / n : 0;
            s += ",\"n_tokens\":" + std::to_string(tokens) + ",\"embedding\":[";
            for (size_t t = 0; t < tokens; ++t) {
                if (t) s += ',';
                append_vector(s, v.data() + t * n, n);
            }
            s += ']';
        } else {
            s += ",\"embedding\":";
            append_vector(s, v.data(), v.size());
        }
        s += '}';
    }
    if (batch) s += ']';
    return s;
}

std::string scores_json(const std::vector<std::vector<float>>& outputs) {
    std::string s = "{\"scores\":[";
    for (size_t i = 0; i < outputs.size(); ++i) {
        if (i) s += ',';
        append_number(s, outputs[i].empty() ? NAN : outputs[i][0]);
    }
    s += "]}";
    return s;
}

bool render_rerank_template(const std::string& tmpl, const std::string& query, const std::string& doc,
                            size_t max_bytes, std::string* out) {
    static const std::string kQuery = "{query}", kDoc = "{document}";
    out->clear();
    for (size_t pos = 0; pos < tmpl.size();) {
        const std::string* piece = nullptr;
        size_t skip = 1;
        if (tmpl.compare(pos, kQuery.size(), kQuery) == 0) {
            piece = &query;
            skip = kQuery.size();
        } else if (tmpl.compare(pos, kDoc.size(), kDoc) == 0) {
            piece = &doc;
            skip = kDoc.size();
        }
        const size_t add = piece ? piece->size() : 1;
        if (out->size() + add > max_bytes) return false;
        if (piece) out->append(*piece);
        else out->push_back(tmpl[pos]);
        pos += skip;
    }
    return true;
}

const char* pooling_name(enum llama_pooling_type p) {
    switch (p) {
        case LLAMA_POOLING_TYPE_NONE: return "none";
        case LLAMA_POOLING_TYPE_MEAN: return "mean";
        case LLAMA_POOLING_TYPE_CLS: return "cls";
        case LLAMA_POOLING_TYPE_LAST: return "last";
        case LLAMA_POOLING_TYPE_RANK: return "rank";
        default: return "unspecified";
    }
}

}  // namespace wnl
