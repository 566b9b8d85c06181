#include "../gemm/sgemm_internal.h"
#include <stdlib.h>

// Convolution as a GEMM whose patch matrix is never written out (implicit GEMM): for each
// image and channel group, out[oc, pos] = Σ_k W[oc, k] · patch[k, pos], k = (c, ky, kx). The
// weights are the A operand, packed once into MR-row panels for every image; the patch matrix
// is the B operand, and its kc x NR panels are packed straight from the image (or, with
// padding, from a zero-bordered copy of the rows an item's windows touch, so that packing is
// plain copies with no edge tests: those tests were twice the micro-kernel's time on 8 x 8
// images). A patch matrix materialised in memory (im2col) is K / (kh·kw) times the
// image: for a 3x3 convolution over [8, 64, 56, 56], 58 MB written and read back per call.
//
// Work is dealt out as (image, group, chunk of positions); each item starts from the bias,
// accumulates its k blocks, and is handed to `after` while it is in this core's cache.

typedef struct {
    const wk_conv_desc *d;
    wk_sgemm_geometry g;
    long K, kcb, positions, mpad, og;
    /// Panels span images: columns are (image, position) pairs, chunk of them per item.
    int spanning;
    /// The level allows 8-float moves (AVX2) when packing.
    int wide_moves;
    float *apacked;
    long chunk, chunks, items, workers;
    /// Sources (see below): their strides, the padded copy's floats per image (0: none), the
    /// output rows one copy covers, and k's offsets.
    long scol, srow, splane, region_size, region_out_rows;
    long *offsets;
    /// The next item not yet taken, and how many a worker takes at once.
    long next, grab;
    wk_conv_tile_fn after;
    void *ctx;
    int failed;
} conv_job;


static void pack_weights(conv_job *J) {
    const wk_conv_desc *d = J->d;
    const int MR = J->g.mr;
    for (long grp = 0; grp < d->groups; grp++) {
        float *base = J->apacked + grp * J->K * J->mpad;
        for (long p0 = 0; p0 < J->K; p0 += J->kcb) {
            const long kcs = J->K - p0 < J->kcb ? J->K - p0 : J->kcb;
            for (long ir = 0; ir < J->mpad; ir += MR) {
                float *dst = base + p0 * J->mpad + ir * kcs;
                for (long p = 0; p < kcs; p++) {
                    for (long i = 0; i < MR; i++) {
                        const long row = ir + i;
                        dst[p * MR + i] = row < J->og ? d->weights[(grp * J->og + row) * d->wrs + (p0 + p) * d->wcs] : 0.0f;
                    }
                }
            }
        }
    }
}

/// Where patches are read from: a region in which every window read is in bounds, so packing
/// checks no edge. Without padding that is the image itself; with it, a copy of the input rows
/// an item's windows touch, zero where they hang over the image. Element (c, r, q) of the
/// region, input row row0 + r and column col0 + q, is at base[c*plane + r*row + q*col]; the
/// strides are the same for every source of a job, so one table of k's offsets serves all.
typedef struct {
    const float *base;
    long row0, col0;
} source;

/// Output rows an item of `chunk` consecutive positions can touch, at most.
static long rows_spanned(const wk_conv_desc *d, long chunk) {
    const long rows = (chunk + 2 * d->wo - 2) / d->wo;
    return rows < d->ho ? rows : d->ho;
}

static int padded(const wk_conv_desc *d) { return d->ph != 0 || d->pw != 0; }
static long region_cols(const wk_conv_desc *d) { return (d->wo - 1) * d->sw + (d->kw - 1) * d->dw + 1; }
static long region_rows(const wk_conv_desc *d, long out_rows) { return (out_rows - 1) * d->sh + (d->kh - 1) * d->dh + 1; }

/// The job's source strides and the offset of each k = (c, ky, kx) from a window's corner.
static int prepare_sources(conv_job *J) {
    const wk_conv_desc *d = J->d;
    if (padded(d)) {
        J->scol = 1;
        J->srow = region_cols(d);
        J->splane = region_rows(d, J->region_out_rows) * J->srow;
        J->region_size = d->channels * J->splane;
    } else {
        J->scol = d->xw;
        J->srow = d->xh;
        J->splane = d->xc;
        J->region_size = 0;
    }
    J->offsets = malloc((size_t)J->K * sizeof(long));
    if (J->offsets == NULL) return -1;
    for (long k = 0, window = d->kh * d->kw; k < J->K; k++) {
        const long c = k / window, ky = k % window / d->kw, kx = k % d->kw;
        J->offsets[k] = c * J->splane + ky * d->dh * J->srow + kx * d->dw * J->scol;
    }
    return 0;
}

