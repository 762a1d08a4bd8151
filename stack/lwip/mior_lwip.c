/* The lwIP netif adapter: a driver thread owns the mior port; received frames go into lwIP under
 * the core lock; lwIP's output goes out on the port (directly on the driver thread, through a
 * bounded queue from any other thread).  See mior_lwip.h and docs/INTEGRATION.md. */
#include "mior_lwip.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/opts.h"
#include "lwip/etharp.h"
#include "lwip/ip.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include "netif/ethernet.h"

#define RX_BATCH 64u          /* frames per port poll, and per hold of lwIP's core lock */
#define POLL_TIMEOUT_US 1000  /* the driver's longest sleep: bounds the delay of queued frames */
#define TXQ_FRAME 1518u       /* largest frame the queue carries (Ethernet + VLAN tag) */

enum { KIND_ETHERNET, KIND_IP };

/* A received frame lent to lwIP: the pbuf lwIP sees, and the mior packet it stands for. */
typedef struct rx_pbuf {
  struct pbuf_custom pc; /* first: lwIP hands the custom free function this address */
  mior_pkt pkt;
  mior_lwip *owner;
} rx_pbuf;

typedef struct txq_entry {
  uint32_t len;
  uint8_t data[TXQ_FRAME];
} txq_entry;

struct mior_lwip {
  mior_transport *t;
  mior_port *port;
  struct netif netif;
  int kind;
  int netif_added;
  uint32_t flags, max_held;
  mior_pcap *pcap;

  uint16_t mtu;
  uint8_t mac[6];
  pthread_t thread;
  int thread_started;
  atomic_int stop;
  atomic_int stopping;  /* the netif is being removed: received frames are dropped */
  int netif_ready;      /* under the core lock: the netif is in lwIP and may take frames */
  /* Opening, done by the driver thread itself (see driver()). */
  char *endpoint;
  mior_options popts;
  int opened, open_rc;
  int closed, close_rc; /* the driver closed the transport on its way out, with this result */

  /* Received frames of the current batch, fed to lwIP together at the batch's end. */
  struct pbuf *batch[RX_BATCH];
  uint32_t nbatch;

  /* Frames from threads other than the driver.  A mutex is enough: these are lwIP's timer
   * frames (retransmissions, delayed ACKs, ARP) and application sends, not the bulk path. */
  pthread_mutex_t qlock;
  txq_entry *q;
  uint32_t qcap, qhead, qlen;

  /* Port statistics are plain counters the driving thread writes: other threads get a copy the
   * driver takes between polls when asked (snap_want), under qlock, signalled on snap_cond. */
  atomic_int snap_want;
  uint64_t snap_seq;
  mior_port_stats snap;
  pthread_cond_t snap_cond;

  atomic_uint held, held_high;
  atomic_uint_least64_t rx_frames, rx_zero_copy, rx_copied, rx_dropped;
  atomic_uint_least64_t tx_frames, tx_deferred, tx_nomem;
  atomic_uint_least64_t tw_reused, tw_kept, rx_unlent;
};

static pthread_once_t tcpip_once = PTHREAD_ONCE_INIT;

/* The adapter whose port the calling thread drives, if any: linkoutput on that thread may
 * transmit at once; on any other thread it must queue. */
static _Thread_local mior_lwip *tls_driving;

static void tcpip_start(void) { tcpip_init(NULL, NULL); }

static void add64(atomic_uint_least64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void mior_lwip_options_init(mior_lwip_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->sz = sizeof *o;
  o->netmask = "255.255.255.0";
  o->mtu = 1500;
  o->txq_frames = 512;
}

/* --- receive ------------------------------------------------------------------------------- */

static void rx_pbuf_free(struct pbuf *p) {
  rx_pbuf *rp = (rx_pbuf *)p;
  mior_lwip *l = rp->owner;
  mior_pkt_release(&rp->pkt);
  atomic_fetch_sub_explicit(&l->held, 1, memory_order_relaxed);
  free(rp);
}

static struct pbuf *rx_copy(mior_lwip *l, const mior_pkt *pkt) {
  struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)pkt->len, PBUF_RAM);
  if (!p) return NULL;
  pbuf_take(p, pkt->data, (u16_t)pkt->len);
  add64(&l->rx_copied, 1);
  return p;
}

