/* dns_zone.h: the DNS side of examples/dns_responder.c, kept apart (and free of mior) so that
 * the fuzz harness (fuzz/fuzz_dns.c) and the plain recvmmsg/sendmmsg baseline
 * (bench/baselines/bl_dns.c) run the very same parser and answers.
 *
 * An authoritative server for one small zone (RFC 1035): A, AAAA and TXT records; NXDOMAIN for
 * a name not in the zone, NOERROR with no answer for a type the name lacks (NODATA), REFUSED for
 * a name outside the zone, NOTIMP for an opcode other than QUERY, FORMERR for a query it cannot
 * parse once the header is readable.  Without EDNS an answer over 512 bytes goes back truncated
 * (TC set, no answers) so the client retries over TCP; with EDNS (an OPT record, RFC 6891) up to
 * the client's advertised size (at most DNS_MAX_UDP).  Messages that are responses (QR set) or
 * shorter than a header are dropped: a server never answers those.
 *
 * Everything is bounds-checked against the input length; dns_answer never reads past q+qlen
 * and never writes past out+cap.
 */
#ifndef MIOR_EXAMPLES_DNS_ZONE_H
#define MIOR_EXAMPLES_DNS_ZONE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DNS_HDR 12u
#define DNS_MAX_UDP 1232u /* the EDNS size DNS Flag Day 2020 settled on */
#define DNS_T_A 1u
#define DNS_T_TXT 16u
#define DNS_T_AAAA 28u
#define DNS_T_OPT 41u
#define DNS_T_ANY 255u
#define DNS_C_IN 1u
#define DNS_RC_NOERROR 0u
#define DNS_RC_FORMERR 1u
#define DNS_RC_NXDOMAIN 3u
#define DNS_RC_NOTIMP 4u
#define DNS_RC_REFUSED 5u

typedef struct dns_rr {
  const char *name; /* relative to the zone: "" is the apex, "www", "big" */
  uint16_t type;
  uint8_t rdata[256];
  uint16_t rdlen;
} dns_rr;

typedef struct dns_zone {
  char origin[256]; /* "example.test", lower case, no trailing dot */
  dns_rr rr[48];
  unsigned n;
  uint32_t ttl;
} dns_zone;

typedef struct dns_counters {
  uint64_t queries, answered, nxdomain, nodata, refused, formerr, notimp, truncated, dropped;
} dns_counters;

static inline void dns_zone_add(dns_zone *z, const char *name, uint16_t type, const void *rdata,
                                uint16_t rdlen) {
  if (z->n >= sizeof z->rr / sizeof z->rr[0] || rdlen > sizeof z->rr[0].rdata) return;
  dns_rr *r = &z->rr[z->n++];
  r->name = name;
  r->type = type;
  memcpy(r->rdata, rdata, rdlen);
  r->rdlen = rdlen;
}

static inline void dns_zone_txt(dns_zone *z, const char *name, const char *text) {
  uint8_t rd[256];
  size_t len = strlen(text);
  if (len > 255) len = 255;
  rd[0] = (uint8_t)len;
  memcpy(rd + 1, text, len);
  dns_zone_add(z, name, DNS_T_TXT, rd, (uint16_t)(len + 1));
}

/* The example zone: apex and www with A 192.0.2.1 / AAAA 2001:db8::1, a TXT at the apex and at
 * txt, and "big" with 12 TXT records (about 700 bytes: past 512, so truncated without EDNS). */
