/*
 * libwasi_nn_backend.so driven as the original wasi_nn_backend project's own
 * test program drives it (issue #16), compiled against a copy of that
 * project's header types (original_wasi_nn_types.h: text is up8 = 2, the
 * data pointer is a bare uint8_t *, the type field an int-sized enum), not
 * against include/wasi_nn_backend.h.
 *
 * Covers: the original suite's flat and nested configs (n_predict under
 * "model"); text tensors of type up8 (2) with {NULL, 0} dimensions and with
 * real ones, and fp32 with {NULL, 0} as the original setup_tensor sends;
 * run_inference with the original suite's malformed runtime config (runs
 * with the graph's settings); named and anonymous sessions and their
 * history, in completion and chat mode; the queue settings, and
 * max_concurrent queueing instead of refusing; logging to a file; switching
 * models in one backend context; stop strings and max_tokens; and every
 * difference from the original that docs/abi.md lists (too_large instead
 * of an overrun, queueing, the max_exec_contexts refusal, model_not_found,
 * double deinit_backend, get_output writing the text).
 *
 * Prints one "ok - ..." / "not ok - ..." line per check (and "ok - ...
 * # SKIP" for a check whose feature is missing) and ends with
 * "N passed, M failed"; exits non-zero when anything failed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "original_wasi_nn_types.h"

#define MODEL WNL_MODELS_DIR "/stories260K.gguf"
#define MODEL_B WNL_MODELS_DIR "/llama-2-tiny-random.gguf"
#define MISSING_MODEL WNL_MODELS_DIR "/no-such-model.gguf"
#define LIBRARY WNL_LIB_DIR "/libwasi_nn_backend.so"

static const char *const PROMPT = "Once upon a time";
/* Greedy, 32 tokens, the prompt not echoed (models/README.md). */
static const char *const GOLDEN =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw";
/* llama-2-tiny-random's greedy reply starts so (models/README.md). */
static const char *const GOLDEN_B_START = "ernalrightarrow";

/* The status-type numbers of get_backend_status, an extension the original
 * header does not have. */
enum { STATUS_QUEUE = 0, STATUS_MEMORY = 1, STATUS_SESSIONS = 2 };

/* ---------------------------------------------------------------- checks */

static int g_passed, g_failed;

static int check(int cond, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", cond ? "ok" : "not ok");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (cond) g_passed++;
    else g_failed++;
    return cond;
}

static int expect_code(wasi_nn_error got, wasi_nn_error want, const char *what) {
    if (got == want) return check(1, "%s -> %d", what, (int)want);
    return check(0, "%s -> got %d, want %d", what, (int)got, (int)want);
}

static void skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("ok - ");
    vprintf(fmt, ap);
    printf(" # SKIP\n");
    va_end(ap);
    fflush(stdout);
}

/* ------------------------------------------- the original suite's pointers */

typedef wasi_nn_error (*init_backend_func_t)(void **ctx);
typedef wasi_nn_error (*init_backend_with_config_func_t)(void **ctx, const char *config, uint32_t config_len);
typedef wasi_nn_error (*load_by_name_with_configuration_func_t)(void *ctx, const char *filename,
                                                               uint32_t filename_len, const char *config,
                                                               uint32_t config_len, graph *g);
typedef wasi_nn_error (*init_execution_context_func_t)(void *ctx, graph g, graph_execution_context *exec_ctx);
typedef wasi_nn_error (*init_execution_context_with_session_id_func_t)(void *ctx, const char *session_id,
                                                                      graph_execution_context *exec_ctx);
typedef wasi_nn_error (*close_execution_context_func_t)(void *ctx, graph_execution_context exec_ctx);
typedef wasi_nn_error (*run_inference_func_t)(void *ctx, graph_execution_context exec_ctx, uint32_t index,
                                             tensor *input_tensor, tensor_data output_tensor,
                                             uint32_t *output_tensor_size, const char *runtime_config,
                                             uint32_t config_len);
typedef wasi_nn_error (*set_input_func_t)(void *ctx, graph_execution_context exec_ctx, uint32_t index,
                                         tensor *input_tensor);
