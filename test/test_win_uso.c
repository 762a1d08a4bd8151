/* UDP send segmentation (USO, UDP_SEND_MSG_SIZE) on the Winsock backend.
 *
 * With MIOR_OPT_UDP_GSO on a connected sender, the backend asks the stack at open whether it has
 * UDP_SEND_MSG_SIZE.  Where it does (Windows 10 2004 and later), MIOR_FEAT_WINSOCK_USO is set and
 * runs of equal-size sends go out as one segmented send: every datagram must still arrive once,
 * intact, with its own length (a shorter last one included), and the sender's counters count
 * datagrams, not calls, with fewer calls than datagrams.  Where it does not (Wine 8, where CI runs
 * this), the feature is absent and the same traffic goes out one send per datagram: the fallback is
 * all that this proves there, and the log says so.  Without the option the feature is never set.
 */
#include "transport_os.h"

static uint32_t seg_len_for(uint32_t seq) {
  /* Runs of 48 equal datagrams of 600 bytes, every 48th one shorter (it ends a run). */
  return seq % 48 == 47 ? 200u : 600u;
}

static void body_uso(const tt_variant *v) {
  enum { N = 2000 };
  mior_options orx = tt_vopts(v), otx = tt_vopts(v);
  otx.flags |= MIOR_OPT_UDP_GSO;
  otx.buf_count = 1024;
  orx.buf_count = 1024;
  tt_rx r;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, "127.0.0.1", &r, N, &orx, &otx, &rx, &tx, 1);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(txp, &st));
  char feat[256] = "";
  CHECK_OK(mior_features_format(st.features, feat, sizeof feat));
  int uso = (st.features & MIOR_FEAT_WINSOCK_USO) != 0;
  printf("    sender features: %s\n", feat[0] ? feat : "-");
  if (!uso)
    printf("    USO: the stack here refuses UDP_SEND_MSG_SIZE (expected under Wine): sends stay single; "
           "only the fallback is tested\n");
  uint32_t sent = 0;
  int64_t deadline = tt_now_ms() + 20000;
  while (r.got < N && tt_now_ms() < deadline) {
    /* At most 128 in flight, so that no socket buffer overflows. */
    while (sent < N && sent - r.got < 128) {
      mior_pkt pkt;
      if (mior_tx_acquire(txp, &pkt) != 0) break;
      uint32_t len = seg_len_for(sent);
      tt_fill(pkt.data, len, sent);
      int rc = mior_tx_send(txp, &pkt, len, NULL);
      if (rc == -EAGAIN) break;
      CHECK_OK(rc);
      if (rc < 0) break;
      sent++;
    }
    mior_tx_flush(txp);
    mior_port_poll(txp, 0, 0);
    mior_port_poll(rxp, 0, 1000);
  }
  tt_drain_tx(txp, N, 2000);
  CHECK_EQ(sent, N);
  TT_CHECK_TALLY(&r);
  CHECK_OK(mior_port_stats_get(txp, &st));
  CHECK_EQ(st.tx_packets, N);
  CHECK_EQ(st.tx_errors, 0);
  printf("    %u datagrams in %llu send calls (USO %s)\n", (unsigned)N, (unsigned long long)st.submits,
         (st.features & MIOR_FEAT_WINSOCK_USO) ? "on" : "off");
  if (uso && (st.features & MIOR_FEAT_WINSOCK_USO)) CHECK(st.submits < (uint64_t)N);
  tt_close_oneway(rx, tx, &r);
}

/* Without MIOR_OPT_UDP_GSO, or without a peer, USO is never on. */
static void body_uso_off(const tt_variant *v) {
  mior_options o = tt_vopts(v);
  o.buf_count = 64;
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_port_stats st;
  CHECK_OK(mior_transport_stats_get(t, &st));
  CHECK(!(st.features & MIOR_FEAT_WINSOCK_USO));
  CHECK_EQ(mior_transport_close(t), 0);
  o.flags |= MIOR_OPT_UDP_GSO; /* asked, but nothing to segment for: no peer */
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  CHECK_OK(mior_transport_stats_get(t, &st));
  CHECK(!(st.features & MIOR_FEAT_WINSOCK_USO));
  CHECK_EQ(mior_transport_close(t), 0);
}

static const tt_config sockets_only[] = {{"", MIOR_BACKEND_SOCKETS, 0, 0, 0}};

static const tt_test tests[] = {
    {"uso: equal-size runs to the connected peer", body_uso, TT_CONFIGS(sockets_only)},
    {"uso: off without the option or a peer", body_uso_off, TT_CONFIGS(sockets_only)},
};

int main(void) {
  tt_watchdog(50);
  if (tt_run(tests, sizeof tests / sizeof tests[0]) == 0) TEST_SKIP("no sockets backend here");
  TEST_DONE();
}
