/* Ethernet II with IEEE 802.1Q / 802.1ad VLAN tags, and Ethernet header synthesis for packets
 * that arrive without one (IP-level sockets). */
#ifndef MIOR_PROTO_ETH_H
#define MIOR_PROTO_ETH_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIOR_ETH_ALEN 6
#define MIOR_ETH_HLEN 14   /* without VLAN tags */
#define MIOR_VLAN_HLEN 4   /* one tag */
#define MIOR_ETH_MAX_VLANS 2

#pragma pack(push, 1)
/* On the wire; multi-byte fields in network byte order. */
typedef struct mior_eth_hdr {
  uint8_t dst[MIOR_ETH_ALEN];
  uint8_t src[MIOR_ETH_ALEN];
  uint16_t ethertype; /* network byte order; 0x8100/0x88a8 when a VLAN tag follows */
} mior_eth_hdr;

/* The 4 bytes after a VLAN ethertype; network byte order. */
typedef struct mior_vlan_hdr {
  uint16_t tci;       /* priority (3 bits), drop eligible (1), VLAN id (12) */
  uint16_t ethertype; /* the encapsulated ethertype (or the next tag's) */
} mior_vlan_hdr;
#pragma pack(pop)

/* Parsed Ethernet header: host byte order. */
typedef struct mior_eth_info {
  mior_proto_reason reason;
  uint8_t dst[MIOR_ETH_ALEN];
  uint8_t src[MIOR_ETH_ALEN];
  uint16_t ethertype;   /* after the VLAN tags */
  uint8_t vlan_count;   /* 0, 1 or 2 tags */
  uint8_t vlan_pcp;     /* outer tag's priority code point */
  uint16_t vlan_id;     /* outer tag's VLAN id (0 when untagged) */
  uint16_t inner_vlan_id; /* second tag's VLAN id (QinQ), else 0 */
  uint32_t payload_off; /* 14, 18 or 22 */
  uint32_t payload_len; /* len - payload_off (may include Ethernet padding) */
} mior_eth_info;

/* Parse the Ethernet header and up to two VLAN tags.  Any ethertype >= 0x0600 is accepted here
 * (mior_frame_parse decides what it can go on with); a length field (< 0x0600) is
 * -EPROTONOSUPPORT, MIOR_PROTO_ETH_8023. */
MIOR_API int mior_eth_parse(const void *frame, size_t len, mior_eth_info *out);

/* Write an Ethernet header (14 bytes) or, when vlan_tci is 0..0xffff, an 802.1Q tagged one (18
 * bytes); vlan_tci < 0 means untagged.  ethertype is a host value.  Returns the header length. */
MIOR_API int mior_eth_build(void *out, size_t cap, const uint8_t dst[6], const uint8_t src[6],
                            uint16_t ethertype, int vlan_tci);

/* Build the frame an Ethernet consumer expects from a packet that starts at the IP header: a
 * 14-byte header (ethertype from the IP version nibble) followed by the packet, copied to out
 * (ip_packet may already sit at out + 14, or overlap out: the copy is a memmove).  Returns
 * ip_len + 14, -EBADMSG if the packet is empty or its version is not 4 or 6, -ENOSPC.  Only the
 * version nibble is checked: use mior_ip_packet_parse to validate the packet itself. */
MIOR_API int mior_eth_synthesize(void *out, size_t cap, const void *ip_packet, size_t ip_len,
                                 const uint8_t src_mac[6], const uint8_t dst_mac[6]);

/* Zero-copy form: write the 14-byte header into the headroom in front of ip_packet (which must
 * have at least 14 writable bytes before it: headroom >= 14, else -ENOSPC).  The frame then
 * starts at (uint8_t *)ip_packet - 14.  Returns ip_len + 14 or a negative errno as above. */
MIOR_API int mior_eth_synthesize_inplace(void *ip_packet, size_t ip_len, size_t headroom,
                                         const uint8_t src_mac[6], const uint8_t dst_mac[6]);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_ETH_H */
