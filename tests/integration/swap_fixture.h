// Shared by the model swap and unload tests: two random-weight models that
// are compatible but different (wasi-nn-llama-mkmodel: the same synthetic
// vocabulary and ChatML template, other seeds), made at test time into the
// build tree and never committed; status documents; process RSS; a ChatML
// prompt rendered the way the models' template renders a conversation.
#pragma once

#include <limits.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/reference.h"
#include "integration/wamr_client.h"

namespace wnl_test {

// A model file made by wasi-nn-llama-mkmodel with `args`, in
// <build>/test-models; "" when the tool failed.
inline std::string made_model(const std::string& file, const std::string& args) {
    const std::string dir = std::string(WNL_BUILD_DIR) + "/test-models";
    const std::string path = dir + "/" + file;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return path;
    ::mkdir(dir.c_str(), 0755);
    // The tool writes PATH.part and renames it, so a file that exists is whole.
    const std::string cmd = std::string(WNL_BUILD_DIR) + "/tools/mkmodel/wasi-nn-llama-mkmodel " + args + " -q -o " +
                            shell_quote(path) + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0 ? path : "";
}

// 64 wide, 2 layers, 512-token vocabulary, f32 (like stories260K, so that
// batched and single-sequence decoding give the same greedy tokens).
inline std::string swap_model_a() {
    return made_model("swap-a.gguf", "--preset tiny --type f32 --chat-template chatml --seed 101 --name swap-a");
}
inline std::string swap_model_b() {
    return made_model("swap-b.gguf", "--preset tiny --type f32 --chat-template chatml --seed 202 --name swap-b");
}

// The path as the library reports it (canonical, symlinks resolved).
inline std::string canonical(const std::string& path) {
    char real[PATH_MAX];
    return ::realpath(path.c_str(), real) ? std::string(real) : path;
}

inline nlohmann::json status_json(WamrSession& s, backend_status_type type) {
    std::string doc = s.status(type);
    return doc.empty() ? nlohmann::json() : nlohmann::json::parse(doc);
}

// The first graph's entry in the MODEL status.
inline nlohmann::json model_status(WamrSession& s) {
    nlohmann::json m = status_json(s, BACKEND_STATUS_MODEL);
    return m.is_object() && !m["graphs"].empty() ? m["graphs"][0] : nlohmann::json();
}

inline nlohmann::json loaded_in_process(WamrSession& s) { return status_json(s, BACKEND_STATUS_MODEL)["process"]; }

// Waits (without a time limit of its own; ctest's bounds the test) until
// pred() holds, polling.
template <typename Pred>
void wait_until(Pred pred) {
    while (!pred()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

inline uint64_t process_rss() {
    std::ifstream f("/proc/self/statm");
    uint64_t size = 0, resident = 0;
    f >> size >> resident;
    return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Large blocks (a model's buffers) come from mmap and go back at free,
// instead of glibc's default of raising the threshold each time one is
// freed.
inline void use_fixed_mmap_threshold() {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
#endif
}

// ASan keeps freed memory in quarantine, and TSan's allocator and shadow
// grow on their own, so RSS says nothing about what was freed there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRssMeaningful = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif
#else
constexpr bool kRssMeaningful = true;
#endif

using History = std::vector<std::pair<std::string, std::string>>;  // (user, assistant)

// The prompt text the ChatML template renders for history + the next user
// message, generation prompt included.
inline std::string chatml(const History& history, const std::string& user) {
    std::string s;
    for (const auto& [u, a] : history) {
        s += "<|im_start|>user\n" + u + "<|im_end|>\n<|im_start|>assistant\n" + a + "<|im_end|>\n";
    }
    return s + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
}

// The model's greedy reply to that history, computed from nothing: the
// rendered prompt as a completion on a fresh anonymous context of `ref`.
struct Reference {
    wasi_nn_error rc = runtime_error;
    std::string reply;
    nlohmann::json meta;
};
inline Reference reference_reply(WamrSession& ref, const History& history, const std::string& user) {
    Reference r;
    auto e = ref.open();
    std::string meta;
    r.rc = ref.turn(e, chatml(history, user), &r.reply, "{\"mode\":\"completion\"}", &meta);
    if (!meta.empty()) r.meta = nlohmann::json::parse(meta);
    ref.close(e);
    return r;
}

}  // namespace wnl_test
