#include "sgemm_internal.h"
#include <stdint.h>
#include <stdlib.h>
#include <float.h>
#include <math.h>

// C = A · Wᵀ for 1 to 4 rows of A against a block-coded W (q8_0, q4_0, q4_1): a decode step's
// matrix-vector products. wk_gemm_nt_coded decodes W into an L1 panel and multiplies the
// panel, which pays a store and a reload of every weight; with one row of A that is most of
// the work. Widening each block to floats in registers instead (the first version here) cost
// about 30 instructions a block and ran at 4.4 GB/s a core, bound by the core, not by memory.
//
// So A's rows are rounded to int16, per block of 32 with the scale max|x| / 32767, and a block
// is a product of integers: its 32 weights widened to int16 (the nibbles as they are, without
// their offset) and multiplied into A's int16s with two vpmaddwd, summed exactly in int32;
// then one conversion and one FMA by d·dA. The offsets (-8·d for q4_0, m for q4_1) multiply
// A's float sum over the block, computed before rounding. The rounding moves each activation
// by at most half a step, 2^-16 of its block's largest: the result is the float product of
// the decoded weights within Σ_blocks (max|a_b| / 65534) · Σ|w_b| per output: 2^-16 of the
// block's largest against bfloat16's 2^-9 of each value. SmolLM2's greedy continuations and
// logits still match transformers' float32 (to 1e-3 of the range) with it. llama.cpp rounds
// activations to int8 instead (maddubs), 256 times as far: a version of that here was no
// faster than this one on Zen 3 (40-42 against 46-50 tokens/s for SmolLM2) and changed
// SmolLM2's greedy answers, so it is gone.

enum { GEMV_BLOCK = 32, GEMV_AHEAD = 16, GEMV_MAX_ROWS = 4, GEMV_STACK_BLOCKS = 128 };

/// A's rows as int16 blocks: q[m·k], and per block its scale and the float sum of its values.
typedef struct {
    short *q;
    float *d;
    float *sum;
} gemv_rows16;

/// A block's scale and its inverse. A NaN or an infinity in the block (caught by its largest
/// magnitude or its sum, which NaN reaches whichever lane it is in) makes the scale NaN and
/// the integers 0, so every output that reads the block is NaN, as the float product would be
/// non-finite; rounding a NaN to an integer would instead give a finite, wrong number.
static inline void block_scale(float amax, float sum, float *d, float *id) {
    if (!(amax <= FLT_MAX) || sum != sum) {
        *d = NAN;
        *id = 0;
        return;
    }
    *d = amax / 32767.0f;
    *id = *d > 0 ? 1.0f / *d : 0.0f;
}

static void quantize_base(long m, long blocks, const float *a, long lda, gemv_rows16 r) {
    for (long i = 0; i < m; i++) {
        for (long b = 0; b < blocks; b++) {
            const float *x = a + i * lda + b * GEMV_BLOCK;
            float amax = 0, sum = 0;
            for (int t = 0; t < GEMV_BLOCK; t++) {
                const float v = fabsf(x[t]);
                amax = v > amax ? v : amax;
                sum += x[t];
            }
            float d, id;
            block_scale(amax, sum, &d, &id);
            short *q = r.q + (i * blocks + b) * GEMV_BLOCK;
            for (int t = 0; t < GEMV_BLOCK; t++) q[t] = id == 0 ? 0 : (short)nearbyintf(x[t] * id);
            r.d[i * blocks + b] = d;
            r.sum[i * blocks + b] = sum;
        }
    }
}

/// The weights of one block as integers, and its scale and offset: w = d·q + shift.
static inline void block_ints_base(int code, const unsigned char *blk, int q[32], float *d, float *shift) {
    *d = wk_half_to_float(wk_load_u16(blk));
    if (code == WK_CODE_Q8_0) {
        for (int t = 0; t < 32; t++) q[t] = (signed char)blk[2 + t];
        *shift = 0;
        return;
    }
    const unsigned char *p = blk + (code == WK_CODE_Q4_1 ? 4 : 2);
    for (int t = 0; t < 16; t++) { q[t] = p[t] & 15; q[16 + t] = p[t] >> 4; }
    *shift = code == WK_CODE_Q4_1 ? wk_half_to_float(wk_load_u16(blk + 2)) : -8 * *d;
}

