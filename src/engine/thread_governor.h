// How many threads a decode loop computes with when other processes take
// some of the CPUs, decided from the loop's own step times alone.
//
// ggml's workers spin at every barrier of a graph. When one of them shares
// its CPU with another process, every barrier waits for it to be scheduled
// again, and a step takes several times longer than on fewer threads that
// each have a CPU. Neither the loop nor the kernel knows ahead how many
// CPUs are free; the step times do. So the governor measures: it keeps the
// recent step times of the current setting, and now and then runs a few
// steps on another (a probe: half the threads or one more, or the pools'
// polling turned off) and keeps whichever is faster; a probe on half the
// threads that is just as slow goes on to half of that (still more threads
// than free CPUs: they all wait at the barriers alike). It probes
// - at once when steps get much slower than they were (others took CPUs),
//   narrower first, and if narrowing did not help, with quiet pools;
// - otherwise on a schedule counted in step time: a probe that lost costs
//   time, so the next one waits until that cost is at most `budget` of the
//   time since (and at least twice as long as the last wait); a probe that
//   won is followed at once by the next in the same direction.
// Steps are compared only with steps of the same size (tokens in the
// batch), taken close together, so that batch shape and context depth
// drift do not decide. While narrowed, it also takes a hint of how many of
// the process's CPUs were idle lately (IdleCpus): none, and it does not
// probe wider (that would surely lose, and a collapsed step can cost more
// than ten good ones); one or more, and it probes wider at once.
//
// A pure class: the caller measures and applies; tests feed it synthetic
// step times.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace wnl {

struct ThreadChoice {
    int width = 1;       // threads, at most
    bool quiet = false;  // pools whose workers sleep between graphs (ggml poll 0)

    bool operator==(const ThreadChoice& o) const { return width == o.width && quiet == o.quiet; }
    bool operator!=(const ThreadChoice& o) const { return !(*this == o); }
};

struct GovernorParams {
    double margin = 0.08;       // a probe wins when its median is this share below the current one
    double give_up = 1.5;       // a probe step this many times the current median loses at once
    double onset = 1.6;         // three steps this many times the earlier median: others took CPUs
    int probe_steps = 3;        // steps a probe runs when it does not give up earlier
    int min_samples = 1;        // steps of the size a probe compares, at the current setting
    int probe_patience = 8;     // steps a probe waits for one of its size before it is dropped
    double min_interval_ms = 200;  // of step time between scheduled probes...
    double max_interval_ms = 10000;
    double budget = 0.02;       // ...so that lost probes cost at most this share of it
    double idle_none = 0.5;     // idle CPUs below this: a wider probe cannot win
    double idle_free = 0.9;     // idle CPUs from this: probe wider at once
};

struct GovernorStats {
    uint64_t probes = 0;     // probes run to a decision
    uint64_t narrowed = 0;   // probes won by fewer threads
    uint64_t widened = 0;    // probes won by more threads
    uint64_t quieted = 0;    // probes won by quiet pools
    uint64_t unquieted = 0;  // probes won by polling pools again
    uint64_t onsets = 0;     // sudden slowdowns seen
};

// What observe() decided, for the caller's log.
struct GovernorEvent {
    enum Kind { none, onset, probe_won, probe_lost } kind = none;
    ThreadChoice from, to;          // current setting and the probed one (won: now current)
    double current_ms = 0, probe_ms = 0;  // medians compared
    double next_probe_in_ms = 0;    // of step time
};

class ThreadGovernor {
public:
    // `max_width`: the most threads the loop may use (its configured
    // threads). Starts there, polling as ggml does by default.
    explicit ThreadGovernor(int max_width, GovernorParams p = {});

    // The setting for the next step, of `n_tokens`, that llama.cpp would run
    // on `wanted` threads. Call observe() or discard() after the step.
    ThreadChoice choose(int n_tokens, int wanted);
    // The step ran as chosen and took `ms`.
    GovernorEvent observe(double ms);
    // The step did not run as chosen (another model's loop was given part of
    // the CPUs, or the decode failed): it tells nothing.
    void discard();
    // How many of the process's CPUs were idle lately, on average; negative:
    // unknown (then wider probes follow the schedule alone).
    void set_idle_cpus(double idle);
    // Whether set_idle_cpus() would change anything now (it is narrowed).
    bool wants_idle_cpus() const { return cur_.width < max_width_; }

    ThreadChoice current() const { return cur_; }
    bool probing() const { return probe_.active; }
    const GovernorStats& stats() const { return stats_; }
    int max_width() const { return max_width_; }

private:
    enum class Move { down, up, poll };
    struct Sample {
        int n_tokens;
        double ms;
    };
    struct Probe {
        bool active = false;
        Move move = Move::down;
        ThreadChoice alt;
        int n_tokens = 0;
        int waited = 0;  // steps of other sizes since it started
        bool after_onset = false;
        std::vector<double> ms;
    };

    bool pick(Move* move, ThreadChoice* alt);
    bool possible(Move m) const;
    ThreadChoice moved(Move m) const;
    // The two settings run differently for a step llama.cpp runs on `wanted`.
    static bool differ(const ThreadChoice& a, const ThreadChoice& b, int wanted);
    double current_median(int n_tokens) const;
    size_t count(int n_tokens) const;
    GovernorEvent finish_probe(bool won, double current, double probe);
    void check_onset(int n_tokens, GovernorEvent* ev);
    void schedule(double cost_ms);

    const int max_width_;
    const GovernorParams p_;
    ThreadChoice cur_;
    std::deque<Sample> samples_;  // at cur_, oldest first
    Probe probe_;
    bool onset_pending_ = false;
    bool poll_pending_ = false;  // narrowing did not help after an onset: try quiet pools
    int rotation_ = 0;           // which move a scheduled probe tries where several are possible
    std::optional<Move> continue_;  // a move that just won, to take once more
    int chain_down_ = 0;            // the width to probe next after a probe as slow as the current
    bool chain_after_onset_ = false;
    double clock_ms_ = 0;        // step time so far
    double next_probe_at_ = 0;
    double interval_ms_ = 0;     // the wait after the last lost probe
    // The step chosen last: its size and whether it was a probe step.
    int last_n_tokens_ = 0;
    bool last_probe_ = false;
    int last_observed_ = -1;  // the size of the last step observed
    bool pending_ = false;
    double idle_cpus_ = -1;
    bool wider_lost_while_idle_ = false;  // no early wider probe again until the CPUs were all busy
    GovernorStats stats_;
};

}  // namespace wnl
