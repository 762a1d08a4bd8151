/* TCP (RFC 9293) with the options mior understands: MSS, window scale, SACK-permitted, SACK
 * blocks and timestamps (RFC 7323, RFC 2018). */
#ifndef MIOR_PROTO_TCP_H
#define MIOR_PROTO_TCP_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIOR_TCP_HLEN 20
#define MIOR_TCP_MAX_HLEN 60
#define MIOR_TCP_MAX_SACK 4

#define MIOR_TCP_FIN 0x01
#define MIOR_TCP_SYN 0x02
#define MIOR_TCP_RST 0x04
#define MIOR_TCP_PSH 0x08
#define MIOR_TCP_ACK 0x10
#define MIOR_TCP_URG 0x20
#define MIOR_TCP_ECE 0x40
#define MIOR_TCP_CWR 0x80

/* Option kinds. */
#define MIOR_TCPOPT_EOL 0
#define MIOR_TCPOPT_NOP 1
#define MIOR_TCPOPT_MSS 2
#define MIOR_TCPOPT_WSCALE 3
#define MIOR_TCPOPT_SACK_PERM 4
#define MIOR_TCPOPT_SACK 5
#define MIOR_TCPOPT_TS 8

#pragma pack(push, 1)
/* On the wire; network byte order. */
typedef struct mior_tcp_hdr {
  uint16_t sport, dport;
  uint32_t seq, ack;
  uint8_t doff_res; /* data offset (header length in 32-bit words) in the high nibble */
  uint8_t flags;    /* MIOR_TCP_* */
  uint16_t window;
  uint16_t csum;
  uint16_t urg_ptr;
} mior_tcp_hdr;
#pragma pack(pop)

/* Options, host order.  Each has a presence flag; on build, only present ones are written. */
typedef struct mior_tcp_opts {
  uint8_t mss_present, wscale_present, sack_permitted, ts_present;
  uint16_t mss;
  uint8_t wscale;
  uint8_t sack_count;                  /* SACK blocks (0..4) */
  uint32_t ts_val, ts_ecr;
  uint32_t sack[MIOR_TCP_MAX_SACK][2]; /* left and right edges */
  uint8_t unknown_count;               /* options of other kinds, skipped (parse only) */
} mior_tcp_opts;

typedef struct mior_tcp_info {
  mior_proto_reason reason;
  uint16_t sport, dport;
  uint32_t seq, ack;
  uint8_t flags;
  uint16_t window, urg_ptr;
  uint16_t csum;        /* as stored */
  uint16_t hdr_len;     /* 20..60 */
  mior_tcp_opts opts;
  uint32_t payload_off; /* = hdr_len */
  uint32_t payload_len;
} mior_tcp_info;

/* Walk an option area: EOL ends it, NOP is skipped, every other option needs a length byte >= 2
 * that stays inside the area (else -EBADMSG, MIOR_PROTO_TCP_OPTION).  Unknown kinds are skipped
 * and counted; a known kind with the wrong length is ignored, as Linux does. */
MIOR_API int mior_tcp_options_parse(const void *opts, size_t len, mior_tcp_opts *out);

/* Parse a TCP header; len is the bytes available (the IP payload).  Data offset must be >= 5 and
 * inside len.  Does not verify the checksum: see mior_csum_l4_verify_ipv4/6. */
MIOR_API int mior_tcp_parse(const void *seg, size_t len, mior_tcp_info *out);

/* Bytes of options mior_tcp_build writes for opts (a multiple of 4), or -EINVAL when they do not
 * fit in 40 bytes (e.g. timestamps and four SACK blocks) or a field is out of range. */
MIOR_API int mior_tcp_options_len(const mior_tcp_opts *opts);

typedef struct mior_tcp_params {
  uint16_t sport, dport;
  uint32_t seq, ack;
  uint8_t flags;
  uint16_t window, urg_ptr;
  const mior_tcp_opts *opts; /* NULL: none */
} mior_tcp_params;

/* Write a TCP header with options (laid out like Linux: MSS, SACK-permitted + timestamps, NOP +
 * window scale, NOP NOP + SACK blocks, NOP-padded to 4 bytes), then the payload (NULL: already
 * in place at out + 20 + mior_tcp_options_len(opts)), and the checksum over the pseudo-header of
 * addrs (required).  Returns header + payload bytes. */
MIOR_API int mior_tcp_build(void *out, size_t cap, const mior_tcp_params *p, const void *payload,
                            size_t payload_len, const mior_l3_addrs *addrs);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PROTO_TCP_H */
