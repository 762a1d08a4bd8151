/* mior: packet I/O through the kernel's ring-based asynchronous I/O (Linux io_uring, Windows
 * IoRing) with a portable socket fallback.  Include this header for the whole public API. */
#ifndef MIOR_H
#define MIOR_H

#include "common.h"
#include "pool.h"
#include "pkt.h"
#include "transport.h"
#include "proto/proto.h"

#endif /* MIOR_H */
