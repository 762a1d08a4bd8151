/* bench/baselines: the shared frame of the baseline programs (see bl.h). */
#include "bl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"

volatile sig_atomic_t bl_interrupted;
static netns_pair pair;
static int pair_made;
static const uint8_t other_mac[6] = {0x02, 0x6d, 0x69, 0x6f, 0x72, 0x01};

static void on_signal(int sig) {
  (void)sig;
  bl_interrupted = 1;
}

double bl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bl_sleep(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL); /* a signal cuts it short; callers check their stop flags */
}

double bl_thread_cpu(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) < 0) return 0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

int bl_stopping(const bl_side *s) {
  return atomic_load_explicit(&s->stop, memory_order_relaxed) || bl_interrupted;
}

int bl_fail(bl_side *s, int err, const char *what) {
  if (!s->err[0]) snprintf(s->err, sizeof s->err, "%s: %s", what, strerror(err < 0 ? -err : err));
  return -1;
}

/* Token bucket, one per sending thread (only the sender calls it). */
static __thread double tb_tokens, tb_last;

uint32_t bl_rate_allow(bl_side *s, uint32_t want) {
  const bl_cfg *cfg = s->cfg;
  if (!cfg->rate) return want;
  double per_s = (double)cfg->rate;
  /* Up to 10 ms (or one batch) of burst, so a short stall does not cost the granted rate. */
  double burst = per_s / 100 > want ? per_s / 100 : want;
  for (int spins = 0; !bl_stopping(s); spins++) {
    double now = bl_now();
    if (tb_last == 0) tb_last = now;
    tb_tokens += (now - tb_last) * per_s;
    tb_last = now;
    if (tb_tokens > burst) tb_tokens = burst;
    if (tb_tokens >= 1) {
      uint32_t n = tb_tokens < want ? (uint32_t)tb_tokens : want;
      tb_tokens -= n;
      return n;
    }
    /* Sleep until a token is due, and never less than 200 us (mior-perf paces the same way):
     * what accrued meanwhile leaves as one batch.  Spinning through short gaps would make the
     * CPU figure of a fixed-rate run measure the spin loop, sleeping per packet the timer. */
    double wait = (1 - tb_tokens) / per_s;
    bl_sleep(wait > 200e-6 ? wait : 200e-6);
  }
  return 0;
}

