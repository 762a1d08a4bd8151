/* Internal layout of ports and transports. */
#ifndef MIOR_COMMON_PORT_H
#define MIOR_COMMON_PORT_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/backend.h"
#include "common/internal.h"
#include "common/socket.h"
#include "common/os.h"
#include "mior/transport.h"

/* Who holds a slot right now, and its generation: port->slot_state[slot] is (gen << 4) | state.
 * The generation grows each time the slot is handed to the application (a received packet, an
 * acquired transmit slot) and the mior_pkt carries it, so a stale copy of an old packet cannot
 * release or send the slot's next holder's packet.  The driving thread writes the word; taking a
 * slot back from the application (release, send, the end of consume) is a compare-and-swap on
 * the whole word, because mior_pkt_release may come from any thread. */
#define MIOR__SLOT_STATE_BITS 4u
#define MIOR__SLOT_STATE_MASK 0xfu
#define MIOR__SLOT_GEN_MASK (UINT32_MAX >> MIOR__SLOT_STATE_BITS)
enum {
  MIOR__SLOT_POOL = 0,   /* in the pool's free list */
  MIOR__SLOT_CACHE,      /* in the port's local free cache */
  MIOR__SLOT_RX,         /* given to the backend for receive */
  MIOR__SLOT_TX,         /* queued or in flight for send */
  MIOR__SLOT_USER,       /* kept by the receiver, or acquired for transmit and not yet sent */
  MIOR__SLOT_RETURNED,   /* given back by mior_pkt_release_bulk: on the port's return list */
  MIOR__SLOT_CLAIMED,    /* being given back by mior_pkt_release_bulk right now */
};

struct mior_transport;
struct mior_port;

/* port->owner: the thread that drives the port (mior__thread_self), or one of these. */
#define MIOR__OWNER_NONE 0u                   /* not driven yet: the first caller binds it */
#define MIOR__OWNER_RESERVED UINT64_MAX        /* mior_transport_start reserved it for its thread */
#define MIOR__OWNER_BINDING (UINT64_MAX - 1u)  /* a thread is binding it right now */

struct mior_port {
  /* hot: the driving thread's state */
  const mior__backend_ops *ops;
  struct mior__io *io;       /* the backend's state for this port (its ring, or its sockets machinery) */
  mior_pool_region region;
  _Atomic uint32_t *slot_state;  /* (generation << 4) | MIOR__SLOT_* */
  _Atomic uint64_t *slot_share;  /* per slot: a coalesced buffer's packets still held (bit i:
                                    packet i), see mior__slot_share; 0 for an unshared slot */
  uint32_t *cache;          /* LIFO of free slots owned by this port */
  uint32_t cache_len;
  uint32_t rx_posted;       /* slots the backend holds for receive */
  uint32_t rx_depth;
  uint32_t tx_pending;      /* queued, not yet submitted */
  uint32_t tx_inflight;     /* submitted, not completed */
  uint32_t tx_limit;        /* most slots the transmit side may hold */
  uint32_t batch;
  uint32_t busy_poll_us;
  uint32_t coalesce_us;
  uint64_t tx_done;         /* sends completed without error (TX-ring copies and direct ones too) */
  uint64_t tx_seen;         /* tx_done when the port last looked, and when (ns): a port */
  uint64_t tx_seen_ns;      /* that sent within the last millisecond is answering, so it does not
                               hold its receives back to coalesce them (mior_port_poll) */
  uint32_t last_rx;         /* receive completions of the last poll: the load estimate for
                               coalescing (a coalesced buffer is one, however many packets) */
  uint32_t rx_done;         /* receive completions carrying data in this poll */
  uint32_t sq_limit;        /* most sends queued before a submit is forced */
  int direct;               /* busy-polling udp port on a backend with a direct path
                               (rx_direct/tx_direct): quiet polls use it, see mior_port_poll */
  int direct_tx;            /* a direct send is allowed now (one per poll, see mior_tx_send) */
  int addr_from_packet;     /* ip kind without a peer: destination taken from the IP header */
  int datagrams;            /* udp kind: a zero-length packet is a valid datagram */
  int has_default_dst;      /* sends without dst go somewhere: a connected peer, or a packet
                               socket's interface */
  uint16_t dst_family;      /* MIOR_AF_INET/_INET6 of the socket (udp, ip), 0 for packet */
  int no_rx;
  mior__cqe *cqes;          /* reap buffer, batch entries */
  uint32_t cq_pos, cq_len;  /* cqes[cq_pos..cq_len): reaped, not yet dispatched (mior_rx_burst's
                               array filled first); they go first at the next call */
  uint32_t split_next;      /* cqes[cq_pos] is a coalesced buffer partly delivered: 1 + the index
                               of its next packet; 0 otherwise */
  uint32_t split_gen;       /* that buffer's slot generation */
  mior_pkt *burst;          /* mior_rx_burst: received packets go here instead of to consume */
  int pulled;               /* mior_rx_burst was called: without a consume, a poll keeps what it
                               reaps for the next mior_rx_burst instead of dropping it */
  uint32_t burst_n;
  int evt_on;               /* the event handle exists (mior_port_event_handle) */
  mior_receiver receiver;
  uint64_t rng;             /* mior_random_seq state */
  _Atomic uint64_t owner;   /* thread that drives the port, or MIOR__OWNER_* */
  int closing;
  int in_process;           /* inside process(): the receiver's callbacks are running */
  uint32_t user_taken;      /* slots handed to the application (kept or acquired), minus those
                               it gave back through tx_send; driving thread only */
  atomic_uint user_released; /* slots given back by mior_pkt_release, from any thread */
  /* mior_pkt_release_bulk's return list: a stack of slots linked through ret_next, pushed by any
   * thread with one compare-and-swap per bulk, taken whole by the driving thread.  The word is
   * (slots ever pushed, mod 2^32) << 32 | top slot (MIOR__NO_SLOT when empty): the count makes
   * mior__port_user_held exact before the driving thread has taken them, and, growing with every
   * push, keeps a push from succeeding against a head that was taken and rebuilt meanwhile. */
  _Atomic uint64_t ret_head;
  _Atomic uint32_t *ret_next;
  mior_port_stats stats;

