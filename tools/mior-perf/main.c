/* mior-perf: packet throughput and latency through mior, like sockperf or iperf for packets.
 *
 *   mior-perf throughput|latency|microbench [options]      (mior-perf --help for the options)
 *
 * This file: the command line, the environment (loopback, or on Linux a namespace pair, set up
 * in os_linux.c), and the loop over backends.  The modes are in throughput.c and latency.c, the
 * output in report.c.  The same file builds on Linux and Windows (no getopt: MSVC has none).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testpkt.h"
#include "perf.h"
#include "microbench.h"
#include "sockperf.h"

/* Set by Ctrl-C (os_*.c); the workers and the main thread poll it. */
static atomic_int interrupted;

static void usage(FILE *f) {
  fprintf(f,
          "usage: mior-perf throughput|latency [options]\n"
          "       mior-perf microbench [microbench options]\n"
          "       mior-perf server|client [options]   sockperf's UDP protocol (--help there)\n"
          "\n"
          "Both ends run in this process, each on its own thread (pinned to different CPUs when\n"
          "there are two or more).  By default UDP over loopback (127.0.0.1), no privileges.\n"
          "\n"
          "  --backend B     uring (Linux), ioring (Windows), sockets, auto or all (the system's\n"
          "                  ring backend, then sockets, side by side; a backend that cannot run\n"
          "                  here is reported and skipped); default auto\n"
          "  --kind K        udp (default), ip (raw IPv4 with IP_HDRINCL) or packet (AF_PACKET,\n"
          "                  Ethernet frames); ip and packet need --netns and root (Linux only)\n"
          "  --netns         run across a veth pair between two new network namespaces (root;\n"
          "                  Linux only); the sender/client in one, the receiver/server in the other\n"
          "  --rps           with --netns: set RPS on the receiving veth so its kernel receive\n"
          "                  path runs on the receiver's CPU, not the sender's\n"
          "  --size N        udp: UDP payload bytes (default 18); ip: whole IPv4 packet\n"
          "                  (default 46); packet: whole Ethernet frame without FCS (default\n"
          "                  60).  Each default is a 60-byte Ethernet frame.\n"
          "  --seconds S     measured time, default 3 (after a warm-up)\n"
          "  --warmup S      excluded warm-up before it, default min(0.5, seconds / 4)\n"
          "  --rate PPS      throughput: send at this rate (token bucket), default unlimited\n"
          "  --batch N       packets per submit and per receive batch (mior_options.batch)\n"
          "  --busy-poll US  spin this long before blocking (mior_options.busy_poll_us)\n"
          "  --bufs N        pool slots per port (mior_options.buf_count), default the library's\n"
          "  --coalesce-us N receive coalescing of both ends (mior_options.coalesce_us; uring)\n"
          "  --opt LIST      transport options for both ends, comma-separated: no-multishot,\n"
          "                  no-registered-buffers, no-defer-taskrun, no-tx-ring (packet: one\n"
          "                  SEND per frame instead of the AF_PACKET TX ring), sqpoll,\n"
          "                  hugepages, mlock, no-gso, no-gro (udp: UDP GSO on send and UDP GRO on\n"
          "                  receive are the default) (MIOR_OPT_*; the uring ones are ignored by\n"
          "                  sockets)\n"
          "  --gso           accepted for old command lines: UDP GSO is the default now\n"
          "  --gso-slot      throughput, udp: the sender writes each batch (at most 64) of\n"
          "                  datagrams back to back into one 64 KiB slot and sends it with\n"
          "                  mior_tx_send_gso (one GSO send of one buffer, as a QUIC sender\n"
          "                  does), instead of a slot and a mior_tx_send per datagram\n"

          "  --pcap FILE     record every packet the receiving end gets (both ends in latency\n"
          "                  mode) into FILE, pcap format; with --backend all, FILE-BACKEND.pcap\n"
          "                  per backend.  Slows the receiver: for looking, not for measuring\n"
          "  --queues N      throughput: receiver queues and sender flows, default 1\n"
          "  --json          one JSON object per backend run on stdout, no table or progress\n"
          "  -h, --help      this text\n"
          "\n"
          "Exit status: 0 ok, 1 runtime failure (or interrupted), 2 usage error.\n"
          "See docs/MIOR-PERF.md.\n");
}

