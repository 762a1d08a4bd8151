/* mior-perf server / client: sockperf's UDP protocol, so other people's tools can measure mior.
 *
 *   mior-perf server [--backend B] [--listen ADDR:PORT] [--seconds S] ...
 *   mior-perf client --server ADDR:PORT [--backend B] [--size N] [--seconds S] ...
 *
 * The server answers stock `sockperf ping-pong`, `under-load` and `throughput` clients; the client
 * measures ping-pong round trips against a stock `sockperf server` (or against this server).
 *
 * The protocol, as sockperf's src/message.h and src/server.h define it (UDP: one message per
 * datagram).  Every message starts with a 14-byte header in network byte order:
 *
 *   offset 0   uint64  sequence number
 *   offset 8   uint16  flags: 1 = sent by a client, 2 = pong requested, 4 = warm-up message
 *   offset 10  uint32  message length in bytes, header included
 *
 * A server ignores messages without the client flag and warm-up messages; it counts every other
 * message, and answers those that ask for a pong with the same message (its first `length`
 * bytes), client flag cleared, to the sender.  ping-pong asks for a pong on every message,
 * under-load and throughput on every --reply-every'th (default 100) or never.  The client
 * ignores replies whose client flag is still set and (sockperf) refuses a sequence number higher
 * than the last it sent.
 *
 * Both ends run on the calling thread (mior_port_poll), one port; the server answers from inside
 * its receive callback, out of the very slot the request arrived in, and flushes at the end of
 * each receive batch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"
#include "sockperf.h"

#define SP_HDR_LEN 14u
#define SP_FLAG_CLIENT 1u
#define SP_FLAG_PONG 2u
#define SP_FLAG_WARMUP 4u
#define SP_DEFAULT_PORT 11111
#define SP_PING_TIMEOUT_NS 1000000000ull

static atomic_int sp_interrupted;

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}
static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}
static uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* ---- the command line (shared by both modes) ---- */

typedef struct sp_config {
  int server;
  mior_backend backend;
  const char *listen; /* server: ADDR:PORT */
  const char *peer;   /* client: the server's ADDR:PORT */
  double seconds;     /* server: 0 = until interrupted */
  double warmup;      /* client */
  uint32_t size;      /* client: message length, header included */
  uint32_t busy_poll_us, batch, coalesce_us;
  int coalesce_set;
  int json;
} sp_config;

static void sp_usage(FILE *f) {
  fprintf(f,
          "usage: mior-perf server [--listen ADDR:PORT] [options]\n"
          "       mior-perf client --server ADDR:PORT [options]\n"
          "\n"
          "sockperf's UDP protocol.  server: answer stock sockperf clients (ping-pong, under-load,\n"
          "throughput) until Ctrl-C or --seconds.  client: ping-pong against a sockperf server\n"
          "(or a mior-perf server) and report the round trips.\n"
          "\n"
          "  --backend B      uring (Linux), sockets, auto (default).  IoRing has no address fields\n"
          "                   and cannot answer unknown clients: on Windows use sockets\n"
          "  --listen A:P     server: where to listen, default 0.0.0.0:11111 (sockperf's port);\n"
          "                   host names work\n"
          "  --server A:P     client: the server to measure (port default 11111)\n"
          "  --seconds S      client: measured time, default 3; server: run S seconds (default:\n"
          "                   until Ctrl-C)\n"
          "  --warmup S       client: excluded warm-up before it, default 0.5\n"
          "  --size N         client: message bytes, sockperf header included (14 to 65507,\n"
          "                   default 64)\n"
          "  --busy-poll US   spin this long before blocking (mior_options.busy_poll_us)\n"
          "  --batch N        packets per receive batch and per submit (mior_options.batch)\n"
          "  --coalesce-us N  receive coalescing (mior_options.coalesce_us; docs/TUNING.md)\n"
          "  --json           one JSON object on stdout at the end\n"
          "\n"
          "Exit status: 0 ok, 1 runtime failure, 2 usage error.  See docs/MIOR-PERF.md.\n");
}

