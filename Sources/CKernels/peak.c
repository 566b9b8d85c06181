#include "wpack_kernels.h"

// The machine's multiply-add peak, measured: independent chains of vector FMAs (enough to
// cover the latency of two FMA units), nothing else in the loop. The harness reports GEMM
// throughput as a fraction of this.

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static float peak_avx2(long iterations) {
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iterations; i++) {
        a0 = _mm256_fmadd_ps(a0, x, y); a1 = _mm256_fmadd_ps(a1, x, y); a2 = _mm256_fmadd_ps(a2, x, y);
        a3 = _mm256_fmadd_ps(a3, x, y); a4 = _mm256_fmadd_ps(a4, x, y); a5 = _mm256_fmadd_ps(a5, x, y);
        a6 = _mm256_fmadd_ps(a6, x, y); a7 = _mm256_fmadd_ps(a7, x, y); a8 = _mm256_fmadd_ps(a8, x, y);
        a9 = _mm256_fmadd_ps(a9, x, y);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(_mm256_add_ps(a6, a7), _mm256_add_ps(a8, a9))));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    return lanes[0];
}

__attribute__((target("avx512f"))) static float peak_avx512(long iterations) {
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iterations; i++) {
        a0 = _mm512_fmadd_ps(a0, x, y); a1 = _mm512_fmadd_ps(a1, x, y); a2 = _mm512_fmadd_ps(a2, x, y);
        a3 = _mm512_fmadd_ps(a3, x, y); a4 = _mm512_fmadd_ps(a4, x, y); a5 = _mm512_fmadd_ps(a5, x, y);
        a6 = _mm512_fmadd_ps(a6, x, y); a7 = _mm512_fmadd_ps(a7, x, y); a8 = _mm512_fmadd_ps(a8, x, y);
        a9 = _mm512_fmadd_ps(a9, x, y);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(_mm512_add_ps(a6, a7), _mm512_add_ps(a8, a9))));
    return _mm512_reduce_add_ps(s);
}
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
