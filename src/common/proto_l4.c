/* UDP, TCP (with options) and ICMP/ICMPv6 echo: parsers and builders. */
/* These files are always part of the library: export, not import, the public names even when
 * compiled on their own (the CMake build defines MIOR_BUILDING too). */
#ifndef MIOR_BUILDING
#define MIOR_BUILDING
#endif
#include <string.h>

#include "common/internal.h"
#include "common/proto_internal.h"

/* Pseudo-header checksum of a finished segment for the address family in addrs. */
static uint16_t l4_csum(const mior_l3_addrs *a, uint8_t proto, const void *seg, size_t len) {
  if (a->family == MIOR_AF_INET6) return mior_csum_l4_ipv6(a->src, a->dst, proto, seg, len);
  return mior_csum_l4_ipv4(a->src, a->dst, proto, seg, len);
}

static int addrs_ok(const mior_l3_addrs *a) {
  return a->family == MIOR_AF_INET || a->family == MIOR_AF_INET6;
}

/* ---- UDP ---- */

int mior_udp_parse(const void *seg, size_t len, mior_udp_info *out) {
  const uint8_t *p = seg;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (seg == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  if (len < MIOR_UDP_HLEN) return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);
  out->sport = mior__rd16(p);
  out->dport = mior__rd16(p + 2);
  out->len = mior__rd16(p + 4);
  memcpy(&out->csum, p + 6, 2);
  if (out->len < MIOR_UDP_HLEN || out->len > len)
    return mior__reject(&out->reason, MIOR_PROTO_UDP_LEN, -EBADMSG);
  out->payload_off = MIOR_UDP_HLEN;
  out->payload_len = out->len - MIOR_UDP_HLEN;
  return 0;
}

int mior_udp_build(void *out, size_t cap, uint16_t sport, uint16_t dport, const void *payload,
                   size_t payload_len, const mior_l3_addrs *addrs) {
  uint8_t *p = out;
  if (out == NULL || (addrs && !addrs_ok(addrs)))
    return mior__fail(-EINVAL, "mior_udp_build: NULL buffer or bad address family");
  if (payload_len > 0xffff - MIOR_UDP_HLEN)
    return mior__fail(-EMSGSIZE, "mior_udp_build: %lu payload bytes do not fit in UDP", (unsigned long)payload_len);
  if (cap < MIOR_UDP_HLEN + payload_len)
    return mior__fail(-ENOSPC, "mior_udp_build: %lu bytes needed, %lu given", (unsigned long)(8 + payload_len), (unsigned long)cap);
  if (payload && payload != p + MIOR_UDP_HLEN) memmove(p + MIOR_UDP_HLEN, payload, payload_len);
  size_t len = MIOR_UDP_HLEN + payload_len;
  mior__wr16(p, sport);
  mior__wr16(p + 2, dport);
  mior__wr16(p + 4, (uint16_t)len);
  p[6] = p[7] = 0;
  if (addrs) {
    uint16_t c = l4_csum(addrs, MIOR_IPPROTO_UDP, p, len);
    memcpy(p + 6, &c, 2);
  }
  return (int)len;
}

/* ---- TCP ---- */

