#include "../gemm/sgemm_internal.h"
#include <stdlib.h>

// Winograd's minimal filtering for 3x3, stride 1 convolutions: each m x m block of outputs
// (a tile) is read from the α x α inputs under it (α = m + 2), and in the transformed domain
// the 3x3 window becomes α² independent products, one per point ξ:
//   V_ξ[c, t] = (Bᵀ d_{c,t} B)_ξ      input tile t of channel c, transformed
//   U_ξ[o, c] = (G g_{o,c} Gᵀ)_ξ      the weights, transformed once per call
//   M_ξ[o, t] = Σ_c U_ξ[o, c] · V_ξ[c, t]    α² GEMMs, on the SGEMM micro-kernels
//   y_{o,t}   = Aᵀ M_·[o, t] A        the m x m outputs
// F(4x4, 3x3) (36 products per 16 outputs, 4 times fewer multiplies than the direct 144)
// wherever the output is at least 4 x 4; F(2x2, 3x3) (16 per 4, 2.25 times fewer) below
// that. F(4x4)'s transform has larger constants (4, 5, 8) and loses a few more bits: its
// results stay within 1e-4 of PyTorch's on the digits CNN's logits.
//
// Work is dealt out as blocks of tiles (whole images when they are small, whole tile rows of
// one image otherwise) sized so that a block's V stays in L2, written straight into the
// micro-kernel's B panel layout. For each panel of NR tiles and MR output channels the α²
// products go to an L1 tile of M per point, and the outputs leave it at once, with the bias,
// to be handed to `after` a block at a time while they are in cache; with a fused ReLU and
// 2x2 max pool (relu, pool_out) each tile is rectified and pooled in registers instead, and
// the convolution's output is never written. A naive version (all of V, then all of M) would
// send tens of MB per call through memory at [8, 64, 56, 56].
//
// The AVX2 transforms take 8 tiles a vector: F(4x4)'s each lane from its own place (8 rows
// loaded and transposed), F(2x2)'s two groups of 4 neighbouring tiles whose inputs are split
// into even and odd columns. The baseline is scalar, from the matrices.

typedef struct {
    const wk_conv_desc *d;
    wk_sgemm_geometry g;
    int level;
    /// The tile's side m, the input tile's α = m + 2, and the α² points.
    int m, alpha, points;
    /// Every tile lies wholly in the output (its sides are multiples of m).
    int whole_tiles;
    long cin, cout, th, tw;
    /// Tile columns (rounded up to 4 for F(2x2), so that a group of 4 tiles never crosses a
    /// tile row), the region's row length and rows, an image's plane in it, its floats.
    long twp, rw, prows, plane, region_size;
    /// Blocks: `per_block` images (by_images) or tile rows of one image each.
    int by_images;
    long per_block, row_blocks, blocks, tpad;
    /// The K block, and the output channels rounded up to MR.
    long kcb, mpad;
    /// U: per ξ, cin x mpad in the micro-kernel's A panels (k blocks of MR-row panels).
    float *u;
    long next;
    wk_conv_tile_fn after;
    void *ctx;
    int failed;
} wino_job;


static const float BT2[4 * 4] = {1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 1, 0, 0, 1, 0, -1};
static const float G2[4 * 3] = {1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, -0.5f, 0.5f, 0, 0, 1};
static const float AT2[2 * 4] = {1, 1, 1, 0, 0, 1, -1, -1};
static const float BT4[6 * 6] = {4, 0, -5, 0, 1, 0, 0, -4, -4, 1, 1, 0, 0, 4, -4, -1, 1, 0,
                                 0, -2, -1, 2, 1, 0, 0, 2, -1, -2, 1, 0, 0, 4, 0, -5, 0, 1};
static const float G4[6 * 3] = {1.0f / 4, 0, 0, -1.0f / 6, -1.0f / 6, -1.0f / 6, -1.0f / 6, 1.0f / 6, -1.0f / 6,
                                1.0f / 24, 1.0f / 12, 1.0f / 6, 1.0f / 24, -1.0f / 12, 1.0f / 6, 0, 0, 1};
static const float AT4[4 * 6] = {1, 1, 1, 1, 1, 0, 0, 1, -1, 2, -2, 0, 0, 1, 1, 4, 4, 0, 0, 1, -1, 8, -8, 1};

int wk_conv_winograd_applies(const wk_conv_desc *d) {
    return d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 && d->groups == 1 &&
           d->channels >= 8 && d->out_per_group >= 8 && d->ho >= 2 && d->wo >= 2 && d->images > 0;
}

int wk_conv_winograd_tile(const wk_conv_desc *d) { return d->ho >= 4 && d->wo >= 4 ? 4 : 2; }

int wk_conv_winograd_pools(const wk_conv_desc *d) {
    return wk_conv_winograd_applies(d) && wk_conv_winograd_tile(d) == 4 && d->ho % 4 == 0 && d->wo % 4 == 0;
}

