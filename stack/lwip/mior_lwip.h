/* mior_lwip: an lwIP network interface whose link is a mior port.
 *
 * Built for lwIP in its threaded configuration with core locking (LWIP_TCPIP_CORE_LOCKING=1), as
 * Debian's liblwip-dev is.  One mior_lwip is one netif on one port:
 *
 *   packet://IFNAME  whole Ethernet frames; lwIP runs ARP and owns a MAC and an IPv4 address that
 *                    the kernel on that interface does not have.
 *   ip://ADDR/PROTO  IPv4 packets of one protocol, no link header, no ARP; lwIP shares ADDR with
 *                    the kernel, so the kernel's own replies (TCP RSTs, ICMP) must be filtered:
 *                    see docs/INTEGRATION.md.
 *
 * Threading (see docs/INTEGRATION.md for why): the adapter starts one driver thread that alone
 * drives the port.  It polls the port, wraps each received frame as a pbuf and feeds the batch to
 * lwIP while holding lwIP's core lock, so lwIP's replies (ACKs, echoes) are transmitted straight
 * from that thread.  Frames lwIP emits on any other thread (its timer thread, an application
 * thread holding the core lock) are copied into a bounded queue the driver thread sends within a
 * millisecond.  A full port or queue makes linkoutput return ERR_MEM, which lwIP's TCP retries;
 * nothing is dropped silently.
 *
 * Receive buffers: by default a received frame is handed to lwIP without a copy, as a custom pbuf
 * over the mior slot, released (mior_pkt_release) when lwIP frees the pbuf.  Frames a peer alone
 * could make lwIP keep for long are copied instead: IPv4 fragments (the reassembly queue) and TCP
 * data that is not the next expected (the out-of-order queue); see rx_unlent.  What remains held
 * is data the application has not read yet (or keeps); once `max_held` slots are held, further
 * frames are copied into PBUF_RAM so the port can always receive.  MIOR_LWIP_COPY_RX copies every
 * frame.
 *
 * Callbacks of lwIP's raw API run on the driver thread (input) or on lwIP's own thread (timers),
 * always with the core lock held.  Code outside those callbacks must take the lock
 * (LOCK_TCPIP_CORE / UNLOCK_TCPIP_CORE) around raw API calls.
 *
 * Random numbers: lwIP draws them from the process's rand() (LWIP_RAND is rand() in the
 * arch/cc.h its library was built with, Debian's liblwip 2.1.3 among them; it cannot be changed
 * without rebuilding lwIP).  It calls rand() when lwIP starts, in the first mior_lwip_start, to
 * pick its first local TCP and UDP ports (later ones count up from there), and for IGMP and MLD
 * report delays; its TCP initial sequence numbers do not come from rand().  The adapter does not
 * reseed rand(): that belongs to the application, whose own sequence a library must not reset.
 * A program whose lwIP opens connections or UDP sockets of its own, and which wants those ports
 * unpredictable, seeds rand() (e.g. from getrandom()) before its first mior_lwip_start, as
 * examples/lwip/tcp_echo_lwip.c does.
 *
 * The kernel peer of a packet:// port on a veth must put real checksums in its frames (transmit
 * checksum offload off), or lwIP drops its TCP: see docs/INTEGRATION.md.  That is a change to the
 * host, not the stack's business: `ethtool -K PEER tx off`, or in the tests and tools
 * netns_tx_checksum_offload_off() in tools/common/netns.h.
 */
#ifndef MIOR_LWIP_H
#define MIOR_LWIP_H

#include <stdint.h>

#include <mior/mior.h>
#include <mior/pcap.h>

#include "lwip/netif.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mior_lwip mior_lwip;

#define MIOR_LWIP_COPY_RX 0x1u /* copy every received frame into a PBUF_RAM pbuf */

typedef struct mior_lwip_options {
  size_t sz;                 /* sizeof(mior_lwip_options); set by mior_lwip_options_init */
  const char *endpoint;      /* "packet://IFNAME" or "ip://ADDR/PROTO" (required) */
  const mior_options *port;  /* options of the mior transport; NULL = defaults */
  const char *ip;            /* lwIP's IPv4 address (required) */
  const char *netmask;       /* default "255.255.255.0" */
  const char *gateway;       /* default none */
  uint8_t mac[6];            /* packet: lwIP's MAC; all zero = 02:6d:69:xx:xx:xx from ip */
  uint16_t mtu;              /* default 1500 */
  uint32_t flags;            /* MIOR_LWIP_* */
  uint32_t max_held;         /* received slots lwIP may hold before copying; 0 = a quarter of
                                the port's buffers */
  uint32_t txq_frames;       /* frames queued from threads other than the driver; default 512 */
  mior_pcap *pcap;           /* record every frame received and sent (NULL = none) */
  int netif_default;         /* nonzero: make this lwIP's default netif */
} mior_lwip_options;

/* Fill *o with the defaults, sz included.  The struct grows by the rule of mior_options: a
 * program built against an older, smaller mior_lwip_options is read only as far as its sz, and
 * one built against a newer header is refused (-EINVAL) only if it sets a field this adapter does
 * not know. */
