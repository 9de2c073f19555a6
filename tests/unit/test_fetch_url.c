#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mailtunnel/fetch_url.h"

static void
parses(const char *s, struct mt_fetch_url *u)
{
	char err[256];

	if (mt_fetch_url_parse(s, u, err, sizeof(err)) != 0)
		fail_msg("%s: %s", s, err);
}

/* Parse, render, parse again: the two parses agree. */
static void
renders_as(const char *s, const char *want)
{
	struct mt_fetch_url u, v;
	char buf[1024];

	parses(s, &u);
	mt_fetch_url_format(&u, buf, sizeof(buf));
	assert_string_equal(buf, want);
	parses(buf, &v);
	assert_memory_equal(&u, &v, sizeof(u));
}

static void
test_schemes(void **state)
{
	struct mt_fetch_url u;

	(void)state;
	parses("pop3s://alice@pop.example.com", &u);
	assert_int_equal(u.proto, MT_FETCH_POP3);
	assert_false(u.starttls);
	assert_int_equal(u.port, 995);
	assert_false(u.port_given);
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.host, "pop.example.com");
	assert_string_equal(u.mailbox, "");
	assert_string_equal(u.auth, "");
	parses("imaps://alice@imap.example.com", &u);
	assert_int_equal(u.proto, MT_FETCH_IMAP);
	assert_false(u.starttls);
	assert_int_equal(u.port, 993);
	parses("pop3://carol@192.0.2.7:1110", &u);
	assert_int_equal(u.proto, MT_FETCH_POP3);
	assert_true(u.starttls);
	assert_int_equal(u.port, 1110);
	assert_true(u.port_given);
	parses("IMAP://dave@mail.example.net", &u);
	assert_int_equal(u.proto, MT_FETCH_IMAP);
	assert_true(u.starttls);
	assert_int_equal(u.port, 143);
	assert_int_equal(mt_fetch_url_default_port(MT_FETCH_POP3, 0), 995);
	assert_int_equal(mt_fetch_url_default_port(MT_FETCH_IMAP, 0), 993);
	assert_int_equal(mt_fetch_url_default_port(MT_FETCH_POP3, 1), 110);
	assert_int_equal(mt_fetch_url_default_port(MT_FETCH_IMAP, 1), 143);
}

static void
test_users_and_mailboxes(void **state)
{
	struct mt_fetch_url u;

	(void)state;
	parses("imaps://user%40example.com@imap.gmail.com", &u);
	assert_string_equal(u.user, "user@example.com");
	assert_string_equal(u.host, "imap.gmail.com");
	/* An unencoded '@' in the user: the last one ends the user. */
	parses("imaps://user@example.com@outlook.office365.com:993/INBOX", &u);
	assert_string_equal(u.user, "user@example.com");
	assert_string_equal(u.host, "outlook.office365.com");
	assert_string_equal(u.mailbox, "INBOX");
	parses("imaps://bob@host/Archive/2023%2F12", &u);
	assert_string_equal(u.mailbox, "Archive/2023/12");
	parses("imaps://bob@host/%C3%89t%C3%A9%20%26%20co", &u);
	assert_string_equal(u.mailbox, "\xc3\x89t\xc3\xa9 & co");
	parses("imaps://bob@host/", &u);
	assert_string_equal(u.mailbox, "");
	parses("pop3s://bob@host/", &u);
	assert_string_equal(u.mailbox, "");
	parses("imaps://b%c3%b6b@host", &u);
	assert_string_equal(u.user, "b\xc3\xb6" "b");
}

