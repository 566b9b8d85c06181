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
DEFINE_BINARY(avx512, WK_AVX512)
DEFINE_BINARY_FAST(avx512, WK_AVX512)
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
// The vector versions, written once over GCC vector types (8 lanes for AVX2, 16 for AVX-512)
// and libmvec's matching entry points; the tail goes through the scalar version.
typedef float wk_v8 __attribute__((vector_size(32), aligned(4)));
typedef float wk_v16 __attribute__((vector_size(64), aligned(4)));

#define DEFINE_UNARY_VECTOR(SUFFIX, ATTR, V, W, EXP, LOG, TANH, ERF, SIN, COS)                    \
ATTR static void unary_##SUFFIX(int op, const float *a, float *out, long n) {                     \
    switch (op) {                                                                                \
    case WK_NEG: for (long i = 0; i < n; i++) out[i] = -a[i]; return;                            \
    case WK_ABS: for (long i = 0; i < n; i++) out[i] = fabsf(a[i]); return;                      \
    case WK_SQRT: for (long i = 0; i < n; i++) out[i] = sqrtf(a[i]); return;                     \
    case WK_RSQRT: for (long i = 0; i < n; i++) out[i] = 1.0f / sqrtf(a[i]); return;             \
    case WK_RELU: for (long i = 0; i < n; i++) { float x = a[i]; out[i] = x > 0 ? x : (x != x ? x : 0.0f); } return; \
    case WK_RECIPROCAL: for (long i = 0; i < n; i++) out[i] = 1.0f / a[i]; return;               \
    case WK_SQUARE: for (long i = 0; i < n; i++) out[i] = a[i] * a[i]; return;                   \
    case WK_HARDSIGMOID: for (long i = 0; i < n; i++) out[i] = hardsigmoid1(a[i]); return;       \
    case WK_HARDSWISH: for (long i = 0; i < n; i++) out[i] = a[i] * hardsigmoid1(a[i]); return;  \
    case WK_FLOOR: for (long i = 0; i < n; i++) out[i] = floorf(a[i]); return;                   \
    case WK_EXP: case WK_LOG: case WK_TANH: case WK_ERF: case WK_SIN: case WK_COS:               \
    case WK_SIGMOID: case WK_SILU: case WK_GELU_ERF: case WK_GELU_TANH: break;                   \
    default: unary_base(op, a, out, n); return;                                                  \
    }                                                                                            \
    long i = 0;                                                                                  \
    for (; i + W <= n; i += W) {                                                                 \
        V x = *(const V *)(a + i), r;                                                            \
        switch (op) {                                                                            \
        case WK_EXP: r = EXP(x); break;                                                          \
        case WK_LOG: r = LOG(x); break;                                                          \
        case WK_TANH: r = TANH(x); break;                                                        \
        case WK_ERF: r = ERF(x); break;                                                          \
        case WK_SIN: r = SIN(x); break;                                                          \
        case WK_COS: r = COS(x); break;                                                          \
        case WK_SIGMOID: r = 1.0f / (1.0f + EXP(-x)); break;                                     \
        case WK_SILU: r = x / (1.0f + EXP(-x)); break;                                           \
        case WK_GELU_ERF: r = (0.5f * x) * (1.0f + ERF(x * SQRT1_2)); break;                     \
        default: r = (0.5f * x) * (1.0f + TANH(GELU_C * (x + 0.044715f * (x * x * x)))); break;  \
        }                                                                                        \
        *(V *)(out + i) = r;                                                                     \
    }                                                                                            \
    if (i < n) unary_base(op, a + i, out + i, n - i);                                            \
}

WK_AVX2 static inline wk_v8 exp8(wk_v8 x) { return (wk_v8)_ZGVdN8v_expf((__m256)x); }
WK_AVX2 static inline wk_v8 log8(wk_v8 x) { return (wk_v8)_ZGVdN8v_logf((__m256)x); }
WK_AVX2 static inline wk_v8 tanh8(wk_v8 x) { return (wk_v8)_ZGVdN8v_tanhf((__m256)x); }
WK_AVX2 static inline wk_v8 erf8(wk_v8 x) { return (wk_v8)_ZGVdN8v_erff((__m256)x); }
WK_AVX2 static inline wk_v8 sin8(wk_v8 x) { return (wk_v8)_ZGVdN8v_sinf((__m256)x); }
WK_AVX2 static inline wk_v8 cos8(wk_v8 x) { return (wk_v8)_ZGVdN8v_cosf((__m256)x); }
WK_AVX512 static inline wk_v16 exp16(wk_v16 x) { return (wk_v16)_ZGVeN16v_expf((__m512)x); }
WK_AVX512 static inline wk_v16 log16(wk_v16 x) { return (wk_v16)_ZGVeN16v_logf((__m512)x); }
WK_AVX512 static inline wk_v16 tanh16(wk_v16 x) { return (wk_v16)_ZGVeN16v_tanhf((__m512)x); }
WK_AVX512 static inline wk_v16 erf16(wk_v16 x) { return (wk_v16)_ZGVeN16v_erff((__m512)x); }
WK_AVX512 static inline wk_v16 sin16(wk_v16 x) { return (wk_v16)_ZGVeN16v_sinf((__m512)x); }
WK_AVX512 static inline wk_v16 cos16(wk_v16 x) { return (wk_v16)_ZGVeN16v_cosf((__m512)x); }

DEFINE_UNARY_VECTOR(avx2, WK_AVX2, wk_v8, 8, exp8, log8, tanh8, erf8, sin8, cos8)
DEFINE_UNARY_VECTOR(avx512, WK_AVX512, wk_v16, 16, exp16, log16, tanh16, erf16, sin16, cos16)
#endif

void wk_binary(int op, const float *a, long sa, const float *b, long sb, float *out, long n) {
    if (op == WK_POW) {
        // libmvec's 8-wide powf gave wrong results when called from here; pow is rare in
        // inference graphs, so it stays scalar (correctly rounded to within 1 ulp by glibc).
        for (long i = 0; i < n; i++) out[i] = powf(a[i * sa], b[i * sb]);
        return;
    }
#if defined(__x86_64__)
    const int level = wk_isa_level();
    if (level >= WK_ISA_AVX512) { binary_fast_avx512(op, a, sa, b, sb, out, n); return; }
    if (level >= WK_ISA_AVX2) { binary_fast_avx2(op, a, sa, b, sb, out, n); return; }
#endif
    binary_fast_base(op, a, sa, b, sb, out, n);
}

void wk_unary(int op, const float *a, float *out, long n) {
#if defined(__x86_64__)
    const int level = wk_isa_level();
    if (level >= WK_ISA_AVX512) { unary_avx512(op, a, out, n); return; }
    if (level >= WK_ISA_AVX2) { unary_avx2(op, a, out, n); return; }
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
DEFINE_SELECT(avx512, WK_AVX512)
#endif

void wk_select(const float *c, long sc, const float *a, long sa, const float *b, long sb, float *out, long n) {
#if defined(__x86_64__)
    const int level = wk_isa_level();
    if (level >= WK_ISA_AVX512) { select_avx512(c, sc, a, sa, b, sb, out, n); return; }
    if (level >= WK_ISA_AVX2) { select_avx2(c, sc, a, sa, b, sb, out, n); return; }
#endif
    select_base(c, sc, a, sa, b, sb, out, n);
}
