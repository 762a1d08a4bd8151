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
 *
 * This header declares; the bodies are compiled once, in test/support/transport_portable.c (and
 * the fixtures' in transport_linux.c / transport_win.c), into mior_test_support.
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

mior_options tt_opts(mior_backend b);

/* --- payloads --------------------------------------------------------------------------------- */

/* A payload: 16-byte header (magic, seq, len, checksum of the rest), then bytes that depend on
 * seq and position, so a corrupted, truncated, shifted or swapped payload does not verify. */
#define TT_MAGIC 0x6d696f72u /* "mior" */
#define TT_HDR 16u

uint32_t tt_fnv(const uint8_t *p, uint32_t n);

static inline void tt_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
uint32_t tt_get32(const uint8_t *p);

/* Length of payload seq, between lo and hi (>= TT_HDR), spread so sizes vary. */
static inline uint32_t tt_len_for(uint32_t seq, uint32_t lo, uint32_t hi) {
  return lo + (seq * 2654435761u >> 7) % (hi - lo + 1);
}

void tt_fill(uint8_t *p, uint32_t len, uint32_t seq);

/* 0 and *seq if p[0..len) is an intact payload; -1 if it is ours but damaged; 1 if not ours. */
int tt_check(const uint8_t *p, uint32_t len, uint32_t *seq);

/* --- Internet checksum, IPv4 and UDP headers (built by hand: the tests check the library, so
 * they do not lean on its own protocol helpers) ------------------------------------------------ */

uint32_t tt_csum_add(uint32_t sum, const uint8_t *p, size_t n);

uint16_t tt_csum_fold(uint32_t sum);

void tt_put16be(uint8_t *p, uint16_t v);
static inline uint16_t tt_get16be(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Write IPv4 (20 bytes, no options) + UDP (8) headers in front of a payload of plen bytes already
 * at p + 28.  Addresses in network order (4 bytes each), ports in host order.  Returns 28 + plen. */
uint32_t tt_build_ipv4_udp(uint8_t *p, const uint8_t src[4], const uint8_t dst[4],
                                         uint16_t sport, uint16_t dport, uint32_t plen,
                                         uint16_t ip_id);

/* Parse an IPv4+UDP packet: 0 with payload, plen and ports if it is a well-formed UDP datagram whose
 * IP header checksum and lengths agree (and the UDP checksum, when set and udp_csum is
 * nonzero); -1 if damaged; 1 if not IPv4/UDP.  src/dst out (4 bytes each) may be NULL.
 * Datagrams the kernel sends over a veth carry only a partial UDP checksum (the device
 * "offloads" it and nothing ever completes it), so those are checked with udp_csum 0. */
int tt_parse_ipv4_udp(const uint8_t *p, uint32_t len, int udp_csum,
                                    const uint8_t **payload, uint32_t *plen, uint16_t *sport,
                                    uint16_t *dport, uint8_t *src, uint8_t *dst);

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

int tt_addr_eq(const mior_addr *a, const mior_addr *b);

int tt_unwrap_plain(tt_rx *r, const mior_pkt *pkt, const uint8_t **pl, uint32_t *plen);

void tt_rx_init(tt_rx *r, uint32_t count);

void tt_rx_free(tt_rx *r);

int tt_consume(void *ctx, mior_port *port, const mior_pkt *pkt);

mior_receiver tt_receiver(tt_rx *r);

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

uint32_t tt_build_payload(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq);

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
tt_pump_result tt_pump(mior_port *tx, tt_rx *r, mior_port **rx, int nrx,
                                     uint32_t count, uint32_t window, const mior_addr *dst,
                                     tt_build_fn build, void *bctx, int64_t limit_ms);

/* Poll until the port has completed `want` sends (stats tx_packets) or limit_ms passed. */
void tt_drain_tx(mior_port *tx, uint64_t want, int64_t limit_ms);

/* Poll the ports for ms milliseconds (catching stragglers, duplicates). */
void tt_poll_for(mior_port **ports, int n, int64_t ms);

/* Nothing is left with the application: no kept packet, no acquired-but-unsent slot.  (The
 * port's own slots, posted for receive or cached, count in pool_in_use; close returns them, and
 * close returning 0 rather than -EBUSY is the final word that nothing leaked.) */
#define TT_CHECK_POOL_RETURNED(t)                                                  \
  do {                                                                             \
    mior_port_stats st_;                                                           \
    CHECK_OK(mior_transport_stats_get((t), &st_));                                 \
    CHECK_EQ(st_.user_held, 0);                                                    \
  } while (0)

mior_addr tt_local(mior_transport *t);

/* --- a plain OS socket as the other end of a metadata test ------------------------------------ */

/* A UDP socket of the OS's own (no mior), bound to the loopback address (127.0.0.1 or ::1) on a
 * free port, that receives each datagram's TOS / traffic class.  Supplied by the OS fixture. */
typedef struct tt_peer tt_peer;

tt_peer *tt_peer_open(int v6);
void tt_peer_close(tt_peer *k);
/* Where the peer is bound. */
mior_addr tt_peer_addr(const tt_peer *k);
/* Send len bytes to addr (4 or 16 bytes, network order):port with ECN codepoint ecn.  Returns 1
 * when the datagram left with that codepoint, 0 when it left but the OS would not set the
 * codepoint (Windows sends no CE, and ignores IP_TOS), -1 when nothing was sent. */
int tt_peer_send(tt_peer *k, const uint8_t *addr, uint16_t port, int ecn, const void *buf, size_t len);
/* One datagram within ms milliseconds: its length, with the sender's address (4 or 16 bytes)
 * in from and its codepoint in *ecn (-1 if the OS did not say); -1 if none came. */
int tt_peer_recv(tt_peer *k, uint8_t *from, int *ecn, uint8_t *buf, size_t cap, int ms);

/* The system clock, nanoseconds since the Unix epoch (CLOCK_REALTIME; Windows' system time):
 * the clock mior_pkt.rx_time_ns is on. */
uint64_t tt_realtime_ns(void);

/* Whether the OS's sends honour a per-send source address and ECN codepoint (control messages):
 * 1, or 0 with the reason in *why (Wine 8 accepts WSASendMsg's control messages and ignores
 * them, measured). */
int tt_os_send_meta(const char **why);

/* --- variants: one body under every way this build moves packets ------------------------------ */

/* What the test is doing, for the watchdog's message; the runner names the body and variant. */
extern const char *tt_phase;

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
const tt_variant *tt_os_variants(size_t *n);
void tt_os_setenv(const char *assignment, int set);

/* How many packets a bulk transfer of n moves on this system: n on Linux, fewer where each one
 * costs much more (the OS fixture says why).  Only the size of a transfer, never what it checks. */
#define TT_BULK(n) ((uint32_t)(n) / TT_OS_BULK_DIV)

/* Why the body running now could not run here (TT_RETURN_SKIP), or NULL. */
extern const char *tt_skipped;

/* End the body: it cannot run under this variant here, for the reason why (a string literal),
 * which the runner reports instead of "ok" (libuv's RETURN_SKIP). */
#define TT_RETURN_SKIP(why) \
  do {                      \
    tt_skipped = (why);     \
    return;                 \
  } while (0)

/* A body's options under v: its backend, with the variant's flags and busy polling. */
mior_options tt_vopts(const tt_variant *v);

/* Run body under v, timed, with v's environment switch in force, and say how it went.  Returns
 * 1 if it ran, 0 if it skipped itself. */
int tt_run_variant(const char *name, const tt_variant *v,
                                 void (*body)(const tt_variant *v));

/* Run one test under every variant, built from this build's own backends, most preferred first
 * (mior__backends): each OS fixture row of a backend (a backend without one runs as it is), and
 * each of those under every config of the test meant for that backend.  A backend this system
 * cannot run is skipped with the reason.  Returns how many runs there were. */
int tt_run_test(const tt_test *t);

/* Run a test list; how many runs there were, so that main can turn "none" into a skip. */
int tt_run(const tt_test *tests, size_t n);

/* --- the system's own UDP socket, and waiting on an event handle (each OS fixture) ------------ */

/* A plain UDP socket of the system (a kernel socket on Linux, Winsock on Windows) bound to
 * 127.0.0.1 on a free port, whose address goes to *local: the peer a test talks to without mior. */
intptr_t tt_os_udp4(mior_addr *local);
/* Send payload seq (tt_fill, len bytes) from s to `to`; the test ends if it is not sent whole. */
void tt_os_udp_send(intptr_t s, const mior_addr *to, uint32_t seq, uint32_t len);
void tt_os_udp_close(intptr_t s);

/* 1 if the event handle (mior_port_event_handle) is readable, or becomes so within ms: Linux poll
 * for POLLIN, Windows WaitForSingleObject (signalled). */
int tt_os_ready(mior_handle h, int ms);
/* Wait on h the way an application's loop does: Linux an epoll instance over it, edge-triggered if
 * edge is set; Windows the event itself (a manual-reset event has no edge mode: edge is ignored).
 * tt_os_waiter_wait: 1 if woken within ms, else 0. */
intptr_t tt_os_waiter_open(mior_handle h, int edge);
int tt_os_waiter_wait(intptr_t w, int ms);
void tt_os_waiter_close(intptr_t w);

/* --- UDP between transports on loopback, under a variant ------------------------------------- */

/* A UDP port on host that was free a moment ago (opened and closed through the sockets backend). */
uint16_t tt_free_udp_port(const char *host);

/* Where the two ends of a UDP test open, and the peer each is connected to.  Under a variant that
 * addresses datagrams, both open on port 0 and neither is connected.  Under a connected one
 * (IoRing) each is bound to a port that was free a moment ago and connected to the other's before
 * either sends, since a datagram can only go to the peer. */
typedef struct tt_udp_ends {
  char ep_rx[80], ep_tx[80];     /* "udp://host:port" */
  char peer_rx[80], peer_tx[80]; /* "host:port", or "" for none */
} tt_udp_ends;

void tt_udp_ends_init(const tt_variant *v, const char *host, tt_udp_ends *e);

/* Open the two ends of a UDP test on host ("127.0.0.1" or "[::1]") with the body's options: *rx
 * delivering to rrx, then *tx delivering to rtx (NULL: none).  With connect_tx, tx is connected
 * to rx even where the variant does not ask for it (a connected sender, which sends without a
 * destination).  A failed open ends the test. */
void tt_open_udp_pair(const tt_variant *v, const char *host, mior_options *orx,
                                    const mior_receiver *rrx, mior_transport **rx,
                                    mior_options *otx, const mior_receiver *rtx,
                                    mior_transport **tx, int connect_tx);

/* Open both ends of a one-way UDP body on host under v: *rx delivering what arrives to the tally
 * r (made here, count sequence numbers), and *tx, which never receives (MIOR_OPT_NO_RX).  orx and
 * otx are the body's options for each end (NULL: the variant's own); with connect_tx, tx is
 * connected to rx, so that it may send with no destination.  r must stay where it is until
 * tt_close_oneway: rx's receiver points to it. */
void tt_open_oneway(const tt_variant *v, const char *host, tt_rx *r, uint32_t count,
                                  const mior_options *orx, const mior_options *otx,
                                  mior_transport **rx, mior_transport **tx, int connect_tx);

/* The end of a one-way body: nothing is left with the application at either end, both closes
 * return 0 (so the pools came back whole), and the tally is freed. */
void tt_close_oneway(mior_transport *rx, mior_transport *tx, tt_rx *r);

/* Open one UDP transport on host that can send to itself: on port 0, or under a connected
 * variant on a port that was free a moment ago and connected to itself, its only possible peer. */
void tt_open_udp_self(const tt_variant *v, const char *host, mior_options *o,
                                    const mior_receiver *recv, mior_transport **t);

#endif /* MIOR_TEST_TRANSPORT_PORTABLE_H */
