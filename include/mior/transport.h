/* mior_transport and mior_port: packets through a kernel ring.
 *
 * A transport opens `queues` ports on one endpoint.  Each port is one socket, one ring and one
 * buffer pool.  Received packets are handed to a mior_receiver; packets are sent with
 * mior_tx_acquire / mior_tx_send / mior_tx_flush.
 *
 * Endpoints:
 *   udp://ADDR:PORT              UDP socket bound to ADDR:PORT (IPv4, or IPv6 as [ADDR]:PORT);
 *                                port 0 picks a free port (see mior_port_local_addr).  ADDR may be
 *                                a host name, resolved once at open (IPv4 preferred); numeric
 *                                addresses never ask the resolver
 *   ip://ADDR/PROTO              raw IP socket for one protocol (udp, tcp, icmp, icmpv6 or a
 *                                number), bound to ADDR; packets include the IP header both ways
 *                                (IP_HDRINCL).  Needs CAP_NET_RAW (Linux) / administrator.
 *   packet://IFNAME              AF_PACKET socket on one interface: whole Ethernet frames.
 *                                Linux only; needs CAP_NET_RAW.
 *
 * Threading: a port is driven by one thread.  Either call mior_port_poll() in your own loop, or
 * mior_transport_start() to run one thread per port.  The first thread that calls mior_port_poll,
 * mior_tx_acquire, mior_tx_send or mior_tx_flush on a port binds it (after mior_transport_start,
 * each port's own thread does); those four calls from any other thread fail with -EBUSY and do
 * nothing, on every backend (mior_tx_send: not sent, and the slot goes back to the port as after
 * any mior_tx_send), with the rule in mior_last_error().  With mior_transport_start, transmit from
 * the receiver's callbacks.  mior_pkt_release() may be called from any thread.  A port whose
 * driving thread has ended may be bound by another thread where the backend allows it (sockets);
 * an io_uring ring is bound to its thread for good (SINGLE_ISSUER|DEFER_TASKRUN): a transport
 * polled by hand, or started and stopped before, cannot be started again.
 *
 * Closing: see mior_transport_close.
 */
#ifndef MIOR_TRANSPORT_H
#define MIOR_TRANSPORT_H

#include "common.h"
#include "pkt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mior_transport mior_transport;
typedef struct mior_port mior_port;

typedef enum mior_backend {
  MIOR_BACKEND_AUTO = 0,    /* the best available: uring (Linux) / ioring (Windows), else sockets
                               (also when the preferred one refuses the socket at open with
                               -EOPNOTSUPP, e.g. ioring without a peer) */
  MIOR_BACKEND_URING = 1,   /* Linux io_uring */
  MIOR_BACKEND_SOCKETS = 2, /* recvmmsg/sendmmsg (Linux), overlapped Winsock (Windows) */
  MIOR_BACKEND_IORING = 3,  /* Windows IoRing */
} mior_backend;

/* Name ("auto", "uring", "sockets", "ioring") and the reverse.  parse: -EINVAL if unknown. */
MIOR_API const char *mior_backend_name(mior_backend b);
MIOR_API int mior_backend_parse(const char *name, mior_backend *out);

/* 1 if the backend can run on this system, 0 if not (with the reason in mior_last_error()). */
MIOR_API int mior_backend_supported(mior_backend b);

