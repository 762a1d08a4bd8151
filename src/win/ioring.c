/* The ioring backend: Windows IoRing (Windows 11 and Server 2025) behind the common contract.
 *
 * One ring per port.  The pool region is registered once (BuildIoRingRegisterBuffers) and slots
 * are referred to as (buffer index, offset); the socket is registered once
 * (BuildIoRingRegisterFileHandles) and referred to by index 0.  A receive is an IoRing READ of one
 * slot on the socket; a send is a WRITE (IoRing version 3, Windows 11 22H2, and later).  Where
 * WRITE is missing (versions 1 and 2) sends go through Winsock while receives stay on the ring,
 * and MIOR_FEAT_TX_WINSOCK says so.
 *
 * IoRing has no address fields: READ and WRITE move bytes on a handle, exactly like ReadFile and
 * WriteFile on a socket.  So the socket must be connected: udp needs options.peer (datagrams from
 * anyone else are not delivered to a connected UDP socket), and a send may name no destination
 * other than that peer.
 *
 * Blocking waits use SetIoRingCompletionEvent: the event is signalled only when the completion
 * queue goes from empty to non-empty, so the queue is always drained (PopIoRingCompletion until
 * S_FALSE) before waiting on it.  Without the SET_COMPLETION_EVENT feature, SubmitIoRing's own
 * wait is used instead.
 *
 * Every ring operation carries its slot in the user data; every one that was built produces
 * exactly one completion (also when cancelled), which is how each slot comes back once.
 *
 * This file was compiled and reviewed against the documentation but has not run on Windows here:
 * Wine has no IoRing (see docs/WINDOWS.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h>
#include <windows.h>

#include "common/cq_fifo.h"
#include "common/tx_fifo.h"
#include "common/internal.h"
#include "common/os.h"
#include "win/error.h"
#include "win/ioring_api.h"
#include "common/socket.h"

/* User data: slot << 2 | kind.  Ring operations of our own (registrations, cancels) use kind 0
 * with a marker in the upper bits. */
#define UD_KIND_MASK 0x3u
#define UD_RX 1u
#define UD_TX 2u
#define UD_INTERNAL 0u
#define UD_REG_FILES (((UINT_PTR)1 << 2) | UD_INTERNAL)
#define UD_REG_BUFFERS (((UINT_PTR)2 << 2) | UD_INTERNAL)
#define UD_CANCEL (((UINT_PTR)3 << 2) | UD_INTERNAL)

static inline UINT_PTR ud_make(uint32_t slot, unsigned kind) {
  return ((UINT_PTR)slot << 2) | kind;
}

/* Largest registered buffer: IORING_BUFFER_INFO.Length is 32-bit.  A larger pool is registered
 * as several buffers, each a whole number of slots. */
#define MAX_REG_BUFFER 0x80000000u

enum { SLOT_IDLE = 0, SLOT_RX = 1, SLOT_TX = 2 };

struct mior__io {
  const mior__ioring_api *api;
  HIORING ring;
  HANDLE event;          /* completion event, or NULL (then SubmitIoRing waits) */
  mior__sock *sock;    /* the port's socket (the port opened it; close may close it) */
  mior_addr peer;
  mior_pool_region region;
  mior__backend_counters cnt; /* this backend's own counters (ops.counters) */
  uint32_t batch;
  uint32_t sq_size, cq_size;
  int reg_files, reg_buffers;
  uint32_t slots_per_buffer; /* registered buffers: slots in each */
  int tx_ring;           /* sends as IoRing WRITE; else Winsock */
  uint8_t *state;        /* SLOT_* per slot: which ring operation holds it */
  uint32_t *tx_asked;    /* per slot: bytes a ring send asked for (the ring does not echo it) */
  uint32_t in_ring;      /* operations built (submitted or not) whose completion will come */
  uint32_t unsubmitted;  /* entries built since the last SubmitIoRing */
  mior__tx_fifo txw;     /* Winsock sends waiting for submit (IoRing before version 3) */
  mior__cq_fifo cq;  /* completions ready for reap */
};

