// SPDX-License-Identifier: MIT
/*
 * POSIX shared memory object names (lib/posix/shm.c, the darwin
 * backend's): a channel name that fits is kept readable; one too long for
 * the OS (macOS allows 30 bytes) becomes a fixed-length hash that no
 * channel name can collide with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memlink.h"
#include "posix/shm.h"

#define MAC_MAX 30

static void test_short_name_kept(void **state)
{
	char buf[128];

	(void)state;
	ml__posix_shm_path_max(buf, sizeof(buf), "feed", MAC_MAX);
	assert_string_equal(buf, "/memlink.feed");
	/* Exactly at the limit: 9 + 21 = 30 bytes. */
	ml__posix_shm_path_max(buf, sizeof(buf), "abcdefghijklmnopqrstu", MAC_MAX);
	assert_string_equal(buf, "/memlink.abcdefghijklmnopqrstu");
}

static void test_long_name_hashed(void **state)
{
	char a[128], b[128], again[128];
	char longest[ML_CHAN_NAME_MAX + 1];

	(void)state;
	/* One byte over the limit. */
	ml__posix_shm_path_max(a, sizeof(a), "abcdefghijklmnopqrstuv", MAC_MAX);
	assert_int_equal(strncmp(a, "/memlink#", 9), 0);
	assert_int_equal(strlen(a), 9 + 16);
	assert_true(strlen(a) <= MAC_MAX);
	/* Same name, same object; a different name, a different one. */
	ml__posix_shm_path_max(again, sizeof(again), "abcdefghijklmnopqrstuv", MAC_MAX);
	assert_string_equal(a, again);
	ml__posix_shm_path_max(b, sizeof(b), "abcdefghijklmnopqrstuw", MAC_MAX);
	assert_string_not_equal(a, b);
	memset(longest, 'x', ML_CHAN_NAME_MAX);
	longest[ML_CHAN_NAME_MAX] = '\0';
	ml__posix_shm_path_max(b, sizeof(b), longest, MAC_MAX);
	assert_true(strlen(b) <= MAC_MAX);
	assert_string_not_equal(a, b);
}

/* '#' is not a channel name character: a hash never names a real channel. */
static void test_hash_not_a_name(void **state)
{
	char a[128], b[128];

	(void)state;
	ml__posix_shm_path_max(a, sizeof(a), "0123456789abcdef0123456789", MAC_MAX);
	ml__posix_shm_path_max(b, sizeof(b), "0123456789abcdef", MAC_MAX);
	assert_string_equal(b, "/memlink.0123456789abcdef");
	assert_non_null(strchr(a, '#'));
	assert_string_not_equal(a + 9, b + 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_name_kept),
		cmocka_unit_test(test_long_name_hashed),
		cmocka_unit_test(test_hash_not_a_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
