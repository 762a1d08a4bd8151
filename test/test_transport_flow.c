/* Flow control and ownership, under every variant (UDP on loopback):
 *   - backpressure: mior_tx_acquire without polling runs out and returns -EAGAIN (never blocks),
 *     each -EAGAIN is counted in tx_backpressure, polling recovers, and every packet queued before
 *     the -EAGAIN still arrives;
 *   - kept packets: the receiver keeps some (MIOR_KEEP), their bytes stay intact while kept,
 *     another thread releases them while receiving goes on, a second release is -EINVAL, and the
 *     pool is whole again afterwards; closing with a packet still kept says -EBUSY and frees
 *     nothing (the packet stays intact), and closing again after its release returns 0;
 *   - a datagram longer than a slot is counted as truncated and never delivered cut short, in a
 *     stream and alone, whether or not a receive was posted when it came;
 *   - a receiver that keeps every slot stalls receiving without losing anything, and the
 *     datagrams that waited arrive once it lets go.
 * Under a connected variant (IoRing) the two ends of each body are connected to each other.
 */
#include "transport_os.h"

#define TX_SLOTS 128u

static void body_backpressure(const tt_variant *v) {
  enum { MAX = 4096, EXTRA = 500 };
  tt_rx r;
  mior_options ot = tt_vopts(v);
  ot.buf_count = TX_SLOTS;
  ot.sq_entries = 64;
  ot.batch = 16;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, "127.0.0.1", &r, MAX, NULL, &ot, &rx, &tx, 0);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_addr dst = tt_local(rx);

  /* Fill without polling: completions are never reaped, so slots run out. */
  uint32_t queued = 0;
  int rc = 0;
  int64_t t0 = tt_now_us();
  for (uint32_t i = 0; i < TX_SLOTS + 64 + 16; i++) { /* slots + submission queue + a batch */
    mior_pkt pkt;
    rc = mior_tx_acquire(txp, &pkt);
    if (rc < 0) break;
    uint32_t len = tt_len_for(queued, TT_HDR, 200);
    tt_fill(pkt.data, len, queued);
    CHECK_OK(mior_tx_send(txp, &pkt, len, &dst));
    queued++;
  }
  int64_t took = tt_now_us() - t0;
  CHECK_ERR(rc, -EAGAIN);
  CHECK(queued > 0 && queued <= TX_SLOTS);
  CHECK(took < 1000000); /* acquire never blocked */
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(txp, &st));
  CHECK_EQ(st.tx_backpressure, 1);
  /* Each refused acquire is counted, and refusing did not lose anything. */
  mior_pkt extra;
  int rc2 = mior_tx_acquire(txp, &extra);
  if (rc2 == 0) {
    /* A completion may have freed a slot meanwhile (sockets backend sends synchronously at the
     * batch boundary); then this is a real slot, so give it back unused. */
    CHECK_OK(mior_pkt_release(&extra));
  } else {
    CHECK_ERR(rc2, -EAGAIN);
    CHECK_OK(mior_port_stats_get(txp, &st));
    CHECK_EQ(st.tx_backpressure, 2);
  }
  printf("    backpressure after %u queued packets\n", queued);

  /* Recover: poll (reaping send completions) until a slot is free again. */
  int recovered = 0;
  int64_t deadline = tt_now_ms() + 3000;
  while (!recovered && tt_now_ms() < deadline) {
    mior_tx_flush(txp);
    CHECK(mior_port_poll(txp, 0, 1000) >= 0);
    mior_pkt pkt;
    if (mior_tx_acquire(txp, &pkt) == 0) {
      recovered = 1;
      uint32_t len = tt_len_for(queued, TT_HDR, 200);
      tt_fill(pkt.data, len, queued);
      CHECK_OK(mior_tx_send(txp, &pkt, len, &dst));
      queued++;
    }
  }
  CHECK(recovered);

  /* Everything queued before and after the -EAGAIN arrives, then a paced stream on top. */
  deadline = tt_now_ms() + 5000;
  while (r.got < queued && tt_now_ms() < deadline) {
    mior_port_poll(txp, 0, 0);
    mior_port_poll(rxp, 0, 1000);
  }
  CHECK_EQ(r.got, queued);
  tt_span so = {queued, 200};
  tt_pump_result pr = tt_pump(txp, &r, &rxp, 1, EXTRA, 64, &dst, tt_build_payload, &so, 10000);
  tt_drain_tx(txp, queued + pr.sent, 2000);
  tt_poll_for(&rxp, 1, 30);
  CHECK_EQ(pr.sent, EXTRA);
  CHECK_EQ(r.got, queued + EXTRA);
  CHECK_EQ(r.dups, 0);
  CHECK_EQ(r.bad, 0);
  for (uint32_t i = 0; i < queued + EXTRA; i++) {
    if (!r.seen[i]) {
      TEST_FAIL_AT("seq %u never arrived", i);
      break;
    }
  }
  CHECK_OK(mior_port_stats_get(txp, &st));
  CHECK_EQ(st.tx_packets, queued + EXTRA);
  CHECK(st.tx_backpressure >= 1);
  CHECK(st.pool_high_water <= TX_SLOTS);
  tt_close_oneway(rx, tx, &r);
}

