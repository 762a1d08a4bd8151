/* The Internet checksum: scalar reference, run-time dispatch, pseudo-headers, RFC 1624 updates,
 * and a benchmark helper.  The vectorised implementations live in checksum_x86.c. */
/* These files are always part of the library: export, not import, the public names even when
 * compiled on their own (the CMake build defines MIOR_BUILDING too). */
#ifndef MIOR_BUILDING
#define MIOR_BUILDING
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mior/proto/checksum.h"
#include "common/checksum_internal.h"
#include "common/internal.h"

/* Bytes summed into one 64-bit accumulator before it is folded.  Each 32-bit word adds less
 * than 2^32, so 2^28 words (1 GiB) stay far below 2^64; the limit only matters for buffers of
 * many gigabytes, but a checksum must be right for every length. */
#define CSUM_CHUNK ((size_t)1 << 30)

uint32_t mior_csum_partial_scalar(const void *buf, size_t len, uint32_t sum) {
  const uint8_t *p = buf;
  uint64_t total = sum;

  while (len >= 16) {
    size_t chunk = len < CSUM_CHUNK ? len & ~(size_t)15 : CSUM_CHUNK;
    const uint8_t *end = p + chunk;
    /* Two accumulators so consecutive additions do not wait for each other. */
    uint64_t a = 0, b = 0;
    for (; p < end; p += 16) {
      uint32_t w[4];
      memcpy(w, p, sizeof w); /* one unaligned load per word on x86; byte loads elsewhere */
      a += (uint64_t)w[0] + w[1];
      b += (uint64_t)w[2] + w[3];
    }
    total = mior__csum_add64(total, a);
    total = mior__csum_add64(total, b);
    len -= chunk;
  }
  while (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    total += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    /* The last byte is the first byte of a word whose second byte is zero.  Copying it into the
     * first byte of a zeroed word gives that word in the CPU's own order, big or little endian. */
    uint16_t w = 0;
    memcpy(&w, p, 1);
    total += w;
  }
  return mior__csum_fold64(total);
}

uint16_t mior_csum_fold(uint32_t sum) {
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return (uint16_t)~sum;
}

uint32_t mior_csum_block_add(uint32_t sum, uint32_t add, size_t offset) {
  if (offset & 1) {
    /* Rotating a 32-bit sum by 8 multiplies it by 2^24 modulo 2^32-1, which is 2^8 modulo
     * 0xffff (a divisor of 2^32-1): the byte swap of the folded value. */
    add = (add >> 8) | (add << 24);
  }
  sum += add;
  return sum + (sum < add);
}

/* ---- dispatch ---- */

typedef uint32_t (*csum_fn)(const void *buf, size_t len, uint32_t sum);

static int has_scalar(void) {
  return 1;
}

struct csum_impl {
  const char *name;
  csum_fn fn;
  int (*available)(void);
};

/* Best first: "auto" takes the first one available. */
static const struct csum_impl csum_impls[] = {
    {"avx2", mior__csum_partial_avx2, mior__csum_cpu_has_avx2},
    {"sse2", mior__csum_partial_sse2, mior__csum_cpu_has_sse2},
    {"scalar", mior_csum_partial_scalar, has_scalar},
};
#define CSUM_NIMPLS (sizeof csum_impls / sizeof csum_impls[0])

/* NULL until the first call chooses.  Relaxed ordering is enough: the table entries are
 * constant, and two threads racing to choose store the same pointer. */
static _Atomic(const struct csum_impl *) csum_current;

static const struct csum_impl *csum_best(void) {
  for (size_t i = 0; i < CSUM_NIMPLS; i++)
    if (csum_impls[i].available()) return &csum_impls[i];
  return &csum_impls[CSUM_NIMPLS - 1];
}

static const struct csum_impl *csum_get(void) {
  const struct csum_impl *impl = atomic_load_explicit(&csum_current, memory_order_relaxed);
  if (MIOR_UNLIKELY(impl == NULL)) {
    impl = csum_best();
    atomic_store_explicit(&csum_current, impl, memory_order_relaxed);
  }
  return impl;
}

