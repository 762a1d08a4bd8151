/* The io_uring backend.
 *
 * One ring per port.  The pool region is registered once (fixed buffers) and the socket as fixed
 * file 0.  Receives: one multishot receive feeding from a provided-buffer ring whose buffer ids are
 * the pool's slot indices (kernel 6.0+), or, where that is unavailable, one receive kept posted per
 * slot.  Sends: tx_queue only records the send; submit turns the queued sends into SQEs.  On a
 * connected UDP socket a run of sends of one length (the last may be shorter) becomes a single
 * SENDMSG with an iovec per slot and a UDP_SEGMENT control message (UDP GSO, Linux 4.18): the
 * kernel builds one large skb and cuts it into datagrams as late as it can, which saves the
 * per-datagram route, IP and device work on the way out.  A packet port sends through an AF_PACKET
 * TX ring (packet_ring.h) where the kernel allows one: submit copies each queued frame into the
 * ring, hands its slot back at once (the completion record is made right there), and one SEND with
 * no buffer on the socket, a "kick", makes the kernel send every frame marked since.  Anything
 * else is one SQE per packet.
 *
 * Setup tries the newest flags first and falls back on -EINVAL, as liburing's own tests do:
 * SINGLE_ISSUER|DEFER_TASKRUN (6.1), then COOP_TASKRUN (5.19), then plain.  The ring is created
 * disabled (R_DISABLED) and enabled by the thread that drives the port, because SINGLE_ISSUER binds
 * the ring to the task that enables it, and that is usually not the thread that opened it.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/internal.h"
#include "common/os.h"
#include "linux/packet_ring.h"
#include "linux/socket.h"

/* user_data: op in the top byte, requested length (sends) in the next 24 bits, slot below. */
enum { UD_RX = 1, UD_TX = 2, UD_MULTISHOT = 3, UD_CANCEL = 4, UD_GSO = 5, UD_KICK = 6, UD_RING_WAIT = 7 };
#define UD(op, len, slot) (((uint64_t)(op) << 56) | ((uint64_t)(len) << 32) | (uint64_t)(slot))
#define UD_OP(ud) ((unsigned)((ud) >> 56))
#define UD_LEN(ud) ((uint32_t)(((ud) >> 32) & 0xffffffu))
#define UD_SLOT(ud) ((uint32_t)(ud))

#define BUF_GROUP 0

#ifndef UDP_SEGMENT
#  define UDP_SEGMENT 103
#endif
/* UDP_MAX_SEGMENTS of kernels before 6.9 (later ones allow 128). */
#define GSO_MAX_SEGS 64
/* One GSO send is one IP packet before segmentation: the UDP payload plus the UDP header must fit
 * IPv4's 16-bit total length with its header, and IPv6's payload length; the smaller bound serves
 * both. */
#define GSO_MAX_BYTES (65535u - 8u - 40u)
/* GSO sends in flight at once; when all are busy, runs go out as single sends. */
#define GSO_RECORDS 128
#define REG_CHUNK_SHIFT 30 /* registered buffers are at most 1 GiB each */
/* A multishot receive ends at every empty datagram (the kernel stops on a zero-length read), so a
 * peer sending empty datagrams would force a re-arm each.  After this many such ends the port
 * receives through posted receives instead, which take empty datagrams in their stride. */
#define MS_ZERO_END_LIMIT 8
/* TX ring full and nothing else in flight that would complete: look again after this long.  The
 * kernel frees ring frames as the device sends them, which no completion reports. */
#define RING_WAIT_NS 50000

/* Per-slot message headers for sends with an address and posted receives that need the sender's
 * address.  They must stay put until the operation completes. */
struct slot_meta {
  struct msghdr msg;
  struct iovec iov;
  mior__sockaddr sa;
};

/* A send recorded by tx_queue, turned into an SQE at submit. */
struct tx_pend {
  uint32_t slot;
  uint32_t off;
  uint32_t len;    /* bit 31: the send has a destination (its msghdr is in meta[slot]) */
};
#define PEND_DST 0x80000000u

/* A send already done as far as the port is concerned (its frame was copied into the TX ring),
 * waiting to be handed out by reap. */
struct tx_done {
  uint32_t slot;
  int32_t res;     /* bytes, or a negative errno for a frame refused before the ring */
  uint32_t len;    /* bytes asked */
};

/* One GSO send: the kernel reads msg, iov and cmsg until the operation completes. */
struct gso_rec {
  struct msghdr msg;
  struct iovec iov[GSO_MAX_SEGS];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } cmsg;
  uint32_t slots[GSO_MAX_SEGS];
  uint32_t count;
  uint32_t done;   /* completion records already handed out for this send (reap resumes) */
  uint32_t seg;    /* segment size */
};

struct mior__ring {
  struct io_uring ring;
  mior__sock sock;
  int file;             /* fixed file index, or the fd */
  uint8_t sqe_flags;    /* IOSQE_FIXED_FILE when registered */
  int files_registered; /* the socket is in the ring's file table (it holds a reference) */
  int reg_buffers;
  int single_issuer;
  int defer_taskrun;
  int sqpoll;
  int enabled;
  /* liburing's private flags before the ring fd was registered: a registered ring fd belongs to
   * the thread that registered it (regfd_thread), and no other thread may use or unregister it. */
  uint8_t int_flags0;
  uint64_t regfd_thread;
  int canceling;
  mior_pool_region region;
  mior_port_stats *stats;
  struct slot_meta *meta;
  uint32_t tx_inflight;    /* slots in submitted sends */
  uint32_t tx_sqes;        /* send SQEs (sends, GSO sends, kicks) prepared so far, each one CQE */
  struct tx_pend *pend;    /* sends queued, not yet made into SQEs; one per slot at most */
  uint32_t npend;
  uint32_t nrequeued;      /* pend[0..nrequeued) are refused GSO sends put back since the last submit */
  /* UDP GSO: 0 off, 1 on but not yet confirmed by a completed send, 2 confirmed. */
  int gso;
  uint32_t gso_max_seg;    /* largest segment the path takes (route MTU minus headers) */
  struct gso_rec *gso_recs;
  uint32_t *gso_free;
  uint32_t gso_nfree;
  uint32_t posted;        /* posted receives outstanding */
  /* Posted receives kept in the kernel at once (see uring_rx_room): grows while every one comes
   * back full, falls to what the last reap brought. */
  uint32_t rx_allow, rx_allow_max;
  int names;              /* receives report the sender's address (udp) */
  /* multishot receive */
  int multishot;
  int ms_armed;
  int ms_broken;
  uint32_t ms_zero_ends;  /* multishot receives ended by an empty datagram */
  uint32_t *ret_slots;    /* receive slots taken back from the buffer ring, for reap to return */
  uint32_t nret;
  struct io_uring_buf_ring *br;
  size_t br_len;
  uint32_t br_mask;
  uint32_t br_count;      /* buffers in the ring, not yet consumed */
  struct msghdr ms_msg;   /* template for multishot recvmsg: name length only */
  /* packet ports: the AF_PACKET TX ring, or NULL for one SEND per frame */
  mior__txring *txr;
  struct tx_done *done;   /* completion records of frames copied into the ring, FIFO */
  uint32_t done_mask;     /* capacity - 1 (a power of two >= buf_count: a slot is in it once) */
  uint32_t done_head;
  uint32_t ndone;
  int kick_inflight;      /* a kick is submitted and its completion not yet handled */
  int kick_needed;        /* frames were marked SEND_REQUEST that no kick issued since covers */
  uint32_t kick_skip;     /* kick completions handled early by kick_scan, for reap to pass over */
  int ring_wait;          /* the retry timer for a full ring is armed */
  struct __kernel_timespec ring_wait_ts;
};

