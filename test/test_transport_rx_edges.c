/* The edges of the receive path, under every backend.  Regression tests for the data-path review
 * (issue 11), each named after the defect it pins:
 *
 *   busy_poll_direct_path   udp: a busy-polling ping-pong (the direct path) echoes every datagram
 *                           once and in order, counts the truncated ones, returns every slot
 *   truncated_frames        packet:// and ip:// (on a namespace's loopback): a frame longer than a
 *                           slot is counted in rx_drop_truncated and never delivered cut
 *   echo_in_place           consume sends the received packet back (no copy): every slot comes
 *                           back once, user_held stays right, every echo arrives intact
 *   release_in_consume      consume releases the packet and returns MIOR_DONE: the slot is not
 *                           reclaimed twice
 *   stale_release           a copy of a packet whose slot was reused since: release and send
 *                           fail with -EINVAL, and the slot's new holder is not disturbed
 *   empty_datagrams         zero-length UDP datagrams are delivered (len 0) and can be sent, and
 *                           a stream of them cannot force a multishot re-arm per datagram
 */
#include <stdatomic.h>

#include "transport_common.h"

static netns_pair pair;
static int have_pair;

/* --- truncated frames ------------------------------------------------------------------------- */

typedef struct frames {
  uint32_t got, longest, cut;
} frames;

static int frames_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  frames *f = ctx;
  f->got++;
  if (pkt->len > f->longest) f->longest = pkt->len;
  if (pkt->len >= pkt->cap) f->cut++; /* filled the slot to the brim: cut, or at least suspicious */
  return MIOR_DONE;
}

/* In namespace a, on its loopback (MTU 64 KiB): small and 4000-byte UDP datagrams go past a
 * packet:// or ip:// port with 2 KiB slots. */
