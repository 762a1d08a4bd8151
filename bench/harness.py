#!/usr/bin/env python3
"""bench/harness.py: run mior-perf and the hand-written baselines side by side (Python 3,
standard library only).  Started by bench/run.sh, which builds everything first.

Every measurement is a separate process with a hard timeout.  Namespaces are made by the
programs themselves (tools/common/netns.h) or, for sockperf, by bench/baselines/bl_netns, whose
lifetime is tied to a pipe from this script; any leftover namespace named after one of our
children's pids is removed at the end, also after Ctrl-C.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

# ------------------------------------------------------------------------------------------
# Process handling


class Interrupted(Exception):
    pass


STATE = {"child": None, "pids": set(), "interrupted": False}


def on_sigint(sig, frame):
    STATE["interrupted"] = True
    child = STATE["child"]
    if child is not None and child.poll() is None:
        try:
            child.send_signal(signal.SIGINT)  # the programs clean up their namespaces on SIGINT
        except ProcessLookupError:
            pass


def cpu_of(ru):
    return ru.ru_utime + ru.ru_stime


def run_proc(argv, timeout, quiet=False):
    """Run argv, return (returncode, stdout, stderr, cpu_seconds, maxrss_kb)."""
    if STATE["interrupted"]:
        raise Interrupted()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STATE["child"] = p
    STATE["pids"].add(p.pid)
    out_chunks, err_chunks = [], []

    def reader(stream, sink):
        for line in stream:
            sink.append(line)

    ts = [threading.Thread(target=reader, args=(p.stdout, out_chunks), daemon=True),
          threading.Thread(target=reader, args=(p.stderr, err_chunks), daemon=True)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + timeout
    ru = None
    status = None
    while True:
        pid, st, r = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            status, ru = st, r
            break
        if time.monotonic() > deadline:
            # Ask it to stop (it removes its namespaces), then insist.
            p.send_signal(signal.SIGINT)
            end = time.monotonic() + 10
            while ru is None and time.monotonic() < end:
                pid, st, r = os.wait4(p.pid, os.WNOHANG)
                if pid == p.pid:
                    status, ru = st, r
                time.sleep(0.05)
            if ru is None:
                p.kill()
                _, status, ru = os.wait4(p.pid, 0)
            err_chunks.append(f"harness: timed out after {timeout:.0f} s\n")
            break
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status) if status is not None else -1
    for t in ts:
        t.join(timeout=2)
    STATE["child"] = None
    rc = p.returncode
    err = "".join(err_chunks)
    if rc != 0 and not quiet and not STATE["interrupted"]:
        sys.stderr.write(f"  ! {' '.join(argv)}: exit {rc}\n    {err.strip()[-400:]}\n")
    if STATE["interrupted"]:
        raise Interrupted()
    return rc, "".join(out_chunks), err, cpu_of(ru) if ru else 0.0, ru.ru_maxrss if ru else 0


def stop_server(proc, sig):
    """Stop a server the harness started beside a measurement: sig, then SIGKILL after 5 s."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cleanup_namespaces():
    """Remove namespaces that one of our children made and did not remove (after a crash)."""
    try:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) == 4 and parts[0] == "mior" and parts[2].isdigit() and int(parts[2]) in STATE["pids"]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
            print(f"harness: removed leftover namespace {name}")


# ------------------------------------------------------------------------------------------
# The methods


def frame_to_size(kind, frame):
    return {"udp": frame - 42, "ip": frame - 14, "packet": frame}[kind]


