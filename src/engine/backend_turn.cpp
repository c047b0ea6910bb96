// A turn from the request's start to its record in the session's history:
// start_turn builds the prompt and hands the request to the decode loop,
// end_turn records the result. compute() runs both around a wait.
#include <algorithm>
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
    turn->input = e.input;
    Status st = submit_turn(e, turn, streaming);
    if (st != Status::ok) return st;
    release.s = nullptr;  // end_turn gives the session back
    return Status::ok;
}

Status Backend::submit_turn(ExecContext& e, Turn* turn, bool streaming) {
    Session& session = *e.session;
    const bool again = turn->req != nullptr;  // handed back by a swap
    const Clock::time_point deadline = again ? turn->req->deadline : Clock::time_point::max();
    for (;;) {
        std::shared_ptr<GraphModel> m = e.graph->current();
        if (!m) {
            log(LogLevel::error, "abi", "compute: the graph of this execution context was unloaded",
                {{"exec", e.id}, {"graph", e.graph->id}});
            return Status::not_found;
        }
        std::shared_ptr<Request> req;
        Status st = build_request(e, *m, turn, streaming, &req);
        if (st != Status::ok) return st;
        if (again) {
            req->resubmitted = true;
            req->deadline = deadline;
        }
        ModelUse previous;  // released after the lock: it may be a replaced model's last use
        {
            // Published together, so that close and deinit, which cancel
            // e.inflight and wait on a stream's turn->req, see one request.
            std::lock_guard<std::mutex> lock(e.inflight_mu);
            if (e.closed) return Status::runtime_error;
            e.inflight = req;
            turn->req = req;
            previous = std::move(turn->model);
            turn->model = ModelUse(m);
        }
        std::string err;
        // Handed to m's loop only while m is the graph's model: a swap that
        // came while the prompt was being built means building it again.
        const bool current = e.graph->while_current(m.get(), [&] { st = m->served->loop->submit(req, &err); });
        if (current && st == Status::ok) return Status::ok;
        // Never reached a loop: it ends here, so that no one waits on it.
        RequestResult never;
        never.status = current ? st : Status::runtime_error;
        never.stop_reason = "cancelled";
        never.error = current ? err : "the graph's model was swapped before the request was queued";
        never.moved = !current;
        req->finish(std::move(never));
        {
            std::lock_guard<std::mutex> lock(e.inflight_mu);
            e.inflight.reset();
        }
        if (current) {
            log(LogLevel::warn, "scheduler", "request refused", {{"session", session.id}, {"error", err}});
            return st;
        }
    }
}

Status Backend::build_request(ExecContext& e, const GraphModel& m, Turn* turn, bool streaming,
                              std::shared_ptr<Request>* out) {
    Session& session = *e.session;
    Config cfg = m.config;
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
    st = build_prompt(m, cfg, session, turn->input, m.served->loop->ctx_per_seq(), &turn->plan, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "session", "prompt rejected", {{"session", session.id}, {"error", err}});
        return st;
    }

    auto req = std::make_shared<Request>();
    // The request's setup is its caller's work, here, before the loop sees
    // it: the sampler (grammar compiled, json_schema converted, the prompt
    // fed to its history) and the stop strings' automaton.
    st = make_sampler(m.served->model->get(), cfg.sampling, cfg.stopping.ignore_eos,
                      static_cast<int32_t>(m.served->loop->ctx_per_seq()), &req->sampler, &err);
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
    req->session_key = session_key(session);
    // KV written for one tenant is a prefix for that tenant alone, unless
    // the host lets its contexts share (share_kv "process").
    req->tenant = tag_;
    req->kv_tenant = kv_tenant(session);
    req->queue_share = limits_.queue_share;
    req->keep_prefix = turn->plan.system_tokens;
    if (store_ && session.named) {
        // Its KV goes to the store when it leaves the loop; after a restart
        // (or once the loop has let it go) the store's copy comes back,
        // read here rather than on the loop's thread.
        req->kv_sink = store_->kv_sink(e.session);
        if (!m.served->loop->holds_state(req->session_key)) {
            store_->load_kv(session, m.served->loop->kv_identity(), m.served->loop->max_state_bytes(), &req->stored_tokens,
                            &req->stored_data);
        }
    }
    req->owner = &m;
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
    turn->priority = cfg.request.priority;
    *out = std::move(req);
    return Status::ok;
}

