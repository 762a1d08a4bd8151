/* bench baseline: AF_XDP (libxdp's xsk API, Debian libxdp-dev), across the veth only.
 *
 *   receiver: an XSK on the receiving veth's queue 0 with libxdp's default redirect program in
 *             native (driver) mode, copy bind (veth has no zero-copy); the fill ring is kept full
 *             and every received frame is handed straight back to it.
 *   sender:   an XSK on the sending veth, TX only, copy mode (no XDP program needed to send);
 *             --batch descriptors per kick (sendto MSG_DONTWAIT), completions reaped in bulk.
 * Frames go to the "other host" MAC like the other frame baselines.
 */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include "bl.h"

#define NFRAMES 4096u
#define FRAME XSK_UMEM__DEFAULT_FRAME_SIZE
#define RING 2048u

typedef struct xd_state {
  void *area;
  struct xsk_umem *umem;
  struct xsk_socket *xsk;
  struct xsk_ring_prod fill, tx;
  struct xsk_ring_cons comp, rx;
  uint64_t free_addr[NFRAMES];
  uint32_t nfree;
} xd_state;

static int xd_open(bl_side *s) {
  xd_state *x = calloc(1, sizeof *x);
  if (!x) return bl_fail(s, ENOMEM, "allocating");
  s->priv = x;
  size_t len = (size_t)NFRAMES * FRAME;
  x->area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (x->area == MAP_FAILED) {
    x->area = NULL;
    return bl_fail(s, errno, "mmap umem");
  }
  struct xsk_umem_config uc = {NFRAMES, RING, FRAME, 0, 0};
  int rc = xsk_umem__create(&x->umem, x->area, len, &x->fill, &x->comp, &uc);
  if (rc) return bl_fail(s, rc, "xsk_umem__create");
  struct xsk_socket_config sc;
  memset(&sc, 0, sizeof sc);
  sc.rx_size = RING;
  sc.tx_size = RING;
  sc.bind_flags = XDP_COPY;
  if (s->is_tx) {
    sc.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
    rc = xsk_socket__create(&x->xsk, s->env->if_tx, 0, x->umem, NULL, &x->tx, &sc);
    if (rc) return bl_fail(s, rc, "xsk_socket__create (tx, copy mode)");
    for (uint32_t i = 0; i < NFRAMES; i++) {
      x->free_addr[i] = (uint64_t)i * FRAME;
      bl_frame_build(s->env, (uint8_t *)x->area + x->free_addr[i], s->cfg->size, 0);
    }
    x->nfree = NFRAMES;
  } else {
    sc.xdp_flags = XDP_FLAGS_DRV_MODE;
    rc = xsk_socket__create(&x->xsk, s->env->if_rx, 0, x->umem, &x->rx, NULL, &sc);
    if (rc) return bl_fail(s, rc, "xsk_socket__create (rx, native XDP, copy mode)");
    uint32_t idx;
    uint32_t n = xsk_ring_prod__reserve(&x->fill, RING, &idx);
    for (uint32_t i = 0; i < n; i++) *xsk_ring_prod__fill_addr(&x->fill, idx + i) = (uint64_t)i * FRAME;
    xsk_ring_prod__submit(&x->fill, n);
  }
  return 0;
}

static void xd_close(bl_side *s) {
  xd_state *x = s->priv;
  if (!x) return;
  if (x->xsk) xsk_socket__delete(x->xsk); /* also detaches libxdp's program */
  if (x->umem) xsk_umem__delete(x->umem);
  if (x->area) munmap(x->area, (size_t)NFRAMES * FRAME);
  free(x);
  s->priv = NULL;
}

static int xd_tx(bl_side *s) {
  xd_state *x = s->priv;
  uint32_t batch = s->cfg->batch, size = s->cfg->size;
  uint64_t seq = 0, done = 0;
  int fd = xsk_socket__fd(x->xsk);
  while (!bl_stopping(s)) {
    uint32_t idx, n = 0;
    uint32_t want = x->nfree < batch ? x->nfree : batch;
    if (want) want = bl_rate_allow(s, want);
    if (want) n = xsk_ring_prod__reserve(&x->tx, want, &idx);
    for (uint32_t i = 0; i < n; i++) {
      struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx + i);
      d->addr = x->free_addr[--x->nfree];
      d->len = size;
      bl_payload_put((uint8_t *)x->area + d->addr + 42, seq++);
    }
    if (n) xsk_ring_prod__submit(&x->tx, n);
    /* Copy mode sends in the kick itself; EAGAIN/EBUSY mean "try again after completions". */
    if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN && errno != EBUSY &&
        errno != ENOBUFS && errno != ENETDOWN && errno != EINTR)
      return bl_fail(s, errno, "sendto (kick)");
    uint32_t cidx, c = xsk_ring_cons__peek(&x->comp, RING, &cidx);
    for (uint32_t i = 0; i < c; i++) x->free_addr[x->nfree++] = *xsk_ring_cons__comp_addr(&x->comp, cidx + i);
    if (c) xsk_ring_cons__release(&x->comp, c);
    done += c;
    atomic_store_explicit(&s->count, done, memory_order_relaxed);
  }
  return 0;
}

static int xd_rx(bl_side *s) {
  xd_state *x = s->priv;
  uint64_t n = 0;
  int fd = xsk_socket__fd(x->xsk);
  while (!bl_stopping(s)) {
    uint32_t idx, fidx;
    uint32_t got = xsk_ring_cons__peek(&x->rx, 256, &idx);
    if (!got) {
      struct pollfd pfd = {fd, POLLIN, 0};
      poll(&pfd, 1, 100); /* bounded: see the stop flag */
      continue;
    }
    /* The fill ring has room for every frame we just took (they came from it). */
    while (xsk_ring_prod__reserve(&x->fill, got, &fidx) != got) {
      if (bl_stopping(s)) return 0;
    }
    for (uint32_t i = 0; i < got; i++) {
      const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
      if (bl_frame_ours(xsk_umem__get_data(x->area, d->addr), d->len)) n++;
      *xsk_ring_prod__fill_addr(&x->fill, fidx + i) = xsk_umem__extract_addr(d->addr);
    }
    xsk_ring_prod__submit(&x->fill, got);
    xsk_ring_cons__release(&x->rx, got);
    atomic_store_explicit(&s->count, n, memory_order_relaxed);
  }
  return 0;
}

static const bl_method m_xdp = {"xdp", BL_KIND_FRAME, 1, 64, xd_open, xd_rx, xd_open, xd_tx, xd_close};

/* libbpf and libxdp narrate their fallbacks (no bpffs, so no dispatcher) on stderr; only
 * warnings that matter reach the user through the errors returned. */
static int quiet_bpf(enum libbpf_print_level l, const char *f, va_list ap) {
  (void)l, (void)f, (void)ap;
  return 0;
}
static int quiet_xdp(enum libxdp_print_level l, const char *f, va_list ap) {
  (void)l, (void)f, (void)ap;
  return 0;
}

int main(int argc, char **argv) {
  const bl_method *const ms[] = {&m_xdp};
  libbpf_set_print(quiet_bpf);
  libxdp_set_print(quiet_xdp);
  return bl_throughput_main(argc, argv, ms, 1);
}
