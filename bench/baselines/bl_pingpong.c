/* bench baseline: UDP ping-pong latency with plain sockets.
 *
 * The client sends one datagram (magic + sequence number) and waits for the server to echo it;
 * the round trip is read from the monotonic clock.  Blocking by default (recvfrom sleeps in the
 * kernel); with --busy-poll US (any value > 0) both ends spin on recv with MSG_DONTWAIT, which
 * is what a latency-bound program does.  A ping without its pong after 200 ms counts as lost.
 * Round trips in the warm-up are not recorded.  Percentiles are exact (all samples are kept, up
 * to MAX_SAMPLES) and the JSON carries the CDF for bench/run.sh's plot.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bl.h"

#define MAX_SAMPLES (4u << 20)
#define LOSS_TIMEOUT 0.2

typedef struct pp {
  bl_side srv, cli;
  uint32_t *rtt_ns;
  uint64_t nsamples, lost, sent;
  double measured;
} pp;

static int udp_socket(bl_side *s, const char *ip, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return bl_fail(s, errno, "socket");
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return bl_fail(s, errno, "bind");
  }
  bl_sockbufs(fd);
  struct timeval tv = {0, timeout_ms * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void *srv_main(void *arg) {
  bl_side *s = arg;
  int busy = s->cfg->busy_poll_us > 0;
  int fd = -1;
  if (bl_thread_enter(s) < 0 || (fd = udp_socket(s, s->env->ip_rx, 100)) < 0) goto out;
  socklen_t l = sizeof s->rx_addr;
  getsockname(fd, (struct sockaddr *)&s->rx_addr, &l);
  atomic_store(&s->ready, 1);
  uint8_t buf[2048];
  while (!bl_stopping(s)) {
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t r = recvfrom(fd, buf, sizeof buf, busy ? MSG_DONTWAIT : 0, (struct sockaddr *)&from, &fl);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      bl_fail(s, errno, "recvfrom");
      break;
    }
    if (sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl) < 0 && errno != EINTR &&
        errno != ENOBUFS && errno != EAGAIN) {
      bl_fail(s, errno, "sendto");
      break;
    }
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
  }
out:
  if (fd >= 0) close(fd);
  s->cpu_s = bl_thread_cpu();
  atomic_store(&s->ready, 1);
  return NULL;
}

static void *cli_main(void *arg) {
  pp *p = arg;
  bl_side *s = &p->cli;
  const bl_cfg *cfg = s->cfg;
  int busy = cfg->busy_poll_us > 0;
  int fd = -1;
  if (bl_thread_enter(s) < 0 || (fd = udp_socket(s, s->env->ip_tx, 200)) < 0) goto out;
  if (connect(fd, (struct sockaddr *)&p->srv.rx_addr, sizeof p->srv.rx_addr) < 0) {
    bl_fail(s, errno, "connect");
    goto out;
  }
  uint8_t out[2048], in[2048];
  memset(out, 0, sizeof out);
  atomic_store(&s->ready, 1);
  double t0 = bl_now(), t_meas = t0 + cfg->warmup, t_end = t_meas + cfg->seconds;
  uint64_t seq = 0;
  for (;;) {
    double start = bl_now();
    if (start >= t_end || bl_stopping(s)) break;
    bl_payload_put(out, ++seq);
    /* The clock starts before send(): on a veth without RPS the whole path to the server runs
     * inside send(), and the pong can be queued before it returns. */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (send(fd, out, cfg->size, 0) < 0) {
      if (errno == EINTR || errno == ENOBUFS || errno == ECONNREFUSED) continue;
      bl_fail(s, errno, "send");
      break;
    }
    p->sent++;
    int got = 0;
    while (!bl_stopping(s)) {
      ssize_t r = recv(fd, in, sizeof in, busy ? MSG_DONTWAIT : 0);
      clock_gettime(CLOCK_MONOTONIC, &b);
      double el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
      if (r >= (ssize_t)BL_HDR && !memcmp(in + 4, &seq, 8)) {
        got = 1;
        if (start >= t_meas && p->nsamples < MAX_SAMPLES) p->rtt_ns[p->nsamples++] = (uint32_t)(el * 1e9);
        break;
      }
      if (el > LOSS_TIMEOUT) break; /* a stale pong (earlier seq) or nothing: lost */
    }
    if (!got) p->lost++;
  }
  p->measured = bl_now() - t_meas;
out:
  if (fd >= 0) close(fd);
  s->cpu_s = bl_thread_cpu();
  atomic_store(&s->ready, 1);
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(const pp *p, double q) {
  if (!p->nsamples) return 0;
  uint64_t i = (uint64_t)(q * (double)(p->nsamples - 1) + 0.5);
  return p->rtt_ns[i] / 1e3;
}

