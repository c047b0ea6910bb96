// compute on an embedding or reranking graph: the input is parsed and
// tokenized on the caller's thread, handed to the model's decode loop as one
// request (loop_embed.cpp batches it with every other caller's), and the
// vectors or scores come back as WasmEdge's JSON.
#include <chrono>

#include "engine/backend.h"
#include "engine/embed_io.h"
#include "engine/limits.h"
#include "engine/log.h"
#include "engine/output_metadata.h"

namespace wnl {

namespace {

// llama.cpp's server's rerank prompt: the model's "rerank" template with the
// query and the document put in, or [BOS] query [EOS] [SEP] document [EOS],
// each special token only where the vocabulary adds it. Empty when the
// rendered template would pass max_bytes.
std::vector<llama_token> rerank_tokens(const Model& model, const std::string& query, const std::string& doc,
                                       size_t max_bytes) {
    const llama_vocab* vocab = model.vocab();
    if (const char* tmpl = llama_model_chat_template(model.get(), "rerank")) {
        std::string prompt;
        if (!render_rerank_template(tmpl, query, doc, max_bytes, &prompt)) return {};
        return model.tokenize(prompt, false, true);
    }
    llama_token eos = llama_vocab_eos(vocab);
    if (eos == LLAMA_TOKEN_NULL) eos = llama_vocab_sep(vocab);
    std::vector<llama_token> out;
    auto add = [&out](llama_token t) {
        if (t != LLAMA_TOKEN_NULL) out.push_back(t);
    };
    if (llama_vocab_get_add_bos(vocab)) add(llama_vocab_bos(vocab));
    for (llama_token t : model.tokenize(query, false, false)) out.push_back(t);
    if (llama_vocab_get_add_eos(vocab)) add(eos);
    if (llama_vocab_get_add_sep(vocab)) add(llama_vocab_sep(vocab));
    for (llama_token t : model.tokenize(doc, false, false)) out.push_back(t);
    if (llama_vocab_get_add_eos(vocab)) add(eos);
    return out;
}

// Keeps the first `limit` tokens; an end marker the tokenizer put last (SEP,
// or EOS) stays last, so the cut input still ends the way the model expects.
void truncate_tokens(const Model& model, std::vector<llama_token>* tokens, size_t limit) {
    const llama_vocab* vocab = model.vocab();
    const llama_token last = tokens->back();
    const bool marker = last != LLAMA_TOKEN_NULL && (last == llama_vocab_sep(vocab) || last == llama_vocab_eos(vocab));
    tokens->resize(limit);
    if (marker) tokens->back() = last;
}

}  // namespace

Status check_graph_kind(const Graph& g, const Config& request) {
    const std::shared_ptr<GraphModel> m = g.current();
    if (!m) return Status::ok;  // unloaded: the call that runs it says so
    const EmbeddingConfig& have = m->config.embedding;
    const EmbeddingConfig& asked = request.embedding;
    if (asked.enabled != have.enabled || asked.reranking != have.reranking || asked.pooling != have.pooling) {
        log(LogLevel::error, "config",
            g.embeds() ? "request options ask for generation or another pooling on an embedding graph; "
                         "embedding, reranking and pooling_type are fixed when the graph is loaded"
                       : "request options ask for embeddings on a generation graph; load the graph with "
                         "{\"embedding\":true} (or \"reranking\")",
            {{"graph", g.id}});
        return Status::invalid_argument;
    }
    if (!g.embeds() && (asked.normalize != have.normalize || asked.truncate != have.truncate)) {
        log(LogLevel::error, "config", "embd_normalize and truncate apply to embedding graphs only", {{"graph", g.id}});
        return Status::invalid_argument;
    }
    return Status::ok;
}

Status Backend::embed_locked(ExecContext& e) {
    e.has_output = false;
    e.output.clear();
    e.metadata.clear();
    if (!e.has_input) {
        log(LogLevel::error, "abi", "compute: no input; call set_input with index 0 first", {{"exec", e.id}});
        return Status::invalid_argument;
    }
    const Graph& g = *e.graph;
    // The model it runs on, held to the end of the call: a swap meanwhile
    // lets this request finish on it (graph.h).
    const std::shared_ptr<GraphModel> current = g.current();
    if (!current) {
        log(LogLevel::error, "abi", "compute: the graph was unloaded", {{"exec", e.id}});
        return Status::not_found;
    }
    ModelUse use(current);
    Config cfg = current->config;
    std::string err;
    Status st = apply_config_json(e.options, ConfigScope::request, cfg, &err, &limits_);
    if (st != Status::ok) {
        log(LogLevel::error, "config", "request options rejected", {{"error", err}});
        return st;
    }
    st = check_request(cfg, "request options");
    if (st != Status::ok) return st;
    // The caps come from the backend context's own config (limits.h).
    const Limits& caps = config_.limits;
    const bool rerank = g.reranks();
    const size_t max_inputs = static_cast<size_t>(caps.max_embedding_inputs);
    EmbedInput in;
    st = rerank ? parse_rerank_input(e.input, max_inputs, &in, &err) : parse_embed_input(e.input, max_inputs, &in, &err);
    if (st != Status::ok) {
        log(LogLevel::error, "request", rerank ? "rerank input rejected" : "embedding input rejected",
            {{"exec", e.id}, {"error", err}});
        return st;
    }

    DecodeLoop& loop = *current->served->loop;
    const Model& model = *current->served->model;
    const size_t limit = loop.ctx_per_seq();
    auto job = std::make_shared<EmbedJob>();
    job->normalize = cfg.embedding.normalize;
    job->inputs.reserve(in.texts.size());
    size_t truncated = 0;
    uint64_t total_tokens = 0;
    for (size_t i = 0; i < in.texts.size(); ++i) {
        std::vector<llama_token> tokens =
            rerank ? rerank_tokens(model, in.query, in.texts[i], static_cast<size_t>(caps.max_prompt_bytes))
                   : model.tokenize(in.texts[i], true, true);
        if (tokens.empty()) {
            log(LogLevel::error, "request",
                rerank ? "rerank pair has no tokens, or the model's rerank template made it longer than "
                         "max_prompt_bytes"
                       : "embedding input has no tokens",
                {{"exec", e.id}, {"input", i}});
            return Status::invalid_argument;
        }
        if (tokens.size() > limit) {
            if (!cfg.embedding.truncate) {
                log(LogLevel::error, "request", "embedding input is longer than the context",
                    {{"exec", e.id}, {"input", i}, {"tokens", tokens.size()}, {"limit", limit}});
                return Status::prompt_too_long;
            }
            truncate_tokens(model, &tokens, limit);
            truncated++;
        }
        total_tokens += tokens.size();
        if (total_tokens > static_cast<uint64_t>(caps.max_embedding_tokens)) {
            log(LogLevel::error, "limits", "embedding call refused: its inputs pass the cap max_embedding_tokens",
                {{"exec", e.id}, {"input", i}, {"tokens_so_far", total_tokens},
                 {"max_embedding_tokens", caps.max_embedding_tokens}});
            return Status::invalid_argument;
        }
        job->inputs.push_back(std::move(tokens));
    }
    job->outputs.resize(job->inputs.size());
    uint64_t values = 0;
    for (const auto& t : job->inputs) {
        values += loop.pooling() == LLAMA_POOLING_TYPE_NONE ? t.size() * static_cast<uint64_t>(loop.n_embd_out())
                                                            : static_cast<uint64_t>(loop.n_embd_out());
    }
    // Pooling none returns every token's vector, which long inputs would
    // otherwise turn into gigabytes of JSON.
    if (values > static_cast<uint64_t>(caps.max_embedding_values)) {
        log(LogLevel::error, "limits", "embedding call refused: its output would pass the cap max_embedding_values",
            {{"exec", e.id}, {"values", values}, {"max_embedding_values", caps.max_embedding_values}});
        return Status::invalid_argument;
    }

    auto req = std::make_shared<Request>();
    req->embed = job;
    req->priority = cfg.request.priority;
    req->session_key = session_key(*e.session);
    req->tenant = tag_;
    req->kv_tenant = tag_;  // nothing is kept in KV between decodes; no prefix is shared
    req->queue_share = limits_.queue_share;
    job->max_time_ms = effective_max_time_ms(cfg.stopping.max_time_ms, caps);
    const int64_t timeout = cfg.request.timeout_ms > 0 ? cfg.request.timeout_ms : cfg.backend.default_task_timeout_ms;
    if (timeout > 0) req->deadline = Clock::now() + std::chrono::milliseconds(timeout);
    {
        std::lock_guard<std::mutex> lock(e.inflight_mu);
        if (e.closed) return Status::runtime_error;
        e.inflight = req;
    }
    st = loop.submit(req, &err);
    if (st == Status::ok) {
        const RequestResult& res = req->wait();
        st = res.status;
        if (st == Status::ok) {
            e.output = rerank ? scores_json(job->outputs)
                              : embeddings_json(job->outputs, in.batch, loop.n_embd_out(),
                                                loop.pooling() == LLAMA_POOLING_TYPE_NONE);
        }
        e.metadata = embedding_metadata_json(res, e.session->id, rerank, model.info().name, job->inputs.size(),
                                             loop.n_embd_out(), pooling_name(loop.pooling()), truncated);
        e.has_output = true;
        log(st == Status::ok ? LogLevel::info : LogLevel::error, "request",
            st == Status::ok ? (rerank ? "rerank done" : "embedding done") : "embedding request failed",
            {{"session", e.session->id},
             {"inputs", job->inputs.size()},
             {"input_tokens", res.input_tokens},
             {"wait_ms", res.queue_ms},
             {"compute_ms", res.prefill_ms},
             {"error", res.error}});
    } else {
        log(LogLevel::warn, "scheduler", "request refused", {{"session", e.session->id}, {"error", err}});
    }
    std::lock_guard<std::mutex> lock(e.inflight_mu);
    e.inflight.reset();
    return st;
}

}  // namespace wnl
