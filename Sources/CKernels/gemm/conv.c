#include "sgemm_internal.h"
#include <stdlib.h>

// Convolution as a GEMM whose patch matrix is never written out (implicit GEMM): for each
// image and channel group, out[oc, pos] = Σ_k W[oc, k] · patch[k, pos], k = (c, ky, kx). The
// weights are the A operand, packed once into MR-row panels for every image; the patch matrix
// is the B operand, and its kc x NR panels are packed straight from the image, zeros where the
// window leaves it. A patch matrix materialised in memory (im2col) is K / (kh·kw) times the
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
    float *apacked;
    long chunk, chunks, items, workers;
    wk_conv_tile_fn after;
    void *ctx;
    int failed;
} conv_job;

static long ceil_div(long a, long b) { return (a + b - 1) / b; }
static long round_up(long a, long b) { return ceil_div(a, b) * b; }

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

/// Columns of one panel that lie in one output row: panel columns [start, end) are positions
/// of output row oy, starting at column ox.
typedef struct { long start, end, oy, ox; } run;

/// Packs patch columns [j0, j0 + nc) (positions of one image), rows [p0, p0 + kcs), into the
/// panel at dst: row p at dst + p·NR, these columns first. Columns past them are not written.
static void pack_columns(const conv_job *J, const float *image, long p0, long kcs, long j0, long nc, float *dst) {
    const wk_conv_desc *d = J->d;
    const int NR = J->g.nr;
    run runs[64];
    long count = 0;
    for (long jj = 0; jj < nc;) {
        const long pos = j0 + jj, oy = pos / d->wo, ox = pos % d->wo;
        long len = d->wo - ox;
        if (len > nc - jj) len = nc - jj;
        runs[count++] = (run){jj, jj + len, oy, ox};
        jj += len;
    }
    const long window = d->kh * d->kw;
    long c = p0 / window, r = p0 % window, ky = r / d->kw, kx = r % d->kw;
    for (long p = 0; p < kcs; p++, dst += NR) {
        const float *plane = image + c * d->xc;
        const long dy = ky * d->dh - d->ph, dx = kx * d->dw - d->pw;
        for (long q = 0; q < count; q++) {
            const run u = runs[q];
            const long iy = u.oy * d->sh + dy;
            if (iy < 0 || iy >= d->h) {
                for (long jj = u.start; jj < u.end; jj++) dst[jj] = 0;
                continue;
            }
            const float *row = plane + iy * d->xh;
            long ix = u.ox * d->sw + dx;
            if (d->sw == 1 && d->xw == 1) {
                // Contiguous along the row: zeros where the window hangs over either edge.
                long jj = u.start;
                for (; jj < u.end && ix < 0; jj++, ix++) dst[jj] = 0;
                long stop = u.end;
                if (stop - jj > d->w - ix) stop = jj + (d->w - ix > 0 ? d->w - ix : 0);
                // A loop, not memcpy: runs are at most NR floats, and the call cost 11% of a
                // 3x3 convolution's time.
                const float *src = row + ix - jj;
                for (; jj < stop; jj++) dst[jj] = src[jj];
                for (jj = stop; jj < u.end; jj++) dst[jj] = 0;
            } else {
                for (long jj = u.start; jj < u.end; jj++, ix += d->sw) dst[jj] = ix >= 0 && ix < d->w ? row[ix * d->xw] : 0.0f;
            }
        }
        if (++kx == d->kw) {
            kx = 0;
            if (++ky == d->kh) { ky = 0; c++; }
        }
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
static void pack_patches(const conv_job *J, const float *image, long p0, long kcs, long j0, long nc, float *dst) {
    pack_columns(J, image, p0, kcs, j0, nc, dst);
    zero_tail(J, kcs, nc, dst);
}

static void conv_task(void *ctx, long index) {
    conv_job *J = ctx;
    const wk_conv_desc *d = J->d;
    const long t0 = J->items * index / J->workers, t1 = J->items * (index + 1) / J->workers;
    if (t0 >= t1) return;
    const int MR = J->g.mr, NR = J->g.nr;
    float *scratch = NULL;
    if (posix_memalign((void **)&scratch, 64, (size_t)J->kcb * (size_t)round_up(J->chunk, NR) * sizeof(float)) != 0) {
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    const long ldc = J->positions, channels = d->groups * J->og;
    for (long t = t0; t < t1; t++) {
        const long image = t / (d->groups * J->chunks), grp = t / J->chunks % d->groups, chunk = t % J->chunks;
        const long pos0 = chunk * J->chunk, pos1 = pos0 + J->chunk < J->positions ? pos0 + J->chunk : J->positions;
        const long ncols = pos1 - pos0, panels = ceil_div(ncols, NR);
        const long ch0 = grp * J->og;
        float *c = d->out + (image * channels + ch0) * ldc + pos0;
        if (d->bias) {
            for (long i = 0; i < J->og; i++) {
                const float b = d->bias[(ch0 + i) * d->bias_stride];
                for (long j = 0; j < ncols; j++) c[i * ldc + j] = b;
            }
        }
        const float *img = d->x + image * d->xn + grp * d->channels * d->xc;
        const float *weights = J->apacked + grp * J->K * J->mpad;
        for (long p0 = 0; p0 < J->K; p0 += J->kcb) {
            const long kcs = J->K - p0 < J->kcb ? J->K - p0 : J->kcb;
            for (long q = 0; q < panels; q++) {
                const long nc = ncols - q * NR < NR ? ncols - q * NR : NR;
                pack_patches(J, img, p0, kcs, pos0 + q * NR, nc, scratch + q * NR * kcs);
            }
            const int onto = d->bias != NULL || p0 > 0;
            for (long q = 0; q < panels; q++) {
                const long nc = ncols - q * NR < NR ? ncols - q * NR : NR;
                for (long ir = 0; ir < J->og; ir += MR) {
                    const long mr = J->og - ir < MR ? J->og - ir : MR;
                    J->g.kernel(kcs, weights + p0 * J->mpad + ir * kcs, scratch + q * NR * kcs, c + ir * ldc + q * NR, ldc, onto,
                                mr, nc);
                }
            }
        }
        if (J->after) J->after(J->ctx, image, ch0, ch0 + J->og, pos0, pos1);
    }
    free(scratch);
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
    conv_job *J = ctx;
    const wk_conv_desc *d = J->d;
    const long t0 = J->items * index / J->workers, t1 = J->items * (index + 1) / J->workers;
    if (t0 >= t1) return;
    const int MR = J->g.mr, NR = J->g.nr;
    const long chunk = J->chunk, total = d->images * J->positions;
    float *scratch = NULL, *tile = NULL;
    if (posix_memalign((void **)&scratch, 64, (size_t)J->kcb * (size_t)chunk * sizeof(float)) != 0 ||
        posix_memalign((void **)&tile, 64, (size_t)J->mpad * (size_t)chunk * sizeof(float)) != 0) {
        free(scratch);
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (long t = t0; t < t1; t++) {
        const long col0 = t * chunk, ncols = total - col0 < chunk ? total - col0 : chunk;
        const long panels = ceil_div(ncols, NR);
        for (long i = 0; i < J->og; i++) {
            const float b = d->bias ? d->bias[i * d->bias_stride] : 0.0f;
            for (long j = 0; j < ncols; j++) tile[i * chunk + j] = b;
        }
        for (long p0 = 0; p0 < J->K; p0 += J->kcb) {
            const long kcs = J->K - p0 < J->kcb ? J->K - p0 : J->kcb;
            for (long q = 0; q < panels; q++) {
                const long first = col0 + q * NR, nc = ncols - q * NR < NR ? ncols - q * NR : NR;
                float *panel = scratch + q * NR * kcs;
                for (long done = 0, image, pos, count; done < nc; done += count) {
                    count = image_segment(J, first + done, nc - done, &image, &pos);
                    pack_columns(J, d->x + image * d->xn, p0, kcs, pos, count, panel + done);
                }
                zero_tail(J, kcs, nc, panel);
            }
            for (long q = 0; q < panels; q++) {
                const long nc = ncols - q * NR < NR ? ncols - q * NR : NR;
                for (long ir = 0; ir < J->og; ir += MR) {
                    const long mr = J->og - ir < MR ? J->og - ir : MR;
                    J->g.kernel(kcs, J->apacked + p0 * J->mpad + ir * kcs, scratch + q * NR * kcs, tile + ir * chunk + q * NR, chunk,
                                1, mr, nc);
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
            if (J->after) J->after(J->ctx, image, 0, J->og, pos, pos + count);
        }
    }
    free(scratch);
    free(tile);
}

int wk_conv_gemm(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx) {
    conv_job J = {.d = d, .after = after, .ctx = ctx};
    J.g = wk_sgemm_geometry_for(wk_isa_level());
    J.K = d->channels * d->kh * d->kw;
    J.og = d->out_per_group;
    J.positions = d->ho * d->wo;
    if (d->images <= 0 || J.og <= 0 || J.positions <= 0) return 0;
    J.workers = workers < 1 ? 1 : workers;
    J.kcb = wk_sgemm_k_block(J.K, J.g.kc);
    J.mpad = round_up(J.og, J.g.mr);
    // Enough items for every worker twice over; no chunk wider than 10 panels, so that its
    // packed patches (kc x chunk) stay in L2.
    const long per_image = d->images * d->groups;
    long chunks = per_image >= 2 * J.workers ? 1 : ceil_div(2 * J.workers, per_image);
    long chunk = round_up(ceil_div(J.positions, chunks), J.g.nr);
    if (chunk > 10 * J.g.nr) chunk = 10 * J.g.nr;
    J.chunk = chunk;
    J.chunks = ceil_div(J.positions, chunk);
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
            after(ctx, image, grp * J.og, (grp + 1) * J.og, pos0, pos1);
        }
        return 0;
    }
    // Spanning pays where one image leaves a panel partly empty and images are many.
    const long total = d->images * J.positions;
    J.spanning = d->groups == 1 && J.positions % J.g.nr != 0 && J.positions < 4 * J.g.nr && total >= 2 * J.g.nr;
    if (J.spanning) {
        J.chunk = 10 * J.g.nr;
        J.items = ceil_div(total, J.chunk);
    }
    if (posix_memalign((void **)&J.apacked, 64, (size_t)d->groups * (size_t)J.K * (size_t)J.mpad * sizeof(float)) != 0) return -1;
    pack_weights(&J);
    wk_pool_run(J.workers < J.items ? J.workers : J.items, J.spanning ? conv_task_spanning : conv_task, &J);
    free(J.apacked);
    return J.failed ? -1 : 0;
}
