// The host's policy (SPEC §4): model aliases, ceilings on what guests set,
// and the host's own config keys. It comes from the JSON file named by
// WASI_NN_LLAMA_POLICY (any host, WAMR's included) and from the "policy"
// section of init_backend_with_config's config (a native host). Every
// backend context keeps the policy it was opened with; a changed file is
// read again by the next init_backend. docs/security.md is the reference.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.h"
#include "engine/guest_rules.h"
#include "engine/status.h"

namespace wnl {

// load_by_name("alias") loads `path` with `config` (the host's), the
// guest's config layered over it within the ceilings.
struct ModelAlias {
    std::string path;
    std::string config;  // JSON object text; empty = none
};

struct Policy {
    std::vector<std::string> sources;  // the file, "init_backend_with_config"
    // The host config documents (everything but "models" and "ceilings"),
    // in the order they apply.
    std::vector<std::string> configs;
    std::map<std::string, ModelAlias> models;
    // Ceiling changes from the defaults: nullopt removes one.
    std::map<std::string, std::optional<int64_t>> ceilings;
    std::optional<double> queue_share;

    // One policy document. Every part is checked now (aliases' configs
    // included), so that a bad policy fails init_backend, not a later load.
    static Status parse(std::string_view text, const std::string& source, Policy* out, std::string* error);
    // `over`'s aliases and ceilings replace these of the same name; its
    // config documents apply after these.
    void layer(const Policy& over);
    GuestLimits limits() const;
};

// The policy file named by WASI_NN_LLAMA_POLICY, or null when the variable
// is unset or empty. The file is read on every call and parsed again only
// when its contents changed. A file that cannot be read is not_found; one
// that does not parse is invalid_argument; *error names the file.
Status environment_policy(std::shared_ptr<const Policy>* out, std::string* error);

// The host's side of a new backend context: the defaults, the policy
// file's config, init_backend_with_config's own keys, then its policy
// section's config. *policy: the file's policy with the section over it.
Status host_config(std::string_view init_config, Config* cfg, std::shared_ptr<const Policy>* policy,
                   std::string* error);

}  // namespace wnl
