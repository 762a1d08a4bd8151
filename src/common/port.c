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

static inline void cache_push(struct mior_port *p, uint32_t slot) {
  mior__slot_set(p, slot, MIOR__SLOT_CACHE);
  p->cache[p->cache_len++] = slot;
}

/* Take up to `want` slots from the pool into the cache; returns how many came. */
static uint32_t cache_fill(struct mior_port *p, uint32_t want) {
  uint32_t room = p->region.buf_count - p->cache_len;
  if (want > room) want = room;
  if (want == 0) return 0;
  int n = mior_pool_acquire_bulk(p->pool, p->cache + p->cache_len, want);
  if (n <= 0) return 0;
  for (int i = 0; i < n; i++) mior__slot_set(p, p->cache[p->cache_len + (uint32_t)i], MIOR__SLOT_CACHE);
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
    uint32_t room = p->ops->rx_room(p->io);
    if (need > room) need = room;
    if (need == 0) return;
  }
  if (p->cache_len < need) cache_fill(p, need - p->cache_len);
  uint32_t n = need < p->cache_len ? need : p->cache_len;
  if (n == 0) return;
  uint32_t *slots = p->cache + (p->cache_len - n);
  for (uint32_t i = 0; i < n; i++) mior__slot_set(p, slots[i], MIOR__SLOT_RX);
  uint32_t taken = p->ops->rx_post(p->io, slots, n);
  /* Slots the backend did not take go back to the cache state; they are still in place at the
   * end of the cache array, so shrinking the cache by `taken` would lose them: move them down. */
  if (taken < n) {
    for (uint32_t i = taken; i < n; i++) mior__slot_set(p, slots[i], MIOR__SLOT_CACHE);
    memmove(slots, slots + taken, (size_t)(n - taken) * sizeof *slots);
  }
  p->cache_len -= taken;
  p->rx_posted += taken;
}

/* Take the port for the calling thread if its owner is still `own`. */
int mior__port_bind(struct mior_port *p, uint64_t self, uint64_t own) {
  if (!atomic_compare_exchange_strong_explicit(&p->owner, &own, MIOR__OWNER_BINDING,
                                               memory_order_acq_rel, memory_order_acquire))
    return mior__fail(-EBUSY, "port %u was bound by another thread just now", p->index);
  int rc = p->ops->bind_thread(p->io);
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
  return mior__port_bind(p, self, own);
}

static inline int ensure_bound(struct mior_port *p) {
  uint64_t self = mior__thread_self();
  uint64_t own = atomic_load_explicit(&p->owner, memory_order_acquire);
  if (MIOR_LIKELY(own == self)) return 0;
  return bind_slow(p, self, own);
}

