/*
 * starttls_proto: what the lines of each protocol mean before STARTTLS.
 *
 * Every rule is a refusal: each state knows exactly one way forward, and
 * anything else ends the dialogue with a reason. Replies are judged by
 * their first word (or code) only, as the RFCs define them; the text
 * after it is kept for the log, never interpreted.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "starttls_int.h"

#define TAG_CAPA "mt1"
#define TAG_STARTTLS "mt2"

/* "what: the line", for refusals that quote the server. */
static void
fail_line(struct mt_starttls *st, enum mt_starttls_error e, const char *what,
    const char *l, size_t n)
{
	char ex[EXCERPT + 4];

	mt_starttls_fail(st, e, "%s: %s", what,
	    mt_starttls_excerpt(l, n, ex, sizeof(ex)));
}

static void
unexpected(struct mt_starttls *st, const char *l, size_t n)
{
	char what[64];

	snprintf(what, sizeof(what), "unexpected reply while waiting for %s",
	    mt_starttls_waiting_for(st));
	fail_line(st, MT_STARTTLS_E_PROTOCOL, what, l, n);
}

static void
not_offered(struct mt_starttls *st, const char *where)
{
	mt_starttls_fail(st, MT_STARTTLS_E_NOT_OFFERED, "the server does not "
	    "offer %s (not in %s)", mt_starttls_command_name(st->proto), where);
}

static void
ask(struct mt_starttls *st, const char *name, const char *cmd,
    enum st_state next)
{
	st->outlen = (size_t)snprintf(st->out, sizeof(st->out), "%s\r\n", cmd);
	st->cmd = name;
	st->asked = 1;
	st->state = next;
}

static void
ready(struct mt_starttls *st)
{
	st->status = MT_STARTTLS_READY;
	st->state = S_DONE;
}

static void
keep_greeting(struct mt_starttls *st, const char *l, size_t n)
{
	if (st->greetlen + n + 2 > sizeof(st->greeting)) {
		mt_starttls_fail(st, MT_STARTTLS_E_PROTOCOL, "the server's "
		    "greeting is longer than %d bytes", MT_STARTTLS_MAX_LINE);
		return;
	}
	memcpy(st->greeting + st->greetlen, l, n);
	memcpy(st->greeting + st->greetlen + n, "\r\n", 2);
	st->greetlen += n + 2;
}

/* The line starts with word (any case), then a space or its end. */
static int
word_is(const char *l, size_t n, const char *word)
{
	size_t w = strlen(word);

	return n >= w && strncasecmp(l, word, w) == 0 &&
	    (n == w || l[w] == ' ');
}

/* tok is one of the space-separated words of s (any case). */
static int
has_token(const char *s, size_t n, const char *tok)
{
	size_t i = 0, start, tl = strlen(tok);

	while (i < n) {
		while (i < n && s[i] == ' ')
			i++;
		start = i;
		while (i < n && s[i] != ' ')
			i++;
		if (i - start == tl && strncasecmp(s + start, tok, tl) == 0)
			return 1;
	}
	return 0;
}

/* ---- POP3 (RFC 1939, 2449, 2595) ---- */

void
mt_starttls_pop3_line(struct mt_starttls *st, const char *l, size_t n)
{
	int ok = word_is(l, n, "+OK"), err = word_is(l, n, "-ERR");

	switch (st->state) {
	case S_GREETING:
		if (ok) {
			keep_greeting(st, l, n);
			if (st->status == MT_STARTTLS_NEED_MORE)
				ask(st, "CAPA", "CAPA", S_POP3_CAPA);
		} else if (err) {
			fail_line(st, MT_STARTTLS_E_SESSION, "the server "
			    "refused the session", l, n);
		} else {
			unexpected(st, l, n);
		}
		return;
	case S_POP3_CAPA:
		/* Without CAPA the STLS reply alone decides. */
		if (ok)
			st->state = S_POP3_CAPA_LIST;
		else if (err)
			ask(st, "STLS", "STLS", S_POP3_STLS);
		else
			unexpected(st, l, n);
		return;
	case S_POP3_CAPA_LIST:
		if (n == 1 && l[0] == '.') {
			if (st->offered)
				ask(st, "STLS", "STLS", S_POP3_STLS);
			else
				not_offered(st, "its CAPA list");
		} else if (word_is(l, n, "STLS")) {
			st->offered = 1;
		}
		return;
	case S_POP3_STLS:
		if (ok)
			ready(st);
		else if (err)
			fail_line(st, MT_STARTTLS_E_REFUSED, "the server "
			    "refused STLS", l, n);
		else
			unexpected(st, l, n);
		return;
	default:
		return;
	}
}

