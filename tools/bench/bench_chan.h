/* SPDX-License-Identifier: MIT */
#ifndef BENCH_CHAN_H
#define BENCH_CHAN_H

#include <stdio.h>

/* memlink-bench rtt | tput (argv[0] is the subcommand). */
int bench_chan_main(int argc, char **argv);
void bench_chan_usage(FILE *f);

#endif
