/* Wire formats: umbrella header for include/mior/proto/.  Packed header structs in network byte
 * order, bounds-checked parsers that say why they reject a packet, builders, and the Internet
 * checksum.  See types.h for the conventions shared by all of them. */
#ifndef MIOR_PROTO_H
#define MIOR_PROTO_H

#include "types.h"
#include "checksum.h"
#include "eth.h"
#include "arp.h"
#include "ip.h"
#include "icmp.h"
#include "udp.h"
#include "tcp.h"
#include "frame.h"

#endif /* MIOR_PROTO_H */
