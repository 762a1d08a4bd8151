/* UDP on loopback through the Windows backends, the same checks the Linux transport suite makes:
 * the sockets backend (overlapped Winsock + completion port) everywhere, including under Wine in
 * the cross build, and the ioring backend too where Windows has IoRing (Windows 11, Server 2025).
 * IoRing has no address fields, so in that run every transport is connected to its peer
 * (options.peer) and sends go to that peer only:
 *   - sequence-numbered payloads of varying size go from one transport to another (IPv4, IPv6)
 *     and all arrive once, intact, from the sender's address; the counters match exactly;
 *   - a connected sender (options.peer) sends without a destination;
 *   - backpressure: acquire without polling returns -EAGAIN, never blocks, and recovers;
 *   - kept packets stay intact and are released later from another thread;
 *   - a datagram longer than a slot is counted as truncated, not delivered;
 *   - stop/close while traffic is in flight is bounded and returns every slot;
 *   - bad arguments and unsupported kinds fail with the documented errno and a message.
 * Every test ends with mior_transport_close returning 0: the pool came back whole.  The
 * bad-argument body checks Winsock's unconnected-socket rules and runs on the sockets backend only.
 */
#include <stdatomic.h>
#include <windows.h>

#include "common/os.h"
#include "test.h"
#include "test_thread.h"

static int64_t now_ms(void) { return (int64_t)(mior__now_ns() / 1000000u); }

/* The backend every body runs on: sockets, then ioring where it is supported. */
static mior_backend backend = MIOR_BACKEND_SOCKETS;

static mior_options opts(void) {
  mior_options o;
  mior_options_init(&o);
  o.backend = backend;
  o.buf_count = 1024;
  return o;
}

/* --- payloads: 16-byte header (magic, seq, len, checksum), then bytes derived from seq -------- */

#define MAGIC 0x6d696f72u
#define HDR 16u

static uint32_t fnv(const uint8_t *p, uint32_t n) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint32_t len_for(uint32_t seq, uint32_t hi) { return HDR + (seq * 2654435761u >> 7) % (hi - HDR + 1); }

static void fill(uint8_t *p, uint32_t len, uint32_t seq) {
  for (uint32_t i = HDR; i < len; i++) p[i] = (uint8_t)(seq * 131u + i * 7u + (i >> 8));
  put32(p, MAGIC);
  put32(p + 4, seq);
  put32(p + 8, len);
  put32(p + 12, fnv(p + HDR, len - HDR));
}

/* 0 and *seq if intact; -1 if ours but damaged; 1 if not ours. */
static int check_payload(const uint8_t *p, uint32_t len, uint32_t *seq) {
  if (len < HDR || get32(p) != MAGIC) return 1;
  if (get32(p + 8) != len) return -1;
  *seq = get32(p + 4);
  for (uint32_t i = HDR; i < len; i++)
    if (p[i] != (uint8_t)(*seq * 131u + i * 7u + (i >> 8))) return -1;
  return get32(p + 12) == fnv(p + HDR, len - HDR) ? 0 : -1;
}

static int addr_eq(const mior_addr *a, const mior_addr *b) {
  if (a->family != b->family || a->port != b->port) return 0;
  return memcmp(a->addr, b->addr, a->family == MIOR_AF_INET6 ? 16 : 4) == 0;
}

/* --- receiving: a tally of sequence numbers ---------------------------------------------------- */

typedef struct tally {
  uint32_t count;
  uint8_t *seen;
  uint32_t got, dups, bad, foreign, out_of_range, src_mismatch;
  uint64_t bytes;
  int check_src;
  mior_addr want_src;
  uint32_t keep_every, keep_max, kept_n;
  mior_pkt *kept;
} tally;

static void tally_init(tally *t, uint32_t count) {
  memset(t, 0, sizeof *t);
  t->count = count;
  t->seen = calloc(count ? count : 1, 1);
  REQUIRE(t->seen);
}

static void tally_free(tally *t) {
  free(t->seen);
  free(t->kept);
}

static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  tally *t = ctx;
  uint32_t seq = 0;
  int c = check_payload(pkt->data, pkt->len, &seq);
  if (c > 0) {
    t->foreign++;
    return MIOR_DONE;
  }
  if (c < 0 || (pkt->flags & MIOR_PKT_TRUNCATED)) {
    t->bad++;
    return MIOR_DONE;
  }
  if (seq >= t->count) {
    t->out_of_range++;
    return MIOR_DONE;
  }
  if (t->check_src && !addr_eq(&pkt->src, &t->want_src)) t->src_mismatch++;
  if (t->seen[seq]) {
    t->dups++;
    return MIOR_DONE;
  }
  t->seen[seq] = 1;
  t->got++;
  t->bytes += pkt->len;
  if (t->keep_every && seq % t->keep_every == 0 && t->kept_n < t->keep_max) {
    t->kept[t->kept_n++] = *pkt;
    return MIOR_KEEP;
  }
  return MIOR_DONE;
}

