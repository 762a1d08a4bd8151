/* mior-perf microbench: a self-benchmark that needs no network.
 *
 * It measures the two pieces of the data path that are pure CPU work, so a user can tell what
 * this machine can do before any socket or ring is involved:
 *   1. the buffer pool: acquire+release pairs per second on one thread (single and bulk of 64)
 *      and with two threads contending for the same free list;
 *   2. the Internet checksum: GB/s of each implementation the CPU has (scalar, SSE2, AVX2) on
 *      64-byte, 1500-byte and 64 KiB buffers, and each one's ratio to the scalar reference.
 * Each figure is measured several times; the median is the figure, min-max shows the spread (the
 * machine may be shared).  Each checksum implementation is also checked against the scalar
 * reference before it is timed: a disagreement is an error, not a number.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mior/mior.h>
#include <mior/proto/checksum.h>

#include "os.h"
#include "microbench.h"

#define REPS 5
#define MAX_SECONDS 600.0

struct figure {
  double v[REPS];
  double median, min, max;
};

static double now_s(void) {
  return (double)perf_now_ns() * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void summarize(struct figure *f) {
  double s[REPS];
  memcpy(s, f->v, sizeof s);
  qsort(s, REPS, sizeof s[0], cmp_double);
  f->min = s[0];
  f->max = s[REPS - 1];
  f->median = s[REPS / 2];
}

/* ---- pool ---- */

enum { POOL_SLOTS = 1024, POOL_SLOT_SIZE = 2048, BULK = 64, CHECK_EVERY = 1024 };

/* Pairs per second of single acquire+release (bulk == 1) or of bulk-of-`bulk` pairs, for about
 * `seconds`.  Returns a negative errno if a pool call fails. */
static int pool_pairs(mior_pool *pool, uint32_t bulk, double seconds, double *rate) {
  uint32_t slots[BULK];
  uint64_t pairs = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < CHECK_EVERY / (int)bulk + 1; i++) {
      if (bulk == 1) {
        int rc = mior_pool_acquire(pool, &slots[0]);
        if (rc < 0) return rc;
        rc = mior_pool_release(pool, slots[0]);
        if (rc < 0) return rc;
      } else {
        int got = mior_pool_acquire_bulk(pool, slots, bulk);
        if (got != (int)bulk) return got < 0 ? got : -ENOBUFS;
        int rc = mior_pool_release_bulk(pool, slots, bulk);
        if (rc < 0) return rc;
      }
      pairs += bulk;
    }
    t = now_s();
  } while (t - t0 < seconds);
  *rate = (double)pairs / (t - t0);
  return 0;
}

struct contender {
  perf_thread *thread;
  mior_pool *pool;
  _Atomic int *go;
  double seconds;
  uint64_t pairs;
  double elapsed;
  int rc;
};

static void *contender_main(void *arg) {
  struct contender *c = arg;
  uint32_t slot;
  /* Start together, so both threads really contend for the whole interval. */
  while (!atomic_load_explicit(c->go, memory_order_acquire)) {
  }
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < CHECK_EVERY; i++) {
      if ((c->rc = mior_pool_acquire(c->pool, &slot)) < 0) return NULL;
      if ((c->rc = mior_pool_release(c->pool, slot)) < 0) return NULL;
    }
    c->pairs += CHECK_EVERY;
    t = now_s();
  } while (t - t0 < c->seconds);
  c->elapsed = t - t0;
  return NULL;
}

