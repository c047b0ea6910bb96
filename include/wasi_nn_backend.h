/*
 * wasi-nn-llama: the legacy backend ABI (libwasi_nn_backend.so), as in
 * WAMR 2.3.1 and earlier and the original `wasi_nn_backend` header. Native
 * hosts (an Erlang NIF, C programs) written against that header load this
 * library with dlopen.
 *
 * Differences from the WAMR 2.4 ABI (wasi_nn_llamacpp.h):
 *  - error numbers: timeout 3, runtime_error 4, ... security 8, unknown 9;
 *  - tensor types: two numberings are accepted (below). Text is u8 (4) in
 *    WAMR's ephemeral numbering or up8 (2) in the original header's;
 *  - tensor_data is a bare pointer: a text input's length is the product of
 *    its dimensions, or, when no dimensions are given, the data is a
 *    NUL-terminated string of at most WASI_NN_LEGACY_MAX_PROMPT bytes. A
 *    tensor of any other type without dimensions is read as such a string
 *    too, as the original library did; with dimensions it is refused;
 *  - output: *out_size is the capacity on entry; on success the text and a
 *    terminating NUL are written and *out_size counts both;
 *  - run_inference: a runtime config that is not JSON at all runs the request
 *    with the graph's settings (and logs a warning), as the original did.
 * As in both ABIs: strings that come with a length are read up to their
 * first NUL or their length, whichever comes first, and a NULL one is absent
 * whatever its length (so a 7-argument run_inference call is safe);
 * execution-context handles start at 1; a repeated load of the same file and
 * config, or init of a named session that has a handle, returns the same
 * handle (counted: each unload or close takes one away).
 * The rules in docs/abi.md otherwise apply unchanged; its "Differences from
 * the original library" lists what this library does differently from the
 * original wasi_nn_backend.
 */
#ifndef WASI_NN_BACKEND_H
#define WASI_NN_BACKEND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define WASI_NN_LLAMA_API
#else
#define WASI_NN_LLAMA_API __attribute__((visibility("default")))
#endif

/* The longest NUL-terminated prompt read when a u8 tensor has no dimensions. */
#define WASI_NN_LEGACY_MAX_PROMPT (16u * 1024u * 1024u)

typedef enum {
    success = 0,
    invalid_argument = 1,
    invalid_encoding = 2,
    timeout = 3,
    runtime_error = 4,
    unsupported_operation = 5,
    too_large = 6,
    not_found = 7,
    security = 8,
    unknown = 9,
    end_of_sequence = 100,
    context_full = 101,
    prompt_tool_long = 102,
    model_not_found = 103
} wasi_nn_error;

typedef struct {
    uint32_t *buf;
    uint32_t size;
} tensor_dimensions;

/*
 * tensor_type. The library accepts both numberings at run time; this header
 * declares one of them for the host's source:
 *  - by default WAMR's ephemeral numbering, as WAMR builds it with
 *    WASM_ENABLE_WASI_EPHEMERAL_NN: fp16 0, fp32 1, fp64 2, bf16 3, u8 4,
 *    i32 5, i64 6;
 *  - the original wasi_nn_backend header's, built without
 *    WASM_ENABLE_WASI_EPHEMERAL_NN: fp16 0, fp32 1, up8 2, ip32 3. Define
 *    WASI_NN_BACKEND_ORIGINAL_TENSOR_TYPES, or WASM_ENABLE_WASI_EPHEMERAL_NN
 *    as 0 as WAMR's build does, before including this header to get it.
 * The numbers of the byte (text) type in each, whatever this header declares:
 */
#define WASI_NN_EPHEMERAL_TENSOR_TYPE_U8 4
#define WASI_NN_ORIGINAL_TENSOR_TYPE_UP8 2

#if defined(WASI_NN_BACKEND_ORIGINAL_TENSOR_TYPES) || \
    (defined(WASM_ENABLE_WASI_EPHEMERAL_NN) && WASM_ENABLE_WASI_EPHEMERAL_NN == 0)
