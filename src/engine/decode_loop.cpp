#include "engine/decode_loop.h"

#include <algorithm>
#include <sstream>

#include "common.h"
#include "engine/cpu_arbiter.h"
#include "engine/cpu_budget.h"
#include "engine/log.h"
#include "engine/process_memory.h"
#include "sampling.h"

namespace wnl {

static double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

static ggml_type cache_type(const std::string& s) {
    static const std::pair<const char*, ggml_type> kTypes[] = {
        {"f32", GGML_TYPE_F32},   {"f16", GGML_TYPE_F16},   {"bf16", GGML_TYPE_BF16},
        {"q8_0", GGML_TYPE_Q8_0}, {"q4_0", GGML_TYPE_Q4_0}, {"q4_1", GGML_TYPE_Q4_1},
        {"iq4_nl", GGML_TYPE_IQ4_NL}, {"q5_0", GGML_TYPE_Q5_0}, {"q5_1", GGML_TYPE_Q5_1}};
    for (const auto& [name, type] : kTypes) {
        if (s == name) return type;
    }
    return GGML_TYPE_F16;
}

static llama_flash_attn_type flash_attn_type(const std::string& s) {
    if (s == "on" || s == "enabled") return LLAMA_FLASH_ATTN_TYPE_ENABLED;
    if (s == "off" || s == "disabled") return LLAMA_FLASH_ATTN_TYPE_DISABLED;
    return LLAMA_FLASH_ATTN_TYPE_AUTO;
}

std::string LoopSettings::share_key() const {
    std::ostringstream k;
    k << n_slots << '|' << ctx_per_seq << '|' << n_batch << '|' << n_ubatch << '|' << threads << '|'
      << threads_batch << '|' << flash_attn << '|' << cache_type_k << '|' << cache_type_v << '|'
      << queue.capacity << '|' << queue.priority_enabled << queue.fair << '|' << queue.aging_ms << '|'
      << queue_warning_threshold << '|' << host_cache_bytes << '|' << max_cache_tokens << '|' << max_rss_bytes;
    return k.str();
}

Status DecodeLoop::create(std::shared_ptr<Model> model, const LoopSettings& s,
                          std::shared_ptr<DecodeLoop>* out, std::string* error) {
    std::shared_ptr<DecodeLoop> loop(new DecodeLoop());
    const int32_t n_ctx_train = model->info().n_ctx_train;
    uint32_t per_seq = s.ctx_per_seq;
    if (per_seq == 0) per_seq = static_cast<uint32_t>(std::min<int32_t>(n_ctx_train > 0 ? n_ctx_train : 4096, 4096));
    const int32_t hw = usable_cpus();

    llama_context_params cp = llama_context_default_params();
    cp.n_seq_max = std::max<uint32_t>(1, s.n_slots);
    cp.n_ctx = per_seq * cp.n_seq_max;
    // Every generating sequence adds a token to each batch, so a batch must
    // hold at least one per sequence (llama.cpp aborts otherwise).
    cp.n_batch = std::max<uint32_t>(std::max<uint32_t>(1, s.n_batch), cp.n_seq_max);
    if (cp.n_batch != s.n_batch) {
        log(LogLevel::warn, "scheduler", "batch_size raised to max_concurrent",
            {{"batch_size", s.n_batch}, {"max_concurrent", cp.n_seq_max}});
    }
    cp.n_ubatch = std::min(cp.n_batch, std::max<uint32_t>(1, s.n_ubatch));
    cp.n_threads = s.threads > 0 ? s.threads : hw;
    cp.n_threads_batch = s.threads_batch > 0 ? s.threads_batch : cp.n_threads;
    cp.flash_attn_type = flash_attn_type(s.flash_attn);
    cp.type_k = cache_type(s.cache_type_k);
    cp.type_v = cache_type(s.cache_type_v);
    // One KV stream per sequence: a request attends only to its own cells.
    cp.kv_unified = false;
    cp.no_perf = true;
    cp.abort_callback = [](void* data) { return static_cast<DecodeLoop*>(data)->abort_.load(); };
    cp.abort_callback_data = loop.get();

    loop->ctx_ = llama_init_from_model(model->get(), cp);
    if (!loop->ctx_) {
        *error = "llama.cpp could not create a context (n_ctx " + std::to_string(cp.n_ctx) + ", " +
                 std::to_string(cp.n_seq_max) + " sequences): out of memory or bad cache type";
        return Status::missing_memory;
    }
    loop->threads_ = std::make_unique<LoopThreads>(loop->ctx_, cp.n_threads, cp.n_threads_batch);
    if (!model->info().fully_offloaded && CpuArbiter::enabled()) loop->cpus_ = &CpuArbiter::shared();
    loop->model_ = std::move(model);
    loop->ctx_per_seq_ = llama_n_ctx_seq(loop->ctx_);
    loop->n_batch_ = llama_n_batch(loop->ctx_);
    loop->batch_ = llama_batch_init(static_cast<int32_t>(loop->n_batch_), 0, 1);
    loop->warn_threshold_ = s.queue_warning_threshold;
    loop->queue_ = std::make_unique<RequestQueue>(s.queue);
    loop->cache_ = std::make_unique<StateCache>(s.host_cache_bytes);
    loop->max_cache_tokens_ = s.max_cache_tokens;
    loop->max_rss_bytes_ = s.max_rss_bytes;
    loop->slots_.resize(cp.n_seq_max);
    loop->resident_.resize(cp.n_seq_max);
    {
        // K and V rows of every layer, for each cell.
        const llama_model* m = loop->model_->get();
        const int64_t head_dim = llama_model_n_embd(m) / std::max(1, llama_model_n_head(m));
        const int64_t kv_width = head_dim * llama_model_n_head_kv(m);
        loop->kv_bytes_per_cell_ = static_cast<uint64_t>(llama_model_n_layer(m)) *
                                   (ggml_row_size(cp.type_k, kv_width) + ggml_row_size(cp.type_v, kv_width));
    }
    for (size_t i = 0; i < loop->slots_.size(); ++i) loop->slots_[i].seq = static_cast<llama_seq_id>(i);
    log(LogLevel::info, "scheduler", "decode loop started",
        {{"model", loop->model_->info().name}, {"slots", cp.n_seq_max}, {"ctx_per_seq", loop->ctx_per_seq_},
         {"n_batch", loop->n_batch_}, {"threads", cp.n_threads}});
    loop->thread_ = std::thread([raw = loop.get()] { raw->run(); });
    *out = std::move(loop);
    return Status::ok;
}

DecodeLoop::~DecodeLoop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    abort_ = true;
    cv_.notify_all();
    if (cpus_) cpus_->wake();
    if (thread_.joinable()) thread_.join();
    for (auto& slot : slots_) {
        if (slot.req) finish(slot, Status::runtime_error, "cancelled", "the model was unloaded");
    }
    if (queue_) {
        for (auto& r : queue_->take_all()) {
            RequestResult res;
            res.status = Status::runtime_error;
            res.stop_reason = "cancelled";
            res.error = "the model was unloaded";
            r->finish(std::move(res));
        }
    }
    if (batch_.token) llama_batch_free(batch_);
    if (ctx_) llama_free(ctx_);
    threads_.reset();  // after the context: its pools must outlive every decode
    if (cpus_ && marked_busy_) cpus_->set_busy(false);
}

