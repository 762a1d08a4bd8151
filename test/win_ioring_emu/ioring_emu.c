/* An IoRing emulation following Microsoft's documentation, for tests only (never installed, never
 * loaded by a release build of mior).  It exports the IoRing entry points mior's ioring backend
 * resolves, with the prototypes of mingw-w64's <ioringapi.h> (which checks them), and runs READ
 * and WRITE as overlapped ReadFile/WriteFile on the registered handles through a private
 * completion port and one worker thread.  What it follows from the documentation, rather than
 * from what the backend assumes:
 *   - queue sizes are rounded up to powers of two, the completion queue to at least twice the
 *     submission queue;
 *   - Build* only queues an entry, and a full submission queue is IORING_E_SUBMISSION_QUEUE_FULL;
 *   - registration arrays are read when the entry is submitted, not when it is built;
 *   - a SubmitIoRing that fails leaves every entry queued; the count of submitted entries is
 *     written only when it succeeds (the documentation promises no more);
 *   - from version 3 on, SubmitIoRing refuses with IORING_E_COMPLETION_QUEUE_TOO_FULL when the
 *     completions already waiting plus those of the running and queued operations could exceed
 *     the completion queue; before version 3 a completion that finds the queue full is lost;
 *   - the completion event is signalled only when the queue goes from empty to non-empty;
 *     PopIoRingCompletion returns S_FALSE when it is empty;
 *   - a CANCEL entry cancels with CancelIoEx (user data 0: everything on the handle);
 *   - CloseIoRing neither waits nor cancels: operations still running go on writing into their
 *     buffers, and the emulation counts them (in_flight_at_close, late_completions, late_bytes);
 *   - cancelling is only a request: with stuck=MS a READ ignores every cancel (the ring's and
 *     CancelIoEx) and ends MS milliseconds after it started, writing a datagram's worth of bytes
 *     into its buffer then, as a datagram arriving late would.  Before it writes, it checks that
 *     its buffer and the ring's registered buffers are still allocated memory, and counts what is
 *     not (writes_to_freed, registered_freed) instead of writing into it;
 *   - registered handles are duplicated, as the ring holds its own reference: closing the
 *     program's socket handle does not end the ring's operations on it;
 *   - result codes are HRESULT_FROM_WIN32 of the NTSTATUS's Win32 code.
 * Settings and fault injection: see ioring_emu.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <ioringapi.h>

#include "ioring_emu.h"

/* What mingw-w64's header lacks (ioringapi.h has no BuildIoRingWriteFile/FlushFile, no version 3
 * numbers and no IORING_E_* codes): the SDK's values, declared here. */
#define EMU_VERSION_1 1u
#define EMU_VERSION_2 2u
#define EMU_VERSION_3 300u
#define EMU_VERSION_4 400u
#define EMU_OP_NOP 0
#define EMU_OP_READ 1
#define EMU_OP_REGISTER_FILES 2
#define EMU_OP_REGISTER_BUFFERS 3
#define EMU_OP_CANCEL 4
#define EMU_OP_WRITE 5
#define EMU_OP_FLUSH 6
#define EMU_FEATURE_UM_EMULATION 0x1u
#define EMU_FEATURE_SET_COMPLETION_EVENT 0x2u
#define EMU_E_REQUIRED_FLAG_NOT_SUPPORTED ((HRESULT)0x80460001L)
#define EMU_E_SUBMISSION_QUEUE_FULL ((HRESULT)0x80460002L)
#define EMU_E_VERSION_NOT_SUPPORTED ((HRESULT)0x80460003L)
#define EMU_E_SUBMISSION_QUEUE_TOO_BIG ((HRESULT)0x80460004L)
#define EMU_E_COMPLETION_QUEUE_TOO_BIG ((HRESULT)0x80460005L)
#define EMU_E_COMPLETION_QUEUE_TOO_FULL ((HRESULT)0x80460008L)
#define EMU_MAX_SQ 0x10000u
#define EMU_MAX_CQ 0x20000u
#define EMU_WAIT_ALL 0xFFFFFFFFu

#if defined(_MSC_VER)
/* The Windows SDK (22621 and later) declares both, with its own enum types. */
typedef FILE_WRITE_FLAGS emu_write_flags;
typedef FILE_FLUSH_MODE emu_flush_mode;
#else
/* mingw-w64 10 declares neither: the SDK's prototypes, its 32-bit enums as UINT32. */
typedef UINT32 emu_write_flags;
typedef UINT32 emu_flush_mode;
HRESULT WINAPI BuildIoRingWriteFile(HIORING ring, IORING_HANDLE_REF file, IORING_BUFFER_REF buf, UINT32 bytes,
                                    UINT64 offset, emu_write_flags write_flags, UINT_PTR user_data,
                                    IORING_SQE_FLAGS flags);
