/* The Internet checksum: known answers (RFC 1071, hand-computed IPv4/UDP/IPv6 packets), every
 * implementation against the scalar reference at every length 0..4096 and alignment 0..63,
 * chained partial sums, pseudo-headers, and RFC 1624 incremental updates against a full
 * recompute.  Nothing here is timed. */
#include "test.h"

#include <time.h>

#include <mior/proto/checksum.h>

/* Whether the CPU and OS run AVX2, asked independently of the library's own probe: the
 * compiler's CPU model with GCC and clang, the system with MSVC. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
static int cpu_has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}
#elif defined(_M_X64)
#include <windows.h>
static int cpu_has_avx2(void) {
  return IsProcessorFeaturePresent(PF_AVX2_INSTRUCTIONS_AVAILABLE) != 0;
}
#endif

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return rng_state = x;
}

static void fill_random(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
}

/* An independent reference written the textbook way: big-endian 16-bit words, odd byte padded,
 * folded and complemented.  Returns the checksum as a number (host order). */
static uint16_t naive_csum(const uint8_t *p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) s += (uint32_t)p[n - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

/* The stored bytes of a checksum value returned by the library, as a host-order number. */
static uint16_t as_number(uint16_t stored) {
  uint8_t b[2];
  memcpy(b, &stored, 2);
  return (uint16_t)(b[0] << 8 | b[1]);
}

static void test_known_answers(void) {
  /* RFC 1071, section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d. */
  static const uint8_t rfc1071[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK_EQ(as_number(mior_csum(rfc1071, sizeof rfc1071)), 0x220d);
  CHECK_EQ(as_number(mior_csum_fold(mior_csum_partial_scalar(rfc1071, 8, 0))), 0x220d);
  /* Stored, the checksum's bytes are 22 0d in memory on any CPU. */
  uint16_t c = mior_csum(rfc1071, sizeof rfc1071);
  uint8_t cb[2];
  memcpy(cb, &c, 2);
  CHECK_EQ(cb[0], 0x22);
  CHECK_EQ(cb[1], 0x0d);

  /* A hand-built IPv4/UDP packet: 192.0.2.1:1234 -> 198.51.100.2:5678, payload "mior!" (odd
   * length), DF, TTL 64, id 0x1c46.  Checksums computed independently: IP 324f, UDP fac0. */
  uint8_t pkt[] = {0x45, 0x00, 0x00, 0x21, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
                   192,  0,    2,    1,    198,  51,   100,  2,
                   0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0d, 0x00, 0x00, 'm', 'i', 'o', 'r', '!'};
  CHECK_EQ(as_number(mior_csum(pkt, 20)), 0x324f);
  c = mior_csum_l4_ipv4(pkt + 12, pkt + 16, 17, pkt + 20, 13);
  CHECK_EQ(as_number(c), 0xfac0);
  memcpy(pkt + 26, &c, 2);
  CHECK_EQ(pkt[26], 0xfa);
  CHECK_EQ(pkt[27], 0xc0);
  CHECK_EQ(mior_csum_l4_verify_ipv4(pkt + 12, pkt + 16, 17, pkt + 20, 13), 1);
  pkt[32] ^= 1; /* corrupt the payload */
  CHECK_EQ(mior_csum_l4_verify_ipv4(pkt + 12, pkt + 16, 17, pkt + 20, 13), 0);
  pkt[32] ^= 1;
  c = mior_csum(pkt, 20);
  memcpy(pkt + 10, &c, 2);
  CHECK_EQ(mior_csum(pkt, 20), 0); /* a header with its checksum verifies to 0 */
  /* A zero UDP checksum over IPv4 means "not computed" and is accepted. */
  uint8_t saved[2] = {pkt[26], pkt[27]};
  pkt[26] = pkt[27] = 0;
  CHECK_EQ(mior_csum_l4_verify_ipv4(pkt + 12, pkt + 16, 17, pkt + 20, 13), 1);
  pkt[26] = saved[0], pkt[27] = saved[1];

  /* UDP over IPv6: 2001:db8::1 port 53 -> 2001:db8::2 port 9999, payload "abc": b8bc. */
  uint8_t s6[16] = {0x20, 0x01, 0x0d, 0xb8}, d6[16] = {0x20, 0x01, 0x0d, 0xb8};
  s6[15] = 1, d6[15] = 2;
  uint8_t u6[11] = {0, 53, 0x27, 0x0f, 0, 11, 0, 0, 'a', 'b', 'c'};
  c = mior_csum_l4_ipv6(s6, d6, 17, u6, sizeof u6);
  CHECK_EQ(as_number(c), 0xb8bc);
  memcpy(u6 + 6, &c, 2);
  CHECK_EQ(mior_csum_l4_verify_ipv6(s6, d6, 17, u6, sizeof u6), 1);
  /* Over IPv6 a zero UDP checksum is never valid. */
  u6[6] = u6[7] = 0;
  CHECK_EQ(mior_csum_l4_verify_ipv6(s6, d6, 17, u6, sizeof u6), 0);

  /* The pseudo-header helpers agree with summing the pseudo-header bytes by hand. */
  uint8_t ph4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0, 17, 0, 13};
  CHECK_EQ(mior_csum_fold(mior_csum_pseudo_ipv4(pkt + 12, pkt + 16, 17, 13)),
           mior_csum_fold(mior_csum_partial_scalar(ph4, 12, 0)));
  uint8_t ph6[40] = {0};
  memcpy(ph6, s6, 16);
  memcpy(ph6 + 16, d6, 16);
  ph6[33] = 0x01, ph6[34] = 0x02, ph6[35] = 0x03, ph6[39] = 6; /* length 0x010203, TCP */
  CHECK_EQ(mior_csum_fold(mior_csum_pseudo_ipv6(s6, d6, 6, 0x010203)),
           mior_csum_fold(mior_csum_partial_scalar(ph6, 40, 0)));

  /* UDP: a computed 0 is sent as ffff.  Find a 2-byte payload making the sum ffff. */
  uint8_t u[10] = {0x12, 0x34, 0x56, 0x78, 0, 10, 0, 0, 0, 0};
  uint16_t partial = as_number((uint16_t)~mior_csum_fold(
      mior_csum_partial(u, 10, mior_csum_pseudo_ipv4(pkt + 12, pkt + 16, 17, 10))));
  uint16_t fill = (uint16_t)(0xffff - partial); /* ones' complement: partial + fill = ffff */
  u[8] = (uint8_t)(fill >> 8), u[9] = (uint8_t)fill;
  c = mior_csum_l4_ipv4(pkt + 12, pkt + 16, 17, u, 10);
  CHECK_EQ(c, 0xffff);
  memcpy(u + 6, &c, 2);
  CHECK_EQ(mior_csum_l4_verify_ipv4(pkt + 12, pkt + 16, 17, u, 10), 1);
}

/* Every available implementation against the scalar reference (folded), at every length
 * 0..4096 and start alignment 0..63, with a random initial sum for half of them. */
static void test_impls_match_scalar(void) {
  static const char *const impls[] = {"avx2", "sse2", "scalar"};
  enum { MAXLEN = 4096, MAXALIGN = 64 };
  uint8_t *mem = malloc(MAXLEN + MAXALIGN + 64);
  REQUIRE(mem != NULL);
  uint8_t *base = mem + ((64 - ((uintptr_t)mem & 63)) & 63);
  fill_random(base, MAXLEN + MAXALIGN);

  /* The scalar reference itself against the textbook one. */
  for (size_t len = 0; len <= 300; len++)
    for (size_t a = 0; a < 4; a++)
      CHECK_EQ(as_number(mior_csum_fold(mior_csum_partial_scalar(base + a, len, 0))),
               naive_csum(base + a, len));

  int tested = 0;
  clock_t t0 = clock();
  for (size_t k = 0; k < sizeof impls / sizeof impls[0]; k++) {
    int rc = mior_csum_select(impls[k]);
    if (rc == -EOPNOTSUPP) {
      printf("note: %s not available on this CPU\n", impls[k]);
      continue;
    }
    CHECK_EQ(rc, 0);
    CHECK(strcmp(mior_csum_impl(), impls[k]) == 0);
    tested++;
    long mismatches = 0;
    for (size_t len = 0; len <= MAXLEN; len++) {
      for (size_t a = 0; a < MAXALIGN; a++) {
        uint32_t init = (len & 1) ? (uint32_t)rnd() : 0;
        uint16_t want = mior_csum_fold(mior_csum_partial_scalar(base + a, len, init));
        uint16_t got = mior_csum_fold(mior_csum_partial(base + a, len, init));
        if (got != want && mismatches++ < 5)
          TEST_FAIL_AT("%s: len %zu align %zu init %08x: %04x != %04x", impls[k], len, a,
                       (unsigned)init, got, want);
      }
    }
    CHECK_EQ(mismatches, 0);
    /* A long run of ones and a long buffer exercise the carries of the wide accumulators. */
    size_t big = (size_t)1 << 20;
    uint8_t *ones = malloc(big + 1);
    REQUIRE(ones != NULL);
    memset(ones, 0xff, big + 1);
    CHECK_EQ(mior_csum_fold(mior_csum_partial(ones, big + 1, 0xffffffffu)),
             mior_csum_fold(mior_csum_partial_scalar(ones, big + 1, 0xffffffffu)));
    CHECK_EQ(as_number(mior_csum(ones + 1, big)), naive_csum(ones + 1, big));
    fill_random(ones, big + 1);
    CHECK_EQ(as_number(mior_csum(ones + 1, big)), naive_csum(ones + 1, big));
    free(ones);
  }
  CHECK(tested >= 1);
  printf("compared %d implementation(s) in %.2f s of CPU time\n", tested,
         (double)(clock() - t0) / CLOCKS_PER_SEC);
  CHECK_OK(mior_csum_select("auto"));
  free(mem);
}

static void test_select(void) {
  CHECK_ERR(mior_csum_select(NULL), -EINVAL);
  CHECK_ERR(mior_csum_select("avx512"), -EINVAL);
  CHECK_OK(mior_csum_select("scalar"));
  CHECK(strcmp(mior_csum_impl(), "scalar") == 0);
  CHECK_OK(mior_csum_select("auto"));
  const char *best = mior_csum_impl();
  CHECK(strcmp(best, "avx2") == 0 || strcmp(best, "sse2") == 0 || strcmp(best, "scalar") == 0);
#if defined(__x86_64__) || defined(_M_X64)
  /* Every x86-64 CPU has SSE2, so "auto" is never the scalar code there. */
  CHECK_OK(mior_csum_select("sse2"));
  CHECK(strcmp(best, "scalar") != 0);
  CHECK_EQ(mior_csum_select("avx2") == 0, cpu_has_avx2());
#endif
  CHECK_OK(mior_csum_select("auto"));
  /* The benchmark helper's argument checks (nothing is timed here). */
  double rate = 0;
  CHECK_ERR(mior_csum_bench("nope", 64, 0, 0.1, &rate), -EINVAL);
  CHECK_ERR(mior_csum_bench("scalar", 0, 0, 0.1, &rate), -EINVAL);
  CHECK_ERR(mior_csum_bench("scalar", 64, 64, 0.1, &rate), -EINVAL);
  CHECK_ERR(mior_csum_bench("scalar", 64, 0, 0.1, NULL), -EINVAL);
}

/* Chains of partial sums give the one-shot result: even-length pieces directly, any pieces
 * through mior_csum_block_add. */
static void test_chaining(void) {
  uint8_t buf[3000];
  fill_random(buf, sizeof buf);
  for (int round = 0; round < 2000; round++) {
    size_t len = (size_t)(rnd() % sizeof buf);
    uint16_t want = mior_csum(buf, len);
    /* Even-length pieces except the last. */
    uint32_t s = 0;
    size_t off = 0;
    while (off < len) {
      size_t piece = (size_t)(rnd() % 200);
      if (piece > len - off) piece = len - off;
      if (off + piece < len) piece &= ~(size_t)1;
      if (piece == 0 && off + 2 <= len) piece = 2;
      if (piece == 0) piece = len - off;
      s = (round & 1) ? mior_csum_partial(buf + off, piece, s)
                      : mior_csum_partial_scalar(buf + off, piece, s);
      off += piece;
    }
    CHECK_EQ(mior_csum_fold(s), want);
    /* Arbitrary pieces, each summed from zero and added at its offset. */
    s = 0;
    off = 0;
    while (off < len) {
      size_t piece = 1 + (size_t)(rnd() % 97);
      if (piece > len - off) piece = len - off;
      s = mior_csum_block_add(s, mior_csum_partial(buf + off, piece, 0), off);
      off += piece;
    }
    CHECK_EQ(mior_csum_fold(s), want);
  }
}

/* RFC 1624 updates against a full recompute, on random headers and random edits. */
static void test_incremental(void) {
  for (int round = 0; round < 20000; round++) {
    uint8_t h[40];
    fill_random(h, sizeof h);
    h[10] = h[11] = 0;
    uint16_t c = mior_csum(h, sizeof h);
    memcpy(h + 10, &c, 2);
    int kind = round % 3;
    if (kind == 0) { /* one 16-bit field */
      size_t at = 12 + 2 * (size_t)(rnd() % 14);
      uint16_t o, n = (uint16_t)rnd();
      if (round % 7 == 0) n = 0; /* extremes: to and from zero and ffff */
      if (round % 11 == 0) n = 0xffff;
      memcpy(&o, h + at, 2);
      memcpy(h + at, &n, 2);
      c = mior_csum_update16(c, o, n);
    } else if (kind == 1) { /* an IPv4 address */
      size_t at = 12 + 4 * (size_t)(rnd() % 7);
      uint32_t o, n = (uint32_t)rnd();
      memcpy(&o, h + at, 4);
      memcpy(h + at, &n, 4);
      c = mior_csum_update32(c, o, n);
    } else { /* an IPv6 address */
      uint8_t o[16], n[16];
      memcpy(o, h + 12, 16);
      fill_random(n, 16);
      memcpy(h + 12, n, 16);
      c = mior_csum_update(c, o, n, 16);
    }
    uint8_t z[40];
    memcpy(z, h, sizeof z);
    z[10] = z[11] = 0;
    uint16_t full = mior_csum(z, sizeof z);
    if (c != full) {
      TEST_FAIL_AT("round %d kind %d: incremental %04x != recomputed %04x", round, kind, c, full);
      break;
    }
    memcpy(h + 10, &c, 2);
    CHECK_EQ(mior_csum(h, sizeof h), 0);
  }
  /* An odd length cannot be updated word by word: the checksum comes back unchanged. */
  uint8_t a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
  CHECK_EQ(mior_csum_update(0x1234, a, b, 3), 0x1234);
}

int main(void) {
  test_known_answers();
  test_select();
  test_chaining();
  test_incremental();
  test_impls_match_scalar();
  TEST_DONE();
}
