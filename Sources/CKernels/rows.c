#include "internal/kernels_internal.h"

// Row operations: softmax (and log-softmax), layer norm and RMS norm over one row each.
static void softmax_row_base(const float *x, float *out, long n, int logarithm) {
    float m = wk_reduce(WK_RMAX, x, n);
    if (m == -INFINITY) m = 0;  // a row of -inf gives NaN in PyTorch too, but keep exp finite
    wk_binary(WK_SUB, x, 1, &m, 0, out, n);
    if (logarithm) {
        // log softmax = (x - m) - log(sum(exp(x - m)))
        float tmp[256];
        double s = 0;
        for (long i = 0; i < n; i += 256) {
            long k = n - i < 256 ? n - i : 256;
            wk_unary(WK_EXP, out + i, tmp, k);
            s += wk_reduce(WK_SUM, tmp, k);
        }
        float ls = logf((float)s);
        wk_binary(WK_SUB, out, 1, &ls, 0, out, n);
    } else {
        wk_unary(WK_EXP, out, out, n);
        float s = wk_reduce(WK_SUM, out, n);
        float inv = 1.0f / s;
        wk_binary(WK_MUL, out, 1, &inv, 0, out, n);
    }
}

#if defined(__x86_64__)
// The last pass of both vector versions: out holds exp(x - m) (softmax) or nothing yet
// (log-softmax), s their sum.
static void softmax_finish(const float *x, float *out, long n, float m, float s, int logarithm) {
    if (logarithm) {
        float ls = logf(s);
        for (long j = 0; j < n; j++) out[j] = (x[j] - m) - ls;
    } else {
        float inv = 1.0f / s;
        for (long j = 0; j < n; j++) out[j] *= inv;
    }
}

// Three passes over the row (max; exp and sum together; scale) instead of five: at attention's
// 128-long rows the passes, not the exponentials, were the cost.
WK_AVX2 static void softmax_row_avx2(const float *x, float *out, long n, int logarithm) {
    float m = wk_internal_extremum_avx2(x, n, 1);
    if (m == -INFINITY) m = 0;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 e0 = wk_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        __m256 e1 = wk_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
        if (!logarithm) { _mm256_storeu_ps(out + i, e0); _mm256_storeu_ps(out + i + 8, e1); }
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(acc0, acc1));
    float s = 0;
    for (; i < n; i++) { float e = expf(x[i] - m); if (!logarithm) out[i] = e; s += e; }
    for (int k = 0; k < 8; k++) s += lanes[k];
    softmax_finish(x, out, n, m, s, logarithm);
}

WK_AVX512 static inline __m512 exp_avx512(__m512 x) {
    WK_EXP_CONSTANTS;
    const __m512 floor_ = _mm512_set1_ps(-103.0f);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, floor_, _CMP_GE_OQ), nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __m512 v = _mm512_max_ps(x, floor_);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ln2_hi), v);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ln2_lo), r);
    __m512 p = _mm512_set1_ps(c0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c5));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    // scalef multiplies by 2^n with gradual underflow: no exponent-field arithmetic.
    return _mm512_mask_blend_ps(nan, _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(y, n)), x);
}

// The same three passes, 16 lanes at a time.
WK_AVX512 static void softmax_row_avx512(const float *x, float *out, long n, int logarithm) {
    float m;
    {
        __m512 r = _mm512_set1_ps(-INFINITY);
        __mmask16 nan = 0;
        long i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512 v = _mm512_loadu_ps(x + i);
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            r = _mm512_max_ps(r, v);
        }
        m = _mm512_reduce_max_ps(r);
        for (; i < n; i++) { nan |= x[i] != x[i]; m = x[i] > m ? x[i] : m; }
        if (nan) m = NAN;
    }
    if (m == -INFINITY) m = 0;
    const __m512 vm = _mm512_set1_ps(m);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 e0 = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        __m512 e1 = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm));
        if (!logarithm) { _mm512_storeu_ps(out + i, e0); _mm512_storeu_ps(out + i + 16, e1); }
        acc0 = _mm512_add_ps(acc0, e0);
        acc1 = _mm512_add_ps(acc1, e1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < n; i++) { float e = expf(x[i] - m); if (!logarithm) out[i] = e; s += e; }
    softmax_finish(x, out, n, m, s, logarithm);
}
#endif

