#include "sgemm_internal.h"
#include <stdlib.h>

// Which algorithm runs a convolution: Winograd where it applies (3x3, stride 1, at least 8
// channels in and out, one group), otherwise the implicit GEMM. WPACK_WINOGRAD=0 turns
// Winograd off for the process (to compare the two); wk_allow_winograd(0) for the calling
// thread only (tests of the implicit GEMM on shapes Winograd would take).

static int process_state = -1;  // -1: not read yet
static _Thread_local int thread_allows = 1;

static int process_allows(void) {
    int state = __atomic_load_n(&process_state, __ATOMIC_RELAXED);
    if (state < 0) {
        const char *s = getenv("WPACK_WINOGRAD");
        state = s != NULL && strcmp(s, "0") == 0 ? 0 : 1;
        __atomic_store_n(&process_state, state, __ATOMIC_RELAXED);
    }
    return state;
}

int wk_allow_winograd(int allowed) {
    const int previous = thread_allows;
    thread_allows = allowed != 0;
    return previous;
}

int wk_conv_uses_winograd(const wk_conv_desc *d) {
    return thread_allows && process_allows() && wk_conv_winograd_applies(d);
}

int wk_conv2d(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx) {
    return wk_conv_uses_winograd(d) ? wk_conv_winograd(d, workers, after, ctx) : wk_conv_gemm(d, workers, after, ctx);
}
