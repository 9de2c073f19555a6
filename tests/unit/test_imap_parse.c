/*
 * IMAP response parser: server transcripts in the shape of Dovecot, Gmail
 * and Office 365 replies, fed whole, in every two-chunk split and byte by
 * byte; literals, streaming, pipelining and limits. Malformed input is in
 * test_imap_errors.c.
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

#include "imap_events.h"
#include "mailtunnel/imap_parse.h"
#include "mailtunnel/sasl.h"

/* Run t (with LIT marks) in all splits; its log must be want. */
static void
transcript_is(const char *t, const char *want,
    const struct mt_imap_limits *lim)
{
	struct imap_run r;
	size_t n;
	char *in = imap_expand(t, &n);

	imap_run_all_splits(&r, in, n, lim);
	if (getenv("IMAP_TEST_PRINT") != NULL)
		fprintf(stderr, "----\n%s%s\n", r.log, r.error);
	assert_string_equal(r.log, want);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.consumed, n);
	assert_true(r.idle);
	imap_run_free(&r);
	free(in);
}

static const char dovecot[] =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
    "LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
    "a1 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT THREAD=REFS "
    "UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED CONDSTORE QRESYNC "
    "ESEARCH BINARY MOVE SNIPPET=FUZZY LITERAL+ SPECIAL-USE] Logged in\r\n"
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
    "Flags permitted.\r\n"
    "* 3 EXISTS\r\n"
    "* 0 RECENT\r\n"
    "* OK [UNSEEN 2] First unseen.\r\n"
    "* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
    "* OK [UIDNEXT 9] Predicted next UID\r\n"
    "a2 OK [READ-WRITE] Select completed (0.002 + 0.000 + 0.001 secs).\r\n"
    "* SEARCH 4 7 8\r\n"
    "a3 OK Search completed (0.001 + 0.000 secs).\r\n"
    "* 1 FETCH (UID 4 RFC822.SIZE 65 INTERNALDATE \"02-Mar-2024 10:15:02 "
    "+0100\" FLAGS (\\Seen) BODY[] " LIT("From: Alice <alice@example.org>\r\n"
    "Subject: hi\r\n\r\n.dot\r\nFrom here\r\n") ")\r\n"
    "* 2 FETCH (UID 7 RFC822.SIZE 5 FLAGS () BODY[] " LIT("12345") ")\r\n"
    "a4 OK Fetch completed (0.001 + 0.000 secs).\r\n"
    "* 3 FETCH (UID 8 FLAGS (\\Seen $Label1 Junk))\r\n"
    "a5 OK Store completed.\r\n"
    "* BYE Logging out\r\n"
    "a6 OK Logout completed (0.001 + 0.000 secs).\r\n";

static const char dovecot_log[] =
    "STATUS OK [CAPABILITY caps=3071/1 arg=IMAP4rev1 SASL-IR LOGIN-REFERRALS "
    "ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\n"
    "TAGGED a1 OK [CAPABILITY caps=7ff71/0 arg=IMAP4rev1 SASL-IR ID ENABLE "
    "IDLE SORT THREAD=REFS UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED "
    "CONDSTORE QRESYNC ESEARCH BINARY MOVE SNIPPET=FUZZY LITERAL+ SPECIAL-USE]"
    " Logged in\n"
    "FLAGS 1f kw=0\n"
    "STATUS OK [PERMANENTFLAGS arg=(\\x5cAnswered \\x5cFlagged \\x5cDeleted "
    "\\x5cSeen \\x5cDraft \\x5c*)] Flags permitted.\n"
    "EXISTS 3\n"
    "RECENT 0\n"
    "STATUS OK [UNSEEN n=2 arg=2] First unseen.\n"
    "STATUS OK [UIDVALIDITY n=1700000000 arg=1700000000] UIDs valid\n"
    "STATUS OK [UIDNEXT n=9 arg=9] Predicted next UID\n"
    "TAGGED a2 OK [READ-WRITE] Select completed (0.002 + 0.000 + 0.001 secs)."
    "\n"
    "SEARCH_DONE 4 7 8\n"
    "TAGGED a3 OK Search completed (0.001 + 0.000 secs).\n"
    "BODY seq=1 have=1f uid=4 size=65 date=\"02-Mar-2024 10:15:02 +0100\" "
    "flags=1 kw=0 body=streamed sec=\"\" len=65\n"
    "DATA From: Alice <alice@example.org>\\x0d\\x0aSubject: hi\\x0d\\x0a"
    "\\x0d\\x0a.dot\\x0d\\x0aFrom here\\x0d\\x0a\n"
    "FETCH seq=1 have=1f uid=4 size=65 date=\"02-Mar-2024 10:15:02 +0100\" "
    "flags=1 kw=0 body=streamed sec=\"\" len=65\n"
    "BODY seq=2 have=1b uid=7 size=5 flags=0 kw=0 body=streamed sec=\"\" "
    "len=5\n"
    "DATA 12345\n"
    "FETCH seq=2 have=1b uid=7 size=5 flags=0 kw=0 body=streamed sec=\"\" "
    "len=5\n"
    "TAGGED a4 OK Fetch completed (0.001 + 0.000 secs).\n"
    "FETCH seq=3 have=9 uid=8 flags=1 kw=2\n"
    "TAGGED a5 OK Store completed.\n"
    "STATUS BYE Logging out\n"
    "TAGGED a6 OK Logout completed (0.001 + 0.000 secs).\n";