static int ioring_supported(char *why, size_t len) {
  return mior__ioring_api_get(why, len) != NULL;
}

static inline IORING_HANDLE_REF file_ref(const struct mior__io *r) {
  IORING_HANDLE_REF h;
  memset(&h, 0, sizeof h);
  if (r->reg_files) {
    h.Kind = IORING_REF_REGISTERED;
    h.Handle.Index = 0;
  } else {
    h.Kind = IORING_REF_RAW;
    h.Handle.Handle = (HANDLE)r->sock->fd;
  }
  return h;
}

static inline IORING_BUFFER_REF buffer_ref(const struct mior__io *r, uint32_t slot, uint32_t off) {
  IORING_BUFFER_REF b;
  memset(&b, 0, sizeof b);
  if (r->reg_buffers) {
    b.Kind = IORING_REF_REGISTERED;
    b.Buffer.IndexAndOffset.BufferIndex = slot / r->slots_per_buffer;
    b.Buffer.IndexAndOffset.Offset = ((slot % r->slots_per_buffer) << r->region.buf_shift) + off;
  } else {
    b.Kind = IORING_REF_RAW;
    b.Buffer.Address = mior_pool_region_slot(&r->region, slot) + off;
  }
  return b;
}

/* Never full: drain_ring pops the ring only while there is room, and every slot is in the
 * queue at most once. */
static inline mior__cqe *cq_push(struct mior__io *r) {
  return mior__cq_push_slot(&r->cq);
}

static void push_tx(struct mior__io *r, uint32_t slot, int32_t res, uint32_t len) {
  mior__cqe *c = cq_push(r);
  memset(c, 0, sizeof *c);
  c->op = MIOR__OP_TX;
  c->slot = slot;
  c->res = res;
  c->off = len;
}

/* One ring completion into the local queue (or swallowed, for our own operations). */
static void take_cqe(struct mior__io *r, const IORING_CQE *e) {
  unsigned kind = (unsigned)(e->UserData & UD_KIND_MASK);
  if (kind == UD_INTERNAL) return; /* registrations are checked at open; cancels need nothing */
  uint32_t slot = (uint32_t)(e->UserData >> 2);
  if (slot >= r->region.buf_count || r->state[slot] == SLOT_IDLE) return;
  r->state[slot] = SLOT_IDLE;
  r->in_ring--;
  int err = mior__hresult_errno(e->ResultCode);
  mior__cqe *c = cq_push(r);
  memset(c, 0, sizeof *c);
  c->slot = slot;
  if (kind == UD_RX) {
    c->op = MIOR__OP_RX;
    if (err == -EMSGSIZE) {
      /* A datagram longer than the slot: the read filled the slot and reported the overflow. */
      c->res = (int32_t)r->region.buf_size;
      c->flags = MIOR__CQE_TRUNC;
    } else {
      c->res = err < 0 ? err : (int32_t)e->Information;
    }
    /* A connected socket hears only its peer. */
    if (c->res > 0 && r->sock->kind == MIOR__KIND_UDP) c->src = r->peer;
  } else {
    c->op = MIOR__OP_TX;
    c->res = err < 0 ? err : (int32_t)e->Information;
    c->off = r->tx_asked[slot];
  }
}

/* Pop every ready completion into the local queue; 1 if any came. */
static int drain_ring(struct mior__io *r) {
  int any = 0;
  IORING_CQE e;
  while (r->cq.len < r->cq.cap) {
    HRESULT hr = r->api->PopIoRingCompletion(r->ring, &e);
    if (hr != S_OK) break; /* S_FALSE: empty */
    take_cqe(r, &e);
    any = 1;
  }
  return any;
}

static int submit_ring(struct mior__io *r, UINT32 wait_ops, UINT32 ms) {
  UINT32 submitted = 0;
  HRESULT hr = r->api->SubmitIoRing(r->ring, wait_ops, ms, &submitted);
  r->cnt.submits++;
  if (submitted >= r->unsubmitted) r->unsubmitted = 0;
  else r->unsubmitted -= submitted;
  if (FAILED(hr)) {
    int err = mior__hresult_errno(hr);
    /* A wait that ran out of time, or a completion queue momentarily too full to accept more
     * (reaping makes room), are not failures of the port. */
    if (hr == HRESULT_FROM_WIN32(WAIT_TIMEOUT) || err == -ETIMEDOUT || err == -EAGAIN) return 0;
    return mior__hresult_fail(hr, "SubmitIoRing");
  }
  return 0;
}