Status DecodeLoop::submit(const std::shared_ptr<Request>& req, std::string* error) {
    size_t depth;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) {
            *error = "the model is being unloaded";
            return Status::runtime_error;
        }
        // queue_size counts requests that wait; one a free slot takes at
        // once never waits.
        const size_t free_slots = slots_.size() - busy_slots_;
        if (!queue_->push(req, Clock::now(), free_slots)) {
            stats_.counters.rejected++;
            *error = "queue full (" + std::to_string(queue_->settings().capacity) + " waiting)";
            return Status::busy;
        }
        depth = queue_->size();
    }
    if (warn_threshold_ > 0 && depth == static_cast<size_t>(warn_threshold_)) {
        log(LogLevel::warn, "scheduler", "queue depth reached the warning threshold",
            {{"depth", depth}, {"threshold", warn_threshold_}});
    }
    cv_.notify_all();
    return Status::ok;
}

LoopSnapshot DecodeLoop::snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    LoopSnapshot s;
    s.counters = stats_.counters;
    s.recent = stats_.recent();
    s.lifetime = stats_.lifetime();
    s.queue_wait_p50 = stats_.queue_wait_ms.percentile(50);
    s.queue_wait_p99 = stats_.queue_wait_ms.percentile(99);
    s.latency_p50 = stats_.latency_ms.percentile(50);
    s.latency_p95 = stats_.latency_ms.percentile(95);
    s.latency_p99 = stats_.latency_ms.percentile(99);
    s.ttft_p50 = stats_.ttft_ms.percentile(50);
    s.ttft_p95 = stats_.ttft_ms.percentile(95);
    s.ttft_p99 = stats_.ttft_ms.percentile(99);
    s.queue_depth = queue_->depth_by_priority();
    s.queue_capacity = queue_->settings().capacity;
    s.queue_warning_threshold = warn_threshold_;
    s.n_slots = static_cast<uint32_t>(slots_.size());
    s.threads = threads_->threads();
    s.threads_batch = threads_->threads_batch();
    s.shares_cpus = cpus_ != nullptr;
    s.busy_slots = static_cast<uint32_t>(busy_slots_);
    s.kv_cells_used = kv_used_;
    s.kv_cells_total = static_cast<uint64_t>(ctx_per_seq_) * slots_.size();
    s.kv_bytes_per_cell = kv_bytes_per_cell_;
    for (const auto& r : resident_) {
        if (!r.empty()) s.resident_sessions.push_back(r);
    }
    s.host_cache_bytes = cache_->bytes();
    s.host_cache_entries = cache_->entries();
    s.host_cache_limit = cache_->limit();
    s.host_cache_evictions = cache_->evictions();
    s.states_saved = saved_;
    s.states_restored = restored_;
    return s;
}

