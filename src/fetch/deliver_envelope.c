/*
 * deliver_envelope: what the command and server targets share - their
 * options (copied at open, freed with the target) and the envelope: the
 * sender and recipient taken from the configuration or from the message's
 * header block.
 *
 * The header is known only after it has streamed past, so it is collected
 * while the message is written: the first DL_HDR_MAX bytes, up to the
 * empty line that ends it. A header block longer than that is searched in
 * its first DL_HDR_MAX bytes only; the fields that matter here
 * (Return-Path, Delivered-To, X-Envelope-To) are added by the delivering
 * server at the top. The parsers below are pure functions over bytes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch/deliver_priv.h"
#include "mailtunnel/util.h"

static int
dup_str(const char **dst, const char *src)
{
	char *c;

	*dst = NULL;
	if (src == NULL)
		return 0;
	if ((c = strdup(src)) == NULL)
		return -1;
	*dst = c;
	return 0;
}

int
dl_opts_copy(struct mt_deliver_opts *dst, const struct mt_deliver_opts *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src == NULL)
		return 0;
	*dst = *src;
	if (dup_str(&dst->recipient, src->recipient) == -1 ||
	    dup_str(&dst->recipient_header, src->recipient_header) == -1 ||
	    dup_str(&dst->sender, src->sender) == -1 ||
	    dup_str(&dst->helo_name, src->helo_name) == -1 ||
	    dup_str(&dst->spool_dir, src->spool_dir) == -1 ||
	    dup_str(&dst->tls_ca_file, src->tls_ca_file) == -1 ||
	    dup_str(&dst->tls_check_host, src->tls_check_host) == -1)
		return -1;
	return 0;
}

void
dl_opts_free(struct mt_deliver_opts *o)
{
	/* The strings were made by dl_opts_copy(): ours to free. */
	free((char *)o->recipient);
	free((char *)o->recipient_header);
	free((char *)o->sender);
	free((char *)o->helo_name);
	free((char *)o->spool_dir);
	free((char *)o->tls_ca_file);
	free((char *)o->tls_check_host);
	memset(o, 0, sizeof(*o));
}

/* ---- the header block ---- */

/* Offset just past the empty line in buf[0..len), or 0 when none yet. */
static size_t
header_end(const char *buf, size_t len, size_t from)
{
	const char *nl;
	size_t i;

	if (len >= 1 && buf[0] == '\n')
		return 1;
	if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
		return 2;
	for (i = from; i < len; i = (size_t)(nl - buf) + 1) {
		if ((nl = memchr(buf + i, '\n', len - i)) == NULL)
			break;
		if ((size_t)(nl - buf) + 1 < len && nl[1] == '\n')
			return (size_t)(nl - buf) + 2;
		if ((size_t)(nl - buf) + 2 < len && nl[1] == '\r' &&
		    nl[2] == '\n')
			return (size_t)(nl - buf) + 3;
	}
	return 0;
}

/* 1 once the header block is complete (or capped), 0 before; -1: memory. */
int
dl_hdr_feed(struct dl_hdr *h, const char *p, size_t n)
{
	size_t k, from, end;

	if (h->done)
		return 1;
	if (h->buf == NULL && (h->buf = malloc(DL_HDR_MAX)) == NULL)
		return -1;
	k = DL_HDR_MAX - h->len;
	if (k > n)
		k = n;
	memcpy(h->buf + h->len, p, k);
	/* A "\n\r\n" may straddle the previous chunk. */
	from = h->len > 3 ? h->len - 3 : 0;
	h->len += k;
	if ((end = header_end(h->buf, h->len, from)) > 0) {
		h->len = end;
		h->done = 1;
	} else if (h->len == DL_HDR_MAX) {
		h->done = 1;
	}
	return h->done;
}

void
dl_hdr_free(struct dl_hdr *h)
{
	free(h->buf);
	memset(h, 0, sizeof(*h));
}

/* Append bytes of a field's value to out, turning line ends into nothing. */
static void
append_value(char *out, size_t outsz, size_t *n, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len && *n + 1 < outsz; i++)
		if (p[i] != '\r' && p[i] != '\n')
			out[(*n)++] = p[i];
	out[*n] = '\0';
}

/*
 * The value of the first field called name in a header block, unfolded and
 * trimmed, cut to outsz - 1 bytes: 1, or 0 when there is none.
 */
int
dl_hdr_field(const char *hdr, size_t len, const char *name, char *out,
    size_t outsz)
{
	size_t nlen = strlen(name), i = 0, eol, n = 0, v;
	const char *nl;

	for (; i < len; i = eol) {
		nl = memchr(hdr + i, '\n', len - i);
		eol = nl ? (size_t)(nl - hdr) + 1 : len;
		if (eol - i <= nlen || strncasecmp(hdr + i, name, nlen) != 0)
			continue;
		for (v = i + nlen; v < eol && (hdr[v] == ' ' || hdr[v] == '\t');
		    v++)
			;
		if (v == eol || hdr[v] != ':')
			continue;
		out[0] = '\0';
		for (v++; v < eol && (hdr[v] == ' ' || hdr[v] == '\t'); v++)
			;
		append_value(out, outsz, &n, hdr + v, eol - v);
		/* Continuation lines start with white space. */
		while (eol < len && (hdr[eol] == ' ' || hdr[eol] == '\t')) {
			i = eol;
			nl = memchr(hdr + i, '\n', len - i);
			eol = nl ? (size_t)(nl - hdr) + 1 : len;
			append_value(out, outsz, &n, hdr + i, eol - i);
		}
		memmove(out, mt_str_trim(out), strlen(mt_str_trim(out)) + 1);
		return 1;
	}
	return 0;
}

