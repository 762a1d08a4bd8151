/* Fault injection under the backend contract (see fault.h), for the tests only. */
#include "support/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "common/port.h"

/* The wrapper's ring.  Its own ops table comes first so one allocation holds both; the table is
 * per port because it carries the inner backend's id and name. */
struct mior__io {
  mior__backend_ops ops;
  const mior__backend_ops *inner_ops;
  struct mior__io *inner;
  mior_port *port;
  mior__fault_plan plan;
  mior__fault_counts n;
  uint64_t tx_queue_calls;
};

static int nth(uint64_t count, uint32_t every) {
  return every != 0 && count % every == 0;
}

static int fault_supported(char *why, size_t len) {
  (void)why, (void)len;
  return 1;
}

static int fault_open(struct mior__io **out, const mior__io_cfg *cfg, uint32_t *features) {
  (void)out, (void)cfg, (void)features;
  return mior__fail(-EINVAL, "the fault wrapper is installed on an open port, not opened");
}

static int fault_bind_thread(struct mior__io *w) {
  return w->inner_ops->bind_thread(w->inner);
}

static uint32_t fault_rx_room(struct mior__io *w) {
  return w->inner_ops->rx_room(w->inner);
}

static uint32_t fault_rx_post(struct mior__io *w, const uint32_t *slots, uint32_t n) {
  return w->inner_ops->rx_post(w->inner, slots, n);
}

static int fault_tx_queue(struct mior__io *w, uint32_t slot, uint32_t off, uint32_t len,
                          const mior_addr *dst) {
  if (w->n.died && w->plan.die_err) {
    w->n.dead_calls++;
    return mior__fail(w->plan.die_err, "fault injection: the socket is gone");
  }
  if (nth(++w->tx_queue_calls, w->plan.tx_queue_every)) {
    /* A full submission queue: nothing queued, the slot stays the caller's. */
    w->n.tx_queue_faults++;
    return -EAGAIN;
  }
  return w->inner_ops->tx_queue(w->inner, slot, off, len, dst);
}

static int fault_submit(struct mior__io *w, int wait, int64_t timeout_us) {
  uint64_t k = ++w->n.submits;
  if (w->plan.die_after && k == w->plan.die_after && !w->n.died) {
    w->n.died = 1;
    if (w->plan.die) w->plan.die(w->plan.die_ctx, w->port);
  }
  if (w->n.died && w->plan.die_err) {
    w->n.dead_calls++;
    return mior__fail(w->plan.die_err, "fault injection: the socket is gone");
  }
  if (nth(k, w->plan.submit_every)) {
    /* Like a failed io_uring_enter: nothing reaches the kernel, queued entries stay queued. */
    w->n.submit_faults++;
    return mior__fail(w->plan.submit_err, "fault injection: submit failed");
  }
  return w->inner_ops->submit(w->inner, wait, timeout_us);
}

static uint32_t fault_reap(struct mior__io *w, mior__cqe *out, uint32_t max) {
  uint32_t n = w->inner_ops->reap(w->inner, out, max);
  for (uint32_t i = 0; i < n; i++) {
    mior__cqe *c = &out[i];
    if (c->slot == MIOR__NO_SLOT || c->res <= 0) continue;
    if (c->op == MIOR__OP_RX) {
      /* A coalesced buffer (UDP GRO) is left alone: a failed receive loses one datagram and is
       * counted once, and a real kernel error never carries a buffer of several, so rewriting one
       * would lose many datagrams under one count. */
      if (c->seg && (uint32_t)c->res > c->seg) continue;
      if (nth(++w->n.rx_seen, w->plan.rx_every)) {
        /* The packet is lost, the slot is not: it must still come back to the front end. */
        c->res = w->plan.rx_err;
        c->flags = 0;
        w->n.rx_faults++;
      }
    } else if (c->op == MIOR__OP_TX) {
      if (nth(++w->n.tx_seen, w->plan.tx_every)) {
        if (w->plan.tx_err < 0) {
          c->res = w->plan.tx_err;
          w->n.tx_faults++;
        } else {
          c->res = (int32_t)(c->off / 2); /* off holds the length asked for */
          w->n.tx_short++;
        }
      }
    }
  }
  return n;
}

static int fault_cancel(struct mior__io *w) {
  return w->inner_ops->cancel(w->inner);
}

static uint32_t fault_outstanding(struct mior__io *w) {
  return w->inner_ops->outstanding(w->inner);
}

static void fault_detach(struct mior__io *w) {
  w->inner_ops->detach(w->inner);
}

static void fault_counters(const struct mior__io *w, mior__backend_counters *out) {
  w->inner_ops->counters(w->inner, out);
}

static int fault_close(struct mior__io *w) {
  if (!w) return 0;
  int kept = w->inner_ops->close(w->inner);
  /* The port's ops pointer points into w: the front end must not use it after close, and
   * mior__port_close does not. */
  free(w);
  return kept;
}

int mior__fault_install(mior_port *port, const mior__fault_plan *plan) {
  if (!port || !plan) return mior__fail(-EINVAL, "mior__fault_install: NULL argument");
  if (!port->io || port->ops->close == fault_close)
    return mior__fail(-EINVAL, "mior__fault_install: port closed or already wrapped");
  if (port->owner)
    return mior__fail(-EINVAL, "mior__fault_install: install before the port is first driven");
  struct mior__io *w = calloc(1, sizeof *w);
  if (!w) return mior__fail(-ENOMEM, "out of memory");
  w->inner_ops = port->ops;
  w->inner = port->io;
  w->port = port;
  w->plan = *plan;
  /* Only the entries this file knows are filled: an optional entry added to the contract later
   * stays NULL here (absent) rather than being called with the wrong ring. */
  w->ops.id = port->ops->id;
  w->ops.name = port->ops->name;
  w->ops.flags = port->ops->flags;
  w->ops.supported = fault_supported;
  w->ops.open = fault_open;
  w->ops.bind_thread = fault_bind_thread;
  w->ops.detach = port->ops->detach ? fault_detach : NULL;
  w->ops.rx_post = fault_rx_post;
  w->ops.rx_room = port->ops->rx_room ? fault_rx_room : NULL;
  w->ops.tx_queue = fault_tx_queue;
  w->ops.submit = fault_submit;
  w->ops.reap = fault_reap;
  w->ops.cancel = fault_cancel;
  w->ops.outstanding = fault_outstanding;
  w->ops.counters = port->ops->counters ? fault_counters : NULL;
  w->ops.close = fault_close;
  port->ops = &w->ops;
  port->io = w;
  return 0;
}

int mior__fault_counts_get(const mior_port *port, mior__fault_counts *out) {
  if (!port || !out || !port->io || port->ops->close != fault_close)
    return mior__fail(-EINVAL, "mior__fault_counts_get: not a port with fault injection");
  *out = port->io->n;
  return 0;
}
