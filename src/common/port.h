/* Internal layout of ports and transports. */
#ifndef MIOR_COMMON_PORT_H
#define MIOR_COMMON_PORT_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/backend.h"
#include "common/os.h"
#include "mior/transport.h"

/* Who holds a slot right now (port->slot_state).  Written by the driving thread; the USER -> POOL
 * step in mior_pkt_release is a compare-and-swap because it can come from any thread. */
enum {
  MIOR__SLOT_POOL = 0,   /* in the pool's free list */
  MIOR__SLOT_CACHE,      /* in the port's local free cache */
  MIOR__SLOT_RX,         /* given to the backend for receive */
  MIOR__SLOT_TX,         /* queued or in flight for send */
  MIOR__SLOT_USER,       /* kept by the receiver, or acquired for transmit and not yet sent */
};

struct mior_transport;

struct mior_port {
  /* hot: the driving thread's state */
  const mior__backend_ops *ops;
  struct mior__ring *ring;
  mior_pool_region region;
  _Atomic uint8_t *slot_state;
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
  uint32_t last_rx;         /* packets delivered by the last poll: the load estimate for coalescing */
  uint32_t sq_limit;        /* most sends queued before a submit is forced */
  int addr_from_packet;     /* ip kind without a peer: destination taken from the IP header */
  int no_rx;
  mior__cqe *cqes;          /* reap buffer, batch entries */
  mior_receiver receiver;
  uint64_t rng;             /* mior_random_seq state */
  uint64_t owner;           /* thread that drives the port (0 = not yet bound) */
  int closing;
  int in_process;           /* inside process(): the receiver's callbacks are running */
  uint32_t user_taken;      /* slots handed to the application (kept or acquired), minus those
                               it gave back through tx_send; driving thread only */
  atomic_uint user_released; /* slots given back by mior_pkt_release, from any thread */
  mior_port_stats stats;

  /* cold */
  mior_pool *pool;
  struct mior_transport *transport;
  uint32_t index;
  mior__thread *thread;
  atomic_int stop;
  int thread_rc;
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
                    const mior__backend_ops *ops, const mior__ring_cfg *cfg);
/* Cancel outstanding I/O and wait (bounded) for it to come back; call on the driving thread. */
void mior__port_quiesce(struct mior_port *port);
/* Close the ring, reclaim every slot; returns -EBUSY if the user still holds some. */
int mior__port_close(struct mior_port *port);

#endif