/* What the adapter looks at in a received frame, under the core lock, before lwIP does. */
typedef struct frame_view {
  int ip4;                /* an IPv4 packet */
  int fragment;           /* ... a fragment of one (MF set or a nonzero offset) */
  int tcp;                /* ... a whole TCP segment, with the fields below */
  uint32_t src, dst;      /* network order, as lwIP keeps addresses */
  u16_t sport, dport;
  u32_t seq;
  uint8_t flags;
  uint32_t payload;       /* TCP payload bytes */
} frame_view;

static void frame_parse(const mior_lwip *l, const struct pbuf *p, frame_view *v) {
  memset(v, 0, sizeof *v);
  const uint8_t *f = p->payload;
  uint32_t n = p->len, off = 0;
  if (l->kind == KIND_ETHERNET) {
    if (n < 14 || f[12] != 0x08 || f[13] != 0x00) return;
    off = 14;
  }
  if (n < off + 20) return;
  const uint8_t *ip = f + off;
  uint32_t ihl = (ip[0] & 15u) * 4, total = (uint32_t)ip[2] << 8 | ip[3];
  if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl || n < off + total) return;
  v->ip4 = 1;
  v->fragment = ((ip[6] & 0x3f) | ip[7]) != 0;
  if (v->fragment || ip[9] != 6 || total < ihl + 20) return;
  const uint8_t *th = ip + ihl;
  uint32_t doff = (uint32_t)(th[12] >> 4) * 4;
  if (doff < 20 || total < ihl + doff) return;
  v->tcp = 1;
  memcpy(&v->src, ip + 12, 4);
  memcpy(&v->dst, ip + 16, 4);
  v->sport = (u16_t)(th[0] << 8 | th[1]);
  v->dport = (u16_t)(th[2] << 8 | th[3]);
  v->seq = (u32_t)th[4] << 24 | (u32_t)th[5] << 16 | (u32_t)th[6] << 8 | th[7];
  v->flags = th[13];
  v->payload = total - ihl - doff;
}

/* The pcb of a list whose connection the segment belongs to, or NULL. */
static struct tcp_pcb *pcb_find(struct tcp_pcb *list, const frame_view *v) {
  for (struct tcp_pcb *pcb = list; pcb; pcb = pcb->next)
    if (pcb->local_port == v->dport && pcb->remote_port == v->sport && IP_IS_V4(&pcb->remote_ip) &&
        ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip)) == v->src &&
        ip4_addr_get_u32(ip_2_ip4(&pcb->local_ip)) == v->dst)
      return pcb;
  return NULL;
}

/* A SYN for the 4-tuple of a connection lwIP keeps in TIME_WAIT.  lwIP 2.1 answers it with an
 * ACK for the old connection and ignores the peer's RST, so the peer's connect stalls until
 * TIME_WAIT ends (2 minutes): every load test of a server that closes first (HTTP with
 * Connection: close) meets it once the client's ephemeral ports come round.  RFC 1122 4.2.2.13
 * (and RFC 6191 for peers without timestamps) lets a server accept such a SYN when its sequence
 * number is beyond the old connection's last one; RFC 6528 sequence numbers (Linux, Windows,
 * BSD) grow with time for the same 4-tuple, so a reused port passes.  Then the TIME_WAIT pcb is
 * dropped (tcp_abort frees a TIME_WAIT pcb silently) and lwIP's listener takes the SYN as a new
 * connection.  A SYN that does not pass is left to lwIP.  Called with the core lock held. */
