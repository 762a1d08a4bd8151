/* Test and benchmark support (Linux, root): a pair of network namespaces joined by a veth pair.
 *
 *   ns "a" (if_a, ip_a/24, ip6_a/64) <--- veth ---> ns "b" (if_b, ip_b/24, ip6_b/64)
 *
 * Addresses are private (10.77.N.1 / 10.77.N.2, fd77:N::1 / ::2) and exist only inside the
 * namespaces this code creates; nothing touches the host's own network.  Used by the tests,
 * mior-perf --netns and bench/.  Not part of the library.
 */
#ifndef MIOR_TOOLS_NETNS_H
#define MIOR_TOOLS_NETNS_H

#include <stddef.h>
#include <stdint.h>

typedef struct netns_pair {
  char ns_a[32], ns_b[32];   /* namespace names, unique per process: "mior-<tag>-<pid>-a" */
  char if_a[16], if_b[16];   /* veth ends inside ns a and ns b */
  char ip_a[16], ip_b[16];   /* "10.77.N.1", "10.77.N.2" */
  char ip6_a[48], ip6_b[48]; /* "fd77:N::1", "fd77:N::2" */
  uint8_t mac_a[6], mac_b[6];
  int ifindex_a, ifindex_b;
  int fd_a, fd_b;            /* open namespace fds (/run/netns/...), for netns_enter */
  int created;
} netns_pair;

/* 1 if this process can make namespaces (root, `ip` present, netns supported), else 0 with the
 * reason written to why. */
int netns_available(char *why, size_t len);

/* Make the pair.  tag names it (short, [a-z0-9]); subnet picks N in 10.77.N.0/24 so several
 * pairs can exist at once.  Waits until both links are up and IPv6 addresses are usable (no DAD).
 * Neighbour entries are NOT preset (ARP runs) unless static_neigh is nonzero.
 * Returns 0 or a negative errno. */
int netns_pair_create(netns_pair *p, const char *tag, int subnet, int static_neigh);

/* Delete the namespaces (which deletes the veth).  Safe to call twice and from a signal-driven
 * cleanup path.  Returns 0 or a negative errno. */
int netns_pair_destroy(netns_pair *p);

/* Move the calling thread into the namespace fd (fd_a or fd_b); sockets it creates afterwards
 * live there.  Returns 0 or a negative errno.  netns_enter_host() returns to the namespace the
 * process started in. */
int netns_enter(int fd);
int netns_enter_host(void);

/* Run a shell command inside a namespace (ip netns exec NAME sh -c CMD) and return its exit
 * status, or a negative errno if it could not start. */
int netns_exec(const char *ns, const char *cmd);

/* Set RPS on a veth end so the receive stack runs on another CPU than the sender (cpus_mask is a
 * hex mask, e.g. "2").  Returns 0 or a negative errno. */
int netns_set_rps(const netns_pair *p, int side_b, const char *cpus_mask);

/* Turn off transmit checksum offload on the interface ifname of the calling thread's network
 * namespace (`ethtool -K IFNAME tx off`); enter the namespace first with netns_enter.  Why: on a
 * veth the kernel hands its own TCP and UDP frames across with CHECKSUM_PARTIAL, so an AF_PACKET
 * reader on the other end (lwIP on a packet:// port) sees a checksum field holding only the
 * pseudo-header sum.  The kernel trusts that flag; lwIP, which cannot see it, checks every
 * checksum and drops those frames (ping works, TCP does not).  With offload off the kernel
 * computes the checksums in software (and segments in software too, as TSO needs checksum
 * offload).  Returns 0 or a negative errno. */
int netns_tx_checksum_offload_off(const char *ifname);

#endif
