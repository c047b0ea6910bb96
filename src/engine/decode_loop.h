// One llama_context and one thread per served model: every request from
// every backend context is batched into the same llama_decode calls
// (continuous batching with chunked prefill), as llama.cpp's server does with
// its slots.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/cpu_arbiter.h"
#include "engine/idle_cpus.h"
#include "engine/loop_sampling.h"
#include "engine/loop_stats.h"
#include "engine/loop_slot.h"
#include "engine/loop_threads.h"
#include "engine/model.h"
#include "engine/request.h"
#include "engine/request_queue.h"
#include "engine/sampler.h"
#include "engine/state_cache.h"
#include "engine/stop_matcher.h"
#include "engine/thread_governor.h"

namespace wnl {

struct LoopSettings {
    uint32_t n_slots = 4;  // requests decoded at once (max_concurrent)
    uint32_t ctx_per_seq = 0;  // 0 = min(n_ctx_train, 4096, ctx_limit)
    uint32_t ctx_limit = 0;  // the host's ceiling on ctx_size, for the 0 (auto) case; 0 = none
    uint32_t n_batch = 512;
    uint32_t n_ubatch = 512;
    // The most prompt tokens one step takes while other requests share the
    // loop, so that their tokens keep coming during a long prefill; 0 = n_batch.
    uint32_t prefill_chunk = 64;
    int32_t threads = 0;
    int32_t threads_batch = 0;
    // Keep threads and threads_batch as asked, even above the usable CPUs,
    // and never narrow them for a busy host (ThreadGovernor).
    bool threads_exact = false;
    std::string flash_attn = "auto";
    std::string cache_type_k = "f16";
    std::string cache_type_v = "f16";
    QueueSettings queue;
    int32_t queue_warning_threshold = 0;
    uint64_t host_cache_bytes = 0;  // 0 = no host-RAM state cache
    int64_t max_cache_tokens = 0;  // longer states are not cached; 0 = no bound
    uint64_t max_rss_bytes = 0;
    // An embedding graph's loop (loop_embed.cpp): embeddings on, this pooling
    // (LLAMA_POOLING_TYPE_UNSPECIFIED = the model's, mean when it names none).
    bool embedding = false;
    int32_t pooling = -1;
    // The most tokens one decode packs from several inputs; an input longer
    // than this goes alone.
    uint32_t embed_batch_tokens = 512;

    // Requests that can share a loop must agree on all of the above.
    std::string share_key() const;
};

// A consistent copy of a loop's state, for status reports.
struct LoopSnapshot {
    LoopCounters counters;
    Throughput recent, lifetime;
    double queue_wait_p50 = 0, queue_wait_p99 = 0;
    double latency_p50 = 0, latency_p95 = 0, latency_p99 = 0;
    double ttft_p50 = 0, ttft_p95 = 0, ttft_p99 = 0;
    std::array<size_t, kPriorityCount> queue_depth{};
    size_t queue_capacity = 0;
    int32_t queue_warning_threshold = 0;
    uint32_t n_slots = 0;
    uint32_t prefill_chunk = 0;  // 0: none, or an embedding graph's loop
    int32_t threads = 0, threads_batch = 0;  // used: asked, or the default, within the CPUs
    bool threads_exact = false;
    bool shares_cpus = false;  // takes turns with other models' loops (CpuArbiter)
    bool adapts_threads = false;  // has a ThreadGovernor
    ThreadChoice governed;  // the governor's current setting
    GovernorStats governor;
    int32_t last_step_threads = 0;  // threads the last llama_decode ran on
    bool last_step_quiet = false;
    uint32_t busy_slots = 0;
    uint64_t kv_cells_used = 0;
    uint64_t kv_cells_total = 0;
    uint64_t kv_bytes_per_cell = 0;
    uint64_t host_cache_bytes = 0;
    uint64_t host_cache_entries = 0;
    uint64_t host_cache_limit = 0;
    uint64_t host_cache_evictions = 0;
    uint64_t states_saved = 0;
    uint64_t states_restored = 0;
    uint64_t states_stored = 0;  // handed to a session store
    uint64_t states_restored_from_store = 0;
    std::vector<std::string> resident_sessions;  // sessions whose KV a slot holds
};

class DecodeLoop {
public:
    static Status create(std::shared_ptr<Model> model, const LoopSettings& s,
                         std::shared_ptr<DecodeLoop>* out, std::string* error);
    ~DecodeLoop();
    DecodeLoop(const DecodeLoop&) = delete;
    DecodeLoop& operator=(const DecodeLoop&) = delete;

    // Queues the request; busy when the queue is full (a resubmitted one
    // is never refused for that). The caller then waits on the request
    // itself.
    Status submit(const std::shared_ptr<Request>& req, std::string* error);
    // Takes the queued requests built for `owner` out of the queue, not
    // started; requests already in a slot run on. For a swap.
    std::vector<std::shared_ptr<Request>> take_queued(const void* owner);

