/*
 * libwasi_nn_backend.so driven exactly as HyperBEAM's NIF drives it (issue
 * #11 §1, docs/hyperbeam.md): dlopen() with RTLD_LAZY, only the six symbols
 * the NIF looks up, and every request as the NIF makes it, under one mutex:
 *
 *   load_by_name_with_config(ctx, path, strlen(path), cfg, strlen(cfg), &g);  g thrown away
 *   init_execution_context_with_session_id(ctx, id, &exec);
 *   run_inference(ctx, exec, 0, &t, out, &out_size, opts);                    7 arguments
 *
 * with t = { .dimensions = NULL, .type = fp32 (1), .data = "the prompt" },
 * out an 8,192-byte buffer and out_size 8192 (older NIFs: 0), opts "", "{}",
 * JSON or NULL, through a function-pointer type without the 8th parameter,
 * so that the library reads runtime_config_len from a stack slot holding
 * garbage (see call_like_the_nif). Then the NIF's cleanup habits: closes
 * only of non-zero handles, several holders of one session, 10,000 repeated
 * loads that must grow nothing, double deinit_backend, and processes that
 * exit or dlclose the library without deinit_backend (child processes of
 * this program: `hyperbeam_habits_test --child MODE`).
 *
 * get_backend_status is looked up too, for this test's own checks only.
 *
 * Prints one "ok - ..." / "not ok - ..." line per check and ends with
 * "N passed, M failed"; exits non-zero when anything failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wasi_nn_backend.h"

#define MODEL WNL_MODELS_DIR "/stories260K.gguf"
#define LIBRARY WNL_LIB_DIR "/libwasi_nn_backend.so"
#define OUT_CAPACITY 8192 /* the NIF's MAX_OUTPUT_SIZE */

extern char **environ;

static const char *const PROMPT = "Once upon a time";
/* stories260K, greedy, 32 tokens, the prompt not echoed (models/README.md). */
static const char *const GOLDEN =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw";
/* The NIF sends the same document to init_backend_with_config and to every
 * load_by_name_with_config; this one is greedy and 32 tokens, in the nested
 * shape (docs/hyperbeam.md). */
static const char *const CONFIG =
    "{\"model\":{\"n_ctx\":2048,\"n_predict\":32,\"n_gpu_layers\":98},\"sampling\":{\"temperature\":0},"
    "\"stopping\":{\"max_tokens\":32},\"backend\":{\"max_sessions\":64}}";
/* The two shapes docs/hyperbeam.md documents, as HyperBEAM sends them. */
static const char *const FLAT_CONFIG = "{\"n_gpu_layers\":98,\"ctx_size\":2048}";
static const char *const NESTED_CONFIG =
    "{\"model\":{\"n_ctx\":8192,\"n_gpu_layers\":98,\"n_threads\":2},"
    "\"sampling\":{\"temperature\":0.7,\"top_p\":0.9},\"stopping\":{\"max_tokens\":512},"
    "\"backend\":{\"max_sessions\":2}}";

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

/* --------------------------------------------------- the NIF's view of it */

/* The NIF's function-pointer types (wasi_nn_nif.h in HyperBEAM). Its
 * run_inference type has 7 parameters: the header it was written against
 * declares an 8th, runtime_config_len, that the call never passes. */
typedef wasi_nn_error (*init_backend_with_config_fn)(void **, const char *, uint32_t);
typedef wasi_nn_error (*deinit_backend_fn)(void *);
typedef wasi_nn_error (*load_by_name_with_config_fn)(void *, const char *, uint32_t, const char *, uint32_t,
                                                    graph *);
typedef wasi_nn_error (*init_execution_context_fn)(void *, const char *, graph_execution_context *);
typedef wasi_nn_error (*close_execution_context_fn)(void *, graph_execution_context);
typedef wasi_nn_error (*run_inference_fn)(void *, graph_execution_context, uint32_t, tensor *, tensor_data,
                                          uint32_t *, const char *);
/* This test's own: */
typedef wasi_nn_error (*get_backend_status_fn)(void *, backend_status_type, char *, uint32_t);
/* The library's real run_inference type, for the probe below. */
typedef wasi_nn_error (*run_inference8_fn)(void *, graph_execution_context, uint32_t, tensor *, uint8_t *,
                                           uint32_t *, const char *, uint32_t);