static int sp_bad(const char *what, const char *arg) {
  fprintf(stderr, "mior-perf: %s '%s'\n(mior-perf %s --help for usage)\n", what, arg,
          "server|client");
  return PERF_EXIT_USAGE;
}

static int sp_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
  char *end;
  errno = 0;
  if (!s[0] || s[0] == '-') return -1;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = (uint32_t)v;
  return 0;
}

static int sp_secs(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
  *out = v;
  return 0;
}

/* -1 to go on, or an exit status. */
static int sp_parse(int argc, char **argv, sp_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->server = !strcmp(argv[0], "server");
  cfg->backend = MIOR_BACKEND_AUTO;
  cfg->listen = "0.0.0.0:11111";
  cfg->seconds = cfg->server ? 0 : 3;
  cfg->warmup = 0.5;
  cfg->size = 64;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      sp_usage(stdout);
      return PERF_EXIT_OK;
    }
    if (!strcmp(a, "--json")) {
      cfg->json = 1;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) return sp_bad("unexpected argument", a);
    if (i + 1 >= argc) return sp_bad("missing the value of", a);
    const char *v = argv[++i];
    if (!strcmp(a, "--backend")) {
      if (mior_backend_parse(v, &cfg->backend) < 0) return sp_bad("unknown backend", v);
    } else if (!strcmp(a, "--listen") && cfg->server) {
      cfg->listen = v;
    } else if (!strcmp(a, "--server") && !cfg->server) {
      cfg->peer = v;
    } else if (!strcmp(a, "--seconds")) {
      if (sp_secs(v, cfg->server ? 0 : 0.1, 86400, &cfg->seconds) < 0) return sp_bad("bad --seconds", v);
    } else if (!strcmp(a, "--warmup") && !cfg->server) {
      if (sp_secs(v, 0, 60, &cfg->warmup) < 0) return sp_bad("bad --warmup", v);
    } else if (!strcmp(a, "--size") && !cfg->server) {
      if (sp_u32(v, SP_HDR_LEN, 65507, &cfg->size) < 0) return sp_bad("bad --size (14 to 65507)", v);
    } else if (!strcmp(a, "--busy-poll")) {
      if (sp_u32(v, 0, 1000000, &cfg->busy_poll_us) < 0) return sp_bad("bad --busy-poll", v);
    } else if (!strcmp(a, "--batch")) {
      if (sp_u32(v, 1, 4096, &cfg->batch) < 0) return sp_bad("bad --batch (1 to 4096)", v);
    } else if (!strcmp(a, "--coalesce-us")) {
      if (sp_u32(v, 0, 1000000, &cfg->coalesce_us) < 0) return sp_bad("bad --coalesce-us", v);
      cfg->coalesce_set = 1;
    } else {
      return sp_bad("unknown option", a);
    }
  }
  if (!cfg->server && !cfg->peer) return sp_bad("client needs --server ADDR:PORT, not", "");
  if (cfg->backend == MIOR_BACKEND_IORING && cfg->server) {
    fprintf(stderr, "mior-perf: server: IoRing sockets must be connected to one peer, so an IoRing "
                    "server cannot answer unknown clients; use --backend sockets\n");
    return PERF_EXIT_USAGE;
  }
  return -1;
}

static void sp_options(const sp_config *cfg, mior_options *o) {
  mior_options_init(o);
  o->backend = cfg->backend;
  /* auto would pick IoRing on Windows 11, which cannot serve unknown peers */
  if (o->backend == MIOR_BACKEND_AUTO && perf_ring_backend() == MIOR_BACKEND_IORING)
    o->backend = MIOR_BACKEND_SOCKETS;
  if (cfg->batch) o->batch = cfg->batch;
  o->busy_poll_us = cfg->busy_poll_us;
  if (cfg->coalesce_set) o->coalesce_us = cfg->coalesce_us;
}

