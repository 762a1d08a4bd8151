/* mior-perf: shared definitions for the throughput and latency tool.
 *
 * The tool runs both ends of a test in one process: a receiver (or echo server) thread and a
 * sender (or ping client) thread, each driving its own transport with mior_port_poll.  With
 * --netns (Linux) each thread first enters its own network namespace, so the packets cross a
 * veth pair.  What differs between Linux and Windows is behind os.h and the perf_os_* functions
 * below (os_linux.c, os_win.c).
 */
#ifndef MIOR_PERF_H
#define MIOR_PERF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <mior/mior.h>
#include <mior/pcap.h>

#include "hist.h"
#include "os.h"

/* printf-style checking where the compiler has it (GCC, clang; not MSVC).  mingw-w64 builds use
 * its own C99 printf (__USE_MINGW_ANSI_STDIO), which is what gnu_printf describes there. */
#if defined(__MINGW32__)
#  define PERF_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#elif defined(__GNUC__)
#  define PERF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define PERF_PRINTF(a, b)
#endif

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
  int all;                  /* --backend all: an unavailable backend is reported and skipped */
  int netns;
  uint32_t size;         /* udp: UDP payload bytes; ip: whole IP packet; packet: whole frame */
  double seconds;        /* measured phase */
  double warmup;         /* excluded phase before it */
  uint64_t rate;         /* packets per second, 0 = as fast as possible (throughput only) */
  uint32_t batch;        /* mior_options.batch, 0 = library default */
  uint32_t buf_count;    /* mior_options.buf_count, 0 = library default (--bufs) */
  uint32_t busy_poll_us; /* mior_options.busy_poll_us */
  int64_t coalesce_us;   /* mior_options.coalesce_us, -1 = the library's default */
  uint32_t queues;       /* receiver queues and sender flows (throughput only) */
  int json;
  int gso;               /* MIOR_OPT_UDP_GSO on the sender */
  int gso_slot;          /* --gso-slot: a batch of datagrams in one slot, mior_tx_send_gso */
  uint32_t opt_flags;    /* --opt: MIOR_OPT_* flags for both ends */
  const char *pcap_path; /* --pcap: record what the receiving ends get, or NULL */
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
  atomic_int *interrupted; /* set by Ctrl-C (and SIGTERM, SIGHUP on Linux) */
  atomic_int stop;         /* ask workers to finish */
  /* udp on IoRing, which has no address fields: both ends bind chosen ports and are connected
   * to each other (options.peer on both sides).  Otherwise the ports are 0 and only the sender
   * is connected. */
  int connected;
  uint16_t port_tx, port_rx;
  char peer_of_rx[64];     /* the receiver's / server's peer: the sender's address */
  mior_pcap *pcap;         /* --pcap: the capture of this backend's run, or NULL */
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
  /* CPU seconds of the sending (client) and receiving (server) threads, whole run (set-up,
   * warm-up and close included, like the baselines' getrusage(RUSAGE_THREAD)) */
  double cpu_tx_s, cpu_rx_s;
  uint64_t pcap_packets;   /* --pcap: packets recorded */
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

/* With --pcap, replace *recv by a receiver that records each packet into run->pcap first; tap is
 * the wrapper's storage and must outlive the transport.  Without --pcap, nothing changes. */
void perf_receiver_tap(const perf_run *run, mior_pcap_tap *tap, mior_receiver *recv);

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
  return atomic_load_explicit(&run->stop, memory_order_relaxed) ||
         atomic_load_explicit(run->interrupted, memory_order_relaxed);
}

/* Pin the calling thread (cpu < 0: leave it), enter its namespace (fd < 0: stay; Linux only).
 * 0, or a negative errno with *err filled. */
int perf_thread_setup(int cpu, int netns_fd, perf_error *err);

/* Two distinct free UDP ports on the loopback ends of env (for a connected run). */
int perf_pick_udp_ports(const perf_env *env, uint16_t *port_tx, uint16_t *port_rx, perf_error *err);

/* The system-specific part of the command line and the environment (os_linux.c, os_win.c).
 *
 * perf_os_check_args: refuse what this system cannot do (Linux: --kind ip|packet without --netns
 * and root; Windows: --kind ip|packet, --netns and --rps).  Prints the reason and returns the
 * exit status, or -1 to go on.
 * perf_os_env_open: fill *env for the run: loopback, or (Linux, --netns) a namespace pair, with
 * RPS when rps is set.  Returns -1 to go on, or the exit status after printing why not.
 * perf_os_env_close: undo it; 0, or a negative errno after printing why. */
int perf_os_check_args(const perf_config *cfg, int rps);
int perf_os_env_open(const perf_config *cfg, int rps, perf_env *env, const atomic_int *interrupted);
int perf_os_env_close(const perf_config *cfg);
/* How the run's network is described in the header line ("loopback", "a veth pair ..."). */
const char *perf_os_env_name(const perf_config *cfg);

/* The endpoint and the common options for one end of a run (tx_side: the sender / ping client,
 * else the receiver / echo server). */
void perf_endpoint(const perf_run *run, int tx_side, char *buf, size_t len);
void perf_options(const perf_run *run, mior_options *opts);

/* Progress line support. */
void perf_progress(const perf_run *run, const char *phase, double t, const char *fmt, ...)
    PERF_PRINTF(4, 5);
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
/* --backend all where one backend cannot run here: say so (a JSON line with "skipped" and the
 * reason under --json, else a line of text), and go on with the other. */
void perf_report_skipped(const perf_config *cfg, mior_backend b, const char *reason);

#endif
