/* IPv4 (RFC 791, with options) and IPv6 (RFC 8200, with the extension header walk). */
#ifndef MIOR_PROTO_IP_H
#define MIOR_PROTO_IP_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIOR_IPV4_HLEN 20       /* without options */
#define MIOR_IPV4_MAX_HLEN 60
#define MIOR_IPV6_HLEN 40
#define MIOR_IPV6_MAX_EXT 16    /* extension headers walked before giving up */

#define MIOR_IPV4_FLAG_DF 0x4000 /* in the host-order flags/fragment word */
#define MIOR_IPV4_FLAG_MF 0x2000

#pragma pack(push, 1)
/* On the wire; multi-byte fields in network byte order. */
typedef struct mior_ipv4_hdr {
  uint8_t ver_ihl;    /* version (4) in the high nibble, header length in 32-bit words low */
  uint8_t tos;        /* DSCP and ECN */
  uint16_t total_len; /* header + payload */
  uint16_t id;
  uint16_t frag;      /* flags (reserved, DF, MF) and fragment offset in 8-byte units */
  uint8_t ttl;
  uint8_t protocol;
  uint16_t csum;      /* header checksum, see checksum.h */
  uint8_t src[4];
  uint8_t dst[4];
} mior_ipv4_hdr;

/* On the wire; multi-byte fields in network byte order. */
typedef struct mior_ipv6_hdr {
  uint32_t ver_tc_flow; /* version (6), traffic class (8 bits), flow label (20 bits) */
  uint16_t payload_len; /* bytes after this header, extension headers included */
  uint8_t next_header;
  uint8_t hop_limit;
  uint8_t src[16];
  uint8_t dst[16];
} mior_ipv6_hdr;

/* Fragment extension header; network byte order. */
typedef struct mior_ipv6_frag_hdr {
  uint8_t next_header;
  uint8_t reserved;
  uint16_t frag; /* offset in 8-byte units << 3, M flag in bit 0 */
  uint32_t id;
} mior_ipv6_frag_hdr;
#pragma pack(pop)

/* Parsed IPv4 header; host byte order except addresses. */
typedef struct mior_ipv4_info {
  mior_proto_reason reason;
  uint8_t src[4], dst[4];
  uint8_t tos, ttl, protocol;
  uint8_t dont_fragment, more_fragments;
  uint16_t id;
  uint16_t frag_off;    /* fragment offset in BYTES */
  uint16_t total_len;
  uint16_t hdr_len;     /* 20..60 */
  uint16_t options_len; /* hdr_len - 20; the options start at byte 20 */
  uint16_t csum;        /* as stored */
  uint32_t payload_off; /* = hdr_len */
  uint32_t payload_len; /* total_len - hdr_len (bytes after total_len are padding, ignored) */
} mior_ipv4_info;

/* Extension headers seen (mior_ipv6_info.ext_seen). */
#define MIOR_IPV6_EXT_HOPOPTS 0x01
#define MIOR_IPV6_EXT_ROUTING 0x02
#define MIOR_IPV6_EXT_FRAGMENT 0x04
#define MIOR_IPV6_EXT_DSTOPTS 0x08
#define MIOR_IPV6_EXT_AH 0x10

/* Parsed IPv6 header and extension header chain; host byte order except addresses. */
typedef struct mior_ipv6_info {
  mior_proto_reason reason;
  uint8_t src[16], dst[16];
  uint8_t traffic_class, hop_limit;
  uint8_t protocol;     /* upper layer: the next header after the last extension header walked
                           (ESP and "no next header" end the walk and appear here) */
  uint8_t ext_count;    /* extension headers walked */
  uint8_t ext_seen;     /* MIOR_IPV6_EXT_* */
  uint8_t is_fragment, more_fragments;
  uint32_t flow_label;
  uint16_t payload_len_field; /* the header's payload length */
  uint16_t frag_off;    /* fragment offset in BYTES (when is_fragment) */
  uint32_t frag_id;
  uint32_t ext_len;     /* bytes of extension headers */
  uint32_t payload_off; /* 40 + ext_len: first byte of the upper layer */
  uint32_t payload_len; /* upper-layer bytes */
} mior_ipv6_info;

/* Parse an IPv4 header: version 4, IHL >= 5, header within the total length, total length within
 * len (extra bytes are link padding), header checksum, and the option TLVs (EOL, NOP, others
 * with a length byte >= 2 inside the header). */
MIOR_API int mior_ipv4_parse(const void *pkt, size_t len, mior_ipv4_info *out);

/* Parse an IPv6 header and walk hop-by-hop (first only), routing, fragment, destination options
 * and AH headers up to the upper layer; each must lie inside the payload length, and option
 * TLVs inside their header.  A non-first fragment ends the walk at the fragment header. */
MIOR_API int mior_ipv6_parse(const void *pkt, size_t len, mior_ipv6_info *out);

/* Build parameters.  Addresses in wire order, other fields host values. */
typedef struct mior_ipv4_params {
  uint8_t src[4], dst[4];
  uint8_t protocol, ttl, tos;
  uint8_t dont_fragment; /* nonzero: set DF */
  uint16_t id;
  const void *options;   /* NULL or options_len bytes, a multiple of 4, at most 40 */
  size_t options_len;
} mior_ipv4_params;

typedef struct mior_ipv6_params {
  uint8_t src[16], dst[16];
  uint8_t next_header, hop_limit, traffic_class;
  uint32_t flow_label; /* 20 bits */
} mior_ipv6_params;

/* Write an IPv4 header (with options and its checksum) followed by the payload.  payload NULL
 * means it is already in place at out + header length.  Returns header + payload bytes;
 * -EMSGSIZE above 65535 bytes. */
MIOR_API int mior_ipv4_build(void *out, size_t cap, const mior_ipv4_params *p,
                             const void *payload, size_t payload_len);

/* Write an IPv6 header followed by the payload (which may begin with extension headers the
 * caller wrote; next_header names the first).  payload NULL: already in place at out + 40.
 * Returns 40 + payload_len; -EMSGSIZE above 65535 payload bytes. */
MIOR_API int mior_ipv6_build(void *out, size_t cap, const mior_ipv6_params *p,
                             const void *payload, size_t payload_len);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_IP_H */