static int bad(const char *fmt, const char *arg) {
  fprintf(stderr, "mior-perf: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(mior-perf --help for usage)\n");
  return PERF_EXIT_USAGE;
}

/* --opt: comma-separated names of MIOR_OPT_* flags, for trying the transport's variants. */
static const struct {
  const char *name;
  uint32_t flag;
} opt_names[] = {
    {"no-registered-buffers", MIOR_OPT_NO_REGISTERED_BUFFERS},
    {"no-multishot", MIOR_OPT_NO_MULTISHOT},
    {"sqpoll", MIOR_OPT_SQPOLL},
    {"hugepages", MIOR_OPT_HUGEPAGES},
    {"mlock", MIOR_OPT_MLOCK},
    {"no-defer-taskrun", MIOR_OPT_NO_DEFER_TASKRUN},
    {"no-tx-ring", MIOR_OPT_NO_TX_RING},
    {"no-gso", MIOR_OPT_NO_UDP_GSO},
    {"no-gro", MIOR_OPT_NO_UDP_GRO},
};

static int parse_opt_flags(const char *s, uint32_t *flags) {
  while (*s) {
    size_t n = strcspn(s, ",");
    size_t i = 0;
    for (; i < sizeof opt_names / sizeof opt_names[0]; i++)
      if (strlen(opt_names[i].name) == n && !strncmp(s, opt_names[i].name, n)) break;
    if (i == sizeof opt_names / sizeof opt_names[0]) return -1;
    *flags |= opt_names[i].flag;
    s += n;
    if (*s == ',') s++;
  }
  return 0;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  char *end;
  errno = 0;
  if (!s[0] || s[0] == '-') return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int parse_secs(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
  *out = v;
  return 0;
}

enum { OPT_HELP = 1, OPT_BACKEND, OPT_KIND, OPT_NETNS, OPT_RPS, OPT_SIZE, OPT_SECONDS, OPT_WARMUP,
       OPT_RATE, OPT_BATCH, OPT_BUSY, OPT_QUEUES, OPT_JSON, OPT_GSO, OPT_OPT, OPT_PCAP, OPT_BUFS,
       OPT_COALESCE, OPT_GSO_SLOT };

typedef struct perf_option {
  const char *name;
  int has_arg;
  int id;
} perf_option;

static const perf_option options[] = {
    {"backend", 1, OPT_BACKEND}, {"kind", 1, OPT_KIND},     {"netns", 0, OPT_NETNS},
    {"rps", 0, OPT_RPS},         {"size", 1, OPT_SIZE},     {"seconds", 1, OPT_SECONDS},
    {"warmup", 1, OPT_WARMUP},   {"rate", 1, OPT_RATE},     {"batch", 1, OPT_BATCH},
    {"busy-poll", 1, OPT_BUSY},  {"queues", 1, OPT_QUEUES}, {"json", 0, OPT_JSON},
    {"gso", 0, OPT_GSO},         {"opt", 1, OPT_OPT},       {"pcap", 1, OPT_PCAP},
    {"bufs", 1, OPT_BUFS},       {"coalesce-us", 1, OPT_COALESCE}, {"help", 0, OPT_HELP},
    {"gso-slot", 0, OPT_GSO_SLOT},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Find the long option at argv[*i] the way getopt_long does: "--name value", "--name=value",
 * and any unambiguous prefix of a name.  Returns it with *value set (advancing *i past a
 * separate value), or NULL when it is unknown, ambiguous, lacks its value or gives one to a flag. */
static const perf_option *next_option(int argc, char **argv, int *i, const char **value) {
  const char *arg = argv[*i] + 2;
  const char *eq = strchr(arg, '=');
  size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
  const perf_option *found = NULL;
  int matches = 0;
  for (size_t k = 0; k < NOPTIONS && n > 0; k++) {
    if (strncmp(options[k].name, arg, n) != 0) continue;
    found = &options[k];
    if (strlen(options[k].name) == n) { /* an exact name wins over the names it is a prefix of */
      matches = 1;
      break;
    }
    matches++;
  }
  if (matches != 1) return NULL;
  *value = NULL;
  if (found->has_arg) {
    if (eq)
      *value = eq + 1;
    else if (*i + 1 < argc)
      *value = argv[++*i];
    else
      return NULL;
  } else if (eq) {
    return NULL;
  }
  return found;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, perf_config *cfg, int *rps) {
  uint64_t size = 0, v;
  double warmup = -1;
  const char *mode = NULL;
  int operands_only = 0;
  memset(cfg, 0, sizeof *cfg);
  cfg->backends[0] = MIOR_BACKEND_AUTO;
  cfg->nbackends = 1;
  cfg->seconds = 3;
  cfg->queues = 1;
  cfg->coalesce_us = -1;
  /* Options and the mode may come in any order, as with GNU getopt; "--" ends the options. */
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *val = NULL;
    if (operands_only || arg[0] != '-' || !arg[1]) {
      if (mode) return bad("unexpected argument '%s'", arg);
      mode = arg;
      continue;
    }
    if (!strcmp(arg, "--")) {
      operands_only = 1;
      continue;
    }
    if (!strcmp(arg, "-h")) {
      usage(stdout);
      return PERF_EXIT_OK;
    }
    const perf_option *o = arg[1] == '-' ? next_option(argc, argv, &i, &val) : NULL;
    if (!o) return bad("unknown or incomplete option '%s'", arg);
    switch (o->id) {
      case OPT_HELP: usage(stdout); return PERF_EXIT_OK;
      case OPT_BACKEND:
        if (!strcmp(val, "all")) {
          cfg->backends[0] = perf_ring_backend();
          cfg->backends[1] = MIOR_BACKEND_SOCKETS;
          cfg->nbackends = 2;
          cfg->all = 1;
        } else if (mior_backend_parse(val, &cfg->backends[0]) < 0) {
          return bad("unknown backend '%s' (uring, ioring, sockets, auto or all)", val);
        } else {
          cfg->nbackends = 1;
          cfg->all = 0;
        }
        break;
      case OPT_KIND:
        if (!strcmp(val, "udp")) cfg->kind = PERF_KIND_UDP;
        else if (!strcmp(val, "ip")) cfg->kind = PERF_KIND_IP;
        else if (!strcmp(val, "packet")) cfg->kind = PERF_KIND_PACKET;
        else return bad("unknown kind '%s' (udp, ip or packet)", val);
        break;
      case OPT_NETNS: cfg->netns = 1; break;
      case OPT_RPS: *rps = 1; break;
      case OPT_SIZE:
        if (parse_u64(val, 1, 65535, &size) < 0) return bad("bad --size '%s'", val);
        break;
      case OPT_SECONDS:
        if (parse_secs(val, 0.1, 3600, &cfg->seconds) < 0)
          return bad("bad --seconds '%s' (0.1 to 3600)", val);
        break;
      case OPT_WARMUP:
        if (parse_secs(val, 0, 60, &warmup) < 0) return bad("bad --warmup '%s' (0 to 60)", val);
        break;
      case OPT_RATE:
        if (parse_u64(val, 0, 100000000, &cfg->rate) < 0) return bad("bad --rate '%s'", val);
        break;
      case OPT_BATCH:
        if (parse_u64(val, 1, 4096, &v) < 0) return bad("bad --batch '%s' (1 to 4096)", val);
        cfg->batch = (uint32_t)v;
        break;
      case OPT_BUFS:
        if (parse_u64(val, 4, 1u << 20, &v) < 0) return bad("bad --bufs '%s' (4 to 1048576)", val);
        cfg->buf_count = (uint32_t)v;
        break;
      case OPT_BUSY:
        if (parse_u64(val, 0, 1000000, &v) < 0) return bad("bad --busy-poll '%s'", val);
        cfg->busy_poll_us = (uint32_t)v;
        break;
      case OPT_COALESCE:
        if (parse_u64(val, 0, 1000000, &v) < 0) return bad("bad --coalesce-us '%s'", val);
        cfg->coalesce_us = (int64_t)v;
        break;
      case OPT_QUEUES:
        if (parse_u64(val, 1, PERF_MAX_FLOWS, &v) < 0) return bad("bad --queues '%s' (1 to 16)", val);
        cfg->queues = (uint32_t)v;
        break;
      case OPT_JSON: cfg->json = 1; break;
      case OPT_GSO: cfg->gso = 1; break;
      case OPT_GSO_SLOT: cfg->gso_slot = 1; break;
      case OPT_OPT:
        if (parse_opt_flags(val, &cfg->opt_flags) < 0) return bad("bad --opt '%s' (see --help)", val);
        break;
      case OPT_PCAP:
        if (!val[0]) return bad("%s", "--pcap needs a file name");
        cfg->pcap_path = val;
        break;
      default: break;
    }
  }
  if (!mode) return bad("%s", "which mode? throughput, latency or microbench");
  if (!strcmp(mode, "throughput")) cfg->mode = PERF_MODE_THROUGHPUT;
  else if (!strcmp(mode, "latency")) cfg->mode = PERF_MODE_LATENCY;
  else return bad("unknown mode '%s' (throughput, latency or microbench)", mode);

  int rc = perf_os_check_args(cfg, *rps);
  if (rc >= 0) return rc;
  cfg->size = size ? (uint32_t)size : perf_size_default(cfg->kind);
  if (cfg->size < perf_size_min(cfg->kind) || cfg->size > perf_size_max(cfg->kind)) {
    fprintf(stderr, "mior-perf: --size %u out of range for --kind %s (%u to %u)\n", cfg->size,
            perf_kind_name(cfg->kind), perf_size_min(cfg->kind), perf_size_max(cfg->kind));
    return PERF_EXIT_USAGE;
  }
  if (cfg->netns && cfg->kind == PERF_KIND_UDP && cfg->size > 1472) {
    fprintf(stderr, "mior-perf: --size %u does not fit the veth's 1500-byte MTU (at most 1472)\n",
            cfg->size);
    return PERF_EXIT_USAGE;
  }
  cfg->warmup = warmup >= 0 ? warmup : (cfg->seconds / 4 < 0.5 ? cfg->seconds / 4 : 0.5);
  if (cfg->mode == PERF_MODE_LATENCY && (cfg->rate || cfg->queues > 1 || cfg->gso_slot))
    return bad("%s", "--rate, --queues and --gso-slot apply to throughput only");
  if (cfg->gso_slot && cfg->kind != PERF_KIND_UDP) return bad("%s", "--gso-slot needs --kind udp");
  cfg->progress = !cfg->json && perf_stderr_is_terminal();
  return -1;
}

/* --pcap FILE: one file per backend run.  With several backends (--backend all) the backend's
 * name goes before the extension: out.pcap -> out-uring.pcap, out-sockets.pcap. */
static void pcap_name(const perf_config *cfg, mior_backend b, char *buf, size_t len) {
  const char *path = cfg->pcap_path;
  if (cfg->nbackends < 2) {
    snprintf(buf, len, "%s", path);
    return;
  }
  const char *slash = strrchr(path, '/');
#ifdef _WIN32
  const char *bslash = strrchr(path, '\\');
  if (bslash && (!slash || bslash > slash)) slash = bslash;
#endif
  const char *dot = strrchr(path, '.');
  if (!dot || (slash && dot < slash)) dot = path + strlen(path);
  snprintf(buf, len, "%.*s-%s%s", (int)(dot - path), path, mior_backend_name(b), dot);
}

static uint32_t pcap_linktype(perf_kind k) {
  if (k == PERF_KIND_PACKET) return MIOR_PCAP_LINKTYPE_ETHERNET;
  if (k == PERF_KIND_IP) return MIOR_PCAP_LINKTYPE_RAW;
  return MIOR_PCAP_LINKTYPE_USER0; /* udp: payloads only */
}

static int run_backend(const perf_config *cfg, const perf_env *env, mior_backend b, perf_result *res) {
  perf_run run;
  memset(&run, 0, sizeof run);
  run.cfg = cfg;
  run.env = env;
  run.backend = b;
  run.run_id = perf_random_u32();
  run.interrupted = &interrupted;
  atomic_init(&run.stop, 0);

  perf_error err = {0, ""};
  int rc = 0;
  /* IoRing has no address fields, so on it (or on AUTO where IoRing exists, which picks it) udp
   * runs between two ends bound to chosen ports and connected to each other.  Elsewhere only the
   * sender is connected, as before. */
  run.connected = cfg->kind == PERF_KIND_UDP &&
                  (b == MIOR_BACKEND_IORING ||
                   (b == MIOR_BACKEND_AUTO && mior_backend_supported(MIOR_BACKEND_IORING) == 1));
  if (run.connected && cfg->queues > 1) {
    rc = -EOPNOTSUPP;
    snprintf(err.what, sizeof err.what,
             "--queues above 1 needs an unconnected receiver, and IoRing needs connected sockets");
  } else if (run.connected) {
    rc = perf_pick_udp_ports(env, &run.port_tx, &run.port_rx, &err);
    snprintf(run.peer_of_rx, sizeof run.peer_of_rx, "%s:%u", env->ip_tx, (unsigned)run.port_tx);
  }
  char pcap_path[1024] = "";
  if (rc >= 0 && cfg->pcap_path) {
    pcap_name(cfg, b, pcap_path, sizeof pcap_path);
    rc = mior_pcap_open(&run.pcap, pcap_path, pcap_linktype(cfg->kind), 0);
    if (rc < 0) snprintf(err.what, sizeof err.what, "--pcap %s: %s", pcap_path, mior_strerror(rc));
  }
  if (rc >= 0)
    rc = cfg->mode == PERF_MODE_LATENCY ? perf_latency(&run, res, &err) : perf_throughput(&run, res, &err);
  if (run.pcap) {
    uint64_t n = mior_pcap_count(run.pcap);
    int crc = mior_pcap_close(run.pcap);
    if (crc < 0 && rc >= 0) {
      rc = crc;
      snprintf(err.what, sizeof err.what, "--pcap %s: %s", pcap_path, mior_strerror(crc));
    }
    if (rc >= 0) {
      res->pcap_packets = n;
      if (!cfg->json) fprintf(stderr, "mior-perf: %llu packets recorded in %s\n", (unsigned long long)n, pcap_path);
    }
  }
  if (rc < 0) {
    fprintf(stderr, "mior-perf: %s %s over %s: %s\n", mior_backend_name(b), perf_mode_name(cfg->mode),
            perf_kind_name(cfg->kind), err.what);
    return rc;
  }
  /* With auto, say which backend actually ran. */
  if (b == MIOR_BACKEND_AUTO) res->backend = res->rx_stats.backend;
  return 0;
}

int main(int argc, char **argv) {
  perf_os_init();
  /* "selftest" is the old name of this mode (it is a benchmark, not a test). */
  if (argc >= 2 && (!strcmp(argv[1], "microbench") || !strcmp(argv[1], "selftest")))
    return mior_perf_microbench(argc - 1, argv + 1);
  if (argc >= 2 && (!strcmp(argv[1], "server") || !strcmp(argv[1], "client")))
    return mior_perf_sockperf(argc - 1, argv + 1);

  perf_config cfg;
  int rps = 0;
  int rc = parse_args(argc, argv, &cfg, &rps);
  if (rc >= 0) return rc;

  /* A backend demanded by name must run here.  With --backend all, one that cannot (IoRing under
   * Wine or before Windows 11, io_uring disabled by sysctl) is reported with the reason and
   * skipped: "all" means every backend this system has. */
  char skip_reason[2][256] = {"", ""};
  int runnable = 0;
  for (int i = 0; i < cfg.nbackends; i++) {
    if (cfg.backends[i] == MIOR_BACKEND_AUTO || mior_backend_supported(cfg.backends[i]) == 1) {
      runnable++;
      continue;
    }
    if (!cfg.all) {
      fprintf(stderr, "mior-perf: backend %s is not available here: %s\n",
              mior_backend_name(cfg.backends[i]), mior_last_error());
      return PERF_EXIT_RUNTIME;
    }
    snprintf(skip_reason[i], sizeof skip_reason[i], "%s",
             mior_last_error()[0] ? mior_last_error() : "not supported on this system");
  }
  if (!runnable) {
    fprintf(stderr, "mior-perf: none of the backends of --backend all is available here\n");
    return PERF_EXIT_RUNTIME;
  }

  perf_interrupt_install(&interrupted);

  perf_env env;
  memset(&env, 0, sizeof env);
  env.netns_fd_tx = env.netns_fd_rx = -1;
  snprintf(env.ip_tx, sizeof env.ip_tx, "127.0.0.1");
  snprintf(env.ip_rx, sizeof env.ip_rx, "127.0.0.1");
  if (perf_cpu_count() >= 2) {
    env.cpu_tx = 0;
    env.cpu_rx = 1;
  } else {
    env.cpu_tx = env.cpu_rx = -1;
  }

  int status = PERF_EXIT_OK;
  rc = perf_os_env_open(&cfg, rps, &env, &interrupted);
  if (rc >= 0) {
    status = rc;
    goto out;
  }

  if (!cfg.json) {
    printf("mior-perf %s: %s over %s, %.1f s measured after %.1f s warm-up, size %u, cpus tx %d rx %d%s\n",
           perf_mode_name(cfg.mode), perf_kind_name(cfg.kind), perf_os_env_name(&cfg), cfg.seconds,
           cfg.warmup, cfg.size, env.cpu_tx, env.cpu_rx,
           cfg.netns ? (rps ? ", RPS on" : ", RPS off") : "");
    fflush(stdout);
  }
  perf_result res[2];
  memset(res, 0, sizeof res);
  int ran = 0;
  for (int i = 0; i < cfg.nbackends && !atomic_load(&interrupted); i++) {
    if (skip_reason[i][0]) {
      perf_report_skipped(&cfg, cfg.backends[i], skip_reason[i]);
      continue;
    }
    if (run_backend(&cfg, &env, cfg.backends[i], &res[i]) < 0) {
      status = PERF_EXIT_RUNTIME;
      break;
    }
    ran++;
    if (cfg.json) {
      perf_report_json(&cfg, &res[i]);
    } else {
      printf("\n");
      perf_report_one(&cfg, &res[i]);
      fflush(stdout);
    }
  }
  if (status == PERF_EXIT_OK && atomic_load(&interrupted)) status = PERF_EXIT_RUNTIME;
  if (status == PERF_EXIT_OK && ran == 2 && !cfg.json) perf_report_compare(&cfg, &res[0], &res[1]);

out:
  /* Also after a failed or interrupted set-up: whatever part of it was made is removed. */
  if (perf_os_env_close(&cfg) < 0) status = PERF_EXIT_RUNTIME;
  if (atomic_load(&interrupted)) fprintf(stderr, "mior-perf: interrupted\n");
  return status;
}
