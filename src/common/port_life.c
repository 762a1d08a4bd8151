/* A port's life: open (pool, slot records, the backend's ring), and the end of it: who may close,
 * cancelling and reaping what is outstanding on the driving thread, and freeing only what the
 * kernel can no longer write.  The data path is in port.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "common/port.h"

/* The port's own bookkeeping (not its pool, socket or ring), and the port. */
static void free_port_state(struct mior_port *p) {
  free((void *)p->ret_next);
  free(p->cqes);
  free(p->cache);
  free((void *)p->slot_state);
  free((void *)p->slot_share);
  free(p);
}

int mior__port_open(struct mior_port **out, struct mior_transport *t, uint32_t index,
                    const mior__backend_ops *ops, const mior__io_cfg *cfg_in) {
  const mior_options *o = cfg_in->opts;
  uint32_t meta = o->flags & (MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP |
                              MIOR_OPT_RX_TIMESTAMP_HW);
  if (meta && cfg_in->ep->kind != MIOR__KIND_UDP)
    return mior__fail(-EINVAL, "MIOR_OPT_RX_PKTINFO/ECN/TIMESTAMP: udp ports only");
  if (meta & ~ops->rx_meta_opts & MIOR_OPT_RX_TIMESTAMP_HW)
    return mior__fail(-EOPNOTSUPP, "MIOR_OPT_RX_TIMESTAMP_HW: hardware receive timestamps are "
                      "Linux only (the %s backend has none)", ops->name);
  if (meta & ~ops->rx_meta_opts)
    return mior__fail(-EOPNOTSUPP, "the %s backend cannot deliver per-packet metadata (MIOR_OPT_RX_* "
                      "0x%x): its receives carry no control messages; the sockets backend does",
                      ops->name, meta & ~ops->rx_meta_opts);
  struct mior_port *p = calloc(1, sizeof *p);
  if (!p) return mior__fail(-ENOMEM, "out of memory for a port");
  int rc;
  mior_pool_options po;
  mior_pool_options_init(&po);
  po.buf_count = o->buf_count;
  po.buf_size = o->buf_size;
  po.flags = ((o->flags & MIOR_OPT_HUGEPAGES) ? MIOR_POOL_HUGEPAGES : 0) |
             ((o->flags & MIOR_OPT_MLOCK) ? MIOR_POOL_MLOCK : 0);
  po.numa_node = o->numa_node;
  rc = mior_pool_create(&p->pool, &po);
  if (rc < 0) goto out_port;
  mior_pool_region_get(p->pool, &p->region);

  p->slot_state = calloc(p->region.buf_count, sizeof *p->slot_state);
  p->slot_share = calloc(p->region.buf_count, sizeof *p->slot_share);
  p->cache = malloc((size_t)p->region.buf_count * sizeof *p->cache);
  p->cqes = malloc((size_t)o->batch * sizeof *p->cqes);
  p->ret_next = malloc((size_t)p->region.buf_count * sizeof *p->ret_next);
  if (!p->slot_state || !p->slot_share || !p->cache || !p->cqes || !p->ret_next) {
    rc = mior__fail(-ENOMEM, "out of memory for port state");
    goto out_pool;
  }
  p->ops = ops;
  p->transport = t;
  p->index = index;
  p->batch = o->batch;
  p->busy_poll_us = o->busy_poll_us;
  p->coalesce_us = o->coalesce_us;
  p->no_rx = (o->flags & MIOR_OPT_NO_RX) != 0;
  p->rx_depth = p->no_rx ? 0 : o->rx_depth;
  p->tx_limit = o->buf_count - p->rx_depth;
  p->sq_limit = o->sq_entries / 2 > o->batch ? o->sq_entries / 2 : o->batch;
  p->addr_from_packet = cfg_in->ep->kind == MIOR__KIND_IP && !cfg_in->peer;
  p->datagrams = cfg_in->ep->kind == MIOR__KIND_UDP;
  p->direct = ops->rx_direct && ops->tx_direct && o->busy_poll_us && p->datagrams;
  p->direct_tx = p->direct;
  p->has_default_dst = cfg_in->peer != NULL || cfg_in->ep->kind == MIOR__KIND_PACKET;
  p->dst_family = cfg_in->ep->kind == MIOR__KIND_PACKET ? 0 : cfg_in->ep->addr.family;
  p->stats.backend = ops->id;
  atomic_init(&p->owner, MIOR__OWNER_NONE);
  atomic_init(&p->ret_head, (uint64_t)MIOR__NO_SLOT);
  atomic_init(&p->thread_rc, 0);
  atomic_init(&p->thread_running, 0);
  mior__random_bytes(&p->rng, sizeof p->rng);

  mior__io_cfg cfg = *cfg_in;
  cfg.region = p->region;
  cfg.sock = &p->sock;
  cfg.offload_reason = p->stats.offload_reason;
  /* The port owns the socket: it opens it here and hands it to the backend. */
  if (!(ops->flags & MIOR__BACKEND_NO_SOCKET)) {
    rc = mior__socket_open(&p->sock, &cfg);
    if (rc < 0) goto out_pool;
    if (p->sock.offload_refused) p->stats.offload_refused++;
  }
  uint32_t features = 0;
  rc = ops->open(&p->io, &cfg, &features);
  if (rc < 0) goto out_socket;
  p->stats.features = features;
  /* The direct path keeps datagrams in order only where the ring's receive runs inside the
   * port's own enters (io_uring DEFER_TASKRUN, no SQPOLL); elsewhere the kernel's task work may
   * take a datagram while a direct receive takes the next one (measured: 2 in 200k reordered
   * with COOP_TASKRUN).  The sockets backend has only the socket queue. */
  if (ops->id == MIOR_BACKEND_URING && (!(features & MIOR_FEAT_DEFER_TASKRUN) || (features & MIOR_FEAT_SQPOLL)))
    p->direct = p->direct_tx = 0;
  *out = p;
  return 0;

out_socket:
  if (!(ops->flags & MIOR__BACKEND_NO_SOCKET)) mior__socket_close(&p->sock, 0);
out_pool:
  mior_pool_destroy(p->pool, NULL);
  free_port_state(p);
  return rc;
out_port:
  free(p);
  return rc;
}