  /* cold */
  mior__sock sock;          /* the socket (opened here, used by the backend) */
  mior_pool *pool;
  struct mior_transport *transport;
  uint32_t index;
  mior__thread_ref owner_ref; /* tells other threads whether the owner is still alive */
  mior__thread *thread;
  atomic_int stop;
  atomic_int thread_rc;       /* the error the port's thread stopped on, or 0 */
  atomic_int thread_running;
};

struct mior_transport {
  uint32_t queues;
  mior_options opts;
  mior__endpoint ep;
  mior_addr peer;
  int has_peer;
  int started;
  struct mior_port **ports;
};

int mior__port_open(struct mior_port **out, struct mior_transport *t, uint32_t index,
                    const mior__backend_ops *ops, const mior__io_cfg *cfg);
/* The port's own thread (mior_transport_start) takes the port reserved for it.  0 or -errno. */
int mior__port_claim(struct mior_port *port);
/* 0 if the calling thread may close the port now: it drives the port, or nobody does, or the
 * thread that drove it has ended.  -EBUSY (with the reason) if another live thread drives it. */
int mior__port_may_close(struct mior_port *port);
/* Slots the application holds now (kept packets, acquired transmit slots). */
uint32_t mior__port_user_held(const struct mior_port *port);
/* The driving thread lets go of the port for good or for now (close, the end of a port thread):
 * cancel outstanding I/O, wait (bounded) for it to come back, and release what only this thread
 * can release.  Called on the driving thread, or on any thread once the driver has ended.
 * Returns the operations still outstanding (0 unless the kernel failed to complete cancels). */
uint32_t mior__port_shutdown(struct mior_port *port);
/* Close the ring and free the port and its pool.  Call after mior__port_shutdown, with nothing
 * held by the application.  If I/O was still outstanding, the pool's memory is deliberately left
 * mapped (a leak, not a write into freed memory) and -ETIMEDOUT is returned. */
int mior__port_close(struct mior_port *port, uint32_t outstanding);

/* --- slot words (see MIOR__SLOT_*) ------------------------------------------------------------ */

static inline uint32_t mior__slot_word(const struct mior_port *p, uint32_t slot) {
  return atomic_load_explicit(&p->slot_state[slot], memory_order_relaxed);
}

static inline uint32_t mior__slot_get(const struct mior_port *p, uint32_t slot) {
  return mior__slot_word(p, slot) & MIOR__SLOT_STATE_MASK;
}

/* A move between the port's own states (never from or to USER): only the driving thread writes
 * such a slot, so a plain store keeps the generation. */
static inline void mior__slot_set(struct mior_port *p, uint32_t slot, uint32_t st) {
  uint32_t w = mior__slot_word(p, slot);
  atomic_store_explicit(&p->slot_state[slot], (w & ~MIOR__SLOT_STATE_MASK) | st, memory_order_relaxed);
}

