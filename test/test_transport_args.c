/* Bad arguments, under every backend: each bad endpoint, option and call is refused with the
 * documented negative errno and a detail in mior_last_error() that names the bad part; nothing
 * crashes; and a transport that saw failed calls still moves packets afterwards.
 */
#include <net/if.h>

#include "transport_common.h"

typedef struct bad_ep {
  const char *ep;
  int err;
  const char *names; /* text the detail must contain (the bad part) */
} bad_ep;

static const bad_ep bad_eps[] = {
    {"udp://", -EINVAL, "udp://"},
    {"udp://1.2.3.4", -EINVAL, "1.2.3.4"},
    {"udp://1.2.3.4:99999", -EINVAL, "99999"},
    {"udp://1.2.3.4:x", -EINVAL, "x"},
    {"udp://no_host:1", -EINVAL, "no_host"}, /* not a host name: refused without the resolver */
    {"udp://1.2.3:1", -EINVAL, "1.2.3"},     /* digits and dots: a bad address, not a name */
    {"udp://[::1:9000", -EINVAL, "::1"},
    {"tcp://x", -EINVAL, "tcp"},
    {"x", -EINVAL, "x"},
    {"", -EINVAL, ""},
    {"packet://", -EINVAL, "packet://"},
    {"packet://nonexistent0", -ENODEV, "nonexistent0"},
    {"packet://averyveryverylongifname0", -EINVAL, "averyveryverylongifname0"},
    {"ip://1.2.3.4/bogus", -EINVAL, "bogus"},
    {"ip://1.2.3.4/", -EINVAL, "ip://1.2.3.4/"},
    {"ip://bad!/udp", -EINVAL, "bad!"},
};

static void check_detail(const char *what, const char *part) {
  const char *d = mior_last_error();
  if (!d || !d[0]) {
    TEST_FAIL_AT("%s: mior_last_error() is empty", what);
  } else if (part[0] && !strstr(d, part)) {
    TEST_FAIL_AT("%s: mior_last_error() '%s' does not name '%s'", what, d, part);
  }
}

static uint32_t build_small(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  (void)ctx;
  uint32_t len = tt_len_for(seq, TT_HDR, 100);
  tt_fill(buf, len, seq);
  return len;
}

