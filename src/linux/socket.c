/* Socket setup for the three kinds: udp, ip (raw IP) and packet (AF_PACKET). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <linux/if_packet.h>
#include <linux/sock_diag.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/internal.h"
#include "common/socket.h"
#include "linux/rx_meta.h"

#ifndef IPV6_HDRINCL
#  define IPV6_HDRINCL 36 /* Linux 4.5 */
#endif
#ifndef PACKET_IGNORE_OUTGOING
#  define PACKET_IGNORE_OUTGOING 23 /* Linux 4.20 */
#endif
#ifndef PACKET_FANOUT_FLAG_UNIQUEID
#  define PACKET_FANOUT_FLAG_UNIQUEID 0x2000 /* Linux 4.20 */
#endif

#define MIOR_DEFAULT_SOCKBUF (4 << 20)

int mior__socket_startup(void) {
  return 0; /* nothing to start on Linux */
}

int mior__socket_local_addr(const mior__sock *s, mior_addr *out) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (s->kind == MIOR__KIND_PACKET) {
    memset(out, 0, sizeof *out);
    return 0;
  }
  if (getsockname(s->fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  mior__sockaddr_to((struct sockaddr *)&ss, len, out);
  return 0;
}

uint64_t mior__socket_drops(const mior__sock *s) {
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  if (s->fd < 0 || getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 || len <= SK_MEMINFO_DROPS * sizeof mem[0])
    return 0;
  return mem[SK_MEMINFO_DROPS];
}

/* 1 if a line of /proc/net/<file> names inode ino in column `col` (counted from 0). */
static int proc_net_has(const char *file, int col, unsigned long ino) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/net/%s", file);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *save = NULL, *tok = strtok_r(line, " \t\n", &save);
    for (int i = 0; tok && i < col; i++) tok = strtok_r(NULL, " \t\n", &save);
    if (tok && strtoul(tok, NULL, 10) == ino) found = 1;
  }
  fclose(f);
  return found;
}

static void wait_released(const mior__sock *s, unsigned long ino, int timeout_ms) {
  const char *file;
  int col;
  switch (s->kind) {
  case MIOR__KIND_UDP: file = s->family == AF_INET6 ? "udp6" : "udp"; col = 9; break;
  case MIOR__KIND_IP: file = s->family == AF_INET6 ? "raw6" : "raw"; col = 9; break;
  default: file = "packet"; col = 8; break;
  }
  struct timespec pause = {0, 1000000};
  for (int waited = 0; waited < timeout_ms && proc_net_has(file, col, ino); waited++)
    nanosleep(&pause, NULL);
}

void mior__socket_close(mior__sock *s, int wait_release) {
  if (s->fd < 0) return;
  struct stat st;
  if (!wait_release || fstat(s->fd, &st) < 0) st.st_ino = 0;
  close(s->fd);
  s->fd = -1;
  /* Another holder (an io_uring file table) releases the socket, and with it the address, only
   * when its own teardown gets to it; the promise is that the address is free when close
   * returns. */
  if (st.st_ino) wait_released(s, st.st_ino, 5000);
}

/* Large socket buffers absorb bursts between two polls.  As root, the FORCE variants go past
 * net.core.[rw]mem_max; otherwise the kernel clamps, which is fine. */
static void set_bufs(int fd, const mior_options *o) {
  int rcv = o->rcvbuf ? o->rcvbuf : MIOR_DEFAULT_SOCKBUF;
  int snd = o->sndbuf ? o->sndbuf : MIOR_DEFAULT_SOCKBUF;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
}

static int fail_errno(int fd, int err, const char *what, const char *detail) {
  if (fd >= 0) close(fd);
  if (err == EPERM || err == EACCES)
    return mior__fail(-err, "%s: %s (%s; needs CAP_NET_RAW: run as root or `setcap cap_net_raw+ep`)",
                      what, strerror(err), detail);
  return mior__fail(-err, "%s: %s (%s)", what, strerror(err), detail);
}

