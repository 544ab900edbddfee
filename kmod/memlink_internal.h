/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memlink.ko internals: namespaces, the users charged for regions, regions,
 * the files bound to them, and their waiters.
 *
 * Lifetime: a region is referenced by every file bound to it (a mapping
 * holds its file, so mappings keep the region too). When the last file is
 * released the region leaves its namespace, its charge is given back and
 * its pages are freed. A namespace record lives while it has regions; a
 * user record while it is charged for any.
 *
 * Locks, outermost first:
 *   ml_lock (region.c, a mutex): the namespace list, each namespace's
 *     region list and counts, the user records, the module-wide counts,
 *     and each region's `hashed`. Never held while sleeping on a waiter.
 *   ml_region.lock (a spinlock): the region's waiters, counters, files and
 *     creator state; held while a waiter compares its word.
 *   each file's poll_wq lock, taken by wake-ups under ml_region.lock.
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

struct ipc_namespace;
struct user_namespace;

/* The regions of one IPC namespace (ns.c). */
struct ml_ns {
	struct list_head node;		/* on the namespace list */
	const struct ipc_namespace *ipc; /* identity only, never dereferenced */
	unsigned int inum;		/* the IPC namespace's inode number */
	struct user_namespace *user_ns;	/* its owner, held: capability checks */
	unsigned int refs;		/* its regions, and creations under way */
	struct list_head regions;	/* struct ml_region, creation order */
};

/* What one user (a kuid, machine-wide) is charged for (limits.c). */
struct ml_user {
	struct list_head node;
	kuid_t uid;
	unsigned int regions;
	u64 bytes;
};

struct ml_region {
	struct kref ref;		/* one per bound file */
	struct list_head node;		/* on ns->regions */
	struct ml_ns *ns;
	struct ml_user *user;		/* charged for it */
	bool hashed;			/* name visible */
	char name[MEMLINK_NAME_MAX];
	u64 size;
	unsigned long npages;
	struct page **pages;
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	u32 cflags;			/* MEMLINK_CREATE_ONCE, _SEALED, _BELL */
	u64 bell_offset;		/* with MEMLINK_CREATE_BELL */

	/*
	 * lock protects everything below and is held while a waiter compares
	 * its word, so a wake that follows a change of the word cannot slip
	 * between a waiter's check and its sleep.
	 */
	spinlock_t lock;
	struct list_head waiters;	/* struct ml_waiter */
	struct list_head files;		/* struct ml_file, bound to this region */
	u32 nwaiters;
	u32 attached;			/* bound files, creator included */
	bool creator_alive;
	bool taken;			/* ONCE: a file attached */
	u64 wakes;			/* MEMLINK_IOC_WAKE calls */
	u64 detached;			/* non-creator files released */
};

struct ml_file {
	struct mutex bind_lock;		/* serialises create/attach */
	struct ml_region *region;	/* set once under bind_lock, then fixed */
	bool creator;
	bool rdonly;
	/* poll() sleepers, bound or not: the region's events wake them. */
	wait_queue_head_t poll_wq;
	struct list_head node;		/* on region->files, under its lock */
	u64 seen_wakes;			/* under region->lock */
	u64 seen_detached;		/* under region->lock */
};

/* Module limits (main.c); read once per call with READ_ONCE(). */
extern unsigned long ml_max_region_size;
extern unsigned long ml_max_total_size;
extern unsigned int ml_max_regions;
extern unsigned long ml_max_user_bytes;
extern unsigned int ml_max_user_regions;

/* region.c */
extern struct mutex ml_lock;
int ml_region_create(struct ml_file *mf, const struct memlink_create *c);
int ml_region_attach(struct ml_file *mf, struct memlink_attach *a);
void ml_region_unbind(struct ml_file *mf);
int ml_region_mmap(struct ml_file *mf, struct vm_area_struct *vma);
void ml_region_info(struct ml_region *r, struct memlink_info *info);
bool ml_region_visible(struct ml_region *r);
u32 ml_region_word(struct ml_region *r, u64 offset);
void ml_region_bump(struct ml_region *r, u64 offset);
bool ml_region_offset_ok(struct ml_region *r, u64 offset);
long ml_pages_held(void);

/* ns.c: the caller's namespace record, under ml_lock. */
struct ml_ns *ml_ns_current(bool create);
void ml_ns_put(struct ml_ns *ns);

/* limits.c: charges, under ml_lock. */
struct ml_limits {
	u64 max_total;
	unsigned int max_regions;
	u64 max_user_bytes;
	unsigned int max_user_regions;
};

void ml_limits_read(struct ml_limits *l);
int ml_charge(const struct ml_limits *l, kuid_t uid, u64 bytes, struct ml_user **out);
void ml_uncharge(struct ml_user *u, u64 bytes);
void ml_charged(kuid_t uid, unsigned int *regions, u64 *bytes);
void ml_charged_all(unsigned int *regions, u64 *bytes);

/* list.c */
long ml_list(void __user *uarg, const struct memlink_list *l);

/* wait.c */
int ml_wait(struct ml_file *mf, const struct memlink_wait *w, void __user *uarg);
int ml_wake(struct ml_file *mf, const struct memlink_wake *w);
void ml_wake_creator_gone(struct ml_region *r, struct ml_file *mf);
void ml_wake_client_gone(struct ml_region *r, struct ml_file *mf);
__poll_t ml_poll_mask(struct ml_file *mf);
u64 ml_read_wakes(struct ml_file *mf);

#endif /* MEMLINK_INTERNAL_H */
