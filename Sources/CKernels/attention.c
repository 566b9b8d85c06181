#include "internal/kernels_internal.h"

// Attention of one (batch, head) pair in one pass over the head, its scores in a worker's cache,
// without the packed GEMM. Two shapes of work: a few query rows (a decode step) against any
// number of keys, where each row's scores are dot products and one pass over v; and many rows
// (a sequence encoded or prefilled), in six-row register tiles over kᵀ and v packed once per
// head (attention_tiles_avx2, below). At MiniLM's 1 x 16 tokens the first version with one dot
// product at a time and wk_softmax_row took 23 us for 12 heads, the all-rows pass ~11 us (24 ->
// 17 us a layer against the BLAS); at 32 x 128 the tiles took MiniLM's attention kernel from
// 12.4% to 8.1% of a forward (Zen 3), where two packed-GEMM calls per head had run it.
//
// Rows of q, k, v and out have unit element stride (the layout a linear layer's output split
// into heads has); rows are qs, ks, vs, os floats apart. mask (may be NULL) is added to the
// scores of query row i at mask + i·mrs + j·mstep. With shift >= 0 (causal attention), query
// row i sees keys 0 ... i + shift only: its softmax runs over those, the rest of its scores
// are zero, so the product with v needs no special case.

static inline long visible_keys(long i, long s, long shift) {
    if (shift < 0) return s;
    long n = i + shift + 1;
    return n < s ? n : s;
}

#if defined(__x86_64__)

WK_AVX2 static inline float hmax8_avx2(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

WK_AVX2 static inline float hsum8_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/// row = row·scale + mask in place; returns the row's maximum (0 for a row of -inf, whose
/// exponentials must stay finite).
WK_AVX2 static float scale_and_mask_avx2(float *row, long s, float scale, const float *mask, long mstep) {
    const __m256 vs = _mm256_set1_ps(scale);
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    long j = 0;
    for (; j + 8 <= s; j += 8) {
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(row + j), vs);
        if (mask) {
            __m256 m = mstep == 1 ? _mm256_loadu_ps(mask + j)
                     : mstep == 0 ? _mm256_set1_ps(mask[0])
                     : _mm256_setr_ps(mask[j * mstep], mask[(j + 1) * mstep], mask[(j + 2) * mstep], mask[(j + 3) * mstep],
                                      mask[(j + 4) * mstep], mask[(j + 5) * mstep], mask[(j + 6) * mstep], mask[(j + 7) * mstep]);
            x = _mm256_add_ps(x, m);
        }
        _mm256_storeu_ps(row + j, x);
        vmax = _mm256_max_ps(vmax, x);
    }
    float m = hmax8_avx2(vmax);
    for (; j < s; j++) {
        float x = row[j] * scale + (mask ? mask[j * mstep] : 0);
        row[j] = x;
        m = x > m ? x : m;
    }
    return m == -INFINITY ? 0 : m;
}

// softmax(row·scale + mask) in place, for rows of a few dozen: the scaling, the mask and the
// maximum in one pass, then exponentials and their sum, then the division. wk_softmax_row
// spent ~65 ns on a 16-long row, mostly in its scalar paths for rows shorter than 32.
WK_AVX2 static void softmax_short_avx2(float *row, long s, float scale, const float *mask, long mstep) {
    const float m = scale_and_mask_avx2(row, s, scale, mask, mstep);
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    long j = 0;
    for (; j + 8 <= s; j += 8) {
        __m256 e = wk_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
        _mm256_storeu_ps(row + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum8_avx2(acc);
    for (; j < s; j++) { row[j] = expf(row[j] - m); sum += row[j]; }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (j = 0; j + 8 <= s; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), inv));
    for (; j < s; j++) row[j] *= 1.0f / sum;
}

