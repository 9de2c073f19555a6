/*
 * POP3 reply lines: line framing, status lines and response codes, CAPA,
 * UIDL and LIST, with every reason a malformed line is refused.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mailtunnel/pop3_parse.h"
#include "mailtunnel/sasl.h"

/* ---- lines ---- */

static void
test_line_next(void **state)
{
	const char *line, *why = NULL;
	size_t len, used;

	(void)state;
	assert_int_equal(mt_pop3_line_next("+OK hi\r\nrest", 12, 512, 0, &line,
	    &len, &used, &why), MT_POP3_LINE_OK);
	assert_int_equal(len, 6);
	assert_memory_equal(line, "+OK hi", 6);
	assert_int_equal(used, 8);
	assert_int_equal(mt_pop3_line_next("+OK\n", 4, 512, 0, &line, &len, &used,
	    &why), MT_POP3_LINE_OK);
	assert_int_equal(len, 3);
	assert_int_equal(used, 4);
	assert_int_equal(mt_pop3_line_next("+OK hi\r", 7, 512, 0, &line, &len,
	    &used, &why), MT_POP3_LINE_NEED_MORE);
	assert_int_equal(mt_pop3_line_next("", 0, 512, 0, &line, &len, &used,
	    &why), MT_POP3_LINE_NEED_MORE);
	/* The limit counts the line without its end. */
	assert_int_equal(mt_pop3_line_next("0123456789\r\n", 12, 10, 0, &line,
	    &len, &used, &why), MT_POP3_LINE_OK);
	assert_int_equal(mt_pop3_line_next("0123456789\r", 11, 10, 0, &line,
	    &len, &used, &why), MT_POP3_LINE_NEED_MORE);
	assert_int_equal(mt_pop3_line_next("01234567890\r\n", 13, 10, 0, &line,
	    &len, &used, &why), MT_POP3_LINE_ERROR);
	assert_string_equal(why, "reply line too long");
	why = NULL;
	assert_int_equal(mt_pop3_line_next("0123456789ab", 12, 10, 0, &line,
	    &len, &used, &why), MT_POP3_LINE_ERROR);
	assert_string_equal(why, "reply line too long");
	assert_int_equal(mt_pop3_line_next("+OK \0x\r\n", 8, 512, 0, &line, &len,
	    &used, &why), MT_POP3_LINE_ERROR);
	assert_string_equal(why, "reply line contains a NUL byte");
}