static int kernel_at_least(int major, int minor) {
  struct utsname u;
  int ma = 0, mi = 0;
  if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2) return 0;
  return ma > major || (ma == major && mi >= minor);
}

static int uring_supported(char *why, size_t len) {
  const char *env = mior__getenv("MIOR_DISABLE_URING");
  if (env && env[0] && strcmp(env, "0") != 0) {
    snprintf(why, len, "disabled by MIOR_DISABLE_URING");
    return 0;
  }
  struct io_uring ring;
  int rc = io_uring_queue_init(2, &ring, 0);
  if (rc < 0) {
    char sysctl[16] = "";
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) {
      if (fgets(sysctl, sizeof sysctl, f)) sysctl[strcspn(sysctl, "\n")] = '\0';
      fclose(f);
    }
    snprintf(why, len, "io_uring_setup: %s%s%s%s", strerror(-rc), sysctl[0] ? " (kernel.io_uring_disabled=" : "",
             sysctl, sysctl[0] ? ")" : "");
    return 0;
  }
  io_uring_queue_exit(&ring);
  return 1;
}

static int setup_ring(struct mior__ring *r, const mior_options *o, uint32_t *features) {
  static const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL;
  unsigned tries[4];
  int n = 0;
  if (o->flags & MIOR_OPT_SQPOLL) {
    tries[n++] = IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER;
    tries[n++] = IORING_SETUP_SQPOLL;
  } else {
    if (!(o->flags & MIOR_OPT_NO_DEFER_TASKRUN))
      tries[n++] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    tries[n++] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    tries[n++] = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    tries[n++] = 0;
  }
  int rc = -EINVAL;
  /* SUBMIT_ALL is 5.18: on older kernels every combination fails with -EINVAL, so a second pass
   * goes without it. */
  for (int i = 0; i < 2 * n; i++) {
    unsigned f = tries[i % n]; /* the second pass goes through the same list */
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = (i < n ? base : base & ~(unsigned)IORING_SETUP_SUBMIT_ALL) | f;
    p.cq_entries = o->cq_entries;
    if (f & IORING_SETUP_SQPOLL) p.sq_thread_idle = 50;
    rc = io_uring_queue_init_params(o->sq_entries, &r->ring, &p);
    if (rc == 0) {
      r->single_issuer = (f & IORING_SETUP_SINGLE_ISSUER) != 0;
      r->defer_taskrun = (f & IORING_SETUP_DEFER_TASKRUN) != 0;
      r->sqpoll = (f & IORING_SETUP_SQPOLL) != 0;
      r->int_flags0 = r->ring.int_flags;
      if (r->single_issuer) *features |= MIOR_FEAT_SINGLE_ISSUER;
      if (r->defer_taskrun) *features |= MIOR_FEAT_DEFER_TASKRUN;
      if (f & IORING_SETUP_COOP_TASKRUN) *features |= MIOR_FEAT_COOP_TASKRUN;
      if (f & IORING_SETUP_SQPOLL) *features |= MIOR_FEAT_SQPOLL;
      return 0;
    }
    if (rc != -EINVAL) break;
  }
  return mior__fail(rc, "io_uring_queue_init(%u entries): %s%s", o->sq_entries, strerror(-rc),
                    rc == -ENOMEM ? " (RLIMIT_MEMLOCK too low?)" : "");
}

static int register_buffers(struct mior__ring *r) {
  uint32_t chunks = (uint32_t)((r->region.len + (1ull << REG_CHUNK_SHIFT) - 1) >> REG_CHUNK_SHIFT);
  struct iovec iov[16];
  if (chunks > 16) return -E2BIG;
  for (uint32_t i = 0; i < chunks; i++) {
    size_t off = (size_t)i << REG_CHUNK_SHIFT;
    size_t left = r->region.len - off;
    iov[i].iov_base = r->region.base + off;
    iov[i].iov_len = left < (1ull << REG_CHUNK_SHIFT) ? left : (1ull << REG_CHUNK_SHIFT);
  }
  return io_uring_register_buffers(&r->ring, iov, chunks);
}

/* The provided-buffer ring: buffer id == slot index, so it needs buf_count <= 65536. */
static int setup_buf_ring(struct mior__ring *r, uint32_t rx_depth) {
  uint32_t entries = 1;
  while (entries < rx_depth) entries <<= 1;
  if (entries > 32768 || r->region.buf_count > 65536) return -ERANGE;
  r->br_len = (size_t)entries * sizeof(struct io_uring_buf);
  void *mem = mmap(NULL, r->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -errno;
  r->br = mem;
  io_uring_buf_ring_init(r->br);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)mem;
  reg.ring_entries = entries;
  reg.bgid = BUF_GROUP;
  int rc = io_uring_register_buf_ring(&r->ring, &reg, 0);
  if (rc < 0) {
    munmap(mem, r->br_len);
    r->br = NULL;
    return rc;
  }
  r->br_mask = (uint32_t)io_uring_buf_ring_mask(entries);
  return 0;
}

/* Forget a ring fd registered by another thread: that registration lives in that thread's own
 * table, and using its index here would name whatever this thread registered there, if anything.
 * The plain ring fd works from any thread. */
static void forget_ring_fd(struct mior__ring *r) {
  r->ring.int_flags = r->int_flags0;
  r->ring.enter_ring_fd = r->ring.ring_fd;
  r->regfd_thread = 0;
}

/* Take the socket out of the ring's file table: afterwards the ring holds no reference to it, so
 * closing our descriptor releases it (and its address) at once, not when the ring's asynchronous
 * teardown gets to it.  New operations use the plain descriptor.  A SINGLE_ISSUER ring takes this
 * only from its own thread (or before it is enabled). */
static int unregister_socket(struct mior__ring *r) {
  if (!r->files_registered) return 0;
  int rc = io_uring_unregister_files(&r->ring);
  if (rc < 0) return rc;
  r->files_registered = 0;
  r->file = r->sock.fd;
  r->sqe_flags = 0;
  return 0;
}

static void uring_close(struct mior__ring *r) {
  if (!r) return;
  int held = unregister_socket(r) < 0;
  if (r->regfd_thread && r->regfd_thread != mior__thread_self()) forget_ring_fd(r);
  struct stat st;
  if (r->sock.fd < 0 || fstat(r->sock.fd, &st) < 0) st.st_ino = 0;
  io_uring_queue_exit(&r->ring);
  if (r->br) munmap(r->br, r->br_len);
  if (r->txr) {
    mior__txring_close(r->txr);
    free(r->txr);
  }
  free(r->done);
  if (r->sock.fd >= 0) close(r->sock.fd);
  /* The ring's file table still held the socket (the thread bound to the ring ended without
   * letting go of it): the kernel releases it when its teardown of the ring runs, shortly after.
   * The promise is that the address is free when close returns, so wait for that. */
  if (held && st.st_ino) mior__socket_wait_released(&r->sock, st.st_ino, 5000);
  free(r->meta);
  free(r->pend);
  free(r->gso_recs);
  free(r->gso_free);
  free(r->ret_slots);
  free(r);
}

/* GSO only when asked (MIOR_OPT_UDP_GSO), for a connected UDP socket, and with segments no larger than the route's MTU allows:
 * the kernel refuses (EINVAL) a segment that would need IP fragmentation. */
