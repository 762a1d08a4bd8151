/* mior_tx_send_gso: one slot holding datagrams back to back, sent as one UDP GSO send (io_uring,
 * once the port's GSO is confirmed) or copied into slots of their own (before that, and on the
 * sockets backend).
 *
 * What must hold on every backend: each datagram arrives once, in order, with its own length (a
 * short last one included); tx_packets counts datagrams, not sends; on io_uring, once GSO is
 * confirmed, a call costs one slot and one completion, not one per datagram; a port without the
 * free slots the copying way needs sends nothing and says -EAGAIN; bad arguments are refused
 * with the slot given back; and every slot is back at the end.
 */
#include "transport_common.h"

#define MAXSEQ 4096u

/* What the receiver got, in arrival order, checked after the run (got_in_order). */
struct seen {
  uint32_t got, foreign;
  uint32_t seq[MAXSEQ], len[MAXSEQ];
  uint32_t want_len[MAXSEQ]; /* the length each sequence number was sent with */
};

static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  struct seen *s = ctx;
  uint32_t seq;
  if (s->got == MAXSEQ || tt_check(pkt->data, pkt->len, &seq) != 0) s->foreign++;
  else s->seq[s->got] = seq, s->len[s->got++] = pkt->len;
  return MIOR_DONE;
}

/* 1 if sequence numbers 0..n-1 arrived once each, in order, each with the length it was sent with. */
static int got_in_order(const struct seen *s, uint32_t n) {
  if (s->got != n || s->foreign) return 0;
  for (uint32_t i = 0; i < n; i++)
    if (s->seq[i] != i || s->len[i] != s->want_len[i]) return 0;
  return 1;
}

/* Fill one slot with n datagrams of seg bytes (the last `last` bytes), numbered from *seq. */
static uint32_t fill_run(struct seen *s, mior_pkt *pkt, uint32_t *seq, uint32_t n, uint32_t seg, uint32_t last) {
  uint32_t off = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len = i + 1 < n ? seg : last;
    tt_fill(pkt->data + off, len, *seq);
    s->want_len[(*seq)++] = len;
    off += len;
  }
  return off;
}

static mior_options sender_opts(mior_backend b, uint32_t buf_count) {
  mior_options o = tt_opts(b);
  o.flags |= MIOR_OPT_NO_RX;
  o.buf_size = 4096;
  o.buf_count = buf_count;
  return o;
}

/* Rounds of runs (17 datagrams of 200 bytes, the last 37; then 3 of 1000), all received. */
static void runs(mior_backend b, const char *name) {
  static struct seen s;
  memset(&s, 0, sizeof s);
  mior_options o = tt_opts(b);
  o.buf_size = 0; /* the udp default: GRO on, 64 KiB slots */
  o.buf_count = 0;
  mior_receiver rcv = {.consume = consume, .ctx = &s};
  mior_transport *rt, *st;
  REQUIRE_OK(mior_transport_open(&rt, "udp://127.0.0.1:0", &o, &rcv));
  mior_options so = sender_opts(b, 256);
  REQUIRE_OK(mior_transport_open(&st, "udp://127.0.0.1:0", &so, NULL));
  mior_port *rp = mior_transport_port(rt, 0), *sp = mior_transport_port(st, 0);
  mior_addr dst = tt_local(rt);
  REQUIRE(mior_port_poll(rp, 0, 0) >= 0);
  uint32_t seq = 0, calls = 0;
  for (int round = 0; round < 40; round++) {
    mior_pkt pkt;
    REQUIRE_OK(mior_tx_acquire(sp, &pkt));
    int big = round % 4 == 3;
    uint32_t len = fill_run(&s, &pkt, &seq, big ? 3 : 17, big ? 1000 : 200, big ? 1000 : 37);
    CHECK_OK(mior_tx_send_gso(sp, &pkt, len, big ? 1000 : 200, &dst));
    calls++;
    CHECK_OK(mior_tx_flush(sp));
    int64_t end = tt_now_ms() + 2000;
    while (s.got + s.foreign < seq && tt_now_ms() < end) {
      REQUIRE(mior_port_poll(sp, 0, 0) >= 0);
      REQUIRE(mior_port_poll(rp, 0, 1000) >= 0);
    }
  }
  /* One datagram (len <= seg) is a plain send. */
  mior_pkt one;
  REQUIRE_OK(mior_tx_acquire(sp, &one));
  uint32_t one_len = fill_run(&s, &one, &seq, 1, 500, 300);
  CHECK_OK(mior_tx_send_gso(sp, &one, one_len, 500, &dst));
  CHECK_OK(mior_tx_flush(sp));
  int64_t end = tt_now_ms() + 2000;
  while (s.got + s.foreign < seq && tt_now_ms() < end) {
    REQUIRE(mior_port_poll(sp, 0, 0) >= 0);
    REQUIRE(mior_port_poll(rp, 0, 1000) >= 0);
  }
  tt_drain_tx(sp, 64, 2000);
  mior_port_stats ss;
  REQUIRE_OK(mior_port_stats_get(sp, &ss));
  CHECK(got_in_order(&s, seq));
  CHECK_EQ(ss.tx_packets, seq);
  CHECK_EQ(ss.tx_errors, 0);
  CHECK_EQ(ss.user_held, 0);
  if (b == MIOR_BACKEND_URING && (ss.features & MIOR_FEAT_UDP_GSO)) {
    /* The first call probes GSO the copying way (17 slots, 17 records); after that each call is
     * one slot and one completion, so completions stay near the number of calls. */
    CHECK(ss.completions < (uint64_t)calls + 2u * 17u);
    CHECK(ss.tx_gso_sends >= calls - 1);
  }
  printf("    %s: %u datagrams from %u calls, %llu completions, %llu GSO sends\n", name, seq, calls + 1,
         (unsigned long long)ss.completions, (unsigned long long)ss.tx_gso_sends);
  CHECK_EQ(mior_transport_close(st), 0);
  CHECK_EQ(mior_transport_close(rt), 0);
}

