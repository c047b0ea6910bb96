// Where a session's KV state goes when it leaves a decode loop's memory
// (parked, evicted from the host cache, or saved at deinit_backend): the
// session store's files (durable_store.cpp). A decode loop knows only this.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llama.h"

namespace wnl {

class KvSink {
public:
    virtual ~KvSink() = default;
    // Called on the decode thread; hands the state to the store's writer
    // and returns at once. False when it will not be written (the store is
    // closed, its writer is full, or the session is no longer stored).
    virtual bool save(const std::string& identity, const std::vector<llama_token>& tokens,
                      std::shared_ptr<const std::vector<uint8_t>> data) = 0;
};

}  // namespace wnl