static void setup_gso(struct mior__ring *r, const mior_options *o, uint32_t *features) {
  if (r->sock.kind != MIOR__KIND_UDP || !r->sock.connected || !(o->flags & MIOR_OPT_UDP_GSO)) return;
  int mtu = 0;
  socklen_t len = sizeof mtu;
  int v6 = r->sock.family == AF_INET6;
  uint32_t hdr = (v6 ? 40u : 20u) + 8u;
  if (getsockopt(r->sock.fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu, &len) == 0 &&
      (uint32_t)mtu > hdr)
    r->gso_max_seg = (uint32_t)mtu - hdr;
  else
    r->gso_max_seg = GSO_MAX_BYTES;
  r->gso_recs = calloc(GSO_RECORDS, sizeof *r->gso_recs);
  r->gso_free = malloc(GSO_RECORDS * sizeof *r->gso_free);
  if (!r->gso_recs || !r->gso_free) {
    free(r->gso_recs);
    free(r->gso_free);
    r->gso_recs = NULL;
    r->gso_free = NULL;
    return; /* single sends work without it */
  }
  for (uint32_t i = 0; i < GSO_RECORDS; i++) r->gso_free[i] = GSO_RECORDS - 1 - i;
  r->gso_nfree = GSO_RECORDS;
  r->gso = 1;
  *features |= MIOR_FEAT_UDP_GSO;
}

/* Packet ports send through a TX ring unless MIOR_OPT_NO_TX_RING.  Where the kernel or the link
 * will not have one, per-frame sends remain (MIOR_FEAT_TX_RING says which).  Returns 0, or a
 * negative errno only if the socket is left unable to send. */
static int setup_txring(struct mior__ring *r, const mior__ring_cfg *cfg, uint32_t *features) {
  const mior_options *o = cfg->opts;
  if (r->sock.kind != MIOR__KIND_PACKET || (o->flags & MIOR_OPT_NO_TX_RING)) return 0;
  uint32_t cap = 1;
  while (cap < r->region.buf_count) cap <<= 1;
  r->txr = calloc(1, sizeof *r->txr);
  r->done = malloc((size_t)cap * sizeof *r->done);
  int rc = -ENOMEM;
  /* A port that never receives can have linear frames (packet_ring.h).  tpacket_snd reads their
   * virtio_net_hdr since Linux 4.15, long before io_uring could send on a packet socket. */
  if (r->txr && r->done)
    rc = mior__txring_open(r->txr, r->sock.fd, cfg->ep->ifname, r->region.buf_size, o->batch,
                           (o->flags & MIOR_OPT_NO_RX) != 0);
  if (rc < 0) {
    free(r->txr);
    free(r->done);
    r->txr = NULL;
    r->done = NULL;
    return rc == -EIO ? rc : 0;
  }
  r->done_mask = cap - 1;
  r->ring_wait_ts.tv_nsec = RING_WAIT_NS;
  *features |= MIOR_FEAT_TX_RING;
  return 0;
}

static int uring_open(struct mior__ring **out, const mior__ring_cfg *cfg, uint32_t *features) {
  const mior_options *o = cfg->opts;
  struct mior__ring *r = calloc(1, sizeof *r);
  if (!r) return mior__fail(-ENOMEM, "out of memory");
  r->sock.fd = -1;
  r->region = cfg->region;
  r->stats = cfg->stats;
  int rc = mior__socket_open(&r->sock, cfg);
  if (rc < 0) {
    free(r);
    return rc;
  }
  r->meta = calloc(r->region.buf_count, sizeof *r->meta);
  r->pend = malloc((size_t)r->region.buf_count * sizeof *r->pend);
  if (!r->meta || !r->pend) {
    close(r->sock.fd);
    free(r->meta);
    free(r->pend);
    free(r);
    return mior__fail(-ENOMEM, "out of memory for message headers");
  }
  rc = setup_ring(r, o, features);
  if (rc < 0) {
    close(r->sock.fd);
    free(r->meta);
    free(r->pend);
    free(r);
    return rc;
  }
  r->file = r->sock.fd;
  if (io_uring_register_files(&r->ring, &r->sock.fd, 1) == 0) {
    r->file = 0;
    r->sqe_flags = IOSQE_FIXED_FILE;
    r->files_registered = 1;
    *features |= MIOR_FEAT_REG_FILES;
  }
  /* Registration can fail for want of locked memory (RLIMIT_MEMLOCK for unprivileged users):
   * the ring works without it, only a little slower. */
  if (!(o->flags & MIOR_OPT_NO_REGISTERED_BUFFERS) && register_buffers(r) == 0) {
    r->reg_buffers = 1;
    *features |= MIOR_FEAT_REG_BUFFERS;
  }
  r->names = r->sock.kind == MIOR__KIND_UDP;
  r->rx_allow_max = o->batch < o->rx_depth ? o->batch : o->rx_depth;
  r->rx_allow = r->rx_allow_max; /* start ready for load; a quiet socket brings it down at once */
  setup_gso(r, o, features);
  rc = setup_txring(r, cfg, features);
  if (rc < 0) {
    uring_close(r);
    return rc;
  }
  /* Multishot recv and recvmsg arrived in 6.0; provided-buffer rings in 5.19. */
  if (!(o->flags & (MIOR_OPT_NO_MULTISHOT | MIOR_OPT_NO_RX)) && kernel_at_least(6, 0) &&
      setup_buf_ring(r, o->rx_depth) == 0) {
    r->multishot = 1;
    *features |= MIOR_FEAT_MULTISHOT_RX;
    r->ms_msg.msg_namelen = r->names ? (r->sock.family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                   : sizeof(struct sockaddr_in))
                                     : 0;
  }
  *out = r;
  return 0;
}