WK_AVX2 static void attention_avx2(long t, long s, long d, long dv, const float *q, long qs, const float *k, long ks,
                                   const float *v, long vs, const float *mask, long mrs, long mstep, float scale,
                                   long shift, float *scores, float *out, long os) {
    // All t x s scores at once through the few-rows product, which keeps 12 dot products in
    // flight (one at a time, each waited on its horizontal sum).
    wk_gemm_nt(t, s, d, q, qs, k, ks, scores, s, 0);
    for (long i = 0; i < t; i++) {
        long visible = visible_keys(i, s, shift);
        softmax_short_avx2(scores + i * s, visible, scale, mask ? mask + i * mrs : 0, mstep);
        for (long j = visible; j < s; j++) scores[i * s + j] = 0;
    }
    // out = P·v two query rows at a time, 16 columns in registers: each row of v loaded once
    // feeds four independent multiply-add chains.
    long i = 0;
    for (; i + 2 <= t; i += 2) {
        const float *p0 = scores + i * s, *p1 = p0 + s;
        float *o0 = out + i * os, *o1 = o0 + os;
        long c = 0;
        for (; c + 16 <= dv; c += 16) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
            for (long j = 0; j < s; j++) {
                const float *vj = v + j * vs + c;
                __m256 x0 = _mm256_loadu_ps(vj), x1 = _mm256_loadu_ps(vj + 8);
                __m256 w0 = _mm256_set1_ps(p0[j]), w1 = _mm256_set1_ps(p1[j]);
                a0 = _mm256_fmadd_ps(w0, x0, a0); a1 = _mm256_fmadd_ps(w0, x1, a1);
                b0 = _mm256_fmadd_ps(w1, x0, b0); b1 = _mm256_fmadd_ps(w1, x1, b1);
            }
            _mm256_storeu_ps(o0 + c, a0); _mm256_storeu_ps(o0 + c + 8, a1);
            _mm256_storeu_ps(o1 + c, b0); _mm256_storeu_ps(o1 + c + 8, b1);
        }
        for (; c < dv; c++) {
            float x0 = 0, x1 = 0;
            for (long j = 0; j < s; j++) { x0 += p0[j] * v[j * vs + c]; x1 += p1[j] * v[j * vs + c]; }
            o0[c] = x0; o1[c] = x1;
        }
    }
    if (i < t) {
        // One query row (every row of a decode step): 32 columns at a time, so four
        // multiply-add chains are in flight instead of one waiting on its own latency.
        const float *p0 = scores + i * s;
        float *o0 = out + i * os;
        long c = 0;
        for (; c + 32 <= dv; c += 32) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (long j = 0; j < s; j++) {
                const float *vj = v + j * vs + c;
                const __m256 w = _mm256_set1_ps(p0[j]);
                a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vj), a0);
                a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vj + 8), a1);
                a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vj + 16), a2);
                a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vj + 24), a3);
            }
            _mm256_storeu_ps(o0 + c, a0); _mm256_storeu_ps(o0 + c + 8, a1);
            _mm256_storeu_ps(o0 + c + 16, a2); _mm256_storeu_ps(o0 + c + 24, a3);
        }
        for (; c + 8 <= dv; c += 8) {
            __m256 a0 = _mm256_setzero_ps();
            for (long j = 0; j < s; j++) a0 = _mm256_fmadd_ps(_mm256_set1_ps(p0[j]), _mm256_loadu_ps(v + j * vs + c), a0);
            _mm256_storeu_ps(o0 + c, a0);
        }
        for (; c < dv; c++) {
            float x0 = 0;
            for (long j = 0; j < s; j++) x0 += p0[j] * v[j * vs + c];
            o0[c] = x0;
        }
    }
}

// Attention of many query rows (a 128-token sequence's): six query rows at a time, their scores
// (6 x s) and their output tiles in registers, the scores never leaving L1. kᵀ is packed once
// per head into 16-column panels (s x d floats: 16 KB for MiniLM's heads) so a score tile is the
// GEMM's 6 x 16 register block reading q in place; P·v reads the rows of v in place the same way.
// Through two packed-GEMM calls per head, MiniLM 32 x 128's attention ran at ~56 GFLOP/s on two
// cores, ~14% of the forward for ~5% of its arithmetic: each call packed q, kᵀ, P and v into
// panels and its k loops were 32 long.
enum { TILE_ROWS = 6, TILE_COLS = 16 };

