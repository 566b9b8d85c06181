#include "sgemm_internal.h"
#include <stdint.h>
#include <stdlib.h>

// C = A · Wᵀ for a block-coded W (q8_0, q4_0, q4_1) with A's rows rounded to int8, per block
// of 32 with the scale max|x| / 127 (GGUF's q8_0 for activations), each block's product summed
// exactly in int32 by AVX-512 VNNI: vpdpbusd multiplies 64 byte pairs and adds them in groups of
// four into 16 int32 lanes, one instruction for what takes eight float FMAs.
//
// The lanes are 16 rows of A. For each step of 4 values along K, the 16 rows' 4 bytes are one
// register (A is packed so, once per call: it is small), and one column of W contributes the
// same 4 bytes to every lane: a broadcast load straight from W's block, as it is stored. So a
// lane accumulates a whole block's dot product (8 steps) before it is scaled once into a float
// sum, and W is never copied or transposed. (Lanes over columns of W instead would need W's
// blocks transposed per call, which cost as much as the products at 16 rows.)
//
// vpdpbusd takes one operand unsigned: W's bytes. A q8_0 weight gets 128 added (a flip of the
// top bit) and a q4 nibble is unsigned as it is; what the offsets add is taken back through
// each row's block sum of its integers, so a lane's int32 is exactly Σ qa · (the weight's
// integer): q8_0's q, q4_0's q - 8 and q4_1's q, whose minimum m adds m · da · Σ qa.
//
// Measured on a Zen 4 (one core, data in L1): 124-164 GMAC/s, against about 58 for float32 FMAs at the
// core's peak. A table of W's block sums (a copy per weight) would have saved the flip, 200 GMAC/s;
// not worth a copy of every weight's block metadata.
//
// Two precisions. WK_ACT_INT8: each activation moves by at most half its block's step,
// max|a_b| / 254, so an output is within Σ_blocks (max|a_b| / 254) · Σ|w_b| of the product of
// the float activations with the decoded weights. This is llama.cpp's rounding of activations for
// these blocks (its q8_0 and q8_1), and it is too coarse for the models: MiniLM's worst cosine
// to PyTorch drops from 0.99958 (q8_0 weights, float activations) to 0.99848, the digits CNN
// misses one more image, and SmolLM2's answers change (as llama.cpp's do).
// WK_ACT_INT16: what int8 rounding left over, e = x - d·q (|e| <= d / 2), is rounded again on a
// step 256 times finer, r = round(256 e / d) (clamped to ±127), so each activation is
// v = 256 q + r on the step d / 256: an int16 in two bytes, within max|a_b| / 32512 of x (r's
// clamp at most doubles the half step). Each step multiplies both bytes by the same broadcast of
// W, two vpdpbusd, and the block's sums meet as 256 Σ q·w + Σ r·w, exact in int32
// (|Σ v·w| < 2^25). As fine as coded_gemv.c's int16 for decode steps, at about 2/3 of int8's rate.

enum { QBLOCK = 32, LANES = 16, COLUMNS = 8 };

/// One block of K for one group of 16 rows: their int8 values in steps of 4 (row r's values
/// 4s..4s+3 are bytes 4r..4r+3 of step s), and at int16 the residuals' in the same order; each
/// row's scale (of q at int8, of v = 256 q + r at int16), the integer that cancels W's offset
/// (-offset · Σ v: q8_0 128, q4_0 8, q4_1 0) and scale · Σ v (q4_1's minimum term).
typedef struct {
    int8_t q[8][LANES][4];
    int8_t r[8][LANES][4];
    float d[LANES];
    int32_t offset[LANES];
    float dsum[LANES];
} int8_group_block;

static int weight_offset(int code) { return code == WK_CODE_Q8_0 ? 128 : code == WK_CODE_Q4_0 ? 8 : 0; }

