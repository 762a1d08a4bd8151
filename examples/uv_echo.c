/* uv_echo: a mior port inside libuv's event loop.
 *
 *   uv_echo udp://ADDR:PORT [--backend B] [--seconds N]
 *
 * The port's event handle (mior_port_event_handle: a file descriptor on Linux) goes into a
 * uv_poll_t watching UV_READABLE.  Each time libuv says it is readable the callback takes what
 * is ready with mior_rx_burst, sends each datagram back to its sender from the slot it arrived
 * in (no copy), and flushes.  One burst per callback is enough: the handle stays readable while
 * work is left, so libuv calls again.  A uv_timer ends the run after N seconds, and SIGINT ends
 * it at once; the port is then drained and closed.  Try: nc -u 127.0.0.1 PORT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <mior/mior.h>

typedef struct app {
  mior_port *port;
  uv_poll_t poll;
  uv_timer_t timer;
  uv_signal_t sig;
  unsigned long long echoed;
} app;

static void on_readable(uv_poll_t *h, int status, int events) {
  app *a = h->data;
  if (status < 0 || !(events & UV_READABLE)) return;
  mior_pkt pkts[64];
  int n = mior_rx_burst(a->port, pkts, 64);
  if (n < 0) {
    fprintf(stderr, "uv_echo: rx_burst: %s (%s)\n", mior_strerror(n), mior_last_error());
    return;
  }
  for (int i = 0; i < n; i++) {
    mior_addr to = pkts[i].src;
    if (mior_tx_send(a->port, &pkts[i], pkts[i].len, &to) == 0) a->echoed++;
  }
  if (n) mior_tx_flush(a->port);
}

static void stop_all(app *a) {
  uv_poll_stop(&a->poll);
  uv_timer_stop(&a->timer);
  uv_signal_stop(&a->sig);
  uv_close((uv_handle_t *)&a->poll, NULL);
  uv_close((uv_handle_t *)&a->timer, NULL);
  uv_close((uv_handle_t *)&a->sig, NULL);
}

static void on_timer(uv_timer_t *t) { stop_all(t->data); }
static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  stop_all(s->data);
}

int main(int argc, char **argv) {
  const char *ep = NULL;
  double seconds = 0;
  mior_options o;
  mior_options_init(&o);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
      if (mior_backend_parse(argv[++i], &o.backend) < 0) return 2;
    } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = atof(argv[++i]);
    } else if (!ep) {
      ep = argv[i];
    } else {
      ep = NULL;
      break;
    }
  }
  if (!ep) {
    fprintf(stderr, "usage: uv_echo udp://ADDR:PORT [--backend B] [--seconds N]\n");
    return 2;
  }
  mior_transport *t;
  int rc = mior_transport_open(&t, ep, &o, NULL);
  if (rc < 0) {
    fprintf(stderr, "uv_echo: %s: %s (%s)\n", ep, mior_strerror(rc), mior_last_error());
    return 1;
  }
  app a;
  memset(&a, 0, sizeof a);
  a.port = mior_transport_port(t, 0);
  mior_handle h;
  rc = mior_port_event_handle(a.port, &h);
  if (rc < 0) {
    fprintf(stderr, "uv_echo: event handle: %s (%s)\n", mior_strerror(rc), mior_last_error());
    mior_transport_close(t);
    return 1;
  }
  uv_loop_t *loop = uv_default_loop();
  uv_poll_init(loop, &a.poll, (int)h);
  a.poll.data = &a;
  uv_poll_start(&a.poll, UV_READABLE, on_readable);
  uv_timer_init(loop, &a.timer);
  a.timer.data = &a;
  if (seconds > 0) uv_timer_start(&a.timer, on_timer, (uint64_t)(seconds * 1000), 0);
  uv_signal_init(loop, &a.sig);
  a.sig.data = &a;
  uv_signal_start(&a.sig, on_signal, SIGINT);
  mior_addr local;
  char text[64] = "?";
  if (mior_port_local_addr(a.port, &local) == 0) mior_addr_format(&local, text, sizeof text);
  printf("uv_echo: ready on udp://%s (%s)\n", text, mior_backend_name(mior_port_backend(a.port)));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  /* Sends still in flight come back as the port is drained; then close. */
  for (int k = 0; k < 100; k++) {
    mior_port_stats st;
    mior_port_stats_get(a.port, &st);
    if (st.tx_in_flight == 0) break;
    mior_port_poll(a.port, 0, 1000);
  }
  rc = mior_transport_close(t);
  printf("uv_echo: echoed %llu datagrams\n", a.echoed);
  return rc < 0 ? 1 : 0;
}
