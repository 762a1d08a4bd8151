/* Counting the system calls one thread makes, exactly, for tests (Linux only).
 *
 * A test that claims "one io_uring_enter per wake-up" or "stats.submits is the number of system
 * calls" needs a count that does not come from the library itself.  ptrace would need a second
 * process and tracefs is not mounted everywhere (it is not on the test machines), so this uses
 * seccomp user notification (Linux 5.0, SECCOMP_USER_NOTIF_FLAG_CONTINUE 5.5):
 *
 *   - sc_run() starts a worker thread that runs the measured code.  The worker first starts a
 *     supervisor thread, and only then installs a seccomp filter on itself, without TSYNC: the
 *     filter applies to the calling thread (and to threads it creates later), so the supervisor,
 *     created before it, and the rest of the process are not filtered.
 *   - The filter returns SECCOMP_RET_USER_NOTIF for the syscall numbers asked for.  Each such call
 *     stops in the kernel until the supervisor, woken on the listener fd, has counted it and
 *     answered SECCOMP_USER_NOTIF_FLAG_CONTINUE, which lets the kernel run the call as if no
 *     filter were there.  Nothing else about the call changes: arguments, result and side effects
 *     are the real ones.  The count goes up before the answer is sent, so the worker reads an
 *     up-to-date count as soon as the call returns.
 *   - Installing a filter needs PR_SET_NO_NEW_PRIVS (set here, for the worker thread only) or
 *     CAP_SYS_ADMIN.  Where seccomp, user notification or CONTINUE is missing, sc_run says why and
 *     the test skips.
 *
 * The count is exact because it is taken at the kernel's syscall entry: a call made through
 * libc, through syscall(2), or inline with the `syscall` instruction (liburing 2.3 builds its
 * io_uring_enter that way on x86-64) is caught alike.  A call interrupted by a signal before the
 * supervisor answered it did not run, and is not counted (its restart is).
 *
 * The filter stays on the worker thread until it exits, and every filtered call then waits for
 * the supervisor, so each measurement runs in its own worker, and the supervisor is stopped only
 * after the worker has been joined.  Counting costs two context switches per filtered call:
 * measure how many calls are made, not how long they take.
 */
#ifndef MIOR_TEST_SYSCALL_COUNT_H
#define MIOR_TEST_SYSCALL_COUNT_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#  define SC_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#  define SC_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#  define SC_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#  define SC_AUDIT_ARCH AUDIT_ARCH_RISCV64
#endif

#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#  define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#  define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#  define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#  define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

/* Syscalls counted at once (besides the probe, below). */
#define SC_MAX_NRS 4

typedef struct sc_session sc_session;
typedef void (*sc_fn)(sc_session *s, void *arg);

struct sc_session {
  long nrs[SC_MAX_NRS + 1];                /* counted numbers; the last one is the probe */
  int nnrs;                                /* how many the caller asked for */
  atomic_uint_fast64_t counts[SC_MAX_NRS + 1];
  int flag_arg;                            /* argument index to look at, or -1 */
  uint64_t flag_mask;                      /* calls whose argument flag_arg has any of these bits */
  atomic_uint_fast64_t flagged[SC_MAX_NRS + 1];
  atomic_int no_continue;                  /* the kernel refused SECCOMP_USER_NOTIF_FLAG_CONTINUE */
  int listener;                            /* the filter's notification fd, -1 until installed */
  int pipe[2];                             /* worker -> supervisor: "go" or "abort"; then "stop" */
  pthread_t supervisor;
  int supervisor_started;
  sc_fn fn;
  void *arg;
  int ran;                                 /* fn ran under the filter */
  char why[160];                           /* why counting is unavailable */
};

/* The probe: a call nothing else makes, counted apart, which proves before the measured code runs
 * that notifications arrive and that CONTINUE works. */
#define SC_PROBE_NR __NR_getppid

/* How many times the worker has entered syscall nr so far (one of those sc_run was given). */
static inline uint64_t sc_count(sc_session *s, long nr) {
  for (int i = 0; i < s->nnrs; i++) {
    if (s->nrs[i] == nr) return (uint64_t)atomic_load(&s->counts[i]);
  }
  return 0;
}

/* Of those, how many had any bit of the mask given to sc_run_flags set in the argument it named
 * (e.g. IORING_ENTER_SQ_WAKEUP in io_uring_enter's flags). */