static void ioring_close(struct mior__io *r) {
  if (!r) return;
  if (r->ring) {
    /* Abort what the socket holds, then give the ring a bounded time to report it, so no
     * operation still refers to the pool when the ring goes. */
    mior__socket_close(r->sock, 0);
    if (r->unsubmitted) submit_ring(r, 0, 0);
    uint64_t end = mior__now_ns() + 1000u * 1000000u;
    while (r->in_ring > 0 && mior__now_ns() < end) {
      mior__cq_clear(&r->cq);
      if (!drain_ring(r)) {
        if (r->event) WaitForSingleObject(r->event, 20);
        else submit_ring(r, 1, 20);
      }
    }
    r->api->CloseIoRing(r->ring);
  }
  mior__socket_close(r->sock, 0);
  if (r->event) CloseHandle(r->event);
  free(r->state);
  free(r->tx_asked);
  mior__tx_fifo_free(&r->txw);
  mior__cq_free(&r->cq);
  free(r);
}

/* Run one registration entry to completion at open. */
static HRESULT register_now(struct mior__io *r, UINT_PTR ud) {
  UINT32 submitted = 0;
  HRESULT hr = r->api->SubmitIoRing(r->ring, 1, 5000, &submitted);
  r->unsubmitted = 0;
  if (FAILED(hr)) return hr;
  IORING_CQE e;
  for (int i = 0; i < 100; i++) {
    hr = r->api->PopIoRingCompletion(r->ring, &e);
    if (hr == S_OK) {
      if (e.UserData == ud) return e.ResultCode;
      continue;
    }
    Sleep(1);
  }
  return HRESULT_FROM_WIN32(WAIT_TIMEOUT);
}

/* The socket must be a kernel (IFS) handle for the ring to read and write it. */
static int ifs_handle(SOCKET s) {
  WSAPROTOCOL_INFOW info;
  int len = (int)sizeof info;
  if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) != 0) return 0;
  return (info.dwServiceFlags1 & XP1_IFS_HANDLES) != 0;
}

static uint32_t clamp_pow2(uint32_t want, uint32_t max) {
  uint32_t v = 1;
  while (v < want && v < (1u << 30)) v <<= 1;
  while (v > max && v > 1) v >>= 1;
  return v;
}

/* Create the ring, queue sizes rounded as IoRing rounds them (powers of two, CQ at least twice the
 * SQ, within what QueryIoRingCapabilities allows), and read back what it made. */
static int create_ring(struct mior__io *r, const mior_options *o) {
  const mior__ioring_api *api = r->api;
  uint32_t sq = clamp_pow2(o->sq_entries, api->caps.MaxSubmissionQueueSize);
  uint32_t cq = clamp_pow2(o->cq_entries > 2 * sq ? o->cq_entries : 2 * sq, api->caps.MaxCompletionQueueSize);
  IORING_CREATE_FLAGS flags;
  memset(&flags, 0, sizeof flags);
  HRESULT hr = api->CreateIoRing(api->version, flags, sq, cq, &r->ring);
  if (FAILED(hr)) {
    r->ring = NULL;
    return mior__hresult_fail(hr, "CreateIoRing(version %u, sq %u, cq %u)", (unsigned)api->version, sq, cq);
  }
  IORING_INFO info;
  memset(&info, 0, sizeof info);
  hr = api->GetIoRingInfo(r->ring, &info);
  if (FAILED(hr)) return mior__hresult_fail(hr, "GetIoRingInfo");
  r->sq_size = info.SubmissionQueueSize;
  r->cq_size = info.CompletionQueueSize;
  return 0;
}

