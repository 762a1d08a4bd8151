/* The Windows backends.  The IoRing and overlapped-Winsock backends are not written yet (they
 * are the Windows issue's work); until then this build opens no transport and says so, while the
 * pool, wire formats and checksums work as on Linux. */
#include <stddef.h>

#include "common/backend.h"

const mior__backend_ops *const mior__backends[] = {NULL};
