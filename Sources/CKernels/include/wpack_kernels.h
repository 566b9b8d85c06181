// Block primitives of the lazy tensor engine: each works on `n` contiguous floats (a block of
// a row, at most a few thousand, so it stays in L1). The Swift interpreter strings them together;
// this file only has to be fast. Every function has an AVX2+FMA version and a baseline x86-64
// (or portable) version, chosen once at run time from the CPU's features, so one binary runs
// everywhere and uses AVX2 where it exists.
#ifndef WPACK_KERNELS_H
#define WPACK_KERNELS_H

#include <stdint.h>

typedef enum {
    WK_ADD, WK_SUB, WK_MUL, WK_DIV, WK_MAX, WK_MIN, WK_POW,
    WK_LT, WK_LE, WK_GT, WK_GE, WK_EQ, WK_NE
} wk_binary_op;

typedef enum {
    WK_NEG, WK_ABS, WK_EXP, WK_LOG, WK_SQRT, WK_RSQRT, WK_TANH, WK_SIGMOID, WK_RELU,
    WK_GELU_ERF, WK_GELU_TANH, WK_SILU, WK_ERF, WK_RECIPROCAL, WK_SQUARE,
    WK_SIN, WK_COS, WK_HARDSIGMOID, WK_HARDSWISH, WK_FLOOR
} wk_unary_op;

typedef enum { WK_SUM, WK_RMAX, WK_RMIN } wk_reduce_op;

// ---------------------------------------------------------------- CPU and kernel levels (cpu.c)

/// Features, as detected by cpuid and confirmed enabled by the OS (xgetbv).
enum {
    WK_CPU_AVX2 = 1 << 0, WK_CPU_FMA = 1 << 1, WK_CPU_F16C = 1 << 2,
    WK_CPU_AVX512F = 1 << 3, WK_CPU_AVX512BW = 1 << 4, WK_CPU_AVX512DQ = 1 << 5, WK_CPU_AVX512VL = 1 << 6,
    WK_CPU_AVX512VNNI = 1 << 7, WK_CPU_AVXVNNI = 1 << 8, WK_CPU_AVX512BF16 = 1 << 9
};
/// Kernel levels, each a superset of the one before.
enum { WK_ISA_BASELINE = 0, WK_ISA_AVX2 = 1, WK_ISA_AVX512 = 2 };

unsigned wk_cpu_features(void);
/// The CPU's brand string (cpuid 0x80000002-4), trimmed; empty when it has none.
void wk_cpu_model(char *out, long size);
/// The highest level the CPU and OS support (AVX-512 means F, BW, DQ and VL).
int wk_detected_level(void);
/// WPACK_ISA as a level: -1 when unset, -2 when not one of baseline, avx2, avx512.
int wk_isa_cap(void);
/// A level's name as WPACK_ISA spells it: the level, -1 for NULL, -2 when unknown.
int wk_parse_isa(const char *name);
/// The level in use on this thread: detected, capped by WPACK_ISA and by wk_force_level.
int wk_isa_level(void);
/// Caps the calling thread's level (and its pool jobs'); -1 removes the cap. Tests run
/// every level the machine has through it.
void wk_force_level(int level);
int wk_forced_level(void);
/// 1 when the AVX2+FMA versions are in use.
int wk_uses_avx2(void);
/// wk_force_level(baseline) or (-1): the older spelling, kept for the tests that use it.
void wk_force_baseline(int on);
/// Whether the calling thread is forced to the baseline.
int wk_forced_baseline(void);
/// Runs `iterations` of ten independent multiply-add chains at the thread's level (the widest
/// vectors it has); returns the floating-point operations done. `sink` keeps the result alive.
long wk_fma_peak_run(long iterations, float *sink);

/// out[i] = a[i*sa] op b[i*sb]; sa and sb are 0 (broadcast a scalar) or 1.
void wk_binary(int op, const float *a, long sa, const float *b, long sb, float *out, long n);
/// out[i] = op(a[i]).
void wk_unary(int op, const float *a, float *out, long n);
/// out[i] = c[i*sc] != 0 ? a[i*sa] : b[i*sb].
void wk_select(const float *c, long sc, const float *a, long sa, const float *b, long sb, float *out, long n);
/// Reduces n floats (n > 0) to one.
float wk_reduce(int op, const float *a, long n);
/// acc[i] = acc[i] op a[i*sa] (column reductions: a row added into an accumulator row).
void wk_accumulate(int op, float *acc, const float *a, long sa, long n);
/// Index of the first maximum (or minimum when `minimum`) of n floats; NaN counts as maximal.
long wk_argext(const float *a, long n, int minimum, float *value);
/// out[i] = base[i*stride]
void wk_gather(const float *base, long stride, float *out, long n);
/// base[i*stride] = src[i*ss] (ss 0 or 1)
void wk_scatter(const float *src, long ss, float *base, long stride, long n);

