/* Fuzz the receive path of a port end to end: bytes as if they came off a packet:// (Ethernet
 * frames), ip:// (IP packets) or udp:// port go through the front end (src/common/port.c), a
 * receiver that parses them, synthesizes an Ethernet header for IP-level packets, keeps some and
 * releases them later, and echoes some back through mior_tx_acquire / mior_tx_send.
 *
 * The port runs on a "feed" backend defined here, under the real backend contract: it hands the
 * fuzzer's records out as receive completions (including error and truncated ones) and completes
 * sends fully, short or with an error as the input says.  So the fuzzer drives every branch of the
 * front end's completion handling, not only the parsers.  At the end the port is closed and must
 * account for every slot (mior__port_close returns 0, never "a lost buffer").
 *
 * Input: byte 0 picks the kind (bits 0-1) and the receiver's policy (bits 2-7); then records of
 * [u16 big-endian header][bytes].  Header bit 15 set: an error completion (bits 0-2 pick the
 * error) instead of data; else bits 0-11 are the datagram length (longer than a slot: truncated).
 */
#include <errno.h>

#include "common/port.h"
#include "fuzz_common.h"

#ifndef FUZZ_ENTRY_NAME
#define FUZZ_ENTRY_NAME LLVMFuzzerTestOneInput
#endif

#define RX_BUF_COUNT 16u
#define RX_BUF_SIZE 512u
#define RX_DEPTH 8u
#define RX_BATCH 4u

static const int rx_errors[8] = {-ENOBUFS, -ECONNREFUSED, -EMSGSIZE, -ECANCELED,
                                 -EAGAIN,  -EINTR,        -EBADMSG,  -ENOTCONN};

/* The input being fed, read by the backend (the harness is single-threaded). */
static struct rx_feed {
  const uint8_t *p, *end;
  uint8_t policy;
} rx_feed;

static int feed_byte(void) {
  if (rx_feed.p >= rx_feed.end) return -1;
  return *rx_feed.p++;
}

struct mior__io {
  mior_pool_region region;
  uint32_t rx[RX_BUF_COUNT];
  uint32_t rx_n;
  struct {
    uint32_t slot, len;
  } tx[RX_BUF_COUNT];
  uint32_t tx_n;
  mior__cqe cq[2 * RX_BUF_COUNT + 8];
  uint32_t cq_n, cq_head;
};

static mior__cqe *feed_push(struct mior__io *r) {
  FUZZ_ASSERT(r->cq_n < sizeof r->cq / sizeof r->cq[0]);
  mior__cqe *c = &r->cq[r->cq_n++];
  memset(c, 0, sizeof *c);
  return c;
}