static void
test_auth_and_ipv6(void **state)
{
	struct mt_fetch_url u;

	(void)state;
	parses("imaps://me%40gmail.com;AUTH=XOAUTH2@imap.gmail.com", &u);
	assert_string_equal(u.user, "me@gmail.com");
	assert_string_equal(u.auth, "XOAUTH2");
	parses("pop3s://me;auth=oauthbearer@pop.gmail.com", &u);
	assert_string_equal(u.auth, "OAUTHBEARER");
	parses("imaps://me;AUTH=*@h", &u);
	assert_string_equal(u.auth, "");
	parses("imaps://me;AUTH=plain@h", &u);
	assert_string_equal(u.auth, "PLAIN");
	parses("imaps://alice@[::1]:1993/INBOX", &u);
	assert_string_equal(u.host, "::1");
	assert_true(u.ipv6);
	assert_int_equal(u.port, 1993);
	parses("pop3s://alice@[2001:db8::25]", &u);
	assert_string_equal(u.host, "2001:db8::25");
	assert_int_equal(u.port, 995);
}

static void
test_render(void **state)
{
	char buf[16];
	struct mt_fetch_url u;

	(void)state;
	renders_as("IMAPS://user%40example.com;auth=xoauth2@imap.gmail.com:993"
	    "/INBOX/Sub", "imaps://user%40example.com;AUTH=XOAUTH2@imap.gmail.com"
	    ":993/INBOX/Sub");
	renders_as("pop3://alice@[::1]:1110", "pop3://alice@[::1]:1110");
	renders_as("imap://a@h/a%3Bb%20c%25d%3F%23", "imap://a@h/a%3Bb%20c%25d%3F%23");
	renders_as("imaps://b%c3%b6b%3a@h/", "imaps://b%C3%B6b%3A@h");
	renders_as("pop3s://a.b-c_d~e@h", "pop3s://a.b-c_d~e@h");
	/* A short buffer gets a NUL-terminated prefix. */
	parses("imaps://alice@imap.example.com/INBOX", &u);
	mt_fetch_url_format(&u, buf, sizeof(buf));
	assert_string_equal(buf, "imaps://alice@i");
	mt_fetch_url_format(&u, buf, 1);
	assert_string_equal(buf, "");
	/* An escape that does not fit ends the output: still a prefix. */
	parses("pop3://ca((rol@[::1]:1110", &u);
	mt_fetch_url_format(&u, buf, 13);
	assert_string_equal(buf, "pop3://ca%28");
	mt_fetch_url_format(&u, buf, 12);
	assert_string_equal(buf, "pop3://ca");
	mt_fetch_url_format(&u, buf, 15);
	assert_string_equal(buf, "pop3://ca%28");
	mt_fetch_url_format(&u, buf, 16);
	assert_string_equal(buf, "pop3://ca%28%28");
}

static void
fails(const char *s, const char *want)
{
	struct mt_fetch_url u;
	char err[512];

	assert_int_equal(mt_fetch_url_parse(s, &u, err, sizeof(err)), -1);
	assert_string_equal(err, want);
}

static void
test_errors_scheme(void **state)
{
	char big[2100];

	(void)state;
	fails("alice@example.com", "not a URL: expected scheme://user@host, "
	    "e.g. imaps://alice@imap.example.com");
	/* Text before "://" that cannot be a scheme is never quoted. */
	fails("imaps//alice:S3cret@host://x@h", "not a URL: expected "
	    "scheme://user@host, e.g. imaps://alice@imap.example.com");
	fails("1map://alice@host", "not a URL: expected scheme://user@host, "
	    "e.g. imaps://alice@imap.example.com");
	fails("averyveryverylongscheme://alice@host", "not a URL: expected "
	    "scheme://user@host, e.g. imaps://alice@imap.example.com");
	fails("imaps:/alice@host", "not a URL: expected scheme://user@host, "
	    "e.g. imaps://alice@imap.example.com");
	fails("https://alice@example.com", "unknown URL scheme \"https\": use "
	    "pop3s:// or imaps:// (TLS from the start), or pop3:// or imap:// "
	    "(STARTTLS, required)");
	fails("imap4s://alice@host", "unknown URL scheme \"imap4s\" (did you mean "
	    "imaps://?): use pop3s:// or imaps:// (TLS from the start), or "
	    "pop3:// or imap:// (STARTTLS, required)");
	fails("pop://alice@host", "unknown URL scheme \"pop\" (did you mean "
	    "pop3s://?): use pop3s:// or imaps:// (TLS from the start), or "
	    "pop3:// or imap:// (STARTTLS, required)");
	fails("://alice@host", "unknown URL scheme \"\": use pop3s:// or imaps:// "
	    "(TLS from the start), or pop3:// or imap:// (STARTTLS, required)");
	fails("pop3+ssl://alice@host", "unknown URL scheme \"pop3+ssl\": use "
	    "pop3s:// or imaps:// (TLS from the start), or pop3:// or imap:// "
	    "(STARTTLS, required)");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "imaps://", 8);
	fails(big, "URL longer than 2048 bytes");
	fails("imaps://a b@host", "the URL contains a space or a control "
	    "character (write a space as %20)");
	fails("imaps://ab@host\n", "the URL contains a space or a control "
	    "character (write a space as %20)");
	fails("imaps://a@host/INBOX?x", "'?' and '#' are not understood in a "
	    "fetch URL (write them as %3F and %23 in names)");
	fails("imaps://a@host#frag", "'?' and '#' are not understood in a "
	    "fetch URL (write them as %3F and %23 in names)");
}

