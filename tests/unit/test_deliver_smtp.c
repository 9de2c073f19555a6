/*
 * The pure parts of the smtp/lmtp targets and of the envelope: specs and
 * their errors, option checks at open, server replies (EHLO keywords,
 * malformed input), the DATA transform across every chunk split, and the
 * header block: collecting it, finding fields, reading addresses.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fetch/deliver_smtp.h"

static void
spec_ok(const char *scheme, const char *arg, enum rm_kind kind,
    enum rm_tls tls, const char *host, const char *port, const char *path,
    const char *where)
{
	struct rm_spec s;
	char err[256] = "";

	assert_int_equal(rm_spec_parse(scheme, arg, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, kind);
	assert_int_equal(s.tls, tls);
	assert_string_equal(s.host, host);
	assert_string_equal(s.port, port);
	assert_string_equal(s.path, path);
	assert_string_equal(s.where, where);
}

static void
spec_bad(const char *scheme, const char *arg, const char *want)
{
	struct rm_spec s;
	char err[256] = "";

	assert_int_equal(rm_spec_parse(scheme, arg, &s, err, sizeof(err)), -1);
	assert_string_equal(err, want);
}

static void
test_spec(void **state)
{
	char longhost[300], longpath[200];

	(void)state;
	spec_ok("smtp", "//mail.example", RM_SMTP, RM_TLS_MAY, "mail.example",
	    "25", "", "mail.example:25");
	spec_ok("SMTP", "//10.0.0.1:2525/", RM_SMTP, RM_TLS_MAY, "10.0.0.1",
	    "2525", "", "10.0.0.1:2525");
	spec_ok("smtp+starttls", "//h", RM_SMTP, RM_TLS_STARTTLS, "h", "25", "",
	    "h:25");
	spec_ok("smtps", "//[::1]", RM_SMTP, RM_TLS_IMPLICIT, "::1", "465", "",
	    "[::1]:465");
	spec_ok("lmtp", "//[2001:db8::1]:2424", RM_LMTP, RM_TLS_MAY,
	    "2001:db8::1", "2424", "", "[2001:db8::1]:2424");
	spec_ok("lmtp+starttls", "//h", RM_LMTP, RM_TLS_STARTTLS, "h", "24", "",
	    "h:24");
	spec_ok("lmtp", "/run/dovecot/lmtp", RM_LMTP, RM_TLS_NONE, "", "",
	    "/run/dovecot/lmtp", "/run/dovecot/lmtp");

	spec_bad("smtp", "mail.example", "smtp:mail.example: expected "
	    "smtp://HOST[:PORT]");
	spec_bad("lmtp", "run/lmtp", "lmtp:run/lmtp: expected "
	    "lmtp:/PATH/TO/SOCKET or lmtp://HOST[:PORT]");
	spec_bad("lmtp+starttls", "/run/lmtp", "lmtp+starttls:/run/lmtp: "
	    "expected lmtp+starttls://HOST[:PORT]");
	spec_bad("smtp", "//", "smtp://: the host is missing");
	spec_bad("smtp", "//:25", "smtp://:25: the host is missing");
	spec_bad("smtp", "//h:0", "smtp://h:0: invalid port \"0\"");
	spec_bad("smtp", "//h:65536", "smtp://h:65536: invalid port \"65536\"");
	spec_bad("smtp", "//h:smtp", "smtp://h:smtp: invalid port \"smtp\"");
	spec_bad("smtp", "//h:", "smtp://h:: invalid port");
	spec_bad("smtp", "//h/x", "smtp://h/x: unexpected \"x\" after the host");
	spec_bad("smtp", "//h:25/x", "smtp://h:25/x: unexpected \"x\" after "
	    "the port");
	spec_bad("smtp", "//h;rm", "smtp://h;rm: unexpected \";rm\" after the "
	    "host");
	spec_bad("smtp", "//[::1", "smtp://[::1: invalid host");
	spec_bad("pop3", "//h", "pop3://h: unknown scheme");
	memset(longhost, 'a', sizeof(longhost) - 1);
	longhost[0] = longhost[1] = '/';
	longhost[sizeof(longhost) - 1] = '\0';
	{
		struct rm_spec s;
		char err[600];

		assert_int_equal(rm_spec_parse("smtp", longhost, &s, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "aaaa: host name too long"));
	}
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	{
		struct rm_spec s;
		char err[400];

		assert_int_equal(rm_spec_parse("lmtp", longpath, &s, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, ": socket path too long (at most "
		    "107 bytes)"));
	}
}

/* The options are checked when the target opens. */
static void
test_open_errors(void **state)
{
	struct mt_deliver_opts o;
	struct event_base *base = event_base_new();
	struct mt_deliver *t;
	char err[256];

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_null(mt_deliver_open_ex("smtp://h", base, NULL, &o, err,
	    sizeof(err)));
	assert_string_equal(err, "smtp://h: no envelope recipient: set a "
	    "recipient or a header to take it from (such as Delivered-To)");
	o.recipient = "not an address";
	assert_null(mt_deliver_open_ex("smtp://h", base, NULL, &o, err,
	    sizeof(err)));
	assert_string_equal(err, "smtp://h: invalid recipient \"not an "
	    "address\"");
	o.recipient = "<>";
	assert_null(mt_deliver_open_ex("smtp://h", base, NULL, &o, err,
	    sizeof(err)));
	assert_string_equal(err, "smtp://h: invalid recipient \"<>\"");
	o.recipient = "User <u@example.net>";
	o.sender = "postmaster";
	assert_null(mt_deliver_open_ex("smtp://h", base, NULL, &o, err,
	    sizeof(err)));
	assert_string_equal(err, "smtp://h: invalid sender \"postmaster\"");
	o.sender = "<>";
	o.helo_name = "bad name";
	assert_null(mt_deliver_open_ex("lmtp:/run/x", base, NULL, &o, err,
	    sizeof(err)));
	assert_string_equal(err, "lmtp:/run/x: invalid EHLO name \"bad name\"");
	o.helo_name = "[192.0.2.1]";
	assert_null(mt_deliver_open_ex("smtp://h:99999", base, NULL, &o, err,
	    sizeof(err)));
	assert_string_equal(err, "smtp://h:99999: invalid port \"99999\"");
	o.tls_ca_file = "/nonexistent/ca.pem";
	assert_null(mt_deliver_open_ex("smtps://h", base, NULL, &o, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "smtps://h: "));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	/* A unix socket needs no TLS, so no CA file is read. */
	t = mt_deliver_open_ex("lmtp:/run/x", base, NULL, &o, err, sizeof(err));
	assert_non_null(t);
	assert_string_equal(mt_deliver_spec(t), "lmtp:/run/x");
	mt_deliver_close(t);
	event_base_free(base);
}