int mior_tcp_options_parse(const void *opts, size_t len, mior_tcp_opts *out) {
  const uint8_t *o = opts;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (opts == NULL && len) return -EINVAL;
  size_t i = 0;
  while (i < len) {
    uint8_t kind = o[i];
    if (kind == MIOR_TCPOPT_EOL) break;
    if (kind == MIOR_TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= len) return -EBADMSG; /* no room for the length byte */
    uint8_t olen = o[i + 1];
    if (olen < 2 || olen > len - i) return -EBADMSG;
    const uint8_t *v = o + i + 2;
    /* Known kinds with the wrong length are skipped, as Linux's tcp_parse_options does: the
     * segment is still valid, the option is just not used. */
    switch (kind) {
    case MIOR_TCPOPT_MSS:
      if (olen == 4) out->mss_present = 1, out->mss = mior__rd16(v);
      break;
    case MIOR_TCPOPT_WSCALE:
      if (olen == 3) out->wscale_present = 1, out->wscale = v[0];
      break;
    case MIOR_TCPOPT_SACK_PERM:
      if (olen == 2) out->sack_permitted = 1;
      break;
    case MIOR_TCPOPT_TS:
      if (olen == 10) out->ts_present = 1, out->ts_val = mior__rd32(v), out->ts_ecr = mior__rd32(v + 4);
      break;
    case MIOR_TCPOPT_SACK:
      if (olen >= 10 && (olen - 2) % 8 == 0) {
        size_t n = (size_t)(olen - 2) / 8;
        if (n > MIOR_TCP_MAX_SACK) n = MIOR_TCP_MAX_SACK;
        for (size_t k = 0; k < n; k++) {
          out->sack[k][0] = mior__rd32(v + 8 * k);
          out->sack[k][1] = mior__rd32(v + 8 * k + 4);
        }
        out->sack_count = (uint8_t)n;
      }
      break;
    default:
      if (out->unknown_count < UINT8_MAX) out->unknown_count++;
      break;
    }
    i += olen;
  }
  return 0;
}

int mior_tcp_parse(const void *seg, size_t len, mior_tcp_info *out) {
  const uint8_t *p = seg;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (seg == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  if (len < MIOR_TCP_HLEN) return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);
  size_t hlen = (size_t)(p[12] >> 4) * 4;
  if (hlen < MIOR_TCP_HLEN || hlen > len) return mior__reject(&out->reason, MIOR_PROTO_TCP_DOFF, -EBADMSG);
  out->sport = mior__rd16(p);
  out->dport = mior__rd16(p + 2);
  out->seq = mior__rd32(p + 4);
  out->ack = mior__rd32(p + 8);
  out->flags = p[13];
  out->window = mior__rd16(p + 14);
  memcpy(&out->csum, p + 16, 2);
  out->urg_ptr = mior__rd16(p + 18);
  out->hdr_len = (uint16_t)hlen;
  if (mior_tcp_options_parse(p + MIOR_TCP_HLEN, hlen - MIOR_TCP_HLEN, &out->opts) < 0)
    return mior__reject(&out->reason, MIOR_PROTO_TCP_OPTION, -EBADMSG);
  out->payload_off = (uint32_t)hlen;
  out->payload_len = (uint32_t)(len - hlen);
  return 0;
}

/* Lay the options out as Linux does (tcp_options_write), so captured and built segments look
 * alike and the usual alignment holds: every 32-bit value starts on a 4-byte boundary.
 * Writes into o when it is not NULL; returns the length, or -EINVAL if over 40 bytes. */
static int tcp_options_write(const mior_tcp_opts *t, uint8_t *o) {
  uint8_t buf[64];
  size_t n = 0;
  if (t->sack_count > MIOR_TCP_MAX_SACK) return -EINVAL;
  if (t->mss_present) {
    buf[n++] = MIOR_TCPOPT_MSS, buf[n++] = 4;
    mior__wr16(buf + n, t->mss), n += 2;
  }
  if (t->ts_present) {
    if (t->sack_permitted) {
      buf[n++] = MIOR_TCPOPT_SACK_PERM, buf[n++] = 2;
    } else {
      buf[n++] = MIOR_TCPOPT_NOP, buf[n++] = MIOR_TCPOPT_NOP;
    }
    buf[n++] = MIOR_TCPOPT_TS, buf[n++] = 10;
    mior__wr32(buf + n, t->ts_val), n += 4;
    mior__wr32(buf + n, t->ts_ecr), n += 4;
  } else if (t->sack_permitted) {
    buf[n++] = MIOR_TCPOPT_NOP, buf[n++] = MIOR_TCPOPT_NOP;
    buf[n++] = MIOR_TCPOPT_SACK_PERM, buf[n++] = 2;
  }
  if (t->wscale_present) {
    if (t->wscale > 14) return -EINVAL; /* RFC 7323, section 2.3 */
    buf[n++] = MIOR_TCPOPT_NOP;
    buf[n++] = MIOR_TCPOPT_WSCALE, buf[n++] = 3, buf[n++] = t->wscale;
  }
  if (t->sack_count) {
    buf[n++] = MIOR_TCPOPT_NOP, buf[n++] = MIOR_TCPOPT_NOP;
    buf[n++] = MIOR_TCPOPT_SACK, buf[n++] = (uint8_t)(2 + 8 * t->sack_count);
    if (n + 8u * t->sack_count > sizeof buf) return -EINVAL;
    for (unsigned k = 0; k < t->sack_count; k++) {
      mior__wr32(buf + n, t->sack[k][0]), n += 4;
      mior__wr32(buf + n, t->sack[k][1]), n += 4;
    }
  }
  while (n % 4) buf[n++] = MIOR_TCPOPT_NOP;
  if (n > MIOR_TCP_MAX_HLEN - MIOR_TCP_HLEN) return -EINVAL;
  if (o) memcpy(o, buf, n);
  return (int)n;
}

