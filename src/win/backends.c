/* The Windows backends, most preferred first: IoRing, then overlapped Winsock.  Under MIOR_BACKEND_AUTO
 * the front end takes the first whose supported() says yes, so where IoRing is missing (before
 * Windows 11, or under Wine) ports run on Winsock with MIOR_FEAT_FALLBACK and the reason. */
#include <stddef.h>

#include "common/backend.h"

extern const mior__backend_ops mior__ioring_ops;
extern const mior__backend_ops mior__winsock_ops;

const mior__backend_ops *const mior__backends[] = {&mior__ioring_ops, &mior__winsock_ops, NULL};
