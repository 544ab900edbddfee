/* SPDX-License-Identifier: MIT */
#ifndef BENCH_PEERS_H
#define BENCH_PEERS_H

#include <stdio.h>

/* memlink-bench peers (argv[0] is the subcommand). */
int bench_peers_main(int argc, char **argv);
void bench_peers_usage(FILE *f);

#endif
