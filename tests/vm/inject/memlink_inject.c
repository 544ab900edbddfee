// SPDX-License-Identifier: GPL-2.0
/*
 * memlink_inject.ko: deliberate bugs for `make vm-check-debug-selftest`, which
 * boots the debug kernel with this module and passes only when the VM
 * runner reports each of them. Never part of memlink.ko.
 *
 * bugs= picks them (default: all), in this order, since a KASAN report
 * turns lockdep off:
 *   lockdep  take two mutexes in both orders: a possible circular locking
 *            dependency (no real deadlock: one thread)
 *   sleep    kmalloc(GFP_KERNEL) under a spinlock: sleeping in atomic context
 *   oob      write one byte past a kmalloc()ed object: slab-out-of-bounds
 *   leak     kmalloc() objects and drop every pointer: kmemleak reports them
 *   unload_leak  keep a kmalloc()ed object in a static pointer and never
 *            free it: a leak kmemleak sees only once the module is gone
 *            (its frames are then bare addresses)
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

static char *bugs = "lockdep,sleep,oob,leak,unload_leak";
module_param(bugs, charp, 0444);
MODULE_PARM_DESC(bugs, "Comma-separated bugs to commit at load: lockdep,sleep,oob,leak,unload_leak");

#define INJECT_LEAKS 8

static DEFINE_MUTEX(inject_a);
static DEFINE_MUTEX(inject_b);
static DEFINE_SPINLOCK(inject_lock);
static void *inject_stash;

static bool wanted(const char *bug)
{
	size_t n = strlen(bug);
	const char *p = bugs;

	while (p && *p) {
		if (!strncmp(p, bug, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

static noinline void inject_lockdep(void)
{
	mutex_lock(&inject_a);
	mutex_lock(&inject_b);
	mutex_unlock(&inject_b);
	mutex_unlock(&inject_a);
	mutex_lock(&inject_b);
	mutex_lock(&inject_a);
	mutex_unlock(&inject_a);
	mutex_unlock(&inject_b);
}

static noinline void inject_sleep(void)
{
	void *p;

	/* GFP_KERNEL may sleep: might_sleep() reports it even when it does not. */
	spin_lock(&inject_lock);
	p = kmalloc(32, GFP_KERNEL);
	spin_unlock(&inject_lock);
	kfree(p);
}

/* A parameter, so the compiler cannot see the overflow coming. */
static uint oob_size = 20;
module_param(oob_size, uint, 0444);
MODULE_PARM_DESC(oob_size, "Size of the object the oob bug writes one byte past");

static noinline void inject_oob(void)
{
	size_t size = oob_size;
	char *p = kmalloc(size, GFP_KERNEL);

	if (!p)
		return;
	p[size] = 'x';
	kfree(p);
}

static noinline void inject_leak(void)
{
	int i;

	/* Several, so that a stale copy of one pointer cannot hide them all. */
	for (i = 0; i < INJECT_LEAKS; i++) {
		char *p = kmalloc(64, GFP_KERNEL);

		if (p)
			strscpy(p, "memlink_inject: leaked on purpose", 64);
	}
}

static int __init inject_init(void)
{
	pr_info("memlink_inject: committing %s\n", bugs);
	if (wanted("lockdep"))
		inject_lockdep();
	if (wanted("sleep"))
		inject_sleep();
	if (wanted("oob"))
		inject_oob();
	if (wanted("leak"))
		inject_leak();
	if (wanted("unload_leak"))
		inject_stash = kmalloc(96, GFP_KERNEL);
	return 0;
}

static void __exit inject_exit(void)
{
	/* Not freed: that is the unload_leak bug (the read keeps the store). */
	if (inject_stash)
		pr_info("memlink_inject: unloading, leaking %p\n", inject_stash);
}

module_init(inject_init);
module_exit(inject_exit);

MODULE_DESCRIPTION("memlink test-only module: deliberate bugs for the debug kernel's detectors");
MODULE_LICENSE("GPL");