static void
test_errors_user(void **state)
{
	struct mt_fetch_url u;
	char err[512], big[300];

	(void)state;
	fails("imaps://imap.example.com", "no user name: write it before the "
	    "host, e.g. imaps://alice@imap.example.com");
	fails("imaps://imap.example.com/a@b", "no user name: write it before the "
	    "host, e.g. imaps://alice@imap.example.com");
	fails("imaps://@host", "no user name before '@' "
	    "(e.g. imaps://alice@imap.example.com)");
	fails("imaps://;AUTH=PLAIN@host", "no user name before '@' "
	    "(e.g. imaps://alice@imap.example.com)");
	/* The password refusal never quotes it. */
	assert_int_equal(mt_fetch_url_parse("imaps://alice:s3cr3t@host:99999",
	    &u, err, sizeof(err)), -1);
	assert_string_equal(err, "a password in the URL is refused (it would "
	    "show in process lists and logs): put it in a password file instead");
	assert_null(strstr(err, "s3cr3t"));
	fails("imaps://alice;AUTH=PLAIN:pw@host", "a password in the URL is "
	    "refused (it would show in process lists and logs): put it in a "
	    "password file instead");
	fails("imaps://alice;PASS=S3cret@host", "unknown parameter \";PASS\" "
	    "after the user name (only ;AUTH=mechanism is understood)");
	fails("imaps://alice;FOO@host", "unknown parameter \";FOO\" after the "
	    "user name (only ;AUTH=mechanism is understood)");
	fails("imaps://alice;@host", "unknown parameter \";\" after the user "
	    "name (only ;AUTH=mechanism is understood)");
	fails("imaps://a;AUTH=PLAIN;AUTH=LOGIN@h", "more than one ;AUTH= "
	    "parameter");
	fails("imaps://a;AUTH=@h", "empty mechanism after ;AUTH=");
	fails("imaps://a;AUTH=FOO@h", "unknown authentication mechanism \"FOO\" "
	    "in ;AUTH= (use PLAIN, LOGIN, XOAUTH2, OAUTHBEARER, or * for "
	    "automatic)");
	fails("imaps://a;AUTH=+APOP@h", "malformed mechanism name after ;AUTH= "
	    "(use PLAIN, LOGIN, XOAUTH2, OAUTHBEARER, or * for automatic)");
	fails("imaps://a%4@h", "bad percent-encoding in the user name (expected "
	    "% and two hex digits)");
	fails("imaps://a%zz@h", "bad percent-encoding in the user name (expected "
	    "% and two hex digits)");
	fails("imaps://a%@h", "bad percent-encoding in the user name (expected "
	    "% and two hex digits)");
	fails("imaps://a%00b@h", "the user name contains %00");
	fails("imaps://a%0D%0ADELE%201@h", "the user name contains a control "
	    "character");
	fails("imaps://a%7f@h", "the user name contains a control character");
	memcpy(big, "imaps://", 8);
	memset(big + 8, 'u', 256);
	memcpy(big + 264, "@h", 3);
	fails(big, "the user name is longer than 255 bytes");
	memcpy(big + 263, "@h", 3);
	parses(big, &u);
	assert_int_equal(strlen(u.user), 255);
}

