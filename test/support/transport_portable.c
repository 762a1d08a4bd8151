/* The bodies of test/transport_portable.h's helpers, compiled once into mior_test_support (as
 * liburing's test/helpers.c) rather than into every test. */
#include <stdlib.h>
#include "transport_os.h"

const char *tt_phase = "start";

const char *tt_skipped;

mior_options tt_opts(mior_backend b) {
  mior_options o;
  mior_options_init(&o);
  o.backend = b;
  return o;
}

uint32_t tt_fnv(const uint8_t *p, uint32_t n) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

uint32_t tt_get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

void tt_fill(uint8_t *p, uint32_t len, uint32_t seq) {
  for (uint32_t i = TT_HDR; i < len; i++) p[i] = (uint8_t)(seq * 131u + i * 7u + (i >> 8));
  tt_put32(p, TT_MAGIC);
  tt_put32(p + 4, seq);
  tt_put32(p + 8, len);
  tt_put32(p + 12, tt_fnv(p + TT_HDR, len - TT_HDR));
}

int tt_check(const uint8_t *p, uint32_t len, uint32_t *seq) {
  if (len < TT_HDR || tt_get32(p) != TT_MAGIC) return 1;
  if (tt_get32(p + 8) != len) return -1;
  *seq = tt_get32(p + 4);
  for (uint32_t i = TT_HDR; i < len; i++) {
    if (p[i] != (uint8_t)(*seq * 131u + i * 7u + (i >> 8))) return -1;
  }
  return tt_get32(p + 12) == tt_fnv(p + TT_HDR, len - TT_HDR) ? 0 : -1;
}

uint32_t tt_csum_add(uint32_t sum, const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += (uint32_t)(p[n - 1] << 8);
  return sum;
}

uint16_t tt_csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

void tt_put16be(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

uint32_t tt_build_ipv4_udp(uint8_t *p, const uint8_t src[4], const uint8_t dst[4],
                                         uint16_t sport, uint16_t dport, uint32_t plen,
                                         uint16_t ip_id) {
  uint32_t total = 28 + plen;
  memset(p, 0, 28);
  p[0] = 0x45;
  tt_put16be(p + 2, (uint16_t)total);
  tt_put16be(p + 4, ip_id);
  tt_put16be(p + 6, 0x4000); /* DF */
  p[8] = 64;
  p[9] = 17;
  memcpy(p + 12, src, 4);
  memcpy(p + 16, dst, 4);
  tt_put16be(p + 10, tt_csum_fold(tt_csum_add(0, p, 20)));
  uint8_t *u = p + 20;
  tt_put16be(u, sport);
  tt_put16be(u + 2, dport);
  tt_put16be(u + 4, (uint16_t)(8 + plen));
  /* UDP checksum over the pseudo-header, header and payload. */
  uint8_t ph[12];
  memcpy(ph, src, 4);
  memcpy(ph + 4, dst, 4);
  ph[8] = 0;
  ph[9] = 17;
  tt_put16be(ph + 10, (uint16_t)(8 + plen));
  uint32_t s = tt_csum_add(0, ph, 12);
  s = tt_csum_add(s, u, 8 + plen);
  uint16_t c = tt_csum_fold(s);
  tt_put16be(u + 6, c ? c : 0xffff);
  return total;
}

int tt_parse_ipv4_udp(const uint8_t *p, uint32_t len, int udp_csum,
                                    const uint8_t **payload, uint32_t *plen, uint16_t *sport,
                                    uint16_t *dport, uint8_t *src, uint8_t *dst) {
  if (len < 20 || (p[0] >> 4) != 4) return 1;
  uint32_t ihl = (p[0] & 15u) * 4u;
  if (ihl < 20 || len < ihl) return -1;
  if (p[9] != 17) return 1;
  uint32_t total = tt_get16be(p + 2);
  if (total > len || total < ihl + 8) return -1;
  if (tt_csum_fold(tt_csum_add(0, p, ihl)) != 0) return -1;
  const uint8_t *u = p + ihl;
  uint32_t ulen = tt_get16be(u + 4);
  if (ulen != total - ihl) return -1;
  if (udp_csum && tt_get16be(u + 6) != 0) {
    uint8_t ph[12];
    memcpy(ph, p + 12, 8);
    ph[8] = 0;
    ph[9] = 17;
    tt_put16be(ph + 10, (uint16_t)ulen);
    if (tt_csum_fold(tt_csum_add(tt_csum_add(0, ph, 12), u, ulen)) != 0) return -1;
  }
  if (src) memcpy(src, p + 12, 4);
  if (dst) memcpy(dst, p + 16, 4);
  *sport = tt_get16be(u);
  *dport = tt_get16be(u + 2);
  *payload = u + 8;
  *plen = ulen - 8;
  return 0;
}

int tt_addr_eq(const mior_addr *a, const mior_addr *b) {
  if (a->family != b->family || a->port != b->port) return 0;
  size_t n = a->family == MIOR_AF_INET6 ? 16 : 4;
  return memcmp(a->addr, b->addr, n) == 0;
}

int tt_unwrap_plain(tt_rx *r, const mior_pkt *pkt, const uint8_t **pl, uint32_t *plen) {
  (void)r;
  *pl = pkt->data;
  *plen = pkt->len;
  return 0;
}

void tt_rx_init(tt_rx *r, uint32_t count) {
  memset(r, 0, sizeof *r);
  r->count = count;
  r->seen = calloc(count ? count : 1, 1);
  REQUIRE(r->seen != NULL);
  r->unwrap = tt_unwrap_plain;
}

void tt_rx_free(tt_rx *r) {
  free(r->seen);
  free(r->kept);
  r->seen = NULL;
  r->kept = NULL;
}

int tt_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  tt_rx *r = ctx;
  for (int i = 0; i < r->nports; i++) {
    if (r->ports[i] == port) r->per_port[i]++;
  }
  const uint8_t *pl;
  uint32_t plen, seq = 0;
  int u = r->unwrap(r, pkt, &pl, &plen);
  if (u > 0) {
    r->foreign++;
    return MIOR_DONE;
  }
  int c = u < 0 ? -1 : tt_check(pl, plen, &seq);
  if (c > 0) {
    r->foreign++;
    return MIOR_DONE;
  }
  if (c < 0) {
    r->bad++;
    return MIOR_DONE;
  }
  if (seq >= r->count) {
    r->out_of_range++;
    return MIOR_DONE;
  }
  if (r->check_src && !tt_addr_eq(&pkt->src, &r->want_src)) r->src_mismatch++;
  if (r->want_unspec_src && pkt->src.family != MIOR_AF_UNSPEC) r->src_mismatch++;
  if (r->seen[seq]) {
    r->dups++;
    return MIOR_DONE;
  }
  if (r->got > 0 && seq < r->last_seq) r->reordered++;
  r->last_seq = seq;
  r->seen[seq] = 1;
  r->got++;
  r->bytes += pkt->len;
  if (r->keep_every && seq % r->keep_every == 0 && r->kept_n < r->keep_max) {
    r->kept[r->kept_n++] = *pkt;
    return MIOR_KEEP;
  }
  return MIOR_DONE;
}

