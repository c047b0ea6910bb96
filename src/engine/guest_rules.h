// What a guest may set (SPEC §4). The host speaks through
// init_backend_with_config's config and the policy; guests through
// everything else: load_by_name_with_config's config, set_input index 1 and
// run_inference's runtime config (and the names given to load_by_name*,
// see model_path.h). A guest may not name a host-only key, and its values
// must stay within the host's ceilings.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/config.h"

namespace wnl {

struct GuestLimits {
    // Canonical key -> the largest value a guest may give it; a key not
    // listed has no ceiling. Starts at default_ceilings(); a policy's
    // "ceilings" changes entries (null removes one).
    std::map<std::string, int64_t> ceilings = default_ceilings();
    // The share of one decode loop's queue that one backend context may hold
    // waiting, in (0, 1]; past it, its requests are refused with busy.
    double queue_share = 0.5;

    // The ceilings with no policy at all (docs/security.md says why each).
    static std::map<std::string, int64_t> default_ceilings();
};

// Why a guest may not name this key (canonical spelling), or "" when it
// may. `text` is the value when it is a string (chat_template: a built-in
// template name is open to guests, a Jinja template is not).
std::string host_only_reason(const std::string& key, const std::string* text);

// The keys a policy's "ceilings" may name (besides queue_share).
bool is_ceiling_key(const std::string& key);
std::vector<std::string> ceiling_keys();

// Run after a guest's document is applied onto a copy of `below`: a value the
// guest named above its ceiling is refused (false, *error names the key and
// the ceiling); a value meaning "no limit" (max_tokens -1, max_time_ms 0,
// threads 0, ctx_size 0), named or inherited, becomes as much as the ceiling
// allows. The caps (max_sessions, max_rss_bytes, ...) have the host's own
// value as their ceiling: a guest may lower them, never raise them.
bool enforce_ceilings(const std::set<std::string>& named, const Config& below, Config& cfg,
                      const GuestLimits& limits, std::string* error);

}  // namespace wnl
