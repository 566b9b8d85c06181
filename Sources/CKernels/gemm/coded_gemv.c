#include "sgemm_internal.h"
#include <stdint.h>

// C = A · Wᵀ for 1 to 4 rows of A against a block-coded W (q8_0, q4_0, q4_1): a decode step's
// matrix-vector products. wk_gemm_nt_coded decodes W into an L1 panel and then multiplies the
// panel, which pays a store and a reload of every weight; with one row of A that is most of
// the work. Here each block is decoded in registers (wk_block_weights_avx2: the floats the
// panel decoder stores) and multiplied into A's rows at once. The activations stay float32,
// so the result is the float product of the decoded weights up to the order of the additions.
// Measured on an AVX2 Zen 3 (SmolLM2's 576 x 1536 q4_1, WPACK_PROFILE): 280 us a product on the
// panel path, 135 us here on one thread. At about 30 instructions a block it is bound by the
// core, not by memory (a standalone loop ran at 4.8 GB/s whether the weight was in cache or
// not); int8 activations (wk_gemv_q4_int8 below, opt-in) take a third of the instructions but
// round A.

enum { GEMV_BLOCK = 32, GEMV_MAX_ROWS = 4 };

static void gemv_base(long m, long n, long blocks, const float *a, long lda, const unsigned char *w, long ldw_bytes,
                      int code, float *c, long ldc, int accumulate) {
    const long bytes = wk_coded_block_bytes(code);
    for (long j = 0; j < n; j++) {
        const unsigned char *row = w + j * ldw_bytes;
        for (long i = 0; i < m; i++) {
            const float *x = a + i * lda;
            float total = 0;
            for (long b = 0; b < blocks; b++) {
                const unsigned char *blk = row + b * bytes;
                const float d = wk_half_to_float(wk_load_u16(blk));
                const float *xb = x + b * GEMV_BLOCK;
                if (code == WK_CODE_Q8_0) {
                    for (int t = 0; t < GEMV_BLOCK; t++) total += d * (float)(int8_t)blk[2 + t] * xb[t];
                } else {
                    const unsigned char *q = blk + (code == WK_CODE_Q4_1 ? 4 : 2);
                    const float shift = code == WK_CODE_Q4_1 ? wk_half_to_float(wk_load_u16(blk + 2)) : -8 * d;
                    for (int t = 0; t < 16; t++) {
                        total += fmaf(d, (float)(q[t] & 15), shift) * xb[t];
                        total += fmaf(d, (float)(q[t] >> 4), shift) * xb[16 + t];
                    }
                }
            }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + total : total;
        }
    }
}

#if defined(__x86_64__)
/// Rows of A in a compile-time count, so the accumulators stay in registers: four per row for
/// one row, two per row for more (whose rows are independent chains already). One chain per
/// row measured 28-29 against 32-35 tokens/s for these in SmolLM2's decode on Zen 3.
#define GEMV_AVX2_ROWS(R)                                                                                              \
    WK_AVX2_F16C static void gemv_avx2_##R(long n, long blocks, const float *a, long lda, const unsigned char *w,     \
                                           long ldw_bytes, int code, float *c, long ldc, int accumulate) {             \
        enum { ACC = R == 1 ? 4 : 2 };                                                                                 \
        const long bytes = wk_coded_block_bytes(code);                                                                 \
        for (long j = 0; j < n; j++) {                                                                                 \
            const unsigned char *row = w + j * ldw_bytes;                                                              \
            /* Four rows ahead into L2: the hardware prefetcher does the rest of a row. */                            \
            if (j + 4 < n) {                                                                                           \
                for (long p = 0; p < blocks * bytes; p += 64) _mm_prefetch((const char *)(row + 4 * ldw_bytes + p), _MM_HINT_T1); \
            }                                                                                                          \
            __m256 acc[R][ACC];                                                                                        \
            for (int r = 0; r < R; r++) for (int t = 0; t < ACC; t++) acc[r][t] = _mm256_setzero_ps();                 \
            for (long b = 0; b < blocks; b++) {                                                                        \
                __m256 wv[4];                                                                                          \
                wk_block_weights_avx2(code, row + b * bytes, wv);                                                      \
                for (int r = 0; r < R; r++) {                                                                          \
                    const float *x = a + r * lda + b * GEMV_BLOCK;                                                     \
                    for (int t = 0; t < 4; t++) acc[r][t % ACC] = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(x + 8 * t), acc[r][t % ACC]); \
                }                                                                                                      \
            }                                                                                                          \
            for (int r = 0; r < R; r++) {                                                                              \
                __m256 s = acc[r][0];                                                                                  \
                for (int t = 1; t < ACC; t++) s = _mm256_add_ps(s, acc[r][t]);                                         \
                const float total = wk_hsum8(s);                                                                       \
                c[r * ldc + j] = accumulate ? c[r * ldc + j] + total : total;                                          \
            }                                                                                                          \
        }                                                                                                              \
    }
GEMV_AVX2_ROWS(1)
GEMV_AVX2_ROWS(2)
GEMV_AVX2_ROWS(3)
GEMV_AVX2_ROWS(4)
#endif

