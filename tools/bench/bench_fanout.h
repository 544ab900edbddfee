/* SPDX-License-Identifier: MIT */
#ifndef BENCH_FANOUT_H
#define BENCH_FANOUT_H

#include <stdio.h>

/* memlink-bench fanout (argv[0] is the subcommand). */
int bench_fanout_main(int argc, char **argv);
void bench_fanout_usage(FILE *f);

#endif
