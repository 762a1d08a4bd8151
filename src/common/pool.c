/* mior_pool: fixed slots in one region, handed out through a lock-free LIFO free list.
 *
 * The free list is a Treiber stack whose links live in a separate next[] array, never inside the
 * buffers, so nothing a user writes into a slot can corrupt it.  The head packs {index, tag} into
 * 64 bits and every change of the head bumps the tag, so a compare-and-swap cannot succeed against
 * a head that was popped and pushed back in between (ABA).  A per-slot state byte (FREE/OWNED),
 * changed by compare-and-swap, turns a double release or a release of someone else's index into a
 * counted -EINVAL instead of a corrupted list.
 *
 * The OS memory (mmap/VirtualAlloc, huge pages, mlock, NUMA) is behind src/common/pool_mem.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mior/pool.h"
#include "common/internal.h"
#include "common/opts.h"
#include "common/pool_mem.h"

#define SLOT_NONE UINT32_MAX /* index of "no slot": the end of the free list */
#define CACHE_LINE 64

enum { SLOT_FREE = 0, SLOT_OWNED = 1 };

/* The head is {tag:32, index:32}. */
static inline uint64_t head_pack(uint32_t index, uint32_t tag) {
  return ((uint64_t)tag << 32) | index;
}
static inline uint32_t head_index(uint64_t h) {
  return (uint32_t)h;
}
static inline uint32_t head_tag(uint64_t h) {
  return (uint32_t)(h >> 32);
}

struct mior_pool {
  /* Written by every acquire and release: alone on its cache line. */
  _Alignas(CACHE_LINE) _Atomic uint64_t head;
  char pad0_[CACHE_LINE - sizeof(uint64_t)];

  /* Statistics, relaxed: they count, they do not order anything. */
  _Alignas(CACHE_LINE) _Atomic uint32_t in_use;
  _Atomic uint32_t high_water;
  _Atomic uint64_t acquired;
  _Atomic uint64_t failed_allocs;
  _Atomic uint64_t bad_releases;
  char pad1_[CACHE_LINE - 2 * sizeof(uint32_t) - 3 * sizeof(uint64_t)];

  /* Read-only after create. */
  _Alignas(CACHE_LINE) uint8_t *base;
  size_t len; /* buf_count * buf_size: what the user may address */
  uint32_t buf_size;
  uint32_t buf_count;
  uint32_t buf_shift;
  _Atomic uint32_t *next;  /* next[i]: the slot below i on the free list (SLOT_NONE at the end) */
  _Atomic uint8_t *state;  /* state[i]: SLOT_FREE or SLOT_OWNED */
  mior__pool_mem mem;
  void *alloc; /* the calloc block holding this object and next[]/state[] */
};

void mior_pool_options_init(mior_pool_options *opts) {
  if (!opts) return;
  memset(opts, 0, sizeof *opts);
  opts->sz = sizeof *opts;
  opts->buf_count = MIOR_POOL_DEFAULT_BUF_COUNT;
  opts->buf_size = MIOR_POOL_DEFAULT_BUF_SIZE;
  opts->flags = 0;
  opts->numa_node = -1;
}


static uint32_t log2_u32(uint32_t v) {
  uint32_t s = 0;
  while ((1u << s) < v) s++;
  return s;
}

