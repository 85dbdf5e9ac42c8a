/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "sb-test.h"
#include "buf.h"
#include "changes.h"
#include "error.h"
#include "fileio.h"
#include "hash.h"
#include "lock.h"

TEST(sha256_matches_coreutils)
{
	static const char text[] = "snapbox\nhashes\0with NUL";
	int fd = open("f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_OK(fd);
	ASSERT_OK(sb_write_full(fd, text, sizeof(text)));
	close(fd);
	sb_id id, id2;
	sb_sha256_buf(text, sizeof(text), &id);
	sb_sha256 h;
	ASSERT_OK(sb_sha256_init(&h));
	sb_sha256_update(&h, text, 5);
	sb_sha256_update(&h, text + 5, sizeof(text) - 5);
	sb_sha256_final(&h, &id2);
	ASSERT_TRUE(sb_id_eq(&id, &id2));
	char hex[SB_HEX_LEN + 1];
	char *want = sb_test_sh_out("sha256sum f | cut -c1-64");
	want[strcspn(want, "\n")] = 0;
	ASSERT_STREQ(sb_id_to_hex(&id, hex), want);
	free(want);
}

TEST(hex_round_trip_and_rejects)
{
	sb_id id, back;
	for (int i = 0; i < SB_ID_LEN; i++)
		id.b[i] = (uint8_t)(i * 37 + 1);
	char hex[SB_HEX_LEN + 1];
	sb_id_to_hex(&id, hex);
	ASSERT_OK(sb_id_from_hex(hex, &back));
	ASSERT_TRUE(sb_id_eq(&id, &back));
	hex[10] = 'g';
	ASSERT_ERR(sb_id_from_hex(hex, &back), -EINVAL);
	ASSERT_ERR(sb_id_from_hex("abcd", &back), -EINVAL);
}

TEST(buf_grows_and_encodes)
{
	sb_buf b = SB_BUF_INIT;
	for (int i = 0; i < 10000; i++)
		ASSERT_OK(sb_buf_printf(&b, "%d,", i));
	ASSERT_TRUE(strncmp(b.data, "0,1,2,", 6) == 0);
	size_t before = b.len;
	ASSERT_OK(sb_buf_put_le64(&b, 0x0102030405060708ULL));
	ASSERT_EQ(sb_le64(b.data + before), 0x0102030405060708ULL);
	ASSERT_OK(sb_buf_put_le16(&b, 0xbeef));
	ASSERT_EQ(sb_le16(b.data + before + 8), 0xbeef);
	sb_buf_release(&b);
	ASSERT_TRUE(b.data == NULL);
}

/* sb_grow: room for element n, doubling from min, contents kept; failure changes nothing. */
TEST(array_grows_by_doubling_and_fails_cleanly)
{
	int *v = NULL;
	size_t cap = 0;
	for (size_t n = 0; n < 1000; n++) {
		int *nv = sb_grow(v, &cap, n, sizeof(*v), 8);
		ASSERT_TRUE(nv);
		v = nv;
		v[n] = (int)n;
		ASSERT_TRUE(cap > n);
		ASSERT_TRUE(cap == 8 || (cap & (cap - 1)) == 0); /* 8, 16, ... 1024 */
	}
	ASSERT_EQ(cap, 1024);
	for (size_t n = 0; n < 1000; n++)
		ASSERT_EQ(v[n], (int)n);
	ASSERT_TRUE(sb_grow(v, &cap, 5, sizeof(*v), 8) == v); /* room already */
	ASSERT_TRUE(sb_grow(v, &cap, SIZE_MAX / 2, sizeof(*v), 8) == NULL);
	ASSERT_EQ(cap, 1024);
	ASSERT_EQ(v[999], 999);
	free(v);
}

TEST(error_messages_quote_hostile_bytes)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_error_errno(&err, ENOENT, "open '%s'", "x"), -ENOENT);
	ASSERT_STREQ(err.msg, "open 'x': No such file or directory");
	ASSERT_ERR(sb_error_prefix(&err, "snapshot"), -ENOENT);
	ASSERT_STREQ(err.msg, "snapshot: open 'x': No such file or directory");
	char q[64];
	ASSERT_STREQ(sb_quote(q, sizeof(q), "a\nb\xff\\", 5), "a\\x0ab\\xff\\\\");
	char small[12];
	sb_quote(small, sizeof(small), "abcdefghijklmnop", 16);
	ASSERT_TRUE(strlen(small) < sizeof(small));
	ASSERT_TRUE(strstr(small, "...") != NULL);
}

TEST(atomic_write_replaces_whole_and_leaves_no_lock)
{
	sb_error err = SB_ERROR_INIT;
	ASSERT_OK(sb_write_atomic(AT_FDCWD, "m.json", "one", 3, 0644, SB_WRITE_SYNC, &err));
	ASSERT_OK(sb_write_atomic(AT_FDCWD, "m.json", "second", 6, 0644, SB_WRITE_SYNC, &err));
	char *data = NULL;
	size_t len = 0;
	ASSERT_OK(sb_read_file_at(AT_FDCWD, "m.json", 100, &data, &len, &err));
	ASSERT_EQ(len, 6);
	ASSERT_STREQ(data, "second");
	free(data);
	ASSERT_TRUE(access("m.json.lock", F_OK) < 0);
	/* A stale lock is reported by name and the target is left alone. */
	ASSERT_EQ(sb_test_sh("echo stale > m.json.lock"), 0);
	ASSERT_ERR(sb_write_atomic(AT_FDCWD, "m.json", "x", 1, 0644, 0, &err), -EEXIST);
	ASSERT_TRUE(strstr(err.msg, "m.json.lock") != NULL);
	ASSERT_OK(sb_read_file_at(AT_FDCWD, "m.json", 100, &data, &len, &err));
	ASSERT_STREQ(data, "second");
	free(data);
	/* NOCLOBBER refuses an existing name. */
	unlink("m.json.lock");
	ASSERT_ERR(sb_write_atomic(AT_FDCWD, "m.json", "x", 1, 0644, SB_WRITE_NOCLOBBER, &err),
		   -EEXIST);
	ASSERT_TRUE(access("m.json.lock", F_OK) < 0);
}

TEST(lock_is_exclusive_across_processes_and_names_the_holder)
{
	sb_error err = SB_ERROR_INIT;
	sb_lock l = SB_LOCK_INIT;
	ASSERT_OK(sb_lock_take(&l, AT_FDCWD, "lock", 0, &err));
	pid_t pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		sb_lock l2 = SB_LOCK_INIT;
		sb_error e2 = SB_ERROR_INIT;
		int r = sb_lock_take(&l2, AT_FDCWD, "lock", 0, &e2);
		char want[64];
		snprintf(want, sizeof(want), "busy (pid %d)", (int)getppid());
		_exit(r == -EBUSY && strstr(e2.msg, want) ? 0 : 1);
	}
	int st;
	ASSERT_OK(waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	sb_lock_release(&l);
	ASSERT_OK(sb_lock_take(&l, AT_FDCWD, "lock", 0, &err));
	sb_lock_release(&l);
}

TEST(changes_sort_parents_before_children)
{
	sb_changes c = SB_CHANGES_INIT;
	const char *paths[] = {"a-b", "a/b", "a", "a/b/c", "B", "a.c"};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		ASSERT_TRUE(sb_changes_add(&c, paths[i], strlen(paths[i])) != NULL);
	sb_changes_sort(&c);
	const char *want[] = {"B", "a", "a/b", "a/b/c", "a-b", "a.c"};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ASSERT_STREQ(c.v[i].path, want[i]);
	sb_changes_release(&c);
}
