// Embedding calls through libwasi_nn_llamacpp.so, for the embedding tests
// of the WAMR ABI (embed_wamr_test.cpp, embed_caps_test.cpp).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "integration/wamr_client.h"

namespace wnl_test {

inline std::string embed_config(const std::string& extra = "") {
    return "{\"embedding\":true,\"threads\":2,\"logging\":{\"level\":\"warn\"}" + (extra.empty() ? "" : "," + extra) +
           "}";
}

// get_output with a buffer as large as the output needs.
inline wasi_nn_error output_all(WamrSession& s, graph_execution_context e, uint32_t index, std::string* out) {
    std::vector<uint8_t> buf(1 << 12);
    for (;;) {
        tensor_data td{buf.data(), static_cast<uint32_t>(buf.size())};
        uint32_t n = 0;
        wasi_nn_error rc = WamrApi::get().get_output(s.ctx(), e, index, &td, &n);
        if (rc == too_large && n > buf.size()) {
            buf.resize(n);
            continue;
        }
        if (rc == success) out->assign(reinterpret_cast<char*>(buf.data()), n);
        return rc;
    }
}

inline wasi_nn_error embed(WamrSession& s, graph_execution_context e, const std::string& input, std::string* out,
                           const std::string& options = "", std::string* meta = nullptr) {
    wasi_nn_error rc = s.set_text(e, 0, input);
    if (rc != success) return rc;
    if (!options.empty() && (rc = s.set_text(e, 1, options)) != success) return rc;
    if ((rc = WamrApi::get().compute(s.ctx(), e)) != success) return rc;
    if (meta) output_all(s, e, 1, meta);
    return output_all(s, e, 0, out);
}

inline std::string json_array(const std::vector<std::string>& items) { return nlohmann::json(items).dump(); }

}  // namespace wnl_test
