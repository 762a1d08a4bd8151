/* Ethernet, VLAN tags, ARP, Ethernet header synthesis, and the rejection reasons' text. */
/* These files are always part of the library: export, not import, the public names even when
 * compiled on their own (the CMake build defines MIOR_BUILDING too). */
#ifndef MIOR_BUILDING
#define MIOR_BUILDING
#endif
#include <string.h>

#include "common/internal.h"
#include "common/proto_internal.h"

static const char *const reason_text[MIOR_PROTO_REASON_COUNT] = {
    [MIOR_PROTO_OK] = "ok",
    [MIOR_PROTO_NULL_ARG] = "NULL buffer or result pointer",
    [MIOR_PROTO_TRUNCATED] = "packet shorter than its fixed header",
    [MIOR_PROTO_ETH_8023] = "802.3 length field instead of an ethertype (LLC/SNAP)",
    [MIOR_PROTO_VLAN_DEPTH] = "more than two VLAN tags",
    [MIOR_PROTO_ETHERTYPE] = "ethertype is not ARP, IPv4 or IPv6",
    [MIOR_PROTO_ARP_FORMAT] = "ARP is not for Ethernet and IPv4",
    [MIOR_PROTO_ARP_OP] = "ARP operation is not request or reply",
    [MIOR_PROTO_IP_VERSION] = "IP version field is wrong",
    [MIOR_PROTO_IPV4_IHL] = "IPv4 header length below 20 or above the total length",
    [MIOR_PROTO_IPV4_TOTAL_LEN] = "IPv4 total length runs past the end of the buffer",
    [MIOR_PROTO_IPV4_CHECKSUM] = "IPv4 header checksum does not verify",
    [MIOR_PROTO_IPV4_OPTION] = "IPv4 option length is 0/1 or runs past the header",
    [MIOR_PROTO_IPV4_FRAGMENT] = "IPv4 fragment ends past 65535 bytes",
    [MIOR_PROTO_IPV6_PAYLOAD_LEN] = "IPv6 payload length runs past the end of the buffer",
    [MIOR_PROTO_IPV6_JUMBO] = "IPv6 jumbogram (not supported)",
    [MIOR_PROTO_IPV6_EXT_TRUNCATED] = "IPv6 extension header runs past the payload",
    [MIOR_PROTO_IPV6_EXT_ORDER] = "IPv6 hop-by-hop options header is not first",
    [MIOR_PROTO_IPV6_EXT_LIMIT] = "too many IPv6 extension headers",
    [MIOR_PROTO_IPV6_OPTION] = "IPv6 option runs past its extension header",
    [MIOR_PROTO_L4_UNSUPPORTED] = "upper-layer protocol is not UDP, TCP or ICMP",
    [MIOR_PROTO_UDP_LEN] = "UDP length below 8 or past the end of the IP payload",
    [MIOR_PROTO_TCP_DOFF] = "TCP data offset below 5 or past the end of the segment",
    [MIOR_PROTO_TCP_OPTION] = "TCP option length is 0/1 or runs past the header",
    [MIOR_PROTO_ICMP_NOT_ECHO] = "ICMP message is not an echo request or reply",
};

const char *mior_proto_reason_str(mior_proto_reason reason) {
  if ((unsigned)reason >= MIOR_PROTO_REASON_COUNT || reason_text[reason] == NULL)
    return "unknown reason";
  return reason_text[reason];
}

/* ---- Ethernet ---- */

static int is_vlan_type(uint16_t t) {
  return t == MIOR_ETHERTYPE_VLAN || t == MIOR_ETHERTYPE_QINQ;
}

