/*
 * many_instances.c: a small host on WAMR's embedding API (wasm_export.h)
 * that runs N instances of the chat guest (examples/guest/chat.c) in N
 * threads of one process, each instance loading the same model through
 * WAMR's wasi-nn host and our libwasi_nn_llamacpp.so.
 *
 *   many_instances [-n N] [-r ROUNDS] [--config JSON] [--log-level LEVEL]
 *                  [--check] [--sequential-first] GUEST.wasm MODEL [MESSAGE...]
 *
 * Each round runs the N instances twice: all at once (one thread each,
 * released together) and one after another; odd rounds start with the
 * concurrent run, even ones with the sequential (--sequential-first swaps). Instance i sends its own
 * opening line (kOpenings[i % 8]) followed by the MESSAGEs (default: two
 * follow-up turns), so every instance holds a different conversation.
 * For each run it prints one JSON line:
 *   {"run":"concurrent","round":1,"instances":8,"wall_ms":..,
 *    "requests":24,"generated_tokens":..,"tokens_per_s":..,
 *    "decode_calls":..,"avg_busy_slots":..,"max_concurrent":8,
 *    "graphs_sharing":9,"model_graphs":1,"replies_equal":true}
 * and at the end a summary line with the median tokens/s of both ways.
 *
 * How it proves that the instances share one decode loop. WAMR gives each
 * instance its own backend context (init_backend at its first load), and
 * its wasi-nn host forwards no get_backend_status to guests. So this host
 * dlopen()s the same library by the same bare name WAMR uses (the dynamic
 * loader returns the copy WAMR opened), opens a backend context of its own
 * and loads the same model with the same config: an "observer" graph.
 * Graphs that load the same file with the same settings share one served
 * model (weights and decode loop) across backend contexts, and the status
 * documents of a graph report that loop, counting requests from every
 * context (docs/status.md §2). While the N instances are alive, the
 * observer's MODEL document shows one graph whose graphs_sharing is N + 1
 * (the instances' graphs and its own, process-wide), and the PERFORMANCE
 * counters taken before and after a run give, for that run alone: requests
 * served (must be N x turns), generated tokens (must equal the sum of the
 * guests' output_tokens: every guest request went through this one loop),
 * decode calls, and the average number of busy slots per decode call
 * (batch_occupancy x max_concurrent): above 1 when requests of different
 * instances were decoded in the same llama_decode call, exactly 1 when the
 * instances run one after another.
 *
 * --check exits 1 unless every instance's replies are the same in every
 * run (together and alone), graphs_sharing is N + 1, the token and request
 * counts match, the one-after-another runs average exactly 1 busy slot and
 * the concurrent runs more than 1. --check-counts holds runs to all of that
 * but the replies' text, which it only reports ("equal" in each run's
 * line): on a model with random weights the logits are nearly flat, and a
 * decode of 8 sequences sums the same products in another order than a
 * decode of one (llama.cpp's CPU matrix product for several columns is not
 * its dot product for one), so greedy text can part after some tokens.
 *
 * Build: CMake, with -DWASI_NN_LLAMA_WAMR_DIR=$(scripts/wamr.sh | tail -1);
 * run with libwasi_nn_llamacpp.so on LD_LIBRARY_PATH, as for iwasm
 * (docs/wamr.md).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wasm_export.h"
#include "wasi_nn_llamacpp.h"

#define MAX_INSTANCES 64
#define MAX_ROUNDS 100

static const char *const kOpenings[] = {
    "Once upon a time",
    "The little dog wanted to",
    "Tom and Lily went to the park. They saw",
    "One day, a cat",
    "There was a big red ball",
    "Sara had a new toy",
    "The sun was hot and",
    "Ben found a box",
};
#define N_OPENINGS (sizeof kOpenings / sizeof kOpenings[0])

/* ---- our library, opened as WAMR opens it ------------------------------ */

