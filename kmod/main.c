// SPDX-License-Identifier: GPL-2.0
/*
 * memlink.ko: the /dev/memlink misc device, its file operations and the
 * versioned ioctl ABI of include/uapi/linux/memlink.h.
 *
 * Every ioctl struct starts with its size and flags. It is read with
 * copy_struct_from_user(), so an older, smaller struct works and a newer,
 * larger one is accepted when the bytes this module does not know are zero;
 * results are written back up to the caller's size only. The ioctl number
 * is matched on its type, number and direction; the size it encodes must
 * be the struct's own size field.
 */
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "memlink_internal.h"

unsigned long ml_max_region_size = 256UL << 20;
module_param_named(max_region_size, ml_max_region_size, ulong, 0644);
MODULE_PARM_DESC(max_region_size, "Largest region in bytes (default 256 MiB)");

unsigned long ml_max_total_size = 1UL << 30;
module_param_named(max_total_size, ml_max_total_size, ulong, 0644);
MODULE_PARM_DESC(max_total_size, "Bytes of all regions together (default 1 GiB)");

unsigned int ml_max_regions = 1024;
module_param_named(max_regions, ml_max_regions, uint, 0644);
MODULE_PARM_DESC(max_regions, "Number of regions (default 1024)");

unsigned long ml_max_user_bytes = 512UL << 20;
module_param_named(max_user_bytes, ml_max_user_bytes, ulong, 0644);
MODULE_PARM_DESC(max_user_bytes, "Bytes of one user's regions (default 512 MiB; 0: no limit)");

unsigned int ml_max_user_regions = 256;
module_param_named(max_user_regions, ml_max_user_regions, uint, 0644);
MODULE_PARM_DESC(max_user_regions, "Regions of one user (default 256; 0: no limit)");

#define ML_FEATURES (MEMLINK_FEAT_WAIT | MEMLINK_FEAT_PEER_GONE | \
		     MEMLINK_FEAT_POLL | MEMLINK_FEAT_REPLACE | \
		     MEMLINK_FEAT_LIST | MEMLINK_FEAT_DEADLINE | \
		     MEMLINK_FEAT_IPC_NS | MEMLINK_FEAT_USER_LIMITS | \
		     MEMLINK_FEAT_PRIVATE)

/*
 * Read a size-prefixed struct. `minsize` is the size of its first version;
 * *usize gets the caller's size for the copy back.
 */
static int ml_copy_in(void *karg, size_t ksize, size_t minsize,
		      void __user *uarg, unsigned int cmd, u32 *usize)
{
	u32 size;

	if (get_user(size, (u32 __user *)uarg))
		return -EFAULT;
	if (size < minsize)
		return -EINVAL;
	if (size > PAGE_SIZE)
		return -E2BIG;
	if (size != _IOC_SIZE(cmd))
		return -EINVAL;
	*usize = size;
	return copy_struct_from_user(karg, ksize, uarg, size);
}

static int ml_copy_out(void __user *uarg, const void *karg, size_t ksize, u32 usize)
{
	if (copy_to_user(uarg, karg, min_t(size_t, ksize, usize)))
		return -EFAULT;
	return 0;
}

/* The region a file is bound to, or NULL; it never changes once set. */
static struct ml_region *ml_bound(struct ml_file *mf)
{
	/* Pairs with the release in ml_region_create()/ml_region_attach(). */
	return smp_load_acquire(&mf->region);
}

static long ml_ioctl_handshake(void __user *uarg, unsigned int cmd)
{
	struct memlink_handshake h;
	u32 usize;
	int ret;

	ret = ml_copy_in(&h, sizeof(h), offsetofend(struct memlink_handshake, __reserved),
			 uarg, cmd, &usize);
	if (ret)
		return ret;
	if (h.flags || h.__reserved || h.__reserved2)
		return -EINVAL;
	h.abi_version = MEMLINK_ABI_VERSION;
	h.page_size = PAGE_SIZE;
	h.features = ML_FEATURES;
	h.max_region_size = READ_ONCE(ml_max_region_size);
	h.max_total_size = READ_ONCE(ml_max_total_size);
	h.max_regions = READ_ONCE(ml_max_regions);
	h.max_user_bytes = READ_ONCE(ml_max_user_bytes);
	h.max_user_regions = READ_ONCE(ml_max_user_regions);
	return ml_copy_out(uarg, &h, sizeof(h), usize);
}

static long ml_ioctl_create(struct ml_file *mf, void __user *uarg, unsigned int cmd)
{
	struct memlink_create c;
	u32 usize;
	int ret;

	ret = ml_copy_in(&c, sizeof(c), offsetofend(struct memlink_create, name), uarg, cmd,
			 &usize);
	if (ret)
		return ret;
	mutex_lock(&mf->bind_lock);
	ret = mf->region ? -EINVAL : ml_region_create(mf, &c);
	mutex_unlock(&mf->bind_lock);
	return ret;
}

static long ml_ioctl_attach(struct ml_file *mf, void __user *uarg, unsigned int cmd)
{
	struct memlink_attach a;
	u32 usize;
	int ret;

	ret = ml_copy_in(&a, sizeof(a), offsetofend(struct memlink_attach, name), uarg, cmd,
			 &usize);
	if (ret)
		return ret;
	mutex_lock(&mf->bind_lock);
	ret = mf->region ? -EINVAL : ml_region_attach(mf, &a);
	mutex_unlock(&mf->bind_lock);
	if (ret)
		return ret;
	/* Bound even if the caller's buffer went away: it may still close. */
	return ml_copy_out(uarg, &a, sizeof(a), usize);
}