/// kᵀ's panels: panel c holds keys 16c ... 16c + 15, element p of key j at [p·16 + j % 16];
/// keys past s are zero. Whole panels go 8 keys by 8 elements through the transpose (one
/// float at a time, the packing took a quarter of the kernel's time).
WK_AVX2 static void pack_keys_avx2(long s, long d, const float *k, long ks, float *kt) {
    for (long c0 = 0; c0 < s; c0 += TILE_COLS) {
        float *panel = kt + c0 * d;
        const long n = s - c0 < TILE_COLS ? s - c0 : TILE_COLS;
        long from = 0;
        if (n == TILE_COLS) {
            for (; from + 8 <= d; from += 8) {
                for (int j0 = 0; j0 < TILE_COLS; j0 += 8) {
                    __m256 r[8];
                    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(k + (c0 + j0 + i) * ks + from);
                    wk_transpose8x8(r);
                    for (int e = 0; e < 8; e++) _mm256_storeu_ps(panel + (from + e) * TILE_COLS + j0, r[e]);
                }
            }
        }
        for (long j = 0; j < n; j++) {
            const float *kj = k + (c0 + j) * ks;
            for (long p = from; p < d; p++) panel[p * TILE_COLS + j] = kj[p];
        }
        for (long j = n; j < TILE_COLS; j++) {
            for (long p = 0; p < d; p++) panel[p * TILE_COLS + j] = 0;
        }
    }
}

/// Scores of `rows` (<= 6) query rows against every key panel: rows x 16 tiles over d.
__attribute__((always_inline)) WK_AVX2 static inline void score_tiles(int rows, long s, long d, const float *q, long qs,
                                                                       const float *kt, float *scores, long ss) {
    for (long c0 = 0; c0 < s; c0 += TILE_COLS) {
        const float *panel = kt + c0 * d;
        __m256 acc[TILE_ROWS][2];
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        for (long p = 0; p < d; p++) {
            const __m256 b0 = _mm256_loadu_ps(panel + p * TILE_COLS), b1 = _mm256_loadu_ps(panel + p * TILE_COLS + 8);
#pragma GCC unroll 6
            for (int i = 0; i < rows; i++) {
                const __m256 a = _mm256_broadcast_ss(q + i * qs + p);
                acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
            }
        }
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) {
            _mm256_storeu_ps(scores + i * ss + c0, acc[i][0]);
            _mm256_storeu_ps(scores + i * ss + c0 + 8, acc[i][1]);
        }
    }
}

