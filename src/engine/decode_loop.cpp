// A decode loop's life: its llama_context and thread, the queue callers
// submit to, status snapshots, and the loop that runs one batch step after
// another (admission: loop_admission.cpp; KV placement: loop_kv.cpp; the
// batch step: loop_step.cpp).
#include "engine/decode_loop.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <new>
#include <sstream>
#include <system_error>

#include "engine/cpu_arbiter.h"
#include "engine/cpu_budget.h"
#include "engine/kv_file.h"
#include "engine/log.h"
#include "common.h"
#include "engine/process_exit.h"
#include "engine/version.h"

namespace wnl {

namespace {
// Every loop in the process, for the exit teardown. Never destroyed (see
// process_exit.h); the mutex is held only to add, prune or copy entries,
// never across a load, so a teardown never waits behind one.
struct LiveLoops {
    std::mutex mu;
    std::vector<std::weak_ptr<DecodeLoop>> loops;
    bool closed = false;  // the process is exiting: no new loop starts
};
LiveLoops& live_loops() {
    static LiveLoops* l = new LiveLoops();
    return *l;
}
}  // namespace

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

// More threads than the process can run at once make every ggml barrier
// wait out other threads' time slices: a 2-CPU host running "threads": 8
// decodes a hundred times slower. Configs are copied from bigger machines.
static int within_cpus(const char* key, int asked, int cpus) {
    if (asked <= cpus) return asked;
    log(LogLevel::warn, "config", "more threads than usable CPUs; using the CPUs (threads_exact keeps the value)",
        {{"key", key}, {"asked", asked}, {"used", cpus}});
    return cpus;
}

// The governor narrows a loop's threads on a busy host; off for a model on
// a GPU (its host threads mostly wait), with threads_exact, and with
// WASI_NN_LLAMA_ADAPT_THREADS=0 (for comparison in bench/contention).
static bool adapt_threads() {
    static const bool on = [] {
        const char* v = std::getenv("WASI_NN_LLAMA_ADAPT_THREADS");
        return !(v && std::string(v) == "0");
    }();
    return on;
}

// What a KV state written by this loop is valid for (kv_file.h). The first
// four fields are the model file's identity: hot swap's per-graph version
// (file path, size, mtime, general.name) is the same thing and can be
// passed in here instead.
static KvModelIdentity kv_identity_of(const ModelInfo& m, const LoopSettings& s, uint32_t ctx_per_seq) {
    KvModelIdentity id;
    id.path = m.path;
    id.file_bytes = m.file_bytes;
    id.file_mtime_ns = m.mtime_ns;
    id.name = m.name;
    id.architecture = m.architecture;
    id.n_vocab = m.n_vocab;
    id.n_embd = m.n_embd;
    id.n_layer = m.n_layer;
    id.cache_type_k = s.cache_type_k;
    id.cache_type_v = s.cache_type_v;
    id.flash_attn = s.flash_attn;
    id.ctx_per_seq = ctx_per_seq;
    id.llama_commit = llama_commit_value();
    return id;
}

std::string LoopSettings::share_key() const {
    std::ostringstream k;
    k << n_slots << '|' << ctx_per_seq << '|' << n_batch << '|' << n_ubatch << '|' << prefill_chunk << '|' << threads << '|'
      << threads_batch << '|' << threads_exact << '|' << flash_attn << '|' << cache_type_k << '|' << cache_type_v << '|'
      << queue.capacity << '|' << queue.priority_enabled << queue.fair << '|' << queue.aging_ms << '|'
      << queue_warning_threshold << '|' << host_cache_bytes << '|' << max_cache_tokens << '|' << max_rss_bytes << '|'
      << ctx_limit << '|' << embedding << '|' << pooling << '|' << embed_batch_tokens;
    return k.str();
}

Status DecodeLoop::create(std::shared_ptr<Model> model, const LoopSettings& s,
                          std::shared_ptr<DecodeLoop>* out, std::string* error) {
    std::shared_ptr<DecodeLoop> loop(new DecodeLoop());
    const int32_t n_ctx_train = model->info().n_ctx_train;
    uint32_t per_seq = s.ctx_per_seq;
    if (per_seq == 0) {
        per_seq = static_cast<uint32_t>(std::min<int32_t>(n_ctx_train > 0 ? n_ctx_train : 4096, 4096));
        if (s.ctx_limit > 0) per_seq = std::min(per_seq, s.ctx_limit);
    }
    const int32_t hw = usable_cpus();

    // llama.cpp refuses these by returning no context, which would read as
    // out of memory below.
    if (ggml_is_quantized(cache_type(s.cache_type_v)) && flash_attn_type(s.flash_attn) == LLAMA_FLASH_ATTN_TYPE_DISABLED) {
        *error = "cache_type_v " + s.cache_type_v + " (quantized) needs flash_attn on or auto";
        return Status::invalid_argument;
    }
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
    const int32_t runnable = runnable_cpus();
    cp.n_threads = s.threads > 0 ? s.threads : hw;
    if (!s.threads_exact) cp.n_threads = within_cpus("threads", cp.n_threads, runnable);
    cp.n_threads_batch = s.threads_batch > 0 ? s.threads_batch : cp.n_threads;
    if (!s.threads_exact) cp.n_threads_batch = within_cpus("threads_batch", cp.n_threads_batch, runnable);
    cp.flash_attn_type = flash_attn_type(s.flash_attn);
    cp.type_k = cache_type(s.cache_type_k);
    cp.type_v = cache_type(s.cache_type_v);
    // One KV stream per sequence: a request attends only to its own cells.
    cp.kv_unified = false;
    cp.no_perf = true;
    cp.abort_callback = [](void* data) { return static_cast<DecodeLoop*>(data)->abort_.load(); };
    cp.abort_callback_data = loop.get();
    uint32_t input_limit = 0;
    if (s.embedding) {
        Status st = embed_context_params(*model, s, &cp, &input_limit, error);
        if (st != Status::ok) return st;
    }

    loop->ctx_ = llama_init_from_model(model->get(), cp);
    if (!loop->ctx_) {
        *error = "llama.cpp could not create a context (n_ctx " + std::to_string(cp.n_ctx) + ", " +
                 std::to_string(cp.n_seq_max) + " sequences): out of memory or bad cache type";
        return Status::missing_memory;
    }
    // ggml aborts the process when it cannot start a pool's worker thread.
    if (!threads_available(cp.n_threads + cp.n_threads_batch)) {
        *error = "cannot start " + std::to_string(cp.n_threads + cp.n_threads_batch) +
                 " threads for the decode loop (the process's thread limit)";
        return Status::missing_memory;
    }
    loop->threads_ = std::make_unique<LoopThreads>(loop->ctx_, cp.n_threads, cp.n_threads_batch);
    const bool on_cpus = !model->info().fully_offloaded;
    if (on_cpus && CpuArbiter::enabled()) loop->cpus_ = &CpuArbiter::shared();
    const int widest = std::max(cp.n_threads, cp.n_threads_batch);
    if (on_cpus && !s.threads_exact && widest > 1 && adapt_threads()) {
        loop->governor_ = std::make_unique<ThreadGovernor>(widest);
        loop->governed_ = loop->governor_->current();
        loop->idle_cpus_ = std::make_unique<IdleCpus>();
    }
    loop->threads_exact_ = s.threads_exact;
    loop->model_ = std::move(model);
    loop->ctx_per_seq_ = llama_n_ctx_seq(loop->ctx_);
    loop->n_batch_ = llama_n_batch(loop->ctx_);
    loop->prefill_chunk_ = s.prefill_chunk;
    loop->batch_ = llama_batch_init(static_cast<int32_t>(loop->n_batch_), 0, 1);
    loop->warn_threshold_ = s.queue_warning_threshold;
    loop->queue_ = std::make_unique<RequestQueue>(s.queue);
    loop->kv_identity_ = kv_identity_string(kv_identity_of(loop->model_->info(), s, loop->ctx_per_seq_));
    DecodeLoop* raw = loop.get();
    loop->cache_ = std::make_unique<StateCache>(s.host_cache_bytes, [raw](CachedState& st) { raw->evicted(st); });
    loop->max_cache_tokens_ = s.max_cache_tokens;
    loop->max_rss_bytes_ = s.max_rss_bytes;
    // An embedding loop has no generation slots (loop_embed.cpp).
    loop->slots_.resize(s.embedding ? 0 : cp.n_seq_max);
    loop->resident_.resize(loop->slots_.size());
    {
        // K and V rows of every layer, for each cell.
        const llama_model* m = loop->model_->get();
        const int64_t head_dim = llama_model_n_embd(m) / std::max(1, llama_model_n_head(m));
        const int64_t kv_width = head_dim * llama_model_n_head_kv(m);
        loop->kv_bytes_per_cell_ = static_cast<uint64_t>(llama_model_n_layer(m)) *
                                   (ggml_row_size(cp.type_k, kv_width) + ggml_row_size(cp.type_v, kv_width));
    }
    for (size_t i = 0; i < loop->slots_.size(); ++i) loop->slots_[i].seq = static_cast<llama_seq_id>(i);
    if (s.embedding) loop->embed_init(s, input_limit);
    // The llama.cpp and ggml statics a context needs exist now: a teardown
    // registered after them runs before they are destroyed.
    arm_exit_teardown();
    {
        LiveLoops& live = live_loops();
        std::lock_guard<std::mutex> lock(live.mu);
        if (live.closed) {
            *error = "the process is exiting";
            return Status::runtime_error;
        }
        auto& v = live.loops;
        v.erase(std::remove_if(v.begin(), v.end(), [](const auto& w) { return w.expired(); }), v.end());
        v.push_back(loop);
        loop->sampling_ = std::make_unique<SampleWorker>([raw = loop.get()] {
            std::lock_guard<std::mutex> lock(raw->mu_);  // the loop checks for done jobs under it
            raw->cv_.notify_all();
        });
        try {
            loop->thread_ = std::thread([raw = loop.get()] { raw->run(); });
        } catch (const std::system_error& e) {  // EAGAIN: no thread left for this process
            *error = std::string("cannot start the decode loop's thread: ") + e.what();
            return Status::missing_memory;
        }
    }
    log(LogLevel::info, "scheduler", "decode loop started",
        {{"model", loop->model_->info().name}, {"slots", cp.n_seq_max}, {"ctx_per_seq", loop->ctx_per_seq_},
         {"n_batch", loop->n_batch_}, {"threads", cp.n_threads}, {"threads_batch", cp.n_threads_batch},
         {"adapts_threads", loop->governor_ != nullptr}});
    *out = std::move(loop);
    return Status::ok;
}

DecodeLoop::~DecodeLoop() {
    halt("the model was unloaded");
    if (batch_.token) llama_batch_free(batch_);
    // Once the process is exiting, llama.cpp's statics may be gone already:
    // what is left is left to the end of the process.
    if (ctx_ && !process_exiting()) llama_free(ctx_);
}

void DecodeLoop::halt(const std::string& why) {
    std::lock_guard<std::mutex> halt_lock(halt_mu_);
    if (halted_) return;
    halted_ = true;
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    abort_ = true;
    cv_.notify_all();
    if (cpus_) cpus_->wake();
    if (thread_.joinable()) thread_.join();
    if (sampling_) sampling_->drain();  // no slot's sampler may still be in use
    for (auto& slot : slots_) {
        slot.sampling = false;
        if (slot.req) finish(slot, Status::runtime_error, "cancelled", why);
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& job : saves_) job.done->set_value();  // nothing more is saved
        saves_.clear();
    }
    embed_fail_all(Status::runtime_error, "cancelled", why);
    sampling_.reset();
    std::vector<std::shared_ptr<Request>> queued;
    if (queue_) {
        std::lock_guard<std::mutex> lock(mu_);
        queued = queue_->take_all();
    }
    for (auto& r : queued) {
        RequestResult res;
        res.status = Status::runtime_error;
        res.stop_reason = "cancelled";
        res.error = why;
        r->finish(std::move(res));
    }
    // No decode runs any more: the pools' worker threads can go, so that
    // none is left running this library's code once it is unloaded.
    if (threads_) threads_->release();
    if (cpus_ && marked_busy_) {
        cpus_->set_busy(false);
        marked_busy_ = false;
    }
}

