/* bench baseline: AF_PACKET with memory-mapped rings, across the veth only.
 *
 *   sender:   PACKET_TX_RING (TPACKET_V2): frames written into the ring, marked
 *             TP_STATUS_SEND_REQUEST, one send(MSG_DONTWAIT) per --batch frames to kick the
 *             kernel; a full ring waits in poll(POLLOUT).  The socket's protocol is 0, so it
 *             receives nothing.
 *   receiver: PACKET_RX_RING (TPACKET_V3, block-based), walking each retired block; only our
 *             frames (magic in the payload) are counted.
 * The frames go to the "other host" MAC like mior-perf's packet kind, so the peer's IP stack
 * drops them at once (docs/MIOR-PERF.md).
 */
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "bl.h"

#define TX_FRAME 2048u
#define TX_FRAMES 1024u
#define TX_BLOCK (64u * 1024u)
#define RX_BLOCK (1u << 20)
#define RX_BLOCKS 16u
#define RX_FRAME 2048u

typedef struct pk_state {
  int fd;
  uint8_t *map;
  size_t map_len;
} pk_state;

static int pk_open(bl_side *s) {
  pk_state *k = calloc(1, sizeof *k);
  if (!k) return bl_fail(s, ENOMEM, "allocating");
  s->priv = k;
  k->fd = socket(AF_PACKET, SOCK_RAW, s->is_tx ? 0 : htons(ETH_P_ALL));
  if (k->fd < 0) return bl_fail(s, errno, "socket(AF_PACKET)");
  bl_sockbufs(k->fd); /* the TX ring's frames count against the send buffer */
  int ver = s->is_tx ? TPACKET_V2 : TPACKET_V3;
  if (setsockopt(k->fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof ver) < 0)
    return bl_fail(s, errno, "PACKET_VERSION");
  if (s->is_tx) {
    struct tpacket_req req = {TX_BLOCK, TX_FRAMES * TX_FRAME / TX_BLOCK, TX_FRAME, TX_FRAMES};
    if (setsockopt(k->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0)
      return bl_fail(s, errno, "PACKET_TX_RING");
    k->map_len = (size_t)req.tp_block_size * req.tp_block_nr;
  } else {
    struct tpacket_req3 req;
    memset(&req, 0, sizeof req);
    req.tp_block_size = RX_BLOCK;
    req.tp_block_nr = RX_BLOCKS;
    req.tp_frame_size = RX_FRAME;
    req.tp_frame_nr = RX_BLOCK / RX_FRAME * RX_BLOCKS;
    req.tp_retire_blk_tov = 1; /* ms: hand over a partly filled block quickly */
    if (setsockopt(k->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0)
      return bl_fail(s, errno, "PACKET_RX_RING");
    k->map_len = (size_t)req.tp_block_size * req.tp_block_nr;
  }
  k->map = mmap(NULL, k->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, k->fd, 0);
  if (k->map == MAP_FAILED) {
    k->map = NULL;
    return bl_fail(s, errno, "mmap ring");
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = s->is_tx ? 0 : htons(ETH_P_ALL);
  sll.sll_ifindex = s->is_tx ? s->env->ifindex_tx : s->env->ifindex_rx;
  if (bind(k->fd, (struct sockaddr *)&sll, sizeof sll) < 0) return bl_fail(s, errno, "bind");
  if (s->is_tx) {
    /* Every slot gets the headers once; the loop only writes the sequence number. */
    uint32_t off = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
    for (uint32_t i = 0; i < TX_FRAMES; i++) bl_frame_build(s->env, k->map + (size_t)i * TX_FRAME + off, s->cfg->size, 0);
  }
  return 0;
}

static void pk_close(bl_side *s) {
  pk_state *k = s->priv;
  if (!k) return;
  if (k->map) munmap(k->map, k->map_len);
  if (k->fd >= 0) close(k->fd);
  free(k);
  s->priv = NULL;
}

static int pk_tx(bl_side *s) {
  pk_state *k = s->priv;
  uint32_t batch = s->cfg->batch, size = s->cfg->size, idx = 0;
  uint32_t off = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
  uint64_t seq = 0, sent = 0;
  while (!bl_stopping(s)) {
    uint32_t want = bl_rate_allow(s, batch), n = 0;
    for (; n < want; n++) {
      struct tpacket2_hdr *h = (struct tpacket2_hdr *)(k->map + (size_t)idx * TX_FRAME);
      if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) break;
      bl_payload_put((uint8_t *)h + off + 42, seq++);
      h->tp_len = size;
      __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
      idx = (idx + 1) % TX_FRAMES;
    }
    if (n) {
      if (send(k->fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
        return bl_fail(s, errno, "send (kick the TX ring)");
      sent += n;
      atomic_store_explicit(&s->count, sent, memory_order_relaxed);
    }
    if (n < want) {
      /* Ring full: the kernel frees slots as the frames leave; wait a little for that. */
      struct pollfd pfd = {k->fd, POLLOUT, 0};
      poll(&pfd, 1, 10);
    }
  }
  return 0;
}

static int pk_rx(bl_side *s) {
  pk_state *k = s->priv;
  uint32_t blk = 0;
  uint64_t n = 0;
  while (!bl_stopping(s)) {
    struct tpacket_block_desc *bd = (struct tpacket_block_desc *)(k->map + (size_t)blk * RX_BLOCK);
    if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
      struct pollfd pfd = {k->fd, POLLIN | POLLERR, 0};
      poll(&pfd, 1, 100); /* bounded: see the stop flag */
      continue;
    }
    uint32_t num = bd->hdr.bh1.num_pkts;
    struct tpacket3_hdr *h = (struct tpacket3_hdr *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
    for (uint32_t i = 0; i < num; i++) {
      if (bl_frame_ours((uint8_t *)h + h->tp_mac, h->tp_snaplen)) n++;
      h = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
    }
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    blk = (blk + 1) % RX_BLOCKS;
    atomic_store_explicit(&s->count, n, memory_order_relaxed);
  }
  return 0;
}

static const bl_method m_packet = {"packet", BL_KIND_FRAME, 1, 64, pk_open, pk_rx, pk_open, pk_tx, pk_close};

int main(int argc, char **argv) {
  const bl_method *const ms[] = {&m_packet};
  return bl_throughput_main(argc, argv, ms, 1);
}
