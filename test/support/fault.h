/* Fault injection under the backend contract, for tests only.
 *
 * mior__fault_install() slides a wrapper between a port and its backend: the port's ops table and
 * ring are replaced by the wrapper's, whose ring holds the inner ops and ring, the plan and the
 * counters.  Every call goes through to the real backend (io_uring or sockets, real sockets, real
 * kernel); the plan decides which results are rewritten on the way back:
 *
 *   - submit fails every Nth call without entering the inner backend.  That is what a failed
 *     io_uring_enter looks like: the queued entries stay queued and go out with the next submit,
 *     so nothing is lost, and the front end must simply survive the error.
 *   - receive completions that carried data come back with an error instead (the slot still comes
 *     back: the result is rewritten, the slot kept), so the packet is lost and must be counted;
 *     coalesced receives (UDP GRO, several datagrams in one completion) are never rewritten;
 *   - send completions come back failed, or short (res = len / 2);
 *   - tx_queue refuses with -EAGAIN (a full submission queue);
 *   - the socket dies: after N submits a hook runs once (a test shuts the real socket down), and
 *     from then on, if die_err is set, submit and tx_queue fail with it.
 *
 * Install on an open port before it is first driven (before mior_port_poll, mior_tx_* or
 * mior_transport_start).  mior__port_close works as usual: the wrapper's close closes the inner
 * backend and frees the wrapper.
 *
 * Test support, not library: compiled once into mior_test_support (test/CMakeLists.txt), which
 * the tests link beside mior_static, so libmior ships none of it.  It works from the library's
 * internal headers (common/port.h, common/backend.h): a port's ops table and ring are not public.
 */
#ifndef MIOR_TEST_SUPPORT_FAULT_H
#define MIOR_TEST_SUPPORT_FAULT_H

#include <stdint.h>

#include "mior/transport.h"

typedef struct mior__fault_plan {
  uint32_t submit_every;   /* every Nth submit fails with submit_err (0: never) */
  int submit_err;          /* e.g. -EAGAIN, -EBUSY, -ENOMEM, -EINTR */
  uint32_t rx_every;       /* every Nth receive completion carrying data gets rx_err (0: never) */
  int rx_err;              /* e.g. -ENOBUFS, -ECONNREFUSED, -EMSGSIZE, -ECANCELED */
  uint32_t tx_every;       /* every Nth successful send completion is rewritten (0: never) */
  int tx_err;              /* negative: that error; 0: a short send (res = len / 2) */
  uint32_t tx_queue_every; /* every Nth tx_queue returns -EAGAIN without queueing (0: never) */
  uint32_t die_after;      /* after this many submits the socket "dies" (0: never) */
  int die_err;             /* then every submit and tx_queue fails with this (0: keep calling in) */
  void (*die)(void *ctx, mior_port *port); /* called once when it dies (may be NULL) */
  void *die_ctx;
} mior__fault_plan;

typedef struct mior__fault_counts {
  uint64_t submits;         /* submit calls seen */
  uint64_t submit_faults;   /* of which failed by the plan */
  uint64_t rx_seen, rx_faults;
  uint64_t tx_seen, tx_faults, tx_short;
  uint64_t tx_queue_faults;
  uint64_t dead_calls;      /* calls refused with die_err after the socket died */
  int died;
} mior__fault_counts;

/* 0, or -EINVAL (NULL argument, a port already wrapped or already driven). */
int mior__fault_install(mior_port *port, const mior__fault_plan *plan);
/* The counters so far (read on the driving thread, or after it stopped). */
int mior__fault_counts_get(const mior_port *port, mior__fault_counts *out);

#endif
