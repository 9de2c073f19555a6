/*
 * test_fetch_cmd: the pure pieces of the fetch clients - IMAP command
 * builders (UID sets, quoting, modified UTF-7 mailbox names, INTERNALDATE),
 * the header scanner behind fingerprints, and the STARTTLS record watch.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "fetch/fetch_int.h"
#include "fetch/hdrscan.h"
#include "fetch/imap_cmd.h"
#include "mailtunnel/starttls_watch.h"

static void
test_uid_set(void **state)
{
	uint32_t a[] = { 1, 2, 3, 5, 7, 8, 10 };
	uint32_t big[] = { 4000000000u, 4000000001u, 4294967295u };
	char buf[64];

	(void)state;
	assert_int_equal(ft_imap_uid_set(buf, sizeof(buf), a, 7), 7);
	assert_string_equal(buf, "1:3,5,7:8,10");
	assert_int_equal(ft_imap_uid_set(buf, sizeof(buf), a, 1), 1);
	assert_string_equal(buf, "1");
	/* Cut to fit: whole ranges only. */
	assert_int_equal(ft_imap_uid_set(buf, 5, a, 7), 3);
	assert_string_equal(buf, "1:3");
	assert_int_equal(ft_imap_uid_set(buf, 6, a, 7), 4);
	assert_string_equal(buf, "1:3,5");
	assert_int_equal(ft_imap_uid_set(buf, 8, a, 7), 4);
	assert_string_equal(buf, "1:3,5");
	assert_int_equal(ft_imap_uid_set(buf, 2, a, 7), 0);
	assert_string_equal(buf, "");
	assert_int_equal(ft_imap_uid_set(buf, sizeof(buf), big, 3), 3);
	assert_string_equal(buf, "4000000000:4000000001,4294967295");
	assert_int_equal(ft_imap_uid_set(buf, sizeof(buf), a, 0), 0);
}

static void
test_range_set(void **state)
{
	struct ft_range r[] = { { 1, 4 }, { 0, 0 }, { 9, 9 }, { 20, 30 } };
	char buf[64];

	(void)state;
	assert_int_equal(ft_imap_range_set(buf, sizeof(buf), r, 4), 4);
	assert_string_equal(buf, "1:4,9,20:30");
	assert_int_equal(ft_imap_range_set(buf, 7, r, 4), 3);
	assert_string_equal(buf, "1:4,9");
}

static void
test_quote(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(ft_imap_quote(buf, sizeof(buf), "box"), 0);
	assert_string_equal(buf, "\"box\"");
	assert_int_equal(ft_imap_quote(buf, sizeof(buf), "a\"b\\c d"), 0);
	assert_string_equal(buf, "\"a\\\"b\\\\c d\"");
	assert_int_equal(ft_imap_quote(buf, sizeof(buf), ""), 0);
	assert_string_equal(buf, "\"\"");
	/* What a quoted string cannot carry. */
	assert_int_equal(ft_imap_quote(buf, sizeof(buf), "a\r\nb"), -1);
	assert_int_equal(ft_imap_quote(buf, sizeof(buf), "gr\xc3\xbc\xc3\x9f"),
	    -1);
	assert_int_equal(ft_imap_quote(buf, 6, "abcdef"), -1);
}

static void
test_mailbox(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "INBOX"), 0);
	assert_string_equal(buf, "\"INBOX\"");
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "Sent Items"), 0);
	assert_string_equal(buf, "\"Sent Items\"");
	/* RFC 3501 5.1.3 examples. */
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "~peter/mail/"
	    "\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
	    0);
	assert_string_equal(buf, "\"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"");
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "Entw\xc3\xbcrfe"),
	    0);
	assert_string_equal(buf, "\"Entw&APw-rfe\"");
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "A&B"), 0);
	assert_string_equal(buf, "\"A&-B\"");
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "a\"b"), 0);
	assert_string_equal(buf, "\"a\\\"b\"");
	/* Beyond the BMP: a surrogate pair. */
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "\xf0\x9f\x93\xa7"),
	    0);
	assert_string_equal(buf, "\"&2D3c5w-\"");
	/* Invalid UTF-8: a lone continuation byte, an overlong form. */
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "a\x80"), -1);
	assert_int_equal(ft_imap_mailbox(buf, sizeof(buf), "\xc0\xaf"), -1);
	assert_int_equal(ft_imap_mailbox(buf, 6, "INBOX"), -1);
}

static void
test_internaldate(void **state)
{
	time_t t;

	(void)state;
	assert_int_equal(ft_imap_internaldate("17-Jul-1996 02:44:25 -0700",
	    &t), 0);
	assert_int_equal((long long)t, 837596665LL);
	assert_int_equal(ft_imap_internaldate(" 1-Jan-1970 00:00:00 +0000",
	    &t), 0);
	assert_int_equal((long long)t, 0);
	assert_int_equal(ft_imap_internaldate("29-Feb-2024 23:59:59 +0130",
	    &t), 0);
	assert_int_equal((long long)t, 1709251199LL - 5400);
	assert_int_equal(ft_imap_internaldate("17-Foo-1996 02:44:25 -0700",
	    &t), -1);
	assert_int_equal(ft_imap_internaldate("17-Jul-1996 24:44:25 -0700",
	    &t), -1);
	assert_int_equal(ft_imap_internaldate("17-Jul-1996 02:44:25", &t), -1);
	assert_int_equal(ft_imap_internaldate("17-Jul-1996 02:44:25 -0760",
	    &t), -1);
	assert_int_equal(ft_imap_internaldate("17-Jul-1996 02:44:25 -0700x",
	    &t), -1);
	assert_int_equal(ft_imap_internaldate("", &t), -1);
}

