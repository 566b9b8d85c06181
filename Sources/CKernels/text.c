#include "wpack_kernels.h"

// The ASCII run at the start of a byte string, for the UTF-8 validation of a store's header
// (a tokenizer kept as metadata is most of a megabyte of ASCII, checked on every open).

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static long ascii_prefix_avx2(const unsigned char *p, long n) {
    long i = 0;
    const __m256i zero = _mm256_setzero_si256();
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(p + i));
        // A set high bit (non-ASCII) or a zero byte (NUL) ends the run.
        unsigned bad = (unsigned)_mm256_movemask_epi8(v) | (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, zero));
        if (bad) return i + __builtin_ctz(bad);
    }
    for (; i < n && p[i] != 0 && p[i] < 0x80; i++) {}
    return i;
}
#endif

long wk_ascii_prefix(const unsigned char *p, long n) {
#if defined(__x86_64__)
    if (wk_uses_avx2()) return ascii_prefix_avx2(p, n);
#endif
    long i = 0;
    while (i < n && p[i] != 0 && p[i] < 0x80) i++;
    return i;
}