typedef wasi_nn_error (*compute_func_t)(void *ctx, graph_execution_context exec_ctx);
typedef wasi_nn_error (*get_output_func_t)(void *ctx, graph_execution_context exec_ctx, uint32_t index,
                                          tensor_data output_tensor, uint32_t *output_tensor_size);
typedef wasi_nn_error (*deinit_backend_func_t)(void *ctx);
typedef wasi_nn_error (*get_backend_status_func_t)(void *ctx, int type, char *buf, uint32_t buf_size);

static void *handle;
static init_backend_func_t wasi_init_backend;
static init_backend_with_config_func_t wasi_init_backend_with_config;
static load_by_name_with_configuration_func_t wasi_load_by_name_with_config;
static init_execution_context_func_t wasi_init_execution_context;
static init_execution_context_with_session_id_func_t wasi_init_execution_context_with_session_id;
static close_execution_context_func_t wasi_close_execution_context;
static run_inference_func_t wasi_run_inference;
static set_input_func_t wasi_set_input;
static compute_func_t wasi_compute;
static get_output_func_t wasi_get_output;
static deinit_backend_func_t wasi_deinit_backend;
static get_backend_status_func_t wasi_get_backend_status;

static int setup_library(void) {
    handle = dlopen(LIBRARY, RTLD_LAZY);
    if (!handle) {
        printf("# %s\n", dlerror());
        return 0;
    }
    *(void **)(&wasi_init_backend) = dlsym(handle, "init_backend");
    *(void **)(&wasi_init_backend_with_config) = dlsym(handle, "init_backend_with_config");
    *(void **)(&wasi_load_by_name_with_config) = dlsym(handle, "load_by_name_with_config");
    *(void **)(&wasi_init_execution_context) = dlsym(handle, "init_execution_context");
    *(void **)(&wasi_init_execution_context_with_session_id) = dlsym(handle, "init_execution_context_with_session_id");
    *(void **)(&wasi_close_execution_context) = dlsym(handle, "close_execution_context");
    *(void **)(&wasi_run_inference) = dlsym(handle, "run_inference");
    *(void **)(&wasi_set_input) = dlsym(handle, "set_input");
    *(void **)(&wasi_compute) = dlsym(handle, "compute");
    *(void **)(&wasi_get_output) = dlsym(handle, "get_output");
    *(void **)(&wasi_deinit_backend) = dlsym(handle, "deinit_backend");
    *(void **)(&wasi_get_backend_status) = dlsym(handle, "get_backend_status");
    return dlerror() == NULL;
}

/* --------------------------------------------------------------- helpers */

/* The original suite's setup_tensor: {NULL, 0} dimensions, a C string. */
static tensor_dimensions global_text_dims = {NULL, 0};

static tensor *setup_tensor(tensor *t, const char *data, tensor_type type) {
    t->data = (uint8_t *)data;
    t->dimensions = &global_text_dims;
    t->type = type;
    return t;
}

/* A text tensor whose length is its dimensions, {len}. */
typedef struct {
    tensor t;
    tensor_dimensions dims;
    uint32_t dim[1];
} sized_tensor;

static tensor *sized(sized_tensor *s, const char *text, tensor_type type) {
    s->dim[0] = (uint32_t)strlen(text);
    s->dims.buf = s->dim;
    s->dims.size = 1;
    s->t.dimensions = &s->dims;
    s->t.type = type;
    s->t.data = (uint8_t *)text;
    return &s->t;
}

typedef struct {
    wasi_nn_error err;
    char out[4096];
    uint32_t size;
} reply;

static reply infer_tensor(void *ctx, graph_execution_context exec, uint32_t index, tensor *t, const char *cfg) {
    reply r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r.out;
    r.err = wasi_run_inference(ctx, exec, index, t, (uint8_t *)r.out, &r.size, cfg, cfg ? (uint32_t)strlen(cfg) : 0);
    return r;
}

static reply infer(void *ctx, graph_execution_context exec, uint32_t index, const char *prompt, const char *cfg) {
    tensor t;
    return infer_tensor(ctx, exec, index, setup_tensor(&t, prompt, up8), cfg);
}

