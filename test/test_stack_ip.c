/* lwIP on a mior `ip` port (raw IPv4, no link layer, no ARP), root and namespaces.
 *
 * An ip port sees the packets the kernel delivers locally, so lwIP must use an address the kernel
 * in ns b owns (10.77.N.2), and the kernel sees every TCP segment too.  Having no socket for
 * them it answers each with a RST, which reaches the client before lwIP's SYN-ACK: the
 * connection is refused.  An nftables rule in ns b drops the RSTs the kernel makes itself (no
 * user socket: `meta skuid` does not match them) while lwIP's own (from this process's raw
 * socket) pass.  Checked here:
 *   - without the rule, a kernel client in ns a is refused;
 *   - with it, 50 sequential connections are echoed exactly and 16 MiB go through and back;
 *   - every slot is returned and the transport closes cleanly.
 */
#include "transport_common.h"

#include <netinet/in.h>
#include <poll.h>

#ifdef MIOR_HAVE_LWIP
#include "mior_lwip.h"
#endif

#define ECHO_PORT 7
#define CONNS 50
#define BULK (16u << 20)

#ifdef MIOR_HAVE_LWIP
static netns_pair pair;
static char nft_table_cmd[512];

static int connect_to(const char *ip, int port, int *err) {
  int s = tt_socket_in(pair.fd_a, AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, ip, &sa.sin_addr);
  /* Non-blocking connect with a bounded wait: immune to EINTR and to lost handshakes. */
  int fl = 1;
  ioctl(s, FIONBIO, &fl);
  int rc = connect(s, (struct sockaddr *)&sa, sizeof sa);
  *err = 0;
  if (rc != 0 && errno == EINPROGRESS) {
    struct pollfd pfd = {s, POLLOUT, 0};
    int64_t end = tt_now_ms() + 5000;
    while ((rc = poll(&pfd, 1, 100)) <= 0 && tt_now_ms() < end) {
    }
    socklen_t len = sizeof *err;
    if (rc > 0) getsockopt(s, SOL_SOCKET, SO_ERROR, err, &len);
    else *err = ETIMEDOUT;
  } else if (rc != 0) {
    *err = errno;
  }
  fl = 0;
  ioctl(s, FIONBIO, &fl);
  if (*err) {
    close(s);
    return -1;
  }
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return s;
}

