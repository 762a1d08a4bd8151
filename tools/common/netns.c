/* Network namespace pairs for tests and benchmarks (see netns.h).
 *
 * Creation goes through the `ip` command (iproute2), started with posix_spawn and an argument
 * vector, never a shell: every name is generated here, and a shell would add nothing but quoting
 * hazards.  Work that must happen *inside* a namespace (sysctls, reading MACs and ifindexes,
 * checking that addresses are usable) runs on a short-lived thread that setns()es into it: a
 * socket or a /proc/sys/net file opened by that thread belongs to that namespace, while the rest
 * of the process stays where it is.
 *
 * Deletion does what `ip netns del` does (detach the bind mount under /run/netns and unlink it)
 * with plain system calls, so that netns_pair_destroy() stays async-signal-safe and can run from
 * a signal handler or an atexit() path when a test fails half-way.
 */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NETNS_RUN_DIR "/run/netns"

/* --- the host namespace ------------------------------------------------------------------- */

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static int host_fd = -1;

/* The namespace the process started in, opened before any of our setns() calls can move the
 * calling thread; /proc/self names the main thread, which this code never moves on its own. */
static void host_save(void) { host_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC); }

static int host_ns_fd(void) {
  pthread_once(&host_once, host_save);
  return host_fd;
}

int netns_enter(int fd) {
  if (fd < 0) return -EINVAL;
  host_ns_fd();
  if (setns(fd, CLONE_NEWNET) != 0) return -errno;
  return 0;
}

int netns_enter_host(void) {
  int fd = host_ns_fd();
  if (fd < 0) return -ENOENT;
  if (setns(fd, CLONE_NEWNET) != 0) return -errno;
  return 0;
}

/* --- running ip ---------------------------------------------------------------------------- */

static char ip_path[64];

static const char *ip_find(void) {
  static const char *const cands[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"};
  if (ip_path[0]) return ip_path;
  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
    if (access(cands[i], X_OK) == 0) {
      snprintf(ip_path, sizeof ip_path, "%s", cands[i]);
      return ip_path;
    }
  }
  return NULL;
}

/* Run argv (argv[0] is a full path) and return its exit status (0..255, 128+signal), or a
 * negative errno if it could not start.  quiet sends its output to /dev/null: used where failure
 * is expected and harmless, such as deleting a leftover that does not exist. */
static int run_argv(char *const argv[], int quiet) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (quiet) {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -rc;
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -errno;
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -ECHILD;
}

/* ip [-n NS] ARGS...: 0 on success, -EIO (after ip printed why) on failure. */
static int ip_cmd(const char *ns, ...) {
  const char *ip = ip_find();
  if (!ip) return -ENOENT;
  char *argv[32];
  int n = 0;
  argv[n++] = (char *)ip;
  if (ns) {
    argv[n++] = (char *)"-n";
    argv[n++] = (char *)ns;
  }
  va_list ap;
  va_start(ap, ns);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 31) argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  int rc = run_argv(argv, 0);
  if (rc < 0) return rc;
  if (rc != 0) {
    fprintf(stderr, "netns: '%s%s%s", ip, ns ? " -n " : "", ns ? ns : "");
    for (int i = ns ? 3 : 1; i < n; i++) fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "' exited with %d\n", rc);
    return -EIO;
  }
  return 0;
}

/* --- namespace deletion (async-signal-safe) ------------------------------------------------ */

/* What `ip netns del NAME` does.  The namespace itself lives on while a process, thread or open
 * fd still refers to it, and goes (taking its veth end, and so the pair) when the last goes. */
static int ns_delete(const char *name) {
  char path[64];
  /* No snprintf: it is not async-signal-safe.  Names are short and checked at creation. */
  size_t dl = sizeof NETNS_RUN_DIR - 1, nl = strlen(name);
  if (nl == 0 || dl + 1 + nl >= sizeof path) return -EINVAL;
  memcpy(path, NETNS_RUN_DIR, dl);
  path[dl] = '/';
  memcpy(path + dl + 1, name, nl + 1);
  int had = access(path, F_OK) == 0;
  umount2(path, MNT_DETACH);
  if (unlink(path) != 0 && errno != ENOENT) return -errno;
  return had ? 1 : 0;
}

/* --- work inside a namespace --------------------------------------------------------------- */

typedef struct ns_job {
  int fd;
  int (*fn)(void *arg);
  void *arg;
  int rc;
} ns_job;

