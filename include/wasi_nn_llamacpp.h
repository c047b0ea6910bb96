/*
 * wasi-nn-llama: the WAMR >= 2.4 backend ABI (libwasi_nn_llamacpp.so).
 *
 * WAMR's wasi-nn host dlopen()s this library for the `ggml` and `autodetect`
 * encodings and forwards each guest call to the function of the same name.
 * Native hosts may load it the same way. The types below are WAMR 2.4's
 * host-side types, byte for byte.
 *
 * Rules that hold for every function (see docs/abi.md):
 *  - every pointer, length, handle, index and tensor is checked; a bad one
 *    returns invalid_argument (or the specific code documented there) and
 *    logs a line naming the problem;
 *  - strings come with a length that may or may not count a trailing NUL;
 *  - output never exceeds the capacity given: if the text does not fit,
 *    nothing is written, *out_size is set to the size needed and too_large
 *    is returned; this ABI does not write or count a terminating NUL;
 *  - calls on one execution context from two threads at once: the second
 *    gets busy;
 *  - any call after deinit_backend, or with a closed handle, is an error.
 */
#ifndef WASI_NN_LLAMACPP_H
#define WASI_NN_LLAMACPP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define WASI_NN_LLAMA_API
#else
#define WASI_NN_LLAMA_API __attribute__((visibility("default")))
#endif

typedef enum {
    success = 0,
    invalid_argument,
    invalid_encoding,
    missing_memory,
    busy,
    runtime_error,
    unsupported_operation,
    too_large,
    not_found,
    end_of_sequence = 100,
    context_full = 101,
    prompt_tool_long = 102,
    model_not_found = 103
} wasi_nn_error;

typedef struct {
    uint32_t *buf;
    uint32_t size;
} tensor_dimensions;

/* tensor.type values */
enum { fp16 = 0, fp32, fp64, u8, i32, i64 };

typedef struct {
    uint8_t *buf;
    uint32_t size;
} tensor_data;

typedef struct {
    tensor_dimensions *dimensions;
    uint8_t type;
    uint8_t _pad[3];
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

/* What get_backend_status reports; each returns one JSON object. */
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
/* ---- core: WAMR refuses a backend missing any of these ---- */
WASI_NN_LLAMA_API wasi_nn_error init_backend(void **ctx);
WASI_NN_LLAMA_API wasi_nn_error deinit_backend(void *ctx);
/* builder->buf[0] holds the GGUF bytes. */
WASI_NN_LLAMA_API wasi_nn_error load(void *ctx, graph_builder_array *builder,
                                     graph_encoding encoding, execution_target target,
                                     graph *g);
/* name: a GGUF path on the host. */
WASI_NN_LLAMA_API wasi_nn_error load_by_name(void *ctx, const char *name, uint32_t name_len,
                                             graph *g);
WASI_NN_LLAMA_API wasi_nn_error load_by_name_with_config(void *ctx, const char *name,
                                                         uint32_t name_len, const char *config,
                                                         uint32_t config_len, graph *g);
WASI_NN_LLAMA_API wasi_nn_error init_execution_context(void *ctx, graph g,
                                                       graph_execution_context *exec);
/* index 0: the prompt or chat message (u8 tensor, UTF-8), or an embedding
 * graph's input (above); index 1: a JSON object of per-request options. */
WASI_NN_LLAMA_API wasi_nn_error set_input(void *ctx, graph_execution_context exec,
                                          uint32_t index, tensor *t);
WASI_NN_LLAMA_API wasi_nn_error compute(void *ctx, graph_execution_context exec);
/* index 0: the reply text (an embedding graph's JSON); index 1: JSON
 * metadata about the last compute.
 * out->size is the capacity; *out_size receives the bytes written (or
 * needed, with too_large). */
WASI_NN_LLAMA_API wasi_nn_error get_output(void *ctx, graph_execution_context exec,
                                           uint32_t index, tensor_data *out,
                                           uint32_t *out_size);

/* ---- extensions ---- */
/* With a session store in the host's backend config ("session_store",
 * "session_namespace", "session_store_bytes", "session_sync"; host-only,
 * docs/sessions.md), a named session's turns are in the store before
 * compute or fini_single returns success, and
 * init_execution_context_with_session_id continues a session a previous
 * process left (its history, and its KV state from disk). A directory
 * another process holds is busy; one that cannot be used, or a turn that
 * could not be stored, is runtime_error. */
WASI_NN_LLAMA_API wasi_nn_error init_backend_with_config(void **ctx, const char *config,
                                                         uint32_t config_len);
WASI_NN_LLAMA_API wasi_nn_error init_execution_context_with_session_id(
    void *ctx, const char *session_id, graph_execution_context *exec);
WASI_NN_LLAMA_API wasi_nn_error close_execution_context(void *ctx,
                                                        graph_execution_context exec);
/* set_input(0) + compute + get_output(index) in one call. out/out_size follow
 * the legacy convention: *out_size is the capacity on entry and the bytes
 * written, counting a terminating NUL, on return. */
WASI_NN_LLAMA_API wasi_nn_error run_inference(void *ctx, graph_execution_context exec,
                                              uint32_t index, tensor *input, uint8_t *out,
                                              uint32_t *out_size, const char *runtime_config,
                                              uint32_t runtime_config_len);
WASI_NN_LLAMA_API wasi_nn_error get_backend_status(void *ctx, backend_status_type type,
                                                   char *buf, uint32_t buf_size);
/* Streaming, with WasmEdge's names and meaning (docs/abi.md): after
 * set_input, each compute_single returns success once the next piece of the
 * reply is ready and get_output_single(index 0) gives it; compute_single
 * returns end_of_sequence when the reply is complete (or the turn's error,
 * e.g. context_full); get_output_single(index 1) then gives the metadata.
 * fini_single ends the stream (cancelling it if unfinished) and records the
 * turn; get_output then gives the whole reply. get_output_single's
 * *out_size is the capacity in and the bytes written out, no NUL. */
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

#endif /* WASI_NN_LLAMACPP_H */
