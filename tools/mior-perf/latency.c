/* mior-perf latency: ping-pong.  The client thread sends one ping, waits for its pong and
 * measures the round trip with the monotonic clock (read in the receive callback, as early as
 * the API allows); the server thread echoes each ping from its receive callback with
 * mior_tx_acquire / mior_tx_send and flushes at the end of each batch.
 *
 * Both sides wait in mior_port_poll: blocking by default, spinning first for --busy-poll US.
 * Round trips that start during the warm-up are not recorded.  A ping without a pong after
 * PING_TIMEOUT counts as lost and the next one goes out; a late pong is ignored (by sequence).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testpkt.h"
#include "perf.h"

#define PING_TIMEOUT_NS 200000000u

typedef struct srv_side {
  perf_run *run;
  perf_error err;
  perf_latch ready;
  atomic_int stop;
  perf_thread *thread;
  mior_addr addr;
  uint64_t echoed, foreign, echo_drops;
  mior_port_stats stats;
  double cpu_s;
} srv_side;

typedef struct cli_side {
  perf_run *run;
  perf_error err;
  perf_latch ready, go, done;
  perf_thread *thread;
  char peer[64];
  /* The round trip in flight; written by the receive callback on the same thread. */
  uint64_t expect_seq, got_ns;
  int got;
  uint64_t foreign, late;
  /* Results. */
  hist h;
  uint64_t sent, received, lost;           /* measured phase only */
  uint64_t sent_total, received_total;
  uint64_t measure_start, measure_end;     /* clock around the measured phase */
  _Atomic uint64_t pub_count, pub_sum_ns;  /* for the progress line */
  mior_port_stats stats;
  double cpu_s;
} cli_side;

static int srv_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  srv_side *s = ctx;
  const perf_run *run = s->run;
  perf_hdr h;
  if (perf_frame_parse(run->cfg->kind, pkt->data, pkt->len, &h) < 0 || h.run_id != run->run_id ||
      h.type != PERF_TYPE_PING) {
    s->foreign++;
    return MIOR_DONE;
  }
  mior_pkt out;
  if (mior_tx_acquire(port, &out) < 0) {
    s->echo_drops++; /* no slot free: the client will time the ping out */
    return MIOR_DONE;
  }
  if (out.cap < pkt->len) {
    mior_pkt_release(&out);
    s->echo_drops++;
    return MIOR_DONE;
  }
  memcpy(out.data, pkt->data, pkt->len);
  perf_frame_reflect(run->cfg->kind, out.data, run->env->mac_rx);
  if (mior_tx_send(port, &out, pkt->len, run->cfg->kind == PERF_KIND_UDP ? &pkt->src : NULL) < 0)
    s->echo_drops++;
  else
    s->echoed++;
  return MIOR_DONE;
}

static void srv_flush(void *ctx, mior_port *port) {
  mior_tx_flush(port);
}

static void *srv_main(void *arg) {
  srv_side *s = arg;
  perf_run *run = s->run;
  mior_transport *t = NULL;
  char ep[96];
  int rc;

  if (perf_thread_setup(run->env->cpu_rx, run->env->netns_fd_rx, &s->err) < 0) goto out;
  perf_endpoint(run, 0, ep, sizeof ep);
  mior_options opts;
  perf_options(run, &opts);
  if (run->cfg->kind == PERF_KIND_IP) opts.peer = run->env->ip_tx;
  if (run->connected) opts.peer = run->peer_of_rx; /* IoRing: see perf_run.connected */
  mior_receiver recv = {srv_consume, srv_flush, s};
  mior_pcap_tap tap;
  perf_receiver_tap(run, &tap, &recv);
  rc = mior_transport_open(&t, ep, &opts, &recv);
  if (rc < 0) {
    perf_error_set(&s->err, rc, "opening the echo server");
    goto out;
  }
  mior_port *port = mior_transport_port(t, 0);
  if (run->cfg->kind == PERF_KIND_UDP && (rc = mior_port_local_addr(port, &s->addr)) < 0) {
    perf_error_set(&s->err, rc, "reading the server's address");
    goto out;
  }
  perf_latch_set(&s->ready);
  while (!atomic_load_explicit(&s->stop, memory_order_relaxed) && !perf_stopping(run)) {
    rc = mior_port_poll(port, 0, 100000);
    if (rc < 0 && rc != -EINTR) {
      perf_error_set(&s->err, rc, "polling the echo server");
      break;
    }
  }
  mior_transport_stats_get(t, &s->stats);
out:
  if (t && (rc = mior_transport_close(t)) < 0) perf_error_set(&s->err, rc, "closing the echo server");
  if (s->err.err) atomic_store(&run->stop, 1);
  s->cpu_s = perf_thread_cpu_s();
  perf_latch_set(&s->ready);
  return NULL;
}

