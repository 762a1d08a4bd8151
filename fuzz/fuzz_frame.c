/* Fuzz the whole-frame parser (Ethernet -> VLAN -> ARP | IPv4 | IPv6 -> UDP | TCP | ICMP) and the
 * L4 checksum check that runs on what it found.  Checks, beyond "no crash": the return value is
 * one of the documented ones, every offset and length the view reports stays inside the buffer,
 * and the layers reported are consistent with each other. */
#include <errno.h>

#include "fuzz_common.h"

#ifndef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME LLVMFuzzerTestOneInput
#endif

static void frame_check_view(const mior_frame_info *fi, size_t len, int rc) {
  FUZZ_ASSERT(mior_proto_reason_str(fi->reason) != NULL);
  FUZZ_ASSERT((rc == 0) == (fi->reason == MIOR_PROTO_OK));
  if (fi->layers & (MIOR_LAYER_IPV4 | MIOR_LAYER_IPV6 | MIOR_LAYER_ARP)) FUZZ_ASSERT(fi->l3_off <= len);
  if (fi->layers & MIOR_LAYER_IPV4) {
    FUZZ_ASSERT(fi->l3.ipv4.hdr_len >= 20 && fi->l3.ipv4.hdr_len <= 60);
    FUZZ_ASSERT(fi->l3_off + (size_t)fi->l3.ipv4.total_len <= len);
  }
  if (fi->layers & MIOR_LAYER_IPV6)
    FUZZ_ASSERT(fi->l3_off + (size_t)fi->l3.ipv6.payload_off + fi->l3.ipv6.payload_len <= len);
  if (fi->layers & (MIOR_LAYER_UDP | MIOR_LAYER_TCP | MIOR_LAYER_ICMP | MIOR_LAYER_ICMPV6)) {
    FUZZ_ASSERT(fi->l4_off <= len);
    FUZZ_ASSERT(fi->payload_off >= fi->l4_off);
    FUZZ_ASSERT((size_t)fi->payload_off + fi->payload_len <= len);
    FUZZ_ASSERT(fi->layers & (MIOR_LAYER_IPV4 | MIOR_LAYER_IPV6));
  }
  if (fi->layers & MIOR_LAYER_ARP) FUZZ_ASSERT(!(fi->layers & (MIOR_LAYER_IPV4 | MIOR_LAYER_IPV6)));
  if (fi->layers & MIOR_LAYER_VLAN) FUZZ_ASSERT(fi->eth.vlan_count >= 1 && fi->eth.vlan_count <= 2);
}

int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size);
int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size) {
  uint8_t *buf = fuzz_dup(data, size);
  mior_frame_info fi;
  memset(&fi, 0xa5, sizeof fi); /* the parser must set what it reports, not rely on zeroes */
  int rc = mior_frame_parse(buf, size, &fi);
  FUZZ_ASSERT(FUZZ_PARSE_RC_OK(rc));
  if (fi.layers & MIOR_LAYER_ETH) {
    FUZZ_ASSERT(fi.eth.payload_off == 14 || fi.eth.payload_off == 18 || fi.eth.payload_off == 22);
    FUZZ_ASSERT(fi.eth.payload_off + (size_t)fi.eth.payload_len == size);
  }
  frame_check_view(&fi, size, rc);
  if (rc == 0 && !(fi.layers & MIOR_LAYER_FRAGMENT) &&
      (fi.layers & (MIOR_LAYER_UDP | MIOR_LAYER_TCP | MIOR_LAYER_ICMP | MIOR_LAYER_ICMPV6))) {
    int ok = mior_frame_l4_csum_ok(buf, size, &fi);
    FUZZ_ASSERT(ok == 0 || ok == 1);
  }
  /* The Ethernet parser alone must agree with the frame parser's first layer. */
  mior_eth_info ei;
  int erc = mior_eth_parse(buf, size, &ei);
  FUZZ_ASSERT(FUZZ_PARSE_RC_OK(erc));
  if (erc == 0) FUZZ_ASSERT(fi.layers & MIOR_LAYER_ETH);
  free(buf);
  return 0;
}