void DecodeLoop::forget_session(const std::string& key) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        forget_.push_back(key);
    }
    cv_.notify_all();
}

void DecodeLoop::apply_forgets() {
    std::vector<std::string> keys;
    {
        std::lock_guard<std::mutex> lock(mu_);
        keys.swap(forget_);
    }
    for (const auto& key : keys) {
        cache_->erase(key);
        for (auto& slot : slots_) {
            if (!slot.req && slot.session == key) slot.session.clear();
        }
    }
}

// Before a slot's KV is overwritten for another session, its owner's state
// goes to the host cache, to be restored on that session's next turn.
void DecodeLoop::park(Slot& slot, const std::string& incoming) {
    if (slot.session.empty() || slot.session == incoming || slot.cached.empty()) return;
    if (cache_->limit() == 0) return;
    if (max_cache_tokens_ > 0 && static_cast<int64_t>(slot.cached.size()) > max_cache_tokens_) return;
    CachedState state;
    state.key = slot.session;
    state.tokens = slot.cached;
    state.data.resize(llama_state_seq_get_size(ctx_, slot.seq));
    const size_t n = llama_state_seq_get_data(ctx_, state.data.data(), state.data.size(), slot.seq);
    slot.session.clear();
    if (n == 0) return;
    state.data.resize(n);
    log(LogLevel::debug, "memory", "session state moved to the host cache",
        {{"session", state.key}, {"tokens", state.tokens.size()}, {"bytes", n}});
    cache_->put(std::move(state));
    saved_++;
}

