/* The sockets backend on Windows: overlapped Winsock with an I/O completion port.
 *
 * It is the fallback where IoRing is missing (Windows 10, Windows 11 before 22H2 for sends, Wine)
 * and the baseline IoRing is measured against.  It follows what msquic and libuv do on Windows:
 * every slot handed in gets its own OVERLAPPED, WSABUF and address storage (indexed by slot, so a
 * completion finds its slot without a lookup), receives are posted as overlapped WSARecvFrom as
 * soon as they are handed over, sends are issued as overlapped WSASendTo at submit, and
 * completions are taken from the port in batches with GetQueuedCompletionStatusEx.
 *
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set when every provider under the socket is an IFS one
 * (no layered provider that would break it).  Then an operation that completes at once queues no
 * completion packet, and the result is taken from the call and turned into a completion here:
 * on a busy socket most receives and nearly all UDP sends complete that way, and each one saves a
 * trip through the port.  Documented Winsock rule used throughout: a call that fails with anything
 * but WSA_IO_PENDING started nothing and queues no completion, so its slot completes here too.
 *
 * UDP send segmentation (USO, Windows' UDP_SEND_MSG_SIZE, as msquic uses it): with MIOR_OPT_UDP_GSO
 * on a connected UDP socket whose stack answers the option, a run of equal-size sends without a
 * destination goes out as one WSASendMsg gathering the slots, segmented by the stack at that size;
 * the run's first slot carries the OVERLAPPED and its completion returns every slot of the run.  A
 * stack that refuses a segmented send turns USO off for the port, and the run goes again one by
 * one.  Where the option is unknown (Wine, Windows before 10 2004) sends stay single, the feature
 * is absent, and that is the whole difference.
 *
 * Control messages (src/win/rx_meta.c): a udp port with per-packet metadata (MIOR_OPT_RX_*) or
 * URO on receives with WSARecvMsg, each op with its own WSAMSG and control buffer (the kernel
 * writes both back on completion); the one parser turns them into the completion's metadata and
 * URO's segment size (mior__cqe.seg, which the front end splits as a GRO buffer).  Otherwise
 * receives stay plain WSARecvFrom: nothing is paid for what is off.  A send with a source address
 * or ECN codepoint goes as WSASendMsg with IP_PKTINFO / IP_ECN, and never joins a USO run.  URO
 * (UDP_RECV_MAX_COALESCED_SIZE) is asked by default where the stack has it, as Linux asks for UDP
 * GRO; where it refuses (Wine 8, Windows before 10 2004) receives stay plain, counted and said
 * why (offload_refused, offload_reason).
 *
 * The event handle (mior_port_event_handle) is a manual-reset event made at open and named in every
 * OVERLAPPED's hEvent (low bit clear, so the completion still goes to the port too): the kernel
 * sets it when an operation it holds completes.  It is named from the start because Windows takes
 * hEvent when an operation is issued, so a receive posted before the handle was asked for could
 * never set it.  event_clear resets it before the work; event_done then takes what the port
 * holds (GetQueuedCompletionStatusEx, timeout 0) and sets it again if any work is left.  Anything
 * that completes after the reset sets it itself, so no wake-up is lost; one that completes after
 * the reset and is taken by the same work call leaves it set for one spurious wake-up at most.
 *
 * Every slot handed in comes back exactly once: from the port, from a synchronous result, or as
 * -ECANCELED from cancel().  close() closes the socket (which aborts what is pending) and waits,
 * bounded, for the aborted operations to come out of the port before freeing their OVERLAPPEDs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h> /* WSACMSGHDR and the WSA_CMSG_* macros (ws2def.h in the Windows SDK) */
#include <windows.h>

#include "common/cq_fifo.h"
#include "common/tx_fifo.h"
#include "common/internal.h"
#include "common/os.h"
#include "win/error.h"
#include "common/socket.h"
#include "win/rx_meta.h"

enum { OP_IDLE = 0, OP_QUEUED = 1, OP_PENDING = 2, OP_IN_RUN = 3 };

/* Windows' UDP offload options (ws2ipdef.h in newer SDKs; mingw-w64 10 has none), IPPROTO_UDP. */
#ifndef UDP_SEND_MSG_SIZE
#define UDP_SEND_MSG_SIZE 2
#endif

