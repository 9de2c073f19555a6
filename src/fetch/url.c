/*
 * fetch/url: parse and render fetch URLs. See include/mailtunnel/fetch_url.h.
 *
 * The order of the checks matters for the messages: the password check
 * comes before anything that could quote the user part.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailtunnel/fetch_url.h"
#include "mailtunnel/log.h"
#include "mailtunnel/sasl.h"
#include "mailtunnel/util.h"

static const struct {
	const char *name;
	enum mt_fetch_proto proto;
	int starttls;
	unsigned port;
} schemes[] = {
	{ "pop3s", MT_FETCH_POP3, 0, 995 },
	{ "imaps", MT_FETCH_IMAP, 0, 993 },
	{ "pop3", MT_FETCH_POP3, 1, 110 },
	{ "imap", MT_FETCH_IMAP, 1, 143 },
};

#define SCHEMES_HINT "use pop3s:// or imaps:// (TLS from the start), or " \
	"pop3:// or imap:// (STARTTLS, required)"

static int MT_PRINTF(3, 4)
fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (errsz > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return -1;
}

unsigned
mt_fetch_url_default_port(enum mt_fetch_proto proto, int starttls)
{
	size_t i;

	for (i = 0; i < MT_ARRAY_LEN(schemes); i++) {
		if (schemes[i].proto == proto && schemes[i].starttls == !!starttls)
			return schemes[i].port;
	}
	return 0;
}

/* Copy at most n bytes of s for a message, printable ASCII only. */
static const char *
quote(const char *s, size_t n, char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < n && i + 1 < size; i++)
		buf[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static int
parse_scheme(const char *s, const char **rest, struct mt_fetch_url *u,
    char *err, size_t errsz)
{
	const char *sep = strstr(s, "://");
	size_t i, n;
	char q[24], hint[48] = "";

	/*
	 * Text before "://" that is not scheme-shaped (RFC 3986) may be a
	 * mistyped URL with a password in it: never quote it.
	 */
	if (sep == NULL || (n = (size_t)(sep - s)) > 16 ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789+-.") < n || (n > 0 && !isalpha((unsigned char)s[0])))
		return fail(err, errsz, "not a URL: expected scheme://user@host, "
		    "e.g. imaps://alice@imap.example.com");
	for (i = 0; i < MT_ARRAY_LEN(schemes); i++) {
		if (strlen(schemes[i].name) == n &&
		    strncasecmp(s, schemes[i].name, n) == 0) {
			u->proto = schemes[i].proto;
			u->starttls = schemes[i].starttls;
			u->port = schemes[i].port;
			*rest = sep + 3;
			return 0;
		}
	}
	quote(s, n, q, sizeof(q));
	for (i = 0; i < MT_ARRAY_LEN(schemes); i++) {
		if (mt_str_distance(q, schemes[i].name) <= 2) {
			snprintf(hint, sizeof(hint), " (did you mean %s://?)",
			    schemes[i].name);
			break;
		}
	}
	return fail(err, errsz, "unknown URL scheme \"%s\"%s: %s", q, hint,
	    SCHEMES_HINT);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/*
 * Percent-decode s[0..n) into out (NUL-terminated). what names the part
 * for messages ("user name", "mailbox name").
 */
static int
decode(const char *s, size_t n, char *out, size_t outsz, const char *what,
    char *err, size_t errsz)
{
	size_t i, o = 0;
	int hi, lo, c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '%') {
			if (n - i < 3 || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0)
				return fail(err, errsz, "bad percent-encoding in the "
				    "%s (expected %% and two hex digits)", what);
			c = hi << 4 | lo;
			i += 2;
		}
		if (c == 0)
			return fail(err, errsz, "the %s contains %%00", what);
		/* A CR or LF would let the name inject protocol commands. */
		if (c < 0x20 || c == 0x7f)
			return fail(err, errsz, "the %s contains a control "
			    "character", what);
		if (o + 1 >= outsz)
			return fail(err, errsz, "the %s is longer than %zu bytes",
			    what, outsz - 1);
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* ";AUTH=MECH" (or ";AUTH=*"); p points after the ';'. */
static int
parse_param(const char *p, size_t n, struct mt_fetch_url *u, int *seen,
    char *err, size_t errsz)
{
	const char *name;
	unsigned bit;
	char q[32];

	/* Only the name is quoted: the value could be a password. */
	if (n < 5 || strncasecmp(p, "AUTH=", 5) != 0)
		return fail(err, errsz, "unknown parameter \";%s\" after the user "
		    "name (only ;AUTH=mechanism is understood)",
		    quote(p, strcspn(p, "=") < n ? strcspn(p, "=") : n, q,
		    sizeof(q)));
	if ((*seen)++)
		return fail(err, errsz, "more than one ;AUTH= parameter");
	p += 5;
	n -= 5;
	if (n == 0)
		return fail(err, errsz, "empty mechanism after ;AUTH=");
	if (n == 1 && p[0] == '*')
		return 0;
	if (!mt_sasl_mech_name_valid(p, n))
		return fail(err, errsz, "malformed mechanism name after ;AUTH= "
		    "(use PLAIN, LOGIN, XOAUTH2, OAUTHBEARER, or * for automatic)");
	bit = mt_sasl_mech_bit(p, n);
	if (bit == 0 || (name = mt_sasl_mech_name(bit)) == NULL)
		return fail(err, errsz, "unknown authentication mechanism \"%s\" "
		    "in ;AUTH= (use PLAIN, LOGIN, XOAUTH2, OAUTHBEARER, or * for "
		    "automatic)", quote(p, n, q, sizeof(q)));
	mt_strlcpy(u->auth, name, sizeof(u->auth));
	return 0;
}

static int
parse_userinfo(const char *s, size_t n, struct mt_fetch_url *u, char *err,
    size_t errsz)
{
	const char *semi = memchr(s, ';', n), *next;
	size_t ulen = semi ? (size_t)(semi - s) : n;
	int seen = 0;

	/* Before anything that quotes: the text after ':' is a secret. */
	if (memchr(s, ':', n) != NULL)
		return fail(err, errsz, "a password in the URL is refused (it "
		    "would show in process lists and logs): put it in a password "
		    "file instead");
	if (ulen == 0)
		return fail(err, errsz, "no user name before '@' "
		    "(e.g. imaps://alice@imap.example.com)");
	if (decode(s, ulen, u->user, sizeof(u->user), "user name", err,
	    errsz) == -1)
		return -1;
	while (semi != NULL) {
		const char *p = semi + 1;
		next = memchr(p, ';', n - (size_t)(p - s));
		if (parse_param(p, next ? (size_t)(next - p) :
		    n - (size_t)(p - s), u, &seen, err, errsz) == -1)
			return -1;
		semi = next;
	}
	return 0;
}

static int
parse_port(const char *p, size_t n, struct mt_fetch_url *u, char *err,
    size_t errsz)
{
	unsigned long v = 0;
	size_t i;
	char q[16];

	if (n == 0)
		return fail(err, errsz, "empty port after ':'");
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]) || v > 65535)
			break;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (i < n || v == 0 || v > 65535)
		return fail(err, errsz, "bad port \"%s\" (expected a number from 1 "
		    "to 65535)", quote(p, n, q, sizeof(q)));
	u->port = (unsigned)v;
	u->port_given = 1;
	return 0;
}