void DecodeLoop::restore(Slot& slot, CachedState state) {
    llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
    slot.cached.clear();
    if (llama_state_seq_set_data(ctx_, state.data.data(), state.data.size(), slot.seq) == 0) {
        log(LogLevel::warn, "memory", "restoring cached session state failed; prefilling again",
            {{"session", state.key}});
        llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
        return;
    }
    slot.cached = std::move(state.tokens);
    slot.session = state.key;
    restored_++;
}

// Above max_rss_bytes the host cache gives back half of what it holds.
void DecodeLoop::check_rss() {
    if (max_rss_bytes_ == 0 || cache_->bytes() == 0) return;
    auto now = Clock::now();
    if (now - last_rss_check_ < std::chrono::milliseconds(200)) return;
    last_rss_check_ = now;
    const uint64_t rss = process_rss_bytes();
    if (rss <= max_rss_bytes_) return;
    const size_t dropped = cache_->shrink_to(cache_->bytes() / 2);
    log(LogLevel::warn, "memory", "process RSS above max_rss_bytes: cached session state dropped",
        {{"rss", rss}, {"max_rss_bytes", max_rss_bytes_}, {"dropped", dropped}});
}

void DecodeLoop::admit_waiting(Clock::time_point now) {
    std::vector<std::shared_ptr<Request>> expired;
    std::vector<std::pair<Slot*, std::shared_ptr<Request>>> admitted;
    {
        std::lock_guard<std::mutex> lock(mu_);
        expired = queue_->take_expired(now);
        for (auto& slot : slots_) {
            if (slot.req || queue_->size() == 0) continue;
            admitted.emplace_back(&slot, queue_->pop(now));
            stats_.counters.admitted++;
            stats_.queue_wait_ms.add(ms_between(admitted.back().second->enqueued_at, now));
            busy_slots_++;
        }
        for (auto& r : expired) {
            if (!r->cancelled) stats_.counters.timed_out++;
            else stats_.counters.cancelled++;
        }
    }
    for (auto& r : expired) {
        RequestResult res;
        if (r->cancelled) {
            res.status = Status::runtime_error;
            res.stop_reason = "cancelled";
            res.error = "request cancelled while queued";
        } else {
            res.status = Status::timeout;
            res.stop_reason = "timeout";
            res.error = "request timed out in the queue";
        }
        res.queue_ms = ms_between(r->enqueued_at, now);
        r->finish(std::move(res));
    }
    // Hand each admitted request the free slot whose cache shares the longest
    // prefix with its prompt, so a session's next turn reuses its KV.
    auto common_prefix = [](const std::vector<llama_token>& a, const std::vector<llama_token>& b) {
        size_t n = 0, limit = std::min(a.size(), b.size());
        while (n < limit && a[n] == b[n]) ++n;
        return n;
    };
    for (auto& [unused, req] : admitted) {
        Slot* best = nullptr;
        Slot* oldest = nullptr;
        size_t best_common = 0;
        for (auto& slot : slots_) {
            if (slot.req) continue;
            const size_t common = common_prefix(slot.cached, req->prompt);
            if (!best || common > best_common || (common == best_common && slot.last_used < best->last_used)) {
                best = &slot;
                best_common = common;
            }
            if (!oldest || slot.last_used < oldest->last_used) oldest = &slot;
        }
        // The session's own state from the host cache, when it covers more of
        // the prompt than any slot does; it goes into the least recently used
        // slot, whose owner's state is parked in turn.
        const CachedState* saved = cache_->find(req->session_key);
        if (saved && req->memory.cache_prompt && common_prefix(saved->tokens, req->prompt) > best_common) {
            park(*oldest, req->session_key);
            restore(*oldest, cache_->take(req->session_key));
            best = oldest;
            // An older copy of the session's KV in another slot must not be
            // parked over the state just restored.
            for (auto& slot : slots_) {
                if (&slot != best && !slot.req && slot.session == req->session_key) slot.session.clear();
            }
        } else {
            if (saved && best->session == req->session_key) cache_->erase(req->session_key);
            park(*best, req->session_key);
        }
        start(*best, std::move(req), now);
    }
    check_rss();
}

