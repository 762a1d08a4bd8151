/* The io_uring backend's private header: the state of one port's ring, shared by the files of
 * src/linux/uring/, one concern each:
 *
 *   ring.c    set-up (flags tried newest first), thread binding, detach, cancel, close, ops table
 *   submit.c  entering the kernel (every io_uring_enter, counted), submit, the reap dispatch
 *   rx.c      receives: posted receives, multishot receive from a provided-buffer ring, room
 *   tx.c      sends: the pending queue, UDP GSO runs, requeue of refused GSO sends
 *   kick.c    packet ports: the AF_PACKET TX ring's copy-and-kick machine (txring.h)
 *
 * How the pieces work together is in docs/ARCHITECTURE.md ("The io_uring backend").
 */
#ifndef MIOR_LINUX_URING_H
#define MIOR_LINUX_URING_H

#include <liburing.h>
#include <netinet/udp.h>
#include <stdint.h>

#include "common/internal.h"
#include "common/tx_fifo.h"
#include "common/socket.h"
#include "linux/uring/txring.h"
#include "linux/rx_meta.h"

/* user_data: op in the top byte, requested length (sends) in the next 24 bits, slot below. */
enum { UD_RX = 1, UD_TX = 2, UD_MULTISHOT = 3, UD_CANCEL = 4, UD_GSO = 5, UD_KICK = 6, UD_RING_WAIT = 7 };
#define UD(op, len, slot) (((uint64_t)(op) << 56) | ((uint64_t)(len) << 32) | (uint64_t)(slot))
#define UD_OP(ud) ((unsigned)((ud) >> 56))
#define UD_LEN(ud) ((uint32_t)(((ud) >> 32) & 0xffffffu))
#define UD_SLOT(ud) ((uint32_t)(ud))

#define BUF_GROUP 0

#ifndef UDP_SEGMENT
#  define UDP_SEGMENT 103
#endif
/* UDP_MAX_SEGMENTS of kernels before 6.9 (later ones allow 128). */
#define GSO_MAX_SEGS 64
/* One GSO send is one IP packet before segmentation: the UDP payload plus the UDP header must fit
 * IPv4's 16-bit total length with its header, and IPv6's payload length; the smaller bound serves
 * both.  A GRO receiver gets such a send whole in one buffer, which on a multishot receive shares
 * its 64 KiB slot with a header, the sender's address and the control messages (GRO's segment
 * size and, with every MIOR_OPT_RX_* on, the metadata: 16 + 32 + MIOR__RX_CMSG_SPACE, under 256
 * bytes): mior's sends stay below that, so a mior receiver never has to truncate one. */
#define GSO_MAX_BYTES (65536u - 256u)
/* GSO sends in flight at once; when all are busy, runs go out as single sends. */
#define GSO_RECORDS 128
#define REG_CHUNK_SHIFT 30 /* registered buffers are at most 1 GiB each */
/* After this many multishot receives ended by an empty datagram the port moves to posted
 * receives (docs/ARCHITECTURE.md: a peer must not force a re-arm per datagram). */
#define MS_ZERO_END_LIMIT 8
/* TX ring full and nothing else in flight that would complete: look again after this long.  The
 * kernel frees ring frames as the device sends them, which no completion reports. */
#define RING_WAIT_NS 50000

/* UDP GSO (MIOR_OPT_UDP_GSO). */
enum gso_state {
  GSO_OFF = 0,     /* not asked for, not possible, or refused by the kernel */
  GSO_PROBING,     /* on, not yet confirmed by a completed GSO send */
  GSO_CONFIRMED,   /* a GSO send went out: a later refusal is about a segment size, not GSO */
};

/* Multishot receive as the kernel took it. */
enum ms_state {
  MS_OK = 0,
  MS_REJECTED,          /* the kernel refused the arm (-EINVAL): the next submit reports it once */
  MS_REJECTED_REPORTED, /* reported: no more arms */
};

/* Per-slot message headers for sends with an address and posted receives that need the sender's
 * address.  They must stay put until the operation completes. */
struct slot_meta {
  struct msghdr msg;
  struct iovec iov;
  mior__sockaddr sa;
};

