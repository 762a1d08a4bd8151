/* Setting up and tearing down the AF_PACKET transmit ring (see txring.h). */
#include "linux/uring/txring.h"

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/internal.h"
#include "common/os.h"

/* The ring's pages are kernel memory that cannot be swapped: at most the default send buffer
 * (4 MiB), which bounds the bytes in flight anyway. */
#define TXRING_MAX_BYTES (4u << 20)
#define TXRING_MAX_FRAMES 4096u
#define TXRING_MIN_FRAMES 64u
/* Batches of sends (one kick each) the ring holds. */
#define TXRING_BATCHES 4u
/* How long close waits for frames the kernel is still transmitting. */
#define TXRING_CLOSE_WAIT_NS (20u * 1000000u)

static uint32_t pow2_floor(uint32_t v) {
  uint32_t p = 1;
  while (p <= v / 2) p <<= 1;
  return p;
}

static uint32_t pow2_ceil(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

/* The link's MTU and hardware type, from the socket's own network namespace. */
static int link_info(int fd, const char *ifname, int *mtu, int *type) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFMTU, &ifr) < 0) return -errno;
  *mtu = ifr.ifr_mtu;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) return -errno;
  *type = ifr.ifr_hwaddr.sa_family;
  return 0;
}

/* Undo PACKET_VNET_HDR after a failed setup, so per-frame sends see plain frames again. */
static int vnet_off(int fd, int err) {
  int zero = 0;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &zero, sizeof zero) < 0)
    return mior__fail(-EIO, "PACKET_TX_RING setup failed (%s) and PACKET_VNET_HDR could not be undone: %s",
                      strerror(-err), strerror(errno));
  return err;
}

static int ring_setup(mior__txring *t, int fd, uint32_t block_size, uint32_t frame_size, uint32_t frames);

int mior__txring_open(mior__txring *t, int fd, const char *ifname, uint32_t slot_size, uint32_t batch,
                      int linear) {
  memset(t, 0, sizeof *t);
  int mtu = 0, type = 0;
  int rc = link_info(fd, ifname, &mtu, &type);
  if (rc < 0) return rc;
  /* Only links with an Ethernet header (Ethernet, veth, loopback): there mior knows the bounds
   * the kernel will check each frame against, and can refuse a frame before it reaches the ring,
   * where a refusal would go unreported.  Other links keep per-frame sends. */
  if ((type != ARPHRD_ETHER && type != ARPHRD_LOOPBACK) || mtu <= 0 || mtu > (1 << 20)) return -EOPNOTSUPP;
  t->min_len = 14;
  t->max_len = (uint32_t)mtu + 14u;
  t->vlan_extra = type == ARPHRD_ETHER;

  /* Frame size: the longest frame this port can send (its slot, or the link's limit if lower)
   * behind the TPACKET_V2 header.  Up to a page, a power of two so frames pack pages exactly;
   * above, whole pages.  Either way the frames are contiguous in the mapping. */
  uint32_t longest = t->max_len + (t->vlan_extra ? 4u : 0u);
  if (slot_size < longest) longest = slot_size;
  uint32_t vnet = linear ? (uint32_t)sizeof(struct virtio_net_hdr) : 0u;
  uint32_t need = (uint32_t)MIOR__TXRING_DATA_OFF + vnet + longest;
  uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE);
  uint32_t frame_size, block_size;
  if (need <= page) {
    frame_size = pow2_ceil(need < TPACKET_ALIGNMENT ? TPACKET_ALIGNMENT : need);
    block_size = page;
  } else {
    frame_size = (need + page - 1) / page * page;
    block_size = frame_size;
  }
  /* Frames: a few batches, so the application can queue the next batches while the device still
   * sends the last (a device that frees frames at once, like veth, needs only one).  Not more:
   * the frames are written in turn, and a ring larger than the cache makes every copy into it a
   * cache miss.  Within the memory bound, and at least a block's worth. */
  uint32_t frames = pow2_ceil(batch * TXRING_BATCHES);
  if (frames < TXRING_MIN_FRAMES) frames = TXRING_MIN_FRAMES;
  if (frames > TXRING_MAX_FRAMES) frames = TXRING_MAX_FRAMES;
  uint32_t by_mem = pow2_floor(TXRING_MAX_BYTES / frame_size ? TXRING_MAX_BYTES / frame_size : 1);
  if (frames > by_mem) frames = by_mem;
  uint32_t per_block = block_size / frame_size;
  if (frames < per_block) frames = per_block;

  /* Before the ring: the kernel refuses to change it once a ring exists. */
  if (vnet) {
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) return -errno;
  }
  rc = ring_setup(t, fd, block_size, frame_size, frames);
  if (rc < 0) return vnet && rc != -EIO ? vnet_off(fd, rc) : rc;
  t->vnet = vnet;
  return 0;
}

static int ring_setup(mior__txring *t, int fd, uint32_t block_size, uint32_t frame_size, uint32_t frames) {
  uint32_t per_block = block_size / frame_size;
  int ver = TPACKET_V2;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof ver) < 0) return -errno;
  /* PACKET_LOSS: a frame the kernel refuses is dropped and the ring goes on.  Without it the
   * kernel stops at that frame, marks it WRONG_FORMAT and sends nothing behind it until user
   * space hands it back; mior checks lengths first (mior__txring_check), so this only covers what
   * changed after open (a smaller MTU). */
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0) return -errno;
  struct tpacket_req req;
  memset(&req, 0, sizeof req);
  req.tp_block_size = block_size;
  req.tp_block_nr = frames / per_block;
  req.tp_frame_size = frame_size;
  req.tp_frame_nr = frames;
  if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0) return -errno;
  size_t len = (size_t)req.tp_block_size * req.tp_block_nr;
  /* MAP_POPULATE: no page faults on the first pass over the ring.  No MAP_LOCKED: the pages are
   * the kernel's and cannot be swapped out anyway; locking would only count against
   * RLIMIT_MEMLOCK. */
  void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (map == MAP_FAILED) {
    int err = errno;
    /* Take the ring off again (a zero-sized request), or every send on the socket would go to
     * a ring nobody fills. */
    memset(&req, 0, sizeof req);
    if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0)
      return mior__fail(-EIO, "mmap(PACKET_TX_RING): %s, and removing the ring failed: %s", strerror(err),
                        strerror(errno));
    return -err;
  }
  t->map = map;
  t->map_len = len;
  t->frame_size = frame_size;
  t->frame_nr = frames;
  t->mask = frames - 1;
  return 0;
}

/* Frames whose status has any of the bits in `status`. */
static uint32_t count_frames(const mior__txring *t, uint32_t status) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < t->frame_nr; i++) {
    if (__atomic_load_n(&mior__txring_frame(t, i)->tp_status, __ATOMIC_ACQUIRE) & status) n++;
  }
  return n;
}

void mior__txring_close(mior__txring *t) {
  if (!t->map) return;
  /* Frames being transmitted finish while the socket is open, so that close does not cut off
   * what was already handed over.  Bounded: a stuck device must not hang close, and what is left
   * is safe to abandon (the kernel's skbs hold their own references to the pages).  Frames still
   * waiting for a kick are not waited for: nothing will send them now. */
  uint64_t end = mior__now_ns() + TXRING_CLOSE_WAIT_NS;
  while (count_frames(t, TP_STATUS_SENDING) > 0 && mior__now_ns() < end) {
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
  munmap(t->map, t->map_len);
  t->map = NULL;
}
