#include "internal/kernels_internal.h"

// One row of an im2col patch matrix: for every output position (oi, oj) the input pixel at
// (oi·sh + oh, oj·sw + ow), or 0 outside the image. Small images (the digits CNN's 8x8) make
// these rows short, so the loops stay here, free of per-segment call overhead.
void wk_im2col_row(const float *x, long xh, long xw, long h, long w, float *dst, long ho, long wo,
                   long sh, long sw, long oh, long ow) {
    // Output columns whose input column is inside the image: first <= oj < last.
    long first = 0, last = wo;
    while (first < wo && first * sw + ow < 0) first++;
    while (last > first && (last - 1) * sw + ow >= w) last--;
    for (long oi = 0; oi < ho; oi++, dst += wo) {
        long ih = oi * sh + oh;
        if (ih < 0 || ih >= h) { for (long j = 0; j < wo; j++) dst[j] = 0; continue; }
        const float *src = x + ih * xh + ow * xw;
        for (long j = 0; j < first; j++) dst[j] = 0;
        if (sw == 1 && xw == 1) { for (long j = first; j < last; j++) dst[j] = src[j]; }
        else { for (long j = first; j < last; j++) dst[j] = src[j * sw * xw]; }
        for (long j = last; j < wo; j++) dst[j] = 0;
    }
}