void DecodeLoop::start(Slot& slot, std::shared_ptr<Request> req, Clock::time_point now) {
    slot.req = std::move(req);
    Request& r = *slot.req;
    slot.t_admit = now;
    slot.last_used = ++use_tick_;
    slot.n_generated = 0;
    slot.n_cached = 0;
    slot.shown = 0;
    slot.batch_index = -1;
    slot.stop = StopMatcher(r.stopping.stop);

    if (r.prompt.empty()) {
        finish(slot, Status::invalid_argument, "error", "empty prompt");
        return;
    }
    if (r.prompt.size() >= ctx_per_seq_) {
        finish(slot, Status::prompt_too_long, "error",
               "prompt is " + std::to_string(r.prompt.size()) + " tokens; the context holds " +
                   std::to_string(ctx_per_seq_));
        return;
    }
    std::string err;
    if (make_sampler(model_->get(), r.sampling, r.stopping.ignore_eos, static_cast<int32_t>(ctx_per_seq_),
                     &slot.sampler, &err) != Status::ok) {
        finish(slot, Status::invalid_argument, "error", err);
        return;
    }
    slot.greedy = is_plain_greedy(r.sampling);

    // Reuse the longest cached prefix; at least one prompt token is decoded
    // again so that there are logits to sample from.
    size_t common = 0;
    if (r.memory.cache_prompt) {
        size_t limit = std::min(slot.cached.size(), r.prompt.size() - 1);
        while (common < limit && slot.cached[common] == r.prompt[common]) ++common;
    }
    llama_memory_t mem = llama_get_memory(ctx_);
    if (!llama_memory_seq_rm(mem, slot.seq, static_cast<llama_pos>(common), -1)) {
        llama_memory_seq_rm(mem, slot.seq, -1, -1);
        common = 0;
    }
    slot.cached.resize(common);
    slot.session = r.session_key;
    slot.prompt_pos = common;
    slot.n_cached = static_cast<int32_t>(common);
    for (llama_token t : r.prompt) common_sampler_accept(slot.sampler.get(), t, false);
}

void DecodeLoop::finish(Slot& slot, Status status, const std::string& stop_reason, const std::string& error) {
    auto now = Clock::now();
    Request& r = *slot.req;
    RequestResult res;
    res.status = status;
    res.error = error;
    res.stop_reason = stop_reason;
    res.text = slot.stop.text();
    res.input_tokens = static_cast<int32_t>(r.prompt.size());
    res.cached_tokens = slot.n_cached;
    res.output_tokens = slot.n_generated;
    res.queue_ms = ms_between(r.enqueued_at, slot.t_admit);
    bool had_token = slot.n_generated > 0;
    res.prefill_ms = ms_between(slot.t_admit, had_token ? slot.t_first_token : now);
    res.decode_ms = had_token ? ms_between(slot.t_first_token, now) : 0.0;
    if (r.on_text && slot.shown < res.text.size()) {
        r.on_text(std::string_view(res.text).substr(slot.shown));
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        busy_slots_--;
        stats_.request_finished(res, ms_between(r.enqueued_at, now),
                                had_token ? ms_between(r.enqueued_at, slot.t_first_token) : 0.0);
    }
    // A request cancelled while generating (a stream its guest ended early)
    // leaves whole KV: its prompt and the tokens decoded since, which the
    // session's next turn starts with. Any other failure may leave a
    // half-decoded prompt: forget it.
    const bool whole = status == Status::ok || status == Status::context_full ||
                       (stop_reason == "cancelled" && slot.generating());
    if (!whole) {
        llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
        slot.cached.clear();
    }
    slot.sampler.reset();
    auto req = std::move(slot.req);
    slot.req.reset();
    req->finish(std::move(res));
}