static void
test_line_multiline(void **state)
{
	const char *line, *why = NULL;
	size_t len, used;

	(void)state;
	assert_int_equal(mt_pop3_line_next("..dot\r\n", 7, 512, 1, &line, &len,
	    &used, &why), MT_POP3_LINE_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(line, ".dot", 4);
	assert_int_equal(mt_pop3_line_next("..dot\r\n", 7, 512, 0, &line, &len,
	    &used, &why), MT_POP3_LINE_OK);
	assert_int_equal(len, 5);
	assert_int_equal(mt_pop3_line_next(".\r\n+OK", 6, 512, 1, &line, &len,
	    &used, &why), MT_POP3_LINE_END);
	assert_int_equal(used, 3);
	assert_int_equal(mt_pop3_line_next(".\n", 2, 512, 1, &line, &len, &used,
	    &why), MT_POP3_LINE_END);
	assert_int_equal(used, 2);
	assert_int_equal(mt_pop3_line_next("\r\n", 2, 512, 1, &line, &len, &used,
	    &why), MT_POP3_LINE_OK);
	assert_int_equal(len, 0);
}

/* ---- status lines ---- */

static void
status_is(const char *line, enum mt_pop3_status st, enum mt_pop3_code code,
    const char *code_text, const char *text)
{
	struct mt_pop3_status_line s;
	const char *why = NULL;

	assert_int_equal(mt_pop3_status_parse(line, strlen(line), &s, &why), 0);
	assert_int_equal(s.status, st);
	assert_int_equal(s.code, code);
	assert_int_equal(s.code_len, strlen(code_text));
	if (s.code_len > 0)
		assert_memory_equal(s.code_text, code_text, s.code_len);
	assert_int_equal(s.text_len, strlen(text));
	assert_memory_equal(s.text, text, s.text_len);
}

static void
test_status(void **state)
{
	(void)state;
	status_is("+OK", MT_POP3_OK, MT_POP3_CODE_NONE, "", "");
	status_is("+OK Dovecot (Debian) ready.", MT_POP3_OK, MT_POP3_CODE_NONE, "",
	    "Dovecot (Debian) ready.");
	status_is("+OK Gpop ready for requests from 192.0.2.1 a1mb1234567pzb",
	    MT_POP3_OK, MT_POP3_CODE_NONE, "",
	    "Gpop ready for requests from 192.0.2.1 a1mb1234567pzb");
	status_is("+ok lower case", MT_POP3_OK, MT_POP3_CODE_NONE, "",
	    "lower case");
	status_is("-ERR", MT_POP3_ERR, MT_POP3_CODE_NONE, "", "");
	status_is("-ERR [IN-USE] Mailbox is locked by another POP3 session.",
	    MT_POP3_ERR, MT_POP3_CODE_IN_USE, "IN-USE",
	    "Mailbox is locked by another POP3 session.");
	status_is("-ERR [AUTH] Authentication failed.", MT_POP3_ERR,
	    MT_POP3_CODE_AUTH, "AUTH", "Authentication failed.");
	status_is("-ERR [SYS/TEMP] Server is busy", MT_POP3_ERR,
	    MT_POP3_CODE_SYS_TEMP, "SYS/TEMP", "Server is busy");
	status_is("-ERR [SYS/PERM] Your account is disabled", MT_POP3_ERR,
	    MT_POP3_CODE_SYS_PERM, "SYS/PERM", "Your account is disabled");
	status_is("-ERR [sys/temp/quota] x", MT_POP3_ERR, MT_POP3_CODE_SYS_TEMP,
	    "sys/temp/quota", "x");
	status_is("-ERR [LOGIN-DELAY] Wait 15 minutes", MT_POP3_ERR,
	    MT_POP3_CODE_LOGIN_DELAY, "LOGIN-DELAY", "Wait 15 minutes");
	status_is("-ERR [UTF8] x", MT_POP3_ERR, MT_POP3_CODE_UTF8, "UTF8", "x");
	status_is("-ERR [SYS] x", MT_POP3_ERR, MT_POP3_CODE_OTHER, "SYS", "x");
	status_is("-ERR [XFOO]", MT_POP3_ERR, MT_POP3_CODE_OTHER, "XFOO", "");
	status_is("+OK [IN-USE]text", MT_POP3_OK, MT_POP3_CODE_IN_USE, "IN-USE",
	    "text");
	/* Malformed codes stay text. */
	status_is("-ERR [IN-USE locked", MT_POP3_ERR, MT_POP3_CODE_NONE, "",
	    "[IN-USE locked");
	status_is("-ERR [] x", MT_POP3_ERR, MT_POP3_CODE_NONE, "", "[] x");
	status_is("-ERR [SYS//TEMP] x", MT_POP3_ERR, MT_POP3_CODE_NONE, "",
	    "[SYS//TEMP] x");
	status_is("-ERR [SYS/] x", MT_POP3_ERR, MT_POP3_CODE_NONE, "",
	    "[SYS/] x");
	status_is("-ERR [IN USE] x", MT_POP3_ERR, MT_POP3_CODE_NONE, "",
	    "[IN USE] x");
	status_is("+ ", MT_POP3_CONT, MT_POP3_CODE_NONE, "", "");
	status_is("+", MT_POP3_CONT, MT_POP3_CODE_NONE, "", "");
	status_is("+ eyJzdGF0dXMiOiI0MDAifQ==", MT_POP3_CONT, MT_POP3_CODE_NONE,
	    "", "eyJzdGF0dXMiOiI0MDAifQ==");
	/* A continuation is never read for a code. */
	status_is("+ [AUTH]", MT_POP3_CONT, MT_POP3_CODE_NONE, "", "[AUTH]");
}

static void
test_status_bad(void **state)
{
	static const char *const bad[] = {
		"", "OK", "+OKAY", "-ERROR", "+OK\tx", "* OK IMAP", "-", "+x",
		"\xff", "ERR",
	};
	struct mt_pop3_status_line s;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(mt_pop3_status_parse(bad[i], strlen(bad[i]), &s,
		    &why), -1);
		assert_string_equal(why,
		    "expected +OK, -ERR or a \"+ \" continuation");
	}
}

