/* An iperf3 server (TCP tests, one at a time) on lwIP's raw API, so a stock iperf3 client can
 * measure lwIP on a mior port: `iperf3 -c ADDR` (into lwIP) and `iperf3 -c ADDR -R` (out of it).
 *
 * iperf3's protocol, as its iperf_api.h, iperf_server_api.c and iperf_api.c define it: the client
 * opens a control connection and sends a 37-byte cookie; the server answers with one-byte states.
 * PARAM_EXCHANGE (9): the client sends its parameters as a 4-byte big-endian length and JSON.
 * CREATE_STREAMS (10): the client opens `parallel` data connections, each starting with the same
 * cookie; streams are numbered 1, 3, 4, 5... in the order they arrive.  TEST_START (1) and
 * TEST_RUNNING (2): data flows (client to server, or server to client with "reverse").  The client
 * sends TEST_END (4) when its time is up; the server answers EXCHANGE_RESULTS (13), reads the
 * client's results (length + JSON) and sends its own: CPU use and, per stream, the bytes it
 * received or sent.  DISPLAY_RESULTS (14); the client ends with IPERF_DONE (16).  A connection
 * that arrives while a test runs and is not one of its streams gets ACCESS_DENIED (-1).
 *
 * UDP and bidirectional tests are refused (the control connection is closed).  Every callback
 * runs with lwIP's core lock held, so the test state needs no other lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mior_lwip.h"
#include "mior_lwip_apps.h"

#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"

#define COOKIE_LEN 37
#define MAX_STREAMS 16
#define CTRL_BUF 4096

enum { TEST_START = 1, TEST_RUNNING = 2, TEST_END = 4, PARAM_EXCHANGE = 9, CREATE_STREAMS = 10,
       CLIENT_TERMINATE = 12, EXCHANGE_RESULTS = 13, DISPLAY_RESULTS = 14, IPERF_DONE = 16,
       ACCESS_DENIED = -1 };

enum { ROLE_NEW, ROLE_CTRL, ROLE_STREAM };
enum { ST_IDLE, ST_PARAMS_LEN, ST_PARAMS, ST_STREAMS, ST_RUNNING, ST_RESULTS_LEN, ST_RESULTS,
       ST_DISPLAY };

typedef struct ip3_conn {
  struct tcp_pcb *pcb;
  int role;
  uint8_t cookie[COOKIE_LEN];
  uint32_t cookie_len;
  int sid;
  uint64_t bytes; /* received, or queued for sending (reverse) */
} ip3_conn;

static struct {
  ip3_conn *ctrl;
  int state;
  uint8_t cookie[COOKIE_LEN];
  uint8_t buf[CTRL_BUF];
  uint32_t have, need;
  int reverse, parallel, nstreams;
  ip3_conn *streams[MAX_STREAMS];
  uint32_t t_start, t_end; /* sys_now(), ms */
  struct rusage ru_start;
} T;

static uint8_t pattern[16384];