/// out row i = (P row i · v) · inv[i] over the first `keys` keys, 16 output columns a tile (the
/// last one masked when dv is not a multiple of 16).
__attribute__((always_inline)) WK_AVX2 static inline void value_tiles(int rows, long keys, long dv, const float *pr, long ss,
                                                                       const float *inv, const float *v, long vs, float *out,
                                                                       long os) {
    for (long c = 0; c < dv; c += TILE_COLS) {
        const long n = dv - c < TILE_COLS ? dv - c : TILE_COLS;
        const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lanes);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n - 8), lanes);
        __m256 acc[TILE_ROWS][2];
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        if (n == TILE_COLS) {
            for (long j = 0; j < keys; j++) {
                const __m256 b0 = _mm256_loadu_ps(v + j * vs + c), b1 = _mm256_loadu_ps(v + j * vs + c + 8);
#pragma GCC unroll 6
                for (int i = 0; i < rows; i++) {
                    const __m256 a = _mm256_broadcast_ss(pr + i * ss + j);
                    acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
                }
            }
#pragma GCC unroll 6
            for (int i = 0; i < rows; i++) {
                const __m256 f = _mm256_broadcast_ss(inv + i);
                _mm256_storeu_ps(out + i * os + c, _mm256_mul_ps(acc[i][0], f));
                _mm256_storeu_ps(out + i * os + c + 8, _mm256_mul_ps(acc[i][1], f));
            }
        } else {
            for (long j = 0; j < keys; j++) {
                const __m256 b0 = _mm256_maskload_ps(v + j * vs + c, m0), b1 = _mm256_maskload_ps(v + j * vs + c + 8, m1);
#pragma GCC unroll 6
                for (int i = 0; i < rows; i++) {
                    const __m256 a = _mm256_broadcast_ss(pr + i * ss + j);
                    acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
                }
            }
#pragma GCC unroll 6
            for (int i = 0; i < rows; i++) {
                const __m256 f = _mm256_broadcast_ss(inv + i);
                _mm256_maskstore_ps(out + i * os + c, m0, _mm256_mul_ps(acc[i][0], f));
                _mm256_maskstore_ps(out + i * os + c + 8, m1, _mm256_mul_ps(acc[i][1], f));
            }
        }
    }
}

/// e^x for the scores' exponentials, x <= 0 (a score less its row's maximum), -inf or NaN: with
/// no overflow to guard and 2^n always normal, n is read off the bits of x·log2(e) + 1.5·2^23
/// and 2^n built in one exponent field, 17 operations where wk_exp_avx2's full range takes 27
/// (the exponentials were a third of a 128-key head's time). Cephes' polynomial, as there;
/// below -87.3 the result is 0, a NaN stays NaN (max keeps its second operand when one is NaN).
WK_AVX2 static inline __m256 exp_scores_avx2(__m256 x) {
    WK_EXP_CONSTANTS;
    const __m256 floor_ = _mm256_set1_ps(-87.33654f), magic = _mm256_set1_ps(12582912.0f);
    const __m256 v = _mm256_max_ps(floor_, x);
    const __m256 t = _mm256_fmadd_ps(v, _mm256_set1_ps(log2e), magic);
    const __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ln2_hi), v);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ln2_lo), r);
    __m256 p = _mm256_set1_ps(c0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c5));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    // t's low mantissa bits hold n (two's complement); shifted into the exponent field, plus 127.
    const __m256i bits = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(t), 23), _mm256_set1_epi32(127 << 23));
    const __m256 e = _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, floor_, _CMP_LT_OQ), e);
}

/// A row of scores becomes exp(row·scale + mask - max) over its first `visible` keys, zeros
/// after them up to s; returns the exponentials' sum (the division waits for P·v's tiles).
/// Without a mask the row is not rewritten before the exponentials: its maximum is read in a
/// pass of loads, and the scale goes into the exponent's multiply-add.
WK_AVX2 static float exponentiate_row_avx2(float *row, long visible, long s, float scale, const float *mask, long mstep) {
    float m;
    long j;
    __m256 a = _mm256_set1_ps(scale), b;
    if (!mask && scale > 0) {
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (j = 0; j + 8 <= visible; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(row + j));
        m = hmax8_avx2(vmax);
        for (; j < visible; j++) m = row[j] > m ? row[j] : m;
        m = m == -INFINITY ? 0 : m * scale;
        b = _mm256_set1_ps(-m);
    } else {
        m = scale_and_mask_avx2(row, visible, scale, mask, mstep);
        a = _mm256_set1_ps(1.0f);
        b = _mm256_set1_ps(-m);
        scale = 1.0f;
    }
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (j = 0; j + 16 <= visible; j += 16) {
        const __m256 e0 = exp_scores_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(row + j), a, b));
        const __m256 e1 = exp_scores_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(row + j + 8), a, b));
        _mm256_storeu_ps(row + j, e0);
        _mm256_storeu_ps(row + j + 8, e1);
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
    }
    for (; j + 8 <= visible; j += 8) {
        const __m256 e0 = exp_scores_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(row + j), a, b));
        _mm256_storeu_ps(row + j, e0);
        acc0 = _mm256_add_ps(acc0, e0);
    }
    float sum = hsum8_avx2(_mm256_add_ps(acc0, acc1));
    for (; j < visible; j++) { row[j] = expf(row[j] * scale - m); sum += row[j]; }
    for (; j < s; j++) row[j] = 0;
    return sum;
}

