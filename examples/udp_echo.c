/* udp_echo: send every datagram back to its sender.
 *
 *   udp_echo [--backend B] [ENDPOINT [SECONDS]]     e.g.  udp_echo udp://0.0.0.0:9000 30
 *
 * B is uring, sockets, ioring or auto (the default: the best available); it prints the backend
 * and the features it chose.  Host names work in the endpoint (udp://localhost:9000).
 * Runs one receive thread per port (mior_transport_start) until Ctrl-C or for SECONDS, then
 * prints the statistics.  Echoes are written from inside consume and sent in one batch per
 * receive batch, from flush.  Try it with:  nc -u 127.0.0.1 9000
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mior/mior.h>

#ifdef _WIN32
#include <windows.h>
static void sleep_ms(int ms) { Sleep((DWORD)ms); }
#else
#include <time.h>
static void sleep_ms(int ms) { nanosleep(&(struct timespec){0, ms * 1000000L}, NULL); }
#endif

static volatile sig_atomic_t stop;
static void on_sigint(int sig) { (void)sig; stop = 1; }

/* Called on the port's thread for each datagram; pkt is only valid during the call.  The echo goes
 * out of the very slot it arrived in (no copy): a copy of *pkt is handed to mior_tx_send, and from
 * then on the slot is the port's, so what consume returns no longer matters for it. */
static int echo_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  mior_pkt out = *pkt;
  (void)ctx;
  mior_tx_send(port, &out, pkt->len, &pkt->src); /* an error means not sent: the echo is dropped */
  return MIOR_DONE;
}

/* End of a receive batch: push the echoes out now rather than waiting for a full batch. */
static void echo_flush(void *ctx, mior_port *port) { (void)ctx; mior_tx_flush(port); }

int main(int argc, char **argv) {
  mior_options opts;
  mior_options_init(&opts);
  /* --backend uring|sockets|ioring|auto picks the backend (default auto: the best available). */
  int a = 1;
  if (argc > 2 && strcmp(argv[1], "--backend") == 0) {
    if (mior_backend_parse(argv[2], &opts.backend) < 0) {
      fprintf(stderr, "%s\n", mior_last_error());
      return 2;
    }
    a = 3;
  }
  const char *endpoint = argc > a ? argv[a] : "udp://127.0.0.1:9000";
  int seconds = argc > a + 1 ? atoi(argv[a + 1]) : 0; /* 0: until Ctrl-C */
  mior_receiver recv = {echo_consume, echo_flush, NULL};
  mior_transport *t;
  int rc = mior_transport_open(&t, endpoint, &opts, &recv);
  if (rc < 0) {
    fprintf(stderr, "open %s: %s (%s)\n", endpoint, mior_strerror(rc), mior_last_error());
    return 1;
  }
  mior_addr local;
  char text[64];
  mior_port_local_addr(mior_transport_port(t, 0), &local);
  mior_addr_format(&local, text, sizeof text);
  signal(SIGINT, on_sigint);
  if ((rc = mior_transport_start(t)) < 0) {
    fprintf(stderr, "start: %s (%s)\n", mior_strerror(rc), mior_last_error());
    mior_transport_close(t);
    return 1;
  }
  mior_port_stats fs;
  char feats[256] = "";
  mior_transport_stats_get(t, &fs);
  mior_features_format(fs.features, feats, sizeof feats);
  printf("echoing on %s, backend %s [%s]\n", text, mior_backend_name(fs.backend), feats);
  fflush(stdout);
  for (int ms = 0; !stop && (seconds <= 0 || ms < seconds * 1000); ms += 100) sleep_ms(100);

  mior_transport_stop(t);
  mior_port_stats st;
  mior_transport_stats_get(t, &st);
  printf("backend %s: rx %llu packets / %llu bytes, tx %llu packets / %llu bytes, "
         "tx backpressure %llu, dropped by the kernel (socket buffer full) %llu\n",
         mior_backend_name(st.backend), (unsigned long long)st.rx_packets,
         (unsigned long long)st.rx_bytes, (unsigned long long)st.tx_packets,
         (unsigned long long)st.tx_bytes, (unsigned long long)st.tx_backpressure,
         (unsigned long long)st.rx_drop_kernel);
  return mior_transport_close(t) == 0 ? 0 : 1;
}