static void gemv_base(long m, long n, long blocks, gemv_rows16 x, const unsigned char *w, long ldw_bytes, int code,
                      float *c, long ldc, int accumulate) {
    const long bytes = wk_coded_block_bytes(code);
    for (long j = 0; j < n; j++) {
        const unsigned char *row = w + j * ldw_bytes;
        for (long i = 0; i < m; i++) {
            float total = 0;
            for (long b = 0; b < blocks; b++) {
                int q[32];
                float d, shift;
                block_ints_base(code, row + b * bytes, q, &d, &shift);
                const short *xq = x.q + (i * blocks + b) * GEMV_BLOCK;
                int dot = 0;
                for (int t = 0; t < GEMV_BLOCK; t++) dot += q[t] * xq[t];
                total += d * x.d[i * blocks + b] * (float)dot + shift * x.sum[i * blocks + b];
            }
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + total : total;
        }
    }
}

#if defined(__x86_64__)
WK_AVX2_F16C static void quantize_avx2(long m, long blocks, const float *a, long lda, gemv_rows16 r) {
    const __m256 signless = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (long i = 0; i < m; i++) {
        for (long b = 0; b < blocks; b++) {
            const float *x = a + i * lda + b * GEMV_BLOCK;
            __m256 v[4], amax = _mm256_setzero_ps(), sum = _mm256_setzero_ps();
            for (int t = 0; t < 4; t++) {
                v[t] = _mm256_loadu_ps(x + 8 * t);
                amax = _mm256_max_ps(amax, _mm256_and_ps(v[t], signless));
                sum = _mm256_add_ps(sum, v[t]);
            }
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_movehdup_ps(h));
            const float total = wk_hsum8(sum);
            float d, id;
            block_scale(_mm_cvtss_f32(h), total, &d, &id);
            const __m256 scale = _mm256_set1_ps(id);
            // cvtps rounds to nearest even, as nearbyintf does in the baseline version.
            const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], scale)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], scale));
            const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], scale)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], scale));
            // packs works within 128-bit lanes; the permutation puts the 16 values back in order.
            short *q = r.q + (i * blocks + b) * GEMV_BLOCK;
            _mm256_storeu_si256((__m256i *)q, _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8));
            _mm256_storeu_si256((__m256i *)(q + 16), _mm256_permute4x64_epi64(_mm256_packs_epi32(i2, i3), 0xD8));
            r.d[i * blocks + b] = d;
            r.sum[i * blocks + b] = total;
        }
    }
}

/// One block's weights as int16 (w0: values 0-15, w1: 16-31), its scale and its offset.
WK_AVX2_F16C static inline __attribute__((always_inline)) void block_ints_avx2(int code, const unsigned char *blk, __m256i *w0,
                                                                              __m256i *w1, float *d, float *shift) {
    *d = _cvtsh_ss(wk_load_u16(blk));
    if (code == WK_CODE_Q8_0) {
        *w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 2)));
        *w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 18)));
        *shift = 0;
        return;
    }
    // Each byte widened to 16 bits holds weight t in its low nibble and weight t + 16 above
    // it: one widening, then a mask or a shift, gives both halves. (Three instructions where
    // splitting the nibbles first took five; no faster on Zen 4, which this loop does not
    // bind on instruction count: an AVX-512 version with half the vector instructions was
    // not faster either.)
    const __m256i packed = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(blk + (code == WK_CODE_Q4_1 ? 4 : 2))));
    *w0 = _mm256_and_si256(packed, _mm256_set1_epi16(15));
    *w1 = _mm256_srli_epi16(packed, 4);
    *shift = code == WK_CODE_Q4_1 ? _cvtsh_ss(wk_load_u16(blk + 2)) : -8 * *d;
}

