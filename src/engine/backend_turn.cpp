// A turn from the request's start to its record in the session's history:
// start_turn builds the prompt and hands the request to the decode loop,
// end_turn records the result. compute() runs both around a wait.
#include <cstdio>

#include "engine/backend.h"
#include "engine/limits.h"
#include "engine/log.h"
#include "engine/output_metadata.h"
#include "engine/prompt_builder.h"

namespace wnl {

Status Backend::start_turn(ExecContext& e, Turn* turn, bool streaming) {
    e.has_output = false;  // a failed compute leaves nothing stale to read
    e.output.clear();
    e.metadata.clear();
    if (e.graph->embeds()) {  // compute goes to embed_locked; only streaming gets here
        log(LogLevel::error, "abi", "streaming calls generate text; this graph was loaded for embeddings",
            {{"exec", e.id}});
        return Status::invalid_argument;
    }
    if (!e.has_input) {
        log(LogLevel::error, "abi", "compute: no input; call set_input with index 0 first", {{"exec", e.id}});
        return Status::invalid_argument;
    }
    Session& session = *e.session;
    if (session.in_use.exchange(true)) {
        log(LogLevel::warn, "session", "compute: session busy in another execution context", {{"session", session.id}});
        return Status::busy;
    }
    // Until the request is with the loop, a failure gives the session back.
    struct Release {
        Session* s;
        ~Release() {
            if (!s) return;
            s->touch();
            s->in_use = false;
        }
    } release{&session};

    const Graph& g = *e.graph;
    Config cfg = g.config;
    std::string err;
    Status st = apply_config_json(e.options, ConfigScope::request, cfg, &err, &limits_);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "request options rejected", {{"error", err}});
        return st;
    }
    st = check_request(cfg, "request options");
    if (st != Status::ok) return st;
    // -1 means "up to the ceiling": a request with ignore_eos and context
    // shifting would otherwise never end. The running-time ceiling applies
    // unless the request asks for less.
    cfg.stopping.max_tokens = effective_max_tokens(cfg.stopping.max_tokens, config_.limits);
    cfg.stopping.max_time_ms = effective_max_time_ms(cfg.stopping.max_time_ms, config_.limits);
    DecodeLoop& loop = *g.served->loop;
    st = build_prompt(g, cfg, session, e.input, loop.ctx_per_seq(), &turn->plan, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "session", "prompt rejected", {{"session", session.id}, {"error", err}});
        return st;
    }

    auto req = std::make_shared<Request>();
    // The request's setup is its caller's work, here, before the loop sees
    // it: the sampler (grammar compiled, json_schema converted, the prompt
    // fed to its history) and the stop strings' automaton.
    st = make_sampler(g.served->model->get(), cfg.sampling, cfg.stopping.ignore_eos,
                      static_cast<int32_t>(loop.ctx_per_seq()), &req->sampler, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "sampling settings rejected", {{"session", session.id}, {"error", err}});
        return st;
    }
    accept_prompt(req->sampler.get(), turn->plan.tokens);
    req->greedy = is_plain_greedy(cfg.sampling);
    req->has_grammar = !cfg.sampling.grammar.empty() || !cfg.sampling.json_schema.empty();
    req->stop = StopMatcher(cfg.stopping.stop);
    req->prompt = std::move(turn->plan.tokens);
    req->sampling = cfg.sampling;
    req->stopping = cfg.stopping;
    req->memory = cfg.memory;
    req->priority = cfg.request.priority;
    req->session_key = session_key(session.id);
    // KV written for one tenant is a prefix for that tenant alone, unless
    // the host lets its contexts share (share_kv "process").
    req->tenant = tag_;
    req->kv_tenant = config_.backend.share_kv_process ? std::string("process") : tag_;
    req->queue_share = limits_.queue_share;
    req->keep_prefix = turn->plan.system_tokens;
    // stream_stdout (WasmEdge's stream-stdout): the host's stdout shows the
    // reply as it is generated, whatever the guest does with it.
    const bool to_stdout = cfg.logging.stream_stdout;
    if (streaming || to_stdout) {
        Request* r = req.get();  // the loop holds the request while it calls this
        req->on_text = [r, streaming, to_stdout](std::string_view text) {
            if (to_stdout) {
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
            }
            if (streaming) r->push_text(text);
        };
    }
    const int64_t timeout = cfg.request.timeout_ms > 0 ? cfg.request.timeout_ms : cfg.backend.default_task_timeout_ms;
    if (timeout > 0) req->deadline = Clock::now() + std::chrono::milliseconds(timeout);
    {
        std::lock_guard<std::mutex> lock(e.inflight_mu);
        if (e.closed) return Status::runtime_error;
        e.inflight = req;
    }
    st = loop.submit(req, &err);
    if (st != Status::ok) {
        log(LogLevel::warn, "scheduler", "request refused", {{"session", session.id}, {"error", err}});
        std::lock_guard<std::mutex> lock(e.inflight_mu);
        e.inflight.reset();
        return st;
    }
    turn->req = std::move(req);
    turn->input = e.input;
    turn->priority = cfg.request.priority;
    release.s = nullptr;  // end_turn gives the session back
    return Status::ok;
}

Status Backend::end_turn(ExecContext& e, Turn& turn, const RequestResult& res, bool keep_partial) {
    Session& session = *e.session;
    {
        std::lock_guard<std::mutex> lock(e.inflight_mu);
        e.inflight.reset();
    }
    const Graph& g = *e.graph;
    e.output = res.text;
    e.metadata = output_metadata_json(res, session.id, turn.plan.chat, g.served->model->info().name);
    e.has_output = true;
    // A stream its guest ended early keeps what was generated: the guest
    // has shown it, so the next turn follows it.
    if (res.status == Status::ok || res.status == Status::context_full || (keep_partial && !res.text.empty())) {
        if (turn.plan.chat) {
            session.messages.erase(session.messages.begin(),
                                   session.messages.begin() + static_cast<std::ptrdiff_t>(turn.plan.dropped_messages));
            session.messages.push_back({"user", turn.input});
            session.messages.push_back({"assistant", res.text});
        } else {
            session.transcript.erase(0, turn.plan.transcript_cut);
            session.transcript.append(turn.input);
            session.transcript.append(res.text);
        }
        session.turns++;
        session.tokens_held = res.input_tokens + res.output_tokens;
    }
    session.touch();
    session.in_use = false;
    log(LogLevel::info, "request", "request done",
        {{"session", session.id},
         {"priority", priority_name(turn.priority)},
         {"input_tokens", res.input_tokens},
         {"cached_tokens", res.cached_tokens},
         {"output_tokens", res.output_tokens},
         {"wait_ms", res.queue_ms},
         {"prefill_ms", res.prefill_ms},
         {"decode_ms", res.decode_ms},
         {"stop_reason", res.stop_reason}});
    if (res.status != Status::ok && !keep_partial) {
        log(LogLevel::error, "request", "request failed", {{"session", session.id}, {"error", res.error}});
    }
    return res.status;
}

Status Backend::compute_locked(ExecContext& e) {
    if (e.graph->embeds()) return embed_locked(e);
    if (e.stream) {
        log(LogLevel::error, "abi", "compute: a stream is open on this execution context; call fini_single first",
            {{"exec", e.id}});
        return Status::busy;
    }
    Turn turn;
    Status st = start_turn(e, &turn, false);
    if (st != Status::ok) return st;
    const RequestResult& res = turn.req->wait();
    return end_turn(e, turn, res, false);
}

}  // namespace wnl