static long long json_int(const char *doc, const char *key) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(doc, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

static const char *status(void *ctx, int type) {
    static char buf[1 << 16];
    buf[0] = '\0';
    if (wasi_get_backend_status(ctx, type, buf, sizeof buf) != success) buf[0] = '\0';
    return buf;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static wasi_nn_error load(void *ctx, const char *path, const char *cfg, graph *g) {
    return wasi_load_by_name_with_config(ctx, path, (uint32_t)strlen(path), cfg, cfg ? (uint32_t)strlen(cfg) : 0, g);
}

/* ---------------------------------------------------------------- configs */

/* The original suite's backend configs: flat, and nested with sections and
 * keys this library does not have (logged and ignored). */
static const char *const LEGACY_FLAT =
    "{\"max_sessions\":25,\"idle_timeout_ms\":150000,\"auto_cleanup\":false,\"max_concurrent\":2,\"queue_size\":10}";
static const char *const ENHANCED_NESTED =
    "{\"backend\":{\"max_sessions\":100,\"idle_timeout_ms\":300000,\"auto_cleanup\":true,\"max_concurrent\":8,"
    "\"queue_size\":50},\"memory_policy\":{\"context_shifting\":true,\"cache_strategy\":\"lru\","
    "\"max_cache_tokens\":10000},\"logging\":{\"level\":\"info\",\"enable_debug\":false},"
    "\"performance\":{\"batch_processing\":true,\"batch_size\":512}}";
/* Model configs: flat (with a sampling section, as test_basic_inference),
 * and nested with n_predict under "model" (as test_advanced_sampling). */
static const char *const MODEL_FLAT = "{\"n_gpu_layers\":98,\"ctx_size\":2048,\"n_predict\":32,\"sampling\":{\"temp\":0}}";
static const char *const MODEL_NESTED =
    "{\"model\":{\"n_gpu_layers\":98,\"ctx_size\":1024,\"n_predict\":12,\"batch_size\":512,\"threads\":2},"
    "\"sampling\":{\"temp\":0,\"top_k\":40,\"seed\":12345},\"stopping\":{\"ignore_eos\":false},"
    "\"memory\":{\"context_shifting\":true,\"cache_prompt\":true,\"max_cache_tokens\":10000}}";
/* Phase 4.2's queue settings. */
static const char *const QUEUE_CONFIG =
    "{\"model\":{\"n_gpu_layers\":49,\"ctx_size\":2048,\"n_predict\":32,\"batch_size\":512,\"threads\":2},"
    "\"sampling\":{\"temp\":0},\"backend\":{\"max_sessions\":100,\"max_concurrent\":2,\"queue_size\":5,"
    "\"default_task_timeout_ms\":30000,\"priority_scheduling_enabled\":true,\"fair_scheduling_enabled\":true,"
    "\"queue_warning_threshold\":4,\"queue_reject_threshold\":5}}";

/* ------------------------------------------------------------------ tests */

static void test_configs(void) {
    void *ctx = NULL;
    if (expect_code(wasi_init_backend(&ctx), success, "init_backend")) {
        expect_code(wasi_deinit_backend(ctx), success, "deinit_backend");
    }
    const char *const configs[] = {LEGACY_FLAT, ENHANCED_NESTED};
    const char *const names[] = {"the legacy flat backend config", "the enhanced nested backend config"};
    for (int i = 0; i < 2; i++) {
        char what[128];
        snprintf(what, sizeof what, "init_backend_with_config, %s", names[i]);
        if (!expect_code(wasi_init_backend_with_config(&ctx, configs[i], (uint32_t)strlen(configs[i])), success, what))
            continue;
        graph g = 0;
        graph_execution_context exec = 0;
        expect_code(load(ctx, MODEL, MODEL_FLAT, &g), success, "load_by_name_with_config, a flat model config");
        wasi_init_execution_context(ctx, g, &exec);
        reply r = infer(ctx, exec, 0, PROMPT, NULL);
        check(r.err == success && strcmp(r.out, GOLDEN) == 0, "run_inference: the golden text (n_predict 32, temp 0)");
        expect_code(wasi_deinit_backend(ctx), success, "deinit_backend");
    }
    /* n_predict under "model": 12 tokens. */
    if (expect_code(wasi_init_backend(&ctx), success, "init_backend")) {
        graph g = 0;
        graph_execution_context exec = 0;
        expect_code(load(ctx, MODEL, MODEL_NESTED, &g), success,
                    "load_by_name_with_config, nested config with n_predict 12 under model");
        wasi_init_execution_context(ctx, g, &exec);
        reply r = infer(ctx, exec, 1, PROMPT, NULL);
        check(r.err == success && json_int(r.out, "output_tokens") == 12, "n_predict under model applies: %lld tokens",
              json_int(r.out, "output_tokens"));
        wasi_deinit_backend(ctx);
    }
}

static void test_text_tensors(void *ctx, graph g) {
    struct {
        const char *what;
        int sized;
        tensor_type type;
        wasi_nn_error want;
    } cases[] = {
        {"up8 (2), dimensions {NULL, 0}", 0, up8, success},
        {"up8 (2), dimensions {len}", 1, up8, success},
        {"fp32 (1), dimensions {NULL, 0}, as the original setup_tensor", 0, fp32, success},
        {"type 4 (u8 in WAMR's ephemeral numbering), dimensions {len}", 1, (tensor_type)4, success},
        {"fp32 (1) with dimensions {len}: numbers, not text", 1, fp32, invalid_argument},
        {"ip32 (3) with dimensions {len}", 1, ip32, invalid_argument},
        {"fp16 (0) with dimensions {len}", 1, fp16, invalid_argument},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        graph_execution_context exec = 0;
        wasi_init_execution_context(ctx, g, &exec);
        tensor t;
        sized_tensor st;
        tensor *in = cases[i].sized ? sized(&st, PROMPT, cases[i].type) : setup_tensor(&t, PROMPT, cases[i].type);
        reply r = infer_tensor(ctx, exec, 0, in, NULL);
        char what[160];
        snprintf(what, sizeof what, "run_inference, text tensor %s", cases[i].what);
        if (expect_code(r.err, cases[i].want, what) && cases[i].want == success) {
            check(strcmp(r.out, GOLDEN) == 0 && r.size == strlen(GOLDEN) + 1, "... the golden text, NUL counted");
        }
        expect_code(wasi_set_input(ctx, exec, 0, in), cases[i].want, "set_input with the same tensor");
        wasi_close_execution_context(ctx, exec);
    }
}

static void test_runtime_configs(void *ctx, graph g) {
    graph_execution_context exec = 0;
    wasi_init_execution_context(ctx, g, &exec);
    /* The original suite's Test 6: it must still work, with the defaults.
     * The graph is greedy: temperature 0.8 would not give the golden text. */
    reply r = infer(ctx, exec, 0, PROMPT, "{\"temperature\":0.8,\"invalid_json");
    expect_code(r.err, success, "run_inference, runtime config {\"temperature\":0.8,\"invalid_json");
    check(strcmp(r.out, GOLDEN) == 0, "... ran with the graph's settings: the golden text");
    wasi_close_execution_context(ctx, exec);
    wasi_init_execution_context(ctx, g, &exec);
    r = infer(ctx, exec, 0, PROMPT, "{\"temperature\":-1}");
    expect_code(r.err, invalid_argument, "run_inference, a parsable runtime config with a bad value");
    r = infer(ctx, exec, 0, PROMPT, "[1,2]");
    expect_code(r.err, invalid_argument, "run_inference, a runtime config that is JSON but not an object");
    /* Everywhere else an unparsable config stays invalid_argument. */
    tensor t;
    expect_code(wasi_set_input(ctx, exec, 1, setup_tensor(&t, "{\"temperature\":0.8,\"invalid_json", up8)),
                invalid_argument, "set_input index 1, the same malformed document");
    graph g2 = 0;
    expect_code(load(ctx, MODEL, "{\"temperature\":0.8,\"invalid_json", &g2), invalid_argument,
                "load_by_name_with_config, the same malformed document");
    void *ctx2 = NULL;
    const char *bad = "{\"incomplete\":";
    expect_code(wasi_init_backend_with_config(&ctx2, bad, (uint32_t)strlen(bad)), invalid_argument,
                "init_backend_with_config, malformed JSON");
    /* Stop strings and max_tokens, per request. */
    wasi_close_execution_context(ctx, exec);
    wasi_init_execution_context(ctx, g, &exec);
    r = infer(ctx, exec, 0, PROMPT, "{\"stop\":[\"Lily\"]}");
    check(r.err == success && strcmp(r.out, ", there was a little girl named ") == 0,
          "runtime config {\"stop\":[\"Lily\"]}: the reply ends before the stop string: \"%s\"", r.out);
    wasi_close_execution_context(ctx, exec);
    wasi_init_execution_context(ctx, g, &exec);
    r = infer(ctx, exec, 1, PROMPT, "{\"max_tokens\":8}");
    check(r.err == success && json_int(r.out, "output_tokens") == 8 && strstr(r.out, "\"stop_reason\":\"max_tokens\""),
          "runtime config {\"max_tokens\":8}: 8 tokens, stop reason max_tokens");
    wasi_close_execution_context(ctx, exec);
}

static void test_sessions(void) {
    void *ctx = NULL;
    const char *cfg = "{\"max_sessions\":10,\"idle_timeout_ms\":600000,\"auto_cleanup\":true}";
    if (!expect_code(wasi_init_backend_with_config(&ctx, cfg, (uint32_t)strlen(cfg)), success,
                     "init_backend_with_config, the session settings"))
        return;
    graph g = 0;
    load(ctx, MODEL, MODEL_FLAT, &g);
    /* An anonymous execution context keeps its history while it is open. */
    graph_execution_context exec = 0;
    wasi_init_execution_context(ctx, g, &exec);
    reply a = infer(ctx, exec, 1, "Hello, my name is Alice.", NULL);
    reply b = infer(ctx, exec, 1, "What is my name?", NULL);
    check(a.err == success && b.err == success &&
              json_int(b.out, "input_tokens") > json_int(a.out, "input_tokens") + json_int(a.out, "output_tokens"),
          "the second message's prompt holds the first turn (%lld > %lld + %lld tokens)", json_int(b.out, "input_tokens"),
          json_int(a.out, "input_tokens"), json_int(a.out, "output_tokens"));
    check(json_int(b.out, "cached_tokens") > 0, "... and reuses its KV (%lld cached tokens)", json_int(b.out, "cached_tokens"));
    wasi_close_execution_context(ctx, exec);
    /* A named session outlives its handle. */
    graph_execution_context s1 = 0, s2 = 0;
    expect_code(wasi_init_execution_context_with_session_id(ctx, "alice", &s1), success,
                "init_execution_context_with_session_id(\"alice\")");
    reply t1 = infer(ctx, s1, 1, "Hello, my name is Alice.", NULL);
    expect_code(wasi_close_execution_context(ctx, s1), success, "close it");
    wasi_init_execution_context_with_session_id(ctx, "alice", &s2);
    reply t2 = infer(ctx, s2, 1, "What is my name?", NULL);
    check(t1.err == success && t2.err == success && strstr(t2.out, "\"session_id\":\"alice\"") &&
              json_int(t2.out, "input_tokens") > json_int(t1.out, "input_tokens") + json_int(t1.out, "output_tokens"),
          "reopened, \"alice\" continues her history");
    graph_execution_context bob = 0;
    wasi_init_execution_context_with_session_id(ctx, "bob", &bob);
    reply t3 = infer(ctx, bob, 0, PROMPT, NULL);
    check(t3.err == success && strcmp(t3.out, GOLDEN) == 0, "\"bob\" does not see it: the golden text");
    check(json_int(status(ctx, STATUS_SESSIONS), "named") == 2, "the SESSIONS status counts 2 named sessions");
    /* Chat mode: the turns go through the template with the history. */
    graph gc = 0;
    expect_code(load(ctx, MODEL, "{\"n_predict\":8,\"temp\":0,\"chat_template\":\"chatml\"}", &gc), success,
                "load_by_name_with_config, chat_template chatml");
    graph_execution_context chat = 0;
    wasi_init_execution_context_with_session_id(ctx, "carol", &chat);
    reply c1 = infer(ctx, chat, 1, "Hello!", NULL);
    reply c2 = infer(ctx, chat, 1, "Tell me a story.", NULL);
    check(c1.err == success && c2.err == success && strstr(c2.out, "\"mode\":\"chat\"") &&
              json_int(c2.out, "input_tokens") > json_int(c1.out, "input_tokens") + json_int(c1.out, "output_tokens"),
          "chat mode: the second turn's prompt holds the first turn");
    expect_code(wasi_deinit_backend(ctx), success, "deinit_backend");
}

/* A request that generates until its handle is closed. */
typedef struct {
    void *ctx;
    graph_execution_context exec;
    const char *cfg;
    reply r;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    j->r = infer(j->ctx, j->exec, 0, PROMPT, j->cfg);
    return NULL;
}

static const char *const ENDLESS = "{\"max_tokens\":-1,\"ignore_eos\":true}";

/* Waits until the QUEUE status's `key` reaches `want` (no time limit: the
 * test's TIMEOUT is the limit); 0 when the status cannot be read. */
static int wait_status(void *ctx, const char *key, long long want) {
    for (;;) {
        const char *doc = status(ctx, STATUS_QUEUE);
        if (doc[0] == '\0') return 0;
        if (json_int(doc, key) >= want) return 1;
        sleep_ms(5);
    }
}

static void test_queue(void) {
    void *ctx = NULL;
    if (!expect_code(wasi_init_backend_with_config(&ctx, QUEUE_CONFIG, (uint32_t)strlen(QUEUE_CONFIG)), success,
                     "init_backend_with_config, the phase 4.2 queue settings"))
        return;
    graph g = 0;
    expect_code(load(ctx, MODEL, NULL, &g), success, "load_by_name_with_config, NULL config");
    const char *q = status(ctx, STATUS_QUEUE);
    check(json_int(q, "max_concurrent") == 2 && json_int(q, "queue_size") == 5 && json_int(q, "warning") == 4,
          "the QUEUE status shows max_concurrent 2, queue_size 5, warning 4");
    /* The original refused a third execution context at max_concurrent 2;
     * here all three open, and the third's request waits for a slot. */
    job jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i].ctx = ctx;
        jobs[i].cfg = i < 2 ? ENDLESS : NULL;
        expect_code(wasi_init_execution_context(ctx, g, &jobs[i].exec), success, "init_execution_context");
    }
    pthread_create(&th[0], NULL, run_job, &jobs[0]);
    pthread_create(&th[1], NULL, run_job, &jobs[1]);
    check(wait_status(ctx, "running", 2), "two requests running");
    pthread_create(&th[2], NULL, run_job, &jobs[2]);
    check(wait_status(ctx, "total", 1), "with two requests running, the third waits in the queue");
    expect_code(wasi_close_execution_context(ctx, jobs[0].exec), success, "close the first (cancels its request)");
    pthread_join(th[0], NULL);
    pthread_join(th[2], NULL);
    expect_code(jobs[0].r.err, runtime_error, "the first request: cancelled");
    check(jobs[2].r.err == success && strcmp(jobs[2].r.out, GOLDEN) == 0,
          "the third request ran once a slot was free: the golden text");
    wasi_close_execution_context(ctx, jobs[1].exec);
    pthread_join(th[1], NULL);
    wasi_deinit_backend(ctx);

    /* queue_size 0: never wait, so the third is refused at once (busy, which
     * this ABI reports as runtime_error). */
    const char *no_queue = "{\"temp\":0,\"n_predict\":32,\"max_concurrent\":2,\"queue_size\":0}";
    if (!expect_code(wasi_init_backend_with_config(&ctx, no_queue, (uint32_t)strlen(no_queue)), success,
                     "init_backend_with_config, queue_size 0"))
        return;
    load(ctx, MODEL, NULL, &g);
    for (int i = 0; i < 3; i++) {
        jobs[i].ctx = ctx;
        wasi_init_execution_context(ctx, g, &jobs[i].exec);
    }
    pthread_create(&th[0], NULL, run_job, &jobs[0]);
    pthread_create(&th[1], NULL, run_job, &jobs[1]);
    check(wait_status(ctx, "running", 2), "two requests running");
    reply r = infer(ctx, jobs[2].exec, 0, PROMPT, NULL);
    expect_code(r.err, runtime_error, "queue_size 0, two running: the third is refused at once");
    for (int i = 0; i < 2; i++) wasi_close_execution_context(ctx, jobs[i].exec);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    wasi_deinit_backend(ctx);
}

