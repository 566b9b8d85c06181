#include "sgemm_internal.h"
#include <stdlib.h>

// Winograd's F(2x2, 3x3) for 3x3, stride 1 convolutions: each 2x2 block of outputs (a tile)
// is read from the 4x4 inputs under it, and in the transformed domain the 3x3 window becomes
// 16 independent products, one per point ξ of a 4x4 grid:
//   V_ξ[c, t] = (Bᵀ d_{c,t} B)_ξ      the input tile t of channel c, transformed
//   U_ξ[o, c] = (G g_{o,c} Gᵀ)_ξ      the weights, transformed once per call
//   M_ξ[o, t] = Σ_c U_ξ[o, c] · V_ξ[c, t]    16 GEMMs, on the SGEMM micro-kernels
//   y_{o,t}   = Aᵀ M_{·}[o, t] A      the 2x2 outputs
// 16 multiplies per 4 outputs where the direct convolution has 36: 2.25 times fewer.
//
// Work is dealt out as blocks of tiles (whole images when they are small, whole tile rows of
// one image otherwise) sized so that a block's V and M stay in L2: a block's V is written
// straight into the micro-kernel's B panel layout, its M goes to a worker's scratch, and its
// outputs are written once, with the bias, and handed to `after` while they are in cache. A
// naive version (all of V, then all of M) would send about 26 MB per call through memory at
// [8, 64, 56, 56].
//
// The transforms are plain loops over a tile row, written once and compiled for each level
// (always_inline into a function with the level's target), so the compiler vectorises them.

typedef struct {
    const wk_conv_desc *d;
    wk_sgemm_geometry g;
    int level;
    long cin, cout, th, tw;
    /// Tile columns rounded up to 4 (a group of 4 tiles never crosses a tile row), the
    /// region's row length and rows, an image's plane in it and its floats.
    long twp, rw, prows, plane, region_size;
    /// Blocks: `per_block` images (by_images) or tile rows of one image each.
    int by_images;
    long per_block, row_blocks, blocks, tpad;
    /// Output channels multiplied and transformed at a time (a multiple of MR), the K block.
    long cchunk, kcb, mpad;
    /// U: per ξ, cin x mpad in the micro-kernel's A panels (k blocks of MR-row panels).
    float *u;
    long next;
    wk_conv_tile_fn after;
    void *ctx;
    int failed;
} wino_job;

static long ceil_div(long a, long b) { return (a + b - 1) / b; }
static long round_up(long a, long b) { return ceil_div(a, b) * b; }

#define WINO_POINTS 16

int wk_conv_winograd_applies(const wk_conv_desc *d) {
    return d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 && d->groups == 1 &&
           d->channels >= 8 && d->out_per_group >= 8 && d->ho >= 2 && d->wo >= 2 && d->images > 0;
}

/// U_ξ = G g Gᵀ for every output channel and input channel, packed as the micro-kernel's A
/// operand: for k block p0 and row panel ir, element (k, row) at p0·mpad + ir·kcs + k·MR + row.
static void transform_weights(wino_job *J) {
    const wk_conv_desc *d = J->d;
    const int MR = J->g.mr;
    const long stride = J->cin * J->mpad;
    memset(J->u, 0, (size_t)(WINO_POINTS * stride) * sizeof(float));
    for (long o = 0; o < J->cout; o++) {
        const long ir = o / MR * MR, row = o % MR;
        for (long c = 0; c < J->cin; c++) {
            float g[3][3], t[4][3], u[4][4];
            for (long ky = 0; ky < 3; ky++) {
                for (long kx = 0; kx < 3; kx++) g[ky][kx] = d->weights[o * d->wrs + ((c * 3 + ky) * 3 + kx) * d->wcs];
            }
            for (int x = 0; x < 3; x++) {
                t[0][x] = g[0][x];
                t[1][x] = 0.5f * (g[0][x] + g[1][x] + g[2][x]);
                t[2][x] = 0.5f * (g[0][x] - g[1][x] + g[2][x]);
                t[3][x] = g[2][x];
            }
            for (int a = 0; a < 4; a++) {
                u[a][0] = t[a][0];
                u[a][1] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
                u[a][2] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
                u[a][3] = t[a][2];
            }
            const long p0 = c / J->kcb * J->kcb, kcs = J->cin - p0 < J->kcb ? J->cin - p0 : J->kcb;
            const long at = p0 * J->mpad + ir * kcs + (c - p0) * MR + row;
            for (int xi = 0; xi < WINO_POINTS; xi++) J->u[xi * stride + at] = u[xi / 4][xi % 4];
        }
    }
}