/* A USO send: at most this many datagrams, and no more bytes than one UDP datagram can carry. */
#define USO_MAX_SEGS 64u
#define USO_MAX_BYTES 65000u

typedef struct uso_run {
  WSAMSG msg;
  WSABUF wb[USO_MAX_SEGS];
  uint32_t slots[USO_MAX_SEGS];
  uint32_t n;
  union {
    char buf[WSA_CMSG_SPACE(sizeof(DWORD))];
    WSACMSGHDR align;
  } cmsg;
} uso_run;

struct op {
  OVERLAPPED ov; /* first: a completion's LPOVERLAPPED is the op */
  WSABUF wb;
  mior__sockaddr addr; /* rx: sender (written by the kernel); tx: destination */
  INT addrlen;
  DWORD flags;
  uint32_t off, len; /* tx: where the packet starts in the slot, bytes asked */
  uint8_t kind;      /* MIOR__OP_RX or MIOR__OP_TX */
  uint8_t state;     /* OP_* */
  uint8_t has_dst;
  uso_run *run;      /* tx: the USO run this op heads, or NULL */
  /* Receives that take control messages (WSARecvMsg), and sends that carry some (WSASendMsg):
   * the message, which the kernel writes back (namelen, Control.len, dwFlags) when it completes,
   * and this op's control buffer (MIOR__CMSG_SPACE bytes, made when first needed). */
  WSAMSG msg;
  uint8_t *ctl;
  ULONG ctl_len;     /* tx: bytes of control messages this send carries; 0: a plain WSASendTo */
};

struct mior__io {
  mior__sock *sock;    /* the port's socket (the port opened it; close may close it) */
  HANDLE iocp;
  HANDLE event;        /* the event handle: manual-reset, the hEvent of every OVERLAPPED */
  int skip_on_success; /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is in force */
  int names;           /* udp: receive the sender's address */
  mior_pool_region region;
  mior__backend_counters cnt; /* this backend's own counters (ops.counters) */
  uint32_t batch;
  struct op *ops;    /* one per slot */
  uint32_t pending;  /* operations the kernel holds (a completion packet will come) */
  mior__tx_fifo txq; /* sends queued by tx_queue, issued at submit */
  mior__cq_fifo cq;  /* completions ready for reap */
  OVERLAPPED_ENTRY *entries;
  ULONG entries_cap;
  int uso;              /* USO on: runs of equal-size connected sends go as one */
  uso_run *runs;        /* USO_RUNS records ... */
  uint32_t *runs_free;  /* ... and the free ones */
  uint32_t runs_nfree;
  /* Receives through WSARecvMsg with a control buffer each, where the port needs control
   * messages (per-packet metadata, or URO's segment size); NULL: plain WSARecvFrom. */
  LPFN_WSARECVMSG recvmsg;
  uint8_t *ctl;         /* the ops' control buffers, one block */
  int uro;              /* URO on: a receive may be a coalesced buffer (cqe.seg) */
};

#define USO_RUNS 64u

static int winsock_supported(char *why, size_t len) {
  int rc = mior__socket_startup();
  if (rc < 0) {
    snprintf(why, len, "%s", mior_last_error());
    return 0;
  }
  return 1;
}

/* Never full for slot records: every slot is in the queue at most once, and error records
 * without a slot keep to the spare entries (cq_fifo.h). */
static inline mior__cqe *cq_push(struct mior__io *r) {
  return mior__cq_push_slot(&r->cq);
}

static void complete_rx(struct mior__io *r, uint32_t slot, int32_t res, int truncated) {
  struct op *op = &r->ops[slot];
  op->state = OP_IDLE;
  mior__cqe *c = cq_push(r);
  c->op = MIOR__OP_RX;
  c->slot = slot;
  c->res = res;
  c->off = 0;
  c->seg = 0;
  c->flags = truncated ? MIOR__CQE_TRUNC : 0;
  if (res >= 0 && r->recvmsg) {
    op->addrlen = op->msg.namelen;
    mior__rx_cmsg_meta(&op->msg, c); /* metadata, and URO's segment size */
    /* Control messages cut short: with URO the segment size may be what was lost, and a
     * coalesced buffer taken for one datagram would glue many together: dropped, counted. */
    if (r->uro && (op->msg.dwFlags & MSG_CTRUNC)) c->flags |= MIOR__CQE_TRUNC;
  }
  if (res > 0 && r->names) mior__sockaddr_to(&op->addr.sa, op->addrlen, &c->src);
  else memset(&c->src, 0, sizeof c->src);
}

