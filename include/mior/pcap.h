/* mior_pcap: record what a port sends and receives as a standard pcap file.
 *
 * The file is the classic libpcap format (24-byte global header, then a 16-byte record header
 * before each packet, host byte order, microsecond timestamps), readable by tcpdump -r,
 * tshark -r and Wireshark, written without libpcap so the library stays dependency-free.
 *
 * The tap needs no change to the port: it wraps the application's receiver (every packet handed
 * to consume is recorded first) and the application records each packet it transmits just before
 * mior_tx_send (mior_pcap_tx_send does both).  Appends are thread-safe: one capture may record
 * several ports, each driven by its own thread.  Packets are recorded as they are handed over,
 * so a capture shows what the application saw and asked to send; a send that fails afterwards
 * is still in the file (the port's tx_errors counts it).
 *
 *   mior_pcap *cap;
 *   mior_pcap_open(&cap, "out.pcap", MIOR_PCAP_LINKTYPE_ETHERNET, 0);
 *   mior_pcap_tap tap;
 *   mior_receiver wrapped;
 *   mior_pcap_wrap_receiver(&tap, cap, &my_receiver, &wrapped);
 *   mior_transport_open(&t, "packet://veth0", &opts, &wrapped);
 *   ...
 *   mior_pcap_tx_send(cap, port, &pkt, len, NULL);   (instead of mior_tx_send)
 *   ...
 *   mior_transport_close(t);
 *   mior_pcap_close(cap);
 */
#ifndef MIOR_PCAP_H
#define MIOR_PCAP_H

#include "common.h"
#include "pkt.h"
#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mior_pcap mior_pcap;

/* Link types (the pcap global header's network field). */
#define MIOR_PCAP_LINKTYPE_ETHERNET 1u /* packet:// ports: whole Ethernet frames */
#define MIOR_PCAP_LINKTYPE_RAW 101u    /* ip:// ports: packets start at the IPv4/IPv6 header */
#define MIOR_PCAP_LINKTYPE_USER0 147u  /* udp:// ports: datagram payloads (no headers at all) */

/* The link type that suits an endpoint string ("packet://..." -> ETHERNET, "ip://..." -> RAW,
 * "udp://..." -> USER0), or 0 for an unknown scheme. */
MIOR_API uint32_t mior_pcap_linktype_for(const char *endpoint);

/* Create (truncate) path and write the global header.  snaplen 0 = 65535; longer packets are
 * recorded cut to snaplen with their original length kept in the record.  Returns 0 and *out,
 * or -EINVAL (bad argument), or the negative errno of the failed open/write. */
MIOR_API int mior_pcap_open(mior_pcap **out, const char *path, uint32_t linktype, uint32_t snaplen);

/* Append one packet stamped with the current time.  Thread-safe.  -EINVAL for NULL arguments,
 * -EIO if the file could not be written (the capture then stops recording, and says so once in
 * mior_last_error()). */
MIOR_API int mior_pcap_write(mior_pcap *cap, const void *data, uint32_t len);

/* Push buffered records to the file (records are buffered by stdio between calls). */
MIOR_API int mior_pcap_flush(mior_pcap *cap);

/* Packets recorded so far. */
MIOR_API uint64_t mior_pcap_count(const mior_pcap *cap);

/* Flush and close.  Returns 0 or the negative errno of the last failed write or close.
 * cap may be NULL.  Wrapped receivers must not be used afterwards. */
MIOR_API int mior_pcap_close(mior_pcap *cap);

/* A receiver wrapper: storage the caller keeps alive as long as the wrapped receiver is in use
 * (typically until mior_transport_close).  Fields are private. */
typedef struct mior_pcap_tap {
  mior_pcap *cap;
  mior_receiver inner;
} mior_pcap_tap;

/* Fill *out with a receiver that records each packet into cap and then hands it to inner (which
 * may be NULL: packets are recorded and dropped).  The returned MIOR_DONE/MIOR_KEEP is inner's.
 * Returns 0 or -EINVAL. */
MIOR_API int mior_pcap_wrap_receiver(mior_pcap_tap *tap, mior_pcap *cap, const mior_receiver *inner,
                                     mior_receiver *out);

/* Record pkt->data[0..len) into cap (if cap is not NULL), then mior_tx_send(port, pkt, len, dst).
 * Ownership as mior_tx_send: the slot is the port's afterwards, also on failure.  Returns
 * mior_tx_send's result. */
MIOR_API int mior_pcap_tx_send(mior_pcap *cap, mior_port *port, mior_pkt *pkt, uint32_t len,
                               const mior_addr *dst);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_PCAP_H */