int mior_eth_parse(const void *frame, size_t len, mior_eth_info *out) {
  const uint8_t *p = frame;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (frame == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  if (len < MIOR_ETH_HLEN) return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);

  memcpy(out->dst, p, 6);
  memcpy(out->src, p + 6, 6);
  size_t off = 12; /* the ethertype (or tag protocol identifier) */
  uint16_t type = mior__rd16(p + off);
  while (is_vlan_type(type)) {
    if (out->vlan_count == MIOR_ETH_MAX_VLANS)
      return mior__reject(&out->reason, MIOR_PROTO_VLAN_DEPTH, -EPROTONOSUPPORT);
    /* A tag is TPID (already read) + TCI + the next type: 4 more bytes after the TPID. */
    if (len < off + 2 + MIOR_VLAN_HLEN)
      return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);
    uint16_t tci = mior__rd16(p + off + 2);
    if (out->vlan_count == 0) {
      out->vlan_id = tci & 0x0fff;
      out->vlan_pcp = (uint8_t)(tci >> 13);
    } else {
      out->inner_vlan_id = tci & 0x0fff;
    }
    out->vlan_count++;
    off += MIOR_VLAN_HLEN;
    type = mior__rd16(p + off);
  }
  out->ethertype = type;
  out->payload_off = (uint32_t)(off + 2);
  out->payload_len = (uint32_t)(len - (off + 2));
  if (type < 0x0600) return mior__reject(&out->reason, MIOR_PROTO_ETH_8023, -EPROTONOSUPPORT);
  return 0;
}

int mior_eth_build(void *out, size_t cap, const uint8_t dst[6], const uint8_t src[6],
                   uint16_t ethertype, int vlan_tci) {
  uint8_t *p = out;
  size_t need = vlan_tci >= 0 ? MIOR_ETH_HLEN + MIOR_VLAN_HLEN : MIOR_ETH_HLEN;
  if (out == NULL || dst == NULL || src == NULL || vlan_tci > 0xffff)
    return mior__fail(-EINVAL, "mior_eth_build: NULL argument or VLAN TCI out of range");
  if (cap < need) return mior__fail(-ENOSPC, "mior_eth_build: %lu bytes needed, %lu given", (unsigned long)need, (unsigned long)cap);
  memmove(p, dst, 6);
  memmove(p + 6, src, 6);
  if (vlan_tci >= 0) {
    mior__wr16(p + 12, MIOR_ETHERTYPE_VLAN);
    mior__wr16(p + 14, (uint16_t)vlan_tci);
    mior__wr16(p + 16, ethertype);
  } else {
    mior__wr16(p + 12, ethertype);
  }
  return (int)need;
}

/* ---- Ethernet header synthesis ---- */

static int ip_ethertype(const void *ip_packet, size_t ip_len, uint16_t *type) {
  if (ip_len == 0) return -EBADMSG;
  switch (((const uint8_t *)ip_packet)[0] >> 4) {
  case 4: *type = MIOR_ETHERTYPE_IPV4; return 0;
  case 6: *type = MIOR_ETHERTYPE_IPV6; return 0;
  default: return -EBADMSG;
  }
}

static void write_eth(uint8_t *h, const uint8_t *src_mac, const uint8_t *dst_mac, uint16_t type) {
  memcpy(h, dst_mac, 6);
  memcpy(h + 6, src_mac, 6);
  mior__wr16(h + 12, type);
}

int mior_eth_synthesize(void *out, size_t cap, const void *ip_packet, size_t ip_len,
                        const uint8_t src_mac[6], const uint8_t dst_mac[6]) {
  uint16_t type;
  if (out == NULL || ip_packet == NULL || src_mac == NULL || dst_mac == NULL)
    return mior__fail(-EINVAL, "mior_eth_synthesize: NULL argument");
  if (ip_len > INT32_MAX - MIOR_ETH_HLEN) return mior__fail(-EMSGSIZE, "mior_eth_synthesize: packet too long");
  if (ip_ethertype(ip_packet, ip_len, &type) < 0)
    return mior__fail(-EBADMSG, "mior_eth_synthesize: not an IPv4 or IPv6 packet");
  if (cap < ip_len + MIOR_ETH_HLEN)
    return mior__fail(-ENOSPC, "mior_eth_synthesize: %lu bytes needed, %lu given", (unsigned long)(ip_len + 14), (unsigned long)cap);
  uint8_t *o = out;
  /* The packet first (it may overlap the header's place), then the header. */
  if (o + MIOR_ETH_HLEN != (const uint8_t *)ip_packet) memmove(o + MIOR_ETH_HLEN, ip_packet, ip_len);
  write_eth(o, src_mac, dst_mac, type);
  return (int)(ip_len + MIOR_ETH_HLEN);
}