static void
test_dovecot(void **state)
{
	(void)state;
	transcript_is(dovecot, dovecot_log, NULL);
}

static const char gmail[] =
    "* OK Gimap ready for requests from 192.0.2.1 x1mb1234567abc\r\n"
    "* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN "
    "X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN "
    "AUTH=OAUTHBEARER AUTH=XOAUTH\r\n"
    "a1 OK Thats all she wrote! x1mb1234567abc\r\n"
    "+ eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21h"
    "aWwuZ29vZ2xlLmNvbS8ifQ==\r\n"
    "a2 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n"
    "a3 OK [CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST "
    "CHILDREN X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE "
    "ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE "
    "APPENDLIMIT=35651584] user@gmail.com authenticated (Success)\r\n"
    "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
    "* LIST (\\All \\HasNoChildren) \"/\" \"[Gmail]/All Mail\"\r\n"
    "* LIST (\\HasNoChildren \\Junk) \"/\" \"[Gmail]/Spam\"\r\n"
    "a4 OK Success\r\n"
    "* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing "
    "$Phishing)\r\n"
    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen "
    "$NotPhishing $Phishing \\*)] Flags permitted.\r\n"
    "* OK [UIDVALIDITY 1] UIDs valid.\r\n"
    "* 2 EXISTS\r\n"
    "* 0 RECENT\r\n"
    "* OK [UIDNEXT 13] Predicted next UID.\r\n"
    "* OK [HIGHESTMODSEQ 4172]\r\n"
    "a5 OK [READ-WRITE] INBOX selected. (Success)\r\n"
    "* ESEARCH (TAG \"a6\") UID MIN 11 MAX 12 ALL 11:12\r\n"
    "a6 OK SEARCH completed (Success)\r\n"
    "* 1 FETCH (X-GM-MSGID 1278455344230334865 X-GM-LABELS (\"\\\\Important\" "
    "\"a b\") UID 11 RFC822.SIZE 5 BODY[] " LIT("hello") ")\r\n"
    "* 2 FETCH (X-GM-MSGID 1278455344230334866 UID 12 RFC822.SIZE 0 BODY[] "
    LIT("") ")\r\n"
    "a7 OK Success\r\n";