/// `count` scratch regions for source_for, end to end, all zeros: the columns left and right
/// of the image (the same for every source of a job) are never written again. None (NULL)
/// when the job reads the image itself. 0 on success.
static int new_regions(const conv_job *J, long count, float **regions) {
    *regions = NULL;
    if (J->region_size == 0) return 0;
    const size_t bytes = (size_t)(count * J->region_size) * sizeof(float);
    if (posix_memalign((void **)regions, 64, bytes) != 0) return -1;
    memset(*regions, 0, bytes);
    return 0;
}

/// The source for output rows [oy0, oy1] of `image` (one group's channels), copied into
/// `scratch` (a new_region) when the windows reach the padding. Rows above and below the
/// image are zeroed each time (another item's rows may have been there); of the others only
/// the image's columns are written.
static source source_for(const conv_job *J, const float *image, long oy0, long oy1, float *scratch) {
    const wk_conv_desc *d = J->d;
    if (!padded(d)) return (source){image, 0, 0};
    const long row0 = oy0 * d->sh - d->ph, col0 = -d->pw;
    const long rows = region_rows(d, oy1 - oy0 + 1), cols = J->srow;
    // The columns [lo, hi) of a region row that lie in the image.
    const long lo = -col0 < cols ? -col0 : cols, hi = d->w - col0 < cols ? d->w - col0 : cols;
    for (long c = 0; c < d->channels; c++) {
        const float *plane = image + c * d->xc;
        float *dst = scratch + c * J->splane;
        for (long r = 0; r < rows; r++, dst += cols) {
            const long iy = row0 + r;
            if (iy < 0 || iy >= d->h || hi <= lo) {
                for (long q = 0; q < cols; q++) dst[q] = 0;
                continue;
            }
            wk_copy_floats(dst + lo, plane + iy * d->xh + (lo + col0) * d->xw, hi - lo, d->xw);
        }
    }
    return (source){scratch, row0, col0};
}

/// Row p of a panel's run of `len` columns: len floats from from + offsets[p], contiguous.
/// Explicit 4-float moves, not memcpy or a loop the compiler guards against overlap: runs are
/// a few floats (8 for an 8 x 8 image), and the call or the guards cost more than the copy.
static void copy_run(const float *from, const long *offsets, long kcs, float *to, long ldto, long len) {
    for (long p = 0; p < kcs; p++, to += ldto) {
        const float *src = from + offsets[p];
        long j = 0;
#if defined(__x86_64__)
        for (; j + 4 <= len; j += 4) _mm_storeu_ps(to + j, _mm_loadu_ps(src + j));
#endif
        for (; j < len; j++) to[j] = src[j];
    }
}

#if defined(__x86_64__)
/// copy_run with 8-float moves: packing is bound by stores, and these halve them. A run of
/// exactly 8 (an 8-wide output row, the digits CNN's) is one load and one store a row.
WK_AVX2 static void copy_run_avx2(const float *from, const long *offsets, long kcs, float *to, long ldto, long len) {
    if (len == 8) {
        long p = 0;
        for (; p + 4 <= kcs; p += 4, to += 4 * ldto) {
            const __m256 r0 = _mm256_loadu_ps(from + offsets[p]), r1 = _mm256_loadu_ps(from + offsets[p + 1]);
            const __m256 r2 = _mm256_loadu_ps(from + offsets[p + 2]), r3 = _mm256_loadu_ps(from + offsets[p + 3]);
            _mm256_storeu_ps(to, r0);
            _mm256_storeu_ps(to + ldto, r1);
            _mm256_storeu_ps(to + 2 * ldto, r2);
            _mm256_storeu_ps(to + 3 * ldto, r3);
        }
        for (; p < kcs; p++, to += ldto) _mm256_storeu_ps(to, _mm256_loadu_ps(from + offsets[p]));
        return;
    }
    for (long p = 0; p < kcs; p++, to += ldto) {
        const float *src = from + offsets[p];
        long j = 0;
        for (; j + 8 <= len; j += 8) _mm256_storeu_ps(to + j, _mm256_loadu_ps(src + j));
        if (j + 4 <= len) {
            _mm_storeu_ps(to + j, _mm_loadu_ps(src + j));
            j += 4;
        }
        for (; j < len; j++) to[j] = src[j];
    }
}
#endif

