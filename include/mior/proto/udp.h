/* UDP (RFC 768). */
#ifndef MIOR_PROTO_UDP_H
#define MIOR_PROTO_UDP_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIOR_UDP_HLEN 8

#pragma pack(push, 1)
/* On the wire; network byte order. */
typedef struct mior_udp_hdr {
  uint16_t sport, dport;
  uint16_t len;  /* header + data */
  uint16_t csum; /* 0: none (IPv4 only) */
} mior_udp_hdr;
#pragma pack(pop)

typedef struct mior_udp_info {
  mior_proto_reason reason;
  uint16_t sport, dport; /* host order */
  uint16_t len;          /* the length field */
  uint16_t csum;         /* as stored */
  uint32_t payload_off;  /* 8 */
  uint32_t payload_len;  /* len - 8 */
} mior_udp_info;

/* Parse a UDP header; len is the bytes available (the IP payload).  The length field must be
 * >= 8 and <= len (a shorter one trims the datagram, as Linux does).  Does not verify the
 * checksum (offloads leave it partial on transmit): see mior_csum_l4_verify_ipv4/6. */
MIOR_API int mior_udp_parse(const void *seg, size_t len, mior_udp_info *out);

/* Write a UDP header followed by the payload (NULL: already in place at out + 8) and fill the
 * checksum over the pseudo-header of addrs.  addrs NULL leaves the checksum 0, which only IPv4
 * allows.  Returns 8 + payload_len; -EMSGSIZE above 65535 bytes. */
MIOR_API int mior_udp_build(void *out, size_t cap, uint16_t sport, uint16_t dport,
                            const void *payload, size_t payload_len, const mior_l3_addrs *addrs);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_UDP_H */