static const char header[] =
    "Return-Path: <a@example.org>\r\n"
    "Message-ID:\r\n <folded@example.org>\r\n"
    "X-Other: message-id: <not-this>\r\n"
    "Date: Sun, 22 Nov 2026\r\n\t10:00:00 +0000\r\n"
    "Message-ID: <second@example.org>\r\n"
    "\r\n"
    "Message-ID: <in-the-body@example.org>\r\n";

static void
test_hdrscan_chunks(void **state)
{
	struct ft_hdrscan h;
	size_t split, i;

	(void)state;
	/* The outcome must not depend on where the stream is cut. */
	for (split = 1; split <= sizeof(header) - 1; split++) {
		ft_hdrscan_init(&h);
		for (i = 0; i < sizeof(header) - 1; i += split)
			ft_hdrscan_feed(&h, header + i, sizeof(header) - 1 - i <
			    split ? sizeof(header) - 1 - i : split);
		assert_true(ft_hdrscan_done(&h));
		assert_string_equal(ft_hdrscan_message_id(&h),
		    " <folded@example.org>");
		assert_string_equal(ft_hdrscan_date(&h),
		    " Sun, 22 Nov 2026\t10:00:00 +0000");
	}
}

static void
test_hdrscan_cases(void **state)
{
	static const char lf[] = "message-id: <lf@x>\nDATE: today\n\nbody";
	static const char none[] = "Subject: nothing\r\n\r\n";
	static const char endless[] = "Subject: no end";
	struct ft_hdrscan h;
	char big[3000];

	(void)state;
	ft_hdrscan_init(&h);
	ft_hdrscan_feed(&h, lf, sizeof(lf) - 1);
	assert_string_equal(ft_hdrscan_message_id(&h), " <lf@x>");
	assert_string_equal(ft_hdrscan_date(&h), " today");
	ft_hdrscan_init(&h);
	ft_hdrscan_feed(&h, none, sizeof(none) - 1);
	assert_true(ft_hdrscan_done(&h));
	assert_null(ft_hdrscan_message_id(&h));
	assert_null(ft_hdrscan_date(&h));
	ft_hdrscan_init(&h);
	ft_hdrscan_feed(&h, endless, sizeof(endless) - 1);
	assert_false(ft_hdrscan_done(&h));
	/* An overlong value is cut, not overflowed. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "Message-ID: ", 12);
	ft_hdrscan_init(&h);
	ft_hdrscan_feed(&h, big, sizeof(big));
	ft_hdrscan_feed(&h, "\r\n\r\n", 4);
	assert_int_equal(strlen(ft_hdrscan_message_id(&h)), FT_HDR_VALUE_MAX);
	assert_true(ft_hdrscan_done(&h));
}

static void
test_watch_scan(void **state)
{
	/* A handshake record header, 4 body bytes, an alert header. */
	static const unsigned char tls[] = { 22, 3, 3, 0, 4, 1, 2, 3, 4,
	    21, 3, 3, 0, 2, 9, 9 };
	static const unsigned char plain[] = "+OK hello\r\n";
	static const unsigned char appdata_first[] = { 23, 3, 3, 0, 1, 0 };
	static const unsigned char too_long[] = { 22, 3, 3, 0x48, 0x01 };
	struct mt_starttls_watch w;
	size_t i;

	(void)state;
	memset(&w, 0, sizeof(w));
	assert_int_equal(mt_starttls_watch_scan(&w, tls, sizeof(tls)),
	    sizeof(tls));
	assert_int_equal(w.seen, 2);
	/* Byte by byte, the same. */
	memset(&w, 0, sizeof(w));
	for (i = 0; i < sizeof(tls); i++)
		assert_int_equal(mt_starttls_watch_scan(&w, tls + i, 1), 1);
	memset(&w, 0, sizeof(w));
	assert_int_equal(mt_starttls_watch_scan(&w, plain, sizeof(plain) - 1),
	    0);
	/* The server may not speak application data first. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(mt_starttls_watch_scan(&w, appdata_first,
	    sizeof(appdata_first)), 0);
	/* A length TLS does not allow. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(mt_starttls_watch_scan(&w, too_long,
	    sizeof(too_long)), 4);
	/* Plaintext after a good record. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(mt_starttls_watch_scan(&w, tls, 9), 9);
	assert_int_equal(mt_starttls_watch_scan(&w, plain, 3), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uid_set),
		cmocka_unit_test(test_range_set),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_internaldate),
		cmocka_unit_test(test_hdrscan_chunks),
		cmocka_unit_test(test_hdrscan_cases),
		cmocka_unit_test(test_watch_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