Status Backend::restart_turn(ExecContext& e, Turn* turn, bool streaming) {
    log(LogLevel::debug, "model", "request handed back by a swap; starting it on the new model",
        {{"session", e.session->id}});
    Status st = submit_turn(e, turn, streaming);
    // A stream's turn may have been ended meanwhile by close or deinit.
    if (st != Status::ok && !turn->ended.exchange(true)) abandon_turn(e, *turn);
    return st;
}

void Backend::abandon_turn(ExecContext& e, Turn& turn) {
    ModelUse done;  // freed after the lock: the last use of a model frees it
    {
        std::lock_guard<std::mutex> lock(e.inflight_mu);
        e.inflight.reset();
        done = std::move(turn.model);
    }
    e.session->touch();
    e.session->in_use = false;
}

Status Backend::record_turn(ExecContext& e, const Turn& turn, const RequestResult& res) {
    Session& session = *e.session;
    const PromptPlan& plan = turn.plan;
    std::string transcript;
    if (!plan.chat) {
        transcript = session.transcript.substr(std::min(plan.transcript_cut, session.transcript.size()));
        transcript.append(turn.input);
        transcript.append(res.text);
    }
    const int32_t held = res.input_tokens + res.output_tokens;
    if (store_ && session.named) {
        TurnWrite w;
        w.chat = plan.chat;
        if (plan.chat) {
            w.drop_messages = plan.dropped_messages;
            w.append = {{"user", turn.input}, {"assistant", res.text}};
        } else {
            w.transcript = transcript;
        }
        w.turns = session.turns + 1;
        w.tokens_held = held;
        std::vector<std::string> evicted;
        std::string err;
        Status st = store_->commit_turn(session, std::move(w), &evicted, &err);
        forget_sessions(evicted);
        if (st != Status::ok) {
            log(LogLevel::error, "store", "turn not stored, so not acknowledged; the session stays as it was",
                {{"session", session.id}, {"error", err}});
            return st;
        }
    }
    if (plan.chat) {
        const size_t drop = std::min(plan.dropped_messages, session.messages.size());
        session.messages.erase(session.messages.begin(), session.messages.begin() + static_cast<std::ptrdiff_t>(drop));
        session.messages.push_back({"user", turn.input});
        session.messages.push_back({"assistant", res.text});
    } else {
        session.transcript = std::move(transcript);
    }
    session.turns++;
    session.tokens_held = held;
    return Status::ok;
}

Status Backend::end_turn(ExecContext& e, Turn& turn, const RequestResult& res, bool keep_partial,
                         bool* store_failed) {
    Session& session = *e.session;
    {
        std::lock_guard<std::mutex> lock(e.inflight_mu);
        e.inflight.reset();
    }
    e.output = res.text;
    e.metadata = output_metadata_json(res, session.id, turn.plan.chat, turn.model ? turn.model->version : ModelVersion{});
    e.has_output = true;
    Status status = res.status;
    {
        // The model this turn ran on may be one a swap replaced: it is
        // freed now if this was its last request (after the lock).
        ModelUse done;
        {
            std::lock_guard<std::mutex> lock(e.inflight_mu);
            done = std::move(turn.model);
        }
    }
    // A stream its guest ended early keeps what was generated: the guest
    // has shown it, so the next turn follows it.
    if (res.status == Status::ok || res.status == Status::context_full || (keep_partial && !res.text.empty())) {
        Status st = record_turn(e, turn, res);
        if (st != Status::ok) {
            // Not acknowledged: nothing of it to read either.
            e.has_output = false;
            e.output.clear();
            e.metadata.clear();
            status = st;
            if (store_failed) *store_failed = true;
        }
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
    return status;
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
    for (;;) {
        const RequestResult& res = turn.req->wait();
        if (!res.moved) return end_turn(e, turn, res, false);
        st = restart_turn(e, &turn, false);
        if (st != Status::ok) return st;
    }
}

}  // namespace wnl