/// U_ξ = G g Gᵀ for every output channel and input channel, packed as the micro-kernel's A
/// operand: for k block p0 and row panel ir, element (k, row) at p0·mpad + ir·kcs + k·MR + row.
static void transform_weights(wino_job *J) {
    const wk_conv_desc *d = J->d;
    const int MR = J->g.mr, alpha = J->alpha;
    const float *G = J->m == 4 ? G4 : G2;
    const long stride = J->cin * J->mpad;
    memset(J->u, 0, (size_t)(J->points * stride) * sizeof(float));
    for (long o = 0; o < J->cout; o++) {
        const long ir = o / MR * MR, row = o % MR;
        for (long c = 0; c < J->cin; c++) {
            float g[3][3], t[6][3];
            for (long ky = 0; ky < 3; ky++) {
                for (long kx = 0; kx < 3; kx++) g[ky][kx] = d->weights[o * d->wrs + ((c * 3 + ky) * 3 + kx) * d->wcs];
            }
            for (int a = 0; a < alpha; a++) {
                for (int x = 0; x < 3; x++) t[a][x] = G[a * 3] * g[0][x] + G[a * 3 + 1] * g[1][x] + G[a * 3 + 2] * g[2][x];
            }
            const long p0 = c / J->kcb * J->kcb, kcs = J->cin - p0 < J->kcb ? J->cin - p0 : J->kcb;
            const long at = p0 * J->mpad + ir * kcs + (c - p0) * MR + row;
            for (int a = 0; a < alpha; a++) {
                for (int b = 0; b < alpha; b++) {
                    J->u[(a * alpha + b) * stride + at] = t[a][0] * G[b * 3] + t[a][1] * G[b * 3 + 1] + t[a][2] * G[b * 3 + 2];
                }
            }
        }
    }
}

/// A worker's scratch: the block's input rows in a zero-bordered region, its V (per ξ: its B
/// panels, cin rows of NR tiles), M for one panel (per ξ: MR rows of NR tiles), and where
/// each tile of the block reads and writes.
typedef struct {
    float *region, *v, *m;
    /// Per tile: its inputs' offset in the region and its outputs' in the output (channel 0),
    /// and the output rows and columns from its corner to the image's edge.
    long *in, *out, *rows_left, *cols_left;
    /// Per tile, with a fused pooling: its pooled outputs' offset in pool_out (channel 0).
    long *pooled;
} wino_scratch;

static void free_scratch(wino_scratch *s) {
    free(s->region);
    free(s->v);
    free(s->m);
    free(s->in);
}

static int new_scratch(const wino_job *J, wino_scratch *s) {
    *s = (wino_scratch){0};
    const size_t region = (size_t)J->region_size, v = (size_t)(J->points * J->cin * J->tpad);
    // M's tiles, and 8 floats for the loads of a panel's last 8 tiles.
    const size_t m = (size_t)(J->points * J->g.mr * J->g.nr) + 8, tiles = (size_t)J->tpad;
    if (posix_memalign((void **)&s->region, 64, region * sizeof(float)) != 0 ||
        posix_memalign((void **)&s->v, 64, v * sizeof(float)) != 0 ||
        posix_memalign((void **)&s->m, 64, m * sizeof(float)) != 0 || (s->in = malloc(5 * tiles * sizeof(long))) == NULL) {
        free_scratch(s);
        return -1;
    }
    s->out = s->in + tiles;
    s->rows_left = s->out + tiles;
    s->cols_left = s->rows_left + tiles;
    s->pooled = s->cols_left + tiles;
    // The region's columns left and right of the image are never written again; tiles past
    // a block's last are multiplied too (whole panels) and their products dropped: zeroed
    // once, V and M only ever hold finite values there.
    memset(s->region, 0, region * sizeof(float));
    memset(s->v, 0, v * sizeof(float));
    memset(s->m, 0, m * sizeof(float));
    return 0;
}

/// A block's first tile row (image0, ty0) and how many it has (per image, th of them, when
/// blocks hold images).
static void block_rows(const wino_job *J, long block, long *image0, long *ty0, long *rows) {
    if (J->by_images) {
        *image0 = block * J->per_block;
        *ty0 = 0;
        const long images = J->d->images - *image0 < J->per_block ? J->d->images - *image0 : J->per_block;
        *rows = images * J->th;
    } else {
        *image0 = block / J->row_blocks;
        *ty0 = block % J->row_blocks * J->per_block;
        *rows = J->th - *ty0 < J->per_block ? J->th - *ty0 : J->per_block;
    }
}

