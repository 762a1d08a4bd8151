/* IPv4 and IPv6: parsers (with the option and extension header walks) and builders. */
/* These files are always part of the library: export, not import, the public names even when
 * compiled on their own (the CMake build defines MIOR_BUILDING too). */
#ifndef MIOR_BUILDING
#define MIOR_BUILDING
#endif
#include <string.h>

#include "common/internal.h"
#include "common/proto_internal.h"

/* ---- IPv4 ---- */

/* RFC 791 options: EOL (0) ends the list, NOP (1) is one byte, every other option has a length
 * byte counting itself and the kind, so at least 2, and must end inside the header. */
static int ipv4_options_ok(const uint8_t *o, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t kind = o[i];
    if (kind == 0) return 1;
    if (kind == 1) {
      i++;
      continue;
    }
    if (i + 1 >= len) return 0;
    uint8_t olen = o[i + 1];
    if (olen < 2 || olen > len - i) return 0;
    i += olen;
  }
  return 1;
}

int mior_ipv4_parse(const void *pkt, size_t len, mior_ipv4_info *out) {
  const uint8_t *p = pkt;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (pkt == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  if (len < MIOR_IPV4_HLEN) return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);
  if (p[0] >> 4 != 4) return mior__reject(&out->reason, MIOR_PROTO_IP_VERSION, -EBADMSG);

  size_t hlen = (size_t)(p[0] & 0x0f) * 4;
  size_t total = mior__rd16(p + 2);
  if (hlen < MIOR_IPV4_HLEN || hlen > total)
    return mior__reject(&out->reason, MIOR_PROTO_IPV4_IHL, -EBADMSG);
  if (total > len) return mior__reject(&out->reason, MIOR_PROTO_IPV4_TOTAL_LEN, -EBADMSG);
  /* The header checksum is computed in software by every stack (no offload leaves it partial),
   * so a mismatch means corruption. */
  if (mior_csum_fold(mior_csum_partial_scalar(p, hlen, 0)) != 0)
    return mior__reject(&out->reason, MIOR_PROTO_IPV4_CHECKSUM, -EBADMSG);
  if (!ipv4_options_ok(p + MIOR_IPV4_HLEN, hlen - MIOR_IPV4_HLEN))
    return mior__reject(&out->reason, MIOR_PROTO_IPV4_OPTION, -EBADMSG);

  uint16_t frag = mior__rd16(p + 6);
  out->tos = p[1];
  out->total_len = (uint16_t)total;
  out->id = mior__rd16(p + 4);
  out->dont_fragment = (frag & MIOR_IPV4_FLAG_DF) != 0;
  out->more_fragments = (frag & MIOR_IPV4_FLAG_MF) != 0;
  out->frag_off = (uint16_t)((frag & 0x1fff) * 8);
  out->ttl = p[8];
  out->protocol = p[9];
  memcpy(&out->csum, p + 10, 2);
  memcpy(out->src, p + 12, 4);
  memcpy(out->dst, p + 16, 4);
  out->hdr_len = (uint16_t)hlen;
  out->options_len = (uint16_t)(hlen - MIOR_IPV4_HLEN);
  out->payload_off = (uint32_t)hlen;
  out->payload_len = (uint32_t)(total - hlen);
  /* A fragment whose end lies past the largest datagram would overflow reassembly buffers
   * ("ping of death"): reject it here so no consumer has to remember. */
  if ((size_t)out->frag_off + out->payload_len > 0xffff)
    return mior__reject(&out->reason, MIOR_PROTO_IPV4_FRAGMENT, -EBADMSG);
  return 0;
}

