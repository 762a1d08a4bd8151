/* mior-perf: the test packets.
 *
 * Every test packet carries a 16-byte header at the start of its UDP payload:
 *
 *   magic u16 | type u8 | flow u8 | run_id u32 | seq u64        (host byte order)
 *
 * Both ends run in the same process, so host byte order is enough; the magic and run id let the
 * receiver reject anything else it sees (other traffic, a previous run's stragglers, the
 * kernel's own frames on a packet socket).
 *
 * What --size means per kind (the default gives a 60-byte Ethernet frame in every kind):
 *   udp     the UDP payload                   (default 18: 14 + 20 + 8 + 18 = 60 on the wire)
 *   ip      the whole IPv4 packet, headers in  (default 46)
 *   packet  the whole Ethernet frame, no FCS  (default 60)
 */
#ifndef MIOR_PERF_TESTPKT_H
#define MIOR_PERF_TESTPKT_H

#include <stdint.h>

#include <mior/proto/proto.h>

#include "perf.h"

#define PERF_MAGIC 0x4d50u /* "MP" */
#define PERF_HDR_LEN 16u

#define PERF_TYPE_DATA 1u /* throughput */
#define PERF_TYPE_PING 2u /* latency, client to server */
#define PERF_TYPE_PONG 3u /* latency, server to client */

/* UDP ports used inside the packets the ip and packet kinds build. */
#define PERF_SPORT_BASE 40000u
#define PERF_DPORT 47000u

typedef struct perf_hdr {
  uint16_t magic;
  uint8_t type;
  uint8_t flow;
  uint32_t run_id;
  uint64_t seq;
} perf_hdr;

/* Headers that go in front of the test header (none for udp), and where things are. */
typedef struct perf_frame {
  perf_kind kind;
  uint32_t len;       /* bytes handed to mior_tx_send */
  uint32_t l3_off;    /* IPv4 header (ip, packet) */
  uint32_t l4_off;    /* UDP header (ip, packet) */
  uint32_t data_off;  /* test header */
  uint16_t sport, dport;
  mior_l3_addrs addrs; /* for the UDP checksum */
  uint8_t tmpl[64];   /* headers up to data_off */
} perf_frame;

/* Smallest and largest --size for a kind, and the default. */
uint32_t perf_size_min(perf_kind kind);
uint32_t perf_size_max(perf_kind kind);
uint32_t perf_size_default(perf_kind kind);

/* The locally administered unicast MAC the packet kind sends to: see docs/MIOR-PERF.md
 * ("packet kind") for why frames are not addressed to the receiver's own MAC. */
extern const uint8_t perf_other_mac[6];

/* Prepare the headers of a flow: src/dst are dotted IPv4 addresses, macs 6 bytes (packet only).
 * Returns 0 or -EINVAL. */
int perf_frame_init(perf_frame *f, perf_kind kind, uint32_t size, const char *src_ip,
                    const char *dst_ip, const uint8_t *src_mac, const uint8_t *dst_mac,
                    uint16_t sport, uint16_t dport);

/* Write a whole packet into buf (at least f->len bytes) and return its length. */
uint32_t perf_frame_write(const perf_frame *f, uint8_t *buf, const perf_hdr *h);

/* Find and check the test header in a received packet; 0 if it is ours (any type), -1 if not. */
int perf_frame_parse(perf_kind kind, const uint8_t *data, uint32_t len, perf_hdr *out);

/* Turn a received ping at data into its pong in place: swap the addresses and ports,
 * set the type, fix the checksum; for the packet kind the Ethernet source becomes src_mac. */
void perf_frame_reflect(perf_kind kind, uint8_t *data, const uint8_t *src_mac);

#endif
