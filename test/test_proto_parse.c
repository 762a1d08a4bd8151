/* Wire formats: builders and parsers round-trip, known-answer bytes, every truncation of every
 * valid frame is rejected without reading past the end (exact-size heap copies, so ASan sees any
 * over-read), and each malformed case is rejected with its own reason. */
#include "test.h"

#include <mior/proto/proto.h>

static const uint8_t mac_a[6] = {0x02, 0, 0, 0, 0, 0x0a}, mac_b[6] = {0x02, 0, 0, 0, 0, 0x0b};
static const uint8_t ip4_a[4] = {192, 0, 2, 1}, ip4_b[4] = {198, 51, 100, 2};
static uint8_t ip6_a[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static uint8_t ip6_b[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};

static mior_l3_addrs addrs4(void) {
  mior_l3_addrs a = {.family = MIOR_AF_INET};
  memcpy(a.src, ip4_a, 4);
  memcpy(a.dst, ip4_b, 4);
  return a;
}

static mior_l3_addrs addrs6(void) {
  mior_l3_addrs a = {.family = MIOR_AF_INET6};
  memcpy(a.src, ip6_a, 16);
  memcpy(a.dst, ip6_b, 16);
  return a;
}

static mior_ipv4_params ip4_params(uint8_t proto) {
  mior_ipv4_params p = {.protocol = proto, .ttl = 64, .dont_fragment = 1, .id = 0x1c46};
  memcpy(p.src, ip4_a, 4);
  memcpy(p.dst, ip4_b, 4);
  return p;
}

static mior_ipv6_params ip6_params(uint8_t nh) {
  mior_ipv6_params p = {.next_header = nh, .hop_limit = 64, .traffic_class = 0x28, .flow_label = 0x12345};
  memcpy(p.src, ip6_a, 16);
  memcpy(p.dst, ip6_b, 16);
  return p;
}

/* A collection of valid frames, built with the library's own builders. */
#define NFRAMES 9
static uint8_t frames[NFRAMES][256];
static size_t frame_len[NFRAMES];

static const char payload[] = "mior!"; /* 5 bytes: odd lengths on purpose */

static size_t build_ipv4_udp(uint8_t *f, int vlan, const void *opts, size_t opts_len) {
  int eh = mior_eth_build(f, 256, mac_b, mac_a, MIOR_ETHERTYPE_IPV4, vlan);
  REQUIRE(eh > 0);
  mior_ipv4_params p = ip4_params(MIOR_IPPROTO_UDP);
  p.options = opts, p.options_len = opts_len;
  size_t ih = 20 + opts_len;
  mior_l3_addrs a = addrs4();
  int u = mior_udp_build(f + eh + ih, 256 - eh - ih, 1234, 5678, payload, 5, &a);
  REQUIRE(u == 13);
  int ip = mior_ipv4_build(f + eh, 256 - (size_t)eh, &p, NULL, (size_t)u);
  REQUIRE(ip == (int)ih + 13);
  return (size_t)(eh + ip);
}

static mior_tcp_opts syn_opts(void) {
  mior_tcp_opts o = {.mss_present = 1, .mss = 1460, .wscale_present = 1, .wscale = 7,
                     .sack_permitted = 1, .ts_present = 1, .ts_val = 0x01020304, .ts_ecr = 0};
  return o;
}

static void build_frames(void) {
  uint8_t *f;
  int n, eh;
  mior_l3_addrs a4 = addrs4(), a6 = addrs6();

  /* 0: IPv4/UDP, no options. */
  frame_len[0] = build_ipv4_udp(frames[0], -1, NULL, 0);
  /* 1: VLAN 100 (PCP 5), IPv4 with options (NOP, NOP, router alert), UDP. */
  static const uint8_t ra[8] = {1, 1, 0x94, 4, 0, 0, 1, 0};
  frame_len[1] = build_ipv4_udp(frames[1], 5 << 13 | 100, ra, 8);

  /* 2: IPv4/TCP SYN with MSS, SACK-permitted, timestamps, window scale. */
  f = frames[2];
  eh = mior_eth_build(f, 256, mac_b, mac_a, MIOR_ETHERTYPE_IPV4, -1);
  mior_tcp_opts o = syn_opts();
  mior_tcp_params tp = {.sport = 40000, .dport = 80, .seq = 0xdeadbeef, .flags = MIOR_TCP_SYN,
                        .window = 64240, .opts = &o};
  n = mior_tcp_build(f + eh + 20, 256 - 34, &tp, NULL, 0, &a4);
  REQUIRE(n == 40);
  mior_ipv4_params p4 = ip4_params(MIOR_IPPROTO_TCP);
  n = mior_ipv4_build(f + eh, 256 - 14, &p4, NULL, (size_t)n);
  frame_len[2] = (size_t)(eh + n);

  /* 3: IPv4/ICMP echo request. */
  f = frames[3];
  eh = mior_eth_build(f, 256, mac_b, mac_a, MIOR_ETHERTYPE_IPV4, -1);
  n = mior_icmp_echo_build(f + eh + 20, 200, MIOR_ICMP_ECHO_REQUEST, 0x77, 3, payload, 5);
  REQUIRE(n == 13);
  p4 = ip4_params(MIOR_IPPROTO_ICMP);
  n = mior_ipv4_build(f + eh, 256 - 14, &p4, NULL, (size_t)n);
  frame_len[3] = (size_t)(eh + n);

  /* 4: IPv6 with hop-by-hop (PadN), destination options (Pad1s), routing, AH, then UDP. */
  f = frames[4];
  eh = mior_eth_build(f, 256, mac_b, mac_a, MIOR_ETHERTYPE_IPV6, -1);
  uint8_t *x = f + eh + 40;
  static const uint8_t hbh[8] = {MIOR_IPPROTO_DSTOPTS, 0, 1, 4, 0, 0, 0, 0};
  static const uint8_t dst[8] = {MIOR_IPPROTO_ROUTING, 0, 0, 0, 0, 0, 0, 0};
  static const uint8_t rt[8] = {MIOR_IPPROTO_AH, 0, 4, 0, 0, 0, 0, 0};
  static const uint8_t ah[16] = {MIOR_IPPROTO_UDP, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
  memcpy(x, hbh, 8), memcpy(x + 8, dst, 8), memcpy(x + 16, rt, 8), memcpy(x + 24, ah, 16);
  n = mior_udp_build(x + 40, 100, 53, 9999, payload, 5, &a6);
  REQUIRE(n == 13);
  mior_ipv6_params p6 = ip6_params(MIOR_IPPROTO_HOPOPTS);
  n = mior_ipv6_build(f + eh, 256 - 14, &p6, NULL, 40 + 13);
  frame_len[4] = (size_t)(eh + n);

  /* 5: IPv6/ICMPv6 echo reply. */
  f = frames[5];
  eh = mior_eth_build(f, 256, mac_b, mac_a, MIOR_ETHERTYPE_IPV6, -1);
  n = mior_icmp6_echo_build(f + eh + 40, 200, MIOR_ICMPV6_ECHO_REPLY, 9, 10, payload, 5, ip6_a, ip6_b);
  REQUIRE(n == 13);
  p6 = ip6_params(MIOR_IPPROTO_ICMPV6);
  n = mior_ipv6_build(f + eh, 256 - 14, &p6, NULL, 13);
  frame_len[5] = (size_t)(eh + n);

  /* 6: ARP request. */
  f = frames[6];
  eh = mior_eth_build(f, 256, (const uint8_t[6]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac_a,
                      MIOR_ETHERTYPE_ARP, -1);
  n = mior_arp_build(f + eh, 100, MIOR_ARP_REQUEST, mac_a, ip4_a, NULL, ip4_b);
  REQUIRE(n == 28);
  frame_len[6] = (size_t)(eh + n);

  /* 7: IPv6 first fragment (offset 0, more to come) of a UDP datagram. */
  f = frames[7];
  eh = mior_eth_build(f, 256, mac_b, mac_a, MIOR_ETHERTYPE_IPV6, -1);
  x = f + eh + 40;
  static const uint8_t frag[8] = {MIOR_IPPROTO_UDP, 0, 0x00, 0x01, 0xca, 0xfe, 0xba, 0xbe};
  memcpy(x, frag, 8);
  n = mior_udp_build(x + 8, 100, 1, 2, payload, 5, &a6);
  p6 = ip6_params(MIOR_IPPROTO_FRAGMENT);
  n = mior_ipv6_build(f + eh, 256 - 14, &p6, NULL, 8 + (size_t)n);
  frame_len[7] = (size_t)(eh + n);

  /* 8: QinQ (802.1ad outer 10, 802.1Q inner 20), IPv4/UDP. */
  f = frames[8];
  size_t inner = build_ipv4_udp(f + 4, 20, NULL, 0); /* 18-byte tagged header at f + 4 */
  memmove(f, f + 4, 12);                             /* MACs to the front */
  f[12] = 0x88, f[13] = 0xa8, f[14] = 0x00, f[15] = 10; /* outer tag */
  frame_len[8] = inner + 4;
}

static void test_round_trip(void) {
  mior_frame_info fi;
  for (int i = 0; i < NFRAMES; i++) {
    int rc = mior_frame_parse(frames[i], frame_len[i], &fi);
    if (rc != 0) TEST_FAIL_AT("frame %d: %d %s", i, rc, mior_proto_reason_str(fi.reason));
    CHECK_EQ(fi.reason, MIOR_PROTO_OK);
    CHECK(memcmp(fi.eth.src, mac_a, 6) == 0);
  }

  /* 0: every field of the IPv4/UDP frame; the bytes equal the hand-built packet checked in
   * test_checksum (IP checksum 324f, UDP fac0). */
  static const uint8_t want0[] = {0x45, 0x00, 0x00, 0x21, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11,
                                  0x32, 0x4f, 192,  0,    2,    1,    198,  51,   100,  2,
                                  0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0d, 0xfa, 0xc0, 'm',  'i',
                                  'o',  'r',  '!'};
  CHECK_EQ(frame_len[0], 14 + sizeof want0);
  CHECK(memcmp(frames[0] + 14, want0, sizeof want0) == 0);
  CHECK(memcmp(frames[0], mac_b, 6) == 0);
  CHECK_EQ(frames[0][12], 0x08);
  CHECK_EQ(frames[0][13], 0x00);
  REQUIRE(mior_frame_parse(frames[0], frame_len[0], &fi) == 0);
  CHECK_EQ(fi.layers, MIOR_LAYER_ETH | MIOR_LAYER_IPV4 | MIOR_LAYER_UDP);
  CHECK_EQ(fi.l3_off, 14);
  CHECK_EQ(fi.l4_off, 34);
  CHECK_EQ(fi.payload_off, 42);
  CHECK_EQ(fi.payload_len, 5);
  CHECK_EQ(fi.ip_proto, 17);
  CHECK_EQ(fi.l3.ipv4.id, 0x1c46);
  CHECK_EQ(fi.l3.ipv4.ttl, 64);
  CHECK_EQ(fi.l3.ipv4.dont_fragment, 1);
  CHECK_EQ(fi.l3.ipv4.total_len, 33);
  CHECK(memcmp(fi.l3.ipv4.dst, ip4_b, 4) == 0);
  CHECK_EQ(fi.l4.udp.sport, 1234);
  CHECK_EQ(fi.l4.udp.dport, 5678);
  CHECK_EQ(fi.l4.udp.len, 13);
  CHECK(memcmp(frames[0] + fi.payload_off, payload, 5) == 0);
  CHECK_EQ(mior_frame_l4_csum_ok(frames[0], frame_len[0], &fi), 1);

  /* 1: VLAN and IPv4 options. */
  REQUIRE(mior_frame_parse(frames[1], frame_len[1], &fi) == 0);
  CHECK(fi.layers & MIOR_LAYER_VLAN);
  CHECK_EQ(fi.eth.vlan_count, 1);
  CHECK_EQ(fi.eth.vlan_id, 100);
  CHECK_EQ(fi.eth.vlan_pcp, 5);
  CHECK_EQ(fi.l3_off, 18);
  CHECK_EQ(fi.l3.ipv4.hdr_len, 28);
  CHECK_EQ(fi.l3.ipv4.options_len, 8);
  CHECK_EQ(fi.l4_off, 18 + 28);
  CHECK_EQ(mior_frame_l4_csum_ok(frames[1], frame_len[1], &fi), 1);

  /* 2: TCP SYN options, laid out as Linux does. */
  REQUIRE(mior_frame_parse(frames[2], frame_len[2], &fi) == 0);
  CHECK(fi.layers & MIOR_LAYER_TCP);
  static const uint8_t syn_layout[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7};
  CHECK(memcmp(frames[2] + 34 + 20, syn_layout, 20) == 0);
  CHECK_EQ(fi.l4.tcp.hdr_len, 40);
  CHECK_EQ(fi.l4.tcp.flags, MIOR_TCP_SYN);
  CHECK_EQ(fi.l4.tcp.seq, 0xdeadbeef);
  CHECK_EQ(fi.l4.tcp.window, 64240);
  CHECK(fi.l4.tcp.opts.mss_present && fi.l4.tcp.opts.mss == 1460);
  CHECK(fi.l4.tcp.opts.wscale_present && fi.l4.tcp.opts.wscale == 7);
  CHECK(fi.l4.tcp.opts.sack_permitted);
  CHECK(fi.l4.tcp.opts.ts_present && fi.l4.tcp.opts.ts_val == 0x01020304 && fi.l4.tcp.opts.ts_ecr == 0);
  CHECK_EQ(fi.l4.tcp.opts.unknown_count, 0);
  CHECK_EQ(fi.payload_len, 0);
  CHECK_EQ(mior_frame_l4_csum_ok(frames[2], frame_len[2], &fi), 1);

  /* 3: ICMP echo. */
  REQUIRE(mior_frame_parse(frames[3], frame_len[3], &fi) == 0);
  CHECK(fi.layers & MIOR_LAYER_ICMP);
  CHECK(fi.l4.icmp.is_echo && fi.l4.icmp.type == 8 && fi.l4.icmp.id == 0x77 && fi.l4.icmp.seq == 3);
  CHECK_EQ(mior_frame_l4_csum_ok(frames[3], frame_len[3], &fi), 1);
  mior_icmp_info ii;
  CHECK_OK(mior_icmp_echo_parse(frames[3] + 34, 13, &ii));
  CHECK_ERR(mior_icmp6_echo_parse(frames[3] + 34, 13, &ii), -EPROTONOSUPPORT);
  CHECK_EQ(ii.reason, MIOR_PROTO_ICMP_NOT_ECHO);

  /* 4: the extension header walk. */
  REQUIRE(mior_frame_parse(frames[4], frame_len[4], &fi) == 0);
  CHECK_EQ(fi.l3.ipv6.ext_count, 4);
  CHECK_EQ(fi.l3.ipv6.ext_seen, MIOR_IPV6_EXT_HOPOPTS | MIOR_IPV6_EXT_DSTOPTS |
                                    MIOR_IPV6_EXT_ROUTING | MIOR_IPV6_EXT_AH);
  CHECK_EQ(fi.l3.ipv6.ext_len, 40);
  CHECK_EQ(fi.l3.ipv6.protocol, 17);
  CHECK_EQ(fi.l3.ipv6.traffic_class, 0x28);
  CHECK_EQ(fi.l3.ipv6.flow_label, 0x12345);
  CHECK_EQ(fi.l4_off, 14 + 80);
  CHECK_EQ(fi.l4.udp.dport, 9999);
  CHECK_EQ(mior_frame_l4_csum_ok(frames[4], frame_len[4], &fi), 1);

  /* 5: ICMPv6 echo reply. */
  REQUIRE(mior_frame_parse(frames[5], frame_len[5], &fi) == 0);
  CHECK(fi.layers & MIOR_LAYER_ICMPV6);
  CHECK(fi.l4.icmp.type == 129 && fi.l4.icmp.id == 9 && fi.l4.icmp.seq == 10);
  CHECK_EQ(mior_frame_l4_csum_ok(frames[5], frame_len[5], &fi), 1);
  frames[5][14 + 40 + 9] ^= 0x40; /* flip a payload bit: the checksum must notice */
  CHECK_EQ(mior_frame_l4_csum_ok(frames[5], frame_len[5], &fi), 0);
  frames[5][14 + 40 + 9] ^= 0x40;

  /* 6: ARP. */
  REQUIRE(mior_frame_parse(frames[6], frame_len[6], &fi) == 0);
  CHECK_EQ(fi.layers, MIOR_LAYER_ETH | MIOR_LAYER_ARP);
  CHECK_EQ(fi.l3.arp.op, MIOR_ARP_REQUEST);
  CHECK(memcmp(fi.l3.arp.spa, ip4_a, 4) == 0 && memcmp(fi.l3.arp.tpa, ip4_b, 4) == 0);
  CHECK(memcmp(fi.l3.arp.sha, mac_a, 6) == 0);
  CHECK_EQ(mior_frame_l4_csum_ok(frames[6], frame_len[6], &fi), -EINVAL);

  /* 7: a fragment stops at IP. */
  REQUIRE(mior_frame_parse(frames[7], frame_len[7], &fi) == 0);
  CHECK(fi.layers & MIOR_LAYER_FRAGMENT);
  CHECK(!(fi.layers & MIOR_LAYER_UDP));
  CHECK(fi.l3.ipv6.is_fragment && fi.l3.ipv6.more_fragments && fi.l3.ipv6.frag_off == 0);
  CHECK_EQ(fi.l3.ipv6.frag_id, 0xcafebabe);
  CHECK_EQ(fi.l4_off, 14 + 48);

  /* 8: QinQ. */
  REQUIRE(mior_frame_parse(frames[8], frame_len[8], &fi) == 0);
  CHECK_EQ(fi.eth.vlan_count, 2);
  CHECK_EQ(fi.eth.vlan_id, 10);
  CHECK_EQ(fi.eth.inner_vlan_id, 20);
  CHECK_EQ(fi.l3_off, 22);
  CHECK_EQ(mior_frame_l4_csum_ok(frames[8], frame_len[8], &fi), 1);

  /* Ethernet padding after a short IPv4 packet is ignored (60-byte minimum frames). */
  uint8_t padded[64] = {0};
  memcpy(padded, frames[0], frame_len[0]);
  REQUIRE(mior_frame_parse(padded, 60, &fi) == 0);
  CHECK_EQ(fi.payload_len, 5);
  CHECK_EQ(mior_frame_l4_csum_ok(padded, 60, &fi), 1);

  /* The same packets from the IP header on. */
  REQUIRE(mior_ip_packet_parse(frames[2] + 14, frame_len[2] - 14, &fi) == 0);
  CHECK_EQ(fi.l3_off, 0);
  CHECK_EQ(fi.l4_off, 20);
  CHECK(!(fi.layers & MIOR_LAYER_ETH));
  CHECK_EQ(mior_frame_l4_csum_ok(frames[2] + 14, frame_len[2] - 14, &fi), 1);
  REQUIRE(mior_ip_packet_parse(frames[4] + 14, frame_len[4] - 14, &fi) == 0);
  CHECK_EQ(fi.l4_off, 80);
}

/* Every truncation of every valid frame fails cleanly, for the whole-frame parser and for each
 * layer parser on its own bytes.  Each cut is copied to a buffer of exactly that size. */
static void test_truncations(void) {
  for (int i = 0; i < NFRAMES; i++) {
    mior_frame_info full;
    REQUIRE(mior_frame_parse(frames[i], frame_len[i], &full) == 0);
    for (size_t cut = 0; cut < frame_len[i]; cut++) {
      uint8_t *b = malloc(cut ? cut : 1);
      REQUIRE(b != NULL);
      memcpy(b, frames[i], cut);
      mior_frame_info fi;
      int rc = mior_frame_parse(b, cut, &fi);
      if (rc >= 0) TEST_FAIL_AT("frame %d cut at %zu of %zu was accepted", i, cut, frame_len[i]);
      CHECK(fi.reason != MIOR_PROTO_OK);
      free(b);
    }
    /* Layer by layer: the upper layer alone, at every length short of its header. */
    size_t l3 = full.l3_off, l4 = full.l4_off;
    for (size_t cut = 0; cut < frame_len[i] - l3; cut++) {
      uint8_t *b = malloc(cut ? cut : 1);
      REQUIRE(b != NULL);
      memcpy(b, frames[i] + l3, cut);
      if (full.layers & MIOR_LAYER_IPV4) {
        mior_ipv4_info v;
        CHECK(mior_ipv4_parse(b, cut, &v) < 0);
      } else if (full.layers & MIOR_LAYER_IPV6) {
        mior_ipv6_info v;
        CHECK(mior_ipv6_parse(b, cut, &v) < 0);
      } else if (full.layers & MIOR_LAYER_ARP && cut < MIOR_ARP_LEN) {
        mior_arp_info v;
        CHECK(mior_arp_parse(b, cut, &v) < 0);
      }
      mior_frame_info fi;
      if (full.layers & (MIOR_LAYER_IPV4 | MIOR_LAYER_IPV6)) CHECK(mior_ip_packet_parse(b, cut, &fi) < 0);
      free(b);
    }
    if (full.layers & (MIOR_LAYER_UDP | MIOR_LAYER_TCP | MIOR_LAYER_ICMP | MIOR_LAYER_ICMPV6)) {
      size_t l4_len = full.payload_off + full.payload_len - l4;
      size_t hdr = full.payload_off - l4;
      for (size_t cut = 0; cut < l4_len; cut++) {
        uint8_t *b = malloc(cut ? cut : 1);
        REQUIRE(b != NULL);
        memcpy(b, frames[i] + l4, cut);
        mior_udp_info u;
        mior_tcp_info t;
        mior_icmp_info c;
        if (full.layers & MIOR_LAYER_UDP) CHECK(mior_udp_parse(b, cut, &u) < 0);
        if (full.layers & MIOR_LAYER_TCP && cut < hdr) CHECK(mior_tcp_parse(b, cut, &t) < 0);
        if (full.layers & MIOR_LAYER_ICMP && cut < hdr) CHECK(mior_icmp_echo_parse(b, cut, &c) < 0);
        if (full.layers & MIOR_LAYER_ICMPV6 && cut < hdr) CHECK(mior_icmp6_echo_parse(b, cut, &c) < 0);
        free(b);
      }
    }
  }
}

/* Random byte changes to valid frames: whatever the verdict, no parser may read outside the
 * buffer (ASan) or return something other than 0 / -EBADMSG / -EPROTONOSUPPORT. */
static void test_mutations(void) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int round = 0; round < 30000; round++) {
    int i = round % NFRAMES;
    size_t len = frame_len[i];
    uint8_t *b = malloc(len);
    REQUIRE(b != NULL);
    memcpy(b, frames[i], len);
    for (int k = 0; k < 1 + round % 4; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b[(x >> 8) % len] = (uint8_t)x;
    }
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t cut = (round & 8) ? len - (x % len) : len;
    mior_frame_info fi;
    int rc = mior_frame_parse(b, cut, &fi);
    CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT);
    if (rc == 0 && (fi.layers & (MIOR_LAYER_UDP | MIOR_LAYER_TCP | MIOR_LAYER_ICMP | MIOR_LAYER_ICMPV6))) {
      int ok = mior_frame_l4_csum_ok(b, cut, &fi);
      CHECK(ok == 0 || ok == 1);
      CHECK(fi.payload_off + fi.payload_len <= cut);
    }
    rc = mior_ip_packet_parse(b + 14, cut > 14 ? cut - 14 : 0, &fi);
    CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT);
    free(b);
  }
}