/// A worker's scratch: the block's input rows in a zero-bordered region, its V (per ξ: its B
/// panels, cin rows of NR tiles) and M (per ξ: cchunk rows of tpad tiles).
typedef struct {
    float *region, *v, *m;
} wino_scratch;

static void free_scratch(wino_scratch *s) {
    free(s->region);
    free(s->v);
    free(s->m);
}

static int new_scratch(const wino_job *J, wino_scratch *s) {
    *s = (wino_scratch){0};
    const size_t region = (size_t)J->region_size, v = (size_t)(WINO_POINTS * J->cin * J->tpad);
    const size_t m = (size_t)(WINO_POINTS * J->cchunk * J->tpad);
    if (posix_memalign((void **)&s->region, 64, region * sizeof(float)) != 0 ||
        posix_memalign((void **)&s->v, 64, v * sizeof(float)) != 0 ||
        posix_memalign((void **)&s->m, 64, m * sizeof(float)) != 0) {
        free_scratch(s);
        return -1;
    }
    // The region's columns left and right of the image are never written again; tiles past
    // a block's last are multiplied too (whole panels) and their products dropped: zeroed
    // once, V only ever holds finite values there.
    memset(s->region, 0, region * sizeof(float));
    memset(s->v, 0, v * sizeof(float));
    return 0;
}

/// A run of 4 tiles of one tile row (tile columns tx0...tx0 + 3), at block row `row`: the
/// tiles' index in the block is row·twp + tx0, and their 4 x 10 inputs start at `in`.
typedef struct {
    long image, ty, tx0;
    const float *in;
} wino_group;

/// The group of 4 tiles that starts at block tile index idx (a multiple of 4), channel 0.
static inline __attribute__((always_inline)) wino_group group_at(const wino_job *J, const wino_scratch *s, long image0,
                                                                  long ty0, long idx) {
    const long row = idx / J->twp, tx0 = idx % J->twp;
    wino_group g;
    long local_row;
    if (J->by_images) {
        g.image = image0 + row / J->th;
        g.ty = row % J->th;
        local_row = g.ty;
        g.in = s->region + (g.image - image0) * J->cin * J->plane;
    } else {
        g.image = image0;
        g.ty = ty0 + row;
        local_row = row;
        g.in = s->region;
    }
    g.tx0 = tx0;
    g.in += 2 * local_row * J->rw + 2 * tx0;
    return g;
}

/// Copies the block's input rows into the region: element (c, R, Q) of an image's part is
/// input row R + first_row, column Q - pw, and rows outside the image are zeros.
static inline __attribute__((always_inline)) void fill_region(const wino_job *J, const wino_scratch *s, long image0,
                                                               long ty0, long images) {
    const wk_conv_desc *d = J->d;
    const long first_row = J->by_images ? -d->ph : 2 * ty0 - d->ph, w = d->w;
    for (long i = 0; i < images; i++) {
        for (long c = 0; c < J->cin; c++) {
            const float *plane = d->x + (image0 + i) * d->xn + c * d->xc;
            float *dst = s->region + (i * J->cin + c) * J->plane + d->pw;
            for (long r = 0; r < J->prows; r++, dst += J->rw) {
                const long iy = first_row + r;
                float *restrict to = dst;
                if (iy < 0 || iy >= d->h) {
                    for (long q = 0; q < w; q++) to[q] = 0;
                } else if (d->xw == 1) {
                    const float *restrict from = plane + iy * d->xh;
                    for (long q = 0; q < w; q++) to[q] = from[q];
                } else {
                    const float *restrict from = plane + iy * d->xh;
                    for (long q = 0; q < w; q++) to[q] = from[q * d->xw];
                }
            }
        }
    }
}

/// Where tiles from idx (a multiple of 4) of the block go in V: channel c of point ξ at
/// + ξ·cin·tpad + c·NR from here.
static inline float *v_tiles(const wino_job *J, const wino_scratch *s, long idx) {
    const long NR = J->g.nr;
    return s->v + idx / NR * J->cin * NR + idx % NR;
}

