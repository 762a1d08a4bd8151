/* Fuzz the IP-level parsers (mior_ip_packet_parse, mior_ipv4_parse, mior_ipv6_parse) and the
 * Ethernet synthesis used for packets from raw IP sockets, with a differential check: a packet
 * parsed directly and the same packet behind a synthesized Ethernet header must give the same
 * answer, with every offset moved by 14. */
#include <errno.h>

#include "fuzz_common.h"

#ifndef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME LLVMFuzzerTestOneInput
#endif

static const uint8_t ip_mac_a[6] = {2, 0, 0, 0, 0, 1}, ip_mac_b[6] = {2, 0, 0, 0, 0, 2};

int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size);
int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  mior_frame_info ip;
  int rc = mior_ip_packet_parse(buf, size, &ip);
  FUZZ_ASSERT(FUZZ_PARSE_RC_OK(rc));
  FUZZ_ASSERT(!(ip.layers & MIOR_LAYER_ETH));

  mior_ipv4_info v4;
  int r4 = mior_ipv4_parse(buf, size, &v4);
  FUZZ_ASSERT(FUZZ_PARSE_RC_OK(r4));
  if (r4 == 0) {
    FUZZ_ASSERT(v4.hdr_len >= 20 && v4.hdr_len <= 60 && v4.total_len <= size);
    FUZZ_ASSERT(v4.payload_off + (size_t)v4.payload_len <= size);
    FUZZ_ASSERT(ip.layers & MIOR_LAYER_IPV4);
  }
  mior_ipv6_info v6;
  int r6 = mior_ipv6_parse(buf, size, &v6);
  FUZZ_ASSERT(FUZZ_PARSE_RC_OK(r6));
  if (r6 == 0) {
    FUZZ_ASSERT(v6.payload_off == 40 + v6.ext_len);
    FUZZ_ASSERT(v6.payload_off + (size_t)v6.payload_len <= size);
    FUZZ_ASSERT(ip.layers & MIOR_LAYER_IPV6);
  }
  FUZZ_ASSERT(!(r4 == 0 && r6 == 0));

  /* Synthesis into a separate buffer, then the frame parser over the result. */
  size_t cap = size + 14;
  uint8_t *frame = malloc(cap);
  FUZZ_ASSERT(frame != NULL);
  int n = mior_eth_synthesize(frame, cap, buf, size, ip_mac_a, ip_mac_b);
  if (size == 0 || ((buf[0] >> 4) != 4 && (buf[0] >> 4) != 6)) {
    FUZZ_ASSERT(n == -EBADMSG);
  } else {
    FUZZ_ASSERT(n == (int)cap);
    FUZZ_ASSERT(memcmp(frame + 14, buf, size) == 0);
    mior_frame_info fr;
    int frc = mior_frame_parse(frame, cap, &fr);
    FUZZ_ASSERT(frc == rc);
    FUZZ_ASSERT(fr.reason == ip.reason);
    FUZZ_ASSERT(fr.layers == (ip.layers | MIOR_LAYER_ETH));
    if (ip.layers & (MIOR_LAYER_IPV4 | MIOR_LAYER_IPV6)) FUZZ_ASSERT(fr.l3_off == ip.l3_off + 14);
    if (ip.layers & (MIOR_LAYER_UDP | MIOR_LAYER_TCP | MIOR_LAYER_ICMP | MIOR_LAYER_ICMPV6)) {
      FUZZ_ASSERT(fr.l4_off == ip.l4_off + 14);
      FUZZ_ASSERT(fr.payload_off == ip.payload_off + 14 && fr.payload_len == ip.payload_len);
      if (rc == 0 && !(ip.layers & MIOR_LAYER_FRAGMENT))
        FUZZ_ASSERT(mior_frame_l4_csum_ok(frame, cap, &fr) == mior_frame_l4_csum_ok(buf, size, &ip));
    }
    /* In place, into headroom: the packet sits at frame + 14 already. */
    memmove(frame + 14, buf, size);
    int m = mior_eth_synthesize_inplace(frame + 14, size, 14, ip_mac_a, ip_mac_b);
    FUZZ_ASSERT(m == (int)cap);
    FUZZ_ASSERT(memcmp(frame + 14, buf, size) == 0);
  }
  /* Too little room must be refused, never overrun. */
  if (size > 0) FUZZ_ASSERT(mior_eth_synthesize(frame, size + 13, buf, size, ip_mac_a, ip_mac_b) < 0);
  free(frame);
  free(buf);
  return 0;
}