static const char gmail_log[] =
    "STATUS OK Gimap ready for requests from 192.0.2.1 x1mb1234567abc\n"
    "CAPABILITY 232031/800d IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST "
    "CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN "
    "AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH\n"
    "TAGGED a1 OK Thats all she wrote! x1mb1234567abc\n"
    "CONTINUE eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRw"
    "czovL21haWwuZ29vZ2xlLmNvbS8ifQ==\n"
    "TAGGED a2 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\n"
    "TAGGED a3 OK [CAPABILITY caps=3f77a1/0 arg=IMAP4rev1 UNSELECT IDLE "
    "NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE "
    "ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS "
    "LITERAL- SPECIAL-USE APPENDLIMIT=35651584] user@gmail.com authenticated "
    "(Success)\n"
    "LIST 8 / INBOX\n"
    "LIST 108 / [Gmail]/All Mail\n"
    "LIST 1008 / [Gmail]/Spam\n"
    "TAGGED a4 OK Success\n"
    "FLAGS 1f kw=2\n"
    "STATUS OK [PERMANENTFLAGS arg=(\\x5cAnswered \\x5cFlagged \\x5cDraft "
    "\\x5cDeleted \\x5cSeen $NotPhishing $Phishing \\x5c*)] Flags permitted.\n"
    "STATUS OK [UIDVALIDITY n=1 arg=1] UIDs valid.\n"
    "EXISTS 2\n"
    "RECENT 0\n"
    "STATUS OK [UIDNEXT n=13 arg=13] Predicted next UID.\n"
    "STATUS OK [other HIGHESTMODSEQ arg=4172] \n"
    "TAGGED a5 OK [READ-WRITE] INBOX selected. (Success)\n"
    "ESEARCH_DONE 11:12 | tag=a6 uid=1 have=b min=11 max=12 count=0\n"
    "TAGGED a6 OK SEARCH completed (Success)\n"
    "BODY seq=1 have=13 uid=11 size=5 body=streamed sec=\"\" len=5\n"
    "DATA hello\n"
    "FETCH seq=1 have=13 uid=11 size=5 body=streamed sec=\"\" len=5\n"
    "BODY seq=2 have=13 uid=12 size=0 body=streamed sec=\"\" len=0\n"
    "FETCH seq=2 have=13 uid=12 size=0 body=streamed sec=\"\" len=0\n"
    "TAGGED a7 OK Success\n";

static void
test_gmail(void **state)
{
	(void)state;
	transcript_is(gmail, gmail_log, NULL);
}

static const char office365[] =
    "* OK The Microsoft Exchange IMAP4 service is ready. [TQBXADIAUABSADAAMQ"
    "BDAEEAMAAwADAAMQAuAG4AYQBtAHAAcgBkADAAMQAuAHAAcgBvAGQALgBvAHUAdABsAG8Abw"
    "BrAC4AYwBvAG0A]\r\n"
    "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID "
    "UNSELECT CHILDREN IDLE NAMESPACE LITERAL+\r\n"
    "a1 OK CAPABILITY completed.\r\n"
    "a2 NO AUTHENTICATE failed.\r\n"
    "a3 OK AUTHENTICATE completed.\r\n"
    "* 2 EXISTS\r\n"
    "* 0 RECENT\r\n"
    "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)\r\n"
    "* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft "
    "$MDNSent)] Permanent flags\r\n"
    "* OK [UNSEEN 1] Is the first unseen message\r\n"
    "* OK [UIDVALIDITY 14] UIDVALIDITY value\r\n"
    "* OK [UIDNEXT 45] The next unique identifier value\r\n"
    "a4 OK [READ-WRITE] SELECT completed.\r\n"
    "* SEARCH 43 44\r\n"
    "a5 OK SEARCH completed.\r\n"
    "* 1 FETCH (BODY[] " LIT("xyz") " UID 43 FLAGS (\\Seen \\Recent))\r\n"
    "* 2 FETCH (UID 44 BODY[] NIL)\r\n"
    "a6 OK FETCH completed.\r\n"
    "* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n"
    "a7 OK LOGOUT completed.\r\n";

static const char office365_log[] =
    "STATUS OK The Microsoft Exchange IMAP4 service is ready. [TQBXADIAUABSAD"
    "AAMQBDAEEAMAAwADAAMQAuAG4AYQBtAHAAcgBkADAAMQAuAHAAcgBvAGQALgBvAHUAdABsAG8"
    "AbwBrAC4AYwBvAG0A]\n"
    "CAPABILITY 32171/5 IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR "
    "UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+\n"
    "TAGGED a1 OK CAPABILITY completed.\n"
    "TAGGED a2 NO AUTHENTICATE failed.\n"
    "TAGGED a3 OK AUTHENTICATE completed.\n"
    "EXISTS 2\n"
    "RECENT 0\n"
    "FLAGS 1f kw=1\n"
    "STATUS OK [PERMANENTFLAGS arg=(\\x5cSeen \\x5cAnswered \\x5cFlagged "
    "\\x5cDeleted \\x5cDraft $MDNSent)] Permanent flags\n"
    "STATUS OK [UNSEEN n=1 arg=1] Is the first unseen message\n"
    "STATUS OK [UIDVALIDITY n=14 arg=14] UIDVALIDITY value\n"
    "STATUS OK [UIDNEXT n=45 arg=45] The next unique identifier value\n"
    "TAGGED a4 OK [READ-WRITE] SELECT completed.\n"
    "SEARCH_DONE 43 44\n"
    "TAGGED a5 OK SEARCH completed.\n"
    "BODY seq=1 have=10 body=streamed sec=\"\" len=3\n"
    "DATA xyz\n"
    "FETCH seq=1 have=19 uid=43 flags=21 kw=0 body=streamed sec=\"\" len=3\n"
    "FETCH seq=2 have=11 uid=44 body=nil sec=\"\" len=0\n"
    "TAGGED a6 OK FETCH completed.\n"
    "STATUS BYE Microsoft Exchange Server IMAP4 server signing off.\n"
    "TAGGED a7 OK LOGOUT completed.\n";

