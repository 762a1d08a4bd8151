/* Model-based test of the port API: seeded, bounded, reproducible random sequences of calls, with a
 * model of what the application holds and of every datagram in flight, checked after every step.
 * It encodes the port's contract (what the data path promises), so that the bugs that break it are
 * found by random exploration rather than one hand-written test per bug:
 *
 *   1 threads     a port is bound to the first thread that polls, acquires, sends or flushes on it
 *                 (or to its own thread after mior_transport_start); those four from any other
 *                 thread return -EBUSY and do nothing (a refused send still takes the slot back);
 *                 mior_pkt_release works from any thread.
 *   2 receive     consume runs on the driving thread; inside it the receiver may send the received
 *                 packet itself (echo in place, dst = &pkt->src) or release it, after which the
 *                 slot is no longer the receiver's whatever consume returns; it may acquire and
 *                 send other slots.
 *   3 release     releasing a held packet returns 0; a second release of the same copy, or of a
 *                 stale copy whose slot was handed out again, returns -EINVAL and leaves the
 *                 current owner's packet alone (its release still returns 0).
 *   4 sizes       empty UDP datagrams are delivered (len 0) and sent (mior_tx_send len 0);
 *                 datagrams longer than a slot (buf_size, minus the 32/44-byte header of an
 *                 io_uring multishot receive) are never delivered and each counts in
 *                 rx_drop_truncated.
 *   5 counting    every datagram sent to the port is delivered exactly once or counted in
 *                 rx_drop_truncated / rx_drop_kernel / rx_errors; what the port sends arrives;
 *                 stats.user_held is what the application holds; tx_in_flight is 0 after a
 *                 drain; nothing leaks (close returns 0 once everything is released).
 *   6 close       close from the driving thread, from any thread on a port never driven, or after
 *                 the driving thread was joined returns 0, and the address binds again at once;
 *                 close from another thread while the driver lives returns -EBUSY and frees
 *                 nothing; close while the application holds packets returns -EBUSY and frees
 *                 nothing, and after the releases a second close returns 0.
 *   7 poll        every timeout kind (0, a small one, infinite when a datagram is on its way);
 *                 the return value is the number of packets delivered; poll from inside consume
 *                 returns -EBUSY.  Pull receive: mior_rx_burst hands at most max packets to the
 *                 caller's array, never to consume, each checked as consume's are (intact,
 *                 expected, once, from the right source, in a slot nobody holds); the caller
 *                 holds them until it releases them (one at a time, in bulk, from any thread) or
 *                 sends them; from inside consume or a wrong thread it returns -EBUSY.
 *   8 start/stop  start works on a port never driven; after stop user_held is what the model
 *                 holds; a restart returns 0 (traffic then flows again) or -EBUSY (then it stays
 *                 refused); a hand-driven io_uring port cannot be started (-EBUSY).
 *
 * Shape.  A seed fixes everything the test chooses: pool size, batch, multishot, which operation
 * kinds a sequence uses (swarm testing: each sequence leaves out a random subset, so a bug one
 * frequent operation trips first does not hide the others), the operations and their arguments,
 * and each received packet's fate (drawn from the seed and the packet's sequence number, not from
 * timing).  Each seed runs once per backend (uring, sockets), over 127.0.0.1 or [::1]; seeds
 * divisible by 3 run "started" (mior_transport_start, the test thread only sends, releases and
 * stops), the others are driven by hand from a driver thread, with a helper thread that makes the
 * calls that must come from another thread (asynchronous releases, wrong-thread calls, a close
 * from outside).  A plain kernel UDP socket is the peer: it sends datagrams of known number and
 * size to the port and receives what the port sends, so counts are exact.
 *
 * Operations (hand-driven; the weights are in mm_ops): acquire; send (to the port itself or to
 * the kernel socket; normal, empty, exactly as long as a slot takes, or longer than the port can
 * receive); a burst of sends; kernel socket -> port datagrams (normal, empty, near-max, oversize);
 * poll (budget 0/1/4/64, timeout 0, 1..2000 us, or infinite right after a datagram was sent);
 * flush; release of a held packet (on the driver, or queued to the helper so that it runs while
 * the driver goes on); release of a stale copy, preferring one whose slot the application holds
 * again (ABA); double release; poll/acquire/send/flush from the helper (wrong thread); close from
 * the helper while the driver lives; start on a hand-driven io_uring port; mior_pkt_release_bulk
 * of up to 16 held packets (all released, or, with one given twice, -EINVAL and all still
 * held), on the driver or queued to the helper so that it runs while the driver polls; pull
 * receive (mior_rx_burst, max 1/4/16/64, mixed with the polls that deliver to consume), each
 * pulled packet held, released at once, echoed in place, or released with the rest of its burst
 * in one bulk call on the driver or the helper; rx_burst from the helper (wrong thread); a drain with the
 * counting checks.  Inside consume, each packet's fate: done, keep, echo in place (dst =
 * &pkt->src, data moved by up to 64 bytes, new length, then KEEP or DONE), release (then KEEP or
 * DONE), acquire and send another slot, acquire and hold a slot, or poll or rx_burst (-EBUSY).
 * Started mode: datagrams, sleeps, releases, stale and double releases and wrong-thread calls
 * (rx_burst among them) from the application's thread, stop + restart (with traffic in flight or after a drain), drains.  Each
 * sequence ends with a drain, the counting checks, the releases and a close (on the driving
 * thread, after joining it, or while holding packets), and the address must bind again.
 *
 * Checked after every step: the return value of every call; every delivered payload is intact,
 * expected, from the right source and delivered once; no packet handed out shares a slot with one
 * the application holds; the held packets' bytes are unchanged; stats.user_held equals what the
 * model holds (within the releases still running on the helper); pool_in_use covers them;
 * delivered + drops never exceed what was sent; rx_drop_truncated never exceeds the oversize
 * datagrams; what reaches the kernel socket is intact, from the port, sent once and never one a
 * refused send carried.  After a drain: the counts add up exactly and tx_in_flight is 0.
 *
 * Replay.  A seed replays the same operations and packet fates; the kernel's timing is not the
 * test's, so a failure that needs a race may take a few runs (MIOR_MODEL_SEQS, or a loop).
 *
 * Isolation.  Each sequence runs in a forked child, so a library that crashes, corrupts memory or
 * hangs costs one sequence: the child reports the seed, the step, the contract item and the last
 * operations (kept in shared memory, so they survive a crash), and the parent goes on with the
 * next sequence.  A failed check ends its sequence at once.  Every wait is bounded; a step that
 * takes longer than 5 s is reported as a hang, and the parent kills a child that outlives its
 * share of the time budget by 12 s.
 *
 * Environment (defaults: seeds 1..12, 4000 steps per sequence, 20 s for everything):
 *   MIOR_MODEL_SEED=<n>        run seed n only (with MIOR_MODEL_SEQS, n..n+SEQS-1); "random" for
 *                              a seed from the clock
 *   MIOR_MODEL_SEQS=<n>        number of seeds
 *   MIOR_MODEL_STEPS=<n>       steps per sequence
 *   MIOR_MODEL_SECONDS=<n>     time budget for the whole run (shared between the sequences)
 *   MIOR_MODEL_BACKEND=uring|sockets, MIOR_MODEL_FAMILY=4|6|both, MIOR_MODEL_MODE=manual|started
 *   MIOR_MODEL_OPS=all|-name,+name,...   all operation kinds on (no swarm), or some off/on; the
 *                              names are those of mm_feat_names below ("swarm" keeps the random subset)
 *   MIOR_MODEL_CLOSE=driver|joined|held  how a sequence ends (default: drawn from the seed): close
 *                              on the driving thread (started: after stop), close on another thread
 *                              after the driver was joined (started: close while started), or close
 *                              while holding packets (-EBUSY), release, close again
 *   MIOR_MODEL_FORK=0          run in-process (for a debugger); the first failure ends the run
 *   MIOR_MODEL_VERBOSE=1       print every operation
 */
#include <linux/sock_diag.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "transport_common.h"

/* --- limits ----------------------------------------------------------------------------------- */

#define MM_HIST 64           /* operations kept for the report */
#define MM_HIST_SHOW 20      /* ... of which the report prints the last */
#define MM_HIST_LEN 200
#define MM_MAX_HELD 1024     /* packets the model can track as held (a bug may hand out more) */
#define MM_GHOSTS 128        /* old copies kept for stale releases */
#define MM_REQS 1024         /* helper requests in flight */
#define MM_STEP_LIMIT_MS 5000
#define MM_SETTLE_MS 3000    /* a drain waits at most this long for every datagram to be accounted */
#define MM_HELPER_MS 3000    /* a call on the helper thread must return within this */
#define MM_MAX_PORT_PENDING 48 /* deliverable datagrams not yet delivered, at most */
#define MM_MAX_K_PENDING 64    /* datagrams from the port not yet at the kernel socket, at most */
#define MM_KBUF 65536

enum { MM_RUNNING = 0, MM_PASS = 1, MM_FAILED = 2, MM_SKIPPED = 3 };

static const char *const mm_item_name[] = {
    "test set-up",          "1 threads",        "2 receive",   "3 release",
    "4 empty/oversize",     "5 counting",       "6 close",     "7 poll",
    "8 start/stop",
};

/* What a sequence reports to the parent, in memory shared across fork: it survives a crash. */
typedef struct mm_report {
  /* set by the parent */
  uint64_t seed;
  mior_backend backend;
  int v6, started;
  uint32_t steps_max;
  /* set by the child */
  int verdict;
  int item;        /* contract item of the failure */
  int cur_item;    /* contract item the current operation exercises (for crashes and hangs) */
  uint64_t step;
  uint64_t steps_done;
  char cur_op[48];
  char msg[768];
  char config[200];
  uint32_t hist_n;
  char hist[MM_HIST][MM_HIST_LEN];
  uint64_t delivered, kdgrams, port_sends, keeps, echoes, stale, wrong, empties, oversize;
  int restart_rc;  /* started mode: what the last restart returned (1: none tried) */
} mm_report;

static int mm_verbose;
static int mm_fork = 1;

/* --- random numbers: splitmix64 --------------------------------------------------------------- */

static uint64_t mm_mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct mm_rng {
  uint64_t s;
} mm_rng;

/* A stream of its own for (seed, a, b): a step's draws, a packet's fate, the configuration. */
static mm_rng mm_rng_for(uint64_t seed, uint64_t a, uint64_t b) {
  mm_rng r = {mm_mix(seed ^ mm_mix(a ^ mm_mix(b)))};
  return r;
}

static uint64_t mm_next(mm_rng *r) {
  r->s += 0x632be59bd9b4e019ull;
  return mm_mix(r->s);
}

static uint32_t mm_below(mm_rng *r, uint32_t n) { return n ? (uint32_t)(mm_next(r) % n) : 0; }
static int mm_chance(mm_rng *r, uint32_t pct) { return mm_below(r, 100) < pct; }
static uint32_t mm_range(mm_rng *r, uint32_t lo, uint32_t hi) {
  return hi <= lo ? lo : lo + mm_below(r, hi - lo + 1);
}

/* --- operation kinds that a sequence may leave out (swarm testing) ---------------------------- */

enum {
  F_KEEP = 1u << 0,      /* consume keeps packets */
  F_ECHO = 1u << 1,      /* consume sends the received packet back in place */
  F_RELIN = 1u << 2,     /* consume releases the received packet */
  F_ACQOTHER = 1u << 3,  /* consume acquires and sends another slot */
  F_ACQHOLD = 1u << 4,   /* consume acquires a slot and keeps it unsent */
  F_PINSIDE = 1u << 5,   /* consume calls mior_port_poll */
  F_EMPTY = 1u << 6,     /* empty datagrams sent by the port (mior_tx_send len 0) */
  F_OVERSIZE = 1u << 7,  /* datagrams longer than a slot */
  F_NEARMAX = 1u << 8,   /* datagrams exactly as long as a slot takes */
  F_STALE = 1u << 9,     /* releases of old copies */
  F_DOUBLE = 1u << 10,   /* double releases */
  F_WRONG = 1u << 11,    /* poll/acquire/send/flush from a wrong thread */
  F_FCLOSE = 1u << 12,   /* close from another thread while the driver lives */
  F_START = 1u << 13,    /* start on a hand-driven io_uring port */
  F_DRAIN = 1u << 14,    /* drains (and counting checks) in mid-sequence */
  F_HELPERREL = 1u << 15,/* releases on the helper thread, concurrent with the driver */
  F_STOPSTART = 1u << 16,/* stop and restart (started mode) */
  F_INFPOLL = 1u << 17,  /* polls with an infinite timeout */
  F_KEMPTY = 1u << 18,   /* empty datagrams sent to the port by the kernel socket */
  F_PULL = 1u << 19,     /* mior_rx_burst (pull receive), beside consume */
  F_ALL = (1u << 20) - 1,
};
static const char *const mm_feat_names[] = {
    "keep",  "echo",   "relin", "acqother", "acqhold", "pinside",   "txempty",   "oversize", "nearmax",
    "stale", "double", "wrong", "fclose",   "start",   "drain",     "helperrel", "stopstart", "infpoll",
    "rxempty", "pull",
};
#define MM_NFEAT (sizeof mm_feat_names / sizeof mm_feat_names[0])

/* --- the model -------------------------------------------------------------------------------- */

enum { TO_PORT = 0, TO_K = 1 };
enum { FROM_K = 0, FROM_PORT = 1 };
/* Kinds of datagram records.  A record is made for every payload with a sequence number. */
enum { RK_NORMAL, RK_NEARMAX, RK_OVERSIZE, RK_ECHO, RK_FORBIDDEN, RK_SCRATCH, RK_UNSENT };
static const char *const mm_rk_name[] = {"normal",     "near-max", "oversize", "echo",
                                         "wrong-thread", "scratch", "unsent"};

typedef struct mm_rec {
  uint32_t len;
  uint8_t dest, kind, from, got; /* got: 1 delivered, 2 dropped and counted by the port */
} mm_rec;

/* A packet the application holds: a copy of the struct, as an application keeps it. */
typedef struct mm_held {
  mior_pkt pkt;
  uint64_t id;
  uint32_t seq, len; /* payload to verify (len 0: nothing) */
  char kind;         /* 'K' kept (received), 'A' acquired and not sent */
  uint8_t pending;   /* a release is queued on the helper thread */
} mm_held;

enum { RQ_RELEASE, RQ_POLL, RQ_ACQUIRE, RQ_SEND, RQ_FLUSH, RQ_CLOSE, RQ_BULK, RQ_RXBURST };
static const char *const mm_rq_name[] = {"mior_pkt_release", "mior_port_poll",       "mior_tx_acquire",
                                         "mior_tx_send",     "mior_tx_flush",        "mior_transport_close",
                                         "mior_pkt_release_bulk", "mior_rx_burst"};
#define MM_BULK 16 /* packets per mior_pkt_release_bulk */

typedef struct mm_req {
  int type, sync, expect, rc;
  mior_pkt pkt;
  uint32_t nbulk;               /* RQ_BULK: packets in bulk[], the model's ids in bulk_id[] */
  mior_pkt bulk[MM_BULK];
  uint64_t bulk_id[MM_BULK];
  uint32_t len;
  mior_addr dst;
  uint64_t hid;
  mior_transport *t;
  char err[160];
} mm_req;

