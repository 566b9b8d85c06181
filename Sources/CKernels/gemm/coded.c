#include "sgemm_internal.h"
#include <stdint.h>
#include <stdlib.h>

// Weights stored narrower than float32 (the .wpk dtypes float16, bfloat16, q8_0, q4_0, q4_1),
// decoded to float32 where a product needs them and nowhere else: a run of a row into a
// small buffer (the few-rows product below, and the packed GEMM's B panels in sgemm.c), or one
// element at a time (a widening copy of any view). The block layouts are GGUF's, so a GGUF
// file's blocks are read as they are:
//   q8_0: float16 d, then 32 int8 q                 x = d·q
//   q4_0: float16 d, then 16 bytes of nibbles       x = d·(q - 8)
//   q4_1: float16 d, float16 m, then 16 bytes       x = d·q + m
// where value i < 16 of a block is the low nibble of byte i and value i >= 16 the high nibble
// of byte i - 16.

enum { BLOCK = 32 };

static inline float f32_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float wk_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    if (exponent == 0) {
        // Zero or subnormal: mantissa · 2^-24, exact in float32.
        const float magnitude = (float)mantissa * 5.9604644775390625e-8f;
        uint32_t bits;
        memcpy(&bits, &magnitude, 4);
        return f32_from_bits(bits | sign);
    }
    if (exponent == 31) return f32_from_bits(sign | 0x7f800000u | (mantissa << 13));
    return f32_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

long wk_coded_block_bytes(int code) {
    switch (code) {
    case WK_CODE_F32: return 4;
    case WK_CODE_F16: case WK_CODE_BF16: return 2;
    case WK_CODE_Q8_0: return 34;
    case WK_CODE_Q4_0: return 18;
    case WK_CODE_Q4_1: return 20;
    default: return 0;
    }
}

long wk_coded_block_length(int code) { return code == WK_CODE_Q8_0 || code == WK_CODE_Q4_0 || code == WK_CODE_Q4_1 ? BLOCK : 1; }

/// One whole block of a block type into 32 floats.
static void decode_block_base(int code, const unsigned char *b, float *out) {
    const float d = wk_half_to_float(wk_load_u16(b));
    switch (code) {
    case WK_CODE_Q8_0:
        for (int i = 0; i < BLOCK; i++) out[i] = d * (float)(int8_t)b[2 + i];
        break;
    case WK_CODE_Q4_0:
        for (int i = 0; i < 16; i++) {
            out[i] = d * (float)((b[2 + i] & 15) - 8);
            out[i + 16] = d * (float)((b[2 + i] >> 4) - 8);
        }
        break;
    case WK_CODE_Q4_1: {
        const float m = wk_half_to_float(wk_load_u16(b + 2));
        for (int i = 0; i < 16; i++) {
            // fmaf, as the vector versions round: every level gives the same bits.
            out[i] = fmaf(d, (float)(b[4 + i] & 15), m);
            out[i + 16] = fmaf(d, (float)(b[4 + i] >> 4), m);
        }
        break;
    }
    default: break;
    }
}

float wk_coded_element(int code, const void *base, long index) {
    const unsigned char *p = base;
    switch (code) {
    case WK_CODE_F32: return f32_from_bits((uint32_t)p[4 * index] | (uint32_t)p[4 * index + 1] << 8 |
                                           (uint32_t)p[4 * index + 2] << 16 | (uint32_t)p[4 * index + 3] << 24);
    case WK_CODE_F16: return wk_half_to_float(wk_load_u16(p + 2 * index));
    case WK_CODE_BF16: return f32_from_bits((uint32_t)wk_load_u16(p + 2 * index) << 16);
    default: {
        float block[BLOCK];
        decode_block_base(code, p + (index / BLOCK) * wk_coded_block_bytes(code), block);
        return block[index % BLOCK];
    }
    }
}

static void decode_base(int code, const unsigned char *row, long start, long count, float *out) {
    for (long i = 0; i < count;) {
        const long e = start + i;
        if (wk_coded_block_length(code) == 1) { out[i++] = wk_coded_element(code, row, e); continue; }
        float block[BLOCK];
        decode_block_base(code, row + (e / BLOCK) * wk_coded_block_bytes(code), block);
        const long from = e % BLOCK, take = BLOCK - from < count - i ? BLOCK - from : count - i;
        memcpy(out + i, block + from, (size_t)take * sizeof(float));
        i += take;
    }
}