/* Bytes an address may hold here: printable ASCII, no <>, no spaces. */
static int
addr_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != '(' &&
	    c != ')' && c != ',' && c != ';' && c != '"' && c != '\\';
}

/*
 * The address in a header value or option: "<a@b>", "Name <a@b>",
 * "a@b (comment)", "a@b, c@d" (the first). A source route (<@x:a@b>) is
 * dropped; "<>" gives "". 0, or -1 when there is no usable address.
 */
int
dl_addr_parse(const char *value, char *out, size_t outsz)
{
	const char *p = value, *lt = strchr(value, '<'), *colon;
	size_t n = 0;

	if (lt != NULL) {
		p = lt + 1;
		if (strchr(p, '>') == NULL)
			return -1;
		if (*p == '@' && (colon = strchr(p, ':')) != NULL &&
		    colon < strchr(p, '>'))
			p = colon + 1;
	} else {
		while (*p == ' ' || *p == '\t')
			p++;
	}
	while (addr_byte((unsigned char)p[n]))
		n++;
	if (lt != NULL ? p[n] != '>' : (p[n] != '\0' && p[n] != ' ' &&
	    p[n] != '\t' && p[n] != '(' && p[n] != ','))
		return -1;
	if (n > DL_ADDR_MAX || n + 1 > outsz || (n == 0 && lt == NULL))
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/*
 * An address given in the configuration: "a@b", "<a@b>", "<>" or
 * "Name <a@b>", and nothing else. 0, or -1.
 */
int
dl_addr_option(const char *value, char *out, size_t outsz)
{
	const char *gt = strchr(value, '>');
	size_t n = strlen(value);

	if (dl_addr_parse(value, out, outsz) == -1)
		return -1;
	if (gt != NULL)
		return gt[1 + strspn(gt + 1, " \t")] == '\0' ? 0 : -1;
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	return strlen(out) == n - strspn(value, " \t") ? 0 : -1;
}

/* The first listed header (names separated by commas) with an address. */
static int
rcpt_from_header(const char *names, const struct dl_hdr *h,
    struct dl_envelope *e)
{
	char name[64], value[1024];
	const char *p = names;
	size_t n;

	while (*p != '\0') {
		n = strcspn(p, ",");
		if (n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			memmove(name, mt_str_trim(name),
			    strlen(mt_str_trim(name)) + 1);
			if (name[0] != '\0' && h->buf != NULL &&
			    dl_hdr_field(h->buf, h->len, name, value,
			    sizeof(value)) == 1 &&
			    dl_addr_parse(value, e->rcpt, sizeof(e->rcpt)) == 0 &&
			    e->rcpt[0] != '\0') {
				mt_strlcpy(e->rcpt_from, name,
				    sizeof(e->rcpt_from));
				return 1;
			}
		}
		p += n + (p[n] == ',');
	}
	e->rcpt[0] = '\0';
	return 0;
}

/*
 * Sender: the option, else Return-Path, else the fetcher's sender, else
 * <>. A sender must hold an '@' (MAILER-DAEMON and the like become <>).
 * Recipient: the listed headers, else the option; "" when neither.
 */
void
dl_envelope_find(const struct mt_deliver_opts *o, const char *meta_sender,
    const struct dl_hdr *h, struct dl_envelope *e)
{
	char value[1024];

	memset(e, 0, sizeof(*e));
	if (o->sender != NULL)
		dl_addr_option(o->sender, e->sender, sizeof(e->sender));
	else if (h->buf != NULL && dl_hdr_field(h->buf, h->len,
	    "Return-Path", value, sizeof(value)) == 1 &&
	    dl_addr_parse(value, e->sender, sizeof(e->sender)) == 0)
		;
	else if (meta_sender == NULL ||
	    dl_addr_parse(meta_sender, e->sender, sizeof(e->sender)) == -1)
		e->sender[0] = '\0';
	if (strchr(e->sender, '@') == NULL)
		e->sender[0] = '\0';
	if (o->recipient_header != NULL &&
	    rcpt_from_header(o->recipient_header, h, e))
		return;
	if (o->recipient != NULL &&
	    dl_addr_option(o->recipient, e->rcpt, sizeof(e->rcpt)) == 0)
		mt_strlcpy(e->rcpt_from, "configuration", sizeof(e->rcpt_from));
	else
		e->rcpt[0] = '\0';
}
