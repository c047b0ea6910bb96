#include "engine/chat_format.h"

#include <cstring>
#include <mutex>

#include "chat.h"
#include "engine/sandboxed_call.h"
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

static void quiet_llama_log(ggml_log_level, const char*, void*) {}

Status ChatFormat::create(const llama_model* model, const std::string& template_override, bool untrusted,
                          std::unique_ptr<ChatFormat>* out, std::string* error) {
    std::unique_ptr<ChatFormat> f(new ChatFormat());
    // Built-in names go through llama.cpp's non-Jinja formatter, which knows
    // them; everything else is a Jinja template.
    const bool builtin = !template_override.empty() && is_builtin_chat_template(template_override);
    f->use_jinja_ = template_override.empty() || template_override == "chatml" || !builtin;
    f->sandboxed_ = untrusted && !builtin;
    const auto init_and_probe = [&](ChatFormat& target, std::string* err) -> Status {
        try {
            target.templates_ = common_chat_templates_init(model, template_override).release();
            // Render once so that a broken template fails at load, not mid-chat.
            std::string probe;
            return target.render_here({{"user", "hello"}}, &probe, err);
        } catch (const std::exception& e) {
            *err = std::string("chat_template: ") + e.what();
            return Status::invalid_argument;
        }
    };
    if (f->sandboxed_) {
        // Parsing can recurse as deep as the template nests and rendering
        // can loop without end: try both in a child first. They are
        // deterministic, so what passed there is safe to do here.
        std::string unused, why;
        const Status st = run_sandboxed(
            [&](std::string*, std::string* err) {
                llama_log_set(quiet_llama_log, nullptr);
                ChatFormat probe_format;
                probe_format.use_jinja_ = f->use_jinja_;
                return init_and_probe(probe_format, err);
            },
            SandboxBounds{}, &unused, &why);
        if (st != Status::ok) {
            *error = "chat_template: refused: " + why;
            return st == Status::runtime_error ? st : Status::invalid_argument;
        }
    }
    const Status st = init_and_probe(*f, error);
    if (st != Status::ok) return st;
    *out = std::move(f);
    return Status::ok;
}

ChatFormat::~ChatFormat() {
    if (templates_) common_chat_templates_free(templates_);
}

Status ChatFormat::render(const std::vector<ChatMessage>& messages, std::string* prompt, std::string* error) const {
    if (!sandboxed_) return render_here(messages, prompt, error);
    std::string why;
    const Status st = run_sandboxed(
        [&](std::string* out, std::string* err) {
            llama_log_set(quiet_llama_log, nullptr);
            return render_here(messages, out, err);
        },
        SandboxBounds{}, prompt, &why);
    if (st != Status::ok) *error = "chat_template: rendering refused: " + why;
    return st;
}

Status ChatFormat::render_here(const std::vector<ChatMessage>& messages, std::string* prompt,
                               std::string* error) const {
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
        // llama.cpp's common puts the date into the template's context with
        // std::localtime, whose buffer (and glibc's tzset) every thread
        // shares: renders on different callers' threads take turns. In a
        // sandbox child (one thread, forked) the lock may have been copied
        // held, so it is not taken there.
        static std::mutex render_mu;
        std::unique_lock<std::mutex> lock(render_mu, std::defer_lock);
        if (!in_sandbox_child()) lock.lock();
        *prompt = common_chat_templates_apply(templates_, in).prompt;
    } catch (const std::exception& e) {
        *error = std::string("chat_template: rendering failed: ") + e.what();
        return Status::invalid_argument;
    }
    return Status::ok;
}

}  // namespace wnl
