/* bl_dns: the baseline for examples/dns_responder: the same zone and the same answers
 * (examples/dns_zone.h), written the way a careful user writes a UDP server by hand: one
 * non-blocking socket, epoll, recvmmsg and sendmmsg in batches of 64, answers written over the
 * queries in place.  bench/dns.sh runs dnsperf against it and against dns_responder.
 *
 *   bl_dns ADDR PORT [SECONDS]      (prints "ready" once it serves; SIGINT/SIGTERM end it)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns_zone.h"

#define BATCH 64
#define BUF 2048

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bl_dns ADDR PORT [SECONDS]\n");
    return 2;
  }
  double secs = argc > 3 ? atof(argv[3]) : 0;
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } a;
  memset(&a, 0, sizeof a);
  socklen_t alen;
  int family = strchr(argv[1], ':') ? AF_INET6 : AF_INET;
  if (family == AF_INET6) {
    a.in6.sin6_family = AF_INET6;
    a.in6.sin6_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET6, argv[1], &a.in6.sin6_addr) != 1) return 2;
    alen = sizeof a.in6;
  } else {
    a.in.sin_family = AF_INET;
    a.in.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &a.in.sin_addr) != 1) return 2;
    alen = sizeof a.in;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, alen) < 0) {
    perror("bl_dns: bind");
    return 1;
  }
  static dns_zone zone;
  dns_zone_example(&zone, "example.test");
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data = {.fd = fd}};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  static uint8_t bufs[BATCH][BUF];
  static uint8_t out[BATCH][DNS_MAX_UDP];
  struct sockaddr_storage names[BATCH];
  struct iovec riov[BATCH], siov[BATCH];
  struct mmsghdr rmsg[BATCH], smsg[BATCH];
  dns_counters cnt;
  memset(&cnt, 0, sizeof cnt);
  printf("bl_dns: ready on %s port %s\n", argv[1], argv[2]);
  fflush(stdout);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (!stop) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (secs > 0 && (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 > secs) break;
    struct epoll_event e;
    if (epoll_wait(ep, &e, 1, 200) <= 0) continue;
    for (;;) {
      for (int i = 0; i < BATCH; i++) {
        riov[i].iov_base = bufs[i];
        riov[i].iov_len = BUF;
        memset(&rmsg[i].msg_hdr, 0, sizeof rmsg[i].msg_hdr);
        rmsg[i].msg_hdr.msg_name = &names[i];
        rmsg[i].msg_hdr.msg_namelen = sizeof names[i];
        rmsg[i].msg_hdr.msg_iov = &riov[i];
        rmsg[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0) break;
      int k = 0;
      for (int i = 0; i < n; i++) {
        size_t len = dns_answer(&zone, bufs[i], rmsg[i].msg_len, out[k], sizeof out[k], &cnt);
        if (!len) continue;
        siov[k].iov_base = out[k];
        siov[k].iov_len = len;
        memset(&smsg[k].msg_hdr, 0, sizeof smsg[k].msg_hdr);
        smsg[k].msg_hdr.msg_name = &names[i];
        smsg[k].msg_hdr.msg_namelen = rmsg[i].msg_hdr.msg_namelen;
        smsg[k].msg_hdr.msg_iov = &siov[k];
        smsg[k].msg_hdr.msg_iovlen = 1;
        k++;
      }
      for (int off = 0; off < k;) {
        int s = sendmmsg(fd, smsg + off, (unsigned)(k - off), 0);
        if (s <= 0) {
          if (s < 0 && errno == EINTR) continue;
          break; /* a full send buffer drops the rest, as a plain server would */
        }
        off += s;
      }
      if (n < BATCH) break;
    }
  }
  printf("bl_dns: queries %llu, answered %llu, nxdomain %llu\n", (unsigned long long)cnt.queries,
         (unsigned long long)cnt.answered, (unsigned long long)cnt.nxdomain);
  close(ep);
  close(fd);
  return 0;
}