/* Option flags (mior_options.flags). */
#define MIOR_OPT_NO_REGISTERED_BUFFERS 0x01u /* do not register the pool with the ring */
#define MIOR_OPT_NO_MULTISHOT 0x02u          /* keep individual receives posted instead */
#define MIOR_OPT_SQPOLL 0x04u                /* uring: kernel thread polls the submission queue */
#define MIOR_OPT_HUGEPAGES 0x08u             /* pool on huge pages where available */
#define MIOR_OPT_MLOCK 0x10u                 /* lock the pool in memory */
#define MIOR_OPT_NO_RX 0x20u                 /* transmit only: post no receives */
#define MIOR_OPT_NO_DEFER_TASKRUN 0x40u      /* uring: do not use SINGLE_ISSUER|DEFER_TASKRUN */
#define MIOR_OPT_UDP_GSO 0x80u               /* Linux: no effect, UDP GSO is the default there
                                                (MIOR_OPT_NO_UDP_GSO turns it off).  Sockets on
                                                Windows: runs of equal-size sends to the peer go
                                                out with USO (UDP_SEND_MSG_SIZE,
                                                MIOR_FEAT_WINSOCK_USO) where the stack has it:
                                                several times the packet rate, but an unpaced
                                                sender can then bury a receiver; see
                                                docs/TUNING.md */
#define MIOR_OPT_NO_TX_RING 0x100u           /* uring packet: send one SEND per frame instead of
                                                through an AF_PACKET TX ring (PACKET_TX_RING);
                                                see docs/TUNING.md */
#define MIOR_OPT_NO_UDP_GSO 0x200u           /* udp: do not send runs of equal-size datagrams to
                                                one destination as one UDP GSO send */
#define MIOR_OPT_NO_UDP_GRO 0x400u           /* udp: do not ask the kernel for coalesced receives
                                                (Linux UDP_GRO; on Windows the sockets backend's
                                                URO, UDP_RECV_MAX_COALESCED_SIZE); also keeps the
                                                2 KiB default slot */
/* Per-packet receive metadata (udp ports; mior_pkt's MIOR_PKT_* fields).  Off, they cost nothing;
 * on, the kernel writes a control message per receive (with io_uring multishot receive it goes
 * into the slot, after the sender's address: up to 64 bytes less room for the datagram; on
 * Windows the sockets backend then receives with WSARecvMsg instead of WSARecvFrom).  A
 * coalesced receive (UDP GRO, URO) has one set, carried by every packet split from it.  The
 * Linux backends and the Windows sockets backend deliver them; ioring refuses the open with
 * -EOPNOTSUPP (its reads carry no control messages), and AUTO then takes the sockets backend.
 * Windows: a stack that refuses the option an opt-in needs fails the open with -EOPNOTSUPP,
 * naming the option and what it needs: MIOR_OPT_RX_ECN asks IP_RECVECN (Windows 10 build 20348
 * and later) and else IP_RECVTOS; MIOR_OPT_RX_TIMESTAMP asks SIO_TIMESTAMPING (build 20348 and
 * later; Wine 8 has none).  See mior_pkt for what each field holds there. */
#define MIOR_OPT_RX_PKTINFO 0x800u           /* the local address each datagram arrived on */
#define MIOR_OPT_RX_ECN 0x1000u              /* the ECN codepoint of each datagram */
#define MIOR_OPT_RX_TIMESTAMP 0x2000u        /* kernel receive timestamps (CLOCK_REALTIME's epoch) */
#define MIOR_OPT_RX_TIMESTAMP_HW 0x4000u     /* Linux: the receiving device's hardware timestamps
                                                where it makes them, else the software ones
                                                (MIOR_PKT_TIMESTAMP_HW says which; SO_TIMESTAMPING).
                                                The port does not turn the device's stamping on:
                                                that is the administrator's (docs/INTEGRATION.md,
                                                "Receive timestamps").  Windows: -EOPNOTSUPP */