    const Model& model() const { return *model_; }
    uint32_t ctx_per_seq() const { return ctx_per_seq_; }
    uint32_t n_slots() const { return static_cast<uint32_t>(slots_.size()); }
    LoopSnapshot snapshot() const;

    // The session is gone: its cached state is dropped, and a slot holding
    // its KV no longer keeps it for it.
    void forget_session(const std::string& key);

    // Session stores (docs/sessions.md). What a stored KV state must have
    // been written by to be restored here (kv_file.h), and the most bytes
    // one can take.
    const std::string& kv_identity() const { return kv_identity_; }
    uint64_t max_state_bytes() const;
    // Whether a slot or the host cache holds the session's state (a hint:
    // it may change at any time).
    bool holds_state(const std::string& key) const;
    // Hands the state of every idle session whose key starts with `prefix`
    // to its store (deinit_backend); waits up to `timeout` for the loop to
    // have done so.
    bool save_sessions(const std::string& prefix, std::chrono::milliseconds timeout);
    // Stops the loop thread, ends every running and queued request with
    // runtime_error (`why`) and frees the thread pools; later submits fail.
    // Idempotent; the destructor calls it. Never call it on the loop thread.
    void halt(const std::string& why);
    // Halts every live loop in the process and lets no new one start: the
    // exit teardown (process_exit.h), for loops that calls still in flight
    // keep alive.
    static void halt_all(const std::string& why);

    // Embedding graphs: the pooling in use, the size of each input's output
    // vector, and the most tokens one input may have (ctx_per_seq()).
    bool embedding() const { return embedding_; }
    enum llama_pooling_type pooling() const { return pooling_; }
    int32_t n_embd_out() const { return n_embd_out_; }

private:
    using Slot = LoopSlot;

    DecodeLoop() = default;
    // decode_loop.cpp: the loop itself, one step per llama_decode; false
    // when unloading.
    void run();
    bool step();
    // Ends every running request after a step threw (its state is unknown).
    void fail_running(Status status, const std::string& why) noexcept;

    // loop_admission.cpp (scheduling): queued requests into free slots.
    void admit_waiting(Clock::time_point now);
    // Ends requests that were cancelled or passed their deadline in the queue.
    void end_expired(std::vector<std::shared_ptr<Request>>& expired, Clock::time_point now);
    // The free slot for a request: the longest cached prefix, or its
    // session's state from the host cache restored into the oldest one.
    Slot& place(Request& req);
    void start(Slot& slot, std::shared_ptr<Request> req, Clock::time_point now);

    // loop_kv.cpp (KV placement and memory pressure).
    // Keeps the longest cached prefix of the slot's sequence that the
    // request's prompt starts with; returns its length.
    size_t reuse_prefix(Slot& slot, const Request& req);
    void park(Slot& slot, const std::string& incoming);
    void restore(Slot& slot, CachedState state, bool from_store);
    // The slot's state as llama_state_seq_get_data gives it; false if none.
    bool read_state(Slot& slot, CachedState* out);
    bool cacheable(size_t n_tokens) const { return max_cache_tokens_ <= 0 || static_cast<int64_t>(n_tokens) <= max_cache_tokens_; }
    void apply_saves();
    void evicted(CachedState& state);
    bool shift_context(Slot& slot);
    void apply_forgets();
    void check_rss();

    // loop_step.cpp (the batch step): build, decode, sample, finish.
    // Requests cancelled, or with nothing to generate, end before decoding.
    void end_idle_requests();
    // Fills batch_: a token for each generating slot, then prompt chunks.
    void build_batch();
    // Runs llama_decode on the CPUs the arbiter grants; false when unloading.
    bool decode_batch(int32_t* rc);
    void publish_step(double decode_ms, double wait_ms, ThreadChoice ran);
    // Tells the governor how the step went, and logs what it decided.
    void govern(double decode_ms, bool as_chosen);
    // Every slot with logits in the batch: its token sampled, or its row
    // handed to the sampling thread.
    void sample_batch();
    // Samples the slot's token now, or hands a grammar request's row to the
    // sampling thread (then false: nothing more to do this step).
    bool offload(Slot& slot);
    void after_decode(Slot& slot);
    // A sampled token's consequences: end of generation, the text, the stop
    // checks. nothing_allowed: the sampler found no token it may pick.
    void take_token(Slot& slot, llama_token token, bool nothing_allowed);
    // Tokens the sampling thread has finished, into their slots.
    void collect_samples();
    bool any_sampling() const;
    // With nothing to decode while tokens are being sampled off the loop:
    // sleeps until one is ready (or a request arrives, or unloading).
    void wait_for_samples();
    // Runs a slot's step so that what it throws (llama.cpp's sampler and
    // grammar, detokenising, the text callback) ends that request only.
    template <class F>
    void guard_slot(Slot& slot, F&& step) noexcept;
    void fail_batch(const std::string& why);
    // Never throws: a result that cannot be built (out of memory) still
    // reaches the caller, as missing_memory.
    void finish(Slot& slot, Status status, const std::string& stop_reason, const std::string& error = "") noexcept;