/* The key for a host that wants the original's hard refusal (docs/abi.md,
 * "Differences from the original library"). Skipped, saying so, while this
 * build does not know the key: its config parser logs "unknown key ignored". */
static void test_max_exec_contexts(const char *log_path) {
    void *ctx = NULL;
    const char *cfg = "{\"max_concurrent\":2,\"max_exec_contexts\":2}";
    if (!expect_code(wasi_init_backend_with_config(&ctx, cfg, (uint32_t)strlen(cfg)), success,
                     "init_backend_with_config, max_exec_contexts 2"))
        return;
    int unknown = 0;
    FILE *f = fopen(log_path, "r");
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        unknown = unknown || (strstr(line, "unknown key ignored") && strstr(line, "max_exec_contexts"));
    }
    if (f) fclose(f);
    graph g = 0;
    load(ctx, MODEL, MODEL_FLAT, &g);
    graph_execution_context e1 = 0, e2 = 0, e3 = 0;
    if (unknown) {
        skip("max_exec_contexts 2: a third execution context is refused (this build logs \"unknown key ignored\" "
             "for max_exec_contexts)");
    } else {
        expect_code(wasi_init_execution_context(ctx, g, &e1), success, "max_exec_contexts 2: first");
        expect_code(wasi_init_execution_context(ctx, g, &e2), success, "max_exec_contexts 2: second");
        expect_code(wasi_init_execution_context(ctx, g, &e3), runtime_error, "max_exec_contexts 2: third refused");
        wasi_close_execution_context(ctx, e1);
        expect_code(wasi_init_execution_context(ctx, g, &e3), success, "after a close, a new one opens");
    }
    wasi_deinit_backend(ctx);
}