static void sp_print_open(const char *what, mior_transport *t) {
  mior_addr local;
  char addr[64], feats[256] = "";
  mior_port_stats st;
  mior_port_local_addr(mior_transport_port(t, 0), &local);
  mior_addr_format(&local, addr, sizeof addr);
  mior_transport_stats_get(t, &st);
  mior_features_format(st.features, feats, sizeof feats);
  fprintf(stderr, "mior-perf %s: sockperf UDP protocol on %s, backend %s [%s]\n", what, addr,
          mior_backend_name(st.backend), feats);
}

/* ---- server ---- */

typedef struct sp_server {
  uint64_t messages; /* client messages counted, as sockperf's server counts them */
  uint64_t pongs;    /* replies queued */
  uint64_t warmups, not_client, malformed, reply_drops;
} sp_server;

static int srv_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  sp_server *s = ctx;
  if (pkt->len < SP_HDR_LEN) {
    s->malformed++;
    return MIOR_DONE;
  }
  uint16_t flags = get_be16(pkt->data + 8);
  uint32_t length = get_be32(pkt->data + 10);
  if (!(flags & SP_FLAG_CLIENT)) {
    s->not_client++;
    return MIOR_DONE;
  }
  if (flags & SP_FLAG_WARMUP) {
    s->warmups++;
    return MIOR_DONE;
  }
  if (length < SP_HDR_LEN || length > pkt->len) {
    s->malformed++;
    return MIOR_DONE;
  }
  s->messages++;
  if (!(flags & SP_FLAG_PONG)) return MIOR_DONE;
  /* The reply goes out of the request's own slot: from here the slot is the port's. */
  mior_pkt out = *pkt;
  put_be16(out.data + 8, (uint16_t)(flags & ~SP_FLAG_CLIENT));
  if (mior_tx_send(port, &out, length, &pkt->src) < 0)
    s->reply_drops++;
  else
    s->pongs++;
  return MIOR_DONE;
}

static void srv_flush(void *ctx, mior_port *port) {
  (void)ctx;
  mior_tx_flush(port);
}

static int sp_run_server(const sp_config *cfg) {
  char ep[300];
  snprintf(ep, sizeof ep, "udp://%s", cfg->listen);
  mior_options o;
  sp_options(cfg, &o);
  sp_server s;
  memset(&s, 0, sizeof s);
  mior_receiver recv = {srv_consume, srv_flush, &s};
  mior_transport *t;
  int rc = mior_transport_open(&t, ep, &o, &recv);
  if (rc < 0) {
    fprintf(stderr, "mior-perf server: %s: %s (%s)\n", ep, mior_strerror(rc), mior_last_error());
    return PERF_EXIT_RUNTIME;
  }
  sp_print_open("server", t);
  mior_port *port = mior_transport_port(t, 0);
  uint64_t end = cfg->seconds > 0 ? perf_now_ns() + (uint64_t)(cfg->seconds * 1e9) : 0;
  int status = PERF_EXIT_OK;
  while (!atomic_load_explicit(&sp_interrupted, memory_order_relaxed) &&
         (!end || perf_now_ns() < end)) {
    rc = mior_port_poll(port, 0, 100000);
    if (rc < 0 && rc != -EINTR) {
      fprintf(stderr, "mior-perf server: poll: %s (%s)\n", mior_strerror(rc), mior_last_error());
      status = PERF_EXIT_RUNTIME;
      break;
    }
  }
  mior_port_stats st;
  mior_transport_stats_get(t, &st);
  if (cfg->json)
    printf("{\"mode\":\"server\",\"backend\":\"%s\",\"messages\":%llu,\"pongs\":%llu,"
           "\"warmups\":%llu,\"ignored\":%llu,\"malformed\":%llu,\"reply_drops\":%llu,"
           "\"tx_packets\":%llu,\"rx_drop_kernel\":%llu,\"rx_drop_truncated\":%llu,"
           "\"submits\":%llu}\n",
           mior_backend_name(st.backend), (unsigned long long)s.messages,
           (unsigned long long)s.pongs, (unsigned long long)s.warmups,
           (unsigned long long)s.not_client, (unsigned long long)s.malformed,
           (unsigned long long)s.reply_drops, (unsigned long long)st.tx_packets,
           (unsigned long long)st.rx_drop_kernel, (unsigned long long)st.rx_drop_truncated,
           (unsigned long long)st.submits);
  else
    printf("mior-perf server (%s): %llu messages, %llu pongs (%llu sent), %llu warm-up, "
           "%llu not from a client, %llu malformed, %llu replies not sent, "
           "%llu dropped by the kernel, %llu too large for a slot\n",
           mior_backend_name(st.backend), (unsigned long long)s.messages,
           (unsigned long long)s.pongs, (unsigned long long)st.tx_packets,
           (unsigned long long)s.warmups, (unsigned long long)s.not_client,
           (unsigned long long)s.malformed, (unsigned long long)s.reply_drops,
           (unsigned long long)st.rx_drop_kernel, (unsigned long long)st.rx_drop_truncated);
  if ((rc = mior_transport_close(t)) < 0) {
    fprintf(stderr, "mior-perf server: close: %s\n", mior_strerror(rc));
    status = PERF_EXIT_RUNTIME;
  }
  return status;
}