HRESULT WINAPI BuildIoRingFlushFile(HIORING ring, IORING_HANDLE_REF file, emu_flush_mode mode, UINT_PTR user_data,
                                    IORING_SQE_FLAGS flags);
#endif
HRESULT WINAPI MiorIoRingEmuControl(const char *settings);
void WINAPI MiorIoRingEmuStats(mior_ioring_emu_stats *out);

/* --- settings and statistics ------------------------------------------------------------------ */

enum { REFUSE_NO = 0, REFUSE_BUILD = 1, REFUSE_COMPLETE = 2 };

static struct {
  SRWLOCK lock;
  UINT32 version;
  int event, um, trunc_short, read_refuse, write_refuse, cancel_deaf;
  LONG fail_submit, fail_skip;
  DWORD stuck_ms;
} cfg = {SRWLOCK_INIT, EMU_VERSION_3, 1, 1, 0, REFUSE_NO, REFUSE_NO, 0, 0, 0, 0};

static mior_ioring_emu_stats stats;

#define STAT_ADD(field, n) InterlockedAdd64(&stats.field, (LONG64)(n))

static int apply_setting(const char *key, size_t klen, const char *val, size_t vlen) {
#define IS(k, s) (klen == sizeof(s) - 1 && memcmp(k, s, klen) == 0)
#define VAL(s) (vlen == sizeof(s) - 1 && memcmp(val, s, vlen) == 0)
  long n = strtol(val, NULL, 10);
  if (IS(key, "version")) {
    if (n == 1) cfg.version = EMU_VERSION_1;
    else if (n == 2) cfg.version = EMU_VERSION_2;
    else if (n == 3) cfg.version = EMU_VERSION_3;
    else if (n == 4) cfg.version = EMU_VERSION_4;
    else return -1;
  } else if (IS(key, "event")) cfg.event = n != 0;
  else if (IS(key, "um")) cfg.um = n != 0;
  else if (IS(key, "trunc")) {
    if (VAL("error")) cfg.trunc_short = 0;
    else if (VAL("short")) cfg.trunc_short = 1;
    else return -1;
  } else if (IS(key, "read") || IS(key, "write")) {
    int *p = IS(key, "read") ? &cfg.read_refuse : &cfg.write_refuse;
    if (VAL("ok")) *p = REFUSE_NO;
    else if (VAL("build")) *p = REFUSE_BUILD;
    else if (VAL("complete")) *p = REFUSE_COMPLETE;
    else return -1;
  } else if (IS(key, "cancel")) {
    if (VAL("ok")) cfg.cancel_deaf = 0;
    else if (VAL("deaf")) cfg.cancel_deaf = 1;
    else return -1;
  } else if (IS(key, "stuck")) {
    if (n < 0) return -1;
    cfg.stuck_ms = (DWORD)n;
  } else if (IS(key, "fail_submit")) {
    InterlockedExchange(&cfg.fail_submit, (LONG)n);
  } else if (IS(key, "fail_skip")) {
    InterlockedExchange(&cfg.fail_skip, (LONG)n);
  } else {
    return -1;
  }
  return 0;
#undef IS
#undef VAL
}

HRESULT WINAPI MiorIoRingEmuControl(const char *settings) {
  if (!settings) return E_POINTER;
  HRESULT hr = S_OK;
  AcquireSRWLockExclusive(&cfg.lock);
  const char *p = settings;
  while (*p) {
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (end > p && (!eq || apply_setting(p, (size_t)(eq - p), eq + 1, (size_t)(end - eq - 1)) < 0)) {
      fprintf(stderr, "ioring emulation: bad setting '%.*s'\n", (int)(end - p), p);
      hr = E_INVALIDARG;
    }
    p = *end ? end + 1 : end;
  }
  ReleaseSRWLockExclusive(&cfg.lock);
  return hr;
}

void WINAPI MiorIoRingEmuStats(mior_ioring_emu_stats *out) {
  LONG64 *dst = (LONG64 *)out;
  LONG64 *src = (LONG64 *)&stats;
  for (size_t i = 0; i < sizeof stats / sizeof(LONG64); i++) dst[i] = InterlockedCompareExchange64(&src[i], 0, 0);
}

/* --- the ring --------------------------------------------------------------------------------- */

