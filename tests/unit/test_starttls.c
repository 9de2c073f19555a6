/*
 * The STARTTLS state machines: every transcript is run whole, with each of
 * its batches split at every byte, and one byte at a time; each refusal is
 * checked for its exact log phrase and its client line.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mailtunnel/starttls.h"

#define MAX_STEPS 6
#define EHLO "relay.example"

struct step {
	const char *in;		/* one batch from the server */
	const char *out;	/* the command it makes us send ("" none) */
};

struct transcript {
	const char *name;
	enum mt_protocol proto;
	struct step steps[MAX_STEPS];
	enum mt_starttls_status status;	/* after the last step */
	enum mt_starttls_error error;
	const char *reason;		/* FAILED: the exact phrase */
	const char *replay;		/* READY: what the client gets */
	int split_changes;		/* a split may turn a batch into two */
};

#define NEED MT_STARTTLS_NEED_MORE
#define READY MT_STARTTLS_READY
#define FAILED MT_STARTTLS_FAILED
#define POP3_GREETING "+OK Dovecot ready.\r\n"
#define POP3_CAPA "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n" \
	"AUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
#define IMAP_GREETING "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS " \
	"ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot ready.\r\n"
#define IMAP_REPLAY "* OK mailtunnel: connected to the server over TLS\r\n"
#define SMTP_GREETING "220-mail.test ESMTP\r\n220-no UCE\r\n220 ready\r\n"
#define SMTP_EHLO_REPLY "250-mail.test Hello\r\n250-PIPELINING\r\n" \
	"250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n"