int mior_pool_create(mior_pool **out, const mior_pool_options *opts) {
  mior_pool_options o;
  mior_pool *pool;
  int rc;

  if (!out) return mior__fail(-EINVAL, "pool: out is NULL");
  *out = NULL;
  switch (OPTS_CHECK(opts, mior_pool_options)) {
  case MIOR__OPTS_BAD_SZ:
    return mior__fail(-EINVAL, "pool: options sz %llu is not a size of mior_pool_options "
                      "(set it to sizeof(mior_pool_options))", (unsigned long long)opts->sz);
  case MIOR__OPTS_UNKNOWN_SET:
    return mior__fail(-EINVAL, "pool: options carry non-zero fields this library (sz %llu) "
                      "does not know", (unsigned long long)sizeof *opts);
  }
  /* The defaults, then each field the caller's struct holds (a zero count or size means the
   * default).  The assertion makes a field added to the struct fail the build until it is read
   * here too. */
  _Static_assert(sizeof(mior_pool_options) - MIOR__OFFSETOFEND(mior_pool_options, numa_node) <
                     _Alignof(mior_pool_options),
                 "mior_pool_create reads every field of mior_pool_options: add the new one");
  mior_pool_options_init(&o);
  o.buf_count = OPTS_GET_NZ(opts, buf_count, o.buf_count);
  o.buf_size = OPTS_GET_NZ(opts, buf_size, o.buf_size);
  o.flags = OPTS_GET(opts, flags, o.flags);
  o.numa_node = OPTS_GET(opts, numa_node, o.numa_node);

  if (o.buf_count > MIOR_POOL_MAX_BUF_COUNT)
    return mior__fail(-EINVAL, "pool: buf_count %u is over the maximum %u", o.buf_count,
                      MIOR_POOL_MAX_BUF_COUNT);
  if (!mior__is_pow2(o.buf_size) || o.buf_size < MIOR_POOL_MIN_BUF_SIZE ||
      o.buf_size > MIOR_POOL_MAX_BUF_SIZE)
    return mior__fail(-EINVAL, "pool: buf_size %u must be a power of two from %u to %u",
                      o.buf_size, MIOR_POOL_MIN_BUF_SIZE, MIOR_POOL_MAX_BUF_SIZE);
  if ((uint64_t)o.buf_count * o.buf_size > MIOR_POOL_MAX_BYTES)
    return mior__fail(-EINVAL, "pool: %u x %u bytes is over the maximum region of %llu bytes",
                      o.buf_count, o.buf_size, (unsigned long long)MIOR_POOL_MAX_BYTES);
  if (o.flags & ~(MIOR_POOL_HUGEPAGES | MIOR_POOL_MLOCK))
    return mior__fail(-EINVAL, "pool: unknown flags 0x%x", o.flags & ~(MIOR_POOL_HUGEPAGES | MIOR_POOL_MLOCK));
  if (o.numa_node < -1)
    return mior__fail(-EINVAL, "pool: numa_node %d (use -1 for no preference)", o.numa_node);

  /* One allocation holds the pool object (aligned by hand to a cache line, because malloc does
   * not promise 64 bytes and the head must not share a line with the counters) and the slot
   * records next[] and state[]. */
  size_t meta = (size_t)o.buf_count * (sizeof(_Atomic uint32_t) + sizeof(_Atomic uint8_t));
  void *raw = calloc(1, CACHE_LINE + sizeof *pool + meta);
  if (!raw) return mior__fail(-ENOMEM, "pool: out of memory for %u slot records", o.buf_count);
  pool = (mior_pool *)(((uintptr_t)raw + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1));
  pool->alloc = raw;
  pool->next = (_Atomic uint32_t *)(void *)(pool + 1);
  pool->state = (_Atomic uint8_t *)(pool->next + o.buf_count);

  pool->buf_count = o.buf_count;
  pool->buf_size = o.buf_size;
  pool->buf_shift = log2_u32(o.buf_size);
  pool->len = (size_t)o.buf_count * o.buf_size;

  rc = mior__pool_mem_alloc(pool->len, o.flags, o.numa_node, &pool->mem);
  if (rc < 0) goto out_alloc;
  pool->base = pool->mem.base;

  /* Slot 0 on top, so a fresh pool hands out 0, 1, 2, ... in address order. */
  for (uint32_t i = 0; i < o.buf_count; i++) {
    atomic_init(&pool->next[i], i + 1 < o.buf_count ? i + 1 : SLOT_NONE);
    atomic_init(&pool->state[i], SLOT_FREE);
  }
  atomic_init(&pool->head, head_pack(0, 0));
  atomic_init(&pool->in_use, 0);
  atomic_init(&pool->high_water, 0);
  atomic_init(&pool->acquired, 0);
  atomic_init(&pool->failed_allocs, 0);
  atomic_init(&pool->bad_releases, 0);
  /* Publish the initialised pool to whichever thread the caller hands it to. */
  atomic_thread_fence(memory_order_release);
  *out = pool;
  return 0;

out_alloc:
  free(raw);
  return rc;
}

/* Free the region, then the pool object with its slot records. */
static void pool_free(mior_pool *pool) {
  mior__pool_mem_free(&pool->mem);
  free(pool->alloc);
}

/* Slots currently owned, counted from the state bytes: exact whenever no other thread is inside
 * the pool, which is the only time close or destroy may be called. */
static uint32_t count_owned(const mior_pool *pool) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < pool->buf_count; i++)
    n += atomic_load_explicit(&pool->state[i], memory_order_acquire) == SLOT_OWNED;
  return n;
}

int mior_pool_close(mior_pool *pool, uint32_t *outstanding) {
  if (outstanding) *outstanding = 0;
  if (!pool) return 0;
  uint32_t out = count_owned(pool);
  if (out) {
    if (outstanding) *outstanding = out;
    return mior__fail(-EBUSY, "pool: %u of %u slots are still out; release them and close again",
                      out, pool->buf_count);
  }
  pool_free(pool);
  return 0;
}

int mior_pool_destroy(mior_pool *pool, uint32_t *outstanding) {
  if (outstanding) *outstanding = 0;
  if (!pool) return 0;
  uint32_t out = count_owned(pool);
  uint32_t count = pool->buf_count;
  pool_free(pool);
  if (out) {
    if (outstanding) *outstanding = out;
    return mior__fail(-EBUSY, "pool: destroyed with %u of %u slots still out (leaked)", out,
                      count);
  }
  return 0;
}

