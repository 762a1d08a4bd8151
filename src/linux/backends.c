/* The Linux backends, most preferred first: io_uring, then recvmmsg/sendmmsg. */
#include "common/backend.h"

extern const mior__backend_ops mior__uring_ops;
extern const mior__backend_ops mior__sockets_ops;

const mior__backend_ops *const mior__backends[] = {&mior__uring_ops, &mior__sockets_ops, NULL};