static uint16_t csum16(const uint8_t *p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += (uint32_t)p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

uint32_t bl_frame_build(const bl_env *env, uint8_t *f, uint32_t frame_len, int to_peer_mac) {
  memset(f, 0, frame_len);
  memcpy(f, to_peer_mac ? env->mac_rx : other_mac, 6);
  memcpy(f + 6, env->mac_tx, 6);
  f[12] = 0x08, f[13] = 0x00;
  uint8_t *ip = f + 14;
  uint16_t iplen = (uint16_t)(frame_len - 14), udplen = (uint16_t)(frame_len - 34);
  ip[0] = 0x45;
  ip[2] = (uint8_t)(iplen >> 8), ip[3] = (uint8_t)iplen;
  ip[6] = 0x40; /* DF */
  ip[8] = 64, ip[9] = 17;
  inet_pton(AF_INET, env->ip_tx, ip + 12);
  inet_pton(AF_INET, env->ip_rx, ip + 16);
  uint16_t c = csum16(ip, 20);
  ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
  uint8_t *udp = ip + 20;
  udp[0] = BL_SPORT >> 8, udp[1] = BL_SPORT & 0xff;
  udp[2] = BL_DPORT >> 8, udp[3] = BL_DPORT & 0xff;
  udp[4] = (uint8_t)(udplen >> 8), udp[5] = (uint8_t)udplen; /* checksum 0: none (IPv4) */
  return 42;
}

void bl_payload_put(uint8_t *p, uint64_t seq) {
  uint32_t m = BL_MAGIC;
  memcpy(p, &m, 4);
  memcpy(p + 4, &seq, 8);
}

int bl_frame_ours(const uint8_t *f, uint32_t len) {
  uint32_t m;
  if (len < 42 + BL_HDR || f[12] != 0x08 || f[13] != 0x00 || f[23] != 17) return 0;
  memcpy(&m, f + 42, 4);
  return m == BL_MAGIC;
}

uint32_t bl_frame_len(const bl_cfg *cfg) { return cfg->kind == BL_KIND_UDP ? cfg->size + 42 : cfg->size; }
uint32_t bl_udp_payload(const bl_cfg *cfg) { return cfg->kind == BL_KIND_UDP ? cfg->size : cfg->size - 42; }

static void usage(FILE *f, const char *prog) {
  fprintf(f,
          "usage: %s [options]   (a baseline for bench/run.sh; see bench/README.md)\n"
          "  --method M      which method, where the program has several\n"
          "  --netns         across a veth pair between two new namespaces (root)\n"
          "  --rps           with --netns: RPS on the receiving veth (receiver's CPU)\n"
          "  --size N        udp methods: UDP payload (default 18); frame methods: the whole\n"
          "                  Ethernet frame (default 60)\n"
          "  --seconds S     measured time (default 3), after --warmup S (default min(0.5, S/4))\n"
          "  --rate PPS      send at this rate (throughput), default unlimited\n"
          "  --batch N       packets per system call / submit, where the method batches\n"
          "  --busy-poll US  ping-pong: spin instead of blocking (any value > 0)\n"
          "  --json          one JSON object on stdout\n",
          prog);
}

int bl_parse(int argc, char **argv, bl_cfg *cfg, const char **method_name) {
  static const struct option lo[] = {
      {"method", required_argument, NULL, 'm'}, {"netns", no_argument, NULL, 'n'},
      {"rps", no_argument, NULL, 'r'},          {"size", required_argument, NULL, 's'},
      {"seconds", required_argument, NULL, 't'}, {"warmup", required_argument, NULL, 'w'},
      {"rate", required_argument, NULL, 'R'},    {"batch", required_argument, NULL, 'b'},
      {"busy-poll", required_argument, NULL, 'B'}, {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
  };
  int c;
  cfg->seconds = 3;
  cfg->warmup = -1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
      case 'm': *method_name = optarg; break;
      case 'n': cfg->netns = 1; break;
      case 'r': cfg->rps = 1; break;
      case 's': cfg->size = (uint32_t)strtoul(optarg, &end, 10); break;
      case 't': cfg->seconds = strtod(optarg, &end); break;
      case 'w': cfg->warmup = strtod(optarg, &end); break;
      case 'R': cfg->rate = strtoull(optarg, &end, 10); break;
      case 'b': cfg->batch = (uint32_t)strtoul(optarg, &end, 10); break;
      case 'B': cfg->busy_poll_us = (uint32_t)strtoul(optarg, &end, 10); break;
      case 'j': cfg->json = 1; break;
      case 'h': usage(stdout, argv[0]); return 0;
      default: usage(stderr, argv[0]); return 2;
    }
    if (end && *end) {
      fprintf(stderr, "%s: bad value '%s'\n", argv[0], optarg);
      return 2;
    }
  }
  if (!(cfg->seconds >= 0.1 && cfg->seconds <= 3600) || cfg->batch > 4096 || cfg->rate > 100000000) {
    fprintf(stderr, "%s: --seconds 0.1..3600, --batch up to 4096, --rate up to 1e8\n", argv[0]);
    return 2;
  }
  if (cfg->warmup < 0) cfg->warmup = cfg->seconds / 4 < 0.5 ? cfg->seconds / 4 : 0.5;
  if (cfg->rps && !cfg->netns) {
    fprintf(stderr, "%s: --rps needs --netns\n", argv[0]);
    return 2;
  }
  return -1;
}