static struct {
    void *handle;
    init_backend_with_config_fn init_backend_with_config;
    deinit_backend_fn deinit_backend;
    load_by_name_with_config_fn load_by_name_with_config;
    init_execution_context_fn init_execution_context;
    close_execution_context_fn close_execution_context;
    run_inference_fn run_inference;
    get_backend_status_fn get_backend_status;
} nif;

static int open_library(void) {
    nif.handle = dlopen(LIBRARY, RTLD_LAZY);
    if (!nif.handle) {
        printf("# dlopen(%s): %s\n", LIBRARY, dlerror());
        return 0;
    }
    *(void **)&nif.init_backend_with_config = dlsym(nif.handle, "init_backend_with_config");
    *(void **)&nif.deinit_backend = dlsym(nif.handle, "deinit_backend");
    *(void **)&nif.load_by_name_with_config = dlsym(nif.handle, "load_by_name_with_config");
    *(void **)&nif.init_execution_context = dlsym(nif.handle, "init_execution_context_with_session_id");
    *(void **)&nif.close_execution_context = dlsym(nif.handle, "close_execution_context");
    *(void **)&nif.run_inference = dlsym(nif.handle, "run_inference");
    *(void **)&nif.get_backend_status = dlsym(nif.handle, "get_backend_status");
    return nif.init_backend_with_config && nif.deinit_backend && nif.load_by_name_with_config &&
           nif.init_execution_context && nif.close_execution_context && nif.run_inference &&
           nif.get_backend_status;
}

/* ---------------------------------------------- the 7-argument call, real */

/* What the 8th argument's slot holds when the library reads it: a value in
 * the range seen from HyperBEAM (0.6 G to 4.1 G). */
#define GARBAGE_LEN 0xE6A5F00Du

/* An 8-argument call made just before the 7-argument one, from the same
 * frame: on x86-64 the 7th and 8th arguments go on the stack, at the same
 * place for both calls, so this leaves GARBAGE_LEN where the 7-argument
 * call writes nothing (on AArch64 all eight go in registers, and it leaves
 * GARBAGE_LEN in x7). The pointer is volatile so the call is not optimised
 * away. */
