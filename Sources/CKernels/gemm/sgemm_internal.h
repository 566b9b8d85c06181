// The packed SGEMM's pieces (BLIS's split): sgemm.c holds the loops around the micro-kernel
// (cache blocking, packing, the split over workers); each ISA's file holds one micro-kernel,
// which multiplies an MR x kc panel of A by a kc x NR panel of B into an MR x NR tile of C
// held in registers. Nothing outside gemm/ sees these.
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
} wk_sgemm_geometry;

/// The geometry of a kernel level's micro-kernel.
wk_sgemm_geometry wk_sgemm_geometry_for(int level);
/// K cut into blocks of equal size (a multiple of 8, at most about kc): the block size.
long wk_sgemm_k_block(long k, long kc);

void wk_sgemm_microkernel_base(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr, long nr);
#if defined(__x86_64__)
void wk_sgemm_microkernel_avx2(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr, long nr);
void wk_sgemm_microkernel_avx512(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr, long nr);
#endif

/// Copies the valid mr x nr corner of a full MR x NR tile (row stride NR) into C.
static inline void wk_sgemm_store_partial(const float *tile, int NR, float *c, long ldc, int accumulate, long mr, long nr) {
    for (long i = 0; i < mr; i++) {
        for (long j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
    }
}

/// A block of 32 activations quantized as q8_0 quantizes weights (scale max|x|/127, kept in
/// float32), for the int8 products of coded.c and coded_gemv.c.
typedef struct {
    float d;
    signed char q[32];
} wk_q8_row_block;

/// m rows of k (a multiple of 32) floats, lda apart, into m·k/32 blocks.
void wk_quantize_rows_q8(long m, long k, const float *a, long lda, wk_q8_row_block *out);

#endif
