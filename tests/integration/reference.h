// llama.cpp's own tools, built from the same source, as the reference our
// output must match.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace wnl_test {

inline std::string model_path(const char* file) { return std::string(WNL_MODELS_DIR) + "/" + file; }

inline std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Runs a command and returns its stdout; *rc gets the exit status.
inline std::string run_command(const std::string& cmd, int* rc) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) {
        *rc = -1;
        return out;
    }
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    int status = pclose(p);
    *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

// llama-completion's greedy continuation of prompt: its stdout echoes the
// prompt, which is cut off here. Its logger thread can drop the last lines
// when a tiny model finishes within a millisecond of exit, so the longest of
// a few runs is taken (a lossy run prints a prefix of the same text).
inline std::string reference_greedy(const std::string& model, const std::string& prompt, int n_predict,
                                    int threads, int* rc) {
    std::string cmd = std::string(WNL_LLAMA_BIN) + "/llama-completion -m " + shell_quote(model) +
                      " -no-cnv --temp 0 --repeat-penalty 1.0 --seed 1 -n " + std::to_string(n_predict) +
                      " -t " + std::to_string(threads) + " -p " + shell_quote(prompt) + " 2>/dev/null";
    std::string out;
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::string run = run_command(cmd, rc);
        if (*rc != 0) return run;
        if (run.size() > out.size()) out = run;
    }
    while (!out.empty() && out.back() == '\n') out.pop_back();
    size_t start = out.find_first_not_of(' ');
    out.erase(0, start == std::string::npos ? out.size() : start);
    if (out.compare(0, prompt.size(), prompt) != 0) return "<llama-completion did not echo the prompt>: " + out;
    return out.substr(prompt.size());
}

}  // namespace wnl_test