static void test_logging(const char *log_path) {
    void *ctx = NULL;
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"model\":{\"n_gpu_layers\":49,\"ctx_size\":2048,\"n_predict\":32},\"logging\":{\"level\":\"debug\","
             "\"enable_debug\":true,\"timestamps\":true,\"colors\":false,\"file\":\"%s\"},"
             "\"backend\":{\"max_sessions\":50,\"max_concurrent\":4,\"queue_size\":20}}",
             log_path);
    if (!expect_code(wasi_init_backend_with_config(&ctx, cfg, (uint32_t)strlen(cfg)), success,
                     "init_backend_with_config, the original suite's logging settings with a log file"))
        return;
    graph g = 0;
    graph_execution_context exec = 0;
    /* The backend config's own warnings came before the file was opened;
     * this load's unknown key is logged to it. */
    load(ctx, MODEL, "{\"n_predict\":32,\"temp\":0,\"colors\":false}", &g);
    wasi_init_execution_context(ctx, g, &exec);
    infer(ctx, exec, 0, PROMPT, NULL);
    wasi_deinit_backend(ctx);
    int lines = 0, request_done = 0, unknown = 0;
    FILE *f = fopen(log_path, "r");
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        request_done += strstr(line, "request done") != NULL;
        unknown += strstr(line, "unknown key ignored") != NULL && strstr(line, "colors") != NULL;
    }
    if (f) fclose(f);
    check(lines > 0 && request_done > 0, "the log file has %d lines, the request among them", lines);
    check(unknown > 0, "the unknown key \"colors\" is logged there and ignored");
}

