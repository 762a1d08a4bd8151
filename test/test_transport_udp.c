/* UDP on loopback, under every variant: sequence-numbered payloads of varying size go from one
 * transport to another at a paced rate and must all arrive once, intact, from the sender's own
 * address; the statistics must count exactly what was sent and received; a connected peer works
 * without a destination; a started transport echoes from inside its receiver; and a two-queue
 * SO_REUSEPORT group spreads many flows over both ports without losing or duplicating any (where
 * the system has no such group, opening one is refused).  Under a connected variant (IoRing) the
 * two ends of each body are connected to each other.
 */
#include <stdatomic.h>

#include "transport_os.h"

#define N_V4 TT_BULK(20000)
#define N_V6 TT_BULK(10000)
#define N_CONFIG TT_BULK(3000)
#define WINDOW 128u

/* One direction, one address family (host "127.0.0.1" or "[::1]"): count packets from a fresh
 * sender to a fresh receiver. */
static void transfer(const tt_variant *v, const char *host, uint32_t count) {
  tt_rx r;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, host, &r, count, NULL, NULL, &rx, &tx, 0);
  CHECK_EQ(mior_port_backend(mior_transport_port(rx, 0)), v->backend);
  CHECK_EQ(mior_port_backend(mior_transport_port(tx, 0)), v->backend);

  mior_addr dst = tt_local(rx), src = tt_local(tx);
  CHECK(dst.port != 0 && src.port != 0 && dst.port != src.port);
  r.check_src = 1;
  r.want_src = src;

  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  tt_span span = {0, 1400};
  tt_pump_result pr =
      tt_pump(txp, &r, &rxp, 1, count, WINDOW, &dst, tt_build_payload, &span, 20000);
  tt_drain_tx(txp, pr.sent, 2000);
  tt_poll_for(&rxp, 1, 50); /* a duplicate would show up now */
  CHECK_EQ(pr.sent, count);
  TT_CHECK_TALLY(&r);
  if (r.got != count) {
    uint32_t first = 0;
    while (first < count && r.seen[first]) first++;
    fprintf(stderr, "  %s: %u of %u received; first missing seq %u\n", host, r.got, count, first);
  }
  mior_port_stats fs;
  char feat[200] = "";
  if (mior_transport_stats_get(rx, &fs) == 0) mior_features_format(fs.features, feat, sizeof feat);
  printf("    %s: %u packets, %.1f MB in %.1f ms (%.0f kpps) [%s]\n", host, pr.sent,
         pr.sent_bytes / 1e6, pr.elapsed_us / 1000.0,
         pr.elapsed_us ? pr.sent * 1000.0 / pr.elapsed_us : 0.0, feat);

  /* Statistics count exactly what went through. */
  mior_port_stats rs, ts;
  CHECK_OK(mior_transport_stats_get(rx, &rs));
  CHECK_OK(mior_transport_stats_get(tx, &ts));
  CHECK_EQ(rs.rx_packets, r.got + r.foreign);
  CHECK_EQ(rs.rx_bytes, r.bytes);
  CHECK_EQ(rs.rx_drop_truncated, 0);
  CHECK_EQ(rs.rx_errors, 0);
  CHECK_EQ(rs.rx_kept, 0);
  CHECK_EQ(ts.tx_packets, pr.sent);
  CHECK_EQ(ts.tx_bytes, pr.sent_bytes);
  CHECK_EQ(ts.tx_errors, 0);
  CHECK_EQ(ts.tx_short, 0);
  CHECK_EQ(ts.rx_packets, 0); /* NO_RX */
  CHECK_EQ(ts.tx_backpressure, pr.eagain);
  CHECK_EQ(rs.backend, v->backend);
  CHECK(rs.completions > 0);
  CHECK(ts.pool_high_water > 0);

  tt_close_oneway(rx, tx, &r);
}

/* ::1 exists unless the system has no IPv6 (Linux booted with ipv6.disable=1) or the loopback
 * interface lacks the address. */