int mior_eth_synthesize_inplace(void *ip_packet, size_t ip_len, size_t headroom,
                                const uint8_t src_mac[6], const uint8_t dst_mac[6]) {
  uint16_t type;
  if (ip_packet == NULL || src_mac == NULL || dst_mac == NULL)
    return mior__fail(-EINVAL, "mior_eth_synthesize_inplace: NULL argument");
  if (ip_len > INT32_MAX - MIOR_ETH_HLEN) return mior__fail(-EMSGSIZE, "mior_eth_synthesize_inplace: packet too long");
  if (ip_ethertype(ip_packet, ip_len, &type) < 0)
    return mior__fail(-EBADMSG, "mior_eth_synthesize_inplace: not an IPv4 or IPv6 packet");
  if (headroom < MIOR_ETH_HLEN)
    return mior__fail(-ENOSPC, "mior_eth_synthesize_inplace: %lu bytes of headroom, 14 needed", (unsigned long)headroom);
  write_eth((uint8_t *)ip_packet - MIOR_ETH_HLEN, src_mac, dst_mac, type);
  return (int)(ip_len + MIOR_ETH_HLEN);
}

/* ---- ARP ---- */

int mior_arp_parse(const void *msg, size_t len, mior_arp_info *out) {
  const uint8_t *p = msg;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (msg == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  if (len < MIOR_ARP_LEN) return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);
  if (mior__rd16(p) != 1 || mior__rd16(p + 2) != MIOR_ETHERTYPE_IPV4 || p[4] != 6 || p[5] != 4)
    return mior__reject(&out->reason, MIOR_PROTO_ARP_FORMAT, -EPROTONOSUPPORT);
  out->op = mior__rd16(p + 6);
  memcpy(out->sha, p + 8, 6);
  memcpy(out->spa, p + 14, 4);
  memcpy(out->tha, p + 18, 6);
  memcpy(out->tpa, p + 24, 4);
  if (out->op != MIOR_ARP_REQUEST && out->op != MIOR_ARP_REPLY)
    return mior__reject(&out->reason, MIOR_PROTO_ARP_OP, -EPROTONOSUPPORT);
  return 0;
}

int mior_arp_build(void *out, size_t cap, uint16_t op, const uint8_t sha[6], const uint8_t spa[4],
                   const uint8_t tha[6], const uint8_t tpa[4]) {
  uint8_t *p = out;
  if (out == NULL || sha == NULL || spa == NULL || tpa == NULL ||
      (op != MIOR_ARP_REQUEST && op != MIOR_ARP_REPLY) || (tha == NULL && op == MIOR_ARP_REPLY))
    return mior__fail(-EINVAL, "mior_arp_build: NULL address or bad operation %u", op);
  if (cap < MIOR_ARP_LEN) return mior__fail(-ENOSPC, "mior_arp_build: 28 bytes needed, %lu given", (unsigned long)cap);
  mior__wr16(p, 1);
  mior__wr16(p + 2, MIOR_ETHERTYPE_IPV4);
  p[4] = 6;
  p[5] = 4;
  mior__wr16(p + 6, op);
  memcpy(p + 8, sha, 6);
  memcpy(p + 14, spa, 4);
  if (tha)
    memcpy(p + 18, tha, 6);
  else
    memset(p + 18, 0, 6);
  memcpy(p + 24, tpa, 4);
  return MIOR_ARP_LEN;
}
