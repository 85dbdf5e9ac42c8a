/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "sb-test.h"
#include "sb-test-store.h"
#include "content.h"
#include "store.h"

static double export_file(sb_store *s, const sb_id *id, uint64_t size, const char *path,
			  sb_content_write_flags flags)
{
	struct timespec t0, t1;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	sb_error err = SB_ERROR_INIT;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sb_content_write_fd(s, id, size, fd, flags, &err) < 0)
		sb_test_fail(__FILE__, __LINE__, "export %s: %s", path, err.msg);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(fd);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* An append to a big file stores the last chunk again, not the file. */
TEST(append_one_byte_to_256mib)
{
	ASSERT_EQ(sb_test_sh("head -c 256M /dev/urandom > big"), 0);
	sb_store *s = sb_test_open_store();
	sb_id id1, id2;
	uint64_t size;
	sb_test_store_file(s, "big", &id1, &size);
	ASSERT_EQ(size, 256u << 20);
	ASSERT_OK(sb_store_flush(s, NULL));
	sb_store_free(s);

	ASSERT_EQ(sb_test_sh("printf x >> big"), 0);
	s = sb_test_open_store();
	sb_test_store_file(s, "big", &id2, &size);
	ASSERT_EQ(size, (256u << 20) + 1);
	ASSERT_FALSE(sb_id_eq(&id1, &id2));
	sb_store_stats st;
	sb_store_get_stats(s, &st);
	printf("# second store wrote %llu bytes in %llu objects, deduped %llu\n",
	       (unsigned long long)st.bytes_written, (unsigned long long)st.objects_written,
	       (unsigned long long)st.objects_deduped);
	ASSERT_TRUE(st.bytes_written < (256u << 20) / 20);
	ASSERT_OK(sb_store_flush(s, NULL));
	export_file(s, &id2, size, "big.out", 0);
	ASSERT_EQ(sb_test_sh("cmp -s big big.out"), 0);
	sb_store_free(s);
}

TEST(sparse_1gib_export)
{
	ASSERT_EQ(
	    sb_test_sh("truncate -s 1G f && printf head | dd of=f conv=notrunc status=none && "
		       "printf tail | dd of=f bs=1 seek=1073741820 conv=notrunc status=none"),
	    0);
	sb_store *s = sb_test_open_store();
	sb_id id;
	uint64_t size;
	sb_test_store_file(s, "f", &id, &size);
	ASSERT_EQ(size, 1u << 30);
	double t = export_file(s, &id, size, "out", SB_CONTENT_SPARSE);
	struct stat st;
	ASSERT_OK(stat("out", &st));
	printf("# exported 1 GiB sparse in %.3f s, %llu KiB allocated\n", t,
	       (unsigned long long)st.st_blocks / 2);
	ASSERT_EQ(st.st_size, 1u << 30);
	ASSERT_TRUE((uint64_t)st.st_blocks * 512 < (1u << 20));
	ASSERT_EQ(sb_test_sh("cmp -s f out"), 0);
	sb_store_free(s);
}