typedef struct emu_sqe {
  int op;
  IORING_HANDLE_REF file;
  IORING_BUFFER_REF buf;
  UINT32 len;
  UINT_PTR user_data;
  UINT_PTR target;      /* CANCEL: the user data to cancel */
  UINT32 count;         /* REGISTER_*: entries in the caller's array */
  const void *array;    /* REGISTER_*: the caller's array, read at submit */
  void *snapshot;       /* ... and a copy taken at build, to see whether it changed meanwhile */
} emu_sqe;

struct emu_ring;

typedef struct emu_op {
  OVERLAPPED ov;
  struct emu_ring *ring;
  struct emu_op *prev, *next;
  HANDLE handle;
  UINT_PTR user_data;
  int op;
  int stuck;      /* stuck=MS: ignores cancels, ends by itself (stuck_main) */
  void *buf;      /* ... into this buffer, */
  UINT32 len;     /* ... this long, */
  DWORD stuck_ms; /* ... this long after it started */
} emu_op;

#define RING_MAGIC 0x474e4952756d65ull /* "emuRING" */

typedef struct emu_ring {
  UINT64 magic;
  CRITICAL_SECTION lock;
  UINT32 version, sq_size, cq_size;
  emu_sqe *sq;
  UINT32 sq_len;
  IORING_CQE *cq;
  UINT32 cq_head, cq_len;
  HANDLE event;     /* SetIoRingCompletionEvent's, or NULL */
  HANDLE changed;   /* signalled on every completion, for SubmitIoRing's wait */
  HANDLE *files;    /* registered handles (our duplicates) */
  UINT32 nfiles;
  HANDLE *old_files; /* replaced registrations, closed when the ring goes */
  UINT32 nold;
  IORING_BUFFER_INFO *bufs;
  UINT32 nbufs;
  HANDLE associated[16]; /* handles bound to the completion port */
  UINT32 nassociated;
  emu_op *running;  /* READ/WRITE in progress */
  UINT32 nrunning;
  int closed;
} emu_ring;

static HANDLE port;
static INIT_ONCE port_once = INIT_ONCE_STATIC_INIT;
typedef ULONG(WINAPI *rtl_status_fn)(LONG);
static rtl_status_fn status_to_win32;

static emu_ring *ring_of(HIORING h) {
  emu_ring *r = (emu_ring *)h;
  if (!r || r->magic != RING_MAGIC || r->closed) return NULL;
  return r;
}

static void ring_free(emu_ring *r) {
  for (UINT32 i = 0; i < r->nfiles; i++) CloseHandle(r->files[i]);
  for (UINT32 i = 0; i < r->nold; i++) CloseHandle(r->old_files[i]);
  for (UINT32 i = 0; i < r->sq_len; i++) free(r->sq[i].snapshot);
  free(r->files);
  free(r->old_files);
  free(r->bufs);
  free(r->sq);
  free(r->cq);
  CloseHandle(r->changed);
  DeleteCriticalSection(&r->lock);
  r->magic = 0;
  free(r);
}

/* Under the ring's lock. */
static void push_cqe(emu_ring *r, UINT_PTR user_data, HRESULT hr, UINT_PTR info) {
  if (r->cq_len == r->cq_size) {
    STAT_ADD(cq_overflow, 1);
    return;
  }
  IORING_CQE *e = &r->cq[(r->cq_head + r->cq_len) % r->cq_size];
  e->UserData = user_data;
  e->ResultCode = hr;
  e->Information = info;
  r->cq_len++;
  if (r->cq_len == 1 && r->event) SetEvent(r->event);
  SetEvent(r->changed);
}

static HRESULT hr_from_status(LONG status) {
  if (status == 0) return S_OK;
  ULONG code = status_to_win32 ? status_to_win32(status) : ERROR_GEN_FAILURE;
  return HRESULT_FROM_WIN32(code);
}

static DWORD WINAPI worker(LPVOID arg) {
  (void)arg;
  for (;;) {
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    OVERLAPPED *ov = NULL;
    GetQueuedCompletionStatus(port, &bytes, &key, &ov, INFINITE);
    if (!ov) continue;
    emu_op *op = CONTAINING_RECORD(ov, emu_op, ov);
    emu_ring *r = op->ring;
    LONG status = (LONG)op->ov.Internal;
    UINT_PTR done = (UINT_PTR)op->ov.InternalHigh;
    EnterCriticalSection(&r->lock);
    if (op->prev) op->prev->next = op->next;
    else r->running = op->next;
    if (op->next) op->next->prev = op->prev;
    r->nrunning--;
    if (r->closed) {
      STAT_ADD(late_completions, 1);
      STAT_ADD(late_bytes, done);
    } else {
      HRESULT hr = hr_from_status(status);
      /* STATUS_BUFFER_OVERFLOW: the datagram was longer than the read; what fit was copied. */
      AcquireSRWLockShared(&cfg.lock);
      int trunc_short = cfg.trunc_short;
      ReleaseSRWLockShared(&cfg.lock);
      if (status == (LONG)0x80000005L && trunc_short) hr = S_OK;
      push_cqe(r, op->user_data, hr, done);
    }
    int last = r->closed && r->nrunning == 0;
    LeaveCriticalSection(&r->lock);
    free(op);
    if (last) ring_free(r);
  }
  return 0;
}