static int
parse(const char *in, struct rm_reply *r, size_t *used, char *err)
{
	return rm_reply_parse(in, strlen(in), r, used, err, 160);
}

static void
test_replies(void **state)
{
	struct rm_reply r;
	char err[160], big[20000];
	size_t used, i;
	const char *ehlo = "250-mail.test Hello\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-starttls\r\n250-8BITMIME\r\n"
	    "250 ENHANCEDSTATUSCODES\r\n354 next";

	(void)state;
	assert_int_equal(parse("220 mail.test ESMTP\r\n", &r, &used, err),
	    RM_REPLY_DONE);
	assert_int_equal(r.code, 220);
	assert_string_equal(r.text, "mail.test ESMTP");
	assert_int_equal(used, 21);
	assert_int_equal(parse(ehlo, &r, &used, err), RM_REPLY_DONE);
	assert_int_equal(used, strlen(ehlo) - 8);
	assert_int_equal(r.lines, 6);
	assert_int_equal(r.caps, RM_CAP_PIPELINING | RM_CAP_SIZE |
	    RM_CAP_STARTTLS | RM_CAP_8BITMIME);
	assert_int_equal(r.size_max, 10240000);
	assert_string_equal(r.text, "mail.test Hello");
	/* Incomplete: nothing used, whatever the split. */
	for (i = 0; i < strlen(ehlo) - 8; i++) {
		assert_int_equal(rm_reply_parse(ehlo, i, &r, &used, err,
		    sizeof(err)), RM_REPLY_MORE);
		assert_int_equal(used, 0);
	}
	/* Bare code, LF line ends, control bytes shown as '?'. */
	assert_int_equal(parse("250\n", &r, &used, err), RM_REPLY_DONE);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.text, "");
	assert_int_equal(parse("550 no\001\033[31m\r\n", &r, &used, err),
	    RM_REPLY_DONE);
	assert_string_equal(r.text, "no??[31m");

	assert_int_equal(parse("hello there\r\n", &r, &used, err),
	    RM_REPLY_BAD);
	assert_string_equal(err, "a malformed reply \"hello there\"");
	assert_int_equal(parse("600 x\r\n", &r, &used, err), RM_REPLY_BAD);
	assert_int_equal(parse("25\r\n", &r, &used, err), RM_REPLY_BAD);
	assert_int_equal(parse("250x\r\n", &r, &used, err), RM_REPLY_BAD);
	assert_string_equal(err, "a malformed reply \"250x\"");
	assert_int_equal(parse("250-a\r\n220 b\r\n", &r, &used, err),
	    RM_REPLY_BAD);
	assert_string_equal(err, "a reply whose lines have different codes "
	    "(250, 220)");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "250 ", 4);
	assert_int_equal(parse(big, &r, &used, err), RM_REPLY_BAD);
	assert_string_equal(err, "a reply line longer than 2048 bytes");
	for (i = 0; i + 8 < sizeof(big); i += 8)
		memcpy(big + i, "250-ab\r\n", 8);
	big[i] = '\0';
	assert_int_equal(parse(big, &r, &used, err), RM_REPLY_BAD);
	assert_string_equal(err, "a reply longer than 16384 bytes");
}