static const struct csum_impl *csum_find(const char *name) {
  for (size_t i = 0; i < CSUM_NIMPLS; i++)
    if (strcmp(csum_impls[i].name, name) == 0) return &csum_impls[i];
  return NULL;
}

uint32_t mior_csum_partial(const void *buf, size_t len, uint32_t sum) {
  return csum_get()->fn(buf, len, sum);
}

uint16_t mior_csum(const void *buf, size_t len) {
  return mior_csum_fold(mior_csum_partial(buf, len, 0));
}

const char *mior_csum_impl(void) {
  return csum_get()->name;
}

int mior_csum_select(const char *name) {
  const struct csum_impl *impl;
  if (name == NULL) return mior__fail(-EINVAL, "mior_csum_select: NULL name");
  if (strcmp(name, "auto") == 0) {
    impl = csum_best();
  } else {
    impl = csum_find(name);
    if (impl == NULL) return mior__fail(-EINVAL, "mior_csum_select: unknown implementation '%s'", name);
    if (!impl->available())
      return mior__fail(-EOPNOTSUPP, "mior_csum_select: this CPU has no %s", name);
  }
  atomic_store_explicit(&csum_current, impl, memory_order_relaxed);
  return 0;
}

/* ---- benchmark helper ---- */

int mior_csum_bench(const char *impl_name, size_t len, size_t align, double seconds, double *rate) {
  const struct csum_impl *impl;
  if (impl_name == NULL || rate == NULL || len == 0 || align >= 64 || !(seconds > 0) || seconds > 60)
    return mior__fail(-EINVAL, "mior_csum_bench: bad arguments");
  impl = strcmp(impl_name, "auto") == 0 ? csum_best() : csum_find(impl_name);
  if (impl == NULL) return mior__fail(-EINVAL, "mior_csum_bench: unknown implementation '%s'", impl_name);
  if (!impl->available()) return mior__fail(-EOPNOTSUPP, "mior_csum_bench: this CPU has no %s", impl_name);
  if (len > SIZE_MAX - 128) return mior__fail(-EINVAL, "mior_csum_bench: length too large");

  uint8_t *mem = malloc(len + 128);
  if (mem == NULL) return mior__fail(-ENOMEM, "mior_csum_bench: cannot allocate %lu bytes", (unsigned long)len);
  uint8_t *buf = mem + ((64 - ((uintptr_t)mem & 63)) & 63) + align;
  uint32_t x = 0x9e3779b9u;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    buf[i] = (uint8_t)x;
  }

  /* Double the iteration count until one timed run lasts long enough; the last run is the
   * measurement.  volatile keeps the sums from being optimised away. */
  volatile uint32_t sink = 0;
  double elapsed = 0;
  uint64_t iters = 1;
  for (;;) {
    clock_t t0 = clock();
    for (uint64_t i = 0; i < iters; i++) sink = impl->fn(buf, len, sink);
    clock_t t1 = clock();
    elapsed = (double)(t1 - t0) / CLOCKS_PER_SEC;
    if (elapsed >= seconds || iters >= ((uint64_t)1 << 40)) break;
    iters *= elapsed < seconds / 16 ? 8 : 2;
  }
  free(mem);
  if (!(elapsed > 0)) return mior__fail(-EIO, "mior_csum_bench: the clock did not advance");
  *rate = (double)iters * (double)len / elapsed;
  return 0;
}

/* ---- pseudo-headers and L4 checksums ---- */

uint32_t mior_csum_pseudo_ipv4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                               uint16_t len) {
  /* src, dst, then zero, protocol, length: 12 bytes summed as they would be on the wire. */
  uint8_t ph[12];
  memcpy(ph, src, 4);
  memcpy(ph + 4, dst, 4);
  ph[8] = 0;
  ph[9] = proto;
  ph[10] = (uint8_t)(len >> 8);
  ph[11] = (uint8_t)len;
  return mior_csum_partial_scalar(ph, sizeof ph, 0);
}