static BOOL CALLBACK port_init(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  (void)once;
  (void)param;
  (void)ctx;
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  if (ntdll)
    status_to_win32 = (rtl_status_fn)(void (*)(void))GetProcAddress(ntdll, "RtlNtStatusToDosError");
  port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  if (!port) return FALSE;
  HANDLE t = CreateThread(NULL, 0, worker, NULL, 0, NULL);
  if (!t) return FALSE;
  CloseHandle(t);
  const char *env = getenv("MIOR_IORING_EMU");
  if (env) MiorIoRingEmuControl(env);
  return TRUE;
}

static int started(void) { return InitOnceExecuteOnce(&port_once, port_init, NULL, NULL) != 0; }

static UINT32 version_now(void) {
  AcquireSRWLockShared(&cfg.lock);
  UINT32 v = cfg.version;
  ReleaseSRWLockShared(&cfg.lock);
  return v;
}

/* --- entry points ----------------------------------------------------------------------------- */

HRESULT WINAPI QueryIoRingCapabilities(IORING_CAPABILITIES *caps) {
  if (!caps) return E_POINTER;
  if (!started()) return E_FAIL;
  AcquireSRWLockShared(&cfg.lock);
  caps->MaxVersion = (IORING_VERSION)cfg.version;
  caps->MaxSubmissionQueueSize = EMU_MAX_SQ;
  caps->MaxCompletionQueueSize = EMU_MAX_CQ;
  caps->FeatureFlags = (IORING_FEATURE_FLAGS)((cfg.um ? EMU_FEATURE_UM_EMULATION : 0) |
                                              (cfg.event ? EMU_FEATURE_SET_COMPLETION_EVENT : 0));
  ReleaseSRWLockShared(&cfg.lock);
  return S_OK;
}

/* Documented as returning BOOL: TRUE where the ring's version has the operation. */
BOOL WINAPI IsIoRingOpSupported(HIORING ring, IORING_OP_CODE op) {
  emu_ring *r = ring_of(ring);
  if (!r) return FALSE;
  switch ((int)op) {
  case EMU_OP_NOP:
  case EMU_OP_READ:
  case EMU_OP_REGISTER_FILES:
  case EMU_OP_REGISTER_BUFFERS:
  case EMU_OP_CANCEL: return TRUE;
  case EMU_OP_WRITE:
  case EMU_OP_FLUSH: return r->version >= EMU_VERSION_3;
  default: return FALSE;
  }
}

static UINT32 pow2_up(UINT32 v) {
  UINT32 p = 1;
  while (p < v) p <<= 1;
  return p;
}

HRESULT WINAPI CreateIoRing(IORING_VERSION version, IORING_CREATE_FLAGS flags, UINT32 sq, UINT32 cq,
                            HIORING *out) {
  if (!out) return E_POINTER;
  if (!started()) return E_FAIL;
  UINT32 v = (UINT32)version;
  if (v != EMU_VERSION_1 && v != EMU_VERSION_2 && v != EMU_VERSION_3 && v != EMU_VERSION_4)
    return EMU_E_VERSION_NOT_SUPPORTED;
  if (v > version_now()) return EMU_E_VERSION_NOT_SUPPORTED;
  if (flags.Required != 0) return EMU_E_REQUIRED_FLAG_NOT_SUPPORTED;
  if (sq == 0 || cq == 0) return E_INVALIDARG;
  if (sq > EMU_MAX_SQ) return EMU_E_SUBMISSION_QUEUE_TOO_BIG;
  if (cq > EMU_MAX_CQ) return EMU_E_COMPLETION_QUEUE_TOO_BIG;
  sq = pow2_up(sq);
  cq = pow2_up(cq);
  if (cq < 2 * sq) cq = 2 * sq;
  emu_ring *r = calloc(1, sizeof *r);
  if (!r) return E_OUTOFMEMORY;
  r->sq = calloc(sq, sizeof *r->sq);
  r->cq = calloc(cq, sizeof *r->cq);
  r->changed = CreateEventW(NULL, FALSE, FALSE, NULL);
  if (!r->sq || !r->cq || !r->changed) {
    free(r->sq);
    free(r->cq);
    if (r->changed) CloseHandle(r->changed);
    free(r);
    return E_OUTOFMEMORY;
  }
  InitializeCriticalSection(&r->lock);
  r->magic = RING_MAGIC;
  r->version = v;
  r->sq_size = sq;
  r->cq_size = cq;
  STAT_ADD(rings_created, 1);
  *out = (HIORING)r;
  return S_OK;
}

