/*
 * The types of the original wasi_nn_backend header (the one HyperBEAM's NIF
 * and the original project's test/main.c were written against, from WAMR's
 * wasi_nn_types.h), as that project built it: without
 * WASM_ENABLE_WASI_EPHEMERAL_NN. Written down here from that header's
 * definitions so that original_header_test.c compiles against them and not
 * against this project's include/wasi_nn_backend.h.
 *
 * What differs from include/wasi_nn_backend.h's default: the tensor_type
 * numbering (fp16 0, fp32 1, up8 2, ip32 3: text is up8, 2, not u8, 4). The
 * rest is the same layout: a bare uint8_t * data pointer and an int-sized
 * enum type field.
 */
#ifndef ORIGINAL_WASI_NN_TYPES_H
#define ORIGINAL_WASI_NN_TYPES_H

#include <stdint.h>

typedef enum {
    success = 0,
    invalid_argument,
    invalid_encoding,
    timeout,
    runtime_error,
    unsupported_operation,
    too_large,
    not_found,
    security,
    unknown,
    end_of_sequence = 100,
    context_full = 101,
    prompt_tool_long = 102,
    model_not_found = 103,
} wasi_nn_error;

typedef struct {
    uint32_t *buf;
    uint32_t size;
} tensor_dimensions;

typedef enum { fp16 = 0, fp32, up8, ip32 } tensor_type;

typedef uint8_t *tensor_data;

typedef struct {
    tensor_dimensions *dimensions;
    tensor_type type;
    tensor_data data;
} tensor;

typedef struct {
    uint8_t *buf;
    uint32_t size;
} graph_builder;

typedef struct {
    graph_builder *buf;
    uint32_t size;
} graph_builder_array;

typedef uint32_t graph;

typedef enum {
    openvino = 0,
    onnx,
    tensorflow,
    pytorch,
    tensorflowlite,
    ggml,
    autodetect,
    unknown_backend,
} graph_encoding;

typedef enum execution_target { cpu = 0, gpu, tpu } execution_target;

typedef uint32_t graph_execution_context;

#endif