static void truncation(mior_backend b, const char *ep, uint32_t flags) {
  frames f;
  memset(&f, 0, sizeof f);
  mior_options o = tt_opts(b);
  o.buf_count = 256;
  o.flags |= flags;
  mior_receiver recv = {frames_consume, NULL, &f};
  mior_transport *t = NULL;
  REQUIRE_OK(netns_enter(pair.fd_a));
  int rc = mior_transport_open(&t, ep, &o, &recv);
  int ks = rc == 0 ? tt_kernel_udp4(300) : -1;
  REQUIRE_OK(netns_enter_host());
  REQUIRE_OK(rc);
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons(9); /* discard: nobody listens, the port sees the frames anyway */
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  static uint8_t buf[4000];
  const uint32_t n = 20;
  for (uint32_t i = 0; i < n; i++) {
    CHECK(sendto(ks, buf, 200, 0, (struct sockaddr *)&dst, sizeof dst) == 200);
    CHECK(sendto(ks, buf, sizeof buf, 0, (struct sockaddr *)&dst, sizeof dst) == (ssize_t)sizeof buf);
  }
  mior_port *p = mior_transport_port(t, 0);
  mior_port_stats st;
  int64_t end = tt_now_ms() + 2000;
  do {
    mior_port_poll(p, 0, 1000);
    mior_port_stats_get(p, &st);
  } while (st.rx_drop_truncated < n && tt_now_ms() < end);
  tt_poll_for(&p, 1, 30);
  mior_port_stats_get(p, &st);
  printf("    %s: delivered %u (longest %u), truncated %llu\n", ep, f.got, f.longest,
         (unsigned long long)st.rx_drop_truncated);
  CHECK_EQ(f.cut, 0);
  CHECK(f.longest < 2048);
  CHECK(f.got >= n); /* the small ones (and, on loopback, ICMP errors they cause) */
  CHECK_EQ(st.rx_drop_truncated, n);
  close(ks);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_truncated_packet(mior_backend b) { truncation(b, "packet://lo", 0); }
static void body_truncated_packet_posted(mior_backend b) {
  truncation(b, "packet://lo", MIOR_OPT_NO_MULTISHOT);
}
static void body_truncated_ip(mior_backend b) { truncation(b, "ip://127.0.0.1/udp", 0); }
static void body_truncated_ip_posted(mior_backend b) {
  truncation(b, "ip://127.0.0.1/udp", MIOR_OPT_NO_MULTISHOT);
}

/* --- consume sends or releases the packet it was given ---------------------------------------- */

typedef struct responder {
  int mode; /* 0 echo in place, 1 release then DONE, 2 echo then KEEP (nothing kept) */
  uint32_t got, send_fail, release_fail;
} responder;

static int respond(void *ctx, mior_port *port, const mior_pkt *pkt) {
  responder *r = ctx;
  r->got++;
  mior_pkt copy = *pkt;
  if (r->mode == 1) {
    if (mior_pkt_release(&copy) != 0) r->release_fail++;
    return MIOR_DONE;
  }
  /* Echo in place: the same slot, the same bytes, back to the sender. */
  if (mior_tx_send(port, &copy, pkt->len, &pkt->src) != 0) r->send_fail++;
  return r->mode == 2 ? MIOR_KEEP : MIOR_DONE;
}

static void in_consume(mior_backend b, int mode) {
  responder r;
  memset(&r, 0, sizeof r);
  r.mode = mode;
  mior_options o = tt_opts(b);
  o.buf_count = 64; /* small, so slots are reused all the time */
  o.rx_depth = 16;
  o.batch = 8;
  mior_receiver rcv = {respond, NULL, &r};
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &rcv));
  mior_addr local = tt_local(t);
  struct sockaddr_in dst = tt_sin4(&local);
  int ks = tt_kernel_udp4(300);
  mior_port *p = mior_transport_port(t, 0);
  const uint32_t n = 2000;
  uint32_t echoed = 0, bad = 0;
  uint8_t buf[2048];
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len = tt_len_for(i, TT_HDR, 1200);
    tt_fill(buf, len, i);
    CHECK(sendto(ks, buf, len, 0, (struct sockaddr *)&dst, sizeof dst) == (ssize_t)len);
    /* a window of 8 in flight */
    if (i % 8 == 7 || i == n - 1) {
      int64_t end = tt_now_ms() + 2000;
      while (r.got < i + 1 && tt_now_ms() < end) mior_port_poll(p, 0, 1000);
      mior_tx_flush(p);
      mior_port_poll(p, 0, 0);
      if (mode != 1) {
        while (echoed < r.got) {
          ssize_t k = recv(ks, buf, sizeof buf, 0);
          if (k < 0) break;
          uint32_t seq;
          if (tt_check(buf, (uint32_t)k, &seq) != 0) bad++;
          echoed++;
        }
      }
    }
  }
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(r.got, n);
  CHECK_EQ(r.send_fail, 0);
  CHECK_EQ(r.release_fail, 0);
  CHECK_EQ(bad, 0);
  if (mode != 1) CHECK_EQ(echoed, n);
  CHECK_EQ(st.user_held, 0);
  CHECK_EQ(st.rx_kept, 0);
  CHECK(st.pool_in_use <= o.buf_count);
  if (mode != 1) CHECK_EQ(st.tx_packets, n);
  close(ks);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_echo_in_place(mior_backend b) { in_consume(b, 0); }
static void body_release_in_consume(mior_backend b) { in_consume(b, 1); }
static void body_echo_then_keep(mior_backend b) { in_consume(b, 2); }

/* --- the direct path of a busy-polling port ---------------------------------------------------- */

/* A busy-polling port with one packet per operation receives and sends with plain system calls
 * beside its ring (docs/ARCHITECTURE.md, "Busy polling").  A ping-pong drives it there: every
 * sequence number must come back once and in order, each datagram longer than a slot must be
 * counted as truncated and never delivered, and every slot must come back.  A burst every so
 * often moves the port off the direct path and back, so the two paths meet on one socket. */
