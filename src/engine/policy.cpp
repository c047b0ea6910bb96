#include "engine/policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>

#include <nlohmann/json.hpp>

#include "engine/log.h"

namespace wnl {

namespace {

using json = nlohmann::ordered_json;

constexpr size_t kMaxPolicyBytes = 1 << 20;
constexpr size_t kMaxAliasBytes = 256;

struct PolicyError {
    std::string message;
};

[[noreturn]] void fail(const std::string& what) { throw PolicyError{what}; }

std::string plain_string(const json& v, const std::string& where) {
    if (!v.is_string()) fail(where + ": must be a string");
    const auto& s = v.get_ref<const std::string&>();
    if (s.empty() || s.find('\0') != std::string::npos) fail(where + ": must be a non-empty string without NULs");
    return s;
}

// A host config document: checked now, applied at each init_backend.
std::string checked_config(const json& doc, const std::string& where) {
    std::string text = doc.dump();
    Config scratch;
    std::string err;
    if (apply_config_json(text, ConfigScope::backend, scratch, &err) != Status::ok) fail(where + ": " + err);
    if (!scratch.backend.policy.empty()) fail(where + ": a policy cannot hold another \"policy\" section");
    return text;
}

ModelAlias parse_alias(const std::string& name, const json& v) {
    const std::string where = "models." + name;
    if (name.empty() || name.size() > kMaxAliasBytes || name.find('\0') != std::string::npos) {
        fail("models: an alias name must be 1 to 256 bytes without NULs");
    }
    ModelAlias a;
    if (v.is_string()) {
        a.path = plain_string(v, where);
        return a;
    }
    if (!v.is_object()) fail(where + ": must be a path or an object with \"path\" and \"config\"");
    for (const auto& item : v.items()) {
        if (item.key() == "path") {
            a.path = plain_string(item.value(), where + ".path");
        } else if (item.key() == "config") {
            if (!item.value().is_object()) fail(where + ".config: must be an object");
            a.config = checked_config(item.value(), where + ".config");
        } else {
            fail(where + ": unknown key \"" + item.key() + "\" (an alias has \"path\" and \"config\")");
        }
    }
    if (a.path.empty()) fail(where + ": \"path\" is missing");
    return a;
}

void parse_ceilings(const json& v, Policy* p) {
    if (!v.is_object()) fail("ceilings: must be an object");
    for (const auto& item : v.items()) {
        const std::string& key = item.key();
        const json& val = item.value();
        const std::string where = "ceilings." + key;
        if (key == "queue_share") {
            if (!val.is_number() || !(val.get<double>() > 0.0 && val.get<double>() <= 1.0)) {
                fail(where + ": must be a number above 0 and at most 1");
            }
            p->queue_share = val.get<double>();
            continue;
        }
        if (!is_ceiling_key(key)) {
            std::string known;
            for (const auto& k : ceiling_keys()) known += (known.empty() ? "" : ", ") + k;
            fail(where + ": not a ceiling (ceilings: " + known + ", queue_share)");
        }
        if (val.is_null()) {
            p->ceilings[key] = std::nullopt;  // no ceiling, not even the default
            continue;
        }
        // 0 is a meaningful ceiling only for host_cache_bytes (no host cache);
        // elsewhere it would forbid every request, or mean "no limit".
        const bool wide = key == "host_cache_bytes" || key == "max_time_ms";
        const int64_t lo = key == "host_cache_bytes" ? 0 : 1;
        const int64_t hi = wide ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int32_t>::max();
        const std::string range = where + ": must be an integer from " + std::to_string(lo) + " to " +
                                  std::to_string(hi) + ", or null for none";
        int64_t n = 0;
        if (val.is_number_unsigned()) {
            if (val.get<uint64_t>() > static_cast<uint64_t>(hi)) fail(range);
            n = static_cast<int64_t>(val.get<uint64_t>());
        } else if (val.is_number_integer()) {
            n = val.get<int64_t>();
        } else if (val.is_number_float()) {
            const double d = val.get<double>();
            if (!(d == std::trunc(d) && d >= -9.0e18 && d <= 9.0e18)) fail(range);
            n = static_cast<int64_t>(d);
        } else {
            fail(range);
        }
        if (n < lo || n > hi) fail(range);
        p->ceilings[key] = n;
    }
}

std::string parse_error_text(const char* what) {
    std::string s = what;
    size_t tag_end = s.find("] ");
    return tag_end == std::string::npos ? s : s.substr(tag_end + 2);
}

Status read_policy_file(const std::string& path, std::string* text, std::string* error) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *error = "cannot read policy file '" + path + "': " + std::strerror(errno);
        return Status::not_found;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > kMaxPolicyBytes) {
        ::close(fd);
        *error = "policy file '" + path + "' is not a regular file of at most 1 MiB";
        return Status::invalid_argument;
    }
    text->clear();
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            *error = "cannot read policy file '" + path + "': " + std::strerror(errno);
            ::close(fd);
            return Status::not_found;
        }
        if (n == 0) break;
        text->append(buf, static_cast<size_t>(n));
        if (text->size() > kMaxPolicyBytes) {
            ::close(fd);
            *error = "policy file '" + path + "' is larger than 1 MiB";
            return Status::invalid_argument;
        }
    }
    ::close(fd);
    return Status::ok;
}

}  // namespace

