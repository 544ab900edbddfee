// SPDX-License-Identifier: GPL-2.0
/*
 * Named regions: creation within the module limits, lookup and permission
 * checks on attach, mapping into user space, and freeing when the last file
 * is gone.
 */
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "compat.h"
#include "memlink_internal.h"

/* ml_regions_lock protects ml_regions, ml_nregions and ml_total_bytes. */
static DEFINE_MUTEX(ml_regions_lock);
static LIST_HEAD(ml_regions);
static unsigned int ml_nregions;	/* live regions, named or not */
static u64 ml_total_bytes;		/* their sizes */
static atomic_long_t ml_pages_allocated = ATOMIC_LONG_INIT(0);

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

static struct ml_region *ml_lookup(const char *name)
{
	struct ml_region *r;

	lockdep_assert_held(&ml_regions_lock);
	list_for_each_entry(r, &ml_regions, node)
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

/* Zeroed pages, charged to the caller's memory cgroup. */
static struct page **ml_alloc_pages(unsigned long n)
{
	struct page **pages;
	unsigned long i;

	pages = kvcalloc(n, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages)
		return NULL;
	for (i = 0; i < n; i++) {
		pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
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

/* Check name and limits; with replace, unname a region whose creator died. */
static int ml_admit(const struct memlink_create *c)
{
	struct ml_region *old;

	lockdep_assert_held(&ml_regions_lock);
	old = ml_lookup(c->name);
	if (old && (!(c->flags & MEMLINK_CREATE_REPLACE) || ml_creator_alive(old)))
		return -EEXIST;
	if (ml_nregions >= ml_max_regions ||
	    c->region_size > ml_max_total_size - min_t(u64, ml_total_bytes, ml_max_total_size))
		return -ENOSPC;
	/* Only now that the new region is in: the old one loses its name. */
	if (old)
		old->hashed = false;
	return 0;
}

int ml_region_create(struct ml_file *mf, const struct memlink_create *c)
{
	struct ml_region *r;
	int ret;

	if (c->flags & ~MEMLINK_CREATE_REPLACE || c->__reserved || !ml_name_ok(c->name) ||
	    !c->region_size || !PAGE_ALIGNED(c->region_size) || c->mode & ~0777)
		return -EINVAL;
	if (c->region_size > ml_max_region_size)
		return -ENOSPC;

	/* Fail fast before allocating; admit again once the pages exist. */
	mutex_lock(&ml_regions_lock);
	ret = ml_lookup(c->name) && !(c->flags & MEMLINK_CREATE_REPLACE) ? -EEXIST : 0;
	mutex_unlock(&ml_regions_lock);
	if (ret)
		return ret;

	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return -ENOMEM;
	r->npages = c->region_size >> PAGE_SHIFT;
	r->pages = ml_alloc_pages(r->npages);
	if (!r->pages) {
		kfree(r);
		return -ENOMEM;
	}
	kref_init(&r->ref);
	strscpy(r->name, c->name, sizeof(r->name));
	r->size = c->region_size;
	r->uid = current_euid();
	r->gid = current_egid();
	r->mode = c->mode;
	spin_lock_init(&r->lock);
	INIT_LIST_HEAD(&r->waiters);
	init_waitqueue_head(&r->poll_wq);
	r->attached = 1;
	r->creator_alive = true;

	mutex_lock(&ml_regions_lock);
	ret = ml_admit(c);
	if (ret) {
		mutex_unlock(&ml_regions_lock);
		ml_free_pages(r->pages, r->npages);
		kfree(r);
		return ret;
	}
	r->hashed = true;
	list_add_tail(&r->node, &ml_regions);
	ml_nregions++;
	ml_total_bytes += r->size;
	mutex_unlock(&ml_regions_lock);

	mf->creator = true;
	/* Publish the binding after the fields above (pairs with ml_bound()). */
	smp_store_release(&mf->region, r);
	return 0;
}

/* System V IPC rules: owner, then group, then others; CAP_IPC_OWNER wins. */
static bool ml_may_attach(struct ml_region *r, bool rdonly)
{
	int need = rdonly ? 4 : 6;
	int granted = r->mode;

	if (uid_eq(current_euid(), r->uid))
		granted >>= 6;
	else if (in_group_p(r->gid))
		granted >>= 3;
	if (!(need & ~granted & 7))
		return true;
	return capable(CAP_IPC_OWNER);
}

int ml_region_attach(struct ml_file *mf, struct memlink_attach *a)
{
	bool rdonly = a->flags & MEMLINK_ATTACH_RDONLY;
	struct ml_region *r;
	int ret = 0;

	if (a->flags & ~MEMLINK_ATTACH_RDONLY || !ml_name_ok(a->name))
		return -EINVAL;

	mutex_lock(&ml_regions_lock);
	r = ml_lookup(a->name);
	if (!r) {
		ret = -ENOENT;
	} else if (!ml_may_attach(r, rdonly)) {
		ret = -EACCES;
	} else {
		spin_lock(&r->lock);
		if (r->creator_alive) {
			r->attached++;
			mf->seen_wakes = r->wakes;
			mf->seen_detached = r->detached;
			kref_get(&r->ref);
		} else {
			ret = -EPIPE;
		}
		spin_unlock(&r->lock);
	}
	mutex_unlock(&ml_regions_lock);
	if (ret)
		return ret;

	a->region_size = r->size;
	mf->rdonly = rdonly;
	/* Publish the binding after the fields above (pairs with ml_bound()). */
	smp_store_release(&mf->region, r);
	return 0;
}

/* Called by kref_put_mutex() with ml_regions_lock held; drops it. */
static void ml_region_release(struct kref *ref)
{
	struct ml_region *r = container_of(ref, struct ml_region, ref);

	list_del(&r->node);
	ml_nregions--;
	ml_total_bytes -= r->size;
	mutex_unlock(&ml_regions_lock);

	ml_free_pages(r->pages, r->npages);
	kfree(r);
}

/* The file is going away: tell the others, then drop its reference. */
void ml_region_unbind(struct ml_file *mf)
{
	struct ml_region *r = mf->region;

	if (mf->creator)
		ml_wake_creator_gone(r);
	else
		ml_wake_client_gone(r);
	kref_put_mutex(&r->ref, ml_region_release, &ml_regions_lock);
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

/* The /proc/memlink listing, like ipcs. */
void ml_regions_show(struct seq_file *m)
{
	struct ml_region *r;

	mutex_lock(&ml_regions_lock);
	seq_printf(m, "# memlink abi=%d regions=%u bytes=%llu pages=%ld\n",
		   MEMLINK_ABI_VERSION, ml_nregions, ml_total_bytes,
		   atomic_long_read(&ml_pages_allocated));
	seq_puts(m, "# name size uid gid mode attached waiters creator_alive\n");
	list_for_each_entry(r, &ml_regions, node) {
		u32 attached, waiters;
		bool alive;

		if (!r->hashed)
			continue;
		spin_lock(&r->lock);
		attached = r->attached;
		waiters = r->nwaiters;
		alive = r->creator_alive;
		spin_unlock(&r->lock);
		seq_printf(m, "%s %llu %u %u %04o %u %u %d\n", r->name, r->size,
			   from_kuid_munged(seq_user_ns(m), r->uid),
			   from_kgid_munged(seq_user_ns(m), r->gid),
			   r->mode, attached, waiters, alive);
	}
	mutex_unlock(&ml_regions_lock);
}