    // loop_embed.cpp (embedding graphs): every running request's inputs are
    // packed into one decode, each input its own sequence and whole.
    struct EmbedRun {
        std::shared_ptr<Request> req;
        Clock::time_point t_admit;
        uint64_t tick = 0;
    };
    struct EmbedSeq {  // one sequence of the batch being decoded
        size_t run;  // index in embed_running_
        size_t input;
        int32_t first;  // its first row in batch_
        int32_t n_tokens;
    };
    // Sizes the context for embeddings; see loop_embed.cpp.
    static Status embed_context_params(const Model& model, const LoopSettings& s, llama_context_params* cp,
                                       uint32_t* input_limit, std::string* error);
    void embed_init(const LoopSettings& s, uint32_t input_limit);
    // One llama_decode over the queued and running requests; false when unloading.
    bool embed_step();
    void embed_admit(Clock::time_point now);
    void embed_build();
    void embed_collect();
    // Never throw (as finish): the caller always gets its result.
    void embed_finish(EmbedRun& run, Status status, const std::string& stop_reason,
                      const std::string& error = "") noexcept;
    void embed_fail_all(Status status, const std::string& stop_reason, const std::string& why) noexcept;
    size_t embed_room() const;

    std::shared_ptr<Model> model_;
    llama_context* ctx_ = nullptr;
    std::unique_ptr<LoopThreads> threads_;
    CpuArbiter* cpus_ = nullptr;  // null when the model runs on a GPU
    std::unique_ptr<ThreadGovernor> governor_;  // loop thread only; null when not adapting
    // Loop thread only: the idle-CPU hint the governor takes while narrowed.
    std::unique_ptr<IdleCpus> idle_cpus_;
    bool sampling_idle_ = false;
    Clock::time_point idle_sampled_at_{};
    bool threads_exact_ = false;
    bool marked_busy_ = false;  // told cpus_ this loop has work (loop thread only)
    llama_batch batch_{};
    uint32_t ctx_per_seq_ = 0;
    uint32_t n_batch_ = 0;
    uint32_t prefill_chunk_ = 0;
    int32_t warn_threshold_ = 0;
    std::vector<Slot> slots_;
    uint64_t use_tick_ = 0;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::unique_ptr<RequestQueue> queue_;  // guarded by mu_
    LoopStats stats_;  // guarded by mu_
    uint64_t kv_used_ = 0;  // guarded by mu_
    // Guarded by mu_: copies of the governor's state, and the last step's threads.
    ThreadChoice governed_{};
    GovernorStats governor_stats_{};
    ThreadChoice last_step_{};
    std::vector<std::string> resident_;  // guarded by mu_: session whose KV each slot holds
    uint64_t kv_bytes_per_cell_ = 0;
    std::vector<std::string> forget_;  // guarded by mu_
    struct SaveJob {
        std::string prefix;
        std::shared_ptr<std::promise<void>> done;
    };
    std::vector<SaveJob> saves_;  // guarded by mu_
    std::string kv_identity_;
    std::unique_ptr<StateCache> cache_;  // loop thread only (sizes are atomics)
    int64_t max_cache_tokens_ = 0;
    uint64_t max_rss_bytes_ = 0;
    std::atomic<uint64_t> saved_{0}, restored_{0}, stored_{0}, restored_from_store_{0};
    Clock::time_point last_rss_check_{};
    size_t busy_slots_ = 0;  // guarded by mu_
    bool stopping_ = false;
    std::atomic<bool> abort_{false};
    std::unique_ptr<SampleWorker> sampling_;  // its thread starts with the first grammar request
    std::mutex halt_mu_;
    bool halted_ = false;  // guarded by halt_mu_
    std::thread thread_;

    bool embedding_ = false;
    enum llama_pooling_type pooling_ = LLAMA_POOLING_TYPE_NONE;
    int32_t n_embd_out_ = 0;
    uint32_t n_cls_out_ = 1;
    uint32_t embed_max_seqs_ = 1;  // sequences in one decode
    uint32_t embed_batch_tokens_ = 512;  // tokens one decode packs from several inputs
    std::vector<EmbedRun> embed_running_;  // loop thread only
    std::vector<EmbedSeq> embed_batch_;  // loop thread only
    int32_t embed_batch_requests_ = 0;  // requests with inputs in batch_
};

}  // namespace wnl
