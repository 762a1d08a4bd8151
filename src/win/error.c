/* Windows error translation: see error.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <winsock2.h>
#include <windows.h>

#include "mior/common.h"
#include "win/error.h"

/* IoRing's own HRESULTs (FACILITY_IORING = 0x46), from the SDK's winerror.h.  mingw-w64 10 does not
 * define them, so they are spelled out here. */
#define MIOR_IORING_E_REQUIRED_FLAG_NOT_SUPPORTED ((HRESULT)0x80460001L)
#define MIOR_IORING_E_SUBMISSION_QUEUE_FULL ((HRESULT)0x80460002L)
#define MIOR_IORING_E_VERSION_NOT_SUPPORTED ((HRESULT)0x80460003L)
#define MIOR_IORING_E_SUBMISSION_QUEUE_TOO_BIG ((HRESULT)0x80460004L)
#define MIOR_IORING_E_COMPLETION_QUEUE_TOO_BIG ((HRESULT)0x80460005L)
#define MIOR_IORING_E_SUBMIT_IN_PROGRESS ((HRESULT)0x80460006L)
#define MIOR_IORING_E_CORRUPT ((HRESULT)0x80460007L)
#define MIOR_IORING_E_COMPLETION_QUEUE_TOO_FULL ((HRESULT)0x80460008L)

/* NTSTATUS values a socket operation completes with (ntstatus.h, which windows.h leaves out). */
#define MIOR_STATUS_BUFFER_OVERFLOW ((LONG)0x80000005L)
#define MIOR_STATUS_CANCELLED ((LONG)0xC0000120L)
#define MIOR_STATUS_PORT_UNREACHABLE ((LONG)0xC000023FL)
#define MIOR_STATUS_CONNECTION_RESET ((LONG)0xC000020DL)
#define MIOR_STATUS_CONNECTION_REFUSED ((LONG)0xC0000236L)
#define MIOR_STATUS_NO_MEMORY ((LONG)0xC0000017L)
#define MIOR_STATUS_INSUFFICIENT_RESOURCES ((LONG)0xC000009AL)
#define MIOR_STATUS_INVALID_PARAMETER ((LONG)0xC000000DL)
#define MIOR_STATUS_ACCESS_DENIED ((LONG)0xC0000022L)
#define MIOR_STATUS_NETWORK_UNREACHABLE ((LONG)0xC000023CL)
#define MIOR_STATUS_HOST_UNREACHABLE ((LONG)0xC000023DL)
#define MIOR_STATUS_INVALID_HANDLE ((LONG)0xC0000008L)
#define MIOR_STATUS_NOT_SUPPORTED ((LONG)0xC00000BBL)

static const struct {
  DWORD code;
  int err;
} win_table[] = {
    {ERROR_INVALID_PARAMETER, EINVAL},
    {WSAEINVAL, EINVAL},
    {ERROR_ACCESS_DENIED, EACCES},
    {WSAEACCES, EACCES},
    {ERROR_PRIVILEGE_NOT_HELD, EPERM},
    {ERROR_NOT_ENOUGH_MEMORY, ENOMEM},
    {ERROR_OUTOFMEMORY, ENOMEM},
    {ERROR_NO_SYSTEM_RESOURCES, ENOBUFS},
    {WSAENOBUFS, ENOBUFS},
    {WSAEWOULDBLOCK, EAGAIN},
    {ERROR_OPERATION_ABORTED, ECANCELED}, /* also WSA_OPERATION_ABORTED */
    {ERROR_CANCELLED, ECANCELED},
    {WSAEINTR, EINTR},
    {WSAEADDRINUSE, EADDRINUSE},
    {WSAEADDRNOTAVAIL, EADDRNOTAVAIL},
    {WSAEAFNOSUPPORT, EAFNOSUPPORT},
    {WSAEPFNOSUPPORT, EAFNOSUPPORT},
    {WSAEPROTONOSUPPORT, EPROTONOSUPPORT},
    {WSAESOCKTNOSUPPORT, EPROTONOSUPPORT},
    {WSAEPROTOTYPE, EPROTONOSUPPORT},
    /* On a UDP socket WSAECONNRESET means an ICMP port unreachable came back for an earlier
     * datagram: Linux reports that as ECONNREFUSED, so the counters mean the same on both. */
    {WSAECONNRESET, ECONNREFUSED},
    {WSAECONNREFUSED, ECONNREFUSED},
    {ERROR_PORT_UNREACHABLE, ECONNREFUSED},
    {ERROR_CONNECTION_REFUSED, ECONNREFUSED},
    {WSAEMSGSIZE, EMSGSIZE},
    {ERROR_MORE_DATA, EMSGSIZE},
    {WSAENETUNREACH, ENETUNREACH},
    {ERROR_NETWORK_UNREACHABLE, ENETUNREACH},
    {WSAEHOSTUNREACH, EHOSTUNREACH},
    {ERROR_HOST_UNREACHABLE, EHOSTUNREACH},
    {WSAENETDOWN, ENETDOWN},
    {WSAENOTSOCK, EBADF},
    {WSAEBADF, EBADF},
    {ERROR_INVALID_HANDLE, EBADF},
    {WSAEMFILE, EMFILE},
    {ERROR_TOO_MANY_OPEN_FILES, EMFILE},
    {WSAEFAULT, EFAULT},
    {ERROR_NOACCESS, EFAULT},
    {WSAETIMEDOUT, ETIMEDOUT},
    {WAIT_TIMEOUT, ETIMEDOUT},
    {ERROR_TIMEOUT, ETIMEDOUT},
    {ERROR_SEM_TIMEOUT, ETIMEDOUT},
    {WSAEOPNOTSUPP, EOPNOTSUPP},
    {ERROR_NOT_SUPPORTED, EOPNOTSUPP},
    {ERROR_CALL_NOT_IMPLEMENTED, EOPNOTSUPP},
    {ERROR_PROC_NOT_FOUND, EOPNOTSUPP},
    {ERROR_INVALID_FUNCTION, EOPNOTSUPP},
    {WSAENOTCONN, ENOTCONN},
    {WSAEDESTADDRREQ, EDESTADDRREQ},
    {WSAEISCONN, EISCONN},
    {WSAEALREADY, EALREADY},
    {WSAEINPROGRESS, EINPROGRESS},
    {ERROR_IO_PENDING, EINPROGRESS},
    {ERROR_BUSY, EBUSY},
    {ERROR_NOT_FOUND, ENOENT},
    {ERROR_FILE_NOT_FOUND, ENOENT},
    {ERROR_MOD_NOT_FOUND, ENOENT},
};

