/* Whole-packet parsers: Ethernet -> VLAN -> ARP | IPv4 | IPv6 -> UDP | TCP | ICMP(v6), each layer
 * parsed by its own bounds-checked parser over exactly the bytes the layer below says it has. */
/* These files are always part of the library: export, not import, the public names even when
 * compiled on their own (the CMake build defines MIOR_BUILDING too). */
#ifndef MIOR_BUILDING
#define MIOR_BUILDING
#endif
#include <string.h>

#include "common/proto_internal.h"

/* Parse the upper layer at base + off, len bytes (the IP payload). */
static int parse_l4(const uint8_t *base, uint32_t off, uint32_t len, int v6, mior_frame_info *out) {
  const uint8_t *p = base + off;
  int rc;
  out->l4_off = off;
  switch (out->ip_proto) {
  case MIOR_IPPROTO_UDP:
    rc = mior_udp_parse(p, len, &out->l4.udp);
    if (rc < 0) return mior__reject(&out->reason, out->l4.udp.reason, rc);
    out->layers |= MIOR_LAYER_UDP;
    out->payload_off = off + out->l4.udp.payload_off;
    out->payload_len = out->l4.udp.payload_len;
    return 0;
  case MIOR_IPPROTO_TCP:
    rc = mior_tcp_parse(p, len, &out->l4.tcp);
    if (rc < 0) return mior__reject(&out->reason, out->l4.tcp.reason, rc);
    out->layers |= MIOR_LAYER_TCP;
    out->payload_off = off + out->l4.tcp.payload_off;
    out->payload_len = out->l4.tcp.payload_len;
    return 0;
  case MIOR_IPPROTO_ICMP:
  case MIOR_IPPROTO_ICMPV6:
    /* ICMPv4 belongs to IPv4 and ICMPv6 to IPv6; the other pairing is no known protocol. */
    if ((out->ip_proto == MIOR_IPPROTO_ICMPV6) != (v6 != 0)) break;
    rc = mior__icmp_parse_any(p, len, v6, &out->l4.icmp);
    if (rc < 0) return mior__reject(&out->reason, out->l4.icmp.reason, rc);
    out->layers |= v6 ? MIOR_LAYER_ICMPV6 : MIOR_LAYER_ICMP;
    out->payload_off = off + out->l4.icmp.payload_off;
    out->payload_len = out->l4.icmp.payload_len;
    return 0;
  default:
    break;
  }
  out->payload_off = off;
  out->payload_len = len;
  return mior__reject(&out->reason, MIOR_PROTO_L4_UNSUPPORTED, -EPROTONOSUPPORT);
}

/* Parse from the IP header at base + off (len bytes left) down.  version is 4, 6, or 0 to take
 * it from the packet. */
static int parse_ip(const uint8_t *base, uint32_t off, size_t len, int version, mior_frame_info *out) {
  const uint8_t *p = base + off;
  int rc;
  out->l3_off = off;
  if (version == 0) {
    if (len == 0) return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);
    version = p[0] >> 4;
    if (version != 4 && version != 6) return mior__reject(&out->reason, MIOR_PROTO_IP_VERSION, -EBADMSG);
  }
  uint32_t l4_off, l4_len;
  int fragment;
  if (version == 4) {
    rc = mior_ipv4_parse(p, len, &out->l3.ipv4);
    if (rc < 0) return mior__reject(&out->reason, out->l3.ipv4.reason, rc);
    out->layers |= MIOR_LAYER_IPV4;
    out->ip_proto = out->l3.ipv4.protocol;
    l4_off = off + out->l3.ipv4.payload_off;
    l4_len = out->l3.ipv4.payload_len;
    fragment = out->l3.ipv4.more_fragments || out->l3.ipv4.frag_off;
  } else {
    rc = mior_ipv6_parse(p, len, &out->l3.ipv6);
    if (rc < 0) return mior__reject(&out->reason, out->l3.ipv6.reason, rc);
    out->layers |= MIOR_LAYER_IPV6;
    out->ip_proto = out->l3.ipv6.protocol;
    l4_off = off + out->l3.ipv6.payload_off;
    l4_len = out->l3.ipv6.payload_len;
    fragment = out->l3.ipv6.is_fragment;
  }
  if (fragment) {
    /* Even a first fragment holds only part of the datagram, so its UDP length or checksum
     * cannot be checked here: stop at IP and let reassembly (the kernel or a stack) decide. */
    out->layers |= MIOR_LAYER_FRAGMENT;
    out->l4_off = out->payload_off = l4_off;
    out->payload_len = l4_len;
    return 0;
  }
  return parse_l4(base, l4_off, l4_len, version == 6, out);
}

