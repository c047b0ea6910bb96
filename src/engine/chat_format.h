// Renders a conversation into a prompt with the model's chat template (or
// an override), through llama.cpp common's template support.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/status.h"

struct common_chat_templates;
struct llama_model;

namespace wnl {

// One of llama.cpp's built-in template names ("chatml", "llama3", ...), as
// opposed to a Jinja template.
bool is_builtin_chat_template(const std::string& name);

struct ChatMessage {
    std::string role;  // system | user | assistant
    std::string content;
};

class ChatFormat {
public:
    // template_override: empty (the GGUF's template), a built-in name such as
    // "chatml" or "llama2", or a Jinja template. A template that does not
    // parse gives invalid_argument.
    // untrusted: the Jinja source came from a guest (its own chat_template,
    // or the template inside GGUF bytes it sent). Such a template is parsed
    // and rendered in a child process under time, memory and output bounds
    // (sandboxed_call.h), at load and on every turn; past a bound the load,
    // or the turn, fails with invalid_argument. Built-in names never are.
    static Status create(const llama_model* model, const std::string& template_override, bool untrusted,
                         std::unique_ptr<ChatFormat>* out, std::string* error);
    ~ChatFormat();

    // Renders with the assistant's generation prompt appended. The BOS the
    // template writes is left out when the tokenizer adds it.
    Status render(const std::vector<ChatMessage>& messages, std::string* prompt, std::string* error) const;

    bool sandboxed() const { return sandboxed_; }

private:
    ChatFormat() = default;
    Status render_here(const std::vector<ChatMessage>& messages, std::string* prompt, std::string* error) const;

    common_chat_templates* templates_ = nullptr;
    bool use_jinja_ = true;
    bool sandboxed_ = false;
};

}  // namespace wnl
