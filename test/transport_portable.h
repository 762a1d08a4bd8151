/* The transport tests' helpers that build on every system mior runs on: sequence-numbered
 * payloads that prove they arrived intact, hand-built IPv4/UDP headers, a receiver that tallies
 * what arrived, a paced send pump with every loop bounded in count and time, the pool check every
 * test ends with, and the runner that takes one body through every variant of this build (its
 * backends, and the option variants a test adds).  Only the C library, the test harness (test.h),
 * the test thread shim (test_thread.h) and mior itself are used here; anything that needs a POSIX
 * or Win32 call belongs to an OS fixture, so a body written against these helpers reads the same
 * on both systems.
 *
 * A test does not include this header directly but its OS fixture: transport_os.h for a test
 * that runs on every system, which is transport_common.h on Linux (namespaces, the watchdog,
 * kernel sockets; also what the Linux-only tests include) and transport_win.h on Windows.  Each
 * fixture supplies what this header declares as tt_os_*: its variant rows, and how to set an
 * environment switch.
 */
#ifndef MIOR_TEST_TRANSPORT_PORTABLE_H
#define MIOR_TEST_TRANSPORT_PORTABLE_H

#include <stdint.h>

#include "common/backend.h"
#include "common/os.h"
#include "test.h"
#include "test_thread.h"

/* --- time and options ------------------------------------------------------------------------- */

/* The library's monotonic clock (CLOCK_MONOTONIC on Linux, QueryPerformanceCounter on Windows):
 * a deadline reads the same in both suites. */
static inline int64_t tt_now_us(void) { return (int64_t)(mior__now_ns() / 1000u); }

static inline int64_t tt_now_ms(void) { return tt_now_us() / 1000; }

static inline mior_options tt_opts(mior_backend b) {
  mior_options o;
  mior_options_init(&o);
  o.backend = b;
  return o;
}

/* --- payloads --------------------------------------------------------------------------------- */

/* A payload: 16-byte header (magic, seq, len, checksum of the rest), then bytes that depend on
 * seq and position, so a corrupted, truncated, shifted or swapped payload does not verify. */
#define TT_MAGIC 0x6d696f72u /* "mior" */
#define TT_HDR 16u

static inline uint32_t tt_fnv(const uint8_t *p, uint32_t n) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static inline void tt_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint32_t tt_get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* Length of payload seq, between lo and hi (>= TT_HDR), spread so sizes vary. */
static inline uint32_t tt_len_for(uint32_t seq, uint32_t lo, uint32_t hi) {
  return lo + (seq * 2654435761u >> 7) % (hi - lo + 1);
}

static inline void tt_fill(uint8_t *p, uint32_t len, uint32_t seq) {
  for (uint32_t i = TT_HDR; i < len; i++) p[i] = (uint8_t)(seq * 131u + i * 7u + (i >> 8));
  tt_put32(p, TT_MAGIC);
  tt_put32(p + 4, seq);
  tt_put32(p + 8, len);
  tt_put32(p + 12, tt_fnv(p + TT_HDR, len - TT_HDR));
}

/* 0 and *seq if p[0..len) is an intact payload; -1 if it is ours but damaged; 1 if not ours. */
static inline int tt_check(const uint8_t *p, uint32_t len, uint32_t *seq) {
  if (len < TT_HDR || tt_get32(p) != TT_MAGIC) return 1;
  if (tt_get32(p + 8) != len) return -1;
  *seq = tt_get32(p + 4);
  for (uint32_t i = TT_HDR; i < len; i++) {
    if (p[i] != (uint8_t)(*seq * 131u + i * 7u + (i >> 8))) return -1;
  }
  return tt_get32(p + 12) == tt_fnv(p + TT_HDR, len - TT_HDR) ? 0 : -1;
}

/* --- Internet checksum, IPv4 and UDP headers (built by hand: the tests check the library, so
 * they do not lean on its own protocol helpers) ------------------------------------------------ */

