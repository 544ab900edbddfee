/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memlink.ko internals: regions, the files bound to them, and their waiters.
 *
 * Lifetime: a region is referenced by every file bound to it (a mapping
 * holds its file, so mappings keep the region too). When the last file is
 * released the region leaves the name list and its pages are freed.
 */
#ifndef MEMLINK_INTERNAL_H
#define MEMLINK_INTERNAL_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/wait.h>
#include <linux/memlink.h>

struct ml_region {
	struct kref ref;		/* one per bound file */
	struct list_head node;		/* on ml_regions; under ml_regions_lock */
	bool hashed;			/* name visible; under ml_regions_lock */
	char name[MEMLINK_NAME_MAX];
	u64 size;
	unsigned long npages;
	struct page **pages;
	kuid_t uid;
	kgid_t gid;
	umode_t mode;

	/*
	 * lock protects everything below and is held while a waiter compares
	 * its word, so a wake that follows a change of the word cannot slip
	 * between a waiter's check and its sleep.
	 */
	spinlock_t lock;
	struct list_head waiters;	/* struct ml_waiter */
	u32 nwaiters;
	u32 attached;			/* bound files, creator included */
	bool creator_alive;
	u64 wakes;			/* MEMLINK_IOC_WAKE calls */
	u64 detached;			/* non-creator files released */

	wait_queue_head_t poll_wq;	/* poll() sleepers; has its own lock */
};

struct ml_file {
	struct mutex bind_lock;		/* serialises create/attach */
	struct ml_region *region;	/* set once under bind_lock, then fixed */
	bool creator;
	bool rdonly;
	u64 seen_wakes;			/* under region->lock */
	u64 seen_detached;		/* under region->lock */
};

/* Module limits (main.c). */
extern unsigned long ml_max_region_size;
extern unsigned long ml_max_total_size;
extern unsigned int ml_max_regions;

/* region.c */
int ml_region_create(struct ml_file *mf, const struct memlink_create *c);
int ml_region_attach(struct ml_file *mf, struct memlink_attach *a);
void ml_region_unbind(struct ml_file *mf);
int ml_region_mmap(struct ml_file *mf, struct vm_area_struct *vma);
void ml_region_info(struct ml_region *r, struct memlink_info *info);
u32 ml_region_word(struct ml_region *r, u64 offset);
bool ml_region_offset_ok(struct ml_region *r, u64 offset);
void ml_regions_show(struct seq_file *m);

/* wait.c */
int ml_wait(struct ml_file *mf, const struct memlink_wait *w);
int ml_wake(struct ml_file *mf, const struct memlink_wake *w);
void ml_wake_creator_gone(struct ml_region *r);
void ml_wake_client_gone(struct ml_region *r);
__poll_t ml_poll_mask(struct ml_file *mf);
u64 ml_read_wakes(struct ml_file *mf);

/* procfs.c */
int ml_procfs_init(void);
void ml_procfs_exit(void);

#endif /* MEMLINK_INTERNAL_H */
