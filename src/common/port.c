/* The port: the data path between a backend's completions and the user's receiver.
 *
 * Slot flow.  The port keeps a small LIFO cache of free slots taken from its pool in bulk, so the
 * per-packet path touches no shared atomics: a received slot the receiver is done with goes
 * straight back to the cache and from there to the next receive; a sent slot comes back to the
 * cache when its completion is reaped.  Only packets the receiver keeps, released later from any
 * thread, go back through the pool's lock-free list.  slot_state records who holds each slot, and
 * the slot's generation, so a double or stale release is refused and close can return every slot,
 * wherever it was.
 *
 * Threads.  A port is driven by one thread: the first that polls or transmits on it binds it
 * (ensure_bound), and the others get -EBUSY.  mior_pkt_release is the only call for any thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "common/port.h"
#include "mior/pkt.h"

static inline uint32_t slot_word(const struct mior_port *p, uint32_t slot) {
  return atomic_load_explicit(&p->slot_state[slot], memory_order_relaxed);
}

static inline uint32_t slot_get(const struct mior_port *p, uint32_t slot) {
  return slot_word(p, slot) & MIOR__SLOT_STATE_MASK;
}

/* A move between the port's own states (never from or to USER): only the driving thread writes
 * such a slot, so a plain store keeps the generation. */
static inline void slot_set(struct mior_port *p, uint32_t slot, uint32_t st) {
  uint32_t w = slot_word(p, slot);
  atomic_store_explicit(&p->slot_state[slot], (w & ~MIOR__SLOT_STATE_MASK) | st, memory_order_relaxed);
}

