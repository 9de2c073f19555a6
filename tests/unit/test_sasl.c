#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mailtunnel/sasl.h"

static void
test_mech_names(void **state)
{
	(void)state;
	assert_int_equal(mt_sasl_mech_bit("PLAIN", 5), MT_SASL_PLAIN);
	assert_int_equal(mt_sasl_mech_bit("xoauth2", 7), MT_SASL_XOAUTH2);
	assert_int_equal(mt_sasl_mech_bit("SCRAM-SHA-256", 13),
	    MT_SASL_SCRAM_SHA_256);
	assert_int_equal(mt_sasl_mech_bit("PLAINX", 5), MT_SASL_PLAIN);
	assert_int_equal(mt_sasl_mech_bit("PLAINX", 6), 0);
	assert_int_equal(mt_sasl_mech_bit("", 0), 0);
	assert_string_equal(mt_sasl_mech_name(MT_SASL_OAUTHBEARER), "OAUTHBEARER");
	assert_null(mt_sasl_mech_name(MT_SASL_OTHER));
	assert_null(mt_sasl_mech_name(0));
	assert_true(mt_sasl_mech_name_valid("SCRAM-SHA-1-PLUS", 16));
	assert_true(mt_sasl_mech_name_valid("x_y", 3));
	assert_false(mt_sasl_mech_name_valid("", 0));
	assert_false(mt_sasl_mech_name_valid("ABCDEFGHIJKLMNOPQRSTU", 21));
	assert_true(mt_sasl_mech_name_valid("ABCDEFGHIJKLMNOPQRST", 20));
	assert_false(mt_sasl_mech_name_valid("A B", 3));
	assert_false(mt_sasl_mech_name_valid("A=B", 3));
	assert_false(mt_sasl_mech_name_valid("\xc3\xa9", 2));
}

static void
enc_is(const char *in, size_t len, const char *want)
{
	char out[64];
	size_t n;
	const char *why = NULL;

	assert_int_equal(mt_sasl_b64_encode(in, len, out, sizeof(out), &n, &why), 0);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
	assert_int_equal(MT_SASL_B64_LEN(len), strlen(want));
}

static void
test_b64_encode(void **state)
{
	char out[5];
	size_t n;
	const char *why = NULL;

	(void)state;
	enc_is("", 0, "");
	enc_is("f", 1, "Zg==");
	enc_is("fo", 2, "Zm8=");
	enc_is("foo", 3, "Zm9v");
	enc_is("foobar", 6, "Zm9vYmFy");
	enc_is("\0\xff\xfe", 3, "AP/+");
	assert_int_equal(mt_sasl_b64_encode("foo", 3, out, 4, &n, &why), -1);
	assert_string_equal(why, "base64 output buffer too small");
	assert_int_equal(mt_sasl_b64_encode("foo", 3, out, 5, &n, &why), 0);
}

static void
dec_is(const char *in, const char *want, size_t wantlen)
{
	char out[64];
	size_t n = 99;
	const char *why = NULL;

	assert_int_equal(mt_sasl_b64_decode(in, strlen(in), out, sizeof(out), &n,
	    &why), 0);
	assert_int_equal(n, wantlen);
	assert_memory_equal(out, want, wantlen);
}

static void
dec_fails(const char *in, size_t outsz, const char *want_why)
{
	char out[64];
	size_t n;
	const char *why = NULL;

	assert_int_equal(mt_sasl_b64_decode(in, strlen(in), out, outsz, &n, &why),
	    -1);
	assert_string_equal(why, want_why);
}

static void
test_b64_decode(void **state)
{
	(void)state;
	dec_is("", "", 0);
	dec_is("Zg==", "f", 1);
	dec_is("Zm8=", "fo", 2);
	dec_is("Zm9vYmFy", "foobar", 6);
	dec_is("AP/+", "\0\xff\xfe", 3);
	dec_fails("Zg=", 64, "base64 length is not a multiple of 4");
	dec_fails("Zm9v\r\n", 64, "base64 length is not a multiple of 4");
	dec_fails("Zg=A", 64, "invalid base64");
	dec_fails("Zh==", 64, "invalid base64");	/* not canonical */
	dec_fails("Zm9=", 64, "invalid base64");	/* not canonical */
	dec_fails("====", 64, "invalid base64");
	dec_fails("Z===", 64, "invalid base64");
	dec_fails("Zg==Zg==", 64, "invalid base64");
	dec_fails("Zm9v Zm9", 64, "invalid base64");
	dec_fails("Zm-_", 64, "invalid base64");	/* base64url is not base64 */
	dec_fails("Zm9vYmFy", 5, "decoded base64 too large");
}

