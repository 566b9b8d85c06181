#include "internal/kernels_internal.h"

// Moves between strided and contiguous runs: the evaluator's gathers and scatters.
void wk_gather(const float *base, long stride, float *out, long n) {
    if (stride == 1) { memcpy(out, base, (size_t)n * sizeof(float)); return; }
    for (long i = 0; i < n; i++) out[i] = base[i * stride];
}

void wk_scatter(const float *src, long ss, float *base, long stride, long n) {
    if (stride == 1 && ss == 1) { memcpy(base, src, (size_t)n * sizeof(float)); return; }
    for (long i = 0; i < n; i++) base[i * stride] = src[i * ss];
}
