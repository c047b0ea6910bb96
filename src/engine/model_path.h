// Where a guest-named model may come from (SPEC §4, "Paths"). A guest's
// name is first normalised lexically (".", ".." and repeated slashes
// folded, relative names taken from the working directory) and checked
// against the host's rules without touching the file system; then it is
// resolved one component at a time, and a symlink that points out of the
// allowed directories is refused before its target is looked at. Every
// refusal is path_refused, whether or not the file exists.
#pragma once

#include <string>
#include <vector>

#include "engine/status.h"

namespace wnl {

struct ModelPathRules {
    // The host's allow-list. Empty: any file whose name (and real name) ends
    // in ".gguf", so that a guest cannot load, or probe, other files.
    std::vector<std::string> model_dirs;
    bool guest_paths = true;  // false: no guest path at all
};

// ok: *canonical is the file's real path (symlinks resolved). path_refused:
// the rules refuse it. model_not_found: allowed, but nothing is there.
// invalid_argument: empty or NUL. *why says which, for the log.
Status resolve_guest_model_path(const std::string& name, const ModelPathRules& rules, std::string* canonical,
                                std::string* why);

// "/a/./b//../c" -> "/a/c"; relative paths are taken from `cwd`. ".." at the
// root stays at the root.
std::string lexically_normal(const std::string& path, const std::string& cwd);

}  // namespace wnl