HRESULT WINAPI GetIoRingInfo(HIORING ring, IORING_INFO *info) {
  emu_ring *r = ring_of(ring);
  if (!r) return E_INVALIDARG;
  if (!info) return E_POINTER;
  memset(info, 0, sizeof *info);
  info->IoRingVersion = (IORING_VERSION)r->version;
  info->SubmissionQueueSize = r->sq_size;
  info->CompletionQueueSize = r->cq_size;
  return S_OK;
}

/* Neither waits nor cancels: what is still running keeps its buffers and completes later. */
HRESULT WINAPI CloseIoRing(HIORING ring) {
  emu_ring *r = ring_of(ring);
  if (!r) return E_INVALIDARG;
  EnterCriticalSection(&r->lock);
  r->closed = 1;
  STAT_ADD(in_flight_at_close, r->nrunning);
  STAT_ADD(rings_closed, 1);
  int now = r->nrunning == 0;
  LeaveCriticalSection(&r->lock);
  if (now) ring_free(r);
  return S_OK;
}

HRESULT WINAPI SetIoRingCompletionEvent(HIORING ring, HANDLE event) {
  emu_ring *r = ring_of(ring);
  if (!r) return E_INVALIDARG;
  AcquireSRWLockShared(&cfg.lock);
  int has = cfg.event;
  ReleaseSRWLockShared(&cfg.lock);
  if (!has) return E_NOTIMPL;
  EnterCriticalSection(&r->lock);
  r->event = event;
  LeaveCriticalSection(&r->lock);
  return S_OK;
}

HRESULT WINAPI PopIoRingCompletion(HIORING ring, IORING_CQE *cqe) {
  emu_ring *r = ring_of(ring);
  if (!r) return E_INVALIDARG;
  if (!cqe) return E_POINTER;
  EnterCriticalSection(&r->lock);
  HRESULT hr = S_FALSE;
  if (r->cq_len) {
    *cqe = r->cq[r->cq_head];
    r->cq_head = (r->cq_head + 1) % r->cq_size;
    r->cq_len--;
    hr = S_OK;
  }
  LeaveCriticalSection(&r->lock);
  return hr;
}

/* Queue one entry (under no lock: the ring is driven by one thread at a time, as documented). */
static HRESULT queue_entry(emu_ring *r, const emu_sqe *e) {
  EnterCriticalSection(&r->lock);
  HRESULT hr = S_OK;
  if (r->sq_len == r->sq_size) hr = EMU_E_SUBMISSION_QUEUE_FULL;
  else r->sq[r->sq_len++] = *e;
  LeaveCriticalSection(&r->lock);
  return hr;
}

static int ref_ok(const emu_ring *r, IORING_HANDLE_REF f) {
  (void)r;
  return f.Kind == IORING_REF_RAW || f.Kind == IORING_REF_REGISTERED;
}

HRESULT WINAPI BuildIoRingReadFile(HIORING ring, IORING_HANDLE_REF file, IORING_BUFFER_REF buf, UINT32 bytes,
                                   UINT64 offset, UINT_PTR user_data, IORING_SQE_FLAGS flags) {
  (void)offset;
  emu_ring *r = ring_of(ring);
  if (!r || !ref_ok(r, file) || (UINT32)flags != 0) return E_INVALIDARG;
  AcquireSRWLockShared(&cfg.lock);
  int refuse = cfg.read_refuse;
  ReleaseSRWLockShared(&cfg.lock);
  /* Reported for sockets on Windows (a socket bound to a completion port): E_INVALIDARG. */
  if (refuse == REFUSE_BUILD) return E_INVALIDARG;
  emu_sqe e = {.op = EMU_OP_READ, .file = file, .buf = buf, .len = bytes, .user_data = user_data};
  return queue_entry(r, &e);
}

HRESULT WINAPI BuildIoRingWriteFile(HIORING ring, IORING_HANDLE_REF file, IORING_BUFFER_REF buf, UINT32 bytes,
                                    UINT64 offset, emu_write_flags write_flags, UINT_PTR user_data,
                                    IORING_SQE_FLAGS flags) {
  (void)offset;
  emu_ring *r = ring_of(ring);
  if (!r || !ref_ok(r, file) || (UINT32)write_flags > 1 || (UINT32)flags > 1) return E_INVALIDARG;
  if (r->version < EMU_VERSION_3) return EMU_E_VERSION_NOT_SUPPORTED;
  emu_sqe e = {.op = EMU_OP_WRITE, .file = file, .buf = buf, .len = bytes, .user_data = user_data};
  return queue_entry(r, &e);
}