/* The transform of in, written in chunks of step (0: byte by byte). */
static char *
dot(const char *in, size_t len, size_t step)
{
	struct evbuffer *out = evbuffer_new();
	struct rm_dot x = { 0, 0 };
	size_t off, k, n;
	char *s;

	for (off = 0; off < len; off += k) {
		k = step == 0 ? 1 : (len - off < step ? len - off : step);
		assert_int_equal(rm_dot_write(&x, out, in + off, k), 0);
	}
	assert_int_equal(rm_dot_finish(&x, out), 0);
	n = evbuffer_get_length(out);
	s = malloc(n + 1);
	evbuffer_remove(out, s, n);
	s[n] = '\0';
	evbuffer_free(out);
	return s;
}

static void
test_dot_stuffing(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "a", "a\r\n" },
		{ "a\r\n", "a\r\n" },
		{ ".", "..\r\n" },
		{ ".\r\n", "..\r\n" },
		{ "a\r\n.\r\nb", "a\r\n..\r\nb\r\n" },
		{ "..x\r\n.y", "...x\r\n..y\r\n" },
		{ "bare\nlf\n.\n", "bare\r\nlf\r\n..\r\n" },
		{ "bare\rcr\r.\r", "bare\r\ncr\r\n..\r\n" },
		{ "a\r\r\nb", "a\r\n\r\nb\r\n" },
		{ "x.y\r\n a.\r\n", "x.y\r\n a.\r\n" },
		{ "\r\n\r\n.", "\r\n\r\n..\r\n" },
		{ "smuggle\n.\nMAIL FROM:<x>\r\n", "smuggle\r\n..\r\nMAIL "
		    "FROM:<x>\r\n" },
	};
	size_t i, step;
	char *got;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		for (step = 0; step < 8; step++) {
			got = dot(cases[i].in, strlen(cases[i].in), step);
			if (strcmp(got, cases[i].out) != 0)
				fail_msg("case %zu step %zu: got \"%s\"", i, step,
				    got);
			free(got);
		}
	/* NUL bytes and 8-bit bytes pass through. */
	got = dot("a\0b\xe9\r\n", 6, 0);
	assert_memory_equal(got, "a\0b\xe9\r\n", 6);
	free(got);
}

static void
test_header_block(void **state)
{
	static const char msg[] = "Return-Path: <r@x>\r\nX: 1\r\n\r\nbody\r\n"
	    "\r\nmore";
	struct dl_hdr h;
	size_t i, step;
	char *big;

	(void)state;
	for (step = 1; step < 8; step++) {
		memset(&h, 0, sizeof(h));
		for (i = 0; i < sizeof(msg) - 1 && !h.done; i += step)
			dl_hdr_feed(&h, msg + i, sizeof(msg) - 1 - i < step ?
			    sizeof(msg) - 1 - i : step);
		assert_true(h.done);
		assert_int_equal(h.len, 28);	/* up to the empty line */
		assert_memory_equal(h.buf, msg, 28);
		assert_int_equal(dl_hdr_feed(&h, "x", 1), 1);
		assert_int_equal(h.len, 28);
		dl_hdr_free(&h);
	}
	/* LF only, and a message with no header at all. */
	memset(&h, 0, sizeof(h));
	assert_int_equal(dl_hdr_feed(&h, "A: b\n\nc", 7), 1);
	assert_int_equal(h.len, 6);
	dl_hdr_free(&h);
	memset(&h, 0, sizeof(h));
	assert_int_equal(dl_hdr_feed(&h, "\r\nbody", 6), 1);
	assert_int_equal(h.len, 2);
	dl_hdr_free(&h);
	/* No empty line in 64 KiB: done, capped. */
	big = malloc(DL_HDR_MAX + 100);
	memset(big, 'h', DL_HDR_MAX + 100);
	memset(&h, 0, sizeof(h));
	assert_int_equal(dl_hdr_feed(&h, big, 1000), 0);
	assert_int_equal(dl_hdr_feed(&h, big, DL_HDR_MAX + 100), 1);
	assert_int_equal(h.len, DL_HDR_MAX);
	dl_hdr_free(&h);
	free(big);
}