/* Copy of an IPv4 header template with its checksum recomputed, for malformed cases that must
 * fail for their own reason and not for a stale checksum. */
static void ipv4_fix_csum(uint8_t *ip) {
  size_t hl = (size_t)(ip[0] & 15) * 4;
  ip[10] = ip[11] = 0;
  uint16_t c = mior_csum(ip, hl < 20 ? 20 : hl);
  memcpy(ip + 10, &c, 2);
}

static void expect_ipv4(const uint8_t *ip, size_t len, int err, mior_proto_reason why, int line) {
  mior_ipv4_info v;
  int rc = mior_ipv4_parse(ip, len, &v);
  if (rc != err || v.reason != why)
    TEST_FAIL_AT("line %d: ipv4 %d (%s), expected %d (%s)", line, rc, mior_proto_reason_str(v.reason),
                 err, mior_proto_reason_str(why));
}

static void expect_ipv6(const uint8_t *ip, size_t len, int err, mior_proto_reason why, int line) {
  mior_ipv6_info v;
  int rc = mior_ipv6_parse(ip, len, &v);
  if (rc != err || v.reason != why)
    TEST_FAIL_AT("line %d: ipv6 %d (%s), expected %d (%s)", line, rc, mior_proto_reason_str(v.reason),
                 err, mior_proto_reason_str(why));
}

