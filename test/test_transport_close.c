/* Stopping and closing while traffic is in flight, under every variant (UDP on loopback): a
 * sender thread blasts unpaced datagrams at a receiver that runs on its own thread
 * (mior_transport_start); mid-stream the receiver is stopped and closed (or closed while still
 * started).  Nothing may hang (every step is timed and a watchdog bounds the run), the pool must
 * be fully back before close when nothing is kept, close must return 0, and the sender, closed
 * with sends still in flight, must return 0 too.  Opening, driving, starting, stopping and closing
 * over and over with no traffic stays bounded as well.  Under a connected variant (IoRing) the
 * two ends are connected to each other before either sends.
 */
#include <stdatomic.h>

#include "transport_os.h"

#define STEP_LIMIT_MS 2000

typedef struct blaster {
  const tt_variant *v;
  char ep[80], peer[80]; /* where the sender opens, and its peer ("" for none) */
  mior_addr dst;
  atomic_int stop;
  atomic_int ready;
  uint64_t sent, eagain;
  int open_rc, close_rc, fail;
} blaster;

/* The sender opens, drives and closes its own transport on its own thread: the port's thread is
 * the one that drives it.  It stops while sends are still queued and in flight. */
static void *blast_thread(void *arg) {
  blaster *bl = arg;
  mior_options o = tt_vopts(bl->v);
  o.flags |= MIOR_OPT_NO_RX;
  if (bl->peer[0]) o.peer = bl->peer;
  mior_transport *tx = NULL;
  bl->open_rc = mior_transport_open(&tx, bl->ep, &o, NULL);
  atomic_store(&bl->ready, 1);
  if (bl->open_rc < 0) return NULL;
  mior_port *p = mior_transport_port(tx, 0);
  int64_t deadline = tt_now_ms() + 20000;
  uint32_t seq = 0;
  while (!atomic_load(&bl->stop) && tt_now_ms() < deadline) {
    for (int i = 0; i < 64; i++) {
      mior_pkt pkt;
      int rc = mior_tx_acquire(p, &pkt);
      if (rc == -EAGAIN) {
        bl->eagain++;
        break;
      }
      if (rc < 0) {
        bl->fail = rc;
        break;
      }
      uint32_t len = tt_len_for(seq, TT_HDR, 1200);
      tt_fill(pkt.data, len, seq++);
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
    tt_fill(pkt.data, 64, seq++);
    mior_tx_send(p, &pkt, 64, &bl->dst);
  }
  bl->close_rc = mior_transport_close(tx);
  return NULL;
}

typedef struct counter {
  atomic_uint_fast64_t got, bad, flushes;
} counter;

static int count_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  counter *c = ctx;
  uint32_t seq;
  if (tt_check(pkt->data, pkt->len, &seq) != 0) atomic_fetch_add(&c->bad, 1);
  atomic_fetch_add(&c->got, 1);
  return MIOR_DONE;
}

static void count_flush(void *ctx, mior_port *port) {
  counter *c = ctx;
  atomic_fetch_add(&c->flushes, 1);
}

