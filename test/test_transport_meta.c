/* Per-packet metadata under every variant that has it (Linux: uring with multishot and with
 * posted receives, sockets; Windows: the Winsock backend, both completion paths), checked against
 * what a plain OS socket set: the local address each datagram was sent to (127.0.0.1 and
 * 127.0.0.2 on one 0.0.0.0 port; ::1 on a :: port), the ECN codepoint it carried (each of 0..3,
 * set per datagram), and the kernel's receive time (between the sender's clock before and the
 * receiver's after, on the system clock).  A reply sent in place leaves from the address the
 * query arrived on, with the codepoint the reply asks for; a transmit slot can choose its source
 * address and codepoint too; with the options off the packets carry no metadata flags; bad
 * metadata is refused; and a busy-polling port carries the same metadata.
 *
 * Where a system lacks a part, the body says so and checks what that system documents instead:
 * Windows refuses to send CE (-EINVAL, nothing sent) and has receive timestamps only from
 * Windows 10 build 20348 with the system's timestamping on (Wine 8: the open refuses
 * MIOR_OPT_RX_TIMESTAMP with -EOPNOTSUPP and the reason, which is checked); Wine 8 ignores the
 * control messages of a send, so there a reply's source address and codepoint are not compared.
 * ioring refuses the options (its reads carry no control messages): skipped with the reason.
 * Coalesced packets (GSO to GRO) carry their metadata too: test_transport_gro.c.  Hardware
 * timestamps asked for where the device makes none (loopback) come back as software ones,
 * flagged as such, with every control message of the fullest receive kept (Linux). */
#include "transport_os.h"

#define RX_META (MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP)

static int pull_one(mior_port *p, mior_pkt *out) {
  int64_t end = tt_now_ms() + 2000;
  while (tt_now_ms() < end) {
    int n = mior_rx_burst(p, out, 1);
    REQUIRE(n >= 0);
    if (n == 1) return 0;
    mior_port_poll(p, 1, 0);
  }
  return -1;
}

/* Open a udp port with the metadata options in o: those of them the system has.  A system without
 * receive timestamps refuses MIOR_OPT_RX_TIMESTAMP with -EOPNOTSUPP and says which option it
 * refused; then the port opens without it, and *ts says so.  1 if open, 0 if the backend refused
 * metadata altogether (ioring). */
static int open_meta(const tt_variant *v, const char *ep, mior_options *o, const mior_receiver *rcv,
                     mior_transport **t, int *ts) {
  *ts = (o->flags & MIOR_OPT_RX_TIMESTAMP) != 0;
  int rc = mior_transport_open(t, ep, o, rcv);
  if (rc == -EOPNOTSUPP && v->backend == MIOR_BACKEND_IORING) {
    CHECK(strstr(mior_last_error(), "metadata") != NULL);
    return 0;
  }
  if (rc == -EOPNOTSUPP && *ts) {
    const char *why = mior_last_error();
    CHECK(strstr(why, "TIMESTAMP") != NULL);
    printf("    receive timestamps refused here, as documented: %s\n", why);
    o->flags &= ~(uint32_t)MIOR_OPT_RX_TIMESTAMP;
    *ts = 0;
    rc = mior_transport_open(t, ep, o, rcv);
  }
  REQUIRE_OK(rc);
  return 1;
}

/* The reply the peer received from a send with metadata: its source and codepoint, where the
 * system's sends honour them. */
static void check_reply(tt_peer *k, int v6, const uint8_t *want_from, int want_ecn, int want_len) {
  static int said;
  const char *why = NULL;
  int honoured = tt_os_send_meta(&why);
  uint8_t from[16], rbuf[128];
  int recv_ecn;
  int n = tt_peer_recv(k, from, &recv_ecn, rbuf, sizeof rbuf, 2000);
  CHECK_EQ(n, want_len);
  if (!honoured) {
    if (!said++) printf("    %s\n", why);
    return;
  }
  CHECK(memcmp(from, want_from, v6 ? 16 : 4) == 0);
  CHECK_EQ(recv_ecn, want_ecn);
}

