/* The IoRing API, resolved at run time.
 *
 * IoRing exists from Windows 11 (build 22000) on; the library must still load and run on older
 * Windows (and Wine), so no entry point is linked: each is looked up with GetProcAddress in
 * kernelbase.dll, which exports the api-ms-win-core-ioring-l1-1-* sets.  An absent entry point
 * means "unsupported", never a crash.
 *
 * Types come from <ioringapi.h> (mingw-w64 and the Windows SDK both have it for version 1).
 * What mingw-w64 10 lacks -- version 2/3/4 numbers, the WRITE/FLUSH op codes, FILE_WRITE_FLAGS,
 * FILE_FLUSH_MODE, the DRAIN sqe flag -- is declared here under mior names with the SDK's values,
 * so it can neither clash with nor depend on a newer SDK.  Every struct passed to the API has its
 * size and field offsets checked at compile time in ioring_api.c against the SDK layout (x64).
 */
#ifndef MIOR_WIN_IORING_API_H
#define MIOR_WIN_IORING_API_H

#include <stddef.h>
#include <windows.h>
#include <ioringapi.h>

/* IORING_VERSION values (ntioring_x.h): 1 = build 22000 (NOP, READ, REGISTER_FILES,
 * REGISTER_BUFFERS, CANCEL); 3 = Windows 11 22H2, build 22621 (WRITE, FLUSH, DRAIN flag);
 * 4 = 24H2, build 26100 (READ_SCATTER, WRITE_GATHER).  The numbers are not consecutive. */
#define MIOR_IORING_VERSION_1 ((IORING_VERSION)1)
#define MIOR_IORING_VERSION_2 ((IORING_VERSION)2)
#define MIOR_IORING_VERSION_3 ((IORING_VERSION)300)
#define MIOR_IORING_VERSION_4 ((IORING_VERSION)400)

/* IORING_OP_CODE values. */
#define MIOR_IORING_OP_NOP ((IORING_OP_CODE)0)
#define MIOR_IORING_OP_READ ((IORING_OP_CODE)1)
#define MIOR_IORING_OP_REGISTER_FILES ((IORING_OP_CODE)2)
#define MIOR_IORING_OP_REGISTER_BUFFERS ((IORING_OP_CODE)3)
#define MIOR_IORING_OP_CANCEL ((IORING_OP_CODE)4)
#define MIOR_IORING_OP_WRITE ((IORING_OP_CODE)5)
#define MIOR_IORING_OP_FLUSH ((IORING_OP_CODE)6)
#define MIOR_IORING_OP_READ_SCATTER ((IORING_OP_CODE)7)
#define MIOR_IORING_OP_WRITE_GATHER ((IORING_OP_CODE)8)

/* IORING_SQE_FLAGS: DRAIN_PRECEDING_OPS (v3+) starts the entry only after every earlier one
 * completed. */
#define MIOR_IOSQE_FLAGS_NONE ((IORING_SQE_FLAGS)0)
#define MIOR_IOSQE_FLAGS_DRAIN_PRECEDING_OPS ((IORING_SQE_FLAGS)1)

/* IORING_FEATURE_FLAGS (from QueryIoRingCapabilities). */
#define MIOR_IORING_FEATURE_UM_EMULATION 0x1u
#define MIOR_IORING_FEATURE_SET_COMPLETION_EVENT 0x2u

/* FILE_WRITE_FLAGS and FILE_FLUSH_MODE are 32-bit enums in the SDK; an enum argument is passed
 * exactly like a 32-bit integer on x64 and ARM64, so the pointer types below use UINT32. */
typedef UINT32 mior__file_write_flags;
#define MIOR_FILE_WRITE_FLAGS_NONE 0u
#define MIOR_FILE_WRITE_FLAGS_WRITE_THROUGH 0x1u
typedef UINT32 mior__file_flush_mode;
#define MIOR_FILE_FLUSH_DEFAULT 0u
#define MIOR_FILE_FLUSH_DATA 1u
#define MIOR_FILE_FLUSH_MIN_METADATA 2u
#define MIOR_FILE_FLUSH_NO_SYNC 3u