typedef struct mior_options {
  size_t sz;             /* sizeof(mior_options); set by mior_options_init */
  mior_backend backend;  /* default MIOR_BACKEND_AUTO */
  uint32_t sq_entries;   /* submission queue entries; default 2048 */
  uint32_t cq_entries;   /* completion queue entries; default 2048 (at least sq_entries) */
  uint32_t buf_count;    /* pool slots per port; default 4096 (256 with UDP GRO, see buf_size) */
  uint32_t buf_size;     /* bytes per slot; default 2048, or 65536 on a udp port with UDP GRO
                            (one slot holds one coalesced buffer; buf_count then defaults to
                            256).  With GRO on, a slot smaller than 64 KiB keeps GRO off.
                            Windows: the same with URO, on the sockets backend only and only
                            where the stack takes UDP_RECV_MAX_COALESCED_SIZE (asked once per
                            process); elsewhere (ioring, Wine, Windows before 10 2004) udp ports
                            keep 2048 x 4096.
                            A received packet must fit: with
                            io_uring multishot receive on a udp port the kernel also writes a
                            header and the sender's address into the slot (32 bytes IPv4, 44
                            IPv6), so the largest datagram is buf_size - 32 (- 44); larger ones
                            count as rx_drop_truncated */
  uint32_t queues;       /* ports; default 1 (udp: SO_REUSEPORT group; packet: fanout; ip: 1) */
  uint32_t rx_depth;     /* slots kept available for receive; default buf_count / 2 */
  uint32_t batch;        /* packets per submit and per receive batch; default 64 */
  uint32_t busy_poll_us; /* spin this long for work before blocking; default 0 */
  uint32_t flags;        /* MIOR_OPT_* */
  int cpu;               /* -1: no affinity; else port i's thread runs on CPU (cpu + i) */
  int numa_node;         /* -1: no preference; else the pools are bound to this node */
  int sndbuf;            /* socket send buffer bytes; 0 = mior's default (4 MiB, where allowed) */
  int rcvbuf;            /* socket receive buffer bytes; 0 = mior's default (4 MiB) */
  const char *peer;      /* udp: "ADDR:PORT" (or "NAME:PORT") to connect to (default
                            destination of tx_send);
                            ip: destination address to connect to; NULL = none */
  uint32_t coalesce_us;  /* receive coalescing under load: when the last wake-up brought several
                            packets, the next blocking wait asks for several too, for at most this
                            long, so one wake-up serves a batch instead of one packet.  A quiet
                            port (one packet per wake-up, e.g. ping-pong) always wakes at once.
                            A port that completed a send in the last millisecond (a server
                            answering) does not coalesce, so its replies are not delayed.
                            Default 50; 0 turns it off (figures: docs/TUNING.md).  io_uring
                            only. */
} mior_options;

/* Fill *opts with the defaults, sz included.  sz lets the struct grow: a program built against an
 * older, smaller mior_options is read only as far as its sz (the rest takes the defaults), and
 * one built against a newer header is refused (-EINVAL) only if it sets a field this library
 * does not know. */
MIOR_API void mior_options_init(mior_options *opts);

/* What a receiver returns from consume. */
#define MIOR_DONE 0 /* finished with the packet: its slot goes back to receive */
#define MIOR_KEEP 1 /* the receiver keeps it and will call mior_pkt_release(copy) later */

typedef struct mior_receiver {
  /* Called for each received packet on the port's driving thread.  pkt is valid only during the
   * call; to keep the packet, copy *pkt and return MIOR_KEEP.  May call mior_tx_* on port, and
   * may pass the received packet itself (a copy of *pkt, data and len changed within cap) to
   * mior_tx_send: an echo in place, without a copy of the bytes.  It may also mior_pkt_release
   * it.  After either, the slot is no longer the receiver's and consume's return value does not
   * matter for it. */
  int (*consume)(void *ctx, mior_port *port, const mior_pkt *pkt);
  /* Called at the end of each batch of consumed packets (may be NULL): send pending acks,
   * flush transmit batches. */
  void (*flush)(void *ctx, mior_port *port);
  void *ctx;
} mior_receiver;

/* Open a transport on an endpoint.  opts and receiver may be NULL (defaults; without a receiver,
 * mior_port_poll drops what it receives, which suits a transmitter, until the port is first
 * pulled from with mior_rx_burst: from then on poll and run_ready leave received packets for
 * mior_rx_burst).  Returns 0 and *out, or a negative errno with the detail
 * in mior_last_error(): -EINVAL for a bad endpoint or option, -EPERM/-EACCES without CAP_NET_RAW for
 * ip/packet, -ENODEV for an unknown interface, -EOPNOTSUPP if the backend demanded is unavailable. */