static int connect_peer(mior__sock *s, const mior__io_cfg *cfg) {
  if (!cfg->peer) return 0;
  int fam = cfg->peer->family == MIOR_AF_INET6 ? AF_INET6 : AF_INET;
  if (fam != s->family) {
    close(s->fd);
    return mior__fail(-EINVAL, "peer is IPv%d but the endpoint is IPv%d", fam == AF_INET6 ? 6 : 4,
                      s->family == AF_INET6 ? 6 : 4);
  }
  mior__sockaddr ss;
  socklen_t len = mior__sockaddr_from(cfg->peer, &ss);
  if (connect(s->fd, &ss.sa, len) < 0) return fail_errno(s->fd, errno, "connect", "peer");
  s->connected = 1;
  return 0;
}

/* UDP GRO (Linux 5.0+): the kernel may hand one receive a buffer of several datagrams of one
 * size, with the size in a UDP_GRO control message.  Only where a slot can hold the largest such
 * buffer (64 KiB): the kernel truncates one that does not fit, losing datagrams.  A kernel or a
 * filter (seccomp) that refuses it leaves plain receives, counted in offload_refused. */
static void set_gro(mior__sock *s, const mior__io_cfg *cfg) {
  const mior_options *o = cfg->opts;
  s->gro = 0;
  s->offload_refused = 0;
  if ((o->flags & MIOR_OPT_NO_UDP_GRO) || o->buf_size < MIOR__GRO_BUF_SIZE) return;
  int one = 1;
  if (setsockopt(s->fd, IPPROTO_UDP, UDP_GRO, &one, sizeof one) == 0) {
    s->gro = 1;
    return;
  }
  s->offload_refused = 1;
  if (cfg->offload_reason)
    snprintf(cfg->offload_reason, MIOR__REASON_LEN, "GRO: setsockopt(UDP_GRO) refused: %s", strerror(errno));
}

int mior__socket_gro_supported(char *why, size_t len) {
  (void)why;
  (void)len;
  return 1;
}

