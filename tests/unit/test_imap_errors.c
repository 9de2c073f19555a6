/*
 * IMAP response parser: malformed input. Every message a user can see in a
 * log line, each from a response that triggers it, and the same message in
 * every split of the input.
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

static void
fails_lim(const char *in, size_t n, const char *want,
    const struct mt_imap_limits *lim)
{
	struct imap_run r;

	imap_run_all_splits(&r, in, n, lim);
	if (r.rc != -1)
		fail_msg("no error for \"%s\"; log:\n%s", in, r.log);
	assert_string_equal(r.error, want);
	imap_run_free(&r);
}

static void
fails(const char *in, const char *want)
{
	fails_lim(in, strlen(in), want, NULL);
}

static void
test_response_shape(void **state)
{
	(void)state;
	fails(" a1 OK x\r\n", "expected a tag, '*' or '+' at the start of a "
	    "response (at byte 0 of the response)");
	fails("(\r\n", "expected a tag, '*' or '+' at the start of a response "
	    "(at byte 0 of the response)");
	fails("\r\n", "expected a tag, '*' or '+' at the start of a response "
	    "(at byte 0 of the response)");
	fails("a1\r\n", "expected a space after the tag (at byte 2 of the "
	    "response)");
	fails("a1 BYE x\r\n", "expected OK, NO or BAD after the tag (at byte 3 "
	    "of the response)");
	fails("a1 FOO\r\n", "expected OK, NO or BAD after the tag (at byte 3 of "
	    "the response)");
	fails("a1 (\r\n", "expected OK, NO or BAD after the tag (at byte 3 of "
	    "the response)");
	fails("a1 OK(x\r\n", "expected a space after the status (at byte 5 of "
	    "the response)");
	fails("*OK\r\n", "expected a space after '*' (at byte 1 of the "
	    "response)");
	fails("* (\r\n", "expected a number or a keyword after '* ' (at byte 2 "
	    "of the response)");
	fails("* 3\r\n", "expected a space after the number (at byte 3 of the "
	    "response)");
	fails("* 3 (\r\n", "expected EXISTS, RECENT, EXPUNGE or FETCH (at byte 4 "
	    "of the response)");
	fails("* 99999999999 EXISTS\r\n", "number too large (at byte 11 of the "
	    "response)");
	fails("* 0 FETCH (UID 1)\r\n", "message number 0 (numbers start at 1) "
	    "(at byte 2 of the response)");
	fails("* 0 EXPUNGE\r\n", "message number 0 (numbers start at 1) (at "
	    "byte 2 of the response)");
	fails("* 3 EXISTS x\r\n", "expected the end of the line (at byte 10 of "
	    "the response)");
	fails("* 3 EXISTS\rx\r\n", "expected the end of the line (at byte 11 of "
	    "the response)");
}

static void
test_nul_and_length(void **state)
{
	struct mt_imap_limits lim = { 64, 16, 32, 4 };
	struct imap_run r;
	char line[200];

	(void)state;
	fails_lim("* OK a\0b\r\n", 10, "NUL byte in a response (at byte 6 of "
	    "the response)", NULL);
	fails_lim("a1 OK \0\r\n", 9, "NUL byte in a response (at byte 6 of the "
	    "response)", NULL);
	memset(line, 'x', sizeof(line));
	memcpy(line, "* OK ", 5);
	fails_lim(line, 65, "response longer than 64 bytes outside literals (at "
	    "byte 64 of the response)", &lim);
	/* The earlier fault wins, however the input is cut. */
	line[20] = '\0';
	fails_lim(line, 100, "NUL byte in a response (at byte 20 of the "
	    "response)", &lim);
	line[20] = 'x';
	line[64] = '\0';
	fails_lim(line, 100, "response longer than 64 bytes outside literals (at "
	    "byte 64 of the response)", &lim);
	line[64] = 'x';
	/* 64 bytes with the line end is still within the limit. */
	memcpy(line + 62, "\r\n", 2);
	imap_run(&r, line, 64, NULL, 0, &lim);
	assert_int_equal(r.rc, 0);
	assert_true(r.idle);
	imap_run_free(&r);
}