static int feed_supported(char *why, size_t len) {
  (void)why, (void)len;
  return 1;
}
static int feed_open(struct mior__io **out, const mior__io_cfg *cfg, uint32_t *features) {
  struct mior__io *r = calloc(1, sizeof *r);
  FUZZ_ASSERT(r != NULL);
  r->region = cfg->region;
  *features = 0;
  *out = r;
  return 0;
}
static int feed_bind(struct mior__io *r) {
  (void)r;
  return 0;
}
static uint32_t feed_rx_post(struct mior__io *r, const uint32_t *slots, uint32_t n) {
  /* Take fewer than offered now and then: the front end must keep the rest. */
  if (n > 1 && (rx_feed.policy & 0x80)) n--;
  for (uint32_t i = 0; i < n; i++) {
    FUZZ_ASSERT(slots[i] < r->region.buf_count);
    FUZZ_ASSERT(r->rx_n < RX_BUF_COUNT);
    r->rx[r->rx_n++] = slots[i];
  }
  return n;
}
static int feed_tx_queue(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                         const mior_addr *dst) {
  (void)dst;
  FUZZ_ASSERT(slot < r->region.buf_count && off + (size_t)len <= r->region.buf_size && len > 0);
  if (r->tx_n == RX_BUF_COUNT) return -EAGAIN;
  r->tx[r->tx_n].slot = slot;
  r->tx[r->tx_n].len = len;
  r->tx_n++;
  return 0;
}
static int feed_submit(struct mior__io *r, int wait, int64_t timeout_us) {
  (void)wait, (void)timeout_us;
  /* Sends complete fully, short, or with an error, as the next input byte says. */
  for (uint32_t i = 0; i < r->tx_n; i++) {
    int b = feed_byte();
    mior__cqe *c = feed_push(r);
    c->op = MIOR__OP_TX;
    c->slot = r->tx[i].slot;
    c->off = r->tx[i].len;
    c->res = (int32_t)r->tx[i].len;
    if (b >= 0 && (b & 3) == 1) c->res = (int32_t)(r->tx[i].len / 2);
    if (b >= 0 && (b & 3) == 2) c->res = rx_errors[(b >> 2) & 7];
  }
  r->tx_n = 0;
  /* Receives: one record per posted slot, up to a batch per submit. */
  for (uint32_t k = 0; k < RX_BATCH && r->rx_n > 0; k++) {
    int hi = feed_byte(), lo = feed_byte();
    if (hi < 0 || lo < 0) break;
    uint32_t hdr = ((uint32_t)hi << 8) | (uint32_t)lo;
    if (hdr & 0x8000u) {
      mior__cqe *c = feed_push(r);
      c->op = MIOR__OP_RX;
      c->res = rx_errors[hdr & 7];
      /* A failed multishot arm carries no slot; a failed posted receive returns its slot. */
      c->slot = (hdr & 0x10) ? MIOR__NO_SLOT : r->rx[--r->rx_n];
      continue;
    }
    uint32_t len = hdr & 0xfffu;
    size_t avail = (size_t)(rx_feed.end - rx_feed.p);
    if (len > avail) len = (uint32_t)avail;
    uint32_t slot = r->rx[--r->rx_n];
    uint32_t keep = len < RX_BUF_SIZE ? len : RX_BUF_SIZE;
    memcpy(mior_pool_region_slot(&r->region, slot), rx_feed.p, keep);
    rx_feed.p += len;
    mior__cqe *c = feed_push(r);
    c->op = MIOR__OP_RX;
    c->slot = slot;
    c->res = (int32_t)keep;
    c->flags = len > RX_BUF_SIZE ? MIOR__CQE_TRUNC : 0;
    c->src.family = MIOR_AF_INET;
    c->src.port = (uint16_t)len;
  }
  return 0;
}
static uint32_t feed_reap(struct mior__io *r, mior__cqe *out, uint32_t max) {
  uint32_t n = 0;
  while (n < max && r->cq_head < r->cq_n) out[n++] = r->cq[r->cq_head++];
  if (r->cq_head == r->cq_n) r->cq_head = r->cq_n = 0;
  return n;
}
static int feed_cancel(struct mior__io *r) {
  while (r->tx_n) {
    mior__cqe *c = feed_push(r);
    c->op = MIOR__OP_TX;
    c->slot = r->tx[--r->tx_n].slot;
    c->res = -ECANCELED;
  }
  while (r->rx_n) {
    mior__cqe *c = feed_push(r);
    c->op = MIOR__OP_RX;
    c->slot = r->rx[--r->rx_n];
    c->res = -ECANCELED;
  }
  return 0;
}
static uint32_t feed_outstanding(struct mior__io *r) {
  return r->rx_n + r->tx_n;
}
static int feed_close(struct mior__io *r) {
  free(r);
  return 0;
}

static const mior__backend_ops feed_ops = {
    .id = MIOR_BACKEND_SOCKETS, .name = "feed",         .supported = feed_supported,
    .open = feed_open,          .bind_thread = feed_bind, .rx_post = feed_rx_post,
    .tx_queue = feed_tx_queue,  .submit = feed_submit,  .reap = feed_reap,
    .cancel = feed_cancel,      .outstanding = feed_outstanding, .flags = MIOR__BACKEND_NO_SOCKET,
    .close = feed_close,
};

/* The receiver: what an application on a packet port does with hostile bytes. */
struct rx_app {
  enum mior__kind kind;
  mior_pkt kept[RX_BUF_COUNT];
  uint32_t nkept;
  uint32_t seen;
  uint8_t frame[RX_BUF_SIZE + 14];
};

