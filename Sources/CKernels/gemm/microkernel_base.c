#include "sgemm_internal.h"

// 4 x 8 in plain C: what any x86-64 (SSE2) or other CPU runs. The compiler keeps the tile in
// registers and vectorizes the inner row.
void wk_sgemm_microkernel_base(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, long mr,
                               long nr) {
    float t[4][8] = {{0}};
    for (long p = 0; p < kc; p++) {
        for (int i = 0; i < 4; i++) {
            const float x = a[i];
            for (int j = 0; j < 8; j++) t[i][j] += x * b[j];
        }
        a += 4;
        b += 8;
    }
    wk_sgemm_store_partial(&t[0][0], 8, c, ldc, accumulate, mr, nr);
}
