// Streaming (compute_single, get_output_single, fini_single), with
// WasmEdge's names and meaning, over the same turn as compute(): the
// request's text reaches the caller piece by piece as the decode loop makes
// it safe to show (no partial stop string, whole UTF-8 characters).
#include "engine/backend.h"
#include "engine/log.h"

namespace wnl {

Status Backend::compute_single(uint32_t exec) {
    ExecClaim e = claim_exec(exec, "compute_single");
    if (!e) return e.status();
    std::shared_ptr<Turn> turn = e->stream;
    if (!turn) {
        turn = std::make_shared<Turn>();
        Status st = start_turn(*e, turn.get(), true);
        if (st != Status::ok) return st;
        std::lock_guard<std::mutex> lock(e->inflight_mu);
        e->stream = turn;
    }
    if (turn->ended) return turn->end_status;  // at the end until fini_single
    for (;;) {
        std::string piece;
        if (turn->req->take_text(&piece)) {
            turn->piece = std::move(piece);
            return Status::ok;
        }
        turn->piece.clear();
        const RequestResult& res = turn->req->wait();
        if (res.moved) {
            // Handed back unstarted by a swap (so nothing was streamed yet):
            // the stream goes on from the new model.
            Status st = restart_turn(*e, turn.get(), true);
            if (st == Status::ok) continue;
            turn->end_status = st;
            return st;
        }
        if (turn->ended.exchange(true)) return Status::runtime_error;  // closed meanwhile
        Status st = end_turn(*e, *turn, res, false);
        turn->end_status = st == Status::ok ? Status::end_of_sequence : st;
        return turn->end_status;
    }
}

Status Backend::get_output_single(uint32_t exec, uint32_t index, std::string* out) {
    ExecClaim e = claim_exec(exec, "get_output_single");
    if (!e) return e.status();
    if (index > 1) {
        log(LogLevel::error, "abi", "get_output_single: index must be 0 (text) or 1 (metadata)", {{"index", index}});
        return Status::invalid_argument;
    }
    const std::shared_ptr<Turn>& turn = e->stream;
    if (!turn) {
        log(LogLevel::error, "abi", "get_output_single: no stream open; call compute_single first", {{"exec", exec}});
        return Status::not_found;
    }
    if (index == 0) {
        *out = turn->piece;
        return Status::ok;
    }
    if (!turn->ended) {
        log(LogLevel::error, "abi",
            "get_output_single: the metadata is ready once compute_single has returned end_of_sequence",
            {{"exec", exec}});
        return Status::not_found;
    }
    *out = e->metadata;
    return Status::ok;
}

Status Backend::fini_single(uint32_t exec) {
    ExecClaim e = claim_exec(exec, "fini_single", true);
    if (!e) return e.status();
    if (!e->stream) {
        log(LogLevel::debug, "abi", "fini_single: no stream open", {{"exec", exec}});
        return Status::ok;
    }
    // Recorded (and, with a session store, stored) before it returns: a
    // success acknowledges the turn.
    Status st = close_stream(*e, true);
    std::lock_guard<std::mutex> lock(e->inflight_mu);
    e->stream.reset();
    return st;
}

Status Backend::close_stream(ExecContext& e, bool record) {
    std::shared_ptr<Turn> turn;
    std::shared_ptr<Request> req;
    {
        // A swap may replace the turn's request: the one published now is
        // the one to end.
        std::lock_guard<std::mutex> lock(e.inflight_mu);
        turn = e.stream;
        if (turn) req = turn->req;
    }
    if (!turn || turn->ended) return Status::ok;
    req->cancelled = true;  // the loop ends it within one decode step
    const RequestResult& res = req->wait();
    if (turn->ended.exchange(true)) return Status::ok;
    if (record) {
        bool store_failed = false;
        Status st = end_turn(e, *turn, res, true, &store_failed);
        turn->end_status = store_failed ? st : Status::end_of_sequence;
        return store_failed ? st : Status::ok;
    }
    abandon_turn(e, *turn);
    return Status::ok;
}

}  // namespace wnl
