// libFuzzer harness: the prompt builder (build_prompt) with random
// histories and chat templates, on the real vocabularies of
// ../shared/models (docs/security.md, "Fuzzing").
//
// The input picks a model (stories260K: 512-token SPM vocabulary; llama-2-
// tiny-random: the 32000-token Llama 2 vocabulary), a template (the GGUF's
// own, a llama.cpp built-in name, or Jinja text from the input), chat,
// completion or automatic mode, a system prompt, max_tokens, context
// shifting, a per-session context of 1 to 640 tokens, a history of turns or
// a completion transcript, and the new input. Checked on every plan:
//  - the status is ok, prompt_too_long, context_full (only with context
//    shifting off) or invalid_argument (only from a Jinja template);
//  - an ok plan fits (fewer tokens than the context), holds only token ids
//    of the vocabulary, drops whole turns (never with context shifting off),
//    cuts no more transcript than there is, and its system-prompt length is
//    within the prompt;
//  - the tokens are exactly what the kept history renders to (chat) or the
//    kept transcript plus the input tokenizes to (completion);
//  - the same call again gives the same plan.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/chat_format.h"
#include "engine/graph.h"
#include "engine/llama_runtime.h"
#include "engine/model.h"
#include "engine/prompt_builder.h"
#include "engine/session.h"
#include "fuzz_support.h"
#include "known_holes.h"