typedef struct mm {
  /* configuration */
  uint64_t seed;
  mior_backend backend;
  int v6, started_mode;
  uint32_t buf_count, buf_size, batch, flags, feat, hold_cap, limit;
  int close_variant, never_driven_close;
  uint32_t steps_max;
  int64_t deadline_us;
  mm_report *rep;

  /* objects */
  mior_transport *t;
  mior_port *port;
  mior_addr paddr, kaddr;
  struct sockaddr_storage psa;
  socklen_t psa_len;
  int ks;
  uint8_t *kbuf;
  const void *probe; /* an address inside the pool (to see whether it is still mapped) */
  pthread_t main_tid, driver_tid, rx_tid;
  int rx_tid_set;
  pthread_mutex_t mu; /* the model (started mode: consume runs on the port's thread) */
  pthread_mutex_t hist_mu;

  /* the application's packets */
  mm_held held[MM_MAX_HELD];
  uint32_t nheld, npending;
  uint64_t next_id;
  mior_pkt ghosts[MM_GHOSTS];
  uint32_t nghosts;

  /* datagrams */
  mm_rec *recs;
  uint32_t nrecs, caprecs;
  uint64_t port_sent, port_delivered, port_oversize, port_pending;
  uint64_t e_port_sent, e_port_got, e_port_dropped, e_k_sent, e_k_got;
  uint64_t k_pending, k_got, tx_sent;

  /* the current step */
  uint64_t step;
  uint32_t consume_calls;
  int in_consume, draining, wrong_call;
  uint32_t suspects; /* contract items this step exercised, to name the one a mismatch points at */
  uint64_t c2_ops;    /* echoes and releases inside consume so far (contract 2 operations) */
  uint32_t releasing; /* started mode: packets taken out of the model, release not yet returned */
  atomic_llong step_t0_us;
  atomic_int step_limit_ms;
  atomic_int wd_stop;

  /* started mode */
  int running, restart_refused, inexact;
  uint32_t hot_stop_seq; /* records made before the last stop with traffic in flight */

  /* helper thread */
  pthread_t helper_tid;
  int helper_up;
  pthread_mutex_t qmu;
  pthread_cond_t qcv, dcv;
  mm_req reqs[MM_REQS];
  uint32_t q_submit, q_exec, q_collect;
  int q_quit;
} mm;

/* --- reporting -------------------------------------------------------------------------------- */

static void mm_describe(const mm_report *rp, char *buf, size_t n) {
  snprintf(buf, n, "seed=%llu backend=%s family=%s mode=%s", (unsigned long long)rp->seed,
           mior_backend_name(rp->backend), rp->v6 ? "udp6 [::1]" : "udp4 127.0.0.1",
           rp->started ? "started" : "manual");
}

static void mm_print_tail(const mm_report *rp) {
  uint32_t total = rp->hist_n, n = total < MM_HIST_SHOW ? total : MM_HIST_SHOW;
  fprintf(stderr, "  last %u operations (of %u):\n", n, total);
  for (uint32_t i = total - n; i < total; i++) fprintf(stderr, "    %s\n", rp->hist[i % MM_HIST]);
}

static void mm_print_replay(const mm_report *rp) {
  fprintf(stderr, "  replay: MIOR_MODEL_SEED=%llu MIOR_MODEL_BACKEND=%s MIOR_MODEL_FAMILY=%d "
          "MIOR_MODEL_STEPS=%u ./test_transport_model\n", (unsigned long long)rp->seed,
          mior_backend_name(rp->backend), rp->v6 ? 6 : 4, rp->steps_max);
}

static void mm_hist(mm *m, const char *fmt, ...) {
  char line[MM_HIST_LEN];
  int off = snprintf(line, sizeof line, "[step %5llu] ", (unsigned long long)m->step);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&m->hist_mu);
  mm_report *rp = m->rep;
  memcpy(rp->hist[rp->hist_n % MM_HIST], line, sizeof line);
  rp->hist_n++;
  pthread_mutex_unlock(&m->hist_mu);
  if (mm_verbose) fprintf(stderr, "  %s\n", line);
}

static atomic_int mm_failing;

/* A check failed: report it (contract item, seed, step, message, the last operations) and end
 * the sequence at once.  In a forked child nothing is cleaned up: the state is no longer known,
 * and the process's exit closes every socket and ring. */
static _Noreturn void mm_fail(mm *m, int item, const char *fmt, ...) {
  if (atomic_exchange(&mm_failing, 1)) {
    for (;;) pause(); /* another thread is reporting and will end the process */
  }
  mm_report *rp = m->rep;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rp->msg, sizeof rp->msg, fmt, ap);
  va_end(ap);
  rp->item = item;
  rp->step = m->step;
  char who[160];
  mm_describe(rp, who, sizeof who);
  fprintf(stderr, "FAIL [contract %s] %s step=%llu op=%s\n  %s\n  config: %s\n",
          mm_item_name[item], who, (unsigned long long)m->step, rp->cur_op, rp->msg, rp->config);
  mm_print_tail(rp);
  mm_print_replay(rp);
  rp->verdict = MM_FAILED;
  fflush(stdout);
  fflush(stderr);
  _exit(2);
}

/* Expect rc == want from a call; item is the contract item it checks. */
#define MM_EXPECT(m, item, rc, want, ...)                                                         \
  do {                                                                                            \
    int rc__ = (rc), want__ = (want);                                                             \
    if (rc__ != want__) {                                                                         \
      char what__[300];                                                                           \
      snprintf(what__, sizeof what__, __VA_ARGS__);                                               \
      const char *err__ = rc__ < 0 ? mior_last_error() : "";                                      \
      mm_fail(m, item, "%s -> %d (%s), expected %d (%s)%s%s%s", what__, rc__,                     \
              rc__ < 0 ? mior_strerror(rc__) : "ok", want__, want__ < 0 ? mior_strerror(want__) : "ok", \
              *err__ ? " [" : "", err__, *err__ ? "]" : "");                                        \
    }                                                                                             \
  } while (0)

static void mm_begin_op(mm *m, const char *name, int item, int limit_ms) {
  snprintf(m->rep->cur_op, sizeof m->rep->cur_op, "%s", name);
  m->rep->cur_item = item;
  atomic_store(&m->step_limit_ms, limit_ms);
  atomic_store(&m->step_t0_us, (long long)tt_now_us());
}

static void mm_end_op(mm *m) { atomic_store(&m->step_t0_us, 0); }

/* The most specific contract item this step exercised (for a mismatch found after the step). */
static int mm_suspect(const mm *m) {
  static const int order[] = {1, 2, 3, 6, 8, 4};
  for (unsigned i = 0; i < sizeof order / sizeof order[0]; i++)
    if (m->suspects & (1u << order[i])) return order[i];
  return 5;
}

/* --- addresses and the kernel socket ---------------------------------------------------------- */

static socklen_t mm_to_sa(const mior_addr *a, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (a->family == MIOR_AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a->port);
    memcpy(&s6->sin6_addr, a->addr, 16);
    s6->sin6_scope_id = a->scope_id;
    return sizeof *s6;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons(a->port);
  memcpy(&s4->sin_addr, a->addr, 4);
  return sizeof *s4;
}

static void mm_from_sa(const struct sockaddr_storage *ss, mior_addr *a) {
  memset(a, 0, sizeof *a);
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    a->family = MIOR_AF_INET6;
    a->port = ntohs(s6->sin6_port);
    memcpy(a->addr, &s6->sin6_addr, 16);
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    a->family = MIOR_AF_INET;
    a->port = ntohs(s4->sin_port);
    memcpy(a->addr, &s4->sin_addr, 4);
  }
}

static const char *mm_astr(const mior_addr *a, char *buf, size_t n) {
  if (mior_addr_format(a, buf, n) < 0) snprintf(buf, n, "(family %u)", a->family);
  return buf;
}