/* Total pairs per second of `threads` threads each doing single acquire+release. */
static int pool_pairs_contended(mior_pool *pool, int threads, double seconds, double *rate) {
  struct contender c[2];
  _Atomic int go = 0;
  int started = 0, rc = 0;
  memset(c, 0, sizeof c);
  for (int i = 0; i < threads; i++) {
    c[i].pool = pool;
    c[i].go = &go;
    c[i].seconds = seconds;
    if (perf_thread_start(&c[i].thread, contender_main, &c[i]) < 0) {
      rc = -EAGAIN;
      break;
    }
    started++;
  }
  atomic_store_explicit(&go, 1, memory_order_release);
  double pairs = 0, elapsed = 0;
  for (int i = 0; i < started; i++) {
    perf_thread_join(c[i].thread);
    if (c[i].rc < 0) rc = c[i].rc;
    pairs += (double)c[i].pairs;
    if (c[i].elapsed > elapsed) elapsed = c[i].elapsed;
  }
  if (rc < 0) return rc;
  *rate = elapsed > 0 ? pairs / elapsed : 0;
  return 0;
}

/* ---- checksum ---- */

static const char *const impl_names[] = {"scalar", "sse2", "avx2"};
enum { NIMPL = 3, NSIZE = 3 };
static const size_t csum_sizes[NSIZE] = {64, 1500, 65536};
static const char *const size_labels[NSIZE] = {"64 B", "1500 B", "64 KiB"};

/* Bytes per second of mior_csum_partial (the implementation selected now) over len bytes. */
static double csum_rate(const uint8_t *buf, size_t len, double seconds, uint32_t *sink) {
  size_t calls = len >= 65536 ? 4 : 65536 / len; /* about 64 KiB between clock reads */
  uint64_t bytes = 0;
  uint32_t sum = 0;
  double t0 = now_s(), t;
  do {
    for (size_t i = 0; i < calls; i++) sum = mior_csum_partial(buf, len, sum & 0xffff);
    bytes += (uint64_t)calls * len;
    t = now_s();
  } while (t - t0 < seconds);
  *sink += sum; /* keeps the work observable */
  return (double)bytes / (t - t0);
}

/* ---- the run ---- */

struct results {
  double seconds, rep_seconds;
  long cpus;
  const char *auto_impl;
  struct figure pool[3];
  int have[NIMPL];
  struct figure csum[NIMPL][NSIZE]; /* GB/s */
};

static const char *const pool_labels[3] = {"single, 1 thread", "bulk of 64, 1 thread",
                                           "single, 2 threads contending"};
static const char *const pool_keys[3] = {"single_1thread", "bulk64_1thread", "single_2threads"};

static int run_pool(struct results *r) {
  mior_pool_options o;
  mior_pool *pool = NULL;
  mior_pool_options_init(&o);
  o.buf_count = POOL_SLOTS;
  o.buf_size = POOL_SLOT_SIZE;
  int rc = mior_pool_create(&pool, &o);
  if (rc < 0) {
    fprintf(stderr, "microbench: pool: %s (%s)\n", mior_strerror(rc), mior_last_error());
    return rc;
  }
  for (int rep = 0; rep < REPS && rc == 0; rep++) {
    /* Interleave the three so slow phases of a shared machine spread over all of them. */
    rc = pool_pairs(pool, 1, r->rep_seconds, &r->pool[0].v[rep]);
    if (rc == 0) rc = pool_pairs(pool, BULK, r->rep_seconds, &r->pool[1].v[rep]);
    if (rc == 0) rc = pool_pairs_contended(pool, 2, r->rep_seconds, &r->pool[2].v[rep]);
  }
  uint32_t out = 0;
  int crc = mior_pool_close(pool, &out);
  if (rc == 0 && crc < 0) rc = crc;
  if (rc < 0) {
    fprintf(stderr, "microbench: pool: %s (%s)\n", mior_strerror(rc), mior_last_error());
    return rc;
  }
  for (int i = 0; i < 3; i++) summarize(&r->pool[i]);
  return 0;
}