/* ---- SMTP (RFC 5321, 3207) ---- */

/* The reply code of "ddd", "ddd text" or "ddd-text"; 0 when malformed. */
static int
smtp_code(const char *l, size_t n, int *more)
{
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
	    l[2] < '0' || l[2] > '9' || (n > 3 && l[3] != ' ' && l[3] != '-'))
		return 0;
	*more = n > 3 && l[3] == '-';
	return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

static void
smtp_ehlo_line(struct mt_starttls *st, const char *l, size_t n, int code,
    int first, int more)
{
	if (code != 250) {
		fail_line(st, MT_STARTTLS_E_NOT_OFFERED, "the server refused "
		    "EHLO", l, n);
		return;
	}
	/* The first line names the server; keywords follow. */
	if (!first && n > 4)
		st->offered |= word_is(l + 4, n - 4, "STARTTLS");
	if (more)
		return;
	if (st->offered)
		ask(st, "STARTTLS", "STARTTLS", S_SMTP_STARTTLS);
	else
		not_offered(st, "its EHLO reply");
}

void
mt_starttls_smtp_line(struct mt_starttls *st, const char *l, size_t n)
{
	char cmd[MT_CONFIG_EHLO_MAX + 8];
	int more = 0, code = smtp_code(l, n, &more);
	int first = st->smtp_code == 0;

	if (code == 0 || (!first && code != st->smtp_code)) {
		unexpected(st, l, n);
		return;
	}
	st->smtp_code = more ? code : 0;
	switch (st->state) {
	case S_GREETING:
		if (code != 220) {
			fail_line(st, MT_STARTTLS_E_SESSION, "the server "
			    "refused the session", l, n);
			return;
		}
		keep_greeting(st, l, n);
		if (!more && st->status == MT_STARTTLS_NEED_MORE) {
			snprintf(cmd, sizeof(cmd), "EHLO %s", st->ehlo);
			ask(st, "EHLO", cmd, S_SMTP_EHLO);
		}
		return;
	case S_SMTP_EHLO:
		smtp_ehlo_line(st, l, n, code, first, more);
		return;
	case S_SMTP_STARTTLS:
		if (code != 220)
			fail_line(st, MT_STARTTLS_E_REFUSED, "the server "
			    "refused STARTTLS", l, n);
		else if (!more)
			ready(st);
		return;
	default:
		return;
	}
}

/* ---- IMAP (RFC 3501, 9051) ---- */

/* A line that ends in {N} or {N+} announces N bytes that are not lines. */
static void
imap_literal(struct mt_starttls *st, const char *l, size_t n)
{
	unsigned long long v = 0;
	size_t i;

	if (n < 3 || l[n - 1] != '}')
		return;
	i = n - 2;
	if (l[i] == '+')
		i--;
	if (l[i] < '0' || l[i] > '9')
		return;
	while (i > 0 && l[i] >= '0' && l[i] <= '9')
		i--;
	if (l[i] != '{')
		return;
	for (i++; l[i] != '}' && l[i] != '+'; i++)
		if ((v = v * 10 + (unsigned long long)(l[i] - '0')) >
		    MT_STARTTLS_MAX_PRELUDE) {
			mt_starttls_fail(st, MT_STARTTLS_E_PROTOCOL, "the "
			    "server announced a literal larger than the %d "
			    "bytes allowed before TLS",
			    MT_STARTTLS_MAX_PRELUDE);
			return;
		}
	st->literal = (size_t)v;
	st->continued = 1;
}