static int uring_bind_thread(struct mior__ring *r) {
  if (r->enabled) {
    /* The thread that drove the ring has ended (the front end checked).  A SINGLE_ISSUER ring
     * refuses every other task for good; under SQPOLL the kernel's own thread is the issuer, so
     * the ring can be driven from a new thread. */
    if (r->single_issuer && !r->sqpoll)
      return mior__fail(-EBUSY, "this port's io_uring is bound to the thread that first drove it "
                        "(SINGLE_ISSUER), which has ended; an io_uring port cannot move to another "
                        "thread: open a new transport");
    forget_ring_fd(r);
  } else {
    /* liburing 2.3 declares io_uring_enable_rings() but does not export it: use the system call. */
    if (syscall(__NR_io_uring_register, r->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
      return mior__fail(-errno, "io_uring_register(ENABLE_RINGS): %s", strerror(errno));
    r->enabled = 1;
  }
  /* The registered ring fd saves a file lookup per io_uring_enter; it is per thread, which is
   * why it happens here and not at open.  Optional. */
  if (io_uring_register_ring_fd(&r->ring) == 1) r->regfd_thread = mior__thread_self();
  return 0;
}

/* The driving thread lets go: nothing is outstanding any more (the front end reaped the cancels).
 * Its registered ring fd goes, and so does the socket's place in the file table, which is what
 * lets close() free the address at once even if this thread ends before close runs. */
static void uring_detach(struct mior__ring *r) {
  if (r->regfd_thread == mior__thread_self()) {
    io_uring_unregister_ring_fd(&r->ring);
    r->regfd_thread = 0;
  }
  unregister_socket(r);
}

static inline struct io_uring_sqe *get_sqe(struct mior__ring *r) {
  return io_uring_get_sqe(&r->ring);
}

/* Posted receives (no multishot: kernels before 6.0, or MIOR_OPT_NO_MULTISHOT) each arm their own
 * poll on the socket, and a datagram arriving at an idle socket wakes every one of them: each runs
 * its task work and all but one find nothing and re-arm.  With rx_depth (2048 by default) posted,
 * that was a ~2048-fold wake-up per packet: ping-pong p50 367 us against 68 us with multishot.  So
 * only rx_allow are kept posted: it doubles (up to a batch) while every posted receive completes
 * in one reap, which is load, and drops to what the last reap brought when fewer came, which is a
 * quiet socket (1 for a ping-pong).  Under load the receives mostly complete inline at submit
 * (the data is already queued), so a batch per io_uring_enter is kept. */
static uint32_t uring_rx_room(struct mior__ring *r) {
  if (r->multishot) return UINT32_MAX;
  return r->rx_allow > r->posted ? r->rx_allow - r->posted : 0;
}

static uint32_t uring_rx_post(struct mior__ring *r, const uint32_t *slots, uint32_t n) {
  if (r->multishot) {
    for (uint32_t i = 0; i < n; i++)
      io_uring_buf_ring_add(r->br, mior_pool_region_slot(&r->region, slots[i]), r->region.buf_size,
                            (unsigned short)slots[i], (int)r->br_mask, (int)i);
    /* Publishes the new tail with a release store: the kernel sees the entries before the tail. */
    io_uring_buf_ring_advance(r->br, (int)n);
    r->br_count += n;
    return n;
  }
  uint32_t i;
  for (i = 0; i < n; i++) {
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe) break;
    uint32_t slot = slots[i];
    uint8_t *buf = mior_pool_region_slot(&r->region, slot);
    if (r->names) {
      struct slot_meta *m = &r->meta[slot];
      m->iov.iov_base = buf;
      m->iov.iov_len = r->region.buf_size;
      memset(&m->msg, 0, sizeof m->msg);
      m->msg.msg_name = &m->sa;
      m->msg.msg_namelen = sizeof m->sa;
      m->msg.msg_iov = &m->iov;
      m->msg.msg_iovlen = 1;
      m->sa.sa.sa_family = AF_UNSPEC; /* a datagram fills it in; an empty read of a shut socket not */
      /* MSG_TRUNC makes the result the datagram's real length, so truncation is visible. */
      io_uring_prep_recvmsg(sqe, r->file, &m->msg, MSG_TRUNC);
    } else {
      /* Not READ_FIXED, although the pool is registered: a read cannot say that a frame was
       * longer than the slot, and with MSG_TRUNC a receive returns the frame's real length. */
      io_uring_prep_recv(sqe, r->file, buf, r->region.buf_size, MSG_TRUNC);
    }
    sqe->flags |= r->sqe_flags;
    io_uring_sqe_set_data64(sqe, UD(UD_RX, 0, slot));
  }
  r->posted += i;
  return i;
}

static int uring_tx_queue(struct mior__ring *r, uint32_t slot, uint32_t off, uint32_t len,
                          const mior_addr *dst) {
  if (MIOR_UNLIKELY(!dst && !r->sock.connected))
    return mior__fail(-EDESTADDRREQ, "send without a destination: pass dst or set options.peer");
  if (MIOR_UNLIKELY(dst && (dst->family == MIOR_AF_INET6) != (r->sock.family == AF_INET6)))
    return mior__fail(-EAFNOSUPPORT, "destination is IPv%d but the socket is IPv%d",
                      dst->family == MIOR_AF_INET6 ? 6 : 4, r->sock.family == AF_INET6 ? 6 : 4);
  /* The pending array holds one entry per slot, and a slot is queued at most once at a time, so
   * it cannot overflow; the check keeps the contract's -EAGAIN should that ever change. */
  if (MIOR_UNLIKELY(r->npend >= r->region.buf_count)) return -EAGAIN;
  if (dst && !r->txr) {
    struct slot_meta *m = &r->meta[slot];
    m->iov.iov_base = mior_pool_region_slot(&r->region, slot) + off;
    m->iov.iov_len = len;
    memset(&m->msg, 0, sizeof m->msg);
    m->msg.msg_name = &m->sa;
    m->msg.msg_namelen = mior__sockaddr_from(dst, &m->sa);
    m->msg.msg_iov = &m->iov;
    m->msg.msg_iovlen = 1;
  }
  struct tx_pend *e = &r->pend[r->npend++];
  e->slot = slot;
  e->off = off;
  e->len = len | (dst ? PEND_DST : 0);
  return 0;
}

/* --- entering the kernel --------------------------------------------------------------------
 *
 * stats.submits is the number of io_uring_enter system calls the port made, exactly, so that it
 * says what the data path costs.  liburing decides by itself whether a call enters: io_uring_submit
 * does not with nothing to submit, nor on an SQPOLL ring whose poller is awake, while
 * io_uring_submit_and_get_events always does, and its waiting calls may enter twice.  Counting
 * calls of those functions therefore counted calls that made no system call and missed some that
 * did.  Here the decision is ours and every enter goes through ring_enter, which counts it.  The
 * rules are liburing's: publish the SQ tail; enter to submit unless an awake SQPOLL poller takes
 * the entries from memory (its IORING_SQ_NEED_WAKEUP clear); enter when the kernel flags an
 * overflowed CQ or pending task work (IORING_SQ_CQ_OVERFLOW, IORING_SQ_TASKRUN); and enter to
 * wait.  The io_uring_register calls made when a port is first driven (enabling the ring,
 * registering its fd) are set-up, not the data path, and are not counted. */

/* Make the prepared SQEs visible to the kernel (what liburing 2.3's unexported
 * __io_uring_flush_sq does) and return how many it has not taken yet. */
static unsigned sq_flush(struct mior__ring *r) {
  struct io_uring_sq *sq = &r->ring.sq;
  unsigned tail = sq->sqe_tail;
  if (sq->sqe_head != tail) {
    sq->sqe_head = tail;
    /* Release: an SQPOLL poller must see the entries before the tail that covers them. */
    io_uring_smp_store_release(sq->ktail, tail);
  }
  return tail - io_uring_smp_load_acquire(sq->khead);
}

static inline int sqpoll(const struct mior__ring *r) {
  return (r->ring.flags & IORING_SETUP_SQPOLL) != 0;
}

/* IORING_ENTER_SQ_WAKEUP when n entries are published on an SQPOLL ring whose poller has gone to
 * sleep (it sets IORING_SQ_NEED_WAKEUP after sq_thread_idle without work), else 0. */
static unsigned sq_wakeup(struct mior__ring *r, unsigned n) {
  if (!n || !sqpoll(r)) return 0;
  /* The tail store above must be visible before the flag is read, or the poller could go to sleep
   * between the two without seeing the new entries (liburing has the same barrier). */
  io_uring_smp_mb();
  return (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_NEED_WAKEUP) ? IORING_ENTER_SQ_WAKEUP : 0;
}

/* The kernel holds completions it can post only inside an enter: an overflowed CQ, or task work
 * flagged by COOP_TASKRUN|TASKRUN_FLAG. */
static int cq_needs_enter(const struct mior__ring *r) {
  return (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0;
}

/* One io_uring_enter, counted.  ts (with IORING_FEAT_EXT_ARG) bounds a wait. */
static int ring_enter(struct mior__ring *r, unsigned to_submit, unsigned min_complete, unsigned flags,
                      struct __kernel_timespec *ts) {
  struct io_uring_getevents_arg arg;
  void *argp = NULL;
  size_t argsz = _NSIG / 8;
  if (ts) {
    memset(&arg, 0, sizeof arg);
    arg.ts = (uint64_t)(uintptr_t)ts;
    argp = &arg;
    argsz = sizeof arg;
    flags |= IORING_ENTER_EXT_ARG;
  }
  /* io_uring_register_ring_fd (at bind_thread) replaces enter_ring_fd with the registered index.
   * Should that index happen to equal the ring's fd, entering with the plain fd reaches the same
   * ring, so the comparison is always right. */
  if (r->ring.enter_ring_fd != r->ring.ring_fd) flags |= IORING_ENTER_REGISTERED_RING;
  r->stats->submits++;
  return io_uring_enter2((unsigned)r->ring.enter_ring_fd, to_submit, min_complete, flags, argp, argsz);
}

/* Submit what is prepared, entering only when the kernel needs it (see above).  getevents: also
 * collect completions; a DEFER_TASKRUN ring posts them only inside an enter that asks, so then it
 * enters even with nothing to submit.  Returns what io_uring_enter returned, or 0 without one. */
static int ring_submit_now(struct mior__ring *r, int getevents) {
  unsigned n = sq_flush(r);
  unsigned flags = sq_wakeup(r, n);
  int enter = flags != 0 || (n && !sqpoll(r)) || (getevents && r->defer_taskrun);
  if (cq_needs_enter(r)) enter = getevents = 1;
  if (!enter) return 0;
  return ring_enter(r, n, 0, flags | (getevents ? IORING_ENTER_GETEVENTS : 0), NULL);
}

/* A free SQE, submitting what is already prepared when the queue is full.  NULL only if the
 * kernel would not take any (then the rest waits for the next submit). */
static struct io_uring_sqe *get_tx_sqe(struct mior__ring *r) {
  struct io_uring_sqe *sqe = get_sqe(r);
  if (MIOR_UNLIKELY(!sqe)) {
    /* An SQPOLL poller that is awake takes the entries without an enter; then there is room only
     * once it has, which the retry below may or may not find. */
    if (ring_submit_now(r, 0) < 0) return NULL;
    sqe = get_sqe(r);
    if (!sqe) return NULL;
  }
  r->tx_sqes++;
  return sqe;
}

/* How many pending sends from i on can go as one GSO send: equal lengths without a destination,
 * the last one possibly shorter, within the segment and byte limits.  0 if fewer than two. */
static uint32_t gso_run(const struct mior__ring *r, uint32_t i) {
  uint32_t seg = r->pend[i].len;
  if (seg & PEND_DST || seg == 0 || seg > r->gso_max_seg || r->gso_nfree == 0) return 0;
  uint32_t n = 1, total = seg;
  while (i + n < r->npend && n < GSO_MAX_SEGS) {
    uint32_t l = r->pend[i + n].len;
    /* An empty datagram goes alone: a GSO send has no empty segment. */
    if (l & PEND_DST || l == 0 || l > seg || total + l > GSO_MAX_BYTES) break;
    total += l;
    n++;
    if (l < seg) break; /* a shorter datagram can only end a GSO send */
  }
  return n >= 2 ? n : 0;
}

static void prep_gso(struct mior__ring *r, struct io_uring_sqe *sqe, uint32_t i, uint32_t n) {
  uint32_t idx = r->gso_free[--r->gso_nfree];
  struct gso_rec *g = &r->gso_recs[idx];
  g->count = n;
  g->done = 0;
  g->seg = r->pend[i].len;
  for (uint32_t k = 0; k < n; k++) {
    const struct tx_pend *e = &r->pend[i + k];
    g->slots[k] = e->slot;
    g->iov[k].iov_base = mior_pool_region_slot(&r->region, e->slot) + e->off;
    g->iov[k].iov_len = e->len;
  }
  memset(&g->msg, 0, sizeof g->msg);
  g->msg.msg_iov = g->iov;
  g->msg.msg_iovlen = n;
  g->msg.msg_control = g->cmsg.buf;
  g->msg.msg_controllen = sizeof g->cmsg.buf;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&g->msg);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg16 = (uint16_t)g->seg;
  memcpy(CMSG_DATA(cm), &seg16, sizeof seg16);
  io_uring_prep_sendmsg(sqe, r->file, &g->msg, 0);
  sqe->flags |= r->sqe_flags;
  io_uring_sqe_set_data64(sqe, UD(UD_GSO, 0, idx));
}

/* Turn the pending sends into SQEs, in order. */
static void tx_prepare(struct mior__ring *r) {
  uint32_t i = 0;
  while (i < r->npend) {
    struct io_uring_sqe *sqe = get_tx_sqe(r);
    if (MIOR_UNLIKELY(!sqe)) break;
    uint32_t n = r->gso ? gso_run(r, i) : 0;
    if (n) {
      prep_gso(r, sqe, i, n);
    } else {
      const struct tx_pend *e = &r->pend[i];
      uint32_t len = e->len & ~PEND_DST;
      if (e->len & PEND_DST) io_uring_prep_sendmsg(sqe, r->file, &r->meta[e->slot].msg, 0);
      else io_uring_prep_send(sqe, r->file, mior_pool_region_slot(&r->region, e->slot) + e->off, len, 0);
      sqe->flags |= r->sqe_flags;
      io_uring_sqe_set_data64(sqe, UD(UD_TX, len, e->slot));
      n = 1;
    }
    r->tx_inflight += n;
    i += n;
  }
  if (MIOR_UNLIKELY(i < r->npend)) memmove(r->pend, r->pend + i, (size_t)(r->npend - i) * sizeof *r->pend);
  r->npend -= i;
  r->nrequeued = i < r->nrequeued ? r->nrequeued - i : 0;
}

/* Put the sends of a GSO batch the kernel refused back at the head of the queue as single sends,
 * behind those of earlier refused batches, so that nothing is lost and the order is kept (GSO
 * sends on one socket complete in the order they were submitted).  Single sends submitted after
 * the refused batch are already on their way and may overtake it: UDP allows that, and it only
 * happens when a route stops taking GSO. */
static void gso_requeue(struct mior__ring *r, const struct gso_rec *g, uint32_t from) {
  uint32_t n = g->count - from;
  struct tx_pend *at = r->pend + r->nrequeued;
  memmove(at + n, at, (size_t)(r->npend - r->nrequeued) * sizeof *r->pend);
  r->nrequeued += n;
  for (uint32_t k = 0; k < n; k++) {
    const struct iovec *v = &g->iov[from + k];
    uint32_t slot = g->slots[from + k];
    at[k].slot = slot;
    at[k].off = (uint32_t)((uint8_t *)v->iov_base - mior_pool_region_slot(&r->region, slot));
    at[k].len = (uint32_t)v->iov_len;
  }
  r->npend += n;
}

/* --- packet ports: the TX ring ------------------------------------------------------------- */

static inline void done_push(struct mior__ring *r, uint32_t slot, int32_t res, uint32_t len) {
  struct tx_done *d = &r->done[(r->done_head + r->ndone) & r->done_mask];
  d->slot = slot;
  d->res = res;
  d->len = len;
  r->ndone++;
}

/* Copy the pending sends into the ring, in order, and record their completions: the slots are free
 * again as soon as their bytes are in the ring.  Stops at the first frame the kernel still owns
 * (the ring is full); the rest stay pending, which the port sees as sends in flight (backpressure),
 * not as loss. */
static void ring_prepare(struct mior__ring *r) {
  mior__txring *t = r->txr;
  uint32_t i, placed = 0;
  for (i = 0; i < r->npend; i++) {
    const struct tx_pend *e = &r->pend[i];
    uint32_t len = e->len & ~PEND_DST;
    const uint8_t *data = mior_pool_region_slot(&r->region, e->slot) + e->off;
    /* A frame carries its own addresses; a destination is refused as the kernel refuses an
     * address that is not a sockaddr_ll.  The checks are those the kernel would make in the ring,
     * where a refused frame would vanish without a word (PACKET_LOSS). */
    int32_t res = MIOR_UNLIKELY(e->len & PEND_DST) ? -EINVAL : mior__txring_check(t, data, len);
    if (MIOR_LIKELY(res == 0)) {
      if (!mior__txring_put(t, data, len)) break;
      res = (int32_t)len;
      placed++;
    }
    done_push(r, e->slot, res, len);
  }
  if (MIOR_UNLIKELY(i < r->npend)) memmove(r->pend, r->pend + i, (size_t)(r->npend - i) * sizeof *r->pend);
  r->npend -= i;
  if (placed) r->kick_needed = 1;
}

/* Queue a kick: a SEND with no buffer, for which packet_sendmsg runs tpacket_snd over every frame
 * marked SEND_REQUEST.  Without MSG_DONTWAIT, so that a kick finding the socket's send buffer full
 * waits inside io_uring (poll) for room instead of failing with -EAGAIN. */
static void ring_kick(struct mior__ring *r) {
  struct io_uring_sqe *sqe = get_tx_sqe(r);
  if (MIOR_UNLIKELY(!sqe)) return; /* still needed: the next submit tries again */
  io_uring_prep_send(sqe, r->file, NULL, 0, 0);
  sqe->flags |= r->sqe_flags;
  io_uring_sqe_set_data64(sqe, UD(UD_KICK, 0, 0));
  r->kick_inflight = 1;
  r->kick_needed = 0;
}

/* A kick completed with res (bytes sent, or a negative errno).  Counts a failure and decides what
 * the frames it left behind need.  Returns 1 when the next kick should go at once (from reap), 0
 * when it can wait for the next submit or for new frames. */
/* Count the frames the kernel took from the ring since the last look. */
static void ring_confirm(struct mior__ring *r) {
  mior__txring_confirm(r->txr, &r->stats->tx_packets, &r->stats->tx_bytes, &r->stats->tx_errors);
}

static int kick_done(struct mior__ring *r, int32_t res) {
  r->kick_inflight = 0;
  ring_confirm(r);
  /* -EAGAIN and -EINTR mean "try again"; io_uring normally absorbs them itself. */
  if (res < 0 && res != -EAGAIN && res != -EINTR && !(res == -ECANCELED && r->canceling)) r->stats->tx_errors++;
  if (!r->kick_needed && mior__txring_unsent(r->txr)) {
    /* The kick stopped short of the last frame: the send buffer filled (it then returns what it
     * sent) or the device's queue did (-ENOBUFS, the frame stays marked).  Kick again.  After any
     * other error (the link went down) the frames wait for the next frame queued, so that a dead
     * link is not retried in a loop. */
    if (res >= 0 || res == -EAGAIN || res == -EINTR || res == -ENOBUFS || res == -ECANCELED)
      r->kick_needed = 1;
  }
  /* -ENOBUFS comes back at once while the device queue is full: retry at the next submit, not in a
   * loop here. */
  return r->kick_needed && res != -ENOBUFS;
}

/* A kick on an AF_PACKET socket normally completes inline, during the submit that issued it, but
 * its completion then waits in the CQ until the port reaps.  Frames marked meanwhile would wait for
 * that reap too: find the completion now, handle it, and let reap pass over it.  Kicks are issued
 * one at a time, so kick completions sit in the CQ in issue order, and those already handled come
 * first. */
static void kick_scan(struct mior__ring *r) {
  struct io_uring_cqe *cqe;
  unsigned head;
  uint32_t seen = 0;
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    if (UD_OP(cqe->user_data) != UD_KICK || seen++ < r->kick_skip) continue;
    r->kick_skip++;
    kick_done(r, cqe->res);
    return;
  }
}