// Keeps the first n_keep tokens, drops half of the rest, and slides the
// remainder down, as llama.cpp's server does.
bool DecodeLoop::shift_context(Slot& slot) {
    const Request& r = *slot.req;
    const int32_t n_past = static_cast<int32_t>(slot.cached.size());
    int32_t keep = r.memory.n_keep < 0 ? static_cast<int32_t>(r.prompt.size()) : r.memory.n_keep;
    keep = std::max(keep, r.keep_prefix);
    if (llama_vocab_get_add_bos(model_->vocab())) keep = std::max(keep, 1);
    keep = std::min(keep, n_past - 4);
    if (keep < 0) return false;
    const int32_t discard = (n_past - keep) / 2;
    if (discard <= 0) return false;
    llama_memory_t mem = llama_get_memory(ctx_);
    llama_memory_seq_rm(mem, slot.seq, keep, keep + discard);
    llama_memory_seq_add(mem, slot.seq, keep + discard, n_past, -discard);
    slot.cached.erase(slot.cached.begin() + keep, slot.cached.begin() + keep + discard);
    log(LogLevel::debug, "scheduler", "context shifted",
        {{"session", r.session_key}, {"kept", keep}, {"discarded", discard}});
    return true;
}

// Every request with tokens in the failed batch ends; their sequences are
// cleared by finish().
void DecodeLoop::fail_batch(const std::string& why) {
    for (auto& slot : slots_) {
        if (slot.req && (slot.batch_index >= 0 || !slot.generating())) {
            finish(slot, Status::runtime_error, "error", why);
        }
    }
}

void DecodeLoop::after_decode(Slot& slot) {
    Request& r = *slot.req;
    const int32_t idx = slot.batch_index;
    slot.batch_index = -1;
    llama_token tok = slot.greedy ? greedy_token(ctx_, model_->get(), idx, r.stopping.ignore_eos) : LLAMA_TOKEN_NULL;
    if (tok == LLAMA_TOKEN_NULL) tok = common_sampler_sample(slot.sampler.get(), ctx_, idx);
    common_sampler_accept(slot.sampler.get(), tok, true);
    auto now = Clock::now();
    if (slot.n_generated == 0) slot.t_first_token = now;

    if (!r.stopping.ignore_eos && llama_vocab_is_eog(model_->vocab(), tok)) {
        finish(slot, Status::ok, "eos");
        return;
    }
    slot.n_generated++;
    slot.last_token = tok;
    const bool hit_stop = slot.stop.append(model_->token_to_piece(tok));
    if (r.on_text) {
        size_t safe = slot.stop.safe_length();
        if (safe > slot.shown) {
            r.on_text(std::string_view(slot.stop.text()).substr(slot.shown, safe - slot.shown));
            slot.shown = safe;
        }
    }
    if (hit_stop) {
        finish(slot, Status::ok, "stop_string");
    } else if (r.stopping.max_tokens >= 0 && slot.n_generated >= r.stopping.max_tokens) {
        finish(slot, Status::ok, "max_tokens");
    } else if (r.stopping.max_time_ms > 0 &&
               ms_between(slot.t_admit, now) >= static_cast<double>(r.stopping.max_time_ms)) {
        finish(slot, Status::ok, "time_limit");
    }
}

