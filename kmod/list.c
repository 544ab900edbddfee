// SPDX-License-Identifier: GPL-2.0
/*
 * MEMLINK_IOC_LIST, the listing of live regions (like ipcs): only the
 * caller's IPC namespace, and only the regions the caller could attach
 * read-only. It replaces the old world-readable /proc/memlink, which
 * showed every region of the machine to everyone.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "memlink_internal.h"

#define ML_LIST_MIN_ENTRY offsetofend(struct memlink_info, name)

/* Fill up to `room` entries of the caller's namespace; the number listable. */
static u32 ml_list_fill(struct memlink_info *out, u32 room, u32 *count)
{
	struct ml_region *r;
	struct ml_ns *ns;
	u32 total = 0;

	lockdep_assert_held(&ml_lock);
	*count = 0;
	ns = ml_ns_current(false);
	if (!ns)
		return 0;
	list_for_each_entry(r, &ns->regions, node) {
		if (!r->hashed || !ml_region_visible(r))
			continue;
		if (*count < room)
			ml_region_info(r, &out[(*count)++]);
		total++;
	}
	ml_ns_put(ns);
	return total;
}

static int ml_list_copy(const struct memlink_list *l, const struct memlink_info *in,
			u32 count)
{
	u8 __user *dst = u64_to_user_ptr(l->entries);
	size_t n = min_t(size_t, l->entry_size, sizeof(*in));
	u32 i;

	for (i = 0; i < count; i++, dst += l->entry_size) {
		struct memlink_info e = in[i];

		/* Each entry's size says how much of it the kernel filled. */
		e.size = n;
		if (copy_to_user(dst, &e, n))
			return -EFAULT;
		if (l->entry_size > n && clear_user(dst + n, l->entry_size - n))
			return -EFAULT;
	}
	return 0;
}

long ml_list(void __user *uarg, const struct memlink_list *l)
{
	struct memlink_list out = *l;
	struct memlink_info *buf = NULL;
	u32 room = 0, nregions;
	u64 bytes;
	long ret;

	/* The out fields may hold a previous call's answer: ignored. */
	if (l->flags || l->__reserved || l->__reserved2)
		return -EINVAL;
	if (l->max_entries && (l->entry_size < ML_LIST_MIN_ENTRY || l->entry_size > PAGE_SIZE ||
			       !l->entries))
		return -EINVAL;
	out.all_regions = 0;
	out.all_bytes = 0;
	out.all_pages = 0;

	/*
	 * Sized and filled under one hold of ml_lock, so that the array is
	 * as full as the room and the regions allow (no region can come in
	 * between).
	 */
	mutex_lock(&ml_lock);
	if (l->max_entries) {
		ml_charged_all(&nregions, &bytes);
		room = min(l->max_entries, nregions);
		if (room) {
			buf = kvcalloc(room, sizeof(*buf), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
			if (!buf) {
				mutex_unlock(&ml_lock);
				return -ENOMEM;
			}
		}
	}
	out.total = ml_list_fill(buf, room, &out.count);
	ml_charged(current_euid(), &out.user_regions, &out.user_bytes);
	if (capable(CAP_SYS_ADMIN)) {
		ml_charged_all(&out.all_regions, &out.all_bytes);
		out.all_pages = ml_pages_held();
	}
	mutex_unlock(&ml_lock);

	ret = ml_list_copy(l, buf, out.count);
	kvfree(buf);
	if (ret)
		return ret;
	return copy_to_user(uarg, &out, min_t(size_t, l->size, sizeof(out))) ? -EFAULT : 0;
}
