/* mior-stack: lwIP on a mior port, answering the Linux kernel's own tools.
 *
 *   mior-stack --netns [--demo] [--seconds N] [--pcap FILE] [--echo-port P] [--http-port P]
 *   mior-stack --if IFNAME --ip ADDR [--netmask M] [...]
 *
 * --netns makes a namespace pair joined by a veth (as the tests do): ns a keeps the kernel at
 * 10.77.N.1, and lwIP takes 10.77.N.3 on ns b's veth end, an address the kernel in ns b does
 * not have.  From ns a, `ping 10.77.N.3`, `nc 10.77.N.3 7` and `curl http://10.77.N.3/` reach
 * lwIP.  --demo runs exactly those from ns a and reports.  The namespaces are deleted at exit.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mior_lwip.h"
#include "netns.h"

static volatile sig_atomic_t stop;
static netns_pair pair;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: mior-stack --netns [options]        lwIP in a namespace pair it makes\n"
          "       mior-stack --if IFNAME --ip ADDR [options]\n"
          "options:\n"
          "  --netns            make namespaces a and b joined by a veth; lwIP is 10.77.N.3 in b\n"
          "  --subnet N         N in 10.77.N.0/24 for --netns (default 150)\n"
          "  --demo             with --netns: run ping, nc and curl from ns a, report, exit\n"
          "  --if IFNAME        the interface lwIP runs on (packet://IFNAME)\n"
          "  --endpoint EP      any mior endpoint instead of --if (packet://..., ip://ADDR/tcp)\n"
          "  --ip ADDR          lwIP's IPv4 address; --netmask M (default 255.255.255.0)\n"
          "  --echo-port P      TCP echo port (default 7; 0 = none)\n"
          "  --http-port P      HTTP responder port (default 80; 0 = none)\n"
          "  --discard-port P   discard service: read and drop (default 9; 0 = none)\n"
          "  --source-port P    source service: send --source-mb MiB, then close (default 19)\n"
          "  --source-mb N      MiB the source sends per connection (default 64)\n"
          "  --iperf3-port P    iperf3 server, TCP tests (default 5201; 0 = none)\n"
          "  --pcap FILE        record every frame the port receives and sends\n"
          "  --seconds N        run N seconds (default: until Ctrl-C)\n"
          "  --copy-rx          copy received frames instead of lending the slots to lwIP\n"
          "  --backend B        auto, uring or sockets\n");
}

/* Run cmd inside ns a; print its output and whether it succeeded. */
static int demo_step(const char *what, const char *cmd) {
  printf("--- %s: %s\n", what, cmd);
  fflush(stdout);
  int rc = netns_exec(pair.ns_a, cmd);
  printf("--- %s: %s (exit %d)\n", what, rc == 0 ? "ok" : "FAILED", rc);
  fflush(stdout);
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  enum { O_NETNS = 256, O_SUBNET, O_DEMO, O_IF, O_ENDPOINT, O_IP, O_NETMASK, O_ECHO, O_HTTP,
         O_PCAP, O_SECONDS, O_COPY, O_BACKEND, O_HELP, O_DISCARD, O_SOURCE, O_SOURCE_MB, O_IPERF };
  static const struct option opts[] = {
      {"netns", no_argument, 0, O_NETNS},        {"subnet", required_argument, 0, O_SUBNET},
      {"demo", no_argument, 0, O_DEMO},          {"if", required_argument, 0, O_IF},
      {"endpoint", required_argument, 0, O_ENDPOINT}, {"ip", required_argument, 0, O_IP},
      {"netmask", required_argument, 0, O_NETMASK}, {"echo-port", required_argument, 0, O_ECHO},
      {"http-port", required_argument, 0, O_HTTP}, {"pcap", required_argument, 0, O_PCAP},
      {"seconds", required_argument, 0, O_SECONDS}, {"copy-rx", no_argument, 0, O_COPY},
      {"backend", required_argument, 0, O_BACKEND}, {"help", no_argument, 0, O_HELP},
      {"discard-port", required_argument, 0, O_DISCARD}, {"source-port", required_argument, 0, O_SOURCE},
      {"source-mb", required_argument, 0, O_SOURCE_MB}, {"iperf3-port", required_argument, 0, O_IPERF},
      {0, 0, 0, 0}};
  int use_netns = 0, subnet = 150, demo = 0, echo_port = 7, http_port = 80, seconds = 0;
  int copy_rx = 0, discard_port = 9, source_port = 19, source_mb = 64, iperf_port = 5201;
  const char *ifname = NULL, *endpoint_arg = NULL, *ip = NULL, *netmask = NULL, *pcap_path = NULL;
  mior_backend backend = MIOR_BACKEND_AUTO;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_NETNS: use_netns = 1; break;
    case O_SUBNET: subnet = atoi(optarg); break;
    case O_DEMO: demo = 1; break;
    case O_IF: ifname = optarg; break;
    case O_ENDPOINT: endpoint_arg = optarg; break;
    case O_IP: ip = optarg; break;
    case O_NETMASK: netmask = optarg; break;
    case O_ECHO: echo_port = atoi(optarg); break;
    case O_HTTP: http_port = atoi(optarg); break;
    case O_PCAP: pcap_path = optarg; break;
    case O_SECONDS: seconds = atoi(optarg); break;
    case O_COPY: copy_rx = 1; break;
    case O_DISCARD: discard_port = atoi(optarg); break;
    case O_SOURCE: source_port = atoi(optarg); break;
    case O_SOURCE_MB: source_mb = atoi(optarg); break;
    case O_IPERF: iperf_port = atoi(optarg); break;
    case O_BACKEND:
      if (mior_backend_parse(optarg, &backend) < 0) {
        fprintf(stderr, "mior-stack: unknown backend %s\n", optarg);
        return 2;
      }
      break;
    case 'h': case O_HELP: usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (subnet < 1 || subnet > 254 || echo_port < 0 || echo_port > 65535 || http_port < 0 ||
      http_port > 65535 || discard_port < 0 || discard_port > 65535 || source_port < 0 ||
      source_port > 65535 || iperf_port < 0 || iperf_port > 65535 || source_mb < 0 || source_mb > 1 << 20 || (demo && !use_netns) ||
      (!use_netns && ((!ifname && !endpoint_arg) || !ip))) {
    usage(stderr);
    return 2;
  }

  char endpoint[80], ipbuf[16];
  if (use_netns) {
    char why[160];
    if (!netns_available(why, sizeof why)) {
      fprintf(stderr, "mior-stack: --netns: %s\n", why);
      return 1;
    }
    memset(&pair, 0, sizeof pair);
    pair.fd_a = pair.fd_b = -1;
    int rc = netns_pair_create(&pair, "stk", subnet, 0);
    if (rc < 0) {
      fprintf(stderr, "mior-stack: cannot make the namespaces: %s\n", strerror(-rc));
      return 1;
    }
    /* The kernel in ns a must put real checksums in its frames: see netns.h. */
    if (netns_enter(pair.fd_a) < 0 || (rc = netns_tx_checksum_offload_off(pair.if_a)) < 0) {
      fprintf(stderr, "mior-stack: cannot turn off tx checksum offload on %s: %s\n", pair.if_a,
              strerror(rc < 0 ? -rc : EIO));
      netns_pair_destroy(&pair);
      return 1;
    }
    netns_enter_host();
    snprintf(ipbuf, sizeof ipbuf, "10.77.%d.3", subnet);
    ip = ipbuf;
    snprintf(endpoint, sizeof endpoint, "packet://%s", pair.if_b);
    if (netns_enter(pair.fd_b) < 0) {
      fprintf(stderr, "mior-stack: cannot enter %s\n", pair.ns_b);
      netns_pair_destroy(&pair);
      return 1;
    }
  } else if (endpoint_arg) {
    snprintf(endpoint, sizeof endpoint, "%s", endpoint_arg);
  } else {
    snprintf(endpoint, sizeof endpoint, "packet://%s", ifname);
  }

  int exit_code = 1;
  mior_pcap *cap = NULL;
  mior_lwip *l = NULL;
  if (pcap_path) {
    int rc = mior_pcap_open(&cap, pcap_path, mior_pcap_linktype_for(endpoint), 0);
    if (rc < 0) {
      fprintf(stderr, "mior-stack: %s\n", mior_last_error());
      goto out;
    }
  }
  mior_options po;
  mior_options_init(&po);
  po.backend = backend;
  mior_lwip_options lo;
  mior_lwip_options_init(&lo);
  lo.endpoint = endpoint;
  lo.port = &po;
  lo.ip = ip;
  if (netmask) lo.netmask = netmask;
  lo.pcap = cap;
  lo.flags = copy_rx ? MIOR_LWIP_COPY_RX : 0;
  lo.netif_default = 1;
  int rc = mior_lwip_start(&l, &lo);
  if (use_netns) netns_enter_host();
  if (rc < 0) {
    fprintf(stderr, "mior-stack: %s: %s (%s)\n", endpoint, mior_strerror(rc), mior_last_error());
    goto out;
  }
  if (echo_port && (rc = mior_lwip_echo_listen((uint16_t)echo_port)) < 0) {
    fprintf(stderr, "mior-stack: echo on port %d: %s\n", echo_port, mior_strerror(rc));
    goto out;
  }
  if (http_port && (rc = mior_lwip_http_listen((uint16_t)http_port,
                                               "hello from lwIP on a mior port\n")) < 0) {
    fprintf(stderr, "mior-stack: http on port %d: %s\n", http_port, mior_strerror(rc));
    goto out;
  }
  if (discard_port && (rc = mior_lwip_discard_listen((uint16_t)discard_port)) < 0) {
    fprintf(stderr, "mior-stack: discard on port %d: %s\n", discard_port, mior_strerror(rc));
    goto out;
  }
  if (source_port &&
      (rc = mior_lwip_source_listen((uint16_t)source_port, (uint64_t)source_mb << 20)) < 0) {
    fprintf(stderr, "mior-stack: source on port %d: %s\n", source_port, mior_strerror(rc));
    goto out;
  }
  if (iperf_port && (rc = mior_lwip_iperf3_listen((uint16_t)iperf_port)) < 0) {
    fprintf(stderr, "mior-stack: iperf3 on port %d: %s\n", iperf_port, mior_strerror(rc));
    goto out;
  }
  mior_port_stats ps;
  mior_lwip_port_stats(l, &ps);
  printf("lwIP %s on %s (backend %s)%s%s; echo port %d, http port %d, discard port %d, source "
         "port %d (%d MiB), iperf3 port %d\n", ip, endpoint, mior_backend_name(ps.backend),
         use_netns ? " in " : "", use_netns ? pair.ns_b : "", echo_port, http_port, discard_port,
         source_port, source_mb, iperf_port);
  if (use_netns)
    printf("from the peer: ip netns exec %s ping %s | nc %s %d | curl http://%s:%d/\n",
           pair.ns_a, ip, ip, echo_port, ip, http_port);
  fflush(stdout);

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  exit_code = 0;
  if (demo) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ping -c 3 -i 0.2 -W 2 %s", ip);
    exit_code |= demo_step("ping", cmd);
    if (echo_port) {
      snprintf(cmd, sizeof cmd,
               "python3 -c \"import socket;s=socket.create_connection(('%s',%d),5);"
               "s.sendall(b'hello lwIP');print('echo:',s.recv(100).decode());s.close()\"",
               ip, echo_port);
      exit_code |= demo_step("tcp echo", cmd);
    }
    if (http_port) {
      snprintf(cmd, sizeof cmd, "curl -sS -i --max-time 5 http://%s:%d/", ip, http_port);
      exit_code |= demo_step("curl", cmd);
    }
  } else {
    time_t end = seconds > 0 ? time(NULL) + seconds : 0;
    while (!stop && (!end || time(NULL) < end)) usleep(100000);
  }

  mior_lwip_stats st;
  mior_lwip_stats_get(l, &st);
  mior_lwip_service_stats ss;
  mior_lwip_service_stats_get(&ss);
  printf("frames in %llu (zero-copy %llu, copied %llu), out %llu (deferred %llu, ERR_MEM %llu); "
         "connections %llu, http requests %llu, bytes echoed %llu; TIME_WAIT reused by a new "
         "SYN %llu (left to lwIP %llu)\n",
         (unsigned long long)st.rx_frames, (unsigned long long)st.rx_zero_copy,
         (unsigned long long)st.rx_copied, (unsigned long long)st.tx_frames,
         (unsigned long long)st.tx_deferred, (unsigned long long)st.tx_nomem,
         (unsigned long long)ss.accepted, (unsigned long long)ss.http_requests,
         (unsigned long long)ss.bytes_echoed, (unsigned long long)st.tw_reused,
         (unsigned long long)st.tw_kept);

out:
  if (l) {
    char why[256] = "";
    rc = mior_lwip_stop(l);
    /* -EBUSY frees nothing, so l can still say who holds the slots */
    if (rc == -EBUSY) mior_lwip_holders(l, why, sizeof why);
    if (rc < 0) {
      fprintf(stderr, "mior-stack: stop: %s%s%s\n", mior_strerror(rc), why[0] ? ": " : "", why);
      exit_code = 1;
    }
  }
  if (cap) {
    printf("pcap: %llu frames in %s\n", (unsigned long long)mior_pcap_count(cap), pcap_path);
    if (mior_pcap_close(cap) < 0) exit_code = 1;
  }
  if (use_netns) netns_pair_destroy(&pair);
  return exit_code;
}
