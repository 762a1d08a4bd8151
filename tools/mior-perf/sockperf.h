/* mior-perf server / client: sockperf's UDP protocol (sockperf.c). */
#ifndef MIOR_PERF_SOCKPERF_H
#define MIOR_PERF_SOCKPERF_H

/* argv[0] is "server" or "client"; returns the exit status. */
int mior_perf_sockperf(int argc, char **argv);

#endif