static void
test_office365(void **state)
{
	(void)state;
	transcript_is(office365, office365_log, NULL);
}

/* Literal forms a server may use for a body, and for other values. */
static void
test_literal_forms(void **state)
{
	(void)state;
	transcript_is(
	    "* 1 FETCH (UID 1 BODY[]<0> " LITP("ab") ")\r\n"
	    "* 2 FETCH (UID 2 BINARY[] ~" LIT("\x01\xff") ")\r\n"
	    "* 3 FETCH (UID 3 RFC822 " LIT("r") " RFC822.SIZE 1)\r\n"
	    "* 4 FETCH (BODY[HEADER.FIELDS (FROM TO)] " LIT("From: a\r\n\r\n")
	    " BODY[TEXT] " LIT("body") " UID 4)\r\n"
	    "* 5 FETCH (UID 5 BODY[] \"in \\\"line\\\" \\\\ body\")\r\n"
	    "* 6 FETCH (UID 6 BODY[] NIL)\r\n"
	    "* 7 FETCH (ENVELOPE (\"date\" " LIT("a subject\r\nwith a line")
	    " ((\"n\" NIL \"m\" \"h\")) NIL NIL NIL NIL NIL NIL \"<id@x>\") UID 7 "
	    "BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	    "\"7bit\" 3 1)(\"text\" \"html\" NIL NIL NIL \"7bit\" 3 1) "
	    "\"alternative\") MODSEQ (12345))\r\n"
	    "* 8 FETCH (BINARY.SIZE[1] 42 BODY[1]<10> NIL FLAGS (\\Flagged "
	    "\\Answered \\Deleted \\Draft \\Recent \\Seen))\r\n"
	    "* LIST (\\Noselect \\HasChildren) \".\" " LIT("Caf\xc3\xa9 \"q\"")
	    "\r\n"
	    "* LSUB () NIL ATOM]ok\r\n"
	    "* ID (\"name\" " LIT("Dovecot") " \"version\" \"2.3\")\r\n"
	    "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
	    "* 4 EXPUNGE\r\n",
	    "BODY seq=1 have=11 uid=1 body=streamed sec=\"\" len=2 origin=0\n"
	    "DATA ab\n"
	    "FETCH seq=1 have=11 uid=1 body=streamed sec=\"\" len=2 origin=0\n"
	    "BODY seq=2 have=11 uid=2 body=streamed sec=\"\" binary len=2\n"
	    "DATA \\x01\\xff\n"
	    "FETCH seq=2 have=11 uid=2 body=streamed sec=\"\" binary len=2\n"
	    "BODY seq=3 have=11 uid=3 body=streamed sec=\"RFC822\" len=1\n"
	    "DATA r\n"
	    "FETCH seq=3 have=13 uid=3 size=1 body=streamed sec=\"RFC822\" len=1\n"
	    "BODY seq=4 have=10 body=streamed sec=\"HEADER.FIELDS (FROM TO)\" "
	    "len=11\n"
	    "DATA From: a\\x0d\\x0a\\x0d\\x0a\n"
	    "BODY seq=4 have=10 body=streamed sec=\"TEXT\" len=4\n"
	    "DATA body\n"
	    "FETCH seq=4 have=11 uid=4 body=streamed sec=\"TEXT\" len=4\n"
	    "FETCH seq=5 have=11 uid=5 body=inline sec=\"\" len=16 "
	    "inline=in \"line\" \\x5c body\n"
	    "FETCH seq=6 have=11 uid=6 body=nil sec=\"\" len=0\n"
	    "FETCH seq=7 have=21 uid=7 modseq=12345\n"
	    "FETCH seq=8 have=18 flags=3f kw=0 body=nil sec=\"1\" len=0 origin=10\n"
	    "LIST 5 . Caf\\xc3\\xa9 \"q\"\n"
	    "LIST 0 - ATOM]ok\n"
	    "OTHER ID\n"
	    "OTHER NAMESPACE\n"
	    "EXPUNGE 4\n", NULL);
}

