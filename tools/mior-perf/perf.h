/* mior-perf: shared definitions for the throughput and latency tool.
 *
 * The tool runs both ends of a test in one process: a receiver (or echo server) thread and a
 * sender (or ping client) thread, each driving its own transport with mior_port_poll.  With
 * --netns each thread first enters its own network namespace, so the packets cross a veth pair.
 */
#ifndef MIOR_PERF_H
#define MIOR_PERF_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <mior/mior.h>

#include "hist.h"

/* Exit codes. */
#define PERF_EXIT_OK 0
#define PERF_EXIT_RUNTIME 1
#define PERF_EXIT_USAGE 2

/* Flows: with --queues N the receiver opens N queues and the sender N flows (different source
 * ports), so the kernel's SO_REUSEPORT / fanout hash can spread them. */
#define PERF_MAX_FLOWS 16

typedef enum perf_mode { PERF_MODE_THROUGHPUT, PERF_MODE_LATENCY } perf_mode;
typedef enum perf_kind { PERF_KIND_UDP, PERF_KIND_IP, PERF_KIND_PACKET } perf_kind;

typedef struct perf_config {
  perf_mode mode;
  perf_kind kind;
  mior_backend backends[2]; /* the backends to run, in order */
  int nbackends;            /* 1, or 2 for --backend all */
  int netns;
  uint32_t size;         /* udp: UDP payload bytes; ip: whole IP packet; packet: whole frame */
  double seconds;        /* measured phase */
  double warmup;         /* excluded phase before it */
  uint64_t rate;         /* packets per second, 0 = as fast as possible (throughput only) */
  uint32_t batch;        /* mior_options.batch, 0 = library default */
  uint32_t busy_poll_us; /* mior_options.busy_poll_us */
  uint32_t queues;       /* receiver queues and sender flows (throughput only) */
  int json;
  int progress;          /* live line on a terminal (not with --json) */
} perf_config;

/* Where the two ends live.  Filled once per process by perf_env_setup. */
typedef struct perf_env {
  int netns_fd_tx, netns_fd_rx; /* namespace fds for the sender / receiver threads, -1 = host */
  char ip_tx[48], ip_rx[48];    /* addresses of each end ("127.0.0.1" on loopback) */
  char if_tx[16], if_rx[16];    /* packet kind: interface of each end */
  uint8_t mac_tx[6], mac_rx[6];
  int cpu_tx, cpu_rx;           /* CPU to pin each thread to, -1 = none */
} perf_env;

/* Everything one backend run needs, shared between the main thread and the workers. */
typedef struct perf_run {
  const perf_config *cfg;
  const perf_env *env;
  mior_backend backend;
  uint32_t run_id;         /* random; the receiver rejects packets from other runs */
  volatile sig_atomic_t *interrupted; /* set by SIGINT/SIGTERM */
  atomic_int stop;         /* ask workers to finish */
} perf_run;

/* Results of one backend run, as printed and written to JSON. */
typedef struct perf_result {
  mior_backend backend;
  perf_mode mode;
  perf_kind kind;
  uint32_t size;
  double seconds;          /* measured time (the clock around the steady phase) */
  double tx_pps, rx_pps;
  double rx_mbps;          /* size * 8 * rx_pps / 1e6 */
  uint64_t tx_total, rx_total; /* over the whole run, warm-up included */
  uint64_t lost, reordered, duplicates, foreign;
  double loss;             /* percent of sent packets that never arrived */
  /* latency */
  uint64_t samples;
  double mean_us, min_us, p50_us, p90_us, p99_us, p999_us, max_us;
  /* transport statistics of the receiving (rx) and sending (tx) sides */
  mior_port_stats rx_stats, tx_stats;
} perf_result;

/* A failure on a worker thread: the error code and the detail, copied from mior_last_error() on
 * that thread (it is per-thread, so the main thread cannot read it later). */
typedef struct perf_error {
  int err;
  char what[320];
} perf_error;

void perf_error_set(perf_error *e, int err, const char *what);

/* A one-way latch between the main thread and a worker ("ready", "go", "done"). */
typedef struct perf_latch {
  atomic_int set;
} perf_latch;

void perf_latch_set(perf_latch *l);
/* Wait until set, the run is stopped, or timeout_s passes; 1 if set. */
int perf_latch_wait(perf_latch *l, const perf_run *run, double timeout_s);

/* Time. */
uint64_t perf_now_ns(void);
void perf_sleep_ns(uint64_t ns);

/* 1 if the run should finish (asked to, or interrupted by a signal). */
static inline int perf_stopping(const perf_run *run) {
  return atomic_load_explicit(&run->stop, memory_order_relaxed) || *run->interrupted;
}

/* pthread_create with SIGINT/SIGTERM/SIGHUP blocked in the new thread; 0 or a negative errno. */
int perf_thread_start(pthread_t *th, void *(*fn)(void *), void *arg);

/* Pin the calling thread (cpu < 0: leave it), enter its namespace (fd < 0: stay). */
int perf_thread_setup(int cpu, int netns_fd, perf_error *err);

/* The endpoint and the common options for one end of a run (tx_side: the sender / ping client,
 * else the receiver / echo server). */
void perf_endpoint(const perf_run *run, int tx_side, char *buf, size_t len);
void perf_options(const perf_run *run, mior_options *opts);

/* Progress line support. */
void perf_progress(const perf_run *run, const char *phase, double t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void perf_progress_end(const perf_run *run);

/* The modes.  Return 0 with *res filled, or a negative errno with *err filled. */
int perf_throughput(perf_run *run, perf_result *res, perf_error *err);
int perf_latency(perf_run *run, perf_result *res, perf_error *err);

/* Reports (report.c). */
const char *perf_kind_name(perf_kind k);
const char *perf_mode_name(perf_mode m);
void perf_report_one(const perf_config *cfg, const perf_result *r);
void perf_report_compare(const perf_config *cfg, const perf_result *a, const perf_result *b);
void perf_report_json(const perf_config *cfg, const perf_result *r);

#endif