/* Ring full, and no kick in flight whose completion would bring the port back: arm a short timer
 * so that a waiting poll wakes up to look again. */
static void arm_ring_wait(struct mior__ring *r) {
  struct io_uring_sqe *sqe = get_sqe(r);
  if (!sqe) return;
  io_uring_prep_timeout(sqe, &r->ring_wait_ts, 0, 0);
  io_uring_sqe_set_data64(sqe, UD(UD_RING_WAIT, 0, 0));
  r->ring_wait = 1;
}

/* Move pending sends into the ring and kick it as needed (at most one kick in flight). */
static void ring_submit(struct mior__ring *r) {
  ring_confirm(r);
  if (r->npend) ring_prepare(r);
  if (r->kick_needed && r->kick_inflight) kick_scan(r);
  if (r->kick_needed && !r->kick_inflight) ring_kick(r);
  if (MIOR_UNLIKELY(r->npend && !r->kick_inflight && !r->ring_wait)) arm_ring_wait(r);
}

static uint32_t done_reap(struct mior__ring *r, mior__cqe *out, uint32_t max) {
  uint32_t n = r->ndone < max ? r->ndone : max;
  for (uint32_t i = 0; i < n; i++) {
    const struct tx_done *d = &r->done[(r->done_head + i) & r->done_mask];
    mior__cqe *c = &out[i];
    c->op = MIOR__OP_TX;
    c->slot = d->slot;
    c->res = d->res;
    c->off = d->len;
    c->flags = d->res >= 0 ? MIOR__CQE_COPIED : 0;
  }
  r->done_head = (r->done_head + n) & r->done_mask;
  r->ndone -= n;
  return n;
}

