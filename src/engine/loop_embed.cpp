// An embedding graph's decode loop. Its llama_context has embeddings on and
// one unified KV stream; every running request's inputs are packed into each
// llama_decode, one sequence per input, and the pooled vectors (or rank
// scores, or with pooling none each token's vector) are read back per
// sequence.
//
// A pooled vector is computed per ubatch, so an input must never be split
// across two ubatches or two decodes: the context is made with
// n_ubatch = n_batch >= the per-input limit, a decode holds whole inputs
// only, and the single KV stream makes llama.cpp split a batch in order
// (split_simple) rather than in equal slices per sequence. That also keeps
// llama.cpp's non-causal asserts (n_ubatch >= n_tokens in encode and decode)
// out of reach: no batch is ever larger than n_ubatch.
#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "common.h"
#include "engine/decode_loop.h"
#include "engine/embed_io.h"
#include "engine/log.h"

namespace wnl {

namespace {
// Requests embedded at once; more wait in the queue.
constexpr size_t kMaxRunning = 256;

}  // namespace

Status DecodeLoop::embed_context_params(const Model& model, const LoopSettings& s, llama_context_params* cp,
                                        uint32_t* input_limit, std::string* error) {
    if (llama_model_has_encoder(model.get()) && llama_model_has_decoder(model.get())) {
        // llama-embedding refuses these too: llama.cpp has no embedding path for them.
        *error = "embeddings of encoder-decoder models (" + model.info().architecture + ") are not supported";
        return Status::invalid_argument;
    }
    const int32_t n_ctx_train = model.info().n_ctx_train;
    uint32_t limit = s.ctx_per_seq;
    if (limit == 0) {
        limit = static_cast<uint32_t>(std::min<int32_t>(n_ctx_train > 0 ? n_ctx_train : 4096, 4096));
        if (s.ctx_limit > 0) limit = std::min(limit, s.ctx_limit);
    }
    // A position past the trained context would index past a learned
    // position table (BERT's), which ggml asserts on.
    if (n_ctx_train > 0 && limit > static_cast<uint32_t>(n_ctx_train)) {
        log(LogLevel::warn, "scheduler", "embedding graph: ctx_size lowered to the model's trained context",
            {{"ctx_size", limit}, {"n_ctx_train", n_ctx_train}});
        limit = static_cast<uint32_t>(n_ctx_train);
    }
    limit = std::max<uint32_t>(1, limit);
    uint32_t n_batch = std::max<uint32_t>(std::max<uint32_t>(1, s.n_batch), limit);
    const uint32_t n_seqs = std::min<uint32_t>(n_batch, static_cast<uint32_t>(llama_max_parallel_sequences()));
    // llama.cpp reserves its compute graph for n_ubatch tokens in n_seq_max
    // equal sequences, rounding the tokens up to a multiple of n_seq_max; the
    // mean pooling's matmul then no longer fits the outputs and
    // GGML_ASSERT(ggml_can_mul_mat) aborts in llama_init_from_model (ctx_size
    // 600 did). So n_batch is a multiple of n_seq_max; the per-input limit
    // stays as asked.
    n_batch = (n_batch + n_seqs - 1) / n_seqs * n_seqs;
    cp->n_batch = n_batch;
    cp->n_ubatch = n_batch;
    // Every decode starts from an empty cache, so a batch's worth of cells is all it uses.
    cp->n_ctx = n_batch;
    cp->n_seq_max = n_seqs;
    cp->kv_unified = true;
    cp->embeddings = true;
    enum llama_pooling_type pooling = static_cast<enum llama_pooling_type>(s.pooling);
    if (pooling == LLAMA_POOLING_TYPE_UNSPECIFIED) {
        // llama.cpp turns "unspecified" into none for a model that names no
        // pooling (decoder models): those are mean-pooled here. A file's
        // value outside llama.cpp's enum would reach GGML_ABORT("unknown
        // pooling type") in the first decode.
        char buf[32];
        const std::string key = model.info().architecture + ".pooling_type";
        if (llama_model_meta_val_str(model.get(), key.c_str(), buf, sizeof buf) < 0) {
            pooling = LLAMA_POOLING_TYPE_MEAN;
        } else {
            char* end = nullptr;
            const long v = std::strtol(buf, &end, 10);
            if (end == buf || *end != '\0' || v < LLAMA_POOLING_TYPE_UNSPECIFIED || v > LLAMA_POOLING_TYPE_RANK) {
                *error = "the model's " + key + " (" + buf + ") is not a pooling llama.cpp knows";
                return Status::invalid_encoding;
            }
            pooling = v == LLAMA_POOLING_TYPE_UNSPECIFIED ? LLAMA_POOLING_TYPE_NONE : static_cast<enum llama_pooling_type>(v);
        }
    }
    // Output widths llama.cpp reads back per sequence: wider than the
    // hidden state (a file's embedding_length_out, classifier labels) they
    // would read past the result tensor, which ggml asserts on.
    const int32_t n_embd = llama_model_n_embd(model.get());
    if (llama_model_n_embd_out(model.get()) > n_embd) {
        *error = "the model's output embedding length (" + std::to_string(llama_model_n_embd_out(model.get())) +
                 ") is larger than its hidden size (" + std::to_string(n_embd) + "): not an embedding model";
        return Status::invalid_encoding;
    }
    if (pooling == LLAMA_POOLING_TYPE_RANK && llama_model_n_cls_out(model.get()) > static_cast<uint32_t>(n_embd)) {
        *error = "the model has " + std::to_string(llama_model_n_cls_out(model.get())) +
                 " classifier labels, more than its hidden size: rank pooling cannot read them";
        return Status::invalid_encoding;
    }
    cp->pooling_type = pooling;
    *input_limit = limit;
    return Status::ok;
}

void DecodeLoop::embed_init(const LoopSettings& s, uint32_t input_limit) {
    embedding_ = true;
    pooling_ = llama_pooling_type(ctx_);
    n_embd_out_ = llama_model_n_embd_out(model_->get());
    n_cls_out_ = std::max<uint32_t>(1, llama_model_n_cls_out(model_->get()));
    embed_max_seqs_ = std::max<uint32_t>(1, llama_n_seq_max(ctx_));
    embed_batch_tokens_ = std::max<uint32_t>(1, s.embed_batch_tokens);
    ctx_per_seq_ = input_limit;
    if (pooling_ == LLAMA_POOLING_TYPE_RANK && s.pooling == LLAMA_POOLING_TYPE_RANK) {
        char buf[32];
        const std::string key = model_->info().architecture + ".pooling_type";
        if (llama_model_meta_val_str(model_->get(), key.c_str(), buf, sizeof buf) < 0 || std::string(buf) != "4") {
            log(LogLevel::warn, "scheduler", "rank pooling asked of a model that is not a reranker: scores are not meaningful",
                {{"model", model_->info().name}});
        }
    }
    log(LogLevel::info, "scheduler", "embedding loop",
        {{"model", model_->info().name}, {"pooling", pooling_name(pooling_)}, {"input_limit", input_limit},
         {"n_batch", n_batch_}, {"sequences_per_decode", embed_max_seqs_}, {"embed_batch_tokens", embed_batch_tokens_},
         {"n_embd_out", n_embd_out_},
         {"non_causal", llama_get_memory(ctx_) == nullptr}});
}

size_t DecodeLoop::embed_room() const { return busy_slots_ < kMaxRunning ? kMaxRunning - busy_slots_ : 0; }

bool DecodeLoop::embed_step() {
    embed_admit(Clock::now());
    for (auto& run : embed_running_) {
        if (!run.req) continue;
        if (run.req->cancelled) {
            embed_finish(run, Status::runtime_error, "cancelled", "request cancelled");
        } else if (run.req->embed && run.req->embed->max_time_ms > 0 &&
                   ms_between(run.t_admit, Clock::now()) > static_cast<double>(run.req->embed->max_time_ms)) {
            // max_request_time_ms: no partial result, an embedding is whole or not at all.
            embed_finish(run, Status::timeout, "time_limit", "the call ran past max_request_time_ms");
        }
    }
    embed_build();
    bool alive = true;
    if (batch_.n_tokens > 0) {
        int32_t rc = 0;
        alive = decode_batch(&rc);
        if (alive && rc != 0) {
            log(LogLevel::error, "scheduler", "llama_decode failed (embeddings)", {{"rc", rc}, {"tokens", batch_.n_tokens}});
            const std::string why = "llama_decode failed with code " + std::to_string(rc);
            for (const auto& seq : embed_batch_) {
                if (embed_running_[seq.run].req) embed_finish(embed_running_[seq.run], Status::runtime_error, "error", why);
            }
        } else if (alive) {
            embed_collect();
        }
        // Nothing is kept between decodes; the cells' data is overwritten by the next.
        if (llama_memory_t mem = llama_get_memory(ctx_)) llama_memory_clear(mem, false);
    }
    embed_batch_.clear();
    embed_batch_requests_ = 0;
    embed_running_.erase(std::remove_if(embed_running_.begin(), embed_running_.end(),
                                        [](const EmbedRun& r) { return r.req == nullptr; }),
                         embed_running_.end());
    return alive;
}

void DecodeLoop::embed_admit(Clock::time_point now) {
    std::vector<std::shared_ptr<Request>> expired;
    std::vector<std::shared_ptr<Request>> admitted;
    {
        std::lock_guard<std::mutex> lock(mu_);
        expired = queue_->take_expired(now);
        while (queue_->size() > 0 && busy_slots_ < kMaxRunning) {
            admitted.push_back(queue_->pop(now));
            stats_.counters.admitted++;
            stats_.queue_wait_ms.add(ms_between(admitted.back()->enqueued_at, now));
            busy_slots_++;
        }
        for (auto& r : expired) {
            if (!r->cancelled) stats_.counters.timed_out++;
            else stats_.counters.cancelled++;
        }
    }
    end_expired(expired, now);
    for (auto& req : admitted) {
        embed_running_.push_back({std::move(req), now, ++use_tick_});
        EmbedRun& run = embed_running_.back();
        const EmbedJob* job = run.req->embed.get();
        // The backend checks all of this; a request that got here without it is refused, not decoded.
        bool fits = job && !job->inputs.empty() && job->outputs.size() == job->inputs.size();
        for (size_t i = 0; fits && i < job->inputs.size(); ++i) {
            fits = !job->inputs[i].empty() && job->inputs[i].size() <= ctx_per_seq_;
        }
        if (!fits) embed_finish(run, Status::invalid_argument, "error", "embedding request without valid inputs");
    }
}

// Whole inputs only, one sequence each: the first up to n_batch tokens, the
// others while the batch stays within embed_batch_tokens. A non-causal
// model attends across the whole ubatch (masked), so a decode's cost grows
// with the square of its tokens: on CPUs 2,048 packed tokens embed slower
// than 512 (docs/bench.md, "Embeddings"). The running requests take turns
// an input at a time (higher priority, then the older, first), so a call
// with many inputs does not hold back the others, and the oldest request's
// next input always gets in.
void DecodeLoop::embed_build() {
    common_batch_clear(batch_);
    embed_batch_.clear();
    embed_batch_requests_ = 0;
    std::vector<size_t> order;
    for (size_t i = 0; i < embed_running_.size(); ++i) {
        if (embed_running_[i].req) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const EmbedRun& x = embed_running_[a];
        const EmbedRun& y = embed_running_[b];
        if (x.req->priority != y.req->priority) return x.req->priority < y.req->priority;
        return x.tick < y.tick;
    });
    std::vector<bool> in_batch(embed_running_.size(), false);
    size_t budget = n_batch_;
    for (bool added = true; added && embed_batch_.size() < embed_max_seqs_;) {
        added = false;
        for (size_t idx : order) {
            if (embed_batch_.size() >= embed_max_seqs_) break;
            EmbedJob& job = *embed_running_[idx].req->embed;
            if (job.next >= job.inputs.size()) continue;
            const auto& tokens = job.inputs[job.next];
            if (tokens.size() > budget) continue;
            if (!embed_batch_.empty() && static_cast<size_t>(batch_.n_tokens) + tokens.size() > embed_batch_tokens_) {
                continue;
            }
            const auto seq = static_cast<llama_seq_id>(embed_batch_.size());
            embed_batch_.push_back({idx, job.next, batch_.n_tokens, static_cast<int32_t>(tokens.size())});
            for (size_t p = 0; p < tokens.size(); ++p) {
                common_batch_add(batch_, tokens[p], static_cast<llama_pos>(p), {seq}, true);
            }
            budget -= tokens.size();
            job.next++;
            added = true;
            if (!in_batch[idx]) {
                in_batch[idx] = true;
                embed_batch_requests_++;
            }
        }
    }
}