/// The exact int32 dot product of a block's weights with A's int16s there, as 8 partial sums.
WK_AVX2_F16C static inline __attribute__((always_inline)) __m256 block_dot_avx2(__m256i w0, __m256i w1, const short *xq) {
    const __m256i lo = _mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)xq));
    const __m256i hi = _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(xq + 16)));
    return _mm256_cvtepi32_ps(_mm256_add_epi32(lo, hi));
}

/// R rows of A (a compile-time count, as is the coding, so nothing branches per block) and
/// two blocks in flight, each with its own accumulators: with one set, the FMA's latency
/// bounded the loop. The accumulators are named, not indexed by the block's parity, which
/// kept them in memory.
WK_AVX2_F16C static inline __attribute__((always_inline)) void gemv_rows_avx2(int R, int code, long n, long blocks, gemv_rows16 x,
                                                                             const unsigned char *w, long ldw_bytes, float *c,
                                                                             long ldc, int accumulate) {
    // GGUF's block sizes, as constants here (wk_coded_block_bytes is a call).
    const long bytes = code == WK_CODE_Q8_0 ? 34 : code == WK_CODE_Q4_0 ? 18 : 20;
    for (long j = 0; j < n; j++) {
        const unsigned char *row = w + j * ldw_bytes;
        // Sixteen rows ahead into L2 (5.6 KiB of q4_1 rows at K = 576): four, before, left
        // SmolLM2's q8_0 head at 73-83 ms over 64 steps, sixteen at 60-70 (Zen 4), and decoding went
        // from a median of 118 to 123 tokens/s over 8 interleaved runs; 32 and 64 were no better.
        if (j + GEMV_AHEAD < n) {
            for (long p = 0; p < blocks * bytes; p += 64) _mm_prefetch((const char *)(row + GEMV_AHEAD * ldw_bytes + p), _MM_HINT_T1);
        }
        __m256 even[GEMV_MAX_ROWS], odd[GEMV_MAX_ROWS];
        float shiftedEven[GEMV_MAX_ROWS], shiftedOdd[GEMV_MAX_ROWS];
        for (int r = 0; r < R; r++) {
            even[r] = odd[r] = _mm256_setzero_ps();
            shiftedEven[r] = shiftedOdd[r] = 0;
        }
        long b = 0;
        for (; b + 2 <= blocks; b += 2) {
            __m256i w0, w1, v0, v1;
            float d0, s0, d1, s1;
            block_ints_avx2(code, row + b * bytes, &w0, &w1, &d0, &s0);
            block_ints_avx2(code, row + (b + 1) * bytes, &v0, &v1, &d1, &s1);
            for (int r = 0; r < R; r++) {
                const long at = r * blocks + b;
                even[r] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * x.d[at]), block_dot_avx2(w0, w1, x.q + at * GEMV_BLOCK), even[r]);
                odd[r] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * x.d[at + 1]), block_dot_avx2(v0, v1, x.q + (at + 1) * GEMV_BLOCK), odd[r]);
                if (code != WK_CODE_Q8_0) {
                    shiftedEven[r] += s0 * x.sum[at];
                    shiftedOdd[r] += s1 * x.sum[at + 1];
                }
            }
        }
        if (b < blocks) {
            __m256i w0, w1;
            float d0, s0;
            block_ints_avx2(code, row + b * bytes, &w0, &w1, &d0, &s0);
            for (int r = 0; r < R; r++) {
                const long at = r * blocks + b;
                even[r] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * x.d[at]), block_dot_avx2(w0, w1, x.q + at * GEMV_BLOCK), even[r]);
                if (code != WK_CODE_Q8_0) shiftedEven[r] += s0 * x.sum[at];
            }
        }
        for (int r = 0; r < R; r++) {
            const float total = wk_hsum8(_mm256_add_ps(even[r], odd[r])) + (shiftedEven[r] + shiftedOdd[r]);
            c[r * ldc + j] = accumulate ? c[r * ldc + j] + total : total;
        }
    }
}

