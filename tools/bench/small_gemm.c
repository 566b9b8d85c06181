// The 36 linear-layer products of one MiniLM forward at few rows, through wpack's own kernels
// and worker pool, split over the workers as the engine splits them (GEMM.swift's
// fewRowsTimesWeight): once with six layers of distinct weights (streamed from memory, as in the
// model) and once with one layer's weights repeated six times (cache-resident). The gap between
// the two is what the memory system costs MiniLM's batch-1 latency; the gap between this and the
// model's matmul time (WPACK_PROFILE=1 wpack bench minilm ...) is what the engine around the
// kernels costs.
//
// Weights: float32 (wk_gemm_nt), or q8_0 blocks of random bytes against activations rounded to
// int8 or int16 (each worker rounds a share of A's blocks, then wk_gemm_nt_int8_rows on
// every worker, as the engine runs them). Built and run by tools/bench/small-gemm; prints one JSON
// line per mode.
#include "wpack_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    long m, n, k, workers;
    const float *a;
    const void *w;  // float32 rows of k, or q8_0 rows of k / 32 blocks
    const wk_int8_rows *rows;
    float *c;
} product;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static long q8_row_bytes(long k) { return k / 32 * 34; }

// Each worker takes a contiguous share of W's rows, in blocks of 16.
static void share(void *ctx, long t) {
    product *p = ctx;
    long blocks = (p->n + 15) / 16;
    long j0 = blocks * t / p->workers * 16, j1 = blocks * (t + 1) / p->workers * 16;
    if (j1 > p->n) j1 = p->n;
    if (j0 >= j1) return;
    if (p->rows) {
        const long rb = q8_row_bytes(p->k);
        if (wk_gemm_nt_int8_rows(p->rows, j1 - j0, (const unsigned char *)p->w + j0 * rb, rb, p->c + j0, p->n, 0) != 0) abort();
    } else {
        wk_gemm_nt(p->m, j1 - j0, p->k, p->a, p->k, (const float *)p->w + j0 * p->k, p->k, p->c + j0, p->n, 0);
    }
}

// Each worker rounds a share of K's blocks of every row of A, as GEMM.swift has them do.
static void round_share(void *ctx, long t) {
    product *p = ctx;
    const long blocks = p->k / 32;
    wk_int8_rows_fill((wk_int8_rows *)p->rows, p->a, p->k, blocks * t / p->workers, blocks * (t + 1) / p->workers);
}

static int compare(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    long rows = argc > 1 ? atol(argv[1]) : 16, repeats = argc > 2 ? atol(argv[2]) : 300;
    long workers = argc > 3 ? atol(argv[3]) : 2;
    const char *weights = argc > 4 ? argv[4] : "float32";
    int precision = -1;
    if (strcmp(weights, "q8-int8") == 0) precision = WK_ACT_INT8;
    else if (strcmp(weights, "q8-int16") == 0) precision = WK_ACT_INT16;
    else if (strcmp(weights, "float32") != 0) {
        fprintf(stderr, "small_gemm: weights must be float32, q8-int8 or q8-int16, not %s\n", weights);
        return 2;
    }
    if (precision >= 0 && !wk_int8_products_available()) {
        fprintf(stderr, "small_gemm: this machine has no AVX-512 VNNI for integer products\n");
        return 2;
    }
    const long h = 384, inner = 1536, layers = 6;
    const long shapes[6][2] = {{h, h}, {h, h}, {h, h}, {h, h}, {inner, h}, {h, inner}};
    long layer_bytes = 0;
    for (int s = 0; s < 6; s++) layer_bytes += shapes[s][0] * (precision >= 0 ? q8_row_bytes(shapes[s][1]) : shapes[s][1] * 4);
    wk_pool_start((int)workers);
    unsigned char *w = aligned_alloc(64, (size_t)(layers * layer_bytes));
    float *a = aligned_alloc(64, (size_t)(rows * inner) * sizeof(float));
    float *c = aligned_alloc(64, (size_t)(rows * inner) * sizeof(float));
    double *times = malloc((size_t)repeats * sizeof(double));
    if (!w || !a || !c || !times) {
        fprintf(stderr, "small_gemm: out of memory\n");
        return 1;
    }
    if (precision >= 0) {
        // Random integers with a scale of 2^-4 (0x2C00 as a half) in every block.
        srand(1);
        for (long i = 0; i < layers * layer_bytes; i++) w[i] = (unsigned char)rand();
        for (long i = 0; i < layers * layer_bytes; i += 34) w[i] = 0x00, w[i + 1] = 0x2C;
    } else {
        float *f = (float *)w;
        for (long i = 0; i < layers * layer_bytes / 4; i++) f[i] = (float)(i % 7) * 0.01f;
    }
    for (long i = 0; i < rows * inner; i++) a[i] = 0.5f;
    const char *modes[2] = {"streamed", "resident"};
    for (int mode = 0; mode < 2; mode++) {
        for (long r = -10; r < repeats; r++) {  // 10 warm-up passes
            double t0 = now();
            for (long l = 0; l < layers; l++) {
                const unsigned char *base = w + (mode == 0 ? l * layer_bytes : 0);
                for (int s = 0; s < 6; s++) {
                    long n = shapes[s][0], k = shapes[s][1];
                    // The engine's previous kernel wrote A on the calling thread: do the same,
                    // so the other workers read it from this core's cache as in the model.
                    for (long i = 0; i < rows * k; i++) a[i] = a[i] * 0.5f + 0.25f;
                    product p = {rows, n, k, workers, a, base, NULL, c};
                    wk_int8_rows *rounded = NULL;
                    if (precision >= 0) {
                        if (!(rounded = wk_int8_rows_alloc(WK_CODE_Q8_0, precision, rows, k))) abort();
                        p.rows = rounded;
                        wk_pool_run(workers, round_share, &p);
                    }
                    wk_pool_run(workers, share, &p);
                    wk_int8_rows_free(rounded);
                    base += n * (precision >= 0 ? q8_row_bytes(k) : k * 4);
                }
            }
            if (r >= 0) times[r] = now() - t0;
        }
        qsort(times, (size_t)repeats, sizeof(double), compare);
        double median = times[repeats / 2];
        double macs = (double)rows * (double)(layers * (4 * h * h + 2 * h * inner));
        printf("{\"mode\": \"%s\", \"weights\": \"%s\", \"rows\": %ld, \"workers\": %ld, \"weights_mib\": %.1f, \"median_ms\": %.3f, "
               "\"gmacs\": %.1f}\n",
               modes[mode], weights, rows, workers, (mode == 0 ? layers : 1) * layer_bytes / (double)(1 << 20), median * 1e3,
               macs / median / 1e9);
    }
    return 0;
}