static void complete_tx(struct mior__io *r, uint32_t slot, int32_t res) {
  struct op *op = &r->ops[slot];
  op->state = OP_IDLE;
  mior__cqe *c = cq_push(r);
  memset(c, 0, sizeof *c);
  c->op = MIOR__OP_TX;
  c->slot = slot;
  c->res = res;
  c->off = op->len;
}

/* A run's completion: every slot gets its own length, or the run's error.  A stack that refuses
 * segmented sends (the option accepted at open, the send refused) turns USO off and the run goes
 * again as single sends, at the head of the queue, in order. */
static void complete_run(struct mior__io *r, uint32_t head, int32_t res) {
  struct op *op = &r->ops[head];
  uso_run *run = op->run;
  op->run = NULL;
  r->runs_free[r->runs_nfree++] = (uint32_t)(run - r->runs);
  if (res == -EINVAL || res == -EOPNOTSUPP || res == -ENOPROTOOPT || res == -EMSGSIZE) {
    r->uso = 0;
    r->cnt.features_off |= MIOR_FEAT_WINSOCK_USO;
    mior__tx_rec recs[USO_MAX_SEGS];
    for (uint32_t k = 0; k < run->n; k++) {
      struct op *o = &r->ops[run->slots[k]];
      o->state = OP_QUEUED;
      recs[k].slot = run->slots[k];
      recs[k].off = o->off;
      recs[k].len = o->len;
      recs[k].has_dst = 0;
    }
    mior__tx_fifo_insert(&r->txq, 0, recs, run->n);
    return;
  }
  for (uint32_t k = 0; k < run->n; k++) {
    uint32_t slot = run->slots[k];
    complete_tx(r, slot, res < 0 ? res : (int32_t)r->ops[slot].len);
  }
}

/* Post one overlapped receive into slot.  Completes it here when Winsock says at once what
 * happened and will queue nothing (see the file comment). */
static void issue_rx(struct mior__io *r, uint32_t slot) {
  struct op *op = &r->ops[slot];
  memset(&op->ov, 0, sizeof op->ov);
  op->ov.hEvent = r->event;
  op->kind = MIOR__OP_RX;
  op->wb.buf = (CHAR *)mior_pool_region_slot(&r->region, slot);
  op->wb.len = r->region.buf_size;
  op->addrlen = (INT)sizeof op->addr;
  op->flags = 0;
  op->state = OP_PENDING;
  DWORD bytes = 0;
  int rc;
  if (r->recvmsg) {
    memset(&op->msg, 0, sizeof op->msg);
    op->msg.name = &op->addr.sa;
    op->msg.namelen = (INT)sizeof op->addr;
    op->msg.lpBuffers = &op->wb;
    op->msg.dwBufferCount = 1;
    op->msg.Control.buf = (CHAR *)op->ctl;
    op->msg.Control.len = MIOR__CMSG_SPACE;
    memset(op->ctl, 0, MIOR__CMSG_SPACE); /* what the kernel does not write parses as nothing */
    rc = r->recvmsg(r->sock->fd, &op->msg, &bytes, &op->ov, NULL);
  } else {
    rc = WSARecvFrom(r->sock->fd, &op->wb, 1, &bytes, &op->flags, r->names ? &op->addr.sa : NULL,
                     r->names ? &op->addrlen : NULL, &op->ov, NULL);
  }
  r->cnt.submits++;
  if (rc == 0) {
    if (r->skip_on_success) complete_rx(r, slot, (int32_t)bytes, 0);
    else r->pending++;
    return;
  }
  DWORD err = (DWORD)WSAGetLastError();
  if (err == WSA_IO_PENDING) {
    r->pending++;
    return;
  }
  /* A datagram longer than the slot: the slot holds its first buf_size bytes. */
  if (err == WSAEMSGSIZE) complete_rx(r, slot, (int32_t)r->region.buf_size, 1);
  else complete_rx(r, slot, mior__win_errno(err), 0);
}

/* How many queued sends from the head can go as one USO send: equal lengths, no destination, the
 * last possibly shorter.  0 if fewer than two. */
