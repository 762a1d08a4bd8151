/* IPv6 link-local addresses for real, under every Linux backend, across a veth pair between two
 * namespaces the test makes (and always deletes; DAD is off in them, so the addresses are usable
 * at once):
 *   - port A binds [fe80::1%INDEX] (the scope as a number), port B binds [fe80::2%NAME] (as a
 *     name), each text parsed inside its own namespace, where the interface exists;
 *   - A sends to B's scoped address ("[fe80::2%if_a]:port"); B sees the sender as fe80::1 with the
 *     scope of its own interface, and formats it back to "[fe80::1%if_b]:port"; the arrival
 *     address (MIOR_OPT_RX_PKTINFO) is fe80::2 with that scope too;
 *   - B answers in place to the scoped source it received, and A sees B likewise;
 *   - hardware timestamps are asked for (MIOR_OPT_RX_TIMESTAMP_HW): a veth makes none, so each
 *     packet carries the kernel's software stamp, between the send and the receive, and no
 *     MIOR_PKT_TIMESTAMP_HW.
 */
#include <net/if.h>
#include <time.h>

#include "transport_common.h"

#define ROUNDS 8

static netns_pair pair;

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Interface names exist only in their namespace: parse and format there. */
static void parse_in(int ns_fd, mior_addr *a, const char *text) {
  REQUIRE_OK(netns_enter(ns_fd));
  int rc = mior_addr_parse(a, text);
  REQUIRE_OK(netns_enter_host());
  if (rc < 0) TEST_FAIL_AT("parse \"%s\": %d (%s)", text, rc, mior_last_error());
}

static void format_in(int ns_fd, const mior_addr *a, char *buf, size_t len) {
  REQUIRE_OK(netns_enter(ns_fd));
  int rc = mior_addr_format(a, buf, len);
  REQUIRE_OK(netns_enter_host());
  REQUIRE_OK(rc);
}

/* One packet as it arrived at the port of namespace ns_fd, from `from` (ll address and port),
 * on interface ifname/ifindex: src, arrival address and timestamp. */
static void check_arrival(int ns_fd, const mior_pkt *pk, const uint8_t *from_ll, uint16_t from_port,
                          const uint8_t *to_ll, const char *ifname, int ifindex, uint64_t t0) {
  uint64_t t1 = realtime_ns();
  CHECK_EQ(pk->src.family, MIOR_AF_INET6);
  CHECK(memcmp(pk->src.addr, from_ll, 16) == 0);
  CHECK_EQ(pk->src.port, from_port);
  CHECK_EQ(pk->src.scope_id, (uint32_t)ifindex);
  char text[80], want[80];
  format_in(ns_fd, &pk->src, text, sizeof text);
  snprintf(want, sizeof want, "[fe80::%u%%%s]:%u", from_ll[15], ifname, from_port);
  CHECK(strcmp(text, want) == 0);
  if (strcmp(text, want) != 0) printf("    src \"%s\", expected \"%s\"\n", text, want);
  CHECK_EQ(pk->flags & (MIOR_PKT_LOCAL | MIOR_PKT_TIMESTAMP | MIOR_PKT_TIMESTAMP_HW),
           MIOR_PKT_LOCAL | MIOR_PKT_TIMESTAMP);
  CHECK(memcmp(pk->local.addr, to_ll, 16) == 0);
  CHECK_EQ(pk->local.scope_id, (uint32_t)ifindex);
  CHECK(pk->rx_time_ns >= t0 && pk->rx_time_ns <= t1);
}