static int have_ipv6_loopback(void) {
  mior_options o = tt_opts(MIOR_BACKEND_SOCKETS);
  o.buf_count = 16;
  mior_transport *t = NULL;
  if (mior_transport_open(&t, "udp://[::1]:0", &o, NULL) < 0) return 0;
  CHECK_EQ(mior_transport_close(t), 0);
  return 1;
}

static void body_v4(const tt_variant *v) { transfer(v, "127.0.0.1", N_V4); }

static void body_v6(const tt_variant *v) {
  if (!have_ipv6_loopback()) TT_RETURN_SKIP("no IPv6 loopback address here");
  transfer(v, "[::1]", N_V6);
}

/* The same transfer under each ring set-up the options can ask for (liburing's
 * FOR_ALL_TEST_CONFIGS idea); backends without a ring of that kind ignore the ring flags. */
static const tt_config ring_configs[] = {
    {"no-multishot", MIOR_BACKEND_AUTO, MIOR_OPT_NO_MULTISHOT, 0, 0},
    {"no-registered-buffers", MIOR_BACKEND_AUTO, MIOR_OPT_NO_REGISTERED_BUFFERS, 0, 0},
    {"no-defer-taskrun", MIOR_BACKEND_AUTO, MIOR_OPT_NO_DEFER_TASKRUN, 0, 0},
    {"all-off", MIOR_BACKEND_AUTO,
     MIOR_OPT_NO_MULTISHOT | MIOR_OPT_NO_REGISTERED_BUFFERS | MIOR_OPT_NO_DEFER_TASKRUN, 0, 0},
    {"sqpoll", MIOR_BACKEND_AUTO, MIOR_OPT_SQPOLL, 0, 0},
    {"busy-poll-50us", MIOR_BACKEND_AUTO, 0, 50, 0},
};

static void body_config(const tt_variant *v) { transfer(v, "127.0.0.1", N_CONFIG); }

/* The example's pattern: a started transport echoes from inside consume (tx_acquire/tx_send to
 * pkt->src) and flushes in flush; a client polling its own port gets every datagram back. */
static int echo_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  atomic_uint *fails = ctx;
  mior_pkt out;
  if (mior_tx_acquire(port, &out) < 0) {
    atomic_fetch_add(fails, 1);
    return MIOR_DONE;
  }
  memcpy(out.data, pkt->data, pkt->len);
  if (mior_tx_send(port, &out, pkt->len, &pkt->src) < 0) atomic_fetch_add(fails, 1);
  return MIOR_DONE;
}

static void echo_flush(void *ctx, mior_port *port) {
  atomic_uint *fails = ctx;
  if (mior_tx_flush(port) < 0) atomic_fetch_add(fails, 1);
}

static void body_echo(const tt_variant *v) {
  atomic_uint fails;
  atomic_init(&fails, 0);
  mior_receiver er = {echo_consume, echo_flush, &fails};
  mior_options o = tt_vopts(v), oc = tt_vopts(v);
  mior_transport *srv = NULL, *cli = NULL;
  tt_rx r;
  tt_rx_init(&r, 3000);
  mior_receiver cr = tt_receiver(&r);
  tt_open_udp_pair(v, "127.0.0.1", &o, &er, &srv, &oc, &cr, &cli, 0);
  REQUIRE_OK(mior_transport_start(srv));
  mior_addr dst = tt_local(srv);
  r.check_src = 1;
  r.want_src = dst; /* the echo comes from the server's address */
  mior_port *cp = mior_transport_port(cli, 0);
  tt_span span = {0, 1200};
  tt_pump_result pr = tt_pump(cp, &r, &cp, 1, r.count, 64, &dst, tt_build_payload, &span, 10000);
  tt_poll_for(&cp, 1, 30);
  CHECK_EQ(pr.sent, r.count);
  TT_CHECK_TALLY(&r);
  CHECK_OK(mior_transport_stop(srv));
  CHECK_EQ(atomic_load(&fails), 0);
  mior_port_stats ss;
  CHECK_OK(mior_transport_stats_get(srv, &ss));
  CHECK_EQ(ss.rx_packets, r.count);
  CHECK_EQ(ss.tx_packets, r.count);
  CHECK_EQ(ss.tx_bytes, ss.rx_bytes);
  TT_CHECK_POOL_RETURNED(srv);
  TT_CHECK_POOL_RETURNED(cli);
  CHECK_EQ(mior_transport_close(cli), 0);
  CHECK_EQ(mior_transport_close(srv), 0);
  tt_rx_free(&r);
}