static inline uint64_t sc_count_flagged(sc_session *s, long nr) {
  for (int i = 0; i < s->nnrs; i++) {
    if (s->nrs[i] == nr) return (uint64_t)atomic_load(&s->flagged[i]);
  }
  return 0;
}

/* The sum over every number sc_run was given. */
static inline uint64_t sc_total(sc_session *s) {
  uint64_t t = 0;
  for (int i = 0; i < s->nnrs; i++) t += (uint64_t)atomic_load(&s->counts[i]);
  return t;
}

static inline void *sc_supervise_(void *arg) {
  sc_session *s = arg;
  char c = 0;
  ssize_t n;
  do {
    n = read(s->pipe[0], &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1 || c != 'g') return NULL;
  struct pollfd pf[2] = {{.fd = s->listener, .events = POLLIN}, {.fd = s->pipe[0], .events = POLLIN}};
  for (;;) {
    int rc = poll(pf, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    if (pf[1].revents) return NULL; /* stop: the worker has been joined */
    if (pf[0].revents & POLLIN) {
      struct seccomp_notif req;
      memset(&req, 0, sizeof req); /* the kernel refuses a request buffer that is not zeroed */
      if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
        /* ENOENT: the call was interrupted (a signal) before we took it; it did not run. */
        if (errno == EINTR || errno == ENOENT) continue;
        return NULL;
      }
      int idx = -1;
      for (int i = 0; i <= s->nnrs; i++) {
        if (s->nrs[i] == req.data.nr) idx = i;
      }
      /* Counted before the answer, so that the worker sees the count when its call returns. */
      int flagged = idx >= 0 && s->flag_arg >= 0 && (req.data.args[s->flag_arg] & s->flag_mask);
      if (idx >= 0) atomic_fetch_add(&s->counts[idx], 1);
      if (flagged) atomic_fetch_add(&s->flagged[idx], 1);
      struct seccomp_notif_resp resp;
      memset(&resp, 0, sizeof resp);
      resp.id = req.id;
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0) continue;
      int err = errno;
      if (idx >= 0) atomic_fetch_sub(&s->counts[idx], 1);
      if (flagged) atomic_fetch_sub(&s->flagged[idx], 1);
      if (err == EINVAL) {
        /* A kernel before 5.5 has no CONTINUE.  Fail the call instead of leaving the worker
         * stopped in it; the probe sees the error and the test skips. */
        atomic_store(&s->no_continue, 1);
        resp.flags = 0;
        resp.error = -ENOTSUP;
        if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT) return NULL;
      }
      /* ENOENT: the worker was interrupted meanwhile; the call did not run. */
    } else if (pf[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
      return NULL;
    }
  }
}

static inline int sc_install_(sc_session *s) {
#ifndef SC_AUDIT_ARCH
  snprintf(s->why, sizeof s->why, "syscall counting: no seccomp audit arch known for this CPU");
  return -1;
#else
  struct sock_filter f[4 + SC_MAX_NRS + 1 + 2];
  int k = 0;
  int n = s->nnrs + 1;
  /* Another architecture's calls (e.g. i386 on x86-64) have other numbers: let them through. */
  f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SC_AUDIT_ARCH, 1, 0);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  /* Instruction k + i tests nrs[i]; a match jumps to the USER_NOTIF return after the ALLOW. */
  for (int i = 0; i < n; i++)
    f[k + i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)s->nrs[i],
                                            (uint8_t)(n - i), 0);
  k += n;
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
  struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    snprintf(s->why, sizeof s->why, "syscall counting: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return -1;
  }
  /* WAIT_KILLABLE_RECV (Linux 5.19): once the supervisor has taken a notification, the worker
   * waits for the answer ignoring all but fatal signals.  Without it, pending task work
   * (TIF_NOTIFY_SIGNAL, which io_uring raises for a COOP_TASKRUN ring's completions) can end that
   * wait even after the supervisor answered CONTINUE: the kernel then restarts the call, which is
   * notified and counted a second time though it ran once (seen under load: 1025 counted io_uring_enter
   * for 1024 made).  Older kernels refuse the flag (EINVAL): then the filter is installed without it. */
  long fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
                    SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
  if (fd < 0 && errno == EINVAL)
    fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (fd < 0) {
    snprintf(s->why, sizeof s->why, "syscall counting: seccomp filter with a listener: %s%s",
             strerror(errno), errno == EBUSY ? " (the process already has a seccomp listener)" : "");
    return -1;
  }
  s->listener = (int)fd;
  return 0;