class Bench:
    def __init__(self, args):
        self.a = args
        b = args.build
        self.perf = os.path.join(b, "tools", "mior-perf")
        self.bl = lambda n: os.path.join(b, "bench", n)
        self.secs = args.seconds
        self.raw = []          # every run's record
        self.notes = []        # things that could not run, said in the output
        self.have_xdp = os.path.exists(self.bl("bl_xdp"))
        self.have_sockperf = shutil.which("sockperf") is not None
        self.have_dnsperf = shutil.which("dnsperf") is not None
        if not self.have_dnsperf and not self.skip("dns"):
            self.notes.append("dnsperf: not installed, the DNS rows are missing")
        if not self.have_xdp:
            self.notes.append("AF_XDP: bl_xdp was not built (libxdp-dev/libbpf-dev missing)")
        if not self.have_sockperf:
            self.notes.append("sockperf: not installed, its ping-pong rows are missing")

    def timeout(self, secs=None):
        return (secs or self.secs) + 40

    def common(self, netns, secs=None):
        c = ["--seconds", str(secs or self.secs), "--json"]
        if netns:
            c.append("--netns")
            if self.a.rps:
                c.append("--rps")
        return c

    def record(self, rec):
        self.raw.append(rec)
        tag = rec["test"] + " " + rec["method"] + (" veth" if rec.get("netns") else " lo")
        if rec.get("error"):
            print(f"  {tag:40s} FAILED: {rec['error'][:160]}")
        elif rec["mode"] == "dns":
            print(f"  {tag:40s} {rec['qps']:10.0f} queries/s  avg latency {rec['lat_us']:8.0f} us  lost {rec['lost']}")
        elif rec["mode"] == "throughput":
            print(f"  {tag:40s} frame {rec['frame']:4d}  tx {rec['tx_pps']:10.0f}  rx {rec['rx_pps']:10.0f} pps"
                  f"  cpu/Mpkt {rec['cpu_per_mpkt']:.2f} s")
        else:
            print(f"  {tag:40s} p50 {rec['p50_us']:8.2f}  p99 {rec['p99_us']:8.2f}  p99.9 {rec['p999_us']:9.2f} us")
        sys.stdout.flush()

    # -- throughput --------------------------------------------------------------------
    def skip(self, section):
        """--only: the sections to run (pps, latency, rate, batch, queues, dns); all by default."""
        return bool(self.a.only) and section not in self.a.only

    def mior_tp(self, test, backend, kind, netns, frame, batch=None, rate=None, queues=None, secs=None,
                opt=None, gso_slot=False):
        if self.skip(test):
            return None
        argv = [self.perf, "throughput", "--backend", backend, "--kind", kind,
                "--size", str(frame_to_size(kind, frame))] + self.common(netns, secs)
        if opt:
            argv += ["--opt", opt]
        if batch:
            argv += ["--batch", str(batch)]
        if rate:
            argv += ["--rate", str(rate)]
        if queues:
            argv += ["--queues", str(queues)]
        if gso_slot:
            argv += ["--gso-slot"]
        method = f"mior {backend} {kind}" + (" (no gso/gro)" if opt == "no-gso,no-gro" else f" --opt {opt}" if opt else "")
        method += " (one slot per GSO send)" if gso_slot else ""
        rc, out, err, cpu, rss = run_proc(argv, self.timeout(secs))
        rec = {"test": test, "method": method, "mode": "throughput", "netns": netns, "frame": frame,
               "batch": batch or 0, "rate": rate or 0, "queues": queues or 1, "argv": " ".join(argv[1:]),
               "cpu_s": cpu, "maxrss_kb": rss, "mior": True}
        if rc != 0 or not out.strip():
            rec["error"] = err.strip()[-300:] or f"exit {rc}"
        else:
            j = json.loads(out.strip().splitlines()[-1])
            rec.update(tx_pps=j["tx_pps"], rx_pps=j["rx_pps"], tx_total=j["tx_total"], rx_total=j["rx_total"],
                       loss=j["loss"], features=j.get("rx_features", ""), tx_features=j.get("tx_features", ""),
                       detail=j)
            rec["cpu_per_mpkt"] = cpu / (j["tx_total"] / 1e6) if j["tx_total"] else 0
            rec["cpu_tx_s"], rec["cpu_rx_s"] = j.get("cpu_tx_s"), j.get("cpu_rx_s")
        self.record(rec)
        return rec

    def bl_tp(self, test, prog, method, netns, frame, kind="udp", batch=None, rate=None, secs=None):
        if self.skip(test):
            return None
        argv = [self.bl(prog)] + (["--method", method] if prog == "bl_udp" else []) + \
               ["--size", str(frame_to_size(kind, frame))] + self.common(netns, secs)
        if batch:
            argv += ["--batch", str(batch)]
        if rate:
            argv += ["--rate", str(rate)]
        names = {"sendto": "sendto/recvfrom", "mmsg": "sendmmsg/recvmmsg", "uring": "io_uring (hand)",
                 "gso": "sendmsg GSO/recvmsg GRO (hand)",
                 "gso-seq": "sendmsg GSO/recvmsg GRO, reading each datagram (hand)", "gso-to-mmsg": "sendmsg GSO -> recvmmsg (hand)",
                 "packet": "AF_PACKET rings", "xdp": "AF_XDP copy"}
        rc, out, err, cpu, rss = run_proc(argv, self.timeout(secs))
        rec = {"test": test, "method": names[method], "mode": "throughput", "netns": netns, "frame": frame,
               "batch": batch or 0, "rate": rate or 0, "queues": 1, "argv": " ".join(argv[1:]),
               "cpu_s": cpu, "maxrss_kb": rss, "mior": False}
        if rc != 0 or not out.strip():
            rec["error"] = err.strip()[-300:] or f"exit {rc}"
        else:
            j = json.loads(out.strip().splitlines()[-1])
            rec.update(tx_pps=j["tx_pps"], rx_pps=j["rx_pps"], tx_total=j["tx_total"], rx_total=j["rx_total"],
                       loss=j["loss"], cpu_tx_s=j["cpu_tx_s"], cpu_rx_s=j["cpu_rx_s"], batch=j["batch"])
            rec["cpu_per_mpkt"] = cpu / (j["tx_total"] / 1e6) if j["tx_total"] else 0
        self.record(rec)
        return rec

    # -- latency ------------------------------------------------------------------------
    def mior_lat(self, test, backend, netns, busy):
        if self.skip(test):
            return None
        argv = [self.perf, "latency", "--backend", backend] + self.common(netns)
        if busy:
            argv += ["--busy-poll", str(busy)]
        rc, out, err, cpu, rss = run_proc(argv, self.timeout())
        rec = {"test": test, "method": f"mior {backend}" + (" busy" if busy else ""), "mode": "latency",
               "netns": netns, "frame": 60, "busy": bool(busy), "argv": " ".join(argv[1:]), "cpu_s": cpu,
               "maxrss_kb": rss, "mior": True}
        if rc != 0 or not out.strip():
            rec["error"] = err.strip()[-300:] or f"exit {rc}"
        else:
            j = json.loads(out.strip().splitlines()[-1])
            for k in ("min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us", "samples"):
                rec[k] = j[k]
            # mior-perf reports percentiles only: the CDF is drawn through them.
            rec["cdf"] = [[j["min_us"], 0], [j["p50_us"], .5], [j["p90_us"], .9], [j["p99_us"], .99],
                          [j["p999_us"], .999], [j["max_us"], 1]]
        self.record(rec)
        return rec

    def bl_lat(self, test, netns, busy, method="sockets"):
        if self.skip(test):
            return None
        argv = [self.bl("bl_pingpong"), "--method", method] + self.common(netns) + \
               (["--busy-poll", "1"] if busy else [])
        rc, out, err, cpu, rss = run_proc(argv, self.timeout())
        name = "sockets ping-pong" if method == "sockets" else "io_uring ping-pong (hand)"
        rec = {"test": test, "method": name + (" busy" if busy else ""), "mode": "latency",
               "netns": netns, "frame": 60, "busy": busy, "argv": " ".join(argv[1:]), "cpu_s": cpu,
               "maxrss_kb": rss, "mior": False}
        if rc != 0 or not out.strip():
            rec["error"] = err.strip()[-300:] or f"exit {rc}"
        else:
            j = json.loads(out.strip().splitlines()[-1])
            for k in ("min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us", "samples", "cdf"):
                rec[k] = j[k]
        self.record(rec)
        return rec

    def sockperf_lat(self, test, ns, busy):
        """sockperf ping-pong (UDP, 18-byte messages, --full-rtt), server pinned to CPU 1 and client
        to CPU 0.  Busy: --nonblocked on both ends and a zero epoll timeout on the server."""
        rec = {"test": test, "method": "sockperf" + (" busy" if busy else ""), "mode": "latency",
               "netns": ns is not None, "frame": 60, "busy": busy, "mior": False}
        if not self.have_sockperf:
            return None
        port = "11811"
        srv_ip, cli_ip = (ns["ip_b"], ns["ip_a"]) if ns else ("127.0.0.1", "127.0.0.1")
        pre_s = ["ip", "netns", "exec", ns["ns_b"]] if ns else []
        pre_c = ["ip", "netns", "exec", ns["ns_a"]] if ns else []
        nb = ["--nonblocked"] if busy else []
        srv = subprocess.Popen(pre_s + ["taskset", "-c", "1", "sockperf", "server", "-i", srv_ip, "-p", port] + nb +
                               (["--timeout", "0"] if busy else []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STATE["pids"].add(srv.pid)
        try:
            time.sleep(0.5)
            argv = pre_c + ["taskset", "-c", "0", "sockperf", "ping-pong", "-i", srv_ip, "-p", port, "-m", "18",
                            "-t", str(max(1, int(round(self.secs)))), "--full-rtt", "--client_ip", cli_ip] + nb
            rc, out, err, cpu, rss = run_proc(argv, self.timeout())
        finally:
            stop_server(srv, signal.SIGINT)
        rec["argv"] = " ".join(argv)
        text = out + err
        pct = {}
        for line in text.splitlines():
            if "percentile" in line and "=" in line:
                q = float(line.split("percentile")[1].split("=")[0])
                pct[q] = float(line.split("=")[1])
            elif "<MIN>" in line:
                pct[0.0] = float(line.split("=")[1])
            elif "<MAX>" in line:
                pct[100.0] = float(line.split("=")[1])
        if rc != 0 or 50.0 not in pct:
            rec["error"] = text.strip()[-300:] or f"exit {rc}"
        else:
            rec.update(min_us=pct.get(0.0), p50_us=pct[50.0], p90_us=pct.get(90.0), p99_us=pct.get(99.0),
                       p999_us=pct.get(99.9), max_us=pct.get(100.0))
            rec["cdf"] = [[v, q / 100] for q, v in sorted(pct.items())]
        self.record(rec)
        return rec

    # -- DNS: dnsperf against examples/dns_responder and bench/baselines/bl_dns.c (loopback) ---
    DNS_PORT = 25399
    DNS_QUERIES = "www.example.test A\nexample.test AAAA\ntxt.example.test TXT\nnope.example.test A\n"

    def dns(self, method, argv):
        """One dnsperf run (8 clients, 256 outstanding queries, self.secs) against a server started
        for it on 127.0.0.1, which prints "ready" once it serves and stops on SIGTERM."""
        rec = {"test": "dns", "method": method, "mode": "dns", "netns": False, "argv": " ".join(argv[1:]),
               "mior": method.startswith("mior")}
        if self.skip("dns") or not self.have_dnsperf:
            return None
        qfile = os.path.join(self.a.out_dir, "dns_queries.txt")
        with open(qfile, "w") as f:
            f.write(self.DNS_QUERIES)
        srv = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        STATE["pids"].add(srv.pid)
        try:
            first = srv.stdout.readline()  # "... ready on ..." or an error
            if "ready" not in first:
                rec["error"] = f"server did not start: {first.strip()[-200:]}"
                self.record(rec)
                return rec
            rc, out, err, cpu, rss = run_proc(["dnsperf", "-s", "127.0.0.1", "-p", str(self.DNS_PORT), "-d", qfile,
                                               "-l", str(max(1, int(round(self.secs)))), "-c", "8", "-T", "1",
                                               "-q", "256"], self.timeout())
        finally:
            stop_server(srv, signal.SIGTERM)
        vals = {}
        for line in (out + err).splitlines():
            for key, name in (("Queries per second:", "qps"), ("Average Latency (s):", "lat_s"),
                              ("Queries lost:", "lost")):
                if key in line:
                    vals[name] = float(line.split(key)[1].split()[0])
        if rc != 0 or "qps" not in vals:
            rec["error"] = (out + err).strip()[-300:] or f"exit {rc}"
        else:
            rec.update(qps=vals["qps"], lat_us=vals.get("lat_s", 0) * 1e6, lost=int(vals.get("lost", 0)),
                       dnsperf_cpu_s=cpu)
        self.record(rec)
        return rec

    def dns_rows(self):
        resp = os.path.join(self.a.build, "examples", "dns_responder")
        ep = f"udp://127.0.0.1:{self.DNS_PORT}"
        self.dns("mior uring", [resp, ep, "--backend", "uring", "--no-pktinfo"])
        self.dns("mior uring, MIOR_OPT_RX_PKTINFO", [resp, ep, "--backend", "uring"])
        self.dns("mior sockets", [resp, ep, "--backend", "sockets", "--no-pktinfo"])
        self.dns("plain recvmmsg/sendmmsg", [self.bl("bl_dns"), "127.0.0.1", str(self.DNS_PORT)])

    # -- the whole matrix ---------------------------------------------------------------------
    def run(self):
        quick = self.a.quick
        runs = self.a.runs
        envs = [False, True]
        frames = [60, 1500]
        for r in range(runs):
            print(f"== run {r + 1} of {runs}: throughput")
            for netns in envs:
                for frame in frames:
                    # The default: UDP GSO on send, UDP GRO on receive.
                    self.mior_tp("pps", "uring", "udp", netns, frame)
                    # Both offloads off (MIOR_OPT_NO_UDP_GSO | MIOR_OPT_NO_UDP_GRO): one datagram
                    # per kernel traversal, what the default was before.
                    self.mior_tp("pps", "uring", "udp", netns, frame, opt="no-gso,no-gro")
                    # The sender writes each batch into one slot (mior_tx_send_gso), as the hand GSO
                    # sender and a QUIC stack do; the receiver is the default one.
                    self.mior_tp("pps", "uring", "udp", netns, frame, gso_slot=True)
                    self.mior_tp("pps", "sockets", "udp", netns, frame)
                    if netns:
                        self.mior_tp("pps", "uring", "ip", netns, frame)
                        self.mior_tp("pps", "uring", "packet", netns, frame)
                    self.bl_tp("pps", "bl_udp", "sendto", netns, frame)
                    self.bl_tp("pps", "bl_udp", "mmsg", netns, frame)
                    self.bl_tp("pps", "bl_udp", "gso", netns, frame)
                    # The same pair, but the receiver reads each datagram's magic and sequence
                    # number, as mior-perf's receiver does: like-for-like with mior's receive.
                    self.bl_tp("pps", "bl_udp", "gso-seq", netns, frame)
                    if frame == 60:
                        # A coalescing sender into a receiver that does not coalesce (context for
                        # the receive-livelock target).
                        self.bl_tp("pps", "bl_udp", "gso-to-mmsg", netns, frame)
                    self.bl_tp("pps", "bl_uring", "uring", netns, frame)
                    if netns:
                        self.bl_tp("pps", "bl_packet", "packet", netns, frame, kind="packet")
                        if self.have_xdp:
                            self.bl_tp("pps", "bl_xdp", "xdp", netns, frame, kind="packet")
            print(f"== run {r + 1} of {runs}: latency (ping-pong, 60-byte frames)")
            lat_envs = [True] if quick else [False, True]
            for netns in lat_envs:
                for busy in (False, True):
                    self.mior_lat("latency", "uring", netns, 1000 if busy else 0)
                    self.mior_lat("latency", "sockets", netns, 1000 if busy else 0)
                    self.bl_lat("latency", netns, busy)
                    self.bl_lat("latency", netns, busy, method="uring")
                if self.have_sockperf:
                    self.sockperf_pair(netns)
            print(f"== run {r + 1} of {runs}: fixed rate {self.a.rate} pps, veth, 60-byte frames")
            for backend in ("uring", "sockets"):
                self.mior_tp("rate", backend, "udp", True, 60, rate=self.a.rate)
            self.bl_tp("rate", "bl_udp", "sendto", True, 60, rate=self.a.rate)
            self.bl_tp("rate", "bl_udp", "mmsg", True, 60, rate=self.a.rate)
            self.bl_tp("rate", "bl_udp", "gso", True, 60, rate=self.a.rate)
            self.bl_tp("rate", "bl_uring", "uring", True, 60, rate=self.a.rate)
            print(f"== run {r + 1} of {runs}: batch sweep and queues, veth, 60-byte frames")
            sweep = [1, 8, 64, 256] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256]
            for b in sweep:
                self.mior_tp("batch", "uring", "udp", True, 60, batch=b)
                self.bl_tp("batch", "bl_udp", "mmsg", True, 60, batch=b)
            self.mior_tp("queues", "uring", "udp", True, 60, queues=2)
            self.mior_tp("queues", "sockets", "udp", True, 60, queues=2)
            if not self.skip("dns"):
                print(f"== run {r + 1} of {runs}: DNS responder under dnsperf, loopback")
                self.dns_rows()

    def sockperf_pair(self, netns):
        if self.skip("latency"):
            return
        if not netns:
            for busy in (False, True):
                self.sockperf_lat("latency", None, busy)
            return
        argv = [self.bl("bl_netns"), "--max-seconds", "120"] + (["--rps"] if self.a.rps else [])
        h = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        STATE["pids"].add(h.pid)
        try:
            line = h.stdout.readline()
            if not line:
                self.notes.append("sockperf over veth: bl_netns could not make the namespaces")
                return
            ns = json.loads(line)
            for busy in (False, True):
                self.sockperf_lat("latency", ns, busy)
        finally:
            h.stdin.close()  # bl_netns removes the pair when its input closes
            try:
                h.wait(timeout=20)
            except subprocess.TimeoutExpired:
                h.send_signal(signal.SIGTERM)
                h.wait(timeout=10)


# ------------------------------------------------------------------------------------------
# Summaries


def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt_mmm(m, scale=1.0, digits=0):
    if m is None:
        return "-"
    a, lo, hi = (x / scale for x in m)
    if lo == hi:
        return f"{a:.{digits}f}"
    return f"{a:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def group(raw, **kw):
    return [r for r in raw if all(r.get(k) == v for k, v in kw.items()) and not r.get("error")]


TP_ORDER = ["mior uring udp", "mior uring udp (one slot per GSO send)", "mior uring udp (no gso/gro)", "mior uring ip", "mior uring packet", "mior sockets udp",
            "sendto/recvfrom", "sendmmsg/recvmmsg", "sendmsg GSO/recvmsg GRO (hand)",
            "sendmsg GSO/recvmsg GRO, reading each datagram (hand)", "sendmsg GSO -> recvmmsg (hand)",
            "io_uring (hand)", "AF_PACKET rings", "AF_XDP copy"]
LAT_ORDER = ["mior uring", "mior sockets", "sockets ping-pong", "io_uring ping-pong (hand)", "sockperf",
             "mior uring busy", "mior sockets busy", "sockets ping-pong busy", "io_uring ping-pong (hand) busy",
             "sockperf busy"]


def summarize(raw):
    s = {"pps": {}, "latency": {}, "rate": {}, "batch": {}, "queues": {}}
    for r in raw:
        if r.get("error"):
            continue
        t = r["test"]
        env = "veth" if r["netns"] else "loopback"
        if t == "pps":
            s["pps"].setdefault(f"{env} {r['frame']}", {}).setdefault(r["method"], []).append(r)
        elif t == "latency":
            s["latency"].setdefault(env, {}).setdefault(r["method"], []).append(r)
        elif t == "rate":
            s["rate"].setdefault(r["method"], []).append(r)
        elif t == "batch":
            s["batch"].setdefault(r["method"], {}).setdefault(r["batch"], []).append(r)
        elif t == "queues":
            s["queues"].setdefault(r["method"], []).append(r)
    out = {"pps": {}, "latency": {}, "rate": {}, "batch": {}, "queues": {}}
    for key, ms in s["pps"].items():
        out["pps"][key] = {m: {"tx_pps": med([r["tx_pps"] for r in rs]), "rx_pps": med([r["rx_pps"] for r in rs]),
                               "loss": med([r["loss"] for r in rs]), "runs": len(rs),
                               "cpu_per_mpkt": med([r["cpu_per_mpkt"] for r in rs]),
                               "maxrss_kb": med([r["maxrss_kb"] for r in rs]),
                               "features": rs[0].get("features", "")}
                           for m, rs in ms.items()}
    for env, ms in s["latency"].items():
        out["latency"][env] = {m: {k: med([r.get(k) for r in rs]) for k in ("p50_us", "p99_us", "p999_us")}
                               | {"runs": len(rs), "cdf": rs[len(rs) // 2]["cdf"]} for m, rs in ms.items()}
    for m, rs in s["rate"].items():
        out["rate"][m] = {"tx_pps": med([r["tx_pps"] for r in rs]), "rx_pps": med([r["rx_pps"] for r in rs]),
                          "cpu_s": med([r["cpu_s"] for r in rs]), "cpu_per_mpkt": med([r["cpu_per_mpkt"] for r in rs]),
                          "cpu_tx_s": med([r.get("cpu_tx_s") for r in rs]), "cpu_rx_s": med([r.get("cpu_rx_s") for r in rs]),
                          "runs": len(rs)}
    for m, bs in s["batch"].items():
        out["batch"][m] = {b: {"tx_pps": med([r["tx_pps"] for r in rs]), "rx_pps": med([r["rx_pps"] for r in rs])}
                           for b, rs in sorted(bs.items())}
    for m, rs in s["queues"].items():
        out["queues"][m] = {"tx_pps": med([r["tx_pps"] for r in rs]), "rx_pps": med([r["rx_pps"] for r in rs])}
    out["dns"] = summarize_dns(raw)
    return out


DNS_ORDER = ["mior uring", "mior uring, MIOR_OPT_RX_PKTINFO", "mior sockets", "plain recvmmsg/sendmmsg"]


def summarize_dns(raw):
    by = {}
    for r in raw:
        if r["test"] == "dns" and not r.get("error"):
            by.setdefault(r["method"], []).append(r)
    return {m: {"qps": med([r["qps"] for r in rs]), "lat_us": med([r["lat_us"] for r in rs]),
                "lost": sum(r["lost"] for r in rs), "runs": len(rs)} for m, rs in by.items()}


def markdown_dns(sm, meta):
    d = sm.get("dns")
    if not d:
        return []
    base = d.get("plain recvmmsg/sendmmsg")
    L = [f"### DNS responder under dnsperf (loopback; 8 clients, 256 queries outstanding, {meta['seconds']:.0f} s per run)",
         "",
         "| server | queries/s | avg latency (us) | queries/s against the baseline | lost (all runs) |",
         "|---|---:|---:|---:|---:|"]
    for meth in DNS_ORDER:
        x = d.get(meth)
        if x:
            rel = f"{x['qps'][0] / base['qps'][0]:.2f}" if base else "-"
            L.append(f"| {meth} | {fmt_mmm(x['qps'])} | {fmt_mmm(x['lat_us'])} | {rel} | {x['lost']} |")
    L.append("")
    return L


def ratio(a, b):
    if not a or not b or not b[0]:
        return None
    return a[0] / b[0]


def targets(sm):
    """The issue's targets, each from the medians of this run."""
    rows = []

    def tp(env, m, k):
        return sm["pps"].get(env, {}).get(m, {}).get(k)

    # Issue 16: GSO and GRO by default.
    for env in ("veth 60", "loopback 60"):
        rx = tp(env, "mior uring udp", "rx_pps")
        loss = tp(env, "mior uring udp", "loss")
        rows.append((f"mior uring udp RX Mpps (default: GSO + GRO), {env}", rx[0] / 1e6 if rx else None, ">= 10",
                     rx is not None and rx[0] >= 10e6))
        rows.append((f"mior uring udp loss %, {env}", loss[0] if loss else None, "<= 0.10",
                     loss is not None and loss[0] <= 0.1))
        r = ratio(rx, tp(env, "sendmsg GSO/recvmsg GRO (hand)", "rx_pps"))
        rows.append((f"mior uring udp RX / hand-written sendmsg GSO + recvmsg GRO, {env}", r, ">= 1.00",
                     r is not None and r >= 1.0))
        # Context: the same hand pair whose receiver reads every datagram (mior-perf's does), and
        # mior's sender writing each batch into one slot (mior_tx_send_gso) as the hand sender does.
        seq = tp(env, "sendmsg GSO/recvmsg GRO, reading each datagram (hand)", "rx_pps")
        r = ratio(rx, seq)
        rows.append((f"(context) mior uring udp RX / hand GSO + GRO whose receiver reads each datagram, {env}", r,
                     ">= 1.00", r is not None and r >= 1.0))
        slot = tp(env, "mior uring udp (one slot per GSO send)", "rx_pps")
        for name, base in (("hand-written sendmsg GSO + recvmsg GRO", tp(env, "sendmsg GSO/recvmsg GRO (hand)", "rx_pps")),
                           ("hand GSO + GRO whose receiver reads each datagram", seq)):
            r = ratio(slot, base)
            rows.append((f"(context) mior uring udp, one slot per GSO send, RX / {name}, {env}", r, ">= 1.00",
                         r is not None and r >= 1.0))
    for env in ("veth 1500", "loopback 1500"):
        r = ratio(tp(env, "mior uring udp", "rx_pps"), tp(env, "sendmmsg/recvmmsg", "rx_pps"))
        rows.append((f"mior uring udp RX / sendmmsg/recvmmsg(64), {env}", r, ">= 3.00", r is not None and r >= 3.0))
    for env in ("veth 60", "veth 1500", "loopback 60", "loopback 1500"):
        r = ratio(tp(env, "mior sockets udp", "rx_pps"), tp(env, "mior uring udp", "rx_pps"))
        rows.append((f"mior sockets udp RX / mior uring udp RX, {env}", r, ">= 0.80", r is not None and r >= 0.8))
    for env in ("veth 60", "loopback 60"):
        r = ratio(tp(env, "sendmsg GSO -> recvmmsg (hand)", "rx_pps"), tp(env, "sendmmsg/recvmmsg", "rx_pps"))
        rows.append((f"(context) recvmmsg receiver fed by a hand GSO sender / by sendmmsg, {env}", r, ">= 0.90",
                     r is not None and r >= 0.9))
    for env in ("veth 60", "veth 1500"):
        r = ratio(tp(env, "mior uring packet", "tx_pps"), tp(env, "AF_PACKET rings", "tx_pps"))
        rows.append((f"mior uring packet TX / AF_PACKET TX_RING, {env}", r, ">= 1.00", r is not None and r >= 1.0))
    lat = sm["latency"].get("veth", {})

    def lr(m1, m2, k):
        return ratio(lat.get(m1, {}).get(k), lat.get(m2, {}).get(k))

    for k, lim, name in (("p50_us", 1.0, "p50"), ("p99_us", 1.1, "p99")):
        r = lr("mior uring busy", "sockets ping-pong busy", k)
        rows.append((f"busy-poll ping-pong {name}: mior / hand-written, veth", r, f"<= {lim:.2f}", r is not None and r <= lim))
    for k, name in (("p50_us", "p50"), ("p99_us", "p99")):
        r = lr("mior uring", "sockets ping-pong", k)
        lim = 1.0 if k == "p50_us" else 1.1
        rows.append((f"blocking ping-pong {name}: mior / hand-written, veth", r, f"<= {lim:.2f}", r is not None and r <= lim))
    # Context, not targets of the issue: the same exchange through a hand-written liburing loop
    # (what io_uring itself costs), and mior's sockets backend against the socket ping-pong.
    for busy, lim in (("", 1.1), (" busy", 1.0)):
        for k, name in (("p50_us", "p50"), ("p99_us", "p99")):
            r = lr("mior uring" + busy, "io_uring ping-pong (hand)" + busy, k)
            rows.append((f"(context) {'busy-poll' if busy else 'blocking'} ping-pong {name}: mior uring / hand-written io_uring, veth",
                         r, f"<= {lim:.2f}", r is not None and r <= lim))
        for k, name in (("p50_us", "p50"), ("p99_us", "p99")):
            r = lr("mior sockets" + busy, "sockets ping-pong" + busy, k)
            rows.append((f"(context) {'busy-poll' if busy else 'blocking'} ping-pong {name}: mior sockets / hand-written sockets, veth",
                         r, f"<= {lim:.2f}", r is not None and r <= lim))
    cpu = ratio(sm["rate"].get("mior uring udp", {}).get("cpu_per_mpkt"),
                sm["rate"].get("sendmmsg/recvmmsg", {}).get("cpu_per_mpkt"))
    rows.append(("CPU s per Mpkt at the fixed rate: mior uring / sendmmsg, veth 60", cpu, "<= 0.80", cpu is not None and cpu <= 0.8))
    rcpu = ratio(sm["rate"].get("mior uring udp", {}).get("cpu_rx_s"), sm["rate"].get("sendmmsg/recvmmsg", {}).get("cpu_rx_s"))
    rows.append(("receiver CPU s at the fixed rate: mior uring / recvmmsg, veth 60", rcpu, "<= 0.80",
                 rcpu is not None and rcpu <= 0.8))
    rss = sm["pps"].get("loopback 60", {}).get("mior uring udp", {}).get("maxrss_kb")
    rss_mib = rss[0] / 1024 if rss else None
    rows.append(("peak RSS of mior-perf, default pool (MiB, both ends in one process)", rss_mib, "<= 24",
                 rss_mib is not None and rss_mib <= 24))
    return rows


def machine():
    model, flags = "?", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        with open("/etc/debian_version") as f:
            deb = "Debian " + f.read().strip()
    except OSError:
        deb = platform.platform()
    return {"cpu": model, "vcpus": os.cpu_count(), "kernel": platform.release(), "os": deb,
            "python": platform.python_version()}


def markdown(sm, tgt, meta, notes):
    L = []
    m = meta["machine"]
    L.append(f"Machine: {m['cpu']}, {m['vcpus']} vCPUs, kernel {m['kernel']}, {m['os']}.  "
             f"{meta['runs']} run(s) of {meta['seconds']} s each per figure; median (min-max).  "
             f"RPS on the receiving veth: **{'on' if meta['rps'] else 'off'}** "
             f"({'the receive stack runs on the receiver' if meta['rps'] else 'the receive stack runs in softirq on the sender' + chr(39) + 's CPU'}).  "
             f"Sender on CPU 0, receiver on CPU 1.  Build: Release (-O3).")
    L.append("")
    L.append("### Throughput (pps)")
    L.append("")
    for key in ("veth 60", "veth 1500", "loopback 60", "loopback 1500"):
        d = sm["pps"].get(key)
        if not d:
            continue
        env, frame = key.split()
        L.append(f"**{env}, {frame}-byte frames**")
        L.append("")
        L.append("| method | TX pps | RX pps | loss % | CPU s / Mpkt (unlimited rate) |")
        L.append("|---|---:|---:|---:|---:|")
        for meth in TP_ORDER:
            if meth in d:
                x = d[meth]
                L.append(f"| {meth} | {fmt_mmm(x['tx_pps'])} | {fmt_mmm(x['rx_pps'])} | {fmt_mmm(x['loss'], digits=2)} | "
                         f"{fmt_mmm(x['cpu_per_mpkt'], digits=2)} |")
        L.append("")
    L.append("### Ping-pong latency (UDP, 18-byte payload, round trip in us)")
    L.append("")
    for env in ("veth", "loopback"):
        d = sm["latency"].get(env)
        if not d:
            continue
        L.append(f"**{env}**")
        L.append("")
        L.append("| method | p50 | p99 | p99.9 |")
        L.append("|---|---:|---:|---:|")
        for meth in LAT_ORDER:
            if meth in d:
                x = d[meth]
                L.append(f"| {meth} | {fmt_mmm(x['p50_us'], digits=1)} | {fmt_mmm(x['p99_us'], digits=1)} | "
                         f"{fmt_mmm(x['p999_us'], digits=1)} |")
        L.append("")
    L.append(f"### CPU at a fixed offered rate ({meta['rate']} pps, veth, 60-byte frames)")
    L.append("")
    L.append("| method | TX pps | RX pps | CPU s (process) | sender CPU s | receiver CPU s | CPU s / Mpkt |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for meth in TP_ORDER:
        x = sm["rate"].get(meth)
        if x:
            L.append(f"| {meth} | {fmt_mmm(x['tx_pps'])} | {fmt_mmm(x['rx_pps'])} | {fmt_mmm(x['cpu_s'], digits=2)} | "
                     f"{fmt_mmm(x['cpu_tx_s'], digits=2)} | {fmt_mmm(x['cpu_rx_s'], digits=2)} | "
                     f"{fmt_mmm(x['cpu_per_mpkt'], digits=2)} |")
    L.append("")
    L.append("CPU s is user + system time of the whole process over the whole run (warm-up and set-up "
             "included) from wait4(); per side: each program's own getrusage(RUSAGE_THREAD) of its sending "
             "and receiving thread.  The pacer sleeps at least 200 us at a time and sends what accrued "
             "(about 20 packets per wake-up at 100k pps); it never spins, so the figures are the packets' "
             "cost, not a spin loop's.")
    L.append("")
    L.append("### Scaling (veth, 60-byte frames)")
    L.append("")
    L.append("| method | queues | TX pps | RX pps |")
    L.append("|---|---:|---:|---:|")
    for meth in ("mior uring udp", "mior sockets udp"):
        one = sm["pps"].get("veth 60", {}).get(meth)
        if one:
            L.append(f"| {meth} | 1 | {fmt_mmm(one['tx_pps'])} | {fmt_mmm(one['rx_pps'])} |")
        two = sm["queues"].get(meth)
        if two:
            L.append(f"| {meth} | 2 | {fmt_mmm(two['tx_pps'])} | {fmt_mmm(two['rx_pps'])} |")
    L.append("")
    L.append("pps against batch size (medians):")
    L.append("")
    L.append("| batch | " + " | ".join(f"{m} TX / RX" for m in sm["batch"]) + " |")
    L.append("|---:|" + "---:|" * len(sm["batch"]))
    batches = sorted({b for d in sm["batch"].values() for b in d})
    for b in batches:
        cells = []
        for meth, d in sm["batch"].items():
            x = d.get(b)
            cells.append(f"{x['tx_pps'][0]:.0f} / {x['rx_pps'][0]:.0f}" if x else "-")
        L.append(f"| {b} | " + " | ".join(cells) + " |")
    L.append("")
    L += markdown_dns(sm, meta)
    L.append("### Targets (ratios of medians from this run)")
    L.append("")
    L.append("| target | measured | wanted | met |")
    L.append("|---|---:|---:|---|")
    for name, val, want, ok in tgt:
        L.append(f"| {name} | {'-' if val is None else f'{val:.2f}'} | {want} | {'yes' if ok else '**no**'} |")
    L.append("")
    if notes:
        L.append("Notes: " + "; ".join(notes) + ".")
        L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------------------------------
# Plots (gnuplot)


def plots(sm, outdir, meta):
    if not shutil.which("gnuplot"):
        return ["gnuplot is not installed: no plots"], []
    notes = []
    rps = "RPS on" if meta["rps"] else "RPS off"
    files = []
    # pps by method, one per environment and frame size.
    for key in ("veth 60", "veth 1500", "loopback 60", "loopback 1500"):
        d = sm["pps"].get(key)
        if not d:
            continue
        env, frame = key.split()
        dat = os.path.join(outdir, f"pps_{env}_{frame}.dat")
        with open(dat, "w") as f:
            for meth in TP_ORDER:
                if meth in d:
                    t, r = d[meth]["tx_pps"], d[meth]["rx_pps"]
                    f.write(f"\"{meth}\" {t[0]/1e6} {t[1]/1e6} {t[2]/1e6} {r[0]/1e6} {r[1]/1e6} {r[2]/1e6}\n")
        png = f"pps_{env}_{frame}.png"
        files.append(png)
        gp = f"""set terminal pngcairo size 900,480 font ",10" noenhanced
set output "{os.path.join(outdir, png)}"
set title "pps by method: {env}, {frame}-byte frames ({rps if env == 'veth' else 'loopback'}; median, min-max bars)"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set ylabel "Mpps"
set yrange [0:*]
set xtics rotate by -30
set grid ytics
set key top right
plot "{dat}" using 2:3:4:xtic(1) title "TX", "" using 5:6:7 title "RX"
"""
        run_gnuplot(gp, notes)
    # Latency CDF.
    for env in ("veth", "loopback"):
        d = sm["latency"].get(env)
        if not d:
            continue
        parts = []
        for i, meth in enumerate(m for m in LAT_ORDER if m in d):
            dat = os.path.join(outdir, f"cdf_{env}_{i}.dat")
            with open(dat, "w") as f:
                for us, q in d[meth]["cdf"]:
                    if us and us > 0:
                        f.write(f"{us} {q}\n")
            style = "linespoints pt 7 ps 0.6" if meth.startswith("mior") or meth.startswith("sockperf") else "lines"
            parts.append(f'"{dat}" using 1:2 with {style} lw 2 title "{meth}"')
        png = f"latency_cdf_{env}.png"
        files.append(png)
        gp = f"""set terminal pngcairo size 900,480 font ",10" noenhanced
set output "{os.path.join(outdir, png)}"
set title "ping-pong round trip CDF: {env} (median run; mior-perf and sockperf give percentiles only)"
set logscale x
set xlabel "round trip (us)"
set ylabel "fraction of round trips"
set yrange [0:1.01]
set grid
set key bottom right
plot {", ".join(parts)}
"""
        run_gnuplot(gp, notes)
    # pps against batch size.
    if sm["batch"]:
        parts = []
        for i, (meth, d) in enumerate(sm["batch"].items()):
            dat = os.path.join(outdir, f"batch_{i}.dat")
            with open(dat, "w") as f:
                for b, x in sorted(d.items()):
                    f.write(f"{b} {x['tx_pps'][0]/1e6} {x['rx_pps'][0]/1e6}\n")
            parts.append(f'"{dat}" using 1:2 with linespoints lw 2 title "{meth} TX"')
            parts.append(f'"{dat}" using 1:3 with linespoints lw 2 dt 2 title "{meth} RX"')
        png = "pps_batch.png"
        files.append(png)
        gp = f"""set terminal pngcairo size 900,480 font ",10" noenhanced
set output "{os.path.join(outdir, png)}"
set title "pps against batch size: veth, 60-byte frames ({rps}; medians)"
set logscale x 2
set xlabel "batch (packets per submit / per system call)"
set ylabel "Mpps"
set yrange [0:*]
set grid
set key bottom right
plot {", ".join(parts)}
"""
        run_gnuplot(gp, notes)
    return notes, files


def run_gnuplot(script, notes):
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True, timeout=60)
    if r.returncode != 0:
        notes.append("gnuplot failed: " + r.stderr.strip()[-200:])


# ------------------------------------------------------------------------------------------


def write_docs(src, outdir, files, md, meta, command):
    perf_dir = os.path.join(src, "docs", "perf")
    os.makedirs(perf_dir, exist_ok=True)
    for f in files:
        shutil.copy(os.path.join(outdir, f), os.path.join(perf_dir, f))
    tpl_path = os.path.join(src, "bench", "PERFORMANCE.md.in")
    with open(tpl_path) as f:
        tpl = f.read()
    imgs = "\n\n".join(f"![{f[:-4]}](perf/{f})" for f in files)
    text = (tpl.replace("@DATE@", meta["date"]).replace("@COMMAND@", command).replace("@TABLE@", md)
            .replace("@PLOTS@", imgs).replace("@COMMIT@", meta["commit"]))
    with open(os.path.join(src, "docs", "PERFORMANCE.md"), "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description="mior side-by-side benchmark (see docs/PERFORMANCE.md)")
    ap.add_argument("--build", required=True, help="build directory with mior-perf and bench/")
    ap.add_argument("--src", required=True, help="source tree")
    ap.add_argument("--quick", action="store_true", help="1 run of 1 s each, shorter sweeps (< 3 min)")
    ap.add_argument("--runs", type=int, help="runs per figure (default 5, quick 1)")
    ap.add_argument("--seconds", type=float, help="measured seconds per run (default 3, quick 1)")
    ap.add_argument("--rate", type=int, default=100000, help="offered rate for the CPU test (pps)")
    ap.add_argument("--rps", action="store_true", help="set RPS on the receiving veth")
    ap.add_argument("--out", help="output directory (default bench/results/<date>)")
    ap.add_argument("--docs", action="store_true", help="also write docs/PERFORMANCE.md and docs/perf/*.png")
    ap.add_argument("--only", type=lambda v: set(v.split(",")), default=set(),
                    help="run only these sections, comma separated: pps, latency, rate, batch, queues, dns")
    a = ap.parse_args()
    a.runs = a.runs or (1 if a.quick else 5)
    a.seconds = a.seconds or (1.0 if a.quick else 3.0)
    if not (1 <= a.runs <= 50 and 0.2 <= a.seconds <= 60):
        ap.error("--runs 1..50, --seconds 0.2..60")
    date = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    outdir = a.out or os.path.join(a.src, "bench", "results", date)
    os.makedirs(outdir, exist_ok=True)
    a.out_dir = outdir
    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    signal.signal(signal.SIGHUP, on_sigint)
    command = "sudo bench/run.sh " + " ".join(
        x for x in sys.argv[1:] if not x.startswith("--build") and not x.startswith("--src")
        and x not in (a.build, a.src))
    commit = subprocess.run(["git", "-C", a.src, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    meta = {"date": date, "runs": a.runs, "seconds": a.seconds, "rps": a.rps, "rate": a.rate,
            "machine": machine(), "command": command.strip(), "commit": commit}
    print(f"bench: {a.runs} run(s) x {a.seconds} s, RPS {'on' if a.rps else 'off'}, output {outdir}")
    b = Bench(a)
    t0 = time.monotonic()
    status = 0
    try:
        b.run()
    except Interrupted:
        print("bench: interrupted; writing what was measured")
        status = 130
    finally:
        cleanup_namespaces()
    meta["elapsed_s"] = round(time.monotonic() - t0, 1)
    sm = summarize(b.raw)
    tgt = targets(sm)
    pnotes, files = plots(sm, outdir, meta) if b.raw else ([], [])
    notes = b.notes + pnotes
    md = markdown(sm, tgt, meta, notes)
    with open(os.path.join(outdir, "table.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "summary": sm, "targets": [{"target": n, "measured": v, "wanted": w, "met": ok}
                                                            for n, v, w, ok in tgt],
                   "notes": notes, "runs": b.raw}, f, indent=1, default=str)
    print()
    print(md)
    print(f"bench: {meta['elapsed_s']} s; wrote {outdir}/table.md, results.json and {len(files)} plots")
    if a.docs and status == 0:
        write_docs(a.src, outdir, files, md, meta, meta["command"])
        print("bench: wrote docs/PERFORMANCE.md and docs/perf/*.png")
    return status


if __name__ == "__main__":
    sys.exit(main())
