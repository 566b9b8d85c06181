// What the kernel files share: the AVX2 target attribute, glibc's libmvec entry points and
// the constants of the activation functions. Each family of kernels is one file, with its
// baseline and AVX2 versions side by side (the loops written once as macros where they can
// be); which version runs is decided per call from wk_isa_level() (cpu.c).
#ifndef WPACK_KERNELS_INTERNAL_H
#define WPACK_KERNELS_INTERNAL_H

#include "wpack_kernels.h"
#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define WK_AVX2 __attribute__((target("avx2,fma")))
// AVX-512 as wk_detected_level() means it: F, BW, DQ and VL, on top of AVX2+FMA.
#define WK_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
// libmvec's 8-wide versions (at most 4 ulp); the baseline versions call libm.
WK_AVX2 __m256 _ZGVdN8v_expf(__m256);
WK_AVX2 __m256 _ZGVdN8v_logf(__m256);
WK_AVX2 __m256 _ZGVdN8v_tanhf(__m256);
WK_AVX2 __m256 _ZGVdN8v_erff(__m256);
WK_AVX2 __m256 _ZGVdN8v_sinf(__m256);
WK_AVX2 __m256 _ZGVdN8v_cosf(__m256);
// And their 16-wide versions.
WK_AVX512 __m512 _ZGVeN16v_expf(__m512);
WK_AVX512 __m512 _ZGVeN16v_logf(__m512);
WK_AVX512 __m512 _ZGVeN16v_tanhf(__m512);
WK_AVX512 __m512 _ZGVeN16v_erff(__m512);
WK_AVX512 __m512 _ZGVeN16v_sinf(__m512);
WK_AVX512 __m512 _ZGVeN16v_cosf(__m512);
#endif

#if defined(__x86_64__)
/// Rows r[0..7] become columns: r[t] holds element t of every row on return (packing a matrix
/// whose columns are stored as rows: GEMM's B panels, kᵀ in attention, Winograd's lanes).
WK_AVX2 static inline void wk_transpose8x8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

#if defined(__x86_64__)
// exp(x) in registers for softmax's exp-and-sum passes (rows.c, attention.c), instead of a call
// into libmvec per vector, which spills every live vector around it: at [4096, 384] those calls
// were most of a softmax's time past the memory traffic (x + 1 over the same rows took 164 us,
// softmax 470), and in attention's 128-long rows they stalled each sum on a reload from the
// stack. Cephes' expf: x = n·ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in two so n·ln 2 is
// exact), a degree-5 polynomial for e^r (about 1 ulp), then 2^n. Below -103, where e^x is 0 in float, the result is 0 (so a masked score of
// -inf still weighs nothing); a NaN stays NaN.
#define WK_EXP_CONSTANTS                                                                                 \
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;      \
    const float c0 = 1.9875691500e-4f, c1 = 1.3981999507e-3f, c2 = 8.3334519073e-3f, c3 = 4.1665795894e-2f, \
                c4 = 1.6666665459e-1f, c5 = 5.0000001201e-1f

WK_AVX2 static inline __m256 wk_exp_avx2(__m256 x) {
    WK_EXP_CONSTANTS;
    const __m256 floor_ = _mm256_set1_ps(-103.0f);
    const __m256 under = _mm256_cmp_ps(x, floor_, _CMP_LT_OQ), nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    // Above 89, e^x is inf in float; the clamp keeps n an int32.
    const __m256 v = _mm256_min_ps(_mm256_max_ps(x, floor_), _mm256_set1_ps(89.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ln2_hi), v);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ln2_lo), r);
    __m256 p = _mm256_set1_ps(c0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c5));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    // 2^n as two factors of about 2^(n/2), each a normal float for -149 <= n <= 128, built in
    // the exponent bits: their product underflows gradually, as e^x does.
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i h1 = _mm256_srai_epi32(ni, 1), h2 = _mm256_sub_epi32(ni, h1);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, _mm256_set1_epi32(127)), 23));
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
    e = _mm256_andnot_ps(under, e);
    return _mm256_blendv_ps(e, x, nan);
}
#endif

// Shared between the reductions and the row operations (reductions.c).
float wk_internal_reduce_base(int op, const float *a, long n);
#if defined(__x86_64__)
WK_AVX2 float wk_internal_reduce_avx2(int op, const float *a, long n);
WK_AVX2 float wk_internal_extremum_avx2(const float *a, long n, int maximum);
WK_AVX512 float wk_internal_reduce_avx512(int op, const float *a, long n);
#endif

#define SQRT1_2 0.70710678118654752440f
#define GELU_C 0.79788456080286535588f  /* sqrt(2/pi) */

#endif