static void
test_codes(void **state)
{
	(void)state;
	fails("* OK [ALERT\r\n", "expected ']' to end the response code (at byte "
	    "11 of the response)");
	fails("* OK []\r\n", "expected a response code after '[' (at byte 6 of "
	    "the response)");
	fails("* OK [UIDVALIDITY] x\r\n", "expected a space and an argument after "
	    "the response code (at byte 17 of the response)");
	fails("* OK [CAPABILITY] x\r\n", "expected a space and an argument after "
	    "the response code (at byte 16 of the response)");
	fails("* OK [UIDNEXT abc] x\r\n", "expected a number after the response "
	    "code (at byte 14 of the response)");
	fails("* OK [UIDVALIDITY 0] x\r\n", "0 where a non-zero number was "
	    "expected (at byte 19 of the response)");
	fails("* OK [UIDVALIDITY 4294967296] x\r\n", "number too large (at byte "
	    "27 of the response)");
	fails("* OK [CAPABILITY IMAP4rev1 (] x\r\n", "expected ']' to end the "
	    "response code (at byte 27 of the response)");
	fails("* CAPABILITY\r\n", "expected a space after CAPABILITY (at byte 12 "
	    "of the response)");
	fails("* CAPABILITY (\r\n", "expected a capability name (at byte 13 of "
	    "the response)");
}

static void
test_flags_and_list(void **state)
{
	(void)state;
	fails("* FLAGS\r\n", "expected a space after FLAGS (at byte 7 of the "
	    "response)");
	fails("* FLAGS \\Seen\r\n", "expected '(' to start a flag list (at byte "
	    "8 of the response)");
	fails("* FLAGS (\\)\r\n", "expected a flag (at byte 10 of the response)");
	fails("* FLAGS (\\Seen\r\n", "expected a space or ')' in a flag list (at "
	    "byte 14 of the response)");
	fails("* FLAGS (\\Seen \\Draft))\r\n", "expected the end of the line (at "
	    "byte 22 of the response)");
	fails("* LIST\r\n", "expected a space after LIST (at byte 6 of the "
	    "response)");
	fails("* LIST ()\"/\" x\r\n", "expected a space after the mailbox "
	    "attributes (at byte 9 of the response)");
	fails("* LIST () \"ab\" x\r\n", "expected a one-character delimiter (at "
	    "byte 14 of the response)");
	fails("* LIST () FOO x\r\n", "expected a delimiter or NIL (at byte 13 of "
	    "the response)");
	fails("* LIST () ( x\r\n", "expected a delimiter or NIL (at byte 10 of "
	    "the response)");
	fails("* LIST () \"/\"\r\n", "expected a space before the mailbox name "
	    "(at byte 13 of the response)");
	fails("* LIST () \"/\" (\r\n", "expected a mailbox name (at byte 14 of "
	    "the response)");
	fails("* LIST () \"/\" \"abc\r\n", "expected '\"' to end a quoted string "
	    "(at byte 18 of the response)");
	fails("* LIST () \"/\" \"a\\x\"\r\n", "bad escape in a quoted string (at "
	    "byte 17 of the response)");
	fails("* LIST () \"/\" {5} x\r\n", "expected a line end after a literal "
	    "size (at byte 17 of the response)");
	fails("* LIST () \"/\" {5x}\r\n", "expected '}' after the literal size (at "
	    "byte 16 of the response)");
	fails("* LIST () \"/\" ~x\r\n", "expected '{' after '~' (at byte 15 of "
	    "the response)");
	/* A literal where text was expected leaves data after the line. */
	fails("a1 OK text {3}\r\nabc\r\n", "unexpected data after the end of the "
	    "line (at byte 16 of the response)");
	fails("* LIST () \"/\" {}\r\n", "expected a literal size (digits) after "
	    "'{' (at byte 15 of the response)");
}

