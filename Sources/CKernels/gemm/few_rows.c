#include "../internal/kernels_internal.h"

// C[m, n] = A[m, k] · W[n, k]ᵀ for few rows of A: the linear layers of a short sequence, where
// W (a layer's weight, [out, in] as PyTorch stores it) is much larger than A. A general GEMM
// packs W into panels before multiplying; at 16 rows that pack costs more than the products
// (43% of a MiniLM forward at 1 x 16 went to OpenBLAS's copy routine). Here every W row is
// read once, in place, straight from the mapped file, and dotted with the rows of A (which stay
// in L1/L2): 4 rows of W by 3 rows of A in 12 accumulators, summed across lanes at the end.

#if defined(__x86_64__)

WK_AVX2 static inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 s = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

WK_AVX2 static void gemm_nt_avx2(long m, long n, long k, const float *a, long lda, const float *w, long ldw,
                                 float *c, long ldc, int acc) {
    const long k8 = k & ~7L;
    // Rows of W to prefetch ahead of the quad being read, into L2 (into L1 the requests
    // queued behind each other): measured best at 8 rows for K = 384, 4 for K = 1536.
    const long ahead = k <= 768 ? 8 : 4;
    long j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *w0 = w + j * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        long i = 0;
        for (; i + 3 <= m; i += 3) {
            const float *a0 = a + i * lda, *a1 = a0 + lda, *a2 = a1 + lda;
            __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
            __m256 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
            __m256 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
            // The first pass over these 4 rows of W pulls them from memory; it also asks for
            // rows further on, so that the next quads find them in cache.
            const float *next = (i == 0 && j + ahead + 4 <= n) ? w0 + ahead * ldw : NULL;
            // 12 accumulators + 3 rows of A + 1 row of W: exactly the 16 AVX2 registers.
            for (long p = 0; p < k8; p += 8) {
                if (next && (p & 15) == 0) {
                    _mm_prefetch((const char *)(next + p), _MM_HINT_T1);
                    _mm_prefetch((const char *)(next + ldw + p), _MM_HINT_T1);
                    _mm_prefetch((const char *)(next + 2 * ldw + p), _MM_HINT_T1);
                    _mm_prefetch((const char *)(next + 3 * ldw + p), _MM_HINT_T1);
                }
                __m256 x0 = _mm256_loadu_ps(a0 + p), x1 = _mm256_loadu_ps(a1 + p), x2 = _mm256_loadu_ps(a2 + p);
                __m256 b = _mm256_loadu_ps(w0 + p);
                c00 = _mm256_fmadd_ps(x0, b, c00); c10 = _mm256_fmadd_ps(x1, b, c10); c20 = _mm256_fmadd_ps(x2, b, c20);
                b = _mm256_loadu_ps(w1 + p);
                c01 = _mm256_fmadd_ps(x0, b, c01); c11 = _mm256_fmadd_ps(x1, b, c11); c21 = _mm256_fmadd_ps(x2, b, c21);
                b = _mm256_loadu_ps(w2 + p);
                c02 = _mm256_fmadd_ps(x0, b, c02); c12 = _mm256_fmadd_ps(x1, b, c12); c22 = _mm256_fmadd_ps(x2, b, c22);
                b = _mm256_loadu_ps(w3 + p);
                c03 = _mm256_fmadd_ps(x0, b, c03); c13 = _mm256_fmadd_ps(x1, b, c13); c23 = _mm256_fmadd_ps(x2, b, c23);
            }
            __m128 r0 = hsum4(c00, c01, c02, c03), r1 = hsum4(c10, c11, c12, c13), r2 = hsum4(c20, c21, c22, c23);
            float t[3][4];
            _mm_storeu_ps(t[0], r0); _mm_storeu_ps(t[1], r1); _mm_storeu_ps(t[2], r2);
            for (long p = k8; p < k; p++) {
                for (int r = 0; r < 3; r++) {
                    float x = a[(i + r) * lda + p];
                    t[r][0] += x * w0[p]; t[r][1] += x * w1[p]; t[r][2] += x * w2[p]; t[r][3] += x * w3[p];
                }
            }
            for (int r = 0; r < 3; r++) for (int q = 0; q < 4; q++) {
                float *o = &c[(i + r) * ldc + j + q];
                *o = acc ? *o + t[r][q] : t[r][q];
            }
        }
        for (; i < m; i++) {
            const float *a0 = a + i * lda;
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            for (long p = 0; p < k8; p += 8) {
                __m256 x = _mm256_loadu_ps(a0 + p);
                c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0 + p), c0);
                c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w1 + p), c1);
                c2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w2 + p), c2);
                c3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w3 + p), c3);
            }
            float t[4];
            _mm_storeu_ps(t, hsum4(c0, c1, c2, c3));
            for (long p = k8; p < k; p++) {
                t[0] += a0[p] * w0[p]; t[1] += a0[p] * w1[p]; t[2] += a0[p] * w2[p]; t[3] += a0[p] * w3[p];
            }
            for (int q = 0; q < 4; q++) { float *o = &c[i * ldc + j + q]; *o = acc ? *o + t[q] : t[q]; }
        }
    }
    for (; j < n; j++) {
        const float *w0 = w + j * ldw;
        for (long i = 0; i < m; i++) {
            const float *a0 = a + i * lda;
            __m256 dot = _mm256_setzero_ps();
            for (long p = 0; p < k8; p += 8) dot = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + p), _mm256_loadu_ps(w0 + p), dot);
            float t[4];
            _mm_storeu_ps(t, hsum4(dot, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()));
            float s = t[0];
            for (long p = k8; p < k; p++) s += a0[p] * w0[p];
            c[i * ldc + j] = acc ? c[i * ldc + j] + s : s;
        }
    }
}

