/* The namespace support code the transport tests and mior-perf stand on: a pair is created with
 * usable addresses (IPv4 and IPv6 at once, no DAD wait), the two sides reach each other, the
 * reported MACs and ifindexes are the real ones, netns_enter moves only the calling thread, and
 * destroy leaves nothing behind in `ip netns list`, also when called twice.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns.h"
#include "test.h"

static netns_pair pair1, pair2;

static void cleanup(void) {
  netns_pair_destroy(&pair1);
  netns_pair_destroy(&pair2);
}

static void on_signal(int sig) {
  cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

static int ns_listed(const char *name) {
  char path[96];
  snprintf(path, sizeof path, "/run/netns/%s", name);
  struct stat st;
  return stat(path, &st) == 0;
}

/* How many lines of `ip netns list` mention name (0 or 1). */
static int ip_netns_list_has(const char *name) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "ip netns list | grep -qw -- '%s'", name);
  return system(cmd) == 0;
}

typedef struct probe {
  const char *ifname;
  int ifindex;
  uint8_t mac[6];
  int netns_ino_differs;
  int rc;
} probe;

/* Runs on a thread that entered ns a: the veth end is visible there, and not in the host. */
static void *probe_thread(void *arg) {
  probe *pr = arg;
  struct stat host_st, here_st;
  if (stat("/proc/self/ns/net", &host_st) != 0) {
    pr->rc = -errno;
    return NULL;
  }
  if ((pr->rc = netns_enter(pair1.fd_a)) < 0) return NULL;
  if (stat("/proc/thread-self/ns/net", &here_st) != 0) {
    pr->rc = -errno;
    netns_enter_host();
    return NULL;
  }
  pr->netns_ino_differs = here_st.st_ino != host_st.st_ino;
  pr->ifindex = (int)if_nametoindex(pr->ifname);
  int sk = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", pr->ifname);
  if (sk >= 0 && ioctl(sk, SIOCGIFHWADDR, &ifr) == 0) memcpy(pr->mac, ifr.ifr_hwaddr.sa_data, 6);
  if (sk >= 0) close(sk);
  pr->rc = netns_enter_host();
  return NULL;
}

/* A datagram from a socket in ns a (made by a thread that entered it) to a socket in ns b:
 * the in-process form of a ping.  Returns 1 if it arrived with the right bytes. */
typedef struct across {
  int fd_from, fd_to;
  const char *to_ip;
  int v6;
  int ok;
} across;

static void *across_thread(void *arg) {
  across *x = arg;
  int fam = x->v6 ? AF_INET6 : AF_INET;
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  if (x->v6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, x->to_ip, &s6->sin6_addr) != 1) return NULL;
    sl = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    if (inet_pton(AF_INET, x->to_ip, &s4->sin_addr) != 1) return NULL;
    sl = sizeof *s4;
  }
  if (netns_enter(x->fd_to) < 0) return NULL;
  int rx = socket(fam, SOCK_DGRAM, 0);
  /* Without a source namespace, the sender lives next to the receiver (loopback). */
  int tx = x->fd_from < 0 ? socket(fam, SOCK_DGRAM, 0) : -1;
  netns_enter_host();
  if (rx < 0) return NULL;
  struct timeval tv = {2, 0};
  setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (bind(rx, (struct sockaddr *)&ss, sl) != 0 || getsockname(rx, (struct sockaddr *)&ss, &sl) != 0) {
    if (tx >= 0) close(tx);
    close(rx);
    return NULL;
  }
  if (x->fd_from >= 0) {
    if (netns_enter(x->fd_from) < 0) {
      close(rx);
      return NULL;
    }
    tx = socket(fam, SOCK_DGRAM, 0);
    netns_enter_host();
  }
  const char msg[] = "mior netns probe";
  char buf[64];
  if (tx >= 0 && sendto(tx, msg, sizeof msg, 0, (struct sockaddr *)&ss, sl) == (ssize_t)sizeof msg) {
    ssize_t n = recv(rx, buf, sizeof buf, 0);
    x->ok = n == (ssize_t)sizeof msg && memcmp(buf, msg, sizeof msg) == 0;
  }
  if (tx >= 0) close(tx);
  close(rx);
  return NULL;
}

static int udp_across(int fd_from, int fd_to, const char *to_ip, int v6) {
  across x = {fd_from, fd_to, to_ip, v6, 0};
  pthread_t th;
  if (pthread_create(&th, NULL, across_thread, &x) != 0) return 0;
  pthread_join(th, NULL);
  return x.ok;
}