/* Hand a slot to the application under a new generation, which its mior_pkt carries. */
static inline uint32_t mior__slot_to_user(struct mior_port *p, uint32_t slot) {
  uint32_t gen = ((mior__slot_word(p, slot) >> MIOR__SLOT_STATE_BITS) + 1u) & MIOR__SLOT_GEN_MASK;
  atomic_store_explicit(&p->slot_state[slot], (gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_USER,
                        memory_order_release);
  return gen;
}

/* Take a slot back from the application if (and only if) generation gen still holds it: one
 * compare-and-swap, so a release from another thread and the driving thread cannot both win. */
static inline int mior__slot_from_user(struct mior_port *p, uint32_t slot, uint32_t gen, uint32_t st) {
  if (MIOR_UNLIKELY(gen > MIOR__SLOT_GEN_MASK)) return 0;
  uint32_t expect = (gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_USER;
  return atomic_compare_exchange_strong_explicit(&p->slot_state[slot], &expect,
                                                 (gen << MIOR__SLOT_STATE_BITS) | st,
                                                 memory_order_acq_rel, memory_order_relaxed);
}

/* --- coalesced slots (UDP GRO) ------------------------------------------------------------------
 *
 * One received slot may hold a coalesced buffer that the port splits into up to 64 packets, each
 * pointing into the slot (no copy).  The slot goes to the application once, under one generation
 * (mior__slot_to_user), and slot_share[slot] has one bit per packet still held.  Whoever finishes
 * a packet (the end of consume, mior_pkt_release on any thread, mior_tx_send) clears its bit with
 * mior__slot_unshare; only the one that clears the last bit moves the slot on, with the usual
 * compare-and-swap on its word.  mior_pkt_release_bulk clears the bits of a run of one slot's
 * packets in one step (one atomic per slot, not per packet).  Packets of a buffer not yet
 * delivered (mior_rx_burst's array was full) keep their bits set: the slot waits for them too. */
#define MIOR__SLOT_MAX_SHARE 64u

/* Hand n (2..64) packets of a slot the driving thread is about to give to the application. */
static inline void mior__slot_share(struct mior_port *p, uint32_t slot, uint32_t n) {
  uint64_t bits = n >= 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1u;
  atomic_store_explicit(&p->slot_share[slot], bits, memory_order_relaxed);
}

/* Packets `bits` (bit i: packet i) of a shared slot are done.  Returns 1 if they were the last
 * ones held (the caller now moves the slot), 0 if others are still held, -1 if one of them was
 * not held (released twice): then nothing changed. */
static inline int mior__slot_unshare(struct mior_port *p, uint32_t slot, uint64_t bits) {
  uint64_t old = atomic_load_explicit(&p->slot_share[slot], memory_order_relaxed);
  do {
    if ((old & bits) != bits) return -1;
  } while (!atomic_compare_exchange_weak_explicit(&p->slot_share[slot], &old, old & ~bits,
                                                  memory_order_acq_rel, memory_order_relaxed));
  return (old & ~bits) == 0;
}

/* 1 if packet `seg` (1-based, mior_pkt.seg) of generation gen of a shared slot is still held. */
static inline int mior__slot_share_held(const struct mior_port *p, uint32_t slot, uint32_t gen, uint32_t seg) {
  if (seg == 0 || seg > MIOR__SLOT_MAX_SHARE) return 0;
  if (mior__slot_word(p, slot) != ((gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_USER)) return 0;
  uint64_t bit = (uint64_t)1 << (seg - 1u);
  return (atomic_load_explicit(&((struct mior_port *)p)->slot_share[slot], memory_order_acquire) & bit) != 0;
}

/* --- shared by port.c (the data path) and port_life.c (open, shutdown, close) ----------------- */

/* Bind the port to thread `self` if its owner is still `own`. */
int mior__port_bind(struct mior_port *port, uint64_t self, uint64_t own);
/* Reap and dispatch completions until none are ready or `budget` packets were delivered. */
void mior__port_split_drop(struct mior_port *p);
uint32_t mior__port_process(struct mior_port *port, uint32_t budget, uint32_t *delivered);
/* Take the slots of mior_pkt_release_bulk's return list back into the cache (driving thread). */
void mior__port_take_returned(struct mior_port *port);
/* Submit what is queued (and wait, see the backend's submit). */
int mior__port_submit(struct mior_port *port, int wait, int64_t timeout_us);

#endif
