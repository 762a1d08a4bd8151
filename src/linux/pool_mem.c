/* Linux memory for mior_pool: one anonymous private mapping, populated up front, optionally on
 * huge pages, locked, and bound to a NUMA node (see src/common/pool_mem.h for the contract). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/internal.h"
#include "common/pool_mem.h"

/* Older C libraries lack these; the values are the kernel's ABI. */
#ifndef MADV_POPULATE_WRITE
#  define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef MAP_HUGE_SHIFT
#  define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_HUGE_2MB
#  define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif

#define HUGE_PAGE_SIZE ((size_t)2 << 20)

static size_t round_up(size_t n, size_t align) {
  return (n + align - 1) & ~(align - 1);
}

/* NUMA binding.  With libnuma we bind with mbind(MPOL_BIND) before the first touch, so every page
 * is allocated on the node; without it (or on a kernel without NUMA support) the request is
 * ignored and reported as node -1, as the public header promises. */
#if defined(MIOR_HAVE_NUMA)
#  include <numa.h>
#  include <numaif.h>

int mior__pool_mem_numa_supported(void) {
  return numa_available() >= 0;
}

/* Returns 1 if [addr, addr + len) is now bound to node, 0 if the request had to be ignored. */
static int bind_to_node(void *addr, size_t len, int node) {
  enum { MASK_LONGS = 64, BITS = 8 * sizeof(unsigned long) };
  unsigned long mask[MASK_LONGS];
  if (node < 0 || numa_available() < 0 || node > numa_max_node() || node >= MASK_LONGS * BITS)
    return 0;
  memset(mask, 0, sizeof mask);
  mask[node / BITS] |= 1ul << (node % BITS);
  /* The kernel reads maxnode - 1 bits (a historical off-by-one that libnuma also allows for).
   * A node without memory, or one outside our cpuset, is refused with EINVAL: ignore it. */
  unsigned long maxnode = (unsigned long)(node / BITS + 1) * BITS + 1;
  return mbind(addr, len, MPOL_BIND, mask, maxnode, 0) == 0;
}
#else
int mior__pool_mem_numa_supported(void) {
  return 0;
}

static int bind_to_node(void *addr, size_t len, int node) {
  (void)addr;
  (void)len;
  (void)node;
  return 0;
}
#endif

/* Fault every page in now, so the data path never takes a page fault.  MADV_POPULATE_WRITE does it
 * in one call (Linux 5.14+) and reports an out-of-memory as ENOMEM instead of killing us; older
 * kernels refuse the advice with EINVAL and we touch each page instead. */
static int populate(void *base, size_t len, size_t page) {
  if (madvise(base, len, MADV_POPULATE_WRITE) == 0) return 0;
  if (errno != EINVAL) return -errno;
  volatile uint8_t *p = (volatile uint8_t *)base;
  for (size_t off = 0; off < len; off += page) p[off] = 0;
  return 0;
}

/* A normal mapping aligned to 2 MiB and advised for transparent huge pages: the fallback when no
 * explicit huge pages are configured.  The alignment matters because the kernel only uses a huge
 * page for a 2 MiB-aligned range inside the mapping. */
static void *map_thp(size_t maplen, int *advised) {
  size_t span = maplen + HUGE_PAGE_SIZE;
  uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return MAP_FAILED;
  uint8_t *base = (uint8_t *)round_up((uintptr_t)raw, HUGE_PAGE_SIZE);
  if (base > raw) munmap(raw, (size_t)(base - raw));
  if (raw + span > base + maplen) munmap(base + maplen, (size_t)(raw + span - (base + maplen)));
  /* MADV_HUGEPAGE fails where THP is compiled out; the mapping is still good, on normal pages. */
  *advised = madvise(base, maplen, MADV_HUGEPAGE) == 0;
  return base;
}

int mior__pool_mem_alloc(size_t len, unsigned flags, int numa_node, mior__pool_mem *out) {
  const int prot = PROT_READ | PROT_WRITE;
  const int want_numa = numa_node >= 0;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t maplen = 0;
  void *base = MAP_FAILED;
  int pages = MIOR__POOL_PAGES_NORMAL;
  int populated = 0;
  int rc;

  memset(out, 0, sizeof *out);
  out->numa_node = -1;
  if (len == 0) return mior__fail(-EINVAL, "pool: empty region");

  /* MAP_POPULATE would place the pages before mbind could bind them, so with a NUMA node the
   * region is mapped unpopulated, bound, then populated. */
  if (flags & MIOR__POOL_MEM_HUGEPAGES) {
    /* Explicit 2 MiB pages (asked for by size, so a 1 GiB default_hugepagesz does not change
     * the rounding).  Fails with ENOMEM when fewer than needed are configured and free. */
    maplen = round_up(len, HUGE_PAGE_SIZE);
    base = mmap(NULL, maplen, prot,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB |
                    (want_numa ? 0 : MAP_POPULATE),
                -1, 0);
    if (base != MAP_FAILED) {
      pages = MIOR__POOL_PAGES_HUGE;
      page = HUGE_PAGE_SIZE;
      populated = !want_numa;
    } else {
      int advised = 0;
      base = map_thp(maplen, &advised);
      if (advised) pages = MIOR__POOL_PAGES_THP_ADVISED;
    }
  } else {
    maplen = round_up(len, page);
    base = mmap(NULL, maplen, prot,
                MAP_PRIVATE | MAP_ANONYMOUS | (want_numa ? 0 : MAP_POPULATE), -1, 0);
    populated = !want_numa;
  }
  if (base == MAP_FAILED) {
    int err = errno;
    return mior__fail(-err, "pool: mmap of %llu bytes failed: %s", (unsigned long long)maplen, strerror(err));
  }

  if (want_numa && bind_to_node(base, maplen, numa_node)) out->numa_node = numa_node;

  if (!populated) {
    rc = populate(base, maplen, page);
    if (rc < 0) {
      munmap(base, maplen);
      return mior__fail(rc, "pool: populating %llu bytes failed: %s", (unsigned long long)maplen, strerror(-rc));
    }
  }

  if (flags & MIOR__POOL_MEM_MLOCK) {
    /* The system call itself, not the libc wrapper: AddressSanitizer and ThreadSanitizer replace
     * mlock with a no-op that reports success, and then a sanitizer build would claim a lock it
     * does not have (and never see the limit). */
    if (syscall(SYS_mlock, base, maplen) != 0) {
      int err = errno;
      munmap(base, maplen);
      return mior__fail(-err,
                        "pool: mlock of %llu bytes refused: %s (raise RLIMIT_MEMLOCK, e.g. "
                        "ulimit -l, or grant CAP_IPC_LOCK)",
                        (unsigned long long)maplen, strerror(err));
    }
    out->locked = 1;
  }

  out->base = base;
  out->len = maplen;
  out->page_size = page;
  out->pages = pages;
  return 0;
}

void mior__pool_mem_free(mior__pool_mem *mem) {
  if (!mem || !mem->base) return;
  munmap(mem->base, mem->len); /* also drops the lock and the NUMA policy */
  mem->base = NULL;
  mem->len = 0;
}
