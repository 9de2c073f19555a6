/*
 * The POP3 multi-line decoder: transcripts fed whole, in every two-chunk
 * split and byte by byte, in the three line-end modes; round trips, output
 * by reference, and a failing consumer.
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

#include "mailtunnel/pop3_parse.h"

struct sink {
	char *buf;
	size_t len, cap;
	size_t calls;
	size_t by_ref;			/* calls pointing into [in, in_end) */
	const char *in, *in_end;
	int fail_after;			/* fail the nth call (0: never) */
};

static int
sink_emit(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;

	assert_true(len > 0);
	s->calls++;
	if (s->fail_after > 0 && (int)s->calls >= s->fail_after)
		return -1;
	if (data >= s->in && data + len <= s->in_end)
		s->by_ref++;
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return 0;
}

/*
 * Decode in with the chunk boundaries in cuts[0..ncuts), checking that the
 * decoder stops right after the terminator. Returns the bytes consumed.
 */
static size_t
decode_cuts(const char *in, size_t n, enum mt_pop3_eol eol, const size_t *cuts,
    size_t ncuts, struct sink *s)
{
	struct mt_pop3_ml ml;
	size_t off = 0, k, end, used;
	const char *why = NULL;
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->in = in;
	s->in_end = in + n;
	mt_pop3_ml_init(&ml, eol, sink_emit, s);
	for (k = 0; k <= ncuts && r == 0; k++) {
		end = k < ncuts ? cuts[k] : n;
		r = mt_pop3_ml_feed(&ml, in + off, end - off, &used, &why);
		assert_true(r == 0 || r == 1);
		if (r == 0)
			assert_int_equal(used, end - off);
		off += used;
	}
	assert_int_equal(r, 1);
	assert_true(mt_pop3_ml_done(&ml));
	assert_int_equal(ml.bytes_out, s->len);
	return off;
}

static void
decode_is(const char *in, size_t n, enum mt_pop3_eol eol, const char *want,
    size_t want_len, size_t want_used)
{
	struct sink s, s2;
	size_t used, i, *cuts;

	/* One chunk. */
	used = decode_cuts(in, n, eol, NULL, 0, &s);
	assert_int_equal(used, want_used);
	assert_int_equal(s.len, want_len);
	assert_memory_equal(s.buf, want, want_len);
	free(s.buf);
	/* Every split into two chunks. */
	for (i = 0; i <= want_used; i++) {
		used = decode_cuts(in, n, eol, &i, 1, &s2);
		assert_int_equal(used, want_used);
		assert_int_equal(s2.len, want_len);
		assert_memory_equal(s2.buf, want, want_len);
		free(s2.buf);
	}
	/* Byte by byte. */
	cuts = malloc((n + 1) * sizeof(*cuts));
	assert_non_null(cuts);
	for (i = 0; i < n; i++)
		cuts[i] = i + 1;
	used = decode_cuts(in, n, eol, cuts, n, &s2);
	assert_int_equal(used, want_used);
	assert_int_equal(s2.len, want_len);
	assert_memory_equal(s2.buf, want, want_len);
	free(s2.buf);
	free(cuts);
}

#define DECODE_IS(in, eol, want, used) \
	decode_is(in, sizeof(in) - 1, eol, want, sizeof(want) - 1, used)

/* A RETR body as a Dovecot server sends it, and the next pipelined reply. */
static const char retr[] =
    "Return-Path: <alice@example.org>\r\n"
    "From: Alice <alice@example.org>\r\n"
    "Subject: dots\r\n"
    "\r\n"
    "..leading dot\r\n"
    "...two dots\r\n"
    "From the start of a line\r\n"
    ". \r\n"
    "8-bit: gr\xc3\xbc\xc3\x9f, NUL: \0 end\r\n"
    "..\r\n"
    ".\r\n"
    "+OK 2 octets\r\n";
static const char retr_asis[] =
    "Return-Path: <alice@example.org>\r\n"
    "From: Alice <alice@example.org>\r\n"
    "Subject: dots\r\n"
    "\r\n"
    ".leading dot\r\n"
    "..two dots\r\n"
    "From the start of a line\r\n"
    " \r\n"
    "8-bit: gr\xc3\xbc\xc3\x9f, NUL: \0 end\r\n"
    ".\r\n";
