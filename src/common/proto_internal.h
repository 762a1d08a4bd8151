/* Helpers shared by the wire-format parsers and builders (proto_*.c).  Not installed.
 * Fields are read and written byte by byte in network order, so the code needs no alignment
 * and no byte-swapping headers, and is the same on every CPU and OS. */
#ifndef MIOR_PROTO_INTERNAL_H
#define MIOR_PROTO_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "mior/proto/proto.h"

static inline uint16_t mior__rd16(const uint8_t *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t mior__rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void mior__wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static inline void mior__wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Record the reason (when there is a view to record it in) and return the error. */
static inline int mior__reject(mior_proto_reason *slot, mior_proto_reason reason, int err) {
  if (slot) *slot = reason;
  return err;
}

/* Parse any ICMP / ICMPv6 message header (not only echo), for mior_frame_parse. */
int mior__icmp_parse_any(const void *msg, size_t len, int v6, mior_icmp_info *out);

#endif