static void body(mior_backend b) {
  static const uint8_t ll_a[16] = {0xfe, 0x80, [15] = 1}, ll_b[16] = {0xfe, 0x80, [15] = 2};
  mior_options o = tt_opts(b);
  o.flags |= MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_TIMESTAMP_HW;
  o.buf_count = 256;
  char ep_a[80], ep_b[80], text[80];
  snprintf(ep_a, sizeof ep_a, "udp://[fe80::1%%%d]:0", pair.ifindex_a);
  snprintf(ep_b, sizeof ep_b, "udp://[fe80::2%%%s]:0", pair.if_b);
  mior_transport *ta = NULL, *tb = NULL;
  tt_require_open_in(pair.fd_a, pair.ns_a, &ta, ep_a, &o, NULL);
  tt_require_open_in(pair.fd_b, pair.ns_b, &tb, ep_b, &o, NULL);
  mior_port *pa = mior_transport_port(ta, 0), *pb = mior_transport_port(tb, 0);
  mior_addr la = tt_local(ta), lb = tt_local(tb);
  CHECK_EQ(la.scope_id, (uint32_t)pair.ifindex_a);
  CHECK_EQ(lb.scope_id, (uint32_t)pair.ifindex_b);
  /* B's address as A names it: the scope is A's interface, by name. */
  mior_addr to_b;
  snprintf(text, sizeof text, "[fe80::2%%%s]:%u", pair.if_a, lb.port);
  parse_in(pair.fd_a, &to_b, text);
  CHECK_EQ(to_b.scope_id, (uint32_t)pair.ifindex_a);
  for (int round = 0; round < ROUNDS && !test_failures; round++) {
    mior_pkt tp, pk;
    REQUIRE_OK(mior_tx_acquire(pa, &tp));
    tt_fill(tp.data, 100, (uint32_t)round);
    uint64_t t0 = realtime_ns();
    CHECK_OK(mior_tx_send(pa, &tp, 100, &to_b));
    CHECK_OK(mior_tx_flush(pa));
    if (tt_pull_one(pb, &pk, 2000) < 0) {
      TEST_FAIL_AT("round %d: nothing arrived at B", round);
      break;
    }
    CHECK_EQ(pk.len, 100);
    uint32_t seq = 0;
    CHECK(tt_check(pk.data, pk.len, &seq) == 0 && seq == (uint32_t)round);
    check_arrival(pair.fd_b, &pk, ll_a, la.port, ll_b, pair.if_b, pair.ifindex_b, t0);
    /* The answer goes to the scoped source just received, from the address asked. */
    mior_addr back = pk.src;
    pk.data[0] ^= 0xff;
    t0 = realtime_ns();
    CHECK_OK(mior_tx_send(pb, &pk, pk.len, &back));
    CHECK_OK(mior_tx_flush(pb));
    mior_pkt reply;
    if (tt_pull_one(pa, &reply, 2000) < 0) {
      mior_port_stats sa, sb;
      mior_port_stats_get(pa, &sa);
      mior_port_stats_get(pb, &sb);
      TEST_FAIL_AT("round %d: no answer at A (B: tx %llu, tx_errors %llu; A: rx %llu, rx_errors %llu)", round,
                   (unsigned long long)sb.tx_packets, (unsigned long long)sb.tx_errors,
                   (unsigned long long)sa.rx_packets, (unsigned long long)sa.rx_errors);
      break;
    }
    CHECK_EQ(reply.len, 100);
    check_arrival(pair.fd_a, &reply, ll_b, lb.port, ll_a, pair.if_a, pair.ifindex_a, t0);
    CHECK_OK(mior_pkt_release(&reply));
    mior_port_poll(pa, 0, 0);
    mior_port_poll(pb, 0, 0);
  }
  mior_port_poll(pa, 0, 0);
  mior_port_poll(pb, 0, 0);
  TT_CHECK_POOL_RETURNED(ta);
  TT_CHECK_POOL_RETURNED(tb);
  CHECK_EQ(mior_transport_close(ta), 0);
  CHECK_EQ(mior_transport_close(tb), 0);
}

int main(void) {
  tt_watchdog(60);
  tt_sweep_stale("tll");
  tt_pair_create(&pair, "tll", 212);
  if (access("/proc/sys/net/ipv6", F_OK) != 0) {
    netns_pair_destroy(&pair);
    TEST_SKIP("this kernel has no IPv6");
  }
  /* Fixed link-local addresses beside the ones the kernel made from the MACs (nodad: DAD is off
   * in these namespaces anyway, so they are usable at once). */
  char cmd[160];
  snprintf(cmd, sizeof cmd, "ip -6 addr add fe80::1/64 dev %s nodad", pair.if_a);
  REQUIRE(netns_exec(pair.ns_a, cmd) == 0);
  snprintf(cmd, sizeof cmd, "ip -6 addr add fe80::2/64 dev %s nodad", pair.if_b);
  REQUIRE(netns_exec(pair.ns_b, cmd) == 0);
  int ran = tt_for_each_backend("fe80:: with %ifname and %index scopes, both ways", body);
  CHECK_OK(netns_pair_destroy(&pair));
  if (!ran) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