static void run_family(const tt_variant *v, int v6) {
  mior_options o = tt_vopts(v);
  o.flags |= RX_META;
  o.buf_count = 256;
  mior_transport *t;
  int ts;
  if (!open_meta(v, v6 ? "udp://[::]:0" : "udp://0.0.0.0:0", &o, NULL, &t, &ts))
    TT_RETURN_SKIP("ioring reads carry no control messages: metadata is refused (-EOPNOTSUPP)");
  mior_port *p = mior_transport_port(t, 0);
  uint16_t port = tt_local(t).port;
  tt_peer *k = tt_peer_open(v6);
  uint8_t dsts[2][16];
  memset(dsts, 0, sizeof dsts);
  int ndst = 1;
  if (v6) {
    dsts[0][15] = 1; /* ::1 */
  } else {
    uint8_t a1[4] = {127, 0, 0, 1}, a2[4] = {127, 0, 0, 2};
    memcpy(dsts[0], a1, 4);
    memcpy(dsts[1], a2, 4);
    ndst = 2;
  }
  uint32_t stamped = 0, ce_refused = 0, ecn_unset = 0;
  int fails0 = test_failures;
  for (int round = 0; round < 16 && test_failures == fails0; round++) {
    const uint8_t *dst = dsts[round % ndst];
    int ecn = round % 4;
    uint8_t msg[64];
    tt_fill(msg, sizeof msg, (uint32_t)round);
    uint64_t t0 = tt_realtime_ns();
    int set = tt_peer_send(k, dst, port, ecn, msg, sizeof msg);
    REQUIRE(set >= 0);
    mior_pkt pk;
    if (pull_one(p, &pk) < 0) {
      TEST_FAIL_AT("round %d: nothing received", round);
      break;
    }
    uint64_t t1 = tt_realtime_ns();
    CHECK_EQ(pk.len, sizeof msg);
    CHECK_EQ(pk.flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN), MIOR_PKT_LOCAL | MIOR_PKT_ECN);
    CHECK_EQ(pk.local.family, v6 ? MIOR_AF_INET6 : MIOR_AF_INET);
    CHECK(memcmp(pk.local.addr, dst, v6 ? 16 : 4) == 0);
    if (set) CHECK_EQ(pk.ecn, ecn);
    else ecn_unset++; /* the peer's OS would not mark it (Windows: CE; Wine: IPv6) */
    if (!ts) CHECK(!(pk.flags & MIOR_PKT_TIMESTAMP));
    if (pk.flags & MIOR_PKT_TIMESTAMP) {
      stamped++;
      CHECK(pk.rx_time_ns >= t0 && pk.rx_time_ns <= t1);
    }
    /* Reply in place: from the address the query went to, with another codepoint. */
    int want_ecn = (ecn + 1) % 4;
    pk.ecn = (uint8_t)want_ecn;
    pk.data[0] ^= 0xff;
    mior_addr to = pk.src;
    int rc = mior_tx_send(p, &pk, pk.len, &to);
    if (rc == -EINVAL && want_ecn == 3 && strstr(mior_last_error(), "CE") != NULL) {
      ce_refused++; /* Windows lets no application send CE; the slot is the port's again */
      continue;
    }
    CHECK_OK(rc);
    CHECK_OK(mior_tx_flush(p));
    check_reply(k, v6, dst, want_ecn, (int)sizeof msg);
    mior_port_poll(p, 0, 0); /* the send's completion */
  }
  /* Linux stamps every datagram; Windows only those it has a timestamp for ("if available"). */
  if (ts) printf("    %u of 16 datagrams carried a receive timestamp\n", stamped);
  if (ts && TT_OS_RX_TIMESTAMP_EVERY) CHECK_EQ(stamped, 16);
  if (ce_refused) printf("    %u CE replies refused (-EINVAL), as Windows documents\n", ce_refused);
  if (ecn_unset) printf("    %u datagrams the peer's OS could not mark: their codepoint not compared\n", ecn_unset);
  /* A transmit slot with its own source address and codepoint. */
  mior_pkt tp;
  REQUIRE_OK(mior_tx_acquire(p, &tp));
  CHECK_EQ(tp.flags, 0);
  memset(tp.data, 7, 32);
  tp.flags = MIOR_PKT_LOCAL | MIOR_PKT_ECN;
  memset(&tp.local, 0, sizeof tp.local);
  tp.local.family = v6 ? MIOR_AF_INET6 : MIOR_AF_INET;
  memcpy(tp.local.addr, dsts[ndst - 1], v6 ? 16 : 4);
  tp.ecn = 1;
  mior_addr kaddr = tt_peer_addr(k);
  CHECK_OK(mior_tx_send(p, &tp, 32, &kaddr));
  CHECK_OK(mior_tx_flush(p));
  check_reply(k, v6, dsts[ndst - 1], 1, 32);
  /* Bad metadata is refused (and the slot is the port's again). */
  REQUIRE_OK(mior_tx_acquire(p, &tp));
  tp.flags = MIOR_PKT_ECN;
  tp.ecn = 4;
  CHECK_ERR(mior_tx_send(p, &tp, 8, &kaddr), -EINVAL);
  REQUIRE_OK(mior_tx_acquire(p, &tp));
  tp.flags = MIOR_PKT_LOCAL;
  memset(&tp.local, 0, sizeof tp.local);
  tp.local.family = v6 ? MIOR_AF_INET : MIOR_AF_INET6;
  CHECK_ERR(mior_tx_send(p, &tp, 8, &kaddr), -EINVAL);
  tt_peer_close(k);
  tt_drain_tx(p, 1, 500);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_meta(const tt_variant *v) {
  run_family(v, 0);
  if (!tt_skipped) run_family(v, 1);
}

