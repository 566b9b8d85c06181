#include "wpack_kernels.h"
#include <math.h>
#include <string.h>
#include <float.h>

// The loops below are written once as macros and instantiated twice: with target("avx2,fma")
// (clang vectorises them 8 wide and contracts multiply-adds) and for baseline x86-64.
// Transcendental functions come from glibc: libmvec's 8-wide AVX2 versions (at most 4 ulp) in
// the AVX2 build, libm's scalar versions in the baseline build.

#if defined(__x86_64__)
#include <immintrin.h>
#define WK_AVX2 __attribute__((target("avx2,fma")))
WK_AVX2 __m256 _ZGVdN8v_expf(__m256);
WK_AVX2 __m256 _ZGVdN8v_logf(__m256);
WK_AVX2 __m256 _ZGVdN8v_tanhf(__m256);
WK_AVX2 __m256 _ZGVdN8v_erff(__m256);
WK_AVX2 __m256 _ZGVdN8v_sinf(__m256);
WK_AVX2 __m256 _ZGVdN8v_cosf(__m256);
#endif
// Which version runs is decided per call by wk_uses_avx2() (cpu.c: detection, WPACK_ISA, the
// thread's forced level).

#define SQRT1_2 0.70710678118654752440f
#define GELU_C 0.79788456080286535588f  /* sqrt(2/pi) */

// ---------------------------------------------------------------- elementwise
#define DEFINE_BINARY(SUFFIX, ATTR)                                                              \
ATTR static void binary_##SUFFIX(int op, const float *a, long sa, const float *b, long sb,        \
                                 float *out, long n) {                                           \
    _Pragma("clang loop vectorize(enable)")                                                      \
    for (long i = 0; i < n; i++) {                                                               \
        float x = a[i * sa], y = b[i * sb], r;                                                   \
        switch (op) {                                                                            \
        case WK_ADD: r = x + y; break;                                                           \
        case WK_SUB: r = x - y; break;                                                           \
        case WK_MUL: r = x * y; break;                                                           \
        case WK_DIV: r = x / y; break;                                                           \
        case WK_MAX: r = (x > y || x != x) ? x : y; break;                                       \
        case WK_MIN: r = (x < y || x != x) ? x : y; break;                                       \
        case WK_LT: r = x < y; break;                                                            \
        case WK_LE: r = x <= y; break;                                                           \
        case WK_GT: r = x > y; break;                                                            \
        case WK_GE: r = x >= y; break;                                                           \
        case WK_EQ: r = x == y; break;                                                           \
        default: r = x != y; break;                                                              \
        }                                                                                        \
        out[i] = r;                                                                              \
    }                                                                                            \
}

// Specialised loops per (op, strides) so each inner loop is branch-free and vectorises.
#define BIN_LOOP(EXPR)                                                                           \
    if (sa && sb) { for (long i = 0; i < n; i++) { float x = a[i], y = b[i]; out[i] = (EXPR); } } \
    else if (sa) { float y = b[0]; for (long i = 0; i < n; i++) { float x = a[i]; out[i] = (EXPR); } } \
    else if (sb) { float x = a[0]; for (long i = 0; i < n; i++) { float y = b[i]; out[i] = (EXPR); } } \
    else { float x = a[0], y = b[0]; float r = (EXPR); for (long i = 0; i < n; i++) out[i] = r; }

#define DEFINE_BINARY_FAST(SUFFIX, ATTR)                                                         \
ATTR static void binary_fast_##SUFFIX(int op, const float *a, long sa, const float *b, long sb,   \
                                      float *out, long n) {                                      \
    switch (op) {                                                                                \
    case WK_ADD: BIN_LOOP(x + y) break;                                                          \
    case WK_SUB: BIN_LOOP(x - y) break;                                                          \
    case WK_MUL: BIN_LOOP(x * y) break;                                                          \
    case WK_DIV: BIN_LOOP(x / y) break;                                                          \
    case WK_MAX: BIN_LOOP((x > y || x != x) ? x : y) break;                                      \
    case WK_MIN: BIN_LOOP((x < y || x != x) ? x : y) break;                                      \
    default: binary_##SUFFIX(op, a, sa, b, sb, out, n);                                          \
    }                                                                                            \
}