void wk_softmax_row(const float *x, float *out, long n, int logarithm) {
#if defined(__x86_64__)
    const int level = wk_isa_level();
    if (level >= WK_ISA_AVX512) { softmax_row_avx512(x, out, n, logarithm); return; }
    if (level >= WK_ISA_AVX2) { softmax_row_avx2(x, out, n, logarithm); return; }
#endif
    softmax_row_base(x, out, n, logarithm);
}

// Layer and RMS normalisation of one row. The sums use 16 accumulators so they vectorise (a
// single float accumulator is a chain of dependent adds: 4 cycles an element); the variance
// is two-pass, as PyTorch's CPU layer_norm (stable for rows with a large mean); the scale,
// weight and bias are applied in one pass.
#define DEFINE_NORM(SUFFIX, ATTR)                                                                \
ATTR static float sumsq_##SUFFIX(const float *x, long n, float shift) {                          \
    float acc[16] = {0};                                                                         \
    long i = 0;                                                                                  \
    for (; i + 16 <= n; i += 16)                                                                 \
        for (int k = 0; k < 16; k++) { float d = x[i + k] - shift; acc[k] += d * d; }            \
    float s = 0;                                                                                 \
    for (; i < n; i++) { float d = x[i] - shift; s += d * d; }                                   \
    for (int k = 0; k < 16; k++) s += acc[k];                                                    \
    return s;                                                                                    \
}                                                                                                \
ATTR static void norm_row_##SUFFIX(const float *x, float *out, long n, const float *w, long sw,  \
                                   const float *b, long sb, float eps, int rms) {                \
    float shift = rms ? 0.0f : wk_internal_reduce_##SUFFIX(WK_SUM, x, n) / (float)n;                         \
    float scale = 1.0f / sqrtf(sumsq_##SUFFIX(x, n, shift) / (float)n + eps);                    \
    if (w && b && sw == 1 && sb == 1) {                                                          \
        for (long i = 0; i < n; i++) out[i] = (x[i] - shift) * scale * w[i] + b[i];              \
    } else if (w && !b && sw == 1) {                                                             \
        for (long i = 0; i < n; i++) out[i] = (x[i] - shift) * scale * w[i];                     \
    } else if (!w && !b) {                                                                       \
        for (long i = 0; i < n; i++) out[i] = (x[i] - shift) * scale;                            \
    } else {                                                                                     \
        for (long i = 0; i < n; i++) {                                                           \
            float y = (x[i] - shift) * scale;                                                    \
            if (w) y *= w[i * sw];                                                               \
            if (b) y += b[i * sb];                                                               \
            out[i] = y;                                                                          \
        }                                                                                        \
    }                                                                                            \
}
DEFINE_NORM(base, )
#if defined(__x86_64__)
DEFINE_NORM(avx2, WK_AVX2)
DEFINE_NORM(avx512, WK_AVX512)
#endif

void wk_norm_row(const float *x, float *out, long n, const float *w, long sw, const float *b, long sb,
                 float eps, int rms) {
#if defined(__x86_64__)
    const int level = wk_isa_level();
    if (level >= WK_ISA_AVX512) { norm_row_avx512(x, out, n, w, sw, b, sb, eps, rms); return; }
    if (level >= WK_ISA_AVX2) { norm_row_avx2(x, out, n, w, sw, b, sb, eps, rms); return; }
#endif
    norm_row_base(x, out, n, w, sw, b, sb, eps, rms);
}
