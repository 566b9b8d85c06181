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
