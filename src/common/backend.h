/* The backend contract: what a ring (io_uring, IoRing) or the socket fallback must provide.
 *
 * The front end (src/common/port.c) owns the slots, the receiver and the statistics; a backend
 * owns one socket and one ring.  A backend never calls the front end: the front end hands it slots
 * (rx_post, tx_queue), asks it to submit, and reaps completions as plain records.  Every slot
 * handed to a backend comes back exactly once in a completion, except receive slots still unused
 * when the ring is closed, which the front end reclaims itself after close().
 *
 * The table is chosen once, when a port opens; the front end calls it per batch, not per packet,
 * except tx_queue (one call per packet, which a ring needs anyway to fill its entry).
 */
#ifndef MIOR_COMMON_BACKEND_H
#define MIOR_COMMON_BACKEND_H

#include <stdint.h>
#include <string.h>

#include "mior/pool.h"
#include "mior/transport.h"

/* Socket kinds (from the endpoint). */
enum mior__kind { MIOR__KIND_UDP = 1, MIOR__KIND_IP = 2, MIOR__KIND_PACKET = 3 };

/* A parsed endpoint string. */
typedef struct mior__endpoint {
  enum mior__kind kind;
  mior_addr addr;      /* udp: local address; ip: local address (port 0) */
  int ip_proto;        /* ip: IP protocol number */
  char ifname[64];     /* packet: interface name */
  char host[256];      /* udp, ip: a host name still to resolve (mior__socket_resolve), or "" */
} mior__endpoint;

/* Parse an endpoint.  A host that is not a numeric address but may be a name is left in
 * out->host for mior__socket_resolve (the parser itself never asks the resolver). */
int mior__endpoint_parse(mior__endpoint *out, const char *text);
/* mior_addr_parse, or, for "NAME[:PORT]", the port in *out and the name in host ("" when the text
 * was numeric).  0 or -EINVAL with the detail. */
int mior__addr_parse_or_name(mior_addr *out, const char *text, char *host, size_t cap);
const char *mior__kind_name(enum mior__kind kind);

struct mior__sock;

/* Counters a backend keeps itself (it never writes the port's statistics): the front end adds
 * them in when the statistics are read. */
typedef struct mior__backend_counters {
  uint64_t submits;      /* system calls of the data path (see mior_port_stats.submits) */
  uint64_t rx_rearm;     /* multishot receives re-armed */
  uint64_t cq_overflow;  /* completions the kernel lost */
  uint64_t tx_packets, tx_bytes; /* sends the backend counts itself: TX-ring frames the kernel took */
  uint64_t tx_errors;    /* send failures only the backend sees: TX-ring kicks, refused frames */
  uint32_t features_on;  /* MIOR_FEAT_* the backend turned on since open (e.g. Winsock sends) */
  uint32_t features_off; /* ... and off (GSO refused, multishot receive left) */
  uint64_t gso_sends;    /* UDP GSO sends the kernel completed */
  uint64_t offload_refused; /* UDP GSO sends the kernel refused, each sent again one by one; and
                               receive coalescing the stack refused at open (Winsock URO) */
} mior__backend_counters;

/* What a port asks of its backend at open. */
typedef struct mior__io_cfg {
  const mior__endpoint *ep;
  const mior_options *opts;   /* complete (defaults filled in) */
  mior_pool_region region;    /* the port's pool, to register once */
  uint32_t queue;             /* index of this port in its transport */
  uint32_t queues;            /* ports in the transport */
  /* packet, queues > 1: the id of the fanout group the transport's ports share.  Queue 0 has the
   * kernel make a group with an id no other group in the namespace uses and writes the id here;
   * the later queues join that group. */
  uint16_t *group_id;
  const mior_addr *peer;      /* connect the socket to this address, or NULL */
  uint16_t bound_port;        /* udp: the port queue 0 bound to (for SO_REUSEPORT siblings) */
  struct mior__sock *sock;    /* the port's socket, open (see src/common/socket.h) */
  /* Where the socket layer or the backend writes, at open, why an offload the port asked for is
   * off (receive coalescing refused by the stack), MIOR__REASON_LEN bytes; NULL: nowhere. */
  char *offload_reason;
} mior__io_cfg;

