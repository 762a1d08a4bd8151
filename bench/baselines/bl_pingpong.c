/* bench baseline: UDP ping-pong latency with plain sockets.
 *
 * The client sends one datagram (magic + sequence number) and waits for the server to echo it;
 * the round trip is read from the monotonic clock.  Blocking by default (recvfrom sleeps in the
 * kernel); with --busy-poll US (any value > 0) both ends spin on recv with MSG_DONTWAIT, which
 * is what a latency-bound program does.  A ping without its pong after 200 ms counts as lost.
 * Round trips in the warm-up are not recorded.  Percentiles are exact (all samples are kept, up
 * to MAX_SAMPLES) and the JSON carries the CDF for bench/run.sh's plot.
 *
 * --method sockets (default): recvfrom/sendto on the server, send/recv on a connected client.
 * --method uring: the same exchange through io_uring as a careful user would write it with
 * liburing: a SINGLE_ISSUER | DEFER_TASKRUN ring per end, the socket registered, one multishot
 * receive (RECVMSG on the server, which needs the source address; RECV on the connected client)
 * into a small provided-buffer ring, and one SEND / SENDMSG per reply.  Blocking waits in
 * io_uring_submit_and_wait_timeout; busy-poll spins on io_uring_submit_and_get_events.  It is
 * the floor for a ring-based ping-pong on this kernel: what io_uring itself costs per round trip.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
  int uring; /* --method uring */
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


/* ---- --method uring ---------------------------------------------------------------------- */

#define UR_NBUF 64
#define UR_BUF 2048
#define UR_BGID 3
enum { UD_RECV = 1, UD_SEND = 2 };

typedef struct ur_end {
  struct io_uring ring;
  int ring_ok, fd, names;
  uint8_t *bufs;
  struct io_uring_buf_ring *br;
  size_t br_len;
  struct msghdr ms_msg;   /* multishot RECVMSG template (server): name space only */
  struct msghdr out_msg;  /* the one reply in flight (server) */
  struct iovec out_iov;
  struct sockaddr_in out_to;
  uint8_t out[UR_BUF];
  int armed;
} ur_end;

static void ur_end_close(ur_end *u) {
  if (u->ring_ok) io_uring_queue_exit(&u->ring);
  if (u->br) munmap(u->br, u->br_len);
  free(u->bufs);
}

static int ur_end_open(bl_side *s, ur_end *u, int fd, int names) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(64, &u->ring, &p);
  if (rc == -EINVAL) {
    memset(&p, 0, sizeof p);
    rc = io_uring_queue_init_params(64, &u->ring, &p);
  }
  if (rc < 0) return bl_fail(s, -rc, "io_uring_queue_init");
  u->ring_ok = 1;
  u->fd = fd;
  u->names = names;
  if ((rc = io_uring_register_files(&u->ring, &fd, 1)) < 0) return bl_fail(s, -rc, "io_uring_register_files");
  u->bufs = aligned_alloc(4096, (size_t)UR_NBUF * UR_BUF);
  u->br_len = (size_t)UR_NBUF * sizeof(struct io_uring_buf);
  u->br = mmap(NULL, u->br_len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (!u->bufs || u->br == MAP_FAILED) {
    u->br = NULL;
    return bl_fail(s, ENOMEM, "allocating the buffer ring");
  }
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (unsigned long)u->br;
  reg.ring_entries = UR_NBUF;
  reg.bgid = UR_BGID;
  if ((rc = io_uring_register_buf_ring(&u->ring, &reg, 0)) < 0) return bl_fail(s, -rc, "io_uring_register_buf_ring");
  io_uring_buf_ring_init(u->br);
  for (int i = 0; i < UR_NBUF; i++)
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * UR_BUF, UR_BUF, (unsigned short)i,
                          io_uring_buf_ring_mask(UR_NBUF), i);
  io_uring_buf_ring_advance(u->br, UR_NBUF);
  u->ms_msg.msg_namelen = sizeof(struct sockaddr_in);
  return 0;
}

