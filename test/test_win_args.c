/* The argument rules in which Windows answers differently from Linux, on the Winsock backend
 * (with and without skip-on-success; IoRing cannot open an unconnected udp:// socket at all):
 * packet:// is not available without a driver, an IPv6 peer on an IPv4 socket is refused at open,
 * and on an unconnected socket a send with no destination (-EDESTADDRREQ) or to an IPv6 address
 * (-EAFNOSUPPORT) is refused by mior_tx_send itself and counted in tx_invalid, as the caller's
 * mistake rather than the network's.  (udp queues > 1, which Windows refuses, is a variant field
 * that test_transport_udp checks; the front end's own argument checks are the same on every
 * system, and test_transport_args covers them.)  The body ends with mior_transport_close
 * returning 0: the pool came back whole.
 */
#include "transport_win.h"

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

static void body_args(const tt_variant *v) {
  mior_options o = tt_vopts(v);
  o.buf_count = 1024;
  expect_fail("packet://eth0", &o, -EOPNOTSUPP, "not available on Windows");
  expect_fail("udp://127.0.0.1:x", &o, -EINVAL, NULL);
  expect_fail("bogus://1.2.3.4", &o, -EINVAL, NULL);
  o.peer = "[::1]:9";
  expect_fail("udp://127.0.0.1:0", &o, -EINVAL, "IPv6");
  o.peer = NULL;
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

/* The Winsock variants only: these are the unconnected-socket rules, which IoRing has no use for. */
static const tt_config winsock[] = {{"", MIOR_BACKEND_SOCKETS, 0, 0, 0}};

static const tt_test tests[] = {
    {"bad arguments", body_args, TT_CONFIGS(winsock)},
};

int main(void) {
  tt_watchdog(30);
  if (!tt_run(tests, sizeof tests / sizeof tests[0])) TEST_SKIP("the Winsock backend is not supported here");
  TEST_DONE();
}