/// exponentiate_row_avx2 for a whole block's rows at once when every row sees all s keys and
/// there is no mask: the rows' maxima, then their exponentials, in loops over the rows, so six
/// independent chains overlap where one row's max-then-exp-then-sum ran one after another
/// (~390 cycles a 128-key row, 2.4 times its operations' throughput).
__attribute__((always_inline)) WK_AVX2 static inline void exponentiate_block_avx2(int rows, float *scores, long ss, long s,
                                                                                   float scale, float *inv) {
    const long whole = s / 8 * 8;
    __m256 acc[TILE_ROWS], bias[TILE_ROWS];
    float m[TILE_ROWS];
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) acc[i] = _mm256_set1_ps(-INFINITY);
    for (long j = 0; j < whole; j += 8) {
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) acc[i] = _mm256_max_ps(acc[i], _mm256_loadu_ps(scores + i * ss + j));
    }
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) {
        const float *row = scores + i * ss;
        m[i] = hmax8_avx2(acc[i]);
        for (long j = whole; j < s; j++) m[i] = row[j] > m[i] ? row[j] : m[i];
        m[i] = m[i] == -INFINITY ? 0 : m[i] * scale;
        bias[i] = _mm256_set1_ps(-m[i]);
        acc[i] = _mm256_setzero_ps();
    }
    const __m256 a = _mm256_set1_ps(scale);
    for (long j = 0; j < whole; j += 8) {
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) {
            const __m256 e = exp_scores_avx2(_mm256_fmadd_ps(_mm256_loadu_ps(scores + i * ss + j), a, bias[i]));
            _mm256_storeu_ps(scores + i * ss + j, e);
            acc[i] = _mm256_add_ps(acc[i], e);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) {
        float *row = scores + i * ss;
        float sum = hsum8_avx2(acc[i]);
        for (long j = whole; j < s; j++) { row[j] = expf(row[j] * scale - m[i]); sum += row[j]; }
        inv[i] = 1.0f / sum;
    }
}

/// One block of `rows` query rows from first row i0: scores, their softmax, their output.
__attribute__((always_inline)) WK_AVX2 static inline void attention_rows(int rows, long i0, long s, long d, long dv,
        const float *q, long qs, const float *kt, const float *v, long vs, const float *mask, long mrs, long mstep,
        float scale, long shift, float *scores, long ss, float *out, long os) {
    score_tiles(rows, s, d, q + i0 * qs, qs, kt, scores, ss);
    long keys = 0;
    float inv[TILE_ROWS];
    if (!mask && shift < 0 && scale > 0) {
        exponentiate_block_avx2(rows, scores, ss, s, scale, inv);
        keys = s;
    } else {
        for (int i = 0; i < rows; i++) {
            const long visible = visible_keys(i0 + i, s, shift);
            inv[i] = 1.0f / exponentiate_row_avx2(scores + i * ss, visible, s, scale, mask ? mask + (i0 + i) * mrs : 0, mstep);
            keys = visible > keys ? visible : keys;
        }
    }
    value_tiles(rows, keys, dv, scores, ss, inv, v, vs, out + i0 * os, os);
}

