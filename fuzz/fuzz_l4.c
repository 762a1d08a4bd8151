/* Fuzz the single-layer parsers one at a time: the first input byte picks the parser (Ethernet,
 * ARP, UDP, TCP, TCP options, ICMPv4 echo, ICMPv6 echo), the rest is its input.  TCP options
 * also go round trip: whatever the parser accepted, the builder writes and the parser reads back
 * the same values. */
#include <errno.h>

#include "fuzz_common.h"

#ifndef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME LLVMFuzzerTestOneInput
#endif

static void l4_tcp_opts_roundtrip(const mior_tcp_opts *o) {
  int olen = mior_tcp_options_len(o);
  if (olen < 0) return; /* e.g. timestamps and four SACK blocks do not fit in 40 bytes */
  FUZZ_ASSERT(olen % 4 == 0 && olen <= 40);
  uint8_t seg[60];
  mior_tcp_params p;
  memset(&p, 0, sizeof p);
  p.sport = 1;
  p.dport = 2;
  p.flags = 0x02;
  p.opts = o;
  mior_l3_addrs a;
  memset(&a, 0, sizeof a);
  a.family = MIOR_AF_INET;
  int n = mior_tcp_build(seg, sizeof seg, &p, NULL, 0, &a);
  FUZZ_ASSERT(n == 20 + olen);
  mior_tcp_info ti;
  FUZZ_ASSERT(mior_tcp_parse(seg, (size_t)n, &ti) == 0);
  const mior_tcp_opts *r = &ti.opts;
  FUZZ_ASSERT(r->mss_present == o->mss_present && (!o->mss_present || r->mss == o->mss));
  FUZZ_ASSERT(r->wscale_present == o->wscale_present && (!o->wscale_present || r->wscale == o->wscale));
  FUZZ_ASSERT(!r->sack_permitted == !o->sack_permitted);
  FUZZ_ASSERT(r->ts_present == o->ts_present);
  if (o->ts_present) FUZZ_ASSERT(r->ts_val == o->ts_val && r->ts_ecr == o->ts_ecr);
  FUZZ_ASSERT(r->sack_count == o->sack_count);
  for (unsigned i = 0; i < o->sack_count; i++)
    FUZZ_ASSERT(r->sack[i][0] == o->sack[i][0] && r->sack[i][1] == o->sack[i][1]);
}

int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size);
int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  unsigned which = data[0] % 7;
  size_t len = size - 1;
  uint8_t *buf = fuzz_dup(data + 1, len);
  int rc = 0;
  switch (which) {
  case 0: {
    mior_eth_info e;
    rc = mior_eth_parse(buf, len, &e);
    if (rc == 0) FUZZ_ASSERT(e.payload_off <= len && e.payload_off + (size_t)e.payload_len == len);
    break;
  }
  case 1: {
    mior_arp_info a;
    rc = mior_arp_parse(buf, len, &a);
    if (rc == 0) FUZZ_ASSERT(len >= MIOR_ARP_LEN && (a.op == MIOR_ARP_REQUEST || a.op == MIOR_ARP_REPLY));
    break;
  }
  case 2: {
    mior_udp_info u;
    rc = mior_udp_parse(buf, len, &u);
    if (rc == 0) FUZZ_ASSERT(u.len >= 8 && u.len <= len && u.payload_off + (size_t)u.payload_len <= len);
    break;
  }
  case 3: {
    mior_tcp_info t;
    rc = mior_tcp_parse(buf, len, &t);
    if (rc == 0) {
      FUZZ_ASSERT(t.hdr_len >= 20 && t.hdr_len <= 60 && t.hdr_len <= len);
      FUZZ_ASSERT(t.payload_off + (size_t)t.payload_len <= len);
      FUZZ_ASSERT(t.opts.sack_count <= MIOR_TCP_MAX_SACK);
      l4_tcp_opts_roundtrip(&t.opts);
    }
    break;
  }
  case 4: {
    mior_tcp_opts o;
    rc = mior_tcp_options_parse(buf, len, &o);
    if (rc == 0) {
      FUZZ_ASSERT(o.sack_count <= MIOR_TCP_MAX_SACK);
      l4_tcp_opts_roundtrip(&o);
    }
    break;
  }
  case 5:
  case 6: {
    mior_icmp_info ic;
    rc = which == 5 ? mior_icmp_echo_parse(buf, len, &ic) : mior_icmp6_echo_parse(buf, len, &ic);
    if (rc == 0) FUZZ_ASSERT(ic.is_echo && len >= 8 && ic.payload_off + (size_t)ic.payload_len <= len);
    break;
  }
  }
  FUZZ_ASSERT(FUZZ_PARSE_RC_OK(rc));
  free(buf);
  return 0;
}