MIOR_API int mior_transport_open(mior_transport **out, const char *endpoint, const mior_options *opts,
                                 const mior_receiver *receiver);

/* Start one thread per port (pinned to a CPU when opts.cpu >= 0).  The thread that drove the ports
 * by hand may call it to hand them over.  -EALREADY if started; -EBUSY if a port is driven by
 * another thread that is still running, or its ring is bound for good to a thread that drove it
 * before (io_uring: a transport that was polled by hand, or started and
 * stopped before, cannot be started again: open a new one).  If a port's thread stops on an
 * error, the other ports go on; the port's stats say so (thread_running 0, thread_error). */
MIOR_API int mior_transport_start(mior_transport *t);
/* Stop and join the threads (each finishes its current batch, cancels its outstanding I/O,
 * delivers what had already been received, and lets go of its ring).  Returns 0, or the first error a port's thread stopped on.  0 if not
 * started.  -EDEADLK if called from one of the transport's own threads (a receiver callback). */
MIOR_API int mior_transport_stop(mior_transport *t);
/* Stop, cancel outstanding I/O, wait for the kernel to give every buffer back, return every slot
 * to its pool and free everything.  When it returns 0 the kernel holds nothing of the transport
 * and its address (udp port) can be bound again at once.  t may be NULL.
 *
 * Which thread: the one that drives the ports, any thread if they were never driven or are driven
 * by the transport's own threads (mior_transport_start), or any thread once the thread that drove
 * them has ended.  From another thread while that thread still runs: -EBUSY, and nothing is
 * stopped or freed (the kernel could still write into the buffers): close it on that thread.
 * From inside a receiver callback of a started transport: -EDEADLK.
 *
 * Packets that had already been received when close cancels the receives are still handed to
 * consume (on the closing thread for ports driven by hand).
 *
 * Held packets: if the application still holds packets (kept, or acquired and not sent), close
 * returns -EBUSY and frees nothing, as mior_pool_close does; the transport is stopped.  Release
 * them (mior_pkt_release) and close again. */
MIOR_API int mior_transport_close(mior_transport *t);

MIOR_API uint32_t mior_transport_queues(const mior_transport *t);
/* Port i (0 <= i < queues), or NULL if out of range. */
MIOR_API mior_port *mior_transport_port(const mior_transport *t, uint32_t i);

/* Run the port on the calling thread: reap completions, deliver up to `budget` received packets
 * (0 = the batch size; a coalesced buffer (MIOR_PKT_COALESCED) is delivered whole, so up to 63
 * more), submit queued sends, re-arm receives.  If there is nothing to do, spin up
 * to busy_poll_us, then wait up to timeout_us (0 = do not wait, negative = wait indefinitely).
 * Returns the number of packets delivered (>= 0) or a negative errno. */
MIOR_API int mior_port_poll(mior_port *port, uint32_t budget, int64_t timeout_us);