static void
test_code_failure(void **state)
{
	(void)state;
	assert_int_equal(mt_pop3_code_failure(MT_POP3_CODE_IN_USE),
	    MT_POP3_FAIL_TEMP);
	assert_int_equal(mt_pop3_code_failure(MT_POP3_CODE_LOGIN_DELAY),
	    MT_POP3_FAIL_TEMP);
	assert_int_equal(mt_pop3_code_failure(MT_POP3_CODE_SYS_TEMP),
	    MT_POP3_FAIL_TEMP);
	assert_int_equal(mt_pop3_code_failure(MT_POP3_CODE_SYS_PERM),
	    MT_POP3_FAIL_PERM);
	assert_int_equal(mt_pop3_code_failure(MT_POP3_CODE_UTF8),
	    MT_POP3_FAIL_PERM);
	assert_int_equal(mt_pop3_code_failure(MT_POP3_CODE_AUTH),
	    MT_POP3_FAIL_AUTH);
	assert_int_equal(mt_pop3_code_failure(MT_POP3_CODE_NONE),
	    MT_POP3_FAIL_UNKNOWN);
	assert_int_equal(mt_pop3_code_failure(MT_POP3_CODE_OTHER),
	    MT_POP3_FAIL_UNKNOWN);
	assert_string_equal(mt_pop3_code_name(MT_POP3_CODE_SYS_TEMP), "SYS/TEMP");
	assert_string_equal(mt_pop3_code_name(MT_POP3_CODE_IN_USE), "IN-USE");
	assert_string_equal(mt_pop3_code_name(MT_POP3_CODE_NONE), "");
	assert_string_equal(mt_pop3_code_name(MT_POP3_CODE_OTHER), "other");
}

/* ---- CAPA ---- */

/* Run a whole multi-line CAPA body through line_next and capa_line. */
static int
capa_text(const char *text, struct mt_pop3_capa *c, const char **why)
{
	const char *line;
	size_t len, used, off = 0, n = strlen(text);
	enum mt_pop3_line_result r;

	mt_pop3_capa_init(c);
	for (;;) {
		r = mt_pop3_line_next(text + off, n - off, 512, 1, &line, &len,
		    &used, why);
		assert_true(r == MT_POP3_LINE_OK || r == MT_POP3_LINE_END);
		off += used;
		if (r == MT_POP3_LINE_END)
			break;
		if (mt_pop3_capa_line(c, line, len, why) == -1)
			return -1;
	}
	assert_int_equal(off, n);
	return 0;
}

static void
test_capa_servers(void **state)
{
	struct mt_pop3_capa c;
	const char *why = NULL;

	(void)state;
	/* Dovecot before STLS. */
	assert_int_equal(capa_text("CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
	    "PIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n"
	    ".\r\n", &c, &why), 0);
	assert_int_equal(c.flags, MT_POP3_CAPA_TOP | MT_POP3_CAPA_UIDL |
	    MT_POP3_CAPA_RESP_CODES | MT_POP3_CAPA_PIPELINING |
	    MT_POP3_CAPA_AUTH_RESP_CODE | MT_POP3_CAPA_STLS | MT_POP3_CAPA_USER |
	    MT_POP3_CAPA_SASL);
	assert_int_equal(c.sasl, MT_SASL_PLAIN | MT_SASL_LOGIN);
	/* Gmail's shape. */
	assert_int_equal(capa_text("USER\r\nRESP-CODES\r\nEXPIRE 0\r\n"
	    "LOGIN-DELAY 300\r\nTOP\r\nUIDL\r\nX-GOOGLE-RICO\r\n"
	    "SASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n", &c, &why), 0);
	assert_true(c.flags & MT_POP3_CAPA_EXPIRE);
	assert_int_equal(c.expire_days, 0);
	assert_false(c.expire_per_user);
	assert_true(c.flags & MT_POP3_CAPA_LOGIN_DELAY);
	assert_int_equal(c.login_delay, 300);
	assert_false(c.flags & MT_POP3_CAPA_STLS);
	assert_int_equal(c.sasl, MT_SASL_PLAIN | MT_SASL_XOAUTH2 |
	    MT_SASL_OAUTHBEARER);
	/* Office 365's shape, with bare LF line ends. */
	assert_int_equal(capa_text("TOP\nUIDL\nSASL PLAIN XOAUTH2\nUSER\n.\n",
	    &c, &why), 0);
	assert_int_equal(c.flags, MT_POP3_CAPA_TOP | MT_POP3_CAPA_UIDL |
	    MT_POP3_CAPA_SASL | MT_POP3_CAPA_USER);
	assert_int_equal(c.sasl, MT_SASL_PLAIN | MT_SASL_XOAUTH2);
}