static void arm_multishot(struct mior__ring *r) {
  struct io_uring_sqe *sqe = get_sqe(r);
  if (!sqe) return;
  /* MSG_TRUNC: a frame longer than its buffer completes with its real length, so a cut frame is
   * seen (and dropped) rather than delivered as complete.  recvmsg reports it in its header. */
  if (r->names) io_uring_prep_recvmsg_multishot(sqe, r->file, &r->ms_msg, 0);
  else io_uring_prep_recv_multishot(sqe, r->file, NULL, 0, MSG_TRUNC);
  sqe->flags |= r->sqe_flags | IOSQE_BUFFER_SELECT;
  sqe->buf_group = BUF_GROUP;
  io_uring_sqe_set_data64(sqe, UD(UD_MULTISHOT, 0, 0));
  r->ms_armed = 1;
}

/* Leave multishot receive for posted receives (see MS_ZERO_END_LIMIT), between two multishots:
 * the buffer ring is unregistered, and the slots still in it, which the kernel never consumed,
 * are handed back through reap. */
static void multishot_off(struct mior__ring *r) {
  r->ret_slots = malloc((size_t)(r->br_count ? r->br_count : 1) * sizeof *r->ret_slots);
  if (!r->ret_slots) return; /* stay on multishot, try again at the next submit */
  /* The kernel takes buffers in ring order, so the unconsumed ones are the last br_count added. */
  uint16_t tail = r->br->tail;
  for (uint32_t k = 0; k < r->br_count; k++)
    r->ret_slots[r->nret++] = r->br->bufs[(uint16_t)(tail - r->br_count + k) & r->br_mask].bid;
  io_uring_unregister_buf_ring(&r->ring, BUF_GROUP);
  munmap(r->br, r->br_len);
  r->br = NULL;
  r->br_count = 0;
  r->multishot = 0;
  r->stats->features &= ~MIOR_FEAT_MULTISHOT_RX;
}

