/* The control interface of the IoRing emulation (test/win_ioring_emu): a test-only DLL that
 * implements the IoRing entry points mior resolves, following Microsoft's documentation, over
 * overlapped ReadFile/WriteFile.  It is not Windows' IoRing and proves nothing about it: see
 * docs/WINDOWS.md for what it covers and what only a Windows machine can settle.
 *
 * Settings are "key=value" pairs separated by commas, read from the environment variable
 * MIOR_IORING_EMU when the DLL loads and changed later with MiorIoRingEmuControl:
 *   version=1|2|3|4      highest IORING_VERSION reported (1, 2, 300, 400); default 3
 *   event=0|1            SET_COMPLETION_EVENT in the feature flags; default 1
 *   um=0|1               UM_EMULATION in the feature flags; default 1
 *   trunc=error|short    a datagram longer than the read: HRESULT_FROM_WIN32(ERROR_MORE_DATA)
 *                        with the bytes that fit, or S_OK with the bytes that fit; default error
 *   read=ok|build|complete   READ on a handle refused by BuildIoRingReadFile (E_INVALIDARG) or
 *                        at completion (HRESULT_FROM_WIN32(ERROR_NOT_SUPPORTED)); default ok
 *   write=ok|complete    WRITE refused at completion (ERROR_NOT_SUPPORTED); default ok
 *   cancel=ok|deaf       deaf: CANCEL entries complete but cancel nothing (CancelIoEx on the
 *                        handle still does); default ok
 *   stuck=MS             READs built from now on ignore every cancel and end MS ms after they
 *                        start, writing 64 bytes into their buffer if it is still allocated;
 *                        0 (default): off
 *   fail_submit=N        the next N SubmitIoRing calls fail with E_OUTOFMEMORY, entries queued
 *   fail_skip=K          ... after K more have gone through (set it before fail_submit)
 */
#ifndef MIOR_IORING_EMU_H
#define MIOR_IORING_EMU_H

#include <windows.h>

typedef struct mior_ioring_emu_stats {
  LONG64 rings_created, rings_closed;
  LONG64 ops_started;        /* READ/WRITE started as overlapped I/O */
  LONG64 in_flight_at_close; /* READ/WRITE still running when CloseIoRing was called */
  LONG64 late_completions;   /* ... which then completed after it */
  LONG64 late_bytes;         /* bytes they moved into (or out of) memory after CloseIoRing */
  LONG64 stale_registrations; /* registration arrays that changed between build and submit */
  LONG64 cq_overflow;        /* completions lost to a full completion queue (versions 1 and 2) */
  LONG64 cq_too_full;        /* SubmitIoRing refused with IORING_E_COMPLETION_QUEUE_TOO_FULL */
  LONG64 cancels_done;       /* operations a CANCEL entry cancelled */
  LONG64 stuck_started;      /* READs started stuck (stuck=MS) */
  LONG64 stuck_done;         /* ... that have ended */
  LONG64 writes_to_freed;    /* ... whose buffer was no longer allocated memory when they wrote */
  LONG64 registered_freed;   /* registered buffers found freed when a stuck READ of their ring
                                ended (the ring still open: the memory must outlive it) */
} mior_ioring_emu_stats;

typedef HRESULT(WINAPI *mior_ioring_emu_control_fn)(const char *settings);
typedef void(WINAPI *mior_ioring_emu_stats_fn)(mior_ioring_emu_stats *out);

#define MIOR_IORING_EMU_CONTROL "MiorIoRingEmuControl"
#define MIOR_IORING_EMU_STATS "MiorIoRingEmuStats"

#endif