static int ur_arm(ur_end *u) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  if (!sqe) return -EBUSY;
  if (u->names) io_uring_prep_recvmsg_multishot(sqe, 0, &u->ms_msg, 0);
  else io_uring_prep_recv_multishot(sqe, 0, NULL, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
  sqe->buf_group = UR_BGID;
  io_uring_sqe_set_data64(sqe, UD_RECV);
  u->armed = 1;
  return 0;
}

static void ur_give_back(ur_end *u, unsigned bid) {
  io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * UR_BUF, UR_BUF, (unsigned short)bid,
                        io_uring_buf_ring_mask(UR_NBUF), 0);
  io_uring_buf_ring_advance(u->br, 1);
}

/* Submit what is queued and take the next receive completion; 1 with *data and *len (and the source
 * in *from for the server), 0 when nothing came before the deadline or the stop flag, <0 on error.
 * The caller gives the buffer back with ur_give_back. */
static int ur_next(bl_side *s, ur_end *u, int busy, double deadline, uint8_t **data, uint32_t *len,
                   unsigned *bid) {
  for (;;) {
    if (!u->armed && ur_arm(u) < 0) return -EBUSY;
    int rc;
    if (busy) {
      rc = io_uring_submit_and_get_events(&u->ring);
    } else {
      struct io_uring_cqe *w;
      struct __kernel_timespec ts = {0, 20000000};
      rc = io_uring_submit_and_wait_timeout(&u->ring, &w, 1, &ts, NULL);
      if (rc == -ETIME) rc = 0;
    }
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) return rc;
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
      uint64_t ud = cqe->user_data;
      int res = cqe->res;
      unsigned flags = cqe->flags;
      io_uring_cqe_seen(&u->ring, cqe);
      if (ud != UD_RECV) continue; /* a send's completion */
      if (!(flags & IORING_CQE_F_MORE)) u->armed = 0;
      if (!(flags & IORING_CQE_F_BUFFER)) continue; /* -ENOBUFS and the like: re-armed above */
      *bid = flags >> IORING_CQE_BUFFER_SHIFT;
      uint8_t *b = u->bufs + (size_t)*bid * UR_BUF;
      if (u->names) {
        struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(b, res, &u->ms_msg);
        if (!o || o->namelen > sizeof u->out_to) {
          ur_give_back(u, *bid);
          continue;
        }
        memcpy(&u->out_to, io_uring_recvmsg_name(o), o->namelen);
        *data = io_uring_recvmsg_payload(o, &u->ms_msg);
        *len = io_uring_recvmsg_payload_length(o, res, &u->ms_msg);
      } else {
        if (res <= 0) {
          ur_give_back(u, *bid);
          continue;
        }
        *data = b;
        *len = (uint32_t)res;
      }
      return 1;
    }
    if (bl_stopping(s) || bl_now() > deadline) return 0;
  }
}

static void *ur_srv_main(void *arg) {
  bl_side *s = arg;
  int busy = s->cfg->busy_poll_us > 0;
  int fd = -1;
  ur_end u;
  memset(&u, 0, sizeof u);
  if (bl_thread_enter(s) < 0 || (fd = udp_socket(s, s->env->ip_rx, 100)) < 0) goto out;
  if (ur_end_open(s, &u, fd, 1) < 0) goto out;
  socklen_t l = sizeof s->rx_addr;
  getsockname(fd, (struct sockaddr *)&s->rx_addr, &l);
  atomic_store(&s->ready, 1);
  while (!bl_stopping(s)) {
    uint8_t *d;
    uint32_t n;
    unsigned bid;
    int rc = ur_next(s, &u, busy, bl_now() + 0.1, &d, &n, &bid);
    if (rc < 0) {
      bl_fail(s, -rc, "io_uring_enter");
      break;
    }
    if (rc == 0) continue;
    if (n > sizeof u.out) n = sizeof u.out;
    memcpy(u.out, d, n);
    ur_give_back(&u, bid);
    /* One reply in flight at a time (a ping-pong), so one msghdr suffices. */
    u.out_iov.iov_base = u.out;
    u.out_iov.iov_len = n;
    u.out_msg.msg_name = &u.out_to;
    u.out_msg.msg_namelen = sizeof u.out_to;
    u.out_msg.msg_iov = &u.out_iov;
    u.out_msg.msg_iovlen = 1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u.ring);
    if (!sqe) continue;
    io_uring_prep_sendmsg(sqe, 0, &u.out_msg, 0);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, UD_SEND);
    io_uring_submit(&u.ring);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
  }