#endif
}

static inline void *sc_worker_(void *arg) {
  sc_session *s = arg;
  /* The supervisor first: a thread created after the filter would inherit it. */
  if (pthread_create(&s->supervisor, NULL, sc_supervise_, s) != 0) {
    snprintf(s->why, sizeof s->why, "syscall counting: cannot start the supervisor thread");
    return NULL;
  }
  s->supervisor_started = 1;
  if (sc_install_(s) < 0) {
    ssize_t w = write(s->pipe[1], "a", 1);
    (void)w;
    return NULL;
  }
  if (write(s->pipe[1], "g", 1) != 1) {
    /* The supervisor cannot be told to start: any filtered call would wait for ever. */
    snprintf(s->why, sizeof s->why, "syscall counting: cannot wake the supervisor");
    _exit(1);
  }
  errno = 0;
  long r = syscall(SC_PROBE_NR);
  if (r < 0 || atomic_load(&s->no_continue) || atomic_load(&s->counts[s->nnrs]) != 1) {
    snprintf(s->why, sizeof s->why, "syscall counting: seccomp user notification does not work here "
             "(%s)", atomic_load(&s->no_continue) ? "no SECCOMP_USER_NOTIF_FLAG_CONTINUE: Linux < 5.5"
                                                   : "the probe call was not seen");
    return NULL;
  }
  s->ran = 1;
  s->fn(s, s->arg);
  return NULL;
}

/* sc_run, also counting apart the calls whose argument flag_arg (0-5) has any bit of flag_mask
 * set (sc_count_flagged). */
static inline int sc_run_flags(sc_session *s, const long *nrs, int nnrs, int flag_arg, uint64_t flag_mask,
                               sc_fn fn, void *arg) {
  memset(s, 0, sizeof *s);
  s->listener = -1;
  s->flag_arg = flag_arg >= 0 && flag_arg < 6 ? flag_arg : -1;
  s->flag_mask = flag_mask;
  if (nnrs < 1 || nnrs > SC_MAX_NRS) {
    snprintf(s->why, sizeof s->why, "syscall counting: 1 to %d syscall numbers", SC_MAX_NRS);
    return -1;
  }
  for (int i = 0; i < nnrs; i++) s->nrs[i] = nrs[i];
  s->nrs[nnrs] = SC_PROBE_NR;
  s->nnrs = nnrs;
  for (int i = 0; i <= nnrs; i++) {
    atomic_init(&s->counts[i], 0);
    atomic_init(&s->flagged[i], 0);
  }
  s->fn = fn;
  s->arg = arg;
  if (pipe(s->pipe) < 0) {
    snprintf(s->why, sizeof s->why, "syscall counting: pipe: %s", strerror(errno));
    return -1;
  }
  pthread_t worker;
  if (pthread_create(&worker, NULL, sc_worker_, s) != 0) {
    snprintf(s->why, sizeof s->why, "syscall counting: cannot start the worker thread");
  } else {
    pthread_join(worker, NULL);
  }
  /* The worker is gone, and its filter with it: the supervisor can stop. */
  if (s->supervisor_started) {
    ssize_t w = write(s->pipe[1], "s", 1);
    (void)w;
    pthread_join(s->supervisor, NULL);
  }
  if (s->listener >= 0) close(s->listener);
  close(s->pipe[0]);
  close(s->pipe[1]);
  return s->ran ? 0 : -1;
}

/* Run fn(s, arg) on a new thread whose calls of the syscalls nrs[0..nnrs) are counted (read them
 * inside fn with sc_count or sc_total; they start at 0).  Returns 0 once fn has run and its thread
 * has ended, or -1 if counting is unavailable here, with the reason in s->why (fn did not run:
 * skip the test).  s must stay in place until sc_run returns. */
static inline int sc_run(sc_session *s, const long *nrs, int nnrs, sc_fn fn, void *arg) {
  return sc_run_flags(s, nrs, nnrs, -1, 0, fn, arg);
}

#endif /* MIOR_TEST_SYSCALL_COUNT_H */
