/* Bad arguments at the public API: NULL, zero, huge and inconsistent values give -EINVAL (or the
 * documented error), never a crash, and leave the object usable: after every abuse the same pool,
 * transport and port still do real work (a datagram round trip) and close with 0. */
#include <sys/socket.h>

#include "transport_common.h"

#define BAD(call) CHECK_ERR(call, -EINVAL)

static void pool_badargs(void) {
  mior_pool *pool = NULL;
  BAD(mior_pool_create(NULL, NULL));
  mior_pool_options po;
  mior_pool_options_init(&po);
  po.buf_size = 1000; /* not a power of two */
  BAD(mior_pool_create(&pool, &po));
  po.buf_size = 1u << 20; /* above the maximum */
  BAD(mior_pool_create(&pool, &po));
  mior_pool_options_init(&po);
  po.buf_count = MIOR_POOL_MAX_BUF_COUNT + 1;
  BAD(mior_pool_create(&pool, &po));
  mior_pool_options_init(&po);
  po.flags = 0x80000000u;
  BAD(mior_pool_create(&pool, &po));
  mior_pool_options_init(&po);
  po.buf_count = 8;
  po.buf_size = 256;
  REQUIRE_OK(mior_pool_create(&pool, &po));
  uint32_t slot, slots[8];
  BAD(mior_pool_acquire(NULL, &slot));
  BAD(mior_pool_acquire(pool, NULL));
  BAD(mior_pool_acquire_bulk(NULL, slots, 1));
  BAD(mior_pool_acquire_bulk(pool, NULL, 1));
  BAD(mior_pool_release(NULL, 0));
  BAD(mior_pool_release(pool, 8));           /* out of range */
  BAD(mior_pool_release(pool, UINT32_MAX));
  BAD(mior_pool_release(pool, 0));           /* not owned */
  BAD(mior_pool_release_bulk(pool, NULL, 1));
  BAD(mior_pool_release_ptr(pool, NULL));
  BAD(mior_pool_release_ptr(pool, &slot));   /* not inside the region */
  BAD(mior_pool_region_get(NULL, NULL));
  BAD(mior_pool_stats_get(pool, NULL));
  /* Still usable: take everything, give it back, a double release refused, close clean. */
  CHECK_EQ(mior_pool_acquire_bulk(pool, slots, 8), 8);
  CHECK_OK(mior_pool_release_bulk(pool, slots, 8));
  BAD(mior_pool_release(pool, slots[0]));
  mior_pool_stats ps;
  CHECK_OK(mior_pool_stats_get(pool, &ps));
  CHECK_EQ(ps.in_use, 0);
  CHECK(ps.bad_releases >= 4);
  CHECK_OK(mior_pool_close(pool, NULL));
  CHECK_OK(mior_pool_close(NULL, NULL));
}