static void body_endpoints(mior_backend b) {
  mior_options o = tt_opts(b);
  for (size_t i = 0; i < sizeof bad_eps / sizeof bad_eps[0]; i++) {
    mior_transport *t = (mior_transport *)(uintptr_t)1; /* must not be used or freed */
    int rc = mior_transport_open(&t, bad_eps[i].ep, &o, NULL);
    if (rc != bad_eps[i].err) {
      TEST_FAIL_AT("endpoint '%s' -> %d (%s), expected %d (%s); detail: %s", bad_eps[i].ep, rc,
                   mior_strerror(rc), bad_eps[i].err, mior_strerror(bad_eps[i].err),
                   mior_last_error());
      if (rc == 0) mior_transport_close(t);
      continue;
    }
    char what[96];
    snprintf(what, sizeof what, "endpoint '%s'", bad_eps[i].ep);
    check_detail(what, bad_eps[i].names);
  }
  mior_transport *t = NULL;
  CHECK_ERR(mior_transport_open(NULL, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  check_detail("NULL out", "");
  CHECK_ERR(mior_transport_open(&t, NULL, &o, NULL), -EINVAL);
  check_detail("NULL endpoint", "");
  CHECK(t == NULL);
}

static void body_options(mior_backend b) {
  mior_transport *t = NULL;
  mior_options o = tt_opts(b);
  o.sz = 0;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  check_detail("sz 0", "");
  o = tt_opts(b);
  o.buf_size = 1000;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  check_detail("buf_size 1000", "1000");
  o = tt_opts(b);
  o.buf_size = 1u << 20;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  check_detail("buf_size 1 MiB", "");
  o = tt_opts(b);
  o.queues = 100000;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  check_detail("queues 100000", "100000");
  o = tt_opts(b);
  o.backend = (mior_backend)99;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  check_detail("backend 99", "");
  o = tt_opts(b);
  o.peer = "not an address";
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  check_detail("peer", "not an address");
  o = tt_opts(b);
  o.backend = MIOR_BACKEND_IORING; /* Windows only */
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EOPNOTSUPP);
  check_detail("ioring on Linux", "");
  CHECK(t == NULL);

  /* queues 0 means the default (1). */
  o = tt_opts(b);
  o.queues = 0;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  CHECK_EQ(mior_transport_queues(t), 1);
  CHECK_EQ(mior_port_backend(mior_transport_port(t, 0)), b);
  CHECK_EQ(mior_transport_close(t), 0);
  /* NULL options mean the defaults. */
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", NULL, NULL));
  CHECK_EQ(mior_transport_close(t), 0);
}

/* The size rule of versioned options structs (src/common/opts.h): an older caller's smaller
 * struct is read only as far as its sz, a newer caller's larger one is accepted while the fields
 * this library does not know are zero, and refused when one of them is set. */
static void body_option_sizes(mior_backend b) {
  mior_transport *t = NULL;
  mior_options o = tt_opts(b);
  o.sz = offsetof(mior_options, backend) + sizeof o.backend;
  o.buf_size = 1000;  /* invalid, but beyond sz: must be ignored */
  o.queues = 100000;  /* ditto */
  o.peer = "bogus";   /* ditto */
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  CHECK_EQ(mior_transport_queues(t), 1);
  CHECK_EQ(mior_port_backend(mior_transport_port(t, 0)), b);
  CHECK_EQ(mior_transport_close(t), 0);

  struct {
    mior_options o;
    uint64_t future;
  } big;
  memset(&big, 0, sizeof big);
  mior_options_init(&big.o);
  big.o.backend = b;
  big.o.sz = sizeof big;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &big.o, NULL));
  CHECK_EQ(mior_transport_close(t), 0);
  big.future = 1;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &big.o, NULL), -EINVAL);
  check_detail("a non-zero unknown field", "does not know");
  CHECK(t == NULL);
}