/* A connected sender (opts.peer) sends with dst NULL; the receiver sees it as the source. */
static void body_peer(const tt_variant *v) {
  tt_rx r;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, "127.0.0.1", &r, 2000, NULL, NULL, &rx, &tx, 1);
  r.check_src = 1;
  r.want_src = tt_local(tx);
  mior_port *rxp = mior_transport_port(rx, 0);
  tt_span span = {0, 600};
  tt_pump_result pr = tt_pump(mior_transport_port(tx, 0), &r, &rxp, 1, r.count, WINDOW, NULL,
                              tt_build_payload, &span, 10000);
  tt_drain_tx(mior_transport_port(tx, 0), pr.sent, 2000);
  CHECK_EQ(pr.sent, r.count);
  TT_CHECK_TALLY(&r);
  tt_close_oneway(rx, tx, &r);
}

/* queues=2: one SO_REUSEPORT group.  16 senders (16 source ports, so 16 flows for the kernel's
 * hash) send 500 packets each; both ports must see traffic, each flow must land on one port only,
 * and the total must match.  Where the system has no load-balancing SO_REUSEPORT (Windows), open
 * refuses queues > 1 and says why. */
#define FLOWS 16
#define PER_FLOW 500u

typedef struct flow_ctx {
  uint32_t flow;
} flow_ctx;

static uint32_t build_flow(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  flow_ctx *f = ctx;
  uint32_t gseq = f->flow * PER_FLOW + seq;
  uint32_t len = tt_len_for(gseq, TT_HDR, 300);
  if (len > cap) len = cap;
  tt_fill(buf, len, gseq);
  return len;
}