/* Body data points into the caller's input; nothing is copied whole. */
static void
test_body_by_reference(void **state)
{
	size_t n = 300000, hlen, i, used, off = 0, got = 0, events = 0;
	struct mt_imap_parser *p = mt_imap_parser_new(NULL);
	const struct mt_imap_event *ev;
	char *in = malloc(n + 100);
	int r;

	(void)state;
	assert_non_null(p);
	assert_non_null(in);
	hlen = (size_t)sprintf(in, "* 9 FETCH (UID 90 BODY[] {%zu}\r\n", n);
	for (i = 0; i < n; i++)
		in[hlen + i] = (char)(i * 7);
	memcpy(in + hlen + n, ")\r\nA1 OK done\r\n", 15);
	while (off < hlen + n + 15) {
		/* Chunks of 16 KiB, as TLS records arrive. */
		size_t len = hlen + n + 15 - off;
		r = mt_imap_parser_feed(p, in + off, len < 16384 ? len : 16384,
		    &used, &ev);
		assert_int_not_equal(r, -1);
		if (r == 1 && ev->type == MT_IMAP_EV_FETCH_DATA) {
			assert_ptr_equal(ev->data.p, in + off);
			assert_memory_equal(ev->data.p, in + hlen + got, ev->data.len);
			got += ev->data.len;
			events++;
		}
		off += used;
	}
	assert_int_equal(got, n);
	assert_true(events <= n / 16384 + 2);
	assert_true(mt_imap_parser_idle(p));
	mt_imap_parser_free(p);
	free(in);
}

/* Several responses in one buffer: each call stops after its event. */
static void
test_pipelining(void **state)
{
	static const char in[] =
	    "* 1 FETCH (UID 10 BODY[] {2}\r\nhi)\r\nA7 OK Fetch done\r\n"
	    "* 2 FETCH (UID 11 BODY[] {2}\r\nho)\r\nA8 OK Fetch done\r\n";
	struct mt_imap_parser *p = mt_imap_parser_new(NULL);
	const struct mt_imap_event *ev;
	size_t used, off = 0;
	uint32_t tags[2], nt = 0, uids[2], nu = 0;
	char tag[16];

	(void)state;
	while (off < sizeof(in) - 1) {
		assert_int_equal(mt_imap_parser_feed(p, in + off, sizeof(in) - 1 - off,
		    &used, &ev), 1);
		assert_true(used < sizeof(in) - off);
		off += used;
		if (ev->type == MT_IMAP_EV_TAGGED)
			assert_int_equal(mt_imap_tag_parse(ev->tag, &tags[nt++]), 0);
		if (ev->type == MT_IMAP_EV_FETCH)
			uids[nu++] = ev->fetch.uid;
	}
	assert_int_equal(nt, 2);
	assert_int_equal(tags[0], 7);
	assert_int_equal(tags[1], 8);
	assert_int_equal(uids[0], 10);
	assert_int_equal(uids[1], 11);
	mt_imap_parser_free(p);
	assert_int_equal(mt_imap_tag_format(tag, sizeof(tag), 42), 0);
	assert_string_equal(tag, "A42");
	assert_int_equal(mt_imap_tag_format(tag, 3, 42), -1);
	assert_int_equal(mt_imap_tag_format(tag, sizeof(tag), 4294967295U), 0);
	assert_string_equal(tag, "A4294967295");
}

static void
tag_bad(const char *s)
{
	struct mt_imap_str t = { s, strlen(s) };
	uint32_t n;

	assert_int_equal(mt_imap_tag_parse(t, &n), -1);
}