static int rx_consume(void *ctx, mior_port *port, const mior_pkt *pkt) {
  struct rx_app *app = ctx;
  app->seen++;
  FUZZ_ASSERT(pkt->len <= pkt->cap && pkt->cap <= RX_BUF_SIZE && pkt->port == port);
  const uint8_t *f = pkt->data;
  size_t flen = pkt->len;
  if (app->kind == MIOR__KIND_IP) {
    static const uint8_t a[6] = {2, 0, 0, 0, 0, 1}, b[6] = {2, 0, 0, 0, 0, 2};
    int n = mior_eth_synthesize(app->frame, sizeof app->frame, pkt->data, pkt->len, a, b);
    FUZZ_ASSERT(n == -EBADMSG || n == (int)pkt->len + 14);
    if (n > 0) {
      f = app->frame;
      flen = (size_t)n;
    }
  }
  mior_frame_info fi;
  int rc = mior_frame_parse(f, flen, &fi);
  FUZZ_ASSERT(FUZZ_PARSE_RC_OK(rc));
  if (rc == 0 && !(fi.layers & MIOR_LAYER_FRAGMENT) &&
      (fi.layers & (MIOR_LAYER_UDP | MIOR_LAYER_TCP | MIOR_LAYER_ICMP | MIOR_LAYER_ICMPV6)))
    FUZZ_ASSERT(mior_frame_l4_csum_ok(f, flen, &fi) >= 0);
  /* Echo what parsed (the reply path of a responder), into a freshly acquired slot. */
  if ((rx_feed.policy & 0x04) && pkt->len > 0) {
    mior_pkt tx;
    if (mior_tx_acquire(port, &tx) == 0) {
      FUZZ_ASSERT(tx.cap == RX_BUF_SIZE);
      memcpy(tx.data, pkt->data, pkt->len);
      mior_addr dst = pkt->src;
      const mior_addr *d = app->kind == MIOR__KIND_UDP ? &dst : NULL;
      int s = mior_tx_send(port, &tx, pkt->len, d);
      FUZZ_ASSERT(s <= 0);
    }
  }
  /* Release an older kept packet now and then, as an application would. */
  if ((rx_feed.policy & 0x08) && app->nkept > 0 && (app->seen & 1))
    FUZZ_ASSERT(mior_pkt_release(&app->kept[--app->nkept]) == 0);
  if ((rx_feed.policy & 0x10) && app->nkept < RX_BUF_COUNT && (pkt->len & 1)) {
    app->kept[app->nkept++] = *pkt;
    return MIOR_KEEP;
  }
  return MIOR_DONE;
}

static void rx_flush(void *ctx, mior_port *port) {
  (void)ctx;
  FUZZ_ASSERT(mior_tx_flush(port) <= 0);
}

int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size);
int FUZZ_ENTRY_NAME(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const enum mior__kind kinds[4] = {MIOR__KIND_PACKET, MIOR__KIND_IP, MIOR__KIND_UDP,
                                           MIOR__KIND_PACKET};
  struct rx_app *app = calloc(1, sizeof *app);
  FUZZ_ASSERT(app != NULL);
  app->kind = kinds[data[0] & 3];
  rx_feed.policy = data[0];
  rx_feed.p = data + 1;
  rx_feed.end = data + size;

  mior_options o;
  mior_options_init(&o);
  o.buf_count = RX_BUF_COUNT;
  o.buf_size = RX_BUF_SIZE;
  o.rx_depth = RX_DEPTH;
  o.batch = RX_BATCH;
  o.sq_entries = 8;
  o.cq_entries = 16;
  mior__endpoint ep;
  memset(&ep, 0, sizeof ep);
  ep.kind = app->kind;
  mior__io_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.ep = &ep;
  cfg.opts = &o;
  cfg.queues = 1;
  struct mior_port *port = NULL;
  FUZZ_ASSERT(mior__port_open(&port, NULL, 0, &feed_ops, &cfg) == 0);
  port->receiver.consume = rx_consume;
  port->receiver.flush = rx_flush;
  port->receiver.ctx = app;

  /* Bounded: every poll consumes input or finds none left. */
  for (int i = 0; i < 4096; i++) {
    const uint8_t *before = rx_feed.p;
    int rc = mior_port_poll(port, 0, 0);
    FUZZ_ASSERT(rc >= 0);
    if (rx_feed.p == rx_feed.end || (rc == 0 && rx_feed.p == before && port->rx_posted == 0)) break;
  }
  mior_port_stats st;
  FUZZ_ASSERT(mior_port_stats_get(port, &st) == 0);
  FUZZ_ASSERT(st.user_held == app->nkept);
  uint32_t left = mior__port_shutdown(port);
  FUZZ_ASSERT(left == 0);
  while (app->nkept) FUZZ_ASSERT(mior_pkt_release(&app->kept[--app->nkept]) == 0);
  /* Every slot must come home: a lost one makes close fail. */
  FUZZ_ASSERT(mior__port_close(port, left) == 0);
  free(app);
  return 0;
}