int mior__port_may_close(struct mior_port *p) {
  uint64_t own = atomic_load_explicit(&p->owner, memory_order_acquire);
  if (own == MIOR__OWNER_NONE || own == mior__thread_self()) return 0;
  if (own == MIOR__OWNER_RESERVED || own == MIOR__OWNER_BINDING ||
      mior__thread_ref_alive(&p->owner_ref, 100))
    return mior__fail(-EBUSY, "port %u is driven by another thread that is still running: close the "
                      "transport on that thread, or after it has ended (nothing was freed)", p->index);
  return 0;
}

/* Cancel everything outstanding and reap what comes back, for at most `ms` milliseconds.
 * Returns the operations still outstanding. */
static uint32_t quiesce(struct mior_port *p, uint32_t ms) {
  uint32_t delivered;
  p->closing = 1;
  mior__port_submit(p, 0, 0);
  p->ops->cancel(p->io);
  uint64_t end = mior__now_ns() + (uint64_t)ms * 1000000u;
  uint32_t left;
  for (;;) {
    uint32_t handled = mior__port_process(p, UINT32_MAX, &delivered);
    left = p->ops->outstanding(p->io);
    if (handled == 0 && left == 0) break;
    if (mior__now_ns() > end) break;
    /* A submit that fails (the ring refuses enters: fault injection's dead socket) must not leave
     * the cancelled operations unreaped: the backend's cancel enters by itself, and asking again
     * also collects what the first request cancelled. */
    if (handled == 0 && p->ops->submit(p->io, 1, 10000) < 0) p->ops->cancel(p->io);
  }
  p->closing = 0;
  return left;
}