typedef enum { fp16 = 0, fp32, up8, ip32 } tensor_type;
#else
typedef enum { fp16 = 0, fp32, fp64, bf16, u8, i32, i64 } tensor_type;
#endif

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
typedef uint32_t graph_execution_context;

typedef enum {
    openvino = 0,
    onnx,
    tensorflow,
    pytorch,
    tensorflowlite,
    ggml,
    autodetect,
    unknown_backend
} graph_encoding;

typedef enum { cpu = 0, gpu, tpu } execution_target;

typedef enum {
    BACKEND_STATUS_QUEUE = 0,
    BACKEND_STATUS_MEMORY,
    BACKEND_STATUS_SESSIONS,
    BACKEND_STATUS_PERFORMANCE,
    BACKEND_STATUS_MODEL
} backend_status_type;

/* Embedding and reranking graphs (docs/embeddings.md): a graph loaded with
 * {"embedding":true} embeds instead of generating. set_input index 0 takes
 * the text, a JSON array of strings (a batch) or {"input": ...}; compute
 * embeds it, batched with every other caller's inputs on the model; get_output
 * index 0 gives {"n_embedding":N,"embedding":[...]} (an array of those for a
 * batch) and index 1 the metadata. {"reranking":true} takes
 * {"query":"...","documents":[...]} and gives {"scores":[...]} in document
 * order. run_inference works the same way. Bad input, and a call over
 * the host's caps (max_embedding_inputs, max_embedding_tokens,
 * max_embedding_values), is invalid_argument, an input past the context
 * prompt_tool_long (unless {"truncate":true}); the streaming calls on
 * such a graph, and embedding options on a generation graph, are
 * invalid_argument. */
WASI_NN_LLAMA_API wasi_nn_error init_backend(void **ctx);
WASI_NN_LLAMA_API wasi_nn_error deinit_backend(void *ctx);
WASI_NN_LLAMA_API wasi_nn_error load(void *ctx, graph_builder_array *builder,
                                     graph_encoding encoding, execution_target target,
                                     graph *g);
WASI_NN_LLAMA_API wasi_nn_error load_by_name(void *ctx, const char *name, uint32_t name_len,
                                             graph *g);
WASI_NN_LLAMA_API wasi_nn_error load_by_name_with_config(void *ctx, const char *name,
                                                         uint32_t name_len, const char *config,
                                                         uint32_t config_len, graph *g);
WASI_NN_LLAMA_API wasi_nn_error init_execution_context(void *ctx, graph g,
                                                       graph_execution_context *exec);
WASI_NN_LLAMA_API wasi_nn_error set_input(void *ctx, graph_execution_context exec,
                                          uint32_t index, tensor *t);
WASI_NN_LLAMA_API wasi_nn_error compute(void *ctx, graph_execution_context exec);
/* *out_size: capacity in, bytes written (counting the NUL) out. */
WASI_NN_LLAMA_API wasi_nn_error get_output(void *ctx, graph_execution_context exec,
                                           uint32_t index, uint8_t *out, uint32_t *out_size);

/* With a session store in the host's backend config ("session_store",
 * "session_namespace", "session_store_bytes", "session_sync"; host-only,
 * docs/sessions.md), a named session's turns are in the store before
 * compute or fini_single returns success, and
 * init_execution_context_with_session_id continues a session a previous
 * process left (its history, and its KV state from disk). A directory
 * another process holds, one that cannot be used, and a turn that could
 * not be stored are runtime_error. */
WASI_NN_LLAMA_API wasi_nn_error init_backend_with_config(void **ctx, const char *config,
                                                         uint32_t config_len);
WASI_NN_LLAMA_API wasi_nn_error init_execution_context_with_session_id(
    void *ctx, const char *session_id, graph_execution_context *exec);
