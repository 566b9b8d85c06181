#include "wpack_kernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

// The engine's worker threads. GCD's concurrentPerform parks its threads between calls; on
// these virtual machines waking one costs tens of microseconds, more than a small kernel takes
// (MiniLM at 1 x 16 runs 72 kernels in a few milliseconds). These helpers spin for a short
// while after each job before they sleep, so back-to-back kernels find them awake. Only the
// engine submits work here (OpenBLAS, for matrix-vector products, runs on one thread), so the spinning never competes with
// another pool.
//
// One mailbox per helper, statically partitioned work: the caller posts index h+1 to helper
// h, runs index 0 itself, then waits for every helper's `done` to reach its `posted`. A job is
// never reused before all helpers have finished it, so a slow helper cannot see a torn job.

#define MAX_HELPERS 63

typedef struct {
    long posted;    // sequence number of the last job posted (written by the caller)
    long done;      // sequence number of the last job finished (written by the helper)
    wk_task_fn fn;
    void *ctx;
    long index;
    int level;      // the submitting thread's forced kernel level (-1: none), for the job's duration
    int activations; // its wk_scope_activations, so a product a task runs decides as the submitter would
    int sleeping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char pad[64];
} mailbox;

static mailbox boxes[MAX_HELPERS];
static int helpers = -1;
static long spin_ns = 200000;
static pthread_mutex_t submit = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int requested_workers = 1;

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *helper_main(void *arg) {
    mailbox *b = arg;
    long seen = 0;
    for (;;) {
        long start = 0;
        unsigned spins = 0;
        while (__atomic_load_n(&b->posted, __ATOMIC_ACQUIRE) == seen) {
            CPU_RELAX();
            if ((++spins & 255) != 0) continue;
            long t = now_ns();
            if (start == 0) start = t;
            if (t - start < spin_ns) continue;
            pthread_mutex_lock(&b->mu);
            b->sleeping = 1;
            while (__atomic_load_n(&b->posted, __ATOMIC_ACQUIRE) == seen) pthread_cond_wait(&b->cv, &b->mu);
            b->sleeping = 0;
            pthread_mutex_unlock(&b->mu);
        }
        seen = __atomic_load_n(&b->posted, __ATOMIC_ACQUIRE);
        wk_force_level(b->level);
        wk_scope_activations(b->activations);
        b->fn(b->ctx, b->index);
        wk_force_level(-1);
        wk_scope_activations(-1);
        __atomic_store_n(&b->done, seen, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void start_helpers(void) {
    const char *s = getenv("WPACK_SPIN_US");
    if (s) spin_ns = atol(s) * 1000L;
    int n = requested_workers - 1;
    if (n > MAX_HELPERS) n = MAX_HELPERS;
    int started = 0;
    for (int h = 0; h < n; h++) {
        pthread_mutex_init(&boxes[h].mu, NULL);
        pthread_cond_init(&boxes[h].cv, NULL);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, helper_main, &boxes[h]) != 0) { pthread_attr_destroy(&attr); break; }
        pthread_attr_destroy(&attr);
        started++;
    }
    helpers = started;
}

void wk_pool_start(int workers) {
    requested_workers = workers < 1 ? 1 : workers;
    pthread_once(&once, start_helpers);
}

void wk_pool_run(long count, wk_task_fn fn, void *ctx) {
    if (count <= 0) return;
    // One job at a time: a second thread submitting while the helpers are busy runs its
    // job alone rather than waiting.
    if (count == 1 || helpers <= 0 || pthread_mutex_trylock(&submit) != 0) {
        for (long i = 0; i < count; i++) fn(ctx, i);
        return;
    }
    long used = count - 1 < helpers ? count - 1 : helpers;
    for (long h = 0; h < used; h++) {
        mailbox *b = &boxes[h];
        b->fn = fn;
        b->ctx = ctx;
        b->index = h + 1;
        b->level = wk_forced_level();
        b->activations = wk_scoped_activations();
        long seq = __atomic_load_n(&b->done, __ATOMIC_ACQUIRE) + 1;
        __atomic_store_n(&b->posted, seq, __ATOMIC_RELEASE);
        pthread_mutex_lock(&b->mu);
        if (b->sleeping) pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
    }
    fn(ctx, 0);
    // More indices than helpers: the caller takes the rest (callers split work so that
    // count never exceeds the number of workers).
    for (long i = used + 1; i < count; i++) fn(ctx, i);
    for (long h = 0; h < used; h++) {
        while (__atomic_load_n(&boxes[h].done, __ATOMIC_ACQUIRE) != boxes[h].posted) CPU_RELAX();
    }
    pthread_mutex_unlock(&submit);
}
