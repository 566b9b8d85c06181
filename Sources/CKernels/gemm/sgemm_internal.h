// The packed SGEMM's pieces (BLIS's split): sgemm.c holds the loops around the micro-kernel
// (cache blocking, packing, the split over workers); each ISA's file holds one micro-kernel,
// which multiplies an MR x kc panel of A by a kc x NR panel of B into an MR x NR tile of C
// held in registers. Nothing outside gemm/ and conv/ (whose products run on them) sees these.
#ifndef WPACK_SGEMM_INTERNAL_H
#define WPACK_SGEMM_INTERNAL_H

#include "../internal/kernels_internal.h"

/// C[0..<mr, 0..<nr] (= or, with accumulate, +=) Σ_p a[p*MR + i] · b[p*NR + j]. The panels are
/// zero-padded to MR and NR, so the product is always computed whole; only the tile's valid
/// mr x nr corner is stored.
typedef void (*wk_sgemm_microkernel)(long kc, const float *a, const float *b, float *c, long ldc, int accumulate,
                                     long mr, long nr);

/// One micro-kernel and the blocking that suits it: an A block of mc x kc stays in L2 while
/// one kc x NR panel of B stays in L1 and is reused by every MR-row panel of that block.
typedef struct {
    int mr, nr;
    long mc, kc;
    wk_sgemm_microkernel kernel;
    /// Where NR is wide: kernels for a last panel of tail_step·(i + 1) < NR columns, which is
    /// packed that wide (0 and NULL: every panel is NR wide).
    int tail_step;
    wk_sgemm_microkernel tails[2];
} wk_sgemm_geometry;

/// The geometry of a kernel level's micro-kernel.
wk_sgemm_geometry wk_sgemm_geometry_for(int level);
/// K cut into blocks of equal size (a multiple of 8, at most about kc): the block size.
long wk_sgemm_k_block(long k, long kc);

void wk_sgemm_microkernel_base(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr, long nr);
#if defined(__x86_64__)
void wk_sgemm_microkernel_avx2(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr, long nr);
void wk_sgemm_microkernel_avx512(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr, long nr);
void wk_sgemm_microkernel_avx512_16(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr, long nr);
void wk_sgemm_microkernel_avx512_32(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr, long nr);
#endif

/// Copies the valid mr x nr corner of a full MR x NR tile (row stride NR) into C.
static inline void wk_sgemm_store_partial(const float *tile, int NR, float *c, long ldc, int accumulate, long mr, long nr) {
    for (long i = 0; i < mr; i++) {
        for (long j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
    }
}

static inline long wk_ceil_div(long a, long b) { return (a + b - 1) / b; }
static inline long wk_round_up(long a, long b) { return wk_ceil_div(a, b) * b; }

/// Copies n floats from `from` (stride apart) to `to`, contiguous. Explicit 4-float moves where
/// the source is contiguous, not memcpy or a loop the compiler turns into a call: the convolutions'
/// rows are a few floats (8 in the digits CNN), and the call costs more than the copy.
static inline void wk_copy_floats(float *restrict to, const float *restrict from, long n, long stride) {
    long q = 0;
    if (stride == 1) {
#if defined(__x86_64__)
        for (; q + 4 <= n; q += 4) _mm_storeu_ps(to + q, _mm_loadu_ps(from + q));
#endif
        for (; q < n; q++) to[q] = from[q];
    } else {
        for (; q < n; q++) to[q] = from[q * stride];
    }
}

/// A little-endian uint16 (a block's float16 scale), at any alignment.
static inline unsigned short wk_load_u16(const unsigned char *p) { return (unsigned short)(p[0] | (p[1] << 8)); }

#if defined(__x86_64__)
#define WK_AVX2_F16C __attribute__((target("avx2,fma,f16c")))

WK_AVX2_F16C static inline float wk_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif

#endif