/// The block's tiles, row by row (twp to a row): where each reads and writes.
static void map_tiles(const wino_job *J, const wino_scratch *s, long image0, long ty0, long tiles) {
    const wk_conv_desc *d = J->d;
    const long m = J->m;
    for (long t = 0; t < tiles; t++) {
        const long row = t / J->twp, tx = t % J->twp;
        const long local = J->by_images ? row / J->th : 0, ty = J->by_images ? row % J->th : ty0 + row;
        const long local_row = J->by_images ? ty : row;
        s->in[t] = local * J->cin * J->plane + m * local_row * J->rw + m * tx;
        s->out[t] = (image0 + local) * J->cout * d->ho * d->wo + m * ty * d->wo + m * tx;
        s->rows_left[t] = d->ho - m * ty;
        s->cols_left[t] = d->wo - m * tx;
        s->pooled[t] = (image0 + local) * J->cout * (d->ho / 2) * (d->wo / 2) + m / 2 * ty * (d->wo / 2) + m / 2 * tx;
    }
}

/// Copies the block's input rows into the region: element (c, R, Q) of an image's part is
/// input row R + first_row, column Q - pw, and rows outside the image are zeros.
static inline __attribute__((always_inline)) void fill_region(const wino_job *J, const wino_scratch *s, long image0,
                                                               long ty0, long images) {
    const wk_conv_desc *d = J->d;
    const long first_row = J->by_images ? -d->ph : J->m * ty0 - d->ph, w = d->w;
    for (long i = 0; i < images; i++) {
        for (long c = 0; c < J->cin; c++) {
            const float *plane = d->x + (image0 + i) * d->xn + c * d->xc;
            float *dst = s->region + (i * J->cin + c) * J->plane + d->pw;
            for (long r = 0; r < J->prows; r++, dst += J->rw) {
                const long iy = first_row + r;
                if (iy < 0 || iy >= d->h) {
                    for (long q = 0; q < w; q++) dst[q] = 0;
                } else {
                    wk_copy_floats(dst, plane + iy * d->xh, w, d->xw);
                }
            }
        }
    }
}

/// Where tile idx of the block goes in V: channel c of point ξ at + ξ·cin·tpad + c·NR from
/// here. Tiles idx...idx + 7 share a panel row when idx is a multiple of 8.
static inline float *v_tiles(const wino_job *J, const wino_scratch *s, long idx) {
    const long NR = J->g.nr;
    return s->v + idx / NR * J->cin * NR + idx % NR;
}

// The baseline: one tile at a time, from the matrices.

static void input_tiles_base(const wino_job *J, const wino_scratch *s, long tiles) {
    const int alpha = J->alpha;
    const float *BT = J->m == 4 ? BT4 : BT2;
    const long vstride = J->cin * J->tpad;
    for (long t = 0; t < tiles; t++) {
        if (s->cols_left[t] <= 0) continue;
        for (long c = 0; c < J->cin; c++) {
            const float *in = s->region + s->in[t] + c * J->plane;
            float *to = v_tiles(J, s, t) + c * J->g.nr;
            float u[6][6];
            for (int a = 0; a < alpha; a++) {
                for (int j = 0; j < alpha; j++) {
                    float sum = 0;
                    for (int r = 0; r < alpha; r++) sum += BT[a * alpha + r] * in[r * J->rw + j];
                    u[a][j] = sum;
                }
            }
            for (int a = 0; a < alpha; a++) {
                for (int b = 0; b < alpha; b++) {
                    float sum = 0;
                    for (int j = 0; j < alpha; j++) sum += u[a][j] * BT[b * alpha + j];
                    to[(a * alpha + b) * vstride] = sum;
                }
            }
        }
    }
}

/// The larger, or NaN where either is (as PyTorch's max_pool2d).
static float max_nan(float a, float b) { return a != a || b != b ? NAN : (a > b ? a : b); }

static void output_tiles_base(const wino_job *J, const wino_scratch *s, const float *mrow, long pstride, long t0,
                              long tiles, long o) {
    const wk_conv_desc *d = J->d;
    const int alpha = J->alpha, m = J->m;
    const float *AT = m == 4 ? AT4 : AT2;
    const float b = d->bias ? d->bias[o * d->bias_stride] : 0.0f;
    const long mstride = pstride, plane = d->ho * d->wo;
    for (long t = t0; t < t0 + tiles; t++) {
        if (s->cols_left[t] <= 0) continue;
        const float *mt = mrow + (t - t0);
        float h[6][4];
        for (int a = 0; a < alpha; a++) {
            for (int j = 0; j < m; j++) {
                float sum = 0;
                for (int q = 0; q < alpha; q++) sum += AT[j * alpha + q] * mt[(a * alpha + q) * mstride];
                h[a][j] = sum;
            }
        }
        float v[4][4];
        for (long i = 0; i < m; i++) {
            for (long j = 0; j < m; j++) {
                float sum = 0;
                for (int a = 0; a < alpha; a++) sum += AT[i * alpha + a] * h[a][j];
                sum += b;
                v[i][j] = d->relu && !(sum > 0) && sum == sum ? 0.0f : sum;
            }
        }
        if (d->pool_out) {
            // Whole F(4x4) tiles (wk_conv_winograd_pools): 2 x 2 pooled outputs each.
            const long pw = d->wo / 2;
            float *p = d->pool_out + o * (d->ho / 2) * pw + s->pooled[t];
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 2; j++) {
                    p[i * pw + j] = max_nan(max_nan(v[2 * i][2 * j], v[2 * i][2 * j + 1]), max_nan(v[2 * i + 1][2 * j], v[2 * i + 1][2 * j + 1]));
                }
            }
            continue;
        }
        float *y = d->out + s->out[t] + o * plane;
        for (long i = 0; i < m && i < s->rows_left[t]; i++) {
            for (long j = 0; j < m && j < s->cols_left[t]; j++) y[i * d->wo + j] = v[i][j];
        }
    }
}