static void text_badargs(void) {
  mior_addr a;
  char buf[64];
  BAD(mior_addr_parse(NULL, "1.2.3.4"));
  BAD(mior_addr_parse(&a, NULL));
  const char *bad[] = {"", ":", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3", "[::1",
                       "[::1]:", "::1]:80", "999.1.1.1", "1.2.3.4:80x", "[1.2.3.4]:99999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = mior_addr_parse(&a, bad[i]);
    if (rc != -EINVAL) TEST_FAIL_AT("mior_addr_parse(\"%s\") -> %d", bad[i], rc);
  }
  CHECK_OK(mior_addr_parse(&a, "[::1]:9000"));
  BAD(mior_addr_format(NULL, buf, sizeof buf));
  BAD(mior_addr_format(&a, NULL, sizeof buf));
  CHECK(mior_addr_format(&a, buf, 0) < 0);
  CHECK_ERR(mior_addr_format(&a, buf, 4), -ENOSPC);
  mior_backend b;
  BAD(mior_backend_parse(NULL, &b));
  BAD(mior_backend_parse("uring", NULL));
  BAD(mior_backend_parse("URING ", &b));
  CHECK(strcmp(mior_backend_name((mior_backend)12345), "unknown") == 0);
  CHECK_EQ(mior_backend_supported((mior_backend)12345), 0);
  BAD(mior_features_format(0, NULL, 10));
  BAD(mior_features_format(0, buf, 0));
  CHECK_ERR(mior_features_format(0x1ff, buf, 8), -ENOSPC);
  CHECK(mior_strerror(0x7fffffff) != NULL && mior_strerror(-0x7fffffff) != NULL);
  BAD(mior_csum_select(NULL));
  BAD(mior_csum_select("fastest"));
  CHECK_OK(mior_csum_select("auto"));
}

static void proto_badargs(void) {
  uint8_t buf[128] = {0};
  mior_frame_info fi;
  BAD(mior_frame_parse(NULL, 10, &fi));
  BAD(mior_frame_parse(buf, sizeof buf, NULL));
  BAD(mior_ip_packet_parse(NULL, 0, &fi));
  BAD(mior_frame_l4_csum_ok(NULL, 0, &fi));
  BAD(mior_frame_l4_csum_ok(buf, sizeof buf, NULL));
  mior_eth_info ei;
  BAD(mior_eth_parse(NULL, 14, &ei));
  mior_ipv4_info v4;
  BAD(mior_ipv4_parse(NULL, 20, &v4));
  mior_ipv6_info v6;
  BAD(mior_ipv6_parse(NULL, 40, &v6));
  BAD(mior_ipv6_parse(buf, 40, NULL));
  mior_udp_info u;
  BAD(mior_udp_parse(NULL, 8, &u));
  mior_tcp_info t;
  BAD(mior_tcp_parse(NULL, 20, &t));
  BAD(mior_tcp_options_parse(NULL, 4, NULL));
  BAD(mior_tcp_options_len(NULL));
  mior_arp_info ai;
  BAD(mior_arp_parse(NULL, 28, &ai));
  mior_icmp_info ic;
  BAD(mior_icmp_echo_parse(NULL, 8, &ic));
  BAD(mior_icmp6_echo_parse(NULL, 8, &ic));
  static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1}, ip4[4] = {10, 0, 0, 1};
  /* Builders: NULL output, no room, inconsistent values. */
  BAD(mior_eth_build(NULL, 14, mac, mac, 0x0800, -1));
  CHECK_ERR(mior_eth_build(buf, 13, mac, mac, 0x0800, -1), -ENOSPC);
  CHECK(mior_eth_build(buf, sizeof buf, mac, mac, 0x0800, 0x10000) < 0);
  CHECK_ERR(mior_arp_build(buf, sizeof buf, 3, mac, ip4, NULL, ip4), -EINVAL);
  CHECK_ERR(mior_arp_build(buf, 27, MIOR_ARP_REQUEST, mac, ip4, NULL, ip4), -ENOSPC);
  CHECK_ERR(mior_icmp_echo_build(buf, sizeof buf, 42, 1, 1, NULL, 0), -EINVAL);
  CHECK_ERR(mior_icmp_echo_build(buf, 7, MIOR_ICMP_ECHO_REQUEST, 1, 1, NULL, 0), -ENOSPC);
  CHECK(mior_udp_build(buf, sizeof buf, 1, 2, NULL, 70000, NULL) < 0);
  CHECK_ERR(mior_udp_build(buf, 7, 1, 2, NULL, 0, NULL), -ENOSPC);
  CHECK(mior_eth_synthesize(buf, sizeof buf, NULL, 20, mac, mac) < 0);
  buf[20] = 0x45; /* an IPv4 packet, so the only fault is the headroom */
  CHECK_ERR(mior_eth_synthesize_inplace(buf + 20, 20, 13, mac, mac), -ENOSPC);
  CHECK(mior_proto_reason_str((mior_proto_reason)9999) != NULL);
}

static int got;
static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)ctx, (void)port, (void)pkt;
  got++;
  return MIOR_DONE;
}

/* One datagram to itself: proof the port still works. */
static void round_trip(mior_port *p) {
  mior_addr self;
  mior_pkt pkt;
  REQUIRE_OK(mior_port_local_addr(p, &self));
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  memset(pkt.data, 1, 32);
  got = 0;
  CHECK_OK(mior_tx_send(p, &pkt, 32, &self));
  for (int i = 0; i < 200 && got == 0; i++) CHECK(mior_port_poll(p, 0, 10000) >= 0);
  CHECK_EQ(got, 1);
}

static void transport_badargs(mior_backend b) {
  mior_transport *t = (mior_transport *)&got; /* must be reset to NULL on failure */
  mior_options o = tt_opts(b);
  BAD(mior_transport_open(NULL, "udp://127.0.0.1:0", &o, NULL));
  BAD(mior_transport_open(&t, NULL, &o, NULL));
  CHECK(t == NULL);
  const char *eps[] = {"", "udp://", "udp://127.0.0.1", "udp://127.0.0.1:x", "tcp://127.0.0.1:1",
                       "udp://[::1:0", "ip://127.0.0.1/nosuchproto", "ip://127.0.0.1/256",
                       "packet://", "udp://127.0.0.1:70000"};
  for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
    int rc = mior_transport_open(&t, eps[i], &o, NULL);
    if (rc != -EINVAL || t != NULL) TEST_FAIL_AT("open(\"%s\") -> %d (%s)", eps[i], rc, mior_last_error());
    if (rc == 0) mior_transport_close(t);
  }
  mior_options bo;
