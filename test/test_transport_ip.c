/* The `ip` kind (raw IP, IP header included both ways; root), under every backend, across a veth
 * pair between two namespaces the test makes and always deletes:
 *   - ip://B/udp receives IPv4+UDP packets that ip://A/udp sends with headers built here, and
 *     every one parses (IP and UDP checksums, lengths) and carries its sequence-numbered payload;
 *   - it also receives what a plain kernel UDP socket in ns a sends;
 *   - the sender's statistics count what it sent, and both pools are returned.
 */
#include "transport_common.h"

#define COUNT 5000u
#define DPORT 7777
#define SPORT 5555

static netns_pair pair;
static uint8_t ip_a[4], ip_b[4];
static char ep_a[64], ep_b[64]; /* ip://<address a>/udp, ip://<address b>/udp */

/* What unwrap_ip expects of a body's packets (the tally's uctx). */
typedef struct ip_want {
  uint16_t sport; /* the sender's UDP port */
  int udp_csum;   /* verify the UDP checksum: our own packets carry a full one, while the kernel's,
                   * over a veth, carry only a partial one */
} ip_want;

static uint32_t build_ip_udp(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  (void)ctx;
  uint32_t plen = tt_len_for(seq, TT_HDR, 1400);
  if (28 + plen > cap) plen = cap - 28;
  tt_fill(buf + 28, plen, seq);
  return tt_build_ipv4_udp(buf, ip_a, ip_b, SPORT, DPORT, plen, (uint16_t)seq);
}

/* Received packets include the IP header: check it and hand over the UDP payload.  Other UDP
 * traffic in the namespace (there should be none) counts as foreign. */
static int unwrap_ip(tt_rx *r, const mior_pkt *pkt, const uint8_t **pl, uint32_t *plen) {
  uint16_t sport, dport;
  uint8_t src[4], dst[4];
  const ip_want *want = r->uctx;
  int rc = tt_parse_ipv4_udp(pkt->data, pkt->len, want->udp_csum, pl, plen, &sport, &dport, src,
                             dst);
  if (rc != 0) return rc;
  if (dport != DPORT) return 1;
  if (sport != want->sport || memcmp(src, ip_a, 4) != 0 || memcmp(dst, ip_b, 4) != 0) return -1;
  return 0;
}

static void body_ip_to_ip(mior_backend b) {
  tt_rx r;
  tt_rx_init(&r, COUNT);
  ip_want want = {SPORT, 1};
  r.unwrap = unwrap_ip;
  r.uctx = &want;
  r.want_unspec_src = 1;
  mior_options o = tt_opts(b), ot = tt_opts(b);
  ot.flags |= MIOR_OPT_NO_RX;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_a_to_b(&pair, ep_a, &ot, &tx, ep_b, &o, &r, &rx);
  CHECK_EQ(mior_port_backend(mior_transport_port(rx, 0)), b);

  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  /* dst NULL: the destination comes from the IP header the packet carries. */
  tt_pump_result pr = tt_pump(txp, &r, &rxp, 1, COUNT, 64, NULL, build_ip_udp, NULL, 20000);
  tt_drain_tx(txp, pr.sent, 2000);
  tt_poll_for(&rxp, 1, 50);
  CHECK_EQ(pr.sent, COUNT);
  TT_CHECK_TALLY(&r);
  printf("    ip -> ip: %u packets in %.1f ms\n", r.got, pr.elapsed_us / 1000.0);

  mior_port_stats ts, rs;
  CHECK_OK(mior_transport_stats_get(tx, &ts));
  CHECK_OK(mior_transport_stats_get(rx, &rs));
  CHECK_EQ(ts.tx_packets, pr.sent);
  CHECK_EQ(ts.tx_bytes, pr.sent_bytes);
  CHECK_EQ(ts.tx_errors, 0);
  CHECK_EQ(rs.rx_packets, r.got + r.foreign + r.bad);
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

/* A kernel UDP socket in ns a sends; ip://B/udp sees the datagrams with the kernel's headers. */
static void body_kernel_to_ip(mior_backend b) {
  enum { K = 200 };
  tt_rx r;
  tt_rx_init(&r, K);
  ip_want want = {0, 0}; /* the kernel socket's port, once it has one */
  r.unwrap = unwrap_ip;
  r.uctx = &want;
  r.want_unspec_src = 1;
  mior_options o = tt_opts(b);
  mior_receiver recv = tt_receiver(&r);
  mior_transport *rx = NULL;
  REQUIRE_OK(tt_open_in(pair.fd_b, &rx, ep_b, &o, &recv));
  mior_port *rxp = mior_transport_port(rx, 0);

  tt_kernel_udp_a_to_b(&pair, DPORT, 1000, &want.sport, &r, rxp);
  TT_CHECK_TALLY(&r);
  TT_CHECK_POOL_RETURNED(rx);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
}

int main(void) {
  tt_watchdog(110);
  tt_pair_create(&pair, "tip", 211);
  snprintf(ep_a, sizeof ep_a, "ip://%s/udp", pair.ip_a);
  snprintf(ep_b, sizeof ep_b, "ip://%s/udp", pair.ip_b);
  REQUIRE(inet_pton(AF_INET, pair.ip_a, ip_a) == 1);
  REQUIRE(inet_pton(AF_INET, pair.ip_b, ip_b) == 1);
  int ran = 0;
  ran += tt_for_each_backend("ip://B/udp from ip://A/udp", body_ip_to_ip);
  ran += tt_for_each_backend("ip://B/udp from a kernel socket", body_kernel_to_ip);
  CHECK_OK(netns_pair_destroy(&pair));
  if (!ran) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