static void tw_reuse(mior_lwip *l, const frame_view *v) {
  if (!v->tcp || (v->flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN) return;
  struct tcp_pcb *pcb = pcb_find(tcp_tw_pcbs, v);
  if (!pcb) return;
  if (TCP_SEQ_GT(v->seq, pcb->rcv_nxt)) {
    tcp_abort(pcb);
    add64(&l->tw_reused, 1);
  } else {
    add64(&l->tw_kept, 1);
  }
}

/* Frames lwIP would keep for an unbounded time whatever the application does: an IPv4 fragment
 * (its reassembly queue holds it until the datagram completes or IP_REASS_MAXAGE, ~15 s, ends)
 * and a TCP segment with data that is not the next expected (the out-of-order queue holds it
 * until the gap fills or the connection ends).  Any peer can send those, so lending them the
 * port's slots would let a peer hold the pool hostage; they are copied instead.  Called with the
 * core lock held, just before the frame goes in, so rcv_nxt is current. */
static int lingers(const frame_view *v) {
  if (v->fragment) return 1;
  if (!v->tcp || !v->payload) return 0;
  struct tcp_pcb *pcb = pcb_find(tcp_active_pcbs, v);
  return pcb && v->seq != pcb->rcv_nxt;
}

/* Replace a lent frame by a PBUF_RAM copy (the slot goes back to the port); p itself if the
 * copy cannot be made. */
static struct pbuf *unlend(mior_lwip *l, struct pbuf *p) {
  struct pbuf *c = pbuf_alloc(PBUF_RAW, p->len, PBUF_RAM);
  if (!c) return p;
  pbuf_take(c, p->payload, p->len);
  pbuf_free(p); /* rx_pbuf_free: releases the slot */
  atomic_fetch_sub_explicit(&l->rx_zero_copy, 1, memory_order_relaxed);
  add64(&l->rx_copied, 1);
  add64(&l->rx_unlent, 1);
  return c;
}

static int is_lent(const struct pbuf *p) {
  return (p->flags & PBUF_FLAG_IS_CUSTOM) &&
         ((const struct pbuf_custom *)(const void *)p)->custom_free_function == rx_pbuf_free;
}

/* Feed the frames gathered so far to lwIP: one hold of the core lock for all of them.  lwIP's
 * answers are transmitted from inside, by linkoutput, on this (the driving) thread. */
static void feed(mior_lwip *l) {
  if (!l->nbatch) return;
  LOCK_TCPIP_CORE();
  /* stopping is set before the netif is removed under this lock: seen here, the netif may be
   * gone, so the frames are freed instead of handed to it. */
  int gone = !l->netif_ready || atomic_load_explicit(&l->stopping, memory_order_acquire);
  for (uint32_t i = 0; i < l->nbatch; i++) {
    /* On error lwIP did not take the pbuf: free it here (this releases a kept slot). */
    struct pbuf *p = l->batch[i];
    if (!gone) {
      frame_view v;
      frame_parse(l, p, &v);
      if (tcp_tw_pcbs) tw_reuse(l, &v);
      if (is_lent(p) && lingers(&v)) p = unlend(l, p);
    }
    if (gone || l->netif.input(p, &l->netif) != ERR_OK) pbuf_free(p);
  }
  UNLOCK_TCPIP_CORE();
  add64(&l->rx_frames, l->nbatch);
  l->nbatch = 0;
}

static int on_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  (void)port;
  mior_lwip *l = ctx;
  if (l->pcap) mior_pcap_write(l->pcap, pkt->data, pkt->len);
  /* A poll may deliver more than its budget (it finishes the completions it reaped). */
  if (l->nbatch == RX_BATCH) feed(l);
  if (pkt->len == 0 || pkt->len > 0xffff) {
    add64(&l->rx_dropped, 1);
    return MIOR_DONE;
  }
  int ret = MIOR_DONE;
  struct pbuf *p = NULL;
  unsigned held = atomic_load_explicit(&l->held, memory_order_relaxed);
  if (!(l->flags & MIOR_LWIP_COPY_RX) && held < l->max_held) {
    rx_pbuf *rp = malloc(sizeof *rp);
    if (rp) {
      rp->pkt = *pkt;
      rp->owner = l;
      rp->pc.custom_free_function = rx_pbuf_free;
      /* PBUF_REF: lwIP neither owns nor reallocates the payload; the free function returns
       * the slot.  The capacity is the slot's, so lwIP could grow the frame in place. */
      p = pbuf_alloced_custom(PBUF_RAW, (u16_t)pkt->len, PBUF_REF, &rp->pc, pkt->data,
                              (u16_t)(pkt->cap > 0xffff ? 0xffff : pkt->cap));
      if (p) {
        ret = MIOR_KEEP;
        unsigned now = atomic_fetch_add_explicit(&l->held, 1, memory_order_relaxed) + 1;
        unsigned hi = atomic_load_explicit(&l->held_high, memory_order_relaxed);
        while (now > hi && !atomic_compare_exchange_weak_explicit(&l->held_high, &hi, now,
                                                                  memory_order_relaxed,
                                                                  memory_order_relaxed)) {
        }
        add64(&l->rx_zero_copy, 1);
      } else {
        free(rp);
      }
    }
  }
  if (!p) p = rx_copy(l, pkt);
  if (!p) {
    add64(&l->rx_dropped, 1);
    return MIOR_DONE;
  }
  l->batch[l->nbatch++] = p;
  return ret;
}