mior_receiver tt_receiver(tt_rx *r) {
  mior_receiver rc = {tt_consume, NULL, r};
  return rc;
}

uint32_t tt_build_payload(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  const tt_span *s = ctx;
  uint32_t len = tt_len_for(seq + s->off, TT_HDR, s->hi);
  if (len > cap) len = cap;
  tt_fill(buf, len, seq + s->off);
  return len;
}

tt_pump_result tt_pump(mior_port *tx, tt_rx *r, mior_port **rx, int nrx,
                                     uint32_t count, uint32_t window, const mior_addr *dst,
                                     tt_build_fn build, void *bctx, int64_t limit_ms) {
  tt_pump_result res;
  memset(&res, 0, sizeof res);
  int64_t t0 = tt_now_us(), deadline = t0 + limit_ms * 1000, last_progress = t0;
  uint32_t last_got = r->got, got0 = r->got;
  while (r->got - got0 < count && tt_now_us() < deadline) {
    uint32_t queued = 0;
    while (res.sent < count && res.sent - (r->got - got0) < window && queued < 64) {
      mior_pkt pkt;
      int rc = mior_tx_acquire(tx, &pkt);
      if (rc == -EAGAIN) {
        res.eagain++;
        break;
      }
      if (rc < 0) {
        TEST_FAIL_AT("mior_tx_acquire -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
        return res;
      }
      uint32_t len = build(bctx, pkt.data, pkt.cap, res.sent);
      rc = mior_tx_send(tx, &pkt, len, dst);
      if (rc < 0) {
        if (res.send_errors++ == 0)
          TEST_FAIL_AT("mior_tx_send -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
        if (res.send_errors > 100) return res;
        continue;
      }
      res.sent++;
      res.sent_bytes += len;
      queued++;
    }
    int rc = mior_tx_flush(tx);
    if (rc < 0 && rc != -EAGAIN) {
      TEST_FAIL_AT("mior_tx_flush -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
      return res;
    }
    rc = mior_port_poll(tx, 0, 0);
    if (rc < 0) {
      TEST_FAIL_AT("mior_port_poll(tx) -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
      return res;
    }
    /* Wait a little on the receivers only when the window is full (or all is sent). */
    int64_t wait = (res.sent == count || res.sent - (r->got - got0) >= window) ? 1000 : 0;
    for (int i = 0; i < nrx; i++) {
      rc = mior_port_poll(rx[i], 0, nrx == 1 ? wait : 0);
      if (rc < 0) {
        TEST_FAIL_AT("mior_port_poll(rx) -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
        return res;
      }
    }
    int64_t now = tt_now_us();
    if (r->got != last_got) {
      last_got = r->got;
      last_progress = now;
    } else if (now - last_progress > 2000000) {
      break; /* nothing for 2 s: lost packets; the caller's tally says which */
    }
  }
  res.elapsed_us = tt_now_us() - t0;
  return res;
}

void tt_drain_tx(mior_port *tx, uint64_t want, int64_t limit_ms) {
  int64_t deadline = tt_now_us() + limit_ms * 1000;
  mior_port_stats st;
  do {
    mior_tx_flush(tx);
    mior_port_poll(tx, 0, 1000);
    if (mior_port_stats_get(tx, &st) < 0) return;
  } while (st.tx_packets + st.tx_errors < want && tt_now_us() < deadline);
}

void tt_poll_for(mior_port **ports, int n, int64_t ms) {
  int64_t deadline = tt_now_us() + ms * 1000;
  while (tt_now_us() < deadline) {
    for (int i = 0; i < n; i++) mior_port_poll(ports[i], 0, n == 1 ? 1000 : 0);
  }
}

mior_addr tt_local(mior_transport *t) {
  mior_addr a;
  memset(&a, 0, sizeof a);
  CHECK_OK(mior_port_local_addr(mior_transport_port(t, 0), &a));
  return a;
}

mior_options tt_vopts(const tt_variant *v) {
  mior_options o = tt_opts(v->backend);
  o.flags |= v->flags;
  o.busy_poll_us = v->busy_poll_us;
  if (v->buf_count) o.buf_count = v->buf_count;
  return o;
}

int tt_run_variant(const char *name, const tt_variant *v,
                                 void (*body)(const tt_variant *v)) {
  static char phase[240];
  snprintf(phase, sizeof phase, "%s [%s]", name, v->name);
  tt_phase = phase;
  if (v->env) tt_os_setenv(v->env, 1);
  int before = test_failures;
  int64_t t0 = tt_now_us();
  tt_skipped = NULL;
  body(v);
  if (tt_skipped && test_failures == before)
    printf("  %s: SKIP (%s)\n", phase, tt_skipped);
  else
    printf("  %s: %s (%.1f ms)\n", phase, test_failures == before ? "ok" : "FAILED",
           (tt_now_us() - t0) / 1000.0);
  fflush(stdout);
  if (v->env) tt_os_setenv(v->env, 0);
  return !tt_skipped;
}

int tt_run_test(const tt_test *t) {
  static const tt_config as_is = {"", MIOR_BACKEND_AUTO, 0, 0, 0};
  const tt_config *configs = t->configs ? t->configs : &as_is;
  size_t nconfigs = t->configs ? t->nconfigs : 1, nrows;
  const tt_variant *rows = tt_os_variants(&nrows);
  int ran = 0;
  /* MIOR_TEST_BACKEND=NAME runs only that backend's variants (a CTest entry that reruns a test
   * under one backend's configuration, e.g. the IoRing emulation's). */
  const char *only = getenv("MIOR_TEST_BACKEND");
  for (const mior__backend_ops *const *ops = mior__backends; *ops; ops++) {
    mior_backend b = (*ops)->id;
    if (only && *only && strcmp(only, (*ops)->name) != 0) continue;
    if (mior_backend_supported(b) != 1) {
      printf("  %s [%s]: SKIP (%s)\n", t->name, (*ops)->name, mior_last_error());
      fflush(stdout);
      continue;
    }
    tt_variant plain;
    memset(&plain, 0, sizeof plain);
    plain.name = (*ops)->name;
    plain.backend = b;
    const tt_variant *mine[8];
    size_t n = 0;
    for (size_t i = 0; i < nrows && n < 8; i++) {
      if (rows[i].backend == b) mine[n++] = &rows[i];
    }
    if (n == 0) mine[n++] = &plain;
    for (size_t i = 0; i < n; i++) {
      for (size_t c = 0; c < nconfigs; c++) {
        if (configs[c].backend != MIOR_BACKEND_AUTO && configs[c].backend != b) continue;
        tt_variant v = *mine[i];
        char name[160];
        snprintf(name, sizeof name, "%s%s%s", mine[i]->name, configs[c].name[0] ? ", " : "",
                 configs[c].name);
        v.name = name;
        v.flags |= configs[c].flags;
        if (configs[c].busy_poll_us) v.busy_poll_us = configs[c].busy_poll_us;
        v.param = configs[c].param;
        ran += tt_run_variant(t->name, &v, t->body);
      }
    }
  }
  return ran;
}

int tt_run(const tt_test *tests, size_t n) {
  int ran = 0;
  for (size_t i = 0; i < n; i++) ran += tt_run_test(&tests[i]);
  return ran;
}

uint16_t tt_free_udp_port(const char *host) {
  char ep[80];
  snprintf(ep, sizeof ep, "udp://%s:0", host);
  mior_options o = tt_opts(MIOR_BACKEND_SOCKETS);
  o.buf_count = 16;
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, ep, &o, NULL));
  mior_addr a = tt_local(t);
  CHECK_EQ(mior_transport_close(t), 0);
  return a.port;
}

void tt_udp_ends_init(const tt_variant *v, const char *host, tt_udp_ends *e) {
  memset(e, 0, sizeof *e);
  if (!v->connected) {
    snprintf(e->ep_rx, sizeof e->ep_rx, "udp://%s:0", host);
    snprintf(e->ep_tx, sizeof e->ep_tx, "udp://%s:0", host);
    return;
  }
  uint16_t prx = tt_free_udp_port(host), ptx = tt_free_udp_port(host);
  for (int i = 0; i < 10 && ptx == prx; i++) ptx = tt_free_udp_port(host);
  REQUIRE(prx != ptx);
  snprintf(e->ep_rx, sizeof e->ep_rx, "udp://%s:%u", host, prx);
  snprintf(e->ep_tx, sizeof e->ep_tx, "udp://%s:%u", host, ptx);
  snprintf(e->peer_rx, sizeof e->peer_rx, "%s:%u", host, ptx);
  snprintf(e->peer_tx, sizeof e->peer_tx, "%s:%u", host, prx);
}

void tt_open_udp_pair(const tt_variant *v, const char *host, mior_options *orx,
                                    const mior_receiver *rrx, mior_transport **rx,
                                    mior_options *otx, const mior_receiver *rtx,
                                    mior_transport **tx, int connect_tx) {
  tt_udp_ends e;
  tt_udp_ends_init(v, host, &e);
  if (e.peer_rx[0]) orx->peer = e.peer_rx;
  REQUIRE_OK(mior_transport_open(rx, e.ep_rx, orx, rrx));
  if (connect_tx && !e.peer_tx[0]) {
    mior_addr dst = tt_local(*rx);
    REQUIRE_OK(mior_addr_format(&dst, e.peer_tx, sizeof e.peer_tx));
  }
  if (e.peer_tx[0]) otx->peer = e.peer_tx;
  REQUIRE_OK(mior_transport_open(tx, e.ep_tx, otx, rtx));
  orx->peer = otx->peer = NULL; /* they pointed into e, which ends here */
}

void tt_open_oneway(const tt_variant *v, const char *host, tt_rx *r, uint32_t count,
                                  const mior_options *orx, const mior_options *otx,
                                  mior_transport **rx, mior_transport **tx, int connect_tx) {
  tt_rx_init(r, count);
  mior_options o = orx ? *orx : tt_vopts(v), ot = otx ? *otx : tt_vopts(v);
  ot.flags |= MIOR_OPT_NO_RX;
  mior_receiver recv = tt_receiver(r);
  tt_open_udp_pair(v, host, &o, &recv, rx, &ot, NULL, tx, connect_tx);
}

void tt_close_oneway(mior_transport *rx, mior_transport *tx, tt_rx *r) {
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(r);
}

void tt_open_udp_self(const tt_variant *v, const char *host, mior_options *o,
                                    const mior_receiver *recv, mior_transport **t) {
  char ep[80], self[80];
  if (!v->connected) {
    snprintf(ep, sizeof ep, "udp://%s:0", host);
    REQUIRE_OK(mior_transport_open(t, ep, o, recv));
    return;
  }
  uint16_t port = tt_free_udp_port(host);
  snprintf(ep, sizeof ep, "udp://%s:%u", host, port);
  snprintf(self, sizeof self, "%s:%u", host, port);
  o->peer = self;
  REQUIRE_OK(mior_transport_open(t, ep, o, recv));
  o->peer = NULL;
}