/* Refusals: each gives the slot back and sends nothing. */
static void refusals(mior_backend b, const char *name) {
  mior_transport *st;
  mior_options so = sender_opts(b, 8);
  so.peer = "127.0.0.1:9";
  REQUIRE_OK(mior_transport_open(&st, "udp://127.0.0.1:0", &so, NULL));
  mior_port *sp = mior_transport_port(st, 0);
  mior_pkt pkt;
  REQUIRE_OK(mior_tx_acquire(sp, &pkt));
  CHECK_EQ(mior_tx_send_gso(sp, &pkt, 100, 0, NULL), -EINVAL); /* seg 0 */
  REQUIRE_OK(mior_tx_acquire(sp, &pkt));
  CHECK_EQ(mior_tx_send_gso(sp, &pkt, 0, 10, NULL), -EINVAL); /* nothing to send */
  REQUIRE_OK(mior_tx_acquire(sp, &pkt));
  CHECK_EQ(mior_tx_send_gso(sp, &pkt, 65 * 10, 10, NULL), -EINVAL); /* 65 datagrams */
  REQUIRE_OK(mior_tx_acquire(sp, &pkt));
  CHECK_EQ(mior_tx_send_gso(sp, &pkt, pkt.cap + 1, 100, NULL), -EINVAL); /* beyond the slot */
  REQUIRE_OK(mior_tx_acquire(sp, &pkt));
  pkt.flags |= MIOR_PKT_ECN;
  pkt.ecn = 1;
  CHECK_EQ(mior_tx_send_gso(sp, &pkt, 200, 100, NULL), -EOPNOTSUPP);
  /* Copying 16 datagrams needs 16 free slots; the port has 8, one of them this one. */
  REQUIRE_OK(mior_tx_acquire(sp, &pkt));
  CHECK_EQ(mior_tx_send_gso(sp, &pkt, 16 * 100, 100, NULL), -EAGAIN);
  CHECK_EQ(mior_tx_send_gso(NULL, &pkt, 100, 100, NULL), -EINVAL);
  /* A packet given back already: refused, never copied from (the slot may be the port's again). */
  REQUIRE_OK(mior_tx_acquire(sp, &pkt));
  mior_pkt stale = pkt;
  REQUIRE_OK(mior_pkt_release(&pkt));
  CHECK_EQ(mior_tx_send_gso(sp, &stale, 2 * 100, 100, NULL), -EINVAL);
  /* Data pointing past its slot: refused before anything is read. */
  REQUIRE_OK(mior_tx_acquire(sp, &pkt));
  pkt.data += pkt.cap + 4096;
  CHECK_EQ(mior_tx_send_gso(sp, &pkt, 2 * 100, 100, NULL), -EINVAL);
  tt_drain_tx(sp, 8, 2000);
  mior_port_stats ss;
  REQUIRE_OK(mior_port_stats_get(sp, &ss));
  CHECK_EQ(ss.tx_packets, 0);
  CHECK_EQ(ss.tx_invalid, 7);
  CHECK_EQ(ss.user_held, 0);
  printf("    %s: refusals gave every slot back\n", name);
  CHECK_EQ(mior_transport_close(st), 0);
}

int main(void) {
  tt_watchdog(120);
  const struct {
    const char *name;
    mior_backend b;
  } cfgs[] = {{"uring", MIOR_BACKEND_URING}, {"sockets", MIOR_BACKEND_SOCKETS}};
  for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
    if (mior_backend_supported(cfgs[c].b) != 1) {
      printf("  [%s] skipped: %s\n", cfgs[c].name, mior_last_error());
      continue;
    }
    int before = test_failures;
    runs(cfgs[c].b, cfgs[c].name);
    printf("  runs [%s]: %s\n", cfgs[c].name, test_failures == before ? "ok" : "FAILED");
    before = test_failures;
    refusals(cfgs[c].b, cfgs[c].name);
    printf("  refusals [%s]: %s\n", cfgs[c].name, test_failures == before ? "ok" : "FAILED");
  }
  TEST_DONE();
}
