/* The AF_PACKET transmit ring (PACKET_TX_RING, TPACKET_V2) that packet ports on the io_uring
 * backend send through.
 *
 * The ring is a run of fixed-size frames shared with the kernel.  User space copies an Ethernet
 * frame into the next frame whose status is TP_STATUS_AVAILABLE and sets TP_STATUS_SEND_REQUEST;
 * one send() on the socket with no buffer (a "kick", which kick.c issues as an io_uring SEND)
 * then makes the kernel transmit every requested frame in ring order (tpacket_snd), building
 * each skb around the ring page instead of copying.  The kernel sets the status back to
 * TP_STATUS_AVAILABLE when the skb is freed.  See the kernel's
 * Documentation/networking/packet_mmap.rst.
 *
 * Once a socket has a TX ring, every send on it goes through the ring (packet_sendmsg ignores the
 * buffer), so a port that has one must send everything this way.
 *
 * Linear frames: on a socket that does not receive, each ring frame starts with a struct
 * virtio_net_hdr whose hdr_len is the whole frame, so the kernel copies it into a linear skb
 * instead of a page fragment (why, and what it buys: docs/ARCHITECTURE.md, the TX ring).
 *
 * Driving-thread only, except mior__txring_close.
 */
#ifndef MIOR_LINUX_PACKET_RING_H
#define MIOR_LINUX_PACKET_RING_H

#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <stdint.h>
#include <string.h>

#include "mior/transport.h"

/* Frame data starts after the TPACKET_V2 header (the kernel's default without
 * PACKET_TX_HAS_OFF: tp_hdrlen - sizeof(struct sockaddr_ll)). */
#define MIOR__TXRING_DATA_OFF (TPACKET2_HDRLEN - sizeof(struct sockaddr_ll))

typedef struct mior__txring {
  uint8_t *map;          /* the mmapped ring */
  size_t map_len;
  uint32_t frame_size;   /* bytes per frame, header included; frames are contiguous */
  uint32_t frame_nr;     /* a power of two */
  uint32_t mask;         /* frame_nr - 1 */
  uint32_t head;         /* next frame to fill */
  uint32_t last;         /* the frame filled last (meaningful once one was) */
  uint32_t confirm;      /* oldest frame filled whose fate is not yet counted */
  uint32_t unconfirmed;  /* frames filled and not yet counted (confirm .. head) */
  uint32_t min_len;      /* shortest frame the device takes (its link-layer header) */
  uint32_t max_len;      /* longest frame without a VLAN tag: MTU at open + link header */
  int vlan_extra;        /* Ethernet: 802.1Q-tagged frames may be 4 bytes longer (as the kernel
                            allows) */
  uint32_t vnet;         /* bytes of struct virtio_net_hdr before each frame: 0, or 10 for linear
                            frames */
} mior__txring;

/* Set up a TX ring on fd, a bound AF_PACKET SOCK_RAW socket on interface ifname, for frames of up
 * to slot_size bytes sent in batches of `batch` (a few batches fit, within a memory bound); linear:
 * the socket never receives, so frames may carry a virtio_net_hdr (above).  Returns 0, or a
 * negative errno when the kernel or the device will not have one (the socket is then left as it
 * was, without a ring, so per-frame sends still work).  A failure that leaves the socket changed
 * and unable to send is reported as -EIO with mior__fail detail. */
int mior__txring_open(mior__txring *t, int fd, const char *ifname, uint32_t slot_size, uint32_t batch,
                      int linear);

/* Unmap the ring.  Frames the kernel is still transmitting (status SENDING) are waited for, for a
 * few milliseconds at most; after that the socket may be closed anyway: the kernel holds its own
 * references to the pages of the frames in flight. */
void mior__txring_close(mior__txring *t);

/* 0 if a frame of len bytes starting at data can go out on this link, else the negative errno the
 * kernel would give it (-EINVAL shorter than the link header, -EMSGSIZE longer than the MTU).
 * Checking before the copy matters: a frame the kernel refuses in the ring is dropped there
 * without a trace (PACKET_LOSS), where a per-frame send would have failed visibly. */