static long ml_ioctl_info(struct ml_region *r, void __user *uarg, unsigned int cmd)
{
	struct memlink_info info;
	u32 usize;
	int ret;

	ret = ml_copy_in(&info, sizeof(info), offsetofend(struct memlink_info, name),
			 uarg, cmd, &usize);
	if (ret)
		return ret;
	if (info.flags)
		return -EINVAL;
	ml_region_info(r, &info);
	/* The caller's size stays: the struct can be passed again as it is. */
	info.size = usize;
	return ml_copy_out(uarg, &info, sizeof(info), usize);
}

static long ml_ioctl_wait(struct ml_file *mf, void __user *uarg, unsigned int cmd)
{
	struct memlink_wait w;
	u32 usize;
	int ret;

	ret = ml_copy_in(&w, sizeof(w), offsetofend(struct memlink_wait, timeout_ns),
			 uarg, cmd, &usize);
	return ret ? ret : ml_wait(mf, &w, uarg);
}

static long ml_ioctl_wake(struct ml_file *mf, void __user *uarg, unsigned int cmd)
{
	struct memlink_wake w;
	u32 usize;
	int ret;

	ret = ml_copy_in(&w, sizeof(w), offsetofend(struct memlink_wake, __reserved),
			 uarg, cmd, &usize);
	return ret ? ret : ml_wake(mf, &w);
}

static long ml_ioctl_list(void __user *uarg, unsigned int cmd)
{
	struct memlink_list l;
	u32 usize;
	int ret;

	ret = ml_copy_in(&l, sizeof(l), offsetofend(struct memlink_list, __reserved2),
			 uarg, cmd, &usize);
	return ret ? ret : ml_list(uarg, &l);
}

static long ml_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ml_file *mf = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct ml_region *r;

	unsigned int nr = _IOC_NR(cmd);

	/* The size is the struct's: ml_copy_in() checks it against cmd's. */
	if (_IOC_TYPE(cmd) != MEMLINK_IOC_TYPE || _IOC_DIR(cmd) != (_IOC_READ | _IOC_WRITE))
		return -ENOTTY;
	switch (nr) {
	case _IOC_NR(MEMLINK_IOC_HANDSHAKE):
		return ml_ioctl_handshake(uarg, cmd);
	case _IOC_NR(MEMLINK_IOC_CREATE):
		return ml_ioctl_create(mf, uarg, cmd);
	case _IOC_NR(MEMLINK_IOC_ATTACH):
		return ml_ioctl_attach(mf, uarg, cmd);
	case _IOC_NR(MEMLINK_IOC_LIST):
		return ml_ioctl_list(uarg, cmd);
	case _IOC_NR(MEMLINK_IOC_INFO):
	case _IOC_NR(MEMLINK_IOC_WAIT):
	case _IOC_NR(MEMLINK_IOC_WAKE):
		break;
	default:
		return -ENOTTY;
	}

	r = ml_bound(mf);
	if (!r)
		return -EINVAL;
	if (nr == _IOC_NR(MEMLINK_IOC_INFO))
		return ml_ioctl_info(r, uarg, cmd);
	if (nr == _IOC_NR(MEMLINK_IOC_WAIT))
		return ml_ioctl_wait(mf, uarg, cmd);
	return ml_ioctl_wake(mf, uarg, cmd);
}

static int ml_open(struct inode *inode, struct file *file)
{
	struct ml_file *mf = kzalloc(sizeof(*mf), GFP_KERNEL_ACCOUNT);

	if (!mf)
		return -ENOMEM;
	mutex_init(&mf->bind_lock);
	init_waitqueue_head(&mf->poll_wq);
	INIT_LIST_HEAD(&mf->node);
	file->private_data = mf;
	return nonseekable_open(inode, file);
}

static int ml_release(struct inode *inode, struct file *file)
{
	struct ml_file *mf = file->private_data;

	if (mf->region)
		ml_region_unbind(mf);
	mutex_destroy(&mf->bind_lock);
	kfree(mf);
	return 0;
}

static int ml_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ml_file *mf = file->private_data;

	if (!ml_bound(mf))
		return -EINVAL;
	return ml_region_mmap(mf, vma);
}

static __poll_t ml_poll(struct file *file, poll_table *pt)
{
	struct ml_file *mf = file->private_data;
	/*
	 * The file's own queue, bound or not: a registration made before the
	 * file is bound sees the region's events once it is.
	 */
	poll_wait(file, &mf->poll_wq, pt);
	return ml_bound(mf) ? ml_poll_mask(mf) : 0;
}

static ssize_t ml_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	struct ml_file *mf = file->private_data;
	u64 wakes;

	if (!ml_bound(mf))
		return -EINVAL;
	if (count < sizeof(wakes))
		return -EINVAL;
	wakes = ml_read_wakes(mf);
	if (copy_to_user(buf, &wakes, sizeof(wakes)))
		return -EFAULT;
	return sizeof(wakes);
}

static const struct file_operations ml_fops = {
	.owner = THIS_MODULE,
	.open = ml_open,
	.release = ml_release,
	.unlocked_ioctl = ml_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = ml_mmap,
	.poll = ml_poll,
	.read = ml_read,
	/* No .llseek: nonseekable_open() makes lseek() fail with ESPIPE. */
};

static struct miscdevice ml_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "memlink",
	.fops = &ml_fops,
	.mode = 0666,
};

static int __init ml_init(void)
{
	return misc_register(&ml_misc);
}

static void __exit ml_exit(void)
{
	misc_deregister(&ml_misc);
}

module_init(ml_init);
module_exit(ml_exit);

MODULE_DESCRIPTION("memlink: shared-memory regions with wait/wake and peer-death notice");
MODULE_AUTHOR("memlink developers");
MODULE_LICENSE("GPL");
/* The Makefile's and dkms.conf's version too (tests/install/test-dkms.sh). */
MODULE_VERSION("0.1.0");
