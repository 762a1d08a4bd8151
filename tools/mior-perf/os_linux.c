/* mior-perf on Linux: POSIX threads and CPU affinity, CLOCK_MONOTONIC, signals, getrandom, and
 * the --netns environment (a veth pair between two network namespaces, tools/common/netns.c).
 * See os.h. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"
#include "os.h"
#include "perf.h"

/* ---- threads ---- */

struct perf_thread {
  pthread_t id;
};

int perf_thread_start(perf_thread **out, void *(*fn)(void *), void *arg) {
  perf_thread *t = malloc(sizeof *t);
  if (!t) return -ENOMEM;
  /* Workers never take SIGINT/SIGTERM/SIGHUP: the main thread does, so its sleeps end early and
   * it runs the cleanup (removing the namespaces). */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int rc = pthread_create(&t->id, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) {
    free(t);
    return -rc;
  }
  *out = t;
  return 0;
}

void perf_thread_join(perf_thread *t) {
  pthread_join(t->id, NULL);
  free(t);
}

void perf_thread_pin(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int perf_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n >= 1 ? (int)n : 1;
}

int perf_thread_setup(int cpu, int netns_fd, perf_error *err) {
  perf_thread_pin(cpu);
  if (netns_fd >= 0) {
    int rc = netns_enter(netns_fd);
    if (rc < 0) {
      err->err = rc;
      snprintf(err->what, sizeof err->what, "entering the network namespace: %s", strerror(-rc));
      return rc;
    }
  }
  return 0;
}

/* ---- time ---- */

uint64_t perf_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void perf_sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  /* A signal cuts the sleep short (the handler is installed without SA_RESTART), which is what
   * the callers want: they check the stop flag. */
  nanosleep(&ts, NULL);
}

double perf_thread_cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) < 0) return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

uint32_t perf_random_u32(void) {
  uint32_t id = 0;
  if (getrandom(&id, sizeof id, 0) != sizeof id) id = (uint32_t)getpid() ^ (uint32_t)perf_now_ns();
  return id;
}

/* ---- the terminal and signals ---- */

int perf_stderr_is_terminal(void) {
  return isatty(STDERR_FILENO);
}

static atomic_int *interrupt_flag;

static void on_signal(int sig) {
  (void)sig;
  /* atomic_int is lock-free on every target we build for, so this is async-signal-safe. */
  if (interrupt_flag) atomic_store(interrupt_flag, 1);
}

void perf_interrupt_install(atomic_int *flag) {
  interrupt_flag = flag;
  /* The handler only sets a flag: the workers notice within 100 ms, and the main thread then
   * joins them and removes the namespaces.  No SA_RESTART, so sleeps end early. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

mior_backend perf_ring_backend(void) {
  return MIOR_BACKEND_URING;
}

void perf_os_init(void) {
}

/* ---- the command line and the environment ---- */

int perf_os_check_args(const perf_config *cfg, int rps) {
  if (cfg->kind != PERF_KIND_UDP && (!cfg->netns || geteuid() != 0)) {
    fprintf(stderr, "mior-perf: --kind %s needs --netns (and root)\n", perf_kind_name(cfg->kind));
    return PERF_EXIT_USAGE;
  }
  if (rps && !cfg->netns) {
    fprintf(stderr, "mior-perf: --rps needs --netns\n(mior-perf --help for usage)\n");
    return PERF_EXIT_USAGE;
  }
  return -1;
}

/* The process has at most one namespace pair; it lives here between open and close. */
static netns_pair pair;

int perf_os_env_open(const perf_config *cfg, int rps, perf_env *env, const atomic_int *interrupted) {
  if (!cfg->netns) return -1;
  char why[256];
  if (!netns_available(why, sizeof why)) {
    fprintf(stderr, "mior-perf: --netns is not available: %s\n", why);
    return PERF_EXIT_USAGE;
  }
  /* Static neighbour entries: no ARP exchange in the middle of a measurement. */
  int rc = netns_pair_create(&pair, "perf", 200, 1);
  if (rc < 0 || atomic_load(interrupted)) {
    if (rc < 0) fprintf(stderr, "mior-perf: creating the namespaces: %s\n", strerror(-rc));
    return PERF_EXIT_RUNTIME;
  }
  env->netns_fd_tx = pair.fd_a;
  env->netns_fd_rx = pair.fd_b;
  snprintf(env->ip_tx, sizeof env->ip_tx, "%s", pair.ip_a);
  snprintf(env->ip_rx, sizeof env->ip_rx, "%s", pair.ip_b);
  snprintf(env->if_tx, sizeof env->if_tx, "%s", pair.if_a);
  snprintf(env->if_rx, sizeof env->if_rx, "%s", pair.if_b);
  memcpy(env->mac_tx, pair.mac_a, 6);
  memcpy(env->mac_rx, pair.mac_b, 6);
  if (rps && env->cpu_rx >= 0) {
    char mask[16];
    snprintf(mask, sizeof mask, "%x", 1u << env->cpu_rx);
    rc = netns_set_rps(&pair, 1, mask);
    if (rc < 0) {
      fprintf(stderr, "mior-perf: setting RPS: %s\n", strerror(-rc));
      return PERF_EXIT_RUNTIME;
    }
  }
  return -1;
}

int perf_os_env_close(const perf_config *cfg) {
  if (!cfg->netns) return 0;
  int rc = netns_pair_destroy(&pair);
  if (rc < 0)
    fprintf(stderr, "mior-perf: removing the namespaces %s and %s: %s\n", pair.ns_a, pair.ns_b,
            strerror(-rc));
  return rc;
}

const char *perf_os_env_name(const perf_config *cfg) {
  return cfg->netns ? "a veth pair between two namespaces" : "loopback";
}
