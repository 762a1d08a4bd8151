/* The bodies of test/transport_common.h's helpers, compiled once into mior_test_support (as
 * liburing's test/helpers.c) rather than into every test. */
#include <poll.h>
#include <sys/epoll.h>

#include "transport_common.h"

netns_pair *tt_pairs[TT_MAX_PAIRS];

static const tt_variant tt_linux_variants[] = {
    {.name = "uring", .backend = MIOR_BACKEND_URING, .reuseport = 1},
    {.name = "sockets", .backend = MIOR_BACKEND_SOCKETS, .reuseport = 1},
};

void tt_cleanup_netns(void) {
  for (int i = 0; i < TT_MAX_PAIRS; i++) {
    if (tt_pairs[i]) netns_pair_destroy(tt_pairs[i]);
  }
}

void tt_on_fatal(int sig) {
  /* Only async-signal-safe calls: write, netns_pair_destroy (umount2/unlink), _exit. */
  const char msg[] = "FAIL: watchdog or fatal signal; phase: ";
  ssize_t w = write(2, msg, sizeof msg - 1);
  w = write(2, tt_phase, strlen(tt_phase));
  w = write(2, "\n", 1);
  (void)w;
  tt_cleanup_netns();
  if (sig == SIGALRM) _exit(1);
  signal(sig, SIG_DFL);
  raise(sig);
}

void tt_watchdog(unsigned seconds) {
  static int installed;
  if (!installed) {
    installed = 1;
    atexit(tt_cleanup_netns);
    signal(SIGALRM, tt_on_fatal);
    signal(SIGINT, tt_on_fatal);
    signal(SIGTERM, tt_on_fatal);
    signal(SIGSEGV, tt_on_fatal);
    signal(SIGABRT, tt_on_fatal);
  }
  alarm(seconds);
}

void tt_sweep_stale(const char *tag) {
  DIR *d = opendir("/run/netns");
  if (!d) return;
  char prefix[40];
  snprintf(prefix, sizeof prefix, "mior-%s-", tag);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    long pid = strtol(e->d_name + strlen(prefix), NULL, 10);
    if (pid <= 0 || pid == (long)getpid()) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char path[300];
    snprintf(path, sizeof path, "/run/netns/%s", e->d_name);
    umount2(path, MNT_DETACH);
    unlink(path);
  }
  closedir(d);
}

void tt_pair_create(netns_pair *p, const char *tag, int subnet) {
  char why[160];
  if (!netns_available(why, sizeof why)) TEST_SKIP("%s", why);
  tt_sweep_stale(tag);
  for (int i = 0; i < TT_MAX_PAIRS; i++) {
    if (!tt_pairs[i] || tt_pairs[i] == p) {
      memset(p, 0, sizeof *p);
      p->fd_a = p->fd_b = -1;
      tt_pairs[i] = p;
      break;
    }
  }
  REQUIRE_OK(netns_pair_create(p, tag, subnet, 1));
}

const tt_variant *tt_os_variants(size_t *n) {
  *n = sizeof tt_linux_variants / sizeof tt_linux_variants[0];
  return tt_linux_variants;
}

void tt_os_setenv(const char *assignment, int set) {
  const char *eq = strchr(assignment, '=');
  REQUIRE(eq != NULL);
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)(eq - assignment), assignment);
  if (set)
    setenv(name, eq + 1, 1);
  else
    unsetenv(name);
}

int tt_for_each_backend(const char *name, void (*body)(mior_backend b)) {
  int ran = 0;
  for (const mior__backend_ops *const *ops = mior__backends; *ops; ops++) {
    mior_backend b = (*ops)->id;
    if (mior_backend_supported(b) != 1) {
      printf("  %s [%s]: SKIP (%s)\n", name, mior_backend_name(b), mior_last_error());
      continue;
    }
    int before = test_failures;
    int64_t t0 = tt_now_us();
    tt_phase = name;
    body(b);
    printf("  %s [%s]: %s (%.1f ms)\n", name, mior_backend_name(b),
           test_failures == before ? "ok" : "FAILED", (tt_now_us() - t0) / 1000.0);
    fflush(stdout);
    ran++;
  }
  return ran;
}

