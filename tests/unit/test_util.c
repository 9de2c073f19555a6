#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mailtunnel/util.h"

static void
test_trim(void **state)
{
	char a[] = "  \t value with space \r\n";
	char b[] = "";
	char c[] = "   ";

	(void)state;
	assert_string_equal(mt_str_trim(a), "value with space");
	assert_string_equal(mt_str_trim(b), "");
	assert_string_equal(mt_str_trim(c), "");
}

static void
test_strlcpy(void **state)
{
	char buf[4];

	(void)state;
	assert_int_equal(mt_strlcpy(buf, "abcdef", sizeof(buf)), 6);
	assert_string_equal(buf, "abc");
	assert_int_equal(mt_strlcpy(buf, "ab", sizeof(buf)), 2);
	assert_string_equal(buf, "ab");
}

static void
test_distance(void **state)
{
	(void)state;
	assert_int_equal(mt_str_distance("connect", "connect"), 0);
	assert_int_equal(mt_str_distance("conect", "connect"), 1);
	assert_int_equal(mt_str_distance("CAFile", "cafile"), 0);
	assert_int_equal(mt_str_distance("verifyChian", "verifyChain"), 1);
	assert_int_equal(mt_str_distance("", "abc"), 3);
	assert_true(mt_str_distance("accept", "sslVersion") > 3);
}

static void
test_bool(void **state)
{
	int v;

	(void)state;
	assert_int_equal(mt_parse_bool("yes", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(mt_parse_bool("No", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(mt_parse_bool("ON", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(mt_parse_bool("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(mt_parse_bool("maybe", &v), -1);
	assert_int_equal(mt_parse_bool("", &v), -1);
}

static void
test_uint(void **state)
{
	unsigned long long v;

	(void)state;
	assert_int_equal(mt_parse_uint("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(mt_parse_uint("101", 0, 100, &v), -1);
	assert_int_equal(mt_parse_uint("-1", 0, 100, &v), -1);
	assert_int_equal(mt_parse_uint("1x", 0, 100, &v), -1);
	assert_int_equal(mt_parse_uint("", 0, 100, &v), -1);
	assert_int_equal(mt_parse_uint("99999999999999999999999", 0, ~0ULL, &v), -1);
}

static void
test_duration(void **state)
{
	unsigned long long v;

	(void)state;
	assert_int_equal(mt_parse_duration("300", &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(mt_parse_duration("5m", &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(mt_parse_duration("1h30m", &v), 0);
	assert_int_equal(v, 5400);
	assert_int_equal(mt_parse_duration("30d", &v), 0);
	assert_int_equal(v, 30 * 86400);
	assert_int_equal(mt_parse_duration("2W", &v), 0);
	assert_int_equal(v, 2 * 604800);
	assert_int_equal(mt_parse_duration("10s", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(mt_parse_duration("5m30", &v), -1);
	assert_int_equal(mt_parse_duration("1.5s", &v), -1);
	assert_int_equal(mt_parse_duration("m", &v), -1);
	assert_int_equal(mt_parse_duration("", &v), -1);
	assert_int_equal(mt_parse_duration("5x", &v), -1);
	assert_int_equal(mt_parse_duration("99999999999999999999w", &v), -1);
}

static void
test_size(void **state)
{
	unsigned long long v;

	(void)state;
	assert_int_equal(mt_parse_size("1024", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(mt_parse_size("512k", &v), 0);
	assert_int_equal(v, 512 * 1024);
	assert_int_equal(mt_parse_size("10MB", &v), 0);
	assert_int_equal(v, 10 * 1024 * 1024);
	assert_int_equal(mt_parse_size("1G", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(mt_parse_size("12B", &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(mt_parse_size("1T", &v), -1);
	assert_int_equal(mt_parse_size("k", &v), -1);
	assert_int_equal(mt_parse_size("9999999999999999999G", &v), -1);
}

static void
test_format_duration(void **state)
{
	char buf[32];

	(void)state;
	mt_format_duration(300, buf, sizeof(buf));
	assert_string_equal(buf, "5m");
	mt_format_duration(90, buf, sizeof(buf));
	assert_string_equal(buf, "90s");
	mt_format_duration(0, buf, sizeof(buf));
	assert_string_equal(buf, "0s");
	mt_format_duration(86400 * 2, buf, sizeof(buf));
	assert_string_equal(buf, "2d");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_distance),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_format_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