/// Packs patch columns [j0, j0 + nc) (positions of one image), rows [p0, p0 + kcs), into the
/// panel at dst: row p at dst + p·NR, these columns first. Columns past them are not written.
/// The columns are cut into runs that lie in one output row; each run is packed for all rows.
static void pack_columns(const conv_job *J, const source *s, long p0, long kcs, long j0, long nc, float *dst) {
    const wk_conv_desc *d = J->d;
    const int NR = J->g.nr;
    const long *offsets = J->offsets + p0, step = d->sw * J->scol;
    for (long jj = 0; jj < nc;) {
        const long pos = j0 + jj, oy = pos / d->wo, ox = pos % d->wo;
        const long len = d->wo - ox < nc - jj ? d->wo - ox : nc - jj;
        const float *from = s->base + (oy * d->sh - d->ph - s->row0) * J->srow + (ox * d->sw - d->pw - s->col0) * J->scol;
        if (step == 1) {
#if defined(__x86_64__)
            if (J->wide_moves) {
                copy_run_avx2(from, offsets, kcs, dst + jj, NR, len);
                jj += len;
                continue;
            }
#endif
            copy_run(from, offsets, kcs, dst + jj, NR, len);
        } else {
            for (long p = 0; p < kcs; p++) {
                const float *src = from + offsets[p];
                for (long j = 0; j < len; j++) dst[p * NR + jj + j] = src[j * step];
            }
        }
        jj += len;
    }
}

/// Zeros columns [nc, NR) of a panel's kcs rows: the micro-kernel reads whole panels.
static void zero_tail(const conv_job *J, long kcs, long nc, float *dst) {
    const int NR = J->g.nr;
    for (long p = 0; p < kcs; p++, dst += NR) {
        for (long jj = nc; jj < NR; jj++) dst[jj] = 0;
    }
}

/// The panel of patch columns [j0, j0 + nc) of one image, rows [p0, p0 + kcs).
static void pack_patches(const conv_job *J, const source *s, long p0, long kcs, long j0, long nc, float *dst) {
    pack_columns(J, s, p0, kcs, j0, nc, dst);
    zero_tail(J, kcs, nc, dst);
}

/// The next `grab` items for a worker, [*t0, *t1), or 0 when none are left. Items are taken as
/// the workers get to them, not dealt out beforehand: the halves of a static split finished
/// apart by a tenth of the call on this machine's shared cores.
static int take_items(conv_job *J, long *t0, long *t1) {
    *t0 = __atomic_fetch_add(&J->next, J->grab, __ATOMIC_RELAXED);
    if (*t0 >= J->items) return 0;
    *t1 = *t0 + J->grab < J->items ? *t0 + J->grab : J->items;
    return 1;
}

/// One item: positions [pos0, pos1) of one image and group, every k block, into the output.
/// Each B panel is packed and at once multiplied by every A panel, while it is in L1.
static void conv_item(const conv_job *J, long image, long grp, long pos0, long pos1, float *panel, float *region) {
    const wk_conv_desc *d = J->d;
    const int MR = J->g.mr, NR = J->g.nr;
    const long ldc = J->positions, channels = d->groups * J->og;
    const long ncols = pos1 - pos0, panels = wk_ceil_div(ncols, NR), ch0 = grp * J->og;
    float *c = d->out + (image * channels + ch0) * ldc + pos0;
    if (d->bias) {
        for (long i = 0; i < J->og; i++) {
            const float b = d->bias[(ch0 + i) * d->bias_stride];
            for (long j = 0; j < ncols; j++) c[i * ldc + j] = b;
        }
    }
    const float *img = d->x + image * d->xn + grp * d->channels * d->xc;
    const source src = source_for(J, img, pos0 / d->wo, (pos1 - 1) / d->wo, region);
    const float *weights = J->apacked + grp * J->K * J->mpad;
    for (long p0 = 0; p0 < J->K; p0 += J->kcb) {
        const long kcs = J->K - p0 < J->kcb ? J->K - p0 : J->kcb;
        const int onto = d->bias != NULL || p0 > 0;
        for (long q = 0; q < panels; q++) {
            const long nc = ncols - q * NR < NR ? ncols - q * NR : NR;
            pack_patches(J, &src, p0, kcs, pos0 + q * NR, nc, panel);
            for (long ir = 0; ir < J->og; ir += MR) {
                const long mr = J->og - ir < MR ? J->og - ir : MR;
                J->g.kernel(kcs, weights + p0 * J->mpad + ir * kcs, panel, c + ir * ldc + q * NR, ldc, onto, mr, nc);
            }
        }
    }
}