void DecodeLoop::embed_collect() {
    for (size_t s = 0; s < embed_batch_.size(); ++s) {
        const EmbedSeq& seq = embed_batch_[s];
        EmbedRun& run = embed_running_[seq.run];
        if (!run.req) continue;  // failed by an earlier sequence of this batch
        EmbedJob& job = *run.req->embed;
        std::vector<float>& out = job.outputs[seq.input];
        bool got = true;
        if (pooling_ == LLAMA_POOLING_TYPE_NONE) {
            const auto n = static_cast<size_t>(n_embd_out_);
            out.assign(static_cast<size_t>(seq.n_tokens) * n, 0.0f);
            for (int32_t t = 0; got && t < seq.n_tokens; ++t) {
                const float* e = llama_get_embeddings_ith(ctx_, seq.first + t);
                got = e != nullptr;
                if (got) common_embd_normalize(e, out.data() + static_cast<size_t>(t) * n, n_embd_out_, job.normalize);
            }
        } else {
            const float* e = llama_get_embeddings_seq(ctx_, static_cast<llama_seq_id>(s));
            got = e != nullptr;
            if (got && pooling_ == LLAMA_POOLING_TYPE_RANK) {
                out.assign(e, e + n_cls_out_);  // raw scores, as llama.cpp's server returns them
            } else if (got) {
                out.assign(static_cast<size_t>(n_embd_out_), 0.0f);
                common_embd_normalize(e, out.data(), n_embd_out_, job.normalize);
            }
        }
        if (!got) {
            embed_finish(run, Status::runtime_error, "error", "llama.cpp returned no embedding for an input");
            continue;
        }
        if (++job.done == job.inputs.size()) embed_finish(run, Status::ok, "done");
    }
}

