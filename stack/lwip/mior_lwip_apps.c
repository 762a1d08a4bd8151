/* TCP echo and a tiny HTTP/1.1 responder on lwIP's raw API, for the example, mior-stack and the
 * tests.  Every callback runs with lwIP's core lock held (lwIP calls them from its input path or
 * its timers), so the connection state needs no other lock. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mior_lwip.h"
#include "mior_lwip_apps.h"

#include "lwip/tcp.h"
#include "lwip/tcpip.h"

enum { SVC_ECHO, SVC_HTTP, SVC_DISCARD, SVC_SOURCE };

#define HTTP_REQ_MAX 4096u

typedef struct conn {
  struct tcp_pcb *pcb;
  int svc;
  struct pbuf *pending; /* echo: received, not yet queued for sending (not yet tcp_recved) */
  int peer_closed;
  size_t req_len;       /* http: bytes of the request head seen so far */
  char req_tail[4];     /* http: last bytes seen, to find "\r\n\r\n" across segments */
  uint64_t src_left;    /* source: bytes still to queue */
  uint64_t src_off;     /* source: stream offset of the next byte */
} conn;

static mior_lwip_service_stats svc_stats; /* under the core lock */
static char *http_body;
static uint64_t source_bytes;
/* The source's stream: byte at offset o is o % 251 (a prime, so it never lines up with segment
 * or buffer sizes).  Chunks are taken from this block at offset o % 251. */
#define SRC_BLOCK (251u * 64u)
static uint8_t src_block[SRC_BLOCK + 251u];
static size_t http_body_len;

/* Detach and free the connection state; the pcb is closed or already gone. */
static void conn_free(conn *c) {
  if (c->pending) pbuf_free(c->pending);
  free(c);
  svc_stats.open--;
}

static void conn_close(conn *c) {
  struct tcp_pcb *pcb = c->pcb;
  tcp_arg(pcb, NULL);
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  /* tcp_close sends what is still queued, then FIN; it fails only for lack of memory, where
   * aborting (RST) is the way to not leak the pcb. */
  if (tcp_close(pcb) != ERR_OK) {
    tcp_abort(pcb);
    svc_stats.aborted++;
  } else {
    svc_stats.closed++;
  }
  conn_free(c);
}

/* lwIP calls this when the pcb is gone (RST from the peer, or retransmissions gave up). */
static void conn_err(void *arg, err_t err) {
  (void)err;
  conn *c = arg;
  if (!c) return;
  svc_stats.aborted++;
  conn_free(c);
}

/* Drop the first pbuf of a chain (it has len 0), keeping the rest. */
static struct pbuf *drop_first(struct pbuf *q) {
  struct pbuf *next = q->next;
  q->next = NULL; /* the chain's reference to next becomes ours */
  pbuf_free(q);
  return next;
}

/* Queue as much pending data as lwIP's send buffer takes.  Called on receive and, above all,
 * from the sent callback: acknowledged data frees room, which is when more can go (lwIP's
 * retry timer would pace a bulk echo at 2-4 sends a second). */
static void echo_push(conn *c) {
  while (c->pending) {
    struct pbuf *q = c->pending;
    if (q->len == 0) {
      c->pending = drop_first(q);
      continue;
    }
    u16_t room = tcp_sndbuf(c->pcb);
    if (room == 0) break;
    u16_t n = q->len < room ? q->len : room;
    if (tcp_write(c->pcb, q->payload, n, TCP_WRITE_FLAG_COPY) != ERR_OK) break;
    c->pending = pbuf_free_header(q, n);
    tcp_recved(c->pcb, n);
    svc_stats.bytes_echoed += n;
  }
  tcp_output(c->pcb);
  if (!c->pending && c->peer_closed) conn_close(c);
}

static err_t echo_sent(void *arg, struct tcp_pcb *pcb, u16_t len) {
  (void)pcb;
  (void)len;
  if (arg) echo_push(arg);
  return ERR_OK;
}

/* Source: queue as much of the stream as lwIP's send buffer takes; close after the last byte. */
static void source_push(conn *c) {
  while (c->src_left) {
    u16_t room = tcp_sndbuf(c->pcb);
    if (room == 0) break;
    uint64_t n = c->src_left < room ? c->src_left : room;
    if (n > SRC_BLOCK) n = SRC_BLOCK;
    if (tcp_write(c->pcb, src_block + c->src_off % 251u, (u16_t)n,
                  TCP_WRITE_FLAG_COPY | (n < c->src_left ? TCP_WRITE_FLAG_MORE : 0)) != ERR_OK)
      break;
    c->src_left -= n;
    c->src_off += n;
    svc_stats.bytes_sourced += n;
  }
  tcp_output(c->pcb);
  if (!c->src_left) conn_close(c);
}

static err_t source_sent(void *arg, struct tcp_pcb *pcb, u16_t len) {
  (void)pcb;
  (void)len;
  if (arg) source_push(arg);
  return ERR_OK;
}

static err_t http_answer(conn *c) {
  char head[160];
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 200 OK\r\nServer: lwIP-on-mior\r\nContent-Type: text/plain\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n", http_body_len);
  if (hl <= 0 || (size_t)hl + http_body_len > tcp_sndbuf(c->pcb)) return ERR_MEM;
  err_t e = tcp_write(c->pcb, head, (u16_t)hl, TCP_WRITE_FLAG_COPY | TCP_WRITE_FLAG_MORE);
  if (e == ERR_OK && http_body_len)
    e = tcp_write(c->pcb, http_body, (u16_t)http_body_len, TCP_WRITE_FLAG_COPY);
  if (e == ERR_OK) svc_stats.http_requests++;
  return e;
}