/* Failed calls on a live transport, then proof that it still works. */
static void body_calls(mior_backend b) {
  tt_rx r;
  tt_rx_init(&r, 200);
  mior_receiver recv = tt_receiver(&r);
  mior_options o = tt_opts(b);
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &recv));
  mior_port *p = mior_transport_port(t, 0);
  REQUIRE(p != NULL);
  mior_addr self = tt_local(t);
  r.check_src = 1;
  r.want_src = self;

  CHECK_ERR(mior_port_poll(NULL, 0, 0), -EINVAL);
  CHECK_ERR(mior_tx_acquire(NULL, NULL), -EINVAL);
  CHECK_ERR(mior_tx_acquire(p, NULL), -EINVAL);
  CHECK_ERR(mior_tx_send(NULL, NULL, 0, NULL), -EINVAL);
  CHECK_ERR(mior_tx_send(p, NULL, 10, &self), -EINVAL);
  CHECK_ERR(mior_tx_flush(NULL), -EINVAL);
  CHECK_ERR(mior_pkt_release(NULL), -EINVAL);
  CHECK_ERR(mior_port_stats_get(NULL, NULL), -EINVAL);
  CHECK_ERR(mior_port_stats_get(p, NULL), -EINVAL);
  CHECK_ERR(mior_transport_stats_get(NULL, NULL), -EINVAL);
  CHECK_ERR(mior_port_local_addr(NULL, NULL), -EINVAL);
  CHECK_ERR(mior_transport_start(NULL), -EINVAL);
  CHECK_ERR(mior_transport_stop(NULL), -EINVAL);
  CHECK_EQ(mior_transport_close(NULL), 0);
  CHECK(mior_transport_port(NULL, 0) == NULL);
  CHECK(mior_transport_port(t, 1) == NULL);
  CHECK_EQ(mior_transport_queues(NULL), 0);
  CHECK_EQ(mior_transport_stop(t), 0); /* not started */

  /* len > cap: refused, and the slot still goes back (the port owns it from tx_send on). */
  mior_pkt pkt;
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  CHECK(pkt.cap >= 1500 && pkt.data != NULL);
  CHECK_ERR(mior_tx_send(p, &pkt, pkt.cap + 1, &self), -EINVAL);
  check_detail("len > cap", "");
  /* A packet with a forged slot is refused too. */
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  mior_pkt forged = pkt;
  forged.slot = 0xfffffff0u;
  CHECK_ERR(mior_pkt_release(&forged), -EINVAL);
  CHECK_OK(mior_pkt_release(&pkt)); /* unused transmit slot given back */
  CHECK_ERR(mior_pkt_release(&pkt), -EINVAL);
  /* An IPv6 destination on an IPv4 socket cannot be sent to; the slot still comes back. */
  mior_addr v6;
  REQUIRE_OK(mior_addr_parse(&v6, "[::1]:9"));
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  tt_fill(pkt.data, 64, 0);
  int rc = mior_tx_send(p, &pkt, 64, &v6);
  if (rc == 0) {
    /* Accepted for later: the failure must then show as a send error. */
    int64_t dl = tt_now_ms() + 1000;
    mior_port_stats st;
    do {
      mior_port_poll(p, 0, 1000);
      mior_port_stats_get(p, &st);
    } while (st.tx_errors == 0 && tt_now_ms() < dl);
    CHECK_EQ(st.tx_errors, 1);
  } else {
    CHECK(rc < 0);
  }
  /* No destination on an unconnected UDP socket. */
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  tt_fill(pkt.data, 64, 0);
  rc = mior_tx_send(p, &pkt, 64, NULL);
  if (rc == 0) {
    int64_t dl = tt_now_ms() + 1000;
    mior_port_stats st;
    do {
      mior_port_poll(p, 0, 1000);
      mior_port_stats_get(p, &st);
    } while (st.tx_errors < 2 && tt_now_ms() < dl);
    CHECK(st.tx_errors >= 1);
  } else {
    CHECK(rc < 0);
  }
  mior_port_poll(p, 0, 1000);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.tx_packets, 0);

  /* Still usable: the transport sends to itself and receives everything. */
  tt_pump_result pr = tt_pump(p, &r, &p, 1, r.count, 32, &self, build_small, NULL, 5000);
  tt_drain_tx(p, pr.sent + st.tx_errors, 1000);
  CHECK_EQ(pr.sent, r.count);
  TT_CHECK_TALLY(&r);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
  tt_rx_free(&r);
}

/* Names, parsing, the support probe. */
static void check_misc(void) {
  mior_backend b;
  CHECK_OK(mior_backend_parse("uring", &b));
  CHECK_EQ(b, MIOR_BACKEND_URING);
  CHECK_OK(mior_backend_parse("sockets", &b));
  CHECK_EQ(b, MIOR_BACKEND_SOCKETS);
  CHECK_OK(mior_backend_parse("auto", &b));
  CHECK_EQ(b, MIOR_BACKEND_AUTO);
  CHECK_ERR(mior_backend_parse("bogus", &b), -EINVAL);
  CHECK_ERR(mior_backend_parse(NULL, &b), -EINVAL);
  CHECK_ERR(mior_backend_parse("uring", NULL), -EINVAL);
  CHECK(strcmp(mior_backend_name(MIOR_BACKEND_SOCKETS), "sockets") == 0);
  CHECK(mior_backend_name((mior_backend)77) != NULL);
  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_SOCKETS), 1);
  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_IORING), 0);
  CHECK(mior_last_error()[0] != '\0');
  CHECK_EQ(mior_backend_supported((mior_backend)99), 0);
  char buf[256];
  CHECK_OK(mior_features_format(MIOR_FEAT_REG_BUFFERS | MIOR_FEAT_FALLBACK, buf, sizeof buf));
  CHECK(strlen(buf) > 0 && strchr(buf, ',') != NULL);
  CHECK(mior_features_format(MIOR_FEAT_REG_BUFFERS | MIOR_FEAT_FALLBACK, buf, 2) < 0);
  CHECK_ERR(mior_features_format(0, NULL, 10), -EINVAL);
}