/* A full submission queue (Build*) and a too-full completion queue (SubmitIoRing, v3+). */
#define MIOR_IORING_E_SUBMISSION_QUEUE_FULL ((HRESULT)0x80460002L)
#define MIOR_IORING_E_COMPLETION_QUEUE_TOO_FULL ((HRESULT)0x80460008L)

typedef struct mior__ioring_api {
  HRESULT(WINAPI *QueryIoRingCapabilities)(IORING_CAPABILITIES *caps);
  BOOL(WINAPI *IsIoRingOpSupported)(HIORING ring, IORING_OP_CODE op);
  HRESULT(WINAPI *CreateIoRing)(IORING_VERSION version, IORING_CREATE_FLAGS flags, UINT32 sq_size,
                                UINT32 cq_size, HIORING *out);
  HRESULT(WINAPI *GetIoRingInfo)(HIORING ring, IORING_INFO *info);
  HRESULT(WINAPI *CloseIoRing)(HIORING ring);
  HRESULT(WINAPI *SubmitIoRing)(HIORING ring, UINT32 wait_ops, UINT32 ms, UINT32 *submitted);
  HRESULT(WINAPI *PopIoRingCompletion)(HIORING ring, IORING_CQE *cqe);
  HRESULT(WINAPI *SetIoRingCompletionEvent)(HIORING ring, HANDLE event);
  HRESULT(WINAPI *BuildIoRingReadFile)(HIORING ring, IORING_HANDLE_REF file, IORING_BUFFER_REF buf,
                                       UINT32 bytes, UINT64 offset, UINT_PTR user_data,
                                       IORING_SQE_FLAGS sqe_flags);
  /* Version 3 and later (api-ms-win-core-ioring-l1-1-1); NULL where absent. */
  HRESULT(WINAPI *BuildIoRingWriteFile)(HIORING ring, IORING_HANDLE_REF file, IORING_BUFFER_REF buf,
                                        UINT32 bytes, UINT64 offset, mior__file_write_flags flags,
                                        UINT_PTR user_data, IORING_SQE_FLAGS sqe_flags);
  HRESULT(WINAPI *BuildIoRingFlushFile)(HIORING ring, IORING_HANDLE_REF file,
                                        mior__file_flush_mode mode, UINT_PTR user_data,
                                        IORING_SQE_FLAGS sqe_flags);
  HRESULT(WINAPI *BuildIoRingCancelRequest)(HIORING ring, IORING_HANDLE_REF file, UINT_PTR op,
                                            UINT_PTR user_data);
  HRESULT(WINAPI *BuildIoRingRegisterFileHandles)(HIORING ring, UINT32 count, HANDLE const handles[],
                                                  UINT_PTR user_data);
  HRESULT(WINAPI *BuildIoRingRegisterBuffers)(HIORING ring, UINT32 count,
                                              IORING_BUFFER_INFO const buffers[], UINT_PTR user_data);

  /* What the probe found. */
  DWORD build;                /* Windows build number (RtlGetVersion) */
  IORING_CAPABILITIES caps;   /* QueryIoRingCapabilities */
  IORING_VERSION version;     /* the version rings are created with: the newest both know */
  int has_write;              /* WRITE usable (entry point present and the op supported) */
} mior__ioring_api;

/* The API if IoRing can run here, else NULL with the reason in why (e.g. "IoRing entry points
 * not found in kernelbase.dll (build 19045; needs 22000+)").  Probed once per process,
 * thread-safe. */
const mior__ioring_api *mior__ioring_api_get(char *why, size_t len);

/* Whether op is supported by ring, robust to IsIoRingOpSupported's ambiguous documentation
 * (BOOL TRUE vs. S_OK = 0): the answer is compared with the answer for READ, which every
 * version supports. */
int mior__ioring_op_supported(const mior__ioring_api *api, HIORING ring, IORING_OP_CODE op);

#endif