/* --- Pull receive and event loops (docs/INTEGRATION.md, "Driving mior from your event loop") ---
 *
 * mior_rx_burst: the non-blocking pull form of mior_port_poll.  It does what a poll with
 * timeout 0 does (reap, submit queued sends, re-arm receives) but hands up to max received
 * packets to the caller in pkts[] instead of to the receiver's consume (the receiver's flush is
 * not called either; both share one delivery path, so counters and order are the same).  The
 * caller owns each returned packet until it gives it back with mior_pkt_release,
 * mior_pkt_release_bulk (any thread) or mior_tx_send (a reply in place).  Returns the number of
 * packets (0: nothing ready) or a negative errno (-EINVAL bad arguments, -EBUSY on a thread that
 * does not drive the port or from inside the receiver's callbacks).  On the driving thread only,
 * like mior_port_poll.  When every slot is held by the application nothing more can be received:
 * release packets to keep receiving.  On a port without a consume callback, once mior_rx_burst
 * has been called, mior_port_poll and mior_port_run_ready keep what they reap for it (the event
 * handle stays readable, and a poll with a timeout returns at once while packets wait) instead
 * of dropping it: a pull program may wait in mior_port_poll or drive the port with
 * mior_port_run_ready and lose nothing; completions behind a waiting packet (sends) are then
 * taken by the next mior_rx_burst too.
 * A coalesced buffer (UDP GRO, MIOR_PKT_COALESCED) with more packets than max has room for: the
 * first ones are returned, the rest wait in the port and come first from the next mior_rx_burst
 * (or mior_port_poll), in order, each once; the event handle stays readable meanwhile. */
MIOR_API int mior_rx_burst(mior_port *port, mior_pkt *pkts, uint32_t max);

/* An OS handle to wait on: Linux a file descriptor (int), Windows a HANDLE. */
typedef intptr_t mior_handle;

/* The port's event handle, for epoll, poll, select, libuv's uv_poll_t or any loop: Linux a file
 * descriptor that becomes readable when the port has work ready (io_uring: an eventfd registered
 * with the ring, signalled by the kernel as completions arrive; sockets: an epoll descriptor
 * over the socket and an eventfd of the port's own).  Windows: a manual-reset event HANDLE (cast
 * the intptr_t), signalled when work is ready, for WaitForSingleObject / WaitForMultipleObjects /
 * RegisterWaitForSingleObject; "readable" below means "signalled" (tested under Wine only, never
 * run on Windows).  Winsock backend: an event every operation names.  IoRing backend: the ring's
 * completion event (SetIoRingCompletionEvent; tested only against the IoRing emulation); a ring
 * without IORING_FEATURE_SET_COMPLETION_EVENT has none: -EOPNOTSUPP with the reason, and the port
 * is driven with mior_port_poll instead.  Created on the first call (on the driving
 * thread: the call binds the port like mior_port_poll); later calls return the same handle.
 * The port owns it: do not read it or close it; mior_transport_close closes it.
 *
 * Semantics, exactly: each non-blocking work call (mior_port_run_ready, mior_rx_burst,
 * mior_port_poll) first clears the handle, then does the ready work, and if it stopped with work
 * left (its budget ran out, completions are waiting in user space, or packets of a coalesced
 * buffer that did not fit mior_rx_burst's array are waiting) makes the handle readable
 * again before it returns.  Anything that arrives after the clear makes it readable.  So after a
 * work call returns, the handle is readable whenever work is ready: no wake-up is lost, and a
 * wake-up may be spurious (the work call then returns 0).  Wait for readability only (EPOLLIN /
 * UV_READABLE), level-triggered.  Edge-triggered (EPOLLET) waiting works where the handle is an
 * eventfd (io_uring with DEFER_TASKRUN, the default on Linux 6.1+), not where it is an epoll
 * descriptor (sockets; io_uring without DEFER_TASKRUN): an edge-triggered epoll over another
 * epoll descriptor was seen to miss wake-ups (test_event_handle, under ASan's timing).
 * One exception: when the application holds every slot the port could receive into, the port
 * cannot take what waits, and giving packets back (mior_pkt_release*, from any thread) does not
 * make the handle readable: after releasing such a backlog, make one work call yourself.
 *
 * Returns 0 and *out, or -EINVAL, -EBUSY (not the driving thread), -EOPNOTSUPP where the backend
 * has none (an IoRing without a completion event: the reason in mior_last_error()), or the
 * system's error. */
MIOR_API int mior_port_event_handle(mior_port *port, mior_handle *out);

/* Do the work that is ready, without waiting: mior_port_poll(port, budget, 0).  Received packets
 * go to the receiver's consume.  Returns the packets delivered or a negative errno. */
