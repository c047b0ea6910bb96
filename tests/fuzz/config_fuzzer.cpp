// libFuzzer harness: the configuration reader, apply_config_json, at every
// layer (docs/security.md, "Fuzzing").
//
// The input is up to four JSON documents separated by 0x1E (ASCII record
// separator). Each is applied alone at backend, model and request scope,
// and then the documents are layered the way the engine does: the first as
// the backend config, the second as a graph config on top, the rest as
// per-request options on top of that (one after another, as a guest's
// successive set_input calls would be checked).
//
// Beyond "no crash, no sanitizer report, no exception", every application
// checks what config.h promises:
//  - a refused document changes nothing and says why;
//  - an accepted one leaves every value within its documented range;
//  - request scope changes only sampling, stopping and request settings
//    (and the prompt mode);
//  - applying the same document again changes nothing more (each key sets
//    what it names from its value alone);
//  - an empty or blank document is accepted and changes nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config_dump.h"
#include "fuzz_support.h"

namespace {

using namespace wnl;
constexpr const char* kHarness = "fuzz_config";

const char* scope_name(ConfigScope s) {
    return s == ConfigScope::backend ? "backend" : s == ConfigScope::model ? "model" : "request";
}

// Applies text at scope onto cfg and checks the promises above. Returns
// whether it was accepted.
bool apply_checked(std::string_view text, ConfigScope scope, Config& cfg) {
    const std::string before = fuzz::dump(cfg);
    std::string error;
    Status st = apply_config_json(text, scope, cfg, &error);
    const std::string where = std::string(scope_name(scope)) + " scope";
    if (st != Status::ok) {
        WNL_FUZZ_CHECK(kHarness, st == Status::invalid_argument || st == Status::runtime_error,
                       where + ": unexpected status " + std::to_string(static_cast<int>(st)));
        WNL_FUZZ_CHECK(kHarness, !error.empty(), where + ": refused without a reason");
        WNL_FUZZ_CHECK(kHarness, fuzz::dump(cfg) == before, where + ": a refused document changed the config");
        return false;
    }
    const std::string violation = fuzz::range_violation(cfg);
    WNL_FUZZ_CHECK(kHarness, violation.empty(), where + ": accepted value out of range: " + violation);
    Config again = cfg;
    std::string error2;
    Status st2 = apply_config_json(text, scope, again, &error2);
    WNL_FUZZ_CHECK(kHarness, st2 == Status::ok, where + ": accepted once, refused the second time: " + error2);
    WNL_FUZZ_CHECK(kHarness, fuzz::dump(again) == fuzz::dump(cfg),
                   where + ": applying the same document twice differs from once");
    return true;
}

// Request scope may change sampling, stopping, request and the prompt mode.
void check_request_scope(const Config& before, const Config& after) {
    ModelConfig m = after.model;
    m.mode = before.model.mode;
    WNL_FUZZ_CHECK(kHarness, fuzz::dump_model(m) == fuzz::dump_model(before.model),
                   "request scope changed a model setting");
    WNL_FUZZ_CHECK(kHarness, fuzz::dump_memory(after.memory) == fuzz::dump_memory(before.memory),
                   "request scope changed a memory setting");
    WNL_FUZZ_CHECK(kHarness, fuzz::dump_backend(after.backend) == fuzz::dump_backend(before.backend),
                   "request scope changed a backend setting");
    WNL_FUZZ_CHECK(kHarness, fuzz::dump_logging(after.logging) == fuzz::dump_logging(before.logging),
                   "request scope changed a logging setting");
}

bool is_blank(std::string_view s) {
    s = s.substr(0, s.find('\0'));
    for (char c : s) {
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != '\v') return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::set_quiet_logging();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> docs;
    while (docs.size() < 4) {
        size_t sep = docs.size() < 3 ? input.find('\x1e') : std::string_view::npos;
        docs.push_back(input.substr(0, sep));
        if (sep == std::string_view::npos) break;
        input.remove_prefix(sep + 1);
    }

    for (std::string_view doc : docs) {
        for (ConfigScope scope : {ConfigScope::backend, ConfigScope::model, ConfigScope::request}) {
            Config cfg;
            const Config before = cfg;
            const bool ok = apply_checked(doc, scope, cfg);
            if (ok && scope == ConfigScope::request) check_request_scope(before, cfg);
            if (is_blank(doc)) {
                WNL_FUZZ_CHECK(kHarness, ok && fuzz::dump(cfg) == fuzz::dump(before),
                               "a blank document was refused or changed something");
            }
        }
    }

    // Layered as the engine layers them; a refused layer stops there, as a
    // refused backend or graph config fails init_backend or load.
    Config cfg;
    if (!apply_checked(docs[0], ConfigScope::backend, cfg)) return 0;
    if (docs.size() < 2 || !apply_checked(docs[1], ConfigScope::model, cfg)) return 0;
    for (size_t i = 2; i < docs.size(); ++i) {
        Config req = cfg;
        if (apply_checked(docs[i], ConfigScope::request, req)) check_request_scope(cfg, req);
        if (i + 1 < docs.size()) cfg = req;  // the next request layers on this one
    }
    return 0;
}