static void conn_detach(ip3_conn *c, int abort) {
  if (!c->pcb) return;
  struct tcp_pcb *pcb = c->pcb;
  c->pcb = NULL;
  tcp_arg(pcb, NULL);
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  if (abort || tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
}

/* End the test: close (or abort) its connections and forget it.  Returns 1 if `self` was among
 * them and was aborted (its callback must then return ERR_ABRT). */
static int test_end(int abort, ip3_conn *self) {
  int self_aborted = 0;
  for (int i = 0; i < T.nstreams; i++) {
    if (T.streams[i] == self && abort) self_aborted = 1;
    conn_detach(T.streams[i], abort);
    free(T.streams[i]);
  }
  if (T.ctrl) {
    if (T.ctrl == self && abort) self_aborted = 1;
    conn_detach(T.ctrl, abort);
    free(T.ctrl);
  }
  memset(&T, 0, sizeof T);
  return self_aborted;
}

static int ctrl_send(const void *p, u16_t n) {
  if (!T.ctrl || !T.ctrl->pcb) return -1;
  if (tcp_write(T.ctrl->pcb, p, n, TCP_WRITE_FLAG_COPY) != ERR_OK) return -1;
  tcp_output(T.ctrl->pcb);
  return 0;
}

static int ctrl_state(int8_t s) { return ctrl_send(&s, 1); }

/* Reverse: queue as much of the stream as lwIP takes while the test runs. */
static void stream_push(ip3_conn *c) {
  if (c->role != ROLE_STREAM) return;
  while (T.reverse && c->pcb && T.state == ST_RUNNING) {
    u16_t room = tcp_sndbuf(c->pcb);
    if (room == 0) break;
    u16_t n = room < sizeof pattern ? room : (u16_t)sizeof pattern;
    if (tcp_write(c->pcb, pattern, n, 0) != ERR_OK) break; /* static data: no copy */
    c->bytes += n;
  }
  if (c->pcb) tcp_output(c->pcb);
}

static err_t stream_sent(void *arg, struct tcp_pcb *pcb, u16_t len) {
  (void)pcb;
  (void)len;
  if (arg) stream_push(arg);
  return ERR_OK;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

static void send_results(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double wall = (T.t_end - T.t_start) / 1e3;
  double user = tv_s(ru.ru_utime) - tv_s(T.ru_start.ru_utime);
  double sys = tv_s(ru.ru_stime) - tv_s(T.ru_start.ru_stime);
  if (wall <= 0) wall = 1e-3;
  char json[CTRL_BUF];
  int n = snprintf(json + 4, sizeof json - 4,
                   "{\"cpu_util_total\":%.4f,\"cpu_util_user\":%.4f,\"cpu_util_system\":%.4f,"
                   "\"sender_has_retransmits\":0,\"streams\":[",
                   100 * (user + sys) / wall, 100 * user / wall, 100 * sys / wall);
  for (int i = 0; i < T.nstreams && n > 0 && (size_t)n < sizeof json - 300; i++)
    n += snprintf(json + 4 + n, sizeof json - 4 - (size_t)n,
                  "%s{\"id\":%d,\"bytes\":%llu,\"retransmits\":-1,\"jitter\":0,\"errors\":0,"
                  "\"omitted_errors\":0,\"packets\":0,\"omitted_packets\":0,\"start_time\":0,"
                  "\"end_time\":%.3f}",
                  i ? "," : "", T.streams[i]->sid, (unsigned long long)T.streams[i]->bytes, wall);
  n += snprintf(json + 4 + n, sizeof json - 4 - (size_t)n, "]}");
  json[0] = (char)(n >> 24), json[1] = (char)(n >> 16), json[2] = (char)(n >> 8), json[3] = (char)n;
  ctrl_send(json, (u16_t)(n + 4));
}

/* One complete unit of control input in T.buf[0..T.need).  Returns -1 to end the test. */
static int ctrl_step(void) {
  const uint8_t *b = T.buf;
  switch (T.state) {
  case ST_PARAMS_LEN:
  case ST_RESULTS_LEN: {
    uint32_t len = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (len == 0 || len >= CTRL_BUF) return -1;
    T.state = T.state == ST_PARAMS_LEN ? ST_PARAMS : ST_RESULTS;
    T.need = len;
    return 0;
  }
  case ST_PARAMS: {
    T.buf[T.need] = 0;
    const char *j = (const char *)T.buf;
    if (!strstr(j, "\"tcp\":true") || strstr(j, "\"bidirectional\":true")) return -1;
    T.reverse = strstr(j, "\"reverse\":true") != NULL;
    const char *par = strstr(j, "\"parallel\":");
    T.parallel = par ? atoi(par + 11) : 1;
    if (T.parallel < 1 || T.parallel > MAX_STREAMS) return -1;
    T.state = ST_STREAMS;
    T.need = 1;
    return ctrl_state(CREATE_STREAMS);
  }
  case ST_RUNNING:
    if (b[0] == CLIENT_TERMINATE) return -1;
    if (b[0] != TEST_END) return 0;
    T.t_end = sys_now();
    T.state = ST_RESULTS_LEN;
    T.need = 4;
    /* As iperf3's own server: the streams close now (what is queued still goes out, then FIN).
     * A reverse client reads its streams with blocking reads after the end; only EOF frees it. */
    for (int i = 0; i < T.nstreams; i++) conn_detach(T.streams[i], 0);
    return ctrl_state(EXCHANGE_RESULTS);
  case ST_RESULTS:
    send_results();
    T.state = ST_DISPLAY;
    T.need = 1;
    return ctrl_state(DISPLAY_RESULTS);
  case ST_DISPLAY:
    return b[0] == IPERF_DONE ? 1 : b[0] == CLIENT_TERMINATE ? -1 : 0;
  default:
    return b[0] == CLIENT_TERMINATE ? -1 : 0; /* states the client may send at any time */
  }
}

/* Control bytes in; -1 when the test failed, 1 when it is done (IPERF_DONE). */
static int ctrl_input(const uint8_t *p, uint32_t n) {
  while (n) {
    uint32_t take = T.need - T.have < n ? T.need - T.have : n;
    memcpy(T.buf + T.have, p, take);
    T.have += take, p += take, n -= take;
    if (T.have < T.need) break;
    T.have = 0;
    uint32_t was = T.need;
    int rc = ctrl_step();
    if (rc != 0) return rc;
    if (T.need == was && (T.state == ST_STREAMS || T.state == ST_RUNNING || T.state == ST_DISPLAY))
      T.need = 1;
  }
  return 0;
}

/* A connection whose cookie is complete: the control connection of a new test, a stream of the
 * running one, or turned away.  0, -1 if the test must end, -2 if c was turned away (closed and
 * freed). */
static int classify(ip3_conn *c) {
  if (!T.ctrl) {
    c->role = ROLE_CTRL;
    T.ctrl = c;
    memcpy(T.cookie, c->cookie, COOKIE_LEN);
    T.state = ST_PARAMS_LEN;
    T.need = 4;
    tcp_nagle_disable(c->pcb);
    return ctrl_state(PARAM_EXCHANGE);
  }
  if (T.state == ST_STREAMS && T.nstreams < T.parallel && !memcmp(c->cookie, T.cookie, COOKIE_LEN)) {
    c->role = ROLE_STREAM;
    c->sid = T.nstreams == 0 ? 1 : T.nstreams + 2; /* iperf3 numbers them 1, 3, 4, ... */
    T.streams[T.nstreams++] = c;
    if (T.nstreams == T.parallel) {
      getrusage(RUSAGE_SELF, &T.ru_start);
      T.t_start = sys_now();
      if (ctrl_state(TEST_START) < 0 || ctrl_state(TEST_RUNNING) < 0) return -1;
      T.state = ST_RUNNING;
      T.need = 1;
      for (int i = 0; i < T.nstreams; i++) stream_push(T.streams[i]);
    }
    return 0;
  }
  int8_t denied = ACCESS_DENIED;
  tcp_write(c->pcb, &denied, 1, TCP_WRITE_FLAG_COPY);
  conn_detach(c, 0);
  free(c);
  return -2;
}

static void on_err(void *arg, err_t err) {
  (void)err;
  ip3_conn *c = arg;
  if (!c) return;
  c->pcb = NULL; /* lwIP freed it */
  if (c->role == ROLE_NEW) {
    free(c);
    return;
  }
  /* A stream the client resets (it does so at the end of a reverse test, with data unread) only
   * stops counting; the test lives and dies with its control connection. */
  if (c->role == ROLE_CTRL) test_end(1, NULL);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
  ip3_conn *c = arg;
  if (!c) {
    if (p) pbuf_free(p);
    return ERR_OK;
  }
  if (!p || err != ERR_OK) { /* the peer closed */
    if (p) pbuf_free(p);
    if (c->role == ROLE_STREAM) return ERR_OK; /* the test ends on the control connection */
    if (c->role == ROLE_NEW) {
      conn_detach(c, 0);
      free(c);
      return ERR_OK;
    }
    return test_end(1, c) ? ERR_ABRT : ERR_OK;
  }
  tcp_recved(pcb, p->tot_len);
  uint8_t tmp[512];
  uint32_t off = 0;
  int rc = 0;
  while (off < p->tot_len && rc == 0) {
    if (c->role == ROLE_STREAM) {
      if (!T.reverse) c->bytes += p->tot_len - off;
      break;
    }
    u16_t n = pbuf_copy_partial(p, tmp, sizeof tmp < p->tot_len - off ? sizeof tmp : (u16_t)(p->tot_len - off), (u16_t)off);
    uint32_t used = 0;
    if (c->role == ROLE_NEW) {
      used = COOKIE_LEN - c->cookie_len < n ? COOKIE_LEN - c->cookie_len : n;
      memcpy(c->cookie + c->cookie_len, tmp, used);
      c->cookie_len += used;
      int k = c->cookie_len == COOKIE_LEN ? classify(c) : 0;
      if (k < 0) {
        pbuf_free(p);
        if (k == -2) return ERR_OK; /* turned away: c is freed, its pcb closing */
        return test_end(1, c) ? ERR_ABRT : ERR_OK;
      }
    } else { /* control */
      used = n;
      rc = ctrl_input(tmp, n);
    }
    off += used;
  }
  pbuf_free(p);
  if (rc > 0) test_end(0, c); /* done: close everything gracefully */
  if (rc < 0) return test_end(1, c) ? ERR_ABRT : ERR_OK;
  return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
  (void)arg;
  if (err != ERR_OK || !pcb) return ERR_VAL;
  ip3_conn *c = calloc(1, sizeof *c);
  if (!c) {
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  c->pcb = pcb;
  tcp_arg(pcb, c);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, stream_sent);
  tcp_err(pcb, on_err);
  return ERR_OK;
}

int mior_lwip_iperf3_listen(uint16_t port) {
  for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)(i * 131u);
  return mior__lwip_listen(port, 16, on_accept, NULL);
}