/// Bᵀ d B of one tile whose 4 x 4 inputs start at `in` (rows rw apart), into v[ξ].
static void input_tile_base(const float *in, long rw, float v[WINO_POINTS]) {
    float t[4][4];
    for (int j = 0; j < 4; j++) {
        const float d0 = in[j], d1 = in[rw + j], d2 = in[2 * rw + j], d3 = in[3 * rw + j];
        t[0][j] = d0 - d2;
        t[1][j] = d1 + d2;
        t[2][j] = d2 - d1;
        t[3][j] = d1 - d3;
    }
    for (int a = 0; a < 4; a++) {
        v[4 * a] = t[a][0] - t[a][2];
        v[4 * a + 1] = t[a][1] + t[a][2];
        v[4 * a + 2] = t[a][2] - t[a][1];
        v[4 * a + 3] = t[a][1] - t[a][3];
    }
}

/// Aᵀ m A of one tile from its 16 points, plus the bias: y[row][column].
static void output_tile_base(const float m[WINO_POINTS], float b, float y[2][2]) {
    float h[4][2];
    for (int a = 0; a < 4; a++) {
        h[a][0] = m[4 * a] + m[4 * a + 1] + m[4 * a + 2];
        h[a][1] = m[4 * a + 1] - m[4 * a + 2] - m[4 * a + 3];
    }
    for (int j = 0; j < 2; j++) {
        y[0][j] = h[0][j] + h[1][j] + h[2][j] + b;
        y[1][j] = h[1][j] - h[2][j] - h[3][j] + b;
    }
}

/// Where output channel o of group g's tile row goes: its two rows (the second NULL past
/// the image) and how many of the group's 8 columns lie in the image.
static float *output_rows(const wino_job *J, const wino_group *g, long o, float **second, long *columns) {
    const wk_conv_desc *d = J->d;
    float *first = d->out + ((g->image * J->cout + o) * d->ho + 2 * g->ty) * d->wo + 2 * g->tx0;
    *second = 2 * g->ty + 1 < d->ho ? first + d->wo : NULL;
    const long left = d->wo - 2 * g->tx0;
    *columns = left < 8 ? left : 8;
    return first;
}

static void input_tiles_base(const wino_job *J, const wino_scratch *s, long image0, long ty0, long tiles) {
    for (long idx = 0; idx < tiles; idx += 4) {
        const wino_group g = group_at(J, s, image0, ty0, idx);
        for (long c = 0; c < J->cin; c++) {
            for (long t = 0; t < 4; t++) {
                float v[WINO_POINTS];
                input_tile_base(g.in + c * J->plane + 2 * t, J->rw, v);
                float *to = v_tiles(J, s, idx) + c * J->g.nr + t;
                for (int xi = 0; xi < WINO_POINTS; xi++) to[xi * J->cin * J->tpad] = v[xi];
            }
        }
    }
}

static void output_tiles_base(const wino_job *J, const wino_scratch *s, long image0, long ty0, long tiles, long o,
                              long ol) {
    const float b = J->d->bias ? J->d->bias[o * J->d->bias_stride] : 0.0f;
    const long mstride = J->cchunk * J->tpad;
    for (long idx = 0; idx < tiles; idx += 4) {
        const wino_group g = group_at(J, s, image0, ty0, idx);
        float *second;
        long columns;
        float *first = output_rows(J, &g, o, &second, &columns);
        for (long t = 0; t < 4 && 2 * t < columns; t++) {
            float m[WINO_POINTS], y[2][2];
            for (int xi = 0; xi < WINO_POINTS; xi++) m[xi] = s->m[xi * mstride + ol * J->tpad + idx + t];
            output_tile_base(m, b, y);
            for (long j = 0; j < 2 && 2 * t + j < columns; j++) {
                first[2 * t + j] = y[0][j];
                if (second) second[2 * t + j] = y[1][j];
            }
        }
    }
}

#if defined(__x86_64__)
/// Columns 0, 2, 4, 6 and 1, 3, 5, 7 of a row of group a (low half) and of group b (high half).
WK_AVX2 static inline void split_avx2(const float *a, const float *b, __m256 *even, __m256 *odd) {
    const __m256 x = _mm256_loadu_ps(a), y = _mm256_loadu_ps(b);
    const __m256 lo = _mm256_permute2f128_ps(x, y, 0x20), hi = _mm256_permute2f128_ps(x, y, 0x31);
    *even = _mm256_shuffle_ps(lo, hi, 0x88);
    *odd = _mm256_shuffle_ps(lo, hi, 0xDD);
}

