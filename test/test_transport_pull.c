/* Pull receive (mior_rx_burst) and bulk release (mior_pkt_release_bulk), under every variant:
 * the same sequence of payloads sent to a port driven by callbacks and to a port driven by pull
 * receive arrives whole, once and intact at both, with the same counters (one delivery path);
 * bulk release is all or nothing (a duplicate, a stale copy or a released packet refuses the
 * whole bulk and changes nothing) and takes transmit slots too; and packets pulled on the driving
 * thread and given back in bulk by another thread while the port keeps receiving all come back.
 * Every body ends with nothing held and both closes returning 0. */
#include <stdatomic.h>

#include "transport_os.h"

#define N_SAME TT_BULK(4000)
#define N_THREAD TT_BULK(6000)
#define WINDOW 64u
#define BURST 32u

/* Send payloads seq..seq+n-1 (lengths 16..600). */
static uint32_t send_some(mior_port *tx, const mior_addr *dst, uint32_t seq, uint32_t n) {
  uint32_t sent = 0;
  int64_t end = tt_now_ms() + 5000;
  while (sent < n && tt_now_ms() < end) {
    mior_pkt p;
    int rc = mior_tx_acquire(tx, &p);
    if (rc == -EAGAIN) {
      mior_port_poll(tx, 0, 1000);
      continue;
    }
    REQUIRE_OK(rc);
    uint32_t len = tt_len_for(seq + sent, TT_HDR, 600);
    tt_fill(p.data, len, seq + sent);
    CHECK_OK(mior_tx_send(tx, &p, len, dst));
    sent++;
  }
  CHECK_OK(mior_tx_flush(tx));
  return sent;
}

/* Pull until `want` of ours arrived in r or limit_ms; half the packets go back singly, half in
 * bulk, so both paths run. */
static void pull_into(mior_port *port, tt_rx *r, uint32_t want, int64_t limit_ms) {
  int64_t end = tt_now_ms() + limit_ms;
  mior_pkt pk[BURST];
  while (r->got < want && tt_now_ms() < end) {
    int n = mior_rx_burst(port, pk, BURST);
    REQUIRE(n >= 0 && n <= (int)BURST);
    if (n == 0) {
      mior_port_poll(port, 1, 0); /* a pull port's poll keeps what it reaps for mior_rx_burst */
      continue;
    }
    for (int i = 0; i < n; i++) {
      uint32_t seq;
      int c = tt_check(pk[i].data, pk[i].len, &seq);
      if (c < 0) r->bad++;
      else if (c > 0) r->foreign++;
      else if (seq >= r->count) r->out_of_range++;
      else if (r->seen[seq]) r->dups++;
      else {
        r->seen[seq] = 1;
        r->got++;
        r->bytes += pk[i].len;
      }
    }
    uint32_t half = (uint32_t)n / 2;
    for (uint32_t i = 0; i < half; i++) CHECK_OK(mior_pkt_release(&pk[i]));
    CHECK_OK(mior_pkt_release_bulk(pk + half, (uint32_t)n - half));
  }
}

