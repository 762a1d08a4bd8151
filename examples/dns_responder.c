/* dns_responder: an authoritative DNS server for one small zone, on mior, driven from an epoll
 * loop through each port's event handle and pull receive.
 *
 *   dns_responder udp://ADDR:PORT [udp://ADDR:PORT ...] [options]
 *
 *     --backend B     uring, sockets or auto (default)
 *     --zone NAME     the zone's origin (default example.test); see examples/dns_zone.h for
 *                     its records (A, AAAA, TXT; "big" is too large for 512 bytes)
 *     --seconds N     stop after N seconds (default: run until SIGINT/SIGTERM)
 *     --no-pktinfo    do not ask for the arrival address (replies then leave from whatever
 *                     address the kernel picks: wrong for a server bound to 0.0.0.0 with
 *                     several addresses)
 *
 * Every endpoint is its own transport; one thread waits on all their event handles in one epoll
 * set (level-triggered), and for each port that is ready takes packets with mior_rx_burst, writes
 * each answer over its query in the same slot and sends it back with mior_tx_send to the
 * query's source.  The packet keeps the local address the query arrived on (MIOR_OPT_RX_PKTINFO),
 * so the answer leaves from that address.  Queries to drop are given back in one
 * mior_pkt_release_bulk per burst.  It prints "ready" with the bound addresses once it serves,
 * and its counters at the end.
 *
 * Try:  dns_responder udp://127.0.0.1:5353 udp://[::1]:5353 &
 *       dig @127.0.0.1 -p 5353 www.example.test A
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <mior/mior.h>

#include "dns_zone.h"

#define MAX_PORTS 8
#define BURST 64

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Answer every query of one burst; returns the packets taken. */
static int serve(mior_port *port, const dns_zone *z, dns_counters *cnt) {
  mior_pkt pkts[BURST], drop[BURST];
  uint32_t ndrop = 0;
  int n = mior_rx_burst(port, pkts, BURST);
  if (n <= 0) return n;
  for (int i = 0; i < n; i++) {
    mior_pkt *p = &pkts[i];
    uint8_t query[DNS_MAX_UDP];
    size_t qlen = p->len < sizeof query ? p->len : sizeof query;
    if (p->len > sizeof query) { /* larger than any query we take: drop */
      cnt->queries++;
      cnt->dropped++;
      drop[ndrop++] = *p;
      continue;
    }
    memcpy(query, p->data, qlen);
    size_t cap = p->cap < DNS_MAX_UDP ? p->cap : DNS_MAX_UDP;
    size_t len = dns_answer(z, query, qlen, p->data, cap, cnt);
    if (len == 0) {
      drop[ndrop++] = *p;
      continue;
    }
    /* p->flags still say MIOR_PKT_LOCAL (the arrival address): the answer leaves from it. */
    mior_addr to = p->src;
    int rc = mior_tx_send(port, p, (uint32_t)len, &to);
    if (rc < 0) fprintf(stderr, "dns_responder: send: %s (%s)\n", mior_strerror(rc), mior_last_error());
  }
  if (ndrop) mior_pkt_release_bulk(drop, ndrop);
  mior_tx_flush(port);
  return n;
}

static void usage(void) {
  fprintf(stderr, "usage: dns_responder udp://ADDR:PORT [udp://ADDR:PORT ...] [--backend B] "
                  "[--zone NAME] [--seconds N] [--no-pktinfo]\n");
}