static void
test_capa_values(void **state)
{
	struct mt_pop3_capa c;
	const char *why = NULL;

	(void)state;
	assert_int_equal(capa_text("EXPIRE NEVER\r\nLOGIN-DELAY 900 USER\r\n"
	    "sasl  scram-sha-256\tX-FOO\r\nIMPLEMENTATION Example \xc3\xa9pop3 "
	    "server 1.0 with a name that is longer than sixty-four bytes\r\n"
	    "UTF8 USER\r\nLANG\r\nUNKNOWN-CAP arg\r\n.\r\n", &c, &why), 0);
	assert_int_equal(c.expire_days, MT_POP3_EXPIRE_NEVER);
	assert_int_equal(c.login_delay, 900);
	assert_true(c.login_delay_per_user);
	assert_int_equal(c.sasl, MT_SASL_SCRAM_SHA_256 | MT_SASL_OTHER);
	assert_true(c.flags & MT_POP3_CAPA_UTF8);
	assert_true(c.flags & MT_POP3_CAPA_IMPLEMENTATION);
	assert_int_equal(strlen(c.implementation), 63);
	assert_memory_equal(c.implementation, "Example ??pop3 server", 21);
	assert_int_equal(capa_text("EXPIRE 30 USER\r\n.\r\n", &c, &why), 0);
	assert_int_equal(c.expire_days, 30);
	assert_true(c.expire_per_user);
}

static void
capa_bad(const char *line, const char *want)
{
	struct mt_pop3_capa c;
	const char *why = NULL;

	mt_pop3_capa_init(&c);
	assert_int_equal(mt_pop3_capa_line(&c, line, strlen(line), &why), -1);
	assert_string_equal(why, want);
}

static void
test_capa_bad(void **state)
{
	(void)state;
	capa_bad("", "CAPA line is empty or starts with a space");
	capa_bad(" TOP", "CAPA line is empty or starts with a space");
	capa_bad("TOP\x01", "CAPA line contains a control character");
	capa_bad("TOP\x7f", "CAPA line contains a control character");
	capa_bad("SASL", "CAPA SASL lists no mechanisms");
	capa_bad("SASL   ", "CAPA SASL lists no mechanisms");
	capa_bad("SASL PLAIN L@GIN", "CAPA SASL lists a malformed mechanism name");
	capa_bad("EXPIRE", "CAPA EXPIRE has no value");
	capa_bad("EXPIRE soon", "CAPA EXPIRE is neither NEVER nor a number of days");
	capa_bad("EXPIRE 3d", "CAPA EXPIRE is neither NEVER nor a number of days");
	capa_bad("EXPIRE 99999999999",
	    "CAPA EXPIRE is neither NEVER nor a number of days");
	capa_bad("LOGIN-DELAY", "CAPA LOGIN-DELAY has no value");
	capa_bad("LOGIN-DELAY NEVER", "CAPA LOGIN-DELAY is not a number of seconds");
	capa_bad("LOGIN-DELAY -5", "CAPA LOGIN-DELAY is not a number of seconds");
}

/* ---- UIDL and LIST ---- */