static int run_csum(struct results *r) {
  size_t max = csum_sizes[NSIZE - 1];
  uint8_t *raw = malloc(max + 64);
  uint32_t sink = 0;
  int rc = 0;
  if (!raw) return -ENOMEM;
  /* 64-byte aligned, as a slot of the pool is. */
  uint8_t *buf = (uint8_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < max; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    buf[i] = (uint8_t)x;
  }

  r->auto_impl = mior_csum_impl();
  for (int k = 0; k < NIMPL; k++) {
    int s = mior_csum_select(impl_names[k]);
    if (s == -EOPNOTSUPP) continue;
    if (s < 0) {
      fprintf(stderr, "microbench: checksum '%s': %s\n", impl_names[k], mior_strerror(s));
      rc = s;
      break;
    }
    r->have[k] = 1;
    /* The same answer as the reference on every size (and an odd length and offset), or no
     * number for it at all. */
    for (int z = 0; z < NSIZE; z++) {
      size_t lens[2] = {csum_sizes[z], csum_sizes[z] - 1};
      for (int j = 0; j < 2; j++) {
        uint16_t got = mior_csum_fold(mior_csum_partial(buf + 1, lens[j], 0));
        uint16_t ref = mior_csum_fold(mior_csum_partial_scalar(buf + 1, lens[j], 0));
        if (got != ref) {
          fprintf(stderr, "microbench: checksum '%s' gives 0x%04x on %zu bytes, scalar 0x%04x\n",
                  impl_names[k], got, lens[j], ref);
          rc = -EPROTO;
        }
      }
    }
  }
  for (int rep = 0; rep < REPS && rc == 0; rep++)
    for (int k = 0; k < NIMPL; k++) {
      if (!r->have[k]) continue;
      mior_csum_select(impl_names[k]);
      for (int z = 0; z < NSIZE; z++)
        r->csum[k][z].v[rep] = csum_rate(buf, csum_sizes[z], r->rep_seconds, &sink) / 1e9;
    }
  mior_csum_select("auto"); /* leave the process as we found it */
  free(raw);
  if (rc < 0) return rc;
  for (int k = 0; k < NIMPL; k++)
    for (int z = 0; z < NSIZE && r->have[k]; z++) summarize(&r->csum[k][z]);
  if (sink == 0x12345678u) fputc(' ', stderr); /* practically never; makes sink live */
  return 0;
}

static void print_table(const struct results *r) {
  printf("mior-perf microbench: NO-NETWORK SELF-BENCHMARK\n");
  printf("  CPU work only (buffer pool, checksum): no sockets, no rings, no packets sent.\n");
  printf("  %ld CPUs online; %d repetitions of %.0f ms per figure; median (min-max).\n\n", r->cpus,
         REPS, r->rep_seconds * 1e3);

  printf("buffer pool, %u x %u B: acquire+release pairs\n", POOL_SLOTS, POOL_SLOT_SIZE);
  for (int i = 0; i < 3; i++)
    printf("  %-30s %8.2f M/s  (%.2f-%.2f)\n", pool_labels[i], r->pool[i].median / 1e6,
           r->pool[i].min / 1e6, r->pool[i].max / 1e6);

  printf("\nchecksum (mior_csum_partial), GB/s; automatic choice: %s\n", r->auto_impl);
  printf("  %-8s %-8s %8s  %-15s %s\n", "impl", "buffer", "median", "(min-max)", "vs scalar");
  for (int k = 0; k < NIMPL; k++) {
    if (!r->have[k]) {
      printf("  %-8s not available on this CPU or build\n", impl_names[k]);
      continue;
    }
    for (int z = 0; z < NSIZE; z++) {
      const struct figure *f = &r->csum[k][z];
      char range[32];
      snprintf(range, sizeof range, "(%.2f-%.2f)", f->min, f->max);
      printf("  %-8s %-8s %8.2f  %-15s %.2fx\n", z == 0 ? impl_names[k] : "", size_labels[z],
             f->median, range, r->have[0] ? f->median / r->csum[0][z].median : 0.0);
    }
  }
}