static inline uint32_t tt_csum_add(uint32_t sum, const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += (uint32_t)(p[n - 1] << 8);
  return sum;
}

static inline uint16_t tt_csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static inline void tt_put16be(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint16_t tt_get16be(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Write IPv4 (20 bytes, no options) + UDP (8) headers in front of a payload of plen bytes already
 * at p + 28.  Addresses in network order (4 bytes each), ports in host order.  Returns 28 + plen. */
static inline uint32_t tt_build_ipv4_udp(uint8_t *p, const uint8_t src[4], const uint8_t dst[4],
                                         uint16_t sport, uint16_t dport, uint32_t plen,
                                         uint16_t ip_id) {
  uint32_t total = 28 + plen;
  memset(p, 0, 28);
  p[0] = 0x45;
  tt_put16be(p + 2, (uint16_t)total);
  tt_put16be(p + 4, ip_id);
  tt_put16be(p + 6, 0x4000); /* DF */
  p[8] = 64;
  p[9] = 17;
  memcpy(p + 12, src, 4);
  memcpy(p + 16, dst, 4);
  tt_put16be(p + 10, tt_csum_fold(tt_csum_add(0, p, 20)));
  uint8_t *u = p + 20;
  tt_put16be(u, sport);
  tt_put16be(u + 2, dport);
  tt_put16be(u + 4, (uint16_t)(8 + plen));
  /* UDP checksum over the pseudo-header, header and payload. */
  uint8_t ph[12];
  memcpy(ph, src, 4);
  memcpy(ph + 4, dst, 4);
  ph[8] = 0;
  ph[9] = 17;
  tt_put16be(ph + 10, (uint16_t)(8 + plen));
  uint32_t s = tt_csum_add(0, ph, 12);
  s = tt_csum_add(s, u, 8 + plen);
  uint16_t c = tt_csum_fold(s);
  tt_put16be(u + 6, c ? c : 0xffff);
  return total;
}

/* Parse an IPv4+UDP packet: 0 with payload, plen and ports if it is a well-formed UDP datagram whose
 * IP header checksum and lengths agree (and the UDP checksum, when set and udp_csum is
 * nonzero); -1 if damaged; 1 if not IPv4/UDP.  src/dst out (4 bytes each) may be NULL.
 * Datagrams the kernel sends over a veth carry only a partial UDP checksum (the device
 * "offloads" it and nothing ever completes it), so those are checked with udp_csum 0. */
static inline int tt_parse_ipv4_udp(const uint8_t *p, uint32_t len, int udp_csum,
                                    const uint8_t **payload, uint32_t *plen, uint16_t *sport,
                                    uint16_t *dport, uint8_t *src, uint8_t *dst) {
  if (len < 20 || (p[0] >> 4) != 4) return 1;
  uint32_t ihl = (p[0] & 15u) * 4u;
  if (ihl < 20 || len < ihl) return -1;
  if (p[9] != 17) return 1;
  uint32_t total = tt_get16be(p + 2);
  if (total > len || total < ihl + 8) return -1;
  if (tt_csum_fold(tt_csum_add(0, p, ihl)) != 0) return -1;
  const uint8_t *u = p + ihl;
  uint32_t ulen = tt_get16be(u + 4);
  if (ulen != total - ihl) return -1;
  if (udp_csum && tt_get16be(u + 6) != 0) {
    uint8_t ph[12];
    memcpy(ph, p + 12, 8);
    ph[8] = 0;
    ph[9] = 17;
    tt_put16be(ph + 10, (uint16_t)ulen);
    if (tt_csum_fold(tt_csum_add(tt_csum_add(0, ph, 12), u, ulen)) != 0) return -1;
  }
  if (src) memcpy(src, p + 12, 4);
  if (dst) memcpy(dst, p + 16, 4);
  *sport = tt_get16be(u);
  *dport = tt_get16be(u + 2);
  *payload = u + 8;
  *plen = ulen - 8;
  return 0;
}

/* --- receiving: a tally of sequence numbers --------------------------------------------------- */

/* What a receive test expects, and what it saw.  unwrap() turns a received packet into our payload
 * (the UDP kind hands it over as is; ip and packet strip headers): 0 ours, 1 foreign (ignored),
 * -1 damaged. */
typedef struct tt_rx {
  uint32_t count;          /* sequence numbers 0..count-1 expected */
  uint8_t *seen;           /* count flags */
  uint32_t got, dups, bad, foreign, out_of_range;
  uint32_t reordered;      /* packets that arrived after one with a higher sequence number */
  uint32_t last_seq;       /* sequence number of the last new packet (valid once got > 0) */
  uint64_t bytes;          /* bytes of the received packets we counted (pkt->len) */
  int (*unwrap)(struct tt_rx *r, const mior_pkt *pkt, const uint8_t **pl, uint32_t *plen);
  void *uctx;
  int check_src;           /* compare pkt->src with want_src */
  mior_addr want_src;
  uint32_t src_mismatch;
  int want_unspec_src;     /* ip/packet kinds: src must be MIOR_AF_UNSPEC */
  uint32_t per_port[8];    /* packets seen per port index (set port_of) */
  mior_port *ports[8];
  int nports;
  /* keeping: every keep_every-th packet (if nonzero) is kept, up to keep_max */
  uint32_t keep_every, keep_max, kept_n;
  mior_pkt *kept;
} tt_rx;

static inline int tt_addr_eq(const mior_addr *a, const mior_addr *b) {
  if (a->family != b->family || a->port != b->port) return 0;
  size_t n = a->family == MIOR_AF_INET6 ? 16 : 4;
  return memcmp(a->addr, b->addr, n) == 0;
}

static inline int tt_unwrap_plain(tt_rx *r, const mior_pkt *pkt, const uint8_t **pl, uint32_t *plen) {
  (void)r;
  *pl = pkt->data;
  *plen = pkt->len;
  return 0;
}

static inline void tt_rx_init(tt_rx *r, uint32_t count) {
  memset(r, 0, sizeof *r);
  r->count = count;
  r->seen = calloc(count ? count : 1, 1);
  REQUIRE(r->seen != NULL);
  r->unwrap = tt_unwrap_plain;
}

static inline void tt_rx_free(tt_rx *r) {
  free(r->seen);
  free(r->kept);
  r->seen = NULL;
  r->kept = NULL;
}

static inline int tt_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  tt_rx *r = ctx;
  for (int i = 0; i < r->nports; i++) {
    if (r->ports[i] == port) r->per_port[i]++;
  }
  const uint8_t *pl;
  uint32_t plen, seq = 0;
  int u = r->unwrap(r, pkt, &pl, &plen);
  if (u > 0) {
    r->foreign++;
    return MIOR_DONE;
  }
  int c = u < 0 ? -1 : tt_check(pl, plen, &seq);
  if (c > 0) {
    r->foreign++;
    return MIOR_DONE;
  }
  if (c < 0) {
    r->bad++;
    return MIOR_DONE;
  }
  if (seq >= r->count) {
    r->out_of_range++;
    return MIOR_DONE;
  }
  if (r->check_src && !tt_addr_eq(&pkt->src, &r->want_src)) r->src_mismatch++;
  if (r->want_unspec_src && pkt->src.family != MIOR_AF_UNSPEC) r->src_mismatch++;
  if (r->seen[seq]) {
    r->dups++;
    return MIOR_DONE;
  }
  if (r->got > 0 && seq < r->last_seq) r->reordered++;
  r->last_seq = seq;
  r->seen[seq] = 1;
  r->got++;
  r->bytes += pkt->len;
  if (r->keep_every && seq % r->keep_every == 0 && r->kept_n < r->keep_max) {
    r->kept[r->kept_n++] = *pkt;
    return MIOR_KEEP;
  }
  return MIOR_DONE;
}

static inline mior_receiver tt_receiver(tt_rx *r) {
  mior_receiver rc = {tt_consume, NULL, r};
  return rc;
}

/* Report a tally: everything received once, intact. */
#define TT_CHECK_TALLY(r)                                                          \
  do {                                                                             \
    CHECK_EQ((r)->got, (r)->count);                                                \
    CHECK_EQ((r)->dups, 0);                                                        \
    CHECK_EQ((r)->bad, 0);                                                         \
    CHECK_EQ((r)->out_of_range, 0);                                                \
    CHECK_EQ((r)->src_mismatch, 0);                                                \
  } while (0)

/* --- sending: a paced pump -------------------------------------------------------------------- */

/* Write packet seq into buf (capacity cap) and return its length, or 0 to stop. */
typedef uint32_t (*tt_build_fn)(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq);

/* Payloads seq + off for seq = 0, 1, ...: what tt_build_payload writes for a pump (a tt_build_fn
 * with a tt_span as its context), so a second pump can go on where the first stopped. */
typedef struct tt_span {
  uint32_t off; /* sequence number of the pump's first packet */
  uint32_t hi;  /* longest payload (at least TT_HDR); lengths vary between TT_HDR and hi */
} tt_span;

static inline uint32_t tt_build_payload(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  const tt_span *s = ctx;
  uint32_t len = tt_len_for(seq + s->off, TT_HDR, s->hi);
  if (len > cap) len = cap;
  tt_fill(buf, len, seq + s->off);
  return len;
}

typedef struct tt_pump_result {
  uint32_t sent;       /* packets handed to mior_tx_send successfully */
  uint64_t sent_bytes; /* their lengths */
  uint32_t send_errors;
  uint32_t eagain;     /* acquire -EAGAIN seen (backpressure, not an error) */
  int64_t elapsed_us;
} tt_pump_result;

/* Send count packets from tx (to dst, NULL for the kind's own addressing) while polling rx ports,
 * keeping at most `window` packets sent but not yet received so no socket buffer overflows.  Ends
 * when everything arrived, or when nothing arrived for stall_ms, or at the deadline. */
static inline tt_pump_result tt_pump(mior_port *tx, tt_rx *r, mior_port **rx, int nrx,
                                     uint32_t count, uint32_t window, const mior_addr *dst,
                                     tt_build_fn build, void *bctx, int64_t limit_ms) {
  tt_pump_result res;
  memset(&res, 0, sizeof res);
  int64_t t0 = tt_now_us(), deadline = t0 + limit_ms * 1000, last_progress = t0;
  uint32_t last_got = r->got, got0 = r->got;
  while (r->got - got0 < count && tt_now_us() < deadline) {
    uint32_t queued = 0;
    while (res.sent < count && res.sent - (r->got - got0) < window && queued < 64) {
      mior_pkt pkt;
      int rc = mior_tx_acquire(tx, &pkt);
      if (rc == -EAGAIN) {
        res.eagain++;
        break;
      }
      if (rc < 0) {
        TEST_FAIL_AT("mior_tx_acquire -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
        return res;
      }
      uint32_t len = build(bctx, pkt.data, pkt.cap, res.sent);
      rc = mior_tx_send(tx, &pkt, len, dst);
      if (rc < 0) {
        if (res.send_errors++ == 0)
          TEST_FAIL_AT("mior_tx_send -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
        if (res.send_errors > 100) return res;
        continue;
      }
      res.sent++;
      res.sent_bytes += len;
      queued++;
    }
    int rc = mior_tx_flush(tx);
    if (rc < 0 && rc != -EAGAIN) {
      TEST_FAIL_AT("mior_tx_flush -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
      return res;
    }
    rc = mior_port_poll(tx, 0, 0);
    if (rc < 0) {
      TEST_FAIL_AT("mior_port_poll(tx) -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
      return res;
    }
    /* Wait a little on the receivers only when the window is full (or all is sent). */
    int64_t wait = (res.sent == count || res.sent - (r->got - got0) >= window) ? 1000 : 0;
    for (int i = 0; i < nrx; i++) {
      rc = mior_port_poll(rx[i], 0, nrx == 1 ? wait : 0);
      if (rc < 0) {
        TEST_FAIL_AT("mior_port_poll(rx) -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
        return res;
      }
    }
    int64_t now = tt_now_us();
    if (r->got != last_got) {
      last_got = r->got;
      last_progress = now;
    } else if (now - last_progress > 2000000) {
      break; /* nothing for 2 s: lost packets; the caller's tally says which */
    }
  }
  res.elapsed_us = tt_now_us() - t0;
  return res;
}

/* Poll until the port has completed `want` sends (stats tx_packets) or limit_ms passed. */
static inline void tt_drain_tx(mior_port *tx, uint64_t want, int64_t limit_ms) {
  int64_t deadline = tt_now_us() + limit_ms * 1000;
  mior_port_stats st;
  do {
    mior_tx_flush(tx);
    mior_port_poll(tx, 0, 1000);
    if (mior_port_stats_get(tx, &st) < 0) return;
  } while (st.tx_packets + st.tx_errors < want && tt_now_us() < deadline);
}

/* Poll the ports for ms milliseconds (catching stragglers, duplicates). */
static inline void tt_poll_for(mior_port **ports, int n, int64_t ms) {
  int64_t deadline = tt_now_us() + ms * 1000;
  while (tt_now_us() < deadline) {
    for (int i = 0; i < n; i++) mior_port_poll(ports[i], 0, n == 1 ? 1000 : 0);
  }
}

/* Nothing is left with the application: no kept packet, no acquired-but-unsent slot.  (The
 * port's own slots, posted for receive or cached, count in pool_in_use; close returns them, and
 * close returning 0 rather than -EBUSY is the final word that nothing leaked.) */
#define TT_CHECK_POOL_RETURNED(t)                                                  \
  do {                                                                             \
    mior_port_stats st_;                                                           \
    CHECK_OK(mior_transport_stats_get((t), &st_));                                 \
    CHECK_EQ(st_.user_held, 0);                                                    \
  } while (0)

static inline mior_addr tt_local(mior_transport *t) {
  mior_addr a;
  memset(&a, 0, sizeof a);
  CHECK_OK(mior_port_local_addr(mior_transport_port(t, 0), &a));
  return a;
}

/* --- variants: one body under every way this build moves packets ------------------------------ */

/* What the test is doing, for the watchdog's message; the runner names the body and variant. */
static const char *tt_phase = "start";

/* One way to run a body (liburing's FOR_ALL_TEST_CONFIGS, libuv's one body under each backend):
 * one of this build's backends, what that backend asks of a test, and the options every transport
 * the body opens gets.  Where the systems differ in what a body may expect, the difference is a
 * field here, set in the OS fixture's rows, and never a second copy of the body. */
typedef struct tt_variant {
  const char *name;      /* as the log shows it: "uring", "sockets, all through the port", ... */
  mior_backend backend;
  uint32_t flags;        /* MIOR_OPT_* for every transport the body opens (tt_vopts) */
  uint32_t busy_poll_us; /* mior_options.busy_poll_us for every transport the body opens */
  uint32_t buf_count;    /* mior_options.buf_count for every transport the body opens, unless
                          * the body sets its own; 0: the library's default */
  int param;             /* the test's own knob, as its tt_config sets it (0 otherwise) */
  const char *env;       /* "NAME=value" in force while the body runs (a backend's diagnostic
                          * switch), or NULL */
  int connected;         /* the backend cannot address a datagram (IoRing has no address fields):
                          * every udp transport is connected to the one it talks to */
  int reuseport;         /* udp queues > 1 share one port in a load-balancing SO_REUSEPORT group
                          * (Linux); where there is none, open refuses them with -EOPNOTSUPP */
} tt_variant;

/* An option variant a test adds for one body: each variant of the backend it is for
 * (MIOR_BACKEND_AUTO: of every backend) runs the body again with these options on top. */
typedef struct tt_config {
  const char *name; /* added to the variant's name in the log; "" for the variant as it is */
  mior_backend backend;
  uint32_t flags;
  uint32_t busy_poll_us;
  int param;
} tt_config;

/* One entry of a test's list (libuv's test-list.h): a body, and the option variants it runs
 * under; with none, it runs under each of the OS fixture's variants as they are. */
typedef struct tt_test {
  const char *name;
  void (*body)(const tt_variant *v);
  const tt_config *configs;
  size_t nconfigs;
} tt_test;

/* The configs of a tt_test: from an array, or none (each variant as it is). */
#define TT_CONFIGS(a) (a), sizeof(a) / sizeof((a)[0])
#define TT_AS_IS NULL, 0

/* Supplied by the OS fixture.  tt_os_variants: its rows, each one of this build's backends as a
 * test must treat it on this system (a backend may have several rows, e.g. with a diagnostic
 * switch on and off).  tt_os_setenv: set (or, with set 0, clear) an environment switch given as
 * "NAME=value", for the run of one body.  TT_OS_BULK_DIV: how many times fewer packets a bulk
 * transfer moves here (TT_BULK). */
static inline const tt_variant *tt_os_variants(size_t *n);
static inline void tt_os_setenv(const char *assignment, int set);

/* How many packets a bulk transfer of n moves on this system: n on Linux, fewer where each one
 * costs much more (the OS fixture says why).  Only the size of a transfer, never what it checks. */
#define TT_BULK(n) ((uint32_t)(n) / TT_OS_BULK_DIV)

/* Why the body running now could not run here (TT_RETURN_SKIP), or NULL. */
static const char *tt_skipped;

/* End the body: it cannot run under this variant here, for the reason why (a string literal),
 * which the runner reports instead of "ok" (libuv's RETURN_SKIP). */
#define TT_RETURN_SKIP(why) \
  do {                      \
    tt_skipped = (why);     \
    return;                 \
  } while (0)

/* A body's options under v: its backend, with the variant's flags and busy polling. */
static inline mior_options tt_vopts(const tt_variant *v) {
  mior_options o = tt_opts(v->backend);
  o.flags |= v->flags;
  o.busy_poll_us = v->busy_poll_us;
  if (v->buf_count) o.buf_count = v->buf_count;
  return o;
}

/* Run body under v, timed, with v's environment switch in force, and say how it went.  Returns
 * 1 if it ran, 0 if it skipped itself. */
static inline int tt_run_variant(const char *name, const tt_variant *v,
                                 void (*body)(const tt_variant *v)) {
  static char phase[240];
  snprintf(phase, sizeof phase, "%s [%s]", name, v->name);
  tt_phase = phase;
  if (v->env) tt_os_setenv(v->env, 1);
  int before = test_failures;
  int64_t t0 = tt_now_us();
  tt_skipped = NULL;
  body(v);
  if (tt_skipped && test_failures == before)
    printf("  %s: SKIP (%s)\n", phase, tt_skipped);
  else
    printf("  %s: %s (%.1f ms)\n", phase, test_failures == before ? "ok" : "FAILED",
           (tt_now_us() - t0) / 1000.0);
  fflush(stdout);
  if (v->env) tt_os_setenv(v->env, 0);
  return !tt_skipped;
}

/* Run one test under every variant, built from this build's own backends, most preferred first
 * (mior__backends): each OS fixture row of a backend (a backend without one runs as it is), and
 * each of those under every config of the test meant for that backend.  A backend this system
 * cannot run is skipped with the reason.  Returns how many runs there were. */
static inline int tt_run_test(const tt_test *t) {
  static const tt_config as_is = {"", MIOR_BACKEND_AUTO, 0, 0, 0};
  const tt_config *configs = t->configs ? t->configs : &as_is;
  size_t nconfigs = t->configs ? t->nconfigs : 1, nrows;
  const tt_variant *rows = tt_os_variants(&nrows);
  int ran = 0;
  for (const mior__backend_ops *const *ops = mior__backends; *ops; ops++) {
    mior_backend b = (*ops)->id;
    if (mior_backend_supported(b) != 1) {
      printf("  %s [%s]: SKIP (%s)\n", t->name, (*ops)->name, mior_last_error());
      fflush(stdout);
      continue;
    }
    tt_variant plain;
    memset(&plain, 0, sizeof plain);
    plain.name = (*ops)->name;
    plain.backend = b;
    const tt_variant *mine[8];
    size_t n = 0;
    for (size_t i = 0; i < nrows && n < 8; i++) {
      if (rows[i].backend == b) mine[n++] = &rows[i];
    }
    if (n == 0) mine[n++] = &plain;
    for (size_t i = 0; i < n; i++) {
      for (size_t c = 0; c < nconfigs; c++) {
        if (configs[c].backend != MIOR_BACKEND_AUTO && configs[c].backend != b) continue;
        tt_variant v = *mine[i];
        char name[160];
        snprintf(name, sizeof name, "%s%s%s", mine[i]->name, configs[c].name[0] ? ", " : "",
                 configs[c].name);
        v.name = name;
        v.flags |= configs[c].flags;
        if (configs[c].busy_poll_us) v.busy_poll_us = configs[c].busy_poll_us;
        v.param = configs[c].param;
        ran += tt_run_variant(t->name, &v, t->body);
      }
    }
  }
  return ran;
}

/* Run a test list; how many runs there were, so that main can turn "none" into a skip. */
static inline int tt_run(const tt_test *tests, size_t n) {
  int ran = 0;
  for (size_t i = 0; i < n; i++) ran += tt_run_test(&tests[i]);
  return ran;
}

/* --- UDP between transports on loopback, under a variant ------------------------------------- */

/* A UDP port on host that was free a moment ago (opened and closed through the sockets backend). */
static inline uint16_t tt_free_udp_port(const char *host) {
  char ep[80];
  snprintf(ep, sizeof ep, "udp://%s:0", host);
  mior_options o = tt_opts(MIOR_BACKEND_SOCKETS);
  o.buf_count = 16;
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, ep, &o, NULL));
  mior_addr a = tt_local(t);
  CHECK_EQ(mior_transport_close(t), 0);
  return a.port;
}

/* Where the two ends of a UDP test open, and the peer each is connected to.  Under a variant that
 * addresses datagrams, both open on port 0 and neither is connected.  Under a connected one
 * (IoRing) each is bound to a port that was free a moment ago and connected to the other's before
 * either sends, since a datagram can only go to the peer. */
typedef struct tt_udp_ends {
  char ep_rx[80], ep_tx[80];     /* "udp://host:port" */
  char peer_rx[80], peer_tx[80]; /* "host:port", or "" for none */
} tt_udp_ends;

static inline void tt_udp_ends_init(const tt_variant *v, const char *host, tt_udp_ends *e) {
  memset(e, 0, sizeof *e);
  if (!v->connected) {
    snprintf(e->ep_rx, sizeof e->ep_rx, "udp://%s:0", host);
    snprintf(e->ep_tx, sizeof e->ep_tx, "udp://%s:0", host);
    return;
  }
  uint16_t prx = tt_free_udp_port(host), ptx = tt_free_udp_port(host);
  for (int i = 0; i < 10 && ptx == prx; i++) ptx = tt_free_udp_port(host);
  REQUIRE(prx != ptx);
  snprintf(e->ep_rx, sizeof e->ep_rx, "udp://%s:%u", host, prx);
  snprintf(e->ep_tx, sizeof e->ep_tx, "udp://%s:%u", host, ptx);
  snprintf(e->peer_rx, sizeof e->peer_rx, "%s:%u", host, ptx);
  snprintf(e->peer_tx, sizeof e->peer_tx, "%s:%u", host, prx);
}

/* Open the two ends of a UDP test on host ("127.0.0.1" or "[::1]") with the body's options: *rx
 * delivering to rrx, then *tx delivering to rtx (NULL: none).  With connect_tx, tx is connected
 * to rx even where the variant does not ask for it (a connected sender, which sends without a
 * destination).  A failed open ends the test. */
static inline void tt_open_udp_pair(const tt_variant *v, const char *host, mior_options *orx,
                                    const mior_receiver *rrx, mior_transport **rx,
                                    mior_options *otx, const mior_receiver *rtx,
                                    mior_transport **tx, int connect_tx) {
  tt_udp_ends e;
  tt_udp_ends_init(v, host, &e);
  if (e.peer_rx[0]) orx->peer = e.peer_rx;
  REQUIRE_OK(mior_transport_open(rx, e.ep_rx, orx, rrx));
  if (connect_tx && !e.peer_tx[0]) {
    mior_addr dst = tt_local(*rx);
    REQUIRE_OK(mior_addr_format(&dst, e.peer_tx, sizeof e.peer_tx));
  }
  if (e.peer_tx[0]) otx->peer = e.peer_tx;
  REQUIRE_OK(mior_transport_open(tx, e.ep_tx, otx, rtx));
  orx->peer = otx->peer = NULL; /* they pointed into e, which ends here */
}

/* Open both ends of a one-way UDP body on host under v: *rx delivering what arrives to the tally
 * r (made here, count sequence numbers), and *tx, which never receives (MIOR_OPT_NO_RX).  orx and
 * otx are the body's options for each end (NULL: the variant's own); with connect_tx, tx is
 * connected to rx, so that it may send with no destination.  r must stay where it is until
 * tt_close_oneway: rx's receiver points to it. */
static inline void tt_open_oneway(const tt_variant *v, const char *host, tt_rx *r, uint32_t count,
                                  const mior_options *orx, const mior_options *otx,
                                  mior_transport **rx, mior_transport **tx, int connect_tx) {
  tt_rx_init(r, count);
  mior_options o = orx ? *orx : tt_vopts(v), ot = otx ? *otx : tt_vopts(v);
  ot.flags |= MIOR_OPT_NO_RX;
  mior_receiver recv = tt_receiver(r);
  tt_open_udp_pair(v, host, &o, &recv, rx, &ot, NULL, tx, connect_tx);
}

/* The end of a one-way body: nothing is left with the application at either end, both closes
 * return 0 (so the pools came back whole), and the tally is freed. */
static inline void tt_close_oneway(mior_transport *rx, mior_transport *tx, tt_rx *r) {
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(r);
}

/* Open one UDP transport on host that can send to itself: on port 0, or under a connected
 * variant on a port that was free a moment ago and connected to itself, its only possible peer. */
static inline void tt_open_udp_self(const tt_variant *v, const char *host, mior_options *o,
                                    const mior_receiver *recv, mior_transport **t) {
  char ep[80], self[80];
  if (!v->connected) {
    snprintf(ep, sizeof ep, "udp://%s:0", host);
    REQUIRE_OK(mior_transport_open(t, ep, o, recv));
    return;
  }
  uint16_t port = tt_free_udp_port(host);
  snprintf(ep, sizeof ep, "udp://%s:%u", host, port);
  snprintf(self, sizeof self, "%s:%u", host, port);
  o->peer = self;
  REQUIRE_OK(mior_transport_open(t, ep, o, recv));
  o->peer = NULL;
}

#endif /* MIOR_TEST_TRANSPORT_PORTABLE_H */
