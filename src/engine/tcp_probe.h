// Whether a TCP endpoint accepts connections, asked before handing it to
// llama.cpp's RPC client, which aborts the process when it cannot connect.
#pragma once

#include <string>

namespace wnl {

// endpoint: "host:port" or "[v6-address]:port".
bool tcp_reachable(const std::string& endpoint, int timeout_ms, std::string* error);

}  // namespace wnl