MIOR_API int mior_port_run_ready(mior_port *port, uint32_t budget);

/* Transmit.  acquire: a free slot in *pkt (data, cap), or -EAGAIN when no slot is free or the
 * submission queue is full (back off, poll, retry; it never blocks).  send: queue pkt->data[0..len)
 * to dst (NULL = the connected peer, or the address carried by the packet for ip/packet kinds);
 * len 0 sends an empty datagram on a udp port.  The slot is owned by the port from here, also
 * when send fails.  0 means queued: it goes out when `batch` are queued, on mior_tx_flush, or at
 * the next poll, and its fate shows in tx_packets / tx_errors.  A negative errno means not sent:
 * -EINVAL / -EDESTADDRREQ / -EAFNOSUPPORT for the caller's mistakes (counted in tx_invalid),
 * -EBUSY on a thread that does not drive the port, other errors from the system (tx_errors).
 * A received packet may be sent (from consume, or later if kept).
 * Metadata: with MIOR_PKT_LOCAL and/or MIOR_PKT_ECN set in pkt->flags (udp ports), the datagram
 * leaves from pkt->local and/or with the ECN codepoint pkt->ecn (-EINVAL for a codepoint above 3
 * or a local address of the other family; -EOPNOTSUPP on a backend without per-send metadata:
 * ioring; on Windows -EINVAL for the CE codepoint 3, which Windows does not let an application
 * send).  mior_tx_acquire clears flags. */
MIOR_API int mior_tx_acquire(mior_port *port, mior_pkt *pkt);
MIOR_API int mior_tx_send(mior_port *port, mior_pkt *pkt, uint32_t len, const mior_addr *dst);
MIOR_API int mior_tx_flush(mior_port *port);
/* Send n datagrams (2..64) to one destination as one UDP GSO send, for senders that know their
 * segment size (QUIC): pkts[0..n) are acquired slots, lens[i] their lengths, all equal except the
 * last, which may be shorter, and none zero.  Where GSO is off or refused they go as n single
 * sends; either way each completes (tx_packets) as its own datagram.  As mior_tx_send: every slot
 * is the port's from here, also on error; -EINVAL (nothing sent) for lengths that break the rule
 * above or a port that is not udp. */
MIOR_API int mior_tx_send_segments(mior_port *port, mior_pkt *pkts, const uint32_t *lens, uint32_t n,
                                   const mior_addr *dst);
/* Send one slot that holds up to 64 datagrams back to back (what a QUIC sender builds): pkt->data
 * [0..len) is cut into datagrams of seg bytes, the last possibly shorter, and goes as one UDP GSO
 * send from the slot, no copy and one completion; each datagram counts in tx_packets.  Where
 * that cannot be done (the port's GSO is off, refused, or not yet confirmed by a GSO send that
 * went out, which a port's first runs do; seg beyond the path's limit; the sockets and Windows
 * backends) the datagrams are copied into slots of their own and sent as mior_tx_send_segments
 * sends them: the same datagrams, slower.  That way needs one free slot per datagram: -EAGAIN
 * (nothing sent) when the port has not that many.  A GSO send of the slot that the kernel
 * refuses after GSO had worked (the path's MTU shrank below seg) fails whole (tx_errors), and
 * later sends of that size take the copying way.  One datagram (len <= seg) is mior_tx_send.
 * As mior_tx_send: the slot is the port's from here, also on error.  -EINVAL: not a udp port,
 * seg or len 0, more than 64 datagrams, len beyond the slot; -EOPNOTSUPP: MIOR_PKT_LOCAL or
 * MIOR_PKT_ECN set. */
MIOR_API int mior_tx_send_gso(mior_port *port, mior_pkt *pkt, uint32_t len, uint32_t seg, const mior_addr *dst);

/* A random 32-bit value from a per-port generator seeded from the OS: TCP initial sequence
 * numbers, IP ids. */