/* Decode a builder's output to compare raw bytes. */
static void
raw_is(char *b64, const char *want, size_t wantlen)
{
	char out[1024];
	size_t n;
	const char *why = NULL;

	assert_non_null(b64);
	assert_int_equal(mt_sasl_b64_decode(b64, strlen(b64), out, sizeof(out),
	    &n, &why), 0);
	assert_int_equal(n, wantlen);
	assert_memory_equal(out, want, wantlen);
	mt_sasl_free(b64);
}

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
test_plain(void **state)
{
	const char *why = NULL;
	char *s, *big;

	(void)state;
	s = mt_sasl_plain("alice", "hunter2", &why);
	assert_string_equal(s, "AGFsaWNlAGh1bnRlcjI=");
	mt_sasl_free(s);
	raw_is(mt_sasl_plain("bob@example.com", "", &why),
	    "\0bob@example.com\0", 17);
	raw_is(mt_sasl_plain("b\xc3\xb6" "b", "p\xc3\xa4ss word", &why),
	    "\0b\xc3\xb6" "b\0p\xc3\xa4ss word", 16);

	assert_null(mt_sasl_plain("", "x", &why));
	assert_string_equal(why, "the user name is empty");
	big = repeat('u', 1025);
	assert_null(mt_sasl_plain(big, "x", &why));
	assert_string_equal(why, "the user name is longer than 1024 bytes");
	assert_null(mt_sasl_plain("alice", big, &why));
	assert_string_equal(why, "the password is longer than 1024 bytes");
	big[1024] = '\0';
	s = mt_sasl_plain("alice", big, &why);
	assert_non_null(s);
	mt_sasl_free(s);
	free(big);
	assert_null(mt_sasl_plain("al\001ce", "x", &why));
	assert_string_equal(why, "the user name contains a ^A byte");
	mt_sasl_free(NULL);
}

