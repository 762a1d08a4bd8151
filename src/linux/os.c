/* Linux OS services for the front end: threads, time, randomness. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

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