/* A busy-polling port (Linux: its direct path, a non-blocking recvmsg/sendmsg beside the ring,
 * one packet per poll) must carry the same metadata as the ring: the arrival address and
 * codepoint on receive, and a reply from that address with the codepoint asked for, echoed in
 * place from consume. */
typedef struct direct_ctx {
  int got;
  uint32_t flags;
  mior_addr local;
  uint8_t ecn;
  int sent;
} direct_ctx;

static int direct_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  direct_ctx *d = ctx;
  d->got++;
  d->flags = pkt->flags;
  d->local = pkt->local;
  d->ecn = pkt->ecn;
  mior_pkt r = *pkt;
  r.ecn = (uint8_t)((pkt->ecn + 1) % 3); /* 0..2: a codepoint every system sends */
  r.flags = pkt->flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN); /* reply from where it arrived */
  mior_addr to = pkt->src;
  d->sent = mior_tx_send(port, &r, r.len, &to);
  return MIOR_DONE;
}

static void run_family_direct(const tt_variant *v, int v6) {
  mior_options o = tt_vopts(v);
  o.flags |= MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN;
  o.busy_poll_us = 2000;
  direct_ctx d;
  memset(&d, 0, sizeof d);
  mior_receiver rcv = {.consume = direct_consume, .flush = NULL, .ctx = &d};
  mior_transport *t;
  int ts;
  if (!open_meta(v, v6 ? "udp://[::]:0" : "udp://0.0.0.0:0", &o, &rcv, &t, &ts))
    TT_RETURN_SKIP("ioring reads carry no control messages: metadata is refused (-EOPNOTSUPP)");
  mior_port *p = mior_transport_port(t, 0);
  uint16_t port = tt_local(t).port;
  tt_peer *k = tt_peer_open(v6);
  uint8_t dst[16];
  memset(dst, 0, sizeof dst);
  if (v6) dst[15] = 1;
  else {
    uint8_t a2[4] = {127, 0, 0, 2};
    memcpy(dst, a2, 4);
  }
  uint64_t submits0 = 0;
  {
    mior_port_stats st;
    REQUIRE_OK(mior_port_stats_get(p, &st));
    submits0 = st.submits;
  }
  int fails0 = test_failures;
  for (int round = 0; round < 8 && test_failures == fails0; round++) {
    int ecn = 1 + round % 2; /* ECT(1), ECT(0): a codepoint every system sends */
    uint8_t msg[48];
    tt_fill(msg, sizeof msg, (uint32_t)round);
    int set = tt_peer_send(k, dst, port, ecn, msg, sizeof msg);
    REQUIRE(set >= 0);
    int before = d.got;
    int64_t end = tt_now_ms() + 2000;
    while (d.got == before && tt_now_ms() < end) REQUIRE(mior_port_poll(p, 1, 100000) >= 0);
    if (d.got == before) {
      TEST_FAIL_AT("round %d: nothing received", round);
      break;
    }
    CHECK_EQ(d.flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN), MIOR_PKT_LOCAL | MIOR_PKT_ECN);
    CHECK(memcmp(d.local.addr, dst, v6 ? 16 : 4) == 0);
    if (set) CHECK_EQ(d.ecn, ecn); /* else the peer's OS could not mark it (Wine, IPv6) */
    CHECK_OK(d.sent);
    CHECK_OK(mior_tx_flush(p));
    check_reply(k, v6, dst, (ecn + 1) % 3, (int)sizeof msg);
    mior_port_poll(p, 0, 0); /* the send's completion */
  }
  mior_port_stats st;
  REQUIRE_OK(mior_port_stats_get(p, &st));
  CHECK(st.submits > submits0); /* the port did look (direct calls count as submits) */
  tt_peer_close(k);
  tt_drain_tx(p, 8, 500);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_direct(const tt_variant *v) {
  run_family_direct(v, 0);
  if (!tt_skipped) run_family_direct(v, 1);
}

/* Hardware timestamps asked for (MIOR_OPT_RX_TIMESTAMP_HW, Linux) where the device makes none
 * (loopback): each packet carries the kernel's software stamp, between the send and the receive,
 * with MIOR_PKT_TIMESTAMP alone.  On a v6 port an IPv4 datagram brings the most control messages
 * one receive gets (IPv4 and IPv6 arrival addresses, the TOS byte, SCM_TIMESTAMPING), here with
 * UDP GRO off so that the room is the metadata's alone: none may be lost off its end.  Elsewhere
 * the option is refused with -EOPNOTSUPP and the reason. */
