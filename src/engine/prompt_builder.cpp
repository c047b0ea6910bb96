#include "engine/prompt_builder.h"

#include <algorithm>

namespace wnl {

bool use_chat_mode(const GraphModel& g, const Config& cfg) {
    switch (cfg.model.mode) {
        case PromptMode::chat: return true;
        case PromptMode::completion: return false;
        case PromptMode::automatic: break;
    }
    return g.has_template || !cfg.model.chat_template.empty();
}

// Room left for the reply: a quarter of the context, or max_tokens if less.
static size_t reply_reserve(const Config& cfg, uint32_t ctx) {
    size_t quarter = ctx / 4;
    if (cfg.stopping.max_tokens >= 0) return std::min<size_t>(quarter, static_cast<size_t>(cfg.stopping.max_tokens) + 1);
    return quarter;
}

static Status build_chat(const GraphModel& g, const Config& cfg, const Session& s, std::string_view input,
                         uint32_t ctx, PromptPlan* out, std::string* error) {
    const Model& model = *g.served->model;
    const bool add_bos = llama_vocab_get_add_bos(model.vocab());
    const size_t limit = ctx - std::min<size_t>(ctx - 1, reply_reserve(cfg, ctx));
    std::vector<ChatMessage> msgs;
    size_t first = 0;  // oldest history message included
    for (;;) {
        msgs.clear();
        if (!cfg.model.system_prompt.empty()) msgs.push_back({"system", cfg.model.system_prompt});
        msgs.insert(msgs.end(), s.messages.begin() + static_cast<std::ptrdiff_t>(first), s.messages.end());
        msgs.push_back({"user", std::string(input)});
        std::string text;
        Status st = g.chat->render(msgs, &text, error);
        if (st != Status::ok) return st;
        out->tokens = model.tokenize(text, add_bos, true);
        if (out->tokens.size() < ctx && (out->tokens.size() <= limit || first == s.messages.size())) break;
        if (first == s.messages.size()) break;
        if (!cfg.memory.context_shifting) {
            *error = "the conversation (" + std::to_string(out->tokens.size()) + " tokens) no longer fits the " +
                     std::to_string(ctx) + "-token context and context_shifting is off";
            return Status::context_full;
        }
        // Drop the oldest half of the history, whole turns at a time.
        size_t remaining = s.messages.size() - first;
        size_t drop = std::max<size_t>(2, remaining / 2);
        first = std::min(s.messages.size(), first + drop + (drop % 2));
    }
    out->dropped_messages = first;
    if (!cfg.model.system_prompt.empty()) {
        // The tokens the system prompt renders to: the prefix shared with a
        // conversation that has nothing else in it.
        std::string bare;
        if (g.chat->render({{"system", cfg.model.system_prompt}, {"user", ""}}, &bare, error) == Status::ok) {
            auto sys = model.tokenize(bare, add_bos, true);
            size_t n = 0;
            while (n < sys.size() && n < out->tokens.size() && sys[n] == out->tokens[n]) ++n;
            out->system_tokens = static_cast<int32_t>(n);
        }
    }
    if (out->tokens.size() >= ctx) {
        *error = "the prompt alone is " + std::to_string(out->tokens.size()) + " tokens; the context holds " +
                 std::to_string(ctx);
        return Status::prompt_too_long;
    }
    out->chat = true;
    return Status::ok;
}

static Status build_completion(const GraphModel& g, const Config& cfg, const Session& s, std::string_view input,
                               uint32_t ctx, PromptPlan* out, std::string* error) {
    const Model& model = *g.served->model;
    const bool add_bos = llama_vocab_get_add_bos(model.vocab());
    const size_t limit = ctx - std::min<size_t>(ctx - 1, reply_reserve(cfg, ctx));
    std::string text = s.transcript;
    text.append(input);
    out->tokens = model.tokenize(text, add_bos, true);
    if (out->tokens.size() > limit && !s.transcript.empty()) {
        auto alone = model.tokenize(input, add_bos, true);
        if (alone.size() >= ctx) {
            *error = "the prompt alone is " + std::to_string(alone.size()) + " tokens; the context holds " +
                     std::to_string(ctx);
            return Status::prompt_too_long;
        }
        if (!cfg.memory.context_shifting) {
            *error = "the transcript (" + std::to_string(out->tokens.size()) + " tokens) no longer fits the " +
                     std::to_string(ctx) + "-token context and context_shifting is off";
            return Status::context_full;
        }
        // Keep the newest half of what fits, cut at a token boundary.
        std::vector<llama_token> old = model.tokenize(s.transcript, false, true);
        size_t keep_tokens = std::min(old.size(), (limit > alone.size() ? limit - alone.size() : 0) / 2);
        size_t cut_tokens = old.size() - keep_tokens;
        size_t cut = 0;
        for (size_t i = 0; i < cut_tokens; ++i) cut += model.token_to_piece(old[i]).size();
        cut = std::min(cut, s.transcript.size());
        out->transcript_cut = cut;
        text = s.transcript.substr(cut);
        text.append(input);
        out->tokens = model.tokenize(text, add_bos, true);
    }
    if (out->tokens.size() >= ctx) {
        *error = "the prompt is " + std::to_string(out->tokens.size()) + " tokens; the context holds " +
                 std::to_string(ctx);
        return Status::prompt_too_long;
    }
    out->chat = false;
    return Status::ok;
}

Status build_prompt(const GraphModel& g, const Config& cfg, const Session& s, std::string_view input,
                    uint32_t ctx_per_seq, PromptPlan* out, std::string* error) {
    if (use_chat_mode(g, cfg)) return build_chat(g, cfg, s, input, ctx_per_seq, out, error);
    return build_completion(g, cfg, s, input, ctx_per_seq, out, error);
}

}  // namespace wnl