/* Check --size against the kind, once the method (and so the kind) is known. */
static int check_size(bl_cfg *cfg, const char *prog) {
  if (!cfg->size) cfg->size = cfg->kind == BL_KIND_UDP ? 18 : 60;
  uint32_t lo = cfg->kind == BL_KIND_UDP ? BL_HDR : 42 + BL_HDR;
  uint32_t hi = cfg->kind == BL_KIND_UDP ? (cfg->netns ? 1472 : 65000) : 1514;
  if (cfg->size < lo || cfg->size > hi) {
    fprintf(stderr, "%s: --size %u out of range (%u to %u)\n", prog, cfg->size, lo, hi);
    return 2;
  }
  if (cfg->need_netns && (!cfg->netns || geteuid() != 0)) {
    fprintf(stderr, "%s: method %s needs --netns and root\n", prog, cfg->method);
    return 2;
  }
  return -1;
}

void bl_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

int bl_env_setup(bl_cfg *cfg, bl_env *env) {
  bl_signals_install();

  memset(env, 0, sizeof *env);
  env->fd_tx = env->fd_rx = -1;
  snprintf(env->ip_tx, sizeof env->ip_tx, "127.0.0.1");
  snprintf(env->ip_rx, sizeof env->ip_rx, "127.0.0.1");
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  env->cpu_tx = ncpu >= 2 ? 0 : -1;
  env->cpu_rx = ncpu >= 2 ? 1 : -1;
  if (!cfg->netns) return 0;
  char why[256];
  if (!netns_available(why, sizeof why)) {
    fprintf(stderr, "--netns is not available: %s\n", why);
    return 2;
  }
  /* Subnet 201 and tag "bl": apart from mior-perf's (200, "perf"). Static neighbours: no ARP. */
  int rc = netns_pair_create(&pair, "bl", 201, 1);
  if (rc < 0) {
    fprintf(stderr, "creating the namespaces: %s\n", strerror(-rc));
    netns_pair_destroy(&pair);
    return 1;
  }
  pair_made = 1;
  env->fd_tx = pair.fd_a;
  env->fd_rx = pair.fd_b;
  snprintf(env->ip_tx, sizeof env->ip_tx, "%s", pair.ip_a);
  snprintf(env->ip_rx, sizeof env->ip_rx, "%s", pair.ip_b);
  snprintf(env->if_tx, sizeof env->if_tx, "%s", pair.if_a);
  snprintf(env->if_rx, sizeof env->if_rx, "%s", pair.if_b);
  env->ifindex_tx = pair.ifindex_a;
  env->ifindex_rx = pair.ifindex_b;
  memcpy(env->mac_tx, pair.mac_a, 6);
  memcpy(env->mac_rx, pair.mac_b, 6);
  if (cfg->rps && env->cpu_rx >= 0) {
    char mask[16];
    snprintf(mask, sizeof mask, "%x", 1u << env->cpu_rx);
    rc = netns_set_rps(&pair, 1, mask);
    if (rc < 0) {
      fprintf(stderr, "setting RPS: %s\n", strerror(-rc));
      return 1;
    }
  }
  return 0;
}

void bl_env_teardown(void) {
  if (pair_made) {
    int rc = netns_pair_destroy(&pair);
    if (rc < 0) fprintf(stderr, "removing namespaces %s/%s: %s\n", pair.ns_a, pair.ns_b, strerror(-rc));
    pair_made = 0;
  }
}

void bl_sockbufs(int fd) {
  int v = BL_SOCKBUF;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
}

int bl_thread_enter(bl_side *s) {
  int cpu = s->is_tx ? s->env->cpu_tx : s->env->cpu_rx;
  int fd = s->is_tx ? s->env->fd_tx : s->env->fd_rx;
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* a refinement only */
  }
  if (fd >= 0) {
    int rc = netns_enter(fd);
    if (rc < 0) return bl_fail(s, rc, "entering the namespace");
  }
  return 0;
}

