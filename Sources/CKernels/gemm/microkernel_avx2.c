#include "sgemm_internal.h"

#if defined(__x86_64__)
// 6 x 16: 12 accumulators in ymm registers, two vectors of B and one broadcast of A per row:
// 15 of the 16 registers.

#define ROW(i)                                                     \
    {                                                              \
        __m256 x = _mm256_broadcast_ss(a + (i));                   \
        c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0);                 \
        c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);                 \
    }
#define STORE(i)                                                                     \
    {                                                                                \
        float *o = out + (i) * ldo;                                                  \
        if (acc) {                                                                   \
            c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(o));                    \
            c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(o + 8));                \
        }                                                                            \
        _mm256_storeu_ps(o, c##i##0);                                                \
        _mm256_storeu_ps(o + 8, c##i##1);                                            \
    }

WK_AVX2 void wk_sgemm_microkernel_avx2(long kc, const float *a, const float *b, float *c, long ldc, int accumulate,
                                       long mr, long nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const int full = mr == 6 && nr == 16;
    if (full) {
        for (int i = 0; i < 6; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    }
    for (long p = 0; p < kc; p++) {
        _mm_prefetch((const char *)(b + 64), _MM_HINT_T0);  // the B panel four steps ahead
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
        a += 6;
        b += 16;
    }
    float tile[6 * 16];
    float *out = full ? c : tile;
    const long ldo = full ? ldc : 16;
    const int acc = full && accumulate;
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
    if (!full) wk_sgemm_store_partial(tile, 16, c, ldc, accumulate, mr, nr);
}
#endif
