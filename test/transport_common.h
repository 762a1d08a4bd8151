/* The Linux fixture of the transport tests: the variants every body runs under here, a watchdog,
 * network namespaces that never outlive the test whatever way it ends (exit, watchdog, signal, or
 * a crash of an earlier run), transports and kernel sockets opened inside a namespace, and the
 * kernel's own counters.  Linux-only tests include it directly; a test that runs on every system
 * includes transport_os.h, which is this header on Linux.  The helpers that build on Windows too
 * (payloads, the tally receiver, the paced pump, the pool check, the variant runner) are in
 * transport_portable.h, which this includes.  The bodies are in test/support/transport_linux.c.
 */
#ifndef MIOR_TEST_TRANSPORT_COMMON_H
#define MIOR_TEST_TRANSPORT_COMMON_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"
#include "test.h"
#include "transport_portable.h"

/* --- watchdog --------------------------------------------------------------------------------- */

/* Namespaces this process created; deleted on every way out (exit, watchdog, signal). */
#define TT_MAX_PAIRS 4
extern netns_pair *tt_pairs[TT_MAX_PAIRS];

void tt_cleanup_netns(void);

void tt_on_fatal(int sig);

/* Every transport test bounds its whole run: a hang is a failure, not a CTest timeout. */
void tt_watchdog(unsigned seconds);

/* Delete namespaces named "mior-<tag>-<pid>-a/b" left by an earlier run of this test whose process
 * is gone (a sanitizer abort or SIGKILL skips every cleanup path). */
void tt_sweep_stale(const char *tag);

/* Create a pair registered for cleanup; skip the test (exit 77) if namespaces are unavailable. */
void tt_pair_create(netns_pair *p, const char *tag, int subnet);

/* --- variants -------------------------------------------------------------------------------- */

/* The Linux rows: each backend as it is.  On Linux a udp transport may have several queues, one
 * load-balancing SO_REUSEPORT group. */

const tt_variant *tt_os_variants(size_t *n);

/* Bulk transfers move every packet their test asks for. */
#define TT_OS_BULK_DIV 1

/* With MIOR_OPT_RX_TIMESTAMP, every datagram carries a receive timestamp (SO_TIMESTAMPNS). */
#define TT_OS_RX_TIMESTAMP_EVERY 1

/* Datagrams a sender may keep ahead of a 1024-slot port's receiver: what the socket holds. */
#define TT_OS_UDP_WINDOW 512u

/* No Linux row sets an environment switch yet; this serves the first that does. */
void tt_os_setenv(const char *assignment, int set);

/* Run body(b) under each backend of this build (mior__backends) the system supports, as it is;
 * say why one is skipped.  Returns how many ran, so main can turn "none" into a skip.  A body
 * that takes option variants is a tt_test run by tt_run instead. */
int tt_for_each_backend(const char *name, void (*body)(mior_backend b));

/* The peer's socket (transport_portable.h's tt_peer), for what only Linux sends (a GSO send). */
int tt_peer_fd(const tt_peer *k);

/* --- plain kernel UDP sockets on loopback (IPv4): the peers a test talks to ------------------ */

struct sockaddr_in tt_sin4(const mior_addr *a);

/* The address an IPv4 socket is bound to. */
mior_addr tt_addr4_of(int fd);

/* A UDP socket bound to 127.0.0.1 on a free port; receives time out after timeout_ms. */
int tt_kernel_udp4(int timeout_ms);

/* n sequence-numbered payloads (tt_fill) of len bytes from fd to `to`. */
void tt_kernel_send4(int fd, const mior_addr *to, uint32_t n, uint32_t len);

/* 0 if a plain UDP socket can bind the IPv4 address a right now, else the negative errno. */
int tt_bind_now4(const mior_addr *a);

/* --- inside a namespace ----------------------------------------------------------------------- */

/* Open a transport while the calling thread sits in namespace fd (-1: where it is). */
int tt_open_in(int ns_fd, mior_transport **t, const char *ep, const mior_options *o,
                             const mior_receiver *recv);

/* tt_open_in that ends the test if the open fails, saying which body (tt_phase) opened what where:
 * called from a shared helper, the file and line of the failure would not say. */
void tt_require_open_in(int ns_fd, const char *ns, mior_transport **t, const char *ep,
                                      const mior_options *o, const mior_receiver *recv);

/* The two ends of a one-way test across pair p: *rx opened on ep_b inside ns b, delivering what
 * arrives to the tally r, and *tx opened on ep_a inside ns a with no receiver (otx carries
 * MIOR_OPT_NO_RX unless the sender should also receive, and drop, what comes to it).  The options
 * are the body's own; a failed open ends the test. */
void tt_open_a_to_b(const netns_pair *p, const char *ep_a, const mior_options *otx,
                                  mior_transport **tx, const char *ep_b, const mior_options *orx,
                                  tt_rx *r, mior_transport **rx);

/* One packet pulled with mior_rx_burst from a port opened without a receiver, waiting on its event
 * handle (never mior_port_poll, which would drop what it reaps there): 0, or -1 if none came in
 * timeout_ms. */
int tt_pull_one(mior_port *p, mior_pkt *out, int timeout_ms);

/* A kernel socket made inside namespace fd. */
int tt_socket_in(int ns_fd, int domain, int type, int proto);

/* A kernel UDP socket inside ns a, bound to the pair's address a, sends r->count sequence-numbered
 * payloads (TT_HDR..hi bytes) to address b, port dport, keeping at most 32 not yet in the tally;
 * then rxp is polled until every one arrived or 10 s passed since the first send.  *sport is the
 * socket's own port, set before the first send for an unwrap that checks it. */
void tt_kernel_udp_a_to_b(const netns_pair *p, uint16_t dport, uint32_t hi,
                                        uint16_t *sport, tt_rx *r, mior_port *rxp);

/* The kernel's drop counter for the IPv4 UDP socket bound to port (last column of
 * /proc/net/udp), or 0 if not found.  Read from /proc, not through the library, so the tests
 * check the library's own figure against the kernel's. */
uint64_t tt_udp_kernel_drops(uint16_t port);

/* Send count ICMP echo requests (identifier id, sequence 1..count) from a raw socket of the
 * kernel in the namespace ns_fd to ip, each waiting up to 2 s for its reply; returns the replies
 * that came back, or -1 if the socket could not be made.  For tests that must not depend on
 * ping being installed. */
int tt_icmp_echo_from(int ns_fd, const char *ip, int count, uint16_t id);

#endif