static void expect_tcp(const uint8_t *seg, size_t len, int err, mior_proto_reason why, int line) {
  mior_tcp_info v;
  int rc = mior_tcp_parse(seg, len, &v);
  if (rc != err || v.reason != why)
    TEST_FAIL_AT("line %d: tcp %d (%s), expected %d (%s)", line, rc, mior_proto_reason_str(v.reason),
                 err, mior_proto_reason_str(why));
}

static void test_malformed(void) {
  uint8_t ip[256];

  /* IPv4: the UDP packet of frame 0 (33 bytes). */
  const uint8_t *good = frames[0] + 14;
  memcpy(ip, good, 33);
  expect_ipv4(ip, 33, 0, MIOR_PROTO_OK, __LINE__);
  ip[0] = 0x55, ipv4_fix_csum(ip);
  expect_ipv4(ip, 33, -EBADMSG, MIOR_PROTO_IP_VERSION, __LINE__);
  ip[0] = 0x44, ipv4_fix_csum(ip);
  expect_ipv4(ip, 33, -EBADMSG, MIOR_PROTO_IPV4_IHL, __LINE__);
  ip[0] = 0x40, ipv4_fix_csum(ip);
  expect_ipv4(ip, 33, -EBADMSG, MIOR_PROTO_IPV4_IHL, __LINE__);
  memcpy(ip, good, 33);
  ip[0] = 0x49; /* 36-byte header inside a 33-byte total length */
  expect_ipv4(ip, 33, -EBADMSG, MIOR_PROTO_IPV4_IHL, __LINE__);
  memcpy(ip, good, 33);
  ip[3] = 34, ipv4_fix_csum(ip); /* total length one past the buffer */
  expect_ipv4(ip, 33, -EBADMSG, MIOR_PROTO_IPV4_TOTAL_LEN, __LINE__);
  memcpy(ip, good, 33);
  ip[8] ^= 1; /* TTL changed, checksum not */
  expect_ipv4(ip, 33, -EBADMSG, MIOR_PROTO_IPV4_CHECKSUM, __LINE__);
  memcpy(ip, good, 33);
  ip[6] = 0x1f, ip[7] = 0xff, ipv4_fix_csum(ip); /* offset 65528 + 13 bytes > 65535 */
  expect_ipv4(ip, 33, -EBADMSG, MIOR_PROTO_IPV4_FRAGMENT, __LINE__);
  /* Fragments stop the frame walk at IP. */
  memcpy(ip, good, 33);
  ip[6] = 0x20, ip[7] = 0x00, ipv4_fix_csum(ip); /* MF */
  mior_frame_info fi;
  CHECK_EQ(mior_ip_packet_parse(ip, 33, &fi), 0);
  CHECK(fi.layers & MIOR_LAYER_FRAGMENT);
  CHECK(fi.l3.ipv4.more_fragments);

  /* IPv4 options: frame 1's header is 28 bytes with NOP NOP RA(4) padding(2). */
  const uint8_t *opt = frames[1] + 18;
  size_t optlen = frame_len[1] - 18;
  static const uint8_t bad_opts[][8] = {
      {0x94, 0, 0, 0, 0, 0, 0, 0},     /* length 0 */
      {0x94, 1, 0, 0, 0, 0, 0, 0},     /* length 1 */
      {1, 1, 1, 1, 1, 1, 0x94, 4},     /* runs past the header */
      {1, 1, 1, 1, 1, 1, 1, 0x07},     /* no room for the length byte */
  };
  for (size_t k = 0; k < sizeof bad_opts / sizeof bad_opts[0]; k++) {
    memcpy(ip, opt, optlen);
    memcpy(ip + 20, bad_opts[k], 8);
    ipv4_fix_csum(ip);
    expect_ipv4(ip, optlen, -EBADMSG, MIOR_PROTO_IPV4_OPTION, __LINE__);
  }
  memcpy(ip, opt, optlen);
  memcpy(ip + 20, (const uint8_t[8]){0, 0x94, 0, 0, 0, 0, 0, 0}, 8); /* EOL: the rest is ignored */
  ipv4_fix_csum(ip);
  expect_ipv4(ip, optlen, 0, MIOR_PROTO_OK, __LINE__);

  /* IPv6: frame 4's chain (HBH, DST, RT, AH, UDP). */
  const uint8_t *g6 = frames[4] + 14;
  size_t g6len = frame_len[4] - 14;
  memcpy(ip, g6, g6len);
  expect_ipv6(ip, g6len, 0, MIOR_PROTO_OK, __LINE__);
  ip[0] = 0x46;
  expect_ipv6(ip, g6len, -EBADMSG, MIOR_PROTO_IP_VERSION, __LINE__);
  memcpy(ip, g6, g6len);
  ip[5]++; /* payload length one past the buffer */
  expect_ipv6(ip, g6len, -EBADMSG, MIOR_PROTO_IPV6_PAYLOAD_LEN, __LINE__);
  memcpy(ip, g6, g6len);
  ip[41] = 20; /* hop-by-hop length of 168 bytes */
  expect_ipv6(ip, g6len, -EBADMSG, MIOR_PROTO_IPV6_EXT_TRUNCATED, __LINE__);
  memcpy(ip, g6, g6len);
  ip[64 + 1] = 200; /* AH length far past the end */
  expect_ipv6(ip, g6len, -EBADMSG, MIOR_PROTO_IPV6_EXT_TRUNCATED, __LINE__);
  memcpy(ip, g6, g6len);
  ip[4] = 0, ip[5] = 24; /* payload ends in the middle of the chain, at AH's start */
  expect_ipv6(ip, 40 + 24, -EBADMSG, MIOR_PROTO_IPV6_EXT_TRUNCATED, __LINE__);
  memcpy(ip, g6, g6len);
  ip[48] = MIOR_IPPROTO_HOPOPTS; /* destination options followed by hop-by-hop */
  expect_ipv6(ip, g6len, -EBADMSG, MIOR_PROTO_IPV6_EXT_ORDER, __LINE__);
  memcpy(ip, g6, g6len);
  ip[43] = 5; /* PadN of 5 data bytes in a 6-byte option area */
  expect_ipv6(ip, g6len, -EBADMSG, MIOR_PROTO_IPV6_OPTION, __LINE__);
  memcpy(ip, g6, g6len);
  ip[43] = 3, ip[47] = 1; /* shorter PadN, then a PadN type in the last byte with no length */
  expect_ipv6(ip, g6len, -EBADMSG, MIOR_PROTO_IPV6_OPTION, __LINE__);
  memcpy(ip, g6, g6len);
  ip[4] = ip[5] = 0; /* payload length 0 with hop-by-hop: a jumbogram */
  expect_ipv6(ip, g6len, -EPROTONOSUPPORT, MIOR_PROTO_IPV6_JUMBO, __LINE__);
  /* A chain of 17 destination options headers. */
  {
    uint8_t big[40 + 17 * 8 + 8];
    memcpy(big, g6, 40);
    big[4] = 0, big[5] = (uint8_t)(17 * 8 + 8);
    big[6] = MIOR_IPPROTO_DSTOPTS;
    for (int k = 0; k < 17; k++) {
      uint8_t *h = big + 40 + 8 * k;
      memset(h, 0, 8);
      h[0] = k == 16 ? MIOR_IPPROTO_NONE : MIOR_IPPROTO_DSTOPTS;
    }
    memset(big + 40 + 17 * 8, 0, 8);
    expect_ipv6(big, sizeof big, -EBADMSG, MIOR_PROTO_IPV6_EXT_LIMIT, __LINE__);
    big[40 + 15 * 8] = MIOR_IPPROTO_NONE; /* 16 headers: accepted, ends at "no next header" */
    mior_ipv6_info v;
    CHECK_EQ(mior_ipv6_parse(big, sizeof big, &v), 0);
    CHECK_EQ(v.ext_count, 16);
    CHECK_EQ(v.protocol, MIOR_IPPROTO_NONE);
    CHECK_EQ(mior_ip_packet_parse(big, sizeof big, &fi), -EPROTONOSUPPORT);
    CHECK_EQ(fi.reason, MIOR_PROTO_L4_UNSUPPORTED);
  }
  /* A non-first fragment ends the walk at the fragment header. */
  memcpy(ip, frames[7] + 14, frame_len[7] - 14);
  ip[42] = 0x00, ip[43] = 0x10; /* offset 2 (16 bytes), M = 0 */
  {
    mior_ipv6_info v;
    CHECK_EQ(mior_ipv6_parse(ip, frame_len[7] - 14, &v), 0);
    CHECK(v.is_fragment && !v.more_fragments);
    CHECK_EQ(v.frag_off, 16);
    CHECK_EQ(v.payload_off, 48);
  }

  /* TCP: frame 2's SYN (40-byte header). */
  uint8_t seg[64];
  const uint8_t *gs = frames[2] + 34;
  memcpy(seg, gs, 40);
  expect_tcp(seg, 40, 0, MIOR_PROTO_OK, __LINE__);
  seg[12] = 4 << 4;
  expect_tcp(seg, 40, -EBADMSG, MIOR_PROTO_TCP_DOFF, __LINE__);
  seg[12] = 11 << 4; /* 44 bytes of header in 40 */
  expect_tcp(seg, 40, -EBADMSG, MIOR_PROTO_TCP_DOFF, __LINE__);
  seg[12] = 15 << 4;
  expect_tcp(seg, 40, -EBADMSG, MIOR_PROTO_TCP_DOFF, __LINE__);
  static const uint8_t bad_tcp[][20] = {
      {2, 0},                                                       /* MSS length 0 */
      {1, 1, 8, 1},                                                 /* TS length 1 */
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 10}, /* past the header */
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 99}, /* no length byte */
  };
  for (size_t k = 0; k < sizeof bad_tcp / sizeof bad_tcp[0]; k++) {
    memcpy(seg, gs, 40);
    memcpy(seg + 20, bad_tcp[k], 20);
    expect_tcp(seg, 40, -EBADMSG, MIOR_PROTO_TCP_OPTION, __LINE__);
  }
  /* Unknown kinds are skipped, wrong-length known kinds ignored, EOL ends the list. */
  memcpy(seg, gs, 40);
  static const uint8_t odd_tcp[20] = {99, 4, 0xaa, 0xbb, 2, 3, 5, 3, 3, 7, 1, 0, 2, 4, 0, 1};
  memcpy(seg + 20, odd_tcp, 20);
  mior_tcp_info t;
  CHECK_EQ(mior_tcp_parse(seg, 40, &t), 0);
  CHECK_EQ(t.opts.unknown_count, 1);
  CHECK(!t.opts.mss_present); /* length 3 MSS ignored; the MSS after EOL never read */
  CHECK(t.opts.wscale_present && t.opts.wscale == 7);
  /* SACK blocks. */
  mior_tcp_opts so = {.sack_count = 2, .sack = {{100, 200}, {300, 400}}, .ts_present = 1, .ts_val = 5};
  CHECK_EQ(mior_tcp_options_len(&so), 12 + 20);
  mior_tcp_params sp = {.sport = 1, .dport = 2, .flags = MIOR_TCP_ACK, .opts = &so};
  mior_l3_addrs a4 = addrs4();
  int n = mior_tcp_build(seg, sizeof seg, &sp, NULL, 0, &a4);
  CHECK_EQ(n, 52);
  CHECK_EQ(mior_tcp_parse(seg, (size_t)n, &t), 0);
  CHECK_EQ(t.opts.sack_count, 2);
  CHECK(t.opts.sack[1][0] == 300 && t.opts.sack[1][1] == 400);
  CHECK_EQ(mior_csum_l4_verify_ipv4(a4.src, a4.dst, 6, seg, (size_t)n), 1);
  so.sack_count = 4; /* 4 blocks + timestamps = 48 bytes: too many */
  CHECK_EQ(mior_tcp_options_len(&so), -EINVAL);
  CHECK_EQ(mior_tcp_build(seg, sizeof seg, &sp, NULL, 0, &a4), -EINVAL);
  so.ts_present = 0;
  CHECK_EQ(mior_tcp_options_len(&so), 36);

  /* UDP lengths. */
  uint8_t u[13];
  memcpy(u, frames[0] + 34, 13);
  mior_udp_info ui;
  CHECK_EQ(mior_udp_parse(u, 13, &ui), 0);
  u[5] = 7;
  CHECK_ERR(mior_udp_parse(u, 13, &ui), -EBADMSG);
  CHECK_EQ(ui.reason, MIOR_PROTO_UDP_LEN);
  u[5] = 14;
  CHECK_ERR(mior_udp_parse(u, 13, &ui), -EBADMSG);
  CHECK_EQ(ui.reason, MIOR_PROTO_UDP_LEN);
  u[5] = 10; /* shorter than the IP payload: trimmed */
  CHECK_EQ(mior_udp_parse(u, 13, &ui), 0);
  CHECK_EQ(ui.payload_len, 2);

  /* Ethernet. */
  uint8_t e[128];
  mior_eth_info ei;
  memcpy(e, frames[8], 40);
  e[20] = 0x81, e[21] = 0x00; /* a third tag */
  CHECK_ERR(mior_eth_parse(e, 40, &ei), -EPROTONOSUPPORT);
  CHECK_EQ(ei.reason, MIOR_PROTO_VLAN_DEPTH);
  memcpy(e, frames[0], 40);
  e[12] = 0x00, e[13] = 0x40; /* 802.3 length */
  CHECK_ERR(mior_eth_parse(e, 40, &ei), -EPROTONOSUPPORT);
  CHECK_EQ(ei.reason, MIOR_PROTO_ETH_8023);
  e[12] = 0x88, e[13] = 0xcc; /* LLDP */
  CHECK_EQ(mior_eth_parse(e, 40, &ei), 0);
  CHECK_ERR(mior_frame_parse(e, 40, &fi), -EPROTONOSUPPORT);
  CHECK_EQ(fi.reason, MIOR_PROTO_ETHERTYPE);
  CHECK_EQ(fi.layers, MIOR_LAYER_ETH);
  memcpy(e, frames[2], frame_len[2]);
  e[12] = 0x86, e[13] = 0xdd; /* IPv6 ethertype over an IPv4 packet */
  CHECK_ERR(mior_frame_parse(e, frame_len[2], &fi), -EBADMSG);
  CHECK_EQ(fi.reason, MIOR_PROTO_IP_VERSION);

  /* ARP. */
  uint8_t arp[28];
  mior_arp_info ai;
  memcpy(arp, frames[6] + 14, 28);
  arp[1] = 6; /* IEEE 802 hardware */
  CHECK_ERR(mior_arp_parse(arp, 28, &ai), -EPROTONOSUPPORT);
  CHECK_EQ(ai.reason, MIOR_PROTO_ARP_FORMAT);
  memcpy(arp, frames[6] + 14, 28);
  arp[7] = 3; /* RARP request */
  CHECK_ERR(mior_arp_parse(arp, 28, &ai), -EPROTONOSUPPORT);
  CHECK_EQ(ai.reason, MIOR_PROTO_ARP_OP);

  /* An ICMP error is parsed by the frame walk (type/code) but is no echo. */
  memcpy(ip, frames[3] + 14, frame_len[3] - 14);
  ip[20] = 3, ip[21] = 3; /* port unreachable */
  CHECK_EQ(mior_ip_packet_parse(ip, frame_len[3] - 14, &fi), 0);
  CHECK(fi.l4.icmp.type == 3 && fi.l4.icmp.code == 3 && !fi.l4.icmp.is_echo);
  mior_icmp_info ii;
  CHECK_ERR(mior_icmp_echo_parse(ip + 20, 13, &ii), -EPROTONOSUPPORT);
  CHECK_EQ(ii.reason, MIOR_PROTO_ICMP_NOT_ECHO);
  /* An unknown upper protocol (SCTP) stops the walk after IP. */
  memcpy(ip, good, 33);
  ip[9] = 132, ipv4_fix_csum(ip);
  CHECK_ERR(mior_ip_packet_parse(ip, 33, &fi), -EPROTONOSUPPORT);
  CHECK_EQ(fi.reason, MIOR_PROTO_L4_UNSUPPORTED);
  CHECK_EQ(fi.layers, MIOR_LAYER_IPV4);
  CHECK_EQ(fi.l4_off, 20);
  /* ICMPv6 inside IPv4 is no known protocol. */
  ip[9] = MIOR_IPPROTO_ICMPV6, ipv4_fix_csum(ip);
  CHECK_ERR(mior_ip_packet_parse(ip, 33, &fi), -EPROTONOSUPPORT);
  CHECK_ERR(mior_ip_packet_parse(ip, 0, &fi), -EBADMSG);
  ip[0] = 0x75;
  CHECK_ERR(mior_ip_packet_parse(ip, 33, &fi), -EBADMSG);
  CHECK_EQ(fi.reason, MIOR_PROTO_IP_VERSION);
}