static void plant(long a, long b, long c, long d, long e, long f, long g, unsigned long h) {
    (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h;
}
static void (*volatile plant_ptr)(long, long, long, long, long, long, long, unsigned long) = plant;
static volatile wasi_nn_error g_sink;

typedef struct {
    run_inference_fn fn;
    void *ctx;
    graph_execution_context exec;
    tensor *input;
    uint8_t *out;
    uint32_t *out_size;
    const char *opts;
} nif_call;

/* The NIF's call, through its 7-parameter type. The argument block comes by
 * pointer and the result is stored before returning, so this is never a
 * tail call whose stack slots would be the caller's. */
static __attribute__((noinline)) wasi_nn_error call_like_the_nif(const nif_call *c) {
    plant_ptr(1, 2, 3, 4, 5, 6, 7, GARBAGE_LEN);
    wasi_nn_error r = c->fn(c->ctx, c->exec, 0, c->input, c->out, c->out_size, c->opts);
    g_sink = r;
    return r;
}

/* How we know the library sees garbage: the same call, from the same code,
 * into a function with the library's 8-parameter type that records what it
 * finds in runtime_config_len. */
static uint32_t g_probe_len;
static const char *g_probe_opts;
static wasi_nn_error probe(void *ctx, graph_execution_context exec, uint32_t index, tensor *input, uint8_t *out,
                           uint32_t *out_size, const char *runtime_config, uint32_t runtime_config_len) {
    (void)ctx, (void)exec, (void)index, (void)input, (void)out, (void)out_size;
    g_probe_opts = runtime_config;
    g_probe_len = runtime_config_len;
    return success;
}

static void test_the_slot_holds_garbage(void) {
    run_inference8_fn real = probe;
    nif_call c = {(run_inference_fn)(void *)real, NULL, 1, NULL, NULL, NULL, "{}"};
    g_probe_len = 0;
    call_like_the_nif(&c);
    check(g_probe_opts == c.opts, "probe: the 7th argument arrives as runtime_config");
    check(g_probe_len == GARBAGE_LEN,
          "probe: a 7-argument call leaves runtime_config_len = 0x%08X (garbage, %.1f G) for the callee", g_probe_len,
          g_probe_len / 1e9);
}

/* ------------------------------------------------------- one NIF request */

static void *g_ctx;
static pthread_mutex_t g_nif_mutex = PTHREAD_MUTEX_INITIALIZER; /* the NIF's g_backend_mutex */

typedef struct {
    const char *session;
    const char *prompt;
    const char *opts;      /* "", "{}", JSON or NULL */
    uint32_t out_size_in;  /* 8192, or 0 as older NIFs pass */
    wasi_nn_error load, init, run;
    graph g;
    graph_execution_context exec;
    char out[OUT_CAPACITY];
    uint32_t out_size;
} nif_request;

static void run_request(nif_request *r) {
    pthread_mutex_lock(&g_nif_mutex);
    r->load = nif.load_by_name_with_config(g_ctx, MODEL, (uint32_t)strlen(MODEL), CONFIG, (uint32_t)strlen(CONFIG),
                                           &r->g);
    r->exec = 0;
    r->init = nif.init_execution_context(g_ctx, r->session, &r->exec);
    r->out_size = r->out_size_in;
    memset(r->out, 0x5a, sizeof r->out);
    tensor t = {.dimensions = NULL, .type = fp32, .data = (tensor_data)r->prompt};
    nif_call c = {nif.run_inference, g_ctx, r->exec, &t, (uint8_t *)r->out, &r->out_size, r->opts};
    r->run = call_like_the_nif(&c);
    pthread_mutex_unlock(&g_nif_mutex);
}

static nif_request *request(const char *session, const char *prompt, const char *opts) {
    nif_request *r = calloc(1, sizeof *r);
    r->session = session;
    r->prompt = prompt;
    r->opts = opts;
    r->out_size_in = OUT_CAPACITY;
    run_request(r);
    return r;
}

/* What the NIF keeps: out_size bytes, the reply and its NUL. */
static int reply_is(const nif_request *r, const char *want) {
    return r->run == success && r->out_size == strlen(want) + 1 && memcmp(r->out, want, r->out_size) == 0;
}

/* --------------------------------------------------------------- status */

static char g_status[1 << 16];

static const char *status(backend_status_type type) {
    g_status[0] = '\0';
    if (nif.get_backend_status(g_ctx, type, g_status, sizeof g_status) != success) g_status[0] = '\0';
    return g_status;
}

/* The integer after "key": in a JSON document, or -1. */
static long long json_int(const char *doc, const char *key) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(doc, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

/* The document without its "process_rss_bytes" field, which moves with
 * every allocation of the process. */
static void without_rss(const char *doc, char *out, size_t cap) {
    snprintf(out, cap, "%s", doc);
    char *p = strstr(out, "\"process_rss_bytes\":");
    if (!p) return;
    char *e = p + strlen("\"process_rss_bytes\":");
    while (*e >= '0' && *e <= '9') e++;
    if (*e == ',') e++;
    memmove(p, e, strlen(e) + 1);
}

static long rss_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int library_mapped(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    if (!f) return -1;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, "libwasi_nn_backend.so") != NULL;
    fclose(f);
    return found;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (no time limit: the test's TIMEOUT is the limit) until the queue
 * status reports `running` requests in the loop. */
static void wait_running(long long running) {
    for (;;) {
        const char *doc = status(BACKEND_STATUS_QUEUE);
        if (doc[0] == '\0') {
            fprintf(stderr, "the QUEUE status cannot be read\n");
            _exit(88);
        }
        if (json_int(doc, "running") >= running) return;
        sleep_ms(5);
    }
}

/* ------------------------------------------------------------ the habits */

static void test_requests(void) {
    /* The NIF's first request, on a fresh session: the golden text. */
    nif_request *r = request("hb-golden", PROMPT, "");
    expect_code(r->load, success, "load_by_name_with_config (graph thrown away)");
    expect_code(r->init, success, "init_execution_context_with_session_id");
    check(r->exec != 0, "the execution context is not 0 (the NIF closes only a non-zero one): %u", r->exec);
    expect_code(r->run, success, "run_inference, 7 arguments, opts \"\", fp32 tensor with NULL dimensions");
    check(reply_is(r, GOLDEN), "the reply is the golden text and out_size counts its NUL (%u): \"%.*s\"",
          r->out_size, (int)strnlen(r->out, 100), r->out);
    check(r->out_size < OUT_CAPACITY && r->out[r->out_size] == 0x5a, "nothing written past the NUL");
    free(r);

    /* Every options form the NIF sends, NULL included, each on a fresh session. */
    static const char *const forms[] = {"{}", "", NULL, "{\"max_tokens\":32}"};
    static const char *const names[] = {"hb-opts-braces", "hb-opts-empty", "hb-opts-null", "hb-opts-json"};
    for (int i = 0; i < 4; i++) {
        r = request(names[i], PROMPT, forms[i]);
        check(reply_is(r, GOLDEN), "opts %s%s%s: success and the golden text", forms[i] ? "\"" : "",
              forms[i] ? forms[i] : "NULL", forms[i] ? "\"" : "");
        free(r);
    }
    /* Sampling options: not greedy, but a reply. */
    r = request("hb-opts-sampling", PROMPT, "{\"seed\":42,\"temperature\":0.1}");
    check(r->run == success && r->out_size > 1 && r->out[r->out_size - 1] == '\0',
          "opts {\"seed\":42,\"temperature\":0.1}: success, %u bytes with the NUL", r->out_size);
    free(r);
    /* A bad value in a parsable document is still refused. */
    r = request("hb-opts-bad", PROMPT, "{\"temperature\":-1}");
    expect_code(r->run, invalid_argument, "opts {\"temperature\":-1} (parses, bad value)");
    free(r);

    /* Older NIFs pass *out_size = 0: too_large and the size needed. */
    nif_request *old = calloc(1, sizeof *old);
    old->session = "hb-old-nif";
    old->prompt = PROMPT;
    old->opts = NULL;
    old->out_size_in = 0;
    run_request(old);
    expect_code(old->run, too_large, "run_inference with *out_size = 0 (older NIFs)");
    check(old->out_size == strlen(GOLDEN) + 1, "... *out_size is the size needed, %u", old->out_size);
    check(old->out[0] == 0x5a, "... nothing written");
    free(old);
}

/* A session's next request continues its history; another session does not
 * see it; requests from several threads, serialised by the NIF's mutex. */
typedef struct {
    char session[32];
    nif_request *first, *second;
} session_job;

static void *session_worker(void *arg) {
    session_job *j = arg;
    j->first = request(j->session, PROMPT, "{}");
    j->second = request(j->session, " Then", "{}");
    return NULL;
}

static void test_many_sessions(void) {
    enum { N = 8 };
    session_job jobs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        snprintf(jobs[i].session, sizeof jobs[i].session, "hb-user-%d", i);
        pthread_create(&th[i], NULL, session_worker, &jobs[i]);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    int golden = 0, continued = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        ok += jobs[i].first->run == success && jobs[i].second->run == success;
        golden += reply_is(jobs[i].first, GOLDEN);
        continued += jobs[i].second->run == success && !reply_is(jobs[i].second, GOLDEN) &&
                     strcmp(jobs[i].second->out, jobs[0].second->out) == 0;
    }
    check(ok == N, "%d sessions from %d threads: every request succeeds (%d)", N, N, ok);
    check(golden == N, "each session's first reply is the golden text (%d of %d)", golden, N);
    check(continued == N, "each session's second reply continues its own history, the same for all (%d of %d)",
          continued, N);
    for (int i = 0; i < N; i++) {
        free(jobs[i].first);
        free(jobs[i].second);
    }
}

/* Several Erlang terms hold one session: each came from its own init, and
 * garbage collection closes each once, in any order. */
static void test_session_holders(void) {
    enum { TERMS = 24 };
    graph_execution_context exec[TERMS];
    int same = 1, nonzero = 1;
    nif_request *r = NULL;
    for (int i = 0; i < TERMS; i++) {
        free(r);
        r = request("hb-held", PROMPT, "{\"max_tokens\":2}");
        exec[i] = r->exec;
        same = same && r->init == success && r->run == success && exec[i] == exec[0];
        nonzero = nonzero && exec[i] != 0;
    }
    check(same, "%d requests on one session (load + init + run each): one handle, %u, every run succeeds", TERMS,
          exec[0]);
    check(nonzero, "... never handle 0");
    free(r);
    /* GC closes all but the last term: the last one still works. */
    int closes_ok = 1;
    for (int i = 0; i < TERMS - 1; i++) {
        if (exec[i] != 0) closes_ok = closes_ok && nif.close_execution_context(g_ctx, exec[i]) == success;
    }
    check(closes_ok, "garbage collection closes %d of the terms: each close succeeds", TERMS - 1);
    char out[OUT_CAPACITY];
    uint32_t size = sizeof out;
    tensor t = {.dimensions = NULL, .type = fp32, .data = (tensor_data)PROMPT};
    nif_call c = {nif.run_inference, g_ctx, exec[TERMS - 1], &t, (uint8_t *)out, &size, "{\"max_tokens\":4}"};
    expect_code(call_like_the_nif(&c), success, "the last live term's handle still runs");
    expect_code(nif.close_execution_context(g_ctx, exec[TERMS - 1]), success, "its close succeeds");
    size = sizeof out;
    expect_code(call_like_the_nif(&c), not_found, "after the last close the handle is gone");
    expect_code(nif.close_execution_context(g_ctx, exec[TERMS - 1]), not_found, "closing it again");

    /* A new init on the session after that: a new handle, its history kept. */
    r = request("hb-held", PROMPT, "{\"max_tokens\":4}");
    check(r->run == success && r->exec != exec[0] && r->exec != 0,
          "a new init on the closed session opens a new handle (%u) that runs", r->exec);
    nif.close_execution_context(g_ctx, r->exec);
    free(r);
}

/* The NIF loads before every request. 10,000 loads of the same file and
 * config: the same graph, and nothing grows. */
static void test_repeated_loads(void) {
    enum { WARMUP = 200, LOADS = 10000 };
    graph first = 0, g = 0;
    int same = 1;
    for (int i = 0; i < WARMUP; i++) {
        nif.load_by_name_with_config(g_ctx, MODEL, (uint32_t)strlen(MODEL), CONFIG, (uint32_t)strlen(CONFIG), &g);
        if (i == 0) first = g;
        same = same && g == first;
    }
    static char model_before[1 << 16], memory_before[1 << 16], model_after[1 << 16], memory_after[1 << 16];
    snprintf(model_before, sizeof model_before, "%s", status(BACKEND_STATUS_MODEL));
    without_rss(status(BACKEND_STATUS_MEMORY), memory_before, sizeof memory_before);
    const long rss_before = rss_bytes();
    for (int i = 0; i < LOADS; i++) {
        wasi_nn_error err = nif.load_by_name_with_config(g_ctx, MODEL, (uint32_t)strlen(MODEL), CONFIG,
                                                         (uint32_t)strlen(CONFIG), &g);
        same = same && err == success && g == first;
    }
    const long rss_after = rss_bytes();
    snprintf(model_after, sizeof model_after, "%s", status(BACKEND_STATUS_MODEL));
    without_rss(status(BACKEND_STATUS_MEMORY), memory_after, sizeof memory_after);
    check(same, "%d loads of the same file and config: success and the same graph (%u) every time",
          WARMUP + LOADS, first);
    check(strcmp(model_before, model_after) == 0, "the MODEL status is the same after %d more loads", LOADS);
    if (strcmp(model_before, model_after) != 0) printf("# before: %.400s\n# after:  %.400s\n", model_before, model_after);
    check(strcmp(memory_before, memory_after) == 0, "the MEMORY status (RSS aside) is the same");
    if (strcmp(memory_before, memory_after) != 0) printf("# before: %.400s\n# after:  %.400s\n", memory_before, memory_after);
    /* A new graph per load would add well over 1 KiB each, 10 MiB in all.
     * Not under a sanitizer: there RSS sometimes grew by about 11 KiB per
     * load (115 MB over 10,000, under TSan and under ASan, not every run)
     * while the plain build grows by less than 1 MiB; the MODEL and MEMORY
     * documents above stay the same. The plain pass checks the bound. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    printf("ok - RSS over %d loads # SKIP under a sanitizer (grew by %ld bytes; checked in the plain pass)\n", LOADS,
           rss_after - rss_before);
    g_passed++;
#else
    check(rss_before > 0 && rss_after - rss_before < 1024 * 1024, "RSS grew by %ld bytes (< 1 MiB) over %d loads",
          rss_after - rss_before, LOADS);
#endif
    check(json_int(model_after, "graphs_sharing") == 1, "one graph in the MODEL status");
}

/* --------------------------------------------- exit without deinit_backend */

static void *long_request(void *arg) {
    (void)arg;
    nif_request *r = calloc(1, sizeof *r);
    r->session = "hb-long";
    r->prompt = PROMPT;
    r->opts = "{\"max_tokens\":-1,\"ignore_eos\":true}"; /* until cancelled */
    r->out_size_in = OUT_CAPACITY;
    /* Not under the NIF's mutex: the other thread must be free to exit. */
    tensor t = {.dimensions = NULL, .type = fp32, .data = (tensor_data)r->prompt};
    graph g = 0;
    nif.load_by_name_with_config(g_ctx, MODEL, (uint32_t)strlen(MODEL), CONFIG, (uint32_t)strlen(CONFIG), &g);
    nif.init_execution_context(g_ctx, r->session, &r->exec);
    r->out_size = OUT_CAPACITY;
    nif_call c = {nif.run_inference, g_ctx, r->exec, &t, (uint8_t *)r->out, &r->out_size, r->opts};
    call_like_the_nif(&c);
    free(r);
    return NULL;
}

static void *exit_when_running(void *arg) {
    wait_running(1);
    exit((int)(intptr_t)arg);
    return NULL;
}

/* A child process: set up as the NIF would, then leave without
 * deinit_backend in one of several ways. Its exit code tells the parent. */
/* The NIF's first request, from a thread of its own (a dirty scheduler). */
static void *first_request(void *arg) {
    int *rc = arg;
    *rc = 91;
    if (nif.init_backend_with_config(&g_ctx, CONFIG, (uint32_t)strlen(CONFIG)) != success) return NULL;
    nif_request *r = request("child", PROMPT, "{}");
    *rc = reply_is(r, GOLDEN) ? 0 : 92;
    free(r);
    return NULL;
}

static void *idle_thread(void *arg) { return arg; }

static int child(const char *mode) {
    /* ThreadSanitizer starts a background thread of its own at the
     * process's first pthread_create: one thread started and joined first
     * makes it part of the count before the library is loaded. */
    pthread_t warm;
    if (pthread_create(&warm, NULL, idle_thread, NULL) == 0) pthread_join(warm, NULL);
    const int threads_before = thread_count(); /* a sanitizer's own threads, if any */
    if (!open_library()) return 90;
    /* On a thread that then ends: a thread that ran the library's code can
     * keep it mapped after dlclose (glibc defers unloading a library while a
     * live thread has thread_local destructors from it), and the dlclose
     * case below wants it unmapped if it can be. */
    int rc = 0;
    pthread_t first;
    pthread_create(&first, NULL, first_request, &rc);
    pthread_join(first, NULL);
    if (rc != 0) return rc;
    nif_request *r = NULL;
    if (strcmp(mode, "return") == 0) return 0; /* main returns: static destructors with live backends */
    if (strcmp(mode, "exit-while-generating") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, long_request, NULL);
        pthread_detach(t); /* it ends when exit() cancels its request */
        wait_running(1);
        exit(0); /* from main, while another thread is in run_inference */
    }
    if (strcmp(mode, "exit-from-thread") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exit_when_running, (void *)(intptr_t)7);
        pthread_detach(t);
        long_request(NULL); /* main generates until the other thread's exit() cancels it */
        for (;;) pause();   /* the process is exiting: a second exit() would race the first */
    }
    if (strcmp(mode, "dlclose") == 0) {
        /* The old NIF's unload: dlclose with the backend still open, then a
         * new load of the module dlopens the library again. */
        if (dlclose(nif.handle) != 0) return 94;
        const int mapped = library_mapped();
        const int threads = thread_count();
        printf("# after dlclose without deinit: library %s, %d thread(s), %d before dlopen\n",
               mapped ? "still mapped" : "unmapped", threads, threads_before);
        /* Unmapped, its code must run in no thread: the teardown stopped the
         * decode loop and its thread pools. (Still mapped, nothing is unsafe.) */
        if (mapped == 0 && threads != threads_before) return 95;
        if (!open_library()) return 96;
        if (nif.init_backend_with_config(&g_ctx, CONFIG, (uint32_t)strlen(CONFIG)) != success) return 97;
        r = request("child-again", PROMPT, "{}");
        if (!reply_is(r, GOLDEN)) return 98;
        free(r);
        if (nif.deinit_backend(g_ctx) != success) return 99;
        if (nif.deinit_backend(g_ctx) != not_found) return 100; /* older NIFs deinit twice */
        if (dlclose(nif.handle) != 0) return 101;
        return 0;
    }
    return 89;
}

static void test_exit_without_deinit(const char *self) {
    static const struct {
        const char *mode;
        int code;
        const char *what;
    } cases[] = {
        {"return", 0, "main returns without deinit_backend"},
        {"exit-while-generating", 0, "exit() from main while another thread generates"},
        {"exit-from-thread", 7, "exit(7) from another thread while main generates"},
        {"dlclose", 0, "dlclose without deinit_backend, dlopen again, serve, double deinit, dlclose"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {(char *)self, "--child", (char *)cases[i].mode, NULL};
        pid_t pid = 0;
        int st = 0;
        if (posix_spawn(&pid, self, NULL, NULL, argv, environ) != 0) {
            check(0, "spawn the child for \"%s\"", cases[i].mode);
            continue;
        }
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st)) {
            check(0, "child: %s: killed by signal %d", cases[i].what, WTERMSIG(st));
        } else {
            check(WIFEXITED(st) && WEXITSTATUS(st) == cases[i].code, "child: %s: exit code %d (want %d)",
                  cases[i].what, WEXITSTATUS(st), cases[i].code);
        }
    }
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "--child") == 0) return child(argv[2]);

    if (!check(open_library(), "dlopen(%s, RTLD_LAZY) and the NIF's six symbols", LIBRARY)) return 1;
    test_the_slot_holds_garbage();

    /* The documented config shapes load. */
    {
        void *ctx = NULL;
        graph g = 0;
        const char *shapes[] = {FLAT_CONFIG, NESTED_CONFIG};
        for (int i = 0; i < 2; i++) {
            if (!expect_code(nif.init_backend_with_config(&ctx, shapes[i], (uint32_t)strlen(shapes[i])), success,
                             i == 0 ? "init_backend_with_config, the flat shape" : "init_backend_with_config, the nested shape"))
                continue;
            expect_code(nif.load_by_name_with_config(ctx, MODEL, (uint32_t)strlen(MODEL), shapes[i],
                                                     (uint32_t)strlen(shapes[i]), &g),
                        success, i == 0 ? "load_by_name_with_config, the flat shape" : "load_by_name_with_config, the nested shape");
            expect_code(nif.deinit_backend(ctx), success, "deinit_backend");
        }
    }

    if (!expect_code(nif.init_backend_with_config(&g_ctx, CONFIG, (uint32_t)strlen(CONFIG)), success,
                     "init_backend_with_config (the NIF's first load)"))
        return 1;
    test_requests();
    test_many_sessions();
    test_session_holders();
    test_repeated_loads();

    /* NIF unload; older NIFs call deinit_backend twice on the same pointer. */
    expect_code(nif.deinit_backend(g_ctx), success, "deinit_backend");
    expect_code(nif.deinit_backend(g_ctx), not_found, "deinit_backend again on the same pointer");
    {
        nif_request *r = request("after-deinit", PROMPT, "{}");
        expect_code(r->load, invalid_argument, "a request after deinit: load_by_name_with_config");
        expect_code(r->run, invalid_argument, "... run_inference");
        free(r);
    }
    test_exit_without_deinit("/proc/self/exe");

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