static const char retr_lf[] =
    "Return-Path: <alice@example.org>\n"
    "From: Alice <alice@example.org>\n"
    "Subject: dots\n"
    "\n"
    ".leading dot\n"
    "..two dots\n"
    "From the start of a line\n"
    " \n"
    "8-bit: gr\xc3\xbc\xc3\x9f, NUL: \0 end\n"
    ".\n";

static void
test_ml_transcript(void **state)
{
	size_t used = sizeof(retr) - 1 - strlen("+OK 2 octets\r\n");

	(void)state;
	DECODE_IS(retr, MT_POP3_EOL_ASIS, retr_asis, used);
	DECODE_IS(retr, MT_POP3_EOL_CRLF, retr_asis, used);
	DECODE_IS(retr, MT_POP3_EOL_LF, retr_lf, used);
}

static void
test_ml_line_ends(void **state)
{
	(void)state;
	/* Bare LF from a sloppy server. */
	DECODE_IS("a\nb\n..c\n.\nX", MT_POP3_EOL_ASIS, "a\nb\n.c\n", 10);
	DECODE_IS("a\nb\n..c\n.\nX", MT_POP3_EOL_LF, "a\nb\n.c\n", 10);
	DECODE_IS("a\nb\n..c\n.\nX", MT_POP3_EOL_CRLF, "a\r\nb\r\n.c\r\n", 10);
	/* Mixed, with bare CRs inside lines kept as content. */
	DECODE_IS("a\rb\r\nc\n\r\r\n.\r\n", MT_POP3_EOL_LF, "a\rb\nc\n\r\n", 13);
	DECODE_IS("a\rb\r\nc\n\r\r\n.\r\n", MT_POP3_EOL_CRLF,
	    "a\rb\r\nc\r\n\r\r\n", 13);
	DECODE_IS("a\rb\r\nc\n\r\r\n.\r\n", MT_POP3_EOL_ASIS,
	    "a\rb\r\nc\n\r\r\n", 13);
	/* A stuffed line that starts with CR. */
	DECODE_IS(".\rX\r\n.\r\n", MT_POP3_EOL_ASIS, "\rX\r\n", 8);
	DECODE_IS(".\rX\r\n.\r\n", MT_POP3_EOL_LF, "\rX\n", 8);
	/* Empty body, and the terminator alone. */
	DECODE_IS(".\r\n+OK", MT_POP3_EOL_ASIS, "", 3);
	DECODE_IS(".\n", MT_POP3_EOL_CRLF, "", 2);
	/* ". x" is not the terminator, ".." alone is a dot line. */
	DECODE_IS(". x\r\n..\r\n.\r\n", MT_POP3_EOL_LF, " x\n.\n", 12);
}

/*
 * Round trip: a message as a server stores it, sent the RFC 1939 way
 * (stuffed, CRLF added when missing, ".CRLF"), comes back whole.
 */
static void
roundtrip(const char *msg, const char *want)
{
	char wire[512];
	size_t n = 0, i;
	int bol = 1;

	for (i = 0; msg[i] != '\0'; i++) {
		if (bol && msg[i] == '.')
			wire[n++] = '.';
		wire[n++] = msg[i];
		bol = msg[i] == '\n';
	}
	if (!bol) {
		wire[n++] = '\r';
		wire[n++] = '\n';
	}
	memcpy(wire + n, ".\r\n", 3);
	n += 3;
	decode_is(wire, n, MT_POP3_EOL_ASIS, want, strlen(want), n);
}

static void
test_ml_roundtrip(void **state)
{
	(void)state;
	roundtrip("Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n");
	roundtrip("Subject: x\r\n\r\n.\r\n..\r\nend", "Subject: x\r\n\r\n.\r\n"
	    "..\r\nend\r\n");
	roundtrip("no newline at all", "no newline at all\r\n");
	roundtrip(".", ".\r\n");
	roundtrip("", "");
}

static int
counter_emit(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;

	(void)data;
	s->calls++;
	s->len += len;
	if (data >= s->in && data + len <= s->in_end)
		s->by_ref++;
	return 0;
}

