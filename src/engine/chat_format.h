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
    static Status create(const llama_model* model, const std::string& template_override,
                         std::unique_ptr<ChatFormat>* out, std::string* error);
    ~ChatFormat();

    // Renders with the assistant's generation prompt appended. The BOS the
    // template writes is left out when the tokenizer adds it.
    Status render(const std::vector<ChatMessage>& messages, std::string* prompt, std::string* error) const;

private:
    ChatFormat() = default;
    common_chat_templates* templates_ = nullptr;
    bool use_jinja_ = true;
};

}  // namespace wnl