static void
test_fields_and_addresses(void **state)
{
	static const char hdr[] = "Delivered-To-Extra: no@x\r\n"
	    "delivered-to: first@example.net\r\n"
	    "Delivered-To: second@example.net\r\n"
	    "X-Envelope-To\t: <folded@\r\n example.net>\r\n"
	    "Subject: x\r\n\r\n";
	char v[64], a[DL_ADDR_MAX + 1];

	(void)state;
	assert_int_equal(dl_hdr_field(hdr, sizeof(hdr) - 1, "Delivered-To", v,
	    sizeof(v)), 1);
	assert_string_equal(v, "first@example.net");
	assert_int_equal(dl_hdr_field(hdr, sizeof(hdr) - 1, "X-Envelope-To", v,
	    sizeof(v)), 1);
	assert_string_equal(v, "<folded@ example.net>");
	assert_int_equal(dl_hdr_field(hdr, sizeof(hdr) - 1, "Return-Path", v,
	    sizeof(v)), 0);
	assert_int_equal(dl_hdr_field(hdr, sizeof(hdr) - 1, "Subject", v, 2),
	    1);
	assert_string_equal(v, "x");

	assert_int_equal(dl_addr_parse("<a@b>", a, sizeof(a)), 0);
	assert_string_equal(a, "a@b");
	assert_int_equal(dl_addr_parse("Name \"Q\" <a@b> (c)", a, sizeof(a)), 0);
	assert_string_equal(a, "a@b");
	assert_int_equal(dl_addr_parse("  a@b (comment)", a, sizeof(a)), 0);
	assert_string_equal(a, "a@b");
	assert_int_equal(dl_addr_parse("a@b, c@d", a, sizeof(a)), 0);
	assert_string_equal(a, "a@b");
	assert_int_equal(dl_addr_parse("<@relay.example:a@b>", a, sizeof(a)),
	    0);
	assert_string_equal(a, "a@b");
	assert_int_equal(dl_addr_parse("<>", a, sizeof(a)), 0);
	assert_string_equal(a, "");
	assert_int_equal(dl_addr_parse("<a@b", a, sizeof(a)), -1);
	assert_int_equal(dl_addr_parse("<a b@c>", a, sizeof(a)), -1);
	assert_int_equal(dl_addr_parse("<a\r\n@b>", a, sizeof(a)), -1);
	assert_int_equal(dl_addr_parse("", a, sizeof(a)), -1);
	assert_int_equal(dl_addr_parse("\xc3\xa9@b", a, sizeof(a)), -1);

	assert_int_equal(dl_addr_option("a@b", a, sizeof(a)), 0);
	assert_int_equal(dl_addr_option(" Me <a@b> ", a, sizeof(a)), 0);
	assert_string_equal(a, "a@b");
	assert_int_equal(dl_addr_option("a@b c", a, sizeof(a)), -1);
	assert_int_equal(dl_addr_option("<a@b> x", a, sizeof(a)), -1);
}

static void
test_envelope(void **state)
{
	static const char msg[] = "Return-Path: <bounce@example.org>\r\n"
	    "Delivered-To: box@example.net\r\n\r\n";
	struct mt_deliver_opts o;
	struct dl_envelope e;
	struct dl_hdr h;

	(void)state;
	memset(&h, 0, sizeof(h));
	dl_hdr_feed(&h, msg, sizeof(msg) - 1);
	memset(&o, 0, sizeof(o));
	o.recipient_header = "X-Envelope-To , Delivered-To";
	o.recipient = "fb@example.net";
	dl_envelope_find(&o, "MAILER-DAEMON", &h, &e);
	assert_string_equal(e.sender, "bounce@example.org");
	assert_string_equal(e.rcpt, "box@example.net");
	assert_string_equal(e.rcpt_from, "Delivered-To");
	o.recipient_header = "X-Envelope-To";
	o.sender = "<>";
	dl_envelope_find(&o, NULL, &h, &e);
	assert_string_equal(e.sender, "");
	assert_string_equal(e.rcpt, "fb@example.net");
	assert_string_equal(e.rcpt_from, "configuration");
	o.recipient = NULL;
	dl_envelope_find(&o, NULL, &h, &e);
	assert_string_equal(e.rcpt, "");
	dl_hdr_free(&h);
	/* No header block at all: the fetcher's sender, if it is one. */
	o.sender = NULL;
	dl_envelope_find(&o, "pop@example.com", &h, &e);
	assert_string_equal(e.sender, "pop@example.com");
	dl_envelope_find(&o, "MAILER-DAEMON", &h, &e);
	assert_string_equal(e.sender, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_header_block),
		cmocka_unit_test(test_fields_and_addresses),
		cmocka_unit_test(test_envelope),
	};

	mt_log_to_file("/dev/null");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