/* --- kept packets ------------------------------------------------------------------------- */

typedef struct releaser {
  mior_pkt *pkts;
  uint32_t n;
  uint32_t ok, damaged;
  int first_err;
} releaser;

/* Another thread checks each kept packet's bytes (they must not have been reused) and releases
 * it, a little at a time, while the main thread keeps receiving. */
static void *release_thread(void *arg) {
  releaser *rl = arg;
  for (uint32_t i = 0; i < rl->n; i++) {
    uint32_t seq;
    if (tt_check(rl->pkts[i].data, rl->pkts[i].len, &seq) != 0) rl->damaged++;
    int rc = mior_pkt_release(&rl->pkts[i]);
    if (rc == 0) rl->ok++;
    else if (!rl->first_err) rl->first_err = rc;
    if (i % 16 == 0) test_sleep_us(200);
  }
  return NULL;
}

static void body_keep(const tt_variant *v) {
  enum { N1 = 2000, N2 = 2000, KEEP_EVERY = 10, KEEP_MAX = 150 };
  tt_rx r;
  mior_options o = tt_vopts(v);
  o.buf_count = 1024;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, "127.0.0.1", &r, N1 + N2, &o, NULL, &rx, &tx, 0);
  r.keep_every = KEEP_EVERY;
  r.keep_max = KEEP_MAX;
  r.kept = calloc(KEEP_MAX, sizeof *r.kept);
  REQUIRE(r.kept);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_addr dst = tt_local(rx);

  tt_span so = {0, 900};
  tt_pump_result pr = tt_pump(txp, &r, &rxp, 1, N1, 64, &dst, tt_build_payload, &so, 10000);
  CHECK_EQ(pr.sent, N1);
  CHECK_EQ(r.got, N1);
  CHECK_EQ(r.kept_n, KEEP_MAX);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(rxp, &st));
  CHECK_EQ(st.rx_kept, r.kept_n);
  CHECK_EQ(st.user_held, r.kept_n);
  CHECK(st.pool_in_use >= r.kept_n);

  /* Release from another thread while the second half streams in. */
  mior_pkt *copies = malloc(KEEP_MAX * sizeof *copies);
  REQUIRE(copies);
  memcpy(copies, r.kept, r.kept_n * sizeof *copies);
  releaser rl = {copies, r.kept_n, 0, 0, 0};
  r.keep_every = 0; /* keep no more */
  test_thread th;
  REQUIRE(test_thread_start(&th, release_thread, &rl) == 0);
  so.off = N1;
  pr = tt_pump(txp, &r, &rxp, 1, N2, 64, &dst, tt_build_payload, &so, 10000);
  test_thread_join(&th);
  CHECK_EQ(pr.sent, N2);
  CHECK_EQ(rl.ok, r.kept_n);
  CHECK_EQ(rl.damaged, 0);
  CHECK_EQ(rl.first_err, 0);
  tt_drain_tx(txp, N1 + N2, 2000);
  tt_poll_for(&rxp, 1, 30);
  TT_CHECK_TALLY(&r);

  /* A second release of the same packets is refused and harms nothing. */
  for (uint32_t i = 0; i < 5 && i < r.kept_n; i++) CHECK_ERR(mior_pkt_release(&copies[i]), -EINVAL);
  CHECK_ERR(mior_pkt_release(NULL), -EINVAL);
  CHECK(mior_last_error()[0] != '\0');
  TT_CHECK_POOL_RETURNED(rx);

  /* The counters saw every packet once, kept or not. */
  CHECK_OK(mior_port_stats_get(rxp, &st));
  CHECK_EQ(st.rx_kept, KEEP_MAX);
  CHECK_EQ(st.rx_packets, N1 + N2);

  /* Keep one and close: -EBUSY, nothing freed (the kept bytes are intact); after the release,
   * close returns 0 (ASan would see a leak if it did not free then).  A sender of its own, since
   * under a connected variant tx can only reach rx. */
  so.off = 0;
  tt_rx r3;
  mior_transport *rx3 = NULL, *tx3 = NULL;
  tt_open_oneway(v, "127.0.0.1", &r3, 1, &o, NULL, &rx3, &tx3, 0);
  r3.keep_every = 1;
  r3.keep_max = 1;
  r3.kept = calloc(1, sizeof *r3.kept);
  mior_port *rxp3 = mior_transport_port(rx3, 0), *txp3 = mior_transport_port(tx3, 0);
  mior_addr dst3 = tt_local(rx3);
  pr = tt_pump(txp3, &r3, &rxp3, 1, 1, 1, &dst3, tt_build_payload, &so, 5000);
  CHECK_EQ(r3.kept_n, 1);
  CHECK_OK(mior_port_stats_get(rxp3, &st));
  CHECK_EQ(st.user_held, 1);
  CHECK_ERR(mior_transport_close(rx3), -EBUSY);
  uint32_t seq3;
  CHECK_EQ(tt_check(r3.kept[0].data, r3.kept[0].len, &seq3), 0);
  CHECK_OK(mior_pkt_release(&r3.kept[0]));
  tt_drain_tx(txp3, 1, 2000);
  tt_close_oneway(rx3, tx3, &r3); /* rx3's close returns 0 now */

  tt_drain_tx(txp, N1 + N2, 2000);
  tt_close_oneway(rx, tx, &r);
  free(copies);
}