/* stop_first: stop, check the pool, close.  Otherwise close while the threads still run. */
static void run(const tt_variant *v, int stop_first) {
  counter c;
  atomic_init(&c.got, 0);
  atomic_init(&c.bad, 0);
  atomic_init(&c.flushes, 0);
  mior_receiver recv = {count_consume, count_flush, &c};
  tt_udp_ends e;
  tt_udp_ends_init(v, "127.0.0.1", &e);
  mior_options o = tt_vopts(v);
  if (e.peer_rx[0]) o.peer = e.peer_rx;
  mior_transport *rx = NULL;
  REQUIRE_OK(mior_transport_open(&rx, e.ep_rx, &o, &recv));
  CHECK_OK(mior_transport_start(rx));
  CHECK_ERR(mior_transport_start(rx), -EALREADY);

  blaster bl;
  memset(&bl, 0, sizeof bl);
  bl.v = v;
  snprintf(bl.ep, sizeof bl.ep, "%s", e.ep_tx);
  snprintf(bl.peer, sizeof bl.peer, "%s", e.peer_tx);
  bl.dst = tt_local(rx);
  atomic_init(&bl.stop, 0);
  atomic_init(&bl.ready, 0);
  test_thread th;
  REQUIRE(test_thread_start(&th, blast_thread, &bl) == 0);

  /* Let traffic flow (bounded), until the receiver has seen some. */
  int64_t deadline = tt_now_ms() + 3000;
  while ((atomic_load(&c.got) < 2000 || tt_now_ms() < deadline - 2800) && tt_now_ms() < deadline)
    test_sleep_us(1000);
  CHECK(atomic_load(&c.got) > 0);

  int64_t t0 = tt_now_ms();
  if (stop_first) {
    tt_phase = "mior_transport_stop with traffic in flight";
    CHECK_OK(mior_transport_stop(rx));
    int64_t t_stop = tt_now_ms() - t0;
    CHECK(t_stop < STEP_LIMIT_MS);
    /* Stopped: consume is not called any more. */
    uint64_t got_at_stop = atomic_load(&c.got);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&c.got), got_at_stop);
    CHECK_OK(mior_transport_stop(rx)); /* again: no-op */
    TT_CHECK_POOL_RETURNED(rx);
    t0 = tt_now_ms();
    tt_phase = "mior_transport_close after stop with traffic in flight";
    CHECK_EQ(mior_transport_close(rx), 0);
    int64_t t_close = tt_now_ms() - t0;
    CHECK(t_close < STEP_LIMIT_MS);
    printf("    stop %lld ms, close %lld ms", (long long)t_stop, (long long)t_close);
  } else {
    tt_phase = "mior_transport_close while started, traffic in flight";
    CHECK_EQ(mior_transport_close(rx), 0);
    int64_t t_close = tt_now_ms() - t0;
    CHECK(t_close < STEP_LIMIT_MS);
    printf("    close (started) %lld ms", (long long)t_close);
  }
  printf(", received %llu, flushes %llu\n", (unsigned long long)atomic_load(&c.got),
         (unsigned long long)atomic_load(&c.flushes));
  CHECK_EQ(atomic_load(&c.bad), 0);
  CHECK(atomic_load(&c.flushes) > 0);

  /* The sender keeps going a little into the closed port, then closes with sends in flight. */
  test_sleep_us(20000);
  tt_phase = "sender close with sends in flight";
  atomic_store(&bl.stop, 1);
  test_thread_join(&th);
  CHECK_OK(bl.open_rc);
  CHECK_EQ(bl.fail, 0);
  CHECK_EQ(bl.close_rc, 0);
  CHECK(bl.sent > 0);
}

static void body_stop_close(const tt_variant *v) { run(v, 1); }
static void body_close_started(const tt_variant *v) { run(v, 0); }

/* Opening, starting, stopping and closing over and over with no traffic stays bounded, and close
 * returns 0 whatever the port was left with: never driven, driven by hand with receives posted,
 * or with a send queued and never flushed; started, stopped, or still started.  A port driven by
 * hand can be handed to the transport's thread by starting it, except where its ring is bound to
 * the thread that drove it (io_uring SINGLE_ISSUER without SQPOLL): there start says -EBUSY. */
static void body_cycles(const tt_variant *v) {
  for (int i = 0; i < 20; i++) {
    mior_transport *t = NULL;
    mior_options o = tt_vopts(v);
    o.buf_count = 256;
    tt_open_udp_self(v, "127.0.0.1", &o, NULL, &t);
    mior_port *p = mior_transport_port(t, 0);
    int driven = i % 3 != 0;
    if (driven) CHECK(mior_port_poll(p, 0, 0) >= 0);
    if (i % 3 == 2) {
      mior_addr self = tt_local(t);
      mior_pkt pkt;
      REQUIRE_OK(mior_tx_acquire(p, &pkt));
      tt_fill(pkt.data, 64, 0);
      CHECK_OK(mior_tx_send(p, &pkt, 64, &self));
    }
    if (i % 2) {
      mior_port_stats st;
      CHECK_OK(mior_port_stats_get(p, &st));
      if (driven && (st.features & MIOR_FEAT_SINGLE_ISSUER) && !(st.features & MIOR_FEAT_SQPOLL)) {
        CHECK_ERR(mior_transport_start(t), -EBUSY);
      } else {
        CHECK_OK(mior_transport_start(t));
        if (i % 4 == 1) CHECK_OK(mior_transport_stop(t));
      }
    }
    CHECK_EQ(mior_transport_close(t), 0);
  }
}

static const tt_test tests[] = {
    {"stop then close with traffic in flight", body_stop_close, TT_AS_IS},
    {"close while started with traffic in flight", body_close_started, TT_AS_IS},
    {"open/poll/send/start/stop/close cycles", body_cycles, TT_AS_IS},
};

int main(void) {
  tt_watchdog(100);
  if (!tt_run(tests, sizeof tests / sizeof tests[0])) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