#define CHECK_TALLY(t)                 \
  do {                                 \
    CHECK_EQ((t)->got, (t)->count);    \
    CHECK_EQ((t)->dups, 0);            \
    CHECK_EQ((t)->bad, 0);             \
    CHECK_EQ((t)->out_of_range, 0);    \
    CHECK_EQ((t)->src_mismatch, 0);    \
  } while (0)

static mior_addr local_of(mior_transport *t) {
  mior_addr a;
  memset(&a, 0, sizeof a);
  CHECK_OK(mior_port_local_addr(mior_transport_port(t, 0), &a));
  return a;
}

/* A UDP port on host that was free a moment ago (opened and closed through the sockets backend). */
static uint16_t free_port(const char *host) {
  char ep[80];
  snprintf(ep, sizeof ep, "udp://%s:0", host);
  mior_options o;
  mior_options_init(&o);
  o.backend = MIOR_BACKEND_SOCKETS;
  o.buf_count = 16;
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, ep, &o, NULL));
  mior_addr a = local_of(t);
  CHECK_EQ(mior_transport_close(t), 0);
  return a.port;
}

/* Two different free ports on host. */
static void free_ports(const char *host, uint16_t *a, uint16_t *b) {
  *a = free_port(host);
  *b = free_port(host);
  for (int i = 0; i < 10 && *b == *a; i++) *b = free_port(host);
  REQUIRE(*a != *b);
}

/* Open a receiving transport and a sending one on host ("127.0.0.1" or "[::1]").  On sockets both
 * are bound to port 0 and rx is unconnected; tx is connected to rx when connect_tx.  On ioring,
 * which cannot address datagrams, both are bound to free ports and connected to each other. */
static void open_pair(const char *host, mior_options *orx, mior_receiver *recv, mior_transport **rx,
                      mior_options *otx, mior_transport **tx, int connect_tx) {
  char ep_rx[80], ep_tx[80], peer_rx[80], peer_tx[80];
  if (backend == MIOR_BACKEND_IORING) {
    uint16_t prx, ptx;
    free_ports(host, &prx, &ptx);
    snprintf(ep_rx, sizeof ep_rx, "udp://%s:%u", host, prx);
    snprintf(ep_tx, sizeof ep_tx, "udp://%s:%u", host, ptx);
    snprintf(peer_rx, sizeof peer_rx, "%s:%u", host, ptx);
    snprintf(peer_tx, sizeof peer_tx, "%s:%u", host, prx);
    orx->peer = peer_rx;
    otx->peer = peer_tx;
    REQUIRE_OK(mior_transport_open(rx, ep_rx, orx, recv));
    REQUIRE_OK(mior_transport_open(tx, ep_tx, otx, NULL));
    return;
  }
  snprintf(ep_rx, sizeof ep_rx, "udp://%s:0", host);
  REQUIRE_OK(mior_transport_open(rx, ep_rx, orx, recv));
  if (connect_tx) {
    mior_addr dst = local_of(*rx);
    REQUIRE_OK(mior_addr_format(&dst, peer_tx, sizeof peer_tx));
    otx->peer = peer_tx;
  }
  REQUIRE_OK(mior_transport_open(tx, ep_rx, otx, NULL));
}

/* Nothing left with the application (close returning 0 is the final word on the pool). */
static void check_user_held_zero(mior_transport *t) {
  mior_port_stats st;
  CHECK_OK(mior_transport_stats_get(t, &st));
  CHECK_EQ(st.user_held, 0);
}

/* --- a paced pump: send `count` packets (seq base..base+count-1), at most `window` unreceived -- */

typedef struct pump {
  uint32_t sent, eagain, send_errors;
  uint64_t sent_bytes;
  int64_t elapsed_ms;
} pump;