#if defined(__x86_64__)
// F(4x4, 3x3) at AVX2.

/// Bᵀ x for α = 6 (Lavin and Gray's points 0, ±1, ±2, ∞).
WK_AVX2 static inline void bt6_avx2(const __m256 x[6], __m256 y[6]) {
    const __m256 four = _mm256_set1_ps(4), five = _mm256_set1_ps(5), two = _mm256_set1_ps(2);
    const __m256 s12 = _mm256_add_ps(x[1], x[2]), d12 = _mm256_sub_ps(x[1], x[2]);
    const __m256 d31 = _mm256_sub_ps(x[3], x[1]), d42 = _mm256_sub_ps(x[4], x[2]);
    y[0] = _mm256_fmadd_ps(four, x[0], _mm256_fnmadd_ps(five, x[2], x[4]));
    y[1] = _mm256_fnmadd_ps(four, s12, _mm256_add_ps(x[3], x[4]));
    y[2] = _mm256_fmadd_ps(four, d12, _mm256_sub_ps(x[4], x[3]));
    y[3] = _mm256_fmadd_ps(two, d31, d42);
    y[4] = _mm256_fnmadd_ps(two, d31, d42);
    y[5] = _mm256_fmadd_ps(four, x[1], _mm256_fnmadd_ps(five, x[3], x[5]));
}

/// Aᵀ x for α = 6: four outputs.
WK_AVX2 static inline void at6_avx2(const __m256 x[6], __m256 y[4]) {
    const __m256 s1 = _mm256_add_ps(x[1], x[2]), d1 = _mm256_sub_ps(x[1], x[2]);
    const __m256 s2 = _mm256_add_ps(x[3], x[4]), d2 = _mm256_sub_ps(x[3], x[4]);
    y[0] = _mm256_add_ps(_mm256_add_ps(x[0], s1), s2);
    y[1] = _mm256_fmadd_ps(_mm256_set1_ps(2), d2, d1);
    y[2] = _mm256_fmadd_ps(_mm256_set1_ps(4), s2, s1);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8), d2, d1), x[5]);
}

/// 8 tiles a vector, each lane's 6 x 6 inputs read as 6 rows of 8 floats and transposed.
WK_AVX2 static void input_tiles4_avx2(const wino_job *J, const wino_scratch *s, long tiles) {
    const long rw = J->rw, plane = J->plane, NR = J->g.nr, vstride = J->cin * J->tpad;
    for (long idx = 0; idx < tiles; idx += 8) {
        // Past the block's last tile a lane repeats the first; its products are dropped.
        const float *p[8];
        for (int l = 0; l < 8; l++) p[l] = s->region + s->in[idx + l < tiles ? idx + l : idx];
        float *to = v_tiles(J, s, idx);
        for (long c = 0; c < J->cin; c++, to += NR) {
            __m256 t[6][6];
            for (int r = 0; r < 6; r++) {
                __m256 x[8];
                for (int l = 0; l < 8; l++) x[l] = _mm256_loadu_ps(p[l] + c * plane + r * rw);
                wk_transpose8x8(x);
                bt6_avx2(x, t[r]);
            }
            for (int b = 0; b < 6; b++) {
                const __m256 column[6] = {t[0][b], t[1][b], t[2][b], t[3][b], t[4][b], t[5][b]};
                __m256 y[6];
                bt6_avx2(column, y);
                for (int a = 0; a < 6; a++) _mm256_storeu_ps(to + (a * 6 + b) * vstride, y[a]);
            }
        }
    }
}

