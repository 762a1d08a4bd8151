/* Whole-packet parsers: Ethernet -> VLAN -> ARP | IPv4 | IPv6 -> UDP | TCP | ICMP(v6).  Used by
 * the receive path and the fuzz harnesses. */
#ifndef MIOR_PROTO_FRAME_H
#define MIOR_PROTO_FRAME_H

#include "types.h"
#include "eth.h"
#include "arp.h"
#include "ip.h"
#include "udp.h"
#include "tcp.h"
#include "icmp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Layers found (mior_frame_info.layers). */
#define MIOR_LAYER_ETH 0x001
#define MIOR_LAYER_VLAN 0x002
#define MIOR_LAYER_ARP 0x004
#define MIOR_LAYER_IPV4 0x008
#define MIOR_LAYER_IPV6 0x010
#define MIOR_LAYER_UDP 0x020
#define MIOR_LAYER_TCP 0x040
#define MIOR_LAYER_ICMP 0x080   /* ICMPv4 */
#define MIOR_LAYER_ICMPV6 0x100
#define MIOR_LAYER_FRAGMENT 0x200 /* an IP fragment: the upper layer is not parsed */

typedef struct mior_frame_info {
  mior_proto_reason reason; /* why parsing stopped; MIOR_PROTO_OK when it reached the end */
  uint32_t layers;          /* MIOR_LAYER_*: the layers parsed successfully */
  uint32_t l3_off;          /* offsets from the start of the buffer given to the parser */
  uint32_t l4_off;          /* upper layer (also set for fragments and unknown protocols) */
  uint32_t payload_off;     /* application data (after the UDP/TCP/ICMP header) */
  uint32_t payload_len;
  uint8_t ip_proto;         /* upper-layer protocol of an IP packet, else 0 */
  mior_eth_info eth;        /* valid with MIOR_LAYER_ETH */
  union {
    mior_arp_info arp;      /* MIOR_LAYER_ARP */
    mior_ipv4_info ipv4;    /* MIOR_LAYER_IPV4 */
    mior_ipv6_info ipv6;    /* MIOR_LAYER_IPV6 */
  } l3;
  union {
    mior_udp_info udp;      /* MIOR_LAYER_UDP */
    mior_tcp_info tcp;      /* MIOR_LAYER_TCP */
    mior_icmp_info icmp;    /* MIOR_LAYER_ICMP or MIOR_LAYER_ICMPV6 (any type, not only echo) */
  } l4;
} mior_frame_info;

/* Parse an Ethernet frame down to the application payload.  Returns 0 when every layer was
 * understood (an IP fragment stops after IP and is still 0); -EBADMSG when a layer is malformed;
 * -EPROTONOSUPPORT when a layer is one mior does not parse (unknown ethertype or upper protocol);
 * -EINVAL for NULL.  On failure, `layers` and the views of the layers before the failing one
 * stay valid, and `reason` says what stopped the walk. */
MIOR_API int mior_frame_parse(const void *frame, size_t len, mior_frame_info *out);

/* The same for a packet that starts at the IP header (raw IP sockets); the version nibble picks
 * IPv4 or IPv6.  l3_off is 0 and MIOR_LAYER_ETH is not set. */
MIOR_API int mior_ip_packet_parse(const void *pkt, size_t len, mior_frame_info *out);

/* Verify the UDP/TCP/ICMP(v6) checksum of a parsed packet; buf and len are what was given to the
 * parser.  Returns 1 valid, 0 invalid, -EINVAL for NULL or when info has no such layer (or is a
 * fragment). */
MIOR_API int mior_frame_l4_csum_ok(const void *buf, size_t len, const mior_frame_info *info);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_FRAME_H */