/* Datagrams longer than a slot are dropped and counted, never delivered cut short; datagrams
 * that fit keep flowing around them. */
typedef struct trunc_ctx {
  uint32_t big_every;
} trunc_ctx;

static uint32_t build_trunc(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  trunc_ctx *t = ctx;
  uint32_t len = seq % t->big_every == 0 ? 1000 : tt_len_for(seq, TT_HDR, 200);
  if (len > cap) len = cap;
  tt_fill(buf, len, seq);
  return len;
}

static void body_truncated(const tt_variant *v) {
  enum { N = 1000, BIG_EVERY = 4 };
  tt_rx r;
  mior_options o = tt_vopts(v);
  o.buf_size = 256; /* smaller than the big datagrams */
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, "127.0.0.1", &r, N, &o, NULL, &rx, &tx, 0);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_addr dst = tt_local(rx);
  trunc_ctx tc = {BIG_EVERY};
  /* Paced by hand: tt_pump's window counts deliveries, and the big ones are never delivered. */
  uint32_t sent = 0;
  int64_t deadline = tt_now_ms() + 10000;
  mior_port_stats rs;
  memset(&rs, 0, sizeof rs);
  while (sent < N && tt_now_ms() < deadline) {
    for (int i = 0; i < 16 && sent < N; i++) {
      mior_pkt pkt;
      if (mior_tx_acquire(txp, &pkt) != 0) break;
      uint32_t len = build_trunc(&tc, pkt.data, pkt.cap, sent);
      CHECK_OK(mior_tx_send(txp, &pkt, len, &dst));
      sent++;
    }
    mior_tx_flush(txp);
    mior_port_poll(txp, 0, 0);
    /* Wait until the receiver has accounted for everything sent so far. */
    int64_t dl = tt_now_ms() + 2000;
    do {
      mior_port_poll(rxp, 0, 1000);
      mior_port_stats_get(rxp, &rs);
    } while (rs.rx_packets + rs.rx_drop_truncated < sent && tt_now_ms() < dl);
  }
  uint32_t big = (N + BIG_EVERY - 1) / BIG_EVERY;
  CHECK_EQ(sent, N);
  CHECK_OK(mior_port_stats_get(rxp, &rs));
  CHECK_EQ(rs.rx_drop_truncated, big);
  CHECK_EQ(rs.rx_packets, N - big);
  CHECK_EQ(r.got, N - big);
  CHECK_EQ(r.bad, 0);
  for (uint32_t i = 0; i < N; i++) {
    if (r.seen[i] != (i % BIG_EVERY != 0)) {
      TEST_FAIL_AT("seq %u: seen %d", i, r.seen[i]);
      break;
    }
  }
  tt_drain_tx(txp, N, 2000);
  tt_close_oneway(rx, tx, &r);
}

/* Three datagrams, one at a time: 1000 bytes into 256-byte slots, then 100, then 1200.  The two
 * long ones are counted as truncated, never delivered, and the short one between them arrives.
 * The first comes while receives are posted; the third right after the receiver delivered the
 * second, which on Winsock means with no receive posted, so that it is cut on the synchronous
 * path (WSAEMSGSIZE from the call itself) rather than in a completion. */