/// Softmax (or log-softmax) of one row, in place allowed.
void wk_softmax_row(const float *x, float *out, long n, int logarithm);
/// (x - mean) / sqrt(var + eps) * w + b, or x / sqrt(mean(x^2) + eps) * w when rms;
/// w and b may be NULL; sw/sb are their strides (0 or 1).
void wk_norm_row(const float *x, float *out, long n, const float *w, long sw, const float *b, long sb,
                 float eps, int rms);

/// C[m, n] = A[m, k] · W[n, k]ᵀ (row-major, leading dimensions lda, ldw, ldc), reading W in
/// place: the product of a few rows with a linear layer's weight, where packing W for a
/// general GEMM would cost more than the arithmetic. With `accumulate`, C += A · Wᵀ.
void wk_gemm_nt(long m, long n, long k, const float *a, long lda, const float *w, long ldw, float *c, long ldc,
                int accumulate);

/// softmax(q·kᵀ·scale + mask)·v for one (batch, head) pair: t query rows (qs apart), s key and
/// value rows (ks, vs apart), each row's d or dv elements contiguous; mask (or NULL) added at
/// mask[i·mrs + j·mstep]; scores: wk_attention_scratch(t, s, d, dv) floats of scratch; output rows
/// os apart. With shift >= 0, query row i sees keys 0 ... i + shift only.
void wk_attention_head(long t, long s, long d, long dv, const float *q, long qs, const float *k, long ks,
                       const float *v, long vs, const float *mask, long mrs, long mstep, float scale,
                       long shift, float *scores, float *out, long os);

/// Up to this many query rows (a decode step's), a head's scores are one pass of dot products;
/// more go through six-row register tiles.
#define WK_ATTENTION_FEW_QUERIES 4

/// The floats of scratch wk_attention_head needs for t queries, s keys, head widths d and dv.
long wk_attention_scratch(long t, long s, long d, long dv);

/// One row of an im2col patch matrix, [ho, wo] contiguous in dst: the input pixel at
/// (oi·sh + oh, oj·sw + ow) of a plane with strides (xh, xw) and size h x w, or 0 outside it.
void wk_im2col_row(const float *x, long xh, long xw, long h, long w, float *dst, long ho, long wo,
                   long sh, long sw, long oh, long ow);

/// A 2-D pooling (pooling.c): the input pixel (n, c, i, j) at x[n*sn + c*sc + i*sh + j*sw];
/// windows kh x kw every (stride_h, stride_w), padded by (pad_h, pad_w), never seen by the max
/// and counted as zeros by the average.
typedef struct {
    const float *x;
    long sn, sc, sh, sw;
    long channels, h, w, ho, wo;
    long kh, kw, stride_h, stride_w, pad_h, pad_w;
    int is_max;
} wk_pool_desc;
/// Planes [plane0, plane1) (plane = image * channels + channel) into out, [planes, ho, wo]
/// contiguous.
void wk_pool2d_planes(const wk_pool_desc *d, long plane0, long plane1, float *out);

/// wpack's SGEMM (gemm/sgemm.c): C[m, n] (row stride ldc; = or, with accumulate, +=) A · B,
/// A's element (i, p) at a[i*rsa + p*csa] and B's (p, j) at b[p*rsb + j*csb], split over
/// `workers` of the pool. `before` (when not NULL) runs on each tile of C before its products,
/// which then accumulate onto what it wrote; `after` runs on each finished tile. Tiles are
/// disjoint and each is passed to the callbacks once, on the worker computing it. Returns 0,
/// or -1 when its scratch memory could not be allocated (C is then incomplete).
typedef void (*wk_sgemm_tile_fn)(void *ctx, long row0, long row1, long col0, long col1);
int wk_sgemm(long m, long n, long k, const float *a, long rsa, long csa, const float *b, long rsb, long csb, float *c,
             long ldc, int accumulate, long workers, wk_sgemm_tile_fn before, wk_sgemm_tile_fn after, void *ctx);
/// The width of the micro-kernel's tile (its NR) at the calling thread's level.
long wk_sgemm_panel_width(void);