static void body_same(const tt_variant *v) {
  /* Two pairs: a in callback form, b in pull form, each sent the same payloads. */
  tt_rx ra, rb;
  tt_rx_init(&ra, N_SAME);
  tt_rx_init(&rb, N_SAME);
  mior_receiver recv = tt_receiver(&ra);
  mior_options oa = tt_vopts(v), ob = tt_vopts(v), ta = tt_vopts(v), tb = tt_vopts(v);
  ta.flags |= MIOR_OPT_NO_RX;
  tb.flags |= MIOR_OPT_NO_RX;
  mior_transport *rxa, *txa, *rxb, *txb;
  tt_open_udp_pair(v, "127.0.0.1", &oa, &recv, &rxa, &ta, NULL, &txa, 0);
  tt_open_udp_pair(v, "127.0.0.1", &ob, NULL, &rxb, &tb, NULL, &txb, 0);
  mior_port *pa = mior_transport_port(rxa, 0), *pb = mior_transport_port(rxb, 0);
  mior_addr da = tt_local(rxa), db = tt_local(rxb);
  for (uint32_t seq = 0; seq < N_SAME; seq += WINDOW) {
    uint32_t n = N_SAME - seq < WINDOW ? N_SAME - seq : WINDOW;
    CHECK_EQ(send_some(mior_transport_port(txa, 0), v->connected ? NULL : &da, seq, n), n);
    CHECK_EQ(send_some(mior_transport_port(txb, 0), v->connected ? NULL : &db, seq, n), n);
    int64_t end = tt_now_ms() + 3000;
    while (ra.got < seq + n && tt_now_ms() < end) mior_port_poll(pa, 0, 1000);
    pull_into(pb, &rb, seq + n, 3000);
    if (ra.got < seq + n || rb.got < seq + n) break;
  }
  TT_CHECK_TALLY(&ra);
  TT_CHECK_TALLY(&rb);
  CHECK_EQ(ra.bytes, rb.bytes);
  for (uint32_t i = 0; i < N_SAME; i++)
    if (ra.seen[i] != rb.seen[i]) {
      TEST_FAIL_AT("seq %u: callback %u, pull %u", i, ra.seen[i], rb.seen[i]);
      break;
    }
  mior_port_stats sa, sb;
  CHECK_OK(mior_port_stats_get(pa, &sa));
  CHECK_OK(mior_port_stats_get(pb, &sb));
  CHECK_EQ(sa.rx_packets, sb.rx_packets);
  CHECK_EQ(sa.rx_bytes, sb.rx_bytes);
  CHECK_EQ(sb.rx_packets, N_SAME);
  CHECK_EQ(sb.user_held, 0);
  TT_CHECK_POOL_RETURNED(rxa);
  TT_CHECK_POOL_RETURNED(rxb);
  CHECK_EQ(mior_transport_close(txa), 0);
  CHECK_EQ(mior_transport_close(txb), 0);
  CHECK_EQ(mior_transport_close(rxa), 0);
  CHECK_EQ(mior_transport_close(rxb), 0);
  tt_rx_free(&ra);
  tt_rx_free(&rb);
}

/* All or nothing, and transmit slots too. */
static void body_bulk_rules(const tt_variant *v) {
  mior_options o = tt_vopts(v), ot = tt_vopts(v);
  ot.flags |= MIOR_OPT_NO_RX;
  mior_transport *rx, *tx;
  tt_open_udp_pair(v, "127.0.0.1", &o, NULL, &rx, &ot, NULL, &tx, 0);
  mior_port *p = mior_transport_port(rx, 0), *tp = mior_transport_port(tx, 0);
  mior_addr d = tt_local(rx);
  CHECK_EQ(send_some(tp, v->connected ? NULL : &d, 0, 8), 8);
  mior_pkt pk[16];
  uint32_t got = 0;
  int64_t end = tt_now_ms() + 3000;
  while (got < 8 && tt_now_ms() < end) {
    int n = mior_rx_burst(p, pk + got, 8 - got);
    REQUIRE(n >= 0);
    got += (uint32_t)n;
  }
  REQUIRE(got == 8);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 8);
  CHECK_EQ(mior_rx_burst(p, pk, 0), 0);
  CHECK_ERR(mior_rx_burst(p, NULL, 4), -EINVAL);
  CHECK_ERR(mior_rx_burst(NULL, pk, 4), -EINVAL);
  CHECK_EQ(mior_pkt_release_bulk(NULL, 0), 0);
  CHECK_ERR(mior_pkt_release_bulk(NULL, 3), -EINVAL);

  /* A packet twice in one bulk: refused, nothing released. */
  pk[8] = pk[2];
  CHECK_ERR(mior_pkt_release_bulk(pk, 9), -EINVAL);
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 8);
  /* A stale copy (an older generation of slot 0): refused, nothing released. */
  mior_pkt stale = pk[0];
  stale.gen--;
  mior_pkt mix[3] = {pk[1], stale, pk[3]};
  CHECK_ERR(mior_pkt_release_bulk(mix, 3), -EINVAL);
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 8);
  /* One released singly, then in a bulk: refused, nothing released. */
  CHECK_OK(mior_pkt_release(&pk[7]));
  CHECK_ERR(mior_pkt_release_bulk(pk + 4, 4), -EINVAL);
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 7);
  /* The rest, in two bulks; then the same again is refused. */
  CHECK_OK(mior_pkt_release_bulk(pk, 4));
  CHECK_OK(mior_pkt_release_bulk(pk + 4, 3));
  CHECK_ERR(mior_pkt_release_bulk(pk, 1), -EINVAL);
  CHECK_ERR(mior_pkt_release(&pk[5]), -EINVAL);
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 0);

  /* Transmit slots, and a bulk over two ports (rx's and tx's). */
  mior_pkt t[4];
  CHECK_OK(mior_tx_acquire(tp, &t[0]));
  CHECK_OK(mior_tx_acquire(tp, &t[1]));
  CHECK_OK(mior_tx_acquire(p, &t[2]));
  CHECK_OK(mior_tx_acquire(tp, &t[3]));
  CHECK_OK(mior_pkt_release_bulk(t, 4));
  TT_CHECK_POOL_RETURNED(tx);
  TT_CHECK_POOL_RETURNED(rx);
  /* The returned slots are the port's again: many acquire/bulk rounds never run dry. */
  for (int round = 0; round < 200; round++) {
    mior_pkt b[16];
    uint32_t k = 0;
    while (k < 16 && mior_tx_acquire(tp, &b[k]) == 0) k++;
    CHECK_EQ(k, 16);
    CHECK_OK(mior_pkt_release_bulk(b, k));
    mior_port_poll(tp, 0, 0);
  }
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
}