DEFINE_BINARY(base, )
DEFINE_BINARY_FAST(base, )
#if defined(__x86_64__)
DEFINE_BINARY(avx2, WK_AVX2)
DEFINE_BINARY_FAST(avx2, WK_AVX2)
#endif

static float gelu_tanh1(float x) { return 0.5f * x * (1.0f + tanhf(GELU_C * (x + 0.044715f * x * x * x))); }

// PyTorch's hardsigmoid, relu6(x + 3) / 6, with NaN passed through.
static inline float hardsigmoid1(float x) {
    if (x != x) return x;
    float y = x / 6.0f + 0.5f;
    return y < 0 ? 0.0f : (y > 1 ? 1.0f : y);
}

static void unary_base(int op, const float *a, float *out, long n) {
    for (long i = 0; i < n; i++) {
        float x = a[i], r;
        switch (op) {
        case WK_NEG: r = -x; break;
        case WK_ABS: r = fabsf(x); break;
        case WK_EXP: r = expf(x); break;
        case WK_LOG: r = logf(x); break;
        case WK_SQRT: r = sqrtf(x); break;
        case WK_RSQRT: r = 1.0f / sqrtf(x); break;
        case WK_TANH: r = tanhf(x); break;
        case WK_SIGMOID: r = 1.0f / (1.0f + expf(-x)); break;
        case WK_RELU: r = x > 0 ? x : (x != x ? x : 0.0f); break;
        case WK_GELU_ERF: r = 0.5f * x * (1.0f + erff(x * SQRT1_2)); break;
        case WK_GELU_TANH: r = gelu_tanh1(x); break;
        case WK_SILU: r = x / (1.0f + expf(-x)); break;
        case WK_ERF: r = erff(x); break;
        case WK_RECIPROCAL: r = 1.0f / x; break;
        case WK_SIN: r = sinf(x); break;
        case WK_COS: r = cosf(x); break;
        case WK_HARDSIGMOID: r = hardsigmoid1(x); break;
        case WK_HARDSWISH: r = x * hardsigmoid1(x); break;
        case WK_FLOOR: r = floorf(x); break;
        default: r = x * x; break;
        }
        out[i] = r;
    }
}

#if defined(__x86_64__)
// 8 at a time with libmvec; the tail goes through the scalar version.
#define MVEC_LOOP(BODY)                                                                          \
    long i = 0;                                                                                  \
    for (; i + 8 <= n; i += 8) { __m256 x = _mm256_loadu_ps(a + i); __m256 r; BODY;             \
                                 _mm256_storeu_ps(out + i, r); }                                 \
    if (i < n) unary_base(op, a + i, out + i, n - i);