static inline int mior__txring_check(const mior__txring *t, const uint8_t *data, uint32_t len) {
  if (len < t->min_len) return -EINVAL;
  if (len <= t->max_len) return 0;
  /* The kernel takes 4 more bytes on Ethernet when the frame carries an 802.1Q tag. */
  if (t->vlan_extra && len <= t->max_len + 4 && data[12] == 0x81 && data[13] == 0x00) return 0;
  return -EMSGSIZE;
}

static inline struct tpacket2_hdr *mior__txring_frame(const mior__txring *t, uint32_t i) {
  return (struct tpacket2_hdr *)(t->map + (size_t)i * t->frame_size);
}

/* A frame is the user's once the kernel has let go of it: neither waiting to be sent, nor being
 * sent, nor refused (the timestamp bits the kernel may add do not matter). */
static inline int mior__txring_frame_free(uint32_t status) {
  return (status & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT)) == 0;
}

/* Count the frames the kernel has taken since the last call, oldest first, up to the first it has
 * not taken yet: each one the kernel took (sending or sent) adds to *packets and *bytes, each it
 * refused (WRONG_FORMAT, which the checks before the copy should make impossible) to *refused,
 * and is made available again.  A frame is counted as sent only here, never when it is copied
 * into the ring: a kick that fails (the link went down) leaves its frames unsent and uncounted. */
static inline void mior__txring_confirm(mior__txring *t, uint64_t *packets, uint64_t *bytes,
                                        uint64_t *refused) {
  while (t->unconfirmed) {
    struct tpacket2_hdr *h = mior__txring_frame(t, t->confirm);
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (st & TP_STATUS_SEND_REQUEST) break;
    if (st & TP_STATUS_WRONG_FORMAT) {
      (*refused)++;
      __atomic_store_n(&h->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
    } else {
      (*packets)++;
      *bytes += h->tp_len - t->vnet;
    }
    t->confirm = (t->confirm + 1) & t->mask;
    t->unconfirmed--;
  }
}

/* Copy a checked frame into the next free ring frame and mark it for sending.  Returns 1, or 0
 * when the kernel still owns the next frame (the ring is full: try again after it sent some). */
static inline int mior__txring_put(mior__txring *t, const uint8_t *data, uint32_t len) {
  struct tpacket2_hdr *h = mior__txring_frame(t, t->head);
  /* A frame whose fate is not counted yet is not reused (mior__txring_confirm first). */
  if (t->unconfirmed > t->mask) return 0;
  /* Acquire: the kernel's last use of the frame happens before we overwrite it. */
  if (!mior__txring_frame_free(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE))) return 0;
  uint8_t *d = (uint8_t *)h + MIOR__TXRING_DATA_OFF;
  if (t->vnet) {
    /* No offloads; hdr_len (in host order, as the kernel reads a legacy header) is how much of
     * the frame goes into the skb's linear part: all of it. */
    struct virtio_net_hdr v;
    memset(&v, 0, sizeof v);
    v.hdr_len = (uint16_t)len;
    memcpy(d, &v, sizeof v);
    d += sizeof v;
  }
  memcpy(d, data, len);
  h->tp_len = t->vnet + len;
  h->tp_snaplen = t->vnet + len;
  /* Release: the kernel reads the status first (then a read barrier), so the frame and its length
   * must be visible before the status says SEND_REQUEST. */
  __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
  t->last = t->head;
  t->head = (t->head + 1) & t->mask;
  t->unconfirmed++;
  return 1;
}

/* 1 if the frame filled last is still waiting for the kernel to take it (the last kick stopped
 * before it, or has not run yet). */
static inline int mior__txring_unsent(const mior__txring *t) {
  const struct tpacket2_hdr *h = mior__txring_frame(t, t->last);
  return (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_SEND_REQUEST) != 0;
}

#endif