/* The driving thread pulls; another thread gives the packets back in bulk. */
typedef struct handoff {
  mior_pkt q[1024];
  _Atomic uint32_t head, tail; /* single producer (driver), single consumer (worker) */
  atomic_int stop;
  uint32_t released;
} handoff;

static void *worker(void *arg) {
  handoff *h = arg;
  mior_pkt batch[BURST];
  for (;;) {
    uint32_t t = atomic_load_explicit(&h->tail, memory_order_relaxed);
    uint32_t hd = atomic_load_explicit(&h->head, memory_order_acquire);
    if (t == hd) {
      if (atomic_load(&h->stop)) break;
      test_thread_yield();
      continue;
    }
    uint32_t k = 0;
    while (t != hd && k < BURST) batch[k++] = h->q[t++ % 1024];
    atomic_store_explicit(&h->tail, t, memory_order_release);
    if (mior_pkt_release_bulk(batch, k) == 0) h->released += k;
  }
  return NULL;
}

static void body_thread(const tt_variant *v) {
  mior_options o = tt_vopts(v), ot = tt_vopts(v);
  o.buf_count = 512; /* small: the port receives only as fast as the worker gives slots back */
  o.rx_depth = 128;
  ot.flags |= MIOR_OPT_NO_RX;
  mior_transport *rx, *tx;
  tt_open_udp_pair(v, "127.0.0.1", &o, NULL, &rx, &ot, NULL, &tx, 0);
  mior_port *p = mior_transport_port(rx, 0), *tp = mior_transport_port(tx, 0);
  mior_addr d = tt_local(rx);
  static handoff h;
  memset(&h, 0, sizeof h);
  test_thread th;
  REQUIRE(test_thread_start(&th, worker, &h) == 0);
  tt_rx r;
  tt_rx_init(&r, N_THREAD);
  int64_t end = tt_now_ms() + 20000;
  for (uint32_t seq = 0; seq < N_THREAD && tt_now_ms() < end; seq += WINDOW) {
    uint32_t win = N_THREAD - seq < WINDOW ? N_THREAD - seq : WINDOW;
    CHECK_EQ(send_some(tp, v->connected ? NULL : &d, seq, win), win);
    int64_t wend = tt_now_ms() + 3000;
    while (r.got < seq + win && tt_now_ms() < wend) {
      mior_pkt pk[BURST];
      uint32_t room = 1024 - (atomic_load(&h.head) - atomic_load(&h.tail));
      int n = mior_rx_burst(p, pk, room < BURST ? room : BURST);
      REQUIRE(n >= 0);
      for (int i = 0; i < n; i++) {
        uint32_t seq2;
        if (tt_check(pk[i].data, pk[i].len, &seq2) == 0 && seq2 < N_THREAD && !r.seen[seq2]) {
          r.seen[seq2] = 1;
          r.got++;
        } else {
          r.bad++;
        }
        uint32_t hd = atomic_load_explicit(&h.head, memory_order_relaxed);
        h.q[hd % 1024] = pk[i];
        atomic_store_explicit(&h.head, hd + 1, memory_order_release);
      }
    }
    if (r.got < seq + win) break;
  }
  atomic_store(&h.stop, 1);
  test_thread_join(&th);
  CHECK_EQ(r.got, N_THREAD);
  CHECK_EQ(r.bad, 0);
  CHECK_EQ(h.released, N_THREAD);
  mior_port_poll(p, 0, 0); /* takes the returned slots back */
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

/* The event handle: available on the Linux backends and on Winsock, refused with -EOPNOTSUPP and
 * a reason on IoRing.  Per-packet metadata: available on the Linux backends, refused with
 * -EOPNOTSUPP and a reason (nothing opened) on the Windows ones (Winsock, IoRing). */
#ifdef _WIN32
static const int linux_backends = 0;
#else
static const int linux_backends = 1;
#endif

static void body_support(const tt_variant *v) {
  int has = linux_backends;
  mior_options o = tt_vopts(v);
  mior_transport *t = NULL;
  tt_open_udp_self(v, "127.0.0.1", &o, NULL, &t);
  mior_port *p = mior_transport_port(t, 0);
  mior_handle h = -1;
  int rc = mior_port_event_handle(p, &h);
  if (has || v->backend == MIOR_BACKEND_SOCKETS) {
    CHECK_OK(rc);
    CHECK_OK(mior_port_run_ready(p, 0));
  } else {
    CHECK_ERR(rc, -EOPNOTSUPP);
    CHECK(strstr(mior_last_error(), "event handle") != NULL);
    CHECK_EQ(mior_port_run_ready(p, 0), 0); /* the work call itself works everywhere */
  }
  /* Metadata: every Linux backend and Windows' sockets backend have it; ioring refuses it as
   * unsupported (a send: nothing sent; an open: no transport). */
  int meta = has || v->backend == MIOR_BACKEND_SOCKETS;
  mior_pkt pk;
  REQUIRE_OK(mior_tx_acquire(p, &pk));
  pk.flags = MIOR_PKT_ECN;
  pk.ecn = 2;
  mior_addr self = tt_local(t);
  rc = mior_tx_send(p, &pk, 4, v->connected ? NULL : &self);
  if (meta) CHECK_OK(rc);
  else CHECK_ERR(rc, -EOPNOTSUPP);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
  mior_options om = tt_vopts(v);
  om.flags |= MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN;
  t = NULL;
  char ep[64];
  snprintf(ep, sizeof ep, "udp://127.0.0.1:0");
  if (v->connected) om.peer = "127.0.0.1:9";
  rc = mior_transport_open(&t, ep, &om, NULL);
  if (meta) {
    CHECK_OK(rc);
  } else {
    CHECK_ERR(rc, -EOPNOTSUPP);
    CHECK(t == NULL);
  }
  if (t) CHECK_EQ(mior_transport_close(t), 0);
}

/* A pull port (no consume) that is also polled, with and without a timeout, and run_ready'd
 * between its bursts: the polls leave every packet for mior_rx_burst.  Before the port was first
 * pulled from, a poll drops what it receives (a transmitter's rule); after, nothing is lost. */
static void body_poll_keeps(const tt_variant *v) {
  enum { N = 200 };
  tt_rx r;
  tt_rx_init(&r, N);
  mior_options orx = tt_vopts(v), otx = tt_vopts(v);
  otx.flags |= MIOR_OPT_NO_RX;
  mior_transport *rx, *tx;
  tt_open_udp_pair(v, "127.0.0.1", &orx, NULL, &rx, &otx, NULL, &tx, 0);
  mior_port *p = mior_transport_port(rx, 0);
  mior_addr d = tt_local(rx);
  mior_pkt pk[BURST];
  CHECK_EQ(mior_rx_burst(p, pk, BURST), 0); /* the port is a pull port from here */
  int64_t end = tt_now_ms() + 5000;
  for (uint32_t seq = 0; seq < N && tt_now_ms() < end; seq += 10) {
    CHECK_EQ(send_some(mior_transport_port(tx, 0), v->connected ? NULL : &d, seq, 10), 10);
    /* Whatever arrives meanwhile is reaped by these calls, and must wait for the next burst. */
    for (int i = 0; i < 3; i++) {
      CHECK(mior_port_poll(p, 0, 2000) >= 0);
      CHECK(mior_port_run_ready(p, 0) >= 0);
    }
    pull_into(p, &r, seq + 10, 3000);
  }
  TT_CHECK_TALLY(&r);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.rx_packets, N);
  TT_CHECK_POOL_RETURNED(rx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

static const tt_test tests[] = {
    {"a pull port that is polled loses nothing", body_poll_keeps, TT_AS_IS},
    {"pull and callback deliver the same packets", body_same, TT_AS_IS},
    {"bulk release is all or nothing", body_bulk_rules, TT_AS_IS},
    {"bulk release from another thread", body_thread, TT_AS_IS},
    {"event handle and metadata where the backend has them", body_support, TT_AS_IS},
};

int main(void) {
  tt_watchdog(110);
  if (!tt_run(tests, sizeof tests / sizeof tests[0])) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