static int
parse_ipv6(const char *s, size_t n, const char **after,
    struct mt_fetch_url *u, char *err, size_t errsz)
{
	const char *close = memchr(s, ']', n);
	unsigned char addr[16];
	size_t len;
	char q[64];

	if (close == NULL)
		return fail(err, errsz, "missing ']' after the IPv6 address");
	len = (size_t)(close - s - 1);
	if (len >= sizeof(u->host) || len >= sizeof(q))
		return fail(err, errsz, "bad IPv6 address in brackets");
	memcpy(u->host, s + 1, len);
	u->host[len] = '\0';
	if (inet_pton(AF_INET6, u->host, addr) != 1)
		return fail(err, errsz, "bad IPv6 address \"%s\"",
		    quote(u->host, len, q, sizeof(q)));
	u->ipv6 = 1;
	*after = close + 1;
	return 0;
}

/* "host[:port]" or "[v6][:port]" in s[0..n). */
static int
parse_hostport(const char *s, size_t n, struct mt_fetch_url *u, char *err,
    size_t errsz)
{
	const char *end = s + n, *colon, *p = NULL;
	size_t i, hlen;

	if (n > 0 && s[0] == '[') {
		if (parse_ipv6(s, n, &p, u, err, errsz) == -1)
			return -1;
		if (p < end && *p != ':')
			return fail(err, errsz, "expected ':' or the end of the "
			    "host after ']'");
		return p < end ? parse_port(p + 1, (size_t)(end - p - 1), u, err,
		    errsz) : 0;
	}
	colon = memchr(s, ':', n);
	if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
		return fail(err, errsz, "an IPv6 address must be in brackets, "
		    "e.g. imaps://alice@[2001:db8::1]:993");
	hlen = colon ? (size_t)(colon - s) : n;
	if (hlen == 0)
		return fail(err, errsz, "no host name after '@'");
	if (hlen >= sizeof(u->host))
		return fail(err, errsz, "host name longer than 253 bytes");
	for (i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '.' || c == '_')
			continue;
		if (c < 0x80)
			return fail(err, errsz, "bad character '%c' in the host "
			    "name", c);
		return fail(err, errsz, "bad byte 0x%02X in the host name "
		    "(write international names in their xn-- form)", c);
	}
	memcpy(u->host, s, hlen);
	u->host[hlen] = '\0';
	return colon ? parse_port(colon + 1, (size_t)(end - colon - 1), u, err,
	    errsz) : 0;
}