int wk_gemv_coded(long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                  float *c, long ldc, int accumulate) {
    if (code != WK_CODE_Q8_0 && code != WK_CODE_Q4_0 && code != WK_CODE_Q4_1) return -1;
    if (m < 1 || m > GEMV_MAX_ROWS || k <= 0 || k % GEMV_BLOCK != 0) return -1;
    if (n <= 0) return 0;
    const long blocks = k / GEMV_BLOCK;
    const unsigned char *rows = w;
#if defined(__x86_64__)
    if (wk_isa_level() >= WK_ISA_AVX2) {
        switch (m) {
        case 1: gemv_avx2_1(n, blocks, a, lda, rows, ldw_bytes, code, c, ldc, accumulate); break;
        case 2: gemv_avx2_2(n, blocks, a, lda, rows, ldw_bytes, code, c, ldc, accumulate); break;
        case 3: gemv_avx2_3(n, blocks, a, lda, rows, ldw_bytes, code, c, ldc, accumulate); break;
        default: gemv_avx2_4(n, blocks, a, lda, rows, ldw_bytes, code, c, ldc, accumulate); break;
        }
        return 0;
    }
#endif
    gemv_base(m, n, blocks, a, lda, rows, ldw_bytes, code, c, ldc, accumulate);
    return 0;
}

// q4_0 / q4_1 weights against activations quantized to q8 blocks (WPACK_Q8_ACTIVATIONS=int8,
// as for q8_0 in coded.c): a block's 32 nibbles are unsigned bytes, which is what maddubs
// multiplies with A's signed bytes, so a block is one load, two masks, maddubs, madd, a
// conversion and an FMA; the offsets (-8·d, or m) multiply A's float block sums. This is
// llama.cpp's scheme for these types; it rounds A to 8 bits, so it is opt-in.
static void gemv_q4_int8_base(long m, long n, long blocks, const wk_q8_row_block *qa, const float *sums,
                              const unsigned char *w, long ldw_bytes, int code, float *c, long ldc, int accumulate) {
    const long bytes = wk_coded_block_bytes(code);
    for (long j = 0; j < n; j++) {
        const unsigned char *row = w + j * ldw_bytes;
        for (long i = 0; i < m; i++) {
            float total = 0;
            for (long b = 0; b < blocks; b++) {
                const unsigned char *blk = row + b * bytes, *q = blk + (code == WK_CODE_Q4_1 ? 4 : 2);
                const wk_q8_row_block *x = qa + i * blocks + b;
                int dot = 0;
                for (int t = 0; t < 16; t++) dot += (q[t] & 15) * x->q[t] + (q[t] >> 4) * x->q[16 + t];
                const float d = wk_half_to_float(wk_load_u16(blk));
                const float shift = code == WK_CODE_Q4_1 ? wk_half_to_float(wk_load_u16(blk + 2)) : -8 * d;
                total += d * x->d * (float)dot + shift * sums[i * blocks + b];
            }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + total : total;
        }
    }
}

#if defined(__x86_64__)
WK_AVX2_F16C static void gemv_q4_int8_avx2(long m, long n, long blocks, const wk_q8_row_block *qa, const float *sums,
                                           const unsigned char *w, long ldw_bytes, int code, float *c, long ldc,
                                           int accumulate) {
    const long bytes = wk_coded_block_bytes(code);
    const __m128i mask = _mm_set1_epi8(15);
    const __m256i ones = _mm256_set1_epi16(1);
    for (long j = 0; j < n; j++) {
        const unsigned char *row = w + j * ldw_bytes;
        if (j + 4 < n) {
            for (long p = 0; p < blocks * bytes; p += 64) _mm_prefetch((const char *)(row + 4 * ldw_bytes + p), _MM_HINT_T1);
        }
        for (long i = 0; i < m; i++) {
            const wk_q8_row_block *x = qa + i * blocks;
            const float *s = sums + i * blocks;
            __m256 acc = _mm256_setzero_ps();
            float shifted = 0;
            for (long b = 0; b < blocks; b++) {
                const unsigned char *blk = row + b * bytes;
                const __m128i packed = _mm_loadu_si128((const __m128i *)(blk + (code == WK_CODE_Q4_1 ? 4 : 2)));
                const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask));
                const __m256i pairs = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)x[b].q));
                const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                const float d = _cvtsh_ss(wk_load_u16(blk));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[b].d), dot, acc);
                shifted += (code == WK_CODE_Q4_1 ? _cvtsh_ss(wk_load_u16(blk + 2)) : -8 * d) * s[b];
            }
            const float total = wk_hsum8(acc) + shifted;
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + total : total;
        }
    }
}
#endif

int wk_gemv_q4_int8(long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                    float *c, long ldc, int accumulate) {
    if (code != WK_CODE_Q4_0 && code != WK_CODE_Q4_1) return -1;
    if (m < 1 || m > GEMV_MAX_ROWS || k <= 0 || k % GEMV_BLOCK != 0 || k / GEMV_BLOCK > 256) return -1;
    if (n <= 0) return 0;
    const long blocks = k / GEMV_BLOCK;
    wk_q8_row_block qa[GEMV_MAX_ROWS * 256];
    float sums[GEMV_MAX_ROWS * 256];
    wk_quantize_rows_q8(m, k, a, lda, qa);
    for (long i = 0; i < m; i++) {
        for (long b = 0; b < blocks; b++) {
            float t = 0;
            for (int e = 0; e < GEMV_BLOCK; e++) t += a[i * lda + b * GEMV_BLOCK + e];
            sums[i * blocks + b] = t;
        }
    }
#if defined(__x86_64__)
    if (wk_isa_level() >= WK_ISA_AVX2) {
        gemv_q4_int8_avx2(m, n, blocks, qa, sums, w, ldw_bytes, code, c, ldc, accumulate);
        return 0;
    }
#endif
    gemv_q4_int8_base(m, n, blocks, qa, sums, w, ldw_bytes, code, c, ldc, accumulate);
    return 0;
}
