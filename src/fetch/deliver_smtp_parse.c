/*
 * deliver_smtp_parse: the pure parts of the SMTP and LMTP targets - the
 * spec, the server's replies and the DATA transform. No sockets, no loop,
 * no logging; tests/unit/test_deliver_smtp_parse.c drives them.
 *
 * Specs:
 *   smtp://HOST[:PORT]            port 25; STARTTLS when offered
 *   smtp+starttls://HOST[:PORT]   port 25; STARTTLS required, verified
 *   smtps://HOST[:PORT]           port 465; TLS from the start, verified
 *   lmtp://HOST[:PORT]            port 24; STARTTLS when offered
 *   lmtp+starttls://HOST[:PORT]   port 24; STARTTLS required, verified
 *   lmtp:/PATH                    a unix socket (no TLS)
 * HOST is a name, an IPv4 address or an IPv6 address in brackets; a
 * final "/" is allowed.
 *
 * DATA: every line end (CRLF, or a bare LF or CR) goes out as CRLF, and a
 * line that starts with "." gets another one (RFC 5321 4.5.2). Bare CR and
 * LF never reach the server, so no "<LF>.<LF>" in a message can end the
 * DATA early at a server that reads them as line ends (SMTP smuggling).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "fetch/deliver_smtp.h"
#include "mailtunnel/util.h"

static const struct {
	const char *scheme;
	enum rm_kind kind;
	enum rm_tls tls;
	const char *port;
} schemes[] = {
	{ "smtp", RM_SMTP, RM_TLS_MAY, "25" },
	{ "smtp+starttls", RM_SMTP, RM_TLS_STARTTLS, "25" },
	{ "smtps", RM_SMTP, RM_TLS_IMPLICIT, "465" },
	{ "lmtp", RM_LMTP, RM_TLS_MAY, "24" },
	{ "lmtp+starttls", RM_LMTP, RM_TLS_STARTTLS, "24" },
};

static int
host_byte(char c, int v6)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    (v6 && c == ':');
}

/* "HOST[:PORT][/]" after the "//". */
static int
parse_hostport(const char *spec, const char *p, struct rm_spec *out,
    char *err, size_t errsz)
{
	const char *end;
	unsigned long long port;
	size_t n;
	int v6 = (*p == '['), had_port = 0;

	end = p + v6;
	while (host_byte(*end, v6))
		end++;
	n = (size_t)(end - p - v6);
	if (n == 0 || n > RM_HOST_MAX || (v6 && *end != ']')) {
		snprintf(err, errsz, "%s: %s", spec, n == 0 ? "the host is "
		    "missing" : n > RM_HOST_MAX ? "host name too long" :
		    "invalid host");
		return -1;
	}
	memcpy(out->host, p + v6, n);
	out->host[n] = '\0';
	end += v6;
	if (*end == ':') {
		n = strcspn(end + 1, "/");
		if (n == 0 || n >= sizeof(out->port)) {
			snprintf(err, errsz, "%s: invalid port", spec);
			return -1;
		}
		memcpy(out->port, end + 1, n);
		out->port[n] = '\0';
		if (mt_parse_uint(out->port, 1, 65535, &port) == -1) {
			snprintf(err, errsz, "%s: invalid port \"%s\"", spec,
			    out->port);
			return -1;
		}
		end += 1 + n;
		had_port = 1;
	}
	if (*end == '/')
		end++;
	if (*end != '\0') {
		snprintf(err, errsz, "%s: unexpected \"%s\" after the %s", spec,
		    end, had_port ? "port" : "host");
		return -1;
	}
	snprintf(out->where, sizeof(out->where), v6 ? "[%s]:%s" : "%s:%s",
	    out->host, out->port);
	return 0;
}

int
rm_spec_parse(const char *scheme, const char *arg, struct rm_spec *out,
    char *err, size_t errsz)
{
	char spec[600];
	size_t i;

	memset(out, 0, sizeof(*out));
	snprintf(spec, sizeof(spec), "%s:%s", scheme, arg);
	for (i = 0; i < sizeof(schemes) / sizeof(*schemes); i++)
		if (strcasecmp(scheme, schemes[i].scheme) == 0)
			break;
	if (i == sizeof(schemes) / sizeof(*schemes)) {
		snprintf(err, errsz, "%s: unknown scheme", spec);
		return -1;
	}
	out->kind = schemes[i].kind;
	out->tls = schemes[i].tls;
	mt_strlcpy(out->port, schemes[i].port, sizeof(out->port));
	if (strncmp(arg, "//", 2) == 0)
		return parse_hostport(spec, arg + 2, out, err, errsz);
	if (out->kind == RM_LMTP && out->tls == RM_TLS_MAY && arg[0] == '/') {
		if (strlen(arg) >= sizeof(out->path)) {
			snprintf(err, errsz, "%s: socket path too long (at most "
			    "%zu bytes)", spec, sizeof(out->path) - 1);
			return -1;
		}
		mt_strlcpy(out->path, arg, sizeof(out->path));
		mt_strlcpy(out->where, arg, sizeof(out->where));
		out->tls = RM_TLS_NONE;
		out->port[0] = '\0';
		return 0;
	}
	if (out->kind == RM_LMTP && out->tls == RM_TLS_MAY)
		snprintf(err, errsz, "%s: expected lmtp:/PATH/TO/SOCKET or "
		    "lmtp://HOST[:PORT]", spec);
	else
		snprintf(err, errsz, "%s: expected %s://HOST[:PORT]", spec,
		    schemes[i].scheme);
	return -1;
}