static void
test_xoauth2(void **state)
{
	static const char tok[] = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";
	static const char raw[] = "user=someuser@example.com\001auth=Bearer "
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\001\001";
	const char *why = NULL;
	char *s;

	(void)state;
	/* The example from Google's XOAUTH2 documentation. */
	s = mt_sasl_xoauth2("someuser@example.com", tok, &why);
	assert_string_equal(s, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJl"
	    "ciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
	mt_sasl_free(s);
	raw_is(mt_sasl_xoauth2("someuser@example.com", tok, &why), raw,
	    sizeof(raw) - 1);
	/* JWTs (Microsoft) and padded tokens are fine. */
	s = mt_sasl_xoauth2("u", "eyJ0eXAi.eyJhdWQi.c2lnbmF0dXJl~-_+/==", &why);
	assert_non_null(s);
	mt_sasl_free(s);
}

static void
token_fails(const char *tok)
{
	const char *why = NULL;

	assert_null(mt_sasl_xoauth2("u", tok, &why));
	assert_string_equal(why, "the OAuth access token has a character a bearer "
	    "token cannot contain (whitespace, quotes or a line break?)");
	why = NULL;
	assert_null(mt_sasl_oauthbearer("u", "h", 993, tok, &why));
	assert_non_null(why);
}

static void
test_token_checks(void **state)
{
	const char *why = NULL;
	char *big;

	(void)state;
	token_fails("abc\n");
	token_fails("abc def");
	token_fails("\"abc\"");
	token_fails("ab=c");
	token_fails("=abc");
	token_fails("ab\001c");
	token_fails("t\xc3\xa9");
	assert_null(mt_sasl_xoauth2("u", "", &why));
	assert_string_equal(why, "the OAuth access token is empty");
	big = repeat('a', 16385);
	assert_null(mt_sasl_xoauth2("u", big, &why));
	assert_string_equal(why, "the OAuth access token is longer than 16384 bytes");
	free(big);
	assert_null(mt_sasl_xoauth2("", "abc", &why));
	assert_string_equal(why, "the user name is empty");
	assert_null(mt_sasl_xoauth2("a\001b", "abc", &why));
	assert_string_equal(why, "the user name contains a ^A byte");
}

static void
test_oauthbearer(void **state)
{
	/* RFC 7628 section 4.1. */
	static const char raw[] = "n,a=user@example.com,\001host=server.example.com"
	    "\001port=143\001auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
	    "\001\001";
	static const char esc[] = "n,a=a=2Cb=3Dc,\001auth=Bearer t\001\001";
	const char *why = NULL;
	char *big;

	(void)state;
	raw_is(mt_sasl_oauthbearer("user@example.com", "server.example.com", 143,
	    "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", &why), raw,
	    sizeof(raw) - 1);
	raw_is(mt_sasl_oauthbearer("a,b=c", NULL, 0, "t", &why), esc,
	    sizeof(esc) - 1);
	assert_null(mt_sasl_oauthbearer("u", "h", 65536, "t", &why));
	assert_string_equal(why, "the port is not between 1 and 65535");
	assert_null(mt_sasl_oauthbearer("u", "a b", 993, "t", &why));
	assert_string_equal(why, "the host name contains a control character or "
	    "space");
	assert_null(mt_sasl_oauthbearer("u", "a\001b", 993, "t", &why));
	assert_string_equal(why, "the host name contains a control character or "
	    "space");
	big = repeat('h', 1025);
	assert_null(mt_sasl_oauthbearer("u", big, 993, "t", &why));
	assert_string_equal(why, "the host name is longer than 1024 bytes");
	free(big);
}

/* Base64-encode a JSON text and parse it as an error challenge. */
static int
oauth_err(const char *json, struct mt_sasl_oauth_error *e, const char **why)
{
	char b64[8192];
	size_t n;

	assert_int_equal(mt_sasl_b64_encode(json, strlen(json), b64, sizeof(b64),
	    &n, why), 0);
	return mt_sasl_oauth_error_parse(b64, n, e, why);
}

static void
test_oauth_error(void **state)
{
	struct mt_sasl_oauth_error e;
	const char *why = NULL;

	(void)state;
	assert_int_equal(oauth_err("{\"status\":\"401\",\"schemes\":\"bearer\","
	    "\"scope\":\"https://mail.google.com/\"}", &e, &why), 0);
	assert_string_equal(e.status, "401");
	assert_string_equal(e.scope, "https://mail.google.com/");
	assert_int_equal(oauth_err(" {\n \"status\" : \"invalid_token\", \"scope\""
	    ":\"example_scope\",\"openid-configuration\":\"https://example.com/"
	    ".well-known/openid-configuration\"} ", &e, &why), 0);
	assert_string_equal(e.status, "invalid_token");
	assert_string_equal(e.scope, "example_scope");
	assert_int_equal(oauth_err("{\"status\":400}", &e, &why), 0);
	assert_string_equal(e.status, "400");
	assert_string_equal(e.scope, "");
	/* Nested fields named status are not the status. */
	assert_int_equal(oauth_err("{\"a\":{\"status\":\"x\"},\"b\":[1,2,{\"c\":"
	    "null}],\"d\":true,\"status\":\"y\",\"e\":[]}", &e, &why), 0);
	assert_string_equal(e.status, "y");
	assert_int_equal(oauth_err("{\"status\":\"in\\\"va\\u0041lid\\n\\u00e9\"}",
	    &e, &why), 0);
	assert_string_equal(e.status, "in\"vaAlid??");
	assert_int_equal(oauth_err("{\"status\":\"\xc3\xa9\x7f\"}", &e, &why), 0);
	assert_string_equal(e.status, "???");
	assert_int_equal(oauth_err("{}", &e, &why), 0);
	assert_string_equal(e.status, "");
	assert_int_equal(oauth_err("{\"status\":\"0123456789012345678901234567890"
	    "123456789012345678901234567890123456789\"}", &e, &why), 0);
	assert_int_equal(strlen(e.status), 63);
}

static void
oauth_bad(const char *json)
{
	struct mt_sasl_oauth_error e;
	const char *why = NULL;

	assert_int_equal(oauth_err(json, &e, &why), -1);
	assert_string_equal(why, "the error challenge is not a JSON object");
	assert_string_equal(e.status, "");
}

static void
test_oauth_error_bad(void **state)
{
	struct mt_sasl_oauth_error e;
	const char *why = NULL;
	char deep[64], *big;
	size_t n;

	(void)state;
	oauth_bad("");
	oauth_bad("hello");
	oauth_bad("[\"status\"]");
	oauth_bad("{\"status\":\"x\"");
	oauth_bad("{\"status\":\"x\"} x");
	oauth_bad("{\"status\" \"x\"}");
	oauth_bad("{\"status\":\"x\",}");
	oauth_bad("{\"status\":\"a\\qb\"}");
	oauth_bad("{\"status\":\"a\\u00zz\"}");
	oauth_bad("{\"status\":\"a\nb\"}");
	oauth_bad("{\"status\":}");
	oauth_bad("{status:1}");
	/* Nesting: 16 levels are read, 17 are refused. */
	memcpy(deep, "{\"a\":", 5);
	memset(deep + 5, '[', 16);
	memset(deep + 21, ']', 16);
	memcpy(deep + 37, "}", 2);
	assert_int_equal(oauth_err(deep, &e, &why), 0);
	memset(deep + 5, '[', 17);
	memset(deep + 22, ']', 17);
	memcpy(deep + 39, "}", 2);
	oauth_bad(deep);
	assert_int_equal(mt_sasl_oauth_error_parse("!!!!", 4, &e, &why), -1);
	assert_string_equal(why, "the error challenge is not valid base64");
	n = MT_SASL_B64_LEN(4097);
	big = repeat('A', n);
	assert_int_equal(mt_sasl_oauth_error_parse(big, n, &e, &why), -1);
	assert_string_equal(why, "the error challenge is longer than 4096 bytes");
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mech_names),
		cmocka_unit_test(test_b64_encode),
		cmocka_unit_test(test_b64_decode),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_xoauth2),
		cmocka_unit_test(test_token_checks),
		cmocka_unit_test(test_oauthbearer),
		cmocka_unit_test(test_oauth_error),
		cmocka_unit_test(test_oauth_error_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