static void print_figure_json(const struct figure *f, double scale) {
  printf("{\"median\": %.6g, \"min\": %.6g, \"max\": %.6g, \"samples\": [", f->median * scale,
         f->min * scale, f->max * scale);
  for (int i = 0; i < REPS; i++) printf("%s%.6g", i ? ", " : "", f->v[i] * scale);
  printf("]}");
}

static void print_json(const struct results *r) {
  printf("{\"mode\": \"microbench\", \"network\": false, "
         "\"description\": \"no-network self-benchmark: buffer pool and checksum on this CPU\", "
         "\"cpus\": %ld, \"seconds\": %.3g, \"repetitions\": %d, \"rep_seconds\": %.4g,\n",
         r->cpus, r->seconds, REPS, r->rep_seconds);
  printf(" \"pool\": {\"buf_count\": %u, \"buf_size\": %u, \"unit\": \"pairs_per_second\"", POOL_SLOTS,
         POOL_SLOT_SIZE);
  for (int i = 0; i < 3; i++) {
    printf(",\n   \"%s\": ", pool_keys[i]);
    print_figure_json(&r->pool[i], 1.0);
  }
  printf("},\n \"checksum\": {\"auto\": \"%s\", \"unit\": \"GB_per_second\", \"impls\": [", r->auto_impl);
  for (int k = 0; k < NIMPL; k++) {
    printf("%s\n   {\"name\": \"%s\", \"available\": %s", k ? "," : "", impl_names[k],
           r->have[k] ? "true" : "false");
    if (r->have[k]) {
      printf(", \"sizes\": [");
      for (int z = 0; z < NSIZE; z++) {
        printf("%s\n     {\"bytes\": %zu, \"gbps\": ", z ? "," : "", csum_sizes[z]);
        print_figure_json(&r->csum[k][z], 1.0);
        if (r->have[0])
          printf(", \"ratio_to_scalar\": %.4g", r->csum[k][z].median / r->csum[0][z].median);
        printf("}");
      }
      printf("]");
    }
    printf("}");
  }
  printf("]}}\n");
}

static void usage(FILE *to) {
  fprintf(to,
          "usage: mior-perf microbench [--seconds N] [--json]\n"
          "  No-network self-benchmark: buffer pool acquire/release rates (1 and 2 threads) and\n"
          "  checksum throughput of each implementation, %d repetitions each, median (min-max).\n"
          "  --seconds N  total time to spend, about (default 3)\n"
          "  --json       print one JSON object instead of the table\n",
          REPS);
}

int mior_perf_microbench(int argc, char **argv) {
  struct results r;
  int json = 0;
  memset(&r, 0, sizeof r);
  r.seconds = 3.0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      char *end;
      r.seconds = strtod(argv[++i], &end);
      if (*end || !(r.seconds > 0) || r.seconds > MAX_SECONDS) {
        fprintf(stderr, "microbench: --seconds wants a number above 0 and at most %.0f\n", MAX_SECONDS);
        return 2;
      }
    } else if (strcmp(argv[i], "--seconds") == 0) {
      fprintf(stderr, "microbench: --seconds needs a value\n");
      return 2;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "microbench: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  r.cpus = perf_cpu_count();
  /* The time is shared by 3 pool figures and one figure per checksum implementation and size. */
  int figures = 3;
  for (int k = 0; k < NIMPL; k++) {
    int s = mior_csum_select(impl_names[k]);
    if (s == 0) figures += NSIZE;
  }
  mior_csum_select("auto");
  r.rep_seconds = r.seconds / (figures * REPS);
  if (r.rep_seconds < 0.005) r.rep_seconds = 0.005;

  if (!json) {
    /* Said first, before any waiting, so nobody mistakes it for a network test. */
    printf("mior-perf microbench: no-network self-benchmark, about %.1f s...\n", r.seconds);
    fflush(stdout);
  }
  if (run_pool(&r) < 0 || run_csum(&r) < 0) return 1;
  if (json) {
    print_json(&r);
  } else {
    printf("\n");
    print_table(&r);
  }
  return 0;
}
