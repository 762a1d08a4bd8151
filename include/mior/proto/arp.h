/* ARP for IPv4 over Ethernet (RFC 826). */
#ifndef MIOR_PROTO_ARP_H
#define MIOR_PROTO_ARP_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIOR_ARP_LEN 28
#define MIOR_ARP_REQUEST 1
#define MIOR_ARP_REPLY 2

#pragma pack(push, 1)
/* On the wire; multi-byte fields in network byte order. */
typedef struct mior_arp_hdr {
  uint16_t htype; /* 1: Ethernet */
  uint16_t ptype; /* 0x0800: IPv4 */
  uint8_t hlen;   /* 6 */
  uint8_t plen;   /* 4 */
  uint16_t oper;  /* 1 request, 2 reply */
  uint8_t sha[6], spa[4], tha[6], tpa[4];
} mior_arp_hdr;
#pragma pack(pop)

typedef struct mior_arp_info {
  mior_proto_reason reason;
  uint16_t op; /* host order */
  uint8_t sha[6], spa[4], tha[6], tpa[4];
} mior_arp_info;

/* Parse an ARP message (the Ethernet payload).  Only Ethernet/IPv4 requests and replies are
 * accepted; trailing bytes (Ethernet padding) are ignored. */
MIOR_API int mior_arp_parse(const void *msg, size_t len, mior_arp_info *out);

/* Write a 28-byte ARP message.  op is MIOR_ARP_REQUEST or MIOR_ARP_REPLY (else -EINVAL); tha may
 * be NULL for a request (zeros).  Returns 28. */
MIOR_API int mior_arp_build(void *out, size_t cap, uint16_t op, const uint8_t sha[6],
                            const uint8_t spa[4], const uint8_t tha[6], const uint8_t tpa[4]);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_ARP_H */