MIOR_API uint32_t mior_random_seq(mior_port *port);

/* The port's local address (udp: after bind, with the chosen port). */
MIOR_API int mior_port_local_addr(const mior_port *port, mior_addr *out);
/* The backend the port runs on. */
MIOR_API mior_backend mior_port_backend(const mior_port *port);

/* Features the backend chose at open (MIOR_FEAT_*). */
#define MIOR_FEAT_REG_BUFFERS 0x001u   /* pool registered with the ring */
#define MIOR_FEAT_REG_FILES 0x002u     /* socket registered as a fixed file */
#define MIOR_FEAT_MULTISHOT_RX 0x004u  /* multishot receive into a provided buffer ring */
#define MIOR_FEAT_SINGLE_ISSUER 0x008u
#define MIOR_FEAT_DEFER_TASKRUN 0x010u
#define MIOR_FEAT_COOP_TASKRUN 0x020u
#define MIOR_FEAT_SQPOLL 0x040u
#define MIOR_FEAT_BATCH_SYSCALL 0x080u /* sockets: recvmmsg/sendmmsg */
#define MIOR_FEAT_FALLBACK 0x100u      /* AUTO fell back from the preferred backend */
#define MIOR_FEAT_TX_WINSOCK 0x200u    /* ioring: sends go through Winsock (IoRing before version 3
                                          has no WRITE); receives stay on the ring */
#define MIOR_FEAT_UDP_GSO 0x400u       /* udp: runs of equal-size sends to one destination go out
                                          as one UDP GSO send (cleared if the kernel refuses) */
#define MIOR_FEAT_TX_RING 0x800u       /* uring packet: sends are copied into an AF_PACKET TX ring
                                          and sent by one kick per batch (absent: one SEND per
                                          frame, by MIOR_OPT_NO_TX_RING or because the kernel or
                                          the link would not have a ring) */
#define MIOR_FEAT_IORING_EMULATION 0x1000u /* ioring: the IoRing reports IORING_FEATURE_UM_EMULATION
                                          (a user-mode emulation, not the kernel's rings; mior's
                                          own test emulation says so too) */
#define MIOR_FEAT_WINSOCK_USO 0x2000u  /* sockets on Windows, udp with a peer and MIOR_OPT_UDP_GSO:
                                          runs of equal-size sends go out as one UDP send
                                          segmentation (UDP_SEND_MSG_SIZE) send; absent where the
                                          stack does not have it (Wine, Windows before 10 2004) */
#define MIOR_FEAT_UDP_GRO 0x4000u      /* udp: the kernel hands over coalesced receives (UDP_GRO),
                                          split by the port into packets (MIOR_PKT_COALESCED) */
#define MIOR_FEAT_WINSOCK_URO 0x8000u  /* sockets on Windows, udp: the stack hands over coalesced
                                          receives (URO, UDP_RECV_MAX_COALESCED_SIZE), split by
                                          the port as UDP GRO's are; absent where the stack
                                          refuses it (Wine, Windows before 10 2004: counted in
                                          offload_refused, the reason in offload_reason), with
                                          MIOR_OPT_NO_UDP_GRO, or with slots under 64 KiB */

/* Write the names of the features set in `features`, comma separated. */
MIOR_API int mior_features_format(uint32_t features, char *buf, size_t len);