int mior__port_claim(struct mior_port *p) {
  return mior__port_bind(p, mior__thread_self(), MIOR__OWNER_RESERVED);
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

/* The metadata of the kernel receive a packet came from (flags say which fields hold it). */
static inline void pkt_meta_from(mior_pkt *pk, const mior__cqe *c) {
  if (MIOR_UNLIKELY(c->flags & MIOR__PKT_META_MASK)) {
    pk->local = c->meta.local;
    pk->rx_time_ns = c->meta.time_ns;
    pk->ecn = c->meta.ecn;
  }
}

/* Clear the bits of a run of one coalesced slot's packets: one atomic for the run.  Returns how
 * many packets were given back; *last is set if they were the slot's last (the caller then owns
 * the slot).  A packet given twice in one bulk, in two runs, fails the run's step: then its
 * packets go one by one and *dup counts the refused ones. */
static uint32_t bulk_unshare(struct mior_port *p, uint32_t slot, uint64_t bits, int *last, uint32_t *dup) {
  int r = mior__slot_unshare(p, slot, bits);
  uint32_t done = 0;
  if (r >= 0) {
    *last = r;
    for (uint64_t b = bits; b; b &= b - 1u) done++;
    return done;
  }
  *last = 0;
  for (uint64_t b = bits; b; b &= b - 1u) {
    r = mior__slot_unshare(p, slot, b & (~b + 1u));
    if (r < 0) {
      (*dup)++;
      continue;
    }
    done++;
    if (r) *last = 1;
  }
  return done;
}

/* The packets `bits` of coalesced slot `slot` that consume is done with: one atomic for all of
 * them rather than one each.  Their bits stay set until here, so no release of a kept packet (any
 * thread) can be the slot's last meanwhile; the last one done takes the slot back to the cache. */
static void split_done(struct mior_port *p, uint32_t slot, uint64_t bits) {
  int last;
  uint32_t dup = 0;
  p->user_taken -= bulk_unshare(p, slot, bits, &last, &dup);
  if (last && mior__slot_from_user(p, slot, p->split_gen, MIOR__SLOT_CACHE)) p->cache[p->cache_len++] = slot;
}

/* What every packet split from the coalesced buffer in c has in common. */
static inline void split_pkt_init(mior_pkt *pk, struct mior_port *p, const mior__cqe *c) {
  pk->port = p;
  pk->slot = c->slot;
  pk->flags = c->flags | MIOR_PKT_COALESCED;
  pk->src = c->src;
  pk->gen = p->split_gen;
  pkt_meta_from(pk, c); /* one kernel receive: every packet split from it has its metadata */
}

/* Deliver the packets of the coalesced buffer in c from packet p->split_next - 1 on: to consume,
 * or into mior_rx_burst's array while it has room.  Returns 1 when the buffer is done, 0 when the
 * array filled first: the rest stay with the port (their bits stay set in slot_share, so the slot
 * cannot go back) and the next mior_rx_burst or poll delivers them, before anything newer. */
static int split_deliver(struct mior_port *p, const mior__cqe *c, uint32_t *delivered, uint32_t budget) {
  uint32_t total = (uint32_t)c->res, seg = c->seg;
  uint32_t n = (total + seg - 1u) / seg;
  uint8_t *base = mior_pool_region_slot(&p->region, c->slot) + c->off;
  /* consume gets one mior_pkt (const) for the whole buffer: only the per-packet fields change. */
  mior_pkt pkt_local;
  split_pkt_init(&pkt_local, p, c);
  uint64_t done = 0; /* packets consume is done with, given back together after the loop */
  for (uint32_t i = p->split_next - 1u; i < n; i++) {
    mior_pkt *pk = &pkt_local;
    if (p->burst) {
      if (*delivered >= budget) {
        p->split_next = i + 1u;
        return 0;
      }
      pk = &p->burst[p->burst_n++];
      split_pkt_init(pk, p, c);
    } else if (!p->receiver.consume) {
      /* Nobody to give the rest to (a pull port polled, or closing): they are done here. */
      uint64_t rest = ~(((uint64_t)1 << i) - 1u) & (n >= 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1u);
      if (mior__slot_unshare(p, c->slot, rest) == 1 &&
          mior__slot_from_user(p, c->slot, p->split_gen, MIOR__SLOT_CACHE))
        p->cache[p->cache_len++] = c->slot;
      *delivered += n - i;
      break;
    }
    uint32_t off = i * seg;
    pk->data = base + off;
    pk->len = total - off < seg ? total - off : seg;
    pk->cap = pk->len; /* the next datagram follows: this packet may not grow */
    pk->seg = i + 1u;
    p->user_taken++;
    (*delivered)++;
    if (p->burst) continue; /* the caller's now, until it releases or sends it */
    int verdict = p->receiver.consume(p->receiver.ctx, p, pk);
    if (verdict == MIOR_KEEP) {
      if (mior__slot_share_held(p, c->slot, pk->gen, pk->seg)) p->stats.rx_kept++;
      continue;
    }
    /* Still held (not sent, not released): done with it, given back after the loop. */
    if (mior__slot_share_held(p, c->slot, pk->gen, pk->seg)) done |= (uint64_t)1 << i;
  }
  p->split_next = 0;
  if (done) split_done(p, c->slot, done);
  return 1;
}

/* A coalesced buffer (UDP GRO): datagrams of c->seg bytes back to back in one slot, the last
 * possibly shorter.  Each becomes its own packet pointing into the slot, without a copy; they
 * share the slot (mior__slot_share), which comes back when the last of them is done, kept ones
 * included.  To consume the whole buffer is delivered in this poll, even past its budget: the
 * kernel consumed it as one.  mior_rx_burst takes what fits its array (split_deliver). */
static int rx_split(struct mior_port *p, const mior__cqe *c, uint32_t *delivered, uint32_t budget) {
  uint32_t total = (uint32_t)c->res, seg = c->seg;
  uint32_t n = (total + seg - 1u) / seg;
  p->stats.rx_coalesced++;
  if (MIOR_UNLIKELY(n > MIOR__SLOT_MAX_SHARE)) {
    /* More datagrams than a slot can share out: Linux's GRO coalesces at most 64, but Windows'
     * URO is bounded by bytes only.  The first 64 are delivered and each of the rest is counted
     * in rx_errors; the record is the port's own, shortened so that split_deliver (which reads
     * it again when mior_rx_burst resumes the buffer) sees 64. */
    p->stats.rx_errors += n - MIOR__SLOT_MAX_SHARE;
    n = MIOR__SLOT_MAX_SHARE;
    total = n * seg;
    ((mior__cqe *)c)->res = (int32_t)total;
  }
  p->stats.rx_packets += n;
  p->stats.rx_bytes += total;
  if (!p->receiver.consume && !p->burst) {
    *delivered += n;
    cache_push(p, c->slot);
    return 1;
  }
  mior__slot_share(p, c->slot, n);
  p->split_gen = mior__slot_to_user(p, c->slot);
  p->split_next = 1;
  return split_deliver(p, c, delivered, budget);
}

/* Returns 1 when the completion is done, 0 when mior_rx_burst's array filled in the middle of a
 * coalesced buffer (the completion stays first in line for the next call). */
static inline int rx_complete(struct mior_port *p, const mior__cqe *c, uint32_t *delivered, uint32_t budget) {
  if (MIOR_UNLIKELY(p->split_next)) return split_deliver(p, c, delivered, budget);
  if (c->slot == MIOR__NO_SLOT) {
    count_error(p, c->res, 1);
    return 1;
  }
  p->rx_posted--;
  /* A packet that was already received when the port stops or closes is still delivered (quiesce
   * reaps it): dropping it there would lose it without a count. */
  if (MIOR_UNLIKELY(c->res < 0 || (c->flags & MIOR__CQE_TRUNC) || (c->res == 0 && !p->datagrams))) {
    if (c->res < 0) count_error(p, c->res, 1);
    else if (c->flags & MIOR__CQE_TRUNC) p->stats.rx_drop_truncated++;
    else p->stats.rx_errors++; /* an empty read on a kind without datagrams */
    cache_push(p, c->slot);
    return 1;
  }
  p->rx_done++;
  if (c->seg && (uint32_t)c->res > c->seg) return rx_split(p, c, delivered, budget);
  p->stats.rx_packets++;
  p->stats.rx_bytes += (uint64_t)c->res;
  (*delivered)++;
  if (!p->receiver.consume && !p->burst) {
    cache_push(p, c->slot);
    return 1;
  }
  /* One delivery path: mior_rx_burst's packets are built here as consume's are. */
  mior_pkt pkt_local, *pk = p->burst ? &p->burst[p->burst_n] : &pkt_local;
  pk->data = mior_pool_region_slot(&p->region, c->slot) + c->off;
  pk->len = (uint32_t)c->res;
  pk->cap = p->region.buf_size - c->off;
  pk->port = p;
  pk->slot = c->slot;
  pk->flags = c->flags;
  pk->src = c->src;
  pk->seg = 0;
  pkt_meta_from(pk, c);
  /* During consume the slot is the receiver's, like a kept packet: it may send it (echo in
   * place) or release it, and then the slot is no longer its own whatever consume returns. */
  pk->gen = mior__slot_to_user(p, c->slot);
  p->user_taken++;
  if (p->burst) {
    p->burst_n++; /* the caller's now, until it releases or sends it */
    return 1;
  }
  int verdict = p->receiver.consume(p->receiver.ctx, p, pk);
  if (verdict == MIOR_KEEP) {
    if (mior__slot_word(p, c->slot) == ((pk->gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_USER))
      p->stats.rx_kept++;
    return 1;
  }
  /* Still this packet's slot (not sent, not released, so not handed out again): back to the
   * cache.  The compare-and-swap loses only to a release from another thread. */
  if (mior__slot_from_user(p, c->slot, pk->gen, MIOR__SLOT_CACHE)) {
    p->user_taken--;
    p->cache[p->cache_len++] = c->slot;
  }
  return 1;
}

static inline void tx_complete_slot(struct mior_port *p, const mior__cqe *c) {
  if (c->slot != MIOR__NO_SLOT) cache_push(p, c->slot);
}

static inline void tx_complete(struct mior_port *p, const mior__cqe *c) {
  p->tx_inflight--;
  if (MIOR_UNLIKELY(c->res < 0)) {
    /* A failed slot of datagrams (mior_tx_send_gso; off holds its length) lost every one. */
    uint32_t lost = (c->flags & MIOR__CQE_GSO) && c->seg ? (c->off + c->seg - 1) / c->seg : 1;
    for (uint32_t i = 0; i < lost; i++) count_error(p, c->res, 0);
    tx_complete_slot(p, c);
    return;
  }
  p->tx_done++; /* every send that left, TX-ring copies included (port_answering) */
  if (c->flags & MIOR__CQE_COPIED) {
    /* counted by the backend when the kernel takes the frame */
  } else {
    /* A slot of datagrams back to back (mior_tx_send_gso) counts each datagram. */
    p->stats.tx_packets += MIOR_UNLIKELY(c->flags & MIOR__CQE_GSO) && c->seg ? ((uint32_t)c->res + c->seg - 1) / c->seg : 1;
    p->stats.tx_bytes += (uint64_t)c->res;
    if ((uint32_t)c->res < c->off) p->stats.tx_short++;
  }
  tx_complete_slot(p, c);
}

/* The direct path's receive (see mior_port_poll): one non-blocking receive on the socket into a
 * slot from the cache, delivered through rx_complete as if the backend had posted the slot and
 * completed it, so every rule of the ring path holds (truncation, GRO splitting, stats, slot
 * states).  Returns 1 if it handled something (a datagram or an error), else 0. */
static uint32_t rx_direct(struct mior_port *p, uint32_t *delivered) {
  if (p->cache_len == 0 && cache_fill(p, p->batch) == 0) return 0;
  uint32_t slot = p->cache[p->cache_len - 1];
  mior__cqe *c = &p->cqes[0];
  int got = p->ops->rx_direct(p->io, slot, c);
  if (got == 0) return 0;
  if (got < 0) {
    count_error(p, got, 1); /* as a failed receive completion without a slot */
    return 1;
  }
  p->cache_len--;
  mior__slot_set(p, slot, MIOR__SLOT_RX);
  p->rx_posted++; /* posted and completed at once: rx_complete takes it back */
  p->stats.completions++;
  p->in_process = 1;
  (void)rx_complete(p, c, delivered, UINT32_MAX); /* never mior_rx_burst's: see mior_port_poll */
  if (*delivered && p->receiver.flush) p->receiver.flush(p->receiver.ctx, p);
  p->in_process = 0;
  return 1;
}

/* The rest of a coalesced buffer mior_rx_burst had not handed out yet (split_next) is done with:
 * the port is closing, and nobody is left to take it.  Its slot goes back to the cache once the
 * packets already handed out are released too (now, if they were). */
void mior__port_split_drop(struct mior_port *p) {
  if (!p->split_next || p->cq_pos >= p->cq_len) return;
  const mior__cqe *c = &p->cqes[p->cq_pos];
  uint32_t n = ((uint32_t)c->res + c->seg - 1u) / c->seg, i = p->split_next - 1u;
  uint64_t rest = ~(((uint64_t)1 << i) - 1u) & (n >= 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1u);
  if (mior__slot_unshare(p, c->slot, rest) == 1 &&
      mior__slot_from_user(p, c->slot, p->split_gen, MIOR__SLOT_CACHE))
    p->cache[p->cache_len++] = c->slot;
  p->split_next = 0;
  p->cq_pos++;
}

/* Reap and dispatch completions until none are ready or `budget` packets were delivered.  Returns
 * the number of completions handled (those left from the last call included); *delivered counts
 * packets given to the receiver.  Completions reaped but not yet dispatched (mior_rx_burst's
 * array filled) wait in cqes[cq_pos..cq_len) and go first next time, so none is lost or
 * reordered. */
uint32_t mior__port_process(struct mior_port *p, uint32_t budget, uint32_t *delivered) {
  uint32_t handled = p->cq_len - p->cq_pos;
  *delivered = 0;
  p->in_process = 1;
  for (;;) {
    if (p->cq_pos == p->cq_len) {
      if (*delivered >= budget) break;
      /* Never take more completions than the budget has room for, so poll keeps its promise. */
      uint32_t room = budget - *delivered;
      uint32_t n = p->ops->reap(p->io, p->cqes, room < p->batch ? room : p->batch);
      if (n == 0) break;
      p->stats.completions += n;
      handled += n;
      p->cq_pos = 0;
      p->cq_len = n;
    }
    const mior__cqe *c = &p->cqes[p->cq_pos];
    if (c->op == MIOR__OP_TX) tx_complete(p, c);
    else if (p->burst && *delivered >= budget) break; /* the array is full */
    /* A pull port (no consume) polled or run_ready'd: its packets wait for mior_rx_burst. */
    else if (MIOR_UNLIKELY(p->pulled) && !p->burst && !p->receiver.consume && !p->closing) break;
    else if (!rx_complete(p, c, delivered, budget)) break;
    p->cq_pos++;
  }
  if (*delivered && p->receiver.flush && !p->burst) p->receiver.flush(p->receiver.ctx, p);
  p->in_process = 0;
  return handled;
}

int mior__port_submit(struct mior_port *p, int wait, int64_t timeout_us) {
  p->tx_inflight += p->tx_pending;
  p->tx_pending = 0;
  return p->ops->submit(p->io, wait, timeout_us);
}

/* A port that completed a send within the last millisecond is answering what it receives (a
 * server), so coalescing would hold its requests, and with them its replies, for company: under
 * sockperf's under-load it doubled the median reply time (docs/TUNING.md).  A pure receiver
 * never sends, and keeps the batching.  Read only when coalescing is on and the port is loaded. */
static int port_answering(struct mior_port *p) {
  uint64_t now = mior__now_ns();
  if (p->tx_done != p->tx_seen) {
    p->tx_seen = p->tx_done;
    p->tx_seen_ns = now;
  }
  return p->tx_seen_ns != 0 && now - p->tx_seen_ns < 1000000u;
}

/* How often a spin on the direct path also looks at the ring (a power of two). */
#define DIRECT_RING_EVERY 16u

void mior__port_take_returned(struct mior_port *p) {
  uint64_t old = atomic_load_explicit(&p->ret_head, memory_order_relaxed);
  if (MIOR_LIKELY((uint32_t)old == MIOR__NO_SLOT)) return;
  /* Take the whole list, keeping the count.  Acquire: the links the pushers wrote are visible. */
  while (!atomic_compare_exchange_weak_explicit(&p->ret_head, &old, (old & ~(uint64_t)UINT32_MAX) | MIOR__NO_SLOT,
                                                memory_order_acquire, memory_order_relaxed)) {
  }
  for (uint32_t s = (uint32_t)old; s != MIOR__NO_SLOT;) {
    uint32_t next = atomic_load_explicit(&p->ret_next[s], memory_order_relaxed);
    cache_push(p, s);
    s = next;
  }
}

static int poll_bound(struct mior_port *p, uint32_t budget, int64_t timeout_us);

int mior_port_poll(mior_port *p, uint32_t budget, int64_t timeout_us) {
  if (!p) return mior__fail(-EINVAL, "mior_port_poll: NULL port");
  if (p->in_process)
    return mior__fail(-EBUSY, "mior_port_poll called from inside the receiver's callbacks");
  int rc = ensure_bound(p);
  if (rc < 0) return rc;
  if (budget == 0) budget = p->batch;
  return poll_bound(p, budget, timeout_us);
}

int mior_port_run_ready(mior_port *p, uint32_t budget) {
  return mior_port_poll(p, budget, 0);
}

int mior_rx_burst(mior_port *p, mior_pkt *pkts, uint32_t max) {
  if (!p || !pkts) return mior__fail(-EINVAL, "mior_rx_burst: NULL %s", p ? "pkts" : "port");
  if (p->in_process)
    return mior__fail(-EBUSY, "mior_rx_burst called from inside the receiver's callbacks");
  int rc = ensure_bound(p);
  if (rc < 0) return rc;
  if (max == 0) return 0;
  p->burst = pkts;
  p->burst_n = 0;
  p->pulled = 1;
  rc = poll_bound(p, max, 0);
  p->burst = NULL;
  return rc;
}

int mior_port_event_handle(mior_port *p, mior_handle *out) {
  if (!p || !out) return mior__fail(-EINVAL, "mior_port_event_handle: NULL argument");
  if (!p->ops->event_open)
    return mior__fail(-EOPNOTSUPP, "the %s backend has no event handle: drive the port with "
                      "mior_port_poll (or mior_transport_start)", p->ops->name);
  int rc = ensure_bound(p);
  if (rc < 0) return rc;
  rc = p->ops->event_open(p->io, out);
  if (rc < 0) return rc;
  if (!p->evt_on) {
    p->evt_on = 1;
    /* Work may be waiting already (a datagram that came before the handle): say so. */
    p->ops->event_done(p->io, 1);
  }
  return 0;
}

static int poll_bound(struct mior_port *p, uint32_t budget, int64_t timeout_us) {
  uint32_t delivered = 0, handled;
  int rc;

  if (p->evt_on) p->ops->event_clear(p->io);
  mior__port_take_returned(p);
  p->rx_done = 0;
  rx_refill(p);
  /* Completions already in the ring cost no system call: take them first. */
  handled = mior__port_process(p, budget, &delivered);
  if (handled > 0) {
    /* Sends queued before this call, and replies the receiver queued just now, go out in one
     * enter; leaving them for a poll that finds the ring empty would starve them under load. */
    if (p->tx_pending) {
      rc = mior__port_submit(p, 0, 0);
      /* mior_rx_burst's packets are in the caller's array already: returning the error would
       * lose them (held, never released).  They are reported; the submit's error comes back on
       * the next call, which submits again.  Consume has had its packets: the error is returned. */
      if (rc < 0 && !(p->burst && delivered)) return rc;
    }
    goto out;
  }
  /* Nothing outstanding means nothing can arrive: no system call, and no sleep on an idle ring. */
  if (p->rx_posted == 0 && p->tx_inflight == 0 && p->tx_pending == 0) goto out;

  /* Under load a wake-up per packet costs the sender an inter-processor wake each time; asking
   * for half of what the last wake-up brought (for at most coalesce_us) lets one wake-up carry a
   * batch.  One packet per wake-up means the port is quiet and must not be delayed.  Counted in
   * completions, which is what a wait counts: a coalesced buffer (UDP GRO) is one, however many
   * packets it carried, and asking for several after one such buffer would only wait out the
   * timeout. */
  uint32_t want = 1;
  int64_t wait_us = timeout_us;
  if (p->coalesce_us && p->last_rx >= 4 && !port_answering(p)) {
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
  /* The direct path: a busy-polling port whose last poll brought at most one receive spins on a
   * non-blocking receive on the socket itself, and looks at the ring only every DIRECT_RING_EVERY
   * spins (for the completions of the ring's own receive) or when sends are queued or in flight.
   * A ring costs more per operation than the system call it stands for, and with one packet per
   * operation nothing is batched to pay for it.  Order holds: the ring's completions are all
   * taken before each direct receive, and both take datagrams from the head of one socket queue. */
  /* Not for mior_rx_burst (its array may fill in the middle of a coalesced buffer, which then
   * waits in cqes[], where a direct receive would write), nor while completions wait there. */
  int direct = p->direct && !p->no_rx && p->last_rx <= 1 && !p->burst && p->cq_pos == p->cq_len &&
               !p->split_next && !(p->pulled && !p->receiver.consume);
  if (timeout_us == 0 || p->busy_poll_us || want > 1) {
    uint64_t end = 0; /* one look, unless busy-polling a port that may wait */
    if (timeout_us != 0 && p->busy_poll_us) end = mior__now_ns() + (uint64_t)p->busy_poll_us * 1000u;
    for (uint32_t spin = 0;; spin++) {
      /* Queued sends go first (the ring submits them); sends in flight on the ring, and a look
       * that is the only one (timeout 0), need the ring looked at too. */
      int ring = !direct || p->tx_pending || p->tx_inflight || end == 0 ||
                 spin % DIRECT_RING_EVERY == DIRECT_RING_EVERY - 1;
      if (direct && !p->tx_pending && (handled = rx_direct(p, &delivered)) > 0) break;
      if (ring) {
        rc = mior__port_submit(p, 0, 0);
        if (rc < 0) return rc;
        handled = mior__port_process(p, budget, &delivered);
        if (handled > 0) break;
      }
      /* A direct spin's system call is its pause; it reads the clock once in 8 spins. */
      if (direct && end != 0 && spin % 8 != 7) continue;
      if (mior__now_ns() >= end) break;
      if (!direct) mior__cpu_relax();
    }
    if (handled > 0 || timeout_us == 0) goto out;
  }
  rc = mior__port_submit(p, (int)want, wait_us);
  if (rc < 0) return rc;
  mior__port_process(p, budget, &delivered);
out:
  p->direct_tx = p->direct;
  p->last_rx = p->rx_done;
  p->rx_done = 0;
  rx_refill(p);
  /* Work is left when the budget ran out, or completions wait undispatched (the rest of a
   * coalesced buffer that did not fit mior_rx_burst's array): the handle stays readable. */
  if (p->evt_on) p->ops->event_done(p->io, delivered >= budget || p->cq_pos < p->cq_len);
  return (int)delivered;
}

int mior_tx_acquire(mior_port *p, mior_pkt *pkt) {
  if (!p || !pkt) return mior__fail(-EINVAL, "mior_tx_acquire: NULL %s", p ? "pkt" : "port");
  int rc = ensure_bound(p);
  if (MIOR_UNLIKELY(rc < 0)) return rc;
  /* Slots given back in bulk wait on the return list until a poll; a transmitter that does not
   * poll takes them here before it asks the pool. */
  if (MIOR_UNLIKELY(p->cache_len == 0)) mior__port_take_returned(p);
  if (MIOR_UNLIKELY(p->tx_pending + p->tx_inflight >= p->tx_limit) ||
      MIOR_UNLIKELY(p->cache_len == 0 && cache_fill(p, p->batch) == 0)) {
    p->stats.tx_backpressure++;
    return -EAGAIN;
  }
  uint32_t slot = p->cache[--p->cache_len];
  pkt->gen = mior__slot_to_user(p, slot);
  p->user_taken++;
  pkt->data = mior_pool_region_slot(&p->region, slot);
  pkt->len = 0;
  pkt->cap = p->region.buf_size;
  pkt->port = p;
  pkt->slot = slot;
  pkt->flags = 0;
  pkt->seg = 0;
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

/* Submit queued sends, on the thread already known to drive the port. */
static int flush_bound(struct mior_port *p) {
  if (p->tx_pending == 0) return 0;
  int rc = mior__port_submit(p, 0, 0);
  /* Outside a work call (which ends with event_done itself), completions a submit made in user
   * space (the sockets backend's) must make the handle readable, or their slots wait unseen. */
  if (p->evt_on && !p->in_process) p->ops->event_done(p->io, 0);
  return rc < 0 ? rc : 0;
}

int mior_tx_flush(mior_port *p) {
  if (!p) return mior__fail(-EINVAL, "mior_tx_flush: NULL port");
  int rc = ensure_bound(p);
  return rc < 0 ? rc : flush_bound(p);
}

/* Take a slot back from the application into the pool, from any thread: 1 if generation gen
 * still held it (release, or a send refused on the wrong thread), else 0. */
static int user_to_pool(struct mior_port *p, uint32_t slot, uint32_t gen) {
  if (!mior__slot_from_user(p, slot, gen, MIOR__SLOT_POOL)) return 0;
  /* The pool first, then the count (release order): a close that sees the count reach zero
   * (acquire, mior__port_user_held) may free the pool at once, so this thread must be done
   * with it by then. */
  mior_pool_release(p->pool, slot);
  atomic_fetch_add_explicit(&p->user_released, 1, memory_order_release);
  return 1;
}

/* Per-send metadata the caller set: checked once here for every backend. */
static int tx_meta_check(struct mior_port *p, const mior_pkt *pkt, uint32_t mflags) {
  if (!p->datagrams)
    return mior__fail(-EINVAL, "mior_tx_send: a source address or ECN per send needs a udp port");
  if ((mflags & MIOR_PKT_ECN) && pkt->ecn > 3)
    return mior__fail(-EINVAL, "mior_tx_send: ECN codepoint %u (0..3)", pkt->ecn);
  if ((mflags & MIOR_PKT_LOCAL) && pkt->local.family != MIOR_AF_UNSPEC &&
      (pkt->local.family == MIOR_AF_INET6) != (p->dst_family == MIOR_AF_INET6))
    return mior__fail(-EINVAL, "mior_tx_send: source address of the other family than the socket");
  return 0;
}

/* seg: a slot of datagrams of seg bytes back to back, checked by mior_tx_send_gso (no metadata). */
static inline int tx_queue(struct mior_port *p, uint32_t slot, uint32_t off, uint32_t len,
                           const mior_addr *dst, uint32_t mflags, const mior_pkt *pkt, uint32_t seg) {
  if (MIOR_UNLIKELY(seg)) return p->ops->tx_queue_gso(p->io, slot, off, len, seg, dst);
  if (MIOR_LIKELY(!mflags)) return p->ops->tx_queue(p->io, slot, off, len, dst);
  mior__pkt_meta m;
  m.local = pkt->local;
  m.ecn = pkt->ecn;
  m.time_ns = 0;
  return p->ops->tx_queue_meta(p->io, slot, off, len, dst, mflags, &m);
}

/* A packet of a coalesced slot is done (released, or sent as a copy): 1 if it was still held.
 * The last one done moves the slot: to the cache on the driving thread, else to the pool. */
static int shared_done(struct mior_port *p, const mior_pkt *pkt, int driving) {
  if (!mior__slot_share_held(p, pkt->slot, pkt->gen, pkt->seg)) return 0;
  int last = mior__slot_unshare(p, pkt->slot, (uint64_t)1 << (pkt->seg - 1u));
  if (last < 0) return 0;
  if (last) {
    if (!driving) {
      if (mior__slot_from_user(p, pkt->slot, pkt->gen, MIOR__SLOT_POOL)) mior_pool_release(p->pool, pkt->slot);
    } else if (mior__slot_from_user(p, pkt->slot, pkt->gen, MIOR__SLOT_CACHE)) {
      p->cache[p->cache_len++] = pkt->slot;
    }
  }
  return 1;
}

/* Send a packet of a coalesced slot: its neighbours still hold the rest of the slot, which a send
 * from the slot would tie up until the send completes, so the bytes go into a slot of their own
 * (the one copy on this path).  The packet is done either way. */
static int tx_send_shared(struct mior_port *p, mior_pkt *pkt, uint32_t len, const mior_addr *dst) {
  int rc = ensure_bound(p);
  if (MIOR_UNLIKELY(rc < 0)) {
    if (shared_done(p, pkt, 0)) atomic_fetch_add_explicit(&p->user_released, 1, memory_order_release);
    return rc;
  }
  if (!mior__slot_share_held(p, pkt->slot, pkt->gen, pkt->seg)) {
    p->stats.tx_invalid++;
    return mior__fail(-EINVAL, "mior_tx_send: packet %u of slot %u is not held by the application (sent or "
                      "released already, or a stale copy)", pkt->seg, pkt->slot);
  }
  uint8_t *base = mior_pool_region_slot(&p->region, pkt->slot);
  if (pkt->data < base || len > p->region.buf_size || len > (uint32_t)(base + p->region.buf_size - pkt->data)) {
    shared_done(p, pkt, 1);
    p->user_taken--;
    p->stats.tx_invalid++;
    return mior__fail(-EINVAL, "mior_tx_send: length %u does not fit the slot", len);
  }
  if (p->cache_len == 0) mior__port_take_returned(p); /* slots bulk-released meanwhile */
  if (p->cache_len == 0 && cache_fill(p, p->batch) == 0) {
    shared_done(p, pkt, 1);
    p->user_taken--;
    p->stats.tx_errors++;
    return mior__fail(-ENOBUFS, "mior_tx_send: no free slot to copy a coalesced packet into");
  }
  mior_pkt copy = *pkt;
  copy.slot = p->cache[--p->cache_len];
  copy.gen = mior__slot_to_user(p, copy.slot);
  p->user_taken++;
  copy.data = mior_pool_region_slot(&p->region, copy.slot);
  copy.cap = p->region.buf_size;
  copy.flags = pkt->flags & ~MIOR_PKT_COALESCED; /* per-send metadata the caller set goes along */
  copy.seg = 0;
  memcpy(copy.data, pkt->data, len);
  shared_done(p, pkt, 1);
  p->user_taken--;
  return mior_tx_send(p, &copy, len, dst);
}

/* mior_tx_send, and mior_tx_send_gso's way through the backend's GSO (seg != 0). */
static inline int tx_send(struct mior_port *p, mior_pkt *pkt, uint32_t len, const mior_addr *dst, uint32_t seg) {
  uint32_t slot = pkt->slot;
  if (pkt->port != p || slot >= p->region.buf_count)
    return mior__fail(-EINVAL, "mior_tx_send: packet is not a slot of this port");
  if (MIOR_UNLIKELY(pkt->seg)) return tx_send_shared(p, pkt, len, dst);
  int rc = ensure_bound(p);
  if (MIOR_UNLIKELY(rc < 0)) {
    /* Not sent.  The rule "after mior_tx_send the slot is the port's" holds here too: it goes
     * back to the pool, which any thread may do. */
    user_to_pool(p, slot, pkt->gen);
    return rc;
  }
  if (MIOR_UNLIKELY(!mior__slot_from_user(p, slot, pkt->gen, MIOR__SLOT_TX))) {
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
  /* The destination checks every backend needs, made once here. */
  if (MIOR_UNLIKELY(!dst && !p->has_default_dst)) {
    rc = mior__fail(-EDESTADDRREQ, "send without a destination: pass dst or set options.peer");
    goto invalid;
  }
  if (MIOR_UNLIKELY(dst && p->dst_family && (dst->family == MIOR_AF_INET6) != (p->dst_family == MIOR_AF_INET6))) {
    rc = mior__fail(-EAFNOSUPPORT, "destination is IPv%d but the socket is IPv%d",
                    dst->family == MIOR_AF_INET6 ? 6 : 4, p->dst_family == MIOR_AF_INET6 ? 6 : 4);
    goto invalid;
  }
  /* The direct path (see mior_port_poll): on a quiet busy-polling port, the first send of a poll
   * with nothing else queued or in flight goes out at once with one system call, so it cannot
   * overtake an earlier one; later sends of the same poll queue as usual and may leave as one GSO
   * send.  It completes here as the ring would complete it. */
  if (p->direct_tx && seg == 0 && p->tx_pending == 0 && p->tx_inflight == 0 && p->last_rx <= 1 &&
      !(pkt->flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN))) { /* metadata sends take the ring's way */
    p->direct_tx = 0;
    rc = p->ops->tx_direct(p->io, pkt->data, len, dst);
    if (rc != -EAGAIN) {
      mior__cqe c = {.op = MIOR__OP_TX, .slot = slot, .res = rc, .off = len};
      p->tx_inflight++;
      tx_complete(p, &c);
      return 0;
    }
  }
  if (p->tx_pending >= p->sq_limit) {
    rc = flush_bound(p);
    if (rc < 0) goto failed;
  }
  uint32_t mflags = pkt->flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN);
  if (MIOR_UNLIKELY(mflags)) {
    rc = tx_meta_check(p, pkt, mflags);
    if (rc < 0) goto invalid;
    if (!p->ops->tx_queue_meta) {
      rc = mior__fail(-EOPNOTSUPP, "mior_tx_send: the %s backend cannot set a source address or "
                      "ECN per send", p->ops->name);
      goto failed;
    }
  }
  rc = tx_queue(p, slot, (uint32_t)(pkt->data - base), len, dst, mflags, pkt, seg);
  if (MIOR_UNLIKELY(rc == -EAGAIN)) {
    /* The submission queue filled up under us (receives share it): submit and try once more. */
    int frc = flush_bound(p);
    rc = frc < 0 ? frc : tx_queue(p, slot, (uint32_t)(pkt->data - base), len, dst, mflags, pkt, seg);
  }
  if (MIOR_UNLIKELY(rc < 0)) {
    /* A destination the socket cannot take is the caller's mistake; anything else is not. */
    if (rc == -EDESTADDRREQ || rc == -EAFNOSUPPORT || rc == -EINVAL) goto invalid;
    goto failed;
  }
  p->tx_pending++;
  /* Queued: it goes out with this submit or, should this one fail, with the next.  An error here
   * would read as "not sent", so it is not returned. */
  if (p->tx_pending >= p->batch) flush_bound(p);
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

int mior_tx_send(mior_port *p, mior_pkt *pkt, uint32_t len, const mior_addr *dst) {
  if (!p || !pkt) return mior__fail(-EINVAL, "mior_tx_send: NULL %s", p ? "pkt" : "port");
  return tx_send(p, pkt, len, dst, 0);
}

int mior_tx_send_segments(mior_port *p, mior_pkt *pkts, const uint32_t *lens, uint32_t n,
                          const mior_addr *dst) {
  if (!p || !pkts || !lens) return mior__fail(-EINVAL, "mior_tx_send_segments: NULL argument");
  int bad = n < 2 || n > 64 || !p->datagrams;
  for (uint32_t i = 0; i < n && !bad; i++)
    if (lens[i] == 0 || lens[i] > lens[0] || (i + 1 < n && lens[i] != lens[0])) bad = 1;
  int rc = bad ? 0 : ensure_bound(p);
  if (bad || rc < 0) {
    /* Nothing is sent, and every slot is the port's, as after mior_tx_send. */
    for (uint32_t i = 0; i < n && n <= 1024; i++)
      if (pkts[i].port == p) mior_pkt_release(&pkts[i]);
    if (rc < 0) return rc;
    p->stats.tx_invalid += n;
    return mior__fail(-EINVAL, "mior_tx_send_segments: %u datagrams: need 2..64 on a udp port, all of "
                      "one length but the last, which may be shorter, none empty", n);
  }
  /* One submit carries the whole run, so the backend sees it as one GSO send (never its first
   * datagram alone on the busy-polling direct path). */
  if (p->tx_pending && p->tx_pending + n > p->batch) flush_bound(p);
  p->direct_tx = 0;
  int first = 0;
  for (uint32_t i = 0; i < n; i++) {
    rc = mior_tx_send(p, &pkts[i], lens[i], dst);
    if (rc < 0 && first == 0) first = rc;
  }
  return first;
}

/* Datagrams in one GSO send: the kernel's limit before Linux 6.9 (UDP_MAX_SEGMENTS). */
#define TX_GSO_MAX_SEGS 64u

/* Whether the application still holds pkt (its generation, or its bit of a shared slot). */
static int pkt_held(struct mior_port *p, const mior_pkt *pkt) {
  if (pkt->seg) return mior__slot_share_held(p, pkt->slot, pkt->gen, pkt->seg);
  uint32_t w = mior__slot_word(p, pkt->slot);
  return (w & MIOR__SLOT_STATE_MASK) == MIOR__SLOT_USER && (w >> MIOR__SLOT_STATE_BITS) == pkt->gen;
}

/* mior_tx_send_gso without the backend's GSO: each datagram copied into a slot of its own and
 * sent as one run (mior_tx_send_segments, which forms a GSO send of slots where it can).  All
 * slots are taken before anything is sent, so a port short of slots sends nothing. */
static int tx_gso_copy(struct mior_port *p, mior_pkt *pkt, uint32_t len, uint32_t seg, uint32_t n,
                       const mior_addr *dst) {
  mior_pkt parts[TX_GSO_MAX_SEGS];
  uint32_t lens[TX_GSO_MAX_SEGS], got = 0;
  int rc = 0;
  if (seg > p->region.buf_size)
    rc = mior__fail(-EINVAL, "mior_tx_send_gso: a %u-byte datagram does not fit a slot (%u)", seg, p->region.buf_size);
  while (rc == 0 && got < n && (rc = mior_tx_acquire(p, &parts[got])) == 0) got++;
  if (rc < 0) {
    mior_pkt_release_bulk(parts, got);
    mior_pkt_release(pkt);
    if (rc == -EINVAL) p->stats.tx_invalid++;
    return rc;
  }
  for (uint32_t i = 0; i < n; i++) {
    lens[i] = i + 1 < n ? seg : len - seg * (n - 1);
    memcpy(parts[i].data, pkt->data + (size_t)i * seg, lens[i]);
  }
  mior_pkt_release(pkt);
  return mior_tx_send_segments(p, parts, lens, n, dst);
}

int mior_tx_send_gso(mior_port *p, mior_pkt *pkt, uint32_t len, uint32_t seg, const mior_addr *dst) {
  if (!p || !pkt) return mior__fail(-EINVAL, "mior_tx_send_gso: NULL %s", p ? "pkt" : "port");
  if (pkt->port != p || pkt->slot >= p->region.buf_count)
    return mior__fail(-EINVAL, "mior_tx_send_gso: packet is not a slot of this port");
  uint32_t n = seg ? len / seg + (len % seg != 0) : 0;
  const uint8_t *base = mior_pool_region_slot(&p->region, pkt->slot);
  int rc = ensure_bound(p);
  if (rc == 0 && (!p->datagrams || n == 0 || n > TX_GSO_MAX_SEGS || pkt->data < base ||
                  pkt->data > base + p->region.buf_size || len > (uint32_t)(base + p->region.buf_size - pkt->data)))
    rc = mior__fail(-EINVAL, "mior_tx_send_gso: %u bytes in datagrams of %u: need a udp port, 1..%u "
                    "datagrams, none empty, within the slot", len, seg, TX_GSO_MAX_SEGS);
  else if (rc == 0 && (pkt->flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN)))
    rc = mior__fail(-EOPNOTSUPP, "mior_tx_send_gso: no source address or ECN per send");
  if (rc < 0) {
    /* Nothing is sent, and the slot is the port's, as after mior_tx_send. */
    if (mior_pkt_release(pkt) == 0 && rc != -EBUSY) p->stats.tx_invalid++;
    return rc;
  }
  if (n == 1) return tx_send(p, pkt, len, dst, 0);
  if (pkt->seg || !p->ops->tx_gso_ok || !p->ops->tx_gso_ok(p->io, seg, len)) {
    /* The copy reads the packet before giving it back: it must still be the caller's (tx_send
     * makes the same check as it takes the slot). */
    if (!pkt_held(p, pkt)) {
      p->stats.tx_invalid++;
      return mior__fail(-EINVAL, "mior_tx_send_gso: slot %u is not held by the application (sent or "
                        "released already, or a stale copy of a packet)", pkt->slot);
    }
    return tx_gso_copy(p, pkt, len, seg, n, dst);
  }
  return tx_send(p, pkt, len, dst, seg);
}

int mior_pkt_release(const mior_pkt *pkt) {
  if (!pkt || !pkt->port) return mior__fail(-EINVAL, "mior_pkt_release: NULL packet");
  struct mior_port *p = pkt->port;
  if (pkt->slot >= p->region.buf_count)
    return mior__fail(-EINVAL, "mior_pkt_release: slot %u out of range", pkt->slot);
  if (pkt->seg) {
    if (!shared_done(p, pkt, 0))
      return mior__fail(-EINVAL, "mior_pkt_release: packet %u of slot %u is not held by the application "
                        "(released or sent already, or a stale copy of a packet)", pkt->seg, pkt->slot);
    atomic_fetch_add_explicit(&p->user_released, 1, memory_order_release);
    return 0;
  }
  if (!user_to_pool(p, pkt->slot, pkt->gen))
    return mior__fail(-EINVAL, "mior_pkt_release: slot %u is not held by the application "
                      "(released or sent already, or a stale copy of a packet)", pkt->slot);
  return 0;
}

/* The per-packet step of mior_pkt_release_bulk: claim the slot for the bulk if this packet
 * (generation) holds it.  A plain store, not a compare-and-swap: the caller promises that nobody
 * else gives this packet back at the same time (pkt.h); a packet given twice in one bulk finds
 * the slot CLAIMED and is refused.  A packet of a coalesced slot (seg) is only checked here: the
 * slot's other packets may be given back by other threads meanwhile, so its bit is cleared in the
 * second pass, where it cannot be taken back. */
static inline int bulk_claim(struct mior_port *p, const mior_pkt *pkt) {
  if (pkt->slot >= p->region.buf_count || pkt->gen > MIOR__SLOT_GEN_MASK) return 0;
  if (pkt->seg) return mior__slot_share_held(p, pkt->slot, pkt->gen, pkt->seg);
  uint32_t held = (pkt->gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_USER;
  if (mior__slot_word(p, pkt->slot) != held) return 0;
  atomic_store_explicit(&p->slot_state[pkt->slot], (pkt->gen << MIOR__SLOT_STATE_BITS) | MIOR__SLOT_CLAIMED,
                        memory_order_relaxed);
  return 1;
}

static void bulk_unclaim(const mior_pkt *pkts, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (!pkts[i].seg) mior__slot_set(pkts[i].port, pkts[i].slot, MIOR__SLOT_USER);
}

static inline int same_shared_slot(const mior_pkt *a, const mior_pkt *b) {
  return a->seg && b->seg && a->port == b->port && a->slot == b->slot && a->gen == b->gen;
}

int mior_pkt_release_bulk(const mior_pkt *pkts, uint32_t n) {
  if (n == 0) return 0;
  if (!pkts) return mior__fail(-EINVAL, "mior_pkt_release_bulk: NULL pkts");
  uint64_t run_bits = 0; /* bits seen in the current run of one coalesced slot's packets */
  for (uint32_t i = 0; i < n; i++) {
    int ok = pkts[i].port && bulk_claim(pkts[i].port, &pkts[i]);
    if (ok && pkts[i].seg) {
      uint64_t bit = (uint64_t)1 << (pkts[i].seg - 1u);
      if (i == 0 || !same_shared_slot(&pkts[i - 1], &pkts[i])) run_bits = 0;
      ok = !(run_bits & bit);
      run_bits |= bit;
    }
    if (!ok) {
      bulk_unclaim(pkts, i);
      return mior__fail(-EINVAL, "mior_pkt_release_bulk: packet %u of %u is not held by the "
                        "application (released or sent already, a stale copy, or given twice); "
                        "none was released", i, n);
    }
  }
  /* Every run of one port's packets goes on its return list in one compare-and-swap, which also
   * counts the packets of coalesced slots that stay out because their neighbours are still held. */
  uint32_t dup = 0;
  for (uint32_t i = 0; i < n;) {
    struct mior_port *p = pkts[i].port;
    uint32_t first = MIOR__NO_SLOT, last = MIOR__NO_SLOT, k = 0, extra = 0;
    while (i < n && pkts[i].port == p) {
      uint32_t s = pkts[i].slot;
      if (pkts[i].seg) {
        uint64_t bits = 0;
        uint32_t j = i;
        do {
          bits |= (uint64_t)1 << (pkts[j].seg - 1u);
          j++;
        } while (j < n && same_shared_slot(&pkts[j - 1], &pkts[j]));
        i = j;
        int was_last;
        uint32_t done = bulk_unshare(p, s, bits, &was_last, &dup);
        extra += done - (uint32_t)was_last; /* the slot itself, if it goes, counts one */
        if (!was_last) continue;
      } else {
        i++;
      }
      mior__slot_set(p, s, MIOR__SLOT_RETURNED);
      if (first == MIOR__NO_SLOT) first = s;
      else atomic_store_explicit(&p->ret_next[last], s, memory_order_relaxed);
      last = s;
      k++;
    }
    if (k == 0) {
      if (extra) atomic_fetch_add_explicit(&p->user_released, extra, memory_order_release);
      continue;
    }
    uint64_t old = atomic_load_explicit(&p->ret_head, memory_order_relaxed);
    uint64_t want;
    do {
      atomic_store_explicit(&p->ret_next[last], (uint32_t)old, memory_order_relaxed);
      want = ((((old >> 32) + k + extra) & UINT32_MAX) << 32) | first;
      /* Release: the slot words and links above are visible to the thread that takes the list. */
    } while (!atomic_compare_exchange_weak_explicit(&p->ret_head, &old, want, memory_order_release,
                                                    memory_order_relaxed));
  }
  if (dup)
    return mior__fail(-EINVAL, "mior_pkt_release_bulk: %u packet(s) of a coalesced slot given twice; "
                      "the others were released", dup);
  return 0;
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
  if (p->ops->flags & MIOR__BACKEND_NO_SOCKET) return mior__fail(-ENOTSOCK, "this port has no socket");
  return mior__socket_local_addr(&p->sock, out);
}

mior_backend mior_port_backend(const mior_port *p) {
  return p ? p->ops->id : MIOR_BACKEND_AUTO;
}

uint32_t mior__port_user_held(const struct mior_port *p) {
  struct mior_port *mp = (struct mior_port *)p;
  uint32_t bulk = (uint32_t)(atomic_load_explicit(&mp->ret_head, memory_order_relaxed) >> 32);
  return p->user_taken - atomic_load_explicit(&mp->user_released, memory_order_acquire) - bulk;
}

int mior_port_stats_get(const mior_port *p, mior_port_stats *out) {
  if (!p || !out) return mior__fail(-EINVAL, "mior_port_stats_get: NULL argument");
  *out = p->stats;
  if (p->ops->counters && p->io) {
    mior__backend_counters c;
    p->ops->counters(p->io, &c);
    out->submits += c.submits;
    out->rx_rearm += c.rx_rearm;
    out->cq_overflow += c.cq_overflow;
    out->tx_packets += c.tx_packets;
    out->tx_bytes += c.tx_bytes;
    out->tx_errors += c.tx_errors;
    out->tx_gso_sends += c.gso_sends;
    out->offload_refused += c.offload_refused;
    out->features = (out->features | c.features_on) & ~c.features_off;
  }
  mior_pool_stats ps;
  if (mior_pool_stats_get(p->pool, &ps) == 0) {
    out->pool_in_use = ps.in_use;
    out->pool_high_water = ps.high_water;
  }
  out->user_held = mior__port_user_held(p);
  out->tx_in_flight = p->tx_pending + p->tx_inflight;
  if (!(p->ops->flags & MIOR__BACKEND_NO_SOCKET)) out->rx_drop_kernel = mior__socket_drops(&p->sock);
  struct mior_port *mp = (struct mior_port *)p;
  out->thread_error = atomic_load_explicit(&mp->thread_rc, memory_order_acquire);
  out->thread_running = (uint32_t)atomic_load_explicit(&mp->thread_running, memory_order_acquire);
  return 0;
}