void DecodeLoop::embed_finish(EmbedRun& run, Status status, const std::string& stop_reason,
                              const std::string& error) noexcept {
    const auto now = Clock::now();
    std::shared_ptr<Request> req = std::move(run.req);
    run.req.reset();
    if (!req) return;
    size_t tokens = 0;
    size_t inputs = 0;
    if (req->embed) {
        inputs = req->embed->inputs.size();
        for (const auto& in : req->embed->inputs) tokens += in.size();
    }
    RequestResult res;
    try {
        res.status = status;
        res.error = error;
        res.stop_reason = stop_reason;
    } catch (...) {  // out of memory for the strings: the caller still gets its code
        res.status = status == Status::ok ? Status::missing_memory : status;
    }
    res.input_tokens = static_cast<int32_t>(tokens);
    res.queue_ms = ms_between(req->enqueued_at, run.t_admit);
    res.prefill_ms = ms_between(run.t_admit, now);
    {
        std::lock_guard<std::mutex> lock(mu_);
        busy_slots_--;
        try {
            stats_.request_finished(res, ms_between(req->enqueued_at, now), 0.0);
            if (res.status == Status::ok) {
                stats_.counters.embedded_inputs += inputs;
                stats_.counters.embedded_tokens += tokens;
                stats_.latency_ms.add(ms_between(req->enqueued_at, now));
            }
        } catch (...) {
        }
    }
    req->finish(std::move(res));
}

void DecodeLoop::embed_fail_all(Status status, const std::string& stop_reason, const std::string& why) noexcept {
    for (auto& run : embed_running_) {
        if (run.req) embed_finish(run, status, stop_reason, why);
    }
    embed_running_.clear();
    embed_batch_.clear();
    embed_batch_requests_ = 0;
}

}  // namespace wnl