static void test_switch_models(void) {
    void *ctx = NULL;
    if (!expect_code(wasi_init_backend(&ctx), success, "init_backend")) return;
    graph a = 0, b = 0, a2 = 0;
    graph_execution_context e = 0;
    expect_code(load(ctx, MODEL, MODEL_FLAT, &a), success, "load stories260K");
    wasi_init_execution_context_with_session_id(ctx, "s-a", &e);
    reply r = infer(ctx, e, 0, PROMPT, NULL);
    check(r.err == success && strcmp(r.out, GOLDEN) == 0, "a session on it: the golden text");
    wasi_close_execution_context(ctx, e);
    expect_code(load(ctx, MODEL_B, MODEL_FLAT, &b), success, "switch: load llama-2-tiny-random in the same context");
    check(b != a, "... a second graph (%u, %u)", a, b);
    wasi_init_execution_context_with_session_id(ctx, "s-b", &e);
    r = infer(ctx, e, 0, PROMPT, NULL);
    check(r.err == success && strncmp(r.out, GOLDEN_B_START, strlen(GOLDEN_B_START)) == 0,
          "a new session runs on the model loaded last: \"%.30s...\"", r.out);
    wasi_close_execution_context(ctx, e);
    expect_code(load(ctx, MODEL, MODEL_FLAT, &a2), success, "switch back: load stories260K again");
    check(a2 == a, "... the graph it already had (%u)", a2);
    wasi_init_execution_context_with_session_id(ctx, "s-c", &e);
    r = infer(ctx, e, 0, PROMPT, NULL);
    check(r.err == success && strcmp(r.out, GOLDEN) == 0, "a new session runs on stories260K again: the golden text");
    wasi_deinit_backend(ctx);
}