/* Count n slots out: in_use, the total, and the high-water mark (a CAS only when exceeded). */
static inline void note_acquired(mior_pool *pool, uint32_t n) {
  uint32_t now = atomic_fetch_add_explicit(&pool->in_use, n, memory_order_relaxed) + n;
  atomic_fetch_add_explicit(&pool->acquired, n, memory_order_relaxed);
  uint32_t hw = atomic_load_explicit(&pool->high_water, memory_order_relaxed);
  while (now > hw && !atomic_compare_exchange_weak_explicit(&pool->high_water, &hw, now,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed)) {
  }
}

/* Mark a slot just popped from the free list as owned.  It was FREE (only free slots are on the
 * list, and only the thread that popped it can change it now), so a plain store would do; the
 * release ordering pairs with count_owned. */
static inline void mark_owned(mior_pool *pool, uint32_t slot) {
  atomic_store_explicit(&pool->state[slot], SLOT_OWNED, memory_order_release);
}

int mior_pool_acquire(mior_pool *pool, uint32_t *slot) {
  if (MIOR_UNLIKELY(!pool || !slot)) return mior__fail(-EINVAL, "pool: acquire with NULL argument");

  /* Acquire ordering on the head pairs with the release in push: the releaser's writes to the
   * slot (and to next[]) happen before we hand the slot out. */
  uint64_t old = atomic_load_explicit(&pool->head, memory_order_acquire);
  for (;;) {
    uint32_t top = head_index(old);
    if (top == SLOT_NONE) {
      atomic_fetch_add_explicit(&pool->failed_allocs, 1, memory_order_relaxed);
      return -ENOBUFS; /* backpressure, not a failure worth a message on the hot path */
    }
    /* next[top] may be rewritten by a thread that pops and pushes top meanwhile; then the tag has
     * moved on and the CAS below fails, so a stale value is never installed. */
    uint32_t below = atomic_load_explicit(&pool->next[top], memory_order_relaxed);
    uint64_t want = head_pack(below, head_tag(old) + 1);
    if (atomic_compare_exchange_weak_explicit(&pool->head, &old, want, memory_order_acq_rel,
                                              memory_order_acquire)) {
      mark_owned(pool, top);
      note_acquired(pool, 1);
      *slot = top;
      return 0;
    }
  }
}

int mior_pool_acquire_bulk(mior_pool *pool, uint32_t *slots, uint32_t n) {
  if (MIOR_UNLIKELY(!pool || !slots))
    return mior__fail(-EINVAL, "pool: acquire_bulk with NULL argument");
  if (n == 0) return 0;

  uint64_t old = atomic_load_explicit(&pool->head, memory_order_acquire);
  for (;;) {
    uint32_t top = head_index(old);
    if (top == SLOT_NONE) {
      atomic_fetch_add_explicit(&pool->failed_allocs, 1, memory_order_relaxed);
      return 0;
    }
    /* Walk up to n links from the head we saw.  If the head (with its tag) is unchanged at the
     * CAS, nothing was pushed or popped meanwhile, so the chain we walked is the one on the list.
     * If it did change, what we read may be stale (an owned slot's old link), but next[] only
     * ever holds slot indices or SLOT_NONE, the walk is bounded by n, and the CAS then fails. */
    uint32_t got = 0, cur = top;
    while (got < n && cur != SLOT_NONE) {
      slots[got++] = cur;
      cur = atomic_load_explicit(&pool->next[cur], memory_order_relaxed);
    }
    if (atomic_compare_exchange_weak_explicit(&pool->head, &old, head_pack(cur, head_tag(old) + 1),
                                              memory_order_acq_rel, memory_order_acquire)) {
      for (uint32_t i = 0; i < got; i++) mark_owned(pool, slots[i]);
      note_acquired(pool, got);
      return (int)got;
    }
  }
}

/* Push the private chain first..last (already linked through next[]) in one CAS. */
static void push_chain(mior_pool *pool, uint32_t first, uint32_t last) {
  uint64_t old = atomic_load_explicit(&pool->head, memory_order_relaxed);
  for (;;) {
    atomic_store_explicit(&pool->next[last], head_index(old), memory_order_relaxed);
    /* Release: the slot contents and the next[] links above are visible to whoever pops. */
    if (atomic_compare_exchange_weak_explicit(&pool->head, &old,
                                              head_pack(first, head_tag(old) + 1),
                                              memory_order_acq_rel, memory_order_relaxed))
      return;
  }
}