/* A wait that counts on completions besides those of its own sends ends after this long even if
 * none came, so that a caller whose only outstanding work was those sends is not kept waiting (see
 * uring_submit).  A round trip that takes longer costs one more enter per millisecond, which is
 * noise; a caller stuck for its whole timeout would not be. */
#define OWN_SEND_WAIT_US 1000

static int uring_submit(struct mior__ring *r, int wait, int64_t timeout_us) {
  /* What was outstanding before this call's sends: an earlier send still in flight. */
  uint32_t tx_before = r->tx_inflight, sqes_before = r->tx_sqes;
  if (r->txr) ring_submit(r);
  else if (r->npend) tx_prepare(r);
  if (MIOR_UNLIKELY(r->ms_zero_ends >= MS_ZERO_END_LIMIT) && r->multishot && !r->ms_armed &&
      !r->canceling)
    multishot_off(r);
  if (r->multishot && !r->ms_armed && r->br_count > 0 && !r->canceling && !r->ms_broken) arm_multishot(r);
  if (MIOR_UNLIKELY(r->ms_broken == 1)) {
    r->ms_broken = 2;
    return mior__fail(-EOPNOTSUPP, "the kernel rejected multishot receive; open with MIOR_OPT_NO_MULTISHOT");
  }
  int ret = 0;
  /* Completion records of frames copied into the TX ring are ready without the kernel. */
  /* Records made in user space (frames copied into the TX ring, slots taken back from the buffer
   * ring) are ready without the kernel: then no wait. */
  if (wait && io_uring_cq_ready(&r->ring) == 0 && r->ndone == 0 && r->nret == 0) {
    /* One enter submits, runs the deferred task work and waits.  A send it submits normally
     * completes inside that same enter, and its completion would end the wait at once: a port
     * that sends a ping and waits for the pong would enter twice per round trip.  So when
     * something else can complete (a receive armed, an earlier send in flight) the wait is for
     * `wait` completions more than this call's own sends, each of which makes exactly one.  Should
     * nothing else come, the wait ends after OWN_SEND_WAIT_US with just those. */
    unsigned own = r->tx_sqes - sqes_before;
    unsigned want = (unsigned)wait;
    if (own && (r->posted || r->ms_armed || tx_before)) {
      want += own;
      if (timeout_us < 0 || timeout_us > OWN_SEND_WAIT_US) timeout_us = OWN_SEND_WAIT_US;
    }
    struct __kernel_timespec ts;
    ts.tv_sec = timeout_us / 1000000;
    ts.tv_nsec = (timeout_us % 1000000) * 1000;
    if (timeout_us < 0 || (r->ring.features & IORING_FEAT_EXT_ARG)) {
      unsigned n = sq_flush(r);
      ret = ring_enter(r, n, want, sq_wakeup(r, n) | IORING_ENTER_GETEVENTS, timeout_us >= 0 ? &ts : NULL);
    } else {
      /* Before Linux 5.11 a timed wait needs a timeout SQE, which liburing queues; it may then
       * enter twice, so on those kernels submits can be one short per timed wait. */
      struct io_uring_cqe *cqe;
      ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, want, &ts, NULL);
      r->stats->submits++;
    }
  } else {
    /* On a DEFER_TASKRUN ring this enters even with nothing to submit, since its completions are
     * posted only when asked for; that is one call per batch, not per packet.  An SQPOLL ring's
     * completions are read from memory, and its poller takes the entries while it is awake, so it
     * enters only to wake the poller.  It used to enter whenever entries were still unconsumed,
     * as every other ring does: 1321 enters for 64k datagrams with SQPOLL against 1101 without,
     * and 12869 to 32088 in test_transport_syscalls, whose sender polls without waiting. */
    ret = ring_submit_now(r, 1);
  }
  /* The kernel's own count of completions it dropped.  Since Linux 5.5 (IORING_FEAT_NODROP) a
   * full CQ makes it keep them on a list, which the next enter flushes, and it drops one only when
   * it cannot allocate that list's entry: this counts lost completions, not full CQs. */
  r->stats->cq_overflow = IO_URING_READ_ONCE(*r->ring.cq.koverflow);
  /* -EBADR: completions were dropped (counted just above); the kernel reports it once. */
  if (ret >= 0 || ret == -ETIME || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY || ret == -EBADR)
    return 0;
  return mior__fail(ret, "io_uring_enter: %s", strerror(-ret));
}

/* Errors that say the kernel or the route will not take this GSO send as built (no UDP GSO, a
 * device without checksum offload, a segment or total beyond what the path allows), as opposed
 * to errors the same datagrams would also have met as single sends. */
static int gso_refused(int res) {
  return res == -EINVAL || res == -EIO || res == -EOPNOTSUPP || res == -EMSGSIZE;
}

/* Hand out the completion records of one GSO send.  Returns 1 when the CQE is used up, 0 when
 * `out` is full first (g->done says where to resume). */
static int gso_complete(struct mior__ring *r, struct gso_rec *g, uint32_t idx, int32_t res, mior__cqe *out,
                        uint32_t max, uint32_t *n) {
  if (g->done == 0 && res < 0 && !r->canceling && res != -ECANCELED) {
    if (gso_refused(res)) {
      /* Nothing went out: send the datagrams again one by one.  Before any GSO send succeeded
       * this is the probe failing (old kernel, no offload): GSO stays off for the port.  After,
       * it is this segment size the path will not take: GSO stays on for smaller ones. */
      if (r->gso == 2 && res != -EIO && res != -EOPNOTSUPP && g->seg > 1) {
        if (r->gso_max_seg >= g->seg) r->gso_max_seg = g->seg - 1;
      } else {
        r->gso = 0;
        r->stats->features &= ~MIOR_FEAT_UDP_GSO;
      }
      r->tx_inflight -= g->count;
      gso_requeue(r, g, 0);
      r->gso_free[r->gso_nfree++] = idx;
      return 1;
    }
    /* Any other error (a pending ICMP error such as ECONNREFUSED, ENOBUFS, ...) is what the first
     * single send would have reported and consumed; the datagrams after it were never tried, so
     * they go again as single sends rather than all failing. */
    mior__cqe *c = &out[(*n)++];
    c->op = MIOR__OP_TX;
    c->flags = 0;
    c->slot = g->slots[0];
    c->res = res;
    c->off = (uint32_t)g->iov[0].iov_len;
    r->tx_inflight -= g->count;
    g->done = 1;
    gso_requeue(r, g, 1);
    r->gso_free[r->gso_nfree++] = idx;
    return 1;
  }
  if (res >= 0 && r->gso == 1) r->gso = 2;
  while (g->done < g->count) {
    if (*n == max) return 0;
    mior__cqe *c = &out[(*n)++];
    uint32_t len = (uint32_t)g->iov[g->done].iov_len;
    c->op = MIOR__OP_TX;
    c->flags = 0;
    c->slot = g->slots[g->done];
    /* The kernel sends a GSO batch whole or not at all: on success every datagram went out. */
    c->res = res < 0 ? res : (int32_t)len;
    c->off = len;
    g->done++;
    r->tx_inflight--;
  }
  r->gso_free[r->gso_nfree++] = idx;
  return 1;
}

