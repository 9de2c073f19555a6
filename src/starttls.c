/*
 * starttls: the POP3, IMAP and SMTP preludes up to STARTTLS, as one
 * incremental line machine (see include/mailtunnel/starttls.h). This file
 * cuts the server's bytes into lines under the caps, enforces the
 * out-of-turn and injection rules, and holds the accessors; what each
 * line means is in starttls_proto.c.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "starttls_int.h"

static const char imap_replay[] =
    "* OK mailtunnel: connected to the server over TLS\r\n";

void
mt_starttls_fail(struct mt_starttls *st, enum mt_starttls_error e,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
	st->status = MT_STARTTLS_FAILED;
	st->error = e;
	st->state = S_DONE;
}

/* Server text for a log line: printable ASCII only, shortened. */
char *
mt_starttls_excerpt(const char *s, size_t len, char *buf, size_t n)
{
	size_t i, max = len < n - 4 ? len : n - 4;

	for (i = 0; i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	strcpy(buf + i, max < len ? "..." : "");
	return buf;
}

void
mt_starttls_out_of_turn(struct mt_starttls *st, size_t n)
{
	mt_starttls_fail(st, MT_STARTTLS_E_PROTOCOL, "the server sent %zu "
	    "bytes out of turn, before it could have read our %s command", n,
	    st->cmd);
}

/* ---- feeding ---- */

static void
dispatch(struct mt_starttls *st, const char *l, size_t n)
{
	switch (st->proto) {
	case MT_PROTO_POP3:
		mt_starttls_pop3_line(st, l, n);
		break;
	case MT_PROTO_IMAP:
		mt_starttls_imap_line(st, l, n);
		break;
	default:
		mt_starttls_smtp_line(st, l, n);
		break;
	}
}

static void
too_long(struct mt_starttls *st)
{
	mt_starttls_fail(st, MT_STARTTLS_E_PROTOCOL, "the server sent a line "
	    "longer than %d bytes while we waited for %s",
	    MT_STARTTLS_MAX_LINE, mt_starttls_waiting_for(st));
}

/* Use some of p: a literal's bytes, or up to one line. Returns how many. */
static size_t
take(struct mt_starttls *st, const char *p, size_t n)
{
	const char *nl;
	size_t k;

	if (st->literal > 0)
		k = n < st->literal ? n : st->literal;
	else if ((nl = memchr(p, '\n', n)) != NULL)
		k = (size_t)(nl - p) + 1;
	else
		k = n;
	if ((st->total += k) > MT_STARTTLS_MAX_PRELUDE) {
		mt_starttls_fail(st, MT_STARTTLS_E_PROTOCOL, "the server sent "
		    "more than %d bytes before TLS", MT_STARTTLS_MAX_PRELUDE);
		return k;
	}
	if (st->literal > 0) {
		st->literal -= k;
		return k;
	}
	/* The buffer holds the cap plus a CR; the LF is not kept. */
	if (st->linelen + k > sizeof(st->line) + (p[k - 1] == '\n')) {
		too_long(st);
		return k;
	}
	if (p[k - 1] != '\n') {
		memcpy(st->line + st->linelen, p, k);
		st->linelen += k;
		return k;
	}
	memcpy(st->line + st->linelen, p, k - 1);
	st->linelen += k - 1;
	if (st->linelen > 0 && st->line[st->linelen - 1] == '\r')
		st->linelen--;
	if (st->linelen > MT_STARTTLS_MAX_LINE)
		too_long(st);
	else
		dispatch(st, st->line, st->linelen);
	st->linelen = 0;
	return k;
}

char *
mt_starttls_injection_phrase(enum mt_protocol proto, const void *data,
    size_t n, unsigned flags, char *buf, size_t len)
{
	char ex[40];

	snprintf(buf, len, "plaintext injection: the server sent %s%zu bytes "
	    "after accepting %s, %s the TLS handshake ('%s')",
	    (flags & MT_STARTTLS_INJ_MORE) ? "at least " : "", n,
	    mt_starttls_command_name(proto), (flags & MT_STARTTLS_INJ_DURING) ?
	    "during" : "before", mt_starttls_excerpt(data, n, ex, sizeof(ex)));
	return buf;
}

static void
injection(struct mt_starttls *st, const char *p, size_t n)
{
	char why[200];

	mt_starttls_fail(st, MT_STARTTLS_E_INJECTION, "%s",
	    mt_starttls_injection_phrase(st->proto, p, n, 0, why,
	    sizeof(why)));
}

enum mt_starttls_status
mt_starttls_feed(struct mt_starttls *st, const void *data, size_t len,
    size_t *consumed)
{
	const char *p = data;
	size_t i = 0;

	*consumed = 0;
	if (st->status != MT_STARTTLS_NEED_MORE)
		return st->status;
	/* Whatever was asked before this batch has been sent. */
	st->asked = 0;
	st->outlen = 0;
	while (i < len && st->status == MT_STARTTLS_NEED_MORE) {
		if (st->asked && st->proto != MT_PROTO_IMAP) {
			mt_starttls_out_of_turn(st, len - i);
			break;
		}
		i += take(st, p + i, len - i);
	}
	if (st->status == MT_STARTTLS_READY && i < len)
		injection(st, p + i, len - i);
	if (st->status == MT_STARTTLS_FAILED)
		st->outlen = 0;
	*consumed = i;
	return st->status;
}

enum mt_starttls_status
mt_starttls_eof(struct mt_starttls *st)
{
	if (st->status == MT_STARTTLS_NEED_MORE)
		mt_starttls_fail(st, MT_STARTTLS_E_CLOSED, "the server closed "
		    "the connection while we waited for %s",
		    mt_starttls_waiting_for(st));
	return st->status;
}

/* ---- set-up and accessors ---- */

struct mt_starttls *
mt_starttls_new(const struct mt_starttls_opts *opts)
{
	struct mt_starttls *st;

	if (opts->proto != MT_PROTO_POP3 && opts->proto != MT_PROTO_IMAP &&
	    opts->proto != MT_PROTO_SMTP)
		return NULL;
	if (opts->proto == MT_PROTO_SMTP && (opts->ehlo_name == NULL ||
	    !mt_config_ehlo_name_valid(opts->ehlo_name)))
		return NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->proto = opts->proto;
	st->mode = opts->mode;
	st->state = S_GREETING;
	st->status = MT_STARTTLS_NEED_MORE;
	st->cmd = "";
	if (opts->ehlo_name != NULL)
		snprintf(st->ehlo, sizeof(st->ehlo), "%s", opts->ehlo_name);
	return st;
}

void
mt_starttls_free(struct mt_starttls *st)
{
	free(st);
}

const char *
mt_starttls_output(const struct mt_starttls *st, size_t *len)
{
	*len = st->outlen;
	return st->out;
}

enum mt_starttls_status
mt_starttls_status(const struct mt_starttls *st)
{
	return st->status;
}

enum mt_starttls_error
mt_starttls_error(const struct mt_starttls *st)
{
	return st->error;
}

const char *
mt_starttls_reason(const struct mt_starttls *st)
{
	return st->reason;
}

const char *
mt_starttls_command_name(enum mt_protocol proto)
{
	return proto == MT_PROTO_POP3 ? "STLS" : "STARTTLS";
}

const char *
mt_starttls_waiting_for(const struct mt_starttls *st)
{
	switch (st->state) {
	case S_GREETING:
		return "the greeting";
	case S_POP3_CAPA:
	case S_POP3_CAPA_LIST:
		return "the CAPA reply";
	case S_POP3_STLS:
		return "the STLS reply";
	case S_IMAP_CAPABILITY:
		return "the CAPABILITY reply";
	case S_SMTP_EHLO:
		return "the EHLO reply";
	case S_IMAP_STARTTLS:
	case S_SMTP_STARTTLS:
		return "the STARTTLS reply";
	default:
		return "the TLS handshake";
	}
}

const char *
mt_starttls_replay(const struct mt_starttls *st, size_t *len)
{
	*len = 0;
	if (st->status != MT_STARTTLS_READY ||
	    st->mode != MT_STARTTLS_FOR_CLIENT)
		return NULL;
	if (st->proto == MT_PROTO_IMAP) {
		*len = sizeof(imap_replay) - 1;
		return imap_replay;
	}
	*len = st->greetlen;
	return st->greeting;
}

const char *
mt_starttls_greeting(const struct mt_starttls *st, size_t *len)
{
	*len = st->greetlen;
	return st->greeting;
}

#define LINES(text) { "-ERR mailtunnel: " text "\r\n", \
	"* BYE mailtunnel: " text "\r\n", \
	"421 localhost mailtunnel: " text "\r\n" }

