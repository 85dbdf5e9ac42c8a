/* SPDX-License-Identifier: MIT */
/* The command-line number parsers: sizes, durations, CPU counts, integers. */
#include "parse.h"
#include "sb-test.h"

TEST(sizes)
{
	static const struct {
		const char *in;
		uint64_t want;
	} ok[] = {
	    {"0", 0},
	    {"4096", 4096},
	    {"4096b", 4096},
	    {"512k", 512 << 10},
	    {"512K", 512 << 10},
	    {"64M", 64 << 20},
	    {"64m", 64 << 20},
	    {"64MiB", 64 << 20},
	    {"64MB", 64 << 20},
	    {"1G", 1 << 30},
	    {"1.5G", 3u << 29},
	    {"0.5k", 512},
	    {"2T", UINT64_C(2) << 40},
	    {"15E", UINT64_C(15) << 60},
	    {"18446744073709551615", UINT64_MAX},
	};
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		v = 1;
		ASSERT_OK(sb_parse_size(ok[i].in, &v, NULL));
		if (v != ok[i].want)
			sb_test_fail(__FILE__, __LINE__, "%s -> %llu", ok[i].in,
				     (unsigned long long)v);
	}
	static const char *const bad[] = {"",	"M",   "-1",	"+5",	" 5",  "5 ",
					  "5Q", "1.5", "1.2.3", "0x10", "5MM", "five"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		sb_error err = SB_ERROR_INIT;
		v = 7;
		if (sb_parse_size(bad[i], &v, &err) != -EINVAL || v != 7 ||
		    !strstr(err.msg, "invalid size"))
			sb_test_fail(__FILE__, __LINE__, "'%s' accepted or wrong error: %s", bad[i],
				     err.msg);
	}
	sb_error err = SB_ERROR_INIT;
	ASSERT_ERR(sb_parse_size("16E", &v, &err), -ERANGE);
	ASSERT_ERR(sb_parse_size("18446744073709551616", &v, &err), -ERANGE);
	ASSERT_ERR(sb_parse_size("99999999999999999999T", &v, &err), -ERANGE);
	ASSERT_TRUE(strstr(err.msg, "99999999999999999999T"));
}

TEST(durations)
{
	static const struct {
		const char *in;
		uint64_t want;
	} ok[] = {
	    {"2s", 2000000000},
	    {"2", 2000000000},
	    {"1.5s", 1500000000},
	    {"0.25", 250000000},
	    {"250ms", 250000000},
	    {"10us", 10000},
	    {"7ns", 7},
	    {"10m", UINT64_C(600000000000)},
	    {"10min", UINT64_C(600000000000)},
	    {"1h30m", UINT64_C(5400000000000)},
	    {"1d", UINT64_C(86400000000000)},
	    {"1m30s", UINT64_C(90000000000)},
	    {"2S", 2000000000},
	};
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		ASSERT_OK(sb_parse_duration(ok[i].in, &v, NULL));
		if (v != ok[i].want)
			sb_test_fail(__FILE__, __LINE__, "%s -> %llu", ok[i].in,
				     (unsigned long long)v);
	}
	static const char *const bad[] = {"",	 "s",	"-1s",	 "1x",	  "1h30",
					  "1 s", "1s ", "1..5s", "5secs", "1h-1m"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		sb_error err = SB_ERROR_INIT;
		v = 7;
		if (sb_parse_duration(bad[i], &v, &err) != -EINVAL || v != 7 ||
		    !strstr(err.msg, "invalid duration"))
			sb_test_fail(__FILE__, __LINE__, "'%s' accepted or wrong error: %s", bad[i],
				     err.msg);
	}
	ASSERT_ERR(sb_parse_duration("300000d", &v, NULL), -ERANGE);
	ASSERT_ERR(sb_parse_duration("200000d200000d", &v, NULL), -ERANGE);
}

TEST(cpus)
{
	uint64_t v;
	sb_error err = SB_ERROR_INIT;

	ASSERT_OK(sb_parse_cpus("0.5", &v, NULL));
	ASSERT_EQ(v, 500);
	ASSERT_OK(sb_parse_cpus("2", &v, NULL));
	ASSERT_EQ(v, 2000);
	ASSERT_OK(sb_parse_cpus("0.125", &v, NULL));
	ASSERT_EQ(v, 125);
	ASSERT_OK(sb_parse_cpus(".5", &v, NULL));
	ASSERT_EQ(v, 500);
	ASSERT_OK(sb_parse_cpus("1.", &v, NULL));
	ASSERT_EQ(v, 1000);
	ASSERT_ERR(sb_parse_cpus("0", &v, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.msg, "more than 0"));
	ASSERT_ERR(sb_parse_cpus("0.0001", &v, &err), -EINVAL);
	ASSERT_ERR(sb_parse_cpus("-1", &v, &err), -EINVAL);
	ASSERT_ERR(sb_parse_cpus("1c", &v, &err), -EINVAL);
	ASSERT_ERR(sb_parse_cpus("", &v, &err), -EINVAL);
	ASSERT_ERR(sb_parse_cpus("99999999", &v, &err), -ERANGE);
}

TEST(uints)
{
	uint64_t v;
	sb_error err = SB_ERROR_INIT;

	ASSERT_OK(sb_parse_uint64("64", 1, 4194304, "--pids", &v, &err));
	ASSERT_EQ(v, 64);
	ASSERT_ERR(sb_parse_uint64("0", 1, 4194304, "--pids", &v, &err), -ERANGE);
	ASSERT_TRUE(strstr(err.msg, "--pids '0'"));
	ASSERT_ERR(sb_parse_uint64("6a", 1, 100, "--pids", &v, &err), -EINVAL);
	ASSERT_ERR(sb_parse_uint64("", 1, 100, "--pids", &v, &err), -EINVAL);
	ASSERT_ERR(sb_parse_uint64("-1", 0, 100, NULL, &v, &err), -EINVAL);
	ASSERT_ERR(sb_parse_uint64("18446744073709551616", 0, UINT64_MAX, NULL, &v, &err), -ERANGE);
	ASSERT_OK(sb_parse_uint64("18446744073709551615", 0, UINT64_MAX, NULL, &v, &err));
	ASSERT_EQ(v, UINT64_MAX);
}