static void busy_direct(mior_backend b, uint32_t flags) {
  responder r;
  memset(&r, 0, sizeof r);
  mior_options o = tt_opts(b);
  o.busy_poll_us = 200;
  o.flags |= flags;
  o.buf_size = 1024;
  o.buf_count = 64;
  o.rx_depth = 16;
  o.batch = 8;
  mior_receiver rcv = {respond, NULL, &r};
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &rcv));
  mior_addr local = tt_local(t);
  struct sockaddr_in dst = tt_sin4(&local);
  int ks = tt_kernel_udp4(300);
  mior_port *p = mior_transport_port(t, 0);
  const uint32_t n = 3000;
  uint32_t next = 0, echoed = 0, bad = 0, truncated = 0, sent_ok = 0;
  uint8_t buf[2048];
  for (uint32_t i = 0; i < n;) {
    /* Every 100th round a burst of 8, else one datagram; every 7th datagram is too long. */
    uint32_t burst = i % 100 == 99 && i + 8 <= n ? 8 : 1;
    for (uint32_t j = 0; j < burst; j++, i++) {
      uint32_t len = i % 7 == 3 ? 1500 : tt_len_for(i, TT_HDR, 900);
      tt_fill(buf, len, i);
      CHECK(sendto(ks, buf, len, 0, (struct sockaddr *)&dst, sizeof dst) == (ssize_t)len);
      if (len == 1500) truncated++;
      else sent_ok++;
    }
    int64_t end = tt_now_ms() + 2000;
    mior_port_stats st;
    do {
      mior_port_poll(p, 0, 1000);
      CHECK_OK(mior_port_stats_get(p, &st));
    } while (r.got + st.rx_drop_truncated < i && tt_now_ms() < end);
    mior_tx_flush(p);
    while (echoed < r.got) {
      ssize_t k = recv(ks, buf, sizeof buf, 0);
      if (k < 0) break;
      echoed++;
      uint32_t seq;
      if (tt_check(buf, (uint32_t)k, &seq) != 0) {
        bad++;
        continue;
      }
      /* in order, each once: the next echoed datagram is the next one not truncated */
      while (next % 7 == 3) next++;
      if (seq != next && bad++ < 5) printf("    echo %u, expected %u\n", seq, next);
      next = seq + 1;
    }
  }
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(p, &st));
  printf("    %u echoed, %llu truncated, %llu system calls\n", r.got,
         (unsigned long long)st.rx_drop_truncated, (unsigned long long)st.submits);
  CHECK_EQ(bad, 0);
  CHECK_EQ(r.got, sent_ok);
  CHECK_EQ(echoed, sent_ok);
  CHECK_EQ(r.send_fail, 0);
  CHECK_EQ(st.rx_drop_truncated, truncated);
  CHECK_EQ(st.rx_packets, sent_ok);
  CHECK_EQ(st.tx_packets, sent_ok);
  CHECK_EQ(st.user_held, 0);
  close(ks);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_busy_direct(mior_backend b) { busy_direct(b, 0); }
/* Without GRO the direct receive is a recvfrom, which sees a cut datagram by its length alone. */
static void body_busy_direct_no_gro(mior_backend b) { busy_direct(b, MIOR_OPT_NO_UDP_GRO); }

/* --- stale copies ----------------------------------------------------------------------------- */

static void body_stale_release(mior_backend b) {
  mior_options o = tt_opts(b);
  o.buf_count = 16;
  o.rx_depth = 4;
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_port *p = mior_transport_port(t, 0);
  mior_pkt a, b2;
  REQUIRE_OK(mior_tx_acquire(p, &a));
  mior_pkt stale = a;
  CHECK_OK(mior_pkt_release(&a));
  /* Reuse is LIFO: take slots until a's comes back to someone else. */
  mior_pkt held[16];
  int nheld = 0, found = -1;
  while (nheld < 16 && mior_tx_acquire(p, &held[nheld]) == 0) {
    if (held[nheld].slot == stale.slot) found = nheld;
    nheld++;
    if (found >= 0) break;
  }
  REQUIRE(found >= 0);
  b2 = held[found];
  CHECK_ERR(mior_pkt_release(&stale), -EINVAL);      /* the old copy: refused */
  CHECK_ERR(mior_tx_send(p, &stale, 10, NULL), -EINVAL);
  CHECK_OK(mior_pkt_release(&b2));                    /* the new holder: still fine */
  CHECK_ERR(mior_pkt_release(&b2), -EINVAL);          /* a double release: refused */
  for (int i = 0; i < nheld; i++)
    if (i != found) CHECK_OK(mior_pkt_release(&held[i]));
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

/* --- empty datagrams -------------------------------------------------------------------------- */

typedef struct empties {
  uint32_t got, empty, other;
} empties;

static int empties_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  empties *e = ctx;
  e->got++;
  if (pkt->len == 0) e->empty++;
  else e->other++;
  return MIOR_DONE;
}

