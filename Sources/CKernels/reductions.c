#include "internal/kernels_internal.h"

// Sums use 16 independent float accumulators (vectorised lanes), which keeps the error close to
// pairwise summation for the row lengths seen here.
#define DEFINE_REDUCE(SUFFIX, ATTR)                                                              \
ATTR float wk_internal_reduce_##SUFFIX(int op, const float *a, long n) {                              \
    if (op == WK_SUM) {                                                                          \
        float acc[16] = {0};                                                                     \
        long i = 0;                                                                              \
        for (; i + 16 <= n; i += 16)                                                             \
            for (int k = 0; k < 16; k++) acc[k] += a[i + k];                                     \
        float s = 0;                                                                             \
        for (; i < n; i++) s += a[i];                                                            \
        for (int k = 0; k < 16; k++) s += acc[k];                                                \
        return s;                                                                                \
    }                                                                                            \
    float r = a[0];                                                                              \
    int nan = 0;                                                                                 \
    if (op == WK_RMAX) { for (long i = 0; i < n; i++) { float x = a[i]; nan |= x != x; r = x > r ? x : r; } } \
    else { for (long i = 0; i < n; i++) { float x = a[i]; nan |= x != x; r = x < r ? x : r; } }   \
    return nan ? NAN : r;                                                                        \
}                                                                                                \
ATTR static void accumulate_##SUFFIX(int op, float *acc, const float *a, long sa, long n) {      \
    if (op == WK_SUM) { for (long i = 0; i < n; i++) acc[i] += a[i * sa]; }                      \
    else if (op == WK_RMAX) { for (long i = 0; i < n; i++) { float x = a[i * sa], y = acc[i]; acc[i] = (x > y || x != x) ? x : y; } } \
    else { for (long i = 0; i < n; i++) { float x = a[i * sa], y = acc[i]; acc[i] = (x < y || x != x) ? x : y; } } \
}
DEFINE_REDUCE(base, )
#if defined(__x86_64__)
DEFINE_REDUCE(avx2, WK_AVX2)
DEFINE_REDUCE(avx512, WK_AVX512)
#endif

#if defined(__x86_64__)
// Max and min 8 lanes at a time with 4 accumulators: written out, because the compiler will
// not vectorise a select-based maximum without fast-math (it was a chain of dependent
// compares, the slowest pass of a softmax row). A NaN anywhere gives NaN, as the scalar loop.
WK_AVX2 float wk_internal_extremum_avx2(const float *a, long n, int maximum) {
    if (n < 32) return wk_internal_reduce_avx2(maximum ? WK_RMAX : WK_RMIN, a, n);
    __m256 r0 = _mm256_loadu_ps(a), r1 = r0, r2 = r0, r3 = r0, nan = _mm256_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);
        __m256 x2 = _mm256_loadu_ps(a + i + 16), x3 = _mm256_loadu_ps(a + i + 24);
        nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(x0, x1, _CMP_UNORD_Q), _mm256_cmp_ps(x2, x3, _CMP_UNORD_Q)));
        if (maximum) { r0 = _mm256_max_ps(r0, x0); r1 = _mm256_max_ps(r1, x1); r2 = _mm256_max_ps(r2, x2); r3 = _mm256_max_ps(r3, x3); }
        else { r0 = _mm256_min_ps(r0, x0); r1 = _mm256_min_ps(r1, x1); r2 = _mm256_min_ps(r2, x2); r3 = _mm256_min_ps(r3, x3); }
    }
    if (_mm256_movemask_ps(nan)) return NAN;
    float lanes[32];
    _mm256_storeu_ps(lanes, r0); _mm256_storeu_ps(lanes + 8, r1); _mm256_storeu_ps(lanes + 16, r2); _mm256_storeu_ps(lanes + 24, r3);
    float r = lanes[0];
    for (int k = 1; k < 32; k++) r = maximum ? (lanes[k] > r ? lanes[k] : r) : (lanes[k] < r ? lanes[k] : r);
    if (i < n) {
        float t = wk_internal_reduce_avx2(maximum ? WK_RMAX : WK_RMIN, a + i, n - i);
        if (t != t) return NAN;
        r = maximum ? (t > r ? t : r) : (t < r ? t : r);
    }
    return r;
}
#endif

float wk_reduce(int op, const float *a, long n) {
#if defined(__x86_64__)
    const int level = wk_isa_level();
    if (level >= WK_ISA_AVX512 && op == WK_SUM) return wk_internal_reduce_avx512(op, a, n);
    if (level >= WK_ISA_AVX2) return op == WK_SUM ? wk_internal_reduce_avx2(op, a, n) : wk_internal_extremum_avx2(a, n, op == WK_RMAX);
#endif
    return wk_internal_reduce_base(op, a, n);
}

void wk_accumulate(int op, float *acc, const float *a, long sa, long n) {
#if defined(__x86_64__)
    const int level = wk_isa_level();
    if (level >= WK_ISA_AVX512) { accumulate_avx512(op, acc, a, sa, n); return; }
    if (level >= WK_ISA_AVX2) { accumulate_avx2(op, acc, a, sa, n); return; }
#endif
    accumulate_base(op, acc, a, sa, n);
}

long wk_argext(const float *a, long n, int minimum, float *value) {
    long best = 0;
    float v = a[0];
    for (long i = 0; i < n; i++) {
        float x = a[i];
        if (x != x) { best = i; v = x; break; }
        if (minimum ? x < v : x > v) { v = x; best = i; }
    }
    *value = v;
    return best;
}
