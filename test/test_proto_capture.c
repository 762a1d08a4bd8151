/* Known answers from the real Linux stack: two network namespaces joined by a veth pair (made
 * here and always deleted), an AF_PACKET capture on one end, and traffic the kernel itself
 * builds: ARP request and reply, ICMP and ICMPv6 echo replies, UDP over IPv4 and IPv6, a TCP SYN
 * with MSS, SACK-permitted, timestamps and window scale, the SYN-ACK, and an RST.  Every
 * captured frame must parse, fields must match what was sent, and checksums must verify
 * (transmit checksum offload is turned off with ethtool so the kernel fills them in software).
 * Needs root and iproute2; skips otherwise.  Bounded by a 60 s watchdog and a 5 s capture. */
#include "test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mior/proto/proto.h>

static char ns_a[64], ns_b[64];
static const char *ip_bin;
static volatile sig_atomic_t created;

/* Delete the namespaces (which deletes the veth pair).  Async-signal-safe: fork and execve. */
static void delete_namespaces(void) {
  if (!created) return;
  created = 0;
  char *names[2] = {ns_a, ns_b};
  for (int i = 0; i < 2; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      char *argv[] = {(char *)"ip", (char *)"netns", (char *)"del", names[i], NULL};
      char *envp[] = {NULL};
      int fd = open("/dev/null", O_WRONLY);
      if (fd >= 0) dup2(fd, 2);
      execve(ip_bin, argv, envp);
      _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
  }
}

static void on_signal(int sig) {
  static const char msg[] = "test_proto_capture: watchdog or signal, deleting namespaces\n";
  if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
  delete_namespaces();
  _exit(sig == SIGALRM ? 1 : 128 + sig);
}