static uint32_t uso_run_len(struct mior__io *r) {
  if (!r->uso || r->runs_nfree == 0) return 0;
  const mior__tx_rec *first = mior__tx_fifo_at(&r->txq, 0);
  uint32_t seg = first->len;
  if (first->has_dst || seg == 0 || seg > USO_MAX_BYTES / 2 || r->ops[first->slot].ctl_len) return 0;
  uint32_t n = 1, total = seg;
  while (n < r->txq.len && n < USO_MAX_SEGS) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, n);
    if (e->has_dst || e->len == 0 || e->len > seg || total + e->len > USO_MAX_BYTES || r->ops[e->slot].ctl_len)
      break;
    total += e->len;
    n++;
    if (e->len < seg) break; /* a shorter datagram can only end a run */
  }
  return n >= 2 ? n : 0;
}

/* Issue the first n queued sends as one USO WSASendMsg (and take them off the queue). */
static void issue_run(struct mior__io *r, uint32_t n) {
  uso_run *run = &r->runs[r->runs_free[--r->runs_nfree]];
  uint32_t head = mior__tx_fifo_at(&r->txq, 0)->slot;
  DWORD seg = mior__tx_fifo_at(&r->txq, 0)->len;
  for (uint32_t k = 0; k < n; k++) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txq, k);
    struct op *o = &r->ops[e->slot];
    run->slots[k] = e->slot;
    run->wb[k].buf = (CHAR *)mior_pool_region_slot(&r->region, e->slot) + o->off;
    run->wb[k].len = o->len;
    o->state = OP_IN_RUN;
  }
  run->n = n;
  mior__tx_fifo_pop(&r->txq, n);
  memset(&run->msg, 0, sizeof run->msg);
  run->msg.lpBuffers = run->wb;
  run->msg.dwBufferCount = n;
  run->msg.Control.buf = run->cmsg.buf;
  run->msg.Control.len = sizeof run->cmsg.buf;
  memset(run->cmsg.buf, 0, sizeof run->cmsg.buf);
  WSACMSGHDR *cm = WSA_CMSG_FIRSTHDR(&run->msg);
  cm->cmsg_level = IPPROTO_UDP;
  cm->cmsg_type = UDP_SEND_MSG_SIZE;
  cm->cmsg_len = WSA_CMSG_LEN(sizeof(DWORD));
  memcpy(WSA_CMSG_DATA(cm), &seg, sizeof seg);
  struct op *op = &r->ops[head];
  memset(&op->ov, 0, sizeof op->ov);
  op->ov.hEvent = r->event;
  op->run = run;
  op->state = OP_PENDING;
  DWORD bytes = 0;
  int rc = WSASendMsg(r->sock->fd, &run->msg, 0, &bytes, &op->ov, NULL);
  r->cnt.submits++;
  if (rc == 0) {
    if (r->skip_on_success) {
      op->state = OP_IDLE;
      complete_run(r, head, (int32_t)bytes);
    } else {
      r->pending++;
    }
    return;
  }
  DWORD err = (DWORD)WSAGetLastError();
  if (err == WSA_IO_PENDING) {
    r->pending++;
    return;
  }
  op->state = OP_IDLE;
  complete_run(r, head, mior__win_errno(err));
}

static void issue_tx(struct mior__io *r, uint32_t slot) {
  struct op *op = &r->ops[slot];
  memset(&op->ov, 0, sizeof op->ov);
  op->ov.hEvent = r->event;
  op->wb.buf = (CHAR *)mior_pool_region_slot(&r->region, slot) + op->off;
  op->wb.len = op->len;
  op->state = OP_PENDING;
  DWORD bytes = 0;
  int rc;
  if (op->ctl_len) { /* a source address or ECN codepoint of its own */
    memset(&op->msg, 0, sizeof op->msg);
    op->msg.name = op->has_dst ? &op->addr.sa : NULL;
    op->msg.namelen = op->has_dst ? op->addrlen : 0;
    op->msg.lpBuffers = &op->wb;
    op->msg.dwBufferCount = 1;
    op->msg.Control.buf = (CHAR *)op->ctl;
    op->msg.Control.len = op->ctl_len;
    rc = WSASendMsg(r->sock->fd, &op->msg, 0, &bytes, &op->ov, NULL);
  } else {
    rc = WSASendTo(r->sock->fd, &op->wb, 1, &bytes, 0, op->has_dst ? &op->addr.sa : NULL,
                   op->has_dst ? op->addrlen : 0, &op->ov, NULL);
  }
  r->cnt.submits++;
  if (rc == 0) {
    if (r->skip_on_success) complete_tx(r, slot, (int32_t)bytes);
    else r->pending++;
    return;
  }
  DWORD err = (DWORD)WSAGetLastError();
  if (err == WSA_IO_PENDING) {
    r->pending++;
    return;
  }
  complete_tx(r, slot, mior__win_errno(err));
}

