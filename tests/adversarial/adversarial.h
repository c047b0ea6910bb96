// What every hostile-input test shares (docs/security.md): a neighbour — a
// second backend context on the same model and the same decode loop, opened
// before the hostile guest acts — whose plain greedy request must still get
// the exact reply after whatever the hostile guest did; and the log, written
// to a file so that a test can check the refusal's line names the problem.
//
// Each test runs in its own process (gtest_discover_tests), so the
// process-wide log file is the test's own, and reaching the neighbour check
// at all means the process survived.
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "integration/reference.h"

namespace wnl_adv {

// stories260K.gguf, greedy, 32 tokens, from "Once upon a time"
// (../shared/models/README.md).
inline const std::string kGolden =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw";
inline const std::string kPrompt = "Once upon a time";
inline std::string model() { return wnl_test::model_path("stories260K.gguf"); }

// A JSON string literal for text.
inline std::string json_str(const std::string& s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
        } else {
            o += static_cast<char>(c);
        }
    }
    return o + "\"";
}

// A fresh file for this process's log.
inline std::string temp_log_path() {
    char path[] = "/tmp/wnl-adversarial-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    return path;
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// While alive, the process may map at most `headroom` more bytes than it has
// mapped now (RLIMIT_AS): an allocation past that fails as it does when
// memory runs out, on any machine, whatever its RAM or overcommit setting.
// Not usable under AddressSanitizer, which maps terabytes of shadow memory.
class AddressSpaceLimit {
public:
    explicit AddressSpaceLimit(unsigned long long headroom) {
        getrlimit(RLIMIT_AS, &saved_);
        unsigned long long vm_kb = 0;
        std::ifstream status("/proc/self/status");
        for (std::string line; std::getline(status, line);) {
            if (line.rfind("VmSize:", 0) == 0) vm_kb = std::strtoull(line.c_str() + 7, nullptr, 10);
        }
        rlimit lim = saved_;
        lim.rlim_cur = vm_kb * 1024 + headroom;
        ok_ = vm_kb > 0 && setrlimit(RLIMIT_AS, &lim) == 0;
    }
    ~AddressSpaceLimit() { setrlimit(RLIMIT_AS, &saved_); }
    bool ok() const { return ok_; }

private:
    rlimit saved_{};
    bool ok_ = false;
};

// ASan's and TSan's shadow memory: an RLIMIT_AS test cannot run under either.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace wnl_adv