void DecodeLoop::halt_all(const std::string& why) {
    std::vector<std::shared_ptr<DecodeLoop>> loops;
    {
        LiveLoops& live = live_loops();
        std::lock_guard<std::mutex> lock(live.mu);
        live.closed = true;
        for (const auto& w : live.loops) {
            if (auto l = w.lock()) loops.push_back(std::move(l));
        }
    }
    for (auto& l : loops) l->halt(why);
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
        const size_t free_slots = embedding_ ? embed_room() : slots_.size() - busy_slots_;
        // A request a swap handed back was within both once: it is not
        // refused for them again.
        if (!req->resubmitted && queue_->over_share(*req, free_slots)) {
            stats_.counters.rejected++;
            *error = "this backend context holds its share of the queue (queue_share " +
                     std::to_string(req->queue_share) + " of " + std::to_string(queue_->settings().capacity) + ")";
            return Status::busy;
        }
        const size_t room = req->resubmitted ? std::numeric_limits<size_t>::max() / 2 : free_slots;
        if (!queue_->push(req, Clock::now(), room)) {
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

std::vector<std::shared_ptr<Request>> DecodeLoop::take_queued(const void* owner) {
    std::lock_guard<std::mutex> lock(mu_);
    auto taken = queue_->take_owned_by(owner);
    stats_.counters.handed_back += taken.size();
    return taken;
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
    s.n_slots = static_cast<uint32_t>(embedding_ ? embed_room() + busy_slots_ : slots_.size());
    s.prefill_chunk = embedding_ ? 0 : prefill_chunk_;
    s.threads = threads_->threads();
    s.threads_batch = threads_->threads_batch();
    s.threads_exact = threads_exact_;
    s.shares_cpus = cpus_ != nullptr;
    s.adapts_threads = governor_ != nullptr;
    s.governed = governed_;
    s.governor = governor_stats_;
    s.last_step_threads = last_step_.width;
    s.last_step_quiet = last_step_.quiet;
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
    s.states_stored = stored_;
    s.states_restored_from_store = restored_from_store_;
    return s;
}

void DecodeLoop::forget_session(const std::string& key) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        forget_.push_back(key);
    }
    cv_.notify_all();
}

