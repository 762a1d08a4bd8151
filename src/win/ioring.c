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
 * The event handle (mior_port_event_handle) is that same completion event, made manual-reset.
 * Not a second event: a ring has at most one completion event (setting another replaces it), so
 * a separate one for the application could only be set by a thread relaying the ring's.
 * Manual-reset, as on the Winsock backend: an application's wait must not consume the signal,
 * or a second wait before the work call would sleep on ready work; so every wait of our own
 * resets it first and drains the ring before it sleeps (wait_ring).  event_clear resets it;
 * event_done submits what the work call only built (receives it posted again), resets it again,
 * drains the ring into the local queue and sets it if any work is left.  A completion that comes after that drain found the ring empty is an empty -> non-empty
 * edge, which the system signals; one that comes before it is drained and seen.  So no wake-up is
 * lost, and one that the work call itself took leaves no spurious signal behind.  A ring without
 * the feature has no event: mior_port_event_handle then fails with -EOPNOTSUPP and the reason.
 *
 * Every ring operation carries its slot in the user data; every one that was built produces
 * exactly one completion (also when cancelled), which is how each slot comes back once.
 *
 * The completion queue must always have room for what can complete: it is made big enough for an
 * operation on every slot plus a submission queue of cancels (or registrations), and operations in
 * the ring are capped at its size less the submission queue's.
 *
 * This file has not run on Windows here.  In CI it runs under Wine against the IoRing emulation in
 * test/win_ioring_emu, which follows Microsoft's documentation and is not Windows (see
 * docs/WINDOWS.md for what that covers and what only a Windows machine can settle).
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
#define UD_PROBE (((UINT_PTR)4 << 2) | UD_INTERNAL)

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
  int rx_refused;        /* a READ completed with a refusal: no more receives are posted */
  uint8_t *state;        /* SLOT_* per slot: which ring operation holds it */
  uint32_t *tx_asked;    /* per slot: bytes a ring send asked for (the ring does not echo it) */
  uint32_t *tx_off;      /* per slot: where in the slot that send starts (to resend it) */
  uint32_t in_ring;      /* operations built (submitted or not) whose completion will come */
  uint32_t rx_in_ring;   /* ... of which receives */
  uint32_t op_cap;       /* most operations in the ring: the CQ less room for an SQ of cancels */
  uint32_t unsubmitted;  /* entries built since the last SubmitIoRing */
  /* The registration arrays: the system reads them when the entry runs, which may be at any later
   * submit if the first one failed, so they live as long as the ring. */
  HANDLE reg_handle;
  IORING_BUFFER_INFO *reg_bufs;
  uint8_t *probe_buf;    /* the open probe's READ target (leaked if the probe never completes) */
  mior__tx_fifo txw;     /* Winsock sends waiting for submit (IoRing before version 3) */
  mior__cq_fifo cq;  /* completions ready for reap */
};

/* A result that says the system will not do this operation on this handle at all (rather than that
 * this one attempt failed): IoRing READ/WRITE on a socket the I/O manager or AFD refuses. */
