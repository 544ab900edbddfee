// SPDX-License-Identifier: GPL-2.0
/*
 * Named regions: creation within the limits (limits.c) in the caller's
 * namespace (ns.c), replacing a dead creator's region, lookup and
 * permission checks on attach, mapping into user space, and freeing when
 * the last file is gone.
 */
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "compat.h"
#include "memlink_internal.h"

/* What ml_lock protects: memlink_internal.h. */
DEFINE_MUTEX(ml_lock);
static atomic_long_t ml_pages_allocated = ATOMIC_LONG_INIT(0);

long ml_pages_held(void)
{
	return atomic_long_read(&ml_pages_allocated);
}

static bool ml_name_ok(const char *name)
{
	size_t len = strnlen(name, MEMLINK_NAME_MAX);
	size_t i;

	if (len == 0 || len == MEMLINK_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char ch = name[i];

		/* isalnum() alone would take Latin-1 letters too. */
		if (!isascii(ch) || (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-'))
			return false;
	}
	return true;
}

static struct ml_region *ml_lookup(struct ml_ns *ns, const char *name)
{
	struct ml_region *r;

	lockdep_assert_held(&ml_lock);
	list_for_each_entry(r, &ns->regions, node)
		if (r->hashed && !strcmp(r->name, name))
			return r;
	return NULL;
}

static bool ml_creator_alive(struct ml_region *r)
{
	bool alive;

	spin_lock(&r->lock);
	alive = r->creator_alive;
	spin_unlock(&r->lock);
	return alive;
}

static void ml_free_pages(struct page **pages, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		if (!pages[i])
			break;
		__free_page(pages[i]);
		atomic_long_dec(&ml_pages_allocated);
	}
	kvfree(pages);
}

/*
 * Zeroed pages, charged to the caller's memory cgroup. Under memory
 * pressure the allocation fails (ENOMEM) rather than calling the OOM
 * killer: the caller asked for a region, not for another process's death.
 */
#define ML_GFP (GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

static struct page **ml_alloc_pages(unsigned long n)
{
	struct page **pages;
	unsigned long i;

	pages = kvcalloc(n, sizeof(*pages), ML_GFP);
	if (!pages)
		return NULL;
	for (i = 0; i < n; i++) {
		pages[i] = alloc_page(ML_GFP | __GFP_ZERO);
		if (!pages[i])
			goto fail;
		atomic_long_inc(&ml_pages_allocated);
		if (fatal_signal_pending(current))
			goto fail;
		if (!(i % 1024))
			cond_resched();
	}
	return pages;
fail:
	ml_free_pages(pages, n);
	return NULL;
}

/*
 * May the caller create `c` in `ns` now? 0, -EEXIST (taken, by a live
 * creator or without REPLACE), -EACCES (REPLACE of another user's dead
 * region without CAP_IPC_OWNER in the namespace). *old: the region a
 * REPLACE would unname, or NULL.
 */
static int ml_may_create(struct ml_ns *ns, const struct memlink_create *c,
			 struct ml_region **old)
{
	struct ml_region *r;

	lockdep_assert_held(&ml_lock);
	*old = NULL;
	r = ml_lookup(ns, c->name);
	if (!r)
		return 0;
	if (!(c->flags & MEMLINK_CREATE_REPLACE) || ml_creator_alive(r))
		return -EEXIST;
	if (!uid_eq(r->uid, current_euid()) && !ns_capable(ns->user_ns, CAP_IPC_OWNER))
		return -EACCES;
	*old = r;
	return 0;
}

static void ml_region_free(struct ml_region *r)
{
	ml_free_pages(r->pages, r->npages);
	kfree(r);
}

#define ML_CREATE_FLAGS (MEMLINK_CREATE_REPLACE | MEMLINK_CREATE_ONCE | \
			 MEMLINK_CREATE_SEALED | MEMLINK_CREATE_BELL)