WASI_NN_LLAMA_API wasi_nn_error close_execution_context(void *ctx,
                                                        graph_execution_context exec);
WASI_NN_LLAMA_API wasi_nn_error run_inference(void *ctx, graph_execution_context exec,
                                              uint32_t index, tensor *input, uint8_t *out,
                                              uint32_t *out_size, const char *runtime_config,
                                              uint32_t runtime_config_len);
WASI_NN_LLAMA_API wasi_nn_error get_backend_status(void *ctx, backend_status_type type,
                                                   char *buf, uint32_t buf_size);
/* Streaming, with WasmEdge's names and meaning (docs/abi.md): each
 * compute_single returns success once the next piece of the reply is ready,
 * get_output_single(index 0) gives it, end_of_sequence when the reply is
 * complete; fini_single ends the stream and records the turn.
 * get_output_single's *out_size: capacity in, bytes written (counting the
 * NUL) out. */
WASI_NN_LLAMA_API wasi_nn_error compute_single(void *ctx, graph_execution_context exec);
WASI_NN_LLAMA_API wasi_nn_error get_output_single(void *ctx, graph_execution_context exec,
                                                  uint32_t index, uint8_t *out,
                                                  uint32_t *out_size);
WASI_NN_LLAMA_API wasi_nn_error fini_single(void *ctx, graph_execution_context exec);
/* Ends graph g. Execution contexts opened on it stay open, but every later
 * call on them returns not_found except close_execution_context and
 * fini_single; a compute already running, or queued, finishes first. The
 * model's weights, llama_context and cached session state are freed when
 * the last request on it ends (at once when none runs). */
WASI_NN_LLAMA_API wasi_nn_error unload(void *ctx, graph g);

/* ---- host side: models (docs/models.md) ---- */
/* Hot swap: replaces the model behind graph g while it serves. name and
 * config (may be NULL / 0) are read as load_by_name_with_config reads them
 * (a policy alias or a path under the host's path rules; the config over
 * the backend context's, within the ceilings, host-only keys refused), plus
 * "force": true to skip the compatibility check. In order:
 *  1. the new model loads fully while g keeps serving the old one;
 *  2. it must be compatible: the same architecture (general.architecture),
 *     the same vocabulary size and the same special tokens; otherwise the
 *     swap is refused with invalid_argument, unless "force" is true;
 *  3. the switch: requests already running finish on the old model;
 *     requests still queued and every later one run on the new model; named
 *     and anonymous sessions keep their text history, prefilled again on the
 *     new model (KV state never crosses models);
 *  4. the old model is freed when its last running request ends.
 * A load failure (model_not_found, invalid_encoding, ...) or a refusal
 * leaves the old model serving and fails no request. Swaps of one graph run
 * one at a time. Each swap adds one to the graph's model version, which the
 * MODEL status and every reply's metadata (index 1, "model_version") show.
 * Not forwarded from guests: WAMR's wasi-nn host has no such call. */
WASI_NN_LLAMA_API wasi_nn_error swap_graph(void *ctx, graph g, const char *name,
                                           uint32_t name_len, const char *config,
                                           uint32_t config_len);
/* Reads the host's policy again (the WASI_NN_LLAMA_POLICY file, with this
 * context's init_backend_with_config "policy" section over it) and takes
 * its model aliases: each graph of ctx loaded by an alias whose path or
 * config changed is swapped, as swap_graph does (compatibility checked, the
 * guest's load config kept), to what the alias names now. Ceilings, host
 * config and path rules stay as ctx opened with. Returns the first
 * failure; a graph whose swap failed keeps its model, and the next reload
 * tries again. Not forwarded from guests. */
WASI_NN_LLAMA_API wasi_nn_error reload_aliases(void *ctx);

/* This library's version, e.g. "0.1.0". */
WASI_NN_LLAMA_API const char *wasi_nn_llama_version(void);

#ifdef __cplusplus
}
#endif

#endif /* WASI_NN_BACKEND_H */