/* A send already done as far as the port is concerned (its frame was copied into the TX ring),
 * waiting to be handed out by reap. */
struct tx_done {
  uint32_t slot;
  int32_t res;     /* bytes, or a negative errno for a frame refused before the ring */
  uint32_t len;    /* bytes asked */
};

/* One GSO send: the kernel reads msg, iov and cmsg until the operation completes. */
struct gso_rec {
  struct msghdr msg;
  mior__sockaddr sa; /* the destination, for a run with one (sends on an unconnected socket) */
  struct iovec iov[GSO_MAX_SEGS];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } cmsg;
  uint32_t slots[GSO_MAX_SEGS];
  uint32_t count;
  uint32_t done;   /* completion records already handed out for this send (reap resumes) */
  uint32_t seg;    /* segment size */
  uint32_t has_dst; /* msg_name is sa (an unconnected socket's destination) */
  uint32_t whole;  /* one slot cut into datagrams (tx_queue_gso), not one slot per datagram */
};

struct mior__io {
  struct io_uring ring;
  int ring_ready;       /* ring was set up (io_uring_queue_exit is due at close) */
  mior__sock *sock;    /* the port's socket (the port opened it; close may close it) */
  int file;             /* fixed file index, or the fd */
  uint8_t sqe_flags;    /* IOSQE_FIXED_FILE when registered */
  int files_registered; /* the socket is in the ring's file table (it holds a reference) */
  int reg_buffers;
  int single_issuer;
  int defer_taskrun;
  int sqpoll;
  int enabled;
  /* liburing's private flags before the ring fd was registered: a registered ring fd belongs to
   * the thread that registered it (regfd_thread), and no other thread may use or unregister it. */
  uint8_t int_flags0;
  uint64_t regfd_thread;
  int canceling;
  mior_pool_region region;
  mior__backend_counters cnt; /* this backend's own counters (ops.counters) */
  struct slot_meta *meta;
  uint32_t tx_inflight;    /* slots in submitted sends */
  uint32_t tx_sqes;        /* send SQEs (sends, GSO sends, kicks) prepared so far, each one CQE */
  mior__tx_fifo txq;       /* sends queued, not yet made into SQEs (a destination: meta[slot]) */
  uint32_t txq_requeued;   /* the first txq_requeued are refused GSO sends put back since the
                              last submit */
  enum gso_state gso;
  uint32_t gso_max_seg;    /* largest segment the path takes (route MTU minus headers) */
  struct gso_rec *gso_recs;
  uint32_t *gso_free;
  uint32_t gso_nfree;
  uint32_t posted;        /* posted receives outstanding */
  /* Posted receives kept in the kernel at once (see mior__uring_rx_room): grows while every one
   * comes back full, falls to what the last reap brought. */
  uint32_t rx_allow, rx_allow_max;
  int names;              /* receives report the sender's address (udp) */
  int gro;                /* udp with UDP_GRO: receives carry a control message (mior__rx_cmsg_meta) */
  /* multishot receive */
  int multishot;
  int ms_armed;
  enum ms_state ms_state;
  uint32_t ms_zero_ends;  /* multishot receives ended by an empty datagram */
  uint32_t *ret_slots;    /* receive slots taken back from the buffer ring, for reap to return */
  uint32_t ret_len;
  struct io_uring_buf_ring *br;
  size_t br_len;
  uint32_t br_mask;
  uint32_t br_count;      /* buffers in the ring, not yet consumed */
  struct msghdr ms_msg;   /* template for multishot recvmsg: name length only */
  /* packet ports: the AF_PACKET TX ring, or NULL for one SEND per frame */
  mior__txring *txr;
  struct tx_done *done;   /* completion records of frames copied into the ring, FIFO */
  uint32_t done_mask;     /* capacity - 1 (a power of two >= buf_count: a slot is in it once) */
  uint32_t done_head;
  uint32_t done_len;
  int kick_inflight;      /* a kick is submitted and its completion not yet handled */
  int kick_needed;        /* frames were marked SEND_REQUEST that no kick issued since covers */
  uint32_t kick_skip;     /* kick completions handled early by kick_scan, for reap to pass over */
  int ring_wait;          /* the retry timer for a full ring is armed */
  struct __kernel_timespec ring_wait_ts;
  /* control buffers per slot, rx_ctl_space bytes each, for posted receives: the metadata asked for
   * (MIOR_OPT_RX_*) and UDP GRO's segment size (NULL with neither); and for sends that carry a
   * source address or ECN codepoint (made on the first one) */
  uint8_t *rx_ctl;
  uint32_t rx_ctl_space;
  uint8_t *tx_ctl;
  /* the event handle: an eventfd registered with the ring (-1 until asked for) */
  int evfd;
  int epfd;               /* without DEFER_TASKRUN: epoll over evfd and the socket (the handle) */
};

