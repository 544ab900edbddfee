/* SPDX-License-Identifier: MIT */
/* `memlink-bench ring`: memlink's ring against a baseline SPSC ring. */
#ifndef BENCH_RING_H
#define BENCH_RING_H

#include <stdio.h>

/* argv[0] is "ring". Returns the process exit status. */
int bench_ring_main(int argc, char **argv);
void bench_ring_usage(FILE *f);

#endif /* BENCH_RING_H */
