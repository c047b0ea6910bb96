/*
 * A minimal NIF that drives libwasi_nn_backend.so the way HyperBEAM's
 * dev_wasi_nn_nif does (native/wasi_nn_llama/src/wasi_nn_nif.c): the library
 * dlopen()ed in the NIF's load callback with only the six symbols the NIF
 * uses; one backend context for the whole node, created on the first model
 * load; a resource per init_execution_context whose destructor, on garbage
 * collection, closes its handle when it is not 0; every call under one
 * mutex, load and run_inference on dirty CPU schedulers; run_inference
 * called with 7 arguments through a type that lacks runtime_config_len;
 * deinit_backend and dlclose in the unload callback (module purge).
 *
 * Added for the test: the library's path comes as load_info, options may be
 * the atom `null` (older NIFs passed NULL), and counters/0 reports how many
 * handles were opened and closed.
 */
#include <dlfcn.h>
#include <erl_nif.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATH_SIZE 4096
#define MAX_INPUT_SIZE 4096
#define MAX_CONFIG_SIZE 4096
#define MAX_OUTPUT_SIZE 8192
#define MAX_SESSION_ID_SIZE 256

/* The legacy header's types, as the NIF's header declares them. */
typedef int wasi_nn_error;
typedef uint32_t graph;
typedef uint32_t graph_execution_context;
typedef struct {
    uint32_t *buf;
    uint32_t size;
} tensor_dimensions;
typedef struct {
    tensor_dimensions *dimensions;
    int type; /* fp32 = 1 is what the NIF sends */
    uint8_t *data;
} tensor;
enum { success = 0, fp32 = 1 };

typedef wasi_nn_error (*init_backend_with_config_fn)(void **, const char *, uint32_t);
typedef wasi_nn_error (*deinit_backend_fn)(void *);
typedef wasi_nn_error (*load_by_name_with_config_fn)(void *, const char *, uint32_t, const char *, uint32_t, graph *);
typedef wasi_nn_error (*init_execution_context_fn)(void *, const char *, graph_execution_context *);
typedef wasi_nn_error (*close_execution_context_fn)(void *, graph_execution_context);
/* 7 parameters: the 8th, runtime_config_len, is never passed. */
typedef wasi_nn_error (*run_inference_fn)(void *, graph_execution_context, uint32_t, tensor *, uint8_t *, uint32_t *,
                                          const char *);

static struct {
    void *handle;
    init_backend_with_config_fn init_backend_with_config;
    deinit_backend_fn deinit_backend;
    load_by_name_with_config_fn load_by_name_with_config;
    init_execution_context_fn init_execution_context;
    close_execution_context_fn close_execution_context;
    run_inference_fn run_inference;
} lib;

static void *g_backend;
static int g_backend_initialized;
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static ErlNifResourceType *g_session_type;
static long g_opened, g_closed, g_close_failed;

typedef struct {
    graph_execution_context exec;
} session;

static ERL_NIF_TERM error(ErlNifEnv *env, const char *why, int code) {
    return enif_make_tuple3(env, enif_make_atom(env, "error"), enif_make_atom(env, why), enif_make_int(env, code));
}

/* Garbage collection of a session term. */
static void session_destructor(ErlNifEnv *env, void *obj) {
    (void)env;
    session *s = obj;
    pthread_mutex_lock(&g_mutex);
    if (g_backend_initialized && s->exec != 0) {
        if (lib.close_execution_context(g_backend, s->exec) == success) g_closed++;
        else g_close_failed++;
    }
    pthread_mutex_unlock(&g_mutex);
}

