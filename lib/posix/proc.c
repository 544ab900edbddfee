// SPDX-License-Identifier: MIT
#include <sched.h>
#include <unistd.h>

#include "backend.h"

int ml__os_pid(void)
{
	return (int)getpid();
}

void ml__os_yield(void)
{
	sched_yield();
}
