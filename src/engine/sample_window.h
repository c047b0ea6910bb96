// The most recent N samples of a measurement, for percentiles over a
// sliding window.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace wnl {

class SampleWindow {
public:
    explicit SampleWindow(size_t capacity = 1024) : capacity_(capacity) { values_.reserve(capacity); }

    void add(double v) {
        if (values_.size() < capacity_) {
            values_.push_back(v);
        } else {
            values_[next_] = v;
        }
        next_ = (next_ + 1) % capacity_;
        ++count_;
    }

    // Nearest-rank percentile, p in [0, 100]; 0 when empty.
    double percentile(double p) const {
        if (values_.empty()) return 0.0;
        std::vector<double> sorted(values_);
        std::sort(sorted.begin(), sorted.end());
        size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
        rank = std::clamp<size_t>(rank, 1, sorted.size());
        return sorted[rank - 1];
    }

    size_t size() const { return values_.size(); }
    size_t total() const { return count_; }

private:
    size_t capacity_;
    std::vector<double> values_;
    size_t next_ = 0;
    size_t count_ = 0;
};

}  // namespace wnl