HRESULT WINAPI BuildIoRingFlushFile(HIORING ring, IORING_HANDLE_REF file, emu_flush_mode mode, UINT_PTR user_data,
                                    IORING_SQE_FLAGS flags) {
  (void)mode;
  emu_ring *r = ring_of(ring);
  if (!r || !ref_ok(r, file) || (UINT32)flags > 1) return E_INVALIDARG;
  if (r->version < EMU_VERSION_3) return EMU_E_VERSION_NOT_SUPPORTED;
  emu_sqe e = {.op = EMU_OP_FLUSH, .file = file, .user_data = user_data};
  return queue_entry(r, &e);
}

HRESULT WINAPI BuildIoRingCancelRequest(HIORING ring, IORING_HANDLE_REF file, UINT_PTR op_to_cancel,
                                        UINT_PTR user_data) {
  emu_ring *r = ring_of(ring);
  if (!r || !ref_ok(r, file)) return E_INVALIDARG;
  emu_sqe e = {.op = EMU_OP_CANCEL, .file = file, .target = op_to_cancel, .user_data = user_data};
  return queue_entry(r, &e);
}

static HRESULT build_register(HIORING ring, int op, UINT32 count, const void *array, size_t each,
                              UINT_PTR user_data) {
  emu_ring *r = ring_of(ring);
  if (!r || (count && !array)) return E_INVALIDARG;
  emu_sqe e = {.op = op, .count = count, .array = array, .user_data = user_data};
  if (count) {
    e.snapshot = malloc(count * each);
    if (!e.snapshot) return E_OUTOFMEMORY;
    memcpy(e.snapshot, array, count * each);
  }
  HRESULT hr = queue_entry(r, &e);
  if (FAILED(hr)) free(e.snapshot);
  return hr;
}

HRESULT WINAPI BuildIoRingRegisterFileHandles(HIORING ring, UINT32 count, HANDLE const handles[],
                                              UINT_PTR user_data) {
  return build_register(ring, EMU_OP_REGISTER_FILES, count, handles, sizeof(HANDLE), user_data);
}

HRESULT WINAPI BuildIoRingRegisterBuffers(HIORING ring, UINT32 count, IORING_BUFFER_INFO const buffers[],
                                          UINT_PTR user_data) {
  return build_register(ring, EMU_OP_REGISTER_BUFFERS, count, buffers, sizeof(IORING_BUFFER_INFO), user_data);
}

/* --- submit ----------------------------------------------------------------------------------- */

/* Under the ring's lock.  The handle a reference names, or NULL. */
static HANDLE handle_of(emu_ring *r, IORING_HANDLE_REF f) {
  if (f.Kind == IORING_REF_RAW) return f.Handle.Handle;
  return f.Handle.Index < r->nfiles ? r->files[f.Handle.Index] : NULL;
}

static void *buffer_of(emu_ring *r, IORING_BUFFER_REF b, UINT32 len) {
  if (b.Kind == IORING_REF_RAW) return b.Buffer.Address;
  UINT32 i = b.Buffer.IndexAndOffset.BufferIndex, off = b.Buffer.IndexAndOffset.Offset;
  if (i >= r->nbufs || off > r->bufs[i].Length || len > r->bufs[i].Length - off) return NULL;
  return (char *)r->bufs[i].Address + off;
}

static int associate(emu_ring *r, HANDLE h) {
  for (UINT32 i = 0; i < r->nassociated; i++)
    if (r->associated[i] == h) return 1;
  if (!CreateIoCompletionPort(h, port, 0, 0)) return 0;
  if (r->nassociated < sizeof r->associated / sizeof r->associated[0]) r->associated[r->nassociated++] = h;
  return 1;
}

/* 1 if [p, p + len) is committed memory of this process (not freed, not only reserved). */
static int allocated(const void *p, size_t len) {
  MEMORY_BASIC_INFORMATION mbi;
  if (VirtualQuery(p, &mbi, sizeof mbi) != sizeof mbi || mbi.State != MEM_COMMIT) return 0;
  return (const char *)p + len <= (const char *)mbi.BaseAddress + mbi.RegionSize;
}

/* A stuck READ ends by itself: the bytes of a late datagram go into its buffer, unless that is no
 * longer allocated memory, and it completes through the port like any other operation. */