static int cli_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  uint64_t now = perf_now_ns();
  cli_side *c = ctx;
  const perf_run *run = c->run;
  perf_hdr h;
  if (perf_frame_parse(run->cfg->kind, pkt->data, pkt->len, &h) < 0 || h.run_id != run->run_id ||
      h.type != PERF_TYPE_PONG) {
    c->foreign++;
  } else if (h.seq != c->expect_seq || c->got) {
    c->late++;
  } else {
    c->got = 1;
    c->got_ns = now;
  }
  return MIOR_DONE;
}

static void *cli_main(void *arg) {
  cli_side *c = arg;
  perf_run *run = c->run;
  const perf_config *cfg = run->cfg;
  const perf_env *env = run->env;
  mior_transport *t = NULL;
  perf_frame frame;
  char ep[96];
  int rc;

  if (perf_thread_setup(env->cpu_tx, env->netns_fd_tx, &c->err) < 0) goto out;
  perf_endpoint(run, 1, ep, sizeof ep);
  mior_options opts;
  perf_options(run, &opts);
  if (cfg->kind == PERF_KIND_UDP) opts.peer = c->peer;
  if (cfg->kind == PERF_KIND_IP) opts.peer = env->ip_rx;
  mior_receiver recv = {cli_consume, NULL, c};
  mior_pcap_tap tap;
  perf_receiver_tap(run, &tap, &recv);
  rc = mior_transport_open(&t, ep, &opts, &recv);
  if (rc < 0) {
    perf_error_set(&c->err, rc, "opening the ping client");
    goto out;
  }
  mior_port *port = mior_transport_port(t, 0);
  rc = perf_frame_init(&frame, cfg->kind, cfg->size, env->ip_tx, env->ip_rx, env->mac_tx,
                       perf_other_mac, PERF_SPORT_BASE, PERF_DPORT);
  if (rc < 0) {
    perf_error_set(&c->err, rc, "building the packet headers");
    goto out;
  }
  perf_latch_set(&c->ready);
  if (!perf_latch_wait(&c->go, run, 60)) goto stats;

  uint64_t start = perf_now_ns();
  uint64_t warm_end = start + (uint64_t)(cfg->warmup * 1e9);
  uint64_t end = warm_end + (uint64_t)(cfg->seconds * 1e9);
  perf_hdr h = {PERF_MAGIC, PERF_TYPE_PING, 0, run->run_id, 0};
  uint64_t count = 0, sum = 0;
  for (;;) {
    uint64_t now = perf_now_ns();
    if (now >= end || perf_stopping(run)) break;
    int measuring = now >= warm_end;
    if (measuring && !c->measure_start) c->measure_start = now;
    mior_pkt pkt;
    rc = mior_tx_acquire(port, &pkt);
    if (rc == -EAGAIN) {
      mior_port_poll(port, 0, 1000);
      continue;
    }
    if (rc < 0) {
      perf_error_set(&c->err, rc, "acquiring a transmit slot");
      break;
    }
    h.seq = c->sent_total;
    uint32_t len = perf_frame_write(&frame, pkt.data, &h);
    c->expect_seq = h.seq;
    c->got = 0;
    uint64_t t0 = perf_now_ns();
    rc = mior_tx_send(port, &pkt, len, NULL);
    if (rc >= 0) rc = mior_tx_flush(port);
    if (rc < 0) {
      perf_error_set(&c->err, rc, "sending a ping");
      break;
    }
    c->sent_total++;
    if (measuring) c->sent++;
    uint64_t deadline = t0 + PING_TIMEOUT_NS;
    while (!c->got && !perf_stopping(run)) {
      now = perf_now_ns();
      if (now >= deadline) break;
      rc = mior_port_poll(port, 0, (int64_t)((deadline - now) / 1000) + 1);
      if (rc < 0 && rc != -EINTR) {
        perf_error_set(&c->err, rc, "polling the ping client");
        goto stats;
      }
    }
    if (!c->got) {
      if (measuring && !perf_stopping(run)) c->lost++;
      continue;
    }
    uint64_t rtt = c->got_ns - t0;
    c->received_total++;
    if (measuring) {
      c->received++;
      hist_add(&c->h, rtt);
    }
    count++;
    sum += rtt;
    atomic_store_explicit(&c->pub_count, count, memory_order_relaxed);
    atomic_store_explicit(&c->pub_sum_ns, sum, memory_order_relaxed);
  }
  c->measure_end = perf_now_ns();
stats:
  mior_transport_stats_get(t, &c->stats);
out:
  if (t && (rc = mior_transport_close(t)) < 0) perf_error_set(&c->err, rc, "closing the ping client");
  if (c->err.err) atomic_store(&run->stop, 1);
  c->cpu_s = perf_thread_cpu_s();
  perf_latch_set(&c->ready);
  perf_latch_set(&c->done);
  return NULL;
}

