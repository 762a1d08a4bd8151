/* IoRing detection and the choice of backend on Windows.
 *
 * Where IoRing is missing (Windows 10, and Wine, which has none), this proves that detection says
 * so with a reason, that MIOR_BACKEND_AUTO falls back to the Winsock backend and says why (and
 * still moves packets), and that demanding ioring fails with -EOPNOTSUPP and the reason.
 * Where IoRing exists, it runs sequence-numbered UDP traffic between two connected IoRing ports
 * on loopback (IoRing has no address fields, so both sockets are connected), checks the features
 * and counters, and the connected-socket rules; the pool must come back whole every time.
 */
#include <windows.h>

#include "common/os.h"
#include "test.h"

static int64_t now_ms(void) { return (int64_t)(mior__now_ns() / 1000000u); }

typedef struct counter {
  uint32_t got, bad, next_bad_seq;
  uint8_t seen[4096];
  mior_addr want_src;
  uint32_t src_mismatch;
} counter;

static void fill(uint8_t *p, uint32_t len, uint32_t seq) {
  memcpy(p, &seq, 4);
  for (uint32_t i = 4; i < len; i++) p[i] = (uint8_t)(seq * 31u + i);
}

static int consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  counter *c = ctx;
  uint32_t seq;
  if (pkt->len < 4) {
    c->bad++;
    return MIOR_DONE;
  }
  memcpy(&seq, pkt->data, 4);
  int ok = seq < sizeof c->seen && !c->seen[seq];
  for (uint32_t i = 4; ok && i < pkt->len; i++) ok = pkt->data[i] == (uint8_t)(seq * 31u + i);
  if (!ok) {
    c->bad++;
    return MIOR_DONE;
  }
  if (c->want_src.family && (pkt->src.family != c->want_src.family || pkt->src.port != c->want_src.port))
    c->src_mismatch++;
  c->seen[seq] = 1;
  c->got++;
  return MIOR_DONE;
}

/* Send n packets with sequence numbers base.. from tx to rx (dst may be NULL for a connected tx),
 * polling both; bounded.  Counts only what arrives during this call, so calls can follow each
 * other with new sequence numbers. */
static uint32_t exchange(mior_port *tx, mior_port *rx, counter *c, uint32_t base, uint32_t n,
                         const mior_addr *dst) {
  uint32_t sent = 0, got0 = c->got;
  int64_t deadline = now_ms() + 10000;
  while (c->got - got0 < n && now_ms() < deadline) {
    while (sent < n && sent - (c->got - got0) < 64) {
      mior_pkt pkt;
      if (mior_tx_acquire(tx, &pkt) != 0) break;
      uint32_t len = 64 + (base + sent) % 900;
      fill(pkt.data, len, base + sent);
      int rc = mior_tx_send(tx, &pkt, len, dst);
      if (rc < 0) {
        TEST_FAIL_AT("mior_tx_send -> %d (%s) %s", rc, mior_strerror(rc), mior_last_error());
        return sent;
      }
      sent++;
    }
    mior_tx_flush(tx);
    mior_port_poll(tx, 0, 0);
    mior_port_poll(rx, 0, 1000);
  }
  return sent;
}

static void check_fallback(void) {
  char why[256];
  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_IORING), 0);
  snprintf(why, sizeof why, "%s", mior_last_error());
  printf("  ioring unavailable: %s\n", why);
  CHECK(why[0] != '\0');
  CHECK(strstr(why, "IoRing") != NULL);
  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_SOCKETS), 1);
  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_AUTO), 1);
  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_URING), 0);
  CHECK(strstr(mior_last_error(), "not part of this build") != NULL);

  /* AUTO: the Winsock backend, marked as a fallback, with the reason. */
  counter c;
  memset(&c, 0, sizeof c);
  mior_receiver recv = {consume, NULL, &c};
  mior_transport *rx = NULL, *tx = NULL;
  REQUIRE_OK(mior_transport_open(&rx, "udp://127.0.0.1:0", NULL, &recv));
  REQUIRE_OK(mior_transport_open(&tx, "udp://127.0.0.1:0", NULL, NULL));
  mior_port_stats st;
  CHECK_OK(mior_transport_stats_get(rx, &st));
  char feat[256] = "";
  CHECK_OK(mior_features_format(st.features, feat, sizeof feat));
  printf("  auto: %s, features: %s, reason: %s\n", mior_backend_name(st.backend), feat, st.fallback_reason);
  CHECK_EQ(st.backend, MIOR_BACKEND_SOCKETS);
  CHECK(st.features & MIOR_FEAT_FALLBACK);
  CHECK(strstr(feat, "fallback") != NULL);
  CHECK(st.fallback_reason[0] != '\0');
  CHECK(strncmp(st.fallback_reason, "ioring: ", 8) == 0);
  CHECK_EQ(mior_port_backend(mior_transport_port(rx, 0)), MIOR_BACKEND_SOCKETS);

  /* ... and it moves packets. */
  mior_addr dst;
  CHECK_OK(mior_port_local_addr(mior_transport_port(rx, 0), &dst));
  CHECK_OK(mior_port_local_addr(mior_transport_port(tx, 0), &c.want_src));
  uint32_t sent = exchange(mior_transport_port(tx, 0), mior_transport_port(rx, 0), &c, 0, 500, &dst);
  CHECK_EQ(sent, 500);
  CHECK_EQ(c.got, 500);
  CHECK_EQ(c.bad, 0);
  CHECK_EQ(c.src_mismatch, 0);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);

  /* Demanding ioring fails clearly, and opens nothing. */
  mior_options o;
  mior_options_init(&o);
  o.backend = MIOR_BACKEND_IORING;
  o.peer = "127.0.0.1:9";
  mior_transport *t = (mior_transport *)&t;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EOPNOTSUPP);
  CHECK(t == NULL);
  printf("  ioring demanded: %s\n", mior_last_error());
  CHECK(strstr(mior_last_error(), "ioring") != NULL);
  CHECK(strstr(mior_last_error(), "IoRing") != NULL);
  /* Demanding uring (the Linux ring) is refused on Windows too. */
  o.backend = MIOR_BACKEND_URING;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EOPNOTSUPP);
}