static void empty_datagrams(mior_backend b, uint32_t flags) {
  empties e;
  memset(&e, 0, sizeof e);
  mior_options o = tt_opts(b);
  o.buf_count = 256;
  o.flags |= flags;
  mior_receiver recv = {empties_consume, NULL, &e};
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, &recv));
  mior_addr local = tt_local(t);
  struct sockaddr_in dst = tt_sin4(&local);
  int ks = tt_kernel_udp4(300);
  mior_port *p = mior_transport_port(t, 0);
  mior_port_poll(p, 0, 0); /* armed before the burst */
  const uint32_t n = 200;
  for (uint32_t i = 0; i < n; i++) {
    CHECK(sendto(ks, "", 0, 0, (struct sockaddr *)&dst, sizeof dst) == 0);
    if (i % 10 == 0) CHECK(sendto(ks, "x", 1, 0, (struct sockaddr *)&dst, sizeof dst) == 1);
  }
  int64_t end = tt_now_ms() + 3000;
  while (e.got < n + n / 10 && tt_now_ms() < end) mior_port_poll(p, 0, 1000);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(p, &st));
  printf("    %u empty and %u other datagrams delivered, %llu multishot re-arms\n", e.empty, e.other,
         (unsigned long long)st.rx_rearm);
  CHECK_EQ(e.empty, n);
  CHECK_EQ(e.other, n / 10);
  CHECK_EQ(st.rx_packets, n + n / 10);
  CHECK(st.rx_rearm <= 16); /* not one per empty datagram */
  /* ... and sent: the kernel socket receives an empty datagram */
  mior_pkt pkt;
  REQUIRE_OK(mior_tx_acquire(p, &pkt));
  mior_addr back = tt_addr4_of(ks);
  CHECK_OK(mior_tx_send(p, &pkt, 0, &back));
  mior_tx_flush(p);
  for (int i = 0; i < 5; i++) mior_port_poll(p, 0, 1000);
  char buf[16];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  CHECK_EQ(recvfrom(ks, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 0);
  CHECK_EQ(ntohs(from.sin_port), local.port);
  CHECK_OK(mior_port_stats_get(p, &st));
  CHECK_EQ(st.tx_packets, 1);
  CHECK_EQ(st.tx_bytes, 0);
  close(ks);
  TT_CHECK_POOL_RETURNED(t);
  CHECK_EQ(mior_transport_close(t), 0);
}

static void body_empty(mior_backend b) { empty_datagrams(b, 0); }
static void body_empty_posted(mior_backend b) { empty_datagrams(b, MIOR_OPT_NO_MULTISHOT); }

int main(void) {
  tt_watchdog(100);
  int ran = 0;
  ran += tt_for_each_backend("echo_in_place", body_echo_in_place);
  ran += tt_for_each_backend("release_in_consume", body_release_in_consume);
  ran += tt_for_each_backend("echo_in_place, then MIOR_KEEP", body_echo_then_keep);
  ran += tt_for_each_backend("stale_release", body_stale_release);
  ran += tt_for_each_backend("busy_poll_direct_path", body_busy_direct);
  ran += tt_for_each_backend("busy_poll_direct_path, no GRO", body_busy_direct_no_gro);
  ran += tt_for_each_backend("empty_datagrams", body_empty);
  ran += tt_for_each_backend("empty_datagrams, posted receives", body_empty_posted);
  char why[160];
  if (!netns_available(why, sizeof why)) {
    printf("  truncated_frames: SKIP (%s)\n", why);
  } else {
    tt_sweep_stale("trunc");
    tt_pair_create(&pair, "trunc", 213);
    have_pair = 1;
    REQUIRE(netns_exec(pair.ns_a, "ip link set lo up") == 0);
    ran += tt_for_each_backend("truncated_frames, packet://lo", body_truncated_packet);
    ran += tt_for_each_backend("truncated_frames, packet://lo, posted", body_truncated_packet_posted);
    ran += tt_for_each_backend("truncated_frames, ip://", body_truncated_ip);
    ran += tt_for_each_backend("truncated_frames, ip://, posted", body_truncated_ip_posted);
  }
  if (!ran) TEST_SKIP("no backend is supported here");
  TEST_DONE();
}