struct sockaddr_in tt_sin4(const mior_addr *a) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(a->port);
  memcpy(&sin.sin_addr, a->addr, 4);
  return sin;
}

mior_addr tt_addr4_of(int fd) {
  struct sockaddr_in sin;
  socklen_t sl = sizeof sin;
  memset(&sin, 0, sizeof sin);
  getsockname(fd, (struct sockaddr *)&sin, &sl);
  mior_addr a;
  memset(&a, 0, sizeof a);
  a.family = MIOR_AF_INET;
  a.port = ntohs(sin.sin_port);
  memcpy(a.addr, &sin.sin_addr, 4);
  return a;
}

int tt_kernel_udp4(int timeout_ms) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  mior_addr lo;
  memset(&lo, 0, sizeof lo);
  lo.family = MIOR_AF_INET;
  lo.addr[0] = 127;
  lo.addr[3] = 1;
  struct sockaddr_in sin = tt_sin4(&lo);
  REQUIRE(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void tt_kernel_send4(int fd, const mior_addr *to, uint32_t n, uint32_t len) {
  for (uint32_t i = 0; i < n; i++) tt_os_udp_send(fd, to, i, len);
}

intptr_t tt_os_udp4(mior_addr *local) {
  int fd = tt_kernel_udp4(2000);
  *local = tt_addr4_of(fd);
  return fd;
}

void tt_os_udp_send(intptr_t s, const mior_addr *to, uint32_t seq, uint32_t len) {
  struct sockaddr_in sin = tt_sin4(to);
  uint8_t buf[2048];
  REQUIRE(len <= sizeof buf);
  tt_fill(buf, len, seq);
  REQUIRE(sendto((int)s, buf, len, 0, (struct sockaddr *)&sin, sizeof sin) == (ssize_t)len);
}

void tt_os_udp_close(intptr_t s) {
  close((int)s);
}

int tt_os_ready(mior_handle h, int ms) {
  struct pollfd pfd = {.fd = (int)h, .events = POLLIN, .revents = 0};
  return poll(&pfd, 1, ms) > 0 && (pfd.revents & POLLIN);
}

intptr_t tt_os_waiter_open(mior_handle h, int edge) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  REQUIRE(ep >= 0);
  struct epoll_event ev = {.events = EPOLLIN | (edge ? EPOLLET : 0), .data = {.u64 = 1}};
  REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, (int)h, &ev) == 0);
  return ep;
}

/* Interrupted (io_uring's task work without DEFER_TASKRUN interrupts the wait) counts as woken, as
 * in a loop that makes a work call after every return of epoll_wait but a timeout. */
int tt_os_waiter_wait(intptr_t w, int ms) {
  struct epoll_event out;
  return epoll_wait((int)w, &out, 1, ms) != 0;
}

void tt_os_waiter_close(intptr_t w) {
  close((int)w);
}

int tt_bind_now4(const mior_addr *a) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -errno;
  struct sockaddr_in sin = tt_sin4(a);
  int rc = bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

int tt_open_in(int ns_fd, mior_transport **t, const char *ep, const mior_options *o,
                             const mior_receiver *recv) {
  if (ns_fd >= 0) REQUIRE_OK(netns_enter(ns_fd));
  int rc = mior_transport_open(t, ep, o, recv);
  if (ns_fd >= 0) REQUIRE_OK(netns_enter_host());
  return rc;
}

void tt_require_open_in(int ns_fd, const char *ns, mior_transport **t, const char *ep,
                                      const mior_options *o, const mior_receiver *recv) {
  int rc = tt_open_in(ns_fd, t, ep, o, recv);
  if (rc < 0) {
    TEST_FAIL_AT("%s: open %s in %s -> %d (%s) %s", tt_phase, ep, ns, rc, mior_strerror(rc),
                 mior_last_error());
    exit(1);
  }
}

