// What the host-policy tests of both ABIs share: a scratch directory tree,
// the policy variable, a loopback listener, and the process log in a file.
// No ABI types here (the two ABIs' headers clash).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace wnl_test {

namespace fs = std::filesystem;

// A directory under /tmp, removed with everything in it.
//   allowed/model.gguf       a copy of stories260K.gguf (a symlink to the
//                            shared one would be a link out of allowed/)
//   allowed/link-out.gguf    -> the shared stories260K.gguf (outside)
//   allowed/dangling.gguf    -> outside/missing.gguf
//   allowed/link-in.gguf     -> model.gguf
//   outside/secret.gguf      a copy too, outside the allow-list
//   outside/secret.txt       a file that is not a model
class PolicyTree {
public:
    explicit PolicyTree(const std::string& model) {
        char tmpl[] = "/tmp/wnl-policy-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        root_ = fs::path(tmpl);
        fs::create_directories(allowed());
        fs::create_directories(outside());
        fs::copy_file(model, allowed() + "/model.gguf");
        fs::copy_file(model, outside() + "/secret.gguf");
        write(outside() + "/secret.txt", "not a model\n");
        fs::create_symlink(fs::canonical(model), allowed() + "/link-out.gguf");
        fs::create_symlink(outside() + "/missing.gguf", allowed() + "/dangling.gguf");
        fs::create_symlink("model.gguf", allowed() + "/link-in.gguf");
    }
    ~PolicyTree() {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    PolicyTree(const PolicyTree&) = delete;
    PolicyTree& operator=(const PolicyTree&) = delete;

    std::string root() const { return root_.string(); }
    std::string allowed() const { return root() + "/allowed"; }
    std::string outside() const { return root() + "/outside"; }
    std::string path(const std::string& rel) const { return root() + "/" + rel; }

    static void write(const std::string& file, const std::string& text) {
        std::ofstream out(file, std::ios::trunc);
        out << text;
        if (!out) throw std::runtime_error("cannot write " + file);
    }

private:
    fs::path root_;
};

// WASI_NN_LLAMA_POLICY for the life of the object.
class PolicyEnv {
public:
    explicit PolicyEnv(const std::string& file) { ::setenv("WASI_NN_LLAMA_POLICY", file.c_str(), 1); }
    ~PolicyEnv() { ::unsetenv("WASI_NN_LLAMA_POLICY"); }
    PolicyEnv(const PolicyEnv&) = delete;
    PolicyEnv& operator=(const PolicyEnv&) = delete;
};

// A TCP socket listening on 127.0.0.1, to see whether anything connects.
class LoopbackListener {
public:
    LoopbackListener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        socklen_t len = sizeof a;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            throw std::runtime_error("cannot listen on 127.0.0.1");
        }
        port_ = ntohs(a.sin_port);
    }
    ~LoopbackListener() {
        if (fd_ >= 0) ::close(fd_);
    }
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
    // A connection is queued once connect() returned in the other party, so
    // after the load returned, a zero wait would do; the wait is margin.
    bool connection_arrived(int wait_ms = 300) const {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, wait_ms) > 0;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

inline std::string read_text(const std::string& file) {
    std::ifstream in(file);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace wnl_test