int mior_tcp_options_len(const mior_tcp_opts *opts) {
  if (opts == NULL) return -EINVAL;
  return tcp_options_write(opts, NULL);
}

int mior_tcp_build(void *out, size_t cap, const mior_tcp_params *prm, const void *payload,
                   size_t payload_len, const mior_l3_addrs *addrs) {
  uint8_t *p = out;
  if (out == NULL || prm == NULL || addrs == NULL || !addrs_ok(addrs))
    return mior__fail(-EINVAL, "mior_tcp_build: NULL argument or bad address family");
  int olen = prm->opts ? tcp_options_write(prm->opts, NULL) : 0;
  if (olen < 0) return mior__fail(-EINVAL, "mior_tcp_build: options do not fit in 40 bytes");
  size_t hlen = MIOR_TCP_HLEN + (size_t)olen;
  size_t max = addrs->family == MIOR_AF_INET ? 0xffff - MIOR_IPV4_HLEN : 0xffff;
  if (payload_len > max - hlen)
    return mior__fail(-EMSGSIZE, "mior_tcp_build: %lu payload bytes do not fit", (unsigned long)payload_len);
  if (cap < hlen + payload_len)
    return mior__fail(-ENOSPC, "mior_tcp_build: %lu bytes needed, %lu given", (unsigned long)(hlen + payload_len), (unsigned long)cap);
  if (payload && payload != p + hlen) memmove(p + hlen, payload, payload_len);
  mior__wr16(p, prm->sport);
  mior__wr16(p + 2, prm->dport);
  mior__wr32(p + 4, prm->seq);
  mior__wr32(p + 8, prm->ack);
  p[12] = (uint8_t)(hlen / 4 << 4);
  p[13] = prm->flags;
  mior__wr16(p + 14, prm->window);
  p[16] = p[17] = 0;
  mior__wr16(p + 18, prm->urg_ptr);
  if (olen) tcp_options_write(prm->opts, p + MIOR_TCP_HLEN);
  uint16_t c = l4_csum(addrs, MIOR_IPPROTO_TCP, p, hlen + payload_len);
  memcpy(p + 16, &c, 2);
  return (int)(hlen + payload_len);
}

/* ---- ICMP ---- */

int mior__icmp_parse_any(const void *msg, size_t len, int v6, mior_icmp_info *out) {
  const uint8_t *p = msg;
  if (out == NULL) return -EINVAL;
  memset(out, 0, sizeof *out);
  if (msg == NULL) return mior__reject(&out->reason, MIOR_PROTO_NULL_ARG, -EINVAL);
  if (len < MIOR_ICMP_HLEN) return mior__reject(&out->reason, MIOR_PROTO_TRUNCATED, -EBADMSG);
  out->type = p[0];
  out->code = p[1];
  memcpy(&out->csum, p + 2, 2);
  out->payload_off = MIOR_ICMP_HLEN;
  out->payload_len = (uint32_t)(len - MIOR_ICMP_HLEN);
  out->is_echo = v6 ? (p[0] == MIOR_ICMPV6_ECHO_REQUEST || p[0] == MIOR_ICMPV6_ECHO_REPLY)
                    : (p[0] == MIOR_ICMP_ECHO_REQUEST || p[0] == MIOR_ICMP_ECHO_REPLY);
  if (out->is_echo) {
    out->id = mior__rd16(p + 4);
    out->seq = mior__rd16(p + 6);
  }
  return 0;
}

