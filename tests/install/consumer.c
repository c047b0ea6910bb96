/*
 * A program built against an installed wasi-nn-llama, the ordinary way:
 * compiled with the installed header and linked against the installed
 * library (no dlopen). tests/install_test.sh builds it with find_package and
 * with pkg-config. It starts and stops a backend and prints the version:
 *   wasi-nn-llama VERSION
 * Defines: CONSUMER_LEGACY  use the legacy ABI (<wasi_nn_backend.h>);
 *          EXPECTED_VERSION fail unless the library reports this version.
 */
#include <stdio.h>
#include <string.h>

#ifdef CONSUMER_LEGACY
#include <wasi_nn_backend.h>
#else
#include <wasi_nn_llamacpp.h>
#endif

int main(void) {
    void *ctx = NULL;
    wasi_nn_error err = init_backend(&ctx);
    if (err != success || ctx == NULL) {
        fprintf(stderr, "init_backend failed: %d\n", (int)err);
        return 1;
    }
    err = deinit_backend(ctx);
    if (err != success) {
        fprintf(stderr, "deinit_backend failed: %d\n", (int)err);
        return 1;
    }
    const char *version = wasi_nn_llama_version();
    if (version == NULL || version[0] == '\0') {
        fprintf(stderr, "wasi_nn_llama_version returned nothing\n");
        return 1;
    }
#ifdef EXPECTED_VERSION
    if (strcmp(version, EXPECTED_VERSION) != 0) {
        fprintf(stderr, "version %s, expected %s\n", version, EXPECTED_VERSION);
        return 1;
    }
#endif
    printf("wasi-nn-llama %s\n", version);
    return 0;
}
