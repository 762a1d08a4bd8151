/* mior_pcap: the file format, concurrent appends, and captures read back by tcpdump.
 *   - the global header and each record are what libpcap expects; packets longer than the
 *     snap length are cut with their original length kept; bad arguments give -EINVAL;
 *   - 4 threads appending at once leave every record whole;
 *   - (root, namespaces, lwIP) lwIP on a packet port with a capture attached answers ping and a
 *     TCP echo from the kernel in ns a: `tcpdump -r` reads the file and finds the ARP reply, the
 *     ICMP echo requests and replies, and the TCP handshake, one line per recorded frame;
 *   - (also needs ping and curl) `mior-stack --netns --demo --pcap FILE` writes a file tcpdump
 *     reads, with the HTTP response in it.
 */
#include "transport_common.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <mior/pcap.h>

#ifdef MIOR_HAVE_LWIP
#include "mior_lwip.h"
#endif

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static void test_format(const char *path) {
  mior_pcap *c = NULL;
  CHECK_ERR(mior_pcap_open(NULL, path, 1, 0), -EINVAL);
  CHECK_ERR(mior_pcap_open(&c, NULL, 1, 0), -EINVAL);
  CHECK_ERR(mior_pcap_open(&c, path, 0, 0), -EINVAL);
  CHECK(mior_pcap_open(&c, "/nonexistent-dir/x.pcap", 1, 0) < 0);
  CHECK_ERR(mior_pcap_write(NULL, "x", 1), -EINVAL);
  CHECK_EQ(mior_pcap_close(NULL), 0);
  CHECK_EQ(mior_pcap_linktype_for("packet://eth0"), MIOR_PCAP_LINKTYPE_ETHERNET);
  CHECK_EQ(mior_pcap_linktype_for("ip://10.0.0.1/tcp"), MIOR_PCAP_LINKTYPE_RAW);
  CHECK_EQ(mior_pcap_linktype_for("udp://0.0.0.0:9"), MIOR_PCAP_LINKTYPE_USER0);
  CHECK_EQ(mior_pcap_linktype_for("bogus"), 0);

  REQUIRE_OK(mior_pcap_open(&c, path, MIOR_PCAP_LINKTYPE_RAW, 100));
  uint8_t a[60], b[300];
  for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)i;
  for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)(255 - i);
  CHECK_OK(mior_pcap_write(c, a, sizeof a));
  CHECK_OK(mior_pcap_write(c, b, sizeof b)); /* cut to 100 */
  CHECK_OK(mior_pcap_write(c, NULL, 0));
  CHECK_EQ(mior_pcap_count(c), 3);
  CHECK_OK(mior_pcap_close(c));

  size_t n = 0;
  uint8_t *f = read_file(path, &n);
  REQUIRE(f);
  CHECK_EQ(n, 24 + 16 + 60 + 16 + 100 + 16);
  if (n == 24 + 16 + 60 + 16 + 100 + 16) {
    CHECK_EQ(rd32(f), 0xa1b2c3d4u);
    CHECK_EQ(f[4] | f[5] << 8, 2);
    CHECK_EQ(f[6] | f[7] << 8, 4);
    CHECK_EQ(rd32(f + 16), 100);                    /* snaplen */
    CHECK_EQ(rd32(f + 20), MIOR_PCAP_LINKTYPE_RAW); /* network */
    const uint8_t *r = f + 24;
    CHECK(rd32(r) > 1600000000u);                   /* seconds: a real wall-clock time */
    CHECK(rd32(r + 4) < 1000000u);                  /* microseconds */
    CHECK_EQ(rd32(r + 8), 60);
    CHECK_EQ(rd32(r + 12), 60);
    CHECK(memcmp(r + 16, a, 60) == 0);
    r += 16 + 60;
    CHECK_EQ(rd32(r + 8), 100);
    CHECK_EQ(rd32(r + 12), 300);
    CHECK(memcmp(r + 16, b, 100) == 0);
    r += 16 + 100;
    CHECK_EQ(rd32(r + 8), 0);
  }
  free(f);
}

enum { THREADS = 4, PER_THREAD = 2000 };
static mior_pcap *shared_cap;