/* ---- replies ---- */

static void
printable_text(char *out, const char *p, size_t n)
{
	size_t i;

	if (n > RM_TEXT_MAX)
		n = RM_TEXT_MAX;
	for (i = 0; i < n; i++)
		out[i] = ((unsigned char)p[i] >= 0x20 &&
		    (unsigned char)p[i] < 0x7f) ? p[i] : '?';
	out[n] = '\0';
}

/* An EHLO keyword line ("SIZE 10240000", "STARTTLS"). */
static void
ehlo_keyword(struct rm_reply *r, const char *p, size_t n)
{
	char word[32], arg[24];
	size_t k = 0, a = 0;
	unsigned long long v;

	while (k < n && k + 1 < sizeof(word) && p[k] != ' ') {
		word[k] = p[k];
		k++;
	}
	word[k] = '\0';
	if (k < n && p[k] == ' ')
		for (k++; k < n && a + 1 < sizeof(arg) && p[k] != ' '; k++)
			arg[a++] = p[k];
	arg[a] = '\0';
	if (strcasecmp(word, "STARTTLS") == 0)
		r->caps |= RM_CAP_STARTTLS;
	else if (strcasecmp(word, "8BITMIME") == 0)
		r->caps |= RM_CAP_8BITMIME;
	else if (strcasecmp(word, "PIPELINING") == 0)
		r->caps |= RM_CAP_PIPELINING;
	else if (strcasecmp(word, "SIZE") == 0) {
		r->caps |= RM_CAP_SIZE;
		if (a > 0 && mt_parse_uint(arg, 0, UINT64_MAX, &v) == 0)
			r->size_max = v;
	}
}

/* One line of a reply (without its line end): its code and separator. */
static int
reply_line(const char *p, size_t n, struct rm_reply *r, int *last,
    char *err, size_t errsz)
{
	int code;

	if (n < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' || (n > 3 && p[3] != ' ' && p[3] != '-')) {
		char shown[64];

		printable_text(shown, p, n < 40 ? n : 40);
		snprintf(err, errsz, "a malformed reply \"%s\"", shown);
		return -1;
	}
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (r->lines > 0 && code != r->code) {
		snprintf(err, errsz, "a reply whose lines have different codes "
		    "(%d, %d)", r->code, code);
		return -1;
	}
	if (r->lines == 0)
		printable_text(r->text, p + (n > 3 ? 4 : 3), n > 3 ? n - 4 : 0);
	else if (n > 4)
		ehlo_keyword(r, p + 4, n - 4);
	r->code = code;
	r->lines++;
	*last = (n == 3 || p[3] == ' ');
	return 0;
}

int
rm_reply_parse(const char *buf, size_t len, struct rm_reply *r,
    size_t *used, char *err, size_t errsz)
{
	const char *nl;
	size_t off = 0, n;
	int last = 0;

	memset(r, 0, sizeof(*r));
	*used = 0;
	while (!last) {
		nl = memchr(buf + off, '\n', len - off);
		n = nl ? (size_t)(nl - buf) - off : len - off;
		if (n > RM_LINE_CAP) {
			snprintf(err, errsz, "a reply line longer than %d bytes",
			    RM_LINE_CAP);
			return RM_REPLY_BAD;
		}
		if (nl == NULL)
			return RM_REPLY_MORE;
		if (reply_line(buf + off, n > 0 && buf[off + n - 1] == '\r' ?
		    n - 1 : n, r, &last, err, errsz) == -1)
			return RM_REPLY_BAD;
		off += n + 1;
		if (off > RM_REPLY_CAP) {
			snprintf(err, errsz, "a reply longer than %d bytes",
			    RM_REPLY_CAP);
			return RM_REPLY_BAD;
		}
	}
	*used = off;
	return RM_REPLY_DONE;
}

/* ---- DATA ---- */

static int
line_end(struct rm_dot *x, struct evbuffer *out)
{
	x->mid = 0;
	return evbuffer_add(out, "\r\n", 2);
}

int
rm_dot_write(struct rm_dot *x, struct evbuffer *out, const char *p, size_t n)
{
	size_t i = 0, run;

	while (i < n) {
		if (x->cr) {
			x->cr = 0;
			if (line_end(x, out) == -1)
				return -1;
			if (p[i] == '\n') {
				i++;
				continue;
			}
		}
		if (p[i] == '\r') {
			x->cr = 1;
			i++;
			continue;
		}
		if (p[i] == '\n') {
			if (line_end(x, out) == -1)
				return -1;
			i++;
			continue;
		}
		if (!x->mid && p[i] == '.' && evbuffer_add(out, ".", 1) == -1)
			return -1;
		/* The rest of the line goes out as it is. */
		for (run = i; run < n && p[run] != '\r' && p[run] != '\n'; run++)
			;
		if (evbuffer_add(out, p + i, run - i) == -1)
			return -1;
		x->mid = 1;
		i = run;
	}
	return 0;
}

int
rm_dot_finish(struct rm_dot *x, struct evbuffer *out)
{
	if (x->cr) {
		x->cr = 0;
		return line_end(x, out);
	}
	return x->mid ? line_end(x, out) : 0;
}
