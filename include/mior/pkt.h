/* mior_pkt: a view of one packet in a pool slot, and mior_addr, a socket address without
 * platform headers.
 */
#ifndef MIOR_PKT_H
#define MIOR_PKT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mior_port;

/* A transport-neutral socket address.  family is MIOR_AF_INET or MIOR_AF_INET6; port is in host
 * byte order; addr holds 4 (IPv4) or 16 (IPv6) bytes in network byte order. */
#define MIOR_AF_UNSPEC 0
#define MIOR_AF_INET 4
#define MIOR_AF_INET6 6
typedef struct mior_addr {
  uint16_t family;
  uint16_t port;
  uint32_t scope_id;
  uint8_t addr[16];
} mior_addr;

/* Parse "1.2.3.4:9000", "[::1]:9000", or a bare address (port 0).  -EINVAL on bad text.  An IPv6
 * address may name its scope (zone) after '%': "[fe80::1%eth0]:53" or "fe80::1%2" sets scope_id
 * to that interface's index (a name must exist now: -EINVAL otherwise; Windows takes numbers). */
MIOR_API int mior_addr_parse(mior_addr *out, const char *text);
/* Format as above into buf (at least 48 bytes for any address; 64 with a scope).  -ENOSPC if it
 * does not fit.  An IPv6 address with a scope_id is written with "%NAME" (the interface's name),
 * or "%INDEX" when the interface has no name now, so the text parses back to the same address. */
MIOR_API int mior_addr_format(const mior_addr *addr, char *buf, size_t len);

/* One packet.
 *
 * Received packets: the pointer handed to mior_receiver.consume is valid only during the call.
 * If consume returns MIOR_KEEP, the caller owns the slot: copy the struct (it is small and holds
 * everything needed) and later pass the copy to mior_pkt_release(), from any thread.
 *
 * Transmit packets: mior_tx_acquire fills a mior_pkt whose data points at an empty slot of
 * capacity `cap`; the caller writes the packet and passes it to mior_tx_send (which takes the slot
 * back, also on error) or returns it unused with mior_pkt_release.
 *
 * Fields are public and read-only except data[0..cap) (the bytes), len, and, before
 * mior_tx_send, flags, local and ecn (per-send metadata, below). */
typedef struct mior_pkt {
  uint8_t *data;           /* first byte of the packet */
  uint32_t len;            /* bytes of packet (0 is a valid, empty UDP datagram) */
  uint32_t cap;            /* bytes that may be written at data */
  struct mior_port *port;  /* owning port (private) */
  uint32_t slot;           /* pool slot index (private) */
  uint32_t flags;          /* MIOR_PKT_*: how the packet arrived, and which of the metadata
                              fields below hold a value */
  mior_addr src;           /* udp kind: sender's address; otherwise family MIOR_AF_UNSPEC */
  uint32_t gen;            /* the slot's generation when it was handed out (private): a stale
                              copy, whose slot has since gone to someone else, is refused */
  uint32_t seg;            /* private: 1 + this packet's index among the packets of one
                              coalesced buffer (MIOR_PKT_COALESCED), which share a slot; 0 for a
                              packet that has its slot to itself */
  /* Per-packet metadata (udp ports).  Each is opt-in per port (MIOR_OPT_RX_*), costs nothing
   * when off, and is valid only when its MIOR_PKT_* flag is set in `flags`.  The same fields
   * drive a send: set the flag and the field on the packet before mior_tx_send.  A received
   * packet sent back in place (an echo, a reply written over the query) keeps its flags, so the
   * reply leaves from the address the query arrived on, with the codepoint it carried.  The
   * packets split from one coalesced buffer (UDP GRO) came in as one kernel receive and all
   * carry that receive's metadata (and its src). */
  mior_addr local;         /* MIOR_PKT_LOCAL.  Receive (MIOR_OPT_RX_PKTINFO): the local address
                              the datagram was sent to (port 0; scope_id the interface it came in
                              on, for link-local IPv6).  Send: the source address to send from
                              (port ignored; IP_PKTINFO / IPV6_PKTINFO) */
  uint64_t rx_time_ns;     /* MIOR_PKT_TIMESTAMP: the receive timestamp in nanoseconds.  Without
                              MIOR_PKT_TIMESTAMP_HW, the kernel's software stamp, since the epoch
                              of CLOCK_REALTIME (MIOR_OPT_RX_TIMESTAMP, or RX_TIMESTAMP_HW when
                              the device made none).  With MIOR_PKT_TIMESTAMP_HW (Linux), the
                              device's raw hardware stamp (MIOR_OPT_RX_TIMESTAMP_HW): the time of
                              its PTP hardware clock, not comparable with system time unless
                              something (ptp4l, phc2sys) keeps the two in step.  Windows (sockets
                              backend): the stack's SO_TIMESTAMP (SIO_TIMESTAMPING), a
                              QueryPerformanceCounter count moved onto the system clock's same
                              epoch; present only for a datagram the stack has one for.  Receive
                              only */
  uint8_t ecn;             /* MIOR_PKT_ECN.  Receive (MIOR_OPT_RX_ECN): the ECN codepoint of the
                              IP header (0 not-ECT, 1 ECT(1), 2 ECT(0), 3 CE).  Send: the codepoint
                              to set (IP_TOS / IPV6_TCLASS per send; Windows: IP_ECN / IPV6_ECN,
                              and CE is refused with -EINVAL, as Windows refuses it) */
  uint8_t meta_reserved_[7];
} mior_pkt;

