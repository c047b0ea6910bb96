#include "engine/chat_format.h"

#include <cstring>

#include "chat.h"
#include "llama.h"

namespace wnl {

bool is_builtin_chat_template(const std::string& name) {
    std::vector<const char*> names(64);
    int32_t n = llama_chat_builtin_templates(names.data(), names.size());
    if (n > static_cast<int32_t>(names.size())) {
        names.resize(static_cast<size_t>(n));
        n = llama_chat_builtin_templates(names.data(), names.size());
    }
    for (int32_t i = 0; i < n; ++i) {
        if (name == names[static_cast<size_t>(i)]) return true;
    }
    return false;
}

Status ChatFormat::create(const llama_model* model, const std::string& template_override,
                          std::unique_ptr<ChatFormat>* out, std::string* error) {
    std::unique_ptr<ChatFormat> f(new ChatFormat());
    // Built-in names go through llama.cpp's non-Jinja formatter, which knows
    // them; everything else is a Jinja template.
    f->use_jinja_ = template_override.empty() || template_override == "chatml" ||
                    !is_builtin_chat_template(template_override);
    try {
        f->templates_ = common_chat_templates_init(model, template_override).release();
        // Render once so that a broken template fails at load, not mid-chat.
        std::string probe;
        Status st = f->render({{"user", "hello"}}, &probe, error);
        if (st != Status::ok) return st;
    } catch (const std::exception& e) {
        *error = std::string("chat_template: ") + e.what();
        return Status::invalid_argument;
    }
    *out = std::move(f);
    return Status::ok;
}

ChatFormat::~ChatFormat() {
    if (templates_) common_chat_templates_free(templates_);
}

Status ChatFormat::render(const std::vector<ChatMessage>& messages, std::string* prompt, std::string* error) const {
    common_chat_templates_inputs in;
    in.use_jinja = use_jinja_;
    in.add_generation_prompt = true;
    for (const auto& m : messages) {
        common_chat_msg msg;
        msg.role = m.role;
        msg.content = m.content;
        in.messages.push_back(std::move(msg));
    }
    try {
        *prompt = common_chat_templates_apply(templates_, in).prompt;
    } catch (const std::exception& e) {
        *error = std::string("chat_template: rendering failed: ") + e.what();
        return Status::invalid_argument;
    }
    return Status::ok;
}

}  // namespace wnl