static int refused_class(HRESULT hr) {
  return hr == E_INVALIDARG || hr == E_NOTIMPL || hr == HRESULT_FROM_WIN32(ERROR_NOT_SUPPORTED) ||
         hr == HRESULT_FROM_WIN32(ERROR_INVALID_FUNCTION) ||
         hr == HRESULT_FROM_WIN32(ERROR_INVALID_PARAMETER) ||
         hr == (HRESULT)(0xC00000BBL | FACILITY_NT_BIT) /* STATUS_NOT_SUPPORTED */ ||
         hr == (HRESULT)(0xC0000010L | FACILITY_NT_BIT) /* STATUS_INVALID_DEVICE_REQUEST */;
}

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
  if (e->UserData == UD_PROBE) {
    /* The open probe's READ, when it completes after the probe gave up on it (close waits). */
    r->in_ring--;
    return;
  }
  if (kind == UD_INTERNAL) return; /* registrations are checked at open; cancels need nothing */
  uint32_t slot = (uint32_t)(e->UserData >> 2);
  if (slot >= r->region.buf_count || r->state[slot] == SLOT_IDLE) return;
  r->state[slot] = SLOT_IDLE;
  r->in_ring--;
  if (kind == UD_RX) r->rx_in_ring--;
  if (kind == UD_TX && refused_class(e->ResultCode)) {
    /* The ring took the WRITE and the system refused it on this socket: this and every later
     * send go through Winsock (the slot is sent again there, not failed; so are the WRITEs still
     * in the ring when the first refusal came), and the features say so. */
    r->tx_ring = 0;
    r->cnt.features_on |= MIOR_FEAT_TX_WINSOCK;
    mior__tx_fifo_push(&r->txw, slot, r->tx_off[slot], r->tx_asked[slot], 0);
    return;
  }
  int err = mior__hresult_errno(e->ResultCode);
  mior__cqe *c = cq_push(r);
  memset(c, 0, sizeof *c);
  c->slot = slot;
  if (kind == UD_RX) {
    c->op = MIOR__OP_RX;
    if (err == -EMSGSIZE || (err == 0 && e->Information >= r->region.buf_size)) {
      /* A datagram longer than the slot, reported either way a system may report it: as the
       * overflow error (STATUS_BUFFER_OVERFLOW, ERROR_MORE_DATA) with the slot filled, or as
       * success with the slot filled.  The second cannot be told from a datagram of exactly the
       * slot's size, so a full slot always counts as truncated: the largest datagram this
       * backend delivers is buf_size - 1 bytes. */
      c->res = (int32_t)r->region.buf_size;
      c->flags = MIOR__CQE_TRUNC;
    } else {
      /* Receives refused on this socket after all: posting more would only fail again. */
      if (err < 0 && refused_class(e->ResultCode)) r->rx_refused = 1;
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

/* Wait up to ms for a completion with the (manual-reset) completion event: reset it, look once
 * more, and sleep only if the ring is still empty, so that a completion that came before the reset
 * is not waited for.  1 if any came. */
static int wait_ring(struct mior__io *r, DWORD ms) {
  ResetEvent(r->event);
  if (drain_ring(r)) return 1;
  WaitForSingleObject(r->event, ms);
  return drain_ring(r);
}

static int is_timeout(HRESULT hr) {
  return hr == HRESULT_FROM_WIN32(WAIT_TIMEOUT) || hr == HRESULT_FROM_WIN32(ERROR_TIMEOUT) ||
         mior__hresult_errno(hr) == -ETIMEDOUT;
}

/* Submit everything queued (and wait for wait_ops completions up to ms).  On success, and on a
 * wait that ran out of time, every queued entry was submitted: the count SubmitIoRing may write
 * is not needed, and is not relied on (the documentation does not promise it on a timeout).  On
 * any other error every entry stays queued.  A completion queue too full to take what would be
 * submitted (version 3 on) is drained into the local queue and the submit tried once more; if it
 * is still full the entries stay queued for the next submit, which is not an error of the port. */
static int submit_ring(struct mior__io *r, UINT32 wait_ops, UINT32 ms) {
  UINT32 submitted = 0;
  HRESULT hr = r->api->SubmitIoRing(r->ring, wait_ops, ms, &submitted);
  r->cnt.submits++;
  if (hr == MIOR_IORING_E_COMPLETION_QUEUE_TOO_FULL) {
    drain_ring(r);
    hr = r->api->SubmitIoRing(r->ring, wait_ops, ms, &submitted);
    r->cnt.submits++;
    if (hr == MIOR_IORING_E_COMPLETION_QUEUE_TOO_FULL) return 0;
  }
  if (SUCCEEDED(hr) || is_timeout(hr)) {
    r->unsubmitted = 0;
    return 0;
  }
  return mior__hresult_fail(hr, "SubmitIoRing");
}

/* Rings closed with operations still running: never closed, their memory never freed. */
static volatile LONG rings_leaked;

static int ioring_close(struct mior__io *r) {
  if (!r) return 0;
  int leak = 0;
  if (r->ring) {
    /* CloseIoRing neither cancels nor waits: an operation still running when it returns goes on
     * writing into its buffer.  So: cancel everything the socket holds (CancelIoEx covers the
     * ring's operations on it, whatever the ring's own cancels do), submit what is still queued
     * while the socket is open (so it fails or is cancelled, instead of starting after the
     * close), and give the ring a bounded time to report it all.  The front end calls this only
     * when nothing of the pool is outstanding (and keeps the pool otherwise); what can remain is
     * the open probe's READ, into memory of our own. */
    if (r->in_ring > 0 || r->unsubmitted) {
      CancelIoEx((HANDLE)r->sock->fd, NULL);
      if (r->unsubmitted) submit_ring(r, 0, 0);
      CancelIoEx((HANDLE)r->sock->fd, NULL);
    }
    uint64_t end = mior__now_ns() + 1000u * 1000000u;
    while (r->in_ring > 0 && mior__now_ns() < end) {
      mior__cq_clear(&r->cq);
      if (!drain_ring(r)) {
        if (r->event) wait_ring(r, 20);
        else submit_ring(r, 1, 20);
      }
    }
    if (r->in_ring > 0) {
      /* Still running: the ring and everything it may write stay allocated (a leak, counted),
       * rather than freed under the system's feet. */
      LONG n = InterlockedIncrement(&rings_leaked);
      mior__fail(-ETIMEDOUT, "ioring: %u operation(s) still running after cancel at close: the ring and "
                 "its memory are left allocated (%ld ring(s) so far in this process)",
                 r->in_ring, (long)n);
      leak = 1;
    } else {
      r->api->CloseIoRing(r->ring);
    }
  }
  mior__socket_close(r->sock, 0);
  if (leak) return 1;
  if (r->event) CloseHandle(r->event);
  free(r->state);
  free(r->tx_asked);
  free(r->tx_off);
  free(r->reg_bufs);
  free(r->probe_buf);
  mior__tx_fifo_free(&r->txw);
  mior__cq_free(&r->cq);
  free(r);
  return 0;
}

/* Run one registration entry to completion at open.  A SubmitIoRing that fails leaves the entry
 * queued (to run at some later submit, reading the array then): that fails the open, and
 * *queued says so.  Otherwise the registration's own result. */
static HRESULT register_now(struct mior__io *r, UINT_PTR ud, int *queued) {
  r->unsubmitted++;
  *queued = 0;
  UINT32 submitted = 0;
  HRESULT hr = r->api->SubmitIoRing(r->ring, 1, 5000, &submitted);
  r->cnt.submits++;
  if (FAILED(hr) && !is_timeout(hr)) {
    *queued = 1;
    return hr;
  }
  r->unsubmitted = 0;
  IORING_CQE e;
  for (int i = 0; i < 5000; i++) {
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
 * SQ, within what QueryIoRingCapabilities allows), and read back what it made.  The CQ is also made
 * big enough for an operation on every slot of the pool plus a submission queue of cancels, so
 * that the cap on operations (op_cap) only bites where the system's maximum is smaller. */
static int create_ring(struct mior__io *r, const mior_options *o) {
  const mior__ioring_api *api = r->api;
  uint32_t sq = clamp_pow2(o->sq_entries, api->caps.MaxSubmissionQueueSize);
  uint64_t want = o->cq_entries > 2 * sq ? o->cq_entries : 2 * sq;
  if (want < (uint64_t)sq + r->region.buf_count) want = (uint64_t)sq + r->region.buf_count;
  uint32_t cq = clamp_pow2(want > (1u << 30) ? (1u << 30) : (uint32_t)want, api->caps.MaxCompletionQueueSize);
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
  /* The documentation makes the CQ at least twice the SQ; should a ring report less, keep at least
   * one operation possible. */
  r->op_cap = r->cq_size > r->sq_size ? r->cq_size - r->sq_size : 1;
  return 0;
}

/* The socket, once, as registered file 0.  Optional: operations can name the handle itself; but a
 * registration left queued by a failed submit fails the open. */
static int register_socket(struct mior__io *r, uint32_t *features) {
  r->reg_handle = (HANDLE)r->sock->fd;
  HRESULT hr = r->api->BuildIoRingRegisterFileHandles(r->ring, 1, &r->reg_handle, UD_REG_FILES);
  int queued = 0;
  if (SUCCEEDED(hr)) hr = register_now(r, UD_REG_FILES, &queued);
  if (queued) return mior__hresult_fail(hr, "ioring: SubmitIoRing for the socket's registration");
  if (SUCCEEDED(hr)) {
    r->reg_files = 1;
    *features |= MIOR_FEAT_REG_FILES;
  }
  return 0;
}

/* The pool, once, as one buffer (or a few, past 2 GiB): slots are then (index, offset).
 * Optional: operations can name the address itself. */
static int register_pool(struct mior__io *r, uint32_t *features) {
  r->slots_per_buffer = MAX_REG_BUFFER >> r->region.buf_shift;
  if (r->slots_per_buffer > r->region.buf_count) r->slots_per_buffer = r->region.buf_count;
  uint32_t nbuf = (r->region.buf_count + r->slots_per_buffer - 1) / r->slots_per_buffer;
  IORING_BUFFER_INFO *bufs = calloc(nbuf, sizeof *bufs);
  if (!bufs) return 0;
  r->reg_bufs = bufs; /* freed with the ring: read whenever the entry runs */
  for (uint32_t i = 0; i < nbuf; i++) {
    uint32_t first = i * r->slots_per_buffer;
    uint32_t n = r->region.buf_count - first < r->slots_per_buffer ? r->region.buf_count - first
                                                                   : r->slots_per_buffer;
    bufs[i].Address = mior_pool_region_slot(&r->region, first);
    bufs[i].Length = n << r->region.buf_shift;
  }
  HRESULT hr = r->api->BuildIoRingRegisterBuffers(r->ring, nbuf, bufs, UD_REG_BUFFERS);
  int queued = 0;
  if (SUCCEEDED(hr)) hr = register_now(r, UD_REG_BUFFERS, &queued);
  if (queued) return mior__hresult_fail(hr, "ioring: SubmitIoRing for the pool's registration");
  if (SUCCEEDED(hr)) {
    r->reg_buffers = 1;
    *features |= MIOR_FEAT_REG_BUFFERS;
  }
  return 0;
}

/* Whether the system does IoRing READ on this socket at all: build one READ (into memory of our
 * own), cancel it, and see how it ends.  Refused when built, or completing with a refusal, fails
 * the open with -EOPNOTSUPP and the reason, so AUTO falls back to Winsock: a READ refused after
 * open would only stop receiving.  Cancelled (or a datagram already there, which is then lost:
 * nothing has been sent to a port before its open returns) means READ works. */
static int probe_read(struct mior__io *r) {
  enum { PROBE_LEN = 64 };
  r->probe_buf = malloc(PROBE_LEN);
  if (!r->probe_buf) return mior__fail(-ENOMEM, "out of memory");
  IORING_BUFFER_REF b;
  memset(&b, 0, sizeof b);
  b.Kind = IORING_REF_RAW;
  b.Buffer.Address = r->probe_buf;
  const UINT_PTR ud = UD_PROBE;
  HRESULT hr = r->api->BuildIoRingReadFile(r->ring, file_ref(r), b, PROBE_LEN, 0, ud, MIOR_IOSQE_FLAGS_NONE);
  if (FAILED(hr) && refused_class(hr))
    return mior__fail(-EOPNOTSUPP, "ioring: the system refuses IoRing READ on this socket "
                      "(BuildIoRingReadFile: HRESULT 0x%08lx); use the sockets backend", (unsigned long)hr);
  if (FAILED(hr)) return mior__hresult_fail(hr, "ioring: BuildIoRingReadFile (open probe)");
  r->in_ring++; /* so that close waits for it */
  r->unsubmitted++;
  int rc = submit_ring(r, 0, 0);
  if (rc < 0) return rc;
  if (SUCCEEDED(r->api->BuildIoRingCancelRequest(r->ring, file_ref(r), ud, UD_CANCEL))) {
    r->unsubmitted++;
    submit_ring(r, 0, 0);
  }
  CancelIoEx((HANDLE)r->sock->fd, NULL);
  IORING_CQE e;
  uint64_t end = mior__now_ns() + 2000u * 1000000u;
  while (mior__now_ns() < end) {
    hr = r->api->PopIoRingCompletion(r->ring, &e);
    if (hr != S_OK && r->event) {
      /* Manual-reset: reset, then look again before sleeping (wait_ring's order). */
      ResetEvent(r->event);
      hr = r->api->PopIoRingCompletion(r->ring, &e);
      if (hr != S_OK) WaitForSingleObject(r->event, 10);
    }
    if (hr != S_OK) {
      if (!r->event) Sleep(1);
      continue;
    }
    if (e.UserData != ud) continue;
    r->in_ring--;
    if (refused_class(e.ResultCode))
      return mior__fail(-EOPNOTSUPP, "ioring: the system refuses IoRing READ on this socket "
                        "(completion HRESULT 0x%08lx); use the sockets backend",
                        (unsigned long)e.ResultCode);
    return 0;
  }
  return mior__fail(-EOPNOTSUPP, "ioring: a cancelled IoRing READ on this socket never completed; "
                    "use the sockets backend");
}

/* An event for blocking waits and for the event handle, where the IoRing has them
 * (SET_COMPLETION_EVENT); manual-reset (see the top of this file). */
static int set_completion_event(struct mior__io *r) {
  if (!(r->api->caps.FeatureFlags & MIOR_IORING_FEATURE_SET_COMPLETION_EVENT)) return 0;
  r->event = CreateEventW(NULL, TRUE, FALSE, NULL);
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
  /* Demanded, a missing peer is the caller's mistake (-EINVAL); under AUTO the socket is just not
   * one IoRing can serve, and the sockets backend takes it (-EOPNOTSUPP). */
  if (!cfg->peer)
    return mior__fail(cfg->opts->backend == MIOR_BACKEND_AUTO ? -EOPNOTSUPP : -EINVAL,
                      "ioring: IoRing has no address fields, so the socket must be connected: "
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
  r->tx_off = calloc(r->region.buf_count, sizeof *r->tx_off);
  mior__tx_fifo_init(&r->txw, r->region.buf_count);
  mior__cq_init(&r->cq, r->region.buf_count);
  int rc;
  if (!r->state || !r->tx_asked || !r->tx_off || !r->txw.q || !r->cq.q) {
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
  rc = register_socket(r, features);
  if (rc < 0) goto fail;
  r->tx_ring = api->has_write;
  if (!r->tx_ring) *features |= MIOR_FEAT_TX_WINSOCK;
  /* The IoRing says it is a user-mode emulation (IORING_FEATURE_UM_EMULATION): say so too. */
  if (api->caps.FeatureFlags & MIOR_IORING_FEATURE_UM_EMULATION) *features |= MIOR_FEAT_IORING_EMULATION;
  rc = set_completion_event(r);
  if (rc < 0) goto fail;
  /* The probe before the pool's registration: a probe READ that never ends leaves this ring
   * allocated (ioring_close), and the failed open then frees the pool, which the ring must not
   * have registered (issue 13). */
  rc = probe_read(r);
  if (rc < 0) goto fail;
  if (!(o->flags & MIOR_OPT_NO_REGISTERED_BUFFERS)) {
    rc = register_pool(r, features);
    if (rc < 0) goto fail;
  }
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
 * queue for its completion, with a submission queue's worth kept for cancels and registrations
 * (op_cap). */
static int room(struct mior__io *r) {
  if (r->in_ring >= r->op_cap) return 0;
  if (r->unsubmitted >= r->sq_size && submit_ring(r, 0, 0) < 0) return 0;
  return r->unsubmitted < r->sq_size;
}

/* None once the system refused a READ.  Where the ring cannot hold an operation for every slot
 * (the system's CQ maximum is smaller than the pool), receives take at most half of it while sends
 * go through the ring, so that receives waiting for datagrams cannot starve sends. */
static uint32_t ioring_rx_room(struct mior__io *r) {
  if (r->rx_refused) return 0;
  if (r->op_cap >= r->region.buf_count) return UINT32_MAX;
  uint32_t cap = r->tx_ring ? r->op_cap / 2 : r->op_cap;
  if (cap == 0) cap = 1;
  return r->rx_in_ring < cap ? cap - r->rx_in_ring : 0;
}

static uint32_t ioring_rx_post(struct mior__io *r, const uint32_t *slots, uint32_t n) {
  IORING_HANDLE_REF f = file_ref(r);
  uint32_t i;
  uint32_t can = ioring_rx_room(r);
  if (n > can) n = can;
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
    r->rx_in_ring++;
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
  r->tx_off[slot] = off;
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
  if (r->txw.len) send_winsock(r);
  int waits = wait && r->cq.len == 0 && r->in_ring > 0;
  /* Drain first: the event fires only on the empty -> non-empty edge. */
  if (waits && drain_ring(r)) waits = 0;
  DWORD ms = INFINITE;
  if (timeout_us >= 0) {
    int64_t m = (timeout_us + 999) / 1000;
    ms = m >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)m;
  }
  if (waits && !r->event) {
    /* No completion event: one SubmitIoRing submits what is queued and waits. */
    int rc = submit_ring(r, 1, ms);
    if (rc < 0) return rc;
    drain_ring(r);
    return 0;
  }
  if (r->unsubmitted) {
    int rc = submit_ring(r, 0, 0);
    if (rc < 0) return rc;
  }
  if (!waits) return 0;
  wait_ring(r, ms);
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
  /* CancelIoEx on the socket first: it reaches every operation on the handle whatever the ring's
   * own cancel entries manage (and needs no room in either queue).  Then every ring operation is
   * cancelled by its user data as well; each then completes (aborted). */
  if (r->in_ring) CancelIoEx((HANDLE)r->sock->fd, NULL);
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

static int ioring_event_open(struct mior__io *r, mior_handle *out) {
  if (!r->event)
    return mior__fail(-EOPNOTSUPP, "ioring: this IoRing has no completion event "
                      "(IORING_FEATURE_SET_COMPLETION_EVENT missing, or SetIoRingCompletionEvent "
                      "refused it), so the port has no event handle: drive it with mior_port_poll, "
                      "or use the sockets backend");
  *out = (mior_handle)(intptr_t)r->event;
  return 0;
}

/* Before the work: what completes from now on, once the work has emptied the ring, sets it. */
static void ioring_event_clear(struct mior__io *r) {
  ResetEvent(r->event);
}

/* After the work: entries the work call only built (receives posted again after a call that had
 * completions to deliver) are submitted, or nothing would ever complete them.  The system signals
 * only an empty ring's first completion, so empty the ring (after a reset, so that completions the
 * work took leave no signal) and decide from what is here: work the front end left, completions
 * waiting, Winsock sends not yet made, entries a failed submit left queued. */
static void ioring_event_done(struct mior__io *r, int more) {
  if (r->unsubmitted) submit_ring(r, 0, 0);
  ResetEvent(r->event);
  drain_ring(r);
  if (more || r->cq.len || r->txw.len || r->unsubmitted) SetEvent(r->event);
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
    .rx_room = ioring_rx_room,
    .outstanding = ioring_outstanding,
    .counters = ioring_counters,
    .close = ioring_close,
    .event_open = ioring_event_open,
    .event_clear = ioring_event_clear,
    .event_done = ioring_event_done,
};