static void
test_errors_host(void **state)
{
	char big[300];
	struct mt_fetch_url u;

	(void)state;
	fails("imaps://a@", "no host name after '@'");
	fails("imaps://a@/INBOX", "no host name after '@'");
	fails("imaps://a@:993", "no host name after '@'");
	fails("imaps://a@ho%73t", "bad character '%' in the host name");
	fails("imaps://a@h\xc3\xa9", "bad byte 0xC3 in the host name (write "
	    "international names in their xn-- form)");
	fails("imaps://a@[::1", "missing ']' after the IPv6 address");
	fails("imaps://a@[::g]", "bad IPv6 address \"::g\"");
	fails("imaps://a@[]", "bad IPv6 address \"\"");
	fails("imaps://a@[192.0.2.1]", "bad IPv6 address \"192.0.2.1\"");
	fails("imaps://a@[::1]x", "expected ':' or the end of the host after ']'");
	fails("imaps://a@[::1]:", "empty port after ':'");
	fails("imaps://a@::1", "an IPv6 address must be in brackets, e.g. "
	    "imaps://alice@[2001:db8::1]:993");
	fails("imaps://a@2001:db8::1:993", "an IPv6 address must be in brackets, "
	    "e.g. imaps://alice@[2001:db8::1]:993");
	memcpy(big, "imaps://a@", 10);
	memset(big + 10, 'h', 254);
	big[264] = '\0';
	fails(big, "host name longer than 253 bytes");
	big[263] = '\0';
	parses(big, &u);
	assert_int_equal(strlen(u.host), 253);
}

static void
test_errors_port_and_path(void **state)
{
	char big[600];

	(void)state;
	fails("imaps://a@h:", "empty port after ':'");
	fails("imaps://a@h:0", "bad port \"0\" (expected a number from 1 to 65535)");
	fails("imaps://a@h:65536", "bad port \"65536\" (expected a number from 1 "
	    "to 65535)");
	fails("imaps://a@h:99999999999999999999", "bad port \"999999999999999\" "
	    "(expected a number from 1 to 65535)");
	fails("imaps://a@h:12a", "bad port \"12a\" (expected a number from 1 to "
	    "65535)");
	fails("imaps://a@h:-1", "bad port \"-1\" (expected a number from 1 to "
	    "65535)");
	fails("imaps://a@h:imaps", "bad port \"imaps\" (expected a number from 1 "
	    "to 65535)");
	fails("pop3s://a@h/INBOX", "a POP3 URL has no mailbox (POP3 reads only "
	    "the inbox): remove the path after the host, or use imaps:// to read "
	    "another mailbox");
	fails("imaps://a@h/INBOX;UIDVALIDITY=385759045", "IMAP URL parameters "
	    "(;UIDVALIDITY=, ;UID=, ...) are not supported; write ';' in a mailbox "
	    "name as %3B");
	fails("imaps://a@h/a%2", "bad percent-encoding in the mailbox name "
	    "(expected % and two hex digits)");
	fails("imaps://a@h/a%00", "the mailbox name contains %00");
	fails("imaps://a@h/a%0a", "the mailbox name contains a control character");
	memcpy(big, "imaps://a@h/", 12);
	memset(big + 12, 'm', 512);
	big[524] = '\0';
	fails(big, "the mailbox name is longer than 511 bytes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schemes),
		cmocka_unit_test(test_users_and_mailboxes),
		cmocka_unit_test(test_auth_and_ipv6),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_errors_scheme),
		cmocka_unit_test(test_errors_user),
		cmocka_unit_test(test_errors_host),
		cmocka_unit_test(test_errors_port_and_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
