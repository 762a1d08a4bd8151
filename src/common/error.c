/* Error text and the per-thread failure detail. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mior/common.h"
#include "common/internal.h"

static MIOR_THREAD_LOCAL char last_error[256];

const char *mior_version(void) {
  return "0.1.0";
}

const char *mior_last_error(void) {
  return last_error;
}

void mior__clear_error(void) {
  last_error[0] = '\0';
}

int mior__fail(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return err < 0 ? err : -err;
}

/* Our own table, so the text is the same on every C library (glibc, musl, mingw's msvcrt) and
 * covers the codes a packet library returns.  Anything else goes to strerror as a last resort. */
static const struct {
  int code;
  const char *text;
} error_table[] = {
    {EINVAL, "invalid argument"},
    {ENOMEM, "out of memory"},
    {ENOBUFS, "no buffer space available"},
    {EAGAIN, "resource temporarily unavailable (try again)"},
    {EBUSY, "busy: packets still held, or the port is driven by another thread (see mior_last_error)"},
    {EPERM, "operation not permitted (needs CAP_NET_RAW or administrator rights)"},
    {EACCES, "permission denied"},
    {ENODEV, "no such network interface"},
    {ENOENT, "no such file or entry"},
    {EOPNOTSUPP, "operation not supported on this system"},
    {ENOSYS, "function not implemented by this kernel"},
    {EALREADY, "already started"},
    {ECONNREFUSED, "connection refused (ICMP port unreachable)"},
    {EMSGSIZE, "message too long"},
    {ECANCELED, "operation canceled"},
    {EINTR, "interrupted system call"},
    {ETIMEDOUT, "timed out"},
    {EADDRINUSE, "address already in use"},
    {EADDRNOTAVAIL, "address not available"},
    {EAFNOSUPPORT, "address family not supported"},
    {EPROTONOSUPPORT, "protocol not supported"},
    {ENETUNREACH, "network unreachable"},
    {EHOSTUNREACH, "host unreachable"},
    {EBADMSG, "malformed packet"},
    {EPROTO, "protocol error"},
    {ENOSPC, "no space left in the output buffer"},
    {ERANGE, "value out of range"},
    {EEXIST, "already exists"},
    {EBADF, "bad file descriptor"},
    {EIO, "input/output error"},
    {EFAULT, "bad address"},
    {EMFILE, "too many open files"},
};

const char *mior_strerror(int err) {
  static MIOR_THREAD_LOCAL char unknown[48];
  int code = err < 0 ? -err : err;
  if (code == 0) return "success";
  for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
    if (error_table[i].code == code) return error_table[i].text;
  snprintf(unknown, sizeof unknown, "unknown error %d", err);
  return unknown;
}
