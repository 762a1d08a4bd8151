/* mior-perf: building, checking and reflecting the test packets (see testpkt.h).  The headers
 * come from the proto builders; the hot path only rewrites the test header and the UDP
 * checksum. */
#include "testpkt.h"

#include <errno.h>
#include <string.h>

#define ETH_LEN MIOR_ETH_HLEN
#define IP4_LEN MIOR_IPV4_HLEN
#define UDP_LEN MIOR_UDP_HLEN

/* The low bit of the first octet clear (unicast), the next one set (locally administered), and
 * "mior" in the rest: an address no real interface has. */
const uint8_t perf_other_mac[6] = {0x02, 0x6d, 0x69, 0x6f, 0x72, 0x01};

uint32_t perf_size_min(perf_kind kind) {
  switch (kind) {
    case PERF_KIND_IP: return IP4_LEN + UDP_LEN + PERF_HDR_LEN;
    case PERF_KIND_PACKET: return ETH_LEN + IP4_LEN + UDP_LEN + PERF_HDR_LEN;
    default: return PERF_HDR_LEN;
  }
}

uint32_t perf_size_max(perf_kind kind) {
  /* ip and packet run over a veth with the default 1500-byte MTU; udp may use loopback's 64 KiB
   * (the largest IPv4 UDP payload). */
  switch (kind) {
    case PERF_KIND_IP: return 1500;
    case PERF_KIND_PACKET: return ETH_LEN + 1500;
    default: return 65507;
  }
}

uint32_t perf_size_default(perf_kind kind) {
  switch (kind) {
    case PERF_KIND_IP: return 60 - ETH_LEN;
    case PERF_KIND_PACKET: return 60;
    default: return 60 - ETH_LEN - IP4_LEN - UDP_LEN;
  }
}

int perf_frame_init(perf_frame *f, perf_kind kind, uint32_t size, const char *src_ip,
                    const char *dst_ip, const uint8_t *src_mac, const uint8_t *dst_mac,
                    uint16_t sport, uint16_t dport) {
  memset(f, 0, sizeof *f);
  if (size < perf_size_min(kind) || size > perf_size_max(kind)) return -EINVAL;
  f->kind = kind;
  f->len = size;
  if (kind == PERF_KIND_UDP) return 0;

  int rc;
  if (kind == PERF_KIND_PACKET) {
    rc = mior_eth_build(f->tmpl, sizeof f->tmpl, dst_mac, src_mac, 0x0800, -1);
    if (rc < 0) return rc;
    f->l3_off = (uint32_t)rc;
  }
  mior_ipv4_params ip;
  mior_addr src, dst;
  memset(&ip, 0, sizeof ip);
  /* mior's own parser rather than inet_pton, which Windows has only behind Winsock. */
  if (mior_addr_parse(&src, src_ip) < 0 || mior_addr_parse(&dst, dst_ip) < 0 ||
      src.family != MIOR_AF_INET || dst.family != MIOR_AF_INET)
    return -EINVAL;
  memcpy(ip.src, src.addr, 4);
  memcpy(ip.dst, dst.addr, 4);
  ip.protocol = 17;
  ip.ttl = 64;
  ip.dont_fragment = 1; /* the tool never fragments */
  f->l4_off = f->l3_off + IP4_LEN;
  f->data_off = f->l4_off + UDP_LEN;
  f->sport = sport;
  f->dport = dport;
  f->addrs.family = MIOR_AF_INET;
  memcpy(f->addrs.src, ip.src, 4);
  memcpy(f->addrs.dst, ip.dst, 4);

  /* The IPv4 header depends only on the length: build it once, over a scratch packet that has
   * room for the whole payload (the builder checks it fits).  With IP_HDRINCL the kernel fills
   * in the header checksum anyway; a frame needs it. */
  uint8_t scratch[ETH_LEN + 1500];
  rc = mior_ipv4_build(scratch, sizeof scratch, &ip, NULL, size - f->l4_off);
  if (rc < 0) return rc;
  memcpy(f->tmpl + f->l3_off, scratch, IP4_LEN);
  return 0;
}