#define MIOR__REASON_LEN sizeof(((mior_port_stats *)0)->offload_reason)

/* Completion record. */
#define MIOR__OP_RX 1u
#define MIOR__OP_TX 2u
#define MIOR__NO_SLOT UINT32_MAX

/* rx: the datagram was longer than the slot (res is what fit); the front end counts and drops it. */
#define MIOR__CQE_TRUNC 0x80000000u
/* tx: the slot comes back because its bytes were copied (into an AF_PACKET TX ring), not because
 * they were sent: the backend counts the send itself once the kernel has taken the frame. */
#define MIOR__CQE_COPIED 0x40000000u
/* tx: the slot held datagrams of `seg` bytes back to back, sent as one GSO send (tx_queue_gso):
 * res bytes are ceil(res / seg) datagrams. */
#define MIOR__CQE_GSO 0x20000000u

/* Per-packet metadata: a receive's (filled by the backend's one control-message parser, with the
 * MIOR_PKT_* bits in the record's flags) and a send's (from the mior_pkt). */
typedef struct mior__pkt_meta {
  mior_addr local;   /* MIOR_PKT_LOCAL */
  uint64_t time_ns;  /* MIOR_PKT_TIMESTAMP */
  uint8_t ecn;       /* MIOR_PKT_ECN */
} mior__pkt_meta;

#define MIOR__PKT_META_MASK (MIOR_PKT_LOCAL | MIOR_PKT_TIMESTAMP | MIOR_PKT_ECN)

typedef struct mior__cqe {
  uint32_t op;     /* MIOR__OP_RX or MIOR__OP_TX */
  uint32_t slot;   /* slot the completion returns, or MIOR__NO_SLOT (e.g. a failed multishot arm) */
  int32_t res;     /* bytes, or a negative errno */
  uint32_t off;    /* rx: offset of the packet data inside the slot */
  uint32_t flags;  /* rx: MIOR_PKT_*, and MIOR__CQE_TRUNC; tx: MIOR__CQE_COPIED */
  mior_addr src;   /* rx udp: sender */
  uint32_t seg;    /* rx: a coalesced buffer (UDP GRO) of datagrams of this size each (the last
                      may be shorter), which the front end splits; 0: one datagram.
                      tx with MIOR__CQE_GSO: the segment size of the send */
  mior__pkt_meta meta; /* rx: what flags' MIOR_PKT_* bits say (the rest is not written); for a
                          coalesced buffer, the one receive's, given to every packet split off */
} mior__cqe;

/* The arrival address of a received datagram (its IP_PKTINFO / IPV6_PKTINFO), for both systems'
 * control-message parsers: addr is 4 bytes for AF_INET, 16 for AF_INET6, whose link-local
 * (fe80::/10) and link-local multicast (ff02::/16) addresses keep the interface as scope. */