WK_AVX2 static void attention_tiles_avx2(long t, long s, long d, long dv, const float *q, long qs, const float *k, long ks,
                                         const float *v, long vs, const float *mask, long mrs, long mstep, float scale,
                                         long shift, float *scratch, float *out, long os) {
    const long ss = (s + TILE_COLS - 1) / TILE_COLS * TILE_COLS;
    float *kt = scratch, *vp = kt + ss * d, *scores = vp + s * dv;
    pack_keys_avx2(s, d, k, ks, kt);
    // v's rows contiguous too: every block of query rows reads all of them, and rows a
    // projection's width apart (384 or 1,152 floats) fall in 8 of L1's 64 sets, so in place they
    // evicted each other (the products ran at a third of the FMA rate).
    for (long j = 0; j < s; j++) memcpy(vp + j * dv, v + j * vs, (size_t)dv * sizeof(float));
    v = vp;
    vs = dv;
    long i0 = 0;
    for (; i0 + TILE_ROWS <= t; i0 += TILE_ROWS) {
        attention_rows(TILE_ROWS, i0, s, d, dv, q, qs, kt, v, vs, mask, mrs, mstep, scale, shift, scores, ss, out, os);
    }
    // Fixed row counts, so each block's accumulators stay in registers.
    switch (t - i0) {
    case 5: attention_rows(5, i0, s, d, dv, q, qs, kt, v, vs, mask, mrs, mstep, scale, shift, scores, ss, out, os); break;
    case 4: attention_rows(4, i0, s, d, dv, q, qs, kt, v, vs, mask, mrs, mstep, scale, shift, scores, ss, out, os); break;
    case 3: attention_rows(3, i0, s, d, dv, q, qs, kt, v, vs, mask, mrs, mstep, scale, shift, scores, ss, out, os); break;
    case 2: attention_rows(2, i0, s, d, dv, q, qs, kt, v, vs, mask, mrs, mstep, scale, shift, scores, ss, out, os); break;
    case 1: attention_rows(1, i0, s, d, dv, q, qs, kt, v, vs, mask, mrs, mstep, scale, shift, scores, ss, out, os); break;
    default: break;
    }
}
#endif

static void attention_base(long t, long s, long d, long dv, const float *q, long qs, const float *k, long ks,
                           const float *v, long vs, const float *mask, long mrs, long mstep, float scale,
                           long shift, float *scores, float *out, long os) {
    for (long i = 0; i < t; i++) {
        const float *qi = q + i * qs;
        long visible = visible_keys(i, s, shift);
        for (long j = 0; j < visible; j++) {
            const float *kj = k + j * ks;
            float x = 0;
            for (long p = 0; p < d; p++) x += qi[p] * kj[p];
            x *= scale;
            scores[j] = mask ? x + mask[i * mrs + j * mstep] : x;
        }
        wk_softmax_row(scores, scores, visible, 0);
        float *o = out + i * os;
        for (long c = 0; c < dv; c++) o[c] = 0;
        for (long j = 0; j < visible; j++) {
            const float *vj = v + j * vs;
            for (long c = 0; c < dv; c++) o[c] += scores[j] * vj[c];
        }
    }
}

long wk_attention_scratch(long t, long s, long d, long dv) {
    const long ss = (s + 15) / 16 * 16;
    const long tiles = ss * d + s * dv + 6 * ss, rows = t * s;
    return tiles > rows ? tiles : rows;
}

void wk_attention_head(long t, long s, long d, long dv, const float *q, long qs, const float *k, long ks,
                       const float *v, long vs, const float *mask, long mrs, long mstep, float scale,
                       long shift, float *scores, float *out, long os) {
#if defined(__x86_64__)
    if (wk_uses_avx2() && t > WK_ATTENTION_FEW_QUERIES) {
        attention_tiles_avx2(t, s, d, dv, q, qs, k, ks, v, vs, mask, mrs, mstep, scale, shift, scores, out, os);
        return;
    }
    if (wk_uses_avx2()) { attention_avx2(t, s, d, dv, q, qs, k, ks, v, vs, mask, mrs, mstep, scale, shift, scores, out, os); return; }
#endif
    attention_base(t, s, d, dv, q, qs, k, ks, v, vs, mask, mrs, mstep, scale, shift, scores, out, os);
}