static DWORD WINAPI stuck_main(LPVOID arg) {
  emu_op *op = arg;
  emu_ring *r = op->ring;
  Sleep(op->stuck_ms);
  UINT32 n = op->len < 64 ? op->len : 64;
  EnterCriticalSection(&r->lock);
  for (UINT32 i = 0; i < r->nbufs; i++)
    if (!allocated(r->bufs[i].Address, r->bufs[i].Length)) STAT_ADD(registered_freed, 1);
  LeaveCriticalSection(&r->lock);
  if (allocated(op->buf, n)) {
    memset(op->buf, 0x5a, n);
  } else {
    STAT_ADD(writes_to_freed, 1);
    n = 0;
  }
  STAT_ADD(stuck_done, 1);
  op->ov.Internal = 0;
  op->ov.InternalHigh = n;
  PostQueuedCompletionStatus(port, n, 0, &op->ov);
  return 0;
}

static int start_stuck(emu_op *op, void *p, UINT32 len, DWORD ms) {
  op->stuck = 1;
  op->buf = p;
  op->len = len;
  op->stuck_ms = ms;
  HANDLE t = CreateThread(NULL, 0, stuck_main, op, 0, NULL);
  if (!t) return 0;
  CloseHandle(t);
  STAT_ADD(stuck_started, 1);
  return 1;
}

static void run_io(emu_ring *r, const emu_sqe *e) {
  AcquireSRWLockShared(&cfg.lock);
  int refuse = e->op == EMU_OP_READ ? cfg.read_refuse : cfg.write_refuse;
  DWORD stuck_ms = e->op == EMU_OP_READ ? cfg.stuck_ms : 0;
  ReleaseSRWLockShared(&cfg.lock);
  if (refuse == REFUSE_COMPLETE) {
    push_cqe(r, e->user_data, HRESULT_FROM_WIN32(ERROR_NOT_SUPPORTED), 0);
    return;
  }
  HANDLE h = handle_of(r, e->file);
  void *p = buffer_of(r, e->buf, e->len);
  if (!h || !p) {
    push_cqe(r, e->user_data, E_INVALIDARG, 0);
    return;
  }
  if (!associate(r, h)) {
    push_cqe(r, e->user_data, HRESULT_FROM_WIN32(GetLastError()), 0);
    return;
  }
  emu_op *op = calloc(1, sizeof *op);
  if (!op) {
    push_cqe(r, e->user_data, E_OUTOFMEMORY, 0);
    return;
  }
  op->ring = r;
  op->handle = h;
  op->user_data = e->user_data;
  op->op = e->op;
  op->next = r->running;
  if (op->next) op->next->prev = op;
  r->running = op;
  r->nrunning++;
  if (stuck_ms && start_stuck(op, p, e->len, stuck_ms)) {
    STAT_ADD(ops_started, 1);
    return;
  }
  BOOL ok = e->op == EMU_OP_READ ? ReadFile(h, p, e->len, NULL, &op->ov) : WriteFile(h, p, e->len, NULL, &op->ov);
  DWORD err = ok ? 0 : GetLastError();
  if (ok || err == ERROR_IO_PENDING || err == ERROR_MORE_DATA) {
    /* Completes through the port (no FILE_SKIP_COMPLETION_PORT_ON_SUCCESS). */
    STAT_ADD(ops_started, 1);
    return;
  }
  /* Refused at once: no packet will come. */
  r->running = op->next;
  if (op->next) op->next->prev = NULL;
  r->nrunning--;
  free(op);
  push_cqe(r, e->user_data, HRESULT_FROM_WIN32(err), 0);
}

static void run_cancel(emu_ring *r, const emu_sqe *e) {
  HANDLE h = handle_of(r, e->file);
  AcquireSRWLockShared(&cfg.lock);
  int deaf = cfg.cancel_deaf;
  ReleaseSRWLockShared(&cfg.lock);
  UINT32 n = 0;
  for (emu_op *op = r->running; op; op = op->next) {
    if (op->handle != h || (e->target != 0 && op->user_data != e->target) || op->stuck) continue;
    n++;
    if (!deaf && CancelIoEx(op->handle, &op->ov)) STAT_ADD(cancels_done, 1);
  }
  push_cqe(r, e->user_data, n ? S_OK : HRESULT_FROM_WIN32(ERROR_NOT_FOUND), 0);
}