WK_AVX2 static void unary_avx2(int op, const float *a, float *out, long n) {
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    switch (op) {
    case WK_NEG: for (long i = 0; i < n; i++) out[i] = -a[i]; return;
    case WK_ABS: for (long i = 0; i < n; i++) out[i] = fabsf(a[i]); return;
    case WK_SQRT: for (long i = 0; i < n; i++) out[i] = sqrtf(a[i]); return;
    case WK_RSQRT: for (long i = 0; i < n; i++) out[i] = 1.0f / sqrtf(a[i]); return;
    case WK_RELU: for (long i = 0; i < n; i++) { float x = a[i]; out[i] = x > 0 ? x : (x != x ? x : 0.0f); } return;
    case WK_RECIPROCAL: for (long i = 0; i < n; i++) out[i] = 1.0f / a[i]; return;
    case WK_SQUARE: for (long i = 0; i < n; i++) out[i] = a[i] * a[i]; return;
    case WK_HARDSIGMOID: for (long i = 0; i < n; i++) out[i] = hardsigmoid1(a[i]); return;
    case WK_HARDSWISH: for (long i = 0; i < n; i++) out[i] = a[i] * hardsigmoid1(a[i]); return;
    case WK_FLOOR: for (long i = 0; i < n; i++) out[i] = floorf(a[i]); return;
    case WK_SIN: { MVEC_LOOP(r = _ZGVdN8v_sinf(x)) return; }
    case WK_COS: { MVEC_LOOP(r = _ZGVdN8v_cosf(x)) return; }
    case WK_EXP: { MVEC_LOOP(r = _ZGVdN8v_expf(x)) return; }
    case WK_LOG: { MVEC_LOOP(r = _ZGVdN8v_logf(x)) return; }
    case WK_TANH: { MVEC_LOOP(r = _ZGVdN8v_tanhf(x)) return; }
    case WK_ERF: { MVEC_LOOP(r = _ZGVdN8v_erff(x)) return; }
    case WK_SIGMOID: { MVEC_LOOP(r = _mm256_div_ps(one, _mm256_add_ps(one, _ZGVdN8v_expf(_mm256_xor_ps(x, sign))))) return; }
    case WK_SILU: { MVEC_LOOP(r = _mm256_div_ps(x, _mm256_add_ps(one, _ZGVdN8v_expf(_mm256_xor_ps(x, sign))))) return; }
    case WK_GELU_ERF: {
        const __m256 s = _mm256_set1_ps(SQRT1_2);
        MVEC_LOOP(r = _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, _ZGVdN8v_erff(_mm256_mul_ps(x, s)))))
        return;
    }
    case WK_GELU_TANH: {
        const __m256 c = _mm256_set1_ps(GELU_C), k = _mm256_set1_ps(0.044715f);
        MVEC_LOOP(__m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
                  __m256 t = _ZGVdN8v_tanhf(_mm256_mul_ps(c, _mm256_fmadd_ps(k, x3, x)));
                  r = _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, t)))
        return;
    }
    default: unary_base(op, a, out, n); return;
    }
}

#endif

void wk_binary(int op, const float *a, long sa, const float *b, long sb, float *out, long n) {
    if (op == WK_POW) {
        // libmvec's 8-wide powf gave wrong results when called from here; pow is rare in
        // inference graphs, so it stays scalar (correctly rounded to within 1 ulp by glibc).
        for (long i = 0; i < n; i++) out[i] = powf(a[i * sa], b[i * sb]);
        return;
    }
#if defined(__x86_64__)
    if (wk_uses_avx2()) { binary_fast_avx2(op, a, sa, b, sb, out, n); return; }
#endif
    binary_fast_base(op, a, sa, b, sb, out, n);
}

void wk_unary(int op, const float *a, float *out, long n) {
#if defined(__x86_64__)
    if (wk_uses_avx2()) { unary_avx2(op, a, out, n); return; }
#endif
    unary_base(op, a, out, n);
}

#define DEFINE_SELECT(SUFFIX, ATTR)                                                              \
ATTR static void select_##SUFFIX(const float *c, long sc, const float *a, long sa, const float *b, \
                                 long sb, float *out, long n) {                                  \
    for (long i = 0; i < n; i++) out[i] = c[i * sc] != 0.0f ? a[i * sa] : b[i * sb];             \
}
DEFINE_SELECT(base, )
#if defined(__x86_64__)
DEFINE_SELECT(avx2, WK_AVX2)
#endif

void wk_select(const float *c, long sc, const float *a, long sa, const float *b, long sb, float *out, long n) {
#if defined(__x86_64__)
    if (wk_uses_avx2()) { select_avx2(c, sc, a, sa, b, sb, out, n); return; }
#endif
    select_base(c, sc, a, sa, b, sb, out, n);
}

