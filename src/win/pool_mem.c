/* Windows memory for mior_pool: one VirtualAlloc region, committed and touched up front,
 * optionally on large pages, locked with VirtualLock, and allocated on a NUMA node
 * (see src/common/pool_mem.h for the contract). */
#ifndef WIN32_LEAN_AND_MEAN /* the build defines it for every Windows file */
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/internal.h"
#include "common/pool_mem.h"

static size_t round_up(size_t n, size_t align) {
  return (n + align - 1) & ~(align - 1);
}

/* The few Windows errors these calls return, as the negative errno values the API promises. */
static int errno_from_win(DWORD e) {
  switch (e) {
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
  case ERROR_COMMITMENT_LIMIT:
  case ERROR_NO_SYSTEM_RESOURCES:
  case ERROR_WORKING_SET_QUOTA:
    return -ENOMEM;
  case ERROR_PRIVILEGE_NOT_HELD:
  case ERROR_ACCESS_DENIED:
    return -EPERM;
  case ERROR_INVALID_PARAMETER:
    return -EINVAL;
  default:
    return -EIO;
  }
}

/* Large pages need SeLockMemoryPrivilege held *and* enabled in the token.  Enabling is best effort:
 * if the account does not hold it, the large-page allocation fails and we use normal pages. */
static void enable_lock_memory_privilege(void) {
  HANDLE token;
  TOKEN_PRIVILEGES tp;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &token)) return;
  memset(&tp, 0, sizeof tp);
  tp.PrivilegeCount = 1;
  tp.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
  if (LookupPrivilegeValueA(NULL, "SeLockMemoryPrivilege", &tp.Privileges[0].Luid))
    AdjustTokenPrivileges(token, FALSE, &tp, 0, NULL, NULL);
  CloseHandle(token);
}

/* A node we can allocate on, or -1: Windows has no strict binding, only a preferred node for
 * VirtualAllocExNuma, which we take as the binding and report. */
static int usable_node(int node) {
  ULONG highest = 0;
  if (node < 0 || !GetNumaHighestNodeNumber(&highest) || (ULONG)node > highest) return -1;
  return node;
}

int mior__pool_mem_numa_supported(void) {
  ULONG highest = 0;
  return GetNumaHighestNodeNumber(&highest) ? 1 : 0;
}

static void *alloc_pages(size_t len, DWORD type, int node) {
  if (node >= 0)
    return VirtualAllocExNuma(GetCurrentProcess(), NULL, len, type, PAGE_READWRITE, (DWORD)node);
  return VirtualAlloc(NULL, len, type, PAGE_READWRITE);
}

/* VirtualLock is limited by the process's minimum working set; grow it by the region's size
 * once and try again before giving up. */
static int lock_region(void *base, size_t len) {
  if (VirtualLock(base, len)) return 0;
  DWORD err = GetLastError();
  if (err == ERROR_WORKING_SET_QUOTA) {
    SIZE_T lo = 0, hi = 0;
    HANDLE self = GetCurrentProcess();
    if (GetProcessWorkingSetSize(self, &lo, &hi) && SetProcessWorkingSetSize(self, lo + len, hi + len) &&
        VirtualLock(base, len))
      return 0;
    err = GetLastError();
  }
  return errno_from_win(err);
}

int mior__pool_mem_alloc(size_t len, unsigned flags, int numa_node, mior__pool_mem *out) {
  SYSTEM_INFO si;
  void *base = NULL;
  size_t maplen = 0, page;
  int node = usable_node(numa_node);

  memset(out, 0, sizeof *out);
  out->numa_node = -1;
  if (len == 0) return mior__fail(-EINVAL, "pool: empty region");
  GetSystemInfo(&si);
  page = si.dwPageSize;

  if (flags & MIOR__POOL_MEM_HUGEPAGES) {
    size_t large = GetLargePageMinimum(); /* 0 where the processor has no large pages */
    if (large) {
      enable_lock_memory_privilege();
      maplen = round_up(len, large);
      base = alloc_pages(maplen, MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES, node);
      if (base) {
        /* Large pages are allocated resident and never paged out. */
        out->pages = MIOR__POOL_PAGES_HUGE;
        page = large;
      }
    }
  }
  if (!base) {
    maplen = round_up(len, page);
    base = alloc_pages(maplen, MEM_RESERVE | MEM_COMMIT, node);
    if (!base) {
      int err = errno_from_win(GetLastError());
      return mior__fail(err, "pool: VirtualAlloc of %llu bytes failed (error %lu)", (unsigned long long)maplen,
                        (unsigned long)GetLastError());
    }
    /* Committed pages are only backed on first touch: touch them all now so the data path
     * never faults (and so a NUMA preference takes effect). */
    volatile uint8_t *p = (volatile uint8_t *)base;
    for (size_t off = 0; off < maplen; off += page) p[off] = 0;
  }

  if (flags & MIOR__POOL_MEM_MLOCK) {
    int rc = out->pages == MIOR__POOL_PAGES_HUGE ? 0 : lock_region(base, maplen);
    if (rc < 0) {
      VirtualFree(base, 0, MEM_RELEASE);
      return mior__fail(rc, "pool: VirtualLock of %llu bytes refused (raise the working set "
                        "size or use fewer buffers)", (unsigned long long)maplen);
    }
    out->locked = 1;
  }

  out->base = base;
  out->len = maplen;
  out->page_size = page;
  out->numa_node = node;
  return 0;
}

void mior__pool_mem_free(mior__pool_mem *mem) {
  if (!mem || !mem->base) return;
  VirtualFree(mem->base, 0, MEM_RELEASE); /* also unlocks */
  mem->base = NULL;
  mem->len = 0;
}