/* Run a shell command (bounded by timeout(1)); returns its exit status. */
static int sh(const char *fmt, ...) {
  char cmd[512], full[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  snprintf(full, sizeof full, "timeout 10 %s >/dev/null 2>&1", cmd);
  int st = system(full);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *find_bin(const char *name) {
  static const char *const dirs[] = {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"};
  static char path[4][64];
  static int next;
  for (size_t i = 0; i < 4; i++) {
    char p[64];
    snprintf(p, sizeof p, "%s%s", dirs[i], name);
    if (access(p, X_OK) == 0) {
      char *slot = path[next++ % 4];
      snprintf(slot, 64, "%s", p);
      return slot;
    }
  }
  return NULL;
}

static int enter_ns(const char *name) {
  char path[128];
  snprintf(path, sizeof path, "/run/netns/%s", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

static int get_mac(const char *ifname, uint8_t mac[6]) {
  struct ifreq ifr;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  int rc = ioctl(s, SIOCGIFHWADDR, &ifr) < 0 ? -errno : 0;
  if (rc == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  close(s);
  return rc;
}

/* What the capture has seen. */
enum {
  SEEN_ARP_REQ, SEEN_ARP_REPLY, SEEN_ICMP_REQ, SEEN_ICMP_REPLY, SEEN_ICMP6_REPLY, SEEN_UDP4,
  SEEN_UDP6, SEEN_SYN4, SEEN_SYNACK4, SEEN_SYN6, SEEN_RST6, SEEN_COUNT
};
static const char *const seen_name[SEEN_COUNT] = {
    "ARP request", "ARP reply", "ICMP echo request", "ICMP echo reply", "ICMPv6 echo reply",
    "UDP/IPv4", "UDP/IPv6", "TCP SYN (IPv4)", "TCP SYN-ACK (IPv4)", "TCP SYN (IPv6)", "TCP RST (IPv6)"};

static uint8_t mac_a[6], mac_b[6];
static const uint8_t a4[4] = {10, 79, 0, 1}, b4[4] = {10, 79, 0, 2};
static uint8_t a6[16], b6[16];
static int csum_checked; /* offload off: checksums of L4 must verify */
static uint32_t syn4_seq, syn4_tsval, syn6_seq;
static const char ping_payload[] = "mior-ping-payload";
static const char udp4_payload[] = "mior-udp4";
static const char udp6_payload[] = "mior-udp6!"; /* even and odd lengths */

static void check_frame(const uint8_t *f, size_t len, const struct sockaddr_ll *sll, int seen[]) {
  mior_frame_info fi;
  int rc = mior_frame_parse(f, len, &fi);
  if (rc != 0) {
    TEST_FAIL_AT("captured frame of %zu bytes (ethertype %04x) rejected: %d %s", len,
                 ntohs(sll->sll_protocol), rc, mior_proto_reason_str(fi.reason));
    return;
  }
  /* The parser's ethertype agrees with the kernel's; the sender is the direction's MAC. */
  CHECK_EQ(fi.eth.ethertype, ntohs(sll->sll_protocol));
  int from_b = sll->sll_pkttype == PACKET_OUTGOING;
  CHECK(memcmp(fi.eth.src, from_b ? mac_b : mac_a, 6) == 0);
  if (fi.layers & (MIOR_LAYER_UDP | MIOR_LAYER_TCP | MIOR_LAYER_ICMP | MIOR_LAYER_ICMPV6)) {
    CHECK(fi.payload_off + fi.payload_len <= len);
    if (csum_checked && mior_frame_l4_csum_ok(f, len, &fi) != 1)
      TEST_FAIL_AT("L4 checksum of a captured frame (proto %u, from %s) does not verify", fi.ip_proto,
                   from_b ? "b" : "a");
  }

  if (fi.layers & MIOR_LAYER_ARP) {
    const mior_arp_info *arp = &fi.l3.arp;
    if (arp->op == MIOR_ARP_REQUEST && !from_b && memcmp(arp->tpa, b4, 4) == 0) {
      CHECK(memcmp(arp->sha, mac_a, 6) == 0 && memcmp(arp->spa, a4, 4) == 0);
      CHECK(memcmp(f, "\xff\xff\xff\xff\xff\xff", 6) == 0);
      seen[SEEN_ARP_REQ]++;
    } else if (arp->op == MIOR_ARP_REPLY && from_b) {
      CHECK(memcmp(arp->sha, mac_b, 6) == 0 && memcmp(arp->spa, b4, 4) == 0);
      CHECK(memcmp(arp->tha, mac_a, 6) == 0 && memcmp(arp->tpa, a4, 4) == 0);
      CHECK(memcmp(fi.eth.dst, mac_a, 6) == 0);
      seen[SEEN_ARP_REPLY]++;
    }
    return;
  }
  if (fi.layers & MIOR_LAYER_IPV4) {
    const mior_ipv4_info *ip = &fi.l3.ipv4;
    CHECK(memcmp(ip->src, from_b ? b4 : a4, 4) == 0);
    CHECK(memcmp(ip->dst, from_b ? a4 : b4, 4) == 0);
    CHECK_EQ(ip->hdr_len, 20);
    CHECK_EQ(ip->ttl, 64);
    CHECK_EQ(ip->total_len + 14u, len > 60 ? len : ip->total_len + 14u);
    if (fi.layers & MIOR_LAYER_ICMP) {
      const mior_icmp_info *ic = &fi.l4.icmp;
      if (ic->is_echo && ic->id == 0x4d49 && ic->seq == 1) {
        CHECK_EQ(fi.payload_len, sizeof ping_payload);
        CHECK(memcmp(f + fi.payload_off, ping_payload, sizeof ping_payload) == 0);
        if (ic->type == MIOR_ICMP_ECHO_REQUEST && !from_b) seen[SEEN_ICMP_REQ]++;
        if (ic->type == MIOR_ICMP_ECHO_REPLY && from_b) seen[SEEN_ICMP_REPLY]++;
      }
    } else if (fi.layers & MIOR_LAYER_UDP) {
      const mior_udp_info *u = &fi.l4.udp;
      if (u->dport == 7000 && !from_b) {
        CHECK_EQ(fi.payload_len, sizeof udp4_payload - 1);
        CHECK(memcmp(f + fi.payload_off, udp4_payload, sizeof udp4_payload - 1) == 0);
        CHECK(u->csum != 0); /* Linux always fills the UDP checksum */
        seen[SEEN_UDP4]++;
      }
    } else if (fi.layers & MIOR_LAYER_TCP) {
      const mior_tcp_info *t = &fi.l4.tcp;
      if (t->dport == 8000 && t->flags == MIOR_TCP_SYN && !from_b) {
        /* Linux's SYN on a 1500-byte MTU: MSS 1460, SACK-permitted, timestamps, wscale. */
        CHECK(t->opts.mss_present && t->opts.mss == 1460);
        CHECK(t->opts.sack_permitted);
        CHECK(t->opts.ts_present && t->opts.ts_ecr == 0);
        CHECK(t->opts.wscale_present && t->opts.wscale <= 14);
        CHECK_EQ(t->hdr_len, 40);
        CHECK_EQ(fi.payload_len, 0);
        syn4_seq = t->seq, syn4_tsval = t->opts.ts_val;
        seen[SEEN_SYN4]++;
      } else if (t->sport == 8000 && t->flags == (MIOR_TCP_SYN | MIOR_TCP_ACK) && from_b) {
        CHECK_EQ(t->ack, syn4_seq + 1);
        CHECK(t->opts.mss_present && t->opts.mss == 1460);
        CHECK(t->opts.sack_permitted && t->opts.wscale_present);
        CHECK(t->opts.ts_present && t->opts.ts_ecr == syn4_tsval);
        seen[SEEN_SYNACK4]++;
      }
    }
    return;
  }
  if (fi.layers & MIOR_LAYER_IPV6) {
    const mior_ipv6_info *ip = &fi.l3.ipv6;
    if (fi.layers & MIOR_LAYER_ICMPV6) {
      const mior_icmp_info *ic = &fi.l4.icmp;
      if (ic->type == MIOR_ICMPV6_ECHO_REPLY && ic->id == 0x4d36 && from_b) {
        CHECK(memcmp(ip->src, b6, 16) == 0 && memcmp(ip->dst, a6, 16) == 0);
        CHECK_EQ(ic->seq, 2);
        CHECK_EQ(fi.payload_len, sizeof ping_payload);
        CHECK(memcmp(f + fi.payload_off, ping_payload, sizeof ping_payload) == 0);
        seen[SEEN_ICMP6_REPLY]++;
      }
    } else if (fi.layers & MIOR_LAYER_UDP) {
      if (fi.l4.udp.dport == 7000 && !from_b) {
        CHECK(memcmp(ip->src, a6, 16) == 0 && memcmp(ip->dst, b6, 16) == 0);
        CHECK_EQ(ip->hop_limit, 64);
        CHECK_EQ(ip->ext_count, 0);
        CHECK_EQ(fi.payload_len, sizeof udp6_payload - 1);
        CHECK(memcmp(f + fi.payload_off, udp6_payload, sizeof udp6_payload - 1) == 0);
        seen[SEEN_UDP6]++;
      }
    } else if (fi.layers & MIOR_LAYER_TCP) {
      const mior_tcp_info *t = &fi.l4.tcp;
      if (t->dport == 8001 && t->flags == MIOR_TCP_SYN && !from_b) {
        CHECK(t->opts.mss_present && t->opts.mss == 1440); /* 1500 - 40 - 20 */
        CHECK(t->opts.sack_permitted && t->opts.ts_present && t->opts.wscale_present);
        syn6_seq = t->seq;
        seen[SEEN_SYN6]++;
      } else if (t->sport == 8001 && (t->flags & MIOR_TCP_RST) && from_b) {
        CHECK_EQ(t->flags, MIOR_TCP_RST | MIOR_TCP_ACK);
        CHECK_EQ(t->ack, syn6_seq + 1);
        CHECK_EQ(t->hdr_len, 20);
        seen[SEEN_RST6]++;
      }
    }
  }
}

int main(void) {
  if (geteuid() != 0) TEST_SKIP("needs root to create network namespaces");
  ip_bin = find_bin("ip");
  if (ip_bin == NULL) TEST_SKIP("iproute2 'ip' not found");
  const char *ethtool = find_bin("ethtool");

  int pid = (int)getpid();
  snprintf(ns_a, sizeof ns_a, "mior-proto-%d-a", pid);
  snprintf(ns_b, sizeof ns_b, "mior-proto-%d-b", pid);
  char if_a[IFNAMSIZ], if_b[IFNAMSIZ];
  snprintf(if_a, sizeof if_a, "mpa%d", pid % 1000000);
  snprintf(if_b, sizeof if_b, "mpb%d", pid % 1000000);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGALRM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  atexit(delete_namespaces);
  alarm(60);

  int host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  REQUIRE(host_ns >= 0);
  if (sh("%s netns add %s", ip_bin, ns_a) != 0) TEST_SKIP("cannot create a network namespace");
  created = 1;
  REQUIRE(sh("%s netns add %s", ip_bin, ns_b) == 0);
  REQUIRE(sh("%s link add %s netns %s type veth peer name %s netns %s", ip_bin, if_a, ns_a, if_b, ns_b) == 0);
  const char *ns[2] = {ns_a, ns_b}, *ifs[2] = {if_a, if_b};
  for (int i = 0; i < 2; i++) {
    REQUIRE(sh("%s -n %s link set lo up", ip_bin, ns[i]) == 0);
    REQUIRE(sh("%s -n %s addr add 10.79.0.%d/24 dev %s", ip_bin, ns[i], i + 1, ifs[i]) == 0);
    REQUIRE(sh("%s -n %s addr add fd79::%d/64 dev %s nodad", ip_bin, ns[i], i + 1, ifs[i]) == 0);
    REQUIRE(sh("%s -n %s link set %s up", ip_bin, ns[i], ifs[i]) == 0);
    if (ethtool) csum_checked += sh("%s netns exec %s %s -K %s tx off", ip_bin, ns[i], ethtool, ifs[i]) == 0;
  }
  if (csum_checked != 2) {
    csum_checked = 0;
    printf("note: ethtool missing or failed: transmit checksum offload stays on, so the L4 "
           "checksums of captured frames (left partial by the kernel) are not verified\n");
  }
  inet_pton(AF_INET6, "fd79::1", a6);
  inet_pton(AF_INET6, "fd79::2", b6);

  /* Namespace b: the capture socket, a UDP receiver and a TCP listener. */
  REQUIRE(enter_ns(ns_b) == 0);
  REQUIRE(get_mac(if_b, mac_b) == 0);
  int cap = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  REQUIRE(cap >= 0);
  struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                           .sll_ifindex = (int)if_nametoindex(if_b)};
  REQUIRE(ll.sll_ifindex > 0);
  REQUIRE(bind(cap, (struct sockaddr *)&ll, sizeof ll) == 0);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
  setsockopt(cap, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int udp_rx = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* dual stack: v4 and v6 */
  struct sockaddr_in6 any6 = {.sin6_family = AF_INET6, .sin6_port = htons(7000)};
  REQUIRE(udp_rx >= 0 && bind(udp_rx, (struct sockaddr *)&any6, sizeof any6) == 0);
  int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in lst_addr = {.sin_family = AF_INET, .sin_port = htons(8000)};
  REQUIRE(lst >= 0 && bind(lst, (struct sockaddr *)&lst_addr, sizeof lst_addr) == 0 && listen(lst, 4) == 0);

  /* Namespace a: the senders. */
  REQUIRE(enter_ns(ns_a) == 0);
  REQUIRE(get_mac(if_a, mac_a) == 0);
  struct sockaddr_in to4 = {.sin_family = AF_INET, .sin_port = htons(7000)};
  memcpy(&to4.sin_addr, b4, 4);
  struct sockaddr_in6 to6 = {.sin6_family = AF_INET6, .sin6_port = htons(7000)};
  memcpy(&to6.sin6_addr, b6, 16);

  /* ICMP echo request (ours, via a raw socket); the reply is built by b's kernel. */
  int icmp = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  REQUIRE(icmp >= 0);
  uint8_t msg[64];
  int n = mior_icmp_echo_build(msg, sizeof msg, MIOR_ICMP_ECHO_REQUEST, 0x4d49, 1, ping_payload,
                               sizeof ping_payload);
  REQUIRE(n > 0);
  struct sockaddr_in icmp_to = to4;
  icmp_to.sin_port = 0;
  CHECK(sendto(icmp, msg, (size_t)n, 0, (struct sockaddr *)&icmp_to, sizeof icmp_to) == n);

  int icmp6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  REQUIRE(icmp6 >= 0);
  n = mior_icmp6_echo_build(msg, sizeof msg, MIOR_ICMPV6_ECHO_REQUEST, 0x4d36, 2, ping_payload,
                            sizeof ping_payload, a6, b6);
  struct sockaddr_in6 icmp6_to = to6;
  icmp6_to.sin6_port = 0;
  CHECK(sendto(icmp6, msg, (size_t)n, 0, (struct sockaddr *)&icmp6_to, sizeof icmp6_to) == n);

  int u4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), u6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(u4 >= 0 && u6 >= 0);
  CHECK(sendto(u4, udp4_payload, sizeof udp4_payload - 1, 0, (struct sockaddr *)&to4, sizeof to4) > 0);
  CHECK(sendto(u6, udp6_payload, sizeof udp6_payload - 1, 0, (struct sockaddr *)&to6, sizeof to6) > 0);

  int t4 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int t6 = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(t4 >= 0 && t6 >= 0);
  struct sockaddr_in tcp4_to = to4;
  tcp4_to.sin_port = htons(8000);
  struct sockaddr_in6 tcp6_to = to6;
  tcp6_to.sin6_port = htons(8001); /* closed: b answers with RST */
  CHECK(connect(t4, (struct sockaddr *)&tcp4_to, sizeof tcp4_to) == 0 || errno == EINPROGRESS);
  CHECK(connect(t6, (struct sockaddr *)&tcp6_to, sizeof tcp6_to) == 0 || errno == EINPROGRESS);
  REQUIRE(setns(host_ns, CLONE_NEWNET) == 0);

  /* Capture until everything was seen or 5 s passed. */
  int seen[SEEN_COUNT] = {0};
  int frames = 0;
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int iter = 0; iter < 10000; iter++) {
    int all = 1;
    for (int k = 0; k < SEEN_COUNT; k++) all &= seen[k] > 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (all || (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > 5000) break;
    uint8_t *buf = malloc(2048);
    REQUIRE(buf != NULL);
    struct sockaddr_ll from;
    socklen_t fl = sizeof from;
    ssize_t r = recvfrom(cap, buf, 2048, 0, (struct sockaddr *)&from, &fl);
    if (r > 0) {
      /* An exact-size copy, so a read past the frame is caught by ASan. */
      uint8_t *exact = malloc((size_t)r);
      REQUIRE(exact != NULL);
      memcpy(exact, buf, (size_t)r);
      frames++;
      check_frame(exact, (size_t)r, &from, seen);
      free(exact);
    }
    free(buf);
  }
  printf("captured %d frames; checksums %s\n", frames, csum_checked ? "verified" : "not verified");
  for (int k = 0; k < SEEN_COUNT; k++) {
    if (seen[k] == 0) TEST_FAIL_AT("never captured: %s", seen_name[k]);
  }

  close(cap), close(udp_rx), close(lst), close(icmp), close(icmp6), close(u4), close(u6);
  close(t4), close(t6), close(host_ns);
  delete_namespaces();
  TEST_DONE();
}