static uint32_t uring_reap(struct mior__ring *r, mior__cqe *out, uint32_t max) {
  struct io_uring_cqe *cqe;
  unsigned head, seen = 0;
  uint32_t n = 0, nrx = 0;
  int rekick = 0;
  if (r->ndone) n = done_reap(r, out, max);
  /* Slots taken back from the buffer ring go back unused: -EAGAIN is "nothing happened". */
  while (MIOR_UNLIKELY(r->nret) && n < max) {
    mior__cqe *c = &out[n++];
    memset(c, 0, sizeof *c);
    c->op = MIOR__OP_RX;
    c->slot = r->ret_slots[--r->nret];
    c->res = -EAGAIN;
  }
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    if (n == max) break;
    uint64_t ud = cqe->user_data;
    if (UD_OP(ud) == UD_GSO) {
      /* One completion for a whole GSO send: a record per slot, resumed at the next reap when
       * `out` fills up first. */
      if (!gso_complete(r, &r->gso_recs[UD_SLOT(ud)], UD_SLOT(ud), cqe->res, out, max, &n)) break;
      seen++;
      continue;
    }
    seen++;
    mior__cqe *c = &out[n];
    switch (UD_OP(ud)) {
    case UD_TX:
      r->tx_inflight--;
      c->op = MIOR__OP_TX;
      c->flags = 0;
      c->slot = UD_SLOT(ud);
      c->res = cqe->res;
      c->off = UD_LEN(ud);
      n++;
      break;
    case UD_RX: {
      r->posted--;
      nrx++;
      uint32_t slot = UD_SLOT(ud);
      c->op = MIOR__OP_RX;
      c->slot = slot;
      c->res = cqe->res;
      c->off = 0;
      c->flags = 0;
      if (cqe->res > (int32_t)r->region.buf_size) {
        c->flags = MIOR__CQE_TRUNC;
        c->res = (int32_t)r->region.buf_size;
      }
      if (r->names && cqe->res >= 0) {
        const struct slot_meta *m = &r->meta[slot];
        mior__sockaddr_to(&m->sa.sa, m->msg.msg_namelen, &c->src);
        /* Zero bytes from nobody: the socket was shut down, not an empty datagram. */
        if (cqe->res == 0 && c->src.family == MIOR_AF_UNSPEC) c->res = -EAGAIN;
      } else {
        c->src.family = MIOR_AF_UNSPEC;
      }
      n++;
      break;
    }
    case UD_MULTISHOT: {
      if (!(cqe->flags & IORING_CQE_F_MORE)) {
        /* The multishot ended (buffers ran out, an error, overflow or cancel): re-arm at the next
         * submit unless we are closing. */
        r->ms_armed = 0;
        if (!r->canceling) r->stats->rx_rearm++;
        if (cqe->res == -EINVAL && !(cqe->flags & IORING_CQE_F_BUFFER) && !r->ms_broken) r->ms_broken = 1;
      }
      c->op = MIOR__OP_RX;
      c->flags = 0;
      c->src.family = MIOR_AF_UNSPEC;
      if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
        if (cqe->res == -ECANCELED || (cqe->res == 0 && r->canceling)) break; /* nothing to report */
        c->slot = MIOR__NO_SLOT;
        c->res = cqe->res;
        c->off = 0;
        n++;
        break;
      }
      uint32_t slot = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
      r->br_count--;
      c->slot = slot;
      c->res = cqe->res;
      c->off = 0;
      if (cqe->res > (int32_t)r->region.buf_size) { /* MSG_TRUNC: the frame's real length */
        c->flags = MIOR__CQE_TRUNC;
        c->res = (int32_t)r->region.buf_size;
      }
      if (r->names && cqe->res > 0) {
        uint8_t *buf = mior_pool_region_slot(&r->region, slot);
        struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &r->ms_msg);
        if (!o) {
          c->res = -EBADMSG;
        } else {
          uint8_t *payload = io_uring_recvmsg_payload(o, &r->ms_msg);
          c->off = (uint32_t)(payload - buf);
          c->res = (int32_t)io_uring_recvmsg_payload_length(o, cqe->res, &r->ms_msg);
          if (o->flags & MSG_TRUNC) c->flags = MIOR__CQE_TRUNC;
          mior__sockaddr_to(io_uring_recvmsg_name(o), o->namelen, &c->src);
          if (c->res == 0 && o->namelen == 0) c->res = -EAGAIN; /* a shut socket, no datagram */
          /* An empty datagram is delivered (c->res 0), but it also ended the multishot. */
          if (c->res == 0 && !(cqe->flags & IORING_CQE_F_MORE)) r->ms_zero_ends++;
        }
      }
      n++;
      break;
    }
    case UD_KICK:
      if (r->kick_skip) r->kick_skip--; /* handled by kick_scan already */
      else rekick |= kick_done(r, cqe->res);
      break;
    case UD_RING_WAIT:
      r->ring_wait = 0;
      break;
    default: /* cancel requests and anything else carry no slot */
      break;
    }
  }
  if (nrx) {
    if (nrx >= r->rx_allow) r->rx_allow = r->rx_allow * 2 < r->rx_allow_max ? r->rx_allow * 2 : r->rx_allow_max;
    else r->rx_allow = nrx;
  }
  io_uring_cq_advance(&r->ring, seen);
  /* Frames marked while the kick was in flight, or left behind by it: kick again now, not at the
   * port's next submit, which may be long in coming if the port only sends now and then. */
  if (rekick && r->kick_needed && !r->kick_inflight) {
    ring_kick(r);
    if (r->kick_inflight) ring_submit_now(r, 0);
  }
  return n;
}

static uint32_t uring_outstanding(struct mior__ring *r) {
  return r->posted + r->tx_inflight + r->npend + r->ndone + r->nret + (r->ms_armed ? 1u : 0u) +
         (r->kick_inflight ? 1u : 0u) + (r->ring_wait ? 1u : 0u);
}

static int uring_cancel(struct mior__ring *r) {
  if (!r->enabled) return 0;
  /* Queued sends go out first: the contract returns every slot through a completion. */
  if (r->txr) ring_submit(r);
  else if (r->npend) tx_prepare(r);
  r->canceling = 1;
  struct io_uring_sqe *sqe = get_sqe(r);
  if (!sqe) {
    ring_submit_now(r, 0);
    sqe = get_sqe(r);
  }
  if (sqe) {
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, UD(UD_CANCEL, 0, 0));
    ring_submit_now(r, 1);
  }
  return (int)uring_outstanding(r);
}

static uint64_t uring_kernel_drops(const struct mior__ring *r) {
  return mior__socket_drops(r->sock.fd);
}

static int uring_local_addr(struct mior__ring *r, mior_addr *out) {
  return mior__socket_local_addr(&r->sock, out);
}

const mior__backend_ops mior__uring_ops = {
    .id = MIOR_BACKEND_URING,
    .name = "uring",
    .supported = uring_supported,
    .open = uring_open,
    .bind_thread = uring_bind_thread,
    .detach = uring_detach,
    .rx_room = uring_rx_room,
    .rx_post = uring_rx_post,
    .tx_queue = uring_tx_queue,
    .submit = uring_submit,
    .reap = uring_reap,
    .cancel = uring_cancel,
    .outstanding = uring_outstanding,
    .kernel_drops = uring_kernel_drops,
    .local_addr = uring_local_addr,
    .close = uring_close,
};