/* Turn one completion packet into a completion record. */
static void from_port(struct mior__io *r, const OVERLAPPED_ENTRY *e) {
  struct op *op = (struct op *)e->lpOverlapped;
  if (!op || op < r->ops || op >= r->ops + r->region.buf_count) return;
  /* Only operations the kernel holds complete from the port.  (Per the Winsock rule above this
   * never fails; the check keeps a surprise from returning a slot twice.) */
  if (op->state != OP_PENDING) return;
  uint32_t slot = (uint32_t)(op - r->ops);
  r->pending--;
  int32_t res = (int32_t)e->dwNumberOfBytesTransferred;
  int truncated = 0;
  if (op->ov.Internal != 0) {
    /* The NTSTATUS left in Internal is exact but raw; ask Winsock for its own error instead, as
     * the documentation intends (it reports a cut datagram as WSAEMSGSIZE, for instance). */
    DWORD bytes = 0, flags = 0;
    DWORD err = 0;
    if (r->sock->fd == INVALID_SOCKET ||
        !WSAGetOverlappedResult(r->sock->fd, &op->ov, &bytes, FALSE, &flags))
      err = r->sock->fd == INVALID_SOCKET ? ERROR_OPERATION_ABORTED : (DWORD)WSAGetLastError();
    if (err == WSAEMSGSIZE && op->kind == MIOR__OP_RX) {
      truncated = 1;
      res = (int32_t)r->region.buf_size;
    } else if (err != 0) {
      res = mior__win_errno(err);
    }
  }
  if (op->kind == MIOR__OP_RX) {
    complete_rx(r, slot, res, truncated);
  } else if (op->run) {
    op->state = OP_IDLE;
    complete_run(r, slot, res);
  } else {
    complete_tx(r, slot, res);
  }
}

/* Take what the port has, waiting up to ms (0: do not wait). */
static void drain_port(struct mior__io *r, DWORD ms) {
  if (r->pending == 0) return;
  ULONG want = r->entries_cap;
  if (want > r->pending) want = r->pending;
  ULONG got = 0;
  if (!GetQueuedCompletionStatusEx(r->iocp, r->entries, want, &got, ms, FALSE)) return;
  for (ULONG i = 0; i < got; i++) from_port(r, &r->entries[i]);
}

static int winsock_close(struct mior__io *r) {
  if (!r) return 0;
  mior__socket_close(r->sock, 0);
  /* Closing the socket aborts every pending operation, but each still comes out of the port
   * (and the kernel may write its OVERLAPPED until then): wait for them, bounded. */
  uint64_t end = mior__now_ns() + 1000u * 1000000u;
  while (r->pending > 0 && r->iocp && mior__now_ns() < end) {
    mior__cq_clear(&r->cq); /* the records are of no use now; keep room */
    drain_port(r, 50);
  }
  if (r->pending > 0) {
    /* The kernel never gave these back.  Freeing their OVERLAPPEDs could let it write into freed
     * memory, so they are leaked on purpose: a bounded leak instead of a corruption. */
    mior__fail(-EBUSY, "winsock: %u operation(s) did not complete after the socket closed",
               r->pending);
    return 1;
  }
  if (r->iocp) CloseHandle(r->iocp);
  if (r->event) CloseHandle(r->event);
  free(r->runs);
  free(r->runs_free);
  free(r->ctl);
  free(r->ops);
  mior__tx_fifo_free(&r->txq);
  mior__cq_free(&r->cq);
  free(r->entries);
  free(r);
  return 0;
}

/* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is only safe when every provider is an IFS one: a layered
 * provider may complete through the port regardless (as libuv checks too). */
static int can_skip_port(SOCKET s) {
  WSAPROTOCOL_INFOW info;
  int len = (int)sizeof info;
  if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) != 0) return 0;
  return (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
}

/* USO when asked (MIOR_OPT_UDP_GSO), for a connected UDP socket, where the stack knows
 * UDP_SEND_MSG_SIZE (Windows 10 2004 and later; Wine 8 refuses it, so there sends stay single). */