/// A block of one row: its scale, integers (and at int16 their residuals) and the sum of its
/// values. A NaN or an infinity makes the scale NaN and the integers 0: every output that reads
/// the block is then NaN, as the float product would be non-finite.
static void quantize_block_base(const float *x, int split, float *d_out, int8_t q[QBLOCK], int8_t r[QBLOCK], int *sum_out) {
    float amax = 0;
    int finite = 1;
    for (int t = 0; t < QBLOCK; t++) {
        const float v = fabsf(x[t]);
        amax = v > amax ? v : amax;
        finite &= isfinite(x[t]) != 0;
    }
    if (!finite) {
        *d_out = NAN;
        memset(q, 0, QBLOCK);
        memset(r, 0, QBLOCK);
        *sum_out = 0;
        return;
    }
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f, fine = id * 256.0f;
    int s = 0;
    for (int t = 0; t < QBLOCK; t++) {
        // Nearest, ties to even, as the vector conversion rounds; the residual by one fused
        // multiply-add, as the vector code forms it.
        int v = (int)nearbyintf(x[t] * id);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[t] = (int8_t)v;
        if (split) {
            int e = (int)nearbyintf(fmaf(-(float)v, d, x[t]) * fine);
            e = e > 127 ? 127 : e < -127 ? -127 : e;
            r[t] = (int8_t)e;
            s += 256 * v + e;
        } else {
            r[t] = 0;
            s += v;
        }
    }
    *d_out = split ? d * (1.0f / 256.0f) : d;
    *sum_out = s;
}

#if defined(__x86_64__)
#define WK_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))

WK_VNNI static void quantize_block_avx512(const float *x, int split, float *d_out, int8_t q[QBLOCK], int8_t r[QBLOCK], int *sum_out) {
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    // Class bits: quiet and signalling NaN, plus and minus infinity.
    if (_mm512_fpclass_ps_mask(x0, 0x99) | _mm512_fpclass_ps_mask(x1, 0x99)) {
        *d_out = NAN;
        memset(q, 0, QBLOCK);
        memset(r, 0, QBLOCK);
        *sum_out = 0;
        return;
    }
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i lim = _mm512_set1_epi32(127), nlim = _mm512_set1_epi32(-127);
    __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vid)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid));
    q0 = _mm512_max_epi32(_mm512_min_epi32(q0, lim), nlim);
    q1 = _mm512_max_epi32(_mm512_min_epi32(q1, lim), nlim);
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(q1));
    __m512i sum = _mm512_add_epi32(q0, q1);
    if (split) {
        const __m512 vd = _mm512_set1_ps(d), fine = _mm512_set1_ps(id * 256.0f);
        __m512i r0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_fnmadd_ps(_mm512_cvtepi32_ps(q0), vd, x0), fine));
        __m512i r1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_fnmadd_ps(_mm512_cvtepi32_ps(q1), vd, x1), fine));
        r0 = _mm512_max_epi32(_mm512_min_epi32(r0, lim), nlim);
        r1 = _mm512_max_epi32(_mm512_min_epi32(r1, lim), nlim);
        _mm_storeu_si128((__m128i *)r, _mm512_cvtepi32_epi8(r0));
        _mm_storeu_si128((__m128i *)(r + 16), _mm512_cvtepi32_epi8(r1));
        sum = _mm512_add_epi32(_mm512_slli_epi32(sum, 8), _mm512_add_epi32(r0, r1));
    } else {
        memset(r, 0, QBLOCK);
    }
    *d_out = split ? d * (1.0f / 256.0f) : d;
    *sum_out = _mm512_reduce_add_epi32(sum);
}
#endif

/// Blocks [b0, b1) of rows [0, m) of A into ceil(m / 16) groups of `blocks` blocks each; the
/// lanes past m are zero (scale 0). Disjoint block ranges write disjoint memory.
static void pack_rows(int code, int split, long m, long blocks, long b0, long b1, const float *a, long lda, int8_group_block *out,
                      int vector) {
    const long groups = (m + LANES - 1) / LANES;
    if (m % LANES) memset(out + (groups - 1) * blocks + b0, 0, (size_t)(b1 - b0) * sizeof(int8_group_block));
    const int offset = weight_offset(code);
    for (long i = 0; i < m; i++) {
        const long g = i / LANES, r = i % LANES;
        for (long b = b0; b < b1; b++) {
            int8_group_block *o = out + g * blocks + b;
            int8_t q[QBLOCK], e[QBLOCK];
            int sum;
#if defined(__x86_64__)
            if (vector) quantize_block_avx512(a + i * lda + b * QBLOCK, split, &o->d[r], q, e, &sum);
            else
#endif
                quantize_block_base(a + i * lda + b * QBLOCK, split, &o->d[r], q, e, &sum);
            for (int s = 0; s < 8; s++) {
                memcpy(o->q[s][r], q + 4 * s, 4);
                memcpy(o->r[s][r], e + 4 * s, 4);
            }
            o->offset[r] = -offset * sum;
            o->dsum[r] = o->d[r] * (float)sum;
        }
    }
}