static inline void mior__cqe_local(mior__cqe *c, uint16_t family, const void *addr, uint32_t ifindex) {
  const uint8_t *a = (const uint8_t *)addr;
  memset(&c->meta.local, 0, sizeof c->meta.local);
  c->meta.local.family = family;
  memcpy(c->meta.local.addr, a, family == MIOR_AF_INET ? 4u : 16u);
  if (family == MIOR_AF_INET6 &&
      ((a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || (a[0] == 0xff && (a[1] & 0x0f) == 0x02)))
    c->meta.local.scope_id = ifindex;
  c->flags |= MIOR_PKT_LOCAL;
}

struct mior__io;

typedef struct mior__backend_ops {
  mior_backend id;
  const char *name;
  /* 1 if usable here, else 0 with the reason in why (e.g. "io_uring_setup: EPERM
   * (kernel.io_uring_disabled=2)"). */
  int (*supported)(char *why, size_t len);
  /* Open the socket and the ring, register the region and the socket.  Returns 0 or -errno with
   * mior__fail detail; *features gets MIOR_FEAT_* of what was chosen.  A failed open leaves nothing
   * using the region (the front end frees the pool): a ring it has to leave allocated (an operation
   * of its own outlived every cancel) must not have the region registered. */
  int (*open)(struct mior__io **out, const mior__io_cfg *cfg, uint32_t *features);
  /* Called on the thread that will drive the ring, before its first use; and again on a new
   * thread when the one that drove the ring has ended (mior_transport_start after stop, close on
   * another thread).  -EBUSY (with the reason) if the ring cannot move to another thread. */
  int (*bind_thread)(struct mior__io *r);
  /* The driving thread lets go of the ring after cancel() and the reaping of what it cancelled:
   * release whatever only that thread can release (io_uring: its registered ring fd; and, for a
   * ring bound to that thread for good, the registered socket, so that close() frees the address
   * at once).  Optional (NULL). */
  void (*detach)(struct mior__io *r);
  /* Give up to n slots to the receive side (posted receives or the provided-buffer ring).
   * Returns how many it took (the first ones); the rest stay the caller's. */
  uint32_t (*rx_post)(struct mior__io *r, const uint32_t *slots, uint32_t n);
  /* Queue one send of len bytes starting `off` bytes into `slot`, to dst (NULL: the socket's
   * connected peer or bound interface).  -EAGAIN when the submission queue is full (the slot stays
   * the caller's).  The completion reports res = bytes sent and off = len asked. */
  int (*tx_queue)(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                  const mior_addr *dst);
  /* Submit what is queued.  If wait is nonzero and no completion is ready, wait up to timeout_us
   * (negative: no limit) for `wait` completions; a backend may treat any wait > 1 as 1, and
   * returns at the timeout with fewer.  Completions of the sends this same call submits need not
   * count toward `wait` while something else is outstanding (uring: they do not, so that a send
   * completing inside the enter does not end the wait it shares, capped at 1 ms for a caller
   * waiting on those sends alone); a backend may also return as soon as they are done (sockets).
   * Every system call made here or in reap is counted in the backend's counters (submits).  Returns >= 0 or a
   * negative errno (-ETIME/-EINTR are not errors: return 0). */
  int (*submit)(struct mior__io *r, int wait, int64_t timeout_us);
  /* Move up to max completions to out.  Returns how many. */
  uint32_t (*reap)(struct mior__io *r, mior__cqe *out, uint32_t max);
  /* Start cancelling every outstanding operation (on the driving thread, at close).  The
   * cancelled operations complete through reap; returns the number still outstanding that will
   * complete (posted receives and sends), 0 when nothing more will come. */
  int (*cancel)(struct mior__io *r);
  /* How many more receive slots the backend wants now.  Optional (NULL: as many as rx_depth
   * allows).  The front end never offers more than this to rx_post. */
  uint32_t (*rx_room)(struct mior__io *r);
  /* The backend's own counters.  Optional (NULL: none).  Called on the driving thread, or from
   * any thread as a snapshot (as mior_port_stats_get documents). */
  void (*counters)(const struct mior__io *r, mior__backend_counters *out);
  /* The direct path of a busy-polling port with one packet per operation (docs/ARCHITECTURE.md,
   * "Busy polling"): one non-blocking receive on the socket, bypassing the ring, into `slot`,
   * which the backend does not keep.  Returns 1 with *c filled as reap would fill it (the same
   * truncation flag, source and GRO segment size), 0 if no datagram is waiting, or a negative
   * errno (c->slot is then still the caller's).  Counted in submits.  Optional (NULL: no direct
   * path; then tx_direct is NULL too). */
  int (*rx_direct)(struct mior__io *r, uint32_t slot, mior__cqe *c);
  /* ... and one non-blocking send of len bytes at data, to dst (NULL: the connected peer),
   * beside the ring.  Returns the bytes sent or a negative errno; -EAGAIN: nothing went out,
   * queue it instead.  The caller uses it only when nothing of its own is queued or in flight,
   * so it cannot overtake an earlier send.  Counted in submits. */
  int (*tx_direct)(struct mior__io *r, const uint8_t *data, uint32_t len, const mior_addr *dst);
  /* Operations still outstanding that will produce a completion (sends, posted receives). */
  uint32_t (*outstanding)(struct mior__io *r);
  /* Close the ring, on any thread, once nothing is outstanding (or the thread that submitted it
   * has ended, which made the kernel cancel it).  It may close the port's socket
   * (mior__socket_close) at the point its teardown needs (Winsock aborts pending operations that
   * way; io_uring waits there for its file table to let go); the port closes it afterwards
   * otherwise.  When the port's close returns, the socket's address is free to bind again.
   * Unused receive slots are the front end's again.  Returns 0; or 1 when operations were still
   * running after the backend's own bounded wait and it left them, and the ring, allocated rather
   * than free memory the system may still write: those operations may write into the region too,
   * so the front end then never frees the pool (a leak, counted and reported). */
  int (*close)(struct mior__io *r);
  /* The event handle (mior_port_event_handle): create it on the first call, on the driving
   * thread, and return the same one after; the backend closes it in close().  Optional (NULL:
   * the port has none, -EOPNOTSUPP).  event_clear: make it unreadable (the front end then does
   * the ready work; anything arriving after must make it readable again).  event_done: after the
   * work, make it readable if `more` (the front end stopped with work left) or completions wait
   * in user space.  Both are called only once the handle exists. */
  int (*event_open)(struct mior__io *r, mior_handle *out);
  void (*event_clear)(struct mior__io *r);
  void (*event_done)(struct mior__io *r, int more);
  /* tx_queue with per-send metadata (source address, ECN); the front end calls it instead of
   * tx_queue only when the packet carries some.  Optional (NULL: -EOPNOTSUPP). */
  int (*tx_queue_meta)(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                       const mior_addr *dst, uint32_t flags, const mior__pkt_meta *meta);
  /* Whether a udp port of this backend takes coalesced receives here (UDP GRO, Winsock URO), so
   * that its default slots hold one (MIOR__GRO_BUF_SIZE x MIOR__GRO_BUF_COUNT): 1, or 0 with the
   * reason in why (why may be NULL).  Optional (NULL: never, small slots). */
  int (*rx_coalesce)(char *why, size_t len);
  /* One slot of datagrams back to back as one UDP GSO send (mior_tx_send_gso).  tx_gso_ok: 1 if
   * a send of len bytes cut into seg-byte datagrams can go that way now (GSO on and confirmed by
   * a GSO send that went out, seg and len within the limits), else 0 and the front end copies
   * the datagrams into slots of their own.  tx_queue_gso: as tx_queue; the completion is one
   * record for the slot with MIOR__CQE_GSO and seg set.  A GSO send the kernel refuses completes
   * with the error (there are no single sends of one slot to fall back to).  Optional (NULL). */
  int (*tx_gso_ok)(struct mior__io *r, uint32_t seg, uint32_t len);
  int (*tx_queue_gso)(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len, uint32_t seg,
                      const mior_addr *dst);
  /* The MIOR_OPT_RX_* flags the backend can deliver (others refused at open). */
  uint32_t rx_meta_opts;
  uint32_t flags; /* MIOR__BACKEND_* */
} mior__backend_ops;

/* The backend needs no socket: the port opens none (a test backend that feeds records). */
#define MIOR__BACKEND_NO_SOCKET 0x1u

/* The backends this OS build provides, most preferred first (NULL-terminated).  Defined in the
 * OS directory (src/linux/backends.c, src/win/backends.c). */
extern const mior__backend_ops *const mior__backends[];

/* Backend by id, or NULL if this build has none. */
const mior__backend_ops *mior__backend_find(mior_backend id);

#endif
