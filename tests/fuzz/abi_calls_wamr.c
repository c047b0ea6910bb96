/* The WAMR >= 2.4 ABI (wasi_nn_llamacpp.h) behind the fuzz_abi table. */
#include <stddef.h>

#include "abi_calls.h"
#include "wasi_nn_llamacpp.h"

static const int kCodes[] = {success,     invalid_argument, invalid_encoding, missing_memory, busy,
                             runtime_error, unsupported_operation, too_large, not_found,
                             end_of_sequence, context_full, prompt_tool_long, model_not_found};

/* Builds the tensor in *t (and its dimensions in *d); NULL when asked. */
static tensor* make_tensor(const fuzz_tensor* f, tensor* t, tensor_dimensions* d) {
    if (f->is_null) return NULL;
    d->buf = (uint32_t*)f->dims;
    d->size = f->n_dims;
    t->dimensions = f->has_dims ? d : NULL;
    t->type = (uint8_t)f->type;
    t->_pad[0] = t->_pad[1] = t->_pad[2] = 0;
    t->data.buf = (uint8_t*)f->data;
    t->data.size = f->size;
    return t;
}

static int w_init_backend(void** ctx) { return init_backend(ctx); }
static int w_init_backend_with_config(void** ctx, const char* cfg, uint32_t len) {
    return init_backend_with_config(ctx, cfg, len);
}
static int w_deinit_backend(void* ctx) { return deinit_backend(ctx); }
static int w_load(void* ctx, int builder_null, uint32_t n, const uint8_t* buf, uint32_t size, int encoding, int target,
                  uint32_t* g) {
    graph_builder b = {(uint8_t*)buf, size};
    graph_builder_array arr = {n > 0 ? &b : NULL, n};
    return load(ctx, builder_null ? NULL : &arr, (graph_encoding)encoding, (execution_target)target, g);
}
static int w_load_by_name(void* ctx, const char* name, uint32_t len, uint32_t* g) {
    return load_by_name(ctx, name, len, g);
}
static int w_load_by_name_with_config(void* ctx, const char* name, uint32_t len, const char* cfg, uint32_t cfg_len,
                                      uint32_t* g) {
    return load_by_name_with_config(ctx, name, len, cfg, cfg_len, g);
}
static int w_unload(void* ctx, uint32_t g) { return unload(ctx, g); }
static int w_init_exec(void* ctx, uint32_t g, uint32_t* exec) { return init_execution_context(ctx, g, exec); }
static int w_init_exec_session(void* ctx, const char* id, uint32_t* exec) {
    return init_execution_context_with_session_id(ctx, id, exec);
}
static int w_close_exec(void* ctx, uint32_t exec) { return close_execution_context(ctx, exec); }
static int w_set_input(void* ctx, uint32_t exec, uint32_t index, const fuzz_tensor* f) {
    tensor t;
    tensor_dimensions d;
    return set_input(ctx, exec, index, make_tensor(f, &t, &d));
}
static int w_compute(void* ctx, uint32_t exec) { return compute(ctx, exec); }
static int w_get_output(void* ctx, uint32_t exec, uint32_t index, uint8_t* buf, uint32_t cap, int out_struct_null,
                        uint32_t* out_size) {
    tensor_data out = {buf, cap};
    return get_output(ctx, exec, index, out_struct_null ? NULL : &out, out_size);
}
static int w_run_inference(void* ctx, uint32_t exec, uint32_t index, const fuzz_tensor* f, uint8_t* out,
                           uint32_t* out_size, const char* cfg, uint32_t cfg_len) {
    tensor t;
    tensor_dimensions d;
    return run_inference(ctx, exec, index, make_tensor(f, &t, &d), out, out_size, cfg, cfg_len);
}
static int w_status(void* ctx, int type, char* buf, uint32_t size) {
    return get_backend_status(ctx, (backend_status_type)type, buf, size);
}
static int w_compute_single(void* ctx, uint32_t exec) { return compute_single(ctx, exec); }
static int w_get_output_single(void* ctx, uint32_t exec, uint32_t index, uint8_t* out, uint32_t* out_size) {
    return get_output_single(ctx, exec, index, out, out_size);
}
static int w_fini_single(void* ctx, uint32_t exec) { return fini_single(ctx, exec); }
static int w_swap_graph(void* ctx, uint32_t g, const char* name, uint32_t len, const char* cfg, uint32_t cfg_len) {
    return swap_graph(ctx, g, name, len, cfg, cfg_len);
}
static int w_reload_aliases(void* ctx) { return reload_aliases(ctx); }

const fuzz_abi fuzz_wamr_abi = {
    "wamr", 0, 0, 1,
    success, invalid_argument, not_found, too_large, busy, end_of_sequence,
    kCodes, (int)(sizeof kCodes / sizeof kCodes[0]), u8,
    w_init_backend, w_init_backend_with_config, w_deinit_backend, w_load, w_load_by_name,
    w_load_by_name_with_config, w_unload, w_init_exec, w_init_exec_session, w_close_exec, w_set_input, w_compute,
    w_get_output, w_run_inference, w_status, w_compute_single, w_get_output_single, w_fini_single,
    w_swap_graph, w_reload_aliases,
};