int main(void) {
  char why[128];
  if (!netns_available(why, sizeof why)) TEST_SKIP("%s", why);
  atexit(cleanup);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGALRM, on_signal);
  alarm(60);

  /* Bad arguments are refused before anything is created. */
  netns_pair bad;
  CHECK_ERR(netns_pair_create(&bad, "Bad-Tag", 1, 0), -EINVAL);
  CHECK_ERR(netns_pair_create(&bad, "ok", 300, 0), -EINVAL);
  CHECK_ERR(netns_pair_create(NULL, "ok", 1, 0), -EINVAL);
  CHECK_ERR(netns_enter(-1), -EINVAL);
  CHECK_ERR(netns_exec(NULL, "true"), -EINVAL);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  REQUIRE_OK(netns_pair_create(&pair1, "tnetns", 201, 0));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("pair created in %.1f ms: %s/%s %s/%s\n",
         (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, pair1.ns_a, pair1.if_a,
         pair1.ns_b, pair1.if_b);
  CHECK(pair1.created);
  CHECK(pair1.fd_a >= 0 && pair1.fd_b >= 0);
  CHECK(ns_listed(pair1.ns_a) && ns_listed(pair1.ns_b));
  CHECK(ip_netns_list_has(pair1.ns_a));
  CHECK(strstr(pair1.ns_a, "tnetns") != NULL);
  CHECK(strcmp(pair1.ip_a, "10.77.201.1") == 0 && strcmp(pair1.ip_b, "10.77.201.2") == 0);
  CHECK(pair1.ifindex_a > 1 && pair1.ifindex_b > 1);
  static const uint8_t zero[6];
  CHECK(memcmp(pair1.mac_a, zero, 6) != 0 && memcmp(pair1.mac_b, zero, 6) != 0);
  CHECK(memcmp(pair1.mac_a, pair1.mac_b, 6) != 0);

  /* The veth ends are not in the host namespace. */
  CHECK(if_nametoindex(pair1.if_a) == 0 || pair1.ifindex_a != (int)if_nametoindex(pair1.if_a));

  /* A thread entering ns a sees the same ifindex and MAC that create reported. */
  probe pr = {.ifname = pair1.if_a};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, probe_thread, &pr) == 0);
  pthread_join(th, NULL);
  CHECK_OK(pr.rc);
  CHECK(pr.netns_ino_differs);
  CHECK_EQ(pr.ifindex, pair1.ifindex_a);
  CHECK(memcmp(pr.mac, pair1.mac_a, 6) == 0);

  /* The two sides reach each other over IPv4 and, at once (no DAD), IPv6; ARP is not preset. */
  char cmd[160];
  CHECK(udp_across(pair1.fd_a, pair1.fd_b, pair1.ip_b, 0));
  CHECK(udp_across(pair1.fd_a, pair1.fd_b, pair1.ip6_b, 1));
  CHECK(udp_across(pair1.fd_b, pair1.fd_a, pair1.ip_a, 0));
  /* No address is tentative. */
  CHECK(netns_exec(pair1.ns_b, "ip -6 addr show tentative | grep -q inet6") != 0);
  /* loopback is up inside. */
  CHECK(udp_across(-1, pair1.fd_b, "127.0.0.1", 0));
  /* The exit status comes back. */
  CHECK_EQ(netns_exec(pair1.ns_a, "exit 7"), 7);

  /* RPS can be set on a side, and bad masks are refused before reaching a shell. */
  CHECK_OK(netns_set_rps(&pair1, 1, "1"));
  snprintf(cmd, sizeof cmd, "grep -q 1 /sys/class/net/%s/queues/rx-0/rps_cpus", pair1.if_b);
  CHECK_EQ(netns_exec(pair1.ns_b, cmd), 0);
  CHECK_ERR(netns_set_rps(&pair1, 1, "1; reboot"), -EINVAL);

  /* A second pair at once, with static neighbours: no ARP needed, so the entry is permanent. */
  REQUIRE_OK(netns_pair_create(&pair2, "tnetns2", 202, 1));
  snprintf(cmd, sizeof cmd, "ip neigh show %s | grep -q PERMANENT", pair2.ip_b);
  CHECK_EQ(netns_exec(pair2.ns_a, cmd), 0);
  CHECK(udp_across(pair2.fd_a, pair2.fd_b, pair2.ip_b, 0));
  /* The pairs are isolated from each other: ns b of pair 1 does not have pair 2's address. */
  CHECK(!udp_across(pair1.fd_a, pair1.fd_b, pair2.ip_b, 0));

  /* Recreating with the same tag deletes the leftover first instead of failing. */
  netns_pair again;
  REQUIRE_OK(netns_pair_create(&again, "tnetns2", 203, 0));
  CHECK(strcmp(again.ns_a, pair2.ns_a) == 0);
  CHECK_OK(netns_pair_destroy(&again));
  pair2.created = 0; /* its names went with `again` */
  close(pair2.fd_a);
  close(pair2.fd_b);
  pair2.fd_a = pair2.fd_b = -1;

  /* Destroy: gone from the list, and a second call is harmless. */
  char name_a[32], name_b[32];
  snprintf(name_a, sizeof name_a, "%s", pair1.ns_a);
  snprintf(name_b, sizeof name_b, "%s", pair1.ns_b);
  CHECK_OK(netns_pair_destroy(&pair1));
  CHECK_OK(netns_pair_destroy(&pair1));
  CHECK(!ns_listed(name_a) && !ns_listed(name_b));
  CHECK(!ip_netns_list_has(name_a) && !ip_netns_list_has(name_b));
  CHECK(!ip_netns_list_has("tnetns"));
  alarm(0);
  TEST_DONE();
}
