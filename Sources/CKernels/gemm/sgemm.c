#include "sgemm_internal.h"
#include <stdlib.h>

// wpack's own single-precision GEMM, for every product too big for the few-rows kernel
// (few_rows.c): C (=, +=) A · B with A and B read through any pair of strides, so transposed
// and sliced operands need no copy of their own. BLIS's loops around a register-blocked
// micro-kernel:
//
//   B is packed once per call into kc x NR panels (all of it, shared by every worker);
//   C is cut into tiles of mc rows by a group of panels, taken by the workers one at a time;
//   per tile and k block, the tile's rows of A are packed into MR-row panels (in L2), and each
//   B panel (in L1) meets every A panel in the micro-kernel.
//
// A tile is finished (all k blocks) before the next starts, so the caller's epilogue runs on it
// while it is still in this core's cache (`after`), and an addend can be written under it
// first (`before`, then the products accumulate onto it).

wk_sgemm_geometry wk_sgemm_geometry_for(int level) {
#if defined(__x86_64__)
    // kc: a B panel (kc x NR) in L1 beside an A panel; mc x kc of A in L2.
    if (level >= WK_ISA_AVX512) {
        return (wk_sgemm_geometry){8, 48, 192, 192, wk_sgemm_microkernel_avx512, 16,
                                   {wk_sgemm_microkernel_avx512_16, wk_sgemm_microkernel_avx512_32}};
    }
    if (level >= WK_ISA_AVX2) return (wk_sgemm_geometry){6, 16, 192, 256, wk_sgemm_microkernel_avx2};
#endif
    return (wk_sgemm_geometry){4, 8, 128, 256, wk_sgemm_microkernel_base};
}


/// K is cut into blocks of equal size (a multiple of 8, at most about g.kc) so that no block
/// is a short remainder.
long wk_sgemm_k_block(long k, long kc) { return wk_round_up(wk_ceil_div(k, wk_ceil_div(k, kc)), 8); }

long wk_sgemm_panel_width(void) { return wk_sgemm_geometry_for(wk_isa_level()).nr; }

typedef struct {
    long m, n, k;
    const float *a;
    long rsa, csa;
    const float *b;
    long rsb, csb;
    float *c;
    long ldc;
    int accumulate;
    wk_sgemm_geometry g;
    long kcb, npad, panels;
    float *packed;
    long workers, mc, row_blocks, col_groups;
    wk_sgemm_tile_fn before, after;
    void *ctx;
    int failed;
    // B = Wᵀ for a coded W (wk_sgemm_coded): column j of B is row j of W.
    const unsigned char *w;
    long ldw_bytes;
    int code;
    // A WK_ACT_ precision other than float: the tiles multiply in integers (coded_int8.c),
    // straight from W's blocks, and nothing is packed.
    int int8;
    /// The next tile not yet taken: workers take tiles one at a time, so one that the host
    /// stalls (these are shared virtual machines) does not hold the others up at the end.
    long next;
} job;

/// Panel q's width: NR, or for a last panel of fewer columns the narrowest tail kernel's
/// width that holds them. Panel q starts at q·NR·kcs in every k block either way.
static inline int panel_width(const job *J, long q) {
    const long left = J->n - q * J->g.nr;
    if (left >= J->g.nr || J->g.tail_step == 0) return J->g.nr;
    return (int)wk_round_up(left, J->g.tail_step);
}

static inline wk_sgemm_microkernel panel_kernel(const job *J, int width) {
    return width == J->g.nr ? J->g.kernel : J->g.tails[width / J->g.tail_step - 1];
}

#if defined(__x86_64__)
/// A full panel's columns from the rows of a stored matrix (B = Wᵀ, each column of B
/// contiguous): 8 columns by 8 k at a time through the transpose, one 8-float store per k
/// and column group, where the element-by-element copy wrote one float at a time down the
/// panel. Returns the first k not packed (the rest, under 8, one by one).
WK_AVX2 static long pack_b_columns_avx2(const float *b, long csb, long kcs, int nr, float *dst) {
    long p = 0;
    for (; p + 8 <= kcs; p += 8) {
        for (int j0 = 0; j0 < nr; j0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(b + (j0 + i) * csb + p);
            wk_transpose8x8(r);
            for (int t = 0; t < 8; t++) _mm256_storeu_ps(dst + (p + t) * nr + j0, r[t]);
        }
    }
    return p;
}
#endif