static err_t conn_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
  conn *c = arg;
  if (!c) {
    if (p) pbuf_free(p);
    return ERR_OK;
  }
  if (!p || err != ERR_OK) {
    if (p) pbuf_free(p);
    c->peer_closed = 1;
    /* the source goes on to its end (a client may shut its side at once, as nc -N does) */
    if (c->svc != SVC_SOURCE && (c->svc == SVC_HTTP || !c->pending)) conn_close(c);
    return ERR_OK;
  }
  if (c->svc == SVC_DISCARD || c->svc == SVC_SOURCE) {
    if (c->svc == SVC_DISCARD) svc_stats.bytes_discarded += p->tot_len;
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
  }
  if (c->svc == SVC_ECHO) {
    if (c->pending) pbuf_cat(c->pending, p);
    else c->pending = p;
    echo_push(c);
    return ERR_OK;
  }
  /* HTTP: read the request head up to its blank line, ignore its content, answer, close. */
  int done = 0;
  for (struct pbuf *q = p; q && !done; q = q->next) {
    const char *b = q->payload;
    for (u16_t i = 0; i < q->len; i++) {
      memmove(c->req_tail, c->req_tail + 1, 3);
      c->req_tail[3] = b[i];
      c->req_len++;
      if (memcmp(c->req_tail, "\r\n\r\n", 4) == 0) {
        done = 1;
        break;
      }
    }
  }
  tcp_recved(pcb, p->tot_len);
  pbuf_free(p);
  if (done) {
    if (http_answer(c) != ERR_OK) {
      tcp_abort(pcb); /* calls conn_err, which frees c */
      return ERR_ABRT;
    }
    tcp_output(pcb);
    conn_close(c);
  } else if (c->req_len > HTTP_REQ_MAX) {
    conn_close(c);
  }
  return ERR_OK;
}

static err_t conn_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
  int svc = (int)(intptr_t)arg;
  if (err != ERR_OK || !pcb) return ERR_VAL;
  conn *c = calloc(1, sizeof *c);
  if (!c) {
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  c->pcb = pcb;
  c->svc = svc;
  svc_stats.accepted++;
  svc_stats.open++;
  tcp_nagle_disable(pcb); /* an echo answers at once, not after the peer's delayed ACK */
  tcp_arg(pcb, c);
  tcp_recv(pcb, conn_recv);
  tcp_sent(pcb, svc == SVC_ECHO ? echo_sent : svc == SVC_SOURCE ? source_sent : NULL);
  tcp_err(pcb, conn_err);
  if (svc == SVC_SOURCE) {
    c->src_left = source_bytes;
    source_push(c); /* may close (and free c) at once when there is nothing to send */
  }
  return ERR_OK;
}

int mior__lwip_listen(uint16_t port, u8_t backlog, tcp_accept_fn accept_fn, void *arg) {
  int rc = 0;
  LOCK_TCPIP_CORE();
  struct tcp_pcb *pcb = tcp_new();
  if (!pcb) {
    rc = -ENOMEM;
  } else if (tcp_bind(pcb, IP4_ADDR_ANY, port) != ERR_OK) {
    tcp_close(pcb);
    rc = -EADDRINUSE;
  } else {
    struct tcp_pcb *lp = tcp_listen_with_backlog(pcb, backlog);
    if (!lp) {
      tcp_close(pcb);
      rc = -ENOMEM;
    } else {
      tcp_arg(lp, arg);
      tcp_accept(lp, accept_fn);
    }
  }
  UNLOCK_TCPIP_CORE();
  return rc;
}

static int listen_on(uint16_t port, int svc) {
  return mior__lwip_listen(port, 64, conn_accept, (void *)(intptr_t)svc);
}

int mior_lwip_echo_listen(uint16_t port) { return listen_on(port, SVC_ECHO); }

int mior_lwip_http_listen(uint16_t port, const char *body) {
  if (!body) return -EINVAL;
  size_t n = strlen(body);
  if (n > 16384) return -EINVAL;
  char *copy = malloc(n + 1);
  if (!copy) return -ENOMEM;
  memcpy(copy, body, n + 1);
  LOCK_TCPIP_CORE();
  free(http_body);
  http_body = copy;
  http_body_len = n;
  UNLOCK_TCPIP_CORE();
  return listen_on(port, SVC_HTTP);
}

int mior_lwip_discard_listen(uint16_t port) { return listen_on(port, SVC_DISCARD); }

int mior_lwip_source_listen(uint16_t port, uint64_t bytes) {
  LOCK_TCPIP_CORE();
  for (uint32_t i = 0; i < sizeof src_block; i++) src_block[i] = (uint8_t)(i % 251u);
  source_bytes = bytes;
  UNLOCK_TCPIP_CORE();
  return listen_on(port, SVC_SOURCE);
}

void mior_lwip_service_stats_get(mior_lwip_service_stats *out) {
  if (!out) return;
  LOCK_TCPIP_CORE();
  *out = svc_stats;
  UNLOCK_TCPIP_CORE();
}
