/* bench/baselines: hand-written comparison programs for bench/run.sh.
 *
 * Each program is what a careful user would write without mior (sendto, sendmmsg, io_uring,
 * AF_PACKET rings, AF_XDP, a socket ping-pong).  They share this small frame: the command line
 * (the same conventions as mior-perf: --seconds, --size, --netns, --rps, --rate, --batch,
 * --json), the environment (loopback, or a veth pair between two namespaces made with
 * tools/common/netns.h and always removed), one receiver and one sender thread pinned to
 * different CPUs, the measurement window, and the CPU each thread used (getrusage).
 *
 * Not part of the library; not run by CI's test stage.
 */
#ifndef BENCH_BL_H
#define BENCH_BL_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A test packet's UDP payload starts with this magic and a 64-bit sequence number, so the
 * receivers of raw frames (AF_PACKET, AF_XDP) count only ours. */
#define BL_MAGIC 0x726f696du /* "mior" little-endian, any fixed value works */
#define BL_HDR 12u
#define BL_SPORT 40000
#define BL_DPORT 47000

typedef enum bl_kind {
  BL_KIND_UDP,   /* --size is the UDP payload (18 = a 60-byte frame) */
  BL_KIND_FRAME, /* --size is the whole Ethernet frame (60) */
} bl_kind;

typedef struct bl_cfg {
  const char *method; /* name written to the JSON */
  bl_kind kind;
  int netns, rps, json, need_netns;
  uint32_t size, batch, busy_poll_us;
  double seconds, warmup;
  uint64_t rate;
  const char *mode; /* "throughput" or "latency" */
} bl_cfg;

typedef struct bl_env {
  int fd_tx, fd_rx; /* namespace fds, -1 = host */
  char ip_tx[16], ip_rx[16];
  char if_tx[16], if_rx[16];
  int ifindex_tx, ifindex_rx;
  uint8_t mac_tx[6], mac_rx[6];
  int cpu_tx, cpu_rx;
} bl_env;

/* One end.  The method's functions run on that end's thread, in its namespace. */
typedef struct bl_side {
  const bl_cfg *cfg;
  const bl_env *env;
  int is_tx;
  void *priv;                 /* the method's state */
  _Atomic uint64_t count;     /* packets sent / received so far (published by the method) */
  struct sockaddr_in rx_addr; /* udp: the receiver's bound address, filled by rx open */
  struct bl_side *peer;
  double cpu_s;               /* this thread's user + system CPU, whole run */
  char err[256];
  atomic_int ready, go, stop;
  pthread_t th;
} bl_side;

typedef struct bl_method {
  const char *name;
  bl_kind kind;
  int need_netns; /* raw frames: only across the veth */
  uint32_t default_batch;
  int (*rx_open)(bl_side *s);
  int (*rx_loop)(bl_side *s);
  int (*tx_open)(bl_side *s);
  int (*tx_loop)(bl_side *s);
  void (*close)(bl_side *s);
} bl_method;

/* Run a throughput test with one of the methods (selected with --method when there are several);
 * returns the exit status (0 ok, 1 runtime, 2 usage). */
int bl_throughput_main(int argc, char **argv, const bl_method *const *methods, int nmethods);

/* 1 when the side should stop (asked to, or interrupted). */
int bl_stopping(const bl_side *s);

/* Record an error on the side ("what: strerror(-err)"); returns -1. */
int bl_fail(bl_side *s, int err, const char *what);

/* --rate: how many of `want` packets may go now; waits (bounded, checks stop) until at least one
 * may.  Without --rate returns want. */
uint32_t bl_rate_allow(bl_side *s, uint32_t want);

/* Build a whole Ethernet + IPv4 + UDP frame of `frame_len` bytes from the environment's tx end to
 * its rx end (dst MAC = the "other host" address mior-perf uses, so the peer's IP stack drops
 * it at once, see docs/MIOR-PERF.md); returns the offset of the UDP payload. */
uint32_t bl_frame_build(const bl_env *env, uint8_t *buf, uint32_t frame_len, int to_peer_mac);
/* Write the magic and sequence number at p. */
void bl_payload_put(uint8_t *p, uint64_t seq);
/* 1 if a whole frame (Ethernet first) is one of ours. */
int bl_frame_ours(const uint8_t *f, uint32_t len);
/* The UDP payload length for a frame method's --size, or --size itself for UDP methods. */
uint32_t bl_udp_payload(const bl_cfg *cfg);
uint32_t bl_frame_len(const bl_cfg *cfg);

/* 4 MiB send and receive buffers, as mior sets by default (SO_*BUFFORCE as root, which goes
 * past net.core.[rw]mem_max), so a baseline is not held back by the kernel's default 208 KiB. */
#define BL_SOCKBUF (4 << 20)
void bl_sockbufs(int fd);

/* Shared by the ping-pong program. */
int bl_parse(int argc, char **argv, bl_cfg *cfg, const char **method_name);
int bl_env_setup(bl_cfg *cfg, bl_env *env);
/* Ctrl-C, SIGTERM and SIGHUP set bl_interrupted (no SA_RESTART: sleeps end early).
 * bl_env_setup does this itself. */
void bl_signals_install(void);
void bl_env_teardown(void);
int bl_thread_enter(bl_side *s);
double bl_thread_cpu(void);
double bl_now(void);
void bl_sleep(double s);
extern volatile sig_atomic_t bl_interrupted;
void bl_json_common(const bl_cfg *cfg);

#endif