/// The unsigned byte vpdpbusd multiplies for value t of a block.
static inline int weight_byte(int code, const unsigned char *blk, int t) {
    if (code == WK_CODE_Q8_0) return (blk[2 + t] ^ 0x80);
    const unsigned char *nib = blk + (code == WK_CODE_Q4_1 ? 4 : 2);
    return t < 16 ? nib[t] & 15 : nib[t - 16] >> 4;
}

/// The vector kernel's arithmetic, one output at a time: a reference that gives the same bits
/// (the int32 sums are exact and the float steps are the same fmaf in the same order).
/// A tile's valid rows x cols corner into C (= or +=).
static void store_tile(const float tile[COLUMNS][LANES], float *c, long ldc, long rows, long cols, int accumulate) {
    for (long r = 0; r < rows; r++) {
        float *o = c + r * ldc;
        for (long t = 0; t < cols; t++) o[t] = accumulate ? o[t] + tile[t][r] : tile[t][r];
    }
}

static void group_columns_base(int code, int split, const int8_group_block *ab, long blocks, const unsigned char *const col[COLUMNS],
                               float *c, long ldc, long rows, long cols, int accumulate) {
    float out[COLUMNS][LANES];
    const long bytes = wk_coded_block_bytes(code);
    for (int c = 0; c < COLUMNS; c++) {
        for (int r = 0; r < LANES; r++) {
            float f = 0;
            for (long b = 0; b < blocks; b++) {
                const unsigned char *blk = col[c] + b * bytes;
                // At int16 the offset goes with the residuals' sum, as in the vector kernel.
                int32_t acc = split ? 0 : ab[b].offset[r], rest = ab[b].offset[r];
                for (int t = 0; t < QBLOCK; t++) {
                    acc += ab[b].q[t / 4][r][t % 4] * weight_byte(code, blk, t);
                    rest += ab[b].r[t / 4][r][t % 4] * weight_byte(code, blk, t);
                }
                if (split) acc = acc * 256 + rest;
                const float dw = wk_half_to_float(wk_load_u16(blk));
                f = fmaf((float)acc, ab[b].d[r] * dw, f);
                if (code == WK_CODE_Q4_1) f = fmaf(ab[b].dsum[r], wk_half_to_float(wk_load_u16(blk + 2)), f);
            }
            out[c][r] = f;
        }
    }
    store_tile(out, c, ldc, rows, cols, accumulate);
}

#if defined(__x86_64__)
/// Four bytes of W broadcast to every lane by a load. Written as a load the compiler cannot
/// see into: given a broadcast of a flipped value it flips the scalar in a vector register and
/// broadcasts that, a shuffle per broadcast where a load needs none.
WK_VNNI static inline __m512i broadcast_load(const unsigned char *p) {
    __m512i v;
    __asm__("vpbroadcastd %1, %0" : "=v"(v) : "m"(*(const int32_t *)p));
    return v;
}

