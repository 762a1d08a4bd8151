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
 * The one control-message parser (src/win/rx_meta.c) is also fed hand-built buffers: it reads the
 * segment size and metadata there, and nothing past a short, overlong or cut message.
 */
#include <winsock2.h> /* before windows.h (transport_os.h) */
#include <ws2tcpip.h>
#include <mswsock.h>

#include "transport_os.h"
#include "win/rx_meta.h"

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

/* The one parser of a receive's control messages reads what is there and nothing past it: a
 * segment size and an arrival address are read, and a header whose length is too small, runs
 * past the buffer, or a buffer cut inside a header, end the walk without reading further. */
static void parser_bounds(void) {
  union {
    char b[MIOR__CMSG_SPACE];
    WSACMSGHDR align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  WSAMSG m;
  memset(&m, 0, sizeof m);
  m.Control.buf = ctl.b;
  WSACMSGHDR *h = (WSACMSGHDR *)ctl.b;
  h->cmsg_level = IPPROTO_UDP;
  h->cmsg_type = 3; /* UDP_COALESCED_INFO */
  h->cmsg_len = WSA_CMSG_LEN(sizeof(DWORD));
  DWORD seg = 1200;
  memcpy(WSA_CMSG_DATA(h), &seg, sizeof seg);
  WSACMSGHDR *h2 = (WSACMSGHDR *)(ctl.b + WSA_CMSG_SPACE(sizeof(DWORD)));
  h2->cmsg_level = IPPROTO_IP;
  h2->cmsg_type = IP_PKTINFO;
  h2->cmsg_len = WSA_CMSG_LEN(sizeof(IN_PKTINFO));
  IN_PKTINFO pi;
  memset(&pi, 0, sizeof pi);
  pi.ipi_addr.s_addr = htonl(0x7f000002);
  memcpy(WSA_CMSG_DATA(h2), &pi, sizeof pi);
  ULONG both = (ULONG)(WSA_CMSG_SPACE(sizeof(DWORD)) + WSA_CMSG_SPACE(sizeof(IN_PKTINFO)));
  mior__cqe c;
  memset(&c, 0, sizeof c);
  m.Control.len = both;
  mior__rx_cmsg_meta(&m, &c);
  CHECK_EQ(c.seg, 1200);
  CHECK_EQ(c.flags, MIOR_PKT_LOCAL);
  CHECK_EQ(c.meta.local.family, MIOR_AF_INET);
  CHECK_EQ(c.meta.local.addr[3], 2);
  /* The buffer ends inside the second message: only the first is read. */
  memset(&c, 0, sizeof c);
  m.Control.len = both - 1;
  mior__rx_cmsg_meta(&m, &c);
  CHECK_EQ(c.seg, 1200);
  CHECK_EQ(c.flags, 0);
  /* A first length past the buffer, or below a header: nothing is read. */
  h->cmsg_len = both + 64;
  memset(&c, 0, sizeof c);
  m.Control.len = both;
  mior__rx_cmsg_meta(&m, &c);
  CHECK(c.seg == 0 && c.flags == 0);
  h->cmsg_len = 3;
  mior__rx_cmsg_meta(&m, &c);
  CHECK(c.seg == 0 && c.flags == 0);
  /* A message too short for its type is skipped, the next still read. */
  h->cmsg_len = WSA_CMSG_LEN(2);
  mior__rx_cmsg_meta(&m, &c);
  CHECK_EQ(c.seg, 0);
  CHECK_EQ(c.flags, MIOR_PKT_LOCAL);
  /* No buffer at all. */
  m.Control.buf = NULL;
  memset(&c, 0, sizeof c);
  mior__rx_cmsg_meta(&m, &c);
  CHECK(c.seg == 0 && c.flags == 0);
  /* What a send carries parses back to what was asked. */
  mior__pkt_meta pm;
  memset(&pm, 0, sizeof pm);
  pm.local.family = MIOR_AF_INET;
  pm.local.addr[0] = 127;
  pm.local.addr[3] = 5;
  pm.ecn = 2;
  m.Control.buf = ctl.b;
  m.Control.len = mior__tx_cmsg_meta(ctl.b, sizeof ctl.b, AF_INET, MIOR_PKT_LOCAL | MIOR_PKT_ECN, &pm);
  memset(&c, 0, sizeof c);
  mior__rx_cmsg_meta(&m, &c);
  CHECK_EQ(c.flags, MIOR_PKT_LOCAL | MIOR_PKT_ECN);
  CHECK_EQ(c.meta.local.addr[3], 5);
  CHECK_EQ(c.meta.ecn, 2);
  printf("  control-message parser bounds: %s\n", test_failures ? "FAILED" : "ok");
}

static const tt_config sockets_only[] = {{"", MIOR_BACKEND_SOCKETS, 0, 0, 0}};

static const tt_test tests[] = {
    {"uro: asked by default, on or cleanly off", body_uro, TT_CONFIGS(sockets_only)},
    {"uro: off with MIOR_OPT_NO_UDP_GRO", body_uro_off, TT_CONFIGS(sockets_only)},
};

int main(void) {
  tt_watchdog(50);
  parser_bounds();
  if (tt_run(tests, sizeof tests / sizeof tests[0]) == 0) TEST_SKIP("no sockets backend here");
  TEST_DONE();
}