// The same blocking, 16 lanes wide: 4 rows of W by 3 rows of A in 12 zmm accumulators. The
// halves of each accumulator are added into 8 lanes before the AVX2 lane sum.
WK_AVX512 static inline __m256 fold(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
}

WK_AVX512 static void gemm_nt_avx512(long m, long n, long k, const float *a, long lda, const float *w, long ldw,
                                     float *c, long ldc, int acc) {
    const long k16 = k & ~15L;
    const long ahead = k <= 768 ? 8 : 4;
    long j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *w0 = w + j * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        long i = 0;
        for (; i < m; i += 3) {
            const long rows = m - i < 3 ? m - i : 3;
            // Rows past m repeat the last one: computed, never stored.
            const float *a0 = a + i * lda, *a1 = rows > 1 ? a0 + lda : a0, *a2 = rows > 2 ? a0 + 2 * lda : a0;
            __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
            __m512 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
            __m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
            const float *next = (i == 0 && j + ahead + 4 <= n) ? w0 + ahead * ldw : NULL;
            for (long p = 0; p < k16; p += 16) {
                if (next) {
                    _mm_prefetch((const char *)(next + p), _MM_HINT_T1);
                    _mm_prefetch((const char *)(next + ldw + p), _MM_HINT_T1);
                    _mm_prefetch((const char *)(next + 2 * ldw + p), _MM_HINT_T1);
                    _mm_prefetch((const char *)(next + 3 * ldw + p), _MM_HINT_T1);
                }
                __m512 x0 = _mm512_loadu_ps(a0 + p), x1 = _mm512_loadu_ps(a1 + p), x2 = _mm512_loadu_ps(a2 + p);
                __m512 b = _mm512_loadu_ps(w0 + p);
                c00 = _mm512_fmadd_ps(x0, b, c00); c10 = _mm512_fmadd_ps(x1, b, c10); c20 = _mm512_fmadd_ps(x2, b, c20);
                b = _mm512_loadu_ps(w1 + p);
                c01 = _mm512_fmadd_ps(x0, b, c01); c11 = _mm512_fmadd_ps(x1, b, c11); c21 = _mm512_fmadd_ps(x2, b, c21);
                b = _mm512_loadu_ps(w2 + p);
                c02 = _mm512_fmadd_ps(x0, b, c02); c12 = _mm512_fmadd_ps(x1, b, c12); c22 = _mm512_fmadd_ps(x2, b, c22);
                b = _mm512_loadu_ps(w3 + p);
                c03 = _mm512_fmadd_ps(x0, b, c03); c13 = _mm512_fmadd_ps(x1, b, c13); c23 = _mm512_fmadd_ps(x2, b, c23);
            }
            float t[3][4];
            _mm_storeu_ps(t[0], hsum4(fold(c00), fold(c01), fold(c02), fold(c03)));
            _mm_storeu_ps(t[1], hsum4(fold(c10), fold(c11), fold(c12), fold(c13)));
            _mm_storeu_ps(t[2], hsum4(fold(c20), fold(c21), fold(c22), fold(c23)));
            const float *rows_a[3] = {a0, a1, a2};
            for (long p = k16; p < k; p++) {
                for (int r = 0; r < 3; r++) {
                    float x = rows_a[r][p];
                    t[r][0] += x * w0[p]; t[r][1] += x * w1[p]; t[r][2] += x * w2[p]; t[r][3] += x * w3[p];
                }
            }
            for (int r = 0; r < rows; r++) for (int q = 0; q < 4; q++) {
                float *o = &c[(i + r) * ldc + j + q];
                *o = acc ? *o + t[r][q] : t[r][q];
            }
        }
    }
    // The last columns (n not a multiple of 4) with the AVX2 version's tail.
    if (j < n) gemm_nt_avx2(m, n - j, k, a, lda, w + j * ldw, ldw, c + j, ldc, acc);
}
#endif

static void gemm_nt_base(long m, long n, long k, const float *a, long lda, const float *w, long ldw, float *c, long ldc,
                         int acc) {
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
            const float *x = a + i * lda, *y = w + j * ldw;
            float s = 0;
            for (long p = 0; p < k; p++) s += x[p] * y[p];
            c[i * ldc + j] = acc ? c[i * ldc + j] + s : s;
        }
    }
}

void wk_gemm_nt(long m, long n, long k, const float *a, long lda, const float *w, long ldw, float *c, long ldc,
                int accumulate) {
#if defined(__x86_64__)
    const int level = wk_isa_level();
    if (level >= WK_ISA_AVX512) { gemm_nt_avx512(m, n, k, a, lda, w, ldw, c, ldc, accumulate); return; }
    if (level >= WK_ISA_AVX2) { gemm_nt_avx2(m, n, k, a, lda, w, ldw, c, ldc, accumulate); return; }
#endif
    gemm_nt_base(m, n, k, a, lda, w, ldw, c, ldc, accumulate);
}