/* mior_pkt.flags */
#define MIOR_PKT_COALESCED 0x1u /* arrived in one coalesced buffer with others (UDP GRO) and shares
                                   its slot with them: the slot goes back when the last of them is
                                   done.  Sending such a packet (mior_tx_send) copies it into a
                                   slot of its own. */
#define MIOR_PKT_LOCAL 0x2u     /* local holds a value */
#define MIOR_PKT_TIMESTAMP 0x4u /* rx_time_ns holds a value */
#define MIOR_PKT_ECN 0x8u       /* ecn holds a value */
#define MIOR_PKT_TIMESTAMP_HW 0x10u /* rx_time_ns is the device's hardware stamp (its PTP clock),
                                       not the kernel's software one; set with MIOR_PKT_TIMESTAMP */

/* A datagram longer than a slot is never delivered cut: it is dropped and counted in
 * mior_port_stats.rx_drop_truncated. */

/* Give back a packet the caller kept (MIOR_KEEP) or a transmit slot it will not send.
 * Safe from any thread, and from inside consume (then the packet's slot is no longer the
 * receiver's, whatever consume returns).  -EINVAL, with nothing changed, for a NULL pkt or a
 * packet the caller no longer holds: released or sent already, or a stale copy of a packet whose
 * slot has since been handed out again (the slot's current holder is not disturbed). */
MIOR_API int mior_pkt_release(const mior_pkt *pkt);

/* Give back n packets at once (received by mior_rx_burst, kept, or acquired for transmit), from
 * any thread.  Cost: one atomic operation per run of packets of the same port, whatever n: the
 * slots go on the port's return list in one compare-and-swap, and the port's driving thread takes
 * them back into its cache at its next poll (not through the pool's free list).  Packets split
 * from one coalesced buffer (MIOR_PKT_COALESCED) share a slot: a run of them next to each other
 * in pkts costs one more atomic operation for the slot (not one per packet), and the slot goes
 * back only with the last of its packets, whichever call (mior_pkt_release, this, the end of
 * consume, mior_tx_send) on whichever thread gives that one back.
 *
 * All or nothing: every packet is checked first; if one is not held by the application (NULL,
 * released or sent already, a stale copy, or the same packet twice in pkts) it returns -EINVAL
 * and releases none of them.  One exception: a coalesced packet given twice in pkts, not next to
 * itself, is found only while releasing: the others are released and -EINVAL says so.  Unlike mior_pkt_release, the check is not atomic with the
 * release: the packets passed must not be released or sent by another thread at the same time
 * (a later, sequential double release is refused as above).  n == 0 returns 0. */
MIOR_API int mior_pkt_release_bulk(const mior_pkt *pkts, uint32_t n);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PKT_H */