uint32_t mior_csum_pseudo_ipv6(const uint8_t src[16], const uint8_t dst[16], uint8_t next_header,
                               uint32_t len) {
  /* RFC 8200, section 8.1: src, dst, 32-bit upper-layer length, three zero bytes, next header. */
  uint8_t ph[40];
  memcpy(ph, src, 16);
  memcpy(ph + 16, dst, 16);
  ph[32] = (uint8_t)(len >> 24);
  ph[33] = (uint8_t)(len >> 16);
  ph[34] = (uint8_t)(len >> 8);
  ph[35] = (uint8_t)len;
  ph[36] = ph[37] = ph[38] = 0;
  ph[39] = next_header;
  return mior_csum_partial_scalar(ph, sizeof ph, 0);
}

#define PROTO_UDP 17

uint16_t mior_csum_l4_ipv4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                           const void *seg, size_t len) {
  uint16_t c = mior_csum_fold(
      mior_csum_partial(seg, len, mior_csum_pseudo_ipv4(src, dst, proto, (uint16_t)len)));
  return (proto == PROTO_UDP && c == 0) ? 0xffff : c;
}

uint16_t mior_csum_l4_ipv6(const uint8_t src[16], const uint8_t dst[16], uint8_t next_header,
                           const void *seg, size_t len) {
  uint16_t c = mior_csum_fold(
      mior_csum_partial(seg, len, mior_csum_pseudo_ipv6(src, dst, next_header, (uint32_t)len)));
  return (next_header == PROTO_UDP && c == 0) ? 0xffff : c;
}

/* The stored UDP checksum field (offset 6), or 1 (never zero) when the segment is too short. */
static uint16_t udp_stored_csum(const void *seg, size_t len) {
  uint16_t c;
  if (len < 8) return 1;
  memcpy(&c, (const uint8_t *)seg + 6, 2);
  return c;
}

int mior_csum_l4_verify_ipv4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                             const void *seg, size_t len) {
  if (len > 0xffff) return 0;
  if (proto == PROTO_UDP && udp_stored_csum(seg, len) == 0) return 1; /* sender did not compute */
  return mior_csum_fold(mior_csum_partial(
             seg, len, mior_csum_pseudo_ipv4(src, dst, proto, (uint16_t)len))) == 0;
}

int mior_csum_l4_verify_ipv6(const uint8_t src[16], const uint8_t dst[16], uint8_t next_header,
                             const void *seg, size_t len) {
  /* A zero UDP checksum is invalid over IPv6 (RFC 8200, section 8.1); without this test it would
   * pass whenever the true checksum is 0xffff, as 0 and 0xffff are the same ones' complement
   * number. */
  if (next_header == PROTO_UDP && udp_stored_csum(seg, len) == 0) return 0;
  if (len > 0xffffffffu) return 0;
  return mior_csum_fold(mior_csum_partial(
             seg, len, mior_csum_pseudo_ipv6(src, dst, next_header, (uint32_t)len))) == 0;
}

/* ---- incremental updates (RFC 1624) ---- */

uint16_t mior_csum_update16(uint16_t old_csum, uint16_t old_val, uint16_t new_val) {
  uint32_t s = (uint32_t)(uint16_t)~old_csum + (uint16_t)~old_val + new_val;
  return mior_csum_fold(s);
}

uint16_t mior_csum_update32(uint16_t old_csum, uint32_t old_val, uint32_t new_val) {
  uint64_t s = (uint64_t)(uint16_t)~old_csum + (uint16_t)~(old_val >> 16) +
               (uint16_t)~(old_val & 0xffffu) + (new_val >> 16) + (new_val & 0xffffu);
  return mior_csum_fold(mior__csum_fold64(s));
}

uint16_t mior_csum_update(uint16_t old_csum, const void *old_bytes, const void *new_bytes,
                          size_t len) {
  const uint8_t *o = old_bytes, *n = new_bytes;
  uint64_t s = (uint16_t)~old_csum;
  if ((len & 1) || old_bytes == NULL || new_bytes == NULL) return old_csum;
  for (size_t i = 0; i < len; i += 2) {
    uint16_t ow, nw;
    memcpy(&ow, o + i, 2);
    memcpy(&nw, n + i, 2);
    s += (uint16_t)~ow;
    s += nw;
  }
  return mior_csum_fold(mior__csum_fold64(s));
}