int mior_frame_parse(const void *frame, size_t len, mior_frame_info *out) {
  const uint8_t *p = frame;
  int rc;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (frame == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  /* Offsets are 32-bit; no frame comes near 4 GiB, but a caller's length could. */
  if (len > UINT32_MAX) len = UINT32_MAX;

  rc = mior_eth_parse(p, len, &out->eth);
  if (rc < 0) return mior__reject(&out->reason, out->eth.reason, rc);
  out->layers |= MIOR_LAYER_ETH | (out->eth.vlan_count ? MIOR_LAYER_VLAN : 0);
  uint32_t off = out->eth.payload_off;
  out->l3_off = off;
  switch (out->eth.ethertype) {
  case MIOR_ETHERTYPE_ARP:
    rc = mior_arp_parse(p + off, len - off, &out->l3.arp);
    if (rc < 0) return mior__reject(&out->reason, out->l3.arp.reason, rc);
    out->layers |= MIOR_LAYER_ARP;
    return 0;
  case MIOR_ETHERTYPE_IPV4:
    return parse_ip(p, off, len - off, 4, out);
  case MIOR_ETHERTYPE_IPV6:
    return parse_ip(p, off, len - off, 6, out);
  default:
    return mior__reject(&out->reason, MIOR_PROTO_ETHERTYPE, -EPROTONOSUPPORT);
  }
}

int mior_ip_packet_parse(const void *pkt, size_t len, mior_frame_info *out) {
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (pkt == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  if (len > UINT32_MAX) len = UINT32_MAX;
  return parse_ip(pkt, 0, len, 0, out);
}

int mior_frame_l4_csum_ok(const void *buf, size_t len, const mior_frame_info *info) {
  const uint8_t *p = buf;
  if (buf == NULL || info == NULL || (info->layers & MIOR_LAYER_FRAGMENT)) return -EINVAL;
  uint32_t l4_len;
  uint8_t proto;
  if (info->layers & MIOR_LAYER_UDP)
    l4_len = info->l4.udp.len, proto = MIOR_IPPROTO_UDP;
  else if (info->layers & MIOR_LAYER_TCP)
    l4_len = info->l4.tcp.payload_off + info->l4.tcp.payload_len, proto = MIOR_IPPROTO_TCP;
  else if (info->layers & (MIOR_LAYER_ICMP | MIOR_LAYER_ICMPV6))
    l4_len = info->l4.icmp.payload_off + info->l4.icmp.payload_len, proto = info->ip_proto;
  else
    return -EINVAL;
  /* The info might not come from this buffer: never trust it to stay inside len. */
  if (info->l4_off > len || l4_len > len - info->l4_off) return -EINVAL;
  const uint8_t *seg = p + info->l4_off;
  if (info->layers & MIOR_LAYER_IPV4) {
    if (proto == MIOR_IPPROTO_ICMP) return mior_csum(seg, l4_len) == 0;
    return mior_csum_l4_verify_ipv4(info->l3.ipv4.src, info->l3.ipv4.dst, proto, seg, l4_len);
  }
  if (info->layers & MIOR_LAYER_IPV6)
    return mior_csum_l4_verify_ipv6(info->l3.ipv6.src, info->l3.ipv6.dst, proto, seg, l4_len);
  return -EINVAL;
}
