/* ICMPv4 (RFC 792) and ICMPv6 (RFC 4443): the common header, and echo request/reply. */
#ifndef MIOR_PROTO_ICMP_H
#define MIOR_PROTO_ICMP_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIOR_ICMP_HLEN 8
#define MIOR_ICMP_ECHO_REPLY 0
#define MIOR_ICMP_ECHO_REQUEST 8
#define MIOR_ICMPV6_ECHO_REQUEST 128
#define MIOR_ICMPV6_ECHO_REPLY 129

#pragma pack(push, 1)
/* On the wire; network byte order.  id and seq are meaningful for echo messages only. */
typedef struct mior_icmp_echo_hdr {
  uint8_t type, code;
  uint16_t csum; /* ICMPv4: over the message; ICMPv6: with the IPv6 pseudo-header */
  uint16_t id, seq;
} mior_icmp_echo_hdr;
#pragma pack(pop)

typedef struct mior_icmp_info {
  mior_proto_reason reason;
  uint8_t type, code;
  uint8_t is_echo;      /* echo request or reply: id and seq are valid */
  uint16_t csum;        /* as stored */
  uint16_t id, seq;     /* host order */
  uint32_t payload_off; /* 8 */
  uint32_t payload_len; /* len - 8 */
} mior_icmp_info;

/* Parse an ICMPv4 / ICMPv6 echo request or reply (len: the IP payload).  Other message types are
 * -EPROTONOSUPPORT, MIOR_PROTO_ICMP_NOT_ECHO (type and code are still filled in). */
MIOR_API int mior_icmp_echo_parse(const void *msg, size_t len, mior_icmp_info *out);
MIOR_API int mior_icmp6_echo_parse(const void *msg, size_t len, mior_icmp_info *out);

/* Write an echo message: type MIOR_ICMP_ECHO_REQUEST or _REPLY (else -EINVAL), then the payload
 * (NULL: already in place at out + 8), with the checksum.  Returns 8 + payload_len. */
MIOR_API int mior_icmp_echo_build(void *out, size_t cap, uint8_t type, uint16_t id, uint16_t seq,
                                  const void *payload, size_t payload_len);

/* ICMPv6: type MIOR_ICMPV6_ECHO_REQUEST or _REPLY; the checksum covers the pseudo-header of
 * src and dst (wire order). */
MIOR_API int mior_icmp6_echo_build(void *out, size_t cap, uint8_t type, uint16_t id, uint16_t seq,
                                   const void *payload, size_t payload_len, const uint8_t src[16],
                                   const uint8_t dst[16]);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_ICMP_H */