/* ---- client: ping-pong ---- */

typedef struct sp_client {
  uint64_t expect_seq, got_ns;
  int got;
  uint64_t stale, foreign;
} sp_client;

static int cli_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  uint64_t now = perf_now_ns();
  sp_client *c = ctx;
  (void)port;
  if (pkt->len < SP_HDR_LEN || (get_be16(pkt->data + 8) & SP_FLAG_CLIENT)) {
    c->foreign++;
  } else if (get_be64(pkt->data) != c->expect_seq || c->got) {
    c->stale++; /* a late reply to a ping already counted lost */
  } else {
    c->got = 1;
    c->got_ns = now;
  }
  return MIOR_DONE;
}

static int sp_run_client(const sp_config *cfg) {
  char peer[300];
  /* sockperf's port when none is given */
  const char *colon = strrchr(cfg->peer, ':');
  if (colon && cfg->peer[strlen(cfg->peer) - 1] != ']')
    snprintf(peer, sizeof peer, "%s", cfg->peer);
  else
    snprintf(peer, sizeof peer, "%s:%d", cfg->peer, SP_DEFAULT_PORT);
  mior_options o;
  sp_options(cfg, &o);
  o.peer = peer;
  sp_client c;
  memset(&c, 0, sizeof c);
  mior_receiver recv = {cli_consume, NULL, &c};
  mior_transport *t;
  int rc = mior_transport_open(&t, strchr(peer, '[') ? "udp://[::]:0" : "udp://0.0.0.0:0", &o, &recv);
  if (rc < 0) {
    fprintf(stderr, "mior-perf client: %s: %s (%s)\n", peer, mior_strerror(rc), mior_last_error());
    return PERF_EXIT_RUNTIME;
  }
  sp_print_open("client", t);
  mior_port *port = mior_transport_port(t, 0);
  hist *h = malloc(sizeof *h);
  if (!h) {
    mior_transport_close(t);
    return PERF_EXIT_RUNTIME;
  }
  hist_init(h);
  uint64_t sent = 0, received = 0, lost = 0, seq = 0;
  uint64_t start = perf_now_ns();
  uint64_t warm_end = start + (uint64_t)(cfg->warmup * 1e9);
  uint64_t end = warm_end + (uint64_t)(cfg->seconds * 1e9), mstart = 0, mend = 0;
  int status = PERF_EXIT_OK;
  while (!atomic_load_explicit(&sp_interrupted, memory_order_relaxed)) {
    uint64_t now = perf_now_ns();
    if (now >= end) break;
    int measuring = now >= warm_end;
    if (measuring && !mstart) mstart = now;
    mior_pkt pkt;
    rc = mior_tx_acquire(port, &pkt);
    if (rc == -EAGAIN) {
      mior_port_poll(port, 0, 1000);
      continue;
    }
    if (rc < 0 || pkt.cap < cfg->size) {
      if (rc >= 0) mior_pkt_release(&pkt);
      fprintf(stderr, "mior-perf client: no transmit slot of %u bytes: %s\n", cfg->size,
              rc < 0 ? mior_strerror(rc) : "slots too small");
      status = PERF_EXIT_RUNTIME;
      break;
    }
    memset(pkt.data, 0, cfg->size);
    put_be64(pkt.data, ++seq);
    put_be16(pkt.data + 8, SP_FLAG_CLIENT | SP_FLAG_PONG);
    put_be32(pkt.data + 10, cfg->size);
    c.expect_seq = seq;
    c.got = 0;
    uint64_t t0 = perf_now_ns();
    rc = mior_tx_send(port, &pkt, cfg->size, NULL);
    if (rc >= 0) rc = mior_tx_flush(port);
    if (rc < 0) {
      fprintf(stderr, "mior-perf client: send: %s (%s)\n", mior_strerror(rc), mior_last_error());
      status = PERF_EXIT_RUNTIME;
      break;
    }
    if (measuring) sent++;
    uint64_t deadline = t0 + SP_PING_TIMEOUT_NS;
    while (!c.got && !atomic_load_explicit(&sp_interrupted, memory_order_relaxed)) {
      now = perf_now_ns();
      if (now >= deadline) break;
      rc = mior_port_poll(port, 0, (int64_t)((deadline - now) / 1000) + 1);
      if (rc < 0 && rc != -EINTR) break;
    }
    if (!c.got) {
      if (measuring) lost++;
      continue;
    }
    if (measuring) {
      received++;
      hist_add(h, c.got_ns - t0);
    }
  }
  mend = perf_now_ns();
  mior_port_stats st;
  mior_transport_stats_get(t, &st);
  double secs = mstart && mend > mstart ? (double)(mend - mstart) / 1e9 : 0;
  double p50 = (double)hist_quantile(h, 0.5) / 1e3, p99 = (double)hist_quantile(h, 0.99) / 1e3;
  double p999 = (double)hist_quantile(h, 0.999) / 1e3, mean = hist_mean(h) / 1e3;
  double mn = h->count ? (double)h->min / 1e3 : 0, mx = (double)h->max / 1e3;
  if (cfg->json)
    printf("{\"mode\":\"client\",\"backend\":\"%s\",\"server\":\"%s\",\"size\":%u,\"seconds\":%.3f,"
           "\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"rtt_us\":{\"mean\":%.2f,\"min\":%.2f,"
           "\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f}}\n",
           mior_backend_name(st.backend), peer, cfg->size, secs, (unsigned long long)sent,
           (unsigned long long)received, (unsigned long long)lost, mean, mn, p50, p99, p999, mx);
  else
    printf("mior-perf client (%s) -> %s, %u-byte messages, %.2f s: sent %llu, received %llu, "
           "lost %llu\n"
           "  round trip us: mean %.2f min %.2f p50 %.2f p99 %.2f p99.9 %.2f max %.2f\n"
           "  (sockperf reports half the round trip: p50 %.2f us)\n",
           mior_backend_name(st.backend), peer, cfg->size, secs, (unsigned long long)sent,
           (unsigned long long)received, (unsigned long long)lost, mean, mn, p50, p99, p999, mx,
           p50 / 2);
  free(h);
  if (!received && status == PERF_EXIT_OK) {
    fprintf(stderr, "mior-perf client: no replies from %s\n", peer);
    status = PERF_EXIT_RUNTIME;
  }
  if ((rc = mior_transport_close(t)) < 0) status = PERF_EXIT_RUNTIME;
  return status;
}

int mior_perf_sockperf(int argc, char **argv) {
  sp_config cfg;
  int rc = sp_parse(argc, argv, &cfg);
  if (rc >= 0) return rc;
  perf_interrupt_install(&sp_interrupted);
  rc = cfg.server ? sp_run_server(&cfg) : sp_run_client(&cfg);
  if (atomic_load(&sp_interrupted) && !cfg.server) rc = PERF_EXIT_RUNTIME;
  return rc;
}
