// SPDX-License-Identifier: GPL-2.0
/*
 * Region names per IPC namespace, as System V IPC and POSIX message queues
 * keep theirs.
 *
 * A module cannot hold a reference on an IPC namespace (put_ipc_ns() is
 * not exported), so a record is keyed by the namespace's address and inode
 * number, and holds a reference on the user namespace that owns it. A
 * record outlives its namespace only when a region of it is still held
 * from elsewhere (a descriptor passed out, or kept across unshare()). A new
 * namespace at the same address with the same inode number and the same
 * (held, so never reused) owner would then see those regions; but making
 * it took CAP_SYS_ADMIN in that owner, which is what joining the old
 * namespace with setns() takes: nobody gains access they could not have.
 */
#include <linux/ipc_namespace.h>
#include <linux/nsproxy.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>

#include "memlink_internal.h"

/* Under ml_lock. */
static LIST_HEAD(ml_namespaces);

/*
 * The record of the caller's IPC namespace with a reference for the
 * caller (ml_ns_put() gives it back), made when `create` and there is
 * none; NULL if there is none (or no memory for one). Under ml_lock.
 */
struct ml_ns *ml_ns_current(bool create)
{
	struct ipc_namespace *ipc = current->nsproxy->ipc_ns;
	struct ml_ns *ns;

	lockdep_assert_held(&ml_lock);
	list_for_each_entry(ns, &ml_namespaces, node) {
		if (ns->ipc == ipc && ns->inum == ipc->ns.inum &&
		    ns->user_ns == ipc->user_ns) {
			ns->refs++;
			return ns;
		}
	}
	if (!create)
		return NULL;
	ns = kzalloc(sizeof(*ns), GFP_KERNEL_ACCOUNT);
	if (!ns)
		return NULL;
	ns->ipc = ipc;
	ns->inum = ipc->ns.inum;
	ns->user_ns = get_user_ns(ipc->user_ns);
	ns->refs = 1;
	INIT_LIST_HEAD(&ns->regions);
	list_add_tail(&ns->node, &ml_namespaces);
	return ns;
}

/* Drop a reference; the last one frees the record. Under ml_lock. */
void ml_ns_put(struct ml_ns *ns)
{
	lockdep_assert_held(&ml_lock);
	if (--ns->refs)
		return;
	WARN_ON_ONCE(!list_empty(&ns->regions));
	list_del(&ns->node);
	put_user_ns(ns->user_ns);
	kfree(ns);
}
