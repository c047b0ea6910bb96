#include "engine/tcp_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wnl {

static bool split_endpoint(const std::string& endpoint, std::string* host, std::string* port) {
    size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 >= endpoint.size()) return false;
    *host = endpoint.substr(0, colon);
    *port = endpoint.substr(colon + 1);
    if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
    return true;
}

static bool connect_with_timeout(const addrinfo* ai, int timeout_ms) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) return false;
    bool ok = ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!ok && errno == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, timeout_ms) == 1) {
            int err = 0;
            socklen_t len = sizeof err;
            ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
        }
    }
    ::close(fd);
    return ok;
}

bool tcp_reachable(const std::string& endpoint, int timeout_ms, std::string* error) {
    std::string host, port;
    if (!split_endpoint(endpoint, &host, &port)) {
        *error = "rpc_servers: '" + endpoint + "' is not host:port";
        return false;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
        *error = "rpc_servers: cannot resolve '" + endpoint + "': " + gai_strerror(rc);
        return false;
    }
    bool ok = false;
    for (const addrinfo* ai = res; ai && !ok; ai = ai->ai_next) ok = connect_with_timeout(ai, timeout_ms);
    ::freeaddrinfo(res);
    if (!ok) *error = "rpc_servers: cannot connect to the RPC server at '" + endpoint + "'";
    return ok;
}

}  // namespace wnl
