#include "../gemm/sgemm_internal.h"
#include <stdlib.h>

// The direct convolution for few input channels (a network's first layer: one grey or three
// colour planes): out[o, y, x..x+7] = bias[o] + Σ_k w[o, k] · in[c, y + ky, x + kx ..], eight
// output columns a vector and eight output channels at a time, the weights broadcast. With
// K = c·kh·kw at most 27 a GEMM is all overhead: the digits CNN's first layer (K = 9) ran
// its micro-kernel 9 k steps a call, a third of the calls on a 4-row remainder.
//
// Each worker takes a few whole images at a time, copies each into a region with zero borders
// (zeroed once: the borders are the same for every image) so that no window tests an edge,
// and hands the images to `after` while their outputs are in its cache. A ReLU after the
// convolution (relu) is applied in registers before the store: the digits CNN's first layer
// spent about a quarter of its time in the separate epilogue pass over its output.

typedef struct {
    const wk_conv_desc *d;
    int level;
    long k, og, opad;
    /// The weights as [opad, k], zero past the last output channel.
    float *w;
    /// The region: rows of rw floats (the padded width and a vector's slack), prows of them.
    long rw, prows, plane;
    long next, grab, items;
    wk_conv_tile_fn after;
    void *ctx;
    int failed;
} direct_job;

#define DIRECT_OUT 8

int wk_conv_direct_applies(const wk_conv_desc *d) {
    const long k = d->channels * d->kh * d->kw;
    return d->groups == 1 && d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 && k > 0 && k <= 27 &&
           d->out_per_group >= 4 && d->wo >= 8 && d->ho >= 1 && d->images > 0;
}


/// Image `image`'s planes into the region's interior (columns pw..., rows ph...).
static void fill(const direct_job *J, long image, float *region) {
    const wk_conv_desc *d = J->d;
    for (long c = 0; c < d->channels; c++) {
        const float *plane = d->x + image * d->xn + c * d->xc;
        float *dst = region + c * J->plane + d->ph * J->rw + d->pw;
        for (long y = 0; y < d->h; y++, dst += J->rw) wk_copy_floats(dst, plane + y * d->xh, d->w, d->xw);
    }
}

static void image_base(const direct_job *J, long image, const float *region) {
    const wk_conv_desc *d = J->d;
    const long plane = d->ho * d->wo;
    for (long o = 0; o < J->og; o++) {
        const float *w = J->w + o * J->k;
        const float b = d->bias ? d->bias[o * d->bias_stride] : 0.0f;
        float *out = d->out + (image * J->og + o) * plane;
        for (long y = 0; y < d->ho; y++) {
            for (long x = 0; x < d->wo; x++) {
                float sum = b;
                for (long c = 0, k = 0; c < d->channels; c++) {
                    for (long ky = 0; ky < d->kh; ky++) {
                        const float *row = region + c * J->plane + (y + ky) * J->rw + x;
                        for (long kx = 0; kx < d->kw; kx++, k++) sum += w[k] * row[kx];
                    }
                }
                out[y * d->wo + x] = d->relu && !(sum > 0) && sum == sum ? 0.0f : sum;
            }
        }
    }
}

