/* SPDX-License-Identifier: MIT */
/* memlink-stat's parts. */
#ifndef ML_STAT_H
#define ML_STAT_H

#include <stdbool.h>

/* --regions: list memlink.ko's regions; the exit status. */
int ml_stat_regions(bool json);

#endif