int mior_ipv4_build(void *out, size_t cap, const mior_ipv4_params *prm, const void *payload,
                    size_t payload_len) {
  uint8_t *p = out;
  if (out == NULL || prm == NULL || (prm->options_len && prm->options == NULL) ||
      prm->options_len % 4 || prm->options_len > MIOR_IPV4_MAX_HLEN - MIOR_IPV4_HLEN)
    return mior__fail(-EINVAL, "mior_ipv4_build: NULL argument or bad options length");
  size_t hlen = MIOR_IPV4_HLEN + prm->options_len;
  if (payload_len > 0xffff - hlen)
    return mior__fail(-EMSGSIZE, "mior_ipv4_build: %lu payload bytes do not fit in IPv4", (unsigned long)payload_len);
  if (cap < hlen + payload_len)
    return mior__fail(-ENOSPC, "mior_ipv4_build: %lu bytes needed, %lu given", (unsigned long)(hlen + payload_len), (unsigned long)cap);
  /* The payload first: it may overlap where the header goes only if the caller placed it there
   * on purpose (payload == out + hlen, nothing to copy). */
  if (payload && payload != p + hlen) memmove(p + hlen, payload, payload_len);
  p[0] = (uint8_t)(0x40 | hlen / 4);
  p[1] = prm->tos;
  mior__wr16(p + 2, (uint16_t)(hlen + payload_len));
  mior__wr16(p + 4, prm->id);
  mior__wr16(p + 6, prm->dont_fragment ? MIOR_IPV4_FLAG_DF : 0);
  p[8] = prm->ttl;
  p[9] = prm->protocol;
  p[10] = p[11] = 0;
  memcpy(p + 12, prm->src, 4);
  memcpy(p + 16, prm->dst, 4);
  if (prm->options_len) memcpy(p + MIOR_IPV4_HLEN, prm->options, prm->options_len);
  uint16_t c = mior_csum(p, hlen);
  memcpy(p + 10, &c, 2);
  return (int)(hlen + payload_len);
}

/* ---- IPv6 ---- */

/* Hop-by-hop and destination options (RFC 8200, section 4.2): Pad1 is one byte, every other
 * option is type, length, data, and must end inside the header. */
static int ipv6_options_ok(const uint8_t *h, size_t hlen) {
  size_t i = 2;
  while (i < hlen) {
    if (h[i] == 0) {
      i++;
      continue;
    }
    if (i + 1 >= hlen) return 0;
    size_t olen = 2 + (size_t)h[i + 1];
    if (olen > hlen - i) return 0;
    i += olen;
  }
  return 1;
}

