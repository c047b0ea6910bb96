/*
 * include/wasi_nn_backend.h with WASI_NN_BACKEND_ORIGINAL_TENSOR_TYPES: the
 * original header's tensor_type numbering (fp16 0, fp32 1, up8 2, ip32 3),
 * as a host written against that header needs it, with the constants that
 * name the byte type in each numbering. Compile-time checks; the program
 * then reports them.
 */
#define WASI_NN_BACKEND_ORIGINAL_TENSOR_TYPES
#include <stdio.h>

#include "wasi_nn_backend.h"

_Static_assert(fp16 == 0 && fp32 == 1 && up8 == 2 && ip32 == 3, "the original numbering");
_Static_assert(up8 == WASI_NN_ORIGINAL_TENSOR_TYPE_UP8, "up8 is the original byte type");
_Static_assert(WASI_NN_EPHEMERAL_TENSOR_TYPE_U8 == 4, "u8 in WAMR's ephemeral numbering");
_Static_assert(sizeof(tensor_type) == sizeof(int), "an int-sized enum, as in the default numbering");

int main(void) {
    printf("ok - WASI_NN_BACKEND_ORIGINAL_TENSOR_TYPES gives fp16 0, fp32 1, up8 2, ip32 3\n");
    printf("1 passed, 0 failed\n");
    return 0;
}
