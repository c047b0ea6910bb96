#include "engine/sandboxed_call.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

namespace wnl {

namespace {

// What the child sends back: this header, then `size` bytes (the output, or
// the error message when status is not ok).
struct Reply {
    int32_t status;
    uint32_t crossed_output;  // 1: the output was larger than max_output
    uint64_t size;
};

constexpr size_t kMaxError = 4096;

uint64_t address_space_bytes() {
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long pages = 0;
    const int n = std::fscanf(f, "%llu", &pages);
    std::fclose(f);
    return n == 1 ? pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

bool write_all(int fd, const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

[[noreturn]] void child_main(int fd, const SandboxedWork& work, const SandboxBounds& bounds, uint64_t vm) {
    // Past the address-space bound allocations fail (bad_alloc, caught
    // below) instead of the host's memory filling; the CPU bound is a
    // backstop should the parent be unable to kill (it always tries).
    if (vm > 0) {
        rlimit as{vm + bounds.max_memory, vm + bounds.max_memory};
        setrlimit(RLIMIT_AS, &as);
    }
    const rlim_t cpu_s = static_cast<rlim_t>(bounds.time_ms / 1000 + 2);
    rlimit cpu{cpu_s, cpu_s + 1};
    setrlimit(RLIMIT_CPU, &cpu);

    Reply reply{static_cast<int32_t>(Status::ok), 0, 0};
    std::string out, error;
    try {
        reply.status = static_cast<int32_t>(work(&out, &error));
    } catch (const std::bad_alloc&) {
        reply.status = static_cast<int32_t>(Status::invalid_argument);
        error = "ran out of its memory bound (" + std::to_string(bounds.max_memory >> 20) + " MiB)";
    } catch (const std::exception& e) {
        reply.status = static_cast<int32_t>(Status::invalid_argument);
        error = e.what();
    } catch (...) {
        reply.status = static_cast<int32_t>(Status::invalid_argument);
        error = "unknown exception";
    }
    const bool ok = reply.status == static_cast<int32_t>(Status::ok);
    std::string& payload = ok ? out : error;
    if (ok && payload.size() > bounds.max_output) {
        reply.crossed_output = 1;
        payload.clear();
    }
    if (!ok && payload.size() > kMaxError) payload.resize(kMaxError);
    reply.size = payload.size();
    const bool sent = write_all(fd, &reply, sizeof reply) && write_all(fd, payload.data(), payload.size());
    // No atexit handlers, no static destructors: this is a copy of the host.
    _exit(sent ? 0 : 1);
}

void reap(pid_t pid, int* wstatus) {
    while (::waitpid(pid, wstatus, 0) < 0 && errno == EINTR) {
    }
}

std::string describe_exit(int wstatus) {
    if (WIFSIGNALED(wstatus)) {
        const int sig = WTERMSIG(wstatus);
        if (sig == SIGXCPU) return "ran past its CPU-time bound";
        return std::string("crashed (signal ") + std::to_string(sig) + ", " + strsignal(sig) + ")";
    }
    if (WIFEXITED(wstatus)) return "exited with status " + std::to_string(WEXITSTATUS(wstatus)) + " before replying";
    return "ended before replying";
}

}  // namespace

namespace {
bool g_in_child = false;  // set only in the forked child, before its work runs
}  // namespace

bool in_sandbox_child() { return g_in_child; }

Status run_sandboxed(const SandboxedWork& work, const SandboxBounds& bounds, std::string* out, std::string* error) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        *error = std::string("pipe failed: ") + std::strerror(errno);
        return Status::runtime_error;
    }
    const uint64_t vm = address_space_bytes();
    const pid_t pid = ::fork();
    if (pid < 0) {
        *error = std::string("fork failed: ") + std::strerror(errno);
        ::close(fds[0]);
        ::close(fds[1]);
        return Status::runtime_error;
    }
    if (pid == 0) {
        g_in_child = true;
        ::close(fds[0]);
        child_main(fds[1], work, bounds, vm);
    }
    ::close(fds[1]);

    using Ms = std::chrono::milliseconds;
    const auto deadline = std::chrono::steady_clock::now() + Ms(bounds.time_ms);
    const size_t limit = sizeof(Reply) + std::max(bounds.max_output, kMaxError);
    std::string got;
    bool timed_out = false, overflow = false, eof = false;
    char chunk[65536];
    while (!eof) {
        const auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            eof = true;
            break;
        }
        got.append(chunk, static_cast<size_t>(n));
        if (got.size() > limit) {
            overflow = true;
            break;
        }
    }
    ::close(fds[0]);
    if (!eof) ::kill(pid, SIGKILL);
    int wstatus = 0;
    reap(pid, &wstatus);

    if (timed_out) {
        *error = "ran past its time bound (" + std::to_string(bounds.time_ms) + " ms)";
        return Status::invalid_argument;
    }
    Reply reply{};
    if (overflow || got.size() < sizeof reply) {
        *error = overflow ? "wrote more than its output bound" : describe_exit(wstatus);
        return Status::invalid_argument;
    }
    std::memcpy(&reply, got.data(), sizeof reply);
    if (got.size() != sizeof reply + reply.size) {
        *error = describe_exit(wstatus);
        return Status::invalid_argument;
    }
    if (reply.crossed_output) {
        *error = "output is larger than its bound (" + std::to_string(bounds.max_output) + " bytes)";
        return Status::invalid_argument;
    }
    std::string payload = got.substr(sizeof reply);
    const bool known = reply.status >= 0 && reply.status <= static_cast<int32_t>(Status::model_not_found);
    const Status st = known ? static_cast<Status>(reply.status) : Status::invalid_argument;
    if (st == Status::ok) {
        *out = std::move(payload);
    } else {
        *error = std::move(payload);
    }
    return st;
}

}  // namespace wnl