static void *ns_job_thread(void *p) {
  ns_job *j = p;
  if (setns(j->fd, CLONE_NEWNET) != 0) {
    j->rc = -errno;
    return NULL;
  }
  j->rc = j->fn(j->arg);
  return NULL;
}

/* Run fn(arg) on a fresh thread inside the namespace fd; the caller's thread does not move. */
static int in_ns(int fd, int (*fn)(void *), void *arg) {
  ns_job j = {fd, fn, arg, 0};
  pthread_t th;
  int rc = pthread_create(&th, NULL, ns_job_thread, &j);
  if (rc != 0) return -rc;
  pthread_join(th, NULL);
  return j.rc;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  if (n < 0) return -e;
  return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

typedef struct side_job {
  const char *ifname;
  const char *ip6;
  uint8_t mac[6];
  int ifindex;
} side_job;

/* Before the link goes up: turn off duplicate address detection, so that the link-local and
 * the configured IPv6 addresses can be used at once instead of after a second or more of
 * "tentative" state; then read the identity of the veth end. */
static int side_setup(void *arg) {
  side_job *s = arg;
  char path[128];
  int rc;
  /* IPv6 may be disabled in the kernel; then there is nothing to turn off. */
  if (access("/proc/sys/net/ipv6/conf/all/accept_dad", F_OK) == 0) {
    const char *which[] = {"all", "default", s->ifname};
    for (int i = 0; i < 3; i++) {
      snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/accept_dad", which[i]);
      if ((rc = write_file(path, "0")) < 0) return rc;
    }
  }
  int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sk < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", s->ifname);
  rc = 0;
  if (ioctl(sk, SIOCGIFINDEX, &ifr) != 0) {
    rc = -errno;
  } else {
    s->ifindex = ifr.ifr_ifindex;
    if (ioctl(sk, SIOCGIFHWADDR, &ifr) != 0) rc = -errno;
    else memcpy(s->mac, ifr.ifr_hwaddr.sa_data, 6);
  }
  close(sk);
  return rc;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* After the link goes up: wait (at most 5 s) until the carrier is on (both veth ends up) and the
 * IPv6 address can be bound, which it cannot while it is still tentative. */
static int side_wait(void *arg) {
  side_job *s = arg;
  int64_t deadline = now_ms() + 5000;
  int sk4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sk4 < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", s->ifname);
  struct sockaddr_in6 a6;
  memset(&a6, 0, sizeof a6);
  a6.sin6_family = AF_INET6;
  int have6 = inet_pton(AF_INET6, s->ip6, &a6.sin6_addr) == 1 &&
              access("/proc/sys/net/ipv6/conf/all/accept_dad", F_OK) == 0;
  int rc = -ETIMEDOUT;
  for (;;) {
    int up = ioctl(sk4, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP) &&
             (ifr.ifr_flags & IFF_RUNNING);
    int ok6 = 1;
    if (up && have6) {
      int sk6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ok6 = sk6 >= 0 && bind(sk6, (struct sockaddr *)&a6, sizeof a6) == 0;
      if (sk6 >= 0) close(sk6);
    }
    if (up && ok6) {
      rc = 0;
      break;
    }
    if (now_ms() > deadline) break;
    usleep(2000);
  }
  close(sk4);
  return rc;
}

/* --- public ---------------------------------------------------------------------------------- */

int netns_available(char *why, size_t len) {
  const char *reason = NULL;
  if (geteuid() != 0) reason = "not root (network namespaces need CAP_SYS_ADMIN)";
  else if (!ip_find()) reason = "the ip command (iproute2) is not installed";
  else if (access("/proc/self/ns/net", R_OK) != 0) reason = "no network namespace support";
  else {
    /* Containers may forbid new namespaces even to root: try one in a throwaway child. */
    pid_t pid = fork();
    if (pid == 0) _exit(unshare(CLONE_NEWNET) == 0 ? 0 : 1);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      reason = "cannot create a network namespace here (unshare(CLONE_NEWNET) refused)";
  }
  if (reason) {
    if (why && len) snprintf(why, len, "%s", reason);
    return 0;
  }
  if (why && len) why[0] = '\0';
  return 1;
}

static int tag_ok(const char *tag) {
  size_t n = strlen(tag);
  if (n == 0 || n > 12) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = tag[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return 0;
  }
  return 1;
}

int netns_pair_create(netns_pair *p, const char *tag, int subnet, int static_neigh) {
  if (!p || !tag || !tag_ok(tag) || subnet < 0 || subnet > 255) return -EINVAL;
  memset(p, 0, sizeof *p);
  p->fd_a = p->fd_b = -1;
  if (!ip_find()) return -ENOENT;
  host_ns_fd();

  long pid = (long)getpid();
  snprintf(p->ns_a, sizeof p->ns_a, "mior-%s-%ld-a", tag, pid);
  snprintf(p->ns_b, sizeof p->ns_b, "mior-%s-%ld-b", tag, pid);
  /* The veth ends are created directly inside their namespaces, so their names only have to be
   * unique there, and the host never sees them. */
  snprintf(p->if_a, sizeof p->if_a, "veth%da", subnet);
  snprintf(p->if_b, sizeof p->if_b, "veth%db", subnet);
  snprintf(p->ip_a, sizeof p->ip_a, "10.77.%d.1", subnet);
  snprintf(p->ip_b, sizeof p->ip_b, "10.77.%d.2", subnet);
  snprintf(p->ip6_a, sizeof p->ip6_a, "fd77:%d::1", subnet);
  snprintf(p->ip6_b, sizeof p->ip6_b, "fd77:%d::2", subnet);

  /* A previous run with the same pid and tag that died before cleaning up. */
  ns_delete(p->ns_a);
  ns_delete(p->ns_b);

  int rc;
  if ((rc = ip_cmd(NULL, "netns", "add", p->ns_a, NULL)) < 0) goto fail;
  p->created = 1;
  if ((rc = ip_cmd(NULL, "netns", "add", p->ns_b, NULL)) < 0) goto fail;

  char path[96];
  snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", p->ns_a);
  if ((p->fd_a = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    rc = -errno;
    goto fail;
  }
  snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", p->ns_b);
  if ((p->fd_b = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    rc = -errno;
    goto fail;
  }

  /* Distinct ifindexes on the two ends (both would be 2 in fresh namespaces): the kernel treats
   * a carrier change on a device whose ifindex differs from its peer's as urgent, and otherwise
   * batches it for up to a second before the link carries traffic. */
  if ((rc = ip_cmd(NULL, "link", "add", p->if_a, "index", "10", "netns", p->ns_a, "type", "veth",
                   "peer", "name", p->if_b, "index", "11", "netns", p->ns_b, NULL)) < 0)
    goto fail;

  side_job sa = {.ifname = p->if_a, .ip6 = p->ip6_a};
  side_job sb = {.ifname = p->if_b, .ip6 = p->ip6_b};
  if ((rc = in_ns(p->fd_a, side_setup, &sa)) < 0) goto fail;
  if ((rc = in_ns(p->fd_b, side_setup, &sb)) < 0) goto fail;
  memcpy(p->mac_a, sa.mac, 6);
  memcpy(p->mac_b, sb.mac, 6);
  p->ifindex_a = sa.ifindex;
  p->ifindex_b = sb.ifindex;

  char a4[24], b4[24], a6[56], b6[56];
  snprintf(a4, sizeof a4, "%s/24", p->ip_a);
  snprintf(b4, sizeof b4, "%s/24", p->ip_b);
  snprintf(a6, sizeof a6, "%s/64", p->ip6_a);
  snprintf(b6, sizeof b6, "%s/64", p->ip6_b);
  /* A kernel booted with ipv6.disable=1 has no IPv6 at all: the pair is then IPv4 only. */
  int have6 = access("/proc/sys/net/ipv6", F_OK) == 0;
  if ((rc = ip_cmd(p->ns_a, "link", "set", "lo", "up", NULL)) < 0 ||
      (rc = ip_cmd(p->ns_b, "link", "set", "lo", "up", NULL)) < 0 ||
      (rc = ip_cmd(p->ns_a, "addr", "add", a4, "dev", p->if_a, NULL)) < 0 ||
      (rc = ip_cmd(p->ns_b, "addr", "add", b4, "dev", p->if_b, NULL)) < 0)
    goto fail;
  if (have6 &&
      ((rc = ip_cmd(p->ns_a, "-6", "addr", "add", a6, "dev", p->if_a, "nodad", NULL)) < 0 ||
       (rc = ip_cmd(p->ns_b, "-6", "addr", "add", b6, "dev", p->if_b, "nodad", NULL)) < 0))
    goto fail;

  if (static_neigh) {
    char ma[18], mb[18];
    snprintf(ma, sizeof ma, "%02x:%02x:%02x:%02x:%02x:%02x", p->mac_a[0], p->mac_a[1], p->mac_a[2],
             p->mac_a[3], p->mac_a[4], p->mac_a[5]);
    snprintf(mb, sizeof mb, "%02x:%02x:%02x:%02x:%02x:%02x", p->mac_b[0], p->mac_b[1], p->mac_b[2],
             p->mac_b[3], p->mac_b[4], p->mac_b[5]);
    if ((rc = ip_cmd(p->ns_a, "neigh", "replace", p->ip_b, "lladdr", mb, "dev", p->if_a, "nud",
                     "permanent", NULL)) < 0 ||
        (rc = ip_cmd(p->ns_b, "neigh", "replace", p->ip_a, "lladdr", ma, "dev", p->if_b, "nud",
                     "permanent", NULL)) < 0 ||
        (have6 && (rc = ip_cmd(p->ns_a, "-6", "neigh", "replace", p->ip6_b, "lladdr", mb, "dev",
                               p->if_a, "nud", "permanent", NULL)) < 0) ||
        (have6 && (rc = ip_cmd(p->ns_b, "-6", "neigh", "replace", p->ip6_a, "lladdr", ma, "dev",
                               p->if_b, "nud", "permanent", NULL)) < 0))
      goto fail;
  }

  if ((rc = ip_cmd(p->ns_a, "link", "set", p->if_a, "up", NULL)) < 0 ||
      (rc = ip_cmd(p->ns_b, "link", "set", p->if_b, "up", NULL)) < 0)
    goto fail;
  if ((rc = in_ns(p->fd_a, side_wait, &sa)) < 0) goto fail;
  if ((rc = in_ns(p->fd_b, side_wait, &sb)) < 0) goto fail;
  return 0;

fail:
  netns_pair_destroy(p);
  return rc;
}

int netns_pair_destroy(netns_pair *p) {
  if (!p) return -EINVAL;
  /* Only async-signal-safe calls from here on (close, umount2, unlink). */
  if (p->fd_a >= 0) close(p->fd_a);
  if (p->fd_b >= 0) close(p->fd_b);
  p->fd_a = p->fd_b = -1;
  if (!p->created) return 0;
  p->created = 0;
  int ra = ns_delete(p->ns_a), rb = ns_delete(p->ns_b);
  if (ra < 0) return ra;
  if (rb < 0) return rb;
  return 0;
}

int netns_exec(const char *ns, const char *cmd) {
  if (!ns || !cmd || !ns[0]) return -EINVAL;
  const char *ip = ip_find();
  if (!ip) return -ENOENT;
  char *argv[] = {(char *)ip, (char *)"netns", (char *)"exec", (char *)ns, (char *)"sh", (char *)"-c",
                  (char *)cmd, NULL};
  return run_argv(argv, 0);
}

int netns_set_rps(const netns_pair *p, int side_b, const char *cpus_mask) {
  if (!p || !cpus_mask || !cpus_mask[0] || strlen(cpus_mask) > 64) return -EINVAL;
  /* The mask goes into a shell command: allow only what a CPU mask can contain. */
  for (const char *c = cpus_mask; *c; c++) {
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || (*c >= 'A' && *c <= 'F') ||
          *c == ','))
      return -EINVAL;
  }
  /* /sys shows the namespace it was mounted in; `ip netns exec` remounts it for the target. */
  char cmd[192];
  snprintf(cmd, sizeof cmd, "echo %s > /sys/class/net/%s/queues/rx-0/rps_cpus", cpus_mask,
           side_b ? p->if_b : p->if_a);
  int rc = netns_exec(side_b ? p->ns_b : p->ns_a, cmd);
  if (rc < 0) return rc;
  return rc == 0 ? 0 : -EIO;
}

int netns_tx_checksum_offload_off(const char *ifname) {
  if (!ifname || strlen(ifname) >= IFNAMSIZ) return -EINVAL;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct ethtool_value ev = {.cmd = ETHTOOL_STXCSUM, .data = 0};
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strlen(ifname));
  ifr.ifr_data = (void *)&ev;
  int rc = ioctl(s, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
  close(s);
  return rc;
}