/// The larger, or NaN where either is.
WK_AVX2 static inline __m256 max_nan_avx2(__m256 a, __m256 b) {
    return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

/// The 2x2 max pool of 8 whole tiles' outputs y[i][j] (one lane a tile): 2 x 2 pooled outputs
/// per lane, stored as two pairs. `lanes` of them are the block's.
WK_AVX2 static void pool_tiles4_avx2(const wino_job *J, const wino_scratch *s, __m256 y[4][4], long idx, long lanes, long o) {
    const wk_conv_desc *d = J->d;
    const long pw = d->wo / 2;
    __m256 p[2][2];
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            p[i][j] = max_nan_avx2(max_nan_avx2(y[2 * i][2 * j], y[2 * i][2 * j + 1]),
                                   max_nan_avx2(y[2 * i + 1][2 * j], y[2 * i + 1][2 * j + 1]));
        }
    }
    // The pairs (p[r][0], p[r][1]) of lanes 0, 1 (and 4, 5) in lo, of lanes 2, 3 (6, 7) in hi.
    const __m256 top_lo = _mm256_unpacklo_ps(p[0][0], p[0][1]), top_hi = _mm256_unpackhi_ps(p[0][0], p[0][1]);
    const __m256 bottom_lo = _mm256_unpacklo_ps(p[1][0], p[1][1]), bottom_hi = _mm256_unpackhi_ps(p[1][0], p[1][1]);
    float *base = d->pool_out + o * (d->ho / 2) * pw;
    for (int l = 0; l < 8 && l < lanes; l++) {
        const __m256 top = l & 2 ? top_hi : top_lo, bottom = l & 2 ? bottom_hi : bottom_lo;
        const __m128 t = l < 4 ? _mm256_castps256_ps128(top) : _mm256_extractf128_ps(top, 1);
        const __m128 b = l < 4 ? _mm256_castps256_ps128(bottom) : _mm256_extractf128_ps(bottom, 1);
        float *dst = base + s->pooled[idx + l];
        if (l & 1) {
            _mm_storeh_pi((__m64 *)dst, t);
            _mm_storeh_pi((__m64 *)(dst + pw), b);
        } else {
            _mm_storel_pi((__m64 *)dst, t);
            _mm_storel_pi((__m64 *)(dst + pw), b);
        }
    }
}

/// 8 tiles a vector; each lane's 4 x 4 outputs are transposed back into rows of 4.
WK_AVX2 static void output_tiles4_avx2(const wino_job *J, const wino_scratch *s, const float *mrow, long pstride, long t0,
                                      long tiles, long o) {
    const wk_conv_desc *d = J->d;
    const __m256 bias = _mm256_set1_ps(d->bias ? d->bias[o * d->bias_stride] : 0.0f);
    const long mstride = pstride, wo = d->wo, plane = d->ho * d->wo;
    const float *m = mrow - t0;
    float *out = d->out + o * plane;
    for (long idx = t0; idx < t0 + tiles; idx += 8) {
        __m256 h[6][4];
        for (int a = 0; a < 6; a++) {
            __m256 x[6];
            for (int q = 0; q < 6; q++) x[q] = _mm256_loadu_ps(m + (a * 6 + q) * mstride + idx);
            at6_avx2(x, h[a]);
        }
        // rows[i][l]: output row i of lane l (lanes 4...7 in the high halves).
        __m256 rows[4][4];
        for (int j = 0; j < 4; j++) {
            const __m256 column[6] = {h[0][j], h[1][j], h[2][j], h[3][j], h[4][j], h[5][j]};
            __m256 y[4];
            at6_avx2(column, y);
            // y[i]: output (i, j) of every lane; kept as rows[i][j] for the transpose below.
            for (int i = 0; i < 4; i++) rows[i][j] = _mm256_add_ps(y[i], bias);
        }
        if (d->relu) {
            // maxps gives its second operand where either is NaN: a NaN output stays NaN.
            const __m256 zero = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) rows[i][j] = _mm256_max_ps(zero, rows[i][j]);
            }
        }
        if (d->pool_out) {
            pool_tiles4_avx2(J, s, rows, idx, t0 + tiles - idx, o);
            continue;
        }
        for (int i = 0; i < 4; i++) {
            const __m256 a0 = _mm256_unpacklo_ps(rows[i][0], rows[i][1]), a1 = _mm256_unpackhi_ps(rows[i][0], rows[i][1]);
            const __m256 a2 = _mm256_unpacklo_ps(rows[i][2], rows[i][3]), a3 = _mm256_unpackhi_ps(rows[i][2], rows[i][3]);
            rows[i][0] = _mm256_shuffle_ps(a0, a2, _MM_SHUFFLE(1, 0, 1, 0));  // lanes 0 and 4
            rows[i][1] = _mm256_shuffle_ps(a0, a2, _MM_SHUFFLE(3, 2, 3, 2));  // lanes 1 and 5
            rows[i][2] = _mm256_shuffle_ps(a1, a3, _MM_SHUFFLE(1, 0, 1, 0));  // lanes 2 and 6
            rows[i][3] = _mm256_shuffle_ps(a1, a3, _MM_SHUFFLE(3, 2, 3, 2));  // lanes 3 and 7
        }
        if (J->whole_tiles && idx + 8 <= t0 + tiles) {
            for (int l = 0; l < 8; l++) {
                float *y = out + s->out[idx + l];
                for (int i = 0; i < 4; i++) {
                    _mm_storeu_ps(y + i * wo, l < 4 ? _mm256_castps256_ps128(rows[i][l]) : _mm256_extractf128_ps(rows[i][l - 4], 1));
                }
            }
            continue;
        }
        for (int l = 0; l < 8 && idx + l < t0 + tiles; l++) {
            const long t = idx + l;
            float *y = out + s->out[t];
            const long nrows = s->rows_left[t] < 4 ? s->rows_left[t] : 4, ncols = s->cols_left[t] < 4 ? s->cols_left[t] : 4;
            for (long i = 0; i < nrows; i++) {
                const __m128 row = l < 4 ? _mm256_castps256_ps128(rows[i][l]) : _mm256_extractf128_ps(rows[i][l - 4], 1);
                if (ncols == 4) {
                    _mm_storeu_ps(y + i * wo, row);
                } else {
                    float r[4];
                    _mm_storeu_ps(r, row);
                    for (long j = 0; j < ncols; j++) y[i * wo + j] = r[j];
                }
            }
        }
    }
}

