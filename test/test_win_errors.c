/* Windows error translation (src/win/error.c): Win32, Winsock, HRESULT and NTSTATUS codes become
 * the same negative errno values as on Linux, and the failure detail keeps the original code. */
#include <winsock2.h>
#include <windows.h>

#include "test.h"
#include "win/error.h"

int main(void) {
  CHECK_EQ(mior__win_errno(0), 0);
  CHECK_EQ(mior__win_errno(WSAEINVAL), -EINVAL);
  CHECK_EQ(mior__win_errno(ERROR_INVALID_PARAMETER), -EINVAL);
  CHECK_EQ(mior__win_errno(WSAEACCES), -EACCES);
  CHECK_EQ(mior__win_errno(WSAEADDRINUSE), -EADDRINUSE);
  CHECK_EQ(mior__win_errno(WSAECONNRESET), -ECONNREFUSED); /* UDP: ICMP port unreachable */
  CHECK_EQ(mior__win_errno(WSAEMSGSIZE), -EMSGSIZE);
  CHECK_EQ(mior__win_errno(WSAENOBUFS), -ENOBUFS);
  CHECK_EQ(mior__win_errno(WSAEWOULDBLOCK), -EAGAIN);
  CHECK_EQ(mior__win_errno(ERROR_OPERATION_ABORTED), -ECANCELED);
  CHECK_EQ(mior__win_errno(WSAEAFNOSUPPORT), -EAFNOSUPPORT);
  CHECK_EQ(mior__win_errno(ERROR_PROC_NOT_FOUND), -EOPNOTSUPP);
  CHECK_EQ(mior__win_errno(123456), -EIO); /* unknown: an I/O error, never 0 */

  CHECK_EQ(mior__hresult_errno(S_OK), 0);
  CHECK_EQ(mior__hresult_errno(S_FALSE), 0);
  CHECK_EQ(mior__hresult_errno(E_INVALIDARG), -EINVAL);
  CHECK_EQ(mior__hresult_errno(E_OUTOFMEMORY), -ENOMEM);
  CHECK_EQ(mior__hresult_errno(E_NOTIMPL), -EOPNOTSUPP);
  CHECK_EQ(mior__hresult_errno(HRESULT_FROM_WIN32(ERROR_OPERATION_ABORTED)), -ECANCELED);
  CHECK_EQ(mior__hresult_errno(HRESULT_FROM_WIN32(WSAECONNRESET)), -ECONNREFUSED);
  CHECK_EQ(mior__hresult_errno(HRESULT_FROM_WIN32(ERROR_MORE_DATA)), -EMSGSIZE);
  CHECK_EQ(mior__hresult_errno(HRESULT_FROM_NT(0xC0000120L)), -ECANCELED); /* STATUS_CANCELLED */
  CHECK_EQ(mior__hresult_errno(HRESULT_FROM_NT(0x80000005L)), -EMSGSIZE);  /* BUFFER_OVERFLOW */
  CHECK_EQ(mior__hresult_errno((HRESULT)0x80460002L), -EAGAIN);     /* IORING_E_SUBMISSION_QUEUE_FULL */
  CHECK_EQ(mior__hresult_errno((HRESULT)0x80460003L), -EOPNOTSUPP); /* IORING_E_VERSION_NOT_SUPPORTED */
  CHECK_EQ(mior__hresult_errno((HRESULT)0x80460005L), -EINVAL);     /* COMPLETION_QUEUE_TOO_BIG */
  CHECK_EQ(mior__hresult_errno((HRESULT)0x8BADF00DL), -EIO);

  CHECK_EQ(mior__ntstatus_errno(0), 0);
  CHECK_EQ(mior__ntstatus_errno((LONG)0xC0000120L), -ECANCELED);
  CHECK_EQ(mior__ntstatus_errno((LONG)0xC000023FL), -ECONNREFUSED); /* STATUS_PORT_UNREACHABLE */

  /* The detail keeps the Windows code next to the errno text. */
  CHECK_EQ(mior__win_fail(WSAECONNRESET, "WSARecvFrom on %s", "udp"), -ECONNREFUSED);
  printf("  %s\n", mior_last_error());
  CHECK(strstr(mior_last_error(), "WSARecvFrom on udp") != NULL);
  CHECK(strstr(mior_last_error(), "Windows error 10054") != NULL);
  CHECK(strstr(mior_last_error(), mior_strerror(-ECONNREFUSED)) != NULL);
  CHECK_EQ(mior__hresult_fail((HRESULT)0x80460002L, "BuildIoRingReadFile"), -EAGAIN);
  printf("  %s\n", mior_last_error());
  CHECK(strstr(mior_last_error(), "HRESULT 0x80460002") != NULL);
  /* A success code handed to a *_fail call is still reported as a failure. */
  CHECK(mior__hresult_fail(S_OK, "odd") < 0);
  TEST_DONE();
}