static int open_udp(mior__sock *s, const mior__io_cfg *cfg) {
  const mior__endpoint *ep = cfg->ep;
  s->family = ep->addr.family == MIOR_AF_INET6 ? AF_INET6 : AF_INET;
  s->fd = socket(s->family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (s->fd < 0) return fail_errno(-1, errno, "socket(udp)", ep->addr.family == MIOR_AF_INET6 ? "IPv6" : "IPv4");
  int one = 1;
  if (cfg->queues > 1 && setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    return fail_errno(s->fd, errno, "setsockopt(SO_REUSEPORT)", "needed for queues > 1");
  set_bufs(s->fd, cfg->opts);
  set_gro(s, cfg);
  mior_addr local = ep->addr;
  if (cfg->queue > 0) local.port = cfg->bound_port;
  mior__sockaddr ss;
  socklen_t len = mior__sockaddr_from(&local, &ss);
  if (bind(s->fd, &ss.sa, len) < 0) {
    char text[64] = "";
    mior_addr_format(&local, text, sizeof text);
    return fail_errno(s->fd, errno, "bind", text);
  }
  int rc = mior__meta_sockopts(s->fd, s->family, cfg->opts->flags & MIOR__RX_META_OPTS);
  if (rc < 0) {
    close(s->fd);
    s->fd = -1;
    return rc;
  }
  return connect_peer(s, cfg);
}

static int open_ip(mior__sock *s, const mior__io_cfg *cfg) {
  const mior__endpoint *ep = cfg->ep;
  s->family = ep->addr.family == MIOR_AF_INET6 ? AF_INET6 : AF_INET;
  s->fd = socket(s->family, SOCK_RAW | SOCK_CLOEXEC, ep->ip_proto);
  if (s->fd < 0) return fail_errno(-1, errno, "socket(SOCK_RAW)", "ip:// endpoint");
  int one = 1;
  int rc = s->family == AF_INET ? setsockopt(s->fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one)
                                : setsockopt(s->fd, IPPROTO_IPV6, IPV6_HDRINCL, &one, sizeof one);
  if (rc < 0) return fail_errno(s->fd, errno, "setsockopt(HDRINCL)", "ip:// endpoint");
  set_bufs(s->fd, cfg->opts);
  mior__sockaddr ss;
  socklen_t len = mior__sockaddr_from(&ep->addr, &ss);
  if (bind(s->fd, &ss.sa, len) < 0) return fail_errno(s->fd, errno, "bind", "ip:// address");
  return connect_peer(s, cfg);
}

/* The receiving ports of one transport share a fanout group, so the kernel spreads the link's
 * frames over them by flow hash.  Group ids are 16 bits, one space per network namespace shared
 * by every process in it: an id we chose ourselves could name another program's group, and the
 * kernel would then put our port into that group (its frames split with ours) or, for a group of
 * another type, refuse it.  So queue 0 has the kernel make a group under an id no group uses
 * (PACKET_FANOUT_FLAG_UNIQUEID), reads the id back and reports it through cfg->group_id, and the
 * later queues join that id.  There is no fallback to an id of our own on a kernel without the
 * flag: that would bring the collision back. */
static int join_fanout(mior__sock *s, const mior__io_cfg *cfg) {
  if (cfg->queue > 0) {
    int arg = *cfg->group_id | (PACKET_FANOUT_HASH << 16);
    if (setsockopt(s->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0)
      return fail_errno(s->fd, errno, "setsockopt(PACKET_FANOUT)", "joining queue 0's fanout group");
    return 0;
  }
  int arg = (PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
  if (setsockopt(s->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0) {
    int err = errno;
    if (err != EINVAL) return fail_errno(s->fd, err, "setsockopt(PACKET_FANOUT)", "needed for queues > 1");
    close(s->fd);
    return mior__fail(-EINVAL, "setsockopt(PACKET_FANOUT, PACKET_FANOUT_FLAG_UNIQUEID): %s (queues > 1 "
                      "on packet://%s need a fanout group whose id the kernel picks, which takes "
                      "Linux 4.20+)", strerror(err), cfg->ep->ifname);
  }
  int val = 0;
  socklen_t len = sizeof val;
  if (getsockopt(s->fd, SOL_PACKET, PACKET_FANOUT, &val, &len) < 0)
    return fail_errno(s->fd, errno, "getsockopt(PACKET_FANOUT)", "the id of the new fanout group");
  *cfg->group_id = (uint16_t)(val & 0xffff);
  return 0;
}

static int open_packet(mior__sock *s, const mior__io_cfg *cfg) {
  const mior__endpoint *ep = cfg->ep;
  s->family = AF_PACKET;
  unsigned ifindex = if_nametoindex(ep->ifname);
  if (ifindex == 0)
    return mior__fail(-ENODEV, "packet://%s: no such interface in this network namespace", ep->ifname);
  /* Protocol 0 first: the socket receives nothing until bound to its one interface. */
  s->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (s->fd < 0) return fail_errno(-1, errno, "socket(AF_PACKET)", "packet:// endpoint");
  /* A transmit-only port stays at protocol 0: bound to the interface for sending, but never a tap
   * on it, so the kernel neither queues the link's traffic to it nor offers it each outgoing frame
   * (dev_queue_xmit_nit), and it takes no part in fanout. */
  int rx = !(cfg->opts->flags & MIOR_OPT_NO_RX);
  int one = 1;
  /* Without this a port that sends and receives sees each of its own frames come back. */
  if (rx) setsockopt(s->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  set_bufs(s->fd, cfg->opts);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = rx ? htons(ETH_P_ALL) : 0;
  sll.sll_ifindex = (int)ifindex;
  if (bind(s->fd, (struct sockaddr *)&sll, sizeof sll) < 0) return fail_errno(s->fd, errno, "bind", ep->ifname);
  if (rx && cfg->queues > 1) {
    int rc = join_fanout(s, cfg);
    if (rc < 0) return rc;
  }
  s->connected = 1;
  return 0;
}

int mior__socket_open(mior__sock *s, const mior__io_cfg *cfg) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->kind = cfg->ep->kind;
  switch (cfg->ep->kind) {
  case MIOR__KIND_UDP: return open_udp(s, cfg);
  case MIOR__KIND_IP: return open_ip(s, cfg);
  case MIOR__KIND_PACKET: return open_packet(s, cfg);
  }
  return mior__fail(-EINVAL, "unknown socket kind");
}

uint32_t mior__socket_gso_max_seg(const mior__sock *s, uint32_t max_bytes) {
  int v6 = s->family == AF_INET6, mtu = 0;
  socklen_t ml = sizeof mtu;
  uint32_t hdr = (v6 ? 40u : 20u) + 8u, seg = 1500u - hdr;
  if (s->connected && getsockopt(s->fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu, &ml) == 0 &&
      (uint32_t)mtu > hdr)
    seg = (uint32_t)mtu - hdr;
  return seg > max_bytes ? max_bytes : seg;
}
