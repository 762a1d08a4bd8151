/* Linux OS services for the front end: threads, time, randomness. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/internal.h"
#include "common/os.h"

struct mior__thread {
  pthread_t tid;
  void (*fn)(void *);
  void *arg;
};

static void *thread_main(void *arg) {
  struct mior__thread *t = arg;
  t->fn(t->arg);
  return NULL;
}

int mior__thread_start(mior__thread **out, void (*fn)(void *), void *arg, int cpu) {
  struct mior__thread *t = calloc(1, sizeof *t);
  if (!t) return mior__fail(-ENOMEM, "out of memory for a thread");
  t->fn = fn;
  t->arg = arg;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (cpu >= 0 && cpu < CPU_SETSIZE) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    /* Pinning is a wish: a CPU outside our allowed set must not stop the port from running. */
    pthread_attr_setaffinity_np(&attr, sizeof set, &set);
  }
  int rc = pthread_create(&t->tid, &attr, thread_main, t);
  if (rc == EINVAL && cpu >= 0) {
    pthread_attr_destroy(&attr);
    pthread_attr_init(&attr);
    rc = pthread_create(&t->tid, &attr, thread_main, t);
  }
  pthread_attr_destroy(&attr);
  if (rc) {
    free(t);
    return mior__fail(-rc, "pthread_create: %s", strerror(rc));
  }
  *out = t;
  return 0;
}

int mior__thread_join(mior__thread *t) {
  if (!t) return 0;
  int rc = pthread_join(t->tid, NULL);
  free(t);
  return -rc;
}

uint64_t mior__thread_self(void) {
  return (uint64_t)pthread_self();
}

#ifndef PIDFD_THREAD
#  define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for one thread, readable when it exits */
#endif

int mior__thread_ref_self(mior__thread_ref *ref) {
  pid_t tid = (pid_t)syscall(SYS_gettid);
  ref->id = (uint64_t)tid;
  /* A thread pidfd becomes readable when the thread has exited, and unlike a thread id it cannot
   * come to name another thread.  Kernels before 6.9 refuse PIDFD_THREAD: the id alone remains. */
  ref->handle = 0; /* fd + 1, so that a zeroed reference holds no descriptor */
#ifdef SYS_pidfd_open
  long fd = syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
  if (fd >= 0) {
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    ref->handle = fd + 1;
  }
#endif
  return 0;
}

int mior__thread_ref_alive(const mior__thread_ref *ref, int wait_ms) {
  if (ref->handle > 0) {
    struct pollfd pfd = {.fd = (int)ref->handle - 1, .events = POLLIN, .revents = 0};
    return poll(&pfd, 1, wait_ms) == 0;
  }
  if (ref->id == 0) return 0;
  /* Without a pidfd: signal 0 to the id within this process.  A thread id is reused only after
   * the kernel has cycled through every other id, which a port's lifetime does not see in
   * practice. */
  for (int waited = 0;; waited++) {
    if (syscall(SYS_tgkill, getpid(), (pid_t)ref->id, 0) < 0 && errno == ESRCH) return 0;
    if (waited >= wait_ms) return 1;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
}

void mior__thread_ref_drop(mior__thread_ref *ref) {
  if (ref->handle > 0) close((int)ref->handle - 1);
  ref->handle = 0;
  ref->id = 0;
}

uint64_t mior__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void mior__random_bytes(void *buf, size_t len) {
  uint8_t *p = buf;
  while (len) {
    ssize_t n = getrandom(p, len, GRND_NONBLOCK);
    if (n <= 0) break;
    p += n;
    len -= (size_t)n;
  }
  /* Without getrandom (seccomp, very early boot) mix the clock and an address: fine for sequence
   * numbers, which only need to be unpredictable to an off-path sender. */
  uint64_t x = mior__now_ns() ^ (uint64_t)(uintptr_t)buf;
  while (len--) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    *p++ = (uint8_t)x;
  }
}

void mior__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

const char *mior__getenv(const char *name) {
  return getenv(name);
}

uint32_t mior__if_index(const char *name) {
  return if_nametoindex(name);
}

int mior__if_name(uint32_t index, char *buf, size_t len) {
  char tmp[IF_NAMESIZE];
  if (!if_indextoname(index, tmp) || strlen(tmp) >= len) return -1;
  strcpy(buf, tmp);
  return 0;
}