int ml_region_create(struct ml_file *mf, const struct memlink_create *c)
{
	u64 max_size = READ_ONCE(ml_max_region_size);
	struct ml_region *r, *old;
	struct ml_limits lim;
	struct ml_user *user;
	struct ml_ns *ns;
	int ret;

	if (c->flags & ~ML_CREATE_FLAGS || c->__reserved || !ml_name_ok(c->name) ||
	    !c->region_size || !PAGE_ALIGNED(c->region_size) || c->mode & ~0777)
		return -EINVAL;
	if (c->flags & MEMLINK_CREATE_BELL ?
	    c->bell_offset & 3 || c->bell_offset > c->region_size - sizeof(u32) :
	    c->bell_offset)
		return -EINVAL;
	if (c->region_size > max_size)
		return -ENOSPC;

	/*
	 * Fail fast on the name, and charge the limits, before allocating:
	 * concurrent creations never hold more than the limits.
	 */
	ml_limits_read(&lim);
	mutex_lock(&ml_lock);
	ns = ml_ns_current(true);
	if (!ns) {
		mutex_unlock(&ml_lock);
		return -ENOMEM;
	}
	ret = ml_may_create(ns, c, &old);
	if (!ret)
		ret = ml_charge(&lim, current_euid(), c->region_size, &user);
	if (ret)
		ml_ns_put(ns);
	mutex_unlock(&ml_lock);
	if (ret)
		return ret;

	ret = -ENOMEM;
	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		goto uncharge;
	r->npages = c->region_size >> PAGE_SHIFT;
	r->pages = ml_alloc_pages(r->npages);
	if (!r->pages) {
		kfree(r);
		goto uncharge;
	}
	kref_init(&r->ref);
	strscpy(r->name, c->name, sizeof(r->name));
	r->size = c->region_size;
	r->uid = current_euid();
	r->gid = current_egid();
	r->mode = c->mode;
	r->cflags = c->flags & ~MEMLINK_CREATE_REPLACE;
	r->bell_offset = c->bell_offset;
	r->ns = ns;
	r->user = user;
	spin_lock_init(&r->lock);
	INIT_LIST_HEAD(&r->waiters);
	INIT_LIST_HEAD(&r->files);
	list_add(&mf->node, &r->files);
	r->attached = 1;
	r->creator_alive = true;

	/* The name may have been taken (or its creator died) meanwhile. */
	mutex_lock(&ml_lock);
	ret = ml_may_create(ns, c, &old);
	if (ret) {
		mutex_unlock(&ml_lock);
		ml_region_free(r);
		goto uncharge;
	}
	/* Only now that the new region is in: the old one loses its name. */
	if (old)
		old->hashed = false;
	r->hashed = true;
	list_add_tail(&r->node, &ns->regions);
	mutex_unlock(&ml_lock);

	mf->creator = true;
	/* Publish the binding after the fields above (pairs with ml_bound()). */
	smp_store_release(&mf->region, r);
	return 0;

uncharge:
	mutex_lock(&ml_lock);
	ml_uncharge(user, c->region_size);
	ml_ns_put(ns);
	mutex_unlock(&ml_lock);
	return ret;
}

/*
 * System V IPC rules: owner, then group, then others; CAP_IPC_OWNER in the
 * namespace's user namespace wins. `audit`: a real access, not a listing.
 */
static bool ml_may_attach(struct ml_region *r, bool rdonly, bool audit)
{
	int need = rdonly ? 4 : 6;
	int granted = r->mode;

	if (uid_eq(current_euid(), r->uid))
		granted >>= 6;
	else if (in_group_p(r->gid))
		granted >>= 3;
	if (!(need & ~granted & 7))
		return true;
	return audit ? ns_capable(r->ns->user_ns, CAP_IPC_OWNER) :
		       ns_capable_noaudit(r->ns->user_ns, CAP_IPC_OWNER);
}

/* May the caller see `r` in a listing: could it attach read-only? */
bool ml_region_visible(struct ml_region *r)
{
	return ml_may_attach(r, true, false);
}

int ml_region_attach(struct ml_file *mf, struct memlink_attach *a)
{
	bool rdonly = a->flags & MEMLINK_ATTACH_RDONLY;
	struct ml_region *r = NULL;
	struct ml_ns *ns;
	int ret = 0;

	if (a->flags & ~MEMLINK_ATTACH_RDONLY || !ml_name_ok(a->name))
		return -EINVAL;

	mutex_lock(&ml_lock);
	ns = ml_ns_current(false);
	if (ns) {
		r = ml_lookup(ns, a->name);
		ml_ns_put(ns);		/* a found region holds it */
	}
	if (!r) {
		ret = -ENOENT;
	} else if (!ml_may_attach(r, rdonly, true)) {
		ret = -EACCES;
	} else {
		spin_lock(&r->lock);
		if (!r->creator_alive) {
			ret = -EPIPE;
		} else if (r->cflags & MEMLINK_CREATE_SEALED && !rdonly) {
			ret = -EPERM;
		} else if (r->cflags & MEMLINK_CREATE_ONCE && r->taken) {
			ret = -EBUSY;
		} else {
			r->taken = true;
			kref_get(&r->ref);
			r->attached++;
			mf->seen_wakes = r->wakes;
			mf->seen_detached = r->detached;
			mf->rdonly = rdonly;
			/*
			 * Bound before a wake can reach the file's poll queue:
			 * a poll it wakes sees the region (pairs with
			 * ml_bound()).
			 */
			smp_store_release(&mf->region, r);
			list_add(&mf->node, &r->files);
		}
		spin_unlock(&r->lock);
	}
	mutex_unlock(&ml_lock);
	if (ret)
		return ret;
	a->region_size = r->size;
	return 0;
}