/* Hand a slot to the application under a new generation, which its mior_pkt carries. */
static inline uint32_t slot_to_user(struct mior_port *p, uint32_t slot) {
  uint32_t gen = ((slot_word(p, slot) >> MIOR__SLOT_STATE_BITS) + 1u) & MIOR__SLOT_GEN_MASK;
  atomic_store_explicit(&p->slot_state[slot], (gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_USER,
                        memory_order_release);
  return gen;
}

/* Take a slot back from the application if (and only if) generation gen still holds it: one
 * compare-and-swap, so a release from another thread and the driving thread cannot both win. */
static inline int slot_from_user(struct mior_port *p, uint32_t slot, uint32_t gen, uint32_t st) {
  if (MIOR_UNLIKELY(gen > MIOR__SLOT_GEN_MASK)) return 0;
  uint32_t expect = (gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_USER;
  return atomic_compare_exchange_strong_explicit(&p->slot_state[slot], &expect,
                                                 (gen << MIOR__SLOT_STATE_BITS) | st,
                                                 memory_order_acq_rel, memory_order_relaxed);
}

static inline void cache_push(struct mior_port *p, uint32_t slot) {
  slot_set(p, slot, MIOR__SLOT_CACHE);
  p->cache[p->cache_len++] = slot;
}

/* Take up to `want` slots from the pool into the cache; returns how many came. */
static uint32_t cache_fill(struct mior_port *p, uint32_t want) {
  uint32_t room = p->region.buf_count - p->cache_len;
  if (want > room) want = room;
  if (want == 0) return 0;
  int n = mior_pool_acquire_bulk(p->pool, p->cache + p->cache_len, want);
  if (n <= 0) return 0;
  for (int i = 0; i < n; i++) slot_set(p, p->cache[p->cache_len + (uint32_t)i], MIOR__SLOT_CACHE);
  p->cache_len += (uint32_t)n;
  return (uint32_t)n;
}

/* Keep rx_depth slots with the backend.  Posting is done in chunks of at least a batch (or all
 * that is missing at start) so the backend sees few, large hand-overs. */
static void rx_refill(struct mior_port *p) {
  if (p->no_rx || p->closing) return;
  uint32_t need = p->rx_depth - p->rx_posted;
  if (need == 0 || (need < p->batch && p->rx_posted > 0)) return;
  if (p->ops->rx_room) {
    uint32_t room = p->ops->rx_room(p->ring);
    if (need > room) need = room;
    if (need == 0) return;
  }
  if (p->cache_len < need) cache_fill(p, need - p->cache_len);
  uint32_t n = need < p->cache_len ? need : p->cache_len;
  if (n == 0) return;
  uint32_t *slots = p->cache + (p->cache_len - n);
  for (uint32_t i = 0; i < n; i++) slot_set(p, slots[i], MIOR__SLOT_RX);
  uint32_t taken = p->ops->rx_post(p->ring, slots, n);
  /* Slots the backend did not take go back to the cache state; they are still in place at the
   * end of the cache array, so shrinking the cache by `taken` would lose them: move them down. */
  if (taken < n) {
    for (uint32_t i = taken; i < n; i++) slot_set(p, slots[i], MIOR__SLOT_CACHE);
    memmove(slots, slots + taken, (size_t)(n - taken) * sizeof *slots);
  }
  p->cache_len -= taken;
  p->rx_posted += taken;
}

/* Take the port for the calling thread if its owner is still `own`. */
static int bind_to_self(struct mior_port *p, uint64_t self, uint64_t own) {
  if (!atomic_compare_exchange_strong_explicit(&p->owner, &own, MIOR__OWNER_BINDING,
                                               memory_order_acq_rel, memory_order_acquire))
    return mior__fail(-EBUSY, "port %u was bound by another thread just now", p->index);
  int rc = p->ops->bind_thread(p->ring);
  if (rc < 0) {
    atomic_store_explicit(&p->owner, own, memory_order_release);
    return rc;
  }
  mior__thread_ref_drop(&p->owner_ref);
  mior__thread_ref_self(&p->owner_ref);
  atomic_store_explicit(&p->owner, self, memory_order_release);
  return 0;
}

/* Bind the port to the calling thread: a port nobody drives yet, or whose driver has ended (if
 * the backend lets its ring move).  -EBUSY while another live thread drives it. */
static int bind_slow(struct mior_port *p, uint64_t self, uint64_t own) {
  if (own == MIOR__OWNER_RESERVED)
    return mior__fail(-EBUSY, "port %u is driven by its transport's thread (mior_transport_start): "
                      "call mior_tx_* from the receiver's callbacks, or stop the transport first",
                      p->index);
  if (own == MIOR__OWNER_BINDING)
    return mior__fail(-EBUSY, "port %u is being bound to another thread right now", p->index);
  if (own != MIOR__OWNER_NONE && mior__thread_ref_alive(&p->owner_ref, 1))
    return mior__fail(-EBUSY, "port %u is driven by another thread (the first one that polled or "
                      "sent on it): mior_port_poll and mior_tx_* must be called on that thread; "
                      "only mior_pkt_release may be called from any thread", p->index);
  return bind_to_self(p, self, own);
}

static inline int ensure_bound(struct mior_port *p) {
  uint64_t self = mior__thread_self();
  uint64_t own = atomic_load_explicit(&p->owner, memory_order_acquire);
  if (MIOR_LIKELY(own == self)) return 0;
  return bind_slow(p, self, own);
}

int mior__port_claim(struct mior_port *p) {
  return bind_to_self(p, mior__thread_self(), MIOR__OWNER_RESERVED);
}


static void count_error(struct mior_port *p, int res, int rx) {
  switch (res) {
  case -ECONNREFUSED: p->stats.conn_refused++; break;
  /* A receive that found no buffer: the datagram stays in the socket (or the kernel drops it
   * there, which rx_drop_kernel shows). */
  case -ENOBUFS: if (rx) p->stats.rx_nobufs++; else p->stats.tx_errors++; break;
  /* A cancelled operation is expected while closing.  On a running port nothing of ours cancels
   * it, so it is counted: a receive that carried a packet and came back cancelled lost that
   * packet, and every lost packet must show in some counter (found by test_fault_inject). */
  case -ECANCELED:
    if (p->closing) break;
    if (rx) p->stats.rx_errors++;
    else p->stats.tx_errors++;
    break;
  case -EAGAIN: case -EINTR: break;
  default: if (rx) p->stats.rx_errors++; else p->stats.tx_errors++; break;
  }
}

static inline void rx_complete(struct mior_port *p, const mior__cqe *c, uint32_t *delivered) {
  if (c->slot == MIOR__NO_SLOT) {
    count_error(p, c->res, 1);
    return;
  }
  p->rx_posted--;
  /* A packet that was already received when the port stops or closes is still delivered (quiesce
   * reaps it): dropping it there would lose it without a count. */
  if (MIOR_UNLIKELY(c->res < 0 || (c->flags & MIOR__CQE_TRUNC) || (c->res == 0 && !p->datagrams))) {
    if (c->res < 0) count_error(p, c->res, 1);
    else if (c->flags & MIOR__CQE_TRUNC) p->stats.rx_drop_truncated++;
    else p->stats.rx_errors++; /* an empty read on a kind without datagrams */
    cache_push(p, c->slot);
    return;
  }
  p->stats.rx_packets++;
  p->stats.rx_bytes += (uint64_t)c->res;
  (*delivered)++;
  if (!p->receiver.consume) {
    cache_push(p, c->slot);
    return;
  }
  mior_pkt pkt;
  pkt.data = mior_pool_region_slot(&p->region, c->slot) + c->off;
  pkt.len = (uint32_t)c->res;
  pkt.cap = p->region.buf_size - c->off;
  pkt.port = p;
  pkt.slot = c->slot;
  pkt.flags = c->flags;
  pkt.src = c->src;
  pkt.reserved_ = 0;
  /* During consume the slot is the receiver's, like a kept packet: it may send it (echo in
   * place) or release it, and then the slot is no longer its own whatever consume returns. */
  pkt.gen = slot_to_user(p, c->slot);
  p->user_taken++;
  int verdict = p->receiver.consume(p->receiver.ctx, p, &pkt);
  if (verdict == MIOR_KEEP) {
    if (slot_word(p, c->slot) == ((pkt.gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_USER))
      p->stats.rx_kept++;
    return;
  }
  /* Still this packet's slot (not sent, not released, so not handed out again): back to the
   * cache.  The compare-and-swap loses only to a release from another thread. */
  if (slot_from_user(p, c->slot, pkt.gen, MIOR__SLOT_CACHE)) {
    p->user_taken--;
    p->cache[p->cache_len++] = c->slot;
  }
}

static inline void tx_complete(struct mior_port *p, const mior__cqe *c) {
  p->tx_inflight--;
  if (MIOR_UNLIKELY(c->res < 0)) {
    count_error(p, c->res, 0);
  } else if (c->flags & MIOR__CQE_COPIED) {
    /* counted by the backend when the kernel takes the frame */
  } else {
    p->stats.tx_packets++;
    p->stats.tx_bytes += (uint64_t)c->res;
    if ((uint32_t)c->res < c->off) p->stats.tx_short++;
  }
  if (c->slot != MIOR__NO_SLOT) cache_push(p, c->slot);
}

/* Reap and dispatch completions until none are ready or `budget` packets were delivered.  Returns
 * the number of completions handled; *delivered counts packets given to the receiver. */
static uint32_t process(struct mior_port *p, uint32_t budget, uint32_t *delivered) {
  uint32_t handled = 0;
  *delivered = 0;
  p->in_process = 1;
  while (*delivered < budget) {
    /* Never take more completions than the budget has room for, so poll keeps its promise. */
    uint32_t room = budget - *delivered;
    uint32_t n = p->ops->reap(p->ring, p->cqes, room < p->batch ? room : p->batch);
    if (n == 0) break;
    p->stats.completions += n;
    handled += n;
    for (uint32_t i = 0; i < n; i++) {
      const mior__cqe *c = &p->cqes[i];
      if (c->op == MIOR__OP_TX) tx_complete(p, c);
      else rx_complete(p, c, delivered);
    }
  }
  if (*delivered && p->receiver.flush) p->receiver.flush(p->receiver.ctx, p);
  p->in_process = 0;
  return handled;
}

static int submit(struct mior_port *p, int wait, int64_t timeout_us) {
  p->tx_inflight += p->tx_pending;
  p->tx_pending = 0;
  return p->ops->submit(p->ring, wait, timeout_us);
}

int mior_port_poll(mior_port *p, uint32_t budget, int64_t timeout_us) {
  if (!p) return mior__fail(-EINVAL, "mior_port_poll: NULL port");
  if (p->in_process)
    return mior__fail(-EBUSY, "mior_port_poll called from inside the receiver's callbacks");
  int rc = ensure_bound(p);
  if (rc < 0) return rc;
  if (budget == 0) budget = p->batch;
  uint32_t delivered = 0, handled;

  rx_refill(p);
  /* Completions already in the ring cost no system call: take them first. */
  handled = process(p, budget, &delivered);
  if (handled > 0) {
    /* Sends queued before this call, and replies the receiver queued just now, go out in one
     * enter; leaving them for a poll that finds the ring empty would starve them under load. */
    if (p->tx_pending) {
      rc = submit(p, 0, 0);
      if (rc < 0) return rc;
    }
    goto out;
  }
  /* Nothing outstanding means nothing can arrive: no system call, and no sleep on an idle ring. */
  if (p->rx_posted == 0 && p->tx_inflight == 0 && p->tx_pending == 0) goto out;

  /* Under load a wake-up per packet costs the sender an inter-processor wake each time; asking
   * for half of what the last wake-up brought (for at most coalesce_us) lets one wake-up carry a
   * batch.  One packet per wake-up means the port is quiet and must not be delayed. */
  uint32_t want = 1;
  int64_t wait_us = timeout_us;
  if (p->coalesce_us && p->last_rx >= 4) {
    want = (p->last_rx < p->batch ? p->last_rx : p->batch) / 2;
    if (wait_us < 0 || wait_us > (int64_t)p->coalesce_us) wait_us = p->coalesce_us;
  }
  /* From here every enter both submits what is queued and collects completions (a DEFER_TASKRUN
   * ring posts its completions only then), so one enter is one look: a single one when the caller
   * does not wait, one per spin while busy-polling, and otherwise a single one that submits and
   * waits; submitting first and then waiting made every idle wake-up cost two.  A port under load
   * (want > 1) still looks once before it waits: a backlog is likely then, and a DEFER_TASKRUN ring
   * counts task-work items, not completions, against a wait's minimum, while one multishot receive
   * item posts up to 32 completions, so a first wait for 17 took 478 queued datagrams in one
   * enter, more than the port had receive buffers for (the multishot receive then ends with
   * -ENOBUFS).  A look that does not wait takes a backlog in batches the port keeps up with. */
  if (timeout_us == 0 || p->busy_poll_us || want > 1) {
    uint64_t end = 0; /* one look, unless busy-polling a port that may wait */
    if (timeout_us != 0 && p->busy_poll_us) end = mior__now_ns() + (uint64_t)p->busy_poll_us * 1000u;
    for (;;) {
      rc = submit(p, 0, 0);
      if (rc < 0) return rc;
      handled = process(p, budget, &delivered);
      if (handled > 0 || mior__now_ns() >= end) break;
      mior__cpu_relax();
    }
    if (handled > 0 || timeout_us == 0) goto out;
  }
  rc = submit(p, (int)want, wait_us);
  if (rc < 0) return rc;
  process(p, budget, &delivered);
out:
  p->last_rx = delivered;
  rx_refill(p);
  return (int)delivered;
}

int mior_tx_acquire(mior_port *p, mior_pkt *pkt) {
  if (!p || !pkt) return mior__fail(-EINVAL, "mior_tx_acquire: NULL %s", p ? "pkt" : "port");
  int rc = ensure_bound(p);
  if (MIOR_UNLIKELY(rc < 0)) return rc;
  if (MIOR_UNLIKELY(p->tx_pending + p->tx_inflight >= p->tx_limit) ||
      MIOR_UNLIKELY(p->cache_len == 0 && cache_fill(p, p->batch) == 0)) {
    p->stats.tx_backpressure++;
    return -EAGAIN;
  }
  uint32_t slot = p->cache[--p->cache_len];
  pkt->gen = slot_to_user(p, slot);
  p->user_taken++;
  pkt->data = mior_pool_region_slot(&p->region, slot);
  pkt->len = 0;
  pkt->cap = p->region.buf_size;
  pkt->port = p;
  pkt->slot = slot;
  pkt->flags = 0;
  pkt->reserved_ = 0;
  memset(&pkt->src, 0, sizeof pkt->src);
  return 0;
}

/* Destination of a raw IP packet, read from its own header. */
static int dst_from_ip_header(const uint8_t *d, uint32_t len, mior_addr *out) {
  memset(out, 0, sizeof *out);
  if (len >= 20 && (d[0] >> 4) == 4) {
    out->family = MIOR_AF_INET;
    memcpy(out->addr, d + 16, 4);
    return 0;
  }
  if (len >= 40 && (d[0] >> 4) == 6) {
    out->family = MIOR_AF_INET6;
    memcpy(out->addr, d + 24, 16);
    return 0;
  }
  return -EINVAL;
}

int mior_tx_flush(mior_port *p) {
  if (!p) return mior__fail(-EINVAL, "mior_tx_flush: NULL port");
  int rc = ensure_bound(p);
  if (rc < 0) return rc;
  if (p->tx_pending == 0) return 0;
  rc = submit(p, 0, 0);
  return rc < 0 ? rc : 0;
}

/* Give a packet's slot back to the pool from a thread that does not drive the port. */
static void give_back_foreign(struct mior_port *p, const mior_pkt *pkt) {
  if (!slot_from_user(p, pkt->slot, pkt->gen, MIOR__SLOT_POOL)) return;
  atomic_fetch_add_explicit(&p->user_released, 1, memory_order_relaxed);
  mior_pool_release(p->pool, pkt->slot);
}

int mior_tx_send(mior_port *p, mior_pkt *pkt, uint32_t len, const mior_addr *dst) {
  if (!p || !pkt) return mior__fail(-EINVAL, "mior_tx_send: NULL %s", p ? "pkt" : "port");
  uint32_t slot = pkt->slot;
  if (pkt->port != p || slot >= p->region.buf_count)
    return mior__fail(-EINVAL, "mior_tx_send: packet is not a slot of this port");
  int rc = ensure_bound(p);
  if (MIOR_UNLIKELY(rc < 0)) {
    /* Not sent.  The rule "after mior_tx_send the slot is the port's" holds here too: it goes
     * back to the pool, which any thread may do. */
    give_back_foreign(p, pkt);
    return rc;
  }
  if (MIOR_UNLIKELY(!slot_from_user(p, slot, pkt->gen, MIOR__SLOT_TX))) {
    p->stats.tx_invalid++;
    return mior__fail(-EINVAL, "mior_tx_send: slot %u is not held by the application (sent or "
                      "released already, or a stale copy of a packet)", slot);
  }
  p->user_taken--; /* from here the slot is the port's, whatever happens */
  uint8_t *base = mior_pool_region_slot(&p->region, slot);
  mior_addr hdr_dst;
  if (pkt->data < base || pkt->data > base + p->region.buf_size ||
      len > (uint32_t)(base + p->region.buf_size - pkt->data) || (len == 0 && !p->datagrams)) {
    rc = mior__fail(-EINVAL, "mior_tx_send: length %u does not fit the slot (cap %u)%s", len,
                    pkt->cap, len == 0 ? ": only a udp port sends empty datagrams" : "");
    goto invalid;
  }
  if (!dst && p->addr_from_packet) {
    if (dst_from_ip_header(pkt->data, len, &hdr_dst) < 0) {
      rc = mior__fail(-EINVAL, "mior_tx_send: no destination and no IPv4/IPv6 header to take it from");
      goto invalid;
    }
    dst = &hdr_dst;
  }
  if (p->tx_pending >= p->sq_limit) {
    rc = mior_tx_flush(p);
    if (rc < 0) goto failed;
  }
  rc = p->ops->tx_queue(p->ring, slot, (uint32_t)(pkt->data - base), len, dst);
  if (MIOR_UNLIKELY(rc == -EAGAIN)) {
    /* The submission queue filled up under us (receives share it): submit and try once more. */
    int frc = mior_tx_flush(p);
    rc = frc < 0 ? frc : p->ops->tx_queue(p->ring, slot, (uint32_t)(pkt->data - base), len, dst);
  }
  if (MIOR_UNLIKELY(rc < 0)) {
    /* A destination the socket cannot take is the caller's mistake; anything else is not. */
    if (rc == -EDESTADDRREQ || rc == -EAFNOSUPPORT || rc == -EINVAL) goto invalid;
    goto failed;
  }
  p->tx_pending++;
  /* Queued: it goes out with this submit or, should this one fail, with the next.  An error here
   * would read as "not sent", so it is not returned. */
  if (p->tx_pending >= p->batch) mior_tx_flush(p);
  return 0;

invalid:
  p->stats.tx_invalid++;
  goto give_back;
failed:
  p->stats.tx_errors++;
give_back:
  /* Not sent, and the slot is the port's again: the caller must not touch it. */
  cache_push(p, slot);
  return rc;
}

int mior_pkt_release(const mior_pkt *pkt) {
  if (!pkt || !pkt->port) return mior__fail(-EINVAL, "mior_pkt_release: NULL packet");
  struct mior_port *p = pkt->port;
  if (pkt->slot >= p->region.buf_count)
    return mior__fail(-EINVAL, "mior_pkt_release: slot %u out of range", pkt->slot);
  if (!slot_from_user(p, pkt->slot, pkt->gen, MIOR__SLOT_POOL))
    return mior__fail(-EINVAL, "mior_pkt_release: slot %u is not held by the application "
                      "(released or sent already, or a stale copy of a packet)", pkt->slot);
  atomic_fetch_add_explicit(&p->user_released, 1, memory_order_relaxed);
  return mior_pool_release(p->pool, pkt->slot);
}

uint32_t mior_random_seq(mior_port *p) {
  if (!p) return 0;
  /* splitmix64: fast, full period, and seeded from the OS at open. */
  uint64_t z = (p->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)((z ^ (z >> 31)) >> 16);
}

int mior_port_local_addr(const mior_port *p, mior_addr *out) {
  if (!p || !out) return mior__fail(-EINVAL, "mior_port_local_addr: NULL argument");
  return p->ops->local_addr(p->ring, out);
}

mior_backend mior_port_backend(const mior_port *p) {
  return p ? p->ops->id : MIOR_BACKEND_AUTO;
}

uint32_t mior__port_user_held(const struct mior_port *p) {
  return p->user_taken - atomic_load_explicit(&((struct mior_port *)p)->user_released, memory_order_relaxed);
}

int mior_port_stats_get(const mior_port *p, mior_port_stats *out) {
  if (!p || !out) return mior__fail(-EINVAL, "mior_port_stats_get: NULL argument");
  *out = p->stats;
  mior_pool_stats ps;
  if (mior_pool_stats_get(p->pool, &ps) == 0) {
    out->pool_in_use = ps.in_use;
    out->pool_high_water = ps.high_water;
  }
  out->user_held = mior__port_user_held(p);
  out->tx_in_flight = p->tx_pending + p->tx_inflight;
  if (p->ops->kernel_drops && p->ring) out->rx_drop_kernel = p->ops->kernel_drops(p->ring);
  struct mior_port *mp = (struct mior_port *)p;
  out->thread_error = atomic_load_explicit(&mp->thread_rc, memory_order_acquire);
  out->thread_running = (uint32_t)atomic_load_explicit(&mp->thread_running, memory_order_acquire);
  return 0;
}

int mior__port_open(struct mior_port **out, struct mior_transport *t, uint32_t index,
                    const mior__backend_ops *ops, const mior__ring_cfg *cfg_in) {
  const mior_options *o = cfg_in->opts;
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
  p->cache = malloc((size_t)p->region.buf_count * sizeof *p->cache);
  p->cqes = malloc((size_t)o->batch * sizeof *p->cqes);
  if (!p->slot_state || !p->cache || !p->cqes) {
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
  p->stats.backend = ops->id;
  atomic_init(&p->owner, MIOR__OWNER_NONE);
  atomic_init(&p->thread_rc, 0);
  atomic_init(&p->thread_running, 0);
  mior__random_bytes(&p->rng, sizeof p->rng);

  mior__ring_cfg cfg = *cfg_in;
  cfg.region = p->region;
  cfg.stats = &p->stats;
  uint32_t features = 0;
  rc = ops->open(&p->ring, &cfg, &features);
  if (rc < 0) goto out_pool;
  p->stats.features = features;
  *out = p;
  return 0;

out_pool:
  free(p->cqes);
  free(p->cache);
  free((void *)p->slot_state);
  mior_pool_destroy(p->pool, NULL);
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
  submit(p, 0, 0);
  p->ops->cancel(p->ring);
  uint64_t end = mior__now_ns() + (uint64_t)ms * 1000000u;
  uint32_t left;
  for (;;) {
    uint32_t handled = process(p, UINT32_MAX, &delivered);
    left = p->ops->outstanding(p->ring);
    if (handled == 0 && left == 0) break;
    if (mior__now_ns() > end) break;
    /* A submit that fails (the ring refuses enters: fault injection's dead socket) must not leave
     * the cancelled operations unreaped: the backend's cancel enters by itself, and asking again
     * also collects what the first request cancelled. */
    if (handled == 0 && p->ops->submit(p->ring, 1, 10000) < 0) p->ops->cancel(p->ring);
  }
  p->closing = 0;
  return left;
}

uint32_t mior__port_shutdown(struct mior_port *p) {
  if (!p->ring) return 0;
  uint64_t self = mior__thread_self();
  uint64_t own = atomic_load_explicit(&p->owner, memory_order_acquire);
  if (own == MIOR__OWNER_NONE) return 0; /* never driven: nothing was ever submitted */
  if (own != self) {
    /* The driver has ended (the caller checked).  A ring that can move is taken over and shut
     * down here.  One that cannot (io_uring SINGLE_ISSUER) had all its work cancelled by the
     * kernel when that thread exited, so nothing is outstanding; close() takes it from there. */
    if (bind_to_self(p, self, own) < 0) {
      mior__clear_error();
      return 0;
    }
  }
  uint32_t left = quiesce(p, 2000);
  if (left == 0 && p->ops->detach) p->ops->detach(p->ring);
  return left;
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
  if (p->ring) p->ops->close(p->ring);
  p->ring = NULL;
  mior__thread_ref_drop(&p->owner_ref);
  /* With the ring gone every slot the kernel held is ours again.  The caller made sure the
   * application holds none. */
  uint32_t held = 0;
  for (uint32_t i = 0; i < p->region.buf_count; i++) {
    uint32_t st = slot_get(p, i);
    if (st == MIOR__SLOT_USER) held++;
    else if (st != MIOR__SLOT_POOL) mior_pool_release(p->pool, i);
  }
  uint32_t left = 0;
  int rc = mior_pool_close(p->pool, &left);
  if (rc == -EBUSY) mior_pool_destroy(p->pool, NULL);
  free(p->cqes);
  free(p->cache);
  free((void *)p->slot_state);
  free(p);
  if (held) return mior__fail(-EBUSY, "%u packet(s) still held by the application at close", held);
  if (rc == -EBUSY)
    return mior__fail(-EBUSY, "%u slot(s) unaccounted for at close (a lost buffer: a bug)", left);
  return 0;
}