static void test_null_and_builders(void) {
  uint8_t b[128];
  mior_frame_info fi;
  mior_eth_info ei;
  mior_ipv4_info v4;
  mior_ipv6_info v6;
  mior_udp_info ui;
  mior_tcp_info ti;
  mior_icmp_info ii;
  mior_arp_info ai;
  CHECK_ERR(mior_frame_parse(NULL, 10, &fi), -EINVAL);
  CHECK_EQ(fi.reason, MIOR_PROTO_NULL_ARG);
  CHECK_ERR(mior_frame_parse(b, 10, NULL), -EINVAL);
  CHECK_ERR(mior_ip_packet_parse(NULL, 10, &fi), -EINVAL);
  CHECK_ERR(mior_eth_parse(NULL, 10, &ei), -EINVAL);
  CHECK_ERR(mior_ipv4_parse(NULL, 10, &v4), -EINVAL);
  CHECK_ERR(mior_ipv6_parse(NULL, 10, &v6), -EINVAL);
  CHECK_ERR(mior_udp_parse(NULL, 10, &ui), -EINVAL);
  CHECK_ERR(mior_tcp_parse(NULL, 10, &ti), -EINVAL);
  CHECK_ERR(mior_icmp_echo_parse(NULL, 10, &ii), -EINVAL);
  CHECK_ERR(mior_arp_parse(NULL, 10, &ai), -EINVAL);
  CHECK_ERR(mior_tcp_options_parse(NULL, 4, &ti.opts), -EINVAL);
  CHECK_ERR(mior_frame_l4_csum_ok(NULL, 10, &fi), -EINVAL);

  /* Capacity: every builder says -ENOSPC one byte short, and writes nothing past cap. */
  mior_ipv4_params p4 = ip4_params(17);
  mior_ipv6_params p6 = ip6_params(17);
  mior_l3_addrs a4 = addrs4();
  mior_tcp_opts o = syn_opts();
  mior_tcp_params tp = {.sport = 1, .dport = 2, .flags = MIOR_TCP_SYN, .opts = &o};
  CHECK_ERR(mior_eth_build(b, 13, mac_a, mac_b, 0x0800, -1), -ENOSPC);
  CHECK_ERR(mior_eth_build(b, 17, mac_a, mac_b, 0x0800, 5), -ENOSPC);
  CHECK_ERR(mior_eth_build(b, 18, mac_a, mac_b, 0x0800, 0x10000), -EINVAL);
  CHECK_ERR(mior_eth_build(NULL, 18, mac_a, mac_b, 0x0800, -1), -EINVAL);
  CHECK_ERR(mior_ipv4_build(b, 24, &p4, payload, 5), -ENOSPC);
  CHECK_EQ(mior_ipv4_build(b, 25, &p4, payload, 5), 25);
  CHECK_ERR(mior_ipv4_build(b, 128, NULL, payload, 5), -EINVAL);
  CHECK_ERR(mior_ipv4_build(b, 128, &p4, NULL, 65536 - 20), -EMSGSIZE);
  p4.options = "abc", p4.options_len = 3;
  CHECK_ERR(mior_ipv4_build(b, 128, &p4, payload, 5), -EINVAL);
  CHECK_ERR(mior_ipv6_build(b, 44, &p6, payload, 5), -ENOSPC);
  CHECK_ERR(mior_ipv6_build(b, 128, &p6, NULL, 65536), -EMSGSIZE);
  p6.flow_label = 0x100000;
  CHECK_ERR(mior_ipv6_build(b, 128, &p6, payload, 5), -EINVAL);
  CHECK_ERR(mior_udp_build(b, 12, 1, 2, payload, 5, &a4), -ENOSPC);
  CHECK_EQ(mior_udp_build(b, 13, 1, 2, payload, 5, NULL), 13);
  CHECK(b[6] == 0 && b[7] == 0); /* no addresses: no checksum */
  CHECK_ERR(mior_tcp_build(b, 39, &tp, NULL, 0, &a4), -ENOSPC);
  CHECK_ERR(mior_tcp_build(b, 40, &tp, NULL, 0, NULL), -EINVAL);
  CHECK_ERR(mior_icmp_echo_build(b, 12, MIOR_ICMP_ECHO_REQUEST, 1, 1, payload, 5), -ENOSPC);
  CHECK_ERR(mior_icmp_echo_build(b, 64, 3, 1, 1, payload, 5), -EINVAL);
  CHECK_ERR(mior_icmp6_echo_build(b, 64, MIOR_ICMP_ECHO_REQUEST, 1, 1, payload, 5, ip6_a, ip6_b), -EINVAL);
  CHECK_ERR(mior_arp_build(b, 27, MIOR_ARP_REQUEST, mac_a, ip4_a, NULL, ip4_b), -ENOSPC);
  CHECK_ERR(mior_arp_build(b, 28, MIOR_ARP_REPLY, mac_a, ip4_a, NULL, ip4_b), -EINVAL);
  CHECK_ERR(mior_arp_build(b, 28, 7, mac_a, ip4_a, mac_b, ip4_b), -EINVAL);

  /* Payload already in place (NULL) and copied give the same bytes. */
  uint8_t x[64], y[64];
  memset(x, 0, sizeof x), memset(y, 0, sizeof y);
  memcpy(y + 8, payload, 5);
  CHECK_EQ(mior_udp_build(x, 64, 7, 8, payload, 5, &a4), 13);
  CHECK_EQ(mior_udp_build(y, 64, 7, 8, NULL, 5, &a4), 13);
  CHECK(memcmp(x, y, 13) == 0);

  /* Reasons all have distinct text. */
  for (int r = 0; r < MIOR_PROTO_REASON_COUNT; r++) {
    const char *s = mior_proto_reason_str((mior_proto_reason)r);
    CHECK(s != NULL && strcmp(s, "unknown reason") != 0);
    for (int q = 0; q < r; q++) CHECK(strcmp(s, mior_proto_reason_str((mior_proto_reason)q)) != 0);
  }
  CHECK(strcmp(mior_proto_reason_str(MIOR_PROTO_REASON_COUNT), "unknown reason") == 0);
  CHECK(strcmp(mior_proto_reason_str((mior_proto_reason)-1), "unknown reason") == 0);
}

