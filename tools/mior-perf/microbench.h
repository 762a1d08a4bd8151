/* mior-perf microbench: the no-network self-benchmark (buffer pool and checksum on this CPU). */
#ifndef MIOR_PERF_MICROBENCH_H
#define MIOR_PERF_MICROBENCH_H

/* Run `mior-perf microbench [--seconds N] [--json]`.  argv[0] is the subcommand's own name
 * ("microbench"); the options follow it, as for a main().  Prints a table (or one JSON object with
 * --json) on stdout and returns the process exit code: 0 done, 1 a measurement failed (a pool call
 * failed or a checksum implementation disagreed with the scalar reference), 2 bad usage. */
int mior_perf_microbench(int argc, char **argv);

#endif /* MIOR_PERF_MICROBENCH_H */