/* docs/abi.md, "Differences from the original library". */
static void test_differences(void) {
    void *ctx = NULL;
    if (!expect_code(wasi_init_backend(&ctx), success, "init_backend")) return;
    graph g = 0;
    graph_execution_context exec = 0;
    expect_code(load(ctx, MISSING_MODEL, NULL, &g), model_not_found,
                "a missing model: model_not_found (the original: runtime_error)");
    load(ctx, MODEL, MODEL_FLAT, &g);
    wasi_init_execution_context(ctx, g, &exec);
    /* Output larger than the buffer: the original wrote past it. */
    char small[24];
    memset(small, 0x5a, sizeof small);
    uint32_t size = 16;
    tensor t;
    expect_code(wasi_run_inference(ctx, exec, 0, setup_tensor(&t, PROMPT, up8), (uint8_t *)small, &size, NULL, 0),
                too_large, "run_inference into 16 bytes (the original wrote past the buffer)");
    check(size == strlen(GOLDEN) + 1, "... *out_size is the size needed, %u", size);
    int untouched = 1;
    for (size_t i = 0; i < sizeof small; i++) untouched = untouched && small[i] == 0x5a;
    check(untouched, "... nothing written");
    /* get_output writes the text (the original's was a stub). */
    wasi_close_execution_context(ctx, exec);
    wasi_init_execution_context(ctx, g, &exec);
    expect_code(wasi_set_input(ctx, exec, 0, setup_tensor(&t, PROMPT, up8)), success, "set_input, up8 {NULL, 0}");
    expect_code(wasi_compute(ctx, exec), success, "compute");
    char out[4096];
    size = sizeof out;
    expect_code(wasi_get_output(ctx, exec, 0, (uint8_t *)out, &size), success, "get_output");
    check(strcmp(out, GOLDEN) == 0 && size == strlen(GOLDEN) + 1, "get_output writes the reply and its NUL");
    /* Double deinit: the original freed twice. */
    expect_code(wasi_deinit_backend(ctx), success, "deinit_backend");
    expect_code(wasi_deinit_backend(ctx), not_found, "deinit_backend twice (the original freed twice)");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!check(setup_library(), "dlopen(%s) and the original suite's symbols", LIBRARY)) return 1;
    char log_path[] = "/tmp/wasi-nn-original-header-XXXXXX";
    int fd = mkstemp(log_path);
    if (fd >= 0) close(fd);

    test_configs();
    void *ctx = NULL;
    if (expect_code(wasi_init_backend_with_config(&ctx, LEGACY_FLAT, (uint32_t)strlen(LEGACY_FLAT)), success,
                    "init_backend_with_config")) {
        graph g = 0;
        if (expect_code(load(ctx, MODEL, MODEL_FLAT, &g), success, "load_by_name_with_config")) {
            test_text_tensors(ctx, g);
            test_runtime_configs(ctx, g);
        }
        wasi_deinit_backend(ctx);
    }
    test_sessions();
    test_queue();
    test_switch_models();
    test_differences();
    /* Last: logging is process-wide, and the file stays the log's. */
    test_logging(log_path);
    test_max_exec_contexts(log_path);
    unlink(log_path);

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