static int icmp_echo_parse(const void *msg, size_t len, int v6, mior_icmp_info *out) {
  int rc = mior__icmp_parse_any(msg, len, v6, out);
  if (rc < 0) return rc;
  if (!out->is_echo) return mior__reject(&out->reason, MIOR_PROTO_ICMP_NOT_ECHO, -EPROTONOSUPPORT);
  return 0;
}

int mior_icmp_echo_parse(const void *msg, size_t len, mior_icmp_info *out) {
  return icmp_echo_parse(msg, len, 0, out);
}

int mior_icmp6_echo_parse(const void *msg, size_t len, mior_icmp_info *out) {
  return icmp_echo_parse(msg, len, 1, out);
}

/* Header and payload of an echo message, checksum left zero.  Returns the length or an error. */
static int icmp_echo_write(const char *who, void *out, size_t cap, uint8_t type, uint16_t id,
                           uint16_t seq, const void *payload, size_t payload_len, size_t max) {
  uint8_t *p = out;
  if (payload_len > max - MIOR_ICMP_HLEN)
    return mior__fail(-EMSGSIZE, "%s: %lu payload bytes do not fit", who, (unsigned long)payload_len);
  if (cap < MIOR_ICMP_HLEN + payload_len)
    return mior__fail(-ENOSPC, "%s: %lu bytes needed, %lu given", who, (unsigned long)(8 + payload_len), (unsigned long)cap);
  if (payload && payload != p + MIOR_ICMP_HLEN) memmove(p + MIOR_ICMP_HLEN, payload, payload_len);
  p[0] = type;
  p[1] = 0;
  p[2] = p[3] = 0;
  mior__wr16(p + 4, id);
  mior__wr16(p + 6, seq);
  return (int)(MIOR_ICMP_HLEN + payload_len);
}

int mior_icmp_echo_build(void *out, size_t cap, uint8_t type, uint16_t id, uint16_t seq,
                         const void *payload, size_t payload_len) {
  if (out == NULL || (type != MIOR_ICMP_ECHO_REQUEST && type != MIOR_ICMP_ECHO_REPLY))
    return mior__fail(-EINVAL, "mior_icmp_echo_build: NULL buffer or type %u is not echo", type);
  int n = icmp_echo_write("mior_icmp_echo_build", out, cap, type, id, seq, payload, payload_len,
                          0xffff - MIOR_IPV4_HLEN);
  if (n < 0) return n;
  uint16_t c = mior_csum(out, (size_t)n);
  memcpy((uint8_t *)out + 2, &c, 2);
  return n;
}

int mior_icmp6_echo_build(void *out, size_t cap, uint8_t type, uint16_t id, uint16_t seq,
                          const void *payload, size_t payload_len, const uint8_t src[16],
                          const uint8_t dst[16]) {
  if (out == NULL || src == NULL || dst == NULL ||
      (type != MIOR_ICMPV6_ECHO_REQUEST && type != MIOR_ICMPV6_ECHO_REPLY))
    return mior__fail(-EINVAL, "mior_icmp6_echo_build: NULL argument or type %u is not echo", type);
  int n = icmp_echo_write("mior_icmp6_echo_build", out, cap, type, id, seq, payload, payload_len,
                          0xffff);
  if (n < 0) return n;
  uint16_t c = mior_csum_l4_ipv6(src, dst, MIOR_IPPROTO_ICMPV6, out, (size_t)n);
  memcpy((uint8_t *)out + 2, &c, 2);
  return n;
}
