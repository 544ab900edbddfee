// SPDX-License-Identifier: MIT
/* Asymmetric fences on Linux: membarrier(2), MEMBARRIER_CMD_GLOBAL_EXPEDITED. */
#include <errno.h>
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

/*
 * The process that registered (0: none yet) and the answer, asked again in
 * a fork()ed child, which opens its own handles: 1 registered, -1 not
 * possible here (old kernel, seccomp). Asked when a handle opens; the first
 * registration of a threaded process waits for an RCU grace period (a few
 * ms), once.
 */
static _Atomic int reg_pid, reg_answer;

bool ml__os_fence_register(void)
{
	int pid = (int)getpid(), r;
	long q;

	if (atomic_load_explicit(&reg_pid, memory_order_acquire) == pid)
		return atomic_load_explicit(&reg_answer, memory_order_relaxed) > 0;
	q = membarrier(MEMBARRIER_CMD_QUERY);
	r = q >= 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
	    membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0 ? 1 : -1;
	atomic_store_explicit(&reg_answer, r, memory_order_relaxed);
	atomic_store_explicit(&reg_pid, pid, memory_order_release);
	return r > 0;
}

int ml__os_fence_remote(void)
{
	return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) ? -errno : 0;
}