static void body_truncated_one(const tt_variant *v) {
  tt_rx r;
  mior_options o = tt_vopts(v);
  o.buf_size = 256;
  o.buf_count = 64;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, "127.0.0.1", &r, 2, &o, NULL, &rx, &tx, 0);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_addr dst = tt_local(rx);
  mior_port_poll(rxp, 0, 0); /* receives posted before anything arrives */
  uint32_t lens[3] = {1000, 100, 1200};
  uint32_t seqs[3] = {0, 0, 1};
  for (int i = 0; i < 3; i++) {
    mior_pkt pkt;
    REQUIRE_OK(mior_tx_acquire(txp, &pkt));
    tt_fill(pkt.data, lens[i], seqs[i]);
    CHECK_OK(mior_tx_send(txp, &pkt, lens[i], &dst));
    CHECK_OK(mior_tx_flush(txp));
    tt_drain_tx(txp, (uint64_t)i + 1, 2000);
    if (i == 1) {
      int64_t deadline = tt_now_ms() + 3000;
      while (r.got < 1 && tt_now_ms() < deadline) mior_port_poll(rxp, 0, 1000);
    }
  }
  mior_port_stats st;
  int64_t deadline = tt_now_ms() + 3000;
  do {
    mior_port_poll(rxp, 0, 1000);
    CHECK_OK(mior_port_stats_get(rxp, &st));
  } while (st.rx_drop_truncated < 2 && tt_now_ms() < deadline);
  CHECK_EQ(st.rx_drop_truncated, 2);
  CHECK_EQ(r.got, 1);
  CHECK_EQ(r.bad, 0);
  CHECK_EQ(st.rx_packets, 1);
  tt_close_oneway(rx, tx, &r);
}

/* The receiver keeps every packet until the port has no slot left to receive into: receiving
 * stalls (the datagrams wait in the socket), nothing crashes or is handed out twice, and once
 * the kept packets are released the waiting datagrams arrive. */
static void body_starve(const tt_variant *v) {
  enum { SLOTS = 256, N = 400 };
  tt_rx r;
  mior_options o = tt_vopts(v);
  o.buf_count = SLOTS;
  /* One datagram per slot, so the slot count bounds what the receiver can keep (with UDP GRO one
   * slot may hold a coalesced buffer of many: test_transport_gro keeps those). */
  o.flags |= MIOR_OPT_NO_UDP_GRO;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, "127.0.0.1", &r, N, &o, NULL, &rx, &tx, 0);
  r.keep_every = 1;
  r.keep_max = N;
  r.kept = calloc(N, sizeof *r.kept);
  REQUIRE(r.kept);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_addr dst = tt_local(rx);
  uint32_t sent = 0;
  int64_t deadline = tt_now_ms() + 5000;
  while (sent < N && tt_now_ms() < deadline) {
    for (int i = 0; i < 16 && sent < N; i++) {
      mior_pkt pkt;
      if (mior_tx_acquire(txp, &pkt) != 0) break;
      uint32_t len = tt_len_for(sent, TT_HDR, 100);
      tt_fill(pkt.data, len, sent);
      CHECK_OK(mior_tx_send(txp, &pkt, len, &dst));
      sent++;
    }
    mior_tx_flush(txp);
    mior_port_poll(txp, 0, 0);
    mior_port_poll(rxp, 0, 500);
  }
  CHECK_EQ(sent, N);
  tt_drain_tx(txp, N, 2000);
  tt_poll_for(&rxp, 1, 100);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(rxp, &st));
  CHECK(r.got <= SLOTS);
  CHECK(r.got < N);
  CHECK_EQ(st.user_held, r.kept_n);
  CHECK_EQ(r.dups, 0);
  uint32_t stalled_at = r.got;

  /* Release everything kept, keep nothing more; the rest must now come in. */
  uint32_t n_kept = r.kept_n;
  r.keep_every = 0;
  for (uint32_t i = 0; i < n_kept; i++) CHECK_OK(mior_pkt_release(&r.kept[i]));
  deadline = tt_now_ms() + 3000;
  while (r.got < N && tt_now_ms() < deadline) mior_port_poll(rxp, 0, 1000);
  printf("    stalled at %u of %u with %u slots; rx_nobufs %llu; all in after release: %s\n",
         stalled_at, N, SLOTS, (unsigned long long)st.rx_nobufs, r.got == N ? "yes" : "no");
  TT_CHECK_TALLY(&r);
  tt_close_oneway(rx, tx, &r);
}

/* Multishot receive (provided buffers) and individual posted receives truncate and run out of
 * slots differently; backends without multishot receive ignore the flag. */
static const tt_config posted[] = {
    {"", MIOR_BACKEND_AUTO, 0, 0, 0},
    {"posted receives", MIOR_BACKEND_AUTO, MIOR_OPT_NO_MULTISHOT, 0, 0},
};

static const tt_test tests[] = {
    {"tx backpressure and recovery", body_backpressure, TT_AS_IS},
    {"kept packets released from another thread", body_keep, TT_AS_IS},
    {"datagrams longer than a slot", body_truncated, TT_CONFIGS(posted)},
    {"one datagram longer than a slot at a time", body_truncated_one, TT_CONFIGS(posted)},
    {"receiver keeps every slot, then releases", body_starve, TT_CONFIGS(posted)},
};

int main(void) {
  tt_watchdog(110);
  if (!tt_run(tests, sizeof tests / sizeof tests[0])) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