// F(2x2, 3x3) at AVX2: two groups of 4 neighbouring tiles of one tile row (twp is a multiple
// of 4), one per half of each vector.

/// Columns 0, 2, 4, 6 and 1, 3, 5, 7 of a row of group a (low half) and of group b (high half).
WK_AVX2 static inline void split_avx2(const float *a, const float *b, __m256 *even, __m256 *odd) {
    const __m256 x = _mm256_loadu_ps(a), y = _mm256_loadu_ps(b);
    const __m256 lo = _mm256_permute2f128_ps(x, y, 0x20), hi = _mm256_permute2f128_ps(x, y, 0x31);
    *even = _mm256_shuffle_ps(lo, hi, 0x88);
    *odd = _mm256_shuffle_ps(lo, hi, 0xDD);
}

WK_AVX2 static void input_tiles2_avx2(const wino_job *J, const wino_scratch *s, long tiles) {
    const long rw = J->rw, NR = J->g.nr, vstride = J->cin * J->tpad;
    for (long idx = 0; idx < tiles; idx += 8) {
        // Past the block's last tile the second half repeats the first; it is never stored.
        const float *ga = s->region + s->in[idx], *gb = s->region + s->in[idx + 4 < tiles ? idx + 4 : idx];
        float *to = v_tiles(J, s, idx);
        for (long c = 0; c < J->cin; c++, to += NR) {
            const float *pa = ga + c * J->plane, *pb = gb + c * J->plane;
            __m256 t[4][4];
            for (int r = 0; r < 4; r++) {
                __m256 d0, d1, d2, d3;
                split_avx2(pa + r * rw, pb + r * rw, &d0, &d1);
                split_avx2(pa + r * rw + 2, pb + r * rw + 2, &d2, &d3);
                t[r][0] = _mm256_sub_ps(d0, d2);
                t[r][1] = _mm256_add_ps(d1, d2);
                t[r][2] = _mm256_sub_ps(d2, d1);
                t[r][3] = _mm256_sub_ps(d1, d3);
            }
            for (int j = 0; j < 4; j++) {
                _mm256_storeu_ps(to + j * vstride, _mm256_sub_ps(t[0][j], t[2][j]));
                _mm256_storeu_ps(to + (4 + j) * vstride, _mm256_add_ps(t[1][j], t[2][j]));
                _mm256_storeu_ps(to + (8 + j) * vstride, _mm256_sub_ps(t[2][j], t[1][j]));
                _mm256_storeu_ps(to + (12 + j) * vstride, _mm256_sub_ps(t[1][j], t[3][j]));
            }
        }
    }
}

/// Two output rows of the group of tiles from t: 8 columns each, fewer where the image ends.
WK_AVX2 static inline void store_group2_avx2(const wino_job *J, const wino_scratch *s, float *out, long t, __m256 r0,
                                             __m256 r1) {
    float *first = out + s->out[t], *second = s->rows_left[t] > 1 ? first + J->d->wo : NULL;
    const long columns = s->cols_left[t] < 8 ? s->cols_left[t] : 8;
    if (columns == 8) {
        _mm256_storeu_ps(first, r0);
        if (second) _mm256_storeu_ps(second, r1);
        return;
    }
    float t0[8], t1[8];
    _mm256_storeu_ps(t0, r0);
    _mm256_storeu_ps(t1, r1);
    for (long j = 0; j < columns; j++) {
        first[j] = t0[j];
        if (second) second[j] = t1[j];
    }
}

