/* A FIFO of queued sends, for every backend: mior_tx_send records a send here (tx_queue), and the
 * backend's submit takes them out in order.  Beside cq_fifo.h, which carries the completions back.
 *
 * A send names its slot, where in the slot its bytes start, how many, and whether it has a
 * destination of its own.  The destination itself stays in the backend's per-slot storage (a
 * msghdr, an OVERLAPPED operation...), indexed by slot, because each backend hands it to its OS in
 * its own form.  Capacity: every slot is queued at most once, so a FIFO as large as the pool never
 * overflows; push still says so (-EAGAIN), as the backend contract asks.
 */
#ifndef MIOR_COMMON_TX_FIFO_H
#define MIOR_COMMON_TX_FIFO_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct mior__tx_rec {
  uint32_t slot;
  uint32_t off;
  uint32_t len;
  uint32_t has_dst; /* the destination is in the backend's storage for this slot */
  uint32_t seg;     /* 0: one datagram; else the slot holds datagrams of seg bytes back to back,
                       sent as one GSO send (backend_ops.tx_queue_gso) */
} mior__tx_rec;

typedef struct mior__tx_fifo {
  mior__tx_rec *q;
  uint32_t head, len, cap;
} mior__tx_fifo;

/* 0, or -1 when out of memory (q stays NULL). */
static inline int mior__tx_fifo_init(mior__tx_fifo *f, uint32_t slots) {
  f->head = f->len = 0;
  f->cap = slots;
  f->q = malloc((size_t)slots * sizeof *f->q);
  return f->q ? 0 : -1;
}

static inline void mior__tx_fifo_free(mior__tx_fifo *f) {
  free(f->q);
  f->q = NULL;
}

/* The i-th queued send from the oldest (i < len). */
/* head + i folded into the ring, for i <= cap: a compare, not a division.  cap is the port's slot
 * count, rarely a power of two, and a `%` here was an integer division per queued send, several
 * per packet between push, the GSO run scan and its gather. */
static inline uint32_t mior__tx_fifo_wrap(const mior__tx_fifo *f, uint32_t i) {
  uint32_t k = f->head + i;
  return k >= f->cap ? k - f->cap : k;
}

static inline mior__tx_rec *mior__tx_fifo_at(mior__tx_fifo *f, uint32_t i) {
  return &f->q[mior__tx_fifo_wrap(f, i)];
}

/* Queue a send at the end: 0, or -EAGAIN when full. */
static inline int mior__tx_fifo_push(mior__tx_fifo *f, uint32_t slot, uint32_t off, uint32_t len,
                                     uint32_t has_dst) {
  if (f->len == f->cap) return -EAGAIN;
  mior__tx_rec *e = &f->q[mior__tx_fifo_wrap(f, f->len)];
  e->slot = slot;
  e->off = off;
  e->len = len;
  e->has_dst = has_dst;
  e->seg = 0;
  f->len++;
  return 0;
}

/* Drop the n oldest sends (taken by the caller). */
static inline void mior__tx_fifo_pop(mior__tx_fifo *f, uint32_t n) {
  f->head = mior__tx_fifo_wrap(f, n);
  f->len -= n;
}

/* Put n sends back in front of all but the first `at` queued ones, keeping their order: sends the
 * kernel refused go again before anything queued after them.  The caller guarantees room (they
 * were taken out of this FIFO). */
static inline void mior__tx_fifo_insert(mior__tx_fifo *f, uint32_t at, const mior__tx_rec *recs,
                                        uint32_t n) {
  /* Move the n records in front of the head, then rotate the first `at` of them to the front:
   * the rare path (a refused GSO send) pays, the common one does not. */
  f->head = (f->head + f->cap - n) % f->cap;
  f->len += n;
  for (uint32_t i = 0; i < at; i++) *mior__tx_fifo_at(f, i) = *mior__tx_fifo_at(f, i + n);
  for (uint32_t i = 0; i < n; i++) *mior__tx_fifo_at(f, at + i) = recs[i];
}

#endif
