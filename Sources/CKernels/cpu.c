#include "wpack_kernels.h"
#include <stdlib.h>
#include <string.h>

// What the CPU can do, asked once; which kernel level runs, decided from that, WPACK_ISA and
// the calling thread's forced level (tests). Every kernel family asks wk_isa_level() and
// picks its variant; nothing is chosen at compile time, so one binary serves every x86-64.

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static unsigned detect(void) {
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    // The OS must save the wider registers, or using them faults: YMM (bits 1-2) for AVX,
    // opmask and ZMM (bits 5-7) for AVX-512.
    int ymm = (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xE0) == 0xE0;
    if (ymm && ((c >> 12) & 1)) f |= WK_CPU_FMA;
    if (ymm && ((c >> 29) & 1)) f |= WK_CPU_F16C;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if (ymm && ((b >> 5) & 1)) f |= WK_CPU_AVX2;
        if (zmm && ((b >> 16) & 1)) f |= WK_CPU_AVX512F;
        if (zmm && ((b >> 17) & 1)) f |= WK_CPU_AVX512DQ;
        if (zmm && ((b >> 30) & 1)) f |= WK_CPU_AVX512BW;
        if (zmm && ((b >> 31) & 1)) f |= WK_CPU_AVX512VL;
        if (zmm && ((c >> 11) & 1)) f |= WK_CPU_AVX512VNNI;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
            if (ymm && ((a >> 4) & 1)) f |= WK_CPU_AVXVNNI;
            if (zmm && ((a >> 5) & 1)) f |= WK_CPU_AVX512BF16;
        }
    }
    return f;
}

void wk_cpu_model(char *out, long size) {
    unsigned regs[12] = {0}, a, b, c, d;
    if (size <= 0) return;
    out[0] = 0;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000004) return;
    for (unsigned leaf = 0; leaf < 3; leaf++) {
        __get_cpuid(0x80000002 + leaf, &regs[leaf * 4], &regs[leaf * 4 + 1], &regs[leaf * 4 + 2], &regs[leaf * 4 + 3]);
    }
    char text[49];
    memcpy(text, regs, 48);
    text[48] = 0;
    char *start = text;
    while (*start == ' ') start++;
    long n = (long)strlen(start);
    while (n > 0 && start[n - 1] == ' ') n--;
    if (n >= size) n = size - 1;
    memcpy(out, start, (size_t)n);
    out[n] = 0;
}
#else
static unsigned detect(void) { return 0; }
void wk_cpu_model(char *out, long size) { if (size > 0) out[0] = 0; }
#endif

static int features_state = -1;

unsigned wk_cpu_features(void) {
    int state = __atomic_load_n(&features_state, __ATOMIC_RELAXED);
    if (state < 0) {
        state = (int)detect();
        __atomic_store_n(&features_state, state, __ATOMIC_RELAXED);
    }
    return (unsigned)state;
}

int wk_detected_level(void) {
    unsigned f = wk_cpu_features();
    const unsigned avx512 = WK_CPU_AVX512F | WK_CPU_AVX512BW | WK_CPU_AVX512DQ | WK_CPU_AVX512VL;
    if ((f & avx512) == avx512 && (f & WK_CPU_FMA) && (f & WK_CPU_AVX2) && (f & WK_CPU_F16C)) return WK_ISA_AVX512;
    if ((f & WK_CPU_AVX2) && (f & WK_CPU_FMA) && (f & WK_CPU_F16C)) return WK_ISA_AVX2;
    return WK_ISA_BASELINE;
}

int wk_parse_isa(const char *name) {
    if (!name) return -1;
    if (strcmp(name, "baseline") == 0) return WK_ISA_BASELINE;
    if (strcmp(name, "avx2") == 0) return WK_ISA_AVX2;
    if (strcmp(name, "avx512") == 0) return WK_ISA_AVX512;
    return -2;
}

static int cap_state = -3;  // -3: not read yet

int wk_isa_cap(void) {
    int state = __atomic_load_n(&cap_state, __ATOMIC_RELAXED);
    if (state == -3) {
        // An unknown value caps nothing here; the tool refuses it before any work (the
        // library cannot print), see CPU.checkEnvironment().
        state = wk_parse_isa(getenv("WPACK_ISA"));
        __atomic_store_n(&cap_state, state, __ATOMIC_RELAXED);
    }
    return state;
}

// Per thread: a test forcing a lower level affects its own evaluation only (the pool hands
// the caller's choice to its helpers with each job), never a test running beside it.
static _Thread_local int forced_level = -1;

void wk_force_level(int level) { forced_level = level; }
int wk_forced_level(void) { return forced_level; }
void wk_force_baseline(int on) { forced_level = on ? WK_ISA_BASELINE : -1; }
int wk_forced_baseline(void) { return forced_level == WK_ISA_BASELINE; }

static int process_level = -1;

// Called before every block primitive: one relaxed load and one thread-local read.
int wk_isa_level(void) {
    int level = __atomic_load_n(&process_level, __ATOMIC_RELAXED);
    if (level < 0) {
        level = wk_detected_level();
        int cap = wk_isa_cap();
        if (cap >= 0 && cap < level) level = cap;
        __atomic_store_n(&process_level, level, __ATOMIC_RELAXED);
    }
    if (forced_level >= 0 && forced_level < level) level = forced_level;
    return level;
}

int wk_uses_avx2(void) { return wk_isa_level() >= WK_ISA_AVX2; }