/// 16 rows x 8 columns over all blocks: 8 int32 and 8 float accumulators. Per block and
/// column: 8 vpdpbusd (q8_0: each on a flipped broadcast; q4: two per broadcast, its low and
/// high nibbles), then one conversion and one FMA by the rows' scales times the column's.
WK_VNNI static inline __attribute__((always_inline)) void group_columns_vnni(
    int code, const int split, const int8_group_block *ab, long blocks, const unsigned char *const col[COLUMNS], long ahead,
    float *c, long ldc, long rows, long cols, int accumulate) {
    const long bytes = wk_coded_block_bytes(code);
    __m512 f[COLUMNS];
    const unsigned char *p[COLUMNS];
#pragma clang loop unroll(full)
    for (int c = 0; c < COLUMNS; c++) {
        f[c] = _mm512_setzero_ps();
        p[c] = col[c];
    }
    const __m512i flip = _mm512_set1_epi8((char)0x80), low = _mm512_set1_epi8(15);
    for (long b = 0; b < blocks; b++, ab++) {
        // At int16, acc sums q·w and rest r·w (with the offset), joined as 256 acc + rest.
        __m512i acc[COLUMNS], rest[COLUMNS];
        const __m512i start = _mm512_load_si512(ab->offset);
#pragma clang loop unroll(full)
        for (int c = 0; c < COLUMNS; c++) {
            acc[c] = split ? _mm512_setzero_si512() : start;
            if (split) rest[c] = start;
            _mm_prefetch((const char *)(p[c] + ahead), _MM_HINT_T0);
        }
        if (code == WK_CODE_Q8_0) {
#pragma clang loop unroll(full)
            for (int s = 0; s < 8; s++) {
                const __m512i x = _mm512_load_si512(ab->q[s]);
                const __m512i xr = split ? _mm512_load_si512(ab->r[s]) : x;
#pragma clang loop unroll(full)
                for (int c = 0; c < COLUMNS; c++) {
                    const __m512i w = _mm512_xor_si512(broadcast_load(p[c] + 2 + 4 * s), flip);
                    acc[c] = _mm512_dpbusd_epi32(acc[c], w, x);
                    if (split) rest[c] = _mm512_dpbusd_epi32(rest[c], w, xr);
                }
            }
        } else {
            const int at = code == WK_CODE_Q4_1 ? 4 : 2;
#pragma clang loop unroll(full)
            for (int s = 0; s < 4; s++) {
                const __m512i lo_x = _mm512_load_si512(ab->q[s]), hi_x = _mm512_load_si512(ab->q[s + 4]);
                const __m512i lo_r = split ? _mm512_load_si512(ab->r[s]) : lo_x, hi_r = split ? _mm512_load_si512(ab->r[s + 4]) : hi_x;
#pragma clang loop unroll(full)
                for (int c = 0; c < COLUMNS; c++) {
                    const __m512i raw = broadcast_load(p[c] + at + 4 * s);
                    const __m512i lo_w = _mm512_and_si512(raw, low), hi_w = _mm512_and_si512(_mm512_srli_epi32(raw, 4), low);
                    acc[c] = _mm512_dpbusd_epi32(acc[c], lo_w, lo_x);
                    acc[c] = _mm512_dpbusd_epi32(acc[c], hi_w, hi_x);
                    if (split) {
                        rest[c] = _mm512_dpbusd_epi32(rest[c], lo_w, lo_r);
                        rest[c] = _mm512_dpbusd_epi32(rest[c], hi_w, hi_r);
                    }
                }
            }
        }
        if (split) {
#pragma clang loop unroll(full)
            for (int c = 0; c < COLUMNS; c++) acc[c] = _mm512_add_epi32(_mm512_slli_epi32(acc[c], 8), rest[c]);
        }
        const __m512 d = _mm512_load_ps(ab->d);
#pragma clang loop unroll(full)
        for (int c = 0; c < COLUMNS; c++) {
            const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(_cvtsh_ss(wk_load_u16(p[c]))));
            f[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[c]), scale, f[c]);
        }
        if (code == WK_CODE_Q4_1) {
            const __m512 ds = _mm512_load_ps(ab->dsum);
#pragma clang loop unroll(full)
            for (int c = 0; c < COLUMNS; c++) f[c] = _mm512_fmadd_ps(ds, _mm512_set1_ps(_cvtsh_ss(wk_load_u16(p[c] + 2))), f[c]);
        }
