#include "../gemm/sgemm_internal.h"
#include <stdlib.h>

// Which algorithm runs a convolution: Winograd where it applies (3x3, stride 1, at least 8
// channels in and out, one group), the direct convolution for few input channels (K = c·kh·kw
// at most 27, stride 1), otherwise the implicit GEMM. WPACK_CONV=gemm keeps every convolution
// on the implicit GEMM for the process (to compare), wk_conv_force_gemm(1) for the calling
// thread only (tests of that path on shapes the others would take).

static int process_state = -1;  // -1: not read yet
static _Thread_local int thread_forces_gemm = 0;

int wk_conv_env_state(void) {
    int state = __atomic_load_n(&process_state, __ATOMIC_RELAXED);
    if (state < 0) {
        const char *s = getenv("WPACK_CONV");
        state = s == NULL || strcmp(s, "auto") == 0 ? 0 : strcmp(s, "gemm") == 0 ? 1 : 2;
        __atomic_store_n(&process_state, state, __ATOMIC_RELAXED);
    }
    return state;
}

int wk_conv_force_gemm(int on) {
    const int previous = thread_forces_gemm;
    thread_forces_gemm = on != 0;
    return previous;
}

int wk_conv_algorithm(const wk_conv_desc *d) {
    if (thread_forces_gemm || wk_conv_env_state() == 1) return WK_CONV_IMPLICIT_GEMM;
    if (wk_conv_winograd_applies(d)) return WK_CONV_WINOGRAD;
    if (wk_conv_direct_applies(d)) return WK_CONV_DIRECT;
    return WK_CONV_IMPLICIT_GEMM;
}

int wk_conv2d(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx) {
    // A fused relu is Winograd's (with its pooling) and the direct kernel's, a pool_out
    // Winograd's alone; each algorithm refuses what it cannot take (-2) itself.
    switch (wk_conv_algorithm(d)) {
    case WK_CONV_WINOGRAD: return wk_conv_winograd(d, workers, after, ctx);
    case WK_CONV_DIRECT: return wk_conv_direct(d, workers, after, ctx);
    default: return wk_conv_gemm(d, workers, after, ctx);
    }
}
