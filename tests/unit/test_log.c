#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#include "mailtunnel/log.h"

static char last[4096];
static int last_level = -1;

static void
hook(void *arg, int level, const char *line)
{
	(void)arg;
	last_level = level;
	snprintf(last, sizeof(last), "%s", line);
}

static void
redact_is(const char *in, const char *want)
{
	char out[256];

	mt_log_redact(in, strlen(in), out, sizeof(out));
	assert_string_equal(out, want);
}

static void
test_redact(void **state)
{
	(void)state;
	redact_is("PASS hunter2\r\n", "PASS <redacted>");
	redact_is("pass hunter2", "pass <redacted>");
	redact_is("USER alice\r\n", "USER alice");
	redact_is("APOP alice 0123abcd", "APOP alice <redacted>");
	redact_is("AUTH PLAIN AGFsaWNlAGh1bnRlcjI=", "AUTH PLAIN <redacted>");
	redact_is("AUTH PLAIN", "AUTH PLAIN");
	redact_is("AUTH LOGIN YWxpY2U=", "AUTH LOGIN <redacted>");
	redact_is("a1 LOGIN alice hunter2", "a1 LOGIN alice <redacted>");
	redact_is("a1 login \"alice\" \"hunter 2\"", "a1 login \"alice\" <redacted>");
	redact_is("a1 LOGIN {5}", "a1 LOGIN <redacted>");
	redact_is("a2 AUTHENTICATE XOAUTH2 dXNlcj1h", "a2 AUTHENTICATE XOAUTH2 <redacted>");
	redact_is("a2 AUTHENTICATE PLAIN", "a2 AUTHENTICATE PLAIN");
	redact_is("a3 SELECT INBOX", "a3 SELECT INBOX");
	redact_is("RETR 1\x01\r\n", "RETR 1?");
	redact_is("", "");
}

static void
test_redact_truncates(void **state)
{
	char out[8];

	(void)state;
	mt_log_redact("PASS hunter2", 12, out, sizeof(out));
	assert_string_equal(out, "PASS");
	mt_log_redact("STAT and more", 13, out, sizeof(out));
	assert_string_equal(out, "STAT an");
}

static void
test_prefix_and_level(void **state)
{
	struct mt_log_ctx ctx = { "gmail-pop3", 7, "127.0.0.1:4242", 0, 0 };

	(void)state;
	mt_log_set_hook(hook, NULL);
	mt_log_set_level(MT_LOG_INFO);
	last[0] = '\0';
	mt_log_c(&ctx, MT_LOG_ERR, "handshake failed: %s", "expired");
	assert_string_equal(last,
	    "[gmail-pop3] #7 127.0.0.1:4242: handshake failed: expired");
	assert_int_equal(last_level, MT_LOG_ERR);

	last[0] = '\0';
	mt_log(MT_LOG_DEBUG, "not shown");
	assert_string_equal(last, "");
	mt_log(MT_LOG_INFO, "plain");
	assert_string_equal(last, "plain");

	ctx.id = 0;
	ctx.peer = NULL;
	mt_log_c(&ctx, MT_LOG_WARNING, "x");
	assert_string_equal(last, "[gmail-pop3] x");
	mt_log_set_hook(NULL, NULL);
}

/* A service's own "debug" beats the process-wide level, both ways. */
static void
test_context_level(void **state)
{
	struct mt_log_ctx loud = { "loud", 1, NULL, 0, 0 };
	struct mt_log_ctx quiet = { "quiet", 2, NULL, 0, 0 };
	struct mt_log_ctx plain = { "plain", 3, NULL, 0, 0 };

	(void)state;
	mt_log_set_hook(hook, NULL);
	mt_log_set_level(MT_LOG_NOTICE);
	mt_log_ctx_set_level(&loud, MT_LOG_DEBUG);
	mt_log_ctx_set_level(&quiet, MT_LOG_ERR);
	mt_log_ctx_set_level(&plain, -1);

	last[0] = '\0';
	mt_log_c(&loud, MT_LOG_DEBUG, "trace");
	assert_string_equal(last, "[loud] #1 trace");
	assert_true(mt_log_enabled_c(&loud, MT_LOG_DEBUG));

	last[0] = '\0';
	mt_log_c(&quiet, MT_LOG_WARNING, "dropped");
	assert_string_equal(last, "");
	assert_false(mt_log_enabled_c(&quiet, MT_LOG_NOTICE));
	mt_log_c(&quiet, MT_LOG_ERR, "kept");
	assert_string_equal(last, "[quiet] #2 kept");

	last[0] = '\0';
	mt_log_c(&plain, MT_LOG_INFO, "dropped");
	assert_string_equal(last, "");
	mt_log_c(&plain, MT_LOG_NOTICE, "kept");
	assert_string_equal(last, "[plain] #3 kept");
	assert_false(mt_log_enabled_c(NULL, MT_LOG_INFO));
	mt_log_set_hook(NULL, NULL);
}

static void
test_parse_level(void **state)
{
	int level, facility;

	(void)state;
	assert_int_equal(mt_log_parse_level("7", &level, &facility), 0);
	assert_int_equal(level, 7);
	assert_int_equal(facility, LOG_DAEMON);
	assert_int_equal(mt_log_parse_level("warning", &level, &facility), 0);
	assert_int_equal(level, MT_LOG_WARNING);
	assert_int_equal(mt_log_parse_level("Debug", &level, &facility), 0);
	assert_int_equal(level, MT_LOG_DEBUG);
	assert_int_equal(mt_log_parse_level("mail.info", &level, &facility), 0);
	assert_int_equal(level, MT_LOG_INFO);
	assert_int_equal(facility, LOG_MAIL);
	assert_int_equal(mt_log_parse_level("local3.3", &level, &facility), 0);
	assert_int_equal(facility, LOG_LOCAL3);
	assert_int_equal(mt_log_parse_level("8", &level, &facility), -1);
	assert_int_equal(mt_log_parse_level("loud", &level, &facility), -1);
	assert_int_equal(mt_log_parse_level("nosuch.info", &level, &facility), -1);
	assert_int_equal(mt_log_parse_level("", &level, &facility), -1);
}

static void
test_file_sink_reopen(void **state)
{
	char dir[] = "/tmp/mt-log-XXXXXX", path[64], moved[64], buf[512];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/log", dir);
	snprintf(moved, sizeof(moved), "%s/log.1", dir);
	assert_int_equal(mt_log_to_file(path), 0);
	mt_log(MT_LOG_ERR, "first line");
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(mt_log_reopen(), 0);
	mt_log(MT_LOG_ERR, "second line");
	mt_log_to_stderr();

	assert_non_null(f = fopen(moved, "r"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_non_null(strstr(buf, "err: first line"));
	fclose(f);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_non_null(strstr(buf, "err: second line"));
	fclose(f);
	unlink(path);
	unlink(moved);
	rmdir(dir);
	assert_int_equal(mt_log_to_file("/nonexistent/dir/log"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_redact_truncates),
		cmocka_unit_test(test_prefix_and_level),
		cmocka_unit_test(test_context_level),
		cmocka_unit_test(test_parse_level),
		cmocka_unit_test(test_file_sink_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