static int mm_v6_available(void) {
  int s = socket(AF_INET6, SOCK_DGRAM, 0);
  if (s < 0) return 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

/* The peer: a plain kernel UDP socket on the same loopback, large buffers, non-blocking. */
static void mm_ksock(mm *m) {
  int fam = m->v6 ? AF_INET6 : AF_INET;
  m->ks = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (m->ks < 0) mm_fail(m, 0, "socket: %s", strerror(errno));
  int big = 4 << 20;
  if (setsockopt(m->ks, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(m->ks, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (setsockopt(m->ks, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
    setsockopt(m->ks, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  mior_addr a;
  memset(&a, 0, sizeof a);
  CHECK_OK(mior_addr_parse(&a, m->v6 ? "[::1]:0" : "127.0.0.1:0"));
  struct sockaddr_storage ss;
  socklen_t sl = mm_to_sa(&a, &ss);
  if (bind(m->ks, (struct sockaddr *)&ss, sl) < 0) mm_fail(m, 0, "bind kernel socket: %s", strerror(errno));
  sl = sizeof ss;
  if (getsockname(m->ks, (struct sockaddr *)&ss, &sl) < 0)
    mm_fail(m, 0, "getsockname: %s", strerror(errno));
  mm_from_sa(&ss, &m->kaddr);
}

static uint32_t mm_kdrops(const mm *m) {
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  if (getsockopt(m->ks, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 || len <= SK_MEMINFO_DROPS * sizeof mem[0])
    return 0;
  return mem[SK_MEMINFO_DROPS];
}

/* Is the page holding p mapped?  (A pool that was freed is unmapped: this asks without touching.) */
static int mm_mapped(const void *p) {
  long pg = sysconf(_SC_PAGESIZE);
  uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1);
  unsigned char v;
  return mincore((void *)a, 1, &v) == 0;
}

/* Right after a close that returned 0 the UDP address must bind again (contract 6). */
static void mm_check_rebind(mm *m, const mior_addr *addr, const char *after) {
  struct sockaddr_storage ss;
  socklen_t sl = mm_to_sa(addr, &ss);
  int s = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) mm_fail(m, 0, "socket: %s", strerror(errno));
  if (bind(s, (struct sockaddr *)&ss, sl) == 0) {
    close(s);
    mm_hist(m, "rebind after %s: ok", after);
    return;
  }
  int err = errno;
  int64_t t0 = tt_now_ms(), later = -1;
  while (tt_now_ms() - t0 < 1000) {
    usleep(2000);
    if (bind(s, (struct sockaddr *)&ss, sl) == 0) {
      later = tt_now_ms() - t0;
      break;
    }
  }
  close(s);
  char ab[64];
  if (later >= 0)
    mm_fail(m, 6, "bind %s right after %s -> %s (it bound %lld ms later: the socket outlived close)",
            mm_astr(addr, ab, sizeof ab), after, strerror(err), (long long)later);
  mm_fail(m, 6, "bind %s right after %s -> %s (still in use 1 s later)", mm_astr(addr, ab, sizeof ab),
          after, strerror(err));
}

static mior_port_stats mm_stats(mm *m) {
  mior_port_stats st;
  memset(&st, 0, sizeof st);
  int rc = mior_port_stats_get(m->port, &st);
  MM_EXPECT(m, 0, rc, 0, "mior_port_stats_get");
  return st;
}

/* --- records, held packets, ghosts ------------------------------------------------------------ */

static uint32_t mm_rec_new(mm *m, int dest, int kind, int from, uint32_t len) {
  if (m->nrecs == m->caprecs) {
    uint32_t cap = m->caprecs ? m->caprecs * 2 : 4096;
    mm_rec *r = realloc(m->recs, (size_t)cap * sizeof *r);
    if (!r) mm_fail(m, 0, "out of memory for records");
    m->recs = r;
    m->caprecs = cap;
  }
  mm_rec *r = &m->recs[m->nrecs++];
  r->len = len;
  r->dest = (uint8_t)dest;
  r->kind = (uint8_t)kind;
  r->from = (uint8_t)from;
  r->got = 0;
  return m->nrecs; /* sequence numbers start at 1 */
}

static mm_rec *mm_rec_get(mm *m, uint32_t seq) {
  return seq >= 1 && seq <= m->nrecs ? &m->recs[seq - 1] : NULL;
}

/* Slot identity of a data pointer: the pool is page-aligned and buf_size divides a page. */
static uintptr_t mm_key(const mm *m, const void *p) { return (uintptr_t)p / m->buf_size; }

/* A packet just handed to the application must not share its slot with one it already holds. */
static void mm_check_fresh(mm *m, const mior_pkt *p, const char *what) {
  uintptr_t k = mm_key(m, p->data);
  for (uint32_t i = 0; i < m->nheld; i++) {
    const mm_held *h = &m->held[i];
    if (h->pending || mm_key(m, h->pkt.data) != k) continue;
    mm_fail(m, mm_suspect(m) == 5 ? 5 : mm_suspect(m),
            "%s packet (data %p) is in the slot of packet #%llu (%s, data %p) that the application "
            "still holds: one slot handed out twice", what, (void *)p->data, (unsigned long long)h->id,
            h->kind == 'K' ? "kept" : "acquired", (void *)h->pkt.data);
  }
}

static mm_held *mm_hold(mm *m, const mior_pkt *p, char kind, uint32_t seq, uint32_t len) {
  if (m->nheld == MM_MAX_HELD)
    mm_fail(m, 5, "the application holds %u packets: more than the pool has", m->nheld);
  mm_held *h = &m->held[m->nheld++];
  memset(h, 0, sizeof *h);
  h->pkt = *p;
  h->id = ++m->next_id;
  h->kind = kind;
  h->seq = seq;
  h->len = len;
  if (!m->probe) m->probe = p->data;
  return h;
}

static void mm_unhold(mm *m, uint32_t i) {
  m->held[i] = m->held[--m->nheld];
}

static void mm_ghost(mm *m, const mior_pkt *p) {
  m->ghosts[m->nghosts % MM_GHOSTS] = *p;
  m->nghosts++;
}

/* A random held packet not being released ('A', 'K' or 0 for either), or -1. */
static int mm_pick_held(mm *m, mm_rng *r, char kind) {
  if (m->nheld == 0) return -1;
  uint32_t start = mm_below(r, m->nheld);
  for (uint32_t j = 0; j < m->nheld; j++) {
    uint32_t i = (start + j) % m->nheld;
    if (!m->held[i].pending && (!kind || m->held[i].kind == kind)) return (int)i;
  }
  return -1;
}

static int mm_find_held(const mm *m, uint64_t id) {
  for (uint32_t i = 0; i < m->nheld; i++)
    if (m->held[i].id == id) return (int)i;
  return -1;
}

/* The bytes of a held packet are as the application left them. */
static void mm_verify_held(mm *m, const mm_held *h, const char *when) {
  if (h->len == 0) return;
  uint32_t seq = 0;
  int c = tt_check(h->pkt.data, h->len, &seq);
  if (c != 0 || seq != h->seq)
    mm_fail(m, mm_suspect(m), "%s: the %s packet #%llu (data %p, %u bytes, payload #%u) was overwritten "
            "while the application held it (%s)", when, h->kind == 'K' ? "kept" : "acquired",
            (unsigned long long)h->id, (void *)h->pkt.data, h->len, h->seq,
            c < 0 ? "damaged" : c > 0 ? "foreign bytes" : "another payload");
}

/* Fill an acquired slot with a payload of its own so that a write by someone else shows. */
static mm_held *mm_hold_acquired(mm *m, const mior_pkt *p, mm_rng *r, const char *what) {
  if (!p->data || p->cap < TT_HDR || p->cap > m->buf_size)
    mm_fail(m, 5, "%s gave data %p cap %u (buf_size %u)", what, (void *)p->data, p->cap, m->buf_size);
  mm_check_fresh(m, p, what);
  uint32_t len = mm_range(r, TT_HDR, p->cap < 256 ? p->cap : 256);
  uint32_t seq = mm_rec_new(m, TO_K, RK_SCRATCH, FROM_PORT, len);
  tt_fill(p->data, len, seq);
  return mm_hold(m, p, 'A', seq, len);
}

/* --- sending ---------------------------------------------------------------------------------- */

static void mm_account_sent(mm *m, int dest, int kind, uint32_t len) {
  if (dest == TO_PORT) {
    m->port_sent++;
    if (len == 0) m->e_port_sent++;
    else if (kind == RK_OVERSIZE) m->port_oversize++;
    else m->port_pending++;
  } else {
    if (len == 0) m->e_k_sent++;
    else m->k_pending++;
  }
  if (len == 0) m->rep->empties++;
  if (kind == RK_OVERSIZE) m->rep->oversize++;
}

/* Send copy (a slot the application holds) with len bytes to dest through the port.  The payload
 * is written here.  dst: the address to pass (NULL: dest's). */
static void mm_port_send(mm *m, mior_pkt *copy, uint32_t len, int dest, int kind, const mior_addr *dst,
                         int item, const char *what) {
  int rk = kind;
  if (dest == TO_PORT && len > m->limit) rk = RK_OVERSIZE;
  uint32_t seq = 0;
  if (len > 0) {
    seq = mm_rec_new(m, dest, rk, FROM_PORT, len);
    tt_fill(copy->data, len, seq);
  }
  copy->len = len;
  if (!dst) dst = dest == TO_PORT ? &m->paddr : &m->kaddr;
  int rc = mior_tx_send(m->port, copy, len, dst);
  mm_hist(m, "%s: mior_tx_send(#%u, len %u, to %s) = %d", what, seq, len,
          dest == TO_PORT ? "port" : "kernel", rc);
  MM_EXPECT(m, len == 0 ? 4 : rk == RK_NEARMAX || rk == RK_OVERSIZE ? 4 : item, rc, 0,
            "%s: mior_tx_send(len %u%s to %s)", what, len, len == 0 ? ", an empty datagram," : "",
            dest == TO_PORT ? "the port itself" : "the kernel socket");
  m->tx_sent++;
  m->rep->port_sends++;
  mm_account_sent(m, dest, rk, len);
}

/* The kernel socket sends a datagram of len bytes to the port. */
static void mm_ksend(mm *m, int kind, uint32_t len) {
  int rk = len > m->limit ? RK_OVERSIZE : kind;
  uint32_t seq = 0;
  if (len > 0) {
    seq = mm_rec_new(m, TO_PORT, rk, FROM_K, len);
    tt_fill(m->kbuf, len, seq);
  }
  ssize_t n = sendto(m->ks, m->kbuf, len, 0, (struct sockaddr *)&m->psa, m->psa_len);
  if (n != (ssize_t)len) {
    /* The kernel refused (buffer full): not the library's doing, and nothing is in flight. */
    if (seq) m->recs[seq - 1].kind = RK_UNSENT;
    mm_hist(m, "ksend #%u len %u: not sent (%s)", seq, len, n < 0 ? strerror(errno) : "short");
    return;
  }
  mm_hist(m, "ksend #%u len %u (%s)", seq, len, len == 0 ? "empty" : mm_rk_name[rk]);
  m->rep->kdgrams++;
  mm_account_sent(m, TO_PORT, rk, len);
}

/* What arrived at the kernel socket: from the port, intact, expected, once. */
static void mm_kdrain(mm *m) {
  for (int budget = 0; budget < 4096; budget++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    ssize_t n = recvfrom(m->ks, m->kbuf, MM_KBUF, MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      mm_fail(m, 0, "recvfrom on the kernel socket: %s", strerror(errno));
    }
    mior_addr src;
    mm_from_sa(&ss, &src);
    char ab[64], pb[64];
    if (!tt_addr_eq(&src, &m->paddr))
      mm_fail(m, 5, "the kernel socket got %zd bytes from %s, not from the port (%s)", n,
              mm_astr(&src, ab, sizeof ab), mm_astr(&m->paddr, pb, sizeof pb));
    if (n == 0) {
      if (m->e_k_got >= m->e_k_sent)
        mm_fail(m, 4, "the kernel socket got %llu empty datagrams from the port, which sent %llu",
                (unsigned long long)m->e_k_got + 1, (unsigned long long)m->e_k_sent);
      m->e_k_got++;
      continue;
    }
    uint32_t seq = 0;
    int c = tt_check(m->kbuf, (uint32_t)n, &seq);
    if (c != 0)
      mm_fail(m, m->c2_ops ? 2 : 5,
              "the kernel socket got a %s datagram of %zd bytes from the port (a slot "
              "rewritten while its send was in flight?%s)",
              c < 0 ? "damaged" : "foreign", n,
              m->c2_ops ? " the sequence echoed or released packets inside consume before" : "");
    mm_rec *r = mm_rec_get(m, seq);
    if (!r || r->dest != TO_K || r->from != FROM_PORT)
      mm_fail(m, 5, "the kernel socket got payload #%u (%zd bytes), which the port never sent it "
              "(%s)", seq, n, r ? mm_rk_name[r->kind] : "unknown");
    if (r->kind == RK_FORBIDDEN)
      mm_fail(m, 1, "payload #%u, handed to mior_tx_send on a wrong thread (which must send nothing "
              "and return -EBUSY), arrived at the kernel socket", seq);
    if (r->kind == RK_SCRATCH)
      mm_fail(m, 5, "payload #%u, written into a slot the application acquired and never sent, "
              "arrived at the kernel socket", seq);
    if (r->got) {
      uint32_t lost = 0;
      for (uint32_t i = 0; i < m->nrecs && !lost; i++)
        if (m->recs[i].dest == TO_K && !m->recs[i].got && m->recs[i].kind != RK_SCRATCH &&
            m->recs[i].kind != RK_FORBIDDEN && m->recs[i].kind != RK_UNSENT)
          lost = i + 1;
      mm_fail(m, m->c2_ops ? 2 : 5, "the kernel socket got payload #%u twice (#%u, %s, has not arrived: "
              "a slot in flight was handed out again and rewritten?%s)", seq, lost,
              lost ? mm_rk_name[m->recs[lost - 1].kind] : "-",
              m->c2_ops ? " the sequence echoed or released packets inside consume before" : "");
    }
    if (r->len != (uint32_t)n) mm_fail(m, 5, "payload #%u arrived with %zd bytes, sent %u", seq, n, r->len);
    r->got = 1;
    m->k_pending--;
    m->k_got++;
  }
}

/* --- the receiver ----------------------------------------------------------------------------- */

enum { D_DONE, D_KEEP, D_ECHO, D_RELIN, D_ACQOTHER, D_ACQHOLD, D_PINSIDE };

static int mm_decide(const mm *m, mm_rng *r) {
  uint32_t x = mm_below(r, 100);
  if (x < 40) return D_DONE;
  if (x < 56) return (m->feat & F_KEEP) ? D_KEEP : D_DONE;
  if (x < 70) return (m->feat & F_ECHO) ? D_ECHO : D_DONE;
  if (x < 79) return (m->feat & F_RELIN) ? D_RELIN : D_DONE;
  if (x < 86) return (m->feat & F_ACQOTHER) ? D_ACQOTHER : D_DONE;
  if (x < 93) return (m->feat & F_ACQHOLD) ? D_ACQHOLD : D_DONE;
  return (m->feat & F_PINSIDE) ? D_PINSIDE : D_DONE;
}

static void mm_check_consume_thread(mm *m, const char *what) {
  pthread_t self = pthread_self();
  if (!m->started_mode) {
    if (pthread_equal(self, m->driver_tid)) return;
    if (m->wrong_call)
      mm_fail(m, 1, "%s ran on the helper thread during a wrong-thread call: that call drove the port "
              "instead of returning -EBUSY", what);
    mm_fail(m, 2, "%s ran on a thread that is not the one driving the port", what);
  }
  if (pthread_equal(self, m->main_tid))
    mm_fail(m, 1, "%s ran on the application's thread, not on the port's own thread%s", what,
            m->wrong_call
                ? " (during a wrong-thread call, which drove the port instead of returning -EBUSY)"
                : "");
  if (!m->rx_tid_set) {
    m->rx_tid = self;
    m->rx_tid_set = 1;
  } else if (!pthread_equal(self, m->rx_tid)) {
    mm_fail(m, 2, "%s ran on two different threads while the transport was started once", what);
  }
}

/* A packet delivered (to consume, or by mior_rx_burst, named by `how`): intact, expected, from
 * the right source, delivered once, in a slot the application does not hold.  Records it as
 * delivered; *seq is its payload's number (0: empty), *key names its fate's random stream.
 * Returns 1 if the port sent it to itself, 0 if the kernel socket did. */
static int mm_delivered(mm *m, const mior_pkt *pkt, const char *how, uint32_t *seq_out, uint64_t *key_out) {
  if (!pkt || !pkt->data) mm_fail(m, 2, "%s got a NULL packet or data", how);
  if (pkt->len > pkt->cap || pkt->cap > m->buf_size)
    mm_fail(m, 2, "%s got len %u cap %u (buf_size %u)", how, pkt->len, pkt->cap, m->buf_size);
#ifdef MIOR_PKT_TRUNCATED /* gone where the contract holds: a cut datagram is never delivered */
  if (pkt->flags & MIOR_PKT_TRUNCATED)
    mm_fail(m, 4, "a datagram was delivered with MIOR_PKT_TRUNCATED (len %u): datagrams longer than "
            "the slot must be dropped and counted in rx_drop_truncated, never delivered", pkt->len);
#endif
  int from_self = tt_addr_eq(&pkt->src, &m->paddr), from_k = tt_addr_eq(&pkt->src, &m->kaddr);
  char ab[64];
  if (!from_self && !from_k)
    mm_fail(m, 2, "delivered packet (len %u) has src %s: neither the kernel socket nor the port", pkt->len,
            mm_astr(&pkt->src, ab, sizeof ab));
  uint32_t seq = 0;
  uint64_t key;
  if (pkt->len == 0) {
    if (m->e_port_got + m->e_port_dropped >= m->e_port_sent)
      mm_fail(m, 4, "an empty datagram was delivered, but only %llu were sent and %llu delivered before",
              (unsigned long long)m->e_port_sent, (unsigned long long)m->e_port_got);
    m->e_port_got++;
    key = 0xE000000000ull + m->e_port_got;
  } else {
    int c = tt_check(pkt->data, pkt->len, &seq);
    if (c != 0) {
      /* A cut copy of a datagram longer than the slot still carries its header. */
      const mm_rec *cut = pkt->len >= TT_HDR && tt_get32(pkt->data) == TT_MAGIC
                              ? mm_rec_get(m, tt_get32(pkt->data + 4)) : NULL;
      if (cut && cut->kind == RK_OVERSIZE)
        mm_fail(m, 4, "a cut copy (%u bytes) of datagram #%u (%u bytes, longer than a slot takes: %u) was "
                "delivered", pkt->len, tt_get32(pkt->data + 4), cut->len, m->limit);
      mm_fail(m, 2, "delivered payload of %u bytes is %s", pkt->len,
              c < 0 ? "damaged" : "not one the test sent");
    }
    mm_rec *r = mm_rec_get(m, seq);
    if (!r || r->dest != TO_PORT || r->kind == RK_UNSENT)
      mm_fail(m, 2, "delivered payload #%u was never sent to the port", seq);
    if (r->kind == RK_OVERSIZE)
      mm_fail(m, 4, "datagram #%u of %u bytes, longer than a slot takes (%u), was delivered", seq, r->len,
              m->limit);
    if (r->got)
      mm_fail(m, 5, "datagram #%u was %s", seq, r->got == 2 ? "delivered after the port had counted it as "
              "dropped (delivered + drops == sent)" : "delivered twice");
    if (r->len != pkt->len)
      mm_fail(m, 2, "datagram #%u delivered with %u bytes, sent %u", seq, pkt->len, r->len);
    if ((r->from == FROM_PORT) != from_self)
      mm_fail(m, 2, "datagram #%u delivered with src %s", seq, mm_astr(&pkt->src, ab, sizeof ab));
    r->got = 1;
    m->port_pending--;
    key = seq;
  }
  m->port_delivered++;
  m->rep->delivered++;
  mm_check_fresh(m, pkt, "a received");
  if (!m->probe) m->probe = pkt->data;
  *seq_out = seq;
  *key_out = key;
  return from_self;
}

static int mm_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  mm *m = ctx;
  pthread_mutex_lock(&m->mu);
  mm_check_consume_thread(m, "consume");
  if (m->in_consume) mm_fail(m, 2, "consume was entered again from inside consume");
  m->in_consume = 1;
  m->consume_calls++;
  if (port != m->port)
    mm_fail(m, 2, "consume got port %p, not the transport's port %p", (void *)port, (void *)m->port);
  uint32_t seq;
  uint64_t key;
  int from_self = mm_delivered(m, pkt, "consume", &seq, &key);
  mior_pkt copy = *pkt;
  mm_rng r = mm_rng_for(m->seed, 0xC0C0, key);
  int d = m->draining ? D_DONE : mm_decide(m, &r);
  int ret = MIOR_DONE;
  int rc;
  switch (d) {
  case D_KEEP:
    if (m->nheld >= m->hold_cap) goto done;
    mm_hold(m, pkt, 'K', seq, pkt->len);
    m->rep->keeps++;
    ret = MIOR_KEEP;
    mm_hist(m, "  consume #%u len %u: keep", seq, pkt->len);
    break;
  case D_ECHO: {
    if (m->port_pending >= MM_MAX_PORT_PENDING || m->k_pending >= MM_MAX_K_PENDING) goto done;
    m->suspects |= 1u << 2;
    uint32_t off = mm_chance(&r, 30) ? mm_below(&r, 65) : 0;
    if (off + TT_HDR > pkt->cap) off = 0;
    copy.data = pkt->data + off;
    uint32_t room = pkt->cap - off, maxlen = room;
    int dest = from_self ? TO_PORT : TO_K;
    if (dest == TO_PORT && maxlen > m->limit) maxlen = m->limit;
    uint32_t len = ((m->feat & F_EMPTY) && mm_chance(&r, 10)) ? 0 : mm_range(&r, TT_HDR, maxlen);
    ret = mm_chance(&r, 50) ? MIOR_KEEP : MIOR_DONE;
    char what[64];
    snprintf(what, sizeof what, "  consume #%u echo in place (+%u)", seq, off);
    /* dst = &pkt->src: the received packet's own sender, as the contract says. */
    mm_port_send(m, &copy, len, dest, RK_ECHO, &pkt->src, 2, what);
    m->rep->echoes++;
    m->c2_ops++;
    mm_hist(m, "  consume #%u: echoed, return %s", seq, ret == MIOR_KEEP ? "KEEP" : "DONE");
    mm_ghost(m, pkt);
    break;
  }
  case D_RELIN:
    m->suspects |= 1u << 2;
    m->c2_ops++;
    rc = mior_pkt_release(&copy);
    ret = mm_chance(&r, 50) ? MIOR_KEEP : MIOR_DONE;
    mm_hist(m, "  consume #%u: mior_pkt_release(pkt) = %d, return %s", seq, rc,
            ret == MIOR_KEEP ? "KEEP" : "DONE");
    MM_EXPECT(m, 2, rc, 0, "mior_pkt_release of the packet being consumed, inside consume");
    mm_ghost(m, pkt);
    break;
  case D_ACQOTHER: {
    if (m->k_pending >= MM_MAX_K_PENDING) goto done;
    mior_pkt a;
    rc = mior_tx_acquire(port, &a);
    if (rc == -EAGAIN) goto done;
    MM_EXPECT(m, 2, rc, 0, "mior_tx_acquire inside consume");
    mm_check_fresh(m, &a, "an acquired (in consume)");
    uint32_t len =
        ((m->feat & F_EMPTY) && mm_chance(&r, 10)) ? 0 : mm_range(&r, TT_HDR, a.cap < 512 ? a.cap : 512);
    mm_port_send(m, &a, len, TO_K, RK_NORMAL, NULL, 2, "  consume: send another slot");
    mm_ghost(m, &a);
    goto done;
  }
  case D_ACQHOLD: {
    if (m->nheld >= m->hold_cap) goto done;
    mior_pkt a;
    rc = mior_tx_acquire(port, &a);
    if (rc == -EAGAIN) goto done;
    MM_EXPECT(m, 2, rc, 0, "mior_tx_acquire inside consume");
    mm_held *h = mm_hold_acquired(m, &a, &r, "mior_tx_acquire in consume");
    mm_hist(m, "  consume #%u: acquired #%llu and holds it", seq, (unsigned long long)h->id);
    goto done;
  }
  case D_PINSIDE: {
    mior_pkt one;
    int pull = (m->feat & F_PULL) && mm_chance(&r, 50);
    rc = pull ? mior_rx_burst(port, &one, 1) : mior_port_poll(port, 0, 0);
    const char *name = pull ? "mior_rx_burst" : "mior_port_poll";
    mm_hist(m, "  consume #%u: %s inside consume = %d", seq, name, rc);
    MM_EXPECT(m, 7, rc, -EBUSY, "%s from inside consume", name);
    goto done;
  }
  default:
  done:
    mm_ghost(m, pkt);
    if (mm_verbose) mm_hist(m, "  consume #%u len %u: done", seq, pkt->len);
    break;
  }
  m->in_consume = 0;
  pthread_mutex_unlock(&m->mu);
  return ret;
}

static void mm_flush_cb(void *ctx, mior_port *port) {
  mm *m = ctx;
  pthread_mutex_lock(&m->mu);
  mm_check_consume_thread(m, "the receiver's flush");
  if (port != m->port) mm_fail(m, 2, "flush got port %p, not %p", (void *)port, (void *)m->port);
  if (m->started_mode) {
    /* On the port's thread the counters are exact: user_held is what the model holds, plus the
     * releases the application thread has started and not finished. */
    mior_port_stats st = mm_stats(m);
    if (st.user_held < m->nheld || st.user_held > m->nheld + m->releasing)
      mm_fail(m, m->c2_ops ? 2 : 5,
              "in the receiver's flush (the port's thread) stats.user_held is %u, the "
              "application holds %u (%u releases under way)%s",
              st.user_held, m->nheld, m->releasing,
              m->c2_ops ? "; the sequence echoed or released packets inside consume" : "");
  }
  pthread_mutex_unlock(&m->mu);
}

/* --- the helper thread: releases and the calls that must come from another thread ------------- */

static void *mm_helper_main(void *arg) {
  mm *m = arg;
  pthread_mutex_lock(&m->qmu);
  for (;;) {
    while (m->q_exec == m->q_submit && !m->q_quit) pthread_cond_wait(&m->qcv, &m->qmu);
    if (m->q_exec == m->q_submit) break;
    mm_req rq = m->reqs[m->q_exec % MM_REQS];
    pthread_mutex_unlock(&m->qmu);
    int rc = -1;
    switch (rq.type) {
    case RQ_RELEASE: rc = mior_pkt_release(&rq.pkt); break;
    case RQ_POLL: rc = mior_port_poll(m->port, 0, 0); break;
    case RQ_ACQUIRE: rc = mior_tx_acquire(m->port, &rq.pkt); break;
    case RQ_SEND: rc = mior_tx_send(m->port, &rq.pkt, rq.len, &rq.dst); break;
    case RQ_FLUSH: rc = mior_tx_flush(m->port); break;
    case RQ_CLOSE: rc = mior_transport_close(rq.t); break;
    case RQ_BULK: rc = mior_pkt_release_bulk(rq.bulk, rq.nbulk); break;
    case RQ_RXBURST: rc = mior_rx_burst(m->port, &rq.pkt, 1); break;
    }
    pthread_mutex_lock(&m->qmu);
    mm_req *slot = &m->reqs[m->q_exec % MM_REQS];
    slot->rc = rc;
    slot->pkt = rq.pkt;
    snprintf(slot->err, sizeof slot->err, "%s", rc < 0 ? mior_last_error() : "");
    m->q_exec++;
    pthread_cond_broadcast(&m->dcv);
  }
  pthread_mutex_unlock(&m->qmu);
  return NULL;
}

static void mm_helper_start(mm *m) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&m->qmu, NULL);
  pthread_cond_init(&m->qcv, NULL);
  pthread_cond_init(&m->dcv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&m->helper_tid, NULL, mm_helper_main, m) != 0) mm_fail(m, 0, "pthread_create");
  m->helper_up = 1;
}

static void mm_helper_stop(mm *m) {
  if (!m->helper_up) return;
  pthread_mutex_lock(&m->qmu);
  m->q_quit = 1;
  pthread_cond_signal(&m->qcv);
  pthread_mutex_unlock(&m->qmu);
  pthread_join(m->helper_tid, NULL);
  m->helper_up = 0;
}

static uint32_t mm_submit(mm *m, const mm_req *rq) {
  pthread_mutex_lock(&m->qmu);
  if (m->q_submit - m->q_collect >= MM_REQS) {
    pthread_mutex_unlock(&m->qmu);
    mm_fail(m, 0, "helper queue full");
  }
  uint32_t n = m->q_submit++;
  m->reqs[n % MM_REQS] = *rq;
  pthread_cond_signal(&m->qcv);
  pthread_mutex_unlock(&m->qmu);
  return n;
}

static void mm_wait_req(mm *m, uint32_t n, int item, const char *what) {
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += MM_HELPER_MS / 1000;
  pthread_mutex_lock(&m->qmu);
  while ((int32_t)(m->q_exec - n) <= 0) {
    if (pthread_cond_timedwait(&m->dcv, &m->qmu, &dl) == ETIMEDOUT && (int32_t)(m->q_exec - n) <= 0) {
      pthread_mutex_unlock(&m->qmu);
      mm_fail(m, item, "%s on the helper thread did not return within %d ms (blocked in the library)",
              what, MM_HELPER_MS);
    }
  }
  pthread_mutex_unlock(&m->qmu);
}

/* A bulk release the helper made: 0, and every packet in it is the port's again. */
static void mm_collect_bulk(mm *m, const mm_req *rq) {
  mm_hist(m, "helper: mior_pkt_release_bulk(%u held) = %d", rq->nbulk, rq->rc);
  if (rq->rc != 0)
    mm_fail(m, 3, "mior_pkt_release_bulk on the helper thread of %u packets the application held -> %d "
            "(%s), expected 0%s%s", rq->nbulk, rq->rc, mior_strerror(rq->rc), *rq->err ? ": " : "", rq->err);
  for (uint32_t k = 0; k < rq->nbulk; k++) {
    int i = mm_find_held(m, rq->bulk_id[k]);
    if (i < 0) mm_fail(m, 0, "model: bulk-released packet #%llu not found", (unsigned long long)rq->bulk_id[k]);
    mm_ghost(m, &m->held[i].pkt);
    mm_unhold(m, (uint32_t)i);
    m->npending--;
  }
}

/* Results of the releases the helper made since the last look. */
static void mm_collect(mm *m) {
  if (!m->helper_up) return;
  pthread_mutex_lock(&m->qmu);
  uint32_t upto = m->q_exec;
  pthread_mutex_unlock(&m->qmu);
  for (; m->q_collect != upto; m->q_collect++) {
    mm_req *rq = &m->reqs[m->q_collect % MM_REQS];
    if (rq->sync) continue;
    if (rq->type == RQ_BULK) {
      mm_collect_bulk(m, rq);
      continue;
    }
    int i = rq->expect == 0 ? mm_find_held(m, rq->hid) : -1;
    mm_hist(m, "helper: mior_pkt_release(%s #%llu) = %d", rq->expect == 0 ? "held" : "stale copy of",
            (unsigned long long)rq->hid, rq->rc);
    if (rq->rc != rq->expect)
      mm_fail(m, 3, "mior_pkt_release on the helper thread of %s -> %d (%s), expected %d (%s)%s%s",
              rq->expect == 0 ? "a packet the application held" : "a stale copy", rq->rc,
              rq->rc < 0 ? mior_strerror(rq->rc) : "ok", rq->expect,
              rq->expect < 0 ? mior_strerror(rq->expect) : "ok", *rq->err ? ": " : "", rq->err);
    if (rq->expect == 0) {
      if (i < 0) mm_fail(m, 0, "model: released packet #%llu not found", (unsigned long long)rq->hid);
      mm_ghost(m, &m->held[i].pkt);
      mm_unhold(m, (uint32_t)i);
      m->npending--;
    }
  }
}

/* A call on the helper thread, waited for (bounded). */
static int mm_helper_call(mm *m, mm_req *rq, int item) {
  rq->sync = 1;
  uint32_t n = mm_submit(m, rq);
  mm_wait_req(m, n, item, mm_rq_name[rq->type]);
  *rq = m->reqs[n % MM_REQS];
  mm_collect(m);
  return rq->rc;
}

/* Wait (bounded) until the helper has done every release queued so far. */
static void mm_helper_sync(mm *m) {
  if (!m->helper_up) return;
  pthread_mutex_lock(&m->qmu);
  uint32_t last = m->q_submit;
  pthread_mutex_unlock(&m->qmu);
  if (last != m->q_collect) mm_wait_req(m, last - 1, 3, "mior_pkt_release");
  mm_collect(m);
}

/* --- checks ----------------------------------------------------------------------------------- */

/* After every step (on the driving thread: the counters are exact there). */
static void mm_invariants(mm *m, mm_rng *r) {
  /* After a step that gave slots back in unusual ways (inside consume, stale, wrong thread), let
   * the helper's releases finish so that user_held is checked exactly, in this step. */
  if (m->suspects & ((1u << 1) | (1u << 2) | (1u << 3))) mm_helper_sync(m);
  mm_collect(m);
  mm_kdrain(m);
  mior_port_stats st = mm_stats(m);
  uint32_t held = m->nheld, pend = m->npending;
  if (st.user_held > held || st.user_held + pend < held)
    mm_fail(m, mm_suspect(m), "stats.user_held is %u but the application holds %u packets (%u kept, "
            "%u of them being released on the helper thread)", st.user_held, held,
            held - pend, pend);
  if (st.pool_in_use + pend < held || st.pool_in_use > m->buf_count)
    mm_fail(m, mm_suspect(m), "stats.pool_in_use is %u with %u slots held by the application (pool of %u)",
            st.pool_in_use, held, m->buf_count);
  uint64_t acc = m->port_delivered + st.rx_drop_truncated + st.rx_drop_kernel + st.rx_errors;
  if (acc > m->port_sent)
    mm_fail(m, 5, "more datagrams accounted for (%llu delivered + %llu truncated + %llu kernel drops + "
            "%llu errors) than were sent to the port (%llu)", (unsigned long long)m->port_delivered,
            (unsigned long long)st.rx_drop_truncated, (unsigned long long)st.rx_drop_kernel,
            (unsigned long long)st.rx_errors, (unsigned long long)m->port_sent);
  if (st.rx_drop_truncated > m->port_oversize)
    mm_fail(m, 4, "rx_drop_truncated is %llu but only %llu datagrams longer than a slot were sent",
            (unsigned long long)st.rx_drop_truncated, (unsigned long long)m->port_oversize);
  for (int k = 0; k < 2; k++) {
    int i = mm_pick_held(m, r, 0);
    if (i >= 0) mm_verify_held(m, &m->held[i], "after the step");
  }
}

/* Every deliverable datagram was delivered, every oversize one counted, every sent one arrived:
 * the end of a drain.  st: exact counters. */
static int mm_settled(const mm *m, const mior_port_stats *st) {
  return m->k_pending == 0 && m->e_k_got == m->e_k_sent && st->tx_in_flight == 0 &&
         m->port_delivered + st->rx_drop_truncated + st->rx_drop_kernel + st->rx_errors == m->port_sent;
}

/* Every datagram sent to the port is delivered or counted (st says so, exactly): those still
 * undelivered were dropped and counted, and must never be delivered now. */
static void mm_resolve_drops(mm *m, const mior_port_stats *st) {
  if (m->port_delivered + st->rx_drop_truncated + st->rx_drop_kernel + st->rx_errors != m->port_sent)
    return;
  uint64_t n = 0;
  for (uint32_t i = 0; i < m->nrecs && m->port_pending; i++) {
    mm_rec *r = &m->recs[i];
    if (r->dest != TO_PORT || r->got || r->kind == RK_OVERSIZE || r->kind == RK_UNSENT ||
        r->kind == RK_SCRATCH)
      continue;
    r->got = 2;
    m->port_pending--;
    n++;
  }
  uint64_t e = m->e_port_sent - m->e_port_got - m->e_port_dropped;
  m->e_port_dropped += e;
  if (n || e) mm_hist(m, "%llu datagram(s) and %llu empty one(s) were dropped and counted by the port",
                      (unsigned long long)n, (unsigned long long)e);
}

/* What a drain that ran out of time was still waiting for (for the history). */
static void mm_hist_unsettled(mm *m, const mior_port_stats *st, const char *when) {
  mm_hist(
      m,
      "%s: not settled after %d ms: %llu deliverable pending, empties %llu/%llu, to kernel %llu pending, "
      "empties %llu/%llu, tx_in_flight %u, accounted %llu of %llu",
      when, MM_SETTLE_MS, (unsigned long long)m->port_pending, (unsigned long long)m->e_port_got,
      (unsigned long long)m->e_port_sent, (unsigned long long)m->k_pending, (unsigned long long)m->e_k_got,
      (unsigned long long)m->e_k_sent, st->tx_in_flight,
      (unsigned long long)(m->port_delivered + st->rx_drop_truncated + st->rx_drop_kernel + st->rx_errors),
      (unsigned long long)m->port_sent);
}

static void mm_final_counts(mm *m, const mior_port_stats *st, const char *when) {
  uint64_t kd = st->rx_drop_kernel, excuse = st->rx_drop_kernel + st->rx_errors;
  uint64_t missing = 0;
  uint32_t first = 0;
  for (uint32_t i = 0; i < m->nrecs; i++) {
    const mm_rec *r = &m->recs[i];
    if (r->dest != TO_PORT || r->got || r->kind == RK_OVERSIZE || r->kind == RK_UNSENT ||
        r->kind == RK_SCRATCH)
      continue;
    if (missing++ == 0) first = i + 1;
  }
  if (m->inexact) missing = 0; /* datagrams stay in a socket no thread will read again */
  if (missing > excuse) {
    const mm_rec *r = &m->recs[first - 1];
    int at_stop = first <= m->hot_stop_seq;
    mm_fail(m,
            at_stop                 ? 8
            : r->kind == RK_NEARMAX ? 4
            : r->kind == RK_ECHO    ? 2
                                    : 5,
            "%s: %llu datagram(s) sent to the port were never delivered nor counted (first: #%u, %s, %u "
            "bytes, from the %s%s; rx_drop_kernel %llu, rx_errors %llu, rx_drop_truncated %llu)",
            when, (unsigned long long)missing, first, mm_rk_name[r->kind], r->len,
            r->from == FROM_PORT ? "port itself" : "kernel socket",
            at_stop ? ", sent before a mior_transport_stop with traffic in flight" : "",
            (unsigned long long)kd, (unsigned long long)st->rx_errors,
            (unsigned long long)st->rx_drop_truncated);
  }
  if (m->e_port_got + m->e_port_dropped + excuse < m->e_port_sent && !m->inexact)
    mm_fail(m, 4, "%s: %llu empty datagrams were sent to the port and %llu delivered (rx_drop_kernel %llu, "
            "rx_errors %llu, rx_drop_truncated %llu)", when, (unsigned long long)m->e_port_sent,
            (unsigned long long)m->e_port_got, (unsigned long long)kd, (unsigned long long)st->rx_errors,
            (unsigned long long)st->rx_drop_truncated);
  if (kd == 0 && st->rx_errors == 0 && st->rx_drop_truncated != m->port_oversize && !m->inexact)
    mm_fail(
        m, 4, "%s: rx_drop_truncated is %llu, but %llu datagrams longer than a slot (%u bytes) were sent",
        when, (unsigned long long)st->rx_drop_truncated, (unsigned long long)m->port_oversize, m->limit);
  uint64_t acc = m->port_delivered + st->rx_drop_truncated + st->rx_drop_kernel + st->rx_errors;
  if (acc != m->port_sent && !m->inexact)
    mm_fail(m, 5,
            "%s: delivered %llu + rx_drop_truncated %llu + rx_drop_kernel %llu + rx_errors %llu = %llu, "
            "but %llu datagrams were sent to the port",
            when, (unsigned long long)m->port_delivered, (unsigned long long)st->rx_drop_truncated,
            (unsigned long long)st->rx_drop_kernel, (unsigned long long)st->rx_errors,
            (unsigned long long)acc, (unsigned long long)m->port_sent);
  uint32_t kdrops = mm_kdrops(m);
  if (m->k_pending > kdrops) {
    uint32_t seq = 0;
    for (uint32_t i = 0; i < m->nrecs && !seq; i++)
      if (m->recs[i].dest == TO_K && m->recs[i].from == FROM_PORT && !m->recs[i].got &&
          (m->recs[i].kind == RK_NORMAL || m->recs[i].kind == RK_ECHO || m->recs[i].kind == RK_NEARMAX))
        seq = i + 1;
    const mm_rec *r = mm_rec_get(m, seq);
    mm_fail(m, r && r->kind == RK_ECHO ? 2 : 5,
            "%s: %llu datagram(s) the port accepted (mior_tx_send returned 0) never reached the kernel "
            "socket (first: #%u, %s, %u bytes; tx_errors %llu, the kernel socket dropped %u)", when,
            (unsigned long long)m->k_pending, seq, r ? mm_rk_name[r->kind] : "?", r ? r->len : 0,
            (unsigned long long)st->tx_errors, kdrops);
  }
  if (m->e_k_got + kdrops < m->e_k_sent)
    mm_fail(m, 4, "%s: the port sent %llu empty datagrams to the kernel socket, which got %llu", when,
            (unsigned long long)m->e_k_sent, (unsigned long long)m->e_k_got);
  if (st->tx_in_flight != 0)
    mm_fail(m, 5, "%s: stats.tx_in_flight is %u after a drain", when, st->tx_in_flight);
}

/* Hand-driven drain: flush and poll until everything is accounted for (bounded), then check. */
static void mm_drain(mm *m, const char *when) {
  int64_t end = tt_now_ms() + MM_SETTLE_MS;
  m->draining = 1;
  mior_port_stats st;
  int polls = 0;
  for (;;) {
    int rc = mior_tx_flush(m->port);
    if (rc < 0 && rc != -EAGAIN) MM_EXPECT(m, 5, rc, 0, "mior_tx_flush (drain)");
    uint32_t before = m->consume_calls;
    rc = mior_port_poll(m->port, 0, 1000);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
      MM_EXPECT(m, 7, rc, 0, "mior_port_poll(budget 0, 1 ms) (drain)");
    if (rc >= 0 && (uint32_t)rc != m->consume_calls - before)
      mm_fail(m, 7, "mior_port_poll returned %d but consume ran %u times", rc, m->consume_calls - before);
    polls++;
    mm_collect(m);
    mm_kdrain(m);
    st = mm_stats(m);
    if (mm_settled(m, &st)) {
      mm_resolve_drops(m, &st);
      break;
    }
    if (tt_now_ms() > end) {
      mm_hist_unsettled(m, &st, when);
      break;
    }
  }
  m->draining = 0;
  mm_hist(m,
          "drain (%s): %d polls; delivered %llu trunc %llu kdrop %llu err %llu of %llu sent; user_held %u",
          when, polls, (unsigned long long)m->port_delivered, (unsigned long long)st.rx_drop_truncated,
          (unsigned long long)st.rx_drop_kernel, (unsigned long long)st.rx_errors,
          (unsigned long long)m->port_sent, st.user_held);
  mm_final_counts(m, &st, when);
}

/* --- operations (hand-driven) ----------------------------------------------------------------- */

enum { OP_ACQUIRE, OP_SEND, OP_BURST, OP_KSEND, OP_POLL, OP_FLUSH, OP_RELEASE, OP_STALE, OP_DOUBLE,
       OP_WRONG, OP_FCLOSE, OP_START, OP_DRAIN, OP_BULK, OP_RXBURST, OP_N };
static const struct {
  const char *name;
  int weight, item;
  uint32_t feat; /* 0: always available */
} mm_ops[OP_N] = {
    {"acquire", 8, 5, 0},       {"send", 10, 5, 0},          {"burst", 3, 5, 0},
    {"ksend", 12, 5, 0},        {"poll", 14, 7, 0},          {"flush", 4, 5, 0},
    {"release", 7, 3, 0},       {"stale", 4, 3, F_STALE},    {"double", 2, 3, F_DOUBLE},
    {"wrong-thread", 4, 1, F_WRONG}, {"foreign-close", 1, 6, F_FCLOSE}, {"start", 1, 8, F_START},
    {"drain", 1, 5, F_DRAIN},
    {"release-bulk", 4, 3, 0},   {"rx-burst", 10, 7, F_PULL},
};

/* Draw the length and destination of a send. */
static void mm_pick_send(mm *m, mm_rng *r, uint32_t cap, int *dest, int *kind, uint32_t *len) {
  uint32_t x = mm_below(r, 100);
  *kind = RK_NORMAL;
  *dest = mm_chance(r, 50) ? TO_PORT : TO_K;
  if (x < 15 && (m->feat & F_EMPTY)) {
    *len = 0;
  } else if (x < 30 && (m->feat & F_NEARMAX)) {
    *kind = RK_NEARMAX;
    *len = *dest == TO_PORT ? m->limit : cap;
  } else {
    /* No oversize sends from the port to itself: a slot (cap) is all a receive can take once the
     * port has left multishot receive (after empty datagrams), so lengths between the multishot
     * limit and the slot may be delivered whole or counted as cut.  Oversize datagrams come from
     * the kernel socket, longer than a whole slot. */
    uint32_t hi = *dest == TO_PORT ? m->limit : cap;
    *len = mm_range(r, TT_HDR, hi < 1500 ? hi : 1500);
  }
  if (*len > cap) *len = cap;
  if (*dest == TO_PORT && m->port_pending >= MM_MAX_PORT_PENDING) *dest = TO_K;
  if (*dest == TO_K && *kind == RK_NEARMAX) *len = cap;
}

/* An acquired packet to send: one the model holds, or a new one.  -1 if none could be had. */
static int mm_get_acquired(mm *m, mm_rng *r, const char *what) {
  int i = mm_pick_held(m, r, 'A');
  if (i >= 0 && mm_chance(r, 70)) return i;
  if (m->nheld >= MM_MAX_HELD - 1) return i;
  mior_pkt p;
  int rc = mior_tx_acquire(m->port, &p);
  mm_hist(m, "%s: mior_tx_acquire = %d", what, rc);
  if (rc == -EAGAIN) return i;
  MM_EXPECT(m, 5, rc, 0, "%s: mior_tx_acquire", what);
  mm_hold_acquired(m, &p, r, "mior_tx_acquire");
  return (int)m->nheld - 1;
}

static void mm_release_one(mm *m, mm_rng *r, uint32_t i, int allow_helper, const char *what) {
  mm_held *h = &m->held[i];
  mm_verify_held(m, h, what);
  if (allow_helper && m->helper_up && (m->feat & F_HELPERREL) && mm_chance(r, 50)) {
    mm_req rq;
    memset(&rq, 0, sizeof rq);
    rq.type = RQ_RELEASE;
    rq.pkt = h->pkt;
    rq.hid = h->id;
    rq.expect = 0;
    h->pending = 1;
    m->npending++;
    mm_submit(m, &rq);
    mm_hist(m, "%s: release #%llu (%c) queued on the helper", what, (unsigned long long)h->id, h->kind);
    return;
  }
  mior_pkt copy = h->pkt;
  int rc = mior_pkt_release(&copy);
  mm_hist(m, "%s: mior_pkt_release(#%llu %c) = %d", what, (unsigned long long)h->id, h->kind, rc);
  MM_EXPECT(m, mm_suspect(m) == 5 ? 3 : mm_suspect(m), rc, 0,
            "%s: mior_pkt_release of %s packet #%llu the application holds", what,
            h->kind == 'K' ? "kept" : "acquired", (unsigned long long)h->id);
  mm_ghost(m, &copy);
  mm_unhold(m, i);
}

/* mior_pkt_release_bulk of the held packets ids[0..k) (k <= MM_BULK), queued on the helper
 * thread while the driver goes on: the packets are the application's until it returns, and the
 * driver's polls take their slots back from the port's return list meanwhile. */
static void mm_bulk_on_helper(mm *m, const uint64_t *ids, uint32_t k, const char *what) {
  mm_req rq;
  memset(&rq, 0, sizeof rq);
  rq.type = RQ_BULK;
  rq.nbulk = k;
  for (uint32_t i = 0; i < k; i++) {
    mm_held *h = &m->held[mm_find_held(m, ids[i])];
    rq.bulk[i] = h->pkt;
    rq.bulk_id[i] = ids[i];
    h->pending = 1;
    m->npending++;
  }
  mm_submit(m, &rq);
  mm_hist(m, "%s: mior_pkt_release_bulk(%u) queued on the helper", what, k);
}

/* mior_pkt_release_bulk of the held packets ids[0..k): on the driver (0, and all are the port's
 * again) or, with F_HELPERREL, queued on the helper. */
static void mm_bulk_ids(mm *m, mm_rng *r, const uint64_t *ids, uint32_t k, const char *what) {
  if (m->helper_up && (m->feat & F_HELPERREL) && mm_chance(r, 40)) {
    mm_bulk_on_helper(m, ids, k, what);
    return;
  }
  mior_pkt pk[MM_BULK];
  memset(pk, 0, sizeof pk);
  for (uint32_t i = 0; i < k; i++) pk[i] = m->held[mm_find_held(m, ids[i])].pkt;
  int rc = mior_pkt_release_bulk(pk, k);
  mm_hist(m, "%s: mior_pkt_release_bulk(%u) = %d", what, k, rc);
  MM_EXPECT(m, 3, rc, 0, "%s: mior_pkt_release_bulk of %u packets the application holds", what, k);
  for (uint32_t i = 0; i < k; i++) {
    mm_ghost(m, &pk[i]);
    mm_unhold(m, (uint32_t)mm_find_held(m, ids[i]));
  }
}

/* mior_pkt_release_bulk of up to 16 held packets, on the driver or (F_HELPERREL) queued on the
 * helper: 0 and all released; or, on the driver, with one of them given twice, -EINVAL and every
 * one still held (all or nothing). */
static void mm_bulk_release(mm *m, mm_rng *r) {
  mior_pkt pk[MM_BULK + 1];
  uint64_t ids[MM_BULK];
  uint32_t idx[MM_BULK], k = 0, want = 1 + mm_below(r, MM_BULK);
  for (uint32_t j = 0; j < m->nheld && k < want; j++) {
    if (m->held[j].pending) continue;
    mm_verify_held(m, &m->held[j], "before a bulk release");
    idx[k] = j;
    ids[k] = m->held[j].id;
    pk[k++] = m->held[j].pkt;
  }
  if (k == 0) return;
  if (mm_chance(r, 20)) {
    pk[k] = pk[mm_below(r, k)];
    int rc = mior_pkt_release_bulk(pk, k + 1);
    mm_hist(m, "mior_pkt_release_bulk(%u with a duplicate) = %d", k + 1, rc);
    MM_EXPECT(m, 3, rc, -EINVAL, "mior_pkt_release_bulk with one packet twice");
    for (uint32_t i = 0; i < k; i++) mm_verify_held(m, &m->held[idx[i]], "after a refused bulk release");
    return;
  }
  mm_bulk_ids(m, r, ids, k, "release-bulk");
}

static void mm_release_all(mm *m, mm_rng *r, int allow_helper, const char *what) {
  while (m->nheld > m->npending) {
    int i = mm_pick_held(m, r, 0);
    if (i < 0) break;
    mm_release_one(m, r, (uint32_t)i, allow_helper, what);
  }
  mm_helper_sync(m);
}

/* A stale release: an old copy (ideally of a slot someone holds again) must get -EINVAL. */
static void mm_stale_release(mm *m, mm_rng *r, int use_helper) {
  uint32_t n = m->nghosts < MM_GHOSTS ? m->nghosts : MM_GHOSTS;
  if (n == 0) return;
  int pick = -1, owner = -1;
  uint32_t start = mm_below(r, n);
  for (uint32_t j = 0; j < n && pick < 0; j++) {
    uint32_t g = (start + j) % n;
    for (uint32_t i = 0; i < m->nheld; i++) {
      if (m->held[i].pending || mm_key(m, m->held[i].pkt.data) != mm_key(m, m->ghosts[g].data)) continue;
      pick = (int)g;
      owner = (int)i;
      break;
    }
  }
  if (pick < 0) pick = (int)start;
  mior_pkt stale = m->ghosts[pick];
  m->suspects |= 1u << 3;
  m->rep->stale++;
  char ownerdesc[96] = "its slot is not held by the application";
  if (owner >= 0)
    snprintf(ownerdesc, sizeof ownerdesc,
             "its slot was handed out again: the application holds it as #%llu (%s)",
             (unsigned long long)m->held[owner].id, m->held[owner].kind == 'K' ? "kept" : "acquired");
  if (use_helper && m->helper_up && (m->feat & F_HELPERREL)) {
    mm_req rq;
    memset(&rq, 0, sizeof rq);
    rq.type = RQ_RELEASE;
    rq.pkt = stale;
    rq.expect = -EINVAL;
    mm_submit(m, &rq);
    mm_hist(m, "stale release of an old copy (data %p; %s) queued on the helper", (void *)stale.data,
            ownerdesc);
    return;
  }
  int rc = mior_pkt_release(&stale);
  mm_hist(m, "stale: mior_pkt_release(old copy, data %p; %s) = %d", (void *)stale.data, ownerdesc, rc);
  MM_EXPECT(m, 3, rc, -EINVAL, "mior_pkt_release of a stale copy (%s)", ownerdesc);
  if (owner >= 0) {
    mm_verify_held(m, &m->held[owner], "after a stale release of its slot");
    if (mm_chance(r, 50)) mm_release_one(m, r, (uint32_t)owner, 0, "owner after stale");
  }
}

static void mm_double_release(mm *m, mm_rng *r) {
  int i = mm_pick_held(m, r, 0);
  if (i < 0) return;
  mior_pkt copy = m->held[i].pkt;
  mm_release_one(m, r, (uint32_t)i, 0, "double (first)");
  int rc = mior_pkt_release(&copy);
  mm_hist(m, "double: second mior_pkt_release of the same copy = %d", rc);
  MM_EXPECT(m, 3, rc, -EINVAL, "second mior_pkt_release of the same copy");
}

/* Calls that must come from the driving thread, made from the helper: -EBUSY, nothing done. */
static void mm_wrong_thread(mm *m, mm_rng *r) {
  mm_req rq;
  memset(&rq, 0, sizeof rq);
  uint32_t what = mm_below(r, (m->feat & F_PULL) ? 5 : 4);
  m->suspects |= 1u << 1;
  m->rep->wrong++;
  if (what == 3) {
    int i = mm_get_acquired(m, r, "wrong-thread send");
    if (i < 0) return;
    mm_held *h = &m->held[i];
    rq.type = RQ_SEND;
    rq.pkt = h->pkt;
    rq.len = mm_range(r, TT_HDR, h->pkt.cap < 300 ? h->pkt.cap : 300);
    uint32_t seq = mm_rec_new(m, TO_K, RK_FORBIDDEN, FROM_PORT, rq.len);
    tt_fill(rq.pkt.data, rq.len, seq);
    rq.dst = m->kaddr;
    uint64_t id = h->id;
    m->wrong_call = 1;
    int rc = mm_helper_call(m, &rq, 1);
    m->wrong_call = 0;
    mm_hist(m, "wrong thread: mior_tx_send(#%llu, payload #%u, len %u) = %d", (unsigned long long)id, seq,
            rq.len, rc);
    MM_EXPECT(m, 1, rc, -EBUSY, "mior_tx_send from a thread that is not the port's%s%s",
              *rq.err ? ": " : "", rq.err);
    /* Refused, but the slot is the port's now: user_held drops by one. */
    i = mm_find_held(m, id);
    mm_ghost(m, &m->held[i].pkt);
    mm_unhold(m, (uint32_t)i);
    mm_helper_sync(m);
    mior_port_stats st = mm_stats(m);
    if (st.user_held != m->nheld)
      mm_fail(m, 1, "after a refused wrong-thread mior_tx_send stats.user_held is %u, the application "
              "holds %u (the port takes the slot back)", st.user_held, m->nheld);
    return;
  }
  rq.type = what == 0 ? RQ_POLL : what == 1 ? RQ_ACQUIRE : what == 4 ? RQ_RXBURST : RQ_FLUSH;
  m->wrong_call = 1;
  int rc = mm_helper_call(m, &rq, 1);
  m->wrong_call = 0;
  mm_hist(m, "wrong thread: %s = %d", mm_rq_name[rq.type], rc);
  if (rq.type == RQ_ACQUIRE && rc == 0)
    mm_fail(m, 1, "mior_tx_acquire from a thread that is not the port's handed out a slot (data %p), "
            "expected -EBUSY", (void *)rq.pkt.data);
  if (rq.type == RQ_RXBURST && rc > 0)
    mm_fail(m, 1, "mior_rx_burst from a thread that is not the port's handed out a packet (data %p), "
            "expected -EBUSY", (void *)rq.pkt.data);
  MM_EXPECT(m, 1, rc, -EBUSY, "%s from a thread that is not the port's%s%s", mm_rq_name[rq.type],
            *rq.err ? ": " : "", rq.err);
}

/* Close from the helper while the driver lives: -EBUSY, nothing freed, the port keeps working. */
static void mm_foreign_close(mm *m, mm_rng *r) {
  if (!m->probe) {
    if (mm_get_acquired(m, r, "foreign-close probe") < 0) return;
  }
  m->suspects |= 1u << 6;
  mm_req rq;
  memset(&rq, 0, sizeof rq);
  rq.type = RQ_CLOSE;
  rq.t = m->t;
  int rc = mm_helper_call(m, &rq, 6);
  mm_hist(m, "foreign close: mior_transport_close from the helper thread = %d (holding %u)", rc, m->nheld);
  if (rc == 0) {
    m->t = NULL;
    mm_fail(m, 6, "mior_transport_close from another thread while the driving thread is alive returned 0 "
            "(and freed the transport under its driver); expected -EBUSY");
  }
  MM_EXPECT(m, 6, rc, -EBUSY, "mior_transport_close from another thread while the driver lives%s%s",
            *rq.err ? ": " : "", rq.err);
  if (!mm_mapped(m->probe))
    mm_fail(m, 6, "mior_transport_close from another thread returned -EBUSY but unmapped the pool "
            "(it must free nothing)");
  for (uint32_t i = 0; i < m->nheld; i++)
    if (!m->held[i].pending) mm_verify_held(m, &m->held[i], "after a refused foreign close");
  mior_port_stats st = mm_stats(m);
  if (st.user_held + m->npending < m->nheld || st.user_held > m->nheld)
    mm_fail(m, 6, "after a refused foreign close stats.user_held is %u, the application holds %u",
            st.user_held, m->nheld);
  rc = mior_port_poll(m->port, 0, 0);
  if (rc < 0) MM_EXPECT(m, 6, rc, 0, "mior_port_poll after a refused foreign close");
}

static void mm_poll_op(mm *m, mm_rng *r) {
  static const uint32_t budgets[] = {0, 1, 4, 64};
  uint32_t budget = budgets[mm_below(r, 4)];
  int64_t timeout;
  uint32_t kind = mm_below(r, 100);
  mior_port_stats st = mm_stats(m);
  /* Infinite only when a datagram is sure to come: the kernel socket sends one right before, the
   * kernel dropped nothing, and the application leaves the receive side plenty of slots. */
  if (kind < 15 && (m->feat & F_INFPOLL) && st.rx_drop_kernel == 0 && m->nheld <= m->buf_count / 8 &&
      m->port_pending < MM_MAX_PORT_PENDING) {
    mm_ksend(m, RK_NORMAL, mm_range(r, TT_HDR, 200)); /* the datagram that is on its way */
    timeout = -1;
  } else if (kind < 55)
    timeout = 0;
  else
    timeout = mm_range(r, 1, 2000);
  uint32_t before = m->consume_calls;
  int64_t t0 = tt_now_us();
  int rc = mior_port_poll(m->port, budget, timeout);
  uint32_t ran = m->consume_calls - before;
  mm_hist(m, "mior_port_poll(budget %u, timeout %lld us) = %d in %lld us (%u pending)", budget,
          (long long)timeout, rc, (long long)(tt_now_us() - t0), (unsigned)m->port_pending);
  if (rc == -EINTR || rc == -EAGAIN) return;
  if (rc < 0) MM_EXPECT(m, 7, rc, 0, "mior_port_poll(budget %u, timeout %lld)", budget, (long long)timeout);
  if ((uint32_t)rc != ran)
    mm_fail(m, 7, "mior_port_poll returned %d but consume ran %u times", rc, ran);
  if (budget && (uint32_t)rc > budget)
    mm_fail(m, 7, "mior_port_poll(budget %u) delivered %d packets", budget, rc);
}

/* mior_rx_burst on the driver, beside consume (which it must not call): each packet is checked as
 * consume checks its own, then the application holds it, or releases it at once, or echoes it in
 * place, or gives it back with the others of its burst in one mior_pkt_release_bulk (on the
 * driver, or on the helper while the driver goes on). */
static void mm_rx_burst_op(mm *m, mm_rng *r) {
  static const uint32_t maxes[] = {1, 4, 16, 64};
  uint32_t room = m->hold_cap > m->nheld ? m->hold_cap - m->nheld : 0, max = maxes[mm_below(r, 4)];
  if (max > room) max = room;
  if (max == 0) return;
  mior_pkt pk[64];
  uint32_t before = m->consume_calls;
  int n = mior_rx_burst(m->port, pk, max);
  mm_hist(m, "mior_rx_burst(max %u) = %d (%u pending)", max, n, (unsigned)m->port_pending);
  if (n < 0) MM_EXPECT(m, 7, n, 0, "mior_rx_burst(max %u)", max);
  if ((uint32_t)n > max) mm_fail(m, 7, "mior_rx_burst(max %u) returned %d packets", max, n);
  if (m->consume_calls != before)
    mm_fail(m, 7, "mior_rx_burst ran consume %u times: its packets go to the caller's array only",
            m->consume_calls - before);
  uint64_t bulk[MM_BULK];
  uint32_t nb = 0;
  for (int i = 0; i < n; i++) {
    uint32_t seq;
    uint64_t key;
    int from_self = mm_delivered(m, &pk[i], "mior_rx_burst", &seq, &key);
    mm_held *h = mm_hold(m, &pk[i], 'K', seq, pk[i].len);
    mm_rng f = mm_rng_for(m->seed, 0xB0B0, key);
    uint32_t x = mm_below(&f, 100);
    if (x < 35) {
      m->rep->keeps++;
    } else if (x < 55) {
      mm_release_one(m, &f, m->nheld - 1, 1, "rx_burst");
    } else if (x < 70 && (m->feat & F_ECHO) && m->port_pending < MM_MAX_PORT_PENDING &&
               m->k_pending < MM_MAX_K_PENDING) {
      int dest = from_self ? TO_PORT : TO_K;
      uint32_t hi = dest == TO_PORT && h->pkt.cap > m->limit ? m->limit : h->pkt.cap;
      mior_pkt copy = h->pkt;
      mior_addr src = pk[i].src;
      mm_unhold(m, m->nheld - 1);
      mm_port_send(m, &copy, mm_range(&f, TT_HDR, hi), dest, RK_ECHO, &src, 7, "rx_burst: echo in place");
      mm_ghost(m, &copy);
      m->rep->echoes++;
    } else if (nb < MM_BULK) {
      bulk[nb++] = h->id;
    }
  }
  if (nb) mm_bulk_ids(m, r, bulk, nb, "rx_burst");
}

static void mm_step(mm *m, mm_rng *r, int op) {
  switch (op) {
  case OP_ACQUIRE: {
    if (m->nheld >= m->hold_cap) return;
    mior_pkt p;
    int rc = mior_tx_acquire(m->port, &p);
    mm_hist(m, "mior_tx_acquire = %d", rc);
    if (rc == -EAGAIN) return;
    MM_EXPECT(m, 5, rc, 0, "mior_tx_acquire");
    mm_hold_acquired(m, &p, r, "mior_tx_acquire");
    return;
  }
  case OP_SEND:
  case OP_BURST: {
    uint32_t n = op == OP_SEND ? 1 : mm_range(r, 2, 16);
    for (uint32_t k = 0; k < n; k++) {
      if (m->k_pending >= MM_MAX_K_PENDING) return;
      int i = mm_get_acquired(m, r, mm_ops[op].name);
      if (i < 0) return;
      mm_held *h = &m->held[i];
      mm_verify_held(m, h, "before sending it");
      int dest, kind;
      uint32_t len;
      mm_pick_send(m, r, h->pkt.cap, &dest, &kind, &len);
      mior_pkt copy = h->pkt;
      mm_unhold(m, (uint32_t)i);
      mm_port_send(m, &copy, len, dest, kind, NULL, 5, mm_ops[op].name);
      mm_ghost(m, &copy);
    }
    return;
  }
  case OP_KSEND: {
    uint32_t n = mm_range(r, 1, 4);
    for (uint32_t k = 0; k < n; k++) {
      if (m->port_pending >= MM_MAX_PORT_PENDING) return;
      uint32_t x = mm_below(r, 100);
      if (x < 12 && (m->feat & F_KEMPTY)) {
        mm_ksend(m, RK_NORMAL, 0);
      } else if (x < 24 && (m->feat & F_NEARMAX)) {
        mm_ksend(m, RK_NEARMAX, m->limit);
      } else if (x < 40 && (m->feat & F_OVERSIZE)) {
        uint32_t y = mm_below(r, 10), len;
        if (y < 3) len = m->buf_size + 1;
        else if (y < 9) len = mm_range(r, m->buf_size + 1, m->buf_size + 2048);
        else len = mm_range(r, 9000, 65000);
        mm_ksend(m, RK_OVERSIZE, len);
      } else {
        mm_ksend(m, RK_NORMAL, mm_range(r, TT_HDR, m->limit < 1400 ? m->limit : 1400));
      }
    }
    return;
  }
  case OP_POLL: mm_poll_op(m, r); return;
  case OP_FLUSH: {
    int rc = mior_tx_flush(m->port);
    mm_hist(m, "mior_tx_flush = %d", rc);
    if (rc != -EAGAIN) MM_EXPECT(m, 5, rc, 0, "mior_tx_flush");
    return;
  }
  case OP_RELEASE: {
    int i = mm_pick_held(m, r, 0);
    if (i >= 0) mm_release_one(m, r, (uint32_t)i, 1, "release");
    return;
  }
  case OP_STALE: mm_stale_release(m, r, mm_chance(r, 30)); return;
  case OP_DOUBLE: mm_double_release(m, r); return;
  case OP_WRONG: mm_wrong_thread(m, r); return;
  case OP_FCLOSE: mm_foreign_close(m, r); return;
  case OP_START: {
    if (m->backend != MIOR_BACKEND_URING) return;
    m->suspects |= 1u << 8;
    int rc = mior_transport_start(m->t);
    mm_hist(m, "mior_transport_start on the hand-driven port = %d", rc);
    MM_EXPECT(m, 8, rc, -EBUSY, "mior_transport_start on an io_uring port already driven by hand");
    return;
  }
  case OP_DRAIN: mm_drain(m, "mid-sequence drain"); return;
  case OP_BULK: mm_bulk_release(m, r); return;
  case OP_RXBURST: mm_rx_burst_op(m, r); return;
  }
}

static int mm_draw_op(const mm *m, mm_rng *r, int nops, const int *weights, const uint32_t *feats) {
  int total = 0;
  for (int i = 0; i < nops; i++)
    if (!feats[i] || (m->feat & feats[i])) total += weights[i];
  int x = (int)mm_below(r, (uint32_t)total);
  for (int i = 0; i < nops; i++) {
    if (feats[i] && !(m->feat & feats[i])) continue;
    if (x < weights[i]) return i;
    x -= weights[i];
  }
  return 0;
}

/* --- set-up ----------------------------------------------------------------------------------- */

static void mm_open(mm *m) {
  mior_options o = tt_opts(m->backend);
  o.buf_count = m->buf_count;
  o.buf_size = m->buf_size;
  o.batch = m->batch;
  o.flags = m->flags;
  mior_receiver rcv = {mm_consume, mm_flush_cb, m};
  const char *ep = m->v6 ? "udp://[::1]:0" : "udp://127.0.0.1:0";
  int rc = mior_transport_open(&m->t, ep, &o, &rcv);
  if (rc < 0)
    mm_fail(m, 0, "mior_transport_open(%s) -> %d (%s) %s", ep, rc, mior_strerror(rc), mior_last_error());
  m->port = mior_transport_port(m->t, 0);
  rc = mior_port_local_addr(m->port, &m->paddr);
  MM_EXPECT(m, 0, rc, 0, "mior_port_local_addr");
  m->psa_len = mm_to_sa(&m->paddr, &m->psa);
  mior_port_stats st = mm_stats(m);
  /* The largest datagram a slot takes: the whole slot, less the header a multishot receive puts
   * in front of the payload (struct io_uring_recvmsg_out and the sender's address). */
  m->limit = m->buf_size;
  if (st.features & MIOR_FEAT_MULTISHOT_RX) m->limit -= m->v6 ? 44 : 32;
  char feats[200] = "";
  mior_features_format(st.features, feats, sizeof feats);
  snprintf(m->rep->config, sizeof m->rep->config,
           "buf_count %u buf_size %u (largest datagram %u) batch %u flags 0x%x features %s", m->buf_count,
           m->buf_size, m->limit, m->batch, m->flags, feats);
  mm_ksock(m);
  char ab[64], kb[64];
  mm_hist(m, "open %s: port %s, kernel socket %s; %s", ep, mm_astr(&m->paddr, ab, sizeof ab),
          mm_astr(&m->kaddr, kb, sizeof kb), m->rep->config);
}

/* A transport never driven, closed from another thread: 0, and its address is free again. */
static void mm_never_driven_close(mm *m) {
  mior_options o = tt_opts(m->backend);
  o.buf_count = m->buf_count;
  o.buf_size = m->buf_size;
  mior_transport *t2 = NULL;
  const char *ep = m->v6 ? "udp://[::1]:0" : "udp://127.0.0.1:0";
  int rc = mior_transport_open(&t2, ep, &o, NULL);
  MM_EXPECT(m, 0, rc, 0, "mior_transport_open(%s) (second transport)", ep);
  mior_addr a;
  rc = mior_port_local_addr(mior_transport_port(t2, 0), &a);
  MM_EXPECT(m, 0, rc, 0, "mior_port_local_addr");
  mm_req rq;
  memset(&rq, 0, sizeof rq);
  rq.type = RQ_CLOSE;
  rq.t = t2;
  mm_begin_op(m, "never-driven close", 6, MM_STEP_LIMIT_MS);
  rc = mm_helper_call(m, &rq, 6);
  mm_hist(m, "never-driven transport closed from the helper thread = %d", rc);
  MM_EXPECT(m, 6, rc, 0, "mior_transport_close from another thread of a transport never driven%s%s",
            *rq.err ? ": " : "", rq.err);
  mm_check_rebind(m, &a, "closing a never-driven transport from another thread");
  mm_end_op(m);
}

static void *mm_watchdog_main(void *arg) {
  mm *m = arg;
  while (!atomic_load(&m->wd_stop)) {
    usleep(50000);
    long long t0 = atomic_load(&m->step_t0_us);
    int lim = atomic_load(&m->step_limit_ms);
    if (t0 && tt_now_us() - t0 > (long long)lim * 1000)
      mm_fail(m, m->rep->cur_item, "hang: operation '%s' did not finish within %d ms (pending deliverable "
              "datagrams %llu, application holds %u)", m->rep->cur_op, lim,
              (unsigned long long)m->port_pending, m->nheld);
  }
  return NULL;
}

/* --- hand-driven sequence --------------------------------------------------------------------- */

static void *mm_driver_main(void *arg) {
  mm *m = arg;
  m->driver_tid = pthread_self();
  mm_rng r0 = mm_rng_for(m->seed, 0xD0, 0);
  /* Step 0: bind the port to this thread. */
  mm_begin_op(m, "first poll", 7, MM_STEP_LIMIT_MS);
  int rc = mior_port_poll(m->port, 0, 0);
  mm_hist(m, "first mior_port_poll on the driver thread = %d", rc);
  if (rc < 0) MM_EXPECT(m, 7, rc, 0, "first mior_port_poll");
  mm_end_op(m);

  int weights[OP_N];
  uint32_t feats[OP_N];
  for (int i = 0; i < OP_N; i++) {
    weights[i] = mm_ops[i].weight;
    feats[i] = mm_ops[i].feat;
  }
  for (m->step = 1; m->step <= m->steps_max && tt_now_us() < m->deadline_us; m->step++) {
    mm_rng r = mm_rng_for(m->seed, 0x57E9, m->step);
    int op = mm_draw_op(m, &r, OP_N, weights, feats);
    m->suspects = 0;
    mm_begin_op(m, mm_ops[op].name, mm_ops[op].item,
                op == OP_DRAIN ? MM_SETTLE_MS + MM_STEP_LIMIT_MS : MM_STEP_LIMIT_MS);
    mm_step(m, &r, op);
    mm_invariants(m, &r);
    mm_end_op(m);
    m->rep->steps_done = m->step;
  }

  /* The end: drain, check the counts, give everything back, close as the variant says. */
  mm_begin_op(m, "final drain", 5, MM_SETTLE_MS + MM_STEP_LIMIT_MS);
  mm_drain(m, "final drain");
  mm_end_op(m);
  int variant = m->close_variant;
  mm_helper_sync(m);
  if (variant == 2 && m->nheld == 0 && mm_get_acquired(m, &r0, "held at close") < 0) variant = 0;
  if (variant == 2) {
    mm_begin_op(m, "close while holding", 6, MM_STEP_LIMIT_MS);
    const void *probe = m->held[0].pkt.data;
    rc = mior_transport_close(m->t);
    mm_hist(m, "mior_transport_close on the driver while holding %u packets = %d", m->nheld, rc);
    MM_EXPECT(m, 6, rc, -EBUSY, "mior_transport_close while the application holds %u packets", m->nheld);
    if (!mm_mapped(probe))
      mm_fail(m, 6, "mior_transport_close returned -EBUSY (packets held) but freed the pool: the held "
              "packets' memory is gone; it must free nothing");
    for (uint32_t i = 0; i < m->nheld; i++) mm_verify_held(m, &m->held[i], "after a refused close");
    mior_port_stats st = mm_stats(m);
    if (st.user_held != m->nheld)
      mm_fail(m, 6, "after a refused close stats.user_held is %u, the application holds %u", st.user_held,
              m->nheld);
    mm_release_all(m, &r0, 1, "release after refused close");
    rc = mior_transport_close(m->t);
    mm_hist(m, "second mior_transport_close = %d", rc);
    MM_EXPECT(m, 6, rc, 0, "mior_transport_close after releasing every held packet");
    m->t = NULL;
    mm_check_rebind(m, &m->paddr, "a close on the driving thread");
    mm_end_op(m);
    return NULL;
  }
  mm_begin_op(m, "release all", 5, MM_STEP_LIMIT_MS);
  mm_release_all(m, &r0, 1, "release at the end");
  mior_port_stats st = mm_stats(m);
  if (st.user_held != 0)
    mm_fail(m, 5, "stats.user_held is %u after the application released everything", st.user_held);
  if (st.tx_in_flight != 0)
    mm_fail(m, 5, "stats.tx_in_flight is %u after the final drain", st.tx_in_flight);
  mm_end_op(m);
  if (variant == 0) {
    mm_begin_op(m, "close on the driver", 6, MM_STEP_LIMIT_MS);
    rc = mior_transport_close(m->t);
    mm_hist(m, "mior_transport_close on the driving thread = %d", rc);
    MM_EXPECT(m, 6, rc, 0,
              "mior_transport_close on the driving thread with nothing held (-EBUSY: a slot leaked)");
    m->t = NULL;
    mm_check_rebind(m, &m->paddr, "a close on the driving thread");
    mm_end_op(m);
  }
  return NULL; /* variant 1: the main thread closes after joining this one */
}

static void mm_run_manual(mm *m) {
  mm_open(m);
  mm_helper_start(m);
  if (m->never_driven_close) mm_never_driven_close(m);
  pthread_t th;
  if (pthread_create(&th, NULL, mm_driver_main, m) != 0) mm_fail(m, 0, "pthread_create");
  pthread_join(th, NULL);
  if (m->t) {
    m->step++;
    mm_begin_op(m, "close after join", 6, MM_STEP_LIMIT_MS);
    int rc = mior_transport_close(m->t);
    mm_hist(m, "mior_transport_close on the main thread after the driver was joined = %d", rc);
    MM_EXPECT(m, 6, rc, 0, "mior_transport_close from another thread after the driving thread exited");
    m->t = NULL;
    mm_check_rebind(m, &m->paddr, "a close after the driving thread was joined");
    mm_end_op(m);
  }
  mm_helper_stop(m);
}

/* --- started sequence ------------------------------------------------------------------------- */

enum {
  SOP_KSEND,
  SOP_SLEEP,
  SOP_RELEASE,
  SOP_STALE,
  SOP_DOUBLE,
  SOP_WRONG,
  SOP_STOPSTART,
  SOP_DRAIN,
  SOP_N
};
static const struct {
  const char *name;
  int weight, item;
  uint32_t feat;
} mm_sops[SOP_N] = {
    {"ksend", 14, 5, 0},
    {"sleep", 10, 8, 0},
    {"release", 6, 3, 0},
    {"stale", 3, 3, F_STALE},
    {"double", 2, 3, F_DOUBLE},
    {"wrong-thread", 3, 1, F_WRONG},
    {"stop-start", 1, 8, F_STOPSTART},
    {"drain", 1, 5, F_DRAIN},
};

/* Wait (bounded) until every datagram is accounted for, reading the counters while the port's
 * thread runs (a snapshot: good enough to wait on; the exact check comes after a stop). */
static void mm_started_settle(mm *m) {
  int64_t end = tt_now_ms() + MM_SETTLE_MS;
  for (;;) {
    pthread_mutex_lock(&m->mu);
    mm_kdrain(m);
    mior_port_stats st = mm_stats(m);
    int done = mm_settled(m, &st);
    if (!done && tt_now_ms() > end) mm_hist_unsettled(m, &st, "settle while started");
    /* A snapshot, but the counters only grow and a datagram being delivered is not yet counted
     * anywhere (consume waits for the model's lock): delivered + drops == sent is final. */
    if (done) mm_resolve_drops(m, &st);
    pthread_mutex_unlock(&m->mu);
    if (done || tt_now_ms() > end) return;
    usleep(1000);
  }
}

/* After a stop the counters are exact. */
static void mm_stopped_checks(mm *m, int full, const char *when) {
  pthread_mutex_lock(&m->mu);
  mm_kdrain(m);
  mior_port_stats st = mm_stats(m);
  if (st.user_held != m->nheld)
    mm_fail(m, 8, "%s: stats.user_held is %u, the application holds %u", when, st.user_held, m->nheld);
  if (st.pool_in_use < m->nheld || st.pool_in_use > m->buf_count)
    mm_fail(m, 8, "%s: stats.pool_in_use is %u with %u held (pool of %u)", when, st.pool_in_use, m->nheld,
            m->buf_count);
  if (st.tx_in_flight != 0) mm_fail(m, 8, "%s: stats.tx_in_flight is %u", when, st.tx_in_flight);
  uint64_t acc = m->port_delivered + st.rx_drop_truncated + st.rx_drop_kernel + st.rx_errors;
  if (acc > m->port_sent)
    mm_fail(m, 5, "%s: %llu datagrams accounted for, %llu sent", when, (unsigned long long)acc,
            (unsigned long long)m->port_sent);
  for (uint32_t i = 0; i < m->nheld; i++) mm_verify_held(m, &m->held[i], when);
  mm_resolve_drops(m, &st);
  mm_hist(m, "%s: user_held %u, pool_in_use %u, delivered %llu trunc %llu of %llu sent", when, st.user_held,
          st.pool_in_use, (unsigned long long)m->port_delivered, (unsigned long long)st.rx_drop_truncated,
          (unsigned long long)m->port_sent);
  if (full) mm_final_counts(m, &st, when);
  pthread_mutex_unlock(&m->mu);
}

/* Release from the application's thread (any thread may release). */
static void mm_started_release(mm *m, mm_rng *r, int twice) {
  pthread_mutex_lock(&m->mu);
  int i = mm_pick_held(m, r, 0);
  if (i < 0) {
    pthread_mutex_unlock(&m->mu);
    return;
  }
  mm_held h = m->held[i];
  mm_verify_held(m, &h, "before release");
  mm_unhold(m, (uint32_t)i);
  m->releasing++;
  pthread_mutex_unlock(&m->mu);
  int rc = mior_pkt_release(&h.pkt);
  pthread_mutex_lock(&m->mu);
  m->releasing--;
  pthread_mutex_unlock(&m->mu);
  mm_hist(m, "mior_pkt_release(#%llu %c) from the application thread = %d", (unsigned long long)h.id,
          h.kind, rc);
  MM_EXPECT(m, 3, rc, 0, "mior_pkt_release of %s packet #%llu from the application thread",
            h.kind == 'K' ? "kept" : "acquired", (unsigned long long)h.id);
  if (twice) {
    rc = mior_pkt_release(&h.pkt);
    mm_hist(m, "second mior_pkt_release of the same copy = %d", rc);
    MM_EXPECT(m, 3, rc, -EINVAL, "second mior_pkt_release of the same copy");
  }
  pthread_mutex_lock(&m->mu);
  mm_ghost(m, &h.pkt);
  pthread_mutex_unlock(&m->mu);
}

static void mm_started_stale(mm *m, mm_rng *r) {
  pthread_mutex_lock(&m->mu);
  uint32_t n = m->nghosts < MM_GHOSTS ? m->nghosts : MM_GHOSTS;
  if (n == 0) {
    pthread_mutex_unlock(&m->mu);
    return;
  }
  int pick = -1;
  uint64_t owner = 0;
  uint32_t start = mm_below(r, n);
  for (uint32_t j = 0; j < n && pick < 0; j++) {
    uint32_t g = (start + j) % n;
    for (uint32_t i = 0; i < m->nheld; i++)
      if (mm_key(m, m->held[i].pkt.data) == mm_key(m, m->ghosts[g].data)) {
        pick = (int)g;
        owner = m->held[i].id;
        break;
      }
  }
  if (pick < 0) pick = (int)start;
  mior_pkt stale = m->ghosts[pick];
  m->rep->stale++;
  pthread_mutex_unlock(&m->mu);
  int rc = mior_pkt_release(&stale);
  mm_hist(m, "stale: mior_pkt_release(old copy, data %p%s) = %d", (void *)stale.data,
          owner ? "; its slot is held again" : "", rc);
  MM_EXPECT(m, 3, rc, -EINVAL, "mior_pkt_release of a stale copy%s",
            owner ? " whose slot the application holds again" : "");
  if (owner) {
    pthread_mutex_lock(&m->mu);
    int i = mm_find_held(m, owner);
    if (i >= 0) mm_verify_held(m, &m->held[i], "after a stale release of its slot");
    pthread_mutex_unlock(&m->mu);
  }
}

static void mm_started_wrong(mm *m, mm_rng *r) {
  uint32_t what = mm_below(r, (m->feat & F_PULL) ? 5 : 4);
  m->rep->wrong++;
  int rc;
  mior_pkt p;
  memset(&p, 0, sizeof p);
  if (what == 3) {
    pthread_mutex_lock(&m->mu);
    int i = mm_pick_held(m, r, 'A');
    if (i < 0) {
      pthread_mutex_unlock(&m->mu);
      return;
    }
    mm_held h = m->held[i];
    mm_unhold(m, (uint32_t)i);
    uint32_t len = mm_range(r, TT_HDR, h.pkt.cap < 300 ? h.pkt.cap : 300);
    uint32_t seq = mm_rec_new(m, TO_K, RK_FORBIDDEN, FROM_PORT, len);
    tt_fill(h.pkt.data, len, seq);
    m->wrong_call = 1;
    m->releasing++;
    pthread_mutex_unlock(&m->mu);
    rc = mior_tx_send(m->port, &h.pkt, len, &m->kaddr);
    pthread_mutex_lock(&m->mu);
    m->wrong_call = 0;
    m->releasing--;
    pthread_mutex_unlock(&m->mu);
    mm_hist(m, "wrong thread: mior_tx_send(#%llu, payload #%u) from the application thread = %d",
            (unsigned long long)h.id, seq, rc);
    MM_EXPECT(m, 1, rc, -EBUSY, "mior_tx_send from the application thread while the port runs its own");
    pthread_mutex_lock(&m->mu);
    mm_ghost(m, &h.pkt);
    pthread_mutex_unlock(&m->mu);
    return;
  }
  m->wrong_call = 1;
  const char *name = what == 0   ? "mior_port_poll"
                     : what == 1 ? "mior_tx_acquire"
                     : what == 4 ? "mior_rx_burst"
                                 : "mior_tx_flush";
  rc = what == 0   ? mior_port_poll(m->port, 0, 0)
       : what == 1 ? mior_tx_acquire(m->port, &p)
       : what == 4 ? mior_rx_burst(m->port, &p, 1)
                   : mior_tx_flush(m->port);
  m->wrong_call = 0;
  mm_hist(m, "wrong thread: %s from the application thread = %d", name, rc);
  if ((what == 1 && rc == 0) || (what == 4 && rc > 0))
    mm_fail(m, 1, "%s from the application thread, while the port runs on its own thread, "
            "handed out a slot (data %p); expected -EBUSY", name, (void *)p.data);
  MM_EXPECT(m, 1, rc, -EBUSY, "%s from the application thread while the port runs on its own thread", name);
}

static void mm_started_stopstart(mm *m, mm_rng *r) {
  int hot = mm_chance(r, 50);
  if (!hot) mm_started_settle(m);
  if (hot) {
    pthread_mutex_lock(&m->mu);
    m->hot_stop_seq = m->nrecs;
    pthread_mutex_unlock(&m->mu);
  }
  int rc = mior_transport_stop(m->t);
  mm_hist(m, "mior_transport_stop (%s) = %d", hot ? "with traffic in flight" : "after a drain", rc);
  MM_EXPECT(m, 8, rc, 0, "mior_transport_stop");
  m->running = 0;
  mm_stopped_checks(m, 0, "after mior_transport_stop");
  rc = mior_transport_start(m->t);
  mm_hist(m, "restart: mior_transport_start = %d", rc);
  m->rep->restart_rc = rc;
  if (rc == 0) {
    pthread_mutex_lock(&m->mu);
    m->running = 1;
    m->rx_tid_set = 0; /* a new thread drives the port now */
    pthread_mutex_unlock(&m->mu);
    return;
  }
  if (rc != -EBUSY) MM_EXPECT(m, 8, rc, 0, "mior_transport_start after mior_transport_stop (0 or -EBUSY)");
  /* Refused: it must stay refused, and datagrams left in the socket stay there. */
  m->restart_refused = 1;
  if (hot) m->inexact = 1;
  rc = mior_transport_start(m->t);
  mm_hist(m, "restart again: mior_transport_start = %d", rc);
  MM_EXPECT(m, 8, rc, -EBUSY, "a second mior_transport_start after a refused restart");
}

static void mm_run_started(mm *m) {
  m->main_tid = pthread_self();
  mm_open(m);
  mm_rng r0 = mm_rng_for(m->seed, 0xD0, 0);
  mm_begin_op(m, "start", 8, MM_STEP_LIMIT_MS);
  int rc = mior_transport_start(m->t);
  mm_hist(m, "mior_transport_start on a port never driven = %d", rc);
  MM_EXPECT(m, 8, rc, 0, "mior_transport_start on a port never driven by hand");
  m->running = 1;
  mm_end_op(m);
  int weights[SOP_N];
  uint32_t feats[SOP_N];
  for (int i = 0; i < SOP_N; i++) {
    weights[i] = mm_sops[i].weight;
    feats[i] = mm_sops[i].feat;
  }
  for (m->step = 1; m->step <= m->steps_max && tt_now_us() < m->deadline_us; m->step++) {
    mm_rng r = mm_rng_for(m->seed, 0x57E9, m->step);
    int op = mm_draw_op(m, &r, SOP_N, weights, feats);
    mm_begin_op(m, mm_sops[op].name, mm_sops[op].item,
                op == SOP_DRAIN || op == SOP_STOPSTART ? MM_SETTLE_MS + MM_STEP_LIMIT_MS
                                                       : MM_STEP_LIMIT_MS);
    switch (op) {
    case SOP_KSEND: {
      if (!m->running) break;
      uint32_t n = mm_range(&r, 1, 6);
      pthread_mutex_lock(&m->mu);
      for (uint32_t k = 0; k < n && m->port_pending < MM_MAX_PORT_PENDING; k++) {
        uint32_t x = mm_below(&r, 100);
        if (x < 12 && (m->feat & F_KEMPTY)) mm_ksend(m, RK_NORMAL, 0);
        else if (x < 24 && (m->feat & F_NEARMAX)) mm_ksend(m, RK_NEARMAX, m->limit);
        else if (x < 40 && (m->feat & F_OVERSIZE))
          mm_ksend(m, RK_OVERSIZE, mm_range(&r, m->buf_size + 1, m->buf_size + 2048));
        else mm_ksend(m, RK_NORMAL, mm_range(&r, TT_HDR, m->limit < 1400 ? m->limit : 1400));
      }
      pthread_mutex_unlock(&m->mu);
      break;
    }
    case SOP_SLEEP:
      usleep(mm_range(&r, 0, 800));
      pthread_mutex_lock(&m->mu);
      mm_kdrain(m);
      pthread_mutex_unlock(&m->mu);
      break;
    case SOP_RELEASE: mm_started_release(m, &r, 0); break;
    case SOP_DOUBLE: mm_started_release(m, &r, 1); break;
    case SOP_STALE: mm_started_stale(m, &r); break;
    case SOP_WRONG:
      if (m->running) mm_started_wrong(m, &r);
      break;
    case SOP_STOPSTART:
      if (m->running) mm_started_stopstart(m, &r);
      break;
    case SOP_DRAIN:
      if (!m->running) break;
      mm_started_settle(m);
      pthread_mutex_lock(&m->mu);
      {
        mior_port_stats st = mm_stats(m);
        if (!mm_settled(m, &st)) {
          /* Snapshot counters; to be sure, look again after a pause before calling it a failure. */
          pthread_mutex_unlock(&m->mu);
          usleep(20000);
          pthread_mutex_lock(&m->mu);
          mm_kdrain(m);
          st = mm_stats(m);
          if (!mm_settled(m, &st)) mm_final_counts(m, &st, "drain while started");
        }
      }
      pthread_mutex_unlock(&m->mu);
      break;
    }
    mm_end_op(m);
    m->rep->steps_done = m->step;
  }

  /* The end. */
  mm_begin_op(m, "final drain", 5, MM_SETTLE_MS + MM_STEP_LIMIT_MS);
  if (m->running) mm_started_settle(m);
  mm_end_op(m);
  int variant = m->close_variant;
  if (variant == 1 && m->running) {
    /* Close while started, nothing held: the close stops and joins the port's thread itself. */
    mm_begin_op(m, "close while started", 6, MM_STEP_LIMIT_MS);
    pthread_mutex_lock(&m->mu);
    m->draining = 1;
    pthread_mutex_unlock(&m->mu);
    usleep(2000);
    while (m->nheld) mm_started_release(m, &r0, 0);
    rc = mior_transport_close(m->t);
    mm_hist(m, "mior_transport_close while started = %d", rc);
    MM_EXPECT(m, 6, rc, 0, "mior_transport_close while started, nothing held");
    m->t = NULL;
    mm_check_rebind(m, &m->paddr, "a close while started");
    mm_end_op(m);
    return;
  }
  mm_begin_op(m, "final stop", 8, MM_STEP_LIMIT_MS);
  if (m->running) {
    rc = mior_transport_stop(m->t);
    mm_hist(m, "mior_transport_stop = %d", rc);
    MM_EXPECT(m, 8, rc, 0, "mior_transport_stop");
    m->running = 0;
  }
  mm_stopped_checks(m, 1, "after the final stop");
  mm_end_op(m);
  if (variant == 2 && m->nheld > 0) {
    mm_begin_op(m, "close while holding", 6, MM_STEP_LIMIT_MS);
    const void *probe = m->held[0].pkt.data;
    rc = mior_transport_close(m->t);
    mm_hist(m, "mior_transport_close while holding %u packets = %d", m->nheld, rc);
    MM_EXPECT(m, 6, rc, -EBUSY, "mior_transport_close while the application holds %u packets", m->nheld);
    if (!mm_mapped(probe))
      mm_fail(
          m, 6,
          "mior_transport_close returned -EBUSY (packets held) but freed the pool; it must free nothing");
    mm_stopped_checks(m, 0, "after a refused close");
    mm_end_op(m);
  }
  mm_begin_op(m, "release all", 5, MM_STEP_LIMIT_MS);
  while (m->nheld) mm_started_release(m, &r0, 0);
  mior_port_stats st = mm_stats(m);
  if (st.user_held != 0) mm_fail(m, 5, "stats.user_held is %u after everything was released", st.user_held);
  mm_end_op(m);
  mm_begin_op(m, "close", 6, MM_STEP_LIMIT_MS);
  rc = mior_transport_close(m->t);
  mm_hist(m, "mior_transport_close after stop = %d", rc);
  MM_EXPECT(m, 6, rc, 0, "mior_transport_close after stop with nothing held (-EBUSY: a slot leaked)");
  m->t = NULL;
  mm_check_rebind(m, &m->paddr, "a close after the port's thread was stopped");
  mm_end_op(m);
}

/* --- one sequence ----------------------------------------------------------------------------- */

static uint32_t mm_ops_mask = F_ALL;
static int mm_swarm = 1;
static int mm_close_override = -1;

static void mm_configure(mm *m, const mm_report *rp, int64_t cap_ms) {
  mm_rng r = mm_rng_for(rp->seed, 0xCF6, 0);
  static const uint32_t counts[] = {64, 128, 256}, batches[] = {4, 16, 64};
  m->seed = rp->seed;
  m->backend = rp->backend;
  m->v6 = rp->v6;
  m->started_mode = rp->started;
  m->steps_max = rp->steps_max;
  m->buf_count = counts[mm_below(&r, 3)];
  m->buf_size = mm_chance(&r, 50) ? 1024 : 2048;
  m->batch = batches[mm_below(&r, 3)];
  int no_ms = mm_chance(&r, 25);
  m->flags = (m->backend == MIOR_BACKEND_URING && no_ms) ? MIOR_OPT_NO_MULTISHOT : 0;
  m->feat = 0;
  for (unsigned i = 0; i < MM_NFEAT; i++)
    if (!mm_swarm || mm_chance(&r, 70)) m->feat |= 1u << i;
  m->feat &= mm_ops_mask;
  m->close_variant = (int)mm_below(&r, 3);
  if (mm_close_override >= 0) m->close_variant = mm_close_override;
  m->never_driven_close = mm_chance(&r, 50);
  m->hold_cap = m->buf_count / 4;
  m->deadline_us = tt_now_us() + cap_ms * 1000;
}

static void mm_child(mm_report *rp, int64_t cap_ms) {
  mm *m = calloc(1, sizeof *m);
  if (!m) _exit(3);
  m->rep = rp;
  pthread_mutex_init(&m->mu, NULL);
  pthread_mutex_init(&m->hist_mu, NULL);
  m->main_tid = pthread_self();
  m->ks = -1;
  m->kbuf = malloc(MM_KBUF);
  if (!m->kbuf) _exit(3);
  mm_configure(m, rp, cap_ms);
  char feats[300] = "";
  for (unsigned i = 0; i < MM_NFEAT; i++) {
    if (!(m->feat & (1u << i))) continue;
    size_t l = strlen(feats);
    snprintf(feats + l, sizeof feats - l, "%s%s", l ? "," : "", mm_feat_names[i]);
  }
  mm_hist(m, "sequence: ops %s; close variant %d%s", feats, m->close_variant,
          m->never_driven_close ? "; never-driven close" : "");
  pthread_t wd;
  atomic_store(&m->wd_stop, 0);
  if (pthread_create(&wd, NULL, mm_watchdog_main, m) != 0) mm_fail(m, 0, "pthread_create");
  if (m->started_mode) mm_run_started(m);
  else mm_run_manual(m);
  atomic_store(&m->wd_stop, 1);
  pthread_join(wd, NULL);
  if (m->ks >= 0) close(m->ks);
  rp->steps_done = m->step > m->steps_max ? m->steps_max : m->step;
  rp->verdict = MM_PASS;
  free(m->recs);
  free(m->kbuf);
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->hist_mu);
  free(m);
}

/* Run one sequence in a child process; returns its verdict, with the report filled in. */
static int mm_run_one(mm_report *rp, int64_t cap_ms) {
  fflush(stdout);
  fflush(stderr);
  if (!mm_fork) {
    mm_child(rp, cap_ms);
    return rp->verdict;
  }
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "fork: %s\n", strerror(errno));
    return MM_FAILED;
  }
  if (pid == 0) {
    tt_phase = "model sequence (child)";
    alarm((unsigned)(cap_ms / 1000) + 25); /* last resort; the step watchdog comes first */
    mm_child(rp, cap_ms);
    fflush(stdout);
    fflush(stderr);
    exit(0); /* exit, not _exit: a sanitizer's leak check runs on a passing sequence */
  }
  int64_t kill_at = tt_now_ms() + cap_ms + 12000;
  int status = 0, killed = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (tt_now_ms() > kill_at) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      killed = 1;
      break;
    }
    usleep(2000);
  }
  char who[160];
  mm_describe(rp, who, sizeof who);
  if (rp->verdict == MM_PASS && WIFEXITED(status) && WEXITSTATUS(status) == 0) return MM_PASS;
  if (rp->verdict == MM_FAILED) return MM_FAILED; /* the child printed its report */
  /* Died without a verdict (crash, sanitizer, hang), or passed its checks and exited badly. */
  char how[96];
  if (killed) snprintf(how, sizeof how, "killed after %lld ms (hung)", (long long)cap_ms + 12000);
  else if (WIFSIGNALED(status))
    snprintf(how, sizeof how, "died of signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else snprintf(how, sizeof how, "exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  if (rp->verdict == MM_PASS) {
    rp->item = 5;
    snprintf(rp->msg, sizeof rp->msg,
             "every check passed but the process %s (a sanitizer or leak report above?)", how);
  } else {
    rp->item = rp->cur_item;
    snprintf(rp->msg, sizeof rp->msg,
             "the sequence %s during step %llu, operation '%s' (a crash or sanitizer "
             "report above is the library's)",
             how, (unsigned long long)rp->steps_done + 1, rp->cur_op);
    rp->step = rp->steps_done + 1;
  }
  fprintf(stderr, "FAIL [contract %s] %s step=%llu op=%s\n  %s\n  config: %s\n", mm_item_name[rp->item],
          who, (unsigned long long)rp->step, rp->cur_op, rp->msg, rp->config);
  mm_print_tail(rp);
  mm_print_replay(rp);
  rp->verdict = MM_FAILED;
  return MM_FAILED;
}

