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

/* Parse "1.2.3.4:9000", "[::1]:9000", or a bare address (port 0).  -EINVAL on bad text. */
MIOR_API int mior_addr_parse(mior_addr *out, const char *text);
/* Format as above into buf (at least 48 bytes for any address).  -ENOSPC if it does not fit. */
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
 * Fields are public and read-only except data[0..cap) (the bytes) and len (before tx_send). */
typedef struct mior_pkt {
  uint8_t *data;           /* first byte of the packet */
  uint32_t len;            /* bytes of packet (0 is a valid, empty UDP datagram) */
  uint32_t cap;            /* bytes that may be written at data */
  struct mior_port *port;  /* owning port (private) */
  uint32_t slot;           /* pool slot index (private) */
  uint32_t flags;          /* MIOR_PKT_* */
  mior_addr src;           /* udp kind: sender's address; otherwise family MIOR_AF_UNSPEC */
  uint32_t gen;            /* the slot's generation when it was handed out (private): a stale
                              copy, whose slot has since gone to someone else, is refused */
  uint32_t seg;            /* private: 1 + this packet's index among the packets of one
                              coalesced buffer (MIOR_PKT_COALESCED), which share a slot; 0 for a
                              packet that has its slot to itself */
} mior_pkt;

/* mior_pkt.flags */
#define MIOR_PKT_COALESCED 0x1u /* arrived in one coalesced buffer with others (UDP GRO) and shares
                                   its slot with them: the slot goes back when the last of them is
                                   done.  Sending such a packet (mior_tx_send) copies it into a
                                   slot of its own. */

/* A datagram longer than a slot is never delivered cut: it is dropped and counted in
 * mior_port_stats.rx_drop_truncated. */

/* Give back a packet the caller kept (MIOR_KEEP) or a transmit slot it will not send.
 * Safe from any thread, and from inside consume (then the packet's slot is no longer the
 * receiver's, whatever consume returns).  -EINVAL, with nothing changed, for a NULL pkt or a
 * packet the caller no longer holds: released or sent already, or a stale copy of a packet whose
 * slot has since been handed out again (the slot's current holder is not disturbed). */
MIOR_API int mior_pkt_release(const mior_pkt *pkt);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PKT_H */