void tt_open_a_to_b(const netns_pair *p, const char *ep_a, const mior_options *otx,
                                  mior_transport **tx, const char *ep_b, const mior_options *orx,
                                  tt_rx *r, mior_transport **rx) {
  mior_receiver recv = tt_receiver(r);
  tt_require_open_in(p->fd_b, p->ns_b, rx, ep_b, orx, &recv);
  tt_require_open_in(p->fd_a, p->ns_a, tx, ep_a, otx, NULL);
}

int tt_pull_one(mior_port *p, mior_pkt *out, int timeout_ms) {
  mior_handle h;
  REQUIRE_OK(mior_port_event_handle(p, &h));
  int64_t end = tt_now_ms() + timeout_ms;
  for (;;) {
    int n = mior_rx_burst(p, out, 1);
    REQUIRE(n >= 0);
    if (n == 1) return 0;
    int64_t left = end - tt_now_ms();
    if (left <= 0) return -1;
    tt_os_ready(h, (int)(left < 100 ? left : 100));
  }
}

int tt_socket_in(int ns_fd, int domain, int type, int proto) {
  REQUIRE_OK(netns_enter(ns_fd));
  int s = socket(domain, type, proto);
  REQUIRE_OK(netns_enter_host());
  return s;
}

void tt_kernel_udp_a_to_b(const netns_pair *p, uint16_t dport, uint32_t hi,
                                        uint16_t *sport, tt_rx *r, mior_port *rxp) {
  uint8_t buf[1500];
  REQUIRE(hi <= sizeof buf);
  int s = tt_socket_in(p->fd_a, AF_INET, SOCK_DGRAM, 0);
  REQUIRE(s >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET}, da = {.sin_family = AF_INET};
  REQUIRE(inet_pton(AF_INET, p->ip_a, &sa.sin_addr) == 1);
  REQUIRE(inet_pton(AF_INET, p->ip_b, &da.sin_addr) == 1);
  da.sin_port = htons(dport);
  REQUIRE(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
  socklen_t sl = sizeof sa;
  REQUIRE(getsockname(s, (struct sockaddr *)&sa, &sl) == 0);
  *sport = ntohs(sa.sin_port);

  int64_t deadline = tt_now_ms() + 10000;
  for (uint32_t seq = 0; seq < r->count && tt_now_ms() < deadline; seq++) {
    uint32_t len = tt_len_for(seq, TT_HDR, hi);
    tt_fill(buf, len, seq);
    CHECK(sendto(s, buf, len, 0, (struct sockaddr *)&da, sizeof da) == (ssize_t)len);
    while (seq + 1 - r->got > 32 && tt_now_ms() < deadline) mior_port_poll(rxp, 0, 1000);
  }
  while (r->got < r->count && tt_now_ms() < deadline) mior_port_poll(rxp, 0, 1000);
  close(s);
}

uint64_t tt_udp_kernel_drops(uint16_t port) {
  FILE *f = fopen("/proc/net/udp", "r");
  if (!f) return 0;
  char line[512];
  uint64_t drops = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned lport;
    if (sscanf(line, " %*d: %*8s:%4X", &lport) != 1 || lport != port) continue;
    /* drops is the last field; lines end in padding spaces. */
    char *tok, *save = NULL, *last = NULL;
    for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) last = tok;
    if (last) drops = strtoull(last, NULL, 10);
  }
  fclose(f);
  return drops;
}