static int
parse_path(const char *p, struct mt_fetch_url *u, char *err, size_t errsz)
{
	size_t n = strlen(p);

	/* p is what follows the "/" after the host. */
	if (n == 0)
		return 0;
	if (u->proto == MT_FETCH_POP3)
		return fail(err, errsz, "a POP3 URL has no mailbox (POP3 reads "
		    "only the inbox): remove the path after the host, or use "
		    "imaps:// to read another mailbox");
	if (strchr(p, ';') != NULL)
		return fail(err, errsz, "IMAP URL parameters (;UIDVALIDITY=, "
		    ";UID=, ...) are not supported; write ';' in a mailbox name "
		    "as %%3B");
	return decode(p, n, u->mailbox, sizeof(u->mailbox), "mailbox name",
	    err, errsz);
}

int
mt_fetch_url_parse(const char *s, struct mt_fetch_url *u, char *err,
    size_t errsz)
{
	const char *auth = NULL, *slash, *at, *p;
	size_t alen;

	memset(u, 0, sizeof(*u));
	if (errsz > 0)
		err[0] = '\0';
	if (strlen(s) > MT_FETCH_URL_MAX)
		return fail(err, errsz, "URL longer than %d bytes",
		    MT_FETCH_URL_MAX);
	for (p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return fail(err, errsz, "the URL contains a space or a "
			    "control character (write a space as %%20)");
	}
	if (parse_scheme(s, &auth, u, err, errsz) == -1)
		return -1;
	if (strpbrk(auth, "?#") != NULL)
		return fail(err, errsz, "'?' and '#' are not understood in a "
		    "fetch URL (write them as %%3F and %%23 in names)");
	slash = strchr(auth, '/');
	alen = slash ? (size_t)(slash - auth) : strlen(auth);
	/* The last '@': a user name may contain an unencoded one. */
	for (at = NULL, p = auth; p < auth + alen; p++) {
		if (*p == '@')
			at = p;
	}
	if (at == NULL)
		return fail(err, errsz, "no user name: write it before the host, "
		    "e.g. imaps://alice@imap.example.com");
	if (parse_userinfo(auth, (size_t)(at - auth), u, err, errsz) == -1 ||
	    parse_hostport(at + 1, (size_t)(auth + alen - at - 1), u, err,
	    errsz) == -1)
		return -1;
	return slash ? parse_path(slash + 1, u, err, errsz) : 0;
}

/*
 * Output for mt_fetch_url_format(): pieces go in whole or not at all, and
 * after the first that does not fit nothing more, so a short buffer holds
 * a prefix of the full rendering, never a mangled one.
 */
struct sbuf {
	char *b;
	size_t size, n;
	int full;
};

static void
put(struct sbuf *sb, const char *s, size_t len)
{
	if (sb->full || len >= sb->size - sb->n) {
		sb->full = 1;
		return;
	}
	memcpy(sb->b + sb->n, s, len);
	sb->n += len;
	sb->b[sb->n] = '\0';
}

static void
put_str(struct sbuf *sb, const char *s)
{
	for (; *s != '\0' && !sb->full; s++)
		put(sb, s, 1);
}

/* s percent-encoded; bytes in keep (and letters, digits) stay as they are. */
static void
put_encoded(struct sbuf *sb, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	char pct[3] = { '%', 0, 0 };

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr(keep, c) != NULL) {
			put(sb, s, 1);
			continue;
		}
		pct[1] = hex[c >> 4];
		pct[2] = hex[c & 0xf];
		put(sb, pct, 3);
	}
}

char *
mt_fetch_url_format(const struct mt_fetch_url *u, char *buf, size_t size)
{
	struct sbuf sb = { buf, size, 0, 0 };
	const char *scheme = "?";
	char port[8];
	size_t i;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < MT_ARRAY_LEN(schemes); i++) {
		if (schemes[i].proto == u->proto &&
		    schemes[i].starttls == !!u->starttls)
			scheme = schemes[i].name;
	}
	put_str(&sb, scheme);
	put_str(&sb, "://");
	put_encoded(&sb, u->user, "-._~");
	if (u->auth[0] != '\0') {
		put_str(&sb, ";AUTH=");
		put_str(&sb, u->auth);
	}
	put_str(&sb, u->ipv6 ? "@[" : "@");
	put_str(&sb, u->host);
	if (u->ipv6)
		put_str(&sb, "]");
	if (u->port_given) {
		snprintf(port, sizeof(port), ":%u", u->port);
		put_str(&sb, port);
	}
	if (u->mailbox[0] != '\0') {
		put_str(&sb, "/");
		put_encoded(&sb, u->mailbox, "-._~/");
	}
	return buf;
}