/* A large message goes out by reference, in few pieces, in ASIS mode. */
static void
test_ml_by_reference(void **state)
{
	size_t n = 200000, i, used;
	char *in = malloc(n + 3);
	struct mt_pop3_ml ml;
	struct sink s;
	const char *why = NULL;

	(void)state;
	assert_non_null(in);
	for (i = 0; i < n; i++)
		in[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : 'x';
	memcpy(in + n - 2, "\r\n", 2);
	memcpy(in + n, ".\r\n", 3);
	memset(&s, 0, sizeof(s));
	s.in = in;
	s.in_end = in + n + 3;
	mt_pop3_ml_init(&ml, MT_POP3_EOL_ASIS, counter_emit, &s);
	assert_int_equal(mt_pop3_ml_feed(&ml, in, n + 3, &used, &why), 1);
	assert_int_equal(used, n + 3);
	assert_int_equal(s.len, n);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.by_ref, 1);
	assert_int_equal(ml.lines, (n + 77) / 78);
	/* LF mode rewrites every line end; scratch keeps the calls few. */
	memset(&s, 0, sizeof(s));
	mt_pop3_ml_init(&ml, MT_POP3_EOL_LF, counter_emit, &s);
	assert_int_equal(mt_pop3_ml_feed(&ml, in, n + 3, &used, &why), 1);
	assert_int_equal(s.len, n - (n + 77) / 78);
	assert_true(s.calls <= s.len / (MT_POP3_ML_SCRATCH - 256) + 1);
	free(in);
}

static void
test_ml_emit_failure(void **state)
{
	static const char in[] = "line one\r\nline two\r\n.\r\n";
	struct mt_pop3_ml ml;
	struct sink s;
	size_t used;
	const char *why = NULL;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.fail_after = 1;
	mt_pop3_ml_init(&ml, MT_POP3_EOL_ASIS, sink_emit, &s);
	assert_int_equal(mt_pop3_ml_feed(&ml, in, sizeof(in) - 1, &used, &why), -1);
	assert_string_equal(why, "the message content could not be passed on");
	assert_false(mt_pop3_ml_done(&ml));
	why = NULL;
	assert_int_equal(mt_pop3_ml_feed(&ml, in, sizeof(in) - 1, &used, &why), -1);
	assert_string_equal(why, "the message content could not be passed on");
	free(s.buf);
	/* After the terminator, nothing more is taken. */
	memset(&s, 0, sizeof(s));
	mt_pop3_ml_init(&ml, MT_POP3_EOL_ASIS, sink_emit, &s);
	assert_int_equal(mt_pop3_ml_feed(&ml, in, sizeof(in) - 1, &used, &why), 1);
	assert_int_equal(mt_pop3_ml_feed(&ml, "+OK\r\n", 5, &used, &why), 1);
	assert_int_equal(used, 0);
	assert_int_equal(ml.lines, 2);
	free(s.buf);
}

/*
 * A pipelined session, driven as the fetcher will: input arrives in
 * chunks into a buffer; replies are read from its front as far as they
 * are complete; what is left waits for the next chunk. The log of what was
 * understood must not depend on the chunks.
 */
static const char session[] =
    "+OK Dovecot (Debian) ready.\r\n"
    "+OK Capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nSASL PLAIN\r\n.\r\n"
    "+OK Logged in.\r\n"
    "+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n"
    "+OK 2 messages:\r\n1 24\r\n2 7\r\n.\r\n"
    "+OK 24 octets\r\nSubject: a\r\n\r\n..b\r\n.\r\n"
    "-ERR [IN-USE] message 2 is locked\r\n"
    "+OK Logging out.\r\n";

struct session {
	char buf[512];
	size_t len;
	int step;			/* which reply comes next */
	int in_body;
	struct mt_pop3_ml ml;
	struct sink out;
	char log[2048];
	size_t loglen;
};

static void
slog(struct session *s, const char *what, const char *p, size_t n)
{
	int r = snprintf(s->log + s->loglen, sizeof(s->log) - s->loglen,
	    "%s %.*s\n", what, (int)n, p);

	assert_true(r > 0 && (size_t)r < sizeof(s->log) - s->loglen);
	s->loglen += (size_t)r;
}