static void run_register(emu_ring *r, emu_sqe *e) {
  size_t each = e->op == EMU_OP_REGISTER_FILES ? sizeof(HANDLE) : sizeof(IORING_BUFFER_INFO);
  /* Read now, as the system does; a change since the build means the caller let it go early. */
  if (e->count && memcmp(e->snapshot, e->array, e->count * each) != 0) STAT_ADD(stale_registrations, 1);
  HRESULT hr = S_OK;
  if (e->op == EMU_OP_REGISTER_FILES) {
    const HANDLE *src = e->array;
    HANDLE *files = calloc(e->count ? e->count : 1, sizeof *files);
    HANDLE *old = realloc(r->old_files, (r->nold + r->nfiles) * sizeof *old + sizeof *old);
    if (!files || !old) {
      free(files);
      if (old) r->old_files = old;
      push_cqe(r, e->user_data, E_OUTOFMEMORY, 0);
      return;
    }
    r->old_files = old;
    UINT32 i;
    for (i = 0; i < e->count; i++) {
      if (!DuplicateHandle(GetCurrentProcess(), src[i], GetCurrentProcess(), &files[i], 0, FALSE,
                           DUPLICATE_SAME_ACCESS)) {
        hr = HRESULT_FROM_WIN32(GetLastError());
        break;
      }
    }
    if (FAILED(hr)) {
      while (i-- > 0) CloseHandle(files[i]);
      free(files);
    } else {
      /* The old table may still be in use by running operations: closed with the ring. */
      for (UINT32 j = 0; j < r->nfiles; j++) r->old_files[r->nold++] = r->files[j];
      free(r->files);
      r->files = files;
      r->nfiles = e->count;
    }
  } else {
    IORING_BUFFER_INFO *bufs = malloc((e->count ? e->count : 1) * sizeof *bufs);
    if (!bufs) hr = E_OUTOFMEMORY;
    else {
      if (e->count) memcpy(bufs, e->array, e->count * each);
      free(r->bufs);
      r->bufs = bufs;
      r->nbufs = e->count;
    }
  }
  push_cqe(r, e->user_data, hr, 0);
}

/* Under the ring's lock: completions the submitted and running operations could still add. */
static int cq_would_overflow(emu_ring *r) {
  return (UINT64)r->cq_len + r->nrunning + r->sq_len > r->cq_size;
}

HRESULT WINAPI SubmitIoRing(HIORING ring, UINT32 wait_ops, UINT32 ms, UINT32 *submitted) {
  emu_ring *r = ring_of(ring);
  if (!r) return E_INVALIDARG;
  if (InterlockedCompareExchange(&cfg.fail_submit, 0, 0) > 0) {
    if (InterlockedCompareExchange(&cfg.fail_skip, 0, 0) > 0) InterlockedDecrement(&cfg.fail_skip);
    else if (InterlockedDecrement(&cfg.fail_submit) >= 0) return E_OUTOFMEMORY; /* every entry stays queued */
  }
  EnterCriticalSection(&r->lock);
  if (r->version >= EMU_VERSION_3 && r->sq_len && cq_would_overflow(r)) {
    LeaveCriticalSection(&r->lock);
    STAT_ADD(cq_too_full, 1);
    return EMU_E_COMPLETION_QUEUE_TOO_FULL;
  }
  UINT32 n = r->sq_len;
  for (UINT32 i = 0; i < n; i++) {
    emu_sqe *e = &r->sq[i];
    switch (e->op) {
    case EMU_OP_READ:
    case EMU_OP_WRITE: run_io(r, e); break;
    case EMU_OP_CANCEL: run_cancel(r, e); break;
    case EMU_OP_REGISTER_FILES:
    case EMU_OP_REGISTER_BUFFERS: run_register(r, e); break;
    case EMU_OP_FLUSH: {
      HANDLE h = handle_of(r, e->file);
      push_cqe(r, e->user_data, h && FlushFileBuffers(h) ? S_OK : HRESULT_FROM_WIN32(GetLastError()), 0);
      break;
    }
    default: push_cqe(r, e->user_data, S_OK, 0); break;
    }
    free(e->snapshot);
    e->snapshot = NULL;
  }
  r->sq_len = 0;
  LeaveCriticalSection(&r->lock);
  if (wait_ops) {
    ULONGLONG end = GetTickCount64() + ms;
    for (;;) {
      EnterCriticalSection(&r->lock);
      int done = wait_ops == EMU_WAIT_ALL ? r->nrunning == 0 : r->cq_len >= wait_ops;
      LeaveCriticalSection(&r->lock);
      if (done) break;
      ULONGLONG now = GetTickCount64();
      if (ms != INFINITE && now >= end) return HRESULT_FROM_WIN32(WAIT_TIMEOUT); /* count not written */
      WaitForSingleObject(r->changed, ms == INFINITE ? INFINITE : (DWORD)(end - now));
    }
  }
  if (submitted) *submitted = n;
  return S_OK;
}
