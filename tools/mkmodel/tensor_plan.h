// One tensor that wasi-nn-llama-mkmodel writes: its name, shape, type and
// how its random values are drawn.
#pragma once

#include <cstdint>
#include <string>

#include "ggml.h"

namespace mkmodel {

// Matrix: N(0, init_std); Norm: 1 + 0.02 N(0,1); Bias: 0.02 N(0,1).
enum class Init { Matrix, Norm, Bias };

struct TensorSpec {
    std::string name;
    int64_t ne0;
    int64_t ne1;  // 1 for vectors
    ggml_type type;
    Init init;
    int layer;  // -1 outside the blocks
};

}  // namespace mkmodel
