/* bench helper: hold a namespace pair (tools/common/netns.h) for programs that cannot make their
 * own (sockperf), and remove it reliably.
 *
 *   bl_netns [--rps] [--max-seconds S]
 *
 * Makes the pair, prints one JSON line (namespace names, interfaces, addresses), then waits until
 * its standard input closes (the driver exits or closes the pipe, also when it is killed), a
 * signal arrives, or --max-seconds pass (default 3600), and removes the pair.  So the namespaces
 * never outlive the driver.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl.h"
#include "netns.h"

int main(int argc, char **argv) {
  int rps = 0;
  double max_s = 3600;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rps")) rps = 1;
    else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc) max_s = strtod(argv[++i], NULL);
    else {
      fprintf(stderr, "usage: %s [--rps] [--max-seconds S]\n", argv[0]);
      return 2;
    }
  }
  bl_signals_install();
  signal(SIGPIPE, SIG_IGN);

  char why[256];
  if (!netns_available(why, sizeof why)) {
    fprintf(stderr, "%s: namespaces are not available: %s\n", argv[0], why);
    return 2;
  }
  netns_pair p;
  memset(&p, 0, sizeof p);
  int rc = netns_pair_create(&p, "blns", 202, 1);
  if (rc < 0) {
    fprintf(stderr, "%s: creating the namespaces: %s\n", argv[0], strerror(-rc));
    netns_pair_destroy(&p);
    return 1;
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (rps && ncpu >= 2 && (rc = netns_set_rps(&p, 1, "2")) < 0)
    fprintf(stderr, "%s: setting RPS: %s\n", argv[0], strerror(-rc));
  printf("{\"ns_a\":\"%s\",\"ns_b\":\"%s\",\"if_a\":\"%s\",\"if_b\":\"%s\",\"ip_a\":\"%s\",\"ip_b\":\"%s\","
         "\"rps\":%s}\n",
         p.ns_a, p.ns_b, p.if_a, p.if_b, p.ip_a, p.ip_b, rps && rc >= 0 ? "true" : "false");
  fflush(stdout);
  double end = bl_now() + max_s;
  while (!bl_interrupted && bl_now() < end) {
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    int r = poll(&pfd, 1, 200);
    if (r > 0) {
      char buf[64];
      ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) break; /* EOF: the driver is gone or done */
    }
  }
  rc = netns_pair_destroy(&p);
  if (rc < 0) fprintf(stderr, "%s: removing %s/%s: %s\n", argv[0], p.ns_a, p.ns_b, strerror(-rc));
  return rc < 0;
}