int perf_latency(perf_run *run, perf_result *res, perf_error *err) {
  const perf_config *cfg = run->cfg;
  srv_side *s = calloc(1, sizeof *s);
  cli_side *c = calloc(1, sizeof *c);
  int s_started = 0, c_started = 0;
  if (!s || !c) {
    perf_error_set(err, -ENOMEM, "allocating the run");
    goto out;
  }
  s->run = c->run = run;
  hist_init(&c->h);

  if (perf_thread_start(&s->thread, srv_main, s) < 0) {
    perf_error_set(err, -EAGAIN, "starting the server thread");
    goto out;
  }
  s_started = 1;
  if (!perf_latch_wait(&s->ready, run, 30) || s->err.err) goto out;
  if (cfg->kind == PERF_KIND_UDP) mior_addr_format(&s->addr, c->peer, sizeof c->peer);
  if (perf_thread_start(&c->thread, cli_main, c) < 0) {
    perf_error_set(err, -EAGAIN, "starting the client thread");
    goto out;
  }
  c_started = 1;
  if (!perf_latch_wait(&c->ready, run, 30) || c->err.err) goto out;

  /* The client times itself; here only the progress line, once a second. */
  uint64_t t0 = perf_now_ns(), last_t = t0, last_n = 0, last_sum = 0;
  perf_latch_set(&c->go);
  while (!perf_latch_wait(&c->done, run, 1.0)) {
    if (perf_stopping(run)) break;
    uint64_t now = perf_now_ns();
    uint64_t n = atomic_load_explicit(&c->pub_count, memory_order_relaxed);
    uint64_t sum = atomic_load_explicit(&c->pub_sum_ns, memory_order_relaxed);
    double dt = (double)(now - last_t) / 1e9;
    double mean = n > last_n ? (double)(sum - last_sum) / (double)(n - last_n) / 1e3 : 0;
    perf_progress(run, (double)(now - t0) / 1e9 < cfg->warmup ? "warm" : "run",
                  (double)(now - t0) / 1e9, "%8.0f round trips/s  mean %8.2f us",
                  (double)(n - last_n) / dt, mean);
    last_t = now, last_n = n, last_sum = sum;
  }
  perf_thread_join(c->thread);
  c_started = 0;
  atomic_store(&s->stop, 1);
  perf_thread_join(s->thread);
  s_started = 0;
  perf_progress_end(run);

  memset(res, 0, sizeof *res);
  res->backend = run->backend;
  res->mode = PERF_MODE_LATENCY;
  res->kind = cfg->kind;
  res->size = cfg->size;
  if (c->measure_end > c->measure_start && c->measure_start)
    res->seconds = (double)(c->measure_end - c->measure_start) / 1e9;
  if (res->seconds > 0) {
    res->tx_pps = (double)c->sent / res->seconds;
    res->rx_pps = (double)c->received / res->seconds;
  }
  res->rx_mbps = res->rx_pps * cfg->size * 8 / 1e6;
  res->tx_total = c->sent_total;
  res->rx_total = c->received_total;
  res->lost = c->lost;
  res->loss = c->sent ? 100.0 * (double)c->lost / (double)c->sent : 0;
  res->reordered = c->late;
  res->foreign = c->foreign + s->foreign;
  res->samples = c->h.count;
  res->mean_us = hist_mean(&c->h) / 1e3;
  res->min_us = c->h.count ? (double)c->h.min / 1e3 : 0;
  res->p50_us = (double)hist_quantile(&c->h, 0.50) / 1e3;
  res->p90_us = (double)hist_quantile(&c->h, 0.90) / 1e3;
  res->p99_us = (double)hist_quantile(&c->h, 0.99) / 1e3;
  res->p999_us = (double)hist_quantile(&c->h, 0.999) / 1e3;
  res->max_us = (double)c->h.max / 1e3;
  res->rx_stats = s->stats;
  res->tx_stats = c->stats;
  res->cpu_tx_s = c->cpu_s;
  res->cpu_rx_s = s->cpu_s;

out:
  atomic_store(&run->stop, 1);
  if (c_started) perf_thread_join(c->thread);
  if (s_started) perf_thread_join(s->thread);
  perf_progress_end(run);
  int ret = 0;
  if (err->err)
    ret = err->err;
  else if (s && s->err.err)
    *err = s->err, ret = err->err;
  else if (c && c->err.err)
    *err = c->err, ret = err->err;
  else if (atomic_load(run->interrupted))
    ret = -EINTR, snprintf(err->what, sizeof err->what, "interrupted"), err->err = ret;
  free(s);
  free(c);
  return ret;
}
