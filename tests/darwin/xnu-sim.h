/* SPDX-License-Identifier: MIT */
/*
 * The xnu simulation of the darwin-sim build (xnu-shm-linux.c): what the
 * tests of tests/darwin/ can ask of it.
 */
#ifndef ML_XNU_SIM_H
#define ML_XNU_SIM_H

/* The lock directory the darwin backend uses (lib/darwin/darwin.c). */
#define XNU_SIM_LOCK_DIR "/var/tmp"

/*
 * Test hooks, NULL unless a test sets them: called after every stat(),
 * and before every link() and after every one that worked, of a path in
 * the lock directory, outside the simulation's own lock, so that they may
 * call anything.
 */
extern void (*xnu_sim_after_stat)(const char *path);
extern void (*xnu_sim_before_link)(const char *path);
extern void (*xnu_sim_after_link)(const char *path);

#endif