static const char *const client_lines[][3] = {
	[MT_STARTTLS_E_NONE] = LINES("the connection to the server failed"),
	[MT_STARTTLS_E_SESSION] = LINES("the server refused the session"),
	[MT_STARTTLS_E_NOT_OFFERED] = LINES("the server does not offer "
	    "STARTTLS"),
	[MT_STARTTLS_E_REFUSED] = LINES("the server refused STARTTLS"),
	[MT_STARTTLS_E_PREAUTH] = LINES("the server skipped STARTTLS "
	    "(PREAUTH)"),
	[MT_STARTTLS_E_PROTOCOL] = LINES("the server broke the protocol "
	    "before TLS"),
	[MT_STARTTLS_E_INJECTION] = LINES("the server sent plaintext after "
	    "agreeing to TLS"),
	[MT_STARTTLS_E_CLOSED] = LINES("the server closed the connection"),
	[MT_STARTTLS_E_TIMEOUT] = LINES("the server did not answer in time"),
	[MT_STARTTLS_E_TLS] = LINES("TLS with the server failed"),
	[MT_STARTTLS_E_UNREACHABLE] = LINES("cannot reach the server"),
};

const char *
mt_starttls_client_line(enum mt_protocol proto, enum mt_starttls_error error)
{
	size_t p = proto == MT_PROTO_IMAP ? 1 : proto == MT_PROTO_SMTP ? 2 : 0;

	if ((size_t)error >= sizeof(client_lines) / sizeof(client_lines[0]))
		error = MT_STARTTLS_E_NONE;
	return client_lines[error][p];
}

char *
mt_starttls_default_ehlo(const char *hostname, const struct sockaddr *local,
    socklen_t locallen, char *buf, size_t n)
{
	char addr[INET6_ADDRSTRLEN];

	if (hostname != NULL && hostname[0] != '[' &&
	    strchr(hostname, '.') != NULL &&
	    mt_config_ehlo_name_valid(hostname)) {
		snprintf(buf, n, "%s", hostname);
	} else if (local != NULL && local->sa_family == AF_INET &&
	    locallen >= (socklen_t)sizeof(struct sockaddr_in) &&
	    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)
	    local)->sin_addr, addr, sizeof(addr)) != NULL) {
		snprintf(buf, n, "[%s]", addr);
	} else if (local != NULL && local->sa_family == AF_INET6 &&
	    locallen >= (socklen_t)sizeof(struct sockaddr_in6) &&
	    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)
	    local)->sin6_addr, addr, sizeof(addr)) != NULL) {
		snprintf(buf, n, "[IPv6:%s]", addr);
	} else {
		snprintf(buf, n, "localhost");
	}
	return buf;
}
