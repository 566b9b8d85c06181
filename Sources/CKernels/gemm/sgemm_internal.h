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


/// Rows r[0..7] become columns: r[t] holds element t of every row on return.
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

#endif
