/* UDP receive coalescing (URO, UDP_RECV_MAX_COALESCED_SIZE) on the Winsock backend.
 *
 * A udp port that receives asks for URO by default, as Linux ports ask for UDP GRO.  Where the
 * stack has it (Windows 10 2004 / Server 2022 and later), MIOR_FEAT_WINSOCK_URO is set, the port's
 * default slots hold a coalesced buffer (64 KiB), and coalesced receives are split into their
 * datagrams: every datagram must still arrive once, intact, with its own length.  Where it does
 * not (Wine 8, where CI runs this: the stack refuses the option), the port falls back cleanly:
 * plain receives in the ordinary slots, the feature absent, the refusal counted in
 * offload_refused and explained in offload_reason, and the same traffic arrives whole.  Only the
 * fallback has run here (under Wine), never URO itself: the log says which one ran.
 * MIOR_OPT_NO_UDP_GRO turns URO off without a count or a reason, as it turns GRO off on Linux.
 */
#include "transport_os.h"

static void body_uro(const tt_variant *v) {
  enum { N = 2000 };
  mior_options orx = tt_vopts(v), otx = tt_vopts(v);
  orx.buf_count = 0; /* the default layout: 64 KiB x 256 where URO is on */
  otx.buf_count = 1024;
  tt_rx r;
  mior_transport *rx = NULL, *tx = NULL;
  tt_open_oneway(v, "127.0.0.1", &r, N, &orx, &otx, &rx, &tx, 1);
  mior_port *txp = mior_transport_port(tx, 0), *rxp = mior_transport_port(rx, 0);
  mior_port_stats st;
  CHECK_OK(mior_port_stats_get(rxp, &st));
  char feat[256] = "";
  CHECK_OK(mior_features_format(st.features, feat, sizeof feat));
  int uro = (st.features & MIOR_FEAT_WINSOCK_URO) != 0;
  printf("    receiver features: %s\n", feat[0] ? feat : "-");
  if (uro) {
    printf("    URO on: coalesced receives are split\n");
    CHECK_EQ(st.offload_refused, 0);
    CHECK(st.offload_reason[0] == '\0');
  } else {
    /* The fallback: counted once, and said why. */
    printf("    URO off (the fallback ran, not URO): %s\n", st.offload_reason);
    CHECK_EQ(st.offload_refused, 1);
    CHECK(strstr(st.offload_reason, "URO") != NULL);
    CHECK(memchr(st.offload_reason, '\0', sizeof st.offload_reason) != NULL);
  }
  /* A sender (MIOR_OPT_NO_RX) never asks. */
  mior_port_stats sst;
  CHECK_OK(mior_port_stats_get(txp, &sst));
  CHECK(!(sst.features & MIOR_FEAT_WINSOCK_URO));
  CHECK_EQ(sst.offload_refused, 0);
  tt_span span = {0, 1400};
  tt_pump_result pr = tt_pump(txp, &r, &rxp, 1, N, 128, NULL, tt_build_payload, &span, 20000);
  CHECK_EQ(pr.sent, N);
  tt_poll_for(&rxp, 1, 50); /* a duplicate would show now */
  TT_CHECK_TALLY(&r);
  CHECK_OK(mior_port_stats_get(rxp, &st));
  CHECK_EQ(st.rx_packets, N);
  CHECK_EQ(st.rx_errors, 0);
  printf("    %u datagrams in %llu coalesced buffers\n", (unsigned)N, (unsigned long long)st.rx_coalesced);
  if (!uro) CHECK_EQ(st.rx_coalesced, 0);
  tt_close_oneway(rx, tx, &r);
}

/* MIOR_OPT_NO_UDP_GRO: URO is not asked, so neither counted nor explained. */
static void body_uro_off(const tt_variant *v) {
  mior_options o = tt_vopts(v);
  o.flags |= MIOR_OPT_NO_UDP_GRO;
  o.buf_count = 64;
  mior_transport *t = NULL;
  REQUIRE_OK(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL));
  mior_port_stats st;
  CHECK_OK(mior_transport_stats_get(t, &st));
  CHECK(!(st.features & MIOR_FEAT_WINSOCK_URO));
  CHECK_EQ(st.offload_refused, 0);
  CHECK(st.offload_reason[0] == '\0');
  CHECK_EQ(mior_transport_close(t), 0);
}

static const tt_config sockets_only[] = {{"", MIOR_BACKEND_SOCKETS, 0, 0, 0}};

static const tt_test tests[] = {
    {"uro: asked by default, on or cleanly off", body_uro, TT_CONFIGS(sockets_only)},
    {"uro: off with MIOR_OPT_NO_UDP_GRO", body_uro_off, TT_CONFIGS(sockets_only)},
};

int main(void) {
  tt_watchdog(50);
  if (tt_run(tests, sizeof tests / sizeof tests[0]) == 0) TEST_SKIP("no sockets backend here");
  TEST_DONE();
}
