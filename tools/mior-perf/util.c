/* mior-perf: small helpers shared by the modes: errors from worker threads, latches, free
 * ports, endpoints and options, the progress line.  Portable: the system's part is in os_*.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "testpkt.h"
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

void perf_receiver_tap(const perf_run *run, mior_pcap_tap *tap, mior_receiver *recv) {
  mior_receiver inner = *recv;
  if (run->pcap) mior_pcap_wrap_receiver(tap, run->pcap, &inner, recv);
}

void perf_latch_set(perf_latch *l) {
  atomic_store_explicit(&l->set, 1, memory_order_release);
}

/* Polls with a growing sleep (50 us doubling to 10 ms): start-up hand-overs stay quick, and a
 * long wait (the main thread waiting out a latency run) wakes 100 times a second, not thousands.
 * On a 2-CPU machine each wake-up of this thread preempts a worker spinning in busy-poll mode;
 * a fixed 200 us poll did that 5,000 times a second and was the whole of mior-perf's busy-poll
 * p99 (36 us against 9 us for the same loop without it). */
int perf_latch_wait(perf_latch *l, const perf_run *run, double timeout_s) {
  uint64_t end = perf_now_ns() + (uint64_t)(timeout_s * 1e9), nap = 50000;
  while (!atomic_load_explicit(&l->set, memory_order_acquire)) {
    uint64_t now = perf_now_ns();
    if (perf_stopping(run) || now > end) return 0;
    perf_sleep_ns(nap < end - now ? nap : end - now);
    if (nap < 10000000u) nap *= 2;
  }
  return 1;
}

int perf_pick_udp_ports(const perf_env *env, uint16_t *port_tx, uint16_t *port_rx, perf_error *err) {
  /* Bind port 0 on each end and read back what the system chose; both stay open until both are
   * known, so the two differ.  Between the close here and the run's own bind another program
   * could take a port, which on loopback is unlikely enough not to guard against. */
  const char *ip[2] = {env->ip_tx, env->ip_rx};
  uint16_t *port[2] = {port_tx, port_rx};
  mior_transport *t[2] = {NULL, NULL};
  int rc = 0;
  for (int i = 0; i < 2 && rc >= 0; i++) {
    char ep[80];
    mior_options opts;
    mior_addr a;
    mior_options_init(&opts);
    opts.backend = MIOR_BACKEND_SOCKETS;
    opts.flags |= MIOR_OPT_NO_RX;
    opts.buf_count = 64;
    snprintf(ep, sizeof ep, "udp://%s:0", ip[i]);
    rc = mior_transport_open(&t[i], ep, &opts, NULL);
    if (rc >= 0) rc = mior_port_local_addr(mior_transport_port(t[i], 0), &a);
    if (rc >= 0) *port[i] = a.port;
  }
  if (rc < 0) perf_error_set(err, rc, "choosing free UDP ports for a connected pair");
  for (int i = 0; i < 2; i++)
    if (t[i]) mior_transport_close(t[i]);
  return rc < 0 ? rc : 0;
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
      snprintf(buf, len, "udp://%s:%u", tx_side ? env->ip_tx : env->ip_rx,
               (unsigned)(tx_side ? run->port_tx : run->port_rx));
      break;
  }
}

void perf_options(const perf_run *run, mior_options *opts) {
  const perf_config *cfg = run->cfg;
  mior_options_init(opts);
  opts->backend = run->backend;
  if (cfg->batch) opts->batch = cfg->batch;
  opts->busy_poll_us = cfg->busy_poll_us;
  if (cfg->coalesce_us >= 0) opts->coalesce_us = (uint32_t)cfg->coalesce_us;
  opts->flags |= cfg->opt_flags;
  /* A slot must hold the largest packet.  Above the default 2 KiB, use fewer, larger slots so a
   * port's pool stays near 16 MiB. */
  uint32_t need = cfg->size; /* udp: the payload; ip and packet: everything received */
  /* udp with UDP GRO: the default slot (64 KiB) already holds any datagram. */
  int gro = cfg->kind == PERF_KIND_UDP && !(cfg->opt_flags & MIOR_OPT_NO_UDP_GRO);
  if (need > 2048 && !gro) {
    uint32_t sz = 4096;
    while (sz < need) sz <<= 1;
    opts->buf_size = sz;
    opts->buf_count = (16u << 20) / sz;
    if (opts->buf_count < 256) opts->buf_count = 256;
  }
  if (cfg->buf_count) opts->buf_count = cfg->buf_count;
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
