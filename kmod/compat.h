/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel interfaces memlink.ko uses that changed between the kernels it
 * builds on (6.1 to 7.x), keyed on LINUX_VERSION_CODE. Nothing else in
 * kmod/ tests a kernel version.
 */
#ifndef MEMLINK_COMPAT_H
#define MEMLINK_COMPAT_H

#include <linux/mm.h>
#include <linux/version.h>

/* 6.3 made vma->vm_flags read-only: changes go through vm_flags_*(). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
static inline void ml_vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vm_flags_set(vma, flags);
}

static inline void ml_vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vm_flags_clear(vma, flags);
}
#else
static inline void ml_vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void ml_vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

#endif /* MEMLINK_COMPAT_H */