uint32_t perf_frame_write(const perf_frame *f, uint8_t *buf, const perf_hdr *h) {
  memcpy(buf, f->tmpl, f->data_off);
  uint8_t *d = buf + f->data_off;
  memcpy(d, &h->magic, 2);
  d[2] = h->type;
  d[3] = h->flow;
  memcpy(d + 4, &h->run_id, 4);
  memcpy(d + 8, &h->seq, 8);
  /* The slot holds whatever was sent from it last; zero the rest so every packet is the same
   * apart from its header, and the checksum covers known bytes. */
  memset(d + PERF_HDR_LEN, 0, f->len - f->data_off - PERF_HDR_LEN);
  if (f->kind != PERF_KIND_UDP)
    (void)mior_udp_build(buf + f->l4_off, f->len - f->l4_off, f->sport, f->dport, NULL,
                         f->len - f->data_off, &f->addrs);
  return f->len;
}

int perf_frame_parse(perf_kind kind, const uint8_t *data, uint32_t len, perf_hdr *out) {
  uint32_t off = 0;
  if (kind != PERF_KIND_UDP) {
    uint32_t l3 = 0;
    if (kind == PERF_KIND_PACKET) {
      if (len < ETH_LEN || data[12] != 0x08 || data[13] != 0x00) return -1;
      l3 = ETH_LEN;
    }
    /* A cheap check rather than the full parsers: most of what a packet socket or a raw socket
     * sees here is our own traffic, and the magic and run id below decide. */
    if (len < l3 + IP4_LEN || (data[l3] >> 4) != 4 || data[l3 + 9] != 17) return -1;
    uint32_t ihl = (uint32_t)(data[l3] & 0x0f) * 4;
    if (ihl < IP4_LEN) return -1;
    off = l3 + ihl;
    if (len < off + UDP_LEN) return -1;
    /* Network byte order, read bytewise (no ntohs: it lives in different headers per system). */
    uint16_t sport = (uint16_t)(data[off] << 8 | data[off + 1]);
    uint16_t dport = (uint16_t)(data[off + 2] << 8 | data[off + 3]);
    /* Data and pings go to PERF_DPORT; pongs come from it. */
    if (dport != PERF_DPORT && sport != PERF_DPORT) return -1;
    off += UDP_LEN;
  }
  if (len < off + PERF_HDR_LEN) return -1;
  const uint8_t *d = data + off;
  memcpy(&out->magic, d, 2);
  out->type = d[2];
  out->flow = d[3];
  memcpy(&out->run_id, d + 4, 4);
  memcpy(&out->seq, d + 8, 8);
  return out->magic == PERF_MAGIC ? 0 : -1;
}

static void swap_bytes(uint8_t *a, uint8_t *b, size_t n) {
  uint8_t t[4];
  memcpy(t, a, n);
  memcpy(a, b, n);
  memcpy(b, t, n);
}

void perf_frame_reflect(perf_kind kind, uint8_t *data, const uint8_t *src_mac) {
  uint32_t off = 0, l3 = 0, l4 = 0;
  if (kind == PERF_KIND_PACKET) {
    /* The destination stays perf_other_mac (see testpkt.h); the source becomes ours. */
    memcpy(data, perf_other_mac, 6);
    memcpy(data + 6, src_mac, 6);
    l3 = ETH_LEN;
  }
  if (kind != PERF_KIND_UDP) {
    /* Swapping two aligned fields leaves the ones' complement sums unchanged. */
    l4 = l3 + (uint32_t)(data[l3] & 0x0f) * 4;
    swap_bytes(data + l3 + 12, data + l3 + 16, 4);
    swap_bytes(data + l4, data + l4 + 2, 2);
    off = l4 + UDP_LEN;
  }
  /* The type shares a 16-bit word with the flow; the word sits at an even offset of the UDP
   * segment, so the checksum can be updated incrementally. */
  uint16_t old_word, new_word, csum;
  memcpy(&old_word, data + off + 2, 2);
  data[off + 2] = PERF_TYPE_PONG;
  memcpy(&new_word, data + off + 2, 2);
  if (kind == PERF_KIND_UDP) return;
  memcpy(&csum, data + l4 + 6, 2);
  if (csum == 0) return; /* sent without a checksum: keep it so */
  csum = mior_csum_update16(csum, old_word, new_word);
  if (csum == 0) csum = 0xffff; /* the same in ones' complement; 0 would mean "none" */
  memcpy(data + l4 + 6, &csum, 2);
}