static void
test_tags(void **state)
{
	struct mt_imap_str t = { "A4294967295", 11 };
	uint32_t n;

	(void)state;
	assert_int_equal(mt_imap_tag_parse(t, &n), 0);
	assert_int_equal(n, 4294967295U);
	tag_bad("A4294967296");
	tag_bad("A");
	tag_bad("a1");
	tag_bad("A01");
	tag_bad("A1x");
	tag_bad("B1");
	tag_bad("");
}

/* SEARCH on a big mailbox: far longer than the line limit, in batches. */
static void
test_search_streams(void **state)
{
	struct mt_imap_limits lim = { 256, 1024, 1 << 20, 8 };
	struct imap_run r;
	char *in = malloc(20000), *want = malloc(20000);
	size_t n, w = 0, i;

	(void)state;
	assert_non_null(in);
	assert_non_null(want);
	n = (size_t)sprintf(in, "* SEARCH");
	for (i = 1; i <= 1000; i++)
		n += (size_t)sprintf(in + n, " %zu", i * 3);
	n += (size_t)sprintf(in + n, " (MODSEQ 917162500)\r\nA5 OK done\r\n");
	for (i = 1; i <= 1000; i++) {
		if (i % 64 == 1)
			w += (size_t)sprintf(want + w, i > 960 ? "SEARCH_DONE" :
			    "SEARCH");
		w += (size_t)sprintf(want + w, " %zu", i * 3);
		if (i % 64 == 0 || i == 1000)
			w += (size_t)sprintf(want + w, "\n");
	}
	sprintf(want + w, "TAGGED A5 OK done\n");
	imap_run_all_splits(&r, in, n, &lim);
	assert_string_equal(r.log, want);
	assert_int_equal(r.rc, 0);
	imap_run_free(&r);
	free(in);
	free(want);
}

/* A batch that fills exactly where the line ends needs no extra event. */
static void
test_search_batch_edges(void **state)
{
	char in[1024], want[1024];
	size_t n, w, i;
	int lf;

	(void)state;
	for (lf = 0; lf < 2; lf++) {
		n = (size_t)sprintf(in, "* search");
		w = (size_t)sprintf(want, "SEARCH_DONE");
		for (i = 1; i <= 64; i++) {
			n += (size_t)sprintf(in + n, " %zu", i);
			w += (size_t)sprintf(want + w, " %zu", i);
		}
		n += (size_t)sprintf(in + n, "%s", lf ? "\n" : " \r\n");
		if (!lf) {
			memcpy(want, "SEARCH     ", 11);
			memmove(want + 6, want + 11, w - 11);
			w -= 5;
			w += (size_t)sprintf(want + w, "\nSEARCH_DONE");
		}
		sprintf(want + w, "\n");
		transcript_is(in, want, NULL);
	}
	transcript_is("* SEARCH\r\n* SEARCH \r\n* SEARCH\n", "SEARCH_DONE\n"
	    "SEARCH_DONE\nSEARCH_DONE\n", NULL);
}

static void
test_esearch(void **state)
{
	(void)state;
	transcript_is(
	    "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
	    "* ESEARCH (TAG \"A283\") UID ALL 2,10:11,20:15 MODSEQ 5 "
	    "PARTIAL (1:10 2,4) RELEVANCY (1 2)\r\n"
	    "* ESEARCH\r\n"
	    "* esearch uid count 0\n"
	    "A283 OK done\r\n",
	    "ESEARCH_DONE | tag=A282 uid=0 have=5 min=2 max=0 count=3\n"
	    "ESEARCH_DONE 2 10:11 15:20 | tag=A283 uid=1 have=8 min=0 max=0 "
	    "count=0\n"
	    "ESEARCH_DONE | tag= uid=0 have=0 min=0 max=0 count=0\n"
	    "ESEARCH_DONE | tag= uid=1 have=4 min=0 max=0 count=0\n"
	    "TAGGED A283 OK done\n", NULL);
}

