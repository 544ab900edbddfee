// SPDX-License-Identifier: GPL-2.0
/* /proc/memlink: one line per named region, for memlink-stat and humans. */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#include "memlink_internal.h"

static int ml_proc_show(struct seq_file *m, void *v)
{
	ml_regions_show(m);
	return 0;
}

int ml_procfs_init(void)
{
	return proc_create_single("memlink", 0444, NULL, ml_proc_show) ? 0 : -ENOMEM;
}

void ml_procfs_exit(void)
{
	remove_proc_entry("memlink", NULL);
}