/* The socket, once, as registered file 0.  Optional: operations can name the handle itself. */
static void register_socket(struct mior__io *r, uint32_t *features) {
  HANDLE h = (HANDLE)r->sock->fd;
  HRESULT hr = r->api->BuildIoRingRegisterFileHandles(r->ring, 1, &h, UD_REG_FILES);
  if (SUCCEEDED(hr)) hr = register_now(r, UD_REG_FILES);
  if (SUCCEEDED(hr)) {
    r->reg_files = 1;
    *features |= MIOR_FEAT_REG_FILES;
  }
}

/* The pool, once, as one buffer (or a few, past 2 GiB): slots are then (index, offset).
 * Optional: operations can name the address itself. */
static void register_pool(struct mior__io *r, uint32_t *features) {
  r->slots_per_buffer = MAX_REG_BUFFER >> r->region.buf_shift;
  if (r->slots_per_buffer > r->region.buf_count) r->slots_per_buffer = r->region.buf_count;
  uint32_t nbuf = (r->region.buf_count + r->slots_per_buffer - 1) / r->slots_per_buffer;
  IORING_BUFFER_INFO *bufs = calloc(nbuf, sizeof *bufs);
  if (!bufs) return;
  for (uint32_t i = 0; i < nbuf; i++) {
    uint32_t first = i * r->slots_per_buffer;
    uint32_t n = r->region.buf_count - first < r->slots_per_buffer ? r->region.buf_count - first
                                                                   : r->slots_per_buffer;
    bufs[i].Address = mior_pool_region_slot(&r->region, first);
    bufs[i].Length = n << r->region.buf_shift;
  }
  HRESULT hr = r->api->BuildIoRingRegisterBuffers(r->ring, nbuf, bufs, UD_REG_BUFFERS);
  if (SUCCEEDED(hr)) hr = register_now(r, UD_REG_BUFFERS);
  free(bufs);
  if (SUCCEEDED(hr)) {
    r->reg_buffers = 1;
    *features |= MIOR_FEAT_REG_BUFFERS;
  }
}

/* An event for blocking waits, where the IoRing has them (SET_COMPLETION_EVENT). */
static int set_completion_event(struct mior__io *r) {
  if (!(r->api->caps.FeatureFlags & MIOR_IORING_FEATURE_SET_COMPLETION_EVENT)) return 0;
  r->event = CreateEventW(NULL, FALSE, FALSE, NULL);
  if (!r->event) return mior__win_fail(GetLastError(), "CreateEvent");
  HRESULT hr = r->api->SetIoRingCompletionEvent(r->ring, r->event);
  if (FAILED(hr)) {
    /* Still usable: SubmitIoRing can wait by itself. */
    CloseHandle(r->event);
    r->event = NULL;
  }
  return 0;
}

static int ioring_open(struct mior__io **out, const mior__io_cfg *cfg, uint32_t *features) {
  char why[200] = "";
  const mior__ioring_api *api = mior__ioring_api_get(why, sizeof why);
  if (!api) return mior__fail(-EOPNOTSUPP, "ioring: %s", why);
  if (cfg->ep->kind == MIOR__KIND_PACKET)
    return mior__fail(-EOPNOTSUPP, "packet:// (Ethernet frames) is not available on Windows without a driver");
  if (!cfg->peer)
    return mior__fail(-EINVAL, "ioring: IoRing has no address fields, so the socket must be connected: "
                      "set options.peer (%s://), or use the sockets backend",
                      mior__kind_name(cfg->ep->kind));
  const mior_options *o = cfg->opts;
  struct mior__io *r = calloc(1, sizeof *r);
  if (!r) return mior__fail(-ENOMEM, "out of memory");
  r->api = api;
  r->sock = cfg->sock;
  r->peer = *cfg->peer;
  r->region = cfg->region;
  r->batch = o->batch;
  r->state = calloc(r->region.buf_count, 1);
  r->tx_asked = calloc(r->region.buf_count, sizeof *r->tx_asked);
  mior__tx_fifo_init(&r->txw, r->region.buf_count);
  mior__cq_init(&r->cq, r->region.buf_count);
  int rc;
  if (!r->state || !r->tx_asked || !r->txw.q || !r->cq.q) {
    rc = mior__fail(-ENOMEM, "out of memory for the ring's slot state");
    goto fail;
  }
  if (!ifs_handle(r->sock->fd)) {
    rc = mior__fail(-EOPNOTSUPP, "ioring: the socket is not a kernel (IFS) handle (a layered Winsock "
                    "provider is installed); IoRing cannot read it: use the sockets backend");
    goto fail;
  }

  rc = create_ring(r, o);
  if (rc < 0) goto fail;
  register_socket(r, features);
  if (!(o->flags & MIOR_OPT_NO_REGISTERED_BUFFERS)) register_pool(r, features);
  r->tx_ring = api->has_write;
  if (!r->tx_ring) *features |= MIOR_FEAT_TX_WINSOCK;
  rc = set_completion_event(r);
  if (rc < 0) goto fail;
  *out = r;
  return 0;

fail:
  ioring_close(r);
  return rc;
}