/// Weight codings (gemm/coded.c), numbered as the .wpk dtypes: a weight stored in one of them is
/// read as it is stored and decoded to float32 only in cache-sized pieces.
enum { WK_CODE_F32 = 1, WK_CODE_F16 = 2, WK_CODE_BF16 = 3, WK_CODE_Q8_0 = 14, WK_CODE_Q4_0 = 15, WK_CODE_Q4_1 = 16 };
/// Bytes of one block (one element for the unblocked codings), and values per block; 0 for an
/// unknown code.
long wk_coded_block_bytes(int code);
long wk_coded_block_length(int code);
float wk_half_to_float(unsigned short h);
/// Elements [start, start + count) of a coded row (its first block at `row`) as float32.
void wk_decode(int code, const void *row, long start, long count, float *out);
/// Element `index` of coded data starting at `base` (for a block type, index / 32 is the block).
float wk_coded_element(int code, const void *base, long index);
/// wk_gemm_nt with W coded, its rows ldw_bytes apart.
void wk_gemm_nt_coded(long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                      float *c, long ldc, int accumulate);
/// wk_gemm_nt_coded for 1 to 4 rows of A and a block-coded W (q8_0, q4_0, q4_1; K a multiple
/// of 32), A's rows rounded to int16 per block of 32 (scale max|x| / 32767) and each block's
/// product taken in int32 (see coded_gemv.c for the error bound): 0, or -1 when it does not
/// apply (or no memory for K above 4096).
int wk_gemv_coded(long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                  float *c, long ldc, int accumulate);
/// What products of more than 4 rows with a block-coded weight do with A: keep it float32, or
/// round it per block of 32 to int8 (scale max|x| / 127) or to int16 as two int8 halves (scale
/// max|x| / 32512), each block's product summed in int32 by AVX-512 VNNI (gemm/coded_int8.c,
/// which gives the error bounds).
enum { WK_ACT_FLOAT = 0, WK_ACT_INT8 = 1, WK_ACT_INT16 = 2 };
/// wk_gemm_nt_coded for a block-coded W (q8_0, q4_0, q4_1; K a multiple of 32) with A rounded
/// at `precision` (WK_ACT_INT8 or WK_ACT_INT16). Returns 0, or -1 when it does not apply (no
/// VNNI or capped below avx512, another coding or precision, K, no memory).
int wk_gemm_nt_int8(int precision, long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes, int code,
                    float *c, long ldc, int accumulate);
/// The same arithmetic one output at a time, in C: the same bits as wk_gemm_nt_int8 (tests).
int wk_gemm_nt_int8_reference(int precision, long m, long n, long k, const float *a, long lda, const void *w, long ldw_bytes,
                              int code, float *c, long ldc, int accumulate);
/// A's rows rounded once for several wk_gemm_nt_int8_rows calls (the workers' column ranges of
/// one product with a W of this coding): NULL when it does not apply or no memory.
typedef struct wk_int8_rows wk_int8_rows;
wk_int8_rows *wk_int8_rows_make(int code, int precision, long m, long k, const float *a, long lda);
void wk_int8_rows_free(wk_int8_rows *rows);
/// wk_int8_rows_make in two steps, so several threads can round one A: the space (NULL as
/// wk_int8_rows_make would fail), then blocks [block0, block1) of K of every row (disjoint
/// ranges may be filled at once; every block must be filled before a product reads them).
wk_int8_rows *wk_int8_rows_alloc(int code, int precision, long m, long k);
void wk_int8_rows_fill(wk_int8_rows *rows, const float *a, long lda, long block0, long block1);
/// wk_gemm_nt_int8 with A already rounded: C[rows.m, n] (=, +=) A · Wᵀ.
int wk_gemm_nt_int8_rows(const wk_int8_rows *rows, long n, const void *w, long ldw_bytes, float *c, long ldc, int accumulate);
/// Whether wk_gemm_nt_int8 runs on this thread: AVX-512 VNNI present and the level avx512.
int wk_int8_products_available(void);
/// The precision for this thread's products: WPACK_ACTIVATIONS=float|int8|int16 when set (the
/// user's choice wins), else the thread's wk_scope_activations, else WK_ACT_INT16.
int wk_activations(void);
/// The thread's own choice (a WK_ACT_ value, or -1 for none), and what it is.
void wk_scope_activations(int choice);
int wk_scoped_activations(void);
/// WPACK_ACTIVATIONS's choice: a WK_ACT_ value, -1 unset, -2 a value that names none.
int wk_activations_setting(void);
/// wk_sgemm with B = Wᵀ for a coded W [n, k] (rows ldw_bytes apart): B's panels are decoded
/// from W while they are packed, so the product runs at float32 speed on the narrow weight.
int wk_sgemm_coded(long m, long n, long k, const float *a, long rsa, long csa, const void *w, long ldw_bytes, int code,
                   float *c, long ldc, int accumulate, long workers, wk_sgemm_tile_fn before, wk_sgemm_tile_fn after,
                   void *ctx);

