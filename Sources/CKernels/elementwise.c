#include "internal/kernels_internal.h"

// Block primitives of the lazy tensor engine: binary, unary and select over `n` contiguous
// floats (a block of a row, at most a few thousand, so it stays in L1). The Swift interpreter
// strings them together.
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
