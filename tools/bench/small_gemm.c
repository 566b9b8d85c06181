// The 36 linear-layer products of one MiniLM forward at 16 tokens, through wpack's own few-rows
// kernel (wk_gemm_nt) and worker pool, split over the workers as the engine splits them:
// once with 42 MiB of distinct weights (six layers, streamed from memory as in the model) and
// once with one layer's 7 MiB repeated six times (cache-resident). The gap between the two is
// what the memory system costs the latency of MiniLM at batch 1.
// Built and run by tools/bench/small-gemm; prints one JSON line per mode.
#include "wpack_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    long m, n, k;
    const float *a, *w;
    float *c;
    long workers;
} product;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// Each worker takes a contiguous share of W's rows, in blocks of 16 (BLAS.swift does the same).
static void share(void *ctx, long t) {
    product *p = ctx;
    long blocks = (p->n + 15) / 16;
    long j0 = blocks * t / p->workers * 16, j1 = blocks * (t + 1) / p->workers * 16;
    if (j1 > p->n) j1 = p->n;
    if (j0 < j1) wk_gemm_nt(p->m, j1 - j0, p->k, p->a, p->k, p->w + j0 * p->k, p->k, p->c + j0, p->n, 0);
}

static int compare(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    long rows = argc > 1 ? atol(argv[1]) : 16, repeats = argc > 2 ? atol(argv[2]) : 300;
    long workers = argc > 3 ? atol(argv[3]) : 2;
    const long h = 384, inner = 1536, layers = 6;
    const long layer = 4 * h * h + 2 * h * inner;
    wk_pool_start((int)workers);
    float *w = aligned_alloc(64, (size_t)(layers * layer) * sizeof(float));
    float *a = aligned_alloc(64, (size_t)(rows * inner) * sizeof(float));
    float *c = aligned_alloc(64, (size_t)(rows * inner) * sizeof(float));
    double *times = malloc((size_t)repeats * sizeof(double));
    if (!w || !a || !c || !times) { fprintf(stderr, "small_gemm: out of memory\n"); return 1; }
    for (long i = 0; i < layers * layer; i++) w[i] = (float)(i % 7) * 0.01f;
    for (long i = 0; i < rows * inner; i++) a[i] = 0.5f;
    const char *modes[2] = {"streamed", "resident"};
    for (int mode = 0; mode < 2; mode++) {
        for (long r = -10; r < repeats; r++) {  // 10 warm-up passes
            double t0 = now();
            for (long l = 0; l < layers; l++) {
                const float *base = w + (mode == 0 ? l * layer : 0);
                long shapes[6][2] = {{h, h}, {h, h}, {h, h}, {h, h}, {inner, h}, {h, inner}};
                for (int s = 0; s < 6; s++) {
                    long n = shapes[s][0], k = shapes[s][1];
                    // The engine's previous kernel wrote A on the calling thread: do the same,
                    // so the other workers read it from this core's cache as in the model.
                    for (long i = 0; i < rows * k; i++) a[i] = a[i] * 0.5f + 0.25f;
                    product p = {rows, n, k, a, base, c, workers};
                    wk_pool_run(workers, share, &p);
                    base += n * k;
                }
            }
            if (r >= 0) times[r] = now() - t0;
        }
        qsort(times, (size_t)repeats, sizeof(double), compare);
        double median = times[repeats / 2];
        double flops = 2.0 * (double)rows * (double)(layers * layer);
        printf("{\"mode\": \"%s\", \"rows\": %ld, \"workers\": %ld, \"weights_mib\": %.1f, \"median_ms\": %.3f, \"gflops\": %.1f}\n",
               modes[mode], rows, workers, (mode == 0 ? layers : 1) * layer * 4.0 / (1 << 20), median * 1e3,
               flops / median / 1e9);
    }
    return 0;
}