/// The output transform of 8 tiles at once, interleaved back into output rows.
WK_AVX2 static void output_tiles2_avx2(const wino_job *J, const wino_scratch *s, const float *mrow, long pstride, long t0,
                                      long tiles, long o) {
    const wk_conv_desc *d = J->d;
    const __m256 b = _mm256_set1_ps(d->bias ? d->bias[o * d->bias_stride] : 0.0f);
    const long mstride = pstride;
    const float *m = mrow - t0;
    float *out = d->out + o * d->ho * d->wo;
    for (long idx = t0; idx < t0 + tiles; idx += 8) {
        __m256 h[4][2];
        for (int a = 0; a < 4; a++) {
            const __m256 m0 = _mm256_loadu_ps(m + (4 * a) * mstride + idx), m1 = _mm256_loadu_ps(m + (4 * a + 1) * mstride + idx);
            const __m256 m2 = _mm256_loadu_ps(m + (4 * a + 2) * mstride + idx), m3 = _mm256_loadu_ps(m + (4 * a + 3) * mstride + idx);
            h[a][0] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
            h[a][1] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
        }
        const __m256 y00 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(h[0][0], h[1][0]), h[2][0]), b);
        const __m256 y01 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(h[0][1], h[1][1]), h[2][1]), b);
        const __m256 y10 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(h[1][0], h[2][0]), h[3][0]), b);
        const __m256 y11 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(h[1][1], h[2][1]), h[3][1]), b);
        const __m256 lo0 = _mm256_unpacklo_ps(y00, y01), hi0 = _mm256_unpackhi_ps(y00, y01);
        const __m256 lo1 = _mm256_unpacklo_ps(y10, y11), hi1 = _mm256_unpackhi_ps(y10, y11);
        store_group2_avx2(J, s, out, idx, _mm256_permute2f128_ps(lo0, hi0, 0x20), _mm256_permute2f128_ps(lo1, hi1, 0x20));
        if (idx + 4 < t0 + tiles) {
            store_group2_avx2(J, s, out, idx + 4, _mm256_permute2f128_ps(lo0, hi0, 0x31),
                              _mm256_permute2f128_ps(lo1, hi1, 0x31));
        }
    }
}
#endif

typedef void (*wino_input_fn)(const wino_job *, const wino_scratch *, long);
typedef void (*wino_output_fn)(const wino_job *, const wino_scratch *, const float *, long, long, long, long);

/// One block: its inputs into the region and V; then for each panel of NR tiles and MR
/// output channels, the α² products into a tile of M per point (MR x NR each, together in
/// L1) and at once the outputs from them. With the few input channels of small networks a
/// product is a short k loop, and M for a whole block would have to come back from L2.
static inline __attribute__((always_inline)) void run_block(const wino_job *J, const wino_scratch *s, long block,
                                                             wino_input_fn input, wino_output_fn output) {
    long image0, ty0, rows;
    block_rows(J, block, &image0, &ty0, &rows);
    const long tiles = rows * J->twp, panels = wk_ceil_div(tiles, J->g.nr);
    const int MR = J->g.mr, NR = J->g.nr;
    map_tiles(J, s, image0, ty0, tiles);
    fill_region(J, s, image0, ty0, J->by_images ? rows / J->th : 1);
    input(J, s, tiles);
    const long vstride = J->cin * J->tpad, ustride = J->cin * J->mpad, pstride = (long)MR * NR;
    for (long q = 0; q < panels; q++) {
        const long nc = tiles - q * NR < NR ? tiles - q * NR : NR;
        for (long ir = 0; ir < J->cout; ir += MR) {
            const long mr = J->cout - ir < MR ? J->cout - ir : MR;
            // Whole MR x NR tiles (U's padding rows are zeros, V's columns past the block's
            // tiles finite): the micro-kernel's full path, its stores straight from registers.
            for (int xi = 0; xi < J->points; xi++) {
                const float *u = J->u + xi * ustride, *v = s->v + xi * vstride + q * J->cin * NR;
                for (long p0 = 0; p0 < J->cin; p0 += J->kcb) {
                    const long kcs = J->cin - p0 < J->kcb ? J->cin - p0 : J->kcb;
                    J->g.kernel(kcs, u + p0 * J->mpad + ir * kcs, v + p0 * NR, s->m + xi * pstride, NR, p0 > 0, MR, NR);
                }
            }
            for (long i = 0; i < mr; i++) output(J, s, s->m + i * NR, pstride, q * NR, nc, ir + i);
        }
    }
}

static void run_block_base(const wino_job *J, const wino_scratch *s, long block) {
    run_block(J, s, block, input_tiles_base, output_tiles_base);
}
#if defined(__x86_64__)
WK_AVX2 static void run_block4_avx2(const wino_job *J, const wino_scratch *s, long block) {
    run_block(J, s, block, input_tiles4_avx2, output_tiles4_avx2);
}
WK_AVX2 static void run_block2_avx2(const wino_job *J, const wino_scratch *s, long block) {
    run_block(J, s, block, input_tiles2_avx2, output_tiles2_avx2);
}
#endif

