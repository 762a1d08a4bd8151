/* Endpoint strings ("udp://1.2.3.4:9000", "ip://10.0.0.2/udp", "packet://eth0") and socket
 * addresses in text.  Every failure says which part of the text was wrong. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#  include <winsock2.h>
#  include <ws2tcpip.h>
#else
#  include <arpa/inet.h>
#endif

#include "common/backend.h"
#include "common/internal.h"
#include "common/os.h"

/* Parse a decimal number in [0, max] spanning exactly [s, s+len). */
static int parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out) {
  if (len == 0 || len > 10) return -1;
  unsigned long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v > max) return -1;
  *out = v;
  return 0;
}

/* An address without port: IPv4 dotted quad, or IPv6 with or without brackets. */
static int parse_host(const char *s, size_t len, mior_addr *out) {
  char buf[64];
  if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
    s++;
    len -= 2;
  }
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  memset(out, 0, sizeof *out);
  /* IPv6 with a zone: "fe80::1%eth0" or "fe80::1%2" (RFC 4007 text form). */
  char *zone = strchr(buf, '%');
  if (zone) *zone++ = '\0';
  if (!zone && inet_pton(AF_INET, buf, out->addr) == 1) {
    out->family = MIOR_AF_INET;
    return 0;
  }
  if (inet_pton(AF_INET6, buf, out->addr) == 1) {
    out->family = MIOR_AF_INET6;
    if (zone) {
      unsigned long idx;
      if (parse_uint(zone, strlen(zone), UINT32_MAX, &idx) == 0 && idx > 0) out->scope_id = (uint32_t)idx;
      else if (zone[0] && (out->scope_id = mior__if_index(zone)) == 0) return -1;
      else if (!zone[0]) return -1;
    }
    return 0;
  }
  return -1;
}

/* A name that may be a host name (letters, digits, '-' and '.'; at most 253), so that it is worth
 * asking the resolver about: anything else is refused as a bad address at once. */
static int host_name(const char *s, size_t len, char *out, size_t cap) {
  if (len == 0 || len > 253 || len >= cap) return -1;
  int alpha = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) alpha = 1;
    else if (!((c >= '0' && c <= '9') || c == '-' || c == '.')) return -1;
  }
  if (!alpha) return -1; /* all digits and dots: a malformed address, not a name */
  memcpy(out, s, len);
  out[len] = '\0';
  return 0;
}

int mior_addr_parse(mior_addr *out, const char *text) {
  if (!out || !text) return mior__fail(-EINVAL, "mior_addr_parse: NULL argument");
  size_t len = strlen(text);
  const char *colon = NULL;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close) return mior__fail(-EINVAL, "address '%s': missing ']'", text);
    if (close[1] == ':') colon = close + 1;
    else if (close[1] != '\0') return mior__fail(-EINVAL, "address '%s': junk after ']'", text);
  } else {
    colon = strchr(text, ':');
    /* Two colons or more without brackets: a bare IPv6 address, no port. */
    if (colon && strchr(colon + 1, ':')) colon = NULL;
  }
  size_t host_len = colon ? (size_t)(colon - text) : len;
  mior_addr a;
  if (parse_host(text, host_len, &a) < 0)
    return mior__fail(-EINVAL, "address '%s': bad host '%.*s'", text, (int)host_len, text);
  if (colon) {
    unsigned long port;
    if (parse_uint(colon + 1, strlen(colon + 1), 65535, &port) < 0)
      return mior__fail(-EINVAL, "address '%s': bad port '%s'", text, colon + 1);
    a.port = (uint16_t)port;
  }
  *out = a;
  return 0;
}

int mior_addr_format(const mior_addr *a, char *buf, size_t len) {
  if (!a || !buf || len == 0) return mior__fail(-EINVAL, "mior_addr_format: NULL argument");
  char host[64];
  int af = a->family == MIOR_AF_INET ? AF_INET : a->family == MIOR_AF_INET6 ? AF_INET6 : -1;
  if (af < 0) return mior__fail(-EINVAL, "mior_addr_format: family %u", a->family);
  if (!inet_ntop(af, a->addr, host, sizeof host)) return mior__fail(-EINVAL, "mior_addr_format: bad address");
  if (af == AF_INET6 && a->scope_id) {
    char zone[24];
    if (mior__if_name(a->scope_id, zone, sizeof zone) < 0) snprintf(zone, sizeof zone, "%u", a->scope_id);
    size_t hl = strlen(host);
    if (hl + 1 + strlen(zone) >= sizeof host) return -ENOSPC;
    host[hl] = '%';
    strcpy(host + hl + 1, zone);
  }
  int n = af == AF_INET6 ? snprintf(buf, len, "[%s]:%u", host, a->port)
                         : snprintf(buf, len, "%s:%u", host, a->port);
  if (n < 0 || (size_t)n >= len) return -ENOSPC;
  return 0;
}