/* Read complete replies from the front of s->buf; 0 when stuck. */
static size_t
session_step(struct session *s)
{
	static const int multi[] = { 0, 1, 0, 1, 1, 1, 0, 0 };
	struct mt_pop3_status_line st;
	const char *line, *why, *uid;
	size_t len, used;
	unsigned long num;
	uint64_t size;
	int r;

	if (s->in_body) {
		r = mt_pop3_ml_feed(&s->ml, s->buf, s->len, &used, &why);
		assert_int_not_equal(r, -1);
		if (r == 1) {
			slog(s, "BODY", s->out.buf, s->out.len);
			s->in_body = 0;
			s->step++;
		}
		return used;
	}
	r = mt_pop3_line_next(s->buf, s->len, 512, s->step % 2 == 0 ? 0 :
	    multi[s->step / 2], &line, &len, &used, &why);
	if (r == MT_POP3_LINE_NEED_MORE)
		return 0;
	assert_int_not_equal(r, MT_POP3_LINE_ERROR);
	if (r == MT_POP3_LINE_END) {
		slog(s, "END", "", 0);
		s->step++;
	} else if (s->step % 2 == 0) {
		assert_int_equal(mt_pop3_status_parse(line, len, &st, &why), 0);
		slog(s, st.status == MT_POP3_OK ? "OK" : "ERR",
		    mt_pop3_code_name(st.code), strlen(mt_pop3_code_name(st.code)));
		s->step += multi[s->step / 2] ? 1 : 2;
		if (s->step == 11) {
			memset(&s->out, 0, sizeof(s->out));
			mt_pop3_ml_init(&s->ml, MT_POP3_EOL_LF, sink_emit, &s->out);
			s->in_body = 1;
		}
	} else if (s->step == 7 && mt_pop3_uidl_parse(line, len, &num, &uid,
	    &len, &why) == 0) {
		slog(s, "UID", uid, len);
	} else if (s->step == 9 && mt_pop3_list_parse(line, len, &num, &size,
	    &why) == 0) {
		slog(s, "SIZE", line, len);
	} else {
		slog(s, "LINE", line, len);
	}
	return used;
}

static void
session_run(const size_t *cuts, size_t ncuts, char *log)
{
	struct session *s = calloc(1, sizeof(*s));
	size_t n = sizeof(session) - 1, off = 0, k, end, used;

	assert_non_null(s);
	for (k = 0; k <= ncuts; k++) {
		end = k < ncuts ? cuts[k] : n;
		memcpy(s->buf + s->len, session + off, end - off);
		s->len += end - off;
		off = end;
		while (s->len > 0 && (used = session_step(s)) > 0) {
			memmove(s->buf, s->buf + used, s->len - used);
			s->len -= used;
		}
	}
	assert_int_equal(s->len, 0);
	assert_int_equal(s->step, 16);
	memcpy(log, s->log, s->loglen + 1);
	free(s->out.buf);
	free(s);
}

static void
test_session(void **state)
{
	static const char want[] =
	    "OK \nOK \nLINE TOP\nLINE UIDL\nLINE PIPELINING\nLINE SASL PLAIN\n"
	    "END \nOK \nOK \nUID whqtswO00WBw418f9t5JxYwZ\nUID QhdPYR:00WBw1Ph7x7\n"
	    "END \nOK \nSIZE 1 24\nSIZE 2 7\nEND \nOK \n"
	    "BODY Subject: a\n\n.b\n\nERR IN-USE\nOK \n";
	char a[2048], b[2048];
	size_t i, cuts[sizeof(session)];

	(void)state;
	session_run(NULL, 0, a);
	assert_string_equal(a, want);
	for (i = 1; i < sizeof(session) - 1; i++) {
		session_run(&i, 1, b);
		assert_string_equal(a, b);
	}
	for (i = 0; i + 2 < sizeof(session); i++)
		cuts[i] = i + 1;
	session_run(cuts, sizeof(session) - 2, b);
	assert_string_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ml_transcript),
		cmocka_unit_test(test_ml_line_ends),
		cmocka_unit_test(test_ml_roundtrip),
		cmocka_unit_test(test_ml_by_reference),
		cmocka_unit_test(test_ml_emit_failure),
		cmocka_unit_test(test_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
