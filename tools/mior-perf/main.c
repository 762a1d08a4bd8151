/* mior-perf: packet throughput and latency through mior, like sockperf or iperf for packets.
 *
 *   mior-perf throughput|latency|selftest [options]      (mior-perf --help for the options)
 *
 * This file: the command line, the environment (loopback or a namespace pair), signals, and the
 * loop over backends.  The modes are in throughput.c and latency.c, the output in report.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "testpkt.h"
#include "netns.h"
#include "perf.h"
#include "selftest.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: mior-perf throughput|latency [options]\n"
          "       mior-perf selftest [selftest options]\n"
          "\n"
          "Both ends run in this process, each on its own thread (pinned to different CPUs when\n"
          "there are two or more).  By default UDP over loopback (127.0.0.1), no privileges.\n"
          "\n"
          "  --backend B     uring, sockets, auto or all (uring then sockets, side by side);\n"
          "                  default auto\n"
          "  --kind K        udp (default), ip (raw IPv4 with IP_HDRINCL) or packet (AF_PACKET,\n"
          "                  Ethernet frames); ip and packet need --netns and root\n"
          "  --netns         run across a veth pair between two new network namespaces (root);\n"
          "                  the sender/client in one, the receiver/server in the other\n"
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

enum { OPT_BACKEND = 256, OPT_KIND, OPT_NETNS, OPT_RPS, OPT_SIZE, OPT_SECONDS, OPT_WARMUP,
       OPT_RATE, OPT_BATCH, OPT_BUSY, OPT_QUEUES, OPT_JSON };

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, perf_config *cfg, int *rps) {
  static const struct option longopts[] = {
      {"backend", required_argument, NULL, OPT_BACKEND}, {"kind", required_argument, NULL, OPT_KIND},
      {"netns", no_argument, NULL, OPT_NETNS},           {"rps", no_argument, NULL, OPT_RPS},
      {"size", required_argument, NULL, OPT_SIZE},       {"seconds", required_argument, NULL, OPT_SECONDS},
      {"warmup", required_argument, NULL, OPT_WARMUP},   {"rate", required_argument, NULL, OPT_RATE},
      {"batch", required_argument, NULL, OPT_BATCH},     {"busy-poll", required_argument, NULL, OPT_BUSY},
      {"queues", required_argument, NULL, OPT_QUEUES},   {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, 'h'},                  {NULL, 0, NULL, 0},
  };
  uint64_t size = 0, v;
  double warmup = -1;
  int c;
  memset(cfg, 0, sizeof *cfg);
  cfg->backends[0] = MIOR_BACKEND_AUTO;
  cfg->nbackends = 1;
  cfg->seconds = 3;
  cfg->queues = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case 'h': usage(stdout); return PERF_EXIT_OK;
      case OPT_BACKEND:
        if (!strcmp(optarg, "all")) {
          cfg->backends[0] = MIOR_BACKEND_URING;
          cfg->backends[1] = MIOR_BACKEND_SOCKETS;
          cfg->nbackends = 2;
        } else if (mior_backend_parse(optarg, &cfg->backends[0]) < 0) {
          return bad("unknown backend '%s' (uring, sockets, auto or all)", optarg);
        } else {
          cfg->nbackends = 1;
        }
        break;
      case OPT_KIND:
        if (!strcmp(optarg, "udp")) cfg->kind = PERF_KIND_UDP;
        else if (!strcmp(optarg, "ip")) cfg->kind = PERF_KIND_IP;
        else if (!strcmp(optarg, "packet")) cfg->kind = PERF_KIND_PACKET;
        else return bad("unknown kind '%s' (udp, ip or packet)", optarg);
        break;
      case OPT_NETNS: cfg->netns = 1; break;
      case OPT_RPS: *rps = 1; break;
      case OPT_SIZE:
        if (parse_u64(optarg, 1, 65535, &size) < 0) return bad("bad --size '%s'", optarg);
        break;
      case OPT_SECONDS:
        if (parse_secs(optarg, 0.1, 3600, &cfg->seconds) < 0)
          return bad("bad --seconds '%s' (0.1 to 3600)", optarg);
        break;
      case OPT_WARMUP:
        if (parse_secs(optarg, 0, 60, &warmup) < 0) return bad("bad --warmup '%s' (0 to 60)", optarg);
        break;
      case OPT_RATE:
        if (parse_u64(optarg, 0, 100000000, &cfg->rate) < 0) return bad("bad --rate '%s'", optarg);
        break;
      case OPT_BATCH:
        if (parse_u64(optarg, 1, 4096, &v) < 0) return bad("bad --batch '%s' (1 to 4096)", optarg);
        cfg->batch = (uint32_t)v;
        break;
      case OPT_BUSY:
        if (parse_u64(optarg, 0, 1000000, &v) < 0) return bad("bad --busy-poll '%s'", optarg);
        cfg->busy_poll_us = (uint32_t)v;
        break;
      case OPT_QUEUES:
        if (parse_u64(optarg, 1, PERF_MAX_FLOWS, &v) < 0) return bad("bad --queues '%s' (1 to 16)", optarg);
        cfg->queues = (uint32_t)v;
        break;
      case OPT_JSON: cfg->json = 1; break;
      default:
        return bad("unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc) return bad("%s", "which mode? throughput, latency or selftest");
  if (optind + 1 < argc) return bad("unexpected argument '%s'", argv[optind + 1]);
  if (!strcmp(argv[optind], "throughput")) cfg->mode = PERF_MODE_THROUGHPUT;
  else if (!strcmp(argv[optind], "latency")) cfg->mode = PERF_MODE_LATENCY;
  else return bad("unknown mode '%s' (throughput, latency or selftest)", argv[optind]);

  if (cfg->kind != PERF_KIND_UDP && (!cfg->netns || geteuid() != 0)) {
    fprintf(stderr, "mior-perf: --kind %s needs --netns (and root)\n", perf_kind_name(cfg->kind));
    return PERF_EXIT_USAGE;
  }
  if (*rps && !cfg->netns) return bad("%s", "--rps needs --netns");
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
  if (cfg->mode == PERF_MODE_LATENCY && (cfg->rate || cfg->queues > 1))
    return bad("%s", "--rate and --queues apply to throughput only");
  cfg->progress = !cfg->json && isatty(STDERR_FILENO);
  return -1;
}

static void env_loopback(perf_env *env) {
  memset(env, 0, sizeof *env);
  env->netns_fd_tx = env->netns_fd_rx = -1;
  snprintf(env->ip_tx, sizeof env->ip_tx, "127.0.0.1");
  snprintf(env->ip_rx, sizeof env->ip_rx, "127.0.0.1");
}

static void env_from_pair(perf_env *env, const netns_pair *p) {
  env->netns_fd_tx = p->fd_a;
  env->netns_fd_rx = p->fd_b;
  snprintf(env->ip_tx, sizeof env->ip_tx, "%s", p->ip_a);
  snprintf(env->ip_rx, sizeof env->ip_rx, "%s", p->ip_b);
  snprintf(env->if_tx, sizeof env->if_tx, "%s", p->if_a);
  snprintf(env->if_rx, sizeof env->if_rx, "%s", p->if_b);
  memcpy(env->mac_tx, p->mac_a, 6);
  memcpy(env->mac_rx, p->mac_b, 6);
}

static uint32_t random_run_id(void) {
  uint32_t id = 0;
  if (getrandom(&id, sizeof id, 0) != sizeof id) id = (uint32_t)getpid() ^ (uint32_t)perf_now_ns();
  return id;
}

static int run_backend(const perf_config *cfg, const perf_env *env, mior_backend b, perf_result *res) {
  perf_run run;
  memset(&run, 0, sizeof run);
  run.cfg = cfg;
  run.env = env;
  run.backend = b;
  run.run_id = random_run_id();
  run.interrupted = &interrupted;
  atomic_init(&run.stop, 0);

  perf_error err = {0, ""};
  int rc = cfg->mode == PERF_MODE_LATENCY ? perf_latency(&run, res, &err) : perf_throughput(&run, res, &err);
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
  if (argc >= 2 && !strcmp(argv[1], "selftest")) return mior_perf_selftest(argc - 1, argv + 1);

  perf_config cfg;
  int rps = 0;
  int rc = parse_args(argc, argv, &cfg, &rps);
  if (rc >= 0) return rc;

  for (int i = 0; i < cfg.nbackends; i++) {
    if (cfg.backends[i] != MIOR_BACKEND_AUTO && mior_backend_supported(cfg.backends[i]) != 1) {
      fprintf(stderr, "mior-perf: backend %s is not available here: %s\n",
              mior_backend_name(cfg.backends[i]), mior_last_error());
      return PERF_EXIT_RUNTIME;
    }
  }

  /* The handler only sets a flag: the workers notice within 100 ms, and the main thread then
   * joins them and removes the namespaces.  No SA_RESTART, so sleeps end early. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  perf_env env;
  env_loopback(&env);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu >= 2) {
    env.cpu_tx = 0;
    env.cpu_rx = 1;
  } else {
    env.cpu_tx = env.cpu_rx = -1;
  }

  netns_pair pair;
  memset(&pair, 0, sizeof pair);
  int status = PERF_EXIT_OK;
  if (cfg.netns) {
    char why[256];
    if (!netns_available(why, sizeof why)) {
      fprintf(stderr, "mior-perf: --netns is not available: %s\n", why);
      return PERF_EXIT_USAGE;
    }
    /* Static neighbour entries: no ARP exchange in the middle of a measurement. */
    rc = netns_pair_create(&pair, "perf", 200, 1);
    if (rc < 0 || interrupted) {
      if (rc < 0) fprintf(stderr, "mior-perf: creating the namespaces: %s\n", strerror(-rc));
      status = PERF_EXIT_RUNTIME;
      goto out;
    }
    env_from_pair(&env, &pair);
    if (rps && env.cpu_rx >= 0) {
      char mask[16];
      snprintf(mask, sizeof mask, "%x", 1u << env.cpu_rx);
      rc = netns_set_rps(&pair, 1, mask);
      if (rc < 0) {
        fprintf(stderr, "mior-perf: setting RPS: %s\n", strerror(-rc));
        status = PERF_EXIT_RUNTIME;
        goto out;
      }
    }
  }

  if (!cfg.json) {
    printf("mior-perf %s: %s over %s, %.1f s measured after %.1f s warm-up, size %u, cpus tx %d rx %d%s\n",
           perf_mode_name(cfg.mode), perf_kind_name(cfg.kind),
           cfg.netns ? "a veth pair between two namespaces" : "loopback", cfg.seconds, cfg.warmup,
           cfg.size, env.cpu_tx, env.cpu_rx, cfg.netns ? (rps ? ", RPS on" : ", RPS off") : "");
    fflush(stdout);
  }
  perf_result res[2];
  memset(res, 0, sizeof res);
  for (int i = 0; i < cfg.nbackends && !interrupted; i++) {
    if (run_backend(&cfg, &env, cfg.backends[i], &res[i]) < 0) {
      status = PERF_EXIT_RUNTIME;
      break;
    }
    if (cfg.json) {
      perf_report_json(&cfg, &res[i]);
    } else {
      printf("\n");
      perf_report_one(&cfg, &res[i]);
      fflush(stdout);
    }
  }
  if (status == PERF_EXIT_OK && interrupted) status = PERF_EXIT_RUNTIME;
  if (status == PERF_EXIT_OK && cfg.nbackends == 2 && !cfg.json)
    perf_report_compare(&cfg, &res[0], &res[1]);

out:
  if (cfg.netns) {
    rc = netns_pair_destroy(&pair);
    if (rc < 0) {
      fprintf(stderr, "mior-perf: removing the namespaces %s and %s: %s\n", pair.ns_a, pair.ns_b,
              strerror(-rc));
      status = PERF_EXIT_RUNTIME;
    }
  }
  if (interrupted) fprintf(stderr, "mior-perf: interrupted\n");
  return status;
}