/* Host names in endpoints and peers resolve (numeric addresses stay the fast path).  "localhost"
 * comes from /etc/hosts, so this needs no DNS. */
static void body_host_names(mior_backend b) {
  mior_options o = tt_opts(b);
  o.buf_count = 256;
  o.peer = "localhost:9";
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://localhost:0", &o, NULL));
  mior_addr a = tt_local(t);
  CHECK(a.family == MIOR_AF_INET || a.family == MIOR_AF_INET6);
  CHECK(a.port != 0);
  if (a.family == MIOR_AF_INET) CHECK(a.addr[0] == 127);
  /* the peer resolved too: a send without a destination goes to localhost:9 */
  mior_port *p = mior_transport_port(t, 0);
  mior_pkt pkt;
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  CHECK_OK(mior_tx_send(p, &pkt, 8, NULL));
  CHECK_OK(mior_tx_flush(p));
  for (int i = 0; i < 3; i++) mior_port_poll(p, 0, 1000);
  CHECK_EQ(mior_transport_close(t), 0);
  /* A peer that is neither an address nor a name: refused, and the detail says so. */
  o.peer = "no_host:9";
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  check_detail("peer no_host:9", "no_host");
}

/* IPv6 scopes in address text parse and format both ways (an interface name is Linux's "lo"). */
static void scopes(void) {
  mior_addr a;
  char text[80];
  unsigned lo = if_nametoindex("lo");
  REQUIRE(lo > 0);
  CHECK_OK(mior_addr_parse(&a, "[fe80::1%lo]:53"));
  CHECK_EQ(a.family, MIOR_AF_INET6);
  CHECK_EQ(a.scope_id, lo);
  CHECK_EQ(a.port, 53);
  CHECK_OK(mior_addr_format(&a, text, sizeof text));
  CHECK(strcmp(text, "[fe80::1%lo]:53") == 0);
  CHECK_OK(mior_addr_parse(&a, "fe80::2%1"));
  CHECK_EQ(a.scope_id, 1);
  CHECK_EQ(a.port, 0);
  a.scope_id = 999999; /* no such interface: the number */
  CHECK_OK(mior_addr_format(&a, text, sizeof text));
  CHECK(strcmp(text, "[fe80::2%999999]:0") == 0);
  mior_addr b;
  CHECK_OK(mior_addr_parse(&b, text));
  CHECK_EQ(b.scope_id, 999999);
  CHECK_ERR(mior_addr_parse(&a, "[fe80::1%nosuchif0]:53"), -EINVAL);
  CHECK_ERR(mior_addr_parse(&a, "[fe80::1%]:53"), -EINVAL);
  CHECK_ERR(mior_addr_parse(&a, "127.0.0.1%lo:53"), -EINVAL);
  CHECK_ERR(mior_addr_format(&b, text, 12), -ENOSPC);
  printf("  scopes in address text: %s\n", test_failures ? "FAILED" : "ok");
}

int main(void) {
  tt_watchdog(60);
  check_misc();
  scopes();
  int ran = 0;
  ran += tt_for_each_backend("bad endpoints", body_endpoints);
  ran += tt_for_each_backend("bad options", body_options);
  ran += tt_for_each_backend("older and newer options structs", body_option_sizes);
  ran += tt_for_each_backend("bad calls, then still usable", body_calls);
  ran += tt_for_each_backend("host names in endpoints and peers", body_host_names);
  if (!ran) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
