/* Per-packet metadata on Linux, for both backends (sockets and io_uring): the socket options
 * that ask for it, the one parser of a receive's control messages (metadata and UDP GRO's
 * segment size), and the control
 * messages of a send that sets its source address or ECN codepoint.  See mior_pkt in pkt.h. */
#include <errno.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <time.h>

#include "common/internal.h"
#include "linux/rx_meta.h"

/* Hardware stamps need SO_TIMESTAMPING, which carries the software stamp too (ts[0]), so one
 * option serves both; it only asks for stamps the device makes: turning the device's stamping on
 * (SIOCSHWTSTAMP) changes it for every socket and PTP daemon on it, so that is left to the
 * administrator.  Software only, SO_TIMESTAMPNS is the smaller message. */
static int timestamp_sockopt(int fd, uint32_t opts) {
  if (opts & MIOR_OPT_RX_TIMESTAMP_HW) {
    int v = SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE | SOF_TIMESTAMPING_RX_SOFTWARE |
            SOF_TIMESTAMPING_SOFTWARE;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof v) < 0)
      return mior__fail(-errno, "setsockopt(SO_TIMESTAMPING): %s", strerror(errno));
  } else if (opts & MIOR_OPT_RX_TIMESTAMP) {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0)
      return mior__fail(-errno, "setsockopt(SO_TIMESTAMPNS): %s", strerror(errno));
  }
  return 0;
}

int mior__meta_sockopts(int fd, int family, uint32_t opts) {
  int one = 1;
  /* A v6 socket also receives IPv4 (mapped) datagrams, whose metadata come as IPv4 messages. */
  if (opts & MIOR_OPT_RX_PKTINFO) {
    if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0)
      return mior__fail(-errno, "setsockopt(IPV6_RECVPKTINFO): %s", strerror(errno));
    if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0 && family == AF_INET)
      return mior__fail(-errno, "setsockopt(IP_PKTINFO): %s", strerror(errno));
  }
  if (opts & MIOR_OPT_RX_ECN) {
    if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one) < 0)
      return mior__fail(-errno, "setsockopt(IPV6_RECVTCLASS): %s", strerror(errno));
    if (setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) < 0 && family == AF_INET)
      return mior__fail(-errno, "setsockopt(IP_RECVTOS): %s", strerror(errno));
  }
  return timestamp_sockopt(fd, opts);
}

static uint64_t timespec_ns(const struct timespec *ts) {
  return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* SCM_TIMESTAMPING: ts[0] the software stamp, ts[2] the device's raw hardware stamp; a stamp the
 * kernel did not make is zero.  The hardware one wins when there is one. */
static void stamping(mior__cqe *c, const void *d) {
  struct timespec ts[3];
  memcpy(ts, d, sizeof ts);
  uint64_t hw = timespec_ns(&ts[2]), sw = timespec_ns(&ts[0]);
  if (hw) {
    c->meta.time_ns = hw;
    c->flags |= MIOR_PKT_TIMESTAMP | MIOR_PKT_TIMESTAMP_HW;
  } else if (sw) {
    c->meta.time_ns = sw;
    c->flags |= MIOR_PKT_TIMESTAMP;
  }
}

void mior__rx_cmsg_meta(const struct msghdr *msg, mior__cqe *c) {
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
    const void *d = CMSG_DATA(cm);
    if (cm->cmsg_len < CMSG_LEN(0)) break; /* a cleared buffer: nothing (more) written */
    size_t dlen = cm->cmsg_len - CMSG_LEN(0);
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO && dlen >= sizeof(int)) {
      int seg;
      memcpy(&seg, d, sizeof seg);
      if (seg > 0) c->seg = (uint32_t)seg;
    } else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO && dlen >= sizeof(struct in_pktinfo)) {
      struct in_pktinfo pi;
      memcpy(&pi, d, sizeof pi);
      /* the header's destination, not the route's source */
      mior__cqe_local(c, MIOR_AF_INET, &pi.ipi_addr, 0);
    } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
               dlen >= sizeof(struct in6_pktinfo)) {
      struct in6_pktinfo pi;
      memcpy(&pi, d, sizeof pi);
      mior__cqe_local(c, MIOR_AF_INET6, &pi.ipi6_addr, (uint32_t)pi.ipi6_ifindex);
    } else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TOS && dlen >= 1) {
      c->meta.ecn = *(const uint8_t *)d & 3u;
      c->flags |= MIOR_PKT_ECN;
    } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_TCLASS && dlen >= sizeof(int)) {
      int tc;
      memcpy(&tc, d, sizeof tc);
      c->meta.ecn = (uint8_t)(tc & 3);
      c->flags |= MIOR_PKT_ECN;
    } else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
               dlen >= sizeof(struct timespec)) {
      struct timespec ts;
      memcpy(&ts, d, sizeof ts);
      c->meta.time_ns = timespec_ns(&ts);
      c->flags |= MIOR_PKT_TIMESTAMP;
    } else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPING &&
               dlen >= 3 * sizeof(struct timespec)) {
      stamping(c, d);
    }
  }
}

socklen_t mior__tx_cmsg_meta(void *buf, size_t cap, int family, uint32_t flags, const mior__pkt_meta *m) {
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  memset(buf, 0, cap);
  msg.msg_control = buf;
  msg.msg_controllen = cap;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  size_t used = 0;
  if ((flags & MIOR_PKT_LOCAL) && m->local.family != MIOR_AF_UNSPEC) {
    if (family == AF_INET6) {
      struct in6_pktinfo pi;
      memset(&pi, 0, sizeof pi);
      memcpy(&pi.ipi6_addr, m->local.addr, 16);
      pi.ipi6_ifindex = m->local.scope_id;
      cm->cmsg_level = IPPROTO_IPV6;
      cm->cmsg_type = IPV6_PKTINFO;
      cm->cmsg_len = CMSG_LEN(sizeof pi);
      memcpy(CMSG_DATA(cm), &pi, sizeof pi);
      used += CMSG_SPACE(sizeof pi);
    } else {
      struct in_pktinfo pi;
      memset(&pi, 0, sizeof pi);
      memcpy(&pi.ipi_spec_dst, m->local.addr, 4);
      cm->cmsg_level = IPPROTO_IP;
      cm->cmsg_type = IP_PKTINFO;
      cm->cmsg_len = CMSG_LEN(sizeof pi);
      memcpy(CMSG_DATA(cm), &pi, sizeof pi);
      used += CMSG_SPACE(sizeof pi);
    }
    msg.msg_controllen = used;
    cm = (struct cmsghdr *)((char *)buf + used);
  }
  if (flags & MIOR_PKT_ECN) {
    int v = m->ecn;
    cm->cmsg_level = family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
    cm->cmsg_type = family == AF_INET6 ? IPV6_TCLASS : IP_TOS;
    cm->cmsg_len = CMSG_LEN(sizeof v);
    memcpy(CMSG_DATA(cm), &v, sizeof v);
    used += CMSG_SPACE(sizeof v);
  }
  return (socklen_t)used;
}