static void
test_fetch_items(void **state)
{
	(void)state;
	fails("* 1 FETCH UID 1\r\n", "expected '(' after FETCH (at byte 10 of the "
	    "response)");
	fails("* 1 FETCH\r\n", "expected a space after FETCH (at byte 9 of the "
	    "response)");
	fails("* 1 FETCH ()\r\n", "expected a FETCH item name (at byte 11 of the "
	    "response)");
	fails("* 1 FETCH (UID)\r\n", "expected a space after the FETCH item name "
	    "(at byte 14 of the response)");
	fails("* 1 FETCH (UID 1\r\n", "expected a space or ')' after a FETCH item "
	    "(at byte 16 of the response)");
	fails("* 1 FETCH (UID 1 )\r\n", "expected a FETCH item name (at byte 17 "
	    "of the response)");
	fails("* 1 FETCH (UID x)\r\n", "expected a number after UID (at byte 15 "
	    "of the response)");
	fails("* 1 FETCH (UID 0)\r\n", "0 where a non-zero number was expected (at "
	    "byte 16 of the response)");
	fails("* 1 FETCH (RFC822.SIZE -1)\r\n", "expected a number after "
	    "RFC822.SIZE (at byte 23 of the response)");
	fails("* 1 FETCH (RFC822.SIZE 99999999999999999999)\r\n", "number too "
	    "large (at byte 41 of the response)");
	fails("* 1 FETCH (INTERNALDATE NIL)\r\n", "expected a quoted date after "
	    "INTERNALDATE (at byte 24 of the response)");
	fails("* 1 FETCH (INTERNALDATE \"0123456789012345678901234567890123456789"
	    "\")\r\n", "INTERNALDATE too long (at byte 66 of the response)");
	fails("* 1 FETCH (MODSEQ 5)\r\n", "expected '(' after MODSEQ (at byte 18 "
	    "of the response)");
	fails("* 1 FETCH (MODSEQ (x))\r\n", "expected a number after MODSEQ ( (at "
	    "byte 19 of the response)");
	fails("* 1 FETCH (MODSEQ (5 6))\r\n", "expected ')' after the MODSEQ "
	    "number (at byte 20 of the response)");
	fails("* 1 FETCH (BODY[] FOO)\r\n", "expected a literal, a quoted string "
	    "or NIL (at byte 21 of the response)");
	fails("* 1 FETCH (BODY[] ()\r\n", "expected a literal, a quoted string or "
	    "NIL (at byte 18 of the response)");
	fails("* 1 FETCH (BODY[HEADER\r\n", "expected ']' to end the section (at "
	    "byte 22 of the response)");
	fails("* 1 FETCH (BODY[]<x> NIL)\r\n", "expected a number after '<' (at "
	    "byte 18 of the response)");
	fails("* 1 FETCH (BODY[]<0 NIL)\r\n", "expected '>' after the origin (at "
	    "byte 19 of the response)");
	fails("* 1 FETCH (BINARY.SIZE[1] x)\r\n", "expected a number after "
	    "BINARY.SIZE (at byte 26 of the response)");
	fails("* 1 FETCH (X-FOO )\r\n", "expected a value (at byte 17 of the "
	    "response)");
	fails("* 1 FETCH (X-FOO (a b\r\n", "expected a space or ')' in a list (at "
	    "byte 21 of the response)");
	fails("* 1 FETCH (X-FOO ((((((((((((((((((x)))))))))))))))))))\r\n",
	    "lists nested too deeply (at byte 33 of the response)");
	/* After a streamed body, the rest of the FETCH is checked as well. */
	fails("* 1 FETCH (BODY[] {2}\r\nab UID)\r\n", "expected a space after the "
	    "FETCH item name (at byte 29 of the response)");
	fails("* 1 FETCH (BODY[] {2}\r\nabc)\r\n", "expected a space or ')' after "
	    "a FETCH item (at byte 25 of the response)");
}

static void
test_literal_sizes(void **state)
{
	struct mt_imap_limits lim = { 256, 16, 32, 4 };

	(void)state;
	fails("* 1 FETCH (BODY[] {-1}\r\n", "expected a literal size (digits) "
	    "after '{' (at byte 19 of the response)");
	fails("* 1 FETCH (BODY[] {abc}\r\n", "expected a literal size (digits) "
	    "after '{' (at byte 19 of the response)");
	fails("* 1 FETCH (BODY[] {18446744073709551616}\r\n", "literal size too "
	    "large (at byte 38 of the response)");
	fails("* 1 FETCH (BODY[] {99999999999999999999999}\r\n", "literal size too "
	    "large (at byte 38 of the response)");
	fails_lim("* 1 FETCH (BODY[] {33}\r\n", 24, "message body of 33 bytes "
	    "exceeds the limit of 32 bytes (at byte 24 of the response)", &lim);
	fails_lim("* 1 FETCH (BODY[] {18446744073709551615}\r\n", 42, "message "
	    "body of 18446744073709551615 bytes exceeds the limit of 32 bytes (at "
	    "byte 42 of the response)", &lim);
	fails_lim("* LIST () \"/\" {17}\r\n", 20, "literal of 17 bytes exceeds "
	    "the limit of 16 bytes (at byte 20 of the response)", &lim);
	/* Small literals of one response share the limit. */
	fails_lim("* 1 FETCH (ENVELOPE ({10}\r\n0123456789 {7}\r\n", 43,
	    "literal of 7 bytes exceeds the limit of 16 bytes (at byte 43 of the "
	    "response)", &lim);
	fails_lim("* 1 FETCH (X (((((x))))))\r\n", 27, "lists nested too deeply (at "
	    "byte 17 of the response)", &lim);
}

