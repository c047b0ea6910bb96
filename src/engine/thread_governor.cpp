#include "engine/thread_governor.h"

#include <algorithm>

namespace wnl {

namespace {

constexpr size_t kKeep = 24;  // recent steps kept at the current setting

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

ThreadGovernor::ThreadGovernor(int max_width, GovernorParams p) : max_width_(std::max(1, max_width)), p_(p) {
    cur_.width = max_width_;
}

bool ThreadGovernor::possible(Move m) const {
    switch (m) {
        case Move::down: return cur_.width > 1;
        // No CPU was idle: more threads would share them with the others.
        case Move::up: return cur_.width < max_width_ && !(idle_cpus_ >= 0 && idle_cpus_ < p_.idle_none);
        case Move::poll: return cur_.width > 1;  // one thread has no workers to poll
    }
    return false;
}

ThreadChoice ThreadGovernor::moved(Move m) const {
    ThreadChoice c = cur_;
    switch (m) {
        // Halving: while any of our threads shares a CPU, every barrier
        // waits for it, so one thread fewer is as slow as before until the
        // width fits the free CPUs; probes upward refine it one at a time.
        case Move::down: c.width = (c.width + 1) / 2; break;
        // Back at full width is back to ggml's defaults.
        case Move::up: c.width += 1; c.quiet = c.width < max_width_ && c.quiet; break;
        case Move::poll: c.quiet = !c.quiet; break;
    }
    return c;
}

bool ThreadGovernor::differ(const ThreadChoice& a, const ThreadChoice& b, int wanted) {
    const int wa = std::min(a.width, wanted), wb = std::min(b.width, wanted);
    return wa != wb || (a.quiet && wa > 1) != (b.quiet && wb > 1);
}

size_t ThreadGovernor::count(int n_tokens) const {
    return static_cast<size_t>(
        std::count_if(samples_.begin(), samples_.end(), [&](const Sample& s) { return s.n_tokens == n_tokens; }));
}

double ThreadGovernor::current_median(int n_tokens) const {
    std::vector<double> v;
    for (const auto& s : samples_) {
        if (s.n_tokens == n_tokens) v.push_back(s.ms);
    }
    return median(std::move(v));
}

// The move the next probe tries: after a sudden slowdown fewer threads
// (then quiet pools, if that lost); a narrower one still after a probe that
// was as slow as the current setting; the continuation of a move that just
// won; else, on the schedule, the neighbours in turn.
bool ThreadGovernor::pick(Move* move, ThreadChoice* alt) {
    if (chain_down_ > 0) {
        *move = Move::down;
        *alt = ThreadChoice{chain_down_, cur_.quiet};
        return true;
    }
    std::vector<Move> moves;
    if (poll_pending_) {
        if (possible(Move::poll) && !cur_.quiet) moves = {Move::poll};
    } else if (onset_pending_) {
        if (possible(Move::down)) moves = {Move::down};
        else if (possible(Move::poll) && !cur_.quiet) moves = {Move::poll};
    } else if (continue_ && possible(*continue_)) {
        moves = {*continue_};
    } else {
        for (Move m : {Move::up, Move::down, Move::poll}) {
            // Quiet pools are tried after a slowdown only; a scheduled probe
            // may turn them off again.
            if (possible(m) && (m != Move::poll || cur_.quiet)) moves.push_back(m);
        }
    }
    if (moves.empty()) return false;
    *move = moves[static_cast<size_t>(rotation_) % moves.size()];
    *alt = moved(*move);
    return true;
}

ThreadChoice ThreadGovernor::choose(int n_tokens, int wanted) {
    pending_ = true;
    last_n_tokens_ = n_tokens;
    last_probe_ = false;
    if (max_width_ <= 1) return cur_;
    const bool triggered = onset_pending_ || poll_pending_ || chain_down_ > 0;
    if (!probe_.active && (triggered || clock_ms_ >= next_probe_at_)) {
        Move m;
        ThreadChoice alt;
        if (!pick(&m, &alt)) {
            // Nothing to try from here (one thread, after a slowdown).
            onset_pending_ = poll_pending_ = false;
            chain_down_ = 0;
            continue_.reset();
            if (!triggered) schedule(0);
        } else if ((n_tokens == last_observed_ || n_tokens == 1) &&
                   count(n_tokens) >= static_cast<size_t>(p_.min_samples) && differ(alt, cur_, wanted)) {
            // A step of the size the last one had, or of one token (one
            // request generating): the next steps are likely of that size
            // too, so the probe can finish soon (a prompt's chunk comes once).
            probe_ = Probe{};
            probe_.active = true;
            probe_.move = m;
            probe_.alt = alt;
            probe_.n_tokens = n_tokens;
            probe_.after_onset = onset_pending_ || (chain_down_ > 0 && chain_after_onset_);
            if (!triggered && !continue_) ++rotation_;
            onset_pending_ = poll_pending_ = false;
            chain_down_ = 0;
            continue_.reset();
        }
        // else: wait for a step of a size with enough samples.
    }
    if (probe_.active) {
        if (probe_.n_tokens == n_tokens && differ(probe_.alt, cur_, wanted)) {
            last_probe_ = true;
            return probe_.alt;
        }
        if (++probe_.waited > p_.probe_patience) {
            // The workload changed shape: nothing to compare with.
            probe_ = Probe{};
            next_probe_at_ = clock_ms_ + p_.min_interval_ms;
        }
    }
    return cur_;
}

void ThreadGovernor::discard() { pending_ = false; }

void ThreadGovernor::set_idle_cpus(double idle) {
    idle_cpus_ = idle;
    if (idle >= 0 && idle < p_.idle_none) wider_lost_while_idle_ = false;
    // A CPU fell idle while narrowed (another process left): probe wider
    // now rather than at the next scheduled probe.
    if (idle >= p_.idle_free && possible(Move::up) && !wider_lost_while_idle_ && !probe_.active &&
        !onset_pending_ && !poll_pending_ && chain_down_ == 0) {
        continue_ = Move::up;
        next_probe_at_ = clock_ms_;
    }
}

GovernorEvent ThreadGovernor::observe(double ms) {
    GovernorEvent ev;
    if (!pending_) return ev;
    pending_ = false;
    clock_ms_ += ms;
    last_observed_ = last_n_tokens_;
    if (last_probe_ && probe_.active) {
        probe_.ms.push_back(ms);
        const double current = current_median(probe_.n_tokens);
        if (ms > p_.give_up * current) return finish_probe(false, current, median(probe_.ms));
        if (probe_.ms.size() >= static_cast<size_t>(p_.probe_steps)) {
            const double probe = median(probe_.ms);
            return finish_probe(probe < current * (1 - p_.margin), current, probe);
        }
        return ev;
    }
    samples_.push_back({last_n_tokens_, ms});
    if (samples_.size() > kKeep) samples_.pop_front();
    check_onset(last_n_tokens_, &ev);
    return ev;
}

// Three steps in a row far slower than the ones before them at the same
// setting and size: the CPUs are no longer all ours. The older samples go,
// so that the probe compares with how the setting runs now.
void ThreadGovernor::check_onset(int n_tokens, GovernorEvent* ev) {
    if (probe_.active || onset_pending_ || poll_pending_) return;
    std::vector<double> v;
    for (const auto& s : samples_) {
        if (s.n_tokens == n_tokens) v.push_back(s.ms);
    }
    constexpr size_t kRecent = 3;
    if (v.size() < kRecent + 4) return;
    const double before = median(std::vector<double>(v.begin(), v.end() - kRecent));
    for (size_t i = v.size() - kRecent; i < v.size(); ++i) {
        if (v[i] <= p_.onset * before) return;
    }
    stats_.onsets++;
    ev->kind = GovernorEvent::onset;
    ev->from = ev->to = cur_;
    ev->current_ms = before;
    ev->probe_ms = median(std::vector<double>(v.end() - kRecent, v.end()));
    size_t older = v.size() - kRecent;
    for (auto it = samples_.begin(); it != samples_.end() && older > 0;) {
        if (it->n_tokens == n_tokens) {
            it = samples_.erase(it);
            --older;
        } else {
            ++it;
        }
    }
    onset_pending_ = possible(Move::down) || (possible(Move::poll) && !cur_.quiet);
}

GovernorEvent ThreadGovernor::finish_probe(bool won, double current, double probe) {
    GovernorEvent ev;
    ev.kind = won ? GovernorEvent::probe_won : GovernorEvent::probe_lost;
    ev.from = cur_;
    ev.to = probe_.alt;
    ev.current_ms = current;
    ev.probe_ms = probe;
    stats_.probes++;
    if (won) {
        switch (probe_.move) {
            case Move::down: stats_.narrowed++; break;
            case Move::up: stats_.widened++; break;
            case Move::poll: (probe_.alt.quiet ? stats_.quieted : stats_.unquieted)++; break;
        }
        cur_ = probe_.alt;
        if (cur_.width == max_width_) idle_cpus_ = -1;  // only used while narrowed
        samples_.clear();
        for (double ms : probe_.ms) samples_.push_back({probe_.n_tokens, ms});
        interval_ms_ = 0;
        if (probe_.move != Move::poll && possible(probe_.move)) {
            continue_ = probe_.move;  // one more step the same way, at once
            next_probe_at_ = clock_ms_;
        } else {
            // Going back is what just lost: wait until that would be cheap.
            const double steps = probe > 0 && current / probe > p_.give_up ? 1 : p_.probe_steps;
            schedule((current - probe) * steps);
        }
    } else {
        double cost = 0;
        for (double ms : probe_.ms) cost += std::max(0.0, ms - current);
        if (probe_.move == Move::down && probe_.alt.width > 1 && probe <= current * (1 + p_.margin)) {
            // As slow, not slower: still more threads than free CPUs. Halve again, at once.
            chain_down_ = (probe_.alt.width + 1) / 2;
            chain_after_onset_ = probe_.after_onset;
        } else {
            if (probe_.move == Move::up && idle_cpus_ >= p_.idle_none) wider_lost_while_idle_ = true;
        if (probe_.after_onset && probe_.move == Move::down && possible(Move::poll) && !cur_.quiet) {
                poll_pending_ = true;  // fewer threads did not help: try quiet pools
            }
            schedule(cost);
        }
    }
    probe_ = Probe{};
    ev.next_probe_in_ms = next_probe_at_ - clock_ms_;
    return ev;
}

void ThreadGovernor::schedule(double cost_ms) {
    interval_ms_ = std::clamp(std::max(interval_ms_ * 2, cost_ms / p_.budget), p_.min_interval_ms, p_.max_interval_ms);
    next_probe_at_ = clock_ms_ + interval_ms_;
}

}  // namespace wnl