// ---------------------------------------------------------------- reductions
// Sums use 16 independent float accumulators (vectorised lanes), which keeps the error close to
// pairwise summation for the row lengths seen here.
#define DEFINE_REDUCE(SUFFIX, ATTR)                                                              \
ATTR static float reduce_##SUFFIX(int op, const float *a, long n) {                              \
    if (op == WK_SUM) {                                                                          \
        float acc[16] = {0};                                                                     \
        long i = 0;                                                                              \
        for (; i + 16 <= n; i += 16)                                                             \
            for (int k = 0; k < 16; k++) acc[k] += a[i + k];                                     \
        float s = 0;                                                                             \
        for (; i < n; i++) s += a[i];                                                            \
        for (int k = 0; k < 16; k++) s += acc[k];                                                \
        return s;                                                                                \
    }                                                                                            \
    float r = a[0];                                                                              \
    int nan = 0;                                                                                 \
    if (op == WK_RMAX) { for (long i = 0; i < n; i++) { float x = a[i]; nan |= x != x; r = x > r ? x : r; } } \
    else { for (long i = 0; i < n; i++) { float x = a[i]; nan |= x != x; r = x < r ? x : r; } }   \
    return nan ? NAN : r;                                                                        \
}                                                                                                \
ATTR static void accumulate_##SUFFIX(int op, float *acc, const float *a, long sa, long n) {      \
    if (op == WK_SUM) { for (long i = 0; i < n; i++) acc[i] += a[i * sa]; }                      \
    else if (op == WK_RMAX) { for (long i = 0; i < n; i++) { float x = a[i * sa], y = acc[i]; acc[i] = (x > y || x != x) ? x : y; } } \
    else { for (long i = 0; i < n; i++) { float x = a[i * sa], y = acc[i]; acc[i] = (x < y || x != x) ? x : y; } } \
}
DEFINE_REDUCE(base, )
#if defined(__x86_64__)
DEFINE_REDUCE(avx2, WK_AVX2)
#endif

#if defined(__x86_64__)
// Max and min 8 lanes at a time with 4 accumulators: written out, because the compiler will
// not vectorise a select-based maximum without fast-math (it was a chain of dependent
// compares, the slowest pass of a softmax row). A NaN anywhere gives NaN, as the scalar loop.
WK_AVX2 static float extremum_avx2(const float *a, long n, int maximum) {
    if (n < 32) return reduce_avx2(maximum ? WK_RMAX : WK_RMIN, a, n);
    __m256 r0 = _mm256_loadu_ps(a), r1 = r0, r2 = r0, r3 = r0, nan = _mm256_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);
        __m256 x2 = _mm256_loadu_ps(a + i + 16), x3 = _mm256_loadu_ps(a + i + 24);
        nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(x0, x1, _CMP_UNORD_Q), _mm256_cmp_ps(x2, x3, _CMP_UNORD_Q)));
        if (maximum) { r0 = _mm256_max_ps(r0, x0); r1 = _mm256_max_ps(r1, x1); r2 = _mm256_max_ps(r2, x2); r3 = _mm256_max_ps(r3, x3); }
        else { r0 = _mm256_min_ps(r0, x0); r1 = _mm256_min_ps(r1, x1); r2 = _mm256_min_ps(r2, x2); r3 = _mm256_min_ps(r3, x3); }
    }
    if (_mm256_movemask_ps(nan)) return NAN;
    float lanes[32];
    _mm256_storeu_ps(lanes, r0); _mm256_storeu_ps(lanes + 8, r1); _mm256_storeu_ps(lanes + 16, r2); _mm256_storeu_ps(lanes + 24, r3);
    float r = lanes[0];
    for (int k = 1; k < 32; k++) r = maximum ? (lanes[k] > r ? lanes[k] : r) : (lanes[k] < r ? lanes[k] : r);
    if (i < n) {
        float t = reduce_avx2(maximum ? WK_RMAX : WK_RMIN, a + i, n - i);
        if (t != t) return NAN;
        r = maximum ? (t > r ? t : r) : (t < r ? t : r);
    }
    return r;
}
#endif

float wk_reduce(int op, const float *a, long n) {
#if defined(__x86_64__)
    if (wk_uses_avx2()) return op == WK_SUM ? reduce_avx2(op, a, n) : extremum_avx2(a, n, op == WK_RMAX);
#endif
    return reduce_base(op, a, n);
}

void wk_accumulate(int op, float *acc, const float *a, long sa, long n) {
#if defined(__x86_64__)
    if (wk_uses_avx2()) { accumulate_avx2(op, acc, a, sa, n); return; }
#endif
    accumulate_base(op, acc, a, sa, n);
}