/// The input transform of 8 tiles at once: two groups of 4, one per half of each vector.
WK_AVX2 static void input_tiles_avx2(const wino_job *J, const wino_scratch *s, long image0, long ty0, long tiles) {
    const long rw = J->rw;
    for (long idx = 0; idx < tiles; idx += 8) {
        const wino_group ga = group_at(J, s, image0, ty0, idx);
        // Past the block's last tile the second half repeats the first; it is never stored.
        const wino_group gb = idx + 4 < tiles ? group_at(J, s, image0, ty0, idx + 4) : ga;
        float *to = v_tiles(J, s, idx);
        const long NR = J->g.nr, vstride = J->cin * J->tpad;
        for (long c = 0; c < J->cin; c++, to += NR) {
            const float *pa = ga.in + c * J->plane, *pb = gb.in + c * J->plane;
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

/// Two output rows of a group: 8 columns each, fewer where the image ends.
WK_AVX2 static inline void store_group_avx2(const wino_job *J, const wino_group *g, long o, __m256 r0, __m256 r1) {
    float *second;
    long columns;
    float *first = output_rows(J, g, o, &second, &columns);
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
WK_AVX2 static void output_tiles_avx2(const wino_job *J, const wino_scratch *s, long image0, long ty0, long tiles, long o,
                                      long ol) {
    const __m256 b = _mm256_set1_ps(J->d->bias ? J->d->bias[o * J->d->bias_stride] : 0.0f);
    const long mstride = J->cchunk * J->tpad;
    const float *m = s->m + ol * J->tpad;
    for (long idx = 0; idx < tiles; idx += 8) {
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
        const wino_group ga = group_at(J, s, image0, ty0, idx);
        store_group_avx2(J, &ga, o, _mm256_permute2f128_ps(lo0, hi0, 0x20), _mm256_permute2f128_ps(lo1, hi1, 0x20));
        if (idx + 4 < tiles) {
            const wino_group gb = group_at(J, s, image0, ty0, idx + 4);
            store_group_avx2(J, &gb, o, _mm256_permute2f128_ps(lo0, hi0, 0x31), _mm256_permute2f128_ps(lo1, hi1, 0x31));
        }
    }
}
#endif

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

typedef void (*wino_input_fn)(const wino_job *, const wino_scratch *, long, long, long);
typedef void (*wino_output_fn)(const wino_job *, const wino_scratch *, long, long, long, long, long);

/// One block: its inputs into the region and V, then per chunk of output channels the 16
/// GEMMs into M and the outputs.
static inline __attribute__((always_inline)) void run_block(const wino_job *J, const wino_scratch *s, long block,
                                                             wino_input_fn input, wino_output_fn output) {
    long image0, ty0, rows;
    block_rows(J, block, &image0, &ty0, &rows);
    const long tiles = rows * J->twp, panels = ceil_div(tiles, J->g.nr);
    const int MR = J->g.mr, NR = J->g.nr;
    fill_region(J, s, image0, ty0, J->by_images ? rows / J->th : 1);
    input(J, s, image0, ty0, tiles);
    const long vstride = J->cin * J->tpad, ustride = J->cin * J->mpad, mstride = J->cchunk * J->tpad;
    for (long co = 0; co < J->cout; co += J->cchunk) {
        const long chunk_end = co + J->cchunk < J->cout ? co + J->cchunk : J->cout;
        for (int xi = 0; xi < WINO_POINTS; xi++) {
            const float *u = J->u + xi * ustride, *v = s->v + xi * vstride;
            float *m = s->m + xi * mstride;
            for (long q = 0; q < panels; q++) {
                const long nc = tiles - q * NR < NR ? tiles - q * NR : NR;
                for (long ir = co; ir < chunk_end; ir += MR) {
                    const long mr = chunk_end - ir < MR ? chunk_end - ir : MR;
                    for (long p0 = 0; p0 < J->cin; p0 += J->kcb) {
                        const long kcs = J->cin - p0 < J->kcb ? J->cin - p0 : J->kcb;
                        J->g.kernel(kcs, u + p0 * J->mpad + ir * kcs, v + q * J->cin * NR + p0 * NR,
                                    m + (ir - co) * J->tpad + q * NR, J->tpad, p0 > 0, mr, nc);
                    }
                }
            }
        }
        for (long o = co; o < chunk_end; o++) output(J, s, image0, ty0, tiles, o, o - co);
    }
}

static void run_block_base(const wino_job *J, const wino_scratch *s, long block) {
    run_block(J, s, block, input_tiles_base, output_tiles_base);
}
#if defined(__x86_64__)
WK_AVX2 static void run_block_avx2(const wino_job *J, const wino_scratch *s, long block) {
    run_block(J, s, block, input_tiles_avx2, output_tiles_avx2);
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
#if defined(__x86_64__)
    void (*block_fn)(const wino_job *, const wino_scratch *, long) =
        J->level >= WK_ISA_AVX2 ? run_block_avx2 : run_block_base;
#else
    void (*block_fn)(const wino_job *, const wino_scratch *, long) = run_block_base;
#endif
    for (long b; (b = __atomic_fetch_add(&J->next, 1, __ATOMIC_RELAXED)) < J->blocks;) {
        block_fn(J, &s, b);
        if (!J->after) continue;
        long image0, ty0, rows;
        block_rows(J, b, &image0, &ty0, &rows);
        if (J->by_images) {
            J->after(J->ctx, image0, image0 + rows / J->th, 0, J->cout, 0, d->ho * d->wo);
        } else {
            const long y1 = 2 * (ty0 + rows) < d->ho ? 2 * (ty0 + rows) : d->ho;
            J->after(J->ctx, image0, image0 + 1, 0, J->cout, 2 * ty0 * d->wo, y1 * d->wo);
        }
    }
    free_scratch(&s);
}

/// Of 1...most, the count whose tiles waste the least of their NR-wide panels (the larger on a tie).
static long least_waste(long most, long tiles_each, long nr) {
    long best = 1;
    double best_used = 0;
    for (long k = 1; k <= most; k++) {
        const double used = (double)(k * tiles_each) / (double)round_up(k * tiles_each, nr);
        if (used >= best_used) {
            best = k;
            best_used = used;
        }
    }
    return best;
}

int wk_conv_winograd(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx) {
    if (!wk_conv_winograd_applies(d)) return -2;
    wino_job J = {.d = d, .after = after, .ctx = ctx};
    J.level = wk_isa_level();
    J.g = wk_sgemm_geometry_for(J.level);
    J.cin = d->channels;
    J.cout = d->out_per_group;
    J.th = ceil_div(d->ho, 2);
    J.tw = ceil_div(d->wo, 2);
    J.twp = round_up(J.tw, 4);
    J.rw = 2 * J.twp + 2;
    workers = workers < 1 ? 1 : workers;
    J.kcb = wk_sgemm_k_block(J.cin, J.g.kc);
    J.mpad = round_up(J.cout, J.g.mr);
    J.cchunk = J.mpad <= 8 * J.g.mr ? J.mpad : 4 * J.g.mr;
    // A block's V and M in about 384 KB of L2.
    const long budget = 96 * 1024 / (WINO_POINTS * (J.cin + J.cchunk));
    const long per_image = J.th * J.twp;
    if (per_image <= budget) {
        J.by_images = 1;
        long most = budget / per_image;
        // Enough blocks for every worker twice over.
        const long spread = ceil_div(d->images, 2 * workers);
        if (most > spread) most = spread;
        J.per_block = least_waste(most < 1 ? 1 : most, per_image, J.g.nr);
        J.blocks = ceil_div(d->images, J.per_block);
        J.tpad = round_up(J.per_block * per_image, J.g.nr);
    } else {
        long most = budget / J.twp;
        const long spread = ceil_div(d->images * J.th, 2 * workers);
        if (most > spread) most = spread;
        J.per_block = least_waste(most < 1 ? 1 : most, J.twp, J.g.nr);
        J.row_blocks = ceil_div(J.th, J.per_block);
        J.blocks = d->images * J.row_blocks;
        J.tpad = round_up(J.per_block * J.twp, J.g.nr);
    }
    J.prows = 2 * (J.by_images ? J.th : J.per_block) + 2;
    J.plane = J.prows * J.rw;
    // The 8-float loads of a tile row's last group reach at most 2·twp + 2 floats past its start.
    J.region_size = (J.by_images ? J.per_block : 1) * J.cin * J.plane + 8;
    if (posix_memalign((void **)&J.u, 64, (size_t)(WINO_POINTS * J.cin * J.mpad) * sizeof(float)) != 0) return -1;
    transform_weights(&J);
    wk_pool_run(workers < J.blocks ? workers : J.blocks, wino_task, &J);
    free(J.u);
    return J.failed ? -1 : 0;
}