static void body_hw(const tt_variant *v) {
  mior_options o = tt_vopts(v);
  o.flags |= MIOR_OPT_RX_PKTINFO | MIOR_OPT_RX_ECN | MIOR_OPT_RX_TIMESTAMP_HW | MIOR_OPT_NO_UDP_GRO;
  mior_transport *t;
  int rc = mior_transport_open(&t, "udp://[::]:0", &o, NULL);
  if (rc == -EOPNOTSUPP && strstr(mior_last_error(), "Linux only") != NULL)
    TT_RETURN_SKIP("hardware receive timestamps are Linux only: refused (-EOPNOTSUPP), as documented");
  REQUIRE_OK(rc);
  mior_port *p = mior_transport_port(t, 0);
  uint16_t port = tt_local(t).port;
  for (int v6 = 0; v6 < 2; v6++) {
    tt_peer *k = tt_peer_open(v6);
    uint8_t dst[16], msg[48];
    memset(dst, 0, sizeof dst);
    if (v6) {
      dst[15] = 1;
    } else {
      dst[0] = 127;
      dst[3] = 1;
    }
    tt_fill(msg, sizeof msg, (uint32_t)v6);
    uint64_t t0 = tt_realtime_ns();
    REQUIRE(tt_peer_send(k, dst, port, 2, msg, sizeof msg) > 0);
    mior_pkt pk;
    REQUIRE(pull_one(p, &pk) == 0);
    uint64_t t1 = tt_realtime_ns();
    CHECK_EQ(pk.len, sizeof msg);
    CHECK_EQ(pk.flags & (MIOR_PKT_LOCAL | MIOR_PKT_ECN | MIOR_PKT_TIMESTAMP | MIOR_PKT_TIMESTAMP_HW),
             MIOR_PKT_LOCAL | MIOR_PKT_ECN | MIOR_PKT_TIMESTAMP);
    /* An IPv4 arrival address may come as the v4-mapped IPv6 one: its last four bytes. */
    CHECK(memcmp(pk.local.addr + (!v6 && pk.local.family == MIOR_AF_INET6 ? 12 : 0), dst, v6 ? 16 : 4) == 0);
    CHECK_EQ(pk.ecn, 2);
    CHECK(pk.rx_time_ns >= t0 && pk.rx_time_ns <= t1);
    CHECK_OK(mior_pkt_release(&pk));
    tt_peer_close(k);
  }
  mior_port_poll(p, 0, 0);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

/* Off: no flags, and the same datagram arrives. */
static void body_off(const tt_variant *v) {
  mior_options o = tt_vopts(v);
  mior_transport *t;
  tt_open_udp_self(v, "127.0.0.1", &o, NULL, &t);
  mior_port *p = mior_transport_port(t, 0);
  tt_peer *k = tt_peer_open(0);
  mior_addr me = tt_local(t);
  uint8_t msg[40];
  tt_fill(msg, sizeof msg, 9);
  REQUIRE(tt_peer_send(k, me.addr, me.port, 2, msg, sizeof msg) >= 0);
  mior_pkt pk;
  if (v->connected) {
    /* A connected port takes datagrams from its peer only: nothing to see here but the flags of
     * none, and the options refused on another kind below. */
    tt_peer_close(k);
  } else {
    REQUIRE(pull_one(p, &pk) == 0);
    CHECK_EQ(pk.flags, 0);
    CHECK_EQ(pk.len, sizeof msg);
    CHECK_OK(mior_pkt_release(&pk));
    tt_peer_close(k);
  }
  /* Options on a kind other than udp are refused. */
  mior_transport *t2 = NULL;
  mior_options o2 = tt_vopts(v);
  o2.flags |= MIOR_OPT_RX_ECN;
  int rc = mior_transport_open(&t2, "ip://127.0.0.1/253", &o2, NULL);
  CHECK(rc == -EINVAL || rc == -EPERM);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

/* Linux's io_uring takes metadata through multishot receive (in the slot) and through posted
 * receives (a control buffer per receive): both.  The sockets backends ignore the flag. */
static const tt_config receive_modes[] = {
    {"", MIOR_BACKEND_AUTO, 0, 0, 0},
    {"posted receives", MIOR_BACKEND_URING, MIOR_OPT_NO_MULTISHOT, 0, 0},
};

static const tt_test tests[] = {
    {"metadata against the sender's", body_meta, TT_CONFIGS(receive_modes)},
    {"metadata off", body_off, TT_AS_IS},
    {"metadata on a busy-polling port", body_direct, TT_CONFIGS(receive_modes)},
    {"hardware timestamps asked, software ones given", body_hw, TT_CONFIGS(receive_modes)},
};

int main(void) {
  tt_watchdog(110);
  if (!tt_run(tests, sizeof tests / sizeof tests[0])) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