static int ioring_bind_thread(struct mior__io *r) {
  /* An IoRing handle is not tied to a thread. */
  (void)r;
  return 0;
}

/* Room for one more operation: an entry in the submission queue, and a place in the completion
 * queue for its completion (more in flight than the completion queue holds could overflow it). */
static int room(struct mior__io *r) {
  if (r->in_ring >= r->cq_size) return 0;
  if (r->unsubmitted >= r->sq_size && submit_ring(r, 0, 0) < 0) return 0;
  return r->unsubmitted < r->sq_size;
}

static uint32_t ioring_rx_post(struct mior__io *r, const uint32_t *slots, uint32_t n) {
  IORING_HANDLE_REF f = file_ref(r);
  uint32_t i;
  for (i = 0; i < n; i++) {
    if (!room(r)) break;
    uint32_t slot = slots[i];
    HRESULT hr = r->api->BuildIoRingReadFile(r->ring, f, buffer_ref(r, slot, 0), r->region.buf_size, 0,
                                             ud_make(slot, UD_RX), MIOR_IOSQE_FLAGS_NONE);
    if (hr == MIOR_IORING_E_SUBMISSION_QUEUE_FULL) {
      if (submit_ring(r, 0, 0) < 0) break;
      hr = r->api->BuildIoRingReadFile(r->ring, f, buffer_ref(r, slot, 0), r->region.buf_size, 0,
                                       ud_make(slot, UD_RX), MIOR_IOSQE_FLAGS_NONE);
    }
    if (FAILED(hr)) break; /* the rest stay the caller's */
    r->state[slot] = SLOT_RX;
    r->in_ring++;
    r->unsubmitted++;
  }
  return i;
}

static int ioring_tx_queue(struct mior__io *r, uint32_t slot, uint32_t off, uint32_t len,
                           const mior_addr *dst) {
  if (MIOR_UNLIKELY(dst && !(dst->family == r->peer.family && dst->port == r->peer.port &&
                             memcmp(dst->addr, r->peer.addr, dst->family == MIOR_AF_INET6 ? 16 : 4) == 0)))
    return mior__fail(-EINVAL, "ioring: IoRing has no address fields; a send goes to the connected "
                      "peer only (pass dst NULL or the peer's address)");
  if (!r->tx_ring) return mior__tx_fifo_push(&r->txw, slot, off, len, 0);
  if (!room(r)) return -EAGAIN;
  HRESULT hr = r->api->BuildIoRingWriteFile(r->ring, file_ref(r), buffer_ref(r, slot, off), len, 0,
                                            MIOR_FILE_WRITE_FLAGS_NONE, ud_make(slot, UD_TX),
                                            MIOR_IOSQE_FLAGS_NONE);
  if (hr == MIOR_IORING_E_SUBMISSION_QUEUE_FULL) return -EAGAIN;
  if (FAILED(hr)) {
    int err = mior__hresult_errno(hr);
    if (err == -EOPNOTSUPP) {
      /* The ring said WRITE was there and then refused it: send through Winsock from now on,
       * and say so in the features. */
      r->tx_ring = 0;
      r->cnt.features_on |= MIOR_FEAT_TX_WINSOCK;
      return ioring_tx_queue(r, slot, off, len, dst);
    }
    return mior__hresult_fail(hr, "BuildIoRingWriteFile");
  }
  r->tx_asked[slot] = len;
  r->state[slot] = SLOT_TX;
  r->in_ring++;
  r->unsubmitted++;
  return 0;
}