void mior_lwip_options_init(mior_lwip_options *o);

/* Start lwIP's core thread (once per process), open the transport on o->endpoint in the calling
 * thread's network namespace, add the netif (up, link up) and start the driver thread.
 * Returns 0 and *out, or a negative errno (detail in mior_last_error()). */
int mior_lwip_start(mior_lwip **out, const mior_lwip_options *o);

/* The netif, for lwIP calls (with the core lock held). */
struct netif *mior_lwip_netif(mior_lwip *l);
/* The mior transport underneath.  Do not poll or transmit on it, and do not read its statistics
 * directly while the adapter runs (the driver thread writes them): use mior_lwip_port_stats. */
mior_transport *mior_lwip_transport(mior_lwip *l);

/* A consistent copy of the port's statistics, taken by the driver thread between two polls
 * (within a few milliseconds).  Safe from any thread.  0, or -ETIMEDOUT if the driver did not
 * answer within 200 ms. */
int mior_lwip_port_stats(mior_lwip *l, mior_port_stats *out);

typedef struct mior_lwip_stats {
  uint64_t rx_frames;     /* frames handed to lwIP */
  uint64_t rx_zero_copy;  /* ... of which as custom pbufs over the mior slot */
  uint64_t rx_copied;     /* ... of which copied into PBUF_RAM */
  uint64_t rx_unlent;     /* ... of which copied because lwIP would queue them for long: IPv4
                             fragments and out-of-order TCP data (counted in rx_copied) */
  uint64_t rx_dropped;    /* frames lost before lwIP (pbuf allocation failed) */
  uint64_t tx_frames;     /* frames queued on the port */
  uint64_t tx_deferred;   /* ... of which came from another thread through the queue */
  uint64_t tx_nomem;      /* linkoutput calls answered ERR_MEM (port or queue full) */
  uint32_t held;          /* received slots lwIP holds now */
  uint32_t held_high;     /* most slots lwIP held at once */
  uint64_t tw_reused;     /* SYNs that reused the 4-tuple of a TIME_WAIT connection and were
                             accepted as new connections (RFC 1122 4.2.2.13: sequence number
                             beyond the old connection's) */
  uint64_t tw_kept;       /* such SYNs whose sequence number did not pass: left to lwIP, which
                             answers with an ACK for the old connection */
} mior_lwip_stats;

int mior_lwip_stats_get(mior_lwip *l, mior_lwip_stats *out);

/* Stop: bring the netif down and remove it, stop the driver thread, and if lwIP holds no received
 * slot any more, close the transport and free everything (returning mior_transport_close's
 * result: 0 when the pool was fully returned).  If lwIP still holds slots (a connection that was
 * not closed keeps unread data), returns -EBUSY and frees nothing: close or abort the connections
 * and call mior_lwip_stop again.  l may be NULL. */
int mior_lwip_stop(mior_lwip *l);

/* Who holds the received slots that make mior_lwip_stop return -EBUSY, in words for a message:
 * the slots held, lwIP's open TCP connections, and of those how many keep data lwIP could not
 * hand to the application (refused) or out of order; the rest is data the application was given
 * and has not freed.  Writes a NUL-terminated line into buf; returns the number of slots held. */
uint32_t mior_lwip_holders(mior_lwip *l, char *buf, size_t len);

/* Small services on lwIP's raw TCP API, used by examples/lwip/tcp_echo_lwip.c, mior-stack and
 * the tests.  Both listen on every lwIP address.  Call them once the stack runs (they take the
 * core lock themselves).  Returns 0 or a negative errno. */

/* Echo every byte back.  Reading is paced by what could be written: data is acknowledged to the
 * peer (tcp_recved) only once it was queued for sending, so a slow peer slows the sender. */
int mior_lwip_echo_listen(uint16_t port);

/* Answer each HTTP/1.x request with "200 OK" and body, then close (Connection: close).  body is
 * copied. */
int mior_lwip_http_listen(uint16_t port, const char *body);

/* Bulk one way, for measuring each direction alone (as iperf3 does, without its protocol).
 * discard: read and drop everything (RFC 863).  source: on each connection send `bytes` bytes,
 * byte at stream offset o being o % 251, then close; what the peer sends is dropped. */
int mior_lwip_discard_listen(uint16_t port);
int mior_lwip_source_listen(uint16_t port, uint64_t bytes);

/* An iperf3 server (TCP tests, one at a time; iperf3's default port is 5201): a stock iperf3
 * client measures lwIP into it (`iperf3 -c ADDR`) and out of it (`-R`), with -P up to 16.  UDP
 * and bidirectional tests are refused.  Its connections are not counted in the stats below. */
int mior_lwip_iperf3_listen(uint16_t port);

/* Connections the services have open now, and ever accepted (a leak check for tests). */
typedef struct mior_lwip_service_stats {
  uint32_t open;
  uint64_t accepted, closed, aborted, bytes_echoed, http_requests;
  uint64_t bytes_discarded, bytes_sourced;
} mior_lwip_service_stats;
void mior_lwip_service_stats_get(mior_lwip_service_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_LWIP_H */