#pragma clang loop unroll(full)
        for (int c = 0; c < COLUMNS; c++) p[c] += bytes;
    }
    if (rows < LANES || cols < COLUMNS) {
        float tile[COLUMNS][LANES] __attribute__((aligned(64)));
#pragma clang loop unroll(full)
        for (int t = 0; t < COLUMNS; t++) _mm512_store_ps(tile[t], f[t]);
        store_tile(tile, c, ldc, rows, cols, accumulate);
        return;
    }
    // Lanes are rows, C's rows want columns: two 8 x 8 transposes at once, one in each half of
    // the registers (rows 0-7 and 8-15), then each row's 8 values stored whole.
    __m512 t[COLUMNS], u[COLUMNS];
    for (int q = 0; q < COLUMNS; q += 2) {
        t[q] = _mm512_unpacklo_ps(f[q], f[q + 1]);
        t[q + 1] = _mm512_unpackhi_ps(f[q], f[q + 1]);
    }
    for (int q = 0; q < COLUMNS; q += 4) {
        u[q] = _mm512_shuffle_ps(t[q], t[q + 2], 0x44);
        u[q + 1] = _mm512_shuffle_ps(t[q], t[q + 2], 0xEE);
        u[q + 2] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0x44);
        u[q + 3] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
    }
    // u[q] (q < 4) holds columns 0-3 of rows q, q + 4, q + 8 and q + 12 in its four 128-bit
    // lanes; u[q + 4] columns 4-7 of the same rows.
    const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i second = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int q = 0; q < 4; q++) {
        // Rows q and q + 8, then q + 4 and q + 12.
        const __m512 a = _mm512_permutex2var_ps(u[q], first, u[q + 4]), b = _mm512_permutex2var_ps(u[q], second, u[q + 4]);
        const long r[4] = {q, q + 8, q + 4, q + 12};
        const __m256 v[4] = {_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1), _mm512_castps512_ps256(b),
                             _mm512_extractf32x8_ps(b, 1)};
        for (int e = 0; e < 4; e++) {
            float *o = c + r[e] * ldc;
            _mm256_storeu_ps(o, accumulate ? _mm256_add_ps(_mm256_loadu_ps(o), v[e]) : v[e]);
        }
    }
}

WK_VNNI static void group_columns_int8(int code, const int8_group_block *ab, long blocks, const unsigned char *const col[COLUMNS],
                                       long ahead, float *c, long ldc, long rows, long cols, int accumulate) {
    group_columns_vnni(code, 0, ab, blocks, col, ahead, c, ldc, rows, cols, accumulate);
}

WK_VNNI static void group_columns_int16(int code, const int8_group_block *ab, long blocks, const unsigned char *const col[COLUMNS],
                                        long ahead, float *c, long ldc, long rows, long cols, int accumulate) {
    group_columns_vnni(code, 1, ab, blocks, col, ahead, c, ldc, rows, cols, accumulate);
}
#endif

int wk_activations_setting(void) {
    static int state = -3;
    int s = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (s == -3) {
        const char *v = getenv("WPACK_ACTIVATIONS");
        s = !v || !*v                  ? -1
            : strcmp(v, "int8") == 0   ? WK_ACT_INT8
            : strcmp(v, "int16") == 0  ? WK_ACT_INT16
            : strcmp(v, "float") == 0  ? WK_ACT_FLOAT
                                       : -2;
        __atomic_store_n(&state, s, __ATOMIC_RELAXED);
    }
    return s;
}

// A caller's choice, on the thread that runs its products (the pool hands it to its helpers).
static _Thread_local int scoped = -1;
void wk_scope_activations(int choice) { scoped = choice; }
int wk_scoped_activations(void) { return scoped; }

int wk_activations(void) {
    const int setting = wk_activations_setting();
    if (setting >= 0) return setting;
    return scoped >= 0 ? scoped : WK_ACT_INT16;
}

int wk_int8_products_available(void) {
#if defined(__x86_64__)
    return wk_isa_level() >= WK_ISA_AVX512 && (wk_cpu_features() & WK_CPU_AVX512VNNI) != 0;
#else
    return 0;
#endif
}

struct wk_int8_rows {
    int code, split, vector;
    long m, blocks, groups;
    int8_group_block *packed;
};