static void *appender(void *arg) {
  uint32_t id = (uint32_t)(uintptr_t)arg;
  uint8_t p[64];
  for (uint32_t i = 0; i < PER_THREAD; i++) {
    uint32_t len = 8 + (i % 57);
    memcpy(p, &id, 4);
    memcpy(p + 4, &i, 4);
    memset(p + 8, (int)(id * 31 + i), len - 8);
    if (mior_pcap_write(shared_cap, p, len) < 0) break;
  }
  return NULL;
}

static void test_threads(const char *path) {
  REQUIRE_OK(mior_pcap_open(&shared_cap, path, MIOR_PCAP_LINKTYPE_USER0, 0));
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++) REQUIRE(pthread_create(&t[i], NULL, appender, (void *)i) == 0);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  CHECK_EQ(mior_pcap_count(shared_cap), THREADS * PER_THREAD);
  CHECK_OK(mior_pcap_close(shared_cap));
  size_t n = 0;
  uint8_t *f = read_file(path, &n);
  REQUIRE(f);
  uint32_t next[THREADS] = {0};
  size_t off = 24, recs = 0, bad = 0;
  while (off + 16 <= n) {
    uint32_t incl = rd32(f + off + 8);
    if (off + 16 + incl > n || incl < 8 || incl != rd32(f + off + 12)) {
      bad++;
      break;
    }
    const uint8_t *p = f + off + 16;
    uint32_t id = rd32(p), i = rd32(p + 4);
    int ok = id < THREADS && i == next[id] && incl == 8 + (i % 57);
    for (uint32_t k = 8; ok && k < incl; k++) ok = p[k] == (uint8_t)(id * 31 + i);
    if (!ok) bad++;
    else next[id]++;
    recs++;
    off += 16 + incl;
  }
  CHECK_EQ(off, n);
  CHECK_EQ(recs, THREADS * PER_THREAD);
  CHECK_EQ(bad, 0);
  free(f);
}

#ifdef MIOR_HAVE_LWIP
static netns_pair pair;

/* Run a command, return its output (first `cap` bytes) and exit status. */
static int run_capture(const char *cmd, char *out, size_t cap) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, cap - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}