static inline struct io_uring_sqe *mior__uring_sqe(struct mior__io *r) {
  return io_uring_get_sqe(&r->ring);
}

int mior__kernel_at_least(int major, int minor);

/* submit.c */
unsigned mior__uring_sq_flush(struct mior__io *r);
unsigned mior__uring_sq_wakeup(struct mior__io *r, unsigned n);
int mior__uring_enter(struct mior__io *r, unsigned to_submit, unsigned min_complete, unsigned flags,
                      struct __kernel_timespec *ts);
int mior__uring_submit_now(struct mior__io *r, int getevents);
struct io_uring_sqe *mior__uring_get_tx_sqe(struct mior__io *r);
int mior__uring_submit(struct mior__io *r, int wait, int64_t timeout_us);
uint32_t mior__uring_reap(struct mior__io *r, mior__cqe *out, uint32_t max);

/* rx.c */
int mior__uring_rx_setup(struct mior__io *r, uint32_t rx_depth);
uint32_t mior__uring_rx_room(struct mior__io *r);
uint32_t mior__uring_rx_post(struct mior__io *r, const uint32_t *slots, uint32_t n);
/* Arm the multishot receive if it is due (or leave it for posted receives); -EOPNOTSUPP once
 * if the kernel refused it. */
int mior__uring_rx_arm(struct mior__io *r);
/* Completion records of slots taken back from the buffer ring; returns how many went to out. */
uint32_t mior__uring_rx_returned(struct mior__io *r, mior__cqe *out, uint32_t max);
/* One posted receive's or one multishot receive's completion into *c; returns the records made
 * (0 or 1). */
uint32_t mior__uring_reap_posted(struct mior__io *r, const struct io_uring_cqe *cqe, mior__cqe *c);
uint32_t mior__uring_reap_multishot(struct mior__io *r, const struct io_uring_cqe *cqe, mior__cqe *c);
/* Adapt how many posted receives are kept in the kernel to what the last reap brought. */
void mior__uring_rx_allow_update(struct mior__io *r, uint32_t nrx);

/* tx.c */
void mior__uring_gso_setup(struct mior__io *r, const mior_options *o, uint32_t *features);
int mior__uring_tx_queue(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                         const mior_addr *dst);
int mior__uring_tx_gso_ok(struct mior__io *r, uint32_t seg, uint32_t len);
int mior__uring_tx_queue_gso(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len, uint32_t seg,
                             const mior_addr *dst);
int mior__uring_tx_queue_meta(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                              const mior_addr *dst, uint32_t flags, const mior__pkt_meta *m);
void mior__uring_tx_prepare(struct mior__io *r);
uint32_t mior__uring_reap_send(struct mior__io *r, const struct io_uring_cqe *cqe, mior__cqe *c);
int mior__uring_gso_complete(struct mior__io *r, struct gso_rec *g, uint32_t idx, int32_t res,
                             mior__cqe *out, uint32_t max, uint32_t *n);

/* kick.c */
int mior__uring_txring_setup(struct mior__io *r, const mior__io_cfg *cfg, uint32_t *features);
void mior__uring_txring_submit(struct mior__io *r);
void mior__uring_kick(struct mior__io *r);
int mior__uring_kick_done(struct mior__io *r, int32_t res);
uint32_t mior__uring_done_reap(struct mior__io *r, mior__cqe *out, uint32_t max);

#endif