uint32_t mior__port_shutdown(struct mior_port *p) {
  if (!p->io) return 0;
  uint64_t self = mior__thread_self();
  uint64_t own = atomic_load_explicit(&p->owner, memory_order_acquire);
  if (own == MIOR__OWNER_NONE) return 0; /* never driven: nothing was ever submitted */
  if (own != self) {
    /* The driver has ended (the caller checked).  A ring that can move is taken over and shut
     * down here.  One that cannot (io_uring SINGLE_ISSUER) had all its work cancelled by the
     * kernel when that thread exited, so nothing is outstanding; close() takes it from there. */
    if (mior__port_bind(p, self, own) < 0) {
      mior__clear_error();
      return 0;
    }
  }
  uint32_t left = quiesce(p, 2000);
  if (left == 0 && p->ops->detach) p->ops->detach(p->io);
  return left;
}

/* Pools left allocated because their port's ring was (operations still running at its close). */
static atomic_uint pools_kept;

/* The backend left its ring allocated with operations still running (close returned 1): they may
 * write into the pool, so its memory stays allocated for the life of the process, as the ring
 * does; the port's own bookkeeping goes.  Counted, and reported as the close's error. */
static int keep_pool(struct mior_port *p) {
  unsigned n = atomic_fetch_add(&pools_kept, 1) + 1;
  int rc = mior__fail(-ETIMEDOUT, "port %u: its ring was left allocated with operation(s) still "
                      "running after cancel, so its pool (%llu bytes) is left allocated too, never "
                      "freed under them (%u pool(s) so far in this process)",
                      p->index, (unsigned long long)p->region.len, n);
  free_port_state(p);
  return rc;
}

int mior__port_close(struct mior_port *p, uint32_t outstanding) {
  if (!p) return 0;
  if (outstanding) {
    /* The kernel did not give back every operation: it may still write into the pool.  Keep the
     * memory (a leak), never hand it back to the system. */
    int rc = mior__fail(-ETIMEDOUT, "port %u: %u operation(s) still outstanding after cancel; "
                        "its buffers are left allocated so the kernel cannot write freed memory",
                        p->index, outstanding);
    return rc;
  }
  /* Read before close: a wrapping backend (test/support's fault injection) frees the ops table
   * the port points to when it closes. */
  int has_socket = !(p->ops->flags & MIOR__BACKEND_NO_SOCKET);
  int ring_kept = p->io ? p->ops->close(p->io) : 0;
  p->io = NULL;
  p->ops = NULL;
  if (has_socket) mior__socket_close(&p->sock, 0);
  mior__thread_ref_drop(&p->owner_ref);
  if (ring_kept) return keep_pool(p);
  /* A coalesced buffer mior_rx_burst handed out in part: its undelivered packets hold the slot,
   * and nobody can take them now (when the port could not be moved to this thread, shutdown
   * did not get to them). */
  mior__port_split_drop(p);
  /* With the ring gone every slot the kernel held is ours again.  The caller made sure the
   * application holds none. */
  uint32_t held = 0;
  for (uint32_t i = 0; i < p->region.buf_count; i++) {
    uint32_t st = mior__slot_get(p, i);
    if (st == MIOR__SLOT_USER) held++;
    else if (st != MIOR__SLOT_POOL) mior_pool_release(p->pool, i);
  }
  uint32_t left = 0;
  int rc = mior_pool_close(p->pool, &left);
  if (rc == -EBUSY) mior_pool_destroy(p->pool, NULL);
  free_port_state(p);
  if (held) return mior__fail(-EBUSY, "%u packet(s) still held by the application at close", held);
  if (rc == -EBUSY)
    return mior__fail(-EBUSY, "%u slot(s) unaccounted for at close (a lost buffer: a bug)", left);
  return 0;
}