static void pack_b_panel(const job *J, long p0, long kcs, long q) {
    const int width = panel_width(J, q);
    const long j = q * J->g.nr, r = J->n - j < width ? J->n - j : width;
    float *dst = J->packed + p0 * J->npad + q * J->g.nr * kcs;
    if (J->w) {
        float run[1024];
        for (long jj = 0; jj < r; jj++) {
            wk_decode(J->code, J->w + (j + jj) * J->ldw_bytes, p0, kcs, run);
            for (long p = 0; p < kcs; p++) dst[p * width + jj] = run[p];
        }
        for (long jj = r; jj < width; jj++) {
            for (long p = 0; p < kcs; p++) dst[p * width + jj] = 0;
        }
        return;
    }
    const float *b = J->b + p0 * J->rsb + j * J->csb;
    if (J->csb == 1) {
        for (long p = 0; p < kcs; p++) {
            memcpy(dst + p * width, b + p * J->rsb, (size_t)r * sizeof(float));
            for (long jj = r; jj < width; jj++) dst[p * width + jj] = 0;
        }
        return;
    }
    // Columns of B are rows of the stored matrix (a weight read as Wᵀ): read each along its
    // length, write it down the panel.
    long from = 0;
#if defined(__x86_64__)
    // AVX2's 16 and AVX-512's 16, 32 and 48 columns are whole groups of 8 (both levels have AVX2).
    if (J->rsb == 1 && r == width && width % 8 == 0 && width >= 16) from = pack_b_columns_avx2(b, J->csb, kcs, width, dst);
#endif
    for (long jj = 0; jj < r; jj++) {
        const float *src = b + jj * J->csb;
        for (long p = from; p < kcs; p++) dst[p * width + jj] = src[p * J->rsb];
    }
    for (long jj = r; jj < width; jj++) {
        for (long p = 0; p < kcs; p++) dst[p * width + jj] = 0;
    }
}

static void pack_b_task(void *ctx, long index) {
    const job *J = ctx;
    const long q0 = J->panels * index / J->workers, q1 = J->panels * (index + 1) / J->workers;
    for (long p0 = 0; p0 < J->k; p0 += J->kcb) {
        const long kcs = J->k - p0 < J->kcb ? J->k - p0 : J->kcb;
        for (long q = q0; q < q1; q++) pack_b_panel(J, p0, kcs, q);
    }
}

#if defined(__x86_64__)
/// A full micro-panel of MR = 6 or 8 contiguous rows, 8 columns of A at a time through an 8 x 8
/// transpose (the element-by-element copy was 8% of MiniLM 32 x 128's samples). With 6 rows
/// each column's 8-float store runs 2 floats into the next column, overwritten by it; the last
/// runs past the panel, into the next panel or the scratch's slack (PACK_A_SLACK). The columns
/// past the last multiple of 8 are copied one by one.
WK_AVX2 static long pack_a_panel_avx2(const float *a, long rsa, long kcs, int mr, float *dst) {
    long p = 0;
    for (; p + 8 <= kcs; p += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = i < mr ? _mm256_loadu_ps(a + i * rsa + p) : _mm256_setzero_ps();
        wk_transpose8x8(r);
        for (int t = 0; t < 8; t++) _mm256_storeu_ps(dst + (p + t) * mr, r[t]);
    }
    return p;
}
#endif

/// Floats past the end of pack_a's scratch that pack_a_panel_avx2 may write.
#define PACK_A_SLACK 8