/* Status and text: 8-bit text, bare LF, no text, continuation forms. */
static void
test_text_forms(void **state)
{
	(void)state;
	transcript_is(
	    "* OK [ALERT] Gr\xc3\xbc\xc3\x9f" "e, your quota is low\r\n"
	    "* NO [UNAVAILABLE] Try later\n"
	    "* BAD\r\n"
	    "* PREAUTH [CAPABILITY IMAP4rev2 STARTTLS LOGINDISABLED] hello\r\n"
	    "A1 NO [PRIVACYREQUIRED] TLS first\r\n"
	    "A2 BAD [CLIENTBUG] Unknown command\r\n"
	    "A3 OK [APPENDUID 38505 3955] APPEND completed\r\n"
	    "+\r\n"
	    "+ Ready for literal data\r\n"
	    "+ [ALERT] careful\r\n"
	    "* OK [UIDVALIDITY 4294967295] \r\n",
	    "STATUS OK [ALERT] Gr\\xc3\\xbc\\xc3\\x9fe, your quota is low\n"
	    "STATUS NO [UNAVAILABLE] Try later\n"
	    "STATUS BAD \n"
	    "STATUS PREAUTH [CAPABILITY caps=e/0 arg=IMAP4rev2 STARTTLS "
	    "LOGINDISABLED] hello\n"
	    "TAGGED A1 NO [PRIVACYREQUIRED] TLS first\n"
	    "TAGGED A2 BAD [other CLIENTBUG] Unknown command\n"
	    "TAGGED A3 OK [other APPENDUID arg=38505 3955] APPEND completed\n"
	    "CONTINUE \n"
	    "CONTINUE Ready for literal data\n"
	    "CONTINUE [ALERT] careful\n"
	    "STATUS OK [UIDVALIDITY n=4294967295 arg=4294967295] \n", NULL);
}

/* A response cut short is "need more", and the parser is not idle. */
static void
test_truncated(void **state)
{
	static const char *const cuts[] = {
		"* 1 FETCH (UID 1 BODY[] {10}\r\nabc",
		"* 1 FETCH (UID 1 BODY[] {10}\r\n0123456789",
		"* 1 FETCH (UID 1 BODY[] {10}\r\n0123456789 UID",
		"* LIST () \"/\" {5}\r\nINB",
		"* SEARCH 1 2",
		"* ESEARCH (TAG \"a\") ALL 1:",
		"* OK still typing",
		"*",
	};
	struct imap_run r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		imap_run(&r, cuts[i], strlen(cuts[i]), NULL, 0, NULL);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.consumed, strlen(cuts[i]));
		assert_false(r.idle);
		imap_run_free(&r);
	}
}

static void
test_codes(void **state)
{
	struct mt_imap_limits bad = { 10, 10, 10, 1 };

	(void)state;
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_AUTHENTICATIONFAILED),
	    MT_IMAP_FAIL_AUTH);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_AUTHORIZATIONFAILED),
	    MT_IMAP_FAIL_AUTH);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_EXPIRED),
	    MT_IMAP_FAIL_AUTH);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_UNAVAILABLE),
	    MT_IMAP_FAIL_TEMP);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_INUSE),
	    MT_IMAP_FAIL_TEMP);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_SERVERBUG),
	    MT_IMAP_FAIL_TEMP);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_PRIVACYREQUIRED),
	    MT_IMAP_FAIL_PERM);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_NONEXISTENT),
	    MT_IMAP_FAIL_PERM);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_ALERT),
	    MT_IMAP_FAIL_UNKNOWN);
	assert_int_equal(mt_imap_code_failure(MT_IMAP_CODE_NONE),
	    MT_IMAP_FAIL_UNKNOWN);
	assert_string_equal(mt_imap_code_name(MT_IMAP_CODE_READ_ONLY), "READ-ONLY");
	assert_string_equal(mt_imap_code_name(MT_IMAP_CODE_NONE), "");
	assert_string_equal(mt_imap_code_name(MT_IMAP_CODE_OTHER), "other");
	/* Limits too small to hold a greeting are refused. */
	assert_null(mt_imap_parser_new(&bad));
	bad.line_max = 64;
	bad.depth_max = 0;
	assert_null(mt_imap_parser_new(&bad));
	bad.depth_max = 1;
	mt_imap_parser_free(mt_imap_parser_new(&bad));
	mt_imap_parser_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dovecot),
		cmocka_unit_test(test_gmail),
		cmocka_unit_test(test_office365),
		cmocka_unit_test(test_literal_forms),
		cmocka_unit_test(test_body_by_reference),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_search_streams),
		cmocka_unit_test(test_search_batch_edges),
		cmocka_unit_test(test_esearch),
		cmocka_unit_test(test_text_forms),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
