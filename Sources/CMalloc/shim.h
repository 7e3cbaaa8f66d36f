#ifndef C_MALLOC_SHIM_H
#define C_MALLOC_SHIM_H

// glibc's own allocator interface (mallinfo2, malloc_trim), which Swift's Glibc module leaves out.
#if defined(__linux__)
#include <malloc.h>
#endif

#endif