static void uso_setup(struct mior__io *r, const mior__io_cfg *cfg, uint32_t *features) {
  if (r->sock->kind != MIOR__KIND_UDP || !r->sock->connected || !(cfg->opts->flags & MIOR_OPT_UDP_GSO)) return;
  DWORD v = 0;
  int len = (int)sizeof v;
  if (getsockopt(r->sock->fd, IPPROTO_UDP, UDP_SEND_MSG_SIZE, (char *)&v, &len) != 0) return;
  r->runs = calloc(USO_RUNS, sizeof *r->runs);
  r->runs_free = malloc(USO_RUNS * sizeof *r->runs_free);
  if (!r->runs || !r->runs_free) return; /* single sends work without it */
  for (uint32_t i = 0; i < USO_RUNS; i++) r->runs_free[i] = USO_RUNS - 1 - i;
  r->runs_nfree = USO_RUNS;
  r->uso = 1;
  *features |= MIOR_FEAT_WINSOCK_USO;
}

/* The ops' control buffers, one block, made the first time a receive or a send needs one. */
static int ctl_alloc(struct mior__io *r) {
  if (r->ctl) return 0;
  r->ctl = calloc(r->region.buf_count, MIOR__CMSG_SPACE);
  if (!r->ctl) return mior__fail(-ENOMEM, "out of memory for %u control buffers", r->region.buf_count);
  for (uint32_t i = 0; i < r->region.buf_count; i++) r->ops[i].ctl = r->ctl + (size_t)i * MIOR__CMSG_SPACE;
  return 0;
}

/* WSARecvMsg is an extension of the socket's provider, asked for by its GUID. */
static LPFN_WSARECVMSG recvmsg_fn(SOCKET fd) {
  GUID id = WSAID_WSARECVMSG;
  LPFN_WSARECVMSG fn = NULL;
  DWORD bytes = 0;
  if (WSAIoctl(fd, SIO_GET_EXTENSION_FUNCTION_POINTER, &id, sizeof id, &fn, sizeof fn, &bytes, NULL, NULL) != 0)
    return NULL;
  return fn;
}

/* URO was asked for (a udp port that receives, without MIOR_OPT_NO_UDP_GRO) and is off: counted
 * as Linux counts a refused UDP_GRO, and said why. */
static void uro_refused(struct mior__io *r, const mior__io_cfg *cfg, const char *why) {
  r->cnt.offload_refused++;
  if (cfg->offload_reason) snprintf(cfg->offload_reason, MIOR__REASON_LEN, "%s", why);
}

/* UDP receive coalescing (URO, UDP_RECV_MAX_COALESCED_SIZE), as Linux's UDP GRO: on by default
 * for a udp port that receives, where the stack has it (Windows 10 2004 / Server 2022; Wine 8
 * refuses it, so there receives stay plain) and the slots hold a coalesced buffer (the transport
 * chose 64 KiB slots because the stack has it, or the caller did; smaller slots keep it off
 * quietly, as on Linux).  A coalesced receive names its segment size in a UDP_COALESCED_INFO
 * control message, so URO needs WSARecvMsg (r->recvmsg, set first). */
static void uro_setup(struct mior__io *r, const mior__io_cfg *cfg, uint32_t *features) {
  if (r->sock->kind != MIOR__KIND_UDP || (cfg->opts->flags & (MIOR_OPT_NO_UDP_GRO | MIOR_OPT_NO_RX))) return;
  char why[128];
  if (!mior__uro_supported(why, sizeof why)) {
    uro_refused(r, cfg, why);
    return;
  }
  if (r->region.buf_size < MIOR__GRO_BUF_SIZE) return;
  if (!r->recvmsg) {
    uro_refused(r, cfg, "URO: the socket's provider has no WSARecvMsg to read segment sizes with");
    return;
  }
  DWORD err = mior__uro_enable(r->sock->fd);
  if (err) {
    snprintf(why, sizeof why, "URO: UDP_RECV_MAX_COALESCED_SIZE refused on this socket (Windows error %lu)",
             (unsigned long)err);
    uro_refused(r, cfg, why);
    return;
  }
  r->uro = 1;
  *features |= MIOR_FEAT_WINSOCK_URO;
}

/* Receives take control messages where the port asked for metadata (the socket layer turned the
 * options on at open) or may get URO: then WSARecvMsg, with a control buffer per op. */