static void
uidl_is(const char *line, unsigned long num, const char *uid)
{
	unsigned long n;
	const char *u, *why = NULL;
	size_t ul;

	assert_int_equal(mt_pop3_uidl_parse(line, strlen(line), &n, &u, &ul,
	    &why), 0);
	assert_int_equal(n, num);
	assert_int_equal(ul, strlen(uid));
	assert_memory_equal(u, uid, ul);
}

static void
uidl_bad(const char *line, const char *want)
{
	unsigned long n;
	const char *u, *why = NULL;
	size_t ul;

	assert_int_equal(mt_pop3_uidl_parse(line, strlen(line), &n, &u, &ul,
	    &why), -1);
	assert_string_equal(why, want);
}

static void
test_uidl(void **state)
{
	char uid70[80], uid71[80];

	(void)state;
	uidl_is("1 whqtswO00WBw418f9t5JxYwZ", 1, "whqtswO00WBw418f9t5JxYwZ");
	uidl_is("2 QhdPYR:00WBw1Ph7x7", 2, "QhdPYR:00WBw1Ph7x7");
	uidl_is("4294967295 GmailId17f0a1b2c3d4e5f6", 4294967295UL,
	    "GmailId17f0a1b2c3d4e5f6");
	uidl_is("3  AAQkADAwATM0MDAAMS1jZGVkLTk3ZjQtMDACLTAwCgAQAA==  ", 3,
	    "AAQkADAwATM0MDAAMS1jZGVkLTk3ZjQtMDACLTAwCgAQAA==");
	uidl_is("5 !~", 5, "!~");
	memcpy(uid70, "7 ", 2);
	memset(uid70 + 2, 'x', 70);
	uid70[72] = '\0';
	uidl_is(uid70, 7, uid70 + 2);
	memcpy(uid71, uid70, 72);
	memcpy(uid71 + 72, "x", 2);
	uidl_bad(uid71, "unique-id longer than 70 bytes");
	uidl_bad("", "expected a message number");
	uidl_bad("x abc", "expected a message number");
	uidl_bad("-1 abc", "expected a message number");
	uidl_bad("0 abc", "message number 0 (numbers start at 1)");
	uidl_bad("4294967296 abc", "message number too large");
	uidl_bad("1abc", "expected a space after the message number");
	uidl_bad("1\tabc", "expected a space after the message number");
	uidl_bad("1", "expected a space after the message number");
	uidl_bad("1 ", "expected a unique-id after the message number");
	uidl_bad("1 abc def", "unexpected text after the unique-id");
	uidl_bad("1 ab\x80", "unique-id contains a byte outside 0x21-0x7E");
	uidl_bad("1 \x01", "unique-id contains a byte outside 0x21-0x7E");
	uidl_bad("1 abc\x7f", "unique-id contains a byte outside 0x21-0x7E");
}

static void
list_bad(const char *line, const char *want)
{
	unsigned long n;
	uint64_t size;
	const char *why = NULL;

	assert_int_equal(mt_pop3_list_parse(line, strlen(line), &n, &size, &why),
	    -1);
	assert_string_equal(why, want);
}

static void
test_list(void **state)
{
	unsigned long n;
	uint64_t size;
	const char *why = NULL;

	(void)state;
	assert_int_equal(mt_pop3_list_parse("1 1205", 6, &n, &size, &why), 0);
	assert_int_equal(n, 1);
	assert_int_equal(size, 1205);
	assert_int_equal(mt_pop3_list_parse("12 5000000000 more info", 23, &n,
	    &size, &why), 0);
	assert_int_equal(n, 12);
	assert_int_equal(size, 5000000000ULL);
	list_bad("1", "expected a space after the message number");
	list_bad("1 ", "expected a message size");
	list_bad("1 x", "expected a message size");
	list_bad("1 -4", "expected a message size");
	list_bad("1 12x", "expected a space or the end of the line after the size");
	list_bad("1 99999999999999999999", "message size too large");
	list_bad("0 12", "message number 0 (numbers start at 1)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_next),
		cmocka_unit_test(test_line_multiline),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_status_bad),
		cmocka_unit_test(test_code_failure),
		cmocka_unit_test(test_capa_servers),
		cmocka_unit_test(test_capa_values),
		cmocka_unit_test(test_capa_bad),
		cmocka_unit_test(test_uidl),
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