/// A convolution for wk_conv_gemm: x's element (image, channel, row, column) at
/// x[n*xn + c*xc + r*xh + q*xw]; weights' (oc, k), k = (c*kh + ky)*kw + kx within a group, at
/// weights[oc*wrs + k*wcs]; bias (may be NULL) at bias[oc*bias_stride]; out contiguous
/// [images, groups*out_per_group, ho, wo]. relu applies max(·, 0) after the bias (a NaN stays
/// NaN): read by Winograd with a pool_out (see wk_conv_winograd_pools) and by the direct
/// kernel; a pool_out, Winograd's alone, takes the 2x2, stride 2 max pool of the result instead
/// of `out` ([images, channels, ho/2, wo/2]; a NaN in a window makes it NaN). The algorithms
/// that cannot take them return -2.
typedef struct {
    const float *x;
    long xn, xc, xh, xw;
    long h, w, channels;
    long kh, kw, sh, sw, ph, pw, dh, dw;
    long ho, wo;
    long images, groups, out_per_group;
    const float *weights;
    long wrs, wcs;
    const float *bias;
    long bias_stride;
    float *out;
    int relu;
    float *pool_out;
} wk_conv_desc;
/// Called with each finished piece of the output: images [image0, image1), channels
/// [channel0, channel1), positions (row-major over ho x wo) [pos0, pos1).
typedef void (*wk_conv_tile_fn)(void *ctx, long image0, long image1, long channel0, long channel1, long pos0, long pos1);
/// The convolution through the GEMM micro-kernels without an im2col buffer (conv/implicit_gemm.c),
/// split over `workers`. Returns 0, or -1 when its scratch memory could not be allocated.
int wk_conv_gemm(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx);
/// Winograd (conv/winograd.c: F(4x4, 3x3), or F(2x2, 3x3) where the output is under 4 x 4)
/// for 3x3, stride 1, undilated, one-group convolutions with at least 8 input and 8 output
/// channels (wk_conv_winograd_applies): the same contract as wk_conv_gemm, and -2 for a
/// convolution it does not apply to.
int wk_conv_winograd_applies(const wk_conv_desc *d);
int wk_conv_winograd(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx);
/// Its tile's side for d: 4 (F(4x4, 3x3)) or 2 (F(2x2, 3x3)).
int wk_conv_winograd_tile(const wk_conv_desc *d);
/// Whether Winograd can take relu and pool_out for d: F(4x4) with whole tiles (the output's
/// sides multiples of 4), so each tile pools into 2 x 2 outputs of its own.
int wk_conv_winograd_pools(const wk_conv_desc *d);
/// The direct convolution (conv/direct.c) for few input channels: one group, stride 1,
/// undilated, K = channels·kh·kw at most 27, at least 4 output channels and 8 output columns.
int wk_conv_direct_applies(const wk_conv_desc *d);
int wk_conv_direct(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx);
enum { WK_CONV_IMPLICIT_GEMM = 0, WK_CONV_WINOGRAD = 1, WK_CONV_DIRECT = 2 };
/// The algorithm wk_conv2d takes for d on this thread (conv/dispatch.c).
int wk_conv_algorithm(const wk_conv_desc *d);
/// The convolution by the algorithm that suits it: Winograd, direct or the implicit GEMM.
int wk_conv2d(const wk_conv_desc *d, long workers, wk_conv_tile_fn after, void *ctx);
/// Keeps (1) or frees (0) the calling thread's convolutions on the implicit GEMM; returns the
/// previous setting.
int wk_conv_force_gemm(int on);
/// WPACK_CONV as read once: 0 unset or auto, 1 gemm, 2 anything else (the tool refuses it).
int wk_conv_env_state(void);

/// How many bytes at the start of p[0..<n] are ASCII and not NUL.
long wk_ascii_prefix(const unsigned char *p, long n);

/// The engine's worker threads (see pool.c): `workers` counts the calling thread; started once.
typedef void (*wk_task_fn)(void *ctx, long index);
void wk_pool_start(int workers);
/// Runs fn(ctx, i) for i in 0..<count, index 0 on the calling thread, the others on helpers
/// (or all on the caller when another job is running). Returns when all have finished.
void wk_pool_run(long count, wk_task_fn fn, void *ctx);

#endif