void bl_json_common(const bl_cfg *cfg) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  printf("\"backend\":\"baseline\",\"method\":\"%s\",\"mode\":\"%s\",\"kind\":\"%s\",\"netns\":%s,"
         "\"rps\":%s,\"size\":%u,\"frame\":%u,\"batch\":%u,\"rate\":%llu,\"busy_poll_us\":%u,"
         "\"cpu_s\":%.4f,\"maxrss_kb\":%ld",
         cfg->method, cfg->mode, cfg->kind == BL_KIND_UDP ? "udp" : "packet",
         cfg->netns ? "true" : "false", cfg->rps ? "true" : "false", cfg->size, bl_frame_len(cfg),
         cfg->batch, (unsigned long long)cfg->rate, cfg->busy_poll_us, cpu, ru.ru_maxrss);
}

static void *side_main(void *arg) {
  bl_side *s = arg;
  const bl_method *m = s->priv;
  s->priv = NULL;
  int rc = bl_thread_enter(s);
  if (rc == 0) rc = s->is_tx ? m->tx_open(s) : m->rx_open(s);
  atomic_store(&s->ready, 1);
  if (rc == 0 && s->is_tx) {
    for (int i = 0; i < 60000 && !atomic_load(&s->go) && !bl_stopping(s); i++) bl_sleep(0.001);
  }
  if (rc == 0 && !bl_stopping(s)) rc = s->is_tx ? m->tx_loop(s) : m->rx_loop(s);
  if (rc != 0 && !s->err[0]) snprintf(s->err, sizeof s->err, "failed");
  if (m->close) m->close(s);
  s->cpu_s = bl_thread_cpu();
  atomic_store(&s->ready, 1);
  return NULL;
}

static int start_side(bl_side *s, const bl_method *m) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old); /* the main thread takes the signals */
  s->priv = (void *)m;
  int rc = pthread_create(&s->th, NULL, side_main, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc ? -rc : 0;
}

static int wait_ready(bl_side *s) {
  for (int i = 0; i < 30000 && !atomic_load(&s->ready) && !bl_interrupted; i++) bl_sleep(0.001);
  return atomic_load(&s->ready) && !s->err[0];
}

