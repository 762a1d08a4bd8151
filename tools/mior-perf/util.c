/* mior-perf: small helpers shared by the modes: errors from worker threads, latches, time,
 * thread placement, endpoints and options, the progress line. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testpkt.h"
#include "netns.h"
#include "perf.h"

void perf_error_set(perf_error *e, int err, const char *what) {
  if (e->err) return; /* keep the first failure: later ones usually follow from it */
  e->err = err < 0 ? err : -err;
  const char *detail = mior_last_error();
  if (detail[0])
    snprintf(e->what, sizeof e->what, "%s: %s (%s)", what, mior_strerror(e->err), detail);
  else
    snprintf(e->what, sizeof e->what, "%s: %s", what, mior_strerror(e->err));
}

void perf_latch_set(perf_latch *l) {
  atomic_store_explicit(&l->set, 1, memory_order_release);
}

int perf_latch_wait(perf_latch *l, const perf_run *run, double timeout_s) {
  uint64_t end = perf_now_ns() + (uint64_t)(timeout_s * 1e9);
  while (!atomic_load_explicit(&l->set, memory_order_acquire)) {
    if (perf_stopping(run) || perf_now_ns() > end) return 0;
    perf_sleep_ns(200000);
  }
  return 1;
}

uint64_t perf_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void perf_sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  /* A signal cuts the sleep short, which is what the callers want: they check the stop flag. */
  nanosleep(&ts, NULL);
}

int perf_thread_setup(int cpu, int netns_fd, perf_error *err) {
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    /* Pinning is a refinement: a refusal (a restricted cpuset) is not worth failing the run. */
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
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

void perf_endpoint(const perf_run *run, int tx_side, char *buf, size_t len) {
  const perf_env *env = run->env;
  switch (run->cfg->kind) {
    case PERF_KIND_IP:
      snprintf(buf, len, "ip://%s/udp", tx_side ? env->ip_tx : env->ip_rx);
      break;
    case PERF_KIND_PACKET:
      snprintf(buf, len, "packet://%s", tx_side ? env->if_tx : env->if_rx);
      break;
    default:
      snprintf(buf, len, "udp://%s:0", tx_side ? env->ip_tx : env->ip_rx);
      break;
  }
}

void perf_options(const perf_run *run, mior_options *opts) {
  const perf_config *cfg = run->cfg;
  mior_options_init(opts);
  opts->backend = run->backend;
  if (cfg->batch) opts->batch = cfg->batch;
  opts->busy_poll_us = cfg->busy_poll_us;
  /* A slot must hold the largest packet.  Above the default 2 KiB, use fewer, larger slots so a
   * port's pool stays near 16 MiB. */
  uint32_t need = cfg->size; /* udp: the payload; ip and packet: everything received */
  if (need > 2048) {
    uint32_t sz = 4096;
    while (sz < need) sz <<= 1;
    opts->buf_size = sz;
    opts->buf_count = (16u << 20) / sz;
    if (opts->buf_count < 256) opts->buf_count = 256;
  }
}

void perf_progress(const perf_run *run, const char *phase, double t, const char *fmt, ...) {
  if (!run->cfg->progress) return;
  char line[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\r\033[K%-7s %-4s %4.1fs  %s", mior_backend_name(run->backend), phase, t, line);
  fflush(stderr);
}

void perf_progress_end(const perf_run *run) {
  if (!run->cfg->progress) return;
  fputs("\r\033[K", stderr);
  fflush(stderr);
}

int perf_thread_start(pthread_t *th, void *(*fn)(void *), void *arg) {
  /* Workers never take SIGINT/SIGTERM: the main thread does, so its sleeps end early and it
   * runs the cleanup. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int rc = pthread_create(th, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc ? -rc : 0;
}