int mior_ipv6_parse(const void *pkt, size_t len, mior_ipv6_info *out) {
  const uint8_t *p = pkt;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (pkt == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  if (len < MIOR_IPV6_HLEN) return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);
  uint32_t vtf = mior__rd32(p);
  if (vtf >> 28 != 6) return mior__reject(&out->reason, MIOR_PROTO_IP_VERSION, -EBADMSG);

  out->traffic_class = (uint8_t)(vtf >> 20);
  out->flow_label = vtf & 0xfffff;
  out->payload_len_field = mior__rd16(p + 4);
  out->hop_limit = p[7];
  memcpy(out->src, p + 8, 16);
  memcpy(out->dst, p + 24, 16);

  uint8_t nh = p[6];
  size_t end = MIOR_IPV6_HLEN + (size_t)out->payload_len_field;
  if (out->payload_len_field == 0 && nh == MIOR_IPPROTO_HOPOPTS)
    return mior__reject(&out->reason, MIOR_PROTO_IPV6_JUMBO, -EPROTONOSUPPORT);
  if (end > len) return mior__reject(&out->reason, MIOR_PROTO_IPV6_PAYLOAD_LEN, -EBADMSG);

  size_t off = MIOR_IPV6_HLEN;
  for (;;) {
    size_t hlen;
    uint8_t bit;
    switch (nh) {
    case MIOR_IPPROTO_HOPOPTS:
    case MIOR_IPPROTO_ROUTING:
    case MIOR_IPPROTO_DSTOPTS:
      /* RFC 8200, section 4.1: hop-by-hop options may only come right after the header. */
      if (nh == MIOR_IPPROTO_HOPOPTS && out->ext_count != 0)
        return mior__reject(&out->reason, MIOR_PROTO_IPV6_EXT_ORDER, -EBADMSG);
      if (end - off < 2) return mior__reject(&out->reason, MIOR_PROTO_IPV6_EXT_TRUNCATED, -EBADMSG);
      hlen = ((size_t)p[off + 1] + 1) * 8;
      bit = nh == MIOR_IPPROTO_HOPOPTS   ? MIOR_IPV6_EXT_HOPOPTS
            : nh == MIOR_IPPROTO_ROUTING ? MIOR_IPV6_EXT_ROUTING
                                         : MIOR_IPV6_EXT_DSTOPTS;
      if (hlen > end - off) return mior__reject(&out->reason, MIOR_PROTO_IPV6_EXT_TRUNCATED, -EBADMSG);
      if (nh != MIOR_IPPROTO_ROUTING && !ipv6_options_ok(p + off, hlen))
        return mior__reject(&out->reason, MIOR_PROTO_IPV6_OPTION, -EBADMSG);
      break;
    case MIOR_IPPROTO_FRAGMENT:
      hlen = 8;
      bit = MIOR_IPV6_EXT_FRAGMENT;
      if (end - off < hlen) return mior__reject(&out->reason, MIOR_PROTO_IPV6_EXT_TRUNCATED, -EBADMSG);
      out->is_fragment = 1;
      out->frag_off = mior__rd16(p + off + 2) & 0xfff8;
      out->more_fragments = p[off + 3] & 1;
      out->frag_id = mior__rd32(p + off + 4);
      break;
    case MIOR_IPPROTO_AH:
      /* RFC 4302: the AH length is in 32-bit words, minus 2. */
      if (end - off < 2) return mior__reject(&out->reason, MIOR_PROTO_IPV6_EXT_TRUNCATED, -EBADMSG);
      hlen = ((size_t)p[off + 1] + 2) * 4;
      bit = MIOR_IPV6_EXT_AH;
      if (hlen > end - off) return mior__reject(&out->reason, MIOR_PROTO_IPV6_EXT_TRUNCATED, -EBADMSG);
      break;
    default:
      goto upper; /* the upper layer, ESP or "no next header": the walk ends */
    }
    if (out->ext_count == MIOR_IPV6_MAX_EXT)
      return mior__reject(&out->reason, MIOR_PROTO_IPV6_EXT_LIMIT, -EBADMSG);
    out->ext_count++;
    out->ext_seen |= bit;
    nh = p[off];
    off += hlen;
    /* Past a non-first fragment's header comes a piece of the middle of the datagram, not more
     * headers. */
    if (bit == MIOR_IPV6_EXT_FRAGMENT && out->frag_off != 0) break;
  }
upper:
  out->protocol = nh;
  out->ext_len = (uint32_t)(off - MIOR_IPV6_HLEN);
  out->payload_off = (uint32_t)off;
  out->payload_len = (uint32_t)(end - off);
  return 0;
}

int mior_ipv6_build(void *out, size_t cap, const mior_ipv6_params *prm, const void *payload,
                    size_t payload_len) {
  uint8_t *p = out;
  if (out == NULL || prm == NULL || prm->flow_label > 0xfffff)
    return mior__fail(-EINVAL, "mior_ipv6_build: NULL argument or flow label above 20 bits");
  if (payload_len > 0xffff)
    return mior__fail(-EMSGSIZE, "mior_ipv6_build: %lu payload bytes need a jumbogram", (unsigned long)payload_len);
  if (cap < MIOR_IPV6_HLEN + payload_len)
    return mior__fail(-ENOSPC, "mior_ipv6_build: %lu bytes needed, %lu given", (unsigned long)(40 + payload_len), (unsigned long)cap);
  if (payload && payload != p + MIOR_IPV6_HLEN) memmove(p + MIOR_IPV6_HLEN, payload, payload_len);
  mior__wr32(p, (uint32_t)6 << 28 | (uint32_t)prm->traffic_class << 20 | prm->flow_label);
  mior__wr16(p + 4, (uint16_t)payload_len);
  p[6] = prm->next_header;
  p[7] = prm->hop_limit;
  memcpy(p + 8, prm->src, 16);
  memcpy(p + 24, prm->dst, 16);
  return (int)(MIOR_IPV6_HLEN + payload_len);
}
