/* Wire formats: constants, the rejection reasons every parser reports, and the address pair used
 * by the checksummed builders.
 *
 * Conventions for everything under include/mior/proto/:
 *  - The packed header structs (mior_*_hdr) mirror the wire exactly: multi-byte fields are in
 *    NETWORK byte order, as they sit in the packet.  They are for reading and writing packets in
 *    place; the parsers do not need them.
 *  - The parsed views (mior_*_info) hold HOST byte order numbers, except addresses (byte arrays
 *    in wire order) and checksums (as stored, see checksum.h).  Offsets in a view are bytes from
 *    the start of the buffer given to the parse function.
 *  - Parsers never read outside [buf, buf + len).  They return 0, -EINVAL (NULL argument),
 *    -EBADMSG (malformed) or -EPROTONOSUPPORT (well-formed but not something mior parses), and
 *    put the reason in the view's `reason` field (when the view pointer itself is not NULL).
 *    They do not record mior_last_error(): a hostile packet must stay cheap to reject.
 *  - Builders take an output buffer and its capacity and return the bytes written, -ENOSPC when
 *    the capacity is too small, -EMSGSIZE when the result cannot be represented, or -EINVAL.
 */
#ifndef MIOR_PROTO_TYPES_H
#define MIOR_PROTO_TYPES_H

#include "../common.h"
#include "../pkt.h" /* MIOR_AF_INET, MIOR_AF_INET6 */

#ifdef __cplusplus
extern "C" {
#endif

/* Ethertypes (host byte order values). */
#define MIOR_ETHERTYPE_IPV4 0x0800
#define MIOR_ETHERTYPE_ARP 0x0806
#define MIOR_ETHERTYPE_VLAN 0x8100 /* IEEE 802.1Q tag */
#define MIOR_ETHERTYPE_QINQ 0x88a8 /* IEEE 802.1ad service tag */
#define MIOR_ETHERTYPE_IPV6 0x86dd

/* IP protocol / IPv6 next-header numbers. */
#define MIOR_IPPROTO_HOPOPTS 0
#define MIOR_IPPROTO_ICMP 1
#define MIOR_IPPROTO_TCP 6
#define MIOR_IPPROTO_UDP 17
#define MIOR_IPPROTO_ROUTING 43
#define MIOR_IPPROTO_FRAGMENT 44
#define MIOR_IPPROTO_ESP 50
#define MIOR_IPPROTO_AH 51
#define MIOR_IPPROTO_ICMPV6 58
#define MIOR_IPPROTO_NONE 59
#define MIOR_IPPROTO_DSTOPTS 60

/* Why a parser rejected a packet (or MIOR_PROTO_OK).  The comments say which error goes with
 * each: B = -EBADMSG (malformed), U = -EPROTONOSUPPORT (not parsed by mior), I = -EINVAL. */
typedef enum mior_proto_reason {
  MIOR_PROTO_OK = 0,
  MIOR_PROTO_NULL_ARG,         /* I: NULL buffer or view */
  MIOR_PROTO_TRUNCATED,        /* B: shorter than the fixed header */
  MIOR_PROTO_ETH_8023,         /* U: 802.3 length field instead of an ethertype (LLC/SNAP) */
  MIOR_PROTO_VLAN_DEPTH,       /* U: more than two VLAN tags */
  MIOR_PROTO_ETHERTYPE,        /* U: ethertype is not ARP, IPv4 or IPv6 */
  MIOR_PROTO_ARP_FORMAT,       /* U: ARP not for Ethernet/IPv4 (htype, ptype, hlen, plen) */
  MIOR_PROTO_ARP_OP,           /* U: ARP operation is not request (1) or reply (2) */
  MIOR_PROTO_IP_VERSION,       /* B: version field wrong for the ethertype / not 4 or 6 */
  MIOR_PROTO_IPV4_IHL,         /* B: IHL < 5, or header longer than the total length */
  MIOR_PROTO_IPV4_TOTAL_LEN,   /* B: total length past the end of the buffer */
  MIOR_PROTO_IPV4_CHECKSUM,    /* B: header checksum does not verify */
  MIOR_PROTO_IPV4_OPTION,      /* B: option length 0/1 or past the header */
  MIOR_PROTO_IPV4_FRAGMENT,    /* B: fragment would end past 65535 bytes */
  MIOR_PROTO_IPV6_PAYLOAD_LEN, /* B: payload length past the end of the buffer */
  MIOR_PROTO_IPV6_JUMBO,       /* U: jumbogram (payload length 0 with hop-by-hop options) */
  MIOR_PROTO_IPV6_EXT_TRUNCATED, /* B: an extension header runs past the payload */
  MIOR_PROTO_IPV6_EXT_ORDER,   /* B: hop-by-hop options not first */
  MIOR_PROTO_IPV6_EXT_LIMIT,   /* B: more extension headers than mior walks (16) */
  MIOR_PROTO_IPV6_OPTION,      /* B: a hop-by-hop/destination option runs past its header */
  MIOR_PROTO_L4_UNSUPPORTED,   /* U: upper-layer protocol not UDP, TCP or ICMP(v6) */
  MIOR_PROTO_UDP_LEN,          /* B: UDP length < 8 or past the end of the IP payload */
  MIOR_PROTO_TCP_DOFF,         /* B: data offset < 5 or past the end of the segment */
  MIOR_PROTO_TCP_OPTION,       /* B: option length 0/1 or past the header */
  MIOR_PROTO_ICMP_NOT_ECHO,    /* U: ICMP message is not an echo request or reply */
  MIOR_PROTO_REASON_COUNT
} mior_proto_reason;

/* Text for a reason, e.g. "TCP option length is 0/1 or runs past the header".  Never NULL. */
MIOR_API const char *mior_proto_reason_str(mior_proto_reason reason);

/* Source and destination of an IP packet, for the pseudo-header of checksummed builders.
 * family is MIOR_AF_INET (first 4 bytes used) or MIOR_AF_INET6; addresses in wire order. */
typedef struct mior_l3_addrs {
  uint16_t family;
  uint8_t src[16];
  uint8_t dst[16];
} mior_l3_addrs;

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_TYPES_H */