static void test_tcpdump_lwip(const char *path) {
  tt_phase = "lwIP capture";
  char lwip_ip[16];
  snprintf(lwip_ip, sizeof lwip_ip, "10.77.%d.3", 214);
  REQUIRE_OK(netns_enter(pair.fd_a));
  int rc = netns_tx_checksum_offload_off(pair.if_a);
  REQUIRE_OK(netns_enter_host());
  REQUIRE_OK(rc);

  char ep[64];
  snprintf(ep, sizeof ep, "packet://%s", pair.if_b);
  mior_pcap *cap = NULL;
  REQUIRE_OK(mior_pcap_open(&cap, path, mior_pcap_linktype_for(ep), 0));
  mior_lwip_options lo;
  mior_lwip_options_init(&lo);
  lo.endpoint = ep;
  lo.ip = lwip_ip;
  lo.pcap = cap;
  mior_lwip *l = NULL;
  REQUIRE_OK(netns_enter(pair.fd_b));
  rc = mior_lwip_start(&l, &lo);
  REQUIRE_OK(netns_enter_host());
  REQUIRE_OK(rc);
  REQUIRE_OK(mior_lwip_echo_listen(7));

  /* Kernel ICMP echo from ns a (a raw socket, so the test does not depend on ping). */
  int replies = tt_icmp_echo_from(pair.fd_a, lwip_ip, 3, 0x4d52);
  REQUIRE(replies >= 0);
  CHECK_EQ(replies, 3);

  /* One TCP echo. */
  struct timeval tv = {2, 0};
  struct sockaddr_in da = {.sin_family = AF_INET};
  inet_pton(AF_INET, lwip_ip, &da.sin_addr);
  int s = tt_socket_in(pair.fd_a, AF_INET, SOCK_STREAM, 0);
  REQUIRE(s >= 0);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  da.sin_port = htons(7);
  int crc;
  while ((crc = connect(s, (struct sockaddr *)&da, sizeof da)) != 0 && errno == EINTR) {
  }
  CHECK_EQ(crc, 0);
  char msg[] = "captured by mior_pcap", back[sizeof msg] = {0};
  CHECK(send(s, msg, sizeof msg, 0) == (ssize_t)sizeof msg);
  size_t got = 0;
  while (got < sizeof msg) {
    ssize_t r = recv(s, back + got, sizeof msg - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  CHECK(memcmp(msg, back, sizeof msg) == 0);
  close(s);
  usleep(200000); /* let the closing handshake be recorded */

  mior_lwip_service_stats ss;
  for (int i = 0; i < 100; i++) {
    mior_lwip_service_stats_get(&ss);
    if (ss.open == 0) break;
    usleep(10000);
  }
  CHECK_EQ(mior_lwip_stop(l), 0);
  uint64_t frames = mior_pcap_count(cap);
  CHECK_OK(mior_pcap_close(cap));

  char cmd[300];
  static char out[1 << 16];
  snprintf(cmd, sizeof cmd, "tcpdump -nn -e -r %s 2>/dev/null", path);
  CHECK_EQ(run_capture(cmd, out, sizeof out), 0);
  CHECK_EQ(count_lines(out), frames);
  char want[120];
  snprintf(want, sizeof want, "Reply %s is-at", lwip_ip);
  CHECK(strstr(out, want) != NULL);
  snprintf(want, sizeof want, "%s > %s: ICMP echo request", pair.ip_a, lwip_ip);
  CHECK(strstr(out, want) != NULL);
  snprintf(want, sizeof want, "%s > %s: ICMP echo reply", lwip_ip, pair.ip_a);
  CHECK(strstr(out, want) != NULL);
  snprintf(want, sizeof want, "%s.7 > %s.", lwip_ip, pair.ip_a);
  CHECK(strstr(out, want) != NULL);
  CHECK(strstr(out, "Flags [S.]") != NULL);
  CHECK(strstr(out, "length 22") != NULL); /* the echoed message, both ways */
  printf("  lwIP capture: %llu frames, tcpdump read them all\n", (unsigned long long)frames);
}

static void test_tcpdump_tool(const char *path) {
  tt_phase = "mior-stack --pcap";
  if (system("command -v ping >/dev/null && command -v curl >/dev/null && "
             "command -v python3 >/dev/null") != 0) {
    printf("  mior-stack --pcap: SKIP (needs ping, curl and python3 for --demo)\n");
    return;
  }
  char cmd[400];
  static char out[1 << 16];
  snprintf(cmd, sizeof cmd, "%s --netns --subnet 215 --demo --pcap %s 2>&1", MIOR_STACK_BIN, path);
  int rc = run_capture(cmd, out, sizeof out);
  CHECK_EQ(rc, 0);
  if (rc != 0) printf("%s\n", out);
  CHECK(strstr(out, "HTTP/1.1 200 OK") != NULL);
  snprintf(cmd, sizeof cmd, "tcpdump -nn -A -r %s 2>/dev/null", path);
  CHECK_EQ(run_capture(cmd, out, sizeof out), 0);
  CHECK(strstr(out, "10.77.215.3.80 > 10.77.215.1.") != NULL);
  CHECK(strstr(out, "hello from lwIP on a mior port") != NULL);
  CHECK(strstr(out, "GET / HTTP/1.1") != NULL);
  printf("  mior-stack --pcap: ok\n");
}
#endif

int main(void) {
  char path[64], path2[64];
  snprintf(path, sizeof path, "/tmp/mior-test-pcap-%d.pcap", (int)getpid());
  snprintf(path2, sizeof path2, "/tmp/mior-test-pcap-%d-b.pcap", (int)getpid());
  test_format(path);
  test_threads(path);
  printf("  format and concurrent appends: %s\n", test_failures ? "FAILED" : "ok");
#ifndef MIOR_HAVE_LWIP
  unlink(path);
  printf("  captures of lwIP traffic: SKIP (lwIP was not found at build time)\n");
#else
  char why[160];
  if (system("command -v tcpdump >/dev/null") != 0) {
    printf("  captures read by tcpdump: SKIP (tcpdump is not installed)\n");
  } else if (!netns_available(why, sizeof why)) {
    printf("  captures read by tcpdump: SKIP (%s)\n", why);
  } else {
    tt_watchdog(60);
    tt_pair_create(&pair, "tpcap", 214);
    test_tcpdump_lwip(path);
    CHECK_OK(netns_pair_destroy(&pair));
    test_tcpdump_tool(path2);
  }
  unlink(path);
  unlink(path2);
#endif
  TEST_DONE();
}