#define GEMV_AVX2_VARIANT(R, CODE)                                                                                     \
    WK_AVX2_F16C static void gemv_avx2_##R##_##CODE(long n, long blocks, gemv_rows16 x, const unsigned char *w,      \
                                                    long ldw_bytes, float *c, long ldc, int accumulate) {             \
        gemv_rows_avx2(R, WK_CODE_##CODE, n, blocks, x, w, ldw_bytes, c, ldc, accumulate);                            \
    }
#define GEMV_AVX2_CODES(R) GEMV_AVX2_VARIANT(R, Q8_0) GEMV_AVX2_VARIANT(R, Q4_0) GEMV_AVX2_VARIANT(R, Q4_1)
GEMV_AVX2_CODES(1)
GEMV_AVX2_CODES(2)
GEMV_AVX2_CODES(3)
GEMV_AVX2_CODES(4)

typedef void (*gemv_avx2_fn)(long, long, gemv_rows16, const unsigned char *, long, float *, long, int);

static gemv_avx2_fn gemv_avx2_variant(long m, int code) {
    static const gemv_avx2_fn table[GEMV_MAX_ROWS][3] = {
        {gemv_avx2_1_Q8_0, gemv_avx2_1_Q4_0, gemv_avx2_1_Q4_1}, {gemv_avx2_2_Q8_0, gemv_avx2_2_Q4_0, gemv_avx2_2_Q4_1},
        {gemv_avx2_3_Q8_0, gemv_avx2_3_Q4_0, gemv_avx2_3_Q4_1}, {gemv_avx2_4_Q8_0, gemv_avx2_4_Q4_0, gemv_avx2_4_Q4_1}};
    return table[m - 1][code == WK_CODE_Q8_0 ? 0 : code == WK_CODE_Q4_0 ? 1 : 2];
}
#endif

int wk_gemv_coded(long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                  float *c, long ldc, int accumulate) {
    if (code != WK_CODE_Q8_0 && code != WK_CODE_Q4_0 && code != WK_CODE_Q4_1) return -1;
    if (m < 1 || m > GEMV_MAX_ROWS || k <= 0 || k % GEMV_BLOCK != 0) return -1;
    if (n <= 0) return 0;
    const long blocks = k / GEMV_BLOCK;
    // Up to K = 4096 the rounded rows live on the stack (36 KiB: generation runs on task
    // threads too, whose stacks are not a main thread's); longer ones take the heap.
    short stack_q[GEMV_MAX_ROWS * GEMV_STACK_BLOCKS * GEMV_BLOCK] __attribute__((aligned(32)));
    float stack_d[GEMV_MAX_ROWS * GEMV_STACK_BLOCKS], stack_sum[GEMV_MAX_ROWS * GEMV_STACK_BLOCKS];
    gemv_rows16 x = {stack_q, stack_d, stack_sum};
    void *heap = NULL;
    if (blocks > GEMV_STACK_BLOCKS) {
        const size_t count = (size_t)m * (size_t)blocks;
        if (posix_memalign(&heap, 64, count * (GEMV_BLOCK * sizeof(short) + 2 * sizeof(float))) != 0) return -1;
        x.q = heap;
        x.d = (float *)(x.q + count * GEMV_BLOCK);
        x.sum = x.d + count;
    }
    const unsigned char *rows = w;
#if defined(__x86_64__)
    if (wk_isa_level() >= WK_ISA_AVX2) {
        quantize_avx2(m, blocks, a, lda, x);
        gemv_avx2_variant(m, code)(n, blocks, x, rows, ldw_bytes, c, ldc, accumulate);
        free(heap);
        return 0;
    }
#endif
    quantize_base(m, blocks, a, lda, x);
    gemv_base(m, n, blocks, x, rows, ldw_bytes, code, c, ldc, accumulate);
    free(heap);
    return 0;
}