static int load(ErlNifEnv *env, void **priv, ERL_NIF_TERM load_info) {
    (void)priv;
    char path[MAX_PATH_SIZE];
    if (!enif_get_string(env, load_info, path, sizeof path, ERL_NIF_LATIN1)) return 1;
    lib.handle = dlopen(path, RTLD_LAZY);
    if (!lib.handle) return 2;
    *(void **)&lib.init_backend_with_config = dlsym(lib.handle, "init_backend_with_config");
    *(void **)&lib.deinit_backend = dlsym(lib.handle, "deinit_backend");
    *(void **)&lib.load_by_name_with_config = dlsym(lib.handle, "load_by_name_with_config");
    *(void **)&lib.init_execution_context = dlsym(lib.handle, "init_execution_context_with_session_id");
    *(void **)&lib.close_execution_context = dlsym(lib.handle, "close_execution_context");
    *(void **)&lib.run_inference = dlsym(lib.handle, "run_inference");
    if (!lib.init_backend_with_config || !lib.deinit_backend || !lib.load_by_name_with_config ||
        !lib.init_execution_context || !lib.close_execution_context || !lib.run_inference) {
        dlclose(lib.handle);
        return 3;
    }
    g_session_type = enif_open_resource_type(env, NULL, "wasi_nn_session", session_destructor,
                                             ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return g_session_type ? 0 : 4;
}

static void unload(ErlNifEnv *env, void *priv) {
    (void)env, (void)priv;
    pthread_mutex_lock(&g_mutex);
    if (g_backend_initialized) {
        lib.deinit_backend(g_backend);
        g_backend = NULL;
        g_backend_initialized = 0;
    }
    pthread_mutex_unlock(&g_mutex);
    if (lib.handle) {
        dlclose(lib.handle);
        lib.handle = NULL;
    }
}

/* load_by_name_with_config(Path, Config): the backend is created with the
 * same config on the first call; the graph handle is thrown away. */
static ERL_NIF_TERM nif_load_by_name_with_config(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    char path[MAX_PATH_SIZE], config[MAX_CONFIG_SIZE];
    if (argc != 2 || !enif_get_string(env, argv[0], path, sizeof path, ERL_NIF_LATIN1) ||
        !enif_get_string(env, argv[1], config, sizeof config, ERL_NIF_LATIN1)) {
        return enif_make_badarg(env);
    }
    pthread_mutex_lock(&g_mutex);
    if (!g_backend_initialized) {
        wasi_nn_error err = lib.init_backend_with_config(&g_backend, config, (uint32_t)strlen(config));
        if (err != success) {
            pthread_mutex_unlock(&g_mutex);
            return error(env, "init_failed", err);
        }
        g_backend_initialized = 1;
    }
    graph g;
    wasi_nn_error err =
        lib.load_by_name_with_config(g_backend, path, (uint32_t)strlen(path), config, (uint32_t)strlen(config), &g);
    pthread_mutex_unlock(&g_mutex);
    return err == success ? enif_make_atom(env, "ok") : error(env, "load_failed", err);
}

static ERL_NIF_TERM nif_init_execution_context(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    char id[MAX_SESSION_ID_SIZE];
    if (argc != 1 || !enif_get_string(env, argv[0], id, sizeof id, ERL_NIF_LATIN1)) return enif_make_badarg(env);
    session *s = enif_alloc_resource(g_session_type, sizeof *s);
    if (!s) return error(env, "allocation_failed", 0);
    s->exec = 0;
    pthread_mutex_lock(&g_mutex);
    if (!g_backend_initialized) {
        pthread_mutex_unlock(&g_mutex);
        enif_release_resource(s);
        return error(env, "backend_not_initialized", 0);
    }
    wasi_nn_error err = lib.init_execution_context(g_backend, id, &s->exec);
    if (err == success) g_opened++;
    pthread_mutex_unlock(&g_mutex);
    if (err != success) {
        enif_release_resource(s);
        return error(env, "init_execution_failed", err);
    }
    ERL_NIF_TERM term = enif_make_resource(env, s);
    enif_release_resource(s);
    return enif_make_tuple2(env, enif_make_atom(env, "ok"), term);
}

/* run_inference(Session, Input, Options): Options a string, or null. The
 * reply comes back as the NIF keeps it: out_size bytes, the NUL included. */
static ERL_NIF_TERM nif_run_inference(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    session *s;
    char input[MAX_INPUT_SIZE], options[MAX_CONFIG_SIZE];
    const char *opts = options;
    if (argc != 3 || !enif_get_resource(env, argv[0], g_session_type, (void **)&s) ||
        !enif_get_string(env, argv[1], input, sizeof input, ERL_NIF_LATIN1)) {
        return enif_make_badarg(env);
    }
    if (enif_is_identical(argv[2], enif_make_atom(env, "null"))) {
        opts = NULL;
    } else if (!enif_get_string(env, argv[2], options, sizeof options, ERL_NIF_LATIN1)) {
        return enif_make_badarg(env);
    }
    uint8_t *out = malloc(MAX_OUTPUT_SIZE);
    if (!out) return error(env, "allocation_failed", 0);
    uint32_t out_size = MAX_OUTPUT_SIZE;
    tensor t = {.dimensions = NULL, .type = fp32, .data = (uint8_t *)input};
    pthread_mutex_lock(&g_mutex);
    if (!g_backend_initialized) {
        pthread_mutex_unlock(&g_mutex);
        free(out);
        return error(env, "backend_not_initialized", 0);
    }
    wasi_nn_error err = lib.run_inference(g_backend, s->exec, 0, &t, out, &out_size, opts);
    pthread_mutex_unlock(&g_mutex);
    if (err != success) {
        free(out);
        return error(env, "run_inference_failed", err);
    }
    ERL_NIF_TERM bin;
    unsigned char *data = enif_make_new_binary(env, out_size, &bin);
    memcpy(data, out, out_size);
    free(out);
    return enif_make_tuple2(env, enif_make_atom(env, "ok"), bin);
}

static ERL_NIF_TERM nif_counters(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc, (void)argv;
    pthread_mutex_lock(&g_mutex);
    ERL_NIF_TERM t = enif_make_tuple3(env, enif_make_long(env, g_opened), enif_make_long(env, g_closed),
                                      enif_make_long(env, g_close_failed));
    pthread_mutex_unlock(&g_mutex);
    return t;
}

static ErlNifFunc nif_funcs[] = {
    {"load_by_name_with_config", 2, nif_load_by_name_with_config, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"init_execution_context", 1, nif_init_execution_context, 0},
    {"run_inference", 3, nif_run_inference, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"counters", 0, nif_counters, 0},
};

ERL_NIF_INIT(wasi_nn_nif, nif_funcs, load, NULL, NULL, unload)
