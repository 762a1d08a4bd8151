/* Private to the lwIP services (mior_lwip_apps.c, mior_lwip_iperf.c); not installed. */
#ifndef MIOR_LWIP_APPS_H
#define MIOR_LWIP_APPS_H

#include <stdint.h>

#include "lwip/tcp.h"

/* Listen on port (any IPv4 address) and accept with accept_fn, arg as the listening pcb's
 * argument; takes the tcpip core lock itself.  0, -ENOMEM, or -EADDRINUSE. */
int mior__lwip_listen(uint16_t port, u8_t backlog, tcp_accept_fn accept_fn, void *arg);

#endif