static void conv_task(void *ctx, long index) {
    (void)index;
    conv_job *J = ctx;
    const wk_conv_desc *d = J->d;
    float *panel = NULL, *region = NULL;
    if (posix_memalign((void **)&panel, 64, (size_t)J->kcb * (size_t)J->g.nr * sizeof(float)) != 0 ||
        new_regions(J, 1, &region) != 0) {
        free(panel);
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (long t0, t1; take_items(J, &t0, &t1);) {
        for (long t = t0; t < t1; t++) {
            const long image = t / (d->groups * J->chunks), grp = t / J->chunks % d->groups, chunk = t % J->chunks;
            const long pos0 = chunk * J->chunk, pos1 = pos0 + J->chunk < J->positions ? pos0 + J->chunk : J->positions;
            conv_item(J, image, grp, pos0, pos1, panel, region);
            // Whole images (one group, one chunk each) go to `after` together, once per grab.
            if (J->after && J->grab == 1) J->after(J->ctx, image, image + 1, grp * J->og, (grp + 1) * J->og, pos0, pos1);
        }
        if (J->after && J->grab > 1) J->after(J->ctx, t0, t1, 0, J->og, 0, J->positions);
    }
    free(panel);
    free(region);
}

/// The run of columns from `column` (an index over every image's positions end to end) that
/// lies in one image, at most `left` long: its length, with the image and its first position.
static long image_segment(const conv_job *J, long column, long left, long *image, long *pos) {
    *image = column / J->positions;
    *pos = column % J->positions;
    return J->positions - *pos < left ? J->positions - *pos : left;
}

/// Many small images (the digits CNN's 8 x 8, 64 positions against AVX-512's 48-column
/// panels, which one image filled to 64 of 96 columns): the columns of every image are laid end
/// to end, so panels span images and none is padded but the last. The output of an item goes
/// to a tile first (its columns are not one run of any output row) and is then copied into
/// each image's rows, where `after` sees it.
static void conv_task_spanning(void *ctx, long index) {
    (void)index;
    conv_job *J = ctx;
    const wk_conv_desc *d = J->d;
    const int MR = J->g.mr, NR = J->g.nr;
    const long chunk = J->chunk, total = d->images * J->positions;
    // Every image an item touches gets its source once, for all of K's blocks.
    const long spanned = chunk / J->positions + 2, region_size = J->region_size;
    float *scratch = NULL, *tile = NULL, *region = NULL;
    source *sources = malloc((size_t)spanned * sizeof(source));
    if (sources == NULL || posix_memalign((void **)&scratch, 64, (size_t)J->kcb * (size_t)NR * sizeof(float)) != 0 ||
        posix_memalign((void **)&tile, 64, (size_t)J->mpad * (size_t)chunk * sizeof(float)) != 0 ||
        new_regions(J, spanned, &region) != 0) {
        free(sources);
        free(scratch);
        free(tile);
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (long t, t1; take_items(J, &t, &t1);) {
        const long col0 = t * chunk, ncols = total - col0 < chunk ? total - col0 : chunk;
        const long panels = wk_ceil_div(ncols, NR), first_image = col0 / J->positions;
        for (long i = 0, last = (col0 + ncols - 1) / J->positions; first_image + i <= last; i++) {
            sources[i] = source_for(J, d->x + (first_image + i) * d->xn, 0, d->ho - 1, region ? region + i * region_size : NULL);
        }
        for (long i = 0; i < J->og; i++) {
            const float b = d->bias ? d->bias[i * d->bias_stride] : 0.0f;
            for (long j = 0; j < ncols; j++) tile[i * chunk + j] = b;
        }
        for (long p0 = 0; p0 < J->K; p0 += J->kcb) {
            const long kcs = J->K - p0 < J->kcb ? J->K - p0 : J->kcb;
            for (long q = 0; q < panels; q++) {
                const long first = col0 + q * NR, nc = ncols - q * NR < NR ? ncols - q * NR : NR;
                for (long done = 0, image, pos, count; done < nc; done += count) {
                    count = image_segment(J, first + done, nc - done, &image, &pos);
                    pack_columns(J, &sources[image - first_image], p0, kcs, pos, count, scratch + done);
                }
                zero_tail(J, kcs, nc, scratch);
                for (long ir = 0; ir < J->og; ir += MR) {
                    const long mr = J->og - ir < MR ? J->og - ir : MR;
                    J->g.kernel(kcs, J->apacked + p0 * J->mpad + ir * kcs, scratch, tile + ir * chunk + q * NR, chunk, 1, mr, nc);
                }
            }
        }
        for (long done = 0, image, pos, count; done < ncols; done += count) {
            count = image_segment(J, col0 + done, ncols - done, &image, &pos);
            for (long i = 0; i < J->og; i++) {
                float *row = d->out + (image * J->og + i) * J->positions + pos;
                const float *src = tile + i * chunk + done;
                for (long j = 0; j < count; j++) row[j] = src[j];
            }
            if (J->after) J->after(J->ctx, image, image + 1, 0, J->og, pos, pos + count);
        }
    }
    free(sources);
    free(scratch);
    free(tile);
    free(region);
}

int wk_conv_gemm(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx) {
    // A fused relu is for Winograd (with its pooling) and the direct kernel; pooling is Winograd's.
    if (d->relu || d->pool_out) return -2;
    conv_job J = {.d = d, .after = after, .ctx = ctx};
    J.g = wk_sgemm_geometry_for(wk_isa_level());
    J.wide_moves = wk_isa_level() >= WK_ISA_AVX2;
    J.K = d->channels * d->kh * d->kw;
    J.og = d->out_per_group;
    J.positions = d->ho * d->wo;
    if (d->images <= 0 || J.og <= 0 || J.positions <= 0) return 0;
    J.workers = workers < 1 ? 1 : workers;
    J.kcb = wk_sgemm_k_block(J.K, J.g.kc);
    J.mpad = wk_round_up(J.og, J.g.mr);
    // Enough items for every worker twice over; no chunk wider than 10 panels, so that its
    // packed patches (kc x chunk) stay in L2.
    const long per_image = d->images * d->groups;
    long chunks = per_image >= 2 * J.workers ? 1 : wk_ceil_div(2 * J.workers, per_image);
    long chunk = wk_round_up(wk_ceil_div(J.positions, chunks), J.g.nr);
    if (chunk > 10 * J.g.nr) chunk = 10 * J.g.nr;
    J.chunk = chunk;
    J.chunks = wk_ceil_div(J.positions, chunk);
    J.items = per_image * J.chunks;
    if (J.K == 0) {
        // No window at all: the output is the bias.
        for (long image = 0; image < d->images; image++) {
            for (long ch = 0; ch < d->groups * J.og; ch++) {
                float *row = d->out + (image * d->groups * J.og + ch) * J.positions;
                for (long j = 0; j < J.positions; j++) row[j] = d->bias ? d->bias[ch * d->bias_stride] : 0.0f;
            }
        }
        for (long t = 0; t < J.items && after; t++) {
            const long image = t / (d->groups * J.chunks), grp = t / J.chunks % d->groups, chunk_index = t % J.chunks;
            const long pos0 = chunk_index * chunk, pos1 = pos0 + chunk < J.positions ? pos0 + chunk : J.positions;
            after(ctx, image, image + 1, grp * J.og, (grp + 1) * J.og, pos0, pos1);
        }
        return 0;
    }
    // Spanning pays where one image leaves a panel partly empty and images are many.
    const long total = d->images * J.positions;
    J.spanning = d->groups == 1 && J.positions % J.g.nr != 0 && J.positions < 4 * J.g.nr && total >= 2 * J.g.nr;
    if (J.spanning) {
        J.chunk = 10 * J.g.nr;
        J.items = wk_ceil_div(total, J.chunk);
    }
    J.region_out_rows = J.spanning ? d->ho : rows_spanned(d, J.chunk);
    // Whole small images are taken several at a time, so that `after` (an epilogue run by the
    // caller, with its own per-call cost) sees a few images at once: about 8192 values (32 KB) of output.
    J.grab = 1;
    if (!J.spanning && J.chunks == 1 && d->groups == 1) {
        const long by_size = 8192 / (J.og * J.positions), by_count = d->images / (4 * J.workers);
        J.grab = by_size < by_count ? by_size : by_count;
        if (J.grab < 1) J.grab = 1;
    }
    if (prepare_sources(&J) != 0) return -1;
    if (posix_memalign((void **)&J.apacked, 64, (size_t)d->groups * (size_t)J.K * (size_t)J.mpad * sizeof(float)) != 0) {
        free(J.offsets);
        return -1;
    }
    pack_weights(&J);
    wk_pool_run(J.workers < J.items ? J.workers : J.items, J.spanning ? conv_task_spanning : conv_task, &J);
    free(J.apacked);
    free(J.offsets);
    return J.failed ? -1 : 0;
}