int bl_throughput_main(int argc, char **argv, const bl_method *const *methods, int nmethods) {
  bl_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  const char *mname = NULL;
  int rc = bl_parse(argc, argv, &cfg, &mname);
  if (rc >= 0) return rc;
  const bl_method *m = NULL;
  for (int i = 0; i < nmethods; i++)
    if (!mname || !strcmp(mname, methods[i]->name)) {
      m = methods[i];
      break;
    }
  if (!m) {
    fprintf(stderr, "%s: unknown --method '%s'\n", argv[0], mname);
    return 2;
  }
  cfg.method = m->name;
  cfg.kind = m->kind;
  cfg.need_netns = m->need_netns;
  cfg.mode = "throughput";
  if (!cfg.batch) cfg.batch = m->default_batch;
  if ((rc = check_size(&cfg, argv[0])) >= 0) return rc;

  bl_env env;
  rc = bl_env_setup(&cfg, &env);
  if (rc) {
    bl_env_teardown();
    return rc;
  }
  bl_side *rx = calloc(1, sizeof *rx), *tx = calloc(1, sizeof *tx);
  int status = 1, rx_on = 0, tx_on = 0;
  if (!rx || !tx) goto out;
  rx->cfg = tx->cfg = &cfg;
  rx->env = tx->env = &env;
  tx->is_tx = 1;
  rx->peer = tx;
  tx->peer = rx;
  if (start_side(rx, m) < 0) goto out;
  rx_on = 1;
  if (!wait_ready(rx)) goto out;
  if (start_side(tx, m) < 0) goto out;
  tx_on = 1;
  if (!wait_ready(tx)) goto out;

  atomic_store(&tx->go, 1);
  double t0 = bl_now();
  while (!bl_interrupted && bl_now() < t0 + cfg.warmup && !tx->err[0] && !rx->err[0]) bl_sleep(0.01);
  double ta = bl_now();
  uint64_t txa = atomic_load(&tx->count), rxa = atomic_load(&rx->count);
  while (!bl_interrupted && bl_now() < ta + cfg.seconds && !tx->err[0] && !rx->err[0]) bl_sleep(0.01);
  double tb = bl_now();
  uint64_t txb = atomic_load(&tx->count), rxb = atomic_load(&rx->count);

  /* Stop the sender, then let the receiver drain until its count stops moving (at most 1 s). */
  atomic_store(&tx->stop, 1);
  pthread_join(tx->th, NULL);
  tx_on = 0;
  uint64_t prev = UINT64_MAX;
  for (int i = 0; i < 10 && !bl_interrupted; i++) {
    uint64_t cur = atomic_load(&rx->count);
    if (cur == prev) break;
    prev = cur;
    bl_sleep(0.1);
  }
  atomic_store(&rx->stop, 1);
  pthread_join(rx->th, NULL);
  rx_on = 0;
  if (tx->err[0] || rx->err[0] || bl_interrupted) {
    fprintf(stderr, "%s %s: %s%s%s\n", argv[0], m->name, tx->err[0] ? tx->err : rx->err,
            tx->err[0] && rx->err[0] ? "; receiver: " : "", tx->err[0] && rx->err[0] ? rx->err : "");
    if (bl_interrupted) fprintf(stderr, "%s: interrupted\n", argv[0]);
    goto out;
  }
  double secs = tb - ta;
  double tx_pps = (double)(txb - txa) / secs, rx_pps = (double)(rxb - rxa) / secs;
  uint64_t txt = atomic_load(&tx->count), rxt = atomic_load(&rx->count);
  double lost = txt > rxt ? (double)(txt - rxt) : 0;
  double cpu = tx->cpu_s + rx->cpu_s;
  if (cfg.json) {
    printf("{");
    bl_json_common(&cfg);
    printf(",\"seconds\":%.3f,\"tx_pps\":%.1f,\"rx_pps\":%.1f,\"tx_total\":%llu,\"rx_total\":%llu,"
           "\"lost\":%.0f,\"loss\":%.4f,\"cpu_tx_s\":%.4f,\"cpu_rx_s\":%.4f,"
           "\"cpu_s_per_mpkt\":%.4f,\"cpu_tx_s_per_mpkt\":%.4f,\"cpu_rx_s_per_mpkt\":%.4f}\n",
           secs, tx_pps, rx_pps, (unsigned long long)txt, (unsigned long long)rxt, lost,
           txt ? 100 * lost / (double)txt : 0, tx->cpu_s, rx->cpu_s, txt ? cpu / ((double)txt / 1e6) : 0,
           txt ? tx->cpu_s / ((double)txt / 1e6) : 0, rxt ? rx->cpu_s / ((double)rxt / 1e6) : 0);
  } else {
    printf("%s: %s over %s, size %u (%u-byte frame), %.2f s, batch %u%s\n", argv[0], m->name,
           cfg.netns ? "veth" : "loopback", cfg.size, bl_frame_len(&cfg), secs, cfg.batch,
           cfg.netns ? (cfg.rps ? ", RPS on" : ", RPS off") : "");
    printf("  tx %12.0f pps   rx %12.0f pps   loss %.3f %%\n", tx_pps, rx_pps,
           txt ? 100 * lost / (double)txt : 0);
    printf("  cpu tx %.3f s  rx %.3f s   %.3f CPU s per million packets sent\n", tx->cpu_s, rx->cpu_s,
           txt ? cpu / ((double)txt / 1e6) : 0);
  }
  status = 0;
out:
  if (tx) atomic_store(&tx->stop, 1);
  if (rx) atomic_store(&rx->stop, 1);
  if (tx_on) pthread_join(tx->th, NULL);
  if (rx_on) pthread_join(rx->th, NULL);
  if (status && rx && tx && (rx->err[0] || tx->err[0]) && !bl_interrupted)
    fprintf(stderr, "%s %s: %s %s\n", argv[0], m->name, tx->err, rx->err);
  free(rx);
  free(tx);
  bl_env_teardown();
  return status;
}
