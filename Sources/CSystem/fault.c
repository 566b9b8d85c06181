#define _GNU_SOURCE
#include "wpack_system.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>

enum { slots = 256, path_bytes = 512 };

// Each slot is published by its length: the handler reads a slot only when length != 0, and a
// writer sets base and path before storing the length (release), so the handler never sees a
// half-written slot.
static _Atomic(uintptr_t) slot_base[slots];
static _Atomic(size_t) slot_length[slots];
static _Atomic(int) slot_taken[slots];
static char slot_path[slots][path_bytes];
static atomic_flag installed = ATOMIC_FLAG_INIT;

int wpack_fault_register(const void *base, size_t length, const char *path) {
    if (length == 0) return -1;
    for (int i = 0; i < slots; i++) {
        int expected = 0;
        if (!atomic_compare_exchange_strong(&slot_taken[i], &expected, 1)) continue;
        strncpy(slot_path[i], path, path_bytes - 1);
        slot_path[i][path_bytes - 1] = 0;
        atomic_store_explicit(&slot_base[i], (uintptr_t)base, memory_order_relaxed);
        atomic_store_explicit(&slot_length[i], length, memory_order_release);
        return i;
    }
    return -1;
}

void wpack_fault_unregister(int slot) {
    if (slot < 0 || slot >= slots) return;
    atomic_store_explicit(&slot_length[slot], 0, memory_order_release);
    atomic_store(&slot_taken[slot], 0);
}

static void write_all(const char *text, size_t length) {
    while (length > 0) {
        ssize_t n = write(2, text, length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        text += n;
        length -= (size_t)n;
    }
}

static void on_bus_error(int signal_number, siginfo_t *info, void *context) {
    (void)context;
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int i = 0; i < slots; i++) {
        size_t length = atomic_load_explicit(&slot_length[i], memory_order_acquire);
        if (length == 0) continue;
        uintptr_t base = atomic_load_explicit(&slot_base[i], memory_order_relaxed);
        if (address < base || address - base >= length) continue;
        // Only async-signal-safe calls from here on: write and _exit.
        static const char head[] = "wpack: error: ";
        static const char tail[] = ": the file was truncated or replaced in place while wpack was reading it; "
                                   "its data can no longer be trusted (replace files by renaming a new one over them)\n";
        write_all(head, sizeof head - 1);
        write_all(slot_path[i], strnlen(slot_path[i], path_bytes));
        write_all(tail, sizeof tail - 1);
        _exit(1);
    }
    // Not ours: the default action, as if no handler were installed.
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

void wpack_fault_install(void) {
    if (atomic_flag_test_and_set(&installed)) return;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_bus_error;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, NULL);
}

int wpack_stdout_finish(void) {
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) return errno != 0 ? errno : EIO;
    return 0;
}

void wpack_default_sigpipe(void) {
    signal(SIGPIPE, SIG_DFL);
}

int wpack_open_unnamed(const char *directory) {
#ifdef O_TMPFILE
    return open(directory, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
#else
    (void)directory;
    errno = EOPNOTSUPP;
    return -1;
#endif
}
