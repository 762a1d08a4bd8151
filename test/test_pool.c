/* mior_pool on one thread: options and their validation, NULL arguments, region math, LIFO reuse,
 * exhaustion, the bulk paths, every kind of bad release, and close/destroy with slots out.
 * Each test ends with its pool fully returned and closed (close must return 0). */
#include <stddef.h>
#include <stdint.h>

#include "test.h"

/* Close a pool that must have nothing out. */
static void close_clean(mior_pool *p) {
  uint32_t out = 12345;
  CHECK_OK(mior_pool_close(p, &out));
  CHECK_EQ(out, 0);
}

static mior_pool *make_pool(uint32_t count, uint32_t size) {
  mior_pool_options o;
  mior_pool *p = NULL;
  mior_pool_options_init(&o);
  o.buf_count = count;
  o.buf_size = size;
  REQUIRE_OK(mior_pool_create(&p, &o));
  REQUIRE(p != NULL);
  return p;
}

static mior_pool_stats stats_of(const mior_pool *p) {
  mior_pool_stats s;
  memset(&s, 0xee, sizeof s);
  REQUIRE_OK(mior_pool_stats_get(p, &s));
  return s;
}

static void test_options_init(void) {
  mior_pool_options o;
  memset(&o, 0xa5, sizeof o);
  mior_pool_options_init(&o);
  CHECK_EQ(o.sz, sizeof o);
  CHECK_EQ(o.buf_count, MIOR_POOL_DEFAULT_BUF_COUNT);
  CHECK_EQ(o.buf_size, MIOR_POOL_DEFAULT_BUF_SIZE);
  CHECK_EQ(o.flags, 0);
  CHECK_EQ(o.numa_node, -1);
  mior_pool_options_init(NULL); /* must not crash */
}

static void check_defaults(mior_pool *p) {
  mior_pool_stats s = stats_of(p);
  CHECK_EQ(s.buf_count, MIOR_POOL_DEFAULT_BUF_COUNT);
  CHECK_EQ(s.buf_size, MIOR_POOL_DEFAULT_BUF_SIZE);
  CHECK_EQ(s.in_use, 0);
  CHECK_EQ(s.high_water, 0);
  CHECK_EQ(s.acquired, 0);
  CHECK_EQ(s.failed_allocs, 0);
  CHECK_EQ(s.bad_releases, 0);
  CHECK_EQ(s.hugepages, 0);
  CHECK_EQ(s.locked, 0);
  CHECK_EQ(s.numa_node, -1);

  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  CHECK(r.base != NULL);
  CHECK_EQ((uintptr_t)r.base % 4096, 0);
  CHECK_EQ(r.len, (size_t)MIOR_POOL_DEFAULT_BUF_COUNT * MIOR_POOL_DEFAULT_BUF_SIZE);
  CHECK_EQ(r.buf_size, MIOR_POOL_DEFAULT_BUF_SIZE);
  CHECK_EQ(r.buf_count, MIOR_POOL_DEFAULT_BUF_COUNT);
  CHECK_EQ(r.buf_shift, 11);
}

static void test_defaults(void) {
  mior_pool *p = NULL;
  /* NULL options, options with every field 0 but sz, and options_init all mean the defaults. */
  REQUIRE_OK(mior_pool_create(&p, NULL));
  check_defaults(p);
  close_clean(p);

  mior_pool_options zero;
  memset(&zero, 0, sizeof zero);
  zero.sz = sizeof zero;
  zero.numa_node = -1;
  REQUIRE_OK(mior_pool_create(&p, &zero));
  check_defaults(p);
  close_clean(p);

  mior_pool_options o;
  mior_pool_options_init(&o);
  REQUIRE_OK(mior_pool_create(&p, &o));
  check_defaults(p);
  close_clean(p);
}

/* create must fail with err, leave *out NULL and say why in mior_last_error. */
static void expect_create_fails(const mior_pool_options *o, int err, const char *what) {
  mior_pool *p = (mior_pool *)(uintptr_t)0x1;
  int rc = mior_pool_create(&p, o);
  if (rc != err) TEST_FAIL_AT("create with %s -> %d, expected %d", what, rc, err);
  if (p != NULL) TEST_FAIL_AT("create with %s left *out set", what);
  if (rc < 0 && mior_last_error()[0] == '\0') TEST_FAIL_AT("create with %s: no error detail", what);
  if (rc == 0 && p) mior_pool_close(p, NULL);
}