static int xfer(int s, uint8_t *p, size_t n, int out) {
  while (n) {
    ssize_t r = out ? send(s, p, n, MSG_NOSIGNAL) : recv(s, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void pattern(uint8_t *p, size_t n, uint64_t off, uint32_t key) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(((off + i) * 0x9e3779b97f4a7c15ull + key) >> 56);
}

typedef struct writer {
  int s, err;
} writer;

static void *bulk_write(void *arg) {
  writer *w = arg;
  static uint8_t buf[1 << 16];
  for (size_t off = 0; off < BULK; off += sizeof buf) {
    pattern(buf, sizeof buf, off, 99);
    if (xfer(w->s, buf, sizeof buf, 1) < 0) {
      w->err = errno ? errno : EIO;
      break;
    }
  }
  shutdown(w->s, SHUT_WR);
  return NULL;
}

static void run(void) {
  const char *ip = pair.ip_b; /* the kernel's own address in ns b: an ip port needs it */
  REQUIRE_OK(netns_enter(pair.fd_a));
  int rc = netns_tx_checksum_offload_off(pair.if_a);
  REQUIRE_OK(netns_enter_host());
  REQUIRE_OK(rc);

  char ep[64];
  snprintf(ep, sizeof ep, "ip://%s/tcp", ip);
  mior_lwip *l = NULL;
  /* Options from a newer header that set a field this adapter does not know are refused before
   * anything starts. */
  struct {
    mior_lwip_options o;
    uint64_t future;
  } big;
  memset(&big, 0, sizeof big);
  mior_lwip_options_init(&big.o);
  big.o.sz = sizeof big;
  big.o.endpoint = ep;
  big.o.ip = ip;
  big.future = 1;
  CHECK_ERR(mior_lwip_start(&l, &big.o), -EINVAL);
  CHECK(l == NULL);
  /* Options from an older header, which ended at ip, work: what lies beyond their sz is not
   * read, so the bad netmask there must not matter. */
  mior_lwip_options lo;
  mior_lwip_options_init(&lo);
  lo.sz = offsetof(mior_lwip_options, ip) + sizeof lo.ip;
  lo.endpoint = ep;
  lo.ip = ip;
  lo.netmask = "not a netmask";
  REQUIRE_OK(netns_enter(pair.fd_b));
  rc = mior_lwip_start(&l, &lo);
  REQUIRE_OK(netns_enter_host());
  REQUIRE_OK(rc);
  REQUIRE_OK(mior_lwip_echo_listen(ECHO_PORT));

  /* Without the rule: the kernel's RST wins the race against lwIP's SYN-ACK. */
  tt_phase = "ip port without the nftables rule";
  int err = 0;
  int s = connect_to(ip, ECHO_PORT, &err);
  if (s >= 0) close(s);
  CHECK_EQ(err, ECONNREFUSED);

  /* The rule (docs/INTEGRATION.md): drop the RSTs of the kernel's own making for lwIP's port. */
  snprintf(nft_table_cmd, sizeof nft_table_cmd,
           "nft add table ip mior_lwip && "
           "nft add chain ip mior_lwip out '{ type filter hook output priority 0; policy accept; }' && "
           "nft add rule ip mior_lwip out ip saddr %s tcp sport %d tcp flags rst meta skuid 0 accept && "
           "nft add rule ip mior_lwip out ip saddr %s tcp sport %d tcp flags rst drop",
           ip, ECHO_PORT, ip, ECHO_PORT);
  REQUIRE_OK(netns_exec(pair.ns_b, nft_table_cmd));

  tt_phase = "ip port: connections";
  int ok = 0;
  static uint8_t out[4096], in[4096];
  int64_t t0 = tt_now_us();
  for (int i = 0; i < CONNS; i++) {
    size_t n = 1 + (size_t)(i * 613) % sizeof out;
    pattern(out, n, 0, (uint32_t)i);
    s = connect_to(ip, ECHO_PORT, &err);
    if (s < 0) {
      TEST_FAIL_AT("connection %d: %s", i, strerror(err));
      break;
    }
    if (xfer(s, out, n, 1) == 0 && xfer(s, in, n, 0) == 0 && memcmp(in, out, n) == 0) ok++;
    close(s);
  }
  double rate = ok / ((tt_now_us() - t0) / 1e6);
  CHECK_EQ(ok, CONNS);

  tt_phase = "ip port: bulk";
  s = connect_to(ip, ECHO_PORT, &err);
  REQUIRE(s >= 0);
  writer w = {s, 0};
  pthread_t t;
  t0 = tt_now_us();
  REQUIRE(pthread_create(&t, NULL, bulk_write, &w) == 0);
  static uint8_t buf[1 << 16], want[1 << 16];
  size_t got = 0;
  int bad = 0;
  while (got < BULK) {
    ssize_t r = recv(s, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    pattern(want, (size_t)r, got, 99);
    bad |= memcmp(buf, want, (size_t)r) != 0;
    got += (size_t)r;
  }
  double mbs = got / 1e6 / ((tt_now_us() - t0) / 1e6);
  pthread_join(t, NULL);
  close(s);
  CHECK_EQ(w.err, 0);
  CHECK_EQ(got, BULK);
  CHECK_EQ(bad, 0);

  int64_t end = tt_now_ms() + 5000;
  mior_lwip_service_stats ss;
  mior_lwip_stats st;
  do {
    usleep(10000);
    mior_lwip_service_stats_get(&ss);
    mior_lwip_stats_get(l, &st);
  } while ((ss.open || st.held) && tt_now_ms() < end);
  CHECK_EQ(ss.open, 0);
  CHECK_EQ(st.held, 0);
  mior_port_stats ps;
  CHECK_OK(mior_lwip_port_stats(l, &ps));
  CHECK_EQ(ps.user_held, 0);
  CHECK_EQ(mior_lwip_stop(l), 0);
  printf("  ip port: %d connections at %.0f/s, %u MiB echoed at %.1f MB/s each way\n", ok, rate,
         BULK >> 20, mbs);
}
#endif

int main(void) {
#ifndef MIOR_HAVE_LWIP
  TEST_SKIP("lwIP was not found at build time (pkg-config lwip; Debian: liblwip-dev)");
#else
  if (system("command -v nft >/dev/null") != 0) TEST_SKIP("nft (nftables) is not installed");
  tt_watchdog(60);
  tt_pair_create(&pair, "tsip", 216);
  run();
  CHECK_OK(netns_pair_destroy(&pair));
  TEST_DONE();
#endif
}