#define BADOPT(stmt)                                                                   \
  do {                                                                                 \
    bo = tt_opts(b);                                                                   \
    stmt;                                                                              \
    int rc_ = mior_transport_open(&t, "udp://127.0.0.1:0", &bo, NULL);                 \
    if (rc_ != -EINVAL) TEST_FAIL_AT("options %s -> %d", #stmt, rc_);                  \
    if (rc_ == 0) mior_transport_close(t);                                             \
  } while (0)
  BADOPT(bo.sz = 0);
  BADOPT(bo.sz = 1u << 20);
  BADOPT(bo.backend = (mior_backend)77);
  BADOPT(bo.sq_entries = 1u << 20);
  BADOPT(bo.cq_entries = 4; bo.sq_entries = 64);
  BADOPT(bo.buf_size = 3000);
  BADOPT(bo.buf_size = 128);
  BADOPT(bo.buf_count = 1);
  BADOPT(bo.buf_count = 0xffffffffu);
  BADOPT(bo.queues = 100000);
  BADOPT(bo.batch = 5000);
  BADOPT(bo.rx_depth = 4096);
  BADOPT(bo.flags = 0x80000000u);
  BADOPT(bo.sndbuf = -1);
  BADOPT(bo.peer = "not an address");
  BADOPT(bo.peer = "127.0.0.1"); /* a UDP peer needs a port */

  mior_receiver rcv = {consume, NULL, NULL};
  o.buf_count = 256;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &rcv));
  mior_port *p = mior_transport_port(t, 0);
  CHECK(mior_transport_port(t, 1) == NULL);
  CHECK(mior_transport_port(t, UINT32_MAX) == NULL);
  CHECK(mior_transport_port(NULL, 0) == NULL);
  CHECK_EQ(mior_transport_queues(NULL), 0);
  BAD(mior_transport_start(NULL));
  BAD(mior_transport_stop(NULL));
  CHECK_OK(mior_transport_close(NULL));
  mior_port_stats st;
  BAD(mior_transport_stats_get(NULL, &st));
  BAD(mior_transport_stats_get(t, NULL));
  BAD(mior_port_stats_get(NULL, &st));
  BAD(mior_port_stats_get(p, NULL));
  BAD(mior_port_poll(NULL, 0, 0));
  mior_addr a;
  BAD(mior_port_local_addr(NULL, &a));
  BAD(mior_port_local_addr(p, NULL));
  CHECK_EQ(mior_port_backend(NULL), MIOR_BACKEND_AUTO);
  CHECK_EQ(mior_random_seq(NULL), 0);
  mior_pkt pkt, forged;
  BAD(mior_tx_acquire(NULL, &pkt));
  BAD(mior_tx_acquire(p, NULL));
  BAD(mior_tx_send(NULL, &pkt, 1, NULL));
  BAD(mior_tx_send(p, NULL, 1, NULL));
  BAD(mior_tx_flush(NULL));
  BAD(mior_pkt_release(NULL));
  memset(&forged, 0, sizeof forged);
  BAD(mior_pkt_release(&forged)); /* no port */
  forged.port = p;
  forged.slot = 0xffffff;
  BAD(mior_pkt_release(&forged)); /* slot out of range */
  BAD(mior_tx_send(p, &forged, 1, NULL));
  forged.slot = 0;
  BAD(mior_pkt_release(&forged)); /* not held by the application */
  BAD(mior_tx_send(p, &forged, 1, NULL));
  /* A real slot with inconsistent length or data pointer: refused, and the slot is the port's
   * again (documented), so releasing it afterwards is a double release. */
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  mior_pkt copy = pkt;
  /* An empty datagram is valid on udp, but this port has no peer to send it to. */
  CHECK_ERR(mior_tx_send(p, &pkt, 0, NULL), -EDESTADDRREQ);
  BAD(mior_pkt_release(&copy));
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  BAD(mior_tx_send(p, &pkt, pkt.cap + 1, NULL));
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  pkt.data += pkt.cap + 4096;
  BAD(mior_tx_send(p, &pkt, 1, NULL));
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  CHECK_OK(mior_pkt_release(&pkt)); /* returned unused */
  BAD(mior_pkt_release(&pkt));
  /* Another port's packet is refused by this one. */
  mior_transport *t2 = NULL;
  REQUIRE_OK(mior_transport_open(&t2, "udp://127.0.0.1:0", &o, NULL));
  mior_pkt other;
  REQUIRE_OK(mior_tx_acquire(mior_transport_port(t2, 0), &other));
  BAD(mior_tx_send(p, &other, 1, NULL));
  CHECK_OK(mior_pkt_release(&other));
  CHECK_OK(mior_transport_close(t2));
  /* Still works, and returns every slot. */
  round_trip(p);
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.user_held, 0);
  CHECK_OK(mior_transport_close(t));
}

int main(void) {
  tt_watchdog(60);
  pool_badargs();
  text_badargs();
  proto_badargs();
  tt_for_each_backend("transport bad arguments", transport_badargs);
  TEST_DONE();
}