void DecodeLoop::run() {
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            auto idle = [&] {
                return std::none_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req != nullptr; });
            };
            if (marked_busy_ && idle() && queue_->size() == 0 && forget_.empty()) {
                cpus_->set_busy(false);  // other models' loops may widen again
                marked_busy_ = false;
            }
            while (!stopping_ && idle() && queue_->size() == 0 && forget_.empty()) cv_.wait(lock);
            if (stopping_) return;
        }
        apply_forgets();
        admit_waiting(Clock::now());

        // A request with max_tokens 0, or one cancelled, ends before decoding.
        for (auto& slot : slots_) {
            if (!slot.req) continue;
            if (slot.req->cancelled) {
                finish(slot, Status::runtime_error, "cancelled", "request cancelled");
            } else if (slot.req->stopping.max_tokens == 0) {
                finish(slot, Status::ok, "max_tokens");
            }
        }

        common_batch_clear(batch_);
        int32_t budget = static_cast<int32_t>(n_batch_);
        // One token for every generating request first, so prefill never
        // stalls them for more than one chunk.
        for (auto& slot : slots_) {
            if (!slot.req || !slot.generating() || slot.n_generated == 0) continue;
            if (slot.cached.size() + 1 >= ctx_per_seq_) {
                if (!slot.req->memory.context_shifting || !shift_context(slot)) {
                    finish(slot, Status::context_full, "context_full",
                           "the conversation filled the context (" + std::to_string(ctx_per_seq_) + " tokens)");
                    continue;
                }
            }
            slot.batch_index = batch_.n_tokens;
            common_batch_add(batch_, slot.last_token, static_cast<llama_pos>(slot.cached.size()), {slot.seq}, true);
            slot.cached.push_back(slot.last_token);
            --budget;
        }
        // Then prompt chunks, oldest admission first.
        std::vector<Slot*> prefill;
        for (auto& slot : slots_) {
            if (slot.req && !slot.generating()) prefill.push_back(&slot);
        }
        std::sort(prefill.begin(), prefill.end(), [](Slot* a, Slot* b) { return a->last_used < b->last_used; });
        for (Slot* slot : prefill) {
            if (budget <= 0) break;
            const auto& prompt = slot->req->prompt;
            size_t n = std::min(prompt.size() - slot->prompt_pos, static_cast<size_t>(budget));
            for (size_t i = 0; i < n; ++i) {
                const size_t pos = slot->prompt_pos + i;
                const bool last = pos + 1 == prompt.size();
                if (last) slot->batch_index = batch_.n_tokens;
                common_batch_add(batch_, prompt[pos], static_cast<llama_pos>(pos), {slot->seq}, last);
                slot->cached.push_back(prompt[pos]);
            }
            slot->prompt_pos += n;
            budget -= static_cast<int32_t>(n);
        }
        if (batch_.n_tokens == 0) continue;

        const auto t_ask = Clock::now();
        auto t_decode = t_ask;
        int32_t rc = 0;
        {
            if (cpus_ && !marked_busy_) {
                cpus_->set_busy(true);
                marked_busy_ = true;
            }
            CpuTurn turn(cpus_, threads_->wanted(batch_.n_tokens), abort_);
            if (!turn.held()) return;  // unloading: the destructor ends the requests
            threads_->use(turn.threads(), batch_.n_tokens);
            t_decode = Clock::now();
            rc = llama_decode(ctx_, batch_);
            // Another model waits for the CPUs: park this pool's workers now
            // rather than let them poll on through its turn.
            if (cpus_ && cpus_->others_waiting()) threads_->park();
        }
        {
            int32_t busy = 0;
            uint64_t used = 0;
            for (const auto& slot : slots_) {
                busy += slot.req ? 1 : 0;
                used += slot.cached.size();
            }
            std::lock_guard<std::mutex> lock(mu_);
            stats_.decode_call(batch_.n_tokens, busy, ms_between(t_decode, Clock::now()));
            stats_.counters.cpu_wait_ms += ms_between(t_ask, t_decode);
            kv_used_ = used;
            for (size_t i = 0; i < slots_.size(); ++i) resident_[i] = slots_[i].cached.empty() ? "" : slots_[i].session;
            if (stopping_) return;
        }
        if (rc != 0) {
            log(LogLevel::error, "scheduler", "llama_decode failed", {{"rc", rc}, {"tokens", batch_.n_tokens}});
            fail_batch("llama_decode failed with code " + std::to_string(rc));
            continue;
        }
        for (auto& slot : slots_) {
            if (slot.req && slot.batch_index >= 0) after_decode(slot);
        }
    }
}

}  // namespace wnl
