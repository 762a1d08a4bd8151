/* The operating-system memory layer under mior_pool: one contiguous, populated region, optionally
 * on huge pages, locked in memory and bound to a NUMA node.  Implemented once per OS
 * (src/linux/pool_mem.c, src/win/pool_mem.c); src/common/pool.c only sees this interface.
 * Internal: not installed. */
#ifndef MIOR_COMMON_POOL_MEM_H
#define MIOR_COMMON_POOL_MEM_H

#include <stddef.h>

/* Flags for mior__pool_mem_alloc: the same values as the public MIOR_POOL_* flags, so the pool
 * passes its validated flags straight through. */
#define MIOR__POOL_MEM_HUGEPAGES 0x1u /* try huge pages first; fall back to normal pages */
#define MIOR__POOL_MEM_MLOCK 0x2u     /* lock the region; failure to lock fails the allocation */

/* How the region ended up being backed. */
enum mior__pool_mem_pages {
  MIOR__POOL_PAGES_NORMAL = 0,    /* ordinary pages */
  MIOR__POOL_PAGES_HUGE = 1,      /* explicit huge pages (Linux MAP_HUGETLB, Windows large pages) */
  MIOR__POOL_PAGES_THP_ADVISED = 2 /* normal mapping advised for transparent huge pages: the
                                      kernel may or may not have used them, so not reported as
                                      huge pages in the stats */
};

typedef struct mior__pool_mem {
  void *base;       /* first byte; page aligned */
  size_t len;       /* length actually mapped: the request rounded up to the page size used */
  size_t page_size; /* page size used for the mapping */
  int pages;        /* enum mior__pool_mem_pages */
  int locked;       /* 1 if the whole mapping is locked in memory */
  int numa_node;    /* node the mapping is bound to, or -1 */
} mior__pool_mem;

/* Map len bytes (rounded up to the page size), populated so that no page faults remain on the
 * data path.  numa_node -1 means no preference; a node the system cannot bind to is ignored and
 * reported as -1 in out->numa_node.  Returns 0, or a negative errno recorded with mior__fail
 * (mapping failed, or MIOR__POOL_MEM_MLOCK was asked and locking was refused). */
int mior__pool_mem_alloc(size_t len, unsigned flags, int numa_node, mior__pool_mem *out);

/* Unmap a region from mior__pool_mem_alloc.  NULL or an empty descriptor is a no-op. */
void mior__pool_mem_free(mior__pool_mem *mem);

/* 1 if this build and this system can bind memory to NUMA nodes (on Linux: built with libnuma
 * and the kernel has NUMA support), else 0.  Lets tests know which outcome to expect. */
int mior__pool_mem_numa_supported(void);

#endif /* MIOR_COMMON_POOL_MEM_H */