/* --- main ------------------------------------------------------------------------------------- */

static uint64_t mm_env_u64(const char *name, uint64_t dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  return strtoull(v, NULL, 0);
}

static void mm_parse_ops(const char *v) {
  if (!v || !*v) return;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", v);
  mm_swarm = 0;
  mm_ops_mask = F_ALL;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (strcmp(tok, "all") == 0) continue;
    if (strcmp(tok, "swarm") == 0) {
      mm_swarm = 1;
      continue;
    }
    int on = *tok != '-';
    const char *name = (*tok == '-' || *tok == '+') ? tok + 1 : tok;
    unsigned i;
    for (i = 0; i < MM_NFEAT; i++)
      if (strcmp(name, mm_feat_names[i]) == 0) break;
    if (i == MM_NFEAT) {
      fprintf(stderr, "MIOR_MODEL_OPS: unknown operation kind '%s'\n", name);
      exit(2);
    }
    if (on) mm_ops_mask |= 1u << i;
    else mm_ops_mask &= ~(1u << i);
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  mm_verbose = (int)mm_env_u64("MIOR_MODEL_VERBOSE", 0);
  mm_fork = (int)mm_env_u64("MIOR_MODEL_FORK", 1);
  uint64_t seconds = mm_env_u64("MIOR_MODEL_SECONDS", 20);
  uint32_t steps = (uint32_t)mm_env_u64("MIOR_MODEL_STEPS", 4000);
  const char *seed_env = getenv("MIOR_MODEL_SEED");
  uint64_t base = 1, nseeds = 12;
  if (seed_env && *seed_env) {
    base =
        strcmp(seed_env, "random") == 0 ? (uint64_t)time(NULL) % 1000000007u : strtoull(seed_env, NULL, 0);
    nseeds = 1;
  }
  nseeds = mm_env_u64("MIOR_MODEL_SEQS", nseeds);
  mm_parse_ops(getenv("MIOR_MODEL_OPS"));
  const char *cv = getenv("MIOR_MODEL_CLOSE");
  if (cv && *cv) mm_close_override = strcmp(cv, "driver") == 0 ? 0 : strcmp(cv, "joined") == 0 ? 1 : 2;
  const char *be = getenv("MIOR_MODEL_BACKEND"), *fam = getenv("MIOR_MODEL_FAMILY"),
             *mode = getenv("MIOR_MODEL_MODE");
  tt_watchdog((unsigned)seconds + 75);

  int v6ok = mm_v6_available();
  if (!v6ok) printf("  [::1]: not available here; every sequence runs on 127.0.0.1\n");
  int nbe = 0;
  mior_backend bes[8];
  for (const mior__backend_ops *const *ops = mior__backends; *ops && nbe < 8; ops++) {
    mior_backend b = (*ops)->id;
    if (be && *be && strcmp(be, mior_backend_name(b)) != 0) continue;
    if (mior_backend_supported(b) != 1) {
      printf("  backend %s: SKIP (%s)\n", mior_backend_name(b), mior_last_error());
      continue;
    }
    bes[nbe++] = b;
  }
  if (!nbe) TEST_SKIP("no backend is supported here");

  /* The plan: each seed over each backend (and family if both are asked for). */
  uint32_t nplan = 0, capplan = (uint32_t)(nseeds * (uint64_t)nbe * 2);
  mm_report *plan = calloc(capplan ? capplan : 1, sizeof *plan);
  REQUIRE(plan != NULL);
  for (uint64_t s = base; s < base + nseeds; s++) {
    int fams[2], nf = 0;
    if (fam && strcmp(fam, "both") == 0) {
      fams[nf++] = 0;
      if (v6ok) fams[nf++] = 1;
    } else if (fam && *fam) {
      fams[nf++] = atoi(fam) == 6 && v6ok;
    } else {
      fams[nf++] = (s % 2 == 0) && v6ok;
    }
    int started = s % 3 == 0;
    if (mode && strcmp(mode, "manual") == 0) started = 0;
    if (mode && strcmp(mode, "started") == 0) started = 1;
    for (int f = 0; f < nf; f++)
      for (int b = 0; b < nbe; b++) {
        mm_report *rp = &plan[nplan++];
        rp->seed = s;
        rp->backend = bes[b];
        rp->v6 = fams[f];
        rp->started = started;
        rp->steps_max = steps;
        rp->restart_rc = 1;
      }
  }

  /* Shared with the children: one report at a time. */
  mm_report *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(shared != MAP_FAILED);
  printf("model test: seeds %llu..%llu, %u sequences, up to %u steps each, %llu s budget%s\n",
         (unsigned long long)base, (unsigned long long)(base + nseeds - 1), nplan, steps,
         (unsigned long long)seconds,
         mm_swarm ? " (swarm: each sequence uses a random subset of operations)" : "");
  int64_t t_start = tt_now_ms(), t_end = t_start + (int64_t)seconds * 1000;
  uint32_t failed = 0, ran = 0, not_run = 0;
  uint64_t seqs_by[4] = {0}, steps_by[4] = {0}, fails_by[4] = {0};
  for (uint32_t i = 0; i < nplan; i++) {
    int64_t now = tt_now_ms();
    if (now >= t_end && ran > 0) {
      not_run = nplan - i;
      break;
    }
    int64_t cap = (t_end - now) / (int64_t)(nplan - i);
    if (cap < 300) cap = 300;
    memcpy(shared, &plan[i], sizeof *shared);
    int64_t t0 = tt_now_ms();
    int v = mm_run_one(shared, cap);
    memcpy(&plan[i], shared, sizeof *shared);
    ran++;
    seqs_by[plan[i].backend & 3]++;
    steps_by[plan[i].backend & 3] += plan[i].steps_done;
    char who[160];
    mm_describe(&plan[i], who, sizeof who);
    if (v != MM_PASS) {
      failed++;
      fails_by[plan[i].backend & 3]++;
    }
    printf("  %s: %s after %llu steps (%.1f s)%s\n", who, v == MM_PASS ? "ok" : "FAILED",
           (unsigned long long)plan[i].steps_done, (tt_now_ms() - t0) / 1000.0,
           plan[i].restart_rc != 1
               ? (plan[i].restart_rc == 0 ? "; restart after stop: 0" : "; restart after stop: -EBUSY")
               : "");
    fflush(stdout);
  }

  printf("\nmodel test summary (seeds %llu..%llu, %.1f s):\n", (unsigned long long)base,
         (unsigned long long)(base + nseeds - 1), (tt_now_ms() - t_start) / 1000.0);
  for (int b = 0; b < nbe; b++)
    printf("  %-8s %llu sequences, %llu steps, %llu failed\n", mior_backend_name(bes[b]),
           (unsigned long long)seqs_by[bes[b] & 3], (unsigned long long)steps_by[bes[b] & 3],
           (unsigned long long)fails_by[bes[b] & 3]);
  if (not_run) printf("  %u sequence(s) not run: time budget spent (MIOR_MODEL_SECONDS)\n", not_run);
  for (uint32_t i = 0; i < nplan; i++) {
    if (plan[i].verdict != MM_FAILED) continue;
    char who[160];
    mm_describe(&plan[i], who, sizeof who);
    printf("  FAILED [contract %s] %s step %llu: %s\n", mm_item_name[plan[i].item], who,
           (unsigned long long)plan[i].step, plan[i].msg);
  }
  munmap(shared, sizeof *shared);
  free(plan);
  if (failed) {
    fprintf(stderr, "%u of %u sequence(s) failed\n", failed, ran);
    return 1;
  }
  printf("PASS\n");
  return 0;
}