/* End of a receive batch. */
static void on_flush(void *ctx, mior_port *port) {
  feed(ctx);
  mior_tx_flush(port);
}

/* --- transmit ------------------------------------------------------------------------------ */

static err_t tx_now(mior_lwip *l, const struct pbuf *p) {
  mior_pkt pkt;
  if (mior_tx_acquire(l->port, &pkt) < 0) return ERR_MEM;
  if (p->tot_len > pkt.cap) {
    mior_pkt_release(&pkt);
    return ERR_BUF;
  }
  pbuf_copy_partial(p, pkt.data, p->tot_len, 0);
  /* The slot is the port's from here, also on failure; a failed send is counted by the port. */
  mior_pcap_tx_send(l->pcap, l->port, &pkt, p->tot_len, NULL);
  add64(&l->tx_frames, 1);
  return ERR_OK;
}

static err_t tx_defer(mior_lwip *l, const struct pbuf *p) {
  if (p->tot_len > TXQ_FRAME) return ERR_BUF;
  err_t err = ERR_MEM;
  pthread_mutex_lock(&l->qlock);
  if (l->qlen < l->qcap) {
    txq_entry *e = &l->q[(l->qhead + l->qlen) % l->qcap];
    e->len = p->tot_len;
    pbuf_copy_partial(p, e->data, p->tot_len, 0);
    l->qlen++;
    err = ERR_OK;
  }
  pthread_mutex_unlock(&l->qlock);
  return err;
}

/* Send what other threads queued, oldest first, until the port pushes back. */
static void txq_drain(mior_lwip *l) {
  pthread_mutex_lock(&l->qlock);
  while (l->qlen) {
    txq_entry *e = &l->q[l->qhead];
    mior_pkt pkt;
    if (mior_tx_acquire(l->port, &pkt) < 0) break;
    memcpy(pkt.data, e->data, e->len);
    mior_pcap_tx_send(l->pcap, l->port, &pkt, e->len, NULL);
    add64(&l->tx_frames, 1);
    add64(&l->tx_deferred, 1);
    l->qhead = (l->qhead + 1) % l->qcap;
    l->qlen--;
  }
  pthread_mutex_unlock(&l->qlock);
}

static err_t linkoutput(struct netif *netif, struct pbuf *p) {
  mior_lwip *l = netif->state;
  err_t err = tls_driving == l ? tx_now(l, p) : tx_defer(l, p);
  if (err == ERR_MEM) add64(&l->tx_nomem, 1);
  return err;
}

/* ip kind: no link header and no ARP; the IP packet is the frame. */
static err_t raw_ip_output(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst) {
  (void)dst;
  return linkoutput(netif, p);
}

static err_t netif_setup(struct netif *netif) {
  mior_lwip *l = netif->state;
  netif->name[0] = 'm';
  netif->name[1] = 'r';
  netif->linkoutput = linkoutput;
  netif->mtu = l->mtu;
  memcpy(netif->hwaddr, l->mac, 6);
  if (l->kind == KIND_ETHERNET) {
    netif->output = etharp_output;
    netif->hwaddr_len = ETH_HWADDR_LEN;
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
  } else {
    netif->output = raw_ip_output;
    netif->hwaddr_len = 0;
    netif->flags = 0;
  }
  return ERR_OK;
}

/* --- the driver thread --------------------------------------------------------------------- */

/* The driver thread does everything that touches the ring: open, poll, transmit, close.
 * Opening here matters as much as polling here: the kernel counts the thread that created an
 * io_uring among the ring's users, and when the ring is torn down it sends that thread a
 * task-work notification, which makes a timed blocking socket call (SO_RCVTIMEO/SO_SNDTIMEO) on
 * it fail with EINTR.  Seen when the application's thread opened the transport: its kernel
 * client sockets then got EINTR whenever an adapter stopped.  The thread inherits the network
 * namespace of the thread that called mior_lwip_start, so the socket is made there. */