/* "OK [CAPABILITY ...] text": 1 if the code is there; *offered set. */
static int
imap_capability_code(const char *s, size_t n, int *offered)
{
	static const char code[] = "OK [CAPABILITY ";
	const char *end;

	if (n < sizeof(code) - 1 || strncasecmp(s, code, sizeof(code) - 1))
		return 0;
	s += sizeof(code) - 1;
	n -= sizeof(code) - 1;
	if ((end = memchr(s, ']', n)) == NULL)
		return 0;
	*offered = has_token(s, (size_t)(end - s), "STARTTLS");
	return 1;
}

static void
imap_greeting(struct mt_starttls *st, const char *l, size_t n)
{
	const char *s = l + 2;
	size_t sn = n - 2;

	if (word_is(s, sn, "PREAUTH")) {
		mt_starttls_fail(st, MT_STARTTLS_E_PREAUTH, "the server "
		    "greeted with PREAUTH, which rules out STARTTLS; refusing "
		    "to go on without TLS");
		return;
	}
	if (word_is(s, sn, "BYE")) {
		fail_line(st, MT_STARTTLS_E_SESSION, "the server refused the "
		    "session", l, n);
		return;
	}
	if (!word_is(s, sn, "OK")) {
		unexpected(st, l, n);
		return;
	}
	keep_greeting(st, l, n);
	if (st->status != MT_STARTTLS_NEED_MORE)
		return;
	if (!imap_capability_code(s, sn, &st->offered))
		ask(st, "CAPABILITY", TAG_CAPA " CAPABILITY",
		    S_IMAP_CAPABILITY);
	else if (st->offered)
		ask(st, "STARTTLS", TAG_STARTTLS " STARTTLS", S_IMAP_STARTTLS);
	else
		not_offered(st, "the CAPABILITY list of its greeting");
}

/* "* ...": the greeting, BYE, CAPABILITY; any other is dropped. */
static void
imap_untagged(struct mt_starttls *st, const char *l, size_t n)
{
	if (st->state == S_GREETING)
		imap_greeting(st, l, n);
	else if (word_is(l + 2, n - 2, "BYE"))
		fail_line(st, MT_STARTTLS_E_CLOSED, "the server ended the "
		    "session", l, n);
	else if (word_is(l + 2, n - 2, "CAPABILITY"))
		st->offered |= has_token(l + 2, n - 2, "STARTTLS");
	if (st->status == MT_STARTTLS_NEED_MORE)
		imap_literal(st, l, n);
}

static void
imap_tagged(struct mt_starttls *st, const char *l, size_t n)
{
	const char *tag = st->state == S_IMAP_CAPABILITY ? TAG_CAPA :
	    TAG_STARTTLS;
	size_t tl = strlen(tag);
	int ok;

	if (n <= tl || memcmp(l, tag, tl) != 0 || l[tl] != ' ') {
		unexpected(st, l, n);
		return;
	}
	if (st->asked) {
		mt_starttls_out_of_turn(st, n);
		return;
	}
	ok = word_is(l + tl + 1, n - tl - 1, "OK");
	if (st->state == S_IMAP_CAPABILITY) {
		if (!ok)
			fail_line(st, MT_STARTTLS_E_NOT_OFFERED, "the server "
			    "refused CAPABILITY", l, n);
		else if (!st->offered)
			not_offered(st, "its CAPABILITY list");
		else
			ask(st, "STARTTLS", TAG_STARTTLS " STARTTLS",
			    S_IMAP_STARTTLS);
	} else if (ok) {
		ready(st);
	} else {
		fail_line(st, MT_STARTTLS_E_REFUSED, "the server refused "
		    "STARTTLS", l, n);
	}
}

void
mt_starttls_imap_line(struct mt_starttls *st, const char *l, size_t n)
{
	if (st->continued) {
		/* The rest of a response after its literal. */
		st->continued = 0;
		imap_literal(st, l, n);
	} else if (n >= 2 && l[0] == '*' && l[1] == ' ') {
		imap_untagged(st, l, n);
	} else if (st->state == S_GREETING) {
		unexpected(st, l, n);
	} else {
		imap_tagged(st, l, n);
	}
}