static void test_bad_options(void) {
  mior_pool_options o;

  CHECK_ERR(mior_pool_create(NULL, NULL), -EINVAL);

#define BAD(field, value)                                              \
  do {                                                                 \
    mior_pool_options_init(&o);                                        \
    o.field = value;                                                   \
    expect_create_fails(&o, -EINVAL, #field " = " #value);             \
  } while (0)
  BAD(sz, 0);
  BAD(sz, sizeof(size_t) - 1);
  BAD(sz, (size_t)1 << 40); /* garbage, not a newer struct */
  BAD(buf_size, 3000);      /* not a power of two */
  BAD(buf_size, 2049);
  BAD(buf_size, MIOR_POOL_MIN_BUF_SIZE / 2);
  BAD(buf_size, 1);
  BAD(buf_size, MIOR_POOL_MAX_BUF_SIZE * 2);
  BAD(buf_size, 0x80000000u);
  BAD(buf_count, MIOR_POOL_MAX_BUF_COUNT + 1);
  BAD(buf_count, UINT32_MAX);
  BAD(flags, 0x4u);
  BAD(flags, 0x80000000u);
  BAD(flags, MIOR_POOL_HUGEPAGES | 0x100u);
  BAD(numa_node, -2);
#undef BAD

  /* Every count and size allowed on its own, but together over MIOR_POOL_MAX_BYTES. */
  mior_pool_options_init(&o);
  o.buf_count = MIOR_POOL_MAX_BUF_COUNT;
  o.buf_size = MIOR_POOL_MAX_BUF_SIZE;
  expect_create_fails(&o, -EINVAL, "max count x max size");
  o.buf_size = (uint32_t)(MIOR_POOL_MAX_BYTES / MIOR_POOL_MAX_BUF_COUNT) * 2;
  expect_create_fails(&o, -EINVAL, "total just over the maximum");

  /* A newer caller's larger struct: accepted when the fields we do not know are zero, refused
   * when one of them asks for something. */
  struct {
    mior_pool_options o;
    uint64_t future;
  } big;
  memset(&big, 0, sizeof big);
  mior_pool_options_init(&big.o);
  big.o.sz = sizeof big;
  big.o.buf_count = 4;
  big.o.buf_size = 256;
  mior_pool *p = NULL;
  CHECK_OK(mior_pool_create(&p, &big.o));
  if (p) {
    CHECK_EQ(stats_of(p).buf_count, 4);
    close_clean(p);
  }
  big.future = 1;
  expect_create_fails(&big.o, -EINVAL, "non-zero unknown field");
}

/* An older caller's smaller struct: fields beyond its sz are not read (they take defaults), so
 * whatever lies there cannot change the result. */
static void test_old_small_options(void) {
  mior_pool_options o;
  mior_pool *p = NULL;

  memset(&o, 0, sizeof o);
  o.sz = offsetof(mior_pool_options, buf_count) + sizeof o.buf_count;
  o.buf_count = 8;
  o.buf_size = 3;        /* invalid, but beyond sz: must be ignored */
  o.flags = 0xffffu;     /* ditto */
  o.numa_node = -77;     /* ditto */
  REQUIRE_OK(mior_pool_create(&p, &o));
  mior_pool_stats s = stats_of(p);
  CHECK_EQ(s.buf_count, 8);
  CHECK_EQ(s.buf_size, MIOR_POOL_DEFAULT_BUF_SIZE);
  CHECK_EQ(s.numa_node, -1);
  close_clean(p);

  /* Only sz itself: all defaults. */
  memset(&o, 0x7f, sizeof o);
  o.sz = sizeof(size_t);
  REQUIRE_OK(mior_pool_create(&p, &o));
  s = stats_of(p);
  CHECK_EQ(s.buf_count, MIOR_POOL_DEFAULT_BUF_COUNT);
  CHECK_EQ(s.buf_size, MIOR_POOL_DEFAULT_BUF_SIZE);
  close_clean(p);

  /* Up to flags: flags read (and checked), numa_node not. */
  memset(&o, 0, sizeof o);
  o.sz = offsetof(mior_pool_options, flags) + sizeof o.flags;
  o.buf_count = 2;
  o.buf_size = 512;
  o.flags = 0x40;
  o.numa_node = -99;
  expect_create_fails(&o, -EINVAL, "old struct with a bad flag");
  o.flags = 0;
  REQUIRE_OK(mior_pool_create(&p, &o));
  s = stats_of(p);
  CHECK_EQ(s.buf_count, 2);
  CHECK_EQ(s.buf_size, 512);
  close_clean(p);
}

/* Limits that are allowed: the smallest and the largest slot, one slot. */
static void test_edge_sizes(void) {
  mior_pool *p = make_pool(1, MIOR_POOL_MIN_BUF_SIZE);
  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  CHECK_EQ(r.len, MIOR_POOL_MIN_BUF_SIZE);
  CHECK_EQ(r.buf_shift, 8);
  uint32_t s;
  CHECK_OK(mior_pool_acquire(p, &s));
  CHECK_EQ(s, 0);
  memset(mior_pool_region_slot(&r, s), 0x5a, r.buf_size);
  CHECK_ERR(mior_pool_acquire(p, &s), -ENOBUFS);
  CHECK_OK(mior_pool_release(p, 0));
  close_clean(p);

  p = make_pool(3, MIOR_POOL_MAX_BUF_SIZE);
  REQUIRE_OK(mior_pool_region_get(p, &r));
  CHECK_EQ(r.len, 3u * MIOR_POOL_MAX_BUF_SIZE);
  CHECK_EQ(r.buf_shift, 16);
  close_clean(p);
}

static void test_null_args(void) {
  mior_pool *p = make_pool(4, 256);
  uint32_t s = 0, slots[4] = {0};
  mior_pool_region r;
  mior_pool_stats st;
  uint32_t out = 99;

  CHECK_ERR(mior_pool_acquire(NULL, &s), -EINVAL);
  CHECK_ERR(mior_pool_acquire(p, NULL), -EINVAL);
  CHECK_ERR(mior_pool_acquire_bulk(NULL, slots, 2), -EINVAL);
  CHECK_ERR(mior_pool_acquire_bulk(p, NULL, 2), -EINVAL);
  CHECK_ERR(mior_pool_release(NULL, 0), -EINVAL);
  CHECK_ERR(mior_pool_release_bulk(NULL, slots, 1), -EINVAL);
  CHECK_ERR(mior_pool_release_bulk(p, NULL, 1), -EINVAL);
  CHECK_ERR(mior_pool_release_ptr(NULL, &s), -EINVAL);
  CHECK_ERR(mior_pool_region_get(NULL, &r), -EINVAL);
  CHECK_ERR(mior_pool_region_get(p, NULL), -EINVAL);
  CHECK_ERR(mior_pool_stats_get(NULL, &st), -EINVAL);
  CHECK_ERR(mior_pool_stats_get(p, NULL), -EINVAL);
  CHECK_EQ(mior_pool_close(NULL, &out), 0);
  CHECK_EQ(out, 0);
  CHECK_EQ(mior_pool_close(NULL, NULL), 0);
  CHECK_EQ(mior_pool_destroy(NULL, NULL), 0);

  /* None of that took a slot or counted as a bad release of this pool... */
  st = stats_of(p);
  CHECK_EQ(st.in_use, 0);
  CHECK_EQ(st.acquired, 0);
  /* ...except release_ptr(p, NULL), which is a pointer outside the region. */
  CHECK_ERR(mior_pool_release_ptr(p, NULL), -EINVAL);
  CHECK_EQ(stats_of(p).bad_releases, 1);
  close_clean(p);
}

static void test_region_math(void) {
  enum { N = 64, SZ = 1024 };
  mior_pool *p = make_pool(N, SZ);
  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  CHECK_EQ(r.buf_shift, 10);
  CHECK_EQ(r.len, (size_t)N * SZ);
  for (uint32_t i = 0; i < N; i++) {
    uint8_t *slot = mior_pool_region_slot(&r, i);
    CHECK(slot == r.base + (size_t)i * SZ);
    CHECK_EQ(mior_pool_region_index(&r, slot), i);
    CHECK_EQ(mior_pool_region_index(&r, slot + 1), i);
    CHECK_EQ(mior_pool_region_index(&r, slot + SZ - 1), i);
  }
  CHECK_EQ(mior_pool_region_index(&r, r.base + r.len), UINT32_MAX);
  CHECK_EQ(mior_pool_region_index(&r, r.base - 1), UINT32_MAX);
  int local;
  CHECK_EQ(mior_pool_region_index(&r, &local), UINT32_MAX);

  /* Every byte of every slot is writable and keeps what was written. */
  uint32_t slots[N];
  REQUIRE(mior_pool_acquire_bulk(p, slots, N) == N);
  for (uint32_t i = 0; i < N; i++) memset(mior_pool_region_slot(&r, slots[i]), (int)i, SZ);
  for (uint32_t i = 0; i < N; i++) {
    const uint8_t *b = mior_pool_region_slot(&r, slots[i]);
    CHECK(b[0] == (uint8_t)i && b[SZ - 1] == (uint8_t)i && b[SZ / 2] == (uint8_t)i);
  }
  CHECK_OK(mior_pool_release_bulk(p, slots, N));
  close_clean(p);
}

static void test_lifo(void) {
  mior_pool *p = make_pool(16, 256);
  uint32_t s;
  /* A fresh pool hands slots out in address order. */
  for (uint32_t i = 0; i < 8; i++) {
    CHECK_OK(mior_pool_acquire(p, &s));
    CHECK_EQ(s, i);
  }
  /* The slot released last comes back first. */
  CHECK_OK(mior_pool_release(p, 5));
  CHECK_OK(mior_pool_release(p, 2));
  CHECK_OK(mior_pool_release(p, 7));
  CHECK_OK(mior_pool_acquire(p, &s));
  CHECK_EQ(s, 7);
  CHECK_OK(mior_pool_acquire(p, &s));
  CHECK_EQ(s, 2);
  CHECK_OK(mior_pool_acquire(p, &s));
  CHECK_EQ(s, 5);
  CHECK_OK(mior_pool_acquire(p, &s));
  CHECK_EQ(s, 8); /* then the untouched part of the list */
  for (uint32_t i = 0; i <= 8; i++) CHECK_OK(mior_pool_release(p, i));
  CHECK_EQ(stats_of(p).in_use, 0);
  close_clean(p);
}

static void test_exhaust(void) {
  enum { N = 8 };
  mior_pool *p = make_pool(N, 512);
  uint32_t got[N], s = 777, bulk[4];
  uint8_t seen[N] = {0};
  for (uint32_t i = 0; i < N; i++) {
    REQUIRE_OK(mior_pool_acquire(p, &got[i]));
    REQUIRE(got[i] < N);
    CHECK(!seen[got[i]]);
    seen[got[i]] = 1;
  }
  CHECK_ERR(mior_pool_acquire(p, &s), -ENOBUFS);
  CHECK_EQ(s, 777); /* untouched on failure */
  CHECK_ERR(mior_pool_acquire(p, &s), -ENOBUFS);
  CHECK_EQ(mior_pool_acquire_bulk(p, bulk, 4), 0);
  mior_pool_stats st = stats_of(p);
  CHECK_EQ(st.in_use, N);
  CHECK_EQ(st.high_water, N);
  CHECK_EQ(st.acquired, N);
  CHECK_EQ(st.failed_allocs, 3);
  CHECK_EQ(st.bad_releases, 0);

  for (uint32_t i = 0; i < N; i++) CHECK_OK(mior_pool_release(p, got[i]));
  st = stats_of(p);
  CHECK_EQ(st.in_use, 0);
  CHECK_EQ(st.high_water, N); /* the mark stays */

  /* A second, smaller round does not move the high-water mark. */
  CHECK_OK(mior_pool_acquire(p, &s));
  CHECK_OK(mior_pool_release(p, s));
  st = stats_of(p);
  CHECK_EQ(st.high_water, N);
  CHECK_EQ(st.acquired, N + 1);
  close_clean(p);
}

/* After any amount of bad releases the list must still hold exactly buf_count distinct slots. */
static void check_list_intact(mior_pool *p, uint32_t n) {
  uint32_t *all = calloc(n + 1, sizeof *all);
  uint8_t *seen = calloc(n, 1);
  REQUIRE(all && seen);
  int got = mior_pool_acquire_bulk(p, all, n + 1);
  CHECK_EQ(got, n);
  for (int i = 0; i < got; i++) {
    REQUIRE(all[i] < n);
    CHECK(!seen[all[i]]);
    seen[all[i]] = 1;
  }
  uint32_t extra;
  CHECK_ERR(mior_pool_acquire(p, &extra), -ENOBUFS);
  CHECK_OK(mior_pool_release_bulk(p, all, (uint32_t)got));
  free(all);
  free(seen);
}

static void test_bad_releases(void) {
  enum { N = 8, SZ = 256 };
  mior_pool *p = make_pool(N, SZ);
  mior_pool *other = make_pool(N, SZ);
  mior_pool_region r, ro;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  REQUIRE_OK(mior_pool_region_get(other, &ro));
  uint32_t s, s2;
  uint64_t bad = 0;

  /* Double release. */
  REQUIRE_OK(mior_pool_acquire(p, &s));
  CHECK_OK(mior_pool_release(p, s));
  CHECK_ERR(mior_pool_release(p, s), -EINVAL);
  CHECK(strstr(mior_last_error(), "not out") != NULL);
  CHECK_EQ(stats_of(p).bad_releases, ++bad);
  /* A slot that was never handed out. */
  CHECK_ERR(mior_pool_release(p, N - 1), -EINVAL);
  CHECK_EQ(stats_of(p).bad_releases, ++bad);
  /* Out of range. */
  CHECK_ERR(mior_pool_release(p, N), -EINVAL);
  CHECK_ERR(mior_pool_release(p, UINT32_MAX), -EINVAL);
  CHECK_ERR(mior_pool_release(p, 0x80000000u), -EINVAL);
  bad += 3;
  CHECK_EQ(stats_of(p).bad_releases, bad);
  CHECK_EQ(stats_of(p).in_use, 0);

  /* Foreign pointers: the stack, the byte just past the region, the byte before it, and a slot of
   * another pool (even one that is out there). */
  REQUIRE_OK(mior_pool_acquire(other, &s2));
  int local = 0;
  CHECK_ERR(mior_pool_release_ptr(p, &local), -EINVAL);
  CHECK_ERR(mior_pool_release_ptr(p, r.base + r.len), -EINVAL);
  CHECK_ERR(mior_pool_release_ptr(p, r.base - 1), -EINVAL);
  CHECK_ERR(mior_pool_release_ptr(p, mior_pool_region_slot(&ro, s2)), -EINVAL);
  bad += 4;
  CHECK_EQ(stats_of(p).bad_releases, bad);
  CHECK_EQ(stats_of(other).bad_releases, 0);
  CHECK_EQ(stats_of(other).in_use, 1); /* the other pool's slot is still out */
  CHECK_OK(mior_pool_release_ptr(other, mior_pool_region_slot(&ro, s2)));

  /* release_ptr of an interior address returns the slot that contains it. */
  REQUIRE_OK(mior_pool_acquire(p, &s));
  CHECK_OK(mior_pool_release_ptr(p, mior_pool_region_slot(&r, s) + 17));
  CHECK_EQ(stats_of(p).in_use, 0);
  REQUIRE_OK(mior_pool_acquire(p, &s2));
  CHECK_EQ(s2, s); /* LIFO: it is on top again */
  CHECK_OK(mior_pool_release_ptr(p, mior_pool_region_slot(&r, s2) + SZ - 1)); /* last byte */
  /* ...and a second release through a pointer is a double release. */
  CHECK_ERR(mior_pool_release_ptr(p, mior_pool_region_slot(&r, s2) + 3), -EINVAL);
  CHECK_EQ(stats_of(p).bad_releases, ++bad);

  check_list_intact(p, N);
  check_list_intact(other, N);
  close_clean(other);
  close_clean(p);
}

static void test_bulk(void) {
  enum { N = 16 };
  mior_pool *p = make_pool(N, 256);
  uint32_t a[N + 4], b[N];

  CHECK_EQ(mior_pool_acquire_bulk(p, a, 0), 0);
  CHECK_EQ(stats_of(p).failed_allocs, 0); /* asking for nothing is not a failure */
  CHECK_OK(mior_pool_release_bulk(p, a, 0));

  /* A fresh pool: the first five in order. */
  CHECK_EQ(mior_pool_acquire_bulk(p, a, 5), 5);
  for (uint32_t i = 0; i < 5; i++) CHECK_EQ(a[i], i);
  /* Bulk release keeps the array's order on top: a[0] comes back first. */
  uint32_t order[5] = {3, 0, 4, 1, 2};
  CHECK_OK(mior_pool_release_bulk(p, order, 5));
  CHECK_EQ(mior_pool_acquire_bulk(p, b, 5), 5);
  for (uint32_t i = 0; i < 5; i++) CHECK_EQ(b[i], order[i]);
  /* Singles and bulk interleave on the same list. */
  uint32_t s;
  CHECK_OK(mior_pool_release(p, b[4]));
  CHECK_OK(mior_pool_acquire(p, &s));
  CHECK_EQ(s, b[4]);

  /* Partial bulk near empty: 11 left, ask for 15, get 11; then 0 and a failed alloc. */
  CHECK_EQ(mior_pool_acquire_bulk(p, a, 15), N - 5);
  mior_pool_stats st = stats_of(p);
  CHECK_EQ(st.in_use, N);
  CHECK_EQ(st.failed_allocs, 0);
  CHECK_EQ(mior_pool_acquire_bulk(p, a + 11, 3), 0);
  CHECK_EQ(stats_of(p).failed_allocs, 1);
  CHECK_OK(mior_pool_release_bulk(p, a, N - 5));
  CHECK_OK(mior_pool_release_bulk(p, b, 5));
  CHECK_EQ(stats_of(p).in_use, 0);

  /* Asking for more than the pool holds takes all of it. */
  CHECK_EQ(mior_pool_acquire_bulk(p, a, N + 4), N);
  CHECK_OK(mior_pool_release_bulk(p, a, N));

  /* Mixed release: good ones go back, bad ones (out of range, a duplicate in the same call, one
   * never taken) are rejected and counted. */
  CHECK_EQ(mior_pool_acquire_bulk(p, a, 3), 3);
  uint64_t bad0 = stats_of(p).bad_releases;
  uint32_t never = 0;
  while (never == a[0] || never == a[1] || never == a[2]) never++;
  uint32_t mixed[6] = {a[0], N + 100, a[1], a[0], a[2], never};
  CHECK_ERR(mior_pool_release_bulk(p, mixed, 6), -EINVAL);
  st = stats_of(p);
  CHECK_EQ(st.bad_releases, bad0 + 3);
  CHECK_EQ(st.in_use, 0);
  check_list_intact(p, N);
  close_clean(p);
}

/* Users may write anything anywhere in their slots (and even scribble over free ones): the free
 * list lives outside the region, so it cannot be corrupted. */
static void test_links_outside_buffers(void) {
  enum { N = 32, SZ = 256 };
  mior_pool *p = make_pool(N, SZ);
  mior_pool_region r;
  REQUIRE_OK(mior_pool_region_get(p, &r));
  memset(r.base, 0xff, r.len); /* every slot free, every byte 0xff */
  check_list_intact(p, N);
  uint32_t a[N];
  REQUIRE(mior_pool_acquire_bulk(p, a, N) == N);
  memset(r.base, 0x00, r.len);
  CHECK_OK(mior_pool_release_bulk(p, a, N));
  memset(r.base, 0x5a, r.len);
  check_list_intact(p, N);
  close_clean(p);
}

static void test_close_busy(void) {
  mior_pool *p = make_pool(8, 256);
  uint32_t a[3], out = 0, s;
  REQUIRE(mior_pool_acquire_bulk(p, a, 3) == 3);
  CHECK_ERR(mior_pool_close(p, &out), -EBUSY);
  CHECK_EQ(out, 3);
  CHECK(strstr(mior_last_error(), "3") != NULL);
  CHECK_ERR(mior_pool_close(p, NULL), -EBUSY); /* outstanding may be NULL */

  /* Still open and usable. */
  CHECK_OK(mior_pool_acquire(p, &s));
  CHECK_OK(mior_pool_release(p, s));
  CHECK_OK(mior_pool_release(p, a[1]));
  CHECK_ERR(mior_pool_close(p, &out), -EBUSY);
  CHECK_EQ(out, 2);
  CHECK_OK(mior_pool_release(p, a[0]));
  CHECK_OK(mior_pool_release(p, a[2]));
  close_clean(p);
}

static void test_destroy(void) {
  uint32_t out = 0, s;
  mior_pool *p = make_pool(8, 256);
  REQUIRE_OK(mior_pool_acquire(p, &s));
  REQUIRE_OK(mior_pool_acquire(p, &s));
  /* Destroy frees anyway, and reports the two slots it leaked. */
  CHECK_ERR(mior_pool_destroy(p, &out), -EBUSY);
  CHECK_EQ(out, 2);
  CHECK(strstr(mior_last_error(), "2") != NULL);

  p = make_pool(8, 256);
  REQUIRE_OK(mior_pool_acquire(p, &s));
  CHECK_ERR(mior_pool_destroy(p, NULL), -EBUSY);

  p = make_pool(8, 256);
  REQUIRE_OK(mior_pool_acquire(p, &s));
  CHECK_OK(mior_pool_release(p, s));
  out = 9;
  CHECK_OK(mior_pool_destroy(p, &out));
  CHECK_EQ(out, 0);
}

int main(void) {
  test_options_init();
  test_defaults();
  test_bad_options();
  test_old_small_options();
  test_edge_sizes();
  test_null_args();
  test_region_math();
  test_lifo();
  test_exhaust();
  test_bad_releases();
  test_bulk();
  test_links_outside_buffers();
  test_close_busy();
  test_destroy();
  TEST_DONE();
}