static void *driver(void *arg) {
  mior_lwip *l = arg;
  tls_driving = l;
  mior_receiver recv = {on_consume, on_flush, l};
  int rc = mior_transport_open(&l->t, l->endpoint, &l->popts, &recv);
  if (rc == 0) {
    l->port = mior_transport_port(l->t, 0);
  } else {
    fprintf(stderr, "mior_lwip: %s: %s (%s)\n", l->endpoint, mior_strerror(rc), mior_last_error());
  }
  pthread_mutex_lock(&l->qlock);
  l->open_rc = rc;
  l->opened = 1;
  pthread_cond_broadcast(&l->snap_cond);
  pthread_mutex_unlock(&l->qlock);
  if (rc < 0) return NULL;
  while (!atomic_load_explicit(&l->stop, memory_order_acquire)) {
    int n = mior_port_poll(l->port, RX_BATCH, POLL_TIMEOUT_US);
    if (n < 0 && n != -EINTR) {
      fprintf(stderr, "mior_lwip: mior_port_poll: %s (%s)\n", mior_strerror(n), mior_last_error());
      break;
    }
    txq_drain(l);
    mior_tx_flush(l->port);
    if (atomic_load_explicit(&l->snap_want, memory_order_acquire)) {
      pthread_mutex_lock(&l->qlock);
      mior_port_stats_get(l->port, &l->snap);
      l->snap_seq++;
      atomic_store_explicit(&l->snap_want, 0, memory_order_relaxed);
      pthread_cond_broadcast(&l->snap_cond);
      pthread_mutex_unlock(&l->qlock);
    }
  }
  /* Close here too, but not while lwIP still holds slots: their pbufs release into the port
   * when freed; mior_lwip_stop then reports -EBUSY and closes on a later call. */
  if (atomic_load(&l->held) == 0) {
    l->close_rc = mior_transport_close(l->t);
    l->closed = 1;
  }
  return NULL;
}

/* --- life cycle ---------------------------------------------------------------------------- */

static int fail(int err, const char *what) {
  fprintf(stderr, "mior_lwip: %s\n", what);
  return err;
}