void DecodeLoop::run() {
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            auto idle = [&] {
                return std::none_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.req != nullptr; }) &&
                       embed_running_.empty();
            };
            auto nothing = [&] { return idle() && queue_->size() == 0 && forget_.empty() && saves_.empty(); };
            if (marked_busy_ && nothing()) {
                cpus_->set_busy(false);  // other models' loops may widen again
                marked_busy_ = false;
            }
            if (nothing()) {
                sampling_idle_ = false;  // the CPUs this loop left idle say nothing of others
                while (!stopping_ && nothing()) cv_.wait(lock);
            }
            if (stopping_) return;
        }
        // The last line of defence: what a step throws that no narrower
        // handler caught ends the requests it may have left half done, never
        // the loop (an exception escaping this thread ends the process).
        try {
            if (!step()) return;  // unloading: the destructor ends the requests
        } catch (const std::bad_alloc&) {
            fail_running(Status::missing_memory, "out of memory in the decode loop");
        } catch (const std::exception& e) {
            std::string why = "internal error in the decode loop";
            try {
                why += std::string(": ") + e.what();
            } catch (...) {
            }
            fail_running(Status::runtime_error, why);
        } catch (...) {
            fail_running(Status::runtime_error, "internal error in the decode loop");
        }
    }
}

bool DecodeLoop::step() {
    apply_saves();
    apply_forgets();
    if (embedding_) return embed_step();
    collect_samples();
    admit_waiting(Clock::now());
    end_idle_requests();
    build_batch();
    if (batch_.n_tokens == 0) {
        if (any_sampling()) wait_for_samples();
        return true;
    }
    int32_t rc = 0;
    if (!decode_batch(&rc)) return false;
    if (rc != 0) {
        log(LogLevel::error, "scheduler", "llama_decode failed", {{"rc", rc}, {"tokens", batch_.n_tokens}});
        fail_batch("llama_decode failed with code " + std::to_string(rc));
        return true;
    }
    sample_batch();
    return true;
}

void DecodeLoop::fail_running(Status status, const std::string& why) noexcept {
    try {
        log(LogLevel::error, "scheduler", "decode loop step failed; its running requests end", {{"error", why}});
    } catch (...) {
    }
    if (sampling_) sampling_->drain();
    for (auto& slot : slots_) {
        slot.sampling = false;
        if (slot.req) finish(slot, status, "error", why);
    }
    embed_fail_all(status, "error", why);
    common_batch_clear(batch_);
}

}  // namespace wnl