static void pack_a(const job *J, long i0, long rows, long p0, long kcs, float *dst) {
    const int MR = J->g.mr;
    for (long ir = 0; ir < rows; ir += MR, dst += MR * kcs) {
        const long r = rows - ir < MR ? rows - ir : MR;
        const float *a = J->a + (i0 + ir) * J->rsa + p0 * J->csa;
#if defined(__x86_64__)
        // MR 6 is AVX2's micro-kernel and 8 AVX-512's; both levels have AVX2.
        if (J->csa == 1 && r == MR && (MR == 6 || MR == 8)) {
            for (long p = pack_a_panel_avx2(a, J->rsa, kcs, MR, dst); p < kcs; p++) {
                for (long i = 0; i < MR; i++) dst[p * MR + i] = a[i * J->rsa + p];
            }
            continue;
        }
#endif
        if (J->csa == 1) {
            for (long i = 0; i < r; i++) {
                const float *src = a + i * J->rsa;
                for (long p = 0; p < kcs; p++) dst[p * MR + i] = src[p];
            }
        } else {
            for (long p = 0; p < kcs; p++) {
                for (long i = 0; i < r; i++) dst[p * MR + i] = a[i * J->rsa + p * J->csa];
            }
        }
        for (long i = r; i < MR; i++) {
            for (long p = 0; p < kcs; p++) dst[p * MR + i] = 0;
        }
    }
}

