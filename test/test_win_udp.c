/* UDP on loopback through the Windows backends, the same checks the Linux transport suite makes:
 * the sockets backend (overlapped Winsock + completion port) everywhere, including under Wine in
 * the cross build, and the ioring backend too where Windows has IoRing (Windows 11, Server 2025).
 * IoRing has no address fields, so in that run every transport is connected to its peer
 * (options.peer) and sends go to that peer only:
 *   - sequence-numbered payloads of varying size go from one transport to another (IPv4, IPv6)
 *     and all arrive once, intact, from the sender's address; the counters match exactly;
 *   - a connected sender (options.peer) sends without a destination;
 *   - bad arguments and unsupported kinds fail with the documented errno and a message.
 * Every test ends with mior_transport_close returning 0: the pool came back whole.  The
 * bad-argument body checks Winsock's unconnected-socket rules and runs on the sockets backend only.
 * The payloads, the tally receiver, the paced pump and the pool check are the Linux suite's own
 * (transport_portable.h), so a payload or a tally means the same thing on both systems.
 */
#include <windows.h>

#include "transport_win.h"

/* The backend every body runs on: sockets, then ioring where it is supported. */
static mior_backend backend = MIOR_BACKEND_SOCKETS;

static mior_options opts(void) {
  mior_options o = tt_opts(backend);
  o.buf_count = 1024;
  return o;
}

/* A UDP port on host that was free a moment ago (opened and closed through the sockets backend). */
static uint16_t free_port(const char *host) {
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
    mior_addr dst = tt_local(*rx);
    REQUIRE_OK(mior_addr_format(&dst, peer_tx, sizeof peer_tx));
    otx->peer = peer_tx;
  }
  REQUIRE_OK(mior_transport_open(tx, ep_rx, otx, NULL));
}

/* --- bodies ------------------------------------------------------------------------------------ */

static void body_transfer(const char *host, uint32_t count) {
  tt_rx t;
  tt_rx_init(&t, count);
  mior_options o = opts();
  mior_receiver recv = tt_receiver(&t);
  mior_transport *rx = NULL, *tx = NULL;
  mior_options ot = opts();
  ot.flags |= MIOR_OPT_NO_RX;
  open_pair(host, &o, &recv, &rx, &ot, &tx, 0);
  CHECK_EQ(mior_port_backend(mior_transport_port(rx, 0)), backend);
  mior_addr dst = tt_local(rx), src = tt_local(tx);
  CHECK(dst.port != 0 && src.port != 0 && dst.port != src.port);
  t.check_src = 1;
  t.want_src = src;
  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  tt_span span = {0, 1400};
  tt_pump_result pr = tt_pump(txp, &t, &rxp, 1, count, 128, &dst, tt_build_payload, &span, 30000);
  tt_drain_tx(txp, pr.sent, 2000);
  tt_poll_for(&rxp, 1, 50); /* a duplicate would show up now */
  CHECK_EQ(pr.sent, count);
  TT_CHECK_TALLY(&t);
  printf("    %s: %u packets, %.1f MB in %lld ms\n", host, pr.sent, pr.sent_bytes / 1e6,
         (long long)(pr.elapsed_us / 1000));

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
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&t);
}

static void body_v4(void) { body_transfer("127.0.0.1", 5000); }
static void body_v6(void) { body_transfer("[::1]", 3000); }

static void body_peer(void) {
  tt_rx t;
  tt_rx_init(&t, 1000);
  mior_options o = opts();
  mior_receiver recv = tt_receiver(&t);
  mior_transport *rx = NULL, *tx = NULL;
  mior_options ot = opts();
  ot.flags |= MIOR_OPT_NO_RX;
  open_pair("127.0.0.1", &o, &recv, &rx, &ot, &tx, 1);
  t.check_src = 1;
  t.want_src = tt_local(tx);
  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  tt_span span = {0, 600};
  tt_pump_result pr = tt_pump(txp, &t, &rxp, 1, t.count, 128, NULL, tt_build_payload, &span, 20000);
  tt_drain_tx(txp, pr.sent, 2000);
  CHECK_EQ(pr.sent, t.count);
  TT_CHECK_TALLY(&t);
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&t);
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
  mior_addr self = tt_local(t);
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
  CHECK_EQ(st.tx_invalid, 4); /* the caller's mistakes (the four refusals above), not the network's */
  CHECK_EQ(st.tx_errors, 0);
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
      int64_t t0 = tt_now_ms();
      bodies[i].fn();
      printf("  %s [%s]: %s (%lld ms)\n", bodies[i].name, mname,
             test_failures == before ? "ok" : "FAILED", (long long)(tt_now_ms() - t0));
      fflush(stdout);
    }
  }
  TEST_DONE();
}