#if defined(__x86_64__)
WK_AVX2 static void image_avx2(const direct_job *J, long image, const float *region) {
    const wk_conv_desc *d = J->d;
    const long plane = d->ho * d->wo, K = J->k;
    // Each k's offset from a window's corner.
    long offsets[27];
    for (long c = 0, k = 0; c < d->channels; c++) {
        for (long ky = 0; ky < d->kh; ky++) {
            for (long kx = 0; kx < d->kw; kx++, k++) offsets[k] = c * J->plane + ky * J->rw + kx;
        }
    }
    for (long o0 = 0; o0 < J->og; o0 += DIRECT_OUT) {
        const long no = J->og - o0 < DIRECT_OUT ? J->og - o0 : DIRECT_OUT;
        float bias[DIRECT_OUT] = {0};
        for (long j = 0; j < no; j++) bias[j] = d->bias ? d->bias[(o0 + j) * d->bias_stride] : 0.0f;
        const float *w = J->w + o0 * K;
        for (long y = 0; y < d->ho; y++) {
            for (long x = 0; x < d->wo; x += 8) {
                __m256 acc[DIRECT_OUT];
                for (int j = 0; j < DIRECT_OUT; j++) acc[j] = _mm256_set1_ps(bias[j]);
                const float *corner = region + y * J->rw + x;
                for (long k = 0; k < K; k++) {
                    const __m256 in = _mm256_loadu_ps(corner + offsets[k]);
                    for (int j = 0; j < DIRECT_OUT; j++) acc[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j * K + k), in, acc[j]);
                }
                if (d->relu) {
                    // As the unary kernel's ReLU: x where x > 0 or NaN, else +0.
                    const __m256 zero = _mm256_setzero_ps();
                    for (int j = 0; j < DIRECT_OUT; j++) acc[j] = _mm256_and_ps(acc[j], _mm256_cmp_ps(acc[j], zero, _CMP_NLE_UQ));
                }
                float *out = d->out + (image * J->og + o0) * plane + y * d->wo + x;
                if (x + 8 <= d->wo) {
                    for (long j = 0; j < no; j++) _mm256_storeu_ps(out + j * plane, acc[j]);
                } else {
                    for (long j = 0; j < no; j++) {
                        float t[8];
                        _mm256_storeu_ps(t, acc[j]);
                        for (long q = 0; q < d->wo - x; q++) out[j * plane + q] = t[q];
                    }
                }
            }
        }
    }
}
#endif

static void direct_task(void *ctx, long index) {
    (void)index;
    direct_job *J = ctx;
    const size_t bytes = (size_t)(J->d->channels * J->plane + 8) * sizeof(float);
    float *region = NULL;
    if (posix_memalign((void **)&region, 64, bytes) != 0) {
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    // The borders stay zero: only the image's own rows and columns are written.
    memset(region, 0, bytes);
    for (long t; (t = __atomic_fetch_add(&J->next, 1, __ATOMIC_RELAXED)) < J->items;) {
        const long i0 = t * J->grab, i1 = i0 + J->grab < J->d->images ? i0 + J->grab : J->d->images;
        for (long image = i0; image < i1; image++) {
            fill(J, image, region);
#if defined(__x86_64__)
            if (J->level >= WK_ISA_AVX2) {
                image_avx2(J, image, region);
                continue;
            }
#endif
            image_base(J, image, region);
        }
        if (J->after) J->after(J->ctx, i0, i1, 0, J->og, 0, J->d->ho * J->d->wo);
    }
    free(region);
}

int wk_conv_direct(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx) {
    if (d->pool_out || !wk_conv_direct_applies(d)) return -2;
    direct_job J = {.d = d, .after = after, .ctx = ctx};
    J.level = wk_isa_level();
    J.k = d->channels * d->kh * d->kw;
    J.og = d->out_per_group;
    J.opad = wk_ceil_div(J.og, DIRECT_OUT) * DIRECT_OUT;
    // A vector's 8 columns from the last one started, past the padded width.
    J.rw = wk_ceil_div(d->wo, 8) * 8 + d->kw - 1;
    J.prows = d->ho + d->kh - 1;
    J.plane = J.prows * J.rw;
    workers = workers < 1 ? 1 : workers;
    // About 8192 outputs (32 KB) to `after` at a time, and every worker busy twice over.
    const long per_image = J.og * d->ho * d->wo, by_size = 8192 / per_image, by_count = d->images / (2 * workers);
    J.grab = by_size < by_count ? by_size : by_count;
    if (J.grab < 1) J.grab = 1;
    J.items = wk_ceil_div(d->images, J.grab);
    J.w = calloc((size_t)(J.opad * J.k), sizeof(float));
    if (J.w == NULL) return -1;
    for (long o = 0; o < J.og; o++) {
        for (long k = 0; k < J.k; k++) J.w[o * J.k + k] = d->weights[o * d->wrs + k * d->wcs];
    }
    wk_pool_run(workers < J.items ? workers : J.items, direct_task, &J);
    free(J.w);
    return J.failed ? -1 : 0;
}
