// Static-linking-only declarations are wanted for ZSTD_decompressBound, which the shared
// library exports: it bounds a frame's output before a reader allocates for it.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