int main(int argc, char **argv) {
  const char *eps[MAX_PORTS];
  int neps = 0, pktinfo = 1;
  double seconds = 0;
  mior_backend backend = MIOR_BACKEND_AUTO;
  const char *origin = "example.test";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
      if (mior_backend_parse(argv[++i], &backend) < 0) {
        fprintf(stderr, "dns_responder: unknown backend %s\n", argv[i]);
        return 2;
      }
    } else if (!strcmp(argv[i], "--zone") && i + 1 < argc) {
      origin = argv[++i];
    } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = atof(argv[++i]);
    } else if (!strcmp(argv[i], "--no-pktinfo")) {
      pktinfo = 0;
    } else if (!strncmp(argv[i], "udp://", 6) && neps < MAX_PORTS) {
      eps[neps++] = argv[i];
    } else {
      usage();
      return 2;
    }
  }
  if (neps == 0) {
    usage();
    return 2;
  }
  static dns_zone zone;
  dns_zone_example(&zone, origin);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  mior_transport *t[MAX_PORTS] = {0};
  mior_port *ports[MAX_PORTS];
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("epoll_create1");
    return 1;
  }
  int rc = 0;
  printf("dns_responder: zone %s, ready on", zone.origin);
  for (int i = 0; i < neps; i++) {
    mior_options o;
    mior_options_init(&o);
    o.backend = backend;
    o.buf_count = 2048;
    if (pktinfo) o.flags |= MIOR_OPT_RX_PKTINFO;
    rc = mior_transport_open(&t[i], eps[i], &o, NULL);
    if (rc < 0) {
      fprintf(stderr, "\ndns_responder: %s: %s (%s)\n", eps[i], mior_strerror(rc), mior_last_error());
      goto out;
    }
    ports[i] = mior_transport_port(t[i], 0);
    mior_handle h;
    rc = mior_port_event_handle(ports[i], &h);
    if (rc < 0) {
      fprintf(stderr, "\ndns_responder: event handle: %s (%s)\n", mior_strerror(rc), mior_last_error());
      goto out;
    }
    /* Level-triggered, which every backend's handle supports (transport.h): one burst per
     * wake-up is enough, as a work call leaves the handle readable while work is left. */
    struct epoll_event ev = {.events = EPOLLIN, .data = {.u32 = (uint32_t)i}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, (int)h, &ev) < 0) {
      perror("epoll_ctl");
      rc = -errno;
      goto out;
    }
    mior_addr a;
    char text[64] = "?";
    if (mior_port_local_addr(ports[i], &a) == 0) mior_addr_format(&a, text, sizeof text);
    mior_port_stats st;
    mior_port_stats_get(ports[i], &st);
    printf(" udp://%s (%s)", text, mior_backend_name(st.backend));
  }
  printf("\n");
  fflush(stdout);

  dns_counters cnt;
  memset(&cnt, 0, sizeof cnt);
  double end = seconds > 0 ? now_s() + seconds : 0;
  while (!stop && (end == 0 || now_s() < end)) {
    struct epoll_event evs[MAX_PORTS];
    int n = epoll_wait(ep, evs, MAX_PORTS, 200);
    if (n < 0 && errno != EINTR) {
      perror("epoll_wait");
      break;
    }
    for (int k = 0; k < n; k++) {
      int r = serve(ports[evs[k].data.u32], &zone, &cnt);
      if (r < 0) fprintf(stderr, "dns_responder: rx_burst: %s (%s)\n", mior_strerror(r), mior_last_error());
    }
  }
  printf("dns_responder: queries %llu, answered %llu, nxdomain %llu, nodata %llu, refused %llu, "
         "formerr %llu, notimp %llu, truncated %llu, dropped %llu\n",
         (unsigned long long)cnt.queries, (unsigned long long)cnt.answered,
         (unsigned long long)cnt.nxdomain, (unsigned long long)cnt.nodata,
         (unsigned long long)cnt.refused, (unsigned long long)cnt.formerr,
         (unsigned long long)cnt.notimp, (unsigned long long)cnt.truncated,
         (unsigned long long)cnt.dropped);
  unsigned long long kdrops = 0;
  for (int i = 0; i < neps; i++) {
    mior_port_stats st;
    if (mior_port_stats_get(ports[i], &st) == 0) kdrops += st.rx_drop_kernel;
  }
  printf("dns_responder: dropped by the kernel before mior read them (receive buffer full): %llu\n",
         kdrops);
out:
  for (int i = 0; i < neps; i++) {
    if (!t[i]) continue;
    /* Sends still in flight come back as the port is drained; then close. */
    for (int k = 0; k < 100; k++) {
      mior_port_stats st;
      mior_port_stats_get(ports[i], &st);
      if (st.tx_in_flight == 0) break;
      mior_port_poll(ports[i], 0, 1000);
    }
    int crc = mior_transport_close(t[i]);
    if (crc < 0) fprintf(stderr, "dns_responder: close: %s (%s)\n", mior_strerror(crc), mior_last_error());
  }
  close(ep);
  return rc < 0 ? 1 : 0;
}
