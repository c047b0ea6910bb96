// KV placement inside a decode loop: which tokens each sequence keeps, the
// host-RAM cache that parked sessions' state goes to and comes back from,
// context shifts, and what memory pressure takes away.
#include <chrono>
#include <new>

#include "engine/decode_loop.h"
#include "engine/log.h"
#include "engine/process_memory.h"

namespace wnl {

// At least one prompt token is decoded again, so that there are logits to
// sample from. Another tenant's tokens are never a prefix.
size_t DecodeLoop::reuse_prefix(Slot& slot, const Request& req) {
    size_t common = 0;
    if (req.memory.cache_prompt && slot.kv_tenant == req.kv_tenant) {
        const size_t limit = std::min(slot.cached.size(), req.prompt.size() - 1);
        while (common < limit && slot.cached[common] == req.prompt[common]) ++common;
    }
    llama_memory_t mem = llama_get_memory(ctx_);
    if (!llama_memory_seq_rm(mem, slot.seq, static_cast<llama_pos>(common), -1)) {
        llama_memory_seq_rm(mem, slot.seq, -1, -1);
        common = 0;
    }
    slot.cached.resize(common);
    return common;
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
            if (slot.session != key) continue;
            if (slot.req) {
                slot.forget_session = true;
            } else {
                slot.session.clear();
                slot.kv_sink.reset();
            }
        }
    }
}

bool DecodeLoop::read_state(Slot& slot, CachedState* out) {
    auto data = std::make_shared<std::vector<uint8_t>>(llama_state_seq_get_size(ctx_, slot.seq));
    const size_t n = llama_state_seq_get_data(ctx_, data->data(), data->size(), slot.seq);
    if (n == 0) return false;
    data->resize(n);
    out->key = slot.session;
    out->kv_tenant = slot.kv_tenant;
    out->tokens = slot.cached;
    out->data = std::move(data);
    out->sink = slot.kv_sink;
    return true;
}

// Before a slot's KV is overwritten for another session, its owner's state
// goes to the host cache, to be restored on that session's next turn, and
// to the session store when the session is stored there.
void DecodeLoop::park(Slot& slot, const std::string& incoming) {
    if (slot.session.empty() || slot.session == incoming || slot.cached.empty()) return;
    const bool to_cache = cache_->limit() > 0;
    if ((!to_cache && !slot.kv_sink) || !cacheable(slot.cached.size())) return;
    const std::string owner = slot.session;
    // Without memory for the copy the state is not kept: the session's next
    // turn prefills from its text (or its store's older file) instead, and
    // the incoming request goes on.
    try {
        CachedState state;
        const bool got = read_state(slot, &state);
        slot.session.clear();
        slot.kv_sink.reset();
        if (!got) return;
        if (state.sink) {
            state.on_disk = state.sink->save(kv_identity_, state.tokens, state.data);
            if (state.on_disk) stored_++;
        }
        log(LogLevel::debug, "memory", "session state parked",
            {{"session", state.key}, {"tokens", state.tokens.size()}, {"bytes", state.bytes()},
             {"host_cache", to_cache}, {"store", state.on_disk}});
        if (!to_cache) return;
        cache_->put(std::move(state));
        saved_++;
    } catch (const std::bad_alloc&) {
        slot.session.clear();
        slot.kv_sink.reset();
        log(LogLevel::warn, "memory", "out of memory saving a session's state; it will prefill again",
            {{"session", owner}});
    }
}

// A state the host cache's bound pushes out goes to the store if the store
// does not have it yet.
void DecodeLoop::evicted(CachedState& state) {
    if (!state.sink || state.on_disk) return;
    state.on_disk = state.sink->save(kv_identity_, state.tokens, state.data);
    if (state.on_disk) stored_++;
}

void DecodeLoop::restore(Slot& slot, CachedState state, bool from_store) {
    llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
    slot.cached.clear();
    if (!state.data || llama_state_seq_set_data(ctx_, state.data->data(), state.data->size(), slot.seq) == 0) {
        log(LogLevel::warn, "memory", "restoring cached session state failed; prefilling again",
            {{"session", state.key}, {"from", from_store ? "store" : "host_cache"}});
        llama_memory_seq_rm(llama_get_memory(ctx_), slot.seq, -1, -1);
        return;
    }
    slot.cached = std::move(state.tokens);
    slot.session = state.key;
    slot.kv_tenant = state.kv_tenant;
    slot.kv_sink = std::move(state.sink);
    restored_++;
    if (from_store) restored_from_store_++;
}

void DecodeLoop::apply_saves() {
    std::vector<SaveJob> jobs;
    {
        std::lock_guard<std::mutex> lock(mu_);
        jobs.swap(saves_);
    }
    for (auto& job : jobs) {
        auto ours = [&](const std::string& key) { return key.compare(0, job.prefix.size(), job.prefix) == 0; };
        // A state there is no memory to copy is not written: that session
        // prefills from its text after the restart.
        try {
            for (auto& slot : slots_) {
                if (slot.req || !slot.kv_sink || slot.cached.empty() || !ours(slot.session)) continue;
                if (!cacheable(slot.cached.size())) continue;
                CachedState state;
                if (read_state(slot, &state) && slot.kv_sink->save(kv_identity_, state.tokens, state.data)) stored_++;
            }
            cache_->for_each([&](CachedState& state) {
                if (state.on_disk || !state.sink || !ours(state.key)) return;
                state.on_disk = state.sink->save(kv_identity_, state.tokens, state.data);
                if (state.on_disk) stored_++;
            });
        } catch (const std::bad_alloc&) {
            log(LogLevel::warn, "store", "out of memory writing sessions' KV state at deinit; they will prefill");
        }
        job.done->set_value();
    }
}

bool DecodeLoop::save_sessions(const std::string& prefix, std::chrono::milliseconds timeout) {
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> saved = done->get_future();
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return false;
        saves_.push_back({prefix, std::move(done)});
    }
    cv_.notify_all();
    return saved.wait_for(timeout) == std::future_status::ready;
}

bool DecodeLoop::holds_state(const std::string& key) const {
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& r : resident_) {
            if (r == key) return true;
        }
    }
    return cache_->contains(key);
}

// A whole context's cells, their metadata, and the file's own header.
uint64_t DecodeLoop::max_state_bytes() const {
    return static_cast<uint64_t>(ctx_per_seq_) * (kv_bytes_per_cell_ + 64) + (4u << 20);
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

}  // namespace wnl