static const struct transcript transcripts[] = {
	/* ---- POP3 ---- */
	{ "pop3: Dovecot", MT_PROTO_POP3, {
	    { POP3_GREETING, "CAPA\r\n" }, { POP3_CAPA, "STLS\r\n" },
	    { "+OK Begin TLS negotiation now.\r\n", "" } },
	  READY, 0, NULL, POP3_GREETING, 0 },
	{ "pop3: CAPA list over three reads, bare LF, lower case",
	  MT_PROTO_POP3, {
	    { "+ok hi <1.2@x>\n", "CAPA\r\n" }, { "+OK\r\nTOP\r\n", "" },
	    { "stls\r\nUSER\r\n", "" }, { ".\r\n", "STLS\r\n" },
	    { "+OK\r\n", "" } },
	  READY, 0, NULL, "+ok hi <1.2@x>\r\n", 0 },
	{ "pop3: no CAPA, STLS asked anyway", MT_PROTO_POP3, {
	    { "+OK\r\n", "CAPA\r\n" }, { "-ERR what?\r\n", "STLS\r\n" },
	    { "+OK go\r\n", "" } },
	  READY, 0, NULL, "+OK\r\n", 0 },
	{ "pop3: no CAPA, STLS refused", MT_PROTO_POP3, {
	    { "+OK\r\n", "CAPA\r\n" }, { "-ERR what?\r\n", "STLS\r\n" },
	    { "-ERR unknown command\r\n", "" } },
	  FAILED, MT_STARTTLS_E_REFUSED,
	  "the server refused STLS: -ERR unknown command", NULL, 0 },
	{ "pop3: STLS not in CAPA", MT_PROTO_POP3, {
	    { "+OK\r\n", "CAPA\r\n" }, { "+OK\r\nUSER\r\nTOP\r\n.\r\n", "" } },
	  FAILED, MT_STARTTLS_E_NOT_OFFERED,
	  "the server does not offer STLS (not in its CAPA list)", NULL, 0 },
	{ "pop3: STLS refused", MT_PROTO_POP3, {
	    { POP3_GREETING, "CAPA\r\n" }, { POP3_CAPA, "STLS\r\n" },
	    { "-ERR [SYS/TEMP] not now\r\n", "" } },
	  FAILED, MT_STARTTLS_E_REFUSED,
	  "the server refused STLS: -ERR [SYS/TEMP] not now", NULL, 0 },
	{ "pop3: greeting -ERR", MT_PROTO_POP3, {
	    { "-ERR too many connections\r\n", "" } },
	  FAILED, MT_STARTTLS_E_SESSION,
	  "the server refused the session: -ERR too many connections",
	  NULL, 0 },
	{ "pop3: not a POP3 server", MT_PROTO_POP3, {
	    { "HTTP/1.1 400 Bad\tRequest\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL, "unexpected reply while waiting "
	  "for the greeting: HTTP/1.1 400 Bad?Request", NULL, 0 },
	{ "pop3: STLS reply neither +OK nor -ERR", MT_PROTO_POP3, {
	    { "+OK\r\n", "CAPA\r\n" }, { "+OK\r\nSTLS\r\n.\r\n", "STLS\r\n" },
	    { "+OKAY\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL,
	  "unexpected reply while waiting for the STLS reply: +OKAY", NULL, 0 },
	{ "pop3: injection in the STLS reply's packet", MT_PROTO_POP3, {
	    { "+OK\r\n", "CAPA\r\n" }, { "+OK\r\nSTLS\r\n.\r\n", "STLS\r\n" },
	    { "+OK go\r\n+OK extra\r\n", "" } },
	  FAILED, MT_STARTTLS_E_INJECTION, "plaintext injection: the server "
	  "sent 11 bytes after accepting STLS, before the TLS handshake "
	  "('+OK extra?" "?')", NULL, 1 },
	{ "pop3: replies sent before being asked", MT_PROTO_POP3, {
	    { "+OK hi\r\n+OK\r\nSTLS\r\n.\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL, "the server sent 14 bytes out of "
	  "turn, before it could have read our CAPA command", NULL, 1 },
	{ "pop3: CAPA answer and STLS answer in one packet", MT_PROTO_POP3, {
	    { "+OK\r\n", "CAPA\r\n" }, { "+OK\r\nSTLS\r\n.\r\n+OK go\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL, "the server sent 8 bytes out of "
	  "turn, before it could have read our STLS command", NULL, 1 },

	/* ---- IMAP ---- */
	{ "imap: Dovecot", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" },
	    { "mt2 OK Begin TLS negotiation now.\r\n", "" } },
	  READY, 0, NULL, IMAP_REPLAY, 0 },
	{ "imap: CAPABILITY asked when the greeting has none", MT_PROTO_IMAP, {
	    { "* OK IMAP4rev1 ready\r\n", "mt1 CAPABILITY\r\n" },
	    { "* CAPABILITY IMAP4rev1 starttls LOGINDISABLED\r\n"
	      "mt1 OK done\r\n", "mt2 STARTTLS\r\n" },
	    { "mt2 OK go\r\n", "" } },
	  READY, 0, NULL, IMAP_REPLAY, 0 },
	{ "imap: untagged ALERTs before the tagged reply are dropped",
	  MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" },
	    { "* OK [ALERT] System going down\r\n* 3 EXISTS\r\n", "" },
	    { "* OK [ALERT] Send your password now\r\nmt2 OK go\r\n", "" } },
	  READY, 0, NULL, IMAP_REPLAY, 0 },
	{ "imap: untagged lines right after the greeting", MT_PROTO_IMAP, {
	    { "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n* OK [ALERT] x\r\n",
	      "mt2 STARTTLS\r\n" },
	    { "mt2 OK go\r\n", "" } },
	  READY, 0, NULL, IMAP_REPLAY, 0 },
	{ "imap: a literal that looks like the tagged reply", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" },
	    { "* OK [ALERT] {13}\r\nmt2 OK fake\r\n tail {0}\r\n\r\n", "" },
	    { "mt2 NO real\r\n", "" } },
	  FAILED, MT_STARTTLS_E_REFUSED,
	  "the server refused STARTTLS: mt2 NO real", NULL, 0 },
	{ "imap: a literal too large", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" },
	    { "* OK {65537+}\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL, "the server announced a literal "
	  "larger than the 65536 bytes allowed before TLS", NULL, 0 },
	{ "imap: PREAUTH", MT_PROTO_IMAP, {
	    { "* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] logged in\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PREAUTH, "the server greeted with PREAUTH, "
	  "which rules out STARTTLS; refusing to go on without TLS", NULL, 0 },
	{ "imap: preauth in lower case", MT_PROTO_IMAP, {
	    { "* preauth\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PREAUTH, "the server greeted with PREAUTH, "
	  "which rules out STARTTLS; refusing to go on without TLS", NULL, 0 },
	{ "imap: BYE greeting", MT_PROTO_IMAP, {
	    { "* BYE too busy\r\n", "" } },
	  FAILED, MT_STARTTLS_E_SESSION,
	  "the server refused the session: * BYE too busy", NULL, 0 },
	{ "imap: greeting without STARTTLS", MT_PROTO_IMAP, {
	    { "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", "" } },
	  FAILED, MT_STARTTLS_E_NOT_OFFERED, "the server does not offer "
	  "STARTTLS (not in the CAPABILITY list of its greeting)", NULL, 0 },
	{ "imap: CAPABILITY without STARTTLS", MT_PROTO_IMAP, {
	    { "* OK hi\r\n", "mt1 CAPABILITY\r\n" },
	    { "* CAPABILITY IMAP4rev1 STARTTLSX\r\nmt1 OK\r\n", "" } },
	  FAILED, MT_STARTTLS_E_NOT_OFFERED, "the server does not offer "
	  "STARTTLS (not in its CAPABILITY list)", NULL, 0 },
	{ "imap: CAPABILITY refused", MT_PROTO_IMAP, {
	    { "* OK hi\r\n", "mt1 CAPABILITY\r\n" },
	    { "mt1 BAD unknown command\r\n", "" } },
	  FAILED, MT_STARTTLS_E_NOT_OFFERED,
	  "the server refused CAPABILITY: mt1 BAD unknown command", NULL, 0 },
	{ "imap: STARTTLS NO", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" },
	    { "mt2 NO [UNAVAILABLE] not now\r\n", "" } },
	  FAILED, MT_STARTTLS_E_REFUSED,
	  "the server refused STARTTLS: mt2 NO [UNAVAILABLE] not now", NULL, 0 },
	{ "imap: STARTTLS BAD", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" }, { "mt2 BAD no\r\n", "" } },
	  FAILED, MT_STARTTLS_E_REFUSED,
	  "the server refused STARTTLS: mt2 BAD no", NULL, 0 },
	{ "imap: BYE while waiting", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" },
	    { "* BYE shutting down\r\n", "" } },
	  FAILED, MT_STARTTLS_E_CLOSED,
	  "the server ended the session: * BYE shutting down", NULL, 0 },
	{ "imap: reply with another tag", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" }, { "a1 OK\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL,
	  "unexpected reply while waiting for the STARTTLS reply: a1 OK",
	  NULL, 0 },
	{ "imap: continuation request", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" }, { "+ go ahead\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL, "unexpected reply while waiting "
	  "for the STARTTLS reply: + go ahead", NULL, 0 },
	{ "imap: not an IMAP server", MT_PROTO_IMAP, {
	    { "+OK POP3 ready\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL, "unexpected reply while waiting "
	  "for the greeting: +OK POP3 ready", NULL, 0 },
	{ "imap: injection after the tagged OK", MT_PROTO_IMAP, {
	    { IMAP_GREETING, "mt2 STARTTLS\r\n" },
	    { "mt2 OK go\r\n* OK extra\r\n", "" } },
	  FAILED, MT_STARTTLS_E_INJECTION, "plaintext injection: the server "
	  "sent 12 bytes after accepting STARTTLS, before the TLS handshake "
	  "('* OK extra?" "?')", NULL, 1 },
	{ "imap: tagged reply before being asked", MT_PROTO_IMAP, {
	    { IMAP_GREETING "mt2 OK go\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL, "the server sent 9 bytes out of "
	  "turn, before it could have read our STARTTLS command", NULL, 1 },

	/* ---- SMTP ---- */
	{ "smtp: multi-line greeting and EHLO reply", MT_PROTO_SMTP, {
	    { SMTP_GREETING, "EHLO " EHLO "\r\n" },
	    { SMTP_EHLO_REPLY, "STARTTLS\r\n" },
	    { "220 2.0.0 Ready to start TLS\r\n", "" } },
	  READY, 0, NULL, SMTP_GREETING, 0 },
	{ "smtp: greeting and reply lines in separate reads", MT_PROTO_SMTP, {
	    { "220-a\r\n", "" }, { "220\r\n", "EHLO " EHLO "\r\n" },
	    { "250-x\r\n250-starttls\r\n", "" }, { "250 OK\r\n", "STARTTLS\r\n" },
	    { "220-one\r\n220 two\r\n", "" } },
	  READY, 0, NULL, "220-a\r\n220\r\n", 0 },
	{ "smtp: no STARTTLS", MT_PROTO_SMTP, {
	    { "220 hi\r\n", "EHLO " EHLO "\r\n" },
	    { "250-mail.test\r\n250-AUTH PLAIN\r\n250 SIZE\r\n", "" } },
	  FAILED, MT_STARTTLS_E_NOT_OFFERED, "the server does not offer "
	  "STARTTLS (not in its EHLO reply)", NULL, 0 },
	{ "smtp: STARTTLS as the server's name is no keyword", MT_PROTO_SMTP, {
	    { "220 hi\r\n", "EHLO " EHLO "\r\n" }, { "250 STARTTLS\r\n", "" } },
	  FAILED, MT_STARTTLS_E_NOT_OFFERED, "the server does not offer "
	  "STARTTLS (not in its EHLO reply)", NULL, 0 },
	{ "smtp: 454", MT_PROTO_SMTP, {
	    { "220 hi\r\n", "EHLO " EHLO "\r\n" },
	    { "250-hi\r\n250 STARTTLS\r\n", "STARTTLS\r\n" },
	    { "454 4.7.0 TLS not available due to local problem\r\n", "" } },
	  FAILED, MT_STARTTLS_E_REFUSED, "the server refused STARTTLS: 454 "
	  "4.7.0 TLS not available due to local problem", NULL, 0 },
	{ "smtp: 502", MT_PROTO_SMTP, {
	    { "220 hi\r\n", "EHLO " EHLO "\r\n" },
	    { "250-hi\r\n250 STARTTLS\r\n", "STARTTLS\r\n" },
	    { "502 5.5.1 no\r\n", "" } },
	  FAILED, MT_STARTTLS_E_REFUSED, "the server refused STARTTLS: 502 "
	  "5.5.1 no", NULL, 0 },
	{ "smtp: greeting 554", MT_PROTO_SMTP, {
	    { "554 5.3.2 no service\r\n", "" } },
	  FAILED, MT_STARTTLS_E_SESSION,
	  "the server refused the session: 554 5.3.2 no service", NULL, 0 },
	{ "smtp: EHLO refused", MT_PROTO_SMTP, {
	    { "220 hi\r\n", "EHLO " EHLO "\r\n" },
	    { "500 5.5.1 command unrecognized\r\n", "" } },
	  FAILED, MT_STARTTLS_E_NOT_OFFERED,
	  "the server refused EHLO: 500 5.5.1 command unrecognized", NULL, 0 },
	{ "smtp: codes differ within a reply", MT_PROTO_SMTP, {
	    { "220 hi\r\n", "EHLO " EHLO "\r\n" }, { "250-a\r\n251 b\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL,
	  "unexpected reply while waiting for the EHLO reply: 251 b", NULL, 0 },
	{ "smtp: not a reply code", MT_PROTO_SMTP, {
	    { "2x0 hi\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL,
	  "unexpected reply while waiting for the greeting: 2x0 hi", NULL, 0 },
	{ "smtp: no separator after the code", MT_PROTO_SMTP, {
	    { "220hi\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL,
	  "unexpected reply while waiting for the greeting: 220hi", NULL, 0 },
	{ "smtp: injection after 220", MT_PROTO_SMTP, {
	    { "220 hi\r\n", "EHLO " EHLO "\r\n" },
	    { "250-hi\r\n250 STARTTLS\r\n", "STARTTLS\r\n" },
	    { "220 go\r\n250 extra\r\n", "" } },
	  FAILED, MT_STARTTLS_E_INJECTION, "plaintext injection: the server "
	  "sent 11 bytes after accepting STARTTLS, before the TLS handshake "
	  "('250 extra?" "?')", NULL, 1 },
	{ "smtp: EHLO reply sent with the greeting", MT_PROTO_SMTP, {
	    { "220 hi\r\n250-hi\r\n250 STARTTLS\r\n", "" } },
	  FAILED, MT_STARTTLS_E_PROTOCOL, "the server sent 22 bytes out of "
	  "turn, before it could have read our EHLO command", NULL, 1 },
};

static struct mt_starttls *
machine(enum mt_protocol proto, enum mt_starttls_mode mode)
{
	struct mt_starttls_opts o = { proto, mode, EHLO };
	struct mt_starttls *st = mt_starttls_new(&o);

	assert_non_null(st);
	return st;
}

/* Feed one piece; append the output; check what was consumed. */
static enum mt_starttls_status
feed(struct mt_starttls *st, const char *p, size_t n, char *out, size_t *outn)
{
	enum mt_starttls_status s;
	const char *o;
	size_t used, olen;

	s = mt_starttls_feed(st, p, n, &used);
	if (s == NEED)
		assert_int_equal(used, n);
	assert_true(used <= n);
	o = mt_starttls_output(st, &olen);
	if (s == FAILED)
		assert_int_equal(olen, 0);
	assert_true(*outn + olen < 512);
	memcpy(out + *outn, o, olen);
	*outn += olen;
	return s;
}

/* Where a cut can move bytes between reads, counts in the reason change. */
static void
check_end(const struct transcript *tr, struct mt_starttls *st,
    enum mt_starttls_status s, int whole)
{
	const char *r;
	size_t len, used;

	if (s != tr->status)
		fail_msg("%s: status %d, want %d (%s)", tr->name, s, tr->status,
		    mt_starttls_reason(st));
	assert_int_equal(mt_starttls_error(st), tr->error);
	if (tr->reason != NULL && (whole || !tr->split_changes))
		assert_string_equal(mt_starttls_reason(st), tr->reason);
	r = mt_starttls_replay(st, &len);
	if (tr->replay != NULL) {
		assert_int_equal(len, strlen(tr->replay));
		assert_memory_equal(r, tr->replay, len);
	} else {
		assert_int_equal(len, 0);
	}
	/* Done is done: nothing more is taken. */
	assert_int_equal(mt_starttls_feed(st, "x\r\n", 3, &used), s);
	assert_int_equal(used, 0);
	assert_int_equal(mt_starttls_eof(st), s);
}

/*
 * Run tr with batch `split` cut at byte `at` (at 0: whole; at -1: one
 * byte at a time everywhere). Returns 0 when a cut put a command (or the
 * end) before the end of a batch, so that the bytes after it arrived "later"
 * and the transcript became another one: only transcripts about
 * out-of-turn bytes may do that; the others must end the same way.
 */
static int
run(const struct transcript *tr, size_t split, size_t at)
{
	struct mt_starttls *st = machine(tr->proto, MT_STARTTLS_FOR_CLIENT);
	enum mt_starttls_status s = NEED;
	char out[512];
	size_t b, i, outn, n;
	int moved = 0;

	for (b = 0; b < MAX_STEPS && tr->steps[b].in != NULL; b++) {
		const char *in = tr->steps[b].in;

		n = strlen(in);
		outn = 0;
		if (at == (size_t)-1) {
			for (i = 0; i < n && s == NEED; i++) {
				s = feed(st, in + i, 1, out, &outn);
				moved |= (outn > 0 || s == READY) && i + 1 < n;
			}
		} else if (b == split && at > 0 && at < n) {
			s = feed(st, in, at, out, &outn);
			moved |= outn > 0 || s == READY;
			if (s == NEED)
				s = feed(st, in + at, n - at, out, &outn);
		} else {
			s = feed(st, in, n, out, &outn);
		}
		if (!(moved && tr->split_changes) && s != FAILED) {
			assert_int_equal(outn, strlen(tr->steps[b].out));
			assert_memory_equal(out, tr->steps[b].out, outn);
		}
	}
	if (!moved || !tr->split_changes)
		check_end(tr, st, s, at == 0);
	mt_starttls_free(st);
	return !moved;
}

static void
test_transcripts(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(transcripts) / sizeof(transcripts[0]); i++) {
		assert_int_equal(run(&transcripts[i], 0, 0), 1);
	}
}

static void
test_every_split_point(void **state)
{
	size_t i, b, at, runs = 0;

	(void)state;
	for (i = 0; i < sizeof(transcripts) / sizeof(transcripts[0]); i++) {
		const struct transcript *tr = &transcripts[i];

		for (b = 0; b < MAX_STEPS && tr->steps[b].in != NULL; b++)
			for (at = 1; at < strlen(tr->steps[b].in); at++)
				runs += (size_t)run(tr, b, at);
		run(tr, 0, (size_t)-1);
	}
	assert_true(runs > 3000);
}

/* Two reads make two batches: the machine cannot see the second one. */
static void
test_injection_in_a_later_read_is_the_callers(void **state)
{
	struct mt_starttls *st = machine(MT_PROTO_POP3, MT_STARTTLS_FOR_SELF);
	size_t used;

	(void)state;
	mt_starttls_feed(st, "+OK\r\n", 5, &used);
	mt_starttls_feed(st, "+OK\r\nSTLS\r\n.\r\n", 14, &used);
	assert_int_equal(mt_starttls_feed(st, "+OK go\r\n", 8, &used), READY);
	assert_int_equal(used, 8);
	assert_int_equal(mt_starttls_feed(st, "+OK extra\r\n", 11, &used),
	    READY);
	assert_int_equal(used, 0);
	mt_starttls_free(st);
}

static enum mt_starttls_status
feed_all(struct mt_starttls *st, const char *p, size_t n)
{
	size_t used;

	return mt_starttls_feed(st, p, n, &used);
}

static void
test_line_length(void **state)
{
	static char buf[3 * MT_STARTTLS_MAX_LINE];
	struct mt_starttls *st;
	size_t n;

	(void)state;
	/* Exactly the cap, with CR LF, with a bare LF: accepted. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "+OK ", 4);
	memcpy(buf + MT_STARTTLS_MAX_LINE, "\r\n", 2);
	st = machine(MT_PROTO_POP3, MT_STARTTLS_FOR_CLIENT);
	assert_int_equal(feed_all(st, buf, MT_STARTTLS_MAX_LINE + 2), NEED);
	mt_starttls_free(st);
	memcpy(buf + MT_STARTTLS_MAX_LINE, "\n", 1);
	st = machine(MT_PROTO_POP3, MT_STARTTLS_FOR_CLIENT);
	assert_int_equal(feed_all(st, buf, MT_STARTTLS_MAX_LINE + 1), NEED);
	mt_starttls_free(st);

	/* One more byte, ended at once or in a later read: refused. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "+OK ", 4);
	memcpy(buf + MT_STARTTLS_MAX_LINE + 1, "\r\n", 2);
	st = machine(MT_PROTO_POP3, MT_STARTTLS_FOR_CLIENT);
	assert_int_equal(feed_all(st, buf, MT_STARTTLS_MAX_LINE + 3), FAILED);
	assert_int_equal(mt_starttls_error(st), MT_STARTTLS_E_PROTOCOL);
	assert_string_equal(mt_starttls_reason(st), "the server sent a line "
	    "longer than 8192 bytes while we waited for the greeting");
	mt_starttls_free(st);
	st = machine(MT_PROTO_SMTP, MT_STARTTLS_FOR_CLIENT);
	for (n = 0; n < MT_STARTTLS_MAX_LINE + 1; n += 1000)
		assert_int_equal(feed_all(st, buf, 1000), n + 1000 >
		    MT_STARTTLS_MAX_LINE + 1 ? FAILED : NEED);
	mt_starttls_free(st);

	/* Without any line end, it fails before the end comes. */
	st = machine(MT_PROTO_IMAP, MT_STARTTLS_FOR_CLIENT);
	assert_int_equal(feed_all(st, buf, sizeof(buf)), FAILED);
	assert_string_equal(mt_starttls_reason(st), "the server sent a line "
	    "longer than 8192 bytes while we waited for the greeting");
	mt_starttls_free(st);
}

static void
test_prelude_and_greeting_caps(void **state)
{
	static char buf[4000];
	struct mt_starttls *st;
	size_t i;
	enum mt_starttls_status s = NEED;

	(void)state;
	/* Untagged IMAP lines are dropped, but not without end. */
	st = machine(MT_PROTO_IMAP, MT_STARTTLS_FOR_CLIENT);
	feed_all(st, IMAP_GREETING, strlen(IMAP_GREETING));
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "* OK ", 5);
	memcpy(buf + sizeof(buf) - 2, "\r\n", 2);
	for (i = 0; i < 20 && s == NEED; i++)
		s = feed_all(st, buf, sizeof(buf));
	assert_int_equal(s, FAILED);
	assert_int_equal(i, 17);
	assert_string_equal(mt_starttls_reason(st), "the server sent more than "
	    "65536 bytes before TLS");
	mt_starttls_free(st);

	/* A multi-line SMTP greeting is replayed, so it has a cap. */
	st = machine(MT_PROTO_SMTP, MT_STARTTLS_FOR_CLIENT);
	memcpy(buf, "220-", 4);
	s = NEED;
	for (i = 0; i < 5 && s == NEED; i++)
		s = feed_all(st, buf, sizeof(buf));
	assert_int_equal(s, FAILED);
	assert_int_equal(i, 3);
	assert_string_equal(mt_starttls_reason(st), "the server's greeting is "
	    "longer than 8192 bytes");
	mt_starttls_free(st);
}

static void
test_eof(void **state)
{
	static const struct {
		enum mt_protocol proto;
		const char *in;
		const char *reason;
	} cases[] = {
		{ MT_PROTO_POP3, "", "the server closed the connection while "
		  "we waited for the greeting" },
		{ MT_PROTO_POP3, "+OK\r\n", "the server closed the connection "
		  "while we waited for the CAPA reply" },
		{ MT_PROTO_POP3, "+OK\r\n", "the server closed the connection "
		  "while we waited for the CAPA reply" },
		{ MT_PROTO_IMAP, "* OK hi\r\n", "the server closed the "
		  "connection while we waited for the CAPABILITY reply" },
		{ MT_PROTO_IMAP, IMAP_GREETING, "the server closed the "
		  "connection while we waited for the STARTTLS reply" },
		{ MT_PROTO_SMTP, "220 hi\r\n", "the server closed the "
		  "connection while we waited for the EHLO reply" },
		{ MT_PROTO_SMTP, "220-hi\r\n", "the server closed the "
		  "connection while we waited for the greeting" },
	};
	struct mt_starttls *st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st = machine(cases[i].proto, MT_STARTTLS_FOR_CLIENT);
		feed_all(st, cases[i].in, strlen(cases[i].in));
		assert_int_equal(mt_starttls_eof(st), FAILED);
		assert_int_equal(mt_starttls_error(st), MT_STARTTLS_E_CLOSED);
		assert_string_equal(mt_starttls_reason(st), cases[i].reason);
		mt_starttls_free(st);
	}
}

static void
test_waiting_for(void **state)
{
	static const struct {
		enum mt_protocol proto;
		const char *in;
		const char *what;
	} cases[] = {
		{ MT_PROTO_POP3, "", "the greeting" },
		{ MT_PROTO_POP3, "+OK\r\n", "the CAPA reply" },
		{ MT_PROTO_POP3, "+OK\r\n|+OK\r\nX\r\n", "the CAPA reply" },
		{ MT_PROTO_POP3, "+OK\r\n|+OK\r\nSTLS\r\n.\r\n",
		  "the STLS reply" },
		{ MT_PROTO_IMAP, "* OK\r\n", "the CAPABILITY reply" },
		{ MT_PROTO_IMAP, IMAP_GREETING, "the STARTTLS reply" },
		{ MT_PROTO_SMTP, "220 x\r\n", "the EHLO reply" },
		{ MT_PROTO_SMTP, "220 x\r\n|250-x\r\n250 STARTTLS\r\n",
		  "the STARTTLS reply" },
		{ MT_PROTO_SMTP, "220 x\r\n|250-x\r\n250 STARTTLS\r\n|220 go\r\n",
		  "the TLS handshake" },
	};
	struct mt_starttls *st;
	char in[256], *p, *save = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st = machine(cases[i].proto, MT_STARTTLS_FOR_CLIENT);
		snprintf(in, sizeof(in), "%s", cases[i].in);
		for (p = strtok_r(in, "|", &save); p != NULL;
		    p = strtok_r(NULL, "|", &save))
			assert_int_not_equal(feed_all(st, p, strlen(p)), FAILED);
		assert_string_equal(mt_starttls_waiting_for(st), cases[i].what);
		mt_starttls_free(st);
	}
}

/* The fetcher's mode: the same dialogue, nothing to replay. */
static void
test_for_self(void **state)
{
	struct mt_starttls *st = machine(MT_PROTO_SMTP, MT_STARTTLS_FOR_SELF);
	const char *g;
	size_t len;

	(void)state;
	feed_all(st, SMTP_GREETING, strlen(SMTP_GREETING));
	feed_all(st, SMTP_EHLO_REPLY, strlen(SMTP_EHLO_REPLY));
	assert_int_equal(feed_all(st, "220 go\r\n", 8), READY);
	assert_null(mt_starttls_replay(st, &len));
	assert_int_equal(len, 0);
	g = mt_starttls_greeting(st, &len);
	assert_int_equal(len, strlen(SMTP_GREETING));
	assert_memory_equal(g, SMTP_GREETING, len);
	mt_starttls_free(st);

	st = machine(MT_PROTO_IMAP, MT_STARTTLS_FOR_SELF);
	feed_all(st, IMAP_GREETING, strlen(IMAP_GREETING));
	assert_int_equal(feed_all(st, "mt2 OK\r\n", 8), READY);
	assert_null(mt_starttls_replay(st, &len));
	g = mt_starttls_greeting(st, &len);
	assert_memory_equal(g, IMAP_GREETING, len);
	mt_starttls_free(st);
}

static void
test_new(void **state)
{
	struct mt_starttls_opts o = { MT_PROTO_NONE, MT_STARTTLS_FOR_CLIENT,
	    NULL };

	(void)state;
	assert_null(mt_starttls_new(&o));
	o.proto = MT_PROTO_SMTP;
	assert_null(mt_starttls_new(&o));
	o.ehlo_name = "";
	assert_null(mt_starttls_new(&o));
	o.ehlo_name = "bad name\r\nRCPT TO:<x>";
	assert_null(mt_starttls_new(&o));
	o.proto = MT_PROTO_POP3;
	mt_starttls_free(mt_starttls_new(&o));	/* POP3 needs no name */
	assert_string_equal(mt_starttls_command_name(MT_PROTO_POP3), "STLS");
	assert_string_equal(mt_starttls_command_name(MT_PROTO_IMAP),
	    "STARTTLS");
}

static void
test_client_lines(void **state)
{
	static const char *const prefix[] = { "-ERR mailtunnel: ",
	    "* BYE mailtunnel: ", "421 localhost mailtunnel: " };
	static const enum mt_protocol protos[] = { MT_PROTO_POP3,
	    MT_PROTO_IMAP, MT_PROTO_SMTP };
	const char *l;
	int e;
	size_t p;

	(void)state;
	for (p = 0; p < 3; p++) {
		for (e = MT_STARTTLS_E_NONE; e <= MT_STARTTLS_E_UNREACHABLE;
		    e++) {
			l = mt_starttls_client_line(protos[p], e);
			assert_non_null(l);
			assert_true(strncmp(l, prefix[p],
			    strlen(prefix[p])) == 0);
			assert_true(strlen(l) < 100);
			assert_string_equal(l + strlen(l) - 2, "\r\n");
			/* One line: no other CR or LF in it. */
			assert_ptr_equal(strchr(l, '\r'), l + strlen(l) - 2);
		}
	}
	assert_string_equal(mt_starttls_client_line(MT_PROTO_POP3,
	    MT_STARTTLS_E_REFUSED), "-ERR mailtunnel: the server refused "
	    "STARTTLS\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_IMAP,
	    MT_STARTTLS_E_PREAUTH), "* BYE mailtunnel: the server skipped "
	    "STARTTLS (PREAUTH)\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_SMTP,
	    MT_STARTTLS_E_INJECTION), "421 localhost mailtunnel: the server "
	    "sent plaintext after agreeing to TLS\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_POP3,
	    MT_STARTTLS_E_SESSION), "-ERR mailtunnel: the server refused the "
	    "session\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_IMAP,
	    MT_STARTTLS_E_NOT_OFFERED), "* BYE mailtunnel: the server does "
	    "not offer STARTTLS\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_SMTP,
	    MT_STARTTLS_E_PROTOCOL), "421 localhost mailtunnel: the server "
	    "broke the protocol before TLS\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_POP3,
	    MT_STARTTLS_E_CLOSED), "-ERR mailtunnel: the server closed the "
	    "connection\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_IMAP,
	    MT_STARTTLS_E_TIMEOUT), "* BYE mailtunnel: the server did not "
	    "answer in time\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_SMTP,
	    MT_STARTTLS_E_TLS), "421 localhost mailtunnel: TLS with the "
	    "server failed\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_POP3,
	    MT_STARTTLS_E_UNREACHABLE), "-ERR mailtunnel: cannot reach the "
	    "server\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_POP3,
	    MT_STARTTLS_E_NONE), "-ERR mailtunnel: the connection to the "
	    "server failed\r\n");
	assert_string_equal(mt_starttls_client_line(MT_PROTO_POP3,
	    (enum mt_starttls_error)99), "-ERR mailtunnel: the connection to "
	    "the server failed\r\n");
}

static void
test_injection_phrase(void **state)
{
	char buf[256];

	(void)state;
	assert_string_equal(mt_starttls_injection_phrase(MT_PROTO_SMTP,
	    "250 x\r\n", 7, 0, buf, sizeof(buf)), "plaintext injection: the "
	    "server sent 7 bytes after accepting STARTTLS, before the TLS "
	    "handshake ('250 x?" "?')");
	assert_string_equal(mt_starttls_injection_phrase(MT_PROTO_POP3,
	    "+OK \x01\xff", 6, MT_STARTTLS_INJ_MORE | MT_STARTTLS_INJ_DURING,
	    buf, sizeof(buf)), "plaintext injection: the server sent at least "
	    "6 bytes after accepting STLS, during the TLS handshake ('+OK "
	    "?" "?')");
	/* Long data is cut short in the phrase; the buffer always ends. */
	assert_string_equal(mt_starttls_injection_phrase(MT_PROTO_IMAP,
	    "0123456789012345678901234567890123456789", 40, 0, buf,
	    sizeof(buf)), "plaintext injection: the server sent 40 bytes after "
	    "accepting STARTTLS, before the TLS handshake "
	    "('012345678901234567890123456789012345...')");
	mt_starttls_injection_phrase(MT_PROTO_IMAP, "x", 1, 0, buf, 10);
	assert_string_equal(buf, "plaintext");
}

static void
test_default_ehlo(void **state)
{
	struct sockaddr_in v4 = { .sin_family = AF_INET };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
	char buf[300];

	(void)state;
	inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
	assert_string_equal(mt_starttls_default_ehlo("mail.example.org",
	    (struct sockaddr *)&v4, sizeof(v4), buf, sizeof(buf)),
	    "mail.example.org");
	assert_string_equal(mt_starttls_default_ehlo("vm",
	    (struct sockaddr *)&v4, sizeof(v4), buf, sizeof(buf)),
	    "[192.0.2.7]");
	assert_string_equal(mt_starttls_default_ehlo("vm",
	    (struct sockaddr *)&v6, sizeof(v6), buf, sizeof(buf)),
	    "[IPv6:2001:db8::1]");
	assert_string_equal(mt_starttls_default_ehlo("bad_name.example",
	    (struct sockaddr *)&v4, sizeof(v4), buf, sizeof(buf)),
	    "[192.0.2.7]");
	assert_string_equal(mt_starttls_default_ehlo("[192.0.2.9].x",
	    (struct sockaddr *)&v4, sizeof(v4), buf, sizeof(buf)),
	    "[192.0.2.7]");
	assert_string_equal(mt_starttls_default_ehlo(NULL, NULL, 0, buf,
	    sizeof(buf)), "localhost");
	assert_string_equal(mt_starttls_default_ehlo("vm",
	    (struct sockaddr *)&v4, 2, buf, sizeof(buf)), "localhost");
	assert_true(mt_config_ehlo_name_valid(buf));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcripts),
		cmocka_unit_test(test_every_split_point),
		cmocka_unit_test(test_injection_in_a_later_read_is_the_callers),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_prelude_and_greeting_caps),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_waiting_for),
		cmocka_unit_test(test_for_self),
		cmocka_unit_test(test_new),
		cmocka_unit_test(test_client_lines),
		cmocka_unit_test(test_injection_phrase),
		cmocka_unit_test(test_default_ehlo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
