/* TCP echo served by lwIP on a mior port.
 *
 *   tcp_echo_lwip [--backend B] IFNAME ADDRESS [PORT] [SECONDS]
 *
 * lwIP takes ADDRESS (an IPv4 address the kernel on IFNAME does NOT have) on packet://IFNAME,
 * answers ARP and ping for it, and echoes TCP on PORT (default 7).  B is uring, sockets or auto
 * (the default); it prints the backend and the features it chose.  Try it in a namespace pair:
 *
 *   ip netns add a; ip netns add b
 *   ip link add va netns a type veth peer name vb netns b
 *   ip -n a addr add 10.99.0.1/24 dev va; ip -n a link set va up; ip -n b link set vb up
 *   ip netns exec a ethtool -K va tx off     (real checksums in the kernel's veth frames:
 *                                             see docs/INTEGRATION.md)
 *   ip netns exec b ./tcp_echo_lwip vb 10.99.0.3 7 &
 *   ip netns exec a ping -c 3 10.99.0.3
 *   echo hello | ip netns exec a nc -N 10.99.0.3 7
 *
 * Needs root (AF_PACKET).  The work is in stack/lwip: mior_lwip_start wires the port to an lwIP
 * netif; mior_lwip_echo_listen is a raw-API echo service.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "mior_lwip.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
  mior_options po;
  mior_options_init(&po);
  if (argc > 2 && strcmp(argv[1], "--backend") == 0) {
    if (mior_backend_parse(argv[2], &po.backend) < 0) {
      fprintf(stderr, "%s\n", mior_last_error());
      return 2;
    }
    argv[2] = argv[0];
    argv += 2;
    argc -= 2;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: %s [--backend uring|sockets|auto] IFNAME ADDRESS [PORT] [SECONDS]\n",
            argv[0]);
    return 2;
  }
  char endpoint[64];
  snprintf(endpoint, sizeof endpoint, "packet://%s", argv[1]);
  int port = argc > 3 ? atoi(argv[3]) : 7;
  int seconds = argc > 4 ? atoi(argv[4]) : 0;

  /* lwIP picks its first local TCP and UDP ports with rand() as it starts, and the adapter
   * leaves the process's rand() to the application (mior_lwip.h): seed it first.  This echo
   * server only accepts, so it would work unseeded; a program that connects out would not want
   * the same ports on every run. */
  unsigned seed;
  if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  srand(seed);

  mior_lwip_options o;
  mior_lwip_options_init(&o);
  o.endpoint = endpoint;
  o.ip = argv[2];
  o.port = &po;
  o.netif_default = 1;
  mior_lwip *l;
  int rc = mior_lwip_start(&l, &o);
  if (rc < 0) {
    fprintf(stderr, "mior_lwip_start(%s): %s (%s)\n", endpoint, mior_strerror(rc), mior_last_error());
    return 1;
  }
  rc = mior_lwip_echo_listen((uint16_t)port);
  if (rc < 0) {
    fprintf(stderr, "echo listen on %d: %s\n", port, mior_strerror(rc));
    mior_lwip_stop(l);
    return 1;
  }
  mior_port_stats ps;
  char feats[256] = "";
  mior_lwip_port_stats(l, &ps);
  mior_features_format(ps.features, feats, sizeof feats);
  printf("lwIP %s on %s, backend %s [%s]: TCP echo on port %d%s\n", argv[2], endpoint,
         mior_backend_name(ps.backend), feats, port, seconds ? "" : " (Ctrl-C stops)");
  fflush(stdout);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  time_t end = seconds > 0 ? time(NULL) + seconds : 0;
  while (!stop && (!end || time(NULL) < end)) usleep(100000);

  mior_lwip_service_stats ss;
  mior_lwip_service_stats_get(&ss);
  mior_lwip_stats st;
  mior_lwip_stats_get(l, &st);
  printf("connections %llu, bytes echoed %llu, frames in %llu (zero-copy %llu), out %llu\n",
         (unsigned long long)ss.accepted, (unsigned long long)ss.bytes_echoed,
         (unsigned long long)st.rx_frames, (unsigned long long)st.rx_zero_copy,
         (unsigned long long)st.tx_frames);
  /* Connections still open hold received slots: stop reports -EBUSY then, and frees nothing. */
  rc = mior_lwip_stop(l);
  if (rc < 0) fprintf(stderr, "mior_lwip_stop: %s\n", mior_strerror(rc));
  return rc < 0 ? 1 : 0;
}