/* A free UDP port on loopback (opened and closed through the Winsock backend). */
static uint16_t free_port(void) {
  mior_options o;
  mior_options_init(&o);
  o.backend = MIOR_BACKEND_SOCKETS;
  o.buf_count = 16;
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_addr a;
  CHECK_OK(mior_port_local_addr(mior_transport_port(t, 0), &a));
  CHECK_EQ(mior_transport_close(t), 0);
  return a.port;
}

static void check_ioring(void) {
  printf("  ioring is available\n");
  mior_options o;
  mior_options_init(&o);
  o.backend = MIOR_BACKEND_IORING;
  o.buf_count = 1024;
  mior_transport *t = NULL;
  /* No peer: IoRing cannot address datagrams. */
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EINVAL);
  CHECK(strstr(mior_last_error(), "options.peer") != NULL);
  CHECK_ERR(mior_transport_open(&t, "packet://eth0", &o, NULL), -EOPNOTSUPP);

  /* Two connected IoRing ports on loopback. */
  uint16_t prx = free_port(), ptx = free_port();
  char ep_rx[64], ep_tx[64], peer_rx[64], peer_tx[64];
  snprintf(ep_rx, sizeof ep_rx, "udp://127.0.0.1:%u", prx);
  snprintf(ep_tx, sizeof ep_tx, "udp://127.0.0.1:%u", ptx);
  snprintf(peer_rx, sizeof peer_rx, "127.0.0.1:%u", ptx);
  snprintf(peer_tx, sizeof peer_tx, "127.0.0.1:%u", prx);
  counter c;
  memset(&c, 0, sizeof c);
  mior_receiver recv = {consume, NULL, &c};
  mior_options orx = o, otx = o;
  orx.peer = peer_rx;
  otx.peer = peer_tx;
  otx.flags |= MIOR_OPT_NO_RX;
  mior_transport *rx = NULL, *tx = NULL;
  REQUIRE_OK(mior_transport_open(&rx, ep_rx, &orx, &recv));
  REQUIRE_OK(mior_transport_open(&tx, ep_tx, &otx, NULL));
  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  mior_port_stats st;
  CHECK_OK(mior_transport_stats_get(tx, &st));
  char feat[256] = "";
  CHECK_OK(mior_features_format(st.features, feat, sizeof feat));
  printf("  ioring features: %s\n", feat);
  CHECK_EQ(st.backend, MIOR_BACKEND_IORING);
  CHECK(!(st.features & MIOR_FEAT_FALLBACK));
  CHECK(st.fallback_reason[0] == '\0');

  /* A destination other than the peer is refused; the peer itself is fine. */
  mior_addr other, peer;
  REQUIRE_OK(mior_addr_parse(&other, "127.0.0.1:9"));
  REQUIRE_OK(mior_addr_parse(&peer, peer_tx));
  mior_pkt pkt;
  REQUIRE_OK(mior_tx_acquire(txp, &pkt));
  CHECK_ERR(mior_tx_send(txp, &pkt, 10, &other), -EINVAL);

  mior_addr src;
  CHECK_OK(mior_port_local_addr(txp, &src));
  c.want_src = src;
  /* 2000 without a destination, then 500 more addressed to the peer itself. */
  uint32_t sent = exchange(txp, rxp, &c, 0, 2000, NULL);
  sent += exchange(txp, rxp, &c, 2000, 500, &peer);
  CHECK_EQ(sent, 2500);
  CHECK_EQ(c.got, 2500);
  CHECK_EQ(c.bad, 0);
  CHECK_EQ(c.src_mismatch, 0);
  int64_t deadline = now_ms() + 2000;
  do {
    mior_port_poll(txp, 0, 1000);
    CHECK_OK(mior_port_stats_get(txp, &st));
  } while (st.tx_packets < 2500 && now_ms() < deadline);
  CHECK_EQ(st.tx_packets, 2500);
  CHECK_EQ(st.tx_invalid, 1); /* the refused destination: the caller's mistake */
  CHECK_EQ(st.tx_errors, 0);
  CHECK_OK(mior_port_stats_get(rxp, &st));
  CHECK_EQ(st.rx_packets, 2500);
  CHECK_EQ(st.rx_errors, 0);
  CHECK_EQ(st.user_held, 0);
  CHECK_EQ(mior_transport_close(tx), 0);
  /* Closing with receives still posted on the ring. */
  CHECK_EQ(mior_transport_close(rx), 0);
}

int main(void) {
  if (mior_backend_supported(MIOR_BACKEND_IORING) == 1) check_ioring();
  else check_fallback();
  TEST_DONE();
}