#if defined(__x86_64__)
/// One q8_0 / q4_0 / q4_1 block's 32 weights as four vectors of 8 floats: d·q for q8_0, and
/// d·q + m (q4_1) or d·q - 8d (q4_0, equal to d·(q - 8) exactly: both are d times a small
/// integer) in one FMA rounding. Value i < 16 of a q4 block is the low nibble of byte i, value
/// i >= 16 the high nibble of byte i - 16. The panel decoder stores these.
WK_AVX2_F16C static inline void block_weights_avx2(int code, const unsigned char *blk, __m256 out[4]) {
    const float d = _cvtsh_ss(wk_load_u16(blk));
    const __m256 dv = _mm256_set1_ps(d);
    if (code == WK_CODE_Q8_0) {
        for (int t = 0; t < 4; t++) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * t)));
            out[t] = _mm256_mul_ps(dv, _mm256_cvtepi32_ps(q));
        }
        return;
    }
    const __m128i bytes = _mm_loadu_si128((const __m128i *)(blk + (code == WK_CODE_Q4_1 ? 4 : 2)));
    const __m128i mask = _mm_set1_epi8(15);
    const __m128i lo = _mm_and_si128(bytes, mask), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    const __m256 shift = _mm256_set1_ps(code == WK_CODE_Q4_1 ? _cvtsh_ss(wk_load_u16(blk + 2)) : -8 * d);
    for (int t = 0; t < 4; t++) out[t] = _mm256_fmadd_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[t])), shift);
}

WK_AVX2_F16C static void decode_block_avx2(int code, const unsigned char *b, float *out) {
    __m256 w[4];
    block_weights_avx2(code, b, w);
    for (int t = 0; t < 4; t++) _mm256_storeu_ps(out + 8 * t, w[t]);
}

WK_AVX2_F16C static void decode_avx2(int code, const unsigned char *row, long start, long count, float *out) {
    long i = 0;
    if (code == WK_CODE_F16 || code == WK_CODE_BF16) {
        const unsigned char *p = row + 2 * start;
        for (; i + 8 <= count; i += 8) {
            const __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
            const __m256 v = code == WK_CODE_F16 ? _mm256_cvtph_ps(h)
                                                 : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
            _mm256_storeu_ps(out + i, v);
        }
        decode_base(code, row, start + i, count - i, out + i);
        return;
    }
    if (code == WK_CODE_F32) { decode_base(code, row, start, count, out); return; }
    const long bytes = wk_coded_block_bytes(code);
    if (start % BLOCK) {
        const long head = BLOCK - start % BLOCK < count ? BLOCK - start % BLOCK : count;
        decode_base(code, row, start, head, out);
        i = head;
    }
    for (; i + BLOCK <= count; i += BLOCK) decode_block_avx2(code, row + ((start + i) / BLOCK) * bytes, out + i);
    decode_base(code, row, start + i, count - i, out + i);
}
#endif

void wk_decode(int code, const void *row, long start, long count, float *out) {
#if defined(__x86_64__)
    if (wk_isa_level() >= WK_ISA_AVX2) { decode_avx2(code, row, start, count, out); return; }
#endif
    decode_base(code, row, start, count, out);
}

// C = A · Wᵀ for few rows of A, W coded: 16 rows of W at a time, up to 512 of K, are decoded
// into a 32 KiB buffer that stays in L1 and multiplied there by the float kernel (few_rows.c).
// Decoding costs K per weight row and the products m·K, so from a few rows on it is noise,
// and the weight is read from memory in its narrow form: the point of storing it so.
enum { CODED_ROWS = 16, CODED_K = 512 };

void wk_gemm_nt_coded(long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                      float *c, long ldc, int accumulate) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate) for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    float panel[CODED_ROWS * CODED_K] __attribute__((aligned(64)));
    const unsigned char *rows = w;
    for (long j0 = 0; j0 < n; j0 += CODED_ROWS) {
        const long r = n - j0 < CODED_ROWS ? n - j0 : CODED_ROWS;
        for (long k0 = 0; k0 < k; k0 += CODED_K) {
            const long kc = k - k0 < CODED_K ? k - k0 : CODED_K;
            for (long jj = 0; jj < r; jj++) {
                const unsigned char *row = rows + (j0 + jj) * ldw_bytes;
                // The next rows' bytes are on their way while these are decoded.
                if (k0 == 0 && j0 + CODED_ROWS + jj < n) __builtin_prefetch(row + CODED_ROWS * ldw_bytes);
                wk_decode(code, row, k0, kc, panel + jj * CODED_K);
            }
            wk_gemm_nt(m, r, kc, a + k0, lda, panel, CODED_K, c + j0, ldc, accumulate || k0 > 0);
        }
    }
}