int mior_lwip_start(mior_lwip **out, const mior_lwip_options *user) {
  if (!out || !user) return -EINVAL;
  *out = NULL;
  switch (OPTS_CHECK(user, mior_lwip_options)) {
  case MIOR__OPTS_BAD_SZ:
    return fail(-EINVAL, "mior_lwip_options.sz is not a size of it: call mior_lwip_options_init");
  case MIOR__OPTS_UNKNOWN_SET:
    return fail(-EINVAL, "mior_lwip_options sets fields this adapter does not know");
  }
  /* The defaults, then each field the caller's struct holds (common/opts.h).  A field appended
   * to the struct fails the build here until it is read below too. */
  _Static_assert(sizeof(mior_lwip_options) - MIOR__OFFSETOFEND(mior_lwip_options, netif_default) <
                     _Alignof(mior_lwip_options),
                 "mior_lwip_start reads every field of mior_lwip_options: add the new one");
  mior_lwip_options opts;
  mior_lwip_options *o = &opts;
  mior_lwip_options_init(o);
  o->endpoint = OPTS_GET(user, endpoint, o->endpoint);
  o->port = OPTS_GET(user, port, o->port);
  o->ip = OPTS_GET(user, ip, o->ip);
  o->netmask = OPTS_GET_NZ(user, netmask, o->netmask);
  o->gateway = OPTS_GET(user, gateway, o->gateway);
  if (OPTS_HAS(user, mac)) memcpy(o->mac, user->mac, sizeof o->mac);
  o->mtu = OPTS_GET_NZ(user, mtu, o->mtu);
  o->flags = OPTS_GET(user, flags, o->flags);
  o->max_held = OPTS_GET(user, max_held, o->max_held);
  o->txq_frames = OPTS_GET_NZ(user, txq_frames, o->txq_frames);
  o->pcap = OPTS_GET(user, pcap, o->pcap);
  o->netif_default = OPTS_GET(user, netif_default, o->netif_default);
  if (!o->endpoint || !o->ip) return -EINVAL;
  /* The port's options come from the caller too, perhaps from an older or newer mior.h. */
  switch (OPTS_CHECK(o->port, mior_options)) {
  case MIOR__OPTS_BAD_SZ:
    return fail(-EINVAL, "mior_lwip_options.port->sz is not a size of mior_options: call "
                "mior_options_init");
  case MIOR__OPTS_UNKNOWN_SET:
    return fail(-EINVAL, "mior_lwip_options.port sets fields this library does not know");
  }
  int kind;
  if (strncmp(o->endpoint, "packet://", 9) == 0) kind = KIND_ETHERNET;
  else if (strncmp(o->endpoint, "ip://", 5) == 0) kind = KIND_IP;
  else return fail(-EINVAL, "endpoint must be packet://IFNAME or ip://ADDR/PROTO");
  ip4_addr_t ip, mask, gw;
  ip4_addr_set_zero(&gw);
  if (!ip4addr_aton(o->ip, &ip) || !ip4addr_aton(o->netmask, &mask) ||
      (o->gateway && !ip4addr_aton(o->gateway, &gw)))
    return fail(-EINVAL, "bad IPv4 address, netmask or gateway");

  mior_lwip *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  l->kind = kind;
  l->flags = o->flags;
  l->pcap = o->pcap;
  l->qcap = o->txq_frames;
  l->q = malloc((size_t)l->qcap * sizeof *l->q);
  if (!l->q) {
    free(l);
    return -ENOMEM;
  }
  pthread_mutex_init(&l->qlock, NULL);
  pthread_cond_init(&l->snap_cond, NULL);

  /* Copy only what the port options' sz covers, over the defaults, and keep that sz: the
   * transport then reads them by the same rule as a caller's own.  queues is forced to one even
   * where that sz does not cover it, since one is also the default. */
  mior_options_init(&l->popts);
  /* buf_count 0 is the kind's default, chosen at open: 4096 for the link's packet:// port. */
  l->max_held = o->max_held ? o->max_held
                            : OPTS_GET_NZ(o->port, buf_count, MIOR_POOL_DEFAULT_BUF_COUNT) / 4;
  if (o->port) {
    size_t n = o->port->sz < sizeof l->popts ? o->port->sz : sizeof l->popts;
    memcpy(&l->popts, o->port, n);
    l->popts.sz = n;
  }
  l->popts.queues = 1; /* one netif, one port: lwIP has one input path */
  /* lwIP's core (and its lock, which the driver takes from its first batch on) before the driver. */
  pthread_once(&tcpip_once, tcpip_start);
  l->endpoint = strdup(o->endpoint);
  int rc = -ENOMEM;
  if (!l->endpoint) goto out_free;
  if (pthread_create(&l->thread, NULL, driver, l) != 0) {
    rc = fail(-EAGAIN, "cannot start the driver thread");
    goto out_free;
  }
  pthread_mutex_lock(&l->qlock);
  while (!l->opened) pthread_cond_wait(&l->snap_cond, &l->qlock);
  rc = l->open_rc;
  pthread_mutex_unlock(&l->qlock);
  if (rc < 0) {
    pthread_join(l->thread, NULL);
    goto out_free;
  }
  l->thread_started = 1;

  l->mtu = o->mtu;
  static const uint8_t zero[6];
  if (memcmp(o->mac, zero, 6) != 0) {
    memcpy(l->mac, o->mac, 6);
  } else {
    /* Locally administered, unicast, and derived from the address so runs are reproducible. */
    const uint8_t *a = (const uint8_t *)&ip;
    uint8_t mac[6] = {0x02, 0x6d, 0x69, a[1], a[2], a[3]};
    memcpy(l->mac, mac, 6);
  }
  LOCK_TCPIP_CORE();
  struct netif *n = netif_add(&l->netif, &ip, &mask, &gw, l, netif_setup,
                              kind == KIND_ETHERNET ? netif_input : ip_input);
  if (n) {
    l->netif_added = 1;
    if (o->netif_default) netif_set_default(&l->netif);
    netif_set_link_up(&l->netif);
    netif_set_up(&l->netif);
    l->netif_ready = 1;
  }
  UNLOCK_TCPIP_CORE();
  if (!n) {
    fail(-EIO, "netif_add failed");
    mior_lwip_stop(l);
    return -EIO;
  }
  *out = l;
  return 0;

out_free:
  pthread_cond_destroy(&l->snap_cond);
  pthread_mutex_destroy(&l->qlock);
  free(l->endpoint);
  free(l->q);
  free(l);
  return rc;
}

