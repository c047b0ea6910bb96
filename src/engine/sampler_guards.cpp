// Checks made before llama.cpp sees a guest's grammar or JSON schema, for
// what its parser and converter cannot survive: both recurse, and a deep or
// cyclic input overflows the stack (on the caller's thread, but one process
// serves every guest).
#include <algorithm>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"

namespace wnl {

int gbnf_nesting(const std::string& g) {
    int depth = 0, deepest = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        const char c = g[i];
        if (c == '#') {
            while (i < g.size() && g[i] != '\n' && g[i] != '\r') ++i;
        } else if (c == '"' || c == '[' || c == '<') {
            // llama.cpp reads a token reference <...> up to the first '>',
            // escapes and all; literals and classes honour backslashes.
            const char close = c == '"' ? '"' : c == '[' ? ']' : '>';
            for (++i; i < g.size() && g[i] != close; ++i) {
                if (g[i] == '\\' && close != '>') ++i;
            }
        } else if (c == '(') {
            deepest = std::max(deepest, ++depth);
        } else if (c == ')') {
            --depth;
        }
    }
    return deepest;
}

namespace {

using json = nlohmann::ordered_json;

// The value a local JSON pointer ("#", "#/$defs/a", "#/items/0") names, or null.
const json* pointer_target(const json& root, const std::string& ref) {
    if (ref == "#") return &root;
    if (ref.rfind("#/", 0) != 0) return nullptr;
    const json* at = &root;
    size_t pos = 2;
    while (at && pos <= ref.size()) {
        size_t end = ref.find('/', pos);
        if (end == std::string::npos) end = ref.size();
        const std::string sel = ref.substr(pos, end - pos);
        if (at->is_object()) {
            auto it = at->find(sel);
            at = it == at->end() ? nullptr : &*it;
        } else if (at->is_array()) {
            char* stop = nullptr;
            const unsigned long long idx = std::strtoull(sel.c_str(), &stop, 10);
            at = !sel.empty() && *stop == 0 && idx < at->size() ? &(*at)[idx] : nullptr;
        } else {
            at = nullptr;
        }
        pos = end + 1;
    }
    return at;
}

}  // namespace

// llama.cpp's converter follows a "$ref" whose target is another "$ref"
// (allOf components) with no record of where it has been, reads "$ref" with
// a throwing conversion, and would ask its fetch callback for a remote one.
bool schema_refs_acyclic(const std::string& schema_json, std::string* error) {
    json root = json::parse(schema_json, nullptr, false);
    if (root.is_discarded()) {
        *error = "json_schema: not valid JSON";
        return false;
    }
    std::vector<const json*> todo{&root};
    while (!todo.empty()) {
        const json* n = todo.back();
        todo.pop_back();
        if (n->is_array()) {
            for (const auto& x : *n) todo.push_back(&x);
            continue;
        }
        if (!n->is_object()) continue;
        for (const auto& kv : n->items()) todo.push_back(&kv.value());
        auto ref = n->find("$ref");
        if (ref == n->end()) continue;
        if (!ref->is_string()) {
            *error = "json_schema: \"$ref\" must be a string";
            return false;
        }
        // Nothing is ever fetched: a reference to another document could
        // only resolve to nothing.
        if (ref->get_ref<const std::string&>().rfind("#", 0) != 0) {
            *error = "json_schema: only local \"$ref\"s (\"#/...\") are supported, got " + ref->get<std::string>();
            return false;
        }
        std::unordered_set<std::string> seen;
        for (const json* at = n; at && at->is_object();) {
            auto r = at->find("$ref");
            if (r == at->end() || !r->is_string()) break;
            const std::string target = r->get<std::string>();
            if (!seen.insert(target).second) {
                *error = "json_schema: \"$ref\" cycle through " + target;
                return false;
            }
            at = pointer_target(root, target);
        }
    }
    return true;
}

}  // namespace wnl