/* Ethernet header synthesis for packets from IP-level sockets. */
static void test_synthesize(void) {
  uint8_t out[128];
  const uint8_t *ip4 = frames[2] + 14;
  size_t ip4_len = frame_len[2] - 14;
  int n = mior_eth_synthesize(out, sizeof out, ip4, ip4_len, mac_a, mac_b);
  CHECK_EQ(n, (int)frame_len[2]);
  CHECK(memcmp(out, mac_b, 6) == 0 && memcmp(out + 6, mac_a, 6) == 0);
  CHECK(out[12] == 0x08 && out[13] == 0x00);
  CHECK(memcmp(out + 14, ip4, ip4_len) == 0);
  mior_frame_info fi;
  CHECK_EQ(mior_frame_parse(out, (size_t)n, &fi), 0);
  CHECK(fi.layers & MIOR_LAYER_TCP);

  n = mior_eth_synthesize(out, sizeof out, frames[5] + 14, frame_len[5] - 14, mac_a, mac_b);
  CHECK_EQ(n, (int)frame_len[5]);
  CHECK(out[12] == 0x86 && out[13] == 0xdd);
  CHECK_EQ(mior_frame_parse(out, (size_t)n, &fi), 0);

  /* The packet already sits at out + 14 (received into headroom), or overlaps out. */
  memcpy(out + 14, ip4, ip4_len);
  CHECK_EQ(mior_eth_synthesize(out, sizeof out, out + 14, ip4_len, mac_a, mac_b), (int)frame_len[2]);
  CHECK(memcmp(out + 14, ip4, ip4_len) == 0);
  memcpy(out + 4, ip4, ip4_len);
  CHECK_EQ(mior_eth_synthesize(out, sizeof out, out + 4, ip4_len, mac_a, mac_b), (int)frame_len[2]);
  CHECK(memcmp(out + 14, ip4, ip4_len) == 0);
  CHECK(out[12] == 0x08);

  /* In place into headroom. */
  memset(out, 0, sizeof out);
  memcpy(out + 32, ip4, ip4_len);
  n = mior_eth_synthesize_inplace(out + 32, ip4_len, 32, mac_a, mac_b);
  CHECK_EQ(n, (int)frame_len[2]);
  CHECK_EQ(mior_frame_parse(out + 18, (size_t)n, &fi), 0);
  CHECK(memcmp(out + 18, mac_b, 6) == 0);
  CHECK_ERR(mior_eth_synthesize_inplace(out + 32, ip4_len, 13, mac_a, mac_b), -ENOSPC);

  /* Not IP, empty, too small, NULL. */
  uint8_t junk[20] = {0x50};
  CHECK_ERR(mior_eth_synthesize(out, sizeof out, junk, sizeof junk, mac_a, mac_b), -EBADMSG);
  CHECK_ERR(mior_eth_synthesize(out, sizeof out, junk, 0, mac_a, mac_b), -EBADMSG);
  CHECK_ERR(mior_eth_synthesize_inplace(junk + 14, 6, 14, mac_a, mac_b), -EBADMSG);
  CHECK_ERR(mior_eth_synthesize(out, ip4_len + 13, ip4, ip4_len, mac_a, mac_b), -ENOSPC);
  CHECK_ERR(mior_eth_synthesize(NULL, sizeof out, ip4, ip4_len, mac_a, mac_b), -EINVAL);
  CHECK_ERR(mior_eth_synthesize(out, sizeof out, ip4, ip4_len, NULL, mac_b), -EINVAL);
}

int main(void) {
  build_frames();
  test_round_trip();
  test_truncations();
  test_mutations();
  test_malformed();
  test_null_and_builders();
  test_synthesize();
  TEST_DONE();
}