struct netif *mior_lwip_netif(mior_lwip *l) { return l ? &l->netif : NULL; }
mior_transport *mior_lwip_transport(mior_lwip *l) { return l ? l->t : NULL; }

int mior_lwip_stats_get(mior_lwip *l, mior_lwip_stats *s) {
  if (!l || !s) return -EINVAL;
  s->rx_frames = atomic_load(&l->rx_frames);
  s->rx_zero_copy = atomic_load(&l->rx_zero_copy);
  s->rx_copied = atomic_load(&l->rx_copied);
  s->rx_dropped = atomic_load(&l->rx_dropped);
  s->tx_frames = atomic_load(&l->tx_frames);
  s->tx_deferred = atomic_load(&l->tx_deferred);
  s->tx_nomem = atomic_load(&l->tx_nomem);
  s->tw_reused = atomic_load(&l->tw_reused);
  s->tw_kept = atomic_load(&l->tw_kept);
  s->rx_unlent = atomic_load(&l->rx_unlent);
  s->held = atomic_load(&l->held);
  s->held_high = atomic_load(&l->held_high);
  return 0;
}

int mior_lwip_port_stats(mior_lwip *l, mior_port_stats *out) {
  if (!l || !out) return -EINVAL;
  if (l->closed) return -EBADF;
  if (!l->thread_started) return mior_transport_stats_get(l->t, out); /* stopped, -EBUSY */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += 200 * 1000000L; /* the driver polls at least every millisecond */
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  int rc = 0;
  pthread_mutex_lock(&l->qlock);
  uint64_t seq = l->snap_seq;
  atomic_store_explicit(&l->snap_want, 1, memory_order_release);
  while (l->snap_seq == seq && rc == 0) rc = pthread_cond_timedwait(&l->snap_cond, &l->qlock, &until);
  if (l->snap_seq != seq) {
    *out = l->snap;
    rc = 0;
  } else {
    rc = -ETIMEDOUT;
  }
  pthread_mutex_unlock(&l->qlock);
  return rc;
}

int mior_lwip_stop(mior_lwip *l) {
  if (!l) return 0;
  if (l->netif_added) {
    /* First take the netif out of lwIP (the driver keeps running, so lwIP's last frames still
     * go out), then stop the driver, which closes the transport if nothing is held. */
    atomic_store_explicit(&l->stopping, 1, memory_order_release);
    LOCK_TCPIP_CORE();
    netif_set_down(&l->netif);
    netif_remove(&l->netif);
    UNLOCK_TCPIP_CORE();
    l->netif_added = 0;
  }
  if (l->thread_started) {
    atomic_store_explicit(&l->stop, 1, memory_order_release);
    pthread_join(l->thread, NULL);
    l->thread_started = 0;
  }
  int rc;
  if (l->closed) {
    rc = l->close_rc;
  } else {
    /* A held slot is freed by lwIP later through rx_pbuf_free, which needs the port: keep it. */
    if (atomic_load(&l->held) != 0) return -EBUSY;
    rc = mior_transport_close(l->t);
  }
  pthread_cond_destroy(&l->snap_cond);
  pthread_mutex_destroy(&l->qlock);
  free(l->endpoint);
  free(l->q);
  free(l);
  return rc;
}

uint32_t mior_lwip_holders(mior_lwip *l, char *buf, size_t len) {
  if (!l) return 0;
  uint32_t held = atomic_load(&l->held), conns = 0, refused = 0, ooseq = 0;
  LOCK_TCPIP_CORE();
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
    conns++;
    if (pcb->refused_data) refused++;
#if TCP_QUEUE_OOSEQ
    if (pcb->ooseq) ooseq++;
#endif
  }
  UNLOCK_TCPIP_CORE();
  if (buf && len)
    snprintf(buf, len,
             "%u received slot(s) still held: %u TCP connection(s) open in lwIP (%u with data "
             "refused by the application, %u with out-of-order data); the rest is data handed to "
             "the application and not yet freed",
             held, conns, refused, ooseq);
  return held;
}
