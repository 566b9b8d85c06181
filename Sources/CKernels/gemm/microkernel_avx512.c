#include "sgemm_internal.h"

#if defined(__x86_64__)
// 8 x 48: 24 accumulators in zmm registers, three vectors of B and one broadcast of A per row
// and step. Measured in L1 on a Xeon with two 512-bit FMA units: 8 x 48 ran at the FMA peak
// (172 GFLOP/s of 168 measured), where 12 x 32 (12 broadcasts for 24 multiply-adds instead of
// 8) stalled on the load ports at 126-144.

#define ROW(i)                                                     \
    {                                                              \
        __m512 x = _mm512_set1_ps(a[i]);                           \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                 \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                 \
        c##i##2 = _mm512_fmadd_ps(x, b2, c##i##2);                 \
    }
#define STORE(i)                                                                     \
    {                                                                                \
        float *o = out + (i) * ldo;                                                  \
        if (acc) {                                                                   \
            c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(o));                    \
            c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(o + 16));               \
            c##i##2 = _mm512_add_ps(c##i##2, _mm512_loadu_ps(o + 32));               \
        }                                                                            \
        _mm512_storeu_ps(o, c##i##0);                                                \
        _mm512_storeu_ps(o + 16, c##i##1);                                           \
        _mm512_storeu_ps(o + 32, c##i##2);                                           \
    }

WK_AVX512 void wk_sgemm_microkernel_avx512(long kc, const float *a, const float *b, float *c, long ldc, int accumulate,
                                           long mr, long nr) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    __m512 c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
    __m512 c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
    const int full = mr == 8 && nr == 48;
    if (full) {
        for (int i = 0; i < 8; i++) {
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + i * ldc + 32), _MM_HINT_T0);
        }
    }
    for (long p = 0; p < kc; p++) {
        // The B panel four steps ahead: on its first use in a tile it comes from L2 or L3
        // (measured: 4096 x 384 x 1536 went from 94-114 to 113-123 GFLOP/s on one core).
        _mm_prefetch((const char *)(b + 192), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 208), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 224), _MM_HINT_T0);
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
        a += 8;
        b += 48;
    }
    float tile[8 * 48];
    float *out = full ? c : tile;
    const long ldo = full ? ldc : 48;
    const int acc = full && accumulate;
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6) STORE(7)
    if (!full) wk_sgemm_store_partial(tile, 48, c, ldc, accumulate, mr, nr);
}
#endif

#if defined(__x86_64__)
// A last panel narrower than 48 columns (N = 64 is one panel of 48 and one of 16) packed 16 or
// 32 wide and multiplied by 8 x 16 or 8 x 32: the 48-wide kernel over it did up to three times
// the products needed (the digits CNN's fc1, [397, 512] x [512, 64], computed 96 columns for 64;
// attention's probabilities x v at a head width of 32 computed 48).
#define DEFINE_NARROW(name, V)                                                                                    \
    WK_AVX512 void name(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr,      \
                        long nr) {                                                                               \
        __m512 acc[8][V];                                                                                         \
        for (int i = 0; i < 8; i++) {                                                                             \
            for (int v = 0; v < V; v++) acc[i][v] = _mm512_setzero_ps();                                          \
        }                                                                                                         \
        for (long p = 0; p < kc; p++) {                                                                           \
            _mm_prefetch((const char *)(b + 4 * 16 * V), _MM_HINT_T0);                                            \
            __m512 bv[V];                                                                                         \
            for (int v = 0; v < V; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);                                      \
            for (int i = 0; i < 8; i++) {                                                                         \
                const __m512 x = _mm512_set1_ps(a[i]);                                                            \
                for (int v = 0; v < V; v++) acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);                     \
            }                                                                                                     \
            a += 8;                                                                                               \
            b += 16 * V;                                                                                          \
        }                                                                                                         \
        if (mr == 8 && nr == 16 * V) {                                                                            \
            for (int i = 0; i < 8; i++) {                                                                         \
                for (int v = 0; v < V; v++) {                                                                     \
                    float *o = c + i * ldc + 16 * v;                                                              \
                    _mm512_storeu_ps(o, accumulate ? _mm512_add_ps(acc[i][v], _mm512_loadu_ps(o)) : acc[i][v]);   \
                }                                                                                                 \
            }                                                                                                     \
            return;                                                                                               \
        }                                                                                                         \
        float tile[8 * 16 * V];                                                                                   \
        for (int i = 0; i < 8; i++) {                                                                             \
            for (int v = 0; v < V; v++) _mm512_storeu_ps(tile + i * 16 * V + 16 * v, acc[i][v]);                 \
        }                                                                                                         \
        wk_sgemm_store_partial(tile, 16 * V, c, ldc, accumulate, mr, nr);                                         \
    }

DEFINE_NARROW(wk_sgemm_microkernel_avx512_16, 1)
DEFINE_NARROW(wk_sgemm_microkernel_avx512_32, 2)
#endif
