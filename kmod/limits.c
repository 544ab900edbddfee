// SPDX-License-Identifier: GPL-2.0
/*
 * What regions may take: module-wide (bytes, count) and per user (bytes,
 * count of the regions a uid created). A creation is charged under ml_lock
 * before a page is allocated and the charge is given back if it fails, so
 * concurrent creations can never hold more than the limits together.
 *
 * Per-user limits rather than RLIMIT_MEMLOCK or shmem-backed pages: the
 * pages are pinned, zeroed and charged to the creator's memory cgroup
 * (GFP_KERNEL_ACCOUNT), which bounds a container; these limits bound one
 * user on the host. RLIMIT_MEMLOCK defaults to 8 MiB, less than one
 * channel's rings of a busy daemon. Swappable shmem pages would put a
 * major fault on the message path, and a waiter compares its word under a
 * spinlock, where a page that may be swapped out cannot be read.
 */
#include <linux/slab.h>

#include "memlink_internal.h"

/* All under ml_lock. */
static LIST_HEAD(ml_users);
static unsigned int ml_nregions;
static u64 ml_total_bytes;

void ml_limits_read(struct ml_limits *l)
{
	l->max_total = READ_ONCE(ml_max_total_size);
	l->max_regions = READ_ONCE(ml_max_regions);
	l->max_user_bytes = READ_ONCE(ml_max_user_bytes);
	l->max_user_regions = READ_ONCE(ml_max_user_regions);
}

static struct ml_user *ml_user_find(kuid_t uid)
{
	struct ml_user *u;

	lockdep_assert_held(&ml_lock);
	list_for_each_entry(u, &ml_users, node)
		if (uid_eq(u->uid, uid))
			return u;
	return NULL;
}

/* Would `add` more on top of `used` pass `max` (0: no limit)? */
static bool ml_over(u64 used, u64 add, u64 max)
{
	return max && (add > max || used > max - add);
}

/*
 * Charge one region of `bytes` to `uid` and to the module: 0 and the
 * user's record in *out, -ENOSPC over a limit, -ENOMEM. Under ml_lock.
 */
int ml_charge(const struct ml_limits *l, kuid_t uid, u64 bytes, struct ml_user **out)
{
	struct ml_user *u;

	lockdep_assert_held(&ml_lock);
	/* The module-wide limits are never 0 = unlimited: 0 admits nothing. */
	if (ml_nregions >= l->max_regions || bytes > l->max_total ||
	    ml_total_bytes > l->max_total - bytes)
		return -ENOSPC;
	u = ml_user_find(uid);
	if (u && (ml_over(u->regions, 1, l->max_user_regions) ||
		  ml_over(u->bytes, bytes, l->max_user_bytes)))
		return -ENOSPC;
	if (!u) {
		if (ml_over(0, 1, l->max_user_regions) ||
		    ml_over(0, bytes, l->max_user_bytes))
			return -ENOSPC;
		u = kzalloc(sizeof(*u), GFP_KERNEL);
		if (!u)
			return -ENOMEM;
		u->uid = uid;
		list_add_tail(&u->node, &ml_users);
	}
	u->regions++;
	u->bytes += bytes;
	ml_nregions++;
	ml_total_bytes += bytes;
	*out = u;
	return 0;
}

/* Give a charge back; a user charged for nothing is forgotten. */
void ml_uncharge(struct ml_user *u, u64 bytes)
{
	lockdep_assert_held(&ml_lock);
	u->regions--;
	u->bytes -= bytes;
	ml_nregions--;
	ml_total_bytes -= bytes;
	if (!u->regions) {
		list_del(&u->node);
		kfree(u);
	}
}

void ml_charged(kuid_t uid, unsigned int *regions, u64 *bytes)
{
	struct ml_user *u;

	lockdep_assert_held(&ml_lock);
	u = ml_user_find(uid);
	*regions = u ? u->regions : 0;
	*bytes = u ? u->bytes : 0;
}

void ml_charged_all(unsigned int *regions, u64 *bytes)
{
	lockdep_assert_held(&ml_lock);
	*regions = ml_nregions;
	*bytes = ml_total_bytes;
}