Status Policy::parse(std::string_view text, const std::string& source, Policy* out, std::string* error) {
    try {
        json doc;
        try {
            doc = json::parse(text.begin(), text.end());
        } catch (const json::exception& e) {
            fail(std::string("invalid JSON: ") + parse_error_text(e.what()));
        }
        if (!doc.is_object()) fail(std::string("must be a JSON object, got ") + doc.type_name());
        Policy p;
        p.sources.push_back(source);
        json rest = json::object();
        for (const auto& item : doc.items()) {
            if (item.key() == "models") {
                if (!item.value().is_object()) fail("models: must be an object of alias -> path or {path, config}");
                for (const auto& m : item.value().items()) p.models[m.key()] = parse_alias(m.key(), m.value());
            } else if (item.key() == "ceilings") {
                parse_ceilings(item.value(), &p);
            } else {
                rest[item.key()] = item.value();
            }
        }
        if (!rest.empty()) p.configs.push_back(checked_config(rest, "config"));
        *out = std::move(p);
        return Status::ok;
    } catch (const PolicyError& e) {
        *error = source + ": " + e.message;
    } catch (const std::exception& e) {
        *error = source + ": " + e.what();
    }
    return Status::invalid_argument;
}

void Policy::layer(const Policy& over) {
    sources.insert(sources.end(), over.sources.begin(), over.sources.end());
    configs.insert(configs.end(), over.configs.begin(), over.configs.end());
    for (const auto& [name, alias] : over.models) models[name] = alias;
    for (const auto& [key, value] : over.ceilings) ceilings[key] = value;
    if (over.queue_share) queue_share = over.queue_share;
}

GuestLimits Policy::limits() const {
    GuestLimits g;
    for (const auto& [key, value] : ceilings) {
        if (value) g.ceilings[key] = *value;
        else g.ceilings.erase(key);
    }
    if (queue_share) g.queue_share = *queue_share;
    return g;
}

Status environment_policy(std::shared_ptr<const Policy>* out, std::string* error) {
    static std::mutex mu;
    static std::string cached_path, cached_text;
    static std::shared_ptr<const Policy> cached;

    *out = nullptr;
    const char* env = std::getenv("WASI_NN_LLAMA_POLICY");
    if (!env || !*env) return Status::ok;
    const std::string path(env);
    auto refused = [&](Status st) {
        log(LogLevel::error, "policy", "policy file rejected; no backend context opens without it",
            {{"file", path}, {"error", *error}});
        return st;
    };
    std::string text;
    Status st = read_policy_file(path, &text, error);
    if (st != Status::ok) return refused(st);
    std::lock_guard<std::mutex> lock(mu);
    if (cached && path == cached_path && text == cached_text) {
        *out = cached;
        return Status::ok;
    }
    Policy p;
    st = Policy::parse(text, path, &p, error);
    if (st != Status::ok) return refused(st);
    const bool changed = cached && path == cached_path;
    cached = std::make_shared<const Policy>(std::move(p));
    cached_path = path;
    cached_text = std::move(text);
    log(LogLevel::info, "policy", changed ? "policy file changed; read again" : "policy file read",
        {{"file", path}, {"aliases", cached->models.size()}});
    *out = cached;
    return Status::ok;
}

Status host_config(std::string_view init_config, Config* cfg, std::shared_ptr<const Policy>* policy,
                   std::string* error) {
    std::shared_ptr<const Policy> file;
    Status st = environment_policy(&file, error);
    if (st != Status::ok) return st;
    Policy p = file ? *file : Policy{};
    Config c;
    for (const auto& doc : p.configs) {
        st = apply_config_json(doc, ConfigScope::backend, c, error);
        if (st != Status::ok) return st;
    }
    st = apply_config_json(init_config, ConfigScope::backend, c, error);
    if (st != Status::ok) return st;
    if (!c.backend.policy.empty()) {
        Policy section;
        st = Policy::parse(c.backend.policy, "init_backend_with_config policy", &section, error);
        if (st != Status::ok) return st;
        for (const auto& doc : section.configs) {
            st = apply_config_json(doc, ConfigScope::backend, c, error);
            if (st != Status::ok) return st;
        }
        p.layer(section);
        c.backend.policy.clear();
    }
    *cfg = std::move(c);
    *policy = std::make_shared<const Policy>(std::move(p));
    return Status::ok;
}

}  // namespace wnl
