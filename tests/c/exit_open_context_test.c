/*
 * A host that exits with a backend context still open (it never calls
 * deinit_backend, as a runtime killed by exit() would not): the library's
 * static destructors then free the decode loop's llama_context, and
 * llama.cpp logs while they do. That must not touch the logger's per-thread
 * state, which the C++ runtime destroys first. Under ASan (the sanitizer
 * pass) a use after free there fails this test; it passes when the process
 * exits with status 0. Found by the ABI-sequence fuzzer (tests/fuzz).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasi_nn_llamacpp.h"

#define MODEL WNL_MODELS_DIR "/stories260K.gguf"
#define LIBRARY WNL_LIB_DIR "/libwasi_nn_llamacpp.so"

typedef wasi_nn_error (*INIT)(void **, const char *, uint32_t);
typedef wasi_nn_error (*LOAD_BY_NAME)(void *, const char *, uint32_t, graph *);
typedef wasi_nn_error (*INIT_EXEC)(void *, graph, graph_execution_context *);
typedef wasi_nn_error (*SET_INPUT)(void *, graph_execution_context, uint32_t, tensor *);
typedef wasi_nn_error (*COMPUTE)(void *, graph_execution_context);

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "not ok - %s missing: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

static void text_tensor(tensor *t, tensor_dimensions *d, uint32_t *dim, const char *s) {
    *dim = (uint32_t)strlen(s);
    d->buf = dim;
    d->size = 1;
    t->dimensions = d;
    t->type = u8;
    t->data.buf = (uint8_t *)s;
    t->data.size = *dim;
}

int main(void) {
    void *lib = dlopen(LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "not ok - dlopen %s: %s\n", LIBRARY, dlerror());
        return 1;
    }
    INIT init = (INIT)sym(lib, "init_backend_with_config");
    LOAD_BY_NAME load = (LOAD_BY_NAME)sym(lib, "load_by_name");
    INIT_EXEC init_exec = (INIT_EXEC)sym(lib, "init_execution_context");
    SET_INPUT set_input = (SET_INPUT)sym(lib, "set_input");
    COMPUTE compute = (COMPUTE)sym(lib, "compute");

    /* llama.cpp's own info lines on, so that it logs at teardown too. */
    const char *cfg = "{\"enable_log\":true,\"log_level\":\"info\",\"max_tokens\":4,\"temp\":0}";
    void *ctx = NULL;
    graph g = 0;
    graph_execution_context exec = 0;
    tensor t;
    tensor_dimensions d;
    uint32_t dim;
    if (init(&ctx, cfg, (uint32_t)strlen(cfg)) != success || load(ctx, MODEL, (uint32_t)strlen(MODEL), &g) != success ||
        init_exec(ctx, g, &exec) != success) {
        fprintf(stderr, "not ok - could not open a context on %s\n", MODEL);
        return 1;
    }
    text_tensor(&t, &d, &dim, "Once upon a time");
    if (set_input(ctx, exec, 0, &t) != success || compute(ctx, exec) != success) {
        fprintf(stderr, "not ok - compute failed\n");
        return 1;
    }
    printf("ok - a context is open with a model loaded; exiting without deinit_backend\n");
    fflush(stdout);
    exit(0);
}