int mior__win_errno(DWORD code) {
  if (code == 0) return 0;
  for (size_t i = 0; i < sizeof win_table / sizeof win_table[0]; i++)
    if (win_table[i].code == code) return -win_table[i].err;
  return -EIO;
}

int mior__ntstatus_errno(LONG status) {
  if (status >= 0 && status != MIOR_STATUS_BUFFER_OVERFLOW) return 0;
  switch (status) {
  case MIOR_STATUS_BUFFER_OVERFLOW: return -EMSGSIZE;
  case MIOR_STATUS_CANCELLED: return -ECANCELED;
  case MIOR_STATUS_PORT_UNREACHABLE:
  case MIOR_STATUS_CONNECTION_RESET:
  case MIOR_STATUS_CONNECTION_REFUSED: return -ECONNREFUSED;
  case MIOR_STATUS_NO_MEMORY: return -ENOMEM;
  case MIOR_STATUS_INSUFFICIENT_RESOURCES: return -ENOBUFS;
  case MIOR_STATUS_INVALID_PARAMETER: return -EINVAL;
  case MIOR_STATUS_ACCESS_DENIED: return -EACCES;
  case MIOR_STATUS_NETWORK_UNREACHABLE: return -ENETUNREACH;
  case MIOR_STATUS_HOST_UNREACHABLE: return -EHOSTUNREACH;
  case MIOR_STATUS_INVALID_HANDLE: return -EBADF;
  case MIOR_STATUS_NOT_SUPPORTED: return -EOPNOTSUPP;
  default: return -EIO;
  }
}

int mior__hresult_errno(HRESULT hr) {
  if (SUCCEEDED(hr)) return 0;
  switch (hr) {
  case MIOR_IORING_E_REQUIRED_FLAG_NOT_SUPPORTED:
  case MIOR_IORING_E_VERSION_NOT_SUPPORTED: return -EOPNOTSUPP;
  case MIOR_IORING_E_SUBMISSION_QUEUE_FULL:
  case MIOR_IORING_E_COMPLETION_QUEUE_TOO_FULL: return -EAGAIN;
  case MIOR_IORING_E_SUBMISSION_QUEUE_TOO_BIG:
  case MIOR_IORING_E_COMPLETION_QUEUE_TOO_BIG: return -EINVAL;
  case MIOR_IORING_E_SUBMIT_IN_PROGRESS: return -EBUSY;
  case MIOR_IORING_E_CORRUPT: return -EIO;
  case E_NOTIMPL: return -EOPNOTSUPP;
  case E_INVALIDARG: return -EINVAL;
  case E_OUTOFMEMORY: return -ENOMEM;
  case E_ACCESSDENIED: return -EACCES;
  case E_ABORT: return -ECANCELED;
  /* A bare NTSTATUS warning passed through as an HRESULT (the severity bits coincide). */
  case (HRESULT)MIOR_STATUS_BUFFER_OVERFLOW: return -EMSGSIZE;
  default: break;
  }
  /* HRESULT_FROM_NT sets FACILITY_NT_BIT over the NTSTATUS; HRESULT_FROM_WIN32 puts a Win32 code
   * under FACILITY_WIN32. */
  if ((unsigned long)hr & FACILITY_NT_BIT)
    return mior__ntstatus_errno((LONG)((unsigned long)hr & ~(unsigned long)FACILITY_NT_BIT));
  if (HRESULT_FACILITY(hr) == FACILITY_WIN32) return mior__win_errno((DWORD)HRESULT_CODE(hr));
  return -EIO;
}

/* The system's text for a code, on one line, or "" if it has none. */
static void system_text(DWORD code, char *buf, size_t len) {
  buf[0] = '\0';
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code,
                           MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), buf, (DWORD)len, NULL);
  if (n == 0 || n >= len) {
    buf[0] = '\0';
    return;
  }
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' || buf[n - 1] == '.' || buf[n - 1] == ' '))
    buf[--n] = '\0';
}

int mior__win_fail(DWORD code, const char *fmt, ...) {
  char what[160], text[96];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  int err = mior__win_errno(code);
  if (err == 0) err = -EIO;
  system_text(code, text, sizeof text);
  return mior__fail(err, "%s: %s (Windows error %lu%s%s)", what, mior_strerror(err),
                    (unsigned long)code, text[0] ? ": " : "", text);
}

int mior__hresult_fail(HRESULT hr, const char *fmt, ...) {
  char what[160], text[96];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  int err = mior__hresult_errno(hr);
  if (err == 0) err = -EIO;
  system_text((DWORD)hr, text, sizeof text);
  return mior__fail(err, "%s: %s (HRESULT 0x%08lx%s%s)", what, mior_strerror(err),
                    (unsigned long)hr, text[0] ? ": " : "", text);
}