static inline void dns_zone_example(dns_zone *z, const char *origin) {
  memset(z, 0, sizeof *z);
  size_t len = strlen(origin);
  while (len && origin[len - 1] == '.') len--;
  if (len >= sizeof z->origin) len = sizeof z->origin - 1;
  for (size_t i = 0; i < len; i++) {
    char c = origin[i];
    z->origin[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  z->ttl = 300;
  static const uint8_t a[4] = {192, 0, 2, 1}, aaaa[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                                           0,    0,    0,    0,    0, 0, 0, 1};
  static const uint8_t a2[4] = {192, 0, 2, 2};
  dns_zone_add(z, "", DNS_T_A, a, 4);
  dns_zone_add(z, "", DNS_T_AAAA, aaaa, 16);
  dns_zone_txt(z, "", "mior dns_responder example zone");
  dns_zone_add(z, "www", DNS_T_A, a, 4);
  dns_zone_add(z, "www", DNS_T_A, a2, 4);
  dns_zone_add(z, "www", DNS_T_AAAA, aaaa, 16);
  dns_zone_txt(z, "txt", "hello from mior");
  for (int i = 0; i < 12; i++)
    dns_zone_txt(z, "big", "a long text record that makes the answer too large for 512 bytes");
}

static inline uint16_t dns_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void dns_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* Read an uncompressed name at q[*off] (a question never needs compression) into lower-case
 * dotted text; 0, or -1 if malformed (a pointer, a label past the end, a name over 255). */
static inline int dns_read_name(const uint8_t *q, size_t qlen, size_t *off, char *name, size_t cap) {
  size_t o = *off, n = 0, wire = 0;
  for (;;) {
    if (o >= qlen) return -1;
    uint8_t l = q[o++];
    wire += 1u + l;
    if (wire > 255) return -1;
    if (l == 0) break;
    if (l > 63 || o + l > qlen) return -1; /* 0xc0: compression, 0x40/0x80: reserved */
    if (n && n + 1 < cap) name[n++] = '.';
    for (uint8_t i = 0; i < l; i++) {
      char c = (char)q[o + i];
      if (n + 1 < cap) name[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    o += l;
  }
  name[n] = '\0';
  *off = o;
  return 0;
}

/* The owner name relative to the zone ("" for the apex), or NULL if outside it. */
static inline const char *dns_relative(const dns_zone *z, const char *name, char *buf, size_t cap) {
  size_t nl = strlen(name), ol = strlen(z->origin);
  if (nl == ol && memcmp(name, z->origin, ol) == 0) return "";
  if (nl > ol + 1 && name[nl - ol - 1] == '.' && memcmp(name + nl - ol, z->origin, ol) == 0) {
    size_t rl = nl - ol - 1;
    if (rl >= cap) return NULL;
    memcpy(buf, name, rl);
    buf[rl] = '\0';
    return buf;
  }
  return NULL;
}

/* Answer query q[0..qlen) into out[0..cap).  Returns the response length, or 0 to drop the
 * message (too short for a header, or itself a response).  out may not overlap q. */
static inline size_t dns_answer(const dns_zone *z, const uint8_t *q, size_t qlen, uint8_t *out,
                                size_t cap, dns_counters *cnt) {
  cnt->queries++;
  if (qlen < DNS_HDR || cap < DNS_HDR || (q[2] & 0x80)) {
    cnt->dropped++;
    return 0;
  }
  uint8_t opcode = (uint8_t)((q[2] >> 3) & 0xf);
  uint16_t qd = dns_get16(q + 4), an = dns_get16(q + 6), ns = dns_get16(q + 8), ar = dns_get16(q + 10);
  /* Header of the response: same id, QR, opcode and RD kept, AA set. */
  memset(out, 0, DNS_HDR);
  out[0] = q[0];
  out[1] = q[1];
  out[2] = (uint8_t)(0x80 | (opcode << 3) | 0x04 | (q[2] & 0x01));
  uint8_t rcode = DNS_RC_NOERROR;
  if (opcode != 0) {
    out[3] = DNS_RC_NOTIMP;
    cnt->notimp++;
    return DNS_HDR;
  }
  char name[256], rel[256];
  size_t off = DNS_HDR;
  if (qd != 1 || an != 0 || ns != 0 || ar > 1 || dns_read_name(q, qlen, &off, name, sizeof name) < 0 ||
      off + 4 > qlen)
    goto formerr;
  uint16_t qtype = dns_get16(q + off), qclass = dns_get16(q + off + 2);
  off += 4;
  size_t qend = off;
  /* EDNS: an OPT record (root name, type 41) in the additional section. */
  int edns = 0;
  size_t limit = 512;
  if (ar == 1) {
    if (off + 11 > qlen || q[off] != 0 || dns_get16(q + off + 1) != DNS_T_OPT) goto formerr;
    uint16_t size = dns_get16(q + off + 3), rdlen = dns_get16(q + off + 9);
    if (off + 11 + rdlen != qlen) goto formerr;
    edns = 1;
    if (size > limit) limit = size < DNS_MAX_UDP ? size : DNS_MAX_UDP;
  } else if (off != qlen) {
    goto formerr; /* trailing bytes */
  }
  if (limit > cap) limit = cap;
  size_t opt_len = edns ? 11u : 0u;
  if (qend > limit || DNS_HDR + (qend - DNS_HDR) + opt_len > limit) goto formerr;
  memcpy(out + DNS_HDR, q + DNS_HDR, qend - DNS_HDR);
  dns_put16(out + 4, 1);
  size_t o = qend;
  uint16_t nans = 0;
  const char *r = qclass == DNS_C_IN ? dns_relative(z, name, rel, sizeof rel) : NULL;
  int trunc = 0;
  if (!r) {
    rcode = DNS_RC_REFUSED;
    cnt->refused++;
  } else {
    int name_exists = 0;
    for (unsigned i = 0; i < z->n; i++) {
      const dns_rr *rr = &z->rr[i];
      if (strcmp(rr->name, r) != 0) continue;
      name_exists = 1;
      if (rr->type != qtype && qtype != DNS_T_ANY) continue;
      if (o + 12 + rr->rdlen + opt_len > limit) {
        trunc = 1;
        break;
      }
      out[o] = 0xc0; /* pointer to the question's name */
      out[o + 1] = DNS_HDR;
      dns_put16(out + o + 2, rr->type);
      dns_put16(out + o + 4, DNS_C_IN);
      out[o + 6] = (uint8_t)(z->ttl >> 24);
      out[o + 7] = (uint8_t)(z->ttl >> 16);
      out[o + 8] = (uint8_t)(z->ttl >> 8);
      out[o + 9] = (uint8_t)z->ttl;
      dns_put16(out + o + 10, rr->rdlen);
      memcpy(out + o + 12, rr->rdata, rr->rdlen);
      o += 12u + rr->rdlen;
      nans++;
    }
    if (trunc) {
      /* RFC 2181 9: set TC and send what fits; a client retries over TCP.  We send none. */
      out[2] |= 0x02;
      o = qend;
      nans = 0;
      cnt->truncated++;
    } else if (!name_exists) {
      rcode = DNS_RC_NXDOMAIN;
      cnt->nxdomain++;
    } else if (nans == 0) {
      cnt->nodata++;
    } else {
      cnt->answered++;
    }
  }
  dns_put16(out + 6, nans);
  if (edns) {
    out[o] = 0;
    dns_put16(out + o + 1, DNS_T_OPT);
    dns_put16(out + o + 3, DNS_MAX_UDP);
    memset(out + o + 5, 0, 6);
    o += 11;
    dns_put16(out + 10, 1);
  }
  out[3] = rcode;
  return o;

formerr:
  /* The header only, as far as we trust it. */
  dns_put16(out + 4, 0);
  out[3] = DNS_RC_FORMERR;
  cnt->formerr++;
  return DNS_HDR;
}

#endif