static pump run_pump(mior_port *tx, tally *t, mior_port *rx, uint32_t base, uint32_t count,
                     uint32_t window, uint32_t hi, const mior_addr *dst, int64_t limit_ms) {
  pump res;
  memset(&res, 0, sizeof res);
  int64_t t0 = now_ms(), deadline = t0 + limit_ms, last_progress = t0;
  uint32_t got0 = t->got, last_got = t->got;
  while (t->got - got0 < count && now_ms() < deadline) {
    uint32_t queued = 0;
    while (res.sent < count && res.sent - (t->got - got0) < window && queued < 64) {
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
      uint32_t len = len_for(base + res.sent, hi);
      if (len > pkt.cap) len = pkt.cap;
      fill(pkt.data, len, base + res.sent);
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
    if (rc < 0 && rc != -EAGAIN) TEST_FAIL_AT("mior_tx_flush -> %d %s", rc, mior_last_error());
    rc = mior_port_poll(tx, 0, 0);
    if (rc < 0) {
      TEST_FAIL_AT("mior_port_poll(tx) -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
      return res;
    }
    int64_t wait = (res.sent == count || res.sent - (t->got - got0) >= window) ? 1000 : 0;
    rc = mior_port_poll(rx, 0, wait);
    if (rc < 0) {
      TEST_FAIL_AT("mior_port_poll(rx) -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
      return res;
    }
    int64_t now = now_ms();
    if (t->got != last_got) {
      last_got = t->got;
      last_progress = now;
    } else if (now - last_progress > 2000) {
      break; /* nothing for 2 s: lost packets; the tally says which */
    }
  }
  res.elapsed_ms = now_ms() - t0;
  return res;
}

/* Poll until `want` sends completed (or failed), bounded. */
static void drain_tx(mior_port *tx, uint64_t want, int64_t limit_ms) {
  int64_t deadline = now_ms() + limit_ms;
  mior_port_stats st;
  do {
    mior_tx_flush(tx);
    mior_port_poll(tx, 0, 1000);
    if (mior_port_stats_get(tx, &st) < 0) return;
  } while (st.tx_packets + st.tx_errors < want && now_ms() < deadline);
}

static void poll_for(mior_port *p, int64_t ms) {
  int64_t deadline = now_ms() + ms;
  while (now_ms() < deadline) mior_port_poll(p, 0, 1000);
}

/* --- bodies ------------------------------------------------------------------------------------ */

static void body_transfer(const char *host, uint32_t count) {
  tally t;
  tally_init(&t, count);
  mior_options o = opts();
  mior_receiver recv = {consume, NULL, &t};
  mior_transport *rx = NULL, *tx = NULL;
  mior_options ot = opts();
  ot.flags |= MIOR_OPT_NO_RX;
  open_pair(host, &o, &recv, &rx, &ot, &tx, 0);
  CHECK_EQ(mior_port_backend(mior_transport_port(rx, 0)), backend);
  mior_addr dst = local_of(rx), src = local_of(tx);
  CHECK(dst.port != 0 && src.port != 0 && dst.port != src.port);
  t.check_src = 1;
  t.want_src = src;
  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  pump pr = run_pump(txp, &t, rxp, 0, count, 128, 1400, &dst, 30000);
  drain_tx(txp, pr.sent, 2000);
  poll_for(rxp, 50); /* a duplicate would show up now */
  CHECK_EQ(pr.sent, count);
  CHECK_TALLY(&t);
  printf("    %s: %u packets, %.1f MB in %lld ms\n", host, pr.sent, pr.sent_bytes / 1e6,
         (long long)pr.elapsed_ms);

  mior_port_stats rs, ts;
  CHECK_OK(mior_transport_stats_get(rx, &rs));
  CHECK_OK(mior_transport_stats_get(tx, &ts));
  CHECK_EQ(rs.rx_packets, t.got + t.foreign);
  CHECK_EQ(rs.rx_bytes, t.bytes);
  CHECK_EQ(rs.rx_drop_truncated, 0);
  CHECK_EQ(rs.rx_errors, 0);
  CHECK_EQ(ts.tx_packets, pr.sent);
  CHECK_EQ(ts.tx_bytes, pr.sent_bytes);
  CHECK_EQ(ts.tx_errors, 0);
  CHECK_EQ(ts.tx_short, 0);
  CHECK_EQ(ts.rx_packets, 0);
  CHECK_EQ(ts.tx_backpressure, pr.eagain);
  CHECK_EQ(rs.backend, backend);
  CHECK(rs.completions > 0);
  check_user_held_zero(rx);
  check_user_held_zero(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tally_free(&t);
}

static void body_v4(void) { body_transfer("127.0.0.1", 5000); }
static void body_v6(void) { body_transfer("[::1]", 3000); }

static void body_peer(void) {
  tally t;
  tally_init(&t, 1000);
  mior_options o = opts();
  mior_receiver recv = {consume, NULL, &t};
  mior_transport *rx = NULL, *tx = NULL;
  mior_options ot = opts();
  ot.flags |= MIOR_OPT_NO_RX;
  open_pair("127.0.0.1", &o, &recv, &rx, &ot, &tx, 1);
  t.check_src = 1;
  t.want_src = local_of(tx);
  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  pump pr = run_pump(txp, &t, rxp, 0, t.count, 128, 600, NULL, 20000);
  drain_tx(txp, pr.sent, 2000);
  CHECK_EQ(pr.sent, t.count);
  CHECK_TALLY(&t);
  check_user_held_zero(rx);
  check_user_held_zero(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tally_free(&t);
}

static void body_backpressure(void) {
  enum { MAX = 2048, EXTRA = 500, TX_SLOTS = 128 };
  tally t;
  tally_init(&t, MAX);
  mior_options o = opts();
  mior_receiver recv = {consume, NULL, &t};
  mior_transport *rx = NULL, *tx = NULL;
  mior_options ot = opts();
  ot.flags |= MIOR_OPT_NO_RX;
  ot.buf_count = TX_SLOTS;
  ot.sq_entries = 64;
  ot.batch = 16;
  open_pair("127.0.0.1", &o, &recv, &rx, &ot, &tx, 0);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_addr dst = local_of(rx);

  /* Fill without polling: completions are never reaped, so slots run out. */
  uint32_t queued = 0;
  int rc = 0;
  int64_t t0 = now_ms();
  for (uint32_t i = 0; i < TX_SLOTS + 64 + 16; i++) {
    mior_pkt pkt;
    rc = mior_tx_acquire(txp, &pkt);
    if (rc < 0) break;
    uint32_t len = len_for(queued, 200);
    fill(pkt.data, len, queued);
    CHECK_OK(mior_tx_send(txp, &pkt, len, &dst));
    queued++;
  }
  CHECK_ERR(rc, -EAGAIN);
  CHECK(queued > 0 && queued <= TX_SLOTS);
  CHECK(now_ms() - t0 < 1000); /* acquire never blocked */
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(txp, &st));
  CHECK_EQ(st.tx_backpressure, 1);
  printf("    backpressure after %u queued packets\n", queued);

  int recovered = 0;
  int64_t deadline = now_ms() + 3000;
  while (!recovered && now_ms() < deadline) {
    mior_tx_flush(txp);
    CHECK(mior_port_poll(txp, 0, 1000) >= 0);
    mior_pkt pkt;
    if (mior_tx_acquire(txp, &pkt) == 0) {
      recovered = 1;
      uint32_t len = len_for(queued, 200);
      fill(pkt.data, len, queued);
      CHECK_OK(mior_tx_send(txp, &pkt, len, &dst));
      queued++;
    }
  }
  CHECK(recovered);
  deadline = now_ms() + 5000;
  while (t.got < queued && now_ms() < deadline) {
    mior_port_poll(txp, 0, 0);
    mior_port_poll(rxp, 0, 1000);
  }
  CHECK_EQ(t.got, queued);
  pump pr = run_pump(txp, &t, rxp, queued, EXTRA, 64, 200, &dst, 10000);
  drain_tx(txp, queued + pr.sent, 2000);
  poll_for(rxp, 30);
  CHECK_EQ(pr.sent, EXTRA);
  CHECK_EQ(t.got, queued + EXTRA);
  CHECK_EQ(t.dups, 0);
  CHECK_EQ(t.bad, 0);
  CHECK_OK(mior_port_stats_get(txp, &st));
  CHECK_EQ(st.tx_packets, queued + EXTRA);
  CHECK(st.pool_high_water <= TX_SLOTS);
  check_user_held_zero(rx);
  check_user_held_zero(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tally_free(&t);
}

typedef struct releaser {
  mior_pkt *pkts;
  uint32_t n, ok, damaged;
  int first_err;
} releaser;

static void *release_thread(void *arg) {
  releaser *rl = arg;
  for (uint32_t i = 0; i < rl->n; i++) {
    uint32_t seq;
    if (check_payload(rl->pkts[i].data, rl->pkts[i].len, &seq) != 0) rl->damaged++;
    int rc = mior_pkt_release(&rl->pkts[i]);
    if (rc == 0) rl->ok++;
    else if (!rl->first_err) rl->first_err = rc;
    if (i % 16 == 0) Sleep(0);
  }
  return NULL;
}

static void body_keep(void) {
  enum { N1 = 1500, N2 = 1500, KEEP_EVERY = 10, KEEP_MAX = 100 };
  tally t;
  tally_init(&t, N1 + N2);
  t.keep_every = KEEP_EVERY;
  t.keep_max = KEEP_MAX;
  t.kept = calloc(KEEP_MAX, sizeof *t.kept);
  REQUIRE(t.kept);
  mior_options o = opts();
  mior_receiver recv = {consume, NULL, &t};
  mior_transport *rx = NULL, *tx = NULL;
  mior_options ot = opts();
  ot.flags |= MIOR_OPT_NO_RX;
  open_pair("127.0.0.1", &o, &recv, &rx, &ot, &tx, 0);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_addr dst = local_of(rx);

  pump pr = run_pump(txp, &t, rxp, 0, N1, 64, 900, &dst, 15000);
  CHECK_EQ(pr.sent, N1);
  CHECK_EQ(t.got, N1);
  CHECK_EQ(t.kept_n, KEEP_MAX);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(rxp, &st));
  CHECK_EQ(st.rx_kept, t.kept_n);
  CHECK_EQ(st.user_held, t.kept_n);

  /* Released from another thread while the second half streams in; the bytes must be intact. */
  mior_pkt *copies = malloc(KEEP_MAX * sizeof *copies);
  REQUIRE(copies);
  memcpy(copies, t.kept, t.kept_n * sizeof *copies);
  releaser rl = {copies, t.kept_n, 0, 0, 0};
  t.keep_every = 0;
  test_thread th;
  REQUIRE(test_thread_start(&th, release_thread, &rl) == 0);
  pr = run_pump(txp, &t, rxp, N1, N2, 64, 900, &dst, 15000);
  test_thread_join(&th);
  CHECK_EQ(pr.sent, N2);
  CHECK_EQ(rl.ok, t.kept_n);
  CHECK_EQ(rl.damaged, 0);
  CHECK_EQ(rl.first_err, 0);
  drain_tx(txp, N1 + N2, 2000);
  poll_for(rxp, 30);
  CHECK_TALLY(&t);
  for (uint32_t i = 0; i < 5 && i < t.kept_n; i++) CHECK_ERR(mior_pkt_release(&copies[i]), -EINVAL);
  check_user_held_zero(rx);
  CHECK_OK(mior_port_stats_get(rxp, &st));
  CHECK_EQ(st.rx_kept, KEEP_MAX);
  CHECK_EQ(st.rx_packets, N1 + N2);

  /* Keep one and close: -EBUSY, everything freed regardless. */
  tally t3;
  tally_init(&t3, 1);
  t3.keep_every = 1;
  t3.keep_max = 1;
  t3.kept = calloc(1, sizeof *t3.kept);
  mior_receiver recv3 = {consume, NULL, &t3};
  mior_transport *rx3 = NULL, *tx3 = NULL;
  mior_options o3 = opts(), ot3 = opts();
  ot3.flags |= MIOR_OPT_NO_RX;
  open_pair("127.0.0.1", &o3, &recv3, &rx3, &ot3, &tx3, 0);
  mior_addr dst3 = local_of(rx3);
  run_pump(mior_transport_port(tx3, 0), &t3, mior_transport_port(rx3, 0), 0, 1, 1, 100, &dst3, 5000);
  CHECK_EQ(t3.kept_n, 1);
  CHECK_ERR(mior_transport_close(rx3), -EBUSY);
  drain_tx(mior_transport_port(tx3, 0), 1, 2000);
  CHECK_EQ(mior_transport_close(tx3), 0);
  tally_free(&t3);

  drain_tx(txp, N1 + N2, 2000);
  check_user_held_zero(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  free(copies);
  tally_free(&t);
}

/* A datagram longer than a slot is cut by Winsock (WSAEMSGSIZE): counted, never delivered; the
 * next normal datagram still arrives. */
static void body_truncated(void) {
  tally t;
  tally_init(&t, 2);
  mior_options o = opts();
  o.buf_size = 256;
  o.buf_count = 64;
  mior_receiver recv = {consume, NULL, &t};
  mior_transport *rx = NULL, *tx = NULL;
  mior_options ot = opts();
  ot.flags |= MIOR_OPT_NO_RX;
  open_pair("127.0.0.1", &o, &recv, &rx, &ot, &tx, 0);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_addr dst = local_of(rx);
  mior_port_poll(rxp, 0, 0); /* receives posted before anything arrives (the asynchronous path) */
  uint32_t lens[3] = {1000, 100, 1200};
  uint32_t seqs[3] = {0, 0, 1};
  for (int i = 0; i < 3; i++) {
    mior_pkt pkt;
    REQUIRE_OK(mior_tx_acquire(txp, &pkt));
    fill(pkt.data, lens[i], seqs[i]);
    CHECK_OK(mior_tx_send(txp, &pkt, lens[i], &dst));
    CHECK_OK(mior_tx_flush(txp));
    drain_tx(txp, (uint64_t)i + 1, 2000);
    if (i == 1) {
      /* The third datagram arrives with no receive posted, so it is cut on the synchronous
       * path instead. */
      int64_t deadline = now_ms() + 3000;
      while (t.got < 1 && now_ms() < deadline) mior_port_poll(rxp, 0, 1000);
    }
  }
  mior_port_stats st;
  int64_t deadline = now_ms() + 3000;
  do {
    mior_port_poll(rxp, 0, 1000);
    CHECK_OK(mior_port_stats_get(rxp, &st));
  } while (st.rx_drop_truncated < 2 && now_ms() < deadline);
  CHECK_EQ(st.rx_drop_truncated, 2);
  CHECK_EQ(t.got, 1);
  CHECK_EQ(t.bad, 0);
  CHECK_EQ(st.rx_packets, 1);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tally_free(&t);
}

/* --- close while traffic is in flight -------------------------------------------------------- */

typedef struct blaster {
  char ep[80], peer[80]; /* where the blaster opens, and its peer (empty: none) */
  mior_addr dst;
  atomic_int stop;
  uint64_t sent;
  int open_rc, close_rc, fail;
} blaster;

static void *blast_thread(void *arg) {
  blaster *bl = arg;
  mior_options o = opts();
  o.flags |= MIOR_OPT_NO_RX;
  mior_transport *tx = NULL;
  if (bl->peer[0]) o.peer = bl->peer;
  bl->open_rc = mior_transport_open(&tx, bl->ep, &o, NULL);
  if (bl->open_rc < 0) return NULL;
  mior_port *p = mior_transport_port(tx, 0);
  int64_t deadline = now_ms() + 20000;
  uint32_t seq = 0;
  while (!atomic_load(&bl->stop) && now_ms() < deadline) {
    for (int i = 0; i < 64; i++) {
      mior_pkt pkt;
      int rc = mior_tx_acquire(p, &pkt);
      if (rc == -EAGAIN) break;
      if (rc < 0) {
        bl->fail = rc;
        break;
      }
      uint32_t len = len_for(seq, 1200);
      fill(pkt.data, len, seq++);
      if (mior_tx_send(p, &pkt, len, &bl->dst) == 0) bl->sent++;
    }
    if (bl->fail) break;
    mior_tx_flush(p);
    mior_port_poll(p, 0, 0);
  }
  /* Queue one more batch and close without flushing or reaping it. */
  for (int i = 0; i < 32; i++) {
    mior_pkt pkt;
    if (mior_tx_acquire(p, &pkt) != 0) break;
    fill(pkt.data, 64, seq++);
    mior_tx_send(p, &pkt, 64, &bl->dst);
  }
  bl->close_rc = mior_transport_close(tx);
  return NULL;
}

typedef struct counter {
  atomic_uint got, bad, flushes;
} counter;

static int count_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  counter *c = ctx;
  uint32_t seq;
  if (check_payload(pkt->data, pkt->len, &seq) != 0) atomic_fetch_add(&c->bad, 1);
  atomic_fetch_add(&c->got, 1);
  return MIOR_DONE;
}

static void count_flush(void *ctx, mior_port *port) {
  (void)port;
  counter *c = ctx;
  atomic_fetch_add(&c->flushes, 1);
}

static void run_close(int stop_first) {
  counter c;
  atomic_init(&c.got, 0);
  atomic_init(&c.bad, 0);
  atomic_init(&c.flushes, 0);
  mior_receiver recv = {count_consume, count_flush, &c};
  mior_options o = opts();
  mior_transport *rx = NULL;
  blaster bl;
  memset(&bl, 0, sizeof bl);
  snprintf(bl.ep, sizeof bl.ep, "udp://127.0.0.1:0");
  if (backend == MIOR_BACKEND_IORING) {
    /* Both ends connected to each other before either sends. */
    uint16_t prx, ptx;
    char ep_rx[80], peer_rx[80];
    free_ports("127.0.0.1", &prx, &ptx);
    snprintf(ep_rx, sizeof ep_rx, "udp://127.0.0.1:%u", prx);
    snprintf(peer_rx, sizeof peer_rx, "127.0.0.1:%u", ptx);
    snprintf(bl.ep, sizeof bl.ep, "udp://127.0.0.1:%u", ptx);
    snprintf(bl.peer, sizeof bl.peer, "127.0.0.1:%u", prx);
    o.peer = peer_rx;
    REQUIRE_OK(mior_transport_open(&rx, ep_rx, &o, &recv));
  } else {
    REQUIRE_OK(mior_transport_open(&rx, bl.ep, &o, &recv));
  }
  CHECK_OK(mior_transport_start(rx));
  CHECK_ERR(mior_transport_start(rx), -EALREADY);
  bl.dst = local_of(rx);
  atomic_init(&bl.stop, 0);
  test_thread th;
  REQUIRE(test_thread_start(&th, blast_thread, &bl) == 0);
  int64_t deadline = now_ms() + 3000;
  while (atomic_load(&c.got) < 2000 && now_ms() < deadline) Sleep(1);
  CHECK(atomic_load(&c.got) > 0);

  int64_t t0 = now_ms();
  if (stop_first) {
    CHECK_OK(mior_transport_stop(rx));
    unsigned at_stop = atomic_load(&c.got);
    Sleep(20);
    CHECK_EQ(atomic_load(&c.got), at_stop); /* stopped: no more consume calls */
    check_user_held_zero(rx);
    CHECK_EQ(mior_transport_close(rx), 0);
  } else {
    CHECK_EQ(mior_transport_close(rx), 0);
  }
  int64_t took = now_ms() - t0;
  CHECK(took < 2000);
  printf("    %s: %lld ms, received %u\n", stop_first ? "stop+close" : "close while started",
         (long long)took, atomic_load(&c.got));
  CHECK_EQ(atomic_load(&c.bad), 0);
  CHECK(atomic_load(&c.flushes) > 0);
  Sleep(20);
  atomic_store(&bl.stop, 1);
  test_thread_join(&th);
  CHECK_OK(bl.open_rc);
  CHECK_EQ(bl.fail, 0);
  CHECK_EQ(bl.close_rc, 0);
  CHECK(bl.sent > 0);
}

static void body_stop_close(void) { run_close(1); }
static void body_close_started(void) { run_close(0); }

/* Closing a port that was never driven, with receives posted by nobody, and one driven by hand
 * with receives posted and sends queued but never flushed. */
static void body_close_cycles(void) {
  for (int i = 0; i < 10; i++) {
    mior_transport *t = NULL;
    mior_options o = opts();
    o.buf_count = 256;
    if (backend == MIOR_BACKEND_IORING) {
      /* Connected to itself: the only peer it can send to without another transport. */
      char ep[80], self[80];
      uint16_t port = free_port("127.0.0.1");
      snprintf(ep, sizeof ep, "udp://127.0.0.1:%u", port);
      snprintf(self, sizeof self, "127.0.0.1:%u", port);
      o.peer = self;
      REQUIRE_OK(mior_transport_open(&t, ep, &o, NULL));
    } else {
      REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
    }
    mior_port *p = mior_transport_port(t, 0);
    if (i % 3 == 1) CHECK(mior_port_poll(p, 0, 0) >= 0);
    if (i % 3 == 2) {
      CHECK(mior_port_poll(p, 0, 0) >= 0);
      mior_addr self = local_of(t);
      mior_pkt pkt;
      REQUIRE_OK(mior_tx_acquire(p, &pkt));
      fill(pkt.data, 64, 0);
      CHECK_OK(mior_tx_send(p, &pkt, 64, &self));
    }
    if (i % 2) {
      CHECK_OK(mior_transport_start(t));
      CHECK_OK(mior_transport_stop(t));
    }
    CHECK_EQ(mior_transport_close(t), 0);
  }
}

/* --- bad arguments ----------------------------------------------------------------------------- */

static void expect_fail(const char *ep, const mior_options *o, int err, const char *part) {
  mior_transport *t = (mior_transport *)&t; /* must be reset to NULL */
  int rc = mior_transport_open(&t, ep, o, NULL);
  if (rc != err)
    TEST_FAIL_AT("open %s -> %d (%s), expected %d; %s", ep, rc, mior_strerror(rc), err, mior_last_error());
  CHECK(t == NULL);
  if (part && !strstr(mior_last_error(), part))
    TEST_FAIL_AT("open %s: detail '%s' lacks '%s'", ep, mior_last_error(), part);
  if (rc == 0) mior_transport_close(t);
}

static void body_args(void) {
  mior_options o = opts();
  expect_fail("packet://eth0", &o, -EOPNOTSUPP, "not available on Windows");
  expect_fail("udp://127.0.0.1:x", &o, -EINVAL, NULL);
  expect_fail("bogus://1.2.3.4", &o, -EINVAL, NULL);
  o.queues = 2;
  expect_fail("udp://127.0.0.1:0", &o, -EOPNOTSUPP, "SO_REUSEPORT");
  o = opts();
  o.peer = "[::1]:9";
  expect_fail("udp://127.0.0.1:0", &o, -EINVAL, "IPv6");
  o = opts();
  CHECK_ERR(mior_transport_open(NULL, "udp://127.0.0.1:0", &o, NULL), -EINVAL);

  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_port *p = mior_transport_port(t, 0);
  mior_addr self = local_of(t);
  CHECK(mior_transport_port(t, 1) == NULL);
  CHECK_ERR(mior_port_poll(NULL, 0, 0), -EINVAL);
  CHECK_ERR(mior_tx_acquire(p, NULL), -EINVAL);
  CHECK_ERR(mior_tx_send(p, NULL, 10, &self), -EINVAL);
  CHECK_ERR(mior_pkt_release(NULL), -EINVAL);
  CHECK_ERR(mior_port_local_addr(p, NULL), -EINVAL);

  mior_pkt pkt;
  /* Unconnected socket, no destination. */
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  CHECK_ERR(mior_tx_send(p, &pkt, 10, NULL), -EDESTADDRREQ);
  /* IPv6 destination on an IPv4 socket. */
  mior_addr v6;
  REQUIRE_OK(mior_addr_parse(&v6, "[::1]:9"));
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  CHECK_ERR(mior_tx_send(p, &pkt, 10, &v6), -EAFNOSUPPORT);
  /* Too long for the slot, then a second send of a slot already given back. */
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  CHECK_ERR(mior_tx_send(p, &pkt, pkt.cap + 1, &self), -EINVAL);
  CHECK_ERR(mior_tx_send(p, &pkt, 10, &self), -EINVAL);
  CHECK_ERR(mior_pkt_release(&pkt), -EINVAL);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.tx_errors, 3);
  CHECK_EQ(st.user_held, 0);
  CHECK_EQ(mior_transport_close(t), 0);
}

int main(void) {
  char why[200] = "";
  if (mior_backend_supported(MIOR_BACKEND_SOCKETS) != 1) {
    snprintf(why, sizeof why, "%s", mior_last_error());
    TEST_SKIP("Winsock backend unavailable: %s", why);
  }
  static const struct {
    const char *name;
    void (*fn)(void);
    int sockets_only;
  } bodies[] = {
      {"udp ipv4 loopback", body_v4, 0},
      {"udp ipv6 loopback", body_v6, 0},
      {"udp connected peer", body_peer, 0},
      {"tx backpressure and recovery", body_backpressure, 0},
      {"kept packets released from another thread", body_keep, 0},
      {"datagram longer than a slot", body_truncated, 0},
      {"stop then close with traffic in flight", body_stop_close, 0},
      {"close while started with traffic in flight", body_close_started, 0},
      {"open/poll/start/stop/close cycles", body_close_cycles, 0},
      {"bad arguments", body_args, 1},
  };
  /* Every body twice on sockets: with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (immediate results
   * completed by the backend itself) and without it (every completion through the port); then
   * once on ioring where the system has it (its sends fall back to Winsock only without WRITE). */
  int ioring = mior_backend_supported(MIOR_BACKEND_IORING) == 1;
  if (!ioring) {
    snprintf(why, sizeof why, "%s", mior_last_error());
    printf("  ioring bodies not run: %s\n", why);
  }
  for (int mode = 0; mode < 3; mode++) {
    if (mode == 2 && !ioring) break;
    backend = mode == 2 ? MIOR_BACKEND_IORING : MIOR_BACKEND_SOCKETS;
    _putenv(mode == 1 ? "MIOR_WINSOCK_NO_SKIP=1" : "MIOR_WINSOCK_NO_SKIP=0");
    const char *mname = mode == 2 ? "ioring" : mode == 1 ? "sockets, all through the port" : "sockets";
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
      if (bodies[i].sockets_only && backend != MIOR_BACKEND_SOCKETS) continue;
      int before = test_failures;
      int64_t t0 = now_ms();
      bodies[i].fn();
      printf("  %s [%s]: %s (%lld ms)\n", bodies[i].name, mname,
             test_failures == before ? "ok" : "FAILED", (long long)(now_ms() - t0));
      fflush(stdout);
    }
  }
  TEST_DONE();
}
