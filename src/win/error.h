/* Windows error codes (Win32, Winsock, HRESULT, NTSTATUS) turned into mior's negative errno values.
 *
 * This is the one place where a Windows code becomes an errno: the backends call these and never
 * compare Windows codes themselves.  The *_fail variants also record the original code (number and
 * system text) in mior_last_error(), so a diagnostic keeps what Windows actually said.
 */
#ifndef MIOR_WIN_ERROR_H
#define MIOR_WIN_ERROR_H

#include <windows.h>

#include "common/internal.h"

/* A Win32 error (GetLastError) or a Winsock error (WSAGetLastError): the same number space. */
int mior__win_errno(DWORD code);
/* An HRESULT, as the IoRing API returns; S_OK and other success codes give 0. */
int mior__hresult_errno(HRESULT hr);
/* An NTSTATUS, as left in OVERLAPPED.Internal by a completed overlapped operation. */
int mior__ntstatus_errno(LONG status);

/* Record "<what>: <errno text> (Windows error <code>: <system text>)" and return the errno. */
int mior__win_fail(DWORD code, const char *fmt, ...) MIOR_PRINTF(2, 3);
int mior__hresult_fail(HRESULT hr, const char *fmt, ...) MIOR_PRINTF(2, 3);

#endif