wk_int8_rows *wk_int8_rows_alloc(int code, int precision, long m, long k) {
    if (m <= 0 || k <= 0 || k % QBLOCK != 0 || wk_coded_block_length(code) != QBLOCK) return NULL;
    if (precision != WK_ACT_INT8 && precision != WK_ACT_INT16) return NULL;
    wk_int8_rows *r = malloc(sizeof *r);
    if (!r) return NULL;
    r->code = code;
    r->split = precision == WK_ACT_INT16;
    r->vector = wk_int8_products_available();
    r->m = m;
    r->blocks = k / QBLOCK;
    r->groups = (m + LANES - 1) / LANES;
    if (posix_memalign((void **)&r->packed, 64, (size_t)(r->groups * r->blocks) * sizeof(int8_group_block)) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

void wk_int8_rows_fill(wk_int8_rows *r, const float *a, long lda, long block0, long block1) {
    if (!r) return;
    block0 = block0 < 0 ? 0 : block0;
    block1 = block1 > r->blocks ? r->blocks : block1;
    if (block0 < block1) pack_rows(r->code, r->split, r->m, r->blocks, block0, block1, a, lda, r->packed, r->vector);
}

wk_int8_rows *wk_int8_rows_make(int code, int precision, long m, long k, const float *a, long lda) {
    wk_int8_rows *r = wk_int8_rows_alloc(code, precision, m, k);
    wk_int8_rows_fill(r, a, lda, 0, k / QBLOCK);
    return r;
}

void wk_int8_rows_free(wk_int8_rows *r) {
    if (!r) return;
    free(r->packed);
    free(r);
}

static int product(const wk_int8_rows *r, long n, const void *w, long ldw_bytes, float *c, long ldc, int accumulate, int vector) {
    if (n <= 0) return 0;
    const long blocks = r->blocks, bytes = wk_coded_block_bytes(r->code);
    // The columns past n (the last group of 8) read a row of zero blocks, so the kernel always
    // runs whole; their outputs are not stored.
    unsigned char *zero = NULL;
    if (n % COLUMNS && !(zero = calloc((size_t)blocks, (size_t)bytes))) return -1;
    const unsigned char *rows = w;
    // W comes from memory 8 columns at a time (and stays in L1 for the other groups of rows):
    // while a block of 8 columns is multiplied, the same block of the next 8 is fetched. Half as
    // far ahead, 135 us for 16 x 1536 x 384 from memory; this, 85 us (in L1: 75 us).
    const long ahead = COLUMNS * ldw_bytes;
    for (long j0 = 0; j0 < n; j0 += COLUMNS) {
        const unsigned char *col[COLUMNS];
        for (int t = 0; t < COLUMNS; t++) col[t] = j0 + t < n ? rows + (j0 + t) * ldw_bytes : zero;
        const long cs = n - j0 < COLUMNS ? n - j0 : COLUMNS;
        for (long g = 0; g < r->groups; g++) {
            const long i0 = g * LANES, rs = r->m - i0 < LANES ? r->m - i0 : LANES;
            float *out = c + i0 * ldc + j0;
#if defined(__x86_64__)
            if (vector) {
                (r->split ? group_columns_int16 : group_columns_int8)(r->code, r->packed + g * blocks, blocks, col, ahead, out, ldc, rs,
                                                                     cs, accumulate);
            } else
#endif
                group_columns_base(r->code, r->split, r->packed + g * blocks, blocks, col, out, ldc, rs, cs, accumulate);
        }
    }
    free(zero);
    return 0;
}

int wk_gemm_nt_int8_rows(const wk_int8_rows *r, long n, const void *w, long ldw_bytes, float *c, long ldc, int accumulate) {
    if (!r || !wk_int8_products_available()) return -1;
    return product(r, n, w, ldw_bytes, c, ldc, accumulate, 1);
}

static int whole(int precision, long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                 float *c, long ldc, int accumulate, int vector) {
    if (m <= 0 || n <= 0) return 0;
    wk_int8_rows *r = wk_int8_rows_make(code, precision, m, k, a, lda);
    if (!r) return -1;
    const int status = product(r, n, w, ldw_bytes, c, ldc, accumulate, vector);
    wk_int8_rows_free(r);
    return status;
}

int wk_gemm_nt_int8(int precision, long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                    float *c, long ldc, int accumulate) {
    if (!wk_int8_products_available()) return -1;
    return whole(precision, m, n, k, a, lda, w, ldw_bytes, code, c, ldc, accumulate, 1);
}

int wk_gemm_nt_int8_reference(int precision, long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes,
                              int code, float *c, long ldc, int accumulate) {
    return whole(precision, m, n, k, a, lda, w, ldw_bytes, code, c, ldc, accumulate, 0);
}