int main(int argc, char **argv) {
  bl_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  const char *mname = NULL;
  int rc = bl_parse(argc, argv, &cfg, &mname);
  if (rc >= 0) return rc;
  cfg.kind = BL_KIND_UDP;
  cfg.mode = "latency";
  cfg.method = cfg.busy_poll_us ? "pingpong-busy" : "pingpong";
  if (!cfg.size) cfg.size = 18;
  if (cfg.size < BL_HDR || cfg.size > 1472) {
    fprintf(stderr, "%s: --size %u out of range (%u to 1472)\n", argv[0], cfg.size, BL_HDR);
    return 2;
  }
  bl_env env;
  if ((rc = bl_env_setup(&cfg, &env)) != 0) {
    bl_env_teardown();
    return rc;
  }
  pp *p = calloc(1, sizeof *p);
  int status = 1, srv_on = 0, cli_on = 0;
  pthread_t cth;
  if (!p || !(p->rtt_ns = malloc(MAX_SAMPLES * sizeof *p->rtt_ns))) goto out;
  p->srv.cfg = p->cli.cfg = &cfg;
  p->srv.env = p->cli.env = &env;
  p->cli.is_tx = 1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  srv_on = pthread_create(&p->srv.th, NULL, srv_main, &p->srv) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  for (int i = 0; i < 30000 && srv_on && !atomic_load(&p->srv.ready) && !bl_interrupted; i++) bl_sleep(0.001);
  if (!srv_on || p->srv.err[0] || !atomic_load(&p->srv.ready)) goto out;
  pthread_sigmask(SIG_BLOCK, &all, &old);
  cli_on = pthread_create(&cth, NULL, cli_main, p) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!cli_on) goto out;
  /* The client ends by itself after warm-up + seconds (+ at most one loss timeout); wait for it,
   * checking for Ctrl-C. */
  double limit = bl_now() + cfg.warmup + cfg.seconds + 5;
  while (!bl_interrupted && bl_now() < limit) {
    if (atomic_load(&p->cli.ready) && (p->measured > 0 || p->cli.err[0])) break;
    bl_sleep(0.01);
  }
  atomic_store(&p->cli.stop, 1);
  pthread_join(cth, NULL);
  cli_on = 0;
  atomic_store(&p->srv.stop, 1);
  pthread_join(p->srv.th, NULL);
  srv_on = 0;
  if (p->cli.err[0] || p->srv.err[0] || bl_interrupted) {
    fprintf(stderr, "%s: %s %s%s\n", argv[0], p->cli.err, p->srv.err, bl_interrupted ? " interrupted" : "");
    goto out;
  }
  qsort(p->rtt_ns, p->nsamples, sizeof *p->rtt_ns, cmp_u32);
  double mean = 0;
  for (uint64_t i = 0; i < p->nsamples; i++) mean += p->rtt_ns[i];
  mean = p->nsamples ? mean / (double)p->nsamples / 1e3 : 0;
  double rps = p->measured > 0 ? (double)p->nsamples / p->measured : 0;
  if (cfg.json) {
    printf("{");
    bl_json_common(&cfg);
    printf(",\"seconds\":%.3f,\"samples\":%llu,\"lost\":%llu,\"round_trips_per_s\":%.1f,"
           "\"min_us\":%.3f,\"mean_us\":%.3f,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,"
           "\"p999_us\":%.3f,\"max_us\":%.3f,\"cpu_cli_s\":%.4f,\"cpu_srv_s\":%.4f,\"cdf\":[",
           p->measured, (unsigned long long)p->nsamples, (unsigned long long)p->lost, rps, pct(p, 0),
           mean, pct(p, 0.5), pct(p, 0.9), pct(p, 0.99), pct(p, 0.999), pct(p, 1), p->cli.cpu_s,
           p->srv.cpu_s);
    /* 100 evenly spaced quantiles, then the tail in finer steps. */
    static const double tail[] = {0.995, 0.999, 0.9995, 0.9999, 1.0};
    for (int i = 0; i < 100; i++) printf("%s[%.3f,%.4f]", i ? "," : "", pct(p, i / 100.0), i / 100.0);
    for (unsigned i = 0; i < sizeof tail / sizeof tail[0]; i++) printf(",[%.3f,%.4f]", pct(p, tail[i]), tail[i]);
    printf("]}\n");
  } else {
    printf("%s: %s over %s, size %u, %.2f s, %llu samples, %llu lost, %.0f round trips/s\n", argv[0],
           cfg.method, cfg.netns ? "veth" : "loopback", cfg.size, p->measured,
           (unsigned long long)p->nsamples, (unsigned long long)p->lost, rps);
    printf("  rtt us  min %.2f  mean %.2f  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
           pct(p, 0), mean, pct(p, 0.5), pct(p, 0.9), pct(p, 0.99), pct(p, 0.999), pct(p, 1));
  }
  status = 0;
out:
  if (p) {
    atomic_store(&p->cli.stop, 1);
    atomic_store(&p->srv.stop, 1);
    if (cli_on) pthread_join(cth, NULL);
    if (srv_on) pthread_join(p->srv.th, NULL);
    if (status && (p->cli.err[0] || p->srv.err[0]) && !bl_interrupted)
      fprintf(stderr, "%s: %s %s\n", argv[0], p->cli.err, p->srv.err);
    free(p->rtt_ns);
    free(p);
  }
  bl_env_teardown();
  return status;
}
