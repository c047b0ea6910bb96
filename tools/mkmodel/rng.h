// Deterministic random numbers for wasi-nn-llama-mkmodel.
//
// Same seed and tensor name -> same values on every platform and compiler:
// std::mt19937_64's output sequence is fixed by the C++ standard, and the
// normal-ish distribution below is built from integer sums and one IEEE
// division, so nothing depends on libm or on std::*_distribution (whose
// output is implementation-defined).
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace mkmodel {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

inline uint64_t fnv1a64(const std::string & s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

// One independent stream per tensor: the values of a tensor depend only on
// the global seed and the tensor's name, not on the order tensors are written.
inline uint64_t tensor_seed(uint64_t seed, const std::string & name) {
    return splitmix64(splitmix64(seed) ^ fnv1a64(name));
}

// Approximately standard-normal values (mean 0, standard deviation 1,
// bounded to about +-3.46): Irwin-Hall sum of four 16-bit uniforms taken from
// one 64-bit draw.
class NormalGen {
public:
    explicit NormalGen(uint64_t seed) : eng_(seed) {}

    float next() {
        const uint64_t r = eng_();
        const int64_t s = (int64_t) (r & 0xffff) + (int64_t) ((r >> 16) & 0xffff) +
                          (int64_t) ((r >> 32) & 0xffff) + (int64_t) (r >> 48);
        // mean of the sum: 4 * 65535 / 2; its standard deviation:
        // sqrt(4 * (65536^2 - 1) / 12) = 37837.2272...
        return (float) (((double) s - 131070.0) / 37837.22724);
    }

private:
    std::mt19937_64 eng_;
};

}  // namespace mkmodel
