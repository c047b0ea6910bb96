/* The legacy ABI (wasi_nn_backend.h) behind the fuzz_abi table. */
#include <stddef.h>

#include "abi_calls.h"
#include "wasi_nn_backend.h"

static const int kCodes[] = {success,   invalid_argument, invalid_encoding, timeout,  runtime_error,
                             unsupported_operation, too_large, not_found,   security, unknown,
                             end_of_sequence, context_full, prompt_tool_long, model_not_found};

/* The legacy tensor has no size: the length is the dimensions' product, or
 * the data is NUL-terminated. The fuzzer lays the buffer out to match. */
static tensor* make_tensor(const fuzz_tensor* f, tensor* t, tensor_dimensions* d) {
    if (f->is_null) return NULL;
    d->buf = (uint32_t*)f->dims;
    d->size = f->n_dims;
    t->dimensions = f->has_dims ? d : NULL;
    t->type = (tensor_type)f->type;
    t->data = (uint8_t*)f->data;
    return t;
}

static int l_init_backend(void** ctx) { return init_backend(ctx); }
static int l_init_backend_with_config(void** ctx, const char* cfg, uint32_t len) {
    return init_backend_with_config(ctx, cfg, len);
}
static int l_deinit_backend(void* ctx) { return deinit_backend(ctx); }
static int l_load(void* ctx, int builder_null, uint32_t n, const uint8_t* buf, uint32_t size, int encoding, int target,
                  uint32_t* g) {
    graph_builder b = {(uint8_t*)buf, size};
    graph_builder_array arr = {n > 0 ? &b : NULL, n};
    return load(ctx, builder_null ? NULL : &arr, (graph_encoding)encoding, (execution_target)target, g);
}
static int l_load_by_name(void* ctx, const char* name, uint32_t len, uint32_t* g) {
    return load_by_name(ctx, name, len, g);
}
static int l_load_by_name_with_config(void* ctx, const char* name, uint32_t len, const char* cfg, uint32_t cfg_len,
                                      uint32_t* g) {
    return load_by_name_with_config(ctx, name, len, cfg, cfg_len, g);
}
static int l_unload(void* ctx, uint32_t g) { return unload(ctx, g); }
static int l_init_exec(void* ctx, uint32_t g, uint32_t* exec) { return init_execution_context(ctx, g, exec); }
static int l_init_exec_session(void* ctx, const char* id, uint32_t* exec) {
    return init_execution_context_with_session_id(ctx, id, exec);
}
static int l_close_exec(void* ctx, uint32_t exec) { return close_execution_context(ctx, exec); }
static int l_set_input(void* ctx, uint32_t exec, uint32_t index, const fuzz_tensor* f) {
    tensor t;
    tensor_dimensions d;
    return set_input(ctx, exec, index, make_tensor(f, &t, &d));
}
static int l_compute(void* ctx, uint32_t exec) { return compute(ctx, exec); }
static int l_get_output(void* ctx, uint32_t exec, uint32_t index, uint8_t* buf, uint32_t cap, int out_struct_null,
                        uint32_t* out_size) {
    (void)out_struct_null; /* no such struct in this ABI */
    if (out_size) *out_size = cap;
    return get_output(ctx, exec, index, buf, out_size);
}
static int l_run_inference(void* ctx, uint32_t exec, uint32_t index, const fuzz_tensor* f, uint8_t* out,
                           uint32_t* out_size, const char* cfg, uint32_t cfg_len) {
    tensor t;
    tensor_dimensions d;
    return run_inference(ctx, exec, index, make_tensor(f, &t, &d), out, out_size, cfg, cfg_len);
}
static int l_status(void* ctx, int type, char* buf, uint32_t size) {
    return get_backend_status(ctx, (backend_status_type)type, buf, size);
}
static int l_compute_single(void* ctx, uint32_t exec) { return compute_single(ctx, exec); }
static int l_get_output_single(void* ctx, uint32_t exec, uint32_t index, uint8_t* out, uint32_t* out_size) {
    return get_output_single(ctx, exec, index, out, out_size);
}
static int l_fini_single(void* ctx, uint32_t exec) { return fini_single(ctx, exec); }
static int l_swap_graph(void* ctx, uint32_t g, const char* name, uint32_t len, const char* cfg, uint32_t cfg_len) {
    return swap_graph(ctx, g, name, len, cfg, cfg_len);
}
static int l_reload_aliases(void* ctx) { return reload_aliases(ctx); }

const fuzz_abi fuzz_legacy_abi = {
    "legacy", 1, 1, 0,
    success, invalid_argument, not_found, too_large, -1 /* no busy code: runtime_error */, end_of_sequence,
    kCodes, (int)(sizeof kCodes / sizeof kCodes[0]), u8,
    l_init_backend, l_init_backend_with_config, l_deinit_backend, l_load, l_load_by_name,
    l_load_by_name_with_config, l_unload, l_init_exec, l_init_exec_session, l_close_exec, l_set_input, l_compute,
    l_get_output, l_run_inference, l_status, l_compute_single, l_get_output_single, l_fini_single,
    l_swap_graph, l_reload_aliases,
};
