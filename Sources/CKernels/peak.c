#include "wpack_kernels.h"

// The machine's multiply-add peak, measured: independent chains of vector FMAs (enough to
// cover the latency of two FMA units), nothing else in the loop. The harness reports GEMM
// throughput as a fraction of this.

#if defined(__x86_64__)
#include <immintrin.h>

// Ten chains of `fmadd` on VEC registers; SUM folds them into one float.
#define DEFINE_PEAK(NAME, ATTR, VEC, SET1, FMADD, ADD, SUM)                                      \
ATTR static float NAME(long iterations) {                                                        \
    VEC a[10];                                                                                   \
    for (int j = 0; j < 10; j++) a[j] = SET1(1.0f);                                              \
    const VEC x = SET1(0.999999f), y = SET1(1e-7f);                                              \
    for (long i = 0; i < iterations; i++) {                                                      \
        a[0] = FMADD(a[0], x, y); a[1] = FMADD(a[1], x, y); a[2] = FMADD(a[2], x, y);            \
        a[3] = FMADD(a[3], x, y); a[4] = FMADD(a[4], x, y); a[5] = FMADD(a[5], x, y);            \
        a[6] = FMADD(a[6], x, y); a[7] = FMADD(a[7], x, y); a[8] = FMADD(a[8], x, y);            \
        a[9] = FMADD(a[9], x, y);                                                                \
    }                                                                                            \
    VEC s = a[0];                                                                                \
    for (int j = 1; j < 10; j++) s = ADD(s, a[j]);                                               \
    return SUM(s);                                                                               \
}

__attribute__((target("avx2,fma"))) static inline float sum256(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float s = 0;
    for (int j = 0; j < 8; j++) s += lanes[j];
    return s;
}

DEFINE_PEAK(peak_avx2, __attribute__((target("avx2,fma"))), __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, sum256)
DEFINE_PEAK(peak_avx512, __attribute__((target("avx512f"))), __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps)
#endif

static float peak_scalar(long iterations) {
    float a[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (long i = 0; i < iterations; i++) {
        for (int j = 0; j < 10; j++) a[j] = a[j] * 0.999999f + 1e-7f;
    }
    float s = 0;
    for (int j = 0; j < 10; j++) s += a[j];
    return s;
}

long wk_fma_peak_run(long iterations, float *sink) {
    float s;
    long lanes;
#if defined(__x86_64__)
    int level = wk_isa_level();
    if (level >= WK_ISA_AVX512) { s = peak_avx512(iterations); lanes = 16; }
    else if (level >= WK_ISA_AVX2) { s = peak_avx2(iterations); lanes = 8; }
    else { s = peak_scalar(iterations); lanes = 1; }
#else
    s = peak_scalar(iterations); lanes = 1;
#endif
    if (sink) *sink = s;
    // Each FMA is two flops per lane; ten chains per iteration.
    return iterations * 10 * lanes * 2;
}
