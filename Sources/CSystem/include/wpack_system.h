#ifndef WPACK_SYSTEM_H
#define WPACK_SYSTEM_H

#include <stddef.h>

// Mapped-file fault guard. A file mapped read-only can be truncated or rewritten by another
// process; touching a page past its new end raises SIGBUS. Ranges registered here are the
// mappings of .wpk files: a SIGBUS inside one ends the process with one line naming the file
// (exit 1) instead of a crash. A fault anywhere else gets the default action.

/// Records a mapping; returns its slot, or -1 when the table is full (the range is then simply
/// not guarded).
int wpack_fault_register(const void *base, size_t length, const char *path);
/// Forgets a slot returned by wpack_fault_register (before the range is unmapped).
void wpack_fault_unregister(int slot);
/// Installs the SIGBUS handler (once; later calls do nothing). Processes that want it opt in:
/// the wpack tool does, a library user may.
void wpack_fault_install(void);

/// Flushes stdout and reports whether everything written to it so far reached the kernel:
/// 0 on success, else the errno of the failure.
int wpack_stdout_finish(void);
/// Restores SIGPIPE's default action, so writing into a closed pipe ends the process quietly,
/// as it does for every Unix tool (a runtime may have set it to be ignored).
void wpack_default_sigpipe(void);

/// Opens an unnamed regular file for writing in `directory` (Linux O_TMPFILE), mode 0644;
/// -1 with errno set where the system or file system has none.
int wpack_open_unnamed(const char *directory);

#endif
