/*
 * The ABI-sequence fuzzers call each ABI through this table of plain C
 * types. The wrappers (abi_calls_wamr.c, abi_calls_legacy.c) are C because
 * a guest may pass any integer where the headers have an enum, and only C
 * lets a caller do that without undefined behaviour of its own; they build
 * each ABI's tensor and buffer structs from the description below.
 */
#ifndef WNL_FUZZ_ABI_CALLS_H
#define WNL_FUZZ_ABI_CALLS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A tensor as a caller lays it out. */
typedef struct {
    int is_null;          /* pass NULL instead of a tensor */
    int has_dims;         /* pass a tensor_dimensions struct */
    const uint32_t* dims; /* its buf (may be NULL) */
    uint32_t n_dims;      /* its size */
    int type;
    const uint8_t* data;  /* may be NULL */
    uint32_t size;        /* WAMR: data.size; the legacy ABI has no size field */
} fuzz_tensor;

typedef struct {
    const char* name;
    /* Output conventions. */
    int get_output_writes_nul;
    int get_output_single_writes_nul;
    int get_output_has_struct; /* WAMR's tensor_data; the legacy ABI passes the buffer alone */
    /* Codes. */
    int success, invalid_argument, not_found, too_large, busy, end_of_sequence;
    const int* valid_codes;
    int n_valid_codes;
    int u8_type;

    int (*init_backend)(void** ctx);
    int (*init_backend_with_config)(void** ctx, const char* cfg, uint32_t len);
    int (*deinit_backend)(void* ctx);
    /* builder_null: pass NULL; n_builders 0 with a NULL array is also possible. */
    int (*load)(void* ctx, int builder_null, uint32_t n_builders, const uint8_t* buf, uint32_t size, int encoding,
                int target, uint32_t* g);
    int (*load_by_name)(void* ctx, const char* name, uint32_t len, uint32_t* g);
    int (*load_by_name_with_config)(void* ctx, const char* name, uint32_t len, const char* cfg, uint32_t cfg_len,
                                    uint32_t* g);
    int (*unload)(void* ctx, uint32_t g);
    int (*init_execution_context)(void* ctx, uint32_t g, uint32_t* exec);
    int (*init_execution_context_with_session_id)(void* ctx, const char* id, uint32_t* exec);
    int (*close_execution_context)(void* ctx, uint32_t exec);
    int (*set_input)(void* ctx, uint32_t exec, uint32_t index, const fuzz_tensor* t);
    int (*compute)(void* ctx, uint32_t exec);
    /* cap: the capacity (WAMR: out->size; legacy: *out_size on entry).
     * out_struct_null (WAMR): pass a NULL tensor_data. out_size NULL is passed as is. */
    int (*get_output)(void* ctx, uint32_t exec, uint32_t index, uint8_t* buf, uint32_t cap, int out_struct_null,
                      uint32_t* out_size);
    int (*run_inference)(void* ctx, uint32_t exec, uint32_t index, const fuzz_tensor* t, uint8_t* out,
                         uint32_t* out_size, const char* cfg, uint32_t cfg_len);
    int (*get_backend_status)(void* ctx, int type, char* buf, uint32_t size);
    int (*compute_single)(void* ctx, uint32_t exec);
    int (*get_output_single)(void* ctx, uint32_t exec, uint32_t index, uint8_t* out, uint32_t* out_size);
    int (*fini_single)(void* ctx, uint32_t exec);
    /* The host's hot swap (docs/models.md): not a guest's call, but its name
     * and config are read as a guest's load is. */
    int (*swap_graph)(void* ctx, uint32_t g, const char* name, uint32_t len, const char* cfg, uint32_t cfg_len);
    int (*reload_aliases)(void* ctx);
} fuzz_abi;

#ifdef __cplusplus
}
#endif

#endif