static int rx_msg_setup(struct mior__io *r, const mior__io_cfg *cfg, uint32_t *features) {
  if (r->sock->kind != MIOR__KIND_UDP || (cfg->opts->flags & MIOR_OPT_NO_RX)) return 0;
  int meta = (cfg->opts->flags & MIOR__RX_META_OPTS) != 0;
  int uro_wanted = !(cfg->opts->flags & MIOR_OPT_NO_UDP_GRO) && r->region.buf_size >= MIOR__GRO_BUF_SIZE &&
                   mior__uro_supported(NULL, 0);
  if (meta || uro_wanted) {
    r->recvmsg = recvmsg_fn(r->sock->fd);
    if (!r->recvmsg && meta)
      return mior__fail(-EOPNOTSUPP, "MIOR_OPT_RX_*: the socket's provider has no WSARecvMsg, which "
                        "per-packet metadata needs");
    if (r->recvmsg && ctl_alloc(r) < 0) return -ENOMEM;
  }
  uro_setup(r, cfg, features);
  /* Metadata alone needs WSARecvMsg; URO alone too, but only once it is on. */
  if (!meta && !r->uro) r->recvmsg = NULL;
  return 0;
}

static int winsock_open(struct mior__io **out, const mior__io_cfg *cfg, uint32_t *features) {
  struct mior__io *r = calloc(1, sizeof *r);
  if (!r) return mior__fail(-ENOMEM, "out of memory");
  r->sock = cfg->sock;
  r->region = cfg->region;
  r->batch = cfg->opts->batch;
  r->entries_cap = r->batch;
  r->ops = calloc(r->region.buf_count, sizeof *r->ops);
  mior__tx_fifo_init(&r->txq, r->region.buf_count);
  mior__cq_init(&r->cq, r->region.buf_count);
  r->entries = malloc((size_t)r->entries_cap * sizeof *r->entries);
  if (!r->ops || !r->txq.q || !r->cq.q || !r->entries) {
    winsock_close(r);
    return mior__fail(-ENOMEM, "out of memory for %u overlapped operations", r->region.buf_count);
  }
  int rc;
  r->names = r->sock->kind == MIOR__KIND_UDP;
  r->iocp = CreateIoCompletionPort((HANDLE)r->sock->fd, NULL, 0, 1);
  if (!r->iocp) {
    rc = mior__win_fail(GetLastError(), "CreateIoCompletionPort");
    winsock_close(r);
    return rc;
  }
  r->event = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (!r->event) {
    rc = mior__win_fail(GetLastError(), "CreateEvent (the port's event handle)");
    winsock_close(r);
    return rc;
  }
  /* MIOR_WINSOCK_NO_SKIP=1 keeps every completion going through the port: a diagnostic switch
   * for a provider that misbehaves, and how the tests cover both paths. */
  const char *no_skip = mior__getenv("MIOR_WINSOCK_NO_SKIP");
  if (!(no_skip && no_skip[0] == '1') && can_skip_port(r->sock->fd) &&
      SetFileCompletionNotificationModes((HANDLE)r->sock->fd, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                                                FILE_SKIP_SET_EVENT_ON_HANDLE))
    r->skip_on_success = 1;
  uso_setup(r, cfg, features);
  rc = rx_msg_setup(r, cfg, features);
  if (rc < 0) {
    winsock_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

static int winsock_bind_thread(struct mior__io *r) {
  /* A completion port may be used from any thread. */
  (void)r;
  return 0;
}

static uint32_t winsock_rx_post(struct mior__io *r, const uint32_t *slots, uint32_t n) {
  /* Posted at once rather than at submit: a receive armed now catches the next datagram. */
  for (uint32_t i = 0; i < n; i++) issue_rx(r, slots[i]);
  return n;
}

static int winsock_tx_queue(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                            const mior_addr *dst) {
  if (r->txq.len == r->txq.cap) return -EAGAIN;
  struct op *op = &r->ops[slot];
  op->kind = MIOR__OP_TX;
  op->state = OP_QUEUED;
  op->off = off;
  op->len = len;
  op->has_dst = dst != NULL;
  op->ctl_len = 0;
  if (dst) op->addrlen = mior__sockaddr_from(dst, &op->addr);
  return mior__tx_fifo_push(&r->txq, slot, off, len, dst != NULL);
}

/* A send with its own source address or ECN codepoint: WSASendMsg with IP_PKTINFO / IPV6_PKTINFO
 * and IP_ECN / IPV6_ECN control messages (Microsoft's "Winsock explicit congestion notification"),
 * which Windows does not let an application send Congestion Experienced (it fails the send with
 * WSAEINVAL): refused here at once, with the reason. */
static int winsock_tx_queue_meta(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                                 const mior_addr *dst, uint32_t flags, const mior__pkt_meta *meta) {
  if ((flags & MIOR_PKT_ECN) && meta->ecn == 3)
    return mior__fail(-EINVAL, "mior_tx_send: Windows does not let an application send the CE "
                      "codepoint (ECN 3); only a congested router sets it");
  if (r->txq.len == r->txq.cap) return -EAGAIN;
  int rc = ctl_alloc(r);
  if (rc < 0) return rc;
  rc = winsock_tx_queue(r, slot, off, len, dst);
  if (rc < 0) return rc;
  r->ops[slot].ctl_len = mior__tx_cmsg_meta(r->ops[slot].ctl, MIOR__CMSG_SPACE, r->sock->family, flags, meta);
  return rc;
}

static int winsock_submit(struct mior__io *r, int wait, int64_t timeout_us) {
  while (r->txq.len > 0) {
    uint32_t n = uso_run_len(r);
    if (n) {
      issue_run(r, n);
      continue;
    }
    uint32_t slot = mior__tx_fifo_at(&r->txq, 0)->slot;
    mior__tx_fifo_pop(&r->txq, 1);
    issue_tx(r, slot);
  }
  if (!wait || r->cq.len > 0 || r->pending == 0) return 0;
  DWORD ms = INFINITE;
  if (timeout_us >= 0) {
    int64_t m = (timeout_us + 999) / 1000; /* round up: a short wait must still wait */
    ms = m >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)m;
  }
  drain_port(r, ms);
  return 0;
}

static uint32_t winsock_reap(struct mior__io *r, mior__cqe *out, uint32_t max) {
  if (r->cq.len < max) drain_port(r, 0);
  return mior__cq_take(&r->cq, out, max);
}

static int winsock_cancel(struct mior__io *r) {
  /* Sends never issued complete here; what the kernel holds is aborted and comes out of the
   * port as ERROR_OPERATION_ABORTED (-ECANCELED). */
  while (r->txq.len > 0) {
    uint32_t slot = mior__tx_fifo_at(&r->txq, 0)->slot;
    mior__tx_fifo_pop(&r->txq, 1);
    complete_tx(r, slot, -ECANCELED);
  }
  if (r->pending > 0) CancelIoEx((HANDLE)r->sock->fd, NULL);
  return (int)r->pending;
}

static uint32_t winsock_outstanding(struct mior__io *r) {
  return r->pending + r->txq.len;
}

static void winsock_counters(const struct mior__io *r, mior__backend_counters *out) {
  *out = r->cnt;
}

static int winsock_event_open(struct mior__io *r, mior_handle *out) {
  *out = (mior_handle)(intptr_t)r->event;
  return 0;
}

/* Before the work: what completes from now on sets the event again. */
static void winsock_event_clear(struct mior__io *r) {
  ResetEvent(r->event);
}

/* After the work: completions the port still holds were signalled before the reset, so look. */
static void winsock_event_done(struct mior__io *r, int more) {
  if (!(more || r->cq.len || r->txq.len)) drain_port(r, 0);
  if (more || r->cq.len || r->txq.len) SetEvent(r->event);
}

const mior__backend_ops mior__winsock_ops = {
    .id = MIOR_BACKEND_SOCKETS,
    .name = "sockets",
    .supported = winsock_supported,
    .open = winsock_open,
    .bind_thread = winsock_bind_thread,
    .rx_post = winsock_rx_post,
    .tx_queue = winsock_tx_queue,
    .submit = winsock_submit,
    .reap = winsock_reap,
    .cancel = winsock_cancel,
    .outstanding = winsock_outstanding,
    .counters = winsock_counters,
    .close = winsock_close,
    .event_open = winsock_event_open,
    .event_clear = winsock_event_clear,
    .event_done = winsock_event_done,
    .tx_queue_meta = winsock_tx_queue_meta,
    .rx_meta_opts = MIOR__RX_META_OPTS,
    .rx_coalesce = mior__uro_supported,
};
