#include "internal/kernels_internal.h"

// Max and average pooling over NCHW planes read through strides. The 2x2, stride 2 max pool
// (what CNNs put after nearly every convolution) has vector versions: two input rows give one
// output row, pairs reduced with a shuffle. A NaN anywhere in a window makes its output NaN,
// as PyTorch's max_pool2d does; the hardware max alone would drop it.

static float max_nan(float a, float b) { return a != a || b != b ? NAN : (a > b ? a : b); }

static void pool_plane_general(const wk_pool_desc *d, const float *plane, float *out) {
    const float area = (float)(d->kh * d->kw);
    for (long oi = 0; oi < d->ho; oi++) {
        const long ih0 = oi * d->stride_h - d->pad_h;
        const long ki0 = ih0 < 0 ? -ih0 : 0, ki1 = d->h - ih0 < d->kh ? d->h - ih0 : d->kh;
        for (long oj = 0; oj < d->wo; oj++) {
            const long iw0 = oj * d->stride_w - d->pad_w;
            const long kj0 = iw0 < 0 ? -iw0 : 0, kj1 = d->w - iw0 < d->kw ? d->w - iw0 : d->kw;
            float best = -INFINITY, sum = 0;
            for (long ki = ki0; ki < ki1; ki++) {
                for (long kj = kj0; kj < kj1; kj++) {
                    const float v = plane[(ih0 + ki) * d->sh + (iw0 + kj) * d->sw];
                    best = max_nan(best, v);
                    sum += v;
                }
            }
            // Padding counts in the average (PyTorch's count_include_pad, its default).
            out[oi * d->wo + oj] = d->is_max ? best : sum / area;
        }
    }
}

static void max2x2_row_base(const float *r0, const float *r1, float *o, long wo) {
    long j = 0;
#if defined(__x86_64__)
    for (; j + 4 <= wo; j += 4) {
        const __m128 a0 = _mm_loadu_ps(r0 + 2 * j), b0 = _mm_loadu_ps(r0 + 2 * j + 4);
        const __m128 a1 = _mm_loadu_ps(r1 + 2 * j), b1 = _mm_loadu_ps(r1 + 2 * j + 4);
        // maxps gives its second operand when either is NaN: put back a NaN first operand.
        __m128 a = _mm_max_ps(a0, a1), b = _mm_max_ps(b0, b1);
        __m128 na = _mm_cmpunord_ps(a0, a0), nb = _mm_cmpunord_ps(b0, b0);
        a = _mm_or_ps(_mm_and_ps(na, a0), _mm_andnot_ps(na, a));
        b = _mm_or_ps(_mm_and_ps(nb, b0), _mm_andnot_ps(nb, b));
        const __m128 even = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), odd = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        const __m128 m = _mm_max_ps(even, odd), ne = _mm_cmpunord_ps(even, even);
        _mm_storeu_ps(o + j, _mm_or_ps(_mm_and_ps(ne, even), _mm_andnot_ps(ne, m)));
    }
#endif
    for (; j < wo; j++) o[j] = max_nan(max_nan(r0[2 * j], r0[2 * j + 1]), max_nan(r1[2 * j], r1[2 * j + 1]));
}

#if defined(__x86_64__)
WK_AVX2 static inline __m256 max_nan8(__m256 a, __m256 b) {
    return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

WK_AVX2 static void max2x2_row_avx2(const float *r0, const float *r1, float *o, long wo) {
    long j = 0;
    for (; j + 8 <= wo; j += 8) {
        const __m256 a = max_nan8(_mm256_loadu_ps(r0 + 2 * j), _mm256_loadu_ps(r1 + 2 * j));
        const __m256 b = max_nan8(_mm256_loadu_ps(r0 + 2 * j + 8), _mm256_loadu_ps(r1 + 2 * j + 8));
        // Per 128-bit lane: outputs 0 1 4 5 in the low lane and 2 3 6 7 in the high one.
        const __m256 m = max_nan8(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
        _mm256_storeu_ps(o + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), _MM_SHUFFLE(3, 1, 2, 0))));
    }
    max2x2_row_base(r0 + 2 * j, r1 + 2 * j, o + j, wo - j);
}

/// A plane whose output rows are 4 wide (8 x 8 images, the digits CNN's): two output rows a
/// step, one vector of each input row, where a row at a time would fill half a vector.
WK_AVX2 static void max2x2_rows4_avx2(const float *plane, long sh, float *o, long ho) {
    long i = 0;
    for (; i + 2 <= ho; i += 2) {
        const float *r = plane + 2 * i * sh;
        const __m256 a = max_nan8(_mm256_loadu_ps(r), _mm256_loadu_ps(r + sh));
        const __m256 b = max_nan8(_mm256_loadu_ps(r + 2 * sh), _mm256_loadu_ps(r + 3 * sh));
        const __m256 m = max_nan8(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
        _mm256_storeu_ps(o + 4 * i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), _MM_SHUFFLE(3, 1, 2, 0))));
    }
    if (i < ho) max2x2_row_base(plane + 2 * i * sh, plane + (2 * i + 1) * sh, o + 4 * i, 4);
}
#endif

void wk_pool2d_planes(const wk_pool_desc *d, long plane0, long plane1, float *out) {
    const int fast = d->is_max && d->kh == 2 && d->kw == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
                     d->pad_w == 0 && d->sw == 1;
#if defined(__x86_64__)
    const int avx2 = wk_isa_level() >= WK_ISA_AVX2;
#endif
    for (long p = plane0; p < plane1; p++) {
        const float *plane = d->x + p / d->channels * d->sn + p % d->channels * d->sc;
        float *o = out + p * d->ho * d->wo;
        if (!fast) {
            pool_plane_general(d, plane, o);
            continue;
        }
#if defined(__x86_64__)
        if (avx2 && d->wo == 4) {
            max2x2_rows4_avx2(plane, d->sh, o, d->ho);
            continue;
        }
#endif
        for (long oi = 0; oi < d->ho; oi++) {
            const float *r0 = plane + 2 * oi * d->sh, *r1 = r0 + d->sh;
#if defined(__x86_64__)
            if (avx2) {
                max2x2_row_avx2(r0, r1, o + oi * d->wo, d->wo);
                continue;
            }
#endif
            max2x2_row_base(r0, r1, o + oi * d->wo, d->wo);
        }
    }
}
