/* A FIFO of completion records for backends that make their completions in user space: the
 * sockets backend (recvmmsg/sendmmsg results), Winsock (completion-port entries) and IoRing (its
 * ring's entries, copied out as they are popped).  Records are pushed as operations end, and the
 * backend's reap hands them out in order.
 *
 * Capacity: every slot is in the queue at most once, plus MIOR__CQ_SPARE records that carry no
 * slot (errors such as an ICMP port unreachable); a backend keeps those to the spare entries, so
 * a slot's record always finds room. */
#ifndef MIOR_COMMON_CQ_FIFO_H
#define MIOR_COMMON_CQ_FIFO_H

#include <stdint.h>
#include <stdlib.h>

#include "common/backend.h"

#define MIOR__CQ_SPARE 64u

typedef struct mior__cq_fifo {
  mior__cqe *q;
  uint32_t head, len, cap;
} mior__cq_fifo;

/* 0, or -1 when out of memory (q stays NULL). */
static inline int mior__cq_init(mior__cq_fifo *f, uint32_t slots) {
  f->head = f->len = 0;
  f->cap = slots + MIOR__CQ_SPARE;
  f->q = malloc((size_t)f->cap * sizeof *f->q);
  return f->q ? 0 : -1;
}

static inline void mior__cq_free(mior__cq_fifo *f) {
  free(f->q);
  f->q = NULL;
}

/* Forget every record (at close, when nobody will reap them). */
static inline void mior__cq_clear(mior__cq_fifo *f) {
  f->head = f->len = 0;
}

/* A record that carries no slot (an error such as ICMP port unreachable): the next free record,
 * or NULL when the queue is full (the record is then dropped: it is a counter, not data). */
static inline mior__cqe *mior__cq_push_spare(mior__cq_fifo *f) {
  if (f->len == f->cap) return NULL;
  mior__cqe *c = &f->q[(f->head + f->len) % f->cap];
  f->len++;
  return c;
}

/* A slot's own record: there is always room (each slot is in the queue at most once). */
static inline mior__cqe *mior__cq_push_slot(mior__cq_fifo *f) {
  mior__cqe *c = &f->q[(f->head + f->len) % f->cap];
  f->len++;
  return c;
}

/* Move up to max records, oldest first, into out; returns how many. */
static inline uint32_t mior__cq_take(mior__cq_fifo *f, mior__cqe *out, uint32_t max) {
  uint32_t n = f->len < max ? f->len : max;
  for (uint32_t i = 0; i < n; i++) {
    out[i] = f->q[f->head];
    f->head = (f->head + 1) % f->cap;
  }
  f->len -= n;
  return n;
}

#endif