static void compute_task(void *ctx, long index) {
    job *J = ctx;
    (void)index;
    const long tiles = J->row_blocks * J->col_groups;
    const int MR = J->g.mr, NR = J->g.nr;
    float *scratch = NULL;
    if (!J->int8 && posix_memalign((void **)&scratch, 64, ((size_t)J->mc * (size_t)J->kcb + PACK_A_SLACK) * sizeof(float)) != 0) {
        __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (long t; (t = __atomic_fetch_add(&J->next, 1, __ATOMIC_RELAXED)) < tiles;) {
        const long rb = t / J->col_groups, cg = t % J->col_groups;
        const long i0 = rb * J->mc, rows = J->m - i0 < J->mc ? J->m - i0 : J->mc;
        const long q0 = J->panels * cg / J->col_groups, q1 = J->panels * (cg + 1) / J->col_groups;
        const long j0 = q0 * NR, j1 = q1 * NR < J->n ? q1 * NR : J->n;
        if (J->before) J->before(J->ctx, i0, i0 + rows, j0, j1);
        const int onto = J->accumulate || J->before != NULL;
        if (J->int8) {
            if (wk_gemm_nt_int8(J->int8, rows, j1 - j0, J->k, J->a + i0 * J->rsa, J->rsa, J->w + j0 * J->ldw_bytes, J->ldw_bytes,
                                J->code, J->c + i0 * J->ldc + j0, J->ldc, onto) != 0) {
                __atomic_store_n(&J->failed, 1, __ATOMIC_RELAXED);
            }
            if (J->after) J->after(J->ctx, i0, i0 + rows, j0, j1);
            continue;
        }
        for (long p0 = 0; p0 < J->k; p0 += J->kcb) {
            const long kcs = J->k - p0 < J->kcb ? J->k - p0 : J->kcb;
            pack_a(J, i0, rows, p0, kcs, scratch);
            const float *bblock = J->packed + p0 * J->npad;
            for (long q = q0; q < q1; q++) {
                const float *bpanel = bblock + q * NR * kcs;
                const long j = q * NR, nr = J->n - j < NR ? J->n - j : NR;
                const wk_sgemm_microkernel kernel = panel_kernel(J, panel_width(J, q));
                for (long ir = 0; ir < rows; ir += MR) {
                    const long mr = rows - ir < MR ? rows - ir : MR;
                    kernel(kcs, scratch + ir * kcs, bpanel, J->c + (i0 + ir) * J->ldc + j, J->ldc, onto || p0 > 0, mr, nr);
                }
            }
        }
        if (J->after) J->after(J->ctx, i0, i0 + rows, j0, j1);
    }
    free(scratch);
}

static int run(job J, wk_sgemm_tile_fn before, wk_sgemm_tile_fn after, void *ctx, long workers) {
    const long m = J.m, n = J.n, k = J.k;
    float *c = J.c;
    const long ldc = J.ldc;
    const int accumulate = J.accumulate;
    J.g = wk_sgemm_geometry_for(wk_isa_level());
    J.before = before;
    J.after = after;
    J.ctx = ctx;
    J.workers = workers < 1 ? 1 : workers;
    if (k <= 0) {
        // An empty sum: C is zero (or unchanged), and the tiles still see their callbacks.
        for (long i = 0; i < m; i++) {
            if (!accumulate && !before) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        }
        if (before) before(ctx, 0, m, 0, n);
        if (after) after(ctx, 0, m, 0, n);
        return 0;
    }
    J.kcb = wk_sgemm_k_block(k, J.g.kc);
    J.panels = wk_ceil_div(n, J.g.nr);
    J.npad = J.panels * J.g.nr;
    J.row_blocks = wk_ceil_div(m, J.g.mc);
    J.mc = wk_round_up(wk_ceil_div(m, J.row_blocks), J.g.mr);
    J.row_blocks = wk_ceil_div(m, J.mc);
    // Fewer row blocks than two per worker: smaller row blocks where they stay at least 8
    // micro-panels tall (each tile then packs its rows of A once, for all of B's panels: the
    // digits CNN's [397, 512] x [512, 64] packed A twice over for 2 panels a tile), else split
    // the columns too, so every worker has work.
    J.col_groups = 1;
    if (J.workers > 1 && J.row_blocks < 2 * J.workers) {
        const long mc = wk_round_up(wk_ceil_div(m, 2 * J.workers), J.g.mr);
        if (mc >= 8 * J.g.mr) {
            J.mc = mc;
            J.row_blocks = wk_ceil_div(m, mc);
        }
    }
    if (J.workers > 1 && J.row_blocks < 2 * J.workers) {
        J.col_groups = wk_ceil_div(2 * J.workers, J.row_blocks);
        if (J.col_groups > J.panels) J.col_groups = J.panels;
    }
    if (J.int8) {
        wk_pool_run(J.workers, compute_task, &J);
        return J.failed ? -1 : 0;
    }
    if (posix_memalign((void **)&J.packed, 64, (size_t)k * (size_t)J.npad * sizeof(float)) != 0) return -1;
    long packers = J.workers < J.panels ? J.workers : J.panels;
    const long workers_all = J.workers;
    J.workers = packers;
    wk_pool_run(packers, pack_b_task, &J);
    J.workers = workers_all;
    wk_pool_run(J.workers, compute_task, &J);
    free(J.packed);
    return J.failed ? -1 : 0;
}

int wk_sgemm(long m, long n, long k, const float *a, long rsa, long csa, const float *b, long rsb, long csb, float *c,
             long ldc, int accumulate, long workers, wk_sgemm_tile_fn before, wk_sgemm_tile_fn after, void *ctx) {
    if (m <= 0 || n <= 0) return 0;
    job J = {.m = m, .n = n, .k = k, .a = a, .rsa = rsa, .csa = csa, .b = b, .rsb = rsb, .csb = csb, .c = c, .ldc = ldc,
             .accumulate = accumulate};
    return run(J, before, after, ctx, workers);
}

int wk_sgemm_coded(long m, long n, long k, const float *a, long rsa, long csa, const void *w, long ldw_bytes, int code,
                   float *c, long ldc, int accumulate, long workers, wk_sgemm_tile_fn before, wk_sgemm_tile_fn after,
                   void *ctx) {
    if (m <= 0 || n <= 0) return 0;
    if (wk_coded_block_bytes(code) == 0) return -1;
    job J = {.m = m, .n = n, .k = k, .a = a, .rsa = rsa, .csa = csa, .c = c, .ldc = ldc, .accumulate = accumulate,
             .w = w, .ldw_bytes = ldw_bytes, .code = code};
    // A's rows contiguous (csa 1), as the integer packing reads them.
    if (csa == 1 && k % 32 == 0 && wk_coded_block_length(code) == 32 && wk_int8_products_available()) J.int8 = wk_activations();
    return run(J, before, after, ctx, workers);
}