/*
 * Called by kref_put_mutex() with ml_lock held; drops it. The charge goes
 * back only once the pages are freed: a creation it lets in never holds
 * pages alongside ours beyond the limits.
 */
static void ml_region_release(struct kref *ref)
{
	struct ml_region *r = container_of(ref, struct ml_region, ref);
	struct ml_user *user = r->user;
	u64 size = r->size;

	list_del(&r->node);
	ml_ns_put(r->ns);
	mutex_unlock(&ml_lock);
	ml_region_free(r);
	mutex_lock(&ml_lock);
	ml_uncharge(user, size);
	mutex_unlock(&ml_lock);
}

/* The file is going away: tell the others, then drop its reference. */
void ml_region_unbind(struct ml_file *mf)
{
	struct ml_region *r = mf->region;

	if (mf->creator)
		ml_wake_creator_gone(r, mf);
	else
		ml_wake_client_gone(r, mf);
	kref_put_mutex(&r->ref, ml_region_release, &ml_lock);
}

bool ml_region_offset_ok(struct ml_region *r, u64 offset)
{
	return !(offset & 3) && offset <= r->size - sizeof(u32);
}

/* Read a word user space may be changing: one load, like futex does. */
u32 ml_region_word(struct ml_region *r, u64 offset)
{
	u32 *p = kmap_local_page(r->pages[offset >> PAGE_SHIFT]);
	u32 val = READ_ONCE(p[offset_in_page(offset) / sizeof(u32)]);

	kunmap_local(p);
	return val;
}

/*
 * Add 1 to a word user space may be reading or changing: an atomic add on
 * the page, as user space's own would be. Under r->lock, so a waiter that
 * compared the old value is on the list the caller wakes next.
 */
void ml_region_bump(struct ml_region *r, u64 offset)
{
	u32 *p = kmap_local_page(r->pages[offset >> PAGE_SHIFT]);

	lockdep_assert_held(&r->lock);
	atomic_inc((atomic_t *)&p[offset_in_page(offset) / sizeof(u32)]);
	kunmap_local(p);
}

static vm_fault_t ml_vm_fault(struct vm_fault *vmf)
{
	struct ml_file *mf = vmf->vma->vm_file->private_data;
	struct ml_region *r = mf->region;
	struct page *page;

	if (vmf->pgoff >= r->npages)
		return VM_FAULT_SIGBUS;
	page = r->pages[vmf->pgoff];
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct ml_vm_ops = {
	.fault = ml_vm_fault,
};

int ml_region_mmap(struct ml_file *mf, struct vm_area_struct *vma)
{
	struct ml_region *r = mf->region;
	unsigned long pages = vma_pages(vma);

	/* VM_MAYSHARE: a MAP_SHARED mapping of an O_RDONLY file lacks VM_SHARED. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (mf->rdonly && (vma->vm_flags & VM_WRITE))
		return -EACCES;
	if (vma->vm_pgoff >= r->npages || pages > r->npages - vma->vm_pgoff)
		return -EINVAL;

	ml_vm_flags_clear(vma, VM_MAYEXEC | (mf->rdonly ? VM_MAYWRITE : 0));
	ml_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &ml_vm_ops;
	return 0;
}

void ml_region_info(struct ml_region *r, struct memlink_info *info)
{
	info->size = sizeof(*info);
	info->flags = 0;
	info->region_size = r->size;
	info->uid = from_kuid_munged(current_user_ns(), r->uid);
	info->gid = from_kgid_munged(current_user_ns(), r->gid);
	info->mode = r->mode;
	strscpy(info->name, r->name, sizeof(info->name));
	spin_lock(&r->lock);
	info->attached = r->attached;
	info->waiters = r->nwaiters;
	info->creator_alive = r->creator_alive;
	info->wakes = r->wakes;
	info->detached = r->detached;
	spin_unlock(&r->lock);
}