long wk_argext(const float *a, long n, int minimum, float *value) {
    long best = 0;
    float v = a[0];
    for (long i = 0; i < n; i++) {
        float x = a[i];
        if (x != x) { best = i; v = x; break; }
        if (minimum ? x < v : x > v) { v = x; best = i; }
    }
    *value = v;
    return best;
}

void wk_gather(const float *base, long stride, float *out, long n) {
    if (stride == 1) { memcpy(out, base, (size_t)n * sizeof(float)); return; }
    for (long i = 0; i < n; i++) out[i] = base[i * stride];
}

void wk_scatter(const float *src, long ss, float *base, long stride, long n) {
    if (stride == 1 && ss == 1) { memcpy(base, src, (size_t)n * sizeof(float)); return; }
    for (long i = 0; i < n; i++) base[i * stride] = src[i * ss];
}

// ---------------------------------------------------------------- row operations
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
// Three passes over the row (max; exp and sum together; scale) instead of five: at attention's
// 128-long rows the passes, not the exponentials, were the cost.
WK_AVX2 static void softmax_row_avx2(const float *x, float *out, long n, int logarithm) {
    float m = extremum_avx2(x, n, 1);
    if (m == -INFINITY) m = 0;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 e0 = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        __m256 e1 = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
        if (!logarithm) { _mm256_storeu_ps(out + i, e0); _mm256_storeu_ps(out + i + 8, e1); }
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(acc0, acc1));
    float s = 0;
    for (; i < n; i++) { float e = expf(x[i] - m); if (!logarithm) out[i] = e; s += e; }
    for (int k = 0; k < 8; k++) s += lanes[k];
    if (logarithm) {
        float ls = logf(s);
        for (long j = 0; j < n; j++) out[j] = (x[j] - m) - ls;
    } else {
        float inv = 1.0f / s;
        for (long j = 0; j < n; j++) out[j] *= inv;
    }
}
#endif

void wk_softmax_row(const float *x, float *out, long n, int logarithm) {
#if defined(__x86_64__)
    if (wk_uses_avx2()) { softmax_row_avx2(x, out, n, logarithm); return; }
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
    float shift = rms ? 0.0f : reduce_##SUFFIX(WK_SUM, x, n) / (float)n;                         \
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
#endif

void wk_norm_row(const float *x, float *out, long n, const float *w, long sw, const float *b, long sb,
                 float eps, int rms) {
#if defined(__x86_64__)
    if (wk_uses_avx2()) { norm_row_avx2(x, out, n, w, sw, b, sb, eps, rms); return; }
#endif
    norm_row_base(x, out, n, w, sw, b, sb, eps, rms);
}

// ---------------------------------------------------------------- im2col
// One row of an im2col patch matrix: for every output position (oi, oj) the input pixel at
// (oi·sh + oh, oj·sw + ow), or 0 outside the image. Small images (the digits CNN's 8x8) make
// these rows short, so the loops stay here, free of per-segment call overhead.
void wk_im2col_row(const float *x, long xh, long xw, long h, long w, float *dst, long ho, long wo,
                   long sh, long sw, long oh, long ow) {
    // Output columns whose input column is inside the image: first <= oj < last.
    long first = 0, last = wo;
    while (first < wo && first * sw + ow < 0) first++;
    while (last > first && (last - 1) * sw + ow >= w) last--;
    for (long oi = 0; oi < ho; oi++, dst += wo) {
        long ih = oi * sh + oh;
        if (ih < 0 || ih >= h) { for (long j = 0; j < wo; j++) dst[j] = 0; continue; }
        const float *src = x + ih * xh + ow * xw;
        for (long j = 0; j < first; j++) dst[j] = 0;
        if (sw == 1 && xw == 1) { for (long j = first; j < last; j++) dst[j] = src[j]; }
        else { for (long j = first; j < last; j++) dst[j] = src[j * sw * xw]; }
        for (long j = last; j < wo; j++) dst[j] = 0;
    }
}