static void wino_task(void *ctx, long index) {
    (void)index;
    wino_job *J = ctx;
    const wk_conv_desc *d = J->d;
    wino_scratch s;
    if (new_scratch(J, &s) != 0) {
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    void (*block_fn)(const wino_job *, const wino_scratch *, long) = run_block_base;
#if defined(__x86_64__)
    if (J->level >= WK_ISA_AVX2) block_fn = J->m == 4 ? run_block4_avx2 : run_block2_avx2;
#endif
    for (long b; (b = __atomic_fetch_add(&J->next, 1, __ATOMIC_RELAXED)) < J->blocks;) {
        block_fn(J, &s, b);
        if (!J->after) continue;
        long image0, ty0, rows;
        block_rows(J, b, &image0, &ty0, &rows);
        if (J->by_images) {
            J->after(J->ctx, image0, image0 + rows / J->th, 0, J->cout, 0, d->ho * d->wo);
        } else {
            const long y1 = J->m * (ty0 + rows) < d->ho ? J->m * (ty0 + rows) : d->ho;
            J->after(J->ctx, image0, image0 + 1, 0, J->cout, J->m * ty0 * d->wo, y1 * d->wo);
        }
    }
    free_scratch(&s);
}

/// Of 1...most items a block (of `units` items of tiles_each tiles each), the count whose blocks,
/// the last one's remainder included, waste the least of their NR-wide panels (the larger on a tie).
static long least_waste(long most, long units, long tiles_each, long nr) {
    long best = 1;
    double best_used = 0;
    for (long k = 1; k <= most; k++) {
        const long whole = units / k, rest = units % k;
        const long padded = whole * wk_round_up(k * tiles_each, nr) + (rest ? wk_round_up(rest * tiles_each, nr) : 0);
        const double used = (double)(units * tiles_each) / (double)padded;
        if (used >= best_used) {
            best = k;
            best_used = used;
        }
    }
    return best;
}

int wk_conv_winograd(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx) {
    if (!wk_conv_winograd_applies(d) || ((d->relu || d->pool_out) && !wk_conv_winograd_pools(d))) return -2;
    wino_job J = {.d = d, .after = after, .ctx = ctx};
    J.level = wk_isa_level();
    J.g = wk_sgemm_geometry_for(J.level);
    J.m = wk_conv_winograd_tile(d);
    J.alpha = J.m + 2;
    J.points = J.alpha * J.alpha;
    J.cin = d->channels;
    J.cout = d->out_per_group;
    J.whole_tiles = d->ho % J.m == 0 && d->wo % J.m == 0;
    J.th = wk_ceil_div(d->ho, J.m);
    J.tw = wk_ceil_div(d->wo, J.m);
    J.twp = J.m == 2 ? wk_round_up(J.tw, 4) : J.tw;
    // F(4x4)'s lanes load 8 floats from a tile's corner, 2 past its 6 inputs.
    J.rw = J.m * J.twp + 2 + (J.m == 4 ? 2 : 0);
    workers = workers < 1 ? 1 : workers;
    J.kcb = wk_sgemm_k_block(J.cin, J.g.kc);
    J.mpad = wk_round_up(J.cout, J.g.mr);
    // A block's V in about 192 KB of L2, but never fewer tiles than one panel holds: a block
    // narrower than NR pads its panel, and AVX-512's 48-wide panels over a row of 14 tiles
    // (56 x 56 images) did 3.4 times the products needed (10 ms against AVX2's 5 on Zen 4).
    long budget = 48 * 1024 / (J.points * J.cin);
    if (budget < J.g.nr) budget = J.g.nr;
    const long per_image = J.th * J.twp;
    if (per_image <= budget) {
        J.by_images = 1;
        long most = budget / per_image;
        // Enough blocks for every worker twice over.
        const long spread = wk_ceil_div(d->images, 2 * workers);
        if (most > spread) most = spread;
        J.per_block = least_waste(most < 1 ? 1 : most, d->images, per_image, J.g.nr);
        J.blocks = wk_ceil_div(d->images, J.per_block);
        J.tpad = wk_round_up(J.per_block * per_image, J.g.nr);
    } else {
        long most = budget / J.twp;
        const long spread = wk_ceil_div(d->images * J.th, 2 * workers);
        if (most > spread) most = spread;
        J.per_block = least_waste(most < 1 ? 1 : most, J.th, J.twp, J.g.nr);
        J.row_blocks = wk_ceil_div(J.th, J.per_block);
        J.blocks = d->images * J.row_blocks;
        J.tpad = wk_round_up(J.per_block * J.twp, J.g.nr);
    }
    J.prows = J.m * (J.by_images ? J.th : J.per_block) + 2;
    J.plane = J.prows * J.rw;
    // The 8-float loads of a row's last tiles reach a few floats past the region's last row.
    J.region_size = (J.by_images ? J.per_block : 1) * J.cin * J.plane + 8;
    if (posix_memalign((void **)&J.u, 64, (size_t)(J.points * J.cin * J.mpad) * sizeof(float)) != 0) return -1;
    transform_weights(&J);
    wk_pool_run(workers < J.blocks ? workers : J.blocks, wino_task, &J);
    free(J.u);
    return J.failed ? -1 : 0;
}