/* Sends through Winsock (no IoRing WRITE): a blocking send of one datagram copies it into the
 * kernel and returns, so it completes here. */
static void send_winsock(struct mior__io *r) {
  while (r->txw.len > 0) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txw, 0);
    int n = send(r->sock->fd, (const char *)mior_pool_region_slot(&r->region, e->slot) + e->off,
                 (int)e->len, 0);
    r->cnt.submits++;
    push_tx(r, e->slot, n >= 0 ? n : mior__win_errno((DWORD)WSAGetLastError()), e->len);
    mior__tx_fifo_pop(&r->txw, 1);
  }
}

static int ioring_submit(struct mior__io *r, int wait, int64_t timeout_us) {
  if (!r->tx_ring) send_winsock(r);
  if (r->unsubmitted) {
    int rc = submit_ring(r, 0, 0);
    if (rc < 0) return rc;
  }
  if (!wait || r->cq.len > 0 || r->in_ring == 0) return 0;
  /* Drain first: the event fires only on the empty -> non-empty edge. */
  if (drain_ring(r)) return 0;
  DWORD ms = INFINITE;
  if (timeout_us >= 0) {
    int64_t m = (timeout_us + 999) / 1000;
    ms = m >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)m;
  }
  if (r->event) {
    WaitForSingleObject(r->event, ms);
  } else {
    int rc = submit_ring(r, 1, ms);
    if (rc < 0) return rc;
  }
  drain_ring(r);
  return 0;
}

static uint32_t ioring_reap(struct mior__io *r, mior__cqe *out, uint32_t max) {
  if (r->cq.len < max) drain_ring(r);
  return mior__cq_take(&r->cq, out, max);
}

static int ioring_cancel(struct mior__io *r) {
  /* Winsock sends not yet made: complete them here. */
  while (r->txw.len > 0) {
    const mior__tx_rec *e = mior__tx_fifo_at(&r->txw, 0);
    push_tx(r, e->slot, -ECANCELED, e->len);
    mior__tx_fifo_pop(&r->txw, 1);
  }
  /* Every ring operation is cancelled by its user data; each then completes (aborted). */
  IORING_HANDLE_REF f = file_ref(r);
  for (uint32_t slot = 0; slot < r->region.buf_count; slot++) {
    if (r->state[slot] == SLOT_IDLE) continue;
    UINT_PTR ud = ud_make(slot, r->state[slot] == SLOT_RX ? UD_RX : UD_TX);
    HRESULT hr = r->api->BuildIoRingCancelRequest(r->ring, f, ud, UD_CANCEL);
    if (hr == MIOR_IORING_E_SUBMISSION_QUEUE_FULL) {
      submit_ring(r, 0, 0);
      drain_ring(r);
      hr = r->api->BuildIoRingCancelRequest(r->ring, f, ud, UD_CANCEL);
    }
    if (SUCCEEDED(hr)) r->unsubmitted++;
  }
  if (r->unsubmitted) submit_ring(r, 0, 0);
  return (int)r->in_ring;
}

static uint32_t ioring_outstanding(struct mior__io *r) {
  return r->in_ring + r->txw.len;
}

static void ioring_counters(const struct mior__io *r, mior__backend_counters *out) {
  *out = r->cnt;
}

const mior__backend_ops mior__ioring_ops = {
    .id = MIOR_BACKEND_IORING,
    .name = "ioring",
    .supported = ioring_supported,
    .open = ioring_open,
    .bind_thread = ioring_bind_thread,
    .rx_post = ioring_rx_post,
    .tx_queue = ioring_tx_queue,
    .submit = ioring_submit,
    .reap = ioring_reap,
    .cancel = ioring_cancel,
    .outstanding = ioring_outstanding,
    .counters = ioring_counters,
    .close = ioring_close,
};