namespace {

using namespace wnl;
constexpr const char* kHarness = "fuzz_prompt";

struct LoadedModel {
    std::shared_ptr<ServedModel> served;  // no decode loop: the builder needs none
    std::vector<std::string> builtin;     // llama.cpp's built-in template names
    // One ChatFormat per built-in name (and "" for the GGUF's own), made once.
    std::map<std::string, std::shared_ptr<ChatFormat>> formats;
};

std::vector<LoadedModel>* g_models;

std::shared_ptr<ChatFormat> make_format(const LoadedModel& m, const std::string& tmpl, Status* st) {
    std::unique_ptr<ChatFormat> f;
    std::string err;
    // Jinja from the input is untrusted: parsed and rendered under bounds,
    // as a template inside guest GGUF bytes is (sandboxed_call.h).
    *st = ChatFormat::create(m.served->model->get(), tmpl, /*untrusted=*/true, &f, &err);
    return std::shared_ptr<ChatFormat>(std::move(f));
}

std::string text(FuzzedDataProvider& in, size_t max) { return in.ConsumeRandomLengthString(max); }

// GraphModel wants to own its ChatFormat; the harness shares cached ones, so it
// lends the pointer for the call and takes it back.
struct LentGraph {
    GraphModel g;
    explicit LentGraph(std::shared_ptr<ServedModel> served, ChatFormat* f, bool has_template) {
        g.served = std::move(served);
        g.chat.reset(f);
        g.has_template = has_template;
    }
    ~LentGraph() { (void)g.chat.release(); }
};

std::string plan_text(const PromptPlan& p) {
    std::string s = std::to_string(p.chat) + ' ' + std::to_string(p.dropped_messages) + ' ' +
                    std::to_string(p.transcript_cut) + ' ' + std::to_string(p.system_tokens) + ' ';
    for (auto t : p.tokens) s += std::to_string(t) + ',';
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::set_quiet_logging();
    llama_runtime_acquire();
    fuzz::set_quiet_logging();  // the runtime's log hook is installed now
    g_models = new std::vector<LoadedModel>();
    for (const char* file : {"stories260K.gguf", "llama-2-tiny-random.gguf"}) {
        std::shared_ptr<Model> model;
        std::string err;
        const std::string path = fuzz::models_dir() + "/" + file;
        if (Model::load(path, ModelConfig{}, &model, &err) != Status::ok) {
            std::fprintf(stderr, "fuzz_prompt: cannot load %s: %s\n", path.c_str(), err.c_str());
            std::abort();
        }
        LoadedModel m;
        m.served = std::make_shared<ServedModel>();
        m.served->model = model;
        std::vector<const char*> names(256);
        int32_t n = llama_chat_builtin_templates(names.data(), names.size());
        for (int32_t i = 0; i < n && i < 256; ++i) m.builtin.emplace_back(names[static_cast<size_t>(i)]);
        m.builtin.emplace_back("");  // the GGUF's own template
        for (const auto& name : m.builtin) {
            Status st;
            auto f = make_format(m, name, &st);
            if (st == Status::ok) m.formats[name] = f;
        }
        g_models->push_back(std::move(m));
    }
    if (std::getenv("WNL_FUZZ_STATS")) std::atexit(fuzz::print_hole_counts);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    LoadedModel& m = (*g_models)[in.ConsumeIntegralInRange<size_t>(0, g_models->size() - 1)];
    const Model& model = *m.served->model;

    // The template: a built-in name (or the GGUF's own), or Jinja text.
    std::shared_ptr<ChatFormat> format;
    std::string tmpl;
    const bool jinja = in.ConsumeBool();
    if (jinja) {
        tmpl = text(in, 2048);
        if (tmpl.find('\0') != std::string::npos) return 0;  // the config reader refuses NULs
        if (fuzz::jinja_may_run_unbounded(tmpl) && fuzz::skip_hole(fuzz::Hole::unbounded_jinja)) return 0;
        Status st;
        format = make_format(m, tmpl, &st);
        if (st != Status::ok) {
            WNL_FUZZ_CHECK(kHarness, st == Status::invalid_argument, "a template failed with an unexpected status");
            return 0;
        }
    } else {
        tmpl = m.builtin[in.ConsumeIntegralInRange<size_t>(0, m.builtin.size() - 1)];
        auto it = m.formats.find(tmpl);
        if (it == m.formats.end()) return 0;
        format = it->second;
    }

    Config cfg;
    cfg.model.chat_template = tmpl;
    cfg.model.mode = static_cast<PromptMode>(in.ConsumeIntegralInRange<int>(0, 2));
    if (in.ConsumeBool()) cfg.model.system_prompt = text(in, 256);
    cfg.memory.context_shifting = in.ConsumeBool();
    static const int32_t kMaxTokens[] = {-1, 0, 1, 4, 16, 100, 512, 100000};
    cfg.stopping.max_tokens = in.PickValueInArray(kMaxTokens);
    const uint32_t ctx = in.ConsumeIntegralInRange<uint32_t>(1, 640);

    Session session("fuzz", false);
    const size_t turns = in.ConsumeIntegralInRange<size_t>(0, 12);
    for (size_t i = 0; i < turns; ++i) {
        session.messages.push_back({"user", text(in, 256)});
        session.messages.push_back({"assistant", text(in, 256)});
    }
    if (in.ConsumeBool()) session.transcript = text(in, 1024);
    const std::string input = in.ConsumeRemainingBytesAsString();

    const bool has_template = model.info().has_chat_template || !tmpl.empty();
    LentGraph lent(m.served, format.get(), has_template);
    const GraphModel& g = lent.g;

    PromptPlan plan;
    std::string err;
    Status st = build_prompt(g, cfg, session, input, ctx, &plan, &err);
    WNL_FUZZ_CHECK(kHarness,
                   st == Status::ok || st == Status::prompt_too_long || st == Status::context_full ||
                       (st == Status::invalid_argument && jinja),
                   "unexpected status " + std::to_string(static_cast<int>(st)) + ": " + err);
    if (st != Status::ok) {
        WNL_FUZZ_CHECK(kHarness, !err.empty(), "refused without a reason");
        WNL_FUZZ_CHECK(kHarness, st != Status::context_full || !cfg.memory.context_shifting,
                       "context_full with context shifting on");
        return 0;
    }

    const bool chat = use_chat_mode(g, cfg);
    WNL_FUZZ_CHECK(kHarness, plan.chat == chat, "plan.chat differs from use_chat_mode");
    WNL_FUZZ_CHECK(kHarness, plan.tokens.size() < ctx,
                   std::to_string(plan.tokens.size()) + " tokens in a " + std::to_string(ctx) + "-token context");
    const int32_t n_vocab = llama_vocab_n_tokens(model.vocab());
    for (auto t : plan.tokens) WNL_FUZZ_CHECK(kHarness, t >= 0 && t < n_vocab, "token id outside the vocabulary");
    WNL_FUZZ_CHECK(kHarness, plan.system_tokens >= 0 && static_cast<size_t>(plan.system_tokens) <= plan.tokens.size(),
                   "system_tokens outside the prompt");
    if (cfg.model.system_prompt.empty() || !chat) {
        WNL_FUZZ_CHECK(kHarness, plan.system_tokens == 0, "system_tokens without a system prompt");
    }
    const bool add_bos = llama_vocab_get_add_bos(model.vocab());
    if (chat) {
        WNL_FUZZ_CHECK(kHarness, plan.transcript_cut == 0, "chat plan cut a transcript");
        WNL_FUZZ_CHECK(kHarness, plan.dropped_messages <= session.messages.size() && plan.dropped_messages % 2 == 0,
                       "dropped " + std::to_string(plan.dropped_messages) + " of " +
                           std::to_string(session.messages.size()) + " messages: not whole turns");
        WNL_FUZZ_CHECK(kHarness, cfg.memory.context_shifting || plan.dropped_messages == 0,
                       "turns dropped with context shifting off");
        std::vector<ChatMessage> msgs;
        if (!cfg.model.system_prompt.empty()) msgs.push_back({"system", cfg.model.system_prompt});
        msgs.insert(msgs.end(), session.messages.begin() + static_cast<std::ptrdiff_t>(plan.dropped_messages),
                    session.messages.end());
        msgs.push_back({"user", input});
        std::string rendered;
        WNL_FUZZ_CHECK(kHarness, g.chat->render(msgs, &rendered, &err) == Status::ok, "the kept history no longer renders");
        WNL_FUZZ_CHECK(kHarness, model.tokenize(rendered, add_bos, true) == plan.tokens,
                       "the tokens are not what the kept history renders to");
    } else {
        WNL_FUZZ_CHECK(kHarness, plan.dropped_messages == 0, "completion plan dropped chat turns");
        WNL_FUZZ_CHECK(kHarness, plan.transcript_cut <= session.transcript.size(), "cut more transcript than there is");
        WNL_FUZZ_CHECK(kHarness, cfg.memory.context_shifting || plan.transcript_cut == 0,
                       "transcript cut with context shifting off");
        const std::string kept = session.transcript.substr(plan.transcript_cut) + input;
        WNL_FUZZ_CHECK(kHarness, model.tokenize(kept, add_bos, true) == plan.tokens,
                       "the tokens are not the kept transcript plus the input");
    }

    // Jinja templates may read the clock (strftime_now); built-ins do not.
    if (!jinja) {
        PromptPlan again;
        Status st2 = build_prompt(g, cfg, session, input, ctx, &again, &err);
        WNL_FUZZ_CHECK(kHarness, st2 == Status::ok && plan_text(again) == plan_text(plan),
                       "the same call gave a different plan");
    }
    return 0;
}