static void
test_search_errors(void **state)
{
	struct mt_imap_limits lim = { 64, 16, 32, 2 };

	(void)state;
	fails("* SEARCH x\r\n", "expected a number in SEARCH results (at byte 10 "
	    "of the response)");
	fails("* SEARCH 0\r\n", "0 in SEARCH results (numbers start at 1) (at "
	    "byte 11 of the response)");
	fails("* SEARCH 4294967296\r\n", "number in SEARCH results too large (at "
	    "byte 19 of the response)");
	fails("* SEARCH 12x\r\n", "expected a space after a number in SEARCH "
	    "results (at byte 12 of the response)");
	fails("* SEARCH 1\rx", "expected LF after CR (at byte 12 of the "
	    "response)");
	fails("* SEARCH 1 (MODSEQ 5\r\n", "expected ')' before the end of the line "
	    "(at byte 21 of the response)");
	fails("* SEARCH 1 (MODSEQ 5)(\r\n", "expected a space after ')' (at byte "
	    "22 of the response)");
	fails_lim("* SEARCH 1 (((x)))\r\n", 20, "lists nested too deeply (at byte "
	    "14 of the response)", &lim);
	fails_lim("* SEARCH 1 (MODSEQ 1234567890123456789012345678901234567890123"
	    "45678901234567890)\r\n", 84, "SEARCH result item too long (at byte 77 "
	    "of the response)", &lim);
	fails("* ESEARCH (TAG \"a1\"\r\n", "expected ')' to end the search "
	    "correlator (at byte 20 of the response)");
	fails("* ESEARCH (TAG \"0123456789012345678901234567890123456789"
	    "012345678901234567890\")\r\n", "ESEARCH item too long (at byte 74 of "
	    "the response)");
	fails("* ESEARCH MIN\r\n", "expected a value after an ESEARCH result name "
	    "(at byte 14 of the response)");
	fails("* ESEARCH MIN \r\n", "expected a value after an ESEARCH result name "
	    "(at byte 15 of the response)");
	fails("* ESEARCH MIN x\r\n", "expected a number in ESEARCH results (at "
	    "byte 15 of the response)");
	fails("* ESEARCH MIN 5x\r\n", "expected a space after a number in ESEARCH "
	    "results (at byte 16 of the response)");
	fails("* ESEARCH ALL 1:2:3\r\n", "malformed sequence set in ESEARCH "
	    "results (at byte 18 of the response)");
	fails("* ESEARCH ALL 1:*\r\n", "malformed sequence set in ESEARCH results "
	    "(at byte 17 of the response)");
	fails("* ESEARCH ALL 1,,2\r\n", "expected a number in SEARCH results (at "
	    "byte 17 of the response)");
	fails("* ESEARCH ALL 0:3\r\n", "malformed sequence set in ESEARCH results "
	    "(at byte 16 of the response)");
	fails("* ESEARCH COUNT 99999999999\r\n", "number in SEARCH results too "
	    "large (at byte 26 of the response)");
	fails("* ESEARCH MODSEQ\r\n", "expected a value after an ESEARCH result "
	    "name (at byte 17 of the response)");
}

/* Once failed, a parser stays failed: the connection must go. */
static void
test_failed_stays_failed(void **state)
{
	struct mt_imap_parser *p = mt_imap_parser_new(NULL);
	const struct mt_imap_event *ev;
	size_t used;

	(void)state;
	assert_int_equal(mt_imap_parser_feed(p, "a1 FOO\r\n", 8, &used, &ev), -1);
	assert_null(ev);
	assert_int_equal(mt_imap_parser_feed(p, "a1 OK\r\n", 7, &used, &ev), -1);
	assert_int_equal(used, 0);
	assert_string_equal(mt_imap_parser_error(p), "expected OK, NO or BAD after "
	    "the tag (at byte 3 of the response)");
	mt_imap_parser_free(p);
}

/* Garbage and 8-bit bytes never crash it and end in an error. */
static void
test_garbage(void **state)
{
	char in[512];
	size_t i;
	struct imap_run r;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (char)(0x80 + (i * 37) % 128);
	imap_run(&r, in, sizeof(in), NULL, 0, NULL);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.error, "expected a tag, '*' or '+' at the start of a "
	    "response (at byte 0 of the response)");
	imap_run_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response_shape),
		cmocka_unit_test(test_nul_and_length),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_flags_and_list),
		cmocka_unit_test(test_fetch_items),
		cmocka_unit_test(test_literal_sizes),
		cmocka_unit_test(test_search_errors),
		cmocka_unit_test(test_failed_stays_failed),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