static const struct {
  const char *name;
  int proto;
} ip_protos[] = {{"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"icmpv6", 58}, {"sctp", 132}};

const char *mior__kind_name(enum mior__kind kind) {
  switch (kind) {
  case MIOR__KIND_UDP: return "udp";
  case MIOR__KIND_IP: return "ip";
  case MIOR__KIND_PACKET: return "packet";
  }
  return "?";
}

int mior__addr_parse_or_name(mior_addr *out, const char *text, char *host, size_t cap) {
  host[0] = '\0';
  if (mior_addr_parse(out, text) == 0) return 0;
  const char *colon = strrchr(text, ':');
  size_t host_len = colon ? (size_t)(colon - text) : strlen(text);
  memset(out, 0, sizeof *out);
  if (host_name(text, host_len, host, cap) < 0) return -EINVAL; /* mior_addr_parse said why */
  if (colon) {
    unsigned long port;
    if (parse_uint(colon + 1, strlen(colon + 1), 65535, &port) < 0)
      return mior__fail(-EINVAL, "address '%s': bad port '%s'", text, colon + 1);
    out->port = (uint16_t)port;
  }
  mior__clear_error();
  return 0;
}

int mior__endpoint_parse(mior__endpoint *ep, const char *text) {
  memset(ep, 0, sizeof *ep);
  const char *sep = strstr(text, "://");
  if (!sep)
    return mior__fail(-EINVAL, "endpoint '%s': expected udp://ADDR:PORT, ip://ADDR/PROTO or packet://IFNAME",
                      text);
  size_t scheme_len = (size_t)(sep - text);
  const char *rest = sep + 3;
  if (scheme_len == 3 && memcmp(text, "udp", 3) == 0) {
    ep->kind = MIOR__KIND_UDP;
    const char *colon = NULL;
    if (rest[0] == '[') {
      const char *close = strchr(rest, ']');
      colon = close && close[1] == ':' ? close + 1 : NULL;
    } else {
      colon = strrchr(rest, ':');
    }
    if (!colon)
      return mior__fail(-EINVAL, "endpoint '%s': missing ':PORT' after the address", text);
    /* Numeric addresses are the fast path; a host name is resolved when the transport opens. */
    if (parse_host(rest, (size_t)(colon - rest), &ep->addr) < 0 &&
        host_name(rest, (size_t)(colon - rest), ep->host, sizeof ep->host) < 0)
      return mior__fail(-EINVAL, "endpoint '%s': bad address '%.*s'", text, (int)(colon - rest), rest);
    unsigned long port;
    if (parse_uint(colon + 1, strlen(colon + 1), 65535, &port) < 0)
      return mior__fail(-EINVAL, "endpoint '%s': bad port '%s' (0..65535)", text, colon + 1);
    ep->addr.port = (uint16_t)port;
    return 0;
  }
  if (scheme_len == 2 && memcmp(text, "ip", 2) == 0) {
    ep->kind = MIOR__KIND_IP;
    const char *slash = strrchr(rest, '/');
    if (!slash) return mior__fail(-EINVAL, "endpoint '%s': missing '/PROTO' (udp, tcp, icmp, icmpv6 or a number)", text);
    if (parse_host(rest, (size_t)(slash - rest), &ep->addr) < 0 &&
        host_name(rest, (size_t)(slash - rest), ep->host, sizeof ep->host) < 0)
      return mior__fail(-EINVAL, "endpoint '%s': bad address '%.*s'", text, (int)(slash - rest), rest);
    const char *proto = slash + 1;
    for (size_t i = 0; i < sizeof ip_protos / sizeof ip_protos[0]; i++)
      if (strcmp(proto, ip_protos[i].name) == 0) ep->ip_proto = ip_protos[i].proto;
    unsigned long num;
    if (!ep->ip_proto && parse_uint(proto, strlen(proto), 255, &num) == 0 && num > 0) ep->ip_proto = (int)num;
    if (!ep->ip_proto)
      return mior__fail(-EINVAL, "endpoint '%s': bad protocol '%s' (udp, tcp, icmp, icmpv6 or 1..255)", text, proto);
    return 0;
  }
  if (scheme_len == 6 && memcmp(text, "packet", 6) == 0) {
    ep->kind = MIOR__KIND_PACKET;
    size_t n = strlen(rest);
    if (n == 0) return mior__fail(-EINVAL, "endpoint '%s': missing interface name", text);
    if (n >= 16 || strpbrk(rest, "/: \t"))
      return mior__fail(-EINVAL, "endpoint '%s': bad interface name '%s'", text, rest);
    memcpy(ep->ifname, rest, n + 1);
    return 0;
  }
  return mior__fail(-EINVAL, "endpoint '%s': unknown scheme '%.*s' (expected udp, ip or packet)", text,
                    (int)scheme_len, text);
}