out:
  ur_end_close(&u);
  if (fd >= 0) close(fd);
  s->cpu_s = bl_thread_cpu();
  atomic_store(&s->ready, 1);
  return NULL;
}

static void *ur_cli_main(void *arg) {
  pp *p = arg;
  bl_side *s = &p->cli;
  const bl_cfg *cfg = s->cfg;
  int busy = cfg->busy_poll_us > 0;
  int fd = -1;
  ur_end u;
  memset(&u, 0, sizeof u);
  if (bl_thread_enter(s) < 0 || (fd = udp_socket(s, s->env->ip_tx, 200)) < 0) goto out;
  if (connect(fd, (struct sockaddr *)&p->srv.rx_addr, sizeof p->srv.rx_addr) < 0) {
    bl_fail(s, errno, "connect");
    goto out;
  }
  if (ur_end_open(s, &u, fd, 0) < 0) goto out;
  atomic_store(&s->ready, 1);
  double t0 = bl_now(), t_meas = t0 + cfg->warmup, t_end = t_meas + cfg->seconds;
  uint64_t seq = 0;
  while (!bl_stopping(s)) {
    double start = bl_now();
    if (start >= t_end) break;
    bl_payload_put(u.out, ++seq);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u.ring);
    if (!sqe) {
      bl_fail(s, EBUSY, "no SQE");
      break;
    }
    io_uring_prep_send(sqe, 0, u.out, cfg->size, 0);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, UD_SEND);
    p->sent++;
    int got = 0;
    for (;;) {
      uint8_t *d;
      uint32_t n;
      unsigned bid;
      int rc = ur_next(s, &u, busy, start + LOSS_TIMEOUT, &d, &n, &bid);
      clock_gettime(CLOCK_MONOTONIC, &b);
      if (rc < 0) {
        bl_fail(s, -rc, "io_uring_enter");
        goto out;
      }
      if (rc == 0) break;
      int ours = n >= BL_HDR && !memcmp(d + 4, &seq, 8);
      ur_give_back(&u, bid);
      if (ours) {
        double el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        got = 1;
        if (start >= t_meas && p->nsamples < MAX_SAMPLES) p->rtt_ns[p->nsamples++] = (uint32_t)(el * 1e9);
        break;
      }
    }
    if (!got) p->lost++;
  }
  p->measured = bl_now() - t_meas;
out:
  ur_end_close(&u);
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
  if (mname && strcmp(mname, "sockets") && strcmp(mname, "uring")) {
    fprintf(stderr, "%s: unknown --method '%s' (sockets or uring)\n", argv[0], mname);
    return 2;
  }
  int use_uring = mname && !strcmp(mname, "uring");
  if (use_uring)
    cfg.method = cfg.busy_poll_us ? "pingpong-uring-busy" : "pingpong-uring";
  else
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
  p->uring = use_uring;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  srv_on = pthread_create(&p->srv.th, NULL, p->uring ? ur_srv_main : srv_main, &p->srv) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  for (int i = 0; i < 30000 && srv_on && !atomic_load(&p->srv.ready) && !bl_interrupted; i++) bl_sleep(0.001);
  if (!srv_on || p->srv.err[0] || !atomic_load(&p->srv.ready)) goto out;
  pthread_sigmask(SIG_BLOCK, &all, &old);
  cli_on = pthread_create(&cth, NULL, p->uring ? ur_cli_main : cli_main, p) == 0;
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