int tt_icmp_echo_from(int ns_fd, const char *ip, int count, uint16_t id) {
  int s = tt_socket_in(ns_fd, AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (s < 0) return -1;
  struct timeval tv = {2, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in da = {.sin_family = AF_INET};
  inet_pton(AF_INET, ip, &da.sin_addr);
  int replies = 0;
  for (int seq = 1; seq <= count; seq++) {
    uint8_t req[64] = {8, 0, 0, 0, (uint8_t)(id >> 8), (uint8_t)id, 0, (uint8_t)seq};
    uint16_t c = mior_csum(req, sizeof req);
    memcpy(req + 2, &c, 2);
    CHECK(sendto(s, req, sizeof req, 0, (struct sockaddr *)&da, sizeof da) == sizeof req);
    uint8_t rep[256];
    for (int k = 0; k < 5; k++) {
      ssize_t r = recv(s, rep, sizeof rep, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 28) break;
      uint32_t ihl = (rep[0] & 15u) * 4u;
      if ((size_t)r >= ihl + 8 && rep[ihl] == 0 && rep[ihl + 7] == seq) {
        replies++;
        break;
      }
    }
  }
  close(s);
  return replies;
}

/* --- a plain OS socket as the other end of a metadata test ------------------------------------ */

#include <netinet/in.h>
#include <poll.h>

struct tt_peer {
  int fd;
  int v6;
};

tt_peer *tt_peer_open(int v6) {
  tt_peer *k = calloc(1, sizeof *k);
  REQUIRE(k != NULL);
  k->v6 = v6;
  k->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(k->fd >= 0);
  int one = 1;
  if (v6) {
    REQUIRE(setsockopt(k->fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one) == 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    REQUIRE(bind(k->fd, (struct sockaddr *)&a, sizeof a) == 0);
  } else {
    REQUIRE(setsockopt(k->fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    REQUIRE(bind(k->fd, (struct sockaddr *)&a, sizeof a) == 0);
  }
  return k;
}

void tt_peer_close(tt_peer *k) {
  if (!k) return;
  close(k->fd);
  free(k);
}

mior_addr tt_peer_addr(const tt_peer *k) {
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } a;
  socklen_t al = sizeof a;
  REQUIRE(getsockname(k->fd, (struct sockaddr *)&a, &al) == 0);
  mior_addr m;
  memset(&m, 0, sizeof m);
  m.family = k->v6 ? MIOR_AF_INET6 : MIOR_AF_INET;
  m.port = ntohs(k->v6 ? a.in6.sin6_port : a.in.sin_port);
  memcpy(m.addr, k->v6 ? (void *)&a.in6.sin6_addr : (void *)&a.in.sin_addr, k->v6 ? 16 : 4);
  return m;
}

int tt_peer_send(tt_peer *k, const uint8_t *addr, uint16_t port, int ecn, const void *buf, size_t len) {
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } a;
  memset(&a, 0, sizeof a);
  socklen_t al;
  if (k->v6) {
    a.in6.sin6_family = AF_INET6;
    a.in6.sin6_port = htons(port);
    memcpy(&a.in6.sin6_addr, addr, 16);
    al = sizeof a.in6;
    if (setsockopt(k->fd, IPPROTO_IPV6, IPV6_TCLASS, &ecn, sizeof ecn) != 0) return -1;
  } else {
    a.in.sin_family = AF_INET;
    a.in.sin_port = htons(port);
    memcpy(&a.in.sin_addr, addr, 4);
    al = sizeof a.in;
    if (setsockopt(k->fd, IPPROTO_IP, IP_TOS, &ecn, sizeof ecn) != 0) return -1;
  }
  return sendto(k->fd, buf, len, 0, (struct sockaddr *)&a, al) == (ssize_t)len ? 1 : -1;
}

int tt_peer_recv(tt_peer *k, uint8_t *from, int *ecn, uint8_t *buf, size_t cap, int ms) {
  struct pollfd pfd = {.fd = k->fd, .events = POLLIN, .revents = 0};
  if (poll(&pfd, 1, ms) != 1) return -1;
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } a;
  union {
    char b[256];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {buf, cap};
  struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1,
                     .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
  ssize_t n = recvmsg(k->fd, &m, 0);
  if (n < 0) return -1;
  *ecn = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) *ecn = *(uint8_t *)CMSG_DATA(c) & 3;
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
      int tc;
      memcpy(&tc, CMSG_DATA(c), sizeof tc);
      *ecn = tc & 3;
    }
  }
  if (k->v6) memcpy(from, &a.in6.sin6_addr, 16);
  else memcpy(from, &a.in.sin_addr, 4);
  return (int)n;
}

uint64_t tt_realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int tt_os_send_meta(const char **why) {
  *why = NULL;
  return 1;
}

int tt_peer_fd(const tt_peer *k) {
  return k->fd;
}
