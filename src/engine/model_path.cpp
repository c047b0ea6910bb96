#include "engine/model_path.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>

namespace wnl {

namespace {

std::vector<std::string> components(const std::string& path) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        if (end > start) out.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

template <class Seq>
std::string join(const Seq& parts) {
    if (parts.empty()) return "/";
    std::string out;
    for (const auto& p : parts) out += "/" + p;
    return out;
}

bool within(const std::string& path, const std::string& dir) {
    if (dir == "/") return true;
    return path.compare(0, dir.size(), dir) == 0 && (path.size() == dir.size() || path[dir.size()] == '/');
}

bool named_gguf(const std::string& path) {
    if (path.size() < 5) return false;
    std::string tail = path.substr(path.size() - 5);
    for (char& c : tail) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return tail == ".gguf";
}

std::string current_dir() {
    char buf[PATH_MAX];
    return ::getcwd(buf, sizeof buf) ? std::string(buf) : std::string("/");
}

// Where a guest's path may lead: under one of the host's directories (each
// as written and as resolved, since either may be what the guest names),
// or with no directories, to a file named *.gguf.
struct Allowed {
    std::vector<std::string> dirs;

    explicit Allowed(const std::vector<std::string>& model_dirs, const std::string& cwd) {
        for (const auto& d : model_dirs) {
            dirs.push_back(lexically_normal(d, cwd));
            char real[PATH_MAX];
            if (::realpath(d.c_str(), real)) dirs.emplace_back(real);
        }
    }
    bool any_gguf() const { return dirs.empty(); }
    bool admits(const std::string& path) const {
        if (any_gguf()) return named_gguf(path);
        for (const auto& d : dirs) {
            if (within(path, d)) return true;
        }
        return false;
    }
    const char* refusal() const {
        return any_gguf() ? "not a .gguf file (the host set no model_dirs)" : "outside the allowed model directories";
    }
};

// realpath, one component at a time, that stops at a symlink leading out
// of what is allowed (before its target is looked at) and tells a missing
// file from a refused one only inside what is allowed.
Status resolve(const std::string& normal, const Allowed& allowed, std::string* out, std::string* why) {
    std::deque<std::string> todo;
    for (auto& c : components(normal)) todo.push_back(std::move(c));
    std::vector<std::string> done;  // resolved: no symlinks
    int links = 0;
    auto rest = [&] { return join(done) + (todo.empty() ? "" : join(todo)); };
    while (!todo.empty()) {
        std::string c = std::move(todo.front());
        todo.pop_front();
        if (c == ".") continue;
        if (c == "..") {
            if (!done.empty()) done.pop_back();
            continue;
        }
        done.push_back(std::move(c));
        const std::string here = join(done);
        struct stat st {};
        if (::lstat(here.c_str(), &st) != 0) {
            if (errno != ENOENT && errno != ENOTDIR) {
                *why = std::string("cannot be checked: ") + std::strerror(errno);
                return Status::path_refused;
            }
            // Nothing further can be a symlink: where the file would be.
            *out = lexically_normal(rest(), "/");
            if (!allowed.admits(*out)) {
                *why = allowed.refusal();
                return Status::path_refused;
            }
            *why = "no such file";
            return Status::model_not_found;
        }
        if (!S_ISLNK(st.st_mode)) continue;
        if (++links > 40) {
            *why = "too many levels of symbolic links";
            return Status::path_refused;
        }
        char target[PATH_MAX];
        const ssize_t n = ::readlink(here.c_str(), target, sizeof target - 1);
        if (n <= 0) {
            *why = "cannot read a symbolic link in it";
            return Status::path_refused;
        }
        done.pop_back();
        if (target[0] == '/') done.clear();
        const auto spliced = components(std::string(target, static_cast<size_t>(n)));
        todo.insert(todo.begin(), spliced.begin(), spliced.end());
        if (!allowed.admits(lexically_normal(rest(), "/"))) {
            *why = allowed.any_gguf() ? "a symbolic link in it leads to a file not named .gguf"
                                      : "a symbolic link in it leads outside the allowed model directories";
            return Status::path_refused;
        }
    }
    *out = join(done);
    if (!allowed.admits(*out)) {
        *why = allowed.refusal();
        return Status::path_refused;
    }
    return Status::ok;
}

}  // namespace

std::string lexically_normal(const std::string& path, const std::string& cwd) {
    std::vector<std::string> out;
    const std::string full = !path.empty() && path[0] == '/' ? path : cwd + "/" + path;
    for (auto& c : components(full)) {
        if (c == ".") continue;
        if (c == "..") {
            if (!out.empty()) out.pop_back();
            continue;
        }
        out.push_back(std::move(c));
    }
    return join(out);
}

Status resolve_guest_model_path(const std::string& name, const ModelPathRules& rules, std::string* canonical,
                                std::string* why) {
    if (name.empty() || name.find('\0') != std::string::npos) {
        *why = "empty, or holds a NUL byte";
        return Status::invalid_argument;
    }
    if (!rules.guest_paths) {
        *why = "guests may not name model paths here (guest_paths is off; load a model alias)";
        return Status::path_refused;
    }
    const std::string cwd = current_dir();
    const Allowed allowed(rules.model_dirs, cwd);
    const std::string normal = lexically_normal(name, cwd);
    // Before the file system is touched: the name as written must already
    // lie where the rules allow.
    if (!allowed.admits(normal)) {
        *why = allowed.refusal();
        return Status::path_refused;
    }
    return resolve(normal, allowed, canonical, why);
}

}  // namespace wnl