typedef struct {
    void *lib;
    wasi_nn_error (*init_backend_with_config)(void **, const char *, uint32_t);
    wasi_nn_error (*deinit_backend)(void *);
    wasi_nn_error (*load_by_name_with_config)(void *, const char *, uint32_t,
                                              const char *, uint32_t, graph *);
    wasi_nn_error (*get_backend_status)(void *, backend_status_type, char *,
                                        uint32_t);
    void *ctx;
} Observer;

static bool
observer_open(Observer *o, const char *model, const char *config,
              const char *log_level)
{
    char backend_config[128];
    graph g = 0;

    /* The bare name, found through LD_LIBRARY_PATH: the same object WAMR's
     * wasi-nn host dlopen()s, so the same process-wide model registry. */
    o->lib = dlopen("libwasi_nn_llamacpp.so", RTLD_NOW);
    if (o->lib == NULL) {
        fprintf(stderr, "many_instances: %s\n", dlerror());
        return false;
    }
#define SYM(name)                                                       \
    if ((*(void **)&o->name = dlsym(o->lib, #name)) == NULL) {          \
        fprintf(stderr, "many_instances: no symbol %s\n", #name);       \
        return false;                                                   \
    }
    SYM(init_backend_with_config)
    SYM(deinit_backend)
    SYM(load_by_name_with_config)
    SYM(get_backend_status)
#undef SYM
    /* Logging is process-wide and only a backend config sets it; WAMR's
     * host calls plain init_backend, so this is where a host quiets the
     * per-request lines of every instance. */
    snprintf(backend_config, sizeof backend_config,
             "{\"logging\":{\"level\":\"%s\"}}", log_level);
    if (o->init_backend_with_config(&o->ctx, backend_config,
                                    (uint32_t)strlen(backend_config))
        != success) {
        fprintf(stderr, "many_instances: init_backend_with_config failed\n");
        return false;
    }
    if (o->load_by_name_with_config(o->ctx, model, (uint32_t)strlen(model),
                                    config, (uint32_t)strlen(config), &g)
        != success) {
        fprintf(stderr, "many_instances: cannot load %s with %s\n", model,
                config);
        return false;
    }
    return true;
}

/* The value of the first "key": in a compact JSON document (the observer
 * has one graph, so each key of a status document appears once). */
static bool
json_number(const char *doc, const char *key, double *out)
{
    char pattern[64];
    const char *p;
    char *end;

    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    if ((p = strstr(doc, pattern)) == NULL)
        return false;
    p += strlen(pattern);
    *out = strtod(p, &end);
    return end != p;
}

typedef struct {
    double requests, generated, decode_calls, busy_slots, max_concurrent;
} LoopCounters;

static bool
observer_counters(Observer *o, LoopCounters *c)
{
    static char doc[1 << 16];
    double served, failed, occupancy;

    if (o->get_backend_status(o->ctx, BACKEND_STATUS_PERFORMANCE, doc,
                              sizeof doc)
            != success
        || !json_number(doc, "requests_served", &served)
        || !json_number(doc, "requests_failed", &failed)
        || !json_number(doc, "generated_tokens", &c->generated)
        || !json_number(doc, "decode_calls", &c->decode_calls)
        || !json_number(doc, "batch_occupancy", &occupancy))
        return false;
    c->requests = served + failed;
    if (o->get_backend_status(o->ctx, BACKEND_STATUS_QUEUE, doc, sizeof doc)
            != success
        || !json_number(doc, "max_concurrent", &c->max_concurrent))
        return false;
    /* batch_occupancy = busy slots summed over decode calls
     *                   / (decode_calls x max_concurrent) */
    c->busy_slots = occupancy * c->decode_calls * c->max_concurrent;
    return true;
}

static bool
observer_sharing(Observer *o, double *graphs_sharing, int *model_graphs)
{
    static char doc[1 << 16];
    const char *p;

    if (o->get_backend_status(o->ctx, BACKEND_STATUS_MODEL, doc, sizeof doc)
            != success
        || !json_number(doc, "graphs_sharing", graphs_sharing))
        return false;
    *model_graphs = 0;
    for (p = doc; (p = strstr(p, "\"graph\":")) != NULL; p++)
        (*model_graphs)++;
    return true;
}

/* ---- instances ------------------------------------------------------------ */

typedef struct {
    wasm_module_inst_t inst;
    FILE *out, *err;            /* the guest's stdout and stderr */
    char *argv[3 + 2 + 16];     /* chat.wasm MODEL CONFIG -- MESSAGE... */
    int argc;
    pthread_barrier_t *start;   /* concurrent runs: released together */
    bool ok;
    char exception[256];
} Instance;

typedef struct {
    char *replies;              /* the reply texts, each followed by \x1e */
    long output_tokens;
    int turns;
} Transcript;

static void *
run_instance(void *arg)
{
    Instance *in = arg;
    const char *exc;

    if (!wasm_runtime_init_thread_env()) {
        snprintf(in->exception, sizeof in->exception, "init_thread_env");
        return NULL;
    }
    if (in->start)
        pthread_barrier_wait(in->start);
    /* WASI mode: calls the guest's _start, which calls main(argc, argv)
     * with the arguments given to wasm_runtime_set_wasi_args_ex. */
    in->ok = wasm_application_execute_main(in->inst, 0, NULL);
    if ((exc = wasm_runtime_get_exception(in->inst)) != NULL) {
        snprintf(in->exception, sizeof in->exception, "%s", exc);
        in->ok = false;
    }
    else if (wasm_runtime_get_wasi_exit_code(in->inst) != 0) {
        snprintf(in->exception, sizeof in->exception, "exit code %u",
                 wasm_runtime_get_wasi_exit_code(in->inst));
        in->ok = false;
    }
    wasm_runtime_destroy_thread_env();
    return NULL;
}

/* What the guest wrote to one of its files (WAMR writes to the raw fd). */
static char *
read_all(FILE *f)
{
    struct stat st;
    char *s;
    ssize_t got = 0;

    if (fstat(fileno(f), &st) != 0 || (s = malloc((size_t)st.st_size + 1)) == NULL)
        return NULL;
    if (st.st_size > 0)
        got = pread(fileno(f), s, (size_t)st.st_size, 0);
    s[got > 0 ? got : 0] = '\0';
    return s;
}

/* Parses chat.c's stdout: per turn "user: M\nassistant: R\nmetadata: J\n". */
static bool
parse_transcript(const char *out, Transcript *t)
{
    size_t cap = strlen(out) + 1, used = 0;
    const char *p = out;

    t->replies = malloc(cap);
    t->output_tokens = 0;
    t->turns = 0;
    if (t->replies == NULL)
        return false;
    while ((p = strstr(p, "\nassistant: ")) != NULL) {
        const char *reply = p + strlen("\nassistant: ");
        const char *meta = strstr(reply, "\nmetadata: {");
        double tokens;

        if (meta == NULL || !json_number(meta, "output_tokens", &tokens))
            return false;
        memcpy(t->replies + used, reply, (size_t)(meta - reply));
        used += (size_t)(meta - reply);
        t->replies[used++] = '\x1e';
        t->output_tokens += (long)tokens;
        t->turns++;
        p = meta + 1;
    }
    t->replies[used] = '\0';
    return true;
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct {
    wasm_module_t module;
    const char *model;
    const char *config;
    char **messages;
    int n_messages;
    int n;
} Setup;

/* Instantiates the N instances, each with its own arguments and its own
 * stdout/stderr files. */
static bool
instantiate_all(const Setup *s, Instance *ins)
{
    char error[256];

    for (int i = 0; i < s->n; i++) {
        Instance *in = &ins[i];
        memset(in, 0, sizeof *in);
        in->out = tmpfile();
        in->err = tmpfile();
        if (in->out == NULL || in->err == NULL) {
            fprintf(stderr, "many_instances: tmpfile: %s\n", strerror(errno));
            return false;
        }
        in->argv[in->argc++] = "chat.wasm";
        in->argv[in->argc++] = (char *)s->model;
        in->argv[in->argc++] = (char *)s->config;
        in->argv[in->argc++] = "--";
        in->argv[in->argc++] = (char *)kOpenings[i % N_OPENINGS];
        for (int m = 0; m < s->n_messages; m++)
            in->argv[in->argc++] = s->messages[m];
        /* WASI arguments are the module's, copied into each instance when
         * it is instantiated: set them right before. No preopened
         * directory: the guest opens no file (the host opens the model). */
        wasm_runtime_set_wasi_args_ex(s->module, NULL, 0, NULL, 0, NULL, 0,
                                      in->argv, in->argc, -1,
                                      fileno(in->out), fileno(in->err));
        in->inst = wasm_runtime_instantiate(s->module, 64 * 1024, 16 * 1024,
                                            error, sizeof error);
        if (in->inst == NULL) {
            fprintf(stderr, "many_instances: instantiate: %s\n", error);
            return false;
        }
    }
    return true;
}

static void
destroy_all(const Setup *s, Instance *ins)
{
    for (int i = 0; i < s->n; i++) {
        /* Destroying an instance makes WAMR's wasi-nn host call
         * deinit_backend on its backend context. */
        if (ins[i].inst)
            wasm_runtime_deinstantiate(ins[i].inst);
        if (ins[i].out)
            fclose(ins[i].out);
        if (ins[i].err)
            fclose(ins[i].err);
    }
}

typedef struct {
    double wall_ms, tokens_per_s, avg_busy_slots, graphs_sharing;
    double requests, generated, decode_calls, max_concurrent;
    int model_graphs;
    long guest_tokens;
    int guest_turns;
    bool ok;
} RunResult;

/* One run: all N instances at once (concurrent) or one after another. */
static bool
run(const Setup *s, Observer *o, bool concurrent, Transcript *ts,
    RunResult *r)
{
    Instance ins[MAX_INSTANCES];
    pthread_t threads[MAX_INSTANCES];
    pthread_barrier_t start;
    LoopCounters before, after;
    double t0;
    bool ok = true;

    memset(r, 0, sizeof *r);
    memset(ins, 0, sizeof ins);
    if (!instantiate_all(s, ins)) {
        destroy_all(s, ins);
        return false;
    }
    if (!observer_counters(o, &before)) {
        fprintf(stderr, "many_instances: get_backend_status failed\n");
        destroy_all(s, ins);
        return false;
    }
    if (concurrent) {
        pthread_barrier_init(&start, NULL, (unsigned)s->n + 1);
        for (int i = 0; i < s->n; i++) {
            ins[i].start = &start;
            if (pthread_create(&threads[i], NULL, run_instance, &ins[i]) != 0) {
                fprintf(stderr, "many_instances: pthread_create failed\n");
                exit(1);
            }
        }
        pthread_barrier_wait(&start);
        t0 = now_ms();
        for (int i = 0; i < s->n; i++)
            pthread_join(threads[i], NULL);
        r->wall_ms = now_ms() - t0;
        pthread_barrier_destroy(&start);
    }
    else {
        /* Each alone, still on a thread of its own like the concurrent
         * ones (same thread environment), but started after the previous
         * one finished. */
        t0 = now_ms();
        for (int i = 0; i < s->n; i++) {
            pthread_create(&threads[i], NULL, run_instance, &ins[i]);
            pthread_join(threads[i], NULL);
        }
        r->wall_ms = now_ms() - t0;
    }
    /* The instances are still alive here, so are their graphs. */
    if (!observer_counters(o, &after)
        || !observer_sharing(o, &r->graphs_sharing, &r->model_graphs)) {
        fprintf(stderr, "many_instances: get_backend_status failed\n");
        ok = false;
    }
    for (int i = 0; i < s->n; i++) {
        char *out = read_all(ins[i].out);
        if (!ins[i].ok || out == NULL || !parse_transcript(out, &ts[i])) {
            char *err = read_all(ins[i].err);
            fprintf(stderr,
                    "many_instances: instance %d failed (%s)\n--- stdout\n%s"
                    "--- stderr\n%s---\n",
                    i, ins[i].exception[0] ? ins[i].exception : "bad output",
                    out ? out : "", err ? err : "");
            free(err);
            ok = false;
        }
        else {
            r->guest_tokens += ts[i].output_tokens;
            r->guest_turns += ts[i].turns;
        }
        free(out);
    }
    destroy_all(s, ins);
    r->requests = after.requests - before.requests;
    r->generated = after.generated - before.generated;
    r->decode_calls = after.decode_calls - before.decode_calls;
    r->max_concurrent = after.max_concurrent;
    r->avg_busy_slots =
        r->decode_calls > 0
            ? (after.busy_slots - before.busy_slots) / r->decode_calls
            : 0;
    r->tokens_per_s = r->wall_ms > 0 ? r->generated / (r->wall_ms / 1e3) : 0;
    r->ok = ok;
    return ok;
}

static int
compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static char *
read_file(const char *path, uint32_t *size)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *buf;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = (uint32_t)n;
    return buf;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: many_instances [-n N] [-r ROUNDS] [--config JSON] "
            "[--log-level LEVEL] [--check | --check-counts]\n"
            "                      [--sequential-first]\n"
            "                      GUEST.wasm MODEL [MESSAGE...]\n");
}

int
main(int argc, char **argv)
{
    int n = 8, rounds = 1, argi = 1, failures = 0;
    bool check = false, check_text = false, sequential_first = false;
    const char *config = NULL, *log_level = "warn";
    char default_config[256], error[256];
    static char *default_messages[] = { (char *)"What happened next?",
                                        (char *)"How did it end?" };
    Setup s;
    Observer o;
    RuntimeInitArgs init;
    char *wasm;
    uint32_t wasm_size;
    Transcript first[MAX_INSTANCES], cur[MAX_INSTANCES];
    bool have_first = false;
    double tps_together[MAX_ROUNDS], tps_alone[MAX_ROUNDS];

    for (; argi < argc && argv[argi][0] == '-'; argi++) {
        if (!strcmp(argv[argi], "-n") && argi + 1 < argc)
            n = atoi(argv[++argi]);
        else if (!strcmp(argv[argi], "-r") && argi + 1 < argc)
            rounds = atoi(argv[++argi]);
        else if (!strcmp(argv[argi], "--config") && argi + 1 < argc)
            config = argv[++argi];
        else if (!strcmp(argv[argi], "--log-level") && argi + 1 < argc)
            log_level = argv[++argi];
        else if (!strcmp(argv[argi], "--check"))
            check = check_text = true;
        else if (!strcmp(argv[argi], "--check-counts"))
            check = true;
        else if (!strcmp(argv[argi], "--sequential-first"))
            sequential_first = true;
        else {
            usage();
            return 2;
        }
    }
    if (argc - argi < 2 || n < 1 || n > MAX_INSTANCES || rounds < 1
        || rounds > MAX_ROUNDS || argc - argi - 2 > 16) {
        usage();
        return 2;
    }
    memset(&s, 0, sizeof s);
    s.n = n;
    s.model = argv[argi + 1];
    if (config == NULL) {
        /* Greedy, a chat template, and one slot per instance. */
        snprintf(default_config, sizeof default_config,
                 "{\"chat_template\":\"chatml\",\"temp\":0,\"max_tokens\":32,"
                 "\"ctx_size\":1024,\"max_concurrent\":%d}",
                 n);
        config = default_config;
    }
    s.config = config;
    if (argc - argi > 2) {
        s.messages = &argv[argi + 2];
        s.n_messages = argc - argi - 2;
    }
    else {
        s.messages = default_messages;
        s.n_messages = 2;
    }

    memset(&init, 0, sizeof init);
    init.mem_alloc_type = Alloc_With_System_Allocator;
    if (!wasm_runtime_full_init(&init)) {
        fprintf(stderr, "many_instances: wasm_runtime_full_init failed\n");
        return 1;
    }
    if ((wasm = read_file(argv[argi], &wasm_size)) == NULL) {
        fprintf(stderr, "many_instances: cannot read %s\n", argv[argi]);
        return 1;
    }
    /* The buffer must outlive the module. */
    s.module = wasm_runtime_load((uint8_t *)wasm, wasm_size, error,
                                 sizeof error);
    if (s.module == NULL) {
        fprintf(stderr, "many_instances: %s: %s\n", argv[argi], error);
        return 1;
    }
    memset(&o, 0, sizeof o);
    if (!observer_open(&o, s.model, s.config, log_level))
        return 1;

    for (int round = 1; round <= rounds; round++) {
        /* Alternate which way goes first, so neither always meets the
         * other's leftovers (warm caches, KV kept for prefix reuse). */
        for (int k = 0; k < 2; k++) {
            bool concurrent = (k == 0) == ((round % 2 == 1) != sequential_first);
            RunResult r;
            bool equal = true;

            if (!run(&s, &o, concurrent, cur, &r)) {
                failures++;
                continue;
            }
            for (int i = 0; i < n; i++) {
                if (!have_first) {
                    first[i] = cur[i];
                    continue;
                }
                if (strcmp(first[i].replies, cur[i].replies) != 0) {
                    equal = false;
                    if (check_text || !check)
                        fprintf(stderr,
                            "many_instances: instance %d replied differently "
                            "(%s, round %d):\n  first: %s\n  now:   %s\n",
                            i, concurrent ? "concurrent" : "sequential",
                            round, first[i].replies, cur[i].replies);
                }
                free(cur[i].replies);
            }
            have_first = true;
            printf("{\"run\":\"%s\",\"round\":%d,\"instances\":%d,"
                   "\"wall_ms\":%.3f,\"requests\":%.0f,"
                   "\"guest_turns\":%d,\"generated_tokens\":%.0f,"
                   "\"guest_output_tokens\":%ld,\"tokens_per_s\":%.2f,"
                   "\"decode_calls\":%.0f,\"avg_busy_slots\":%.3f,"
                   "\"max_concurrent\":%.0f,\"graphs_sharing\":%.0f,"
                   "\"model_graphs\":%d,\"replies_equal\":%s}\n",
                   concurrent ? "concurrent" : "sequential", round, n,
                   r.wall_ms, r.requests, r.guest_turns, r.generated,
                   r.guest_tokens, r.tokens_per_s, r.decode_calls,
                   r.avg_busy_slots, r.max_concurrent, r.graphs_sharing,
                   r.model_graphs, equal ? "true" : "false");
            fflush(stdout);
            (concurrent ? tps_together : tps_alone)[round - 1] =
                r.tokens_per_s;
            if (!check)
                continue;
            /* What --check holds every run to (see the comment on top). */
            const char *why = NULL;
            if (!equal && check_text)
                why = "replies differ from the first run";
            else if (r.model_graphs != 1 || r.graphs_sharing != n + 1)
                why = "the instances' graphs are not all on the observer's "
                      "served model (graphs_sharing != N + 1)";
            else if (r.guest_turns != n * (s.n_messages + 1)
                     || r.requests != r.guest_turns)
                why = "the loop did not serve every guest turn";
            else if (r.generated != (double)r.guest_tokens)
                why = "the loop's generated tokens differ from the guests' "
                      "output_tokens";
            else if (concurrent && !(r.avg_busy_slots > 1.0))
                why = "no decode call batched two instances' requests";
            else if (!concurrent
                     && !(r.avg_busy_slots > 0.999
                          && r.avg_busy_slots < 1.001))
                why = "one after another, a decode call held more than one "
                      "request";
            if (why != NULL) {
                fprintf(stderr, "many_instances: check failed (%s run, round "
                        "%d): %s\n", concurrent ? "concurrent" : "sequential",
                        round, why);
                failures++;
            }
        }
    }
    if (failures == 0) {
        double together = median(tps_together, rounds);
        double alone = median(tps_alone, rounds);
        printf("{\"summary\":true,\"instances\":%d,\"rounds\":%d,"
               "\"concurrent_tokens_per_s\":%.2f,"
               "\"sequential_tokens_per_s\":%.2f,\"speedup\":%.3f}\n",
               n, rounds, together, alone, alone > 0 ? together / alone : 0);
    }
    for (int i = 0; have_first && i < n; i++)
        free(first[i].replies);
    o.deinit_backend(o.ctx);
    wasm_runtime_unload(s.module);
    wasm_runtime_destroy();
    free(wasm);
    return failures ? 1 : 0;
}
