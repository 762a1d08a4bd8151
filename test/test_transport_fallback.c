/* Forced fallback: with MIOR_DISABLE_URING=1 the library must treat io_uring as unavailable, as it
 * would under `sysctl kernel.io_uring_disabled=2`.  Then
 *   - mior_backend_supported(URING) says 0 with a reason;
 *   - AUTO opens on sockets, sets MIOR_FEAT_FALLBACK and fills fallback_reason;
 *   - demanding URING fails with -EOPNOTSUPP and a message;
 *   - the fallback transport moves packets, every one intact.
 * The variable is set before the first mior call, so a library that reads it once still sees it.
 */
#include "transport_common.h"

static uint32_t build_small(void *ctx, uint8_t *buf, uint32_t cap, uint32_t seq) {
  (void)ctx;
  uint32_t len = tt_len_for(seq, TT_HDR, 1000);
  tt_fill(buf, len, seq);
  return len;
}

int main(void) {
  REQUIRE(setenv("MIOR_DISABLE_URING", "1", 1) == 0);
  tt_watchdog(60);

  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_URING), 0);
  printf("  uring unsupported: %s\n", mior_last_error());
  CHECK(mior_last_error()[0] != '\0');
  CHECK_EQ(mior_backend_supported(MIOR_BACKEND_SOCKETS), 1);

  /* Demanding io_uring fails, and says why. */
  mior_options o;
  mior_options_init(&o);
  o.backend = MIOR_BACKEND_URING;
  mior_transport *t = NULL;
  CHECK_ERR(mior_transport_open(&t, "udp://127.0.0.1:0", &o, NULL), -EOPNOTSUPP);
  CHECK(mior_last_error()[0] != '\0');
  printf("  uring demanded: %s\n", mior_last_error());
  CHECK(t == NULL);

  /* AUTO falls back to sockets, and says so. */
  tt_rx r;
  tt_rx_init(&r, 2000);
  mior_receiver recv = tt_receiver(&r);
  mior_options oa;
  mior_options_init(&oa);
  CHECK_EQ(oa.backend, MIOR_BACKEND_AUTO);
  mior_transport *rx = NULL, *tx = NULL;
  REQUIRE_OK(mior_transport_open(&rx, "udp://127.0.0.1:0", &oa, &recv));
  REQUIRE_OK(mior_transport_open(&tx, "udp://127.0.0.1:0", NULL, NULL));
  mior_port_stats st;
  CHECK_OK(mior_transport_stats_get(rx, &st));
  CHECK_EQ(st.backend, MIOR_BACKEND_SOCKETS);
  CHECK_EQ(mior_port_backend(mior_transport_port(rx, 0)), MIOR_BACKEND_SOCKETS);
  CHECK(st.features & MIOR_FEAT_FALLBACK);
  CHECK(st.fallback_reason[0] != '\0');
  CHECK(memchr(st.fallback_reason, '\0', sizeof st.fallback_reason) != NULL);
  char feat[256] = "";
  CHECK_OK(mior_features_format(st.features, feat, sizeof feat));
  printf("  auto -> %s [%s], reason: %s\n", mior_backend_name(st.backend), feat,
         st.fallback_reason);
  CHECK(strstr(feat, "fallback") != NULL);

  /* And it works. */
  mior_addr dst = tt_local(rx);
  r.check_src = 1;
  r.want_src = tt_local(tx);
  mior_port *rxp = mior_transport_port(rx, 0), *txp = mior_transport_port(tx, 0);
  tt_pump_result pr = tt_pump(txp, &r, &rxp, 1, r.count, 64, &dst, build_small, NULL, 10000);
  tt_drain_tx(txp, pr.sent, 2000);
  tt_poll_for(&rxp, 1, 20);
  CHECK_EQ(pr.sent, r.count);
  TT_CHECK_TALLY(&r);
  TT_CHECK_POOL_RETURNED(rx);
  TT_CHECK_POOL_RETURNED(tx);
  CHECK_EQ(mior_transport_close(tx), 0);
  CHECK_EQ(mior_transport_close(rx), 0);
  tt_rx_free(&r);
  TEST_DONE();
}