typedef struct mior_port_stats {
  uint64_t rx_packets, rx_bytes;     /* packets delivered to the receiver (empty datagrams too) */
  uint64_t tx_packets, tx_bytes;     /* sends the kernel completed successfully */
  uint64_t rx_nobufs;                /* times the receive side found no free slot (io_uring:
                                        the multishot receive stopped for want of buffers and was
                                        re-armed).  Not a drop: datagrams wait in the socket, and
                                        those the kernel then drops are in rx_drop_kernel */
  uint64_t rx_drop_truncated;        /* datagrams larger than a slot: dropped, never delivered cut */
  uint64_t rx_drop_kernel;           /* dropped by the kernel at the socket before mior could read
                                        them (receive buffer full: poll faster, raise rcvbuf) */
  uint64_t rx_errors;                /* failed receive completions (other than the above) */
  uint64_t rx_rearm;                 /* multishot receives re-armed */
  uint64_t rx_kept;                  /* packets the receiver kept */
  uint64_t tx_errors;                /* sends the system failed (slot returned): a completion
                                        with an error, or a submit that failed; with a TX ring
                                        (MIOR_FEAT_TX_RING) also failed kicks of the ring */
  uint64_t tx_invalid;               /* mior_tx_send calls refused as the caller's mistake (bad
                                        length, no or wrong-family destination, a packet not held) */
  uint64_t tx_short;                 /* sends that wrote fewer bytes than asked */
  uint64_t tx_backpressure;          /* mior_tx_acquire calls that returned -EAGAIN */
  uint64_t conn_refused;             /* ICMP port unreachable reported on the socket */
  uint64_t cq_overflow;              /* uring: completions the kernel lost because the
                                        completion queue was full (its own counter).  Since Linux
                                        5.5 the kernel keeps such completions until there is room
                                        and drops one only when it cannot allocate memory, so this
                                        stays 0 unless something was really lost */
  uint64_t submits;                  /* system calls the data path made: io_uring_enter (uring),
                                        sendmmsg, recvmmsg and ppoll (sockets), and the
                                        direct path's recvmsg and sendmsg (busy polling), exactly, whether
                                        they submitted, collected completions or waited.  Set-up
                                        calls (socket, io_uring_setup, io_uring_register) are not
                                        counted.  Windows: the calls that issue or submit
                                        I/O (WSARecvFrom or WSARecvMsg, WSASendTo or
                                        WSASendMsg, send, SubmitIoRing) */
  uint64_t completions;              /* completions reaped */
  uint32_t pool_in_use, pool_high_water; /* slots out of the pool: posted for receive, in
                                           flight, cached by the port, or held by the user */
  uint32_t user_held;                 /* slots the application holds: kept packets and acquired,
                                         unsent transmit slots (0 means nothing to release) */
  uint32_t tx_in_flight;              /* sends queued or submitted whose completion has not been
                                         reaped yet (0 after a drain: everything sent is done) */
  uint32_t features;                 /* MIOR_FEAT_* */
  mior_backend backend;
  char fallback_reason[96];          /* why AUTO did not use the preferred backend, or "" */
  uint32_t thread_running;           /* 1 while the port's own thread (mior_transport_start) runs;
                                        0 before start, after stop, or after it stopped on an error
                                        (transport: the number of ports whose thread runs) */
  int32_t thread_error;              /* the negative errno the port's thread stopped on, or 0 */
  uint64_t rx_coalesced;             /* coalesced receive buffers (UDP GRO) split into packets */
  uint64_t tx_gso_sends;             /* UDP GSO sends the kernel completed (each several datagrams) */
  uint64_t offload_refused;          /* times the kernel refused UDP GSO or GRO (Windows: URO)
                                        and the port fell back (to single sends, or to plain
                                        receives) */
  char offload_reason[96];           /* why a receive offload the port asked for is off (UDP GRO
                                        or URO refused at open), or "" */
} mior_port_stats;

/* The counters are written by the port's driving thread without locks.  Read them on that
 * thread (e.g. in the receiver's flush) or after mior_transport_stop for exact values; read from
 * another thread while the port runs they are a snapshot that may be mid-update (and a data race
 * to ThreadSanitizer). */
MIOR_API int mior_port_stats_get(const mior_port *port, mior_port_stats *out);
/* Sum over the transport's ports (features and backend from port 0). */
MIOR_API int mior_transport_stats_get(const mior_transport *t, mior_port_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MIOR_TRANSPORT_H */
