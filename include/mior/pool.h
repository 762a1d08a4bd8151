/* mior_pool: one contiguous, pinned region cut into fixed-size slots.
 *
 * A pool hands out slots by index.  The region is allocated once (mmap with MAP_POPULATE on Linux,
 * VirtualAlloc on Windows), optionally on huge pages and locked in memory, and is registered with
 * the kernel ring once, as one region; backends refer to a slot by its index.
 *
 * Threading: mior_pool_acquire* and mior_pool_release* are lock-free and safe from any number of
 * threads at once.  Reuse is LIFO: the slot released last is handed out first, while its cache
 * lines are still warm.
 *
 * Ownership: a slot returned by mior_pool_acquire belongs to the caller until it is passed to
 * mior_pool_release (or handed to a transport, which then owns it).  Releasing a slot that is not
 * owned (a double release) or a pointer that is not a slot of this pool returns -EINVAL, counts the
 * event in mior_pool_stats.bad_releases and leaves the pool intact.
 */
#ifndef MIOR_POOL_H
#define MIOR_POOL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mior_pool mior_pool;

#define MIOR_POOL_DEFAULT_BUF_COUNT 4096u
#define MIOR_POOL_DEFAULT_BUF_SIZE 2048u
#define MIOR_POOL_MIN_BUF_SIZE 256u
/* Upper bounds: a slot is at most 64 KiB (the largest datagram); the region at most 16 GiB. */
#define MIOR_POOL_MAX_BUF_SIZE 65536u
#define MIOR_POOL_MAX_BYTES (16ull << 30)
#define MIOR_POOL_MAX_BUF_COUNT (1u << 24)

/* Flags for mior_pool_options.flags. */
#define MIOR_POOL_HUGEPAGES 0x1u /* try huge pages; fall back to normal pages if none are available */
#define MIOR_POOL_MLOCK 0x2u     /* lock the region in memory; fails with the mlock error if refused */

typedef struct mior_pool_options {
  size_t sz;          /* sizeof(mior_pool_options): lets the struct grow; set it first */
  uint32_t buf_count; /* number of slots; 0 = MIOR_POOL_DEFAULT_BUF_COUNT; at least 1 */
  uint32_t buf_size;  /* bytes per slot; 0 = default; a power of two, >= MIOR_POOL_MIN_BUF_SIZE */
  uint32_t flags;     /* MIOR_POOL_* */
  int numa_node;      /* -1 = no preference; otherwise bind the region to this node where the
                         system supports it (ignored, and reported in stats, where it does not) */
} mior_pool_options;

/* Fill *opts with the defaults (sz set, 4096 x 2048, no flags, numa_node -1). */
MIOR_API void mior_pool_options_init(mior_pool_options *opts);

/* Create a pool.  opts may be NULL for the defaults.  Returns 0 and *out, or -EINVAL for bad
 * options (size not a power of two, total too large, unknown flags), -ENOMEM, or the mmap/mlock error. */
MIOR_API int mior_pool_create(mior_pool **out, const mior_pool_options *opts);

/* Close a pool.  If slots are still out, returns -EBUSY, stores their number in *outstanding
 * (may be NULL) and leaves the pool open and usable, so the caller can release them and close
 * again.  Otherwise unmaps the region, frees the pool and returns 0.  pool may be NULL (no-op). */
MIOR_API int mior_pool_close(mior_pool *pool, uint32_t *outstanding);

/* Free the pool even though slots are out (their memory becomes invalid).  Returns 0 if none
 * were out, or -EBUSY (and the count in *outstanding) if some were: a leak report, not a refusal. */
MIOR_API int mior_pool_destroy(mior_pool *pool, uint32_t *outstanding);

/* Take one free slot: 0 and its index in *slot, or -ENOBUFS when none is free (counted in
 * failed_allocs). */
MIOR_API int mior_pool_acquire(mior_pool *pool, uint32_t *slot);

/* Take up to n free slots at once (one atomic step for the batch).  Returns how many were taken
 * (0..n, stored in slots[0..ret-1]); 0 when the pool is empty.  -EINVAL for bad arguments. */
MIOR_API int mior_pool_acquire_bulk(mior_pool *pool, uint32_t *slots, uint32_t n);

/* Return a slot.  -EINVAL (counted in bad_releases) if the index is out of range or the slot is
 * not currently owned. */
MIOR_API int mior_pool_release(mior_pool *pool, uint32_t slot);

/* Return n slots at once.  Each bad one is rejected and counted as above; the good ones are
 * returned.  Returns 0 if all were good, else -EINVAL. */
MIOR_API int mior_pool_release_bulk(mior_pool *pool, const uint32_t *slots, uint32_t n);

/* Return the slot that contains ptr (any address inside the slot).  -EINVAL if ptr is not inside
 * this pool's region or the slot is not owned. */
MIOR_API int mior_pool_release_ptr(mior_pool *pool, const void *ptr);

/* The region, for registering with a ring and for turning slot indices into addresses. */
typedef struct mior_pool_region {
  uint8_t *base;      /* first byte of slot 0 */
  size_t len;         /* buf_count * buf_size */
  uint32_t buf_size;
  uint32_t buf_count;
  uint32_t buf_shift; /* log2(buf_size): slot address = base + ((size_t)slot << buf_shift) */
} mior_pool_region;

MIOR_API int mior_pool_region_get(const mior_pool *pool, mior_pool_region *out);

/* Address of a slot.  No range check: use on indices the pool handed out. */
static inline uint8_t *mior_pool_region_slot(const mior_pool_region *r, uint32_t slot) {
  return r->base + ((size_t)slot << r->buf_shift);
}

/* Slot index of an address inside the region, or UINT32_MAX if outside. */
static inline uint32_t mior_pool_region_index(const mior_pool_region *r, const void *ptr) {
  const uint8_t *p = (const uint8_t *)ptr;
  if (p < r->base || p >= r->base + r->len) return UINT32_MAX;
  return (uint32_t)((size_t)(p - r->base) >> r->buf_shift);
}

typedef struct mior_pool_stats {
  uint32_t buf_count;
  uint32_t buf_size;
  uint32_t in_use;         /* slots out right now */
  uint32_t high_water;     /* most slots out at once */
  uint64_t acquired;       /* slots handed out, total */
  uint64_t failed_allocs;  /* acquires that found the pool empty */
  uint64_t bad_releases;   /* double releases and foreign pointers rejected */
  uint32_t hugepages;      /* 1 if the region is on huge pages */
  uint32_t locked;         /* 1 if the region is mlocked */
  int numa_node;           /* node the region was bound to, or -1 */
} mior_pool_stats;

MIOR_API int mior_pool_stats_get(const mior_pool *pool, mior_pool_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_POOL_H */