static void body_queues(const tt_variant *v) {
  tt_rx r;
  tt_rx_init(&r, FLOWS * PER_FLOW);
  mior_options o = tt_vopts(v);
  o.queues = 2;
  o.buf_count = 1024;
  mior_receiver recv = tt_receiver(&r);
  mior_transport *rx = NULL;
  if (!v->reuseport) {
    rx = (mior_transport *)&rx; /* must be reset to NULL */
    CHECK_ERR(mior_transport_open(&rx, "udp://127.0.0.1:0", &o, &recv), -EOPNOTSUPP);
    CHECK(rx == NULL);
    CHECK(strstr(mior_last_error(), "SO_REUSEPORT") != NULL);
    tt_rx_free(&r);
    return;
  }
  REQUIRE_OK(mior_transport_open(&rx, "udp://127.0.0.1:0", &o, &recv));
  REQUIRE(mior_transport_queues(rx) == 2);
  mior_port *ports[2] = {mior_transport_port(rx, 0), mior_transport_port(rx, 1)};
  REQUIRE(ports[0] && ports[1]);
  CHECK(mior_transport_port(rx, 2) == NULL);
  mior_addr a0, a1;
  CHECK_OK(mior_port_local_addr(ports[0], &a0));
  CHECK_OK(mior_port_local_addr(ports[1], &a1));
  CHECK(tt_addr_eq(&a0, &a1)); /* one group, one address */
  r.nports = 2;
  r.ports[0] = ports[0];
  r.ports[1] = ports[1];

  uint32_t flow_port[FLOWS][2];
  memset(flow_port, 0, sizeof flow_port);
  for (uint32_t f = 0; f < FLOWS; f++) {
    mior_options ot = tt_vopts(v);
    ot.flags |= MIOR_OPT_NO_RX;
    ot.buf_count = 256;
    mior_transport *tx = NULL;
    REQUIRE_OK(mior_transport_open(&tx, "udp://127.0.0.1:0", &ot, NULL));
    uint32_t before[2] = {r.per_port[0], r.per_port[1]};
    flow_ctx fc = {f};
    uint32_t got0 = r.got;
    tt_pump_result pr = tt_pump(mior_transport_port(tx, 0), &r, ports, 2, PER_FLOW, 64, &a0,
                                build_flow, &fc, 10000);
    tt_drain_tx(mior_transport_port(tx, 0), pr.sent, 2000);
    CHECK_EQ(pr.sent, PER_FLOW);
    CHECK_EQ(r.got - got0, PER_FLOW);
    flow_port[f][0] = r.per_port[0] - before[0];
    flow_port[f][1] = r.per_port[1] - before[1];
    /* The group hashes a flow (4-tuple) to one socket. */
    CHECK(flow_port[f][0] == 0 || flow_port[f][1] == 0);
    TT_CHECK_POOL_RETURNED(tx);
    CHECK_EQ(mior_transport_close(tx), 0);
  }
  tt_poll_for(ports, 2, 50);
  TT_CHECK_TALLY(&r);
  printf("    queues=2: port 0 got %u, port 1 got %u packets from %d flows\n", r.per_port[0],
         r.per_port[1], FLOWS);
  CHECK(r.per_port[0] > 0);
  CHECK(r.per_port[1] > 0);
  CHECK_EQ(r.per_port[0] + r.per_port[1], FLOWS * PER_FLOW);
  mior_port_stats s0, s1, sum;
  CHECK_OK(mior_port_stats_get(ports[0], &s0));
  CHECK_OK(mior_port_stats_get(ports[1], &s1));
  CHECK_OK(mior_transport_stats_get(rx, &sum));
  CHECK_EQ(s0.rx_packets, r.per_port[0]);
  CHECK_EQ(s1.rx_packets, r.per_port[1]);
  CHECK_EQ(sum.rx_packets, s0.rx_packets + s1.rx_packets);
  CHECK_EQ(sum.rx_bytes, r.bytes);
  TT_CHECK_POOL_RETURNED(rx);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

/* AUTO picks the build's preferred backend (io_uring on Linux, IoRing on Windows) when it is
 * there, and says it did not fall back; otherwise it falls back to sockets and says why. */
static void check_auto(void) {
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", NULL, NULL));
  mior_port_stats st;
  CHECK_OK(mior_transport_stats_get(t, &st));
  char feat[256] = "";
  CHECK_OK(mior_features_format(st.features, feat, sizeof feat));
  mior_backend preferred = mior__backends[0]->id;
  if (preferred == MIOR_BACKEND_IORING && mior_backend_supported(preferred) == 1) {
    /* IoRing cannot address datagrams: AUTO gives an unconnected socket to Winsock, and says so. */
    CHECK_EQ(st.backend, MIOR_BACKEND_SOCKETS);
    CHECK(st.features & MIOR_FEAT_FALLBACK);
    CHECK(strstr(st.fallback_reason, "options.peer") != NULL);
  } else if (mior_backend_supported(preferred) == 1) {
    CHECK_EQ(st.backend, preferred);
    CHECK(!(st.features & MIOR_FEAT_FALLBACK));
    CHECK(st.fallback_reason[0] == '\0');
  } else {
    CHECK_EQ(st.backend, MIOR_BACKEND_SOCKETS);
    CHECK(st.features & MIOR_FEAT_FALLBACK);
    CHECK(st.fallback_reason[0] != '\0');
  }
  printf("  auto: %s, features: %s\n", mior_backend_name(st.backend), feat);
  CHECK_EQ(mior_transport_close(t), 0);
}

static const tt_test tests[] = {
    {"udp ipv4 loopback", body_v4, TT_AS_IS},
    {"udp ipv6 loopback", body_v6, TT_AS_IS},
    {"udp connected peer", body_peer, TT_AS_IS},
    {"udp ring configurations", body_config, TT_CONFIGS(ring_configs)},
    {"udp echo from a started transport", body_echo, TT_AS_IS},
    {"udp queues=2 reuseport", body_queues, TT_AS_IS},
};

int main(void) {
  tt_watchdog(110);
  check_auto();
  if (!tt_run(tests, sizeof tests / sizeof tests[0])) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
