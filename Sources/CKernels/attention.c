#include "wpack_kernels.h"
#include <math.h>

// Attention of one (batch, head) pair for short sequences, in one pass over a head, without
// the packed GEMM. At MiniLM's 1 x 16 tokens a head is two products of 16 x 16 x 32 and 16 softmax
// rows of 16: the cost is latency, not arithmetic. Measured: a first version with one dot
// product at a time and wk_softmax_row (whose short rows fall to scalar loops) took 23 us for
// 12 heads, this one ~11 us; MiniLM's attention kernel went from 24 us a layer through the
// BLAS to 17 us. Longer sequences go through the packed GEMM, whose blocking pays off there,
// except for a few query rows (a decode step) against any number of keys: one row of scores
// and one pass over v, where the GEMM path paid two product calls per head.
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
#include <immintrin.h>
#define WK_AVX2 __attribute__((target("avx2,fma")))

WK_AVX2 __m256 _ZGVdN8v_expf(__m256);

// softmax(row·scale + mask) in place, for rows of a few dozen: the scaling, the mask and the
// maximum in one pass, then exponentials and their sum, then the division. wk_softmax_row
// spent ~65 ns on a 16-long row, mostly in its scalar paths for rows shorter than 32.
WK_AVX2 static void softmax_short_avx2(float *row, long s, float scale, const float *mask, long mstep) {
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
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    float m = lanes[0];
    for (int q = 1; q < 8; q++) m = lanes[q] > m ? lanes[q] : m;
    for (; j < s; j++) {
        float x = row[j] * scale + (mask ? mask[j * mstep] : 0);
        row[j] = x;
        m = x > m ? x : m;
    }
    if (m == -INFINITY) m = 0;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    for (j = 0; j + 8 <= s; j += 8) {
        __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
        _mm256_storeu_ps(row + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    _mm256_storeu_ps(lanes, acc);
    float sum = 0;
    for (; j < s; j++) { row[j] = expf(row[j] - m); sum += row[j]; }
    for (int q = 0; q < 8; q++) sum += lanes[q];
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

void wk_attention_head(long t, long s, long d, long dv, const float *q, long qs, const float *k, long ks,
                       const float *v, long vs, const float *mask, long mrs, long mstep, float scale,
                       long shift, float *scores, float *out, long os) {
#if defined(__x86_64__)
    if (wk_uses_avx2()) { attention_avx2(t, s, d, dv, q, qs, k, ks, v, vs, mask, mrs, mstep, scale, shift, scores, out, os); return; }
#endif
    attention_base(t, s, d, dv, q, qs, k, ks, v, vs, mask, mrs, mstep, scale, shift, scores, out, os);
}