/* Take ownership back from the caller: OWNED -> FREE, or report why not. */
static int disown(mior_pool *pool, uint32_t slot) {
  if (MIOR_UNLIKELY(slot >= pool->buf_count)) {
    atomic_fetch_add_explicit(&pool->bad_releases, 1, memory_order_relaxed);
    return mior__fail(-EINVAL, "pool: release of slot %u, outside 0..%u", slot,
                      pool->buf_count - 1);
  }
  uint8_t expect = SLOT_OWNED;
  if (MIOR_UNLIKELY(!atomic_compare_exchange_strong_explicit(
          &pool->state[slot], &expect, SLOT_FREE, memory_order_relaxed, memory_order_relaxed))) {
    atomic_fetch_add_explicit(&pool->bad_releases, 1, memory_order_relaxed);
    return mior__fail(-EINVAL, "pool: release of slot %u, which is not out (double release?)",
                      slot);
  }
  return 0;
}

int mior_pool_release(mior_pool *pool, uint32_t slot) {
  if (MIOR_UNLIKELY(!pool)) return mior__fail(-EINVAL, "pool: release with NULL pool");
  int rc = disown(pool, slot);
  if (rc < 0) return rc;
  atomic_fetch_sub_explicit(&pool->in_use, 1, memory_order_relaxed);
  push_chain(pool, slot, slot);
  return 0;
}

int mior_pool_release_bulk(mior_pool *pool, const uint32_t *slots, uint32_t n) {
  if (MIOR_UNLIKELY(!pool || !slots))
    return mior__fail(-EINVAL, "pool: release_bulk with NULL argument");
  uint32_t first = SLOT_NONE, last = SLOT_NONE, good = 0;
  int rc = 0;
  /* Link the good slots privately (they are FREE now, but on no list, so nobody else touches
   * their next[]), then publish the whole chain with one CAS. */
  for (uint32_t i = 0; i < n; i++) {
    uint32_t s = slots[i];
    if (disown(pool, s) < 0) {
      rc = -EINVAL;
      continue;
    }
    if (last == SLOT_NONE)
      first = s;
    else
      atomic_store_explicit(&pool->next[last], s, memory_order_relaxed);
    last = s;
    good++;
  }
  if (good) {
    atomic_fetch_sub_explicit(&pool->in_use, good, memory_order_relaxed);
    push_chain(pool, first, last);
  }
  if (rc < 0)
    return mior__fail(-EINVAL, "pool: release_bulk: %u of %u slots rejected (not out or out of "
                      "range); the others were returned", n - good, n);
  return 0;
}

int mior_pool_release_ptr(mior_pool *pool, const void *ptr) {
  if (MIOR_UNLIKELY(!pool)) return mior__fail(-EINVAL, "pool: release_ptr with NULL pool");
  const uint8_t *p = (const uint8_t *)ptr;
  /* Compare as integers: relational operators on pointers into different objects are undefined. */
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)pool->base;
  if (MIOR_UNLIKELY(!p || a < b || a - b >= pool->len)) {
    atomic_fetch_add_explicit(&pool->bad_releases, 1, memory_order_relaxed);
    return mior__fail(-EINVAL, "pool: release_ptr %p is not inside this pool's region", ptr);
  }
  return mior_pool_release(pool, (uint32_t)((a - b) >> pool->buf_shift));
}

int mior_pool_region_get(const mior_pool *pool, mior_pool_region *out) {
  if (!pool || !out) return mior__fail(-EINVAL, "pool: region_get with NULL argument");
  out->base = pool->base;
  out->len = pool->len;
  out->buf_size = pool->buf_size;
  out->buf_count = pool->buf_count;
  out->buf_shift = pool->buf_shift;
  return 0;
}

int mior_pool_stats_get(const mior_pool *pool, mior_pool_stats *out) {
  if (!pool || !out) return mior__fail(-EINVAL, "pool: stats_get with NULL argument");
  memset(out, 0, sizeof *out);
  out->buf_count = pool->buf_count;
  out->buf_size = pool->buf_size;
  /* The const casts are for C11's atomic_load, which older compilers declare non-const. */
  mior_pool *p = (mior_pool *)pool;
  out->in_use = atomic_load_explicit(&p->in_use, memory_order_relaxed);
  out->high_water = atomic_load_explicit(&p->high_water, memory_order_relaxed);
  out->acquired = atomic_load_explicit(&p->acquired, memory_order_relaxed);
  out->failed_allocs = atomic_load_explicit(&p->failed_allocs, memory_order_relaxed);
  out->bad_releases = atomic_load_explicit(&p->bad_releases, memory_order_relaxed);
  /* Only explicit huge pages count: transparent huge pages are advice the kernel may ignore. */
  out->hugepages = pool->mem.pages == MIOR__POOL_PAGES_HUGE;
  out->locked = (uint32_t)pool->mem.locked;
  out->numa_node = pool->mem.numa_node;
  return 0;
}
