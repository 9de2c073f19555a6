/*
 * fetch/imap_parse: the driver of the IMAP response parser. See
 * include/mailtunnel/imap_parse.h.
 *
 * A response is gathered into one bounded buffer, line by line. When a line
 * ends with a literal announcement "{n}", the buffer so far is read once to
 * learn whose value that literal is: a FETCH body is streamed out of the
 * input as it comes and the buffer starts over after it (the FETCH items
 * read so far are kept aside); any other literal is small, so it is copied
 * in and the response goes on. A complete response is read once more and
 * becomes one event. "* SEARCH" and "* ESEARCH" are recognised from their
 * first bytes and handed to the byte machine in imap_search.c instead.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_internal.h"

enum {
	S_LINE,				/* gathering a line */
	S_LITERAL,			/* copying a small literal */
	S_BODY,				/* streaming a body literal */
	S_SEARCH,			/* SEARCH/ESEARCH byte machine */
	S_DEAD				/* after an error */
};

/* Enough to tell "* ESEARCH" and the byte after it from anything else. */
#define PREFIX_LEN 10

struct mt_imap_parser *
mt_imap_parser_new(const struct mt_imap_limits *lim)
{
	struct mt_imap_parser *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto err0;
	p->lim.line_max = MT_IMAP_LINE_MAX_DEFAULT;
	p->lim.literal_max = MT_IMAP_LITERAL_MAX_DEFAULT;
	p->lim.body_max = MT_IMAP_BODY_MAX_DEFAULT;
	p->lim.depth_max = MT_IMAP_DEPTH_MAX_DEFAULT;
	if (lim != NULL)
		p->lim = *lim;
	/* Below a few dozen bytes no greeting fits; above, sums could wrap. */
	if (p->lim.line_max < 64 || p->lim.line_max > SIZE_MAX / 4 ||
	    p->lim.literal_max > SIZE_MAX / 4 || p->lim.depth_max == 0)
		goto err1;
	p->cap = p->lim.line_max + p->lim.literal_max + 1;
	if ((p->buf = malloc(p->cap)) == NULL)
		goto err1;
	p->buf[0] = '\0';
	p->state = S_LINE;

	/* Success! */
	return p;

err1:
	free(p);
err0:
	return NULL;
}

void
mt_imap_parser_free(struct mt_imap_parser *p)
{
	if (p == NULL)
		return;
	free(p->buf);
	free(p);
}

const char *
mt_imap_parser_error(const struct mt_imap_parser *p)
{
	return p->err;
}

int
mt_imap_parser_idle(const struct mt_imap_parser *p)
{
	return p->state == S_LINE && p->blen == 0 && !p->in_fetch;
}

void
mt_imap_set_error(struct mt_imap_parser *p, const char *what, uint64_t pos)
{
	snprintf(p->err, sizeof(p->err), "%s (at byte %" PRIu64
	    " of the response)", what, pos);
	p->state = S_DEAD;
}

/* The response is over: the next byte starts a new one. */
static void
reset_response(struct mt_imap_parser *p)
{
	p->state = S_LINE;
	p->blen = 0;
	p->nonlit = 0;
	p->littotal = 0;
	p->resp_off = 0;
	p->in_fetch = 0;
	p->prefix_done = 0;
	memset(&p->fetch, 0, sizeof(p->fetch));
}

static void
append(struct mt_imap_parser *p, const char *in, size_t n)
{
	memcpy(p->buf + p->blen, in, n);
	p->blen += n;
	p->buf[p->blen] = '\0';
}

/*
 * "{n}", "{n+}" or "~{n}" right before the line end: 1 and the size, 0 when
 * the line does not end with one, -1 when the size cannot be a size.
 */
static int
literal_marker(struct mt_imap_parser *p, uint64_t *size)
{
	const char *b = p->buf;
	size_t e = p->blen - 1, j, k;
	uint64_t v = 0;

	if (e > 0 && b[e - 1] == '\r')
		e--;
	if (e == 0 || b[e - 1] != '}')
		return 0;
	j = e - 1;
	if (j > 0 && b[j - 1] == '+')
		j--;
	for (k = j; k > 0 && b[k - 1] >= '0' && b[k - 1] <= '9'; k--)
		;
	if (k == j || k == 0 || b[k - 1] != '{')
		return 0;
	for (; k < j; k++) {
		unsigned d = (unsigned)(b[k] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			mt_imap_set_error(p, "literal size too large",
			    p->resp_off + k);
			return -1;
		}
		v = v * 10 + d;
	}
	*size = v;
	return 1;
}

static void
size_error(struct mt_imap_parser *p, const char *kind, uint64_t size,
    uint64_t max)
{
	char what[128];

	snprintf(what, sizeof(what), "%s of %" PRIu64 " bytes exceeds the "
	    "limit of %" PRIu64 " bytes", kind, size, max);
	mt_imap_set_error(p, what, p->resp_off + p->blen);
}

/* A line ending in a literal announcement: stream it or copy it in. */
static int
line_with_literal(struct mt_imap_parser *p, uint64_t size)
{
	struct imap_resp_result res;

	if (mt_imap_resp_read(p, 0, &res) == -1 && !res.pending) {
		mt_imap_set_error(p, res.err, p->resp_off + res.err_pos);
		return -1;
	}
	if (!res.pending_body) {
		if (size > p->lim.literal_max - p->littotal) {
			size_error(p, "literal", size, p->lim.literal_max);
			return -1;
		}
		p->remaining = size;
		p->state = size > 0 ? S_LITERAL : S_LINE;
		return 0;
	}
	if (size > p->lim.body_max) {
		size_error(p, "message body", size, p->lim.body_max);
		return -1;
	}
	p->fetch = res.fetch;
	memset(&p->ev, 0, sizeof(p->ev));
	p->ev.type = MT_IMAP_EV_FETCH_BODY;
	p->ev.fetch = p->fetch;
	/* The items after the body are read as a continuation. */
	p->resp_off += p->blen;
	p->blen = 0;
	p->nonlit = 0;
	p->littotal = 0;
	p->in_fetch = 1;
	p->remaining = size;
	p->state = size > 0 ? S_BODY : S_LINE;
	return 1;
}

/* A line end arrived: a whole response, or one that goes on. */
static int
line_complete(struct mt_imap_parser *p)
{
	struct imap_resp_result res;
	uint64_t size;

	switch (literal_marker(p, &size)) {
	case -1:
		return -1;
	case 1:
		return line_with_literal(p, size);
	}
	if (mt_imap_resp_read(p, 1, &res) == -1) {
		mt_imap_set_error(p, res.err, p->resp_off + res.err_pos);
		return -1;
	}
	reset_response(p);
	return 1;
}

/* Feed the bytes that the prefix check buffered to the byte machine. */
static int
start_search(struct mt_imap_parser *p, size_t keyword_len, int esearch)
{
	size_t i, n = p->blen;
	int r = 0;

	mt_imap_search_begin(p, esearch);
	p->state = S_SEARCH;
	p->resp_off = keyword_len;
	for (i = keyword_len; i < n && r == 0; i++)
		r = mt_imap_search_byte(p, (unsigned char)p->buf[i]);
	p->blen = 0;
	if (r == 2) {
		reset_response(p);
		return 1;
	}
	return r;
}

static int
is_delim(char c)
{
	return c == ' ' || c == '\r' || c == '\n';
}

/* Decide, from the first bytes, whether this is a SEARCH to stream. */
static int
check_prefix(struct mt_imap_parser *p, int have_line)
{
	const char *b = p->buf;

	if (p->blen < PREFIX_LEN && !have_line)
		return 0;
	p->prefix_done = 1;
	if (p->blen >= 9 && strncasecmp(b, "* SEARCH", 8) == 0 && is_delim(b[8]))
		return start_search(p, 8, 0);
	if (p->blen >= 10 && strncasecmp(b, "* ESEARCH", 9) == 0 &&
	    is_delim(b[9]))
		return start_search(p, 9, 1);
	return 0;
}

/* '*', '+' or the first byte of a tag (an atom character, or ']'). */
static int
start_byte(unsigned char c)
{
	return c == '*' || c == ']' ||
	    (c > 0x20 && c < 0x7f && strchr("(){%\"\\", c) == NULL);
}

static int
line_step(struct mt_imap_parser *p, const char *in, size_t avail, size_t *n)
{
	const char *lf, *nul;
	size_t take, room;

	take = avail;
	if (!p->prefix_done && !p->in_fetch && p->blen < PREFIX_LEN)
		take = PREFIX_LEN - p->blen < avail ? PREFIX_LEN - p->blen : avail;
	if ((lf = memchr(in, '\n', take)) != NULL)
		take = (size_t)(lf - in) + 1;
	*n = take;
	/* Garbage is refused at once, not after a line's worth of it. */
	if (p->blen == 0 && !p->in_fetch && !start_byte((unsigned char)in[0])) {
		mt_imap_set_error(p, "expected a tag, '*' or '+' at the start of a "
		    "response", p->resp_off);
		return -1;
	}
	/* Of two faults, the earlier byte is reported, however input is cut. */
	room = p->lim.line_max - p->nonlit;
	if ((nul = memchr(in, '\0', take < room ? take : room)) != NULL) {
		mt_imap_set_error(p, "NUL byte in a response",
		    p->resp_off + p->blen + (size_t)(nul - in));
		return -1;
	}
	if (take > room) {
		char what[96];
		snprintf(what, sizeof(what), "response longer than %zu bytes "
		    "outside literals", p->lim.line_max);
		mt_imap_set_error(p, what, p->resp_off + p->blen + room);
		return -1;
	}
	append(p, in, take);
	p->nonlit += take;
	if (!p->prefix_done && !p->in_fetch) {
		int r = check_prefix(p, lf != NULL);
		if (r != 0 || p->state != S_LINE)
			return r;
	}
	return lf != NULL ? line_complete(p) : 0;
}

static int
literal_step(struct mt_imap_parser *p, const char *in, size_t avail,
    size_t *n)
{
	size_t take = avail < p->remaining ? avail : (size_t)p->remaining;

	append(p, in, take);
	p->littotal += take;
	p->remaining -= take;
	if (p->remaining == 0)
		p->state = S_LINE;
	*n = take;
	return 0;
}

static int
body_step(struct mt_imap_parser *p, const char *in, size_t avail, size_t *n)
{
	size_t take = avail < p->remaining ? avail : (size_t)p->remaining;

	memset(&p->ev, 0, sizeof(p->ev));
	p->ev.type = MT_IMAP_EV_FETCH_DATA;
	p->ev.fetch.seq = p->fetch.seq;
	p->ev.data.p = in;
	p->ev.data.len = take;
	p->remaining -= take;
	p->resp_off += take;
	if (p->remaining == 0)
		p->state = S_LINE;
	*n = take;
	return 1;
}

static int
search_step(struct mt_imap_parser *p, const char *in, size_t avail,
    size_t *n)
{
	size_t i;
	int r;

	for (i = 0; i < avail; i++) {
		r = mt_imap_search_byte(p, (unsigned char)in[i]);
		if (r == 0)
			continue;
		*n = i + 1;
		if (r == 2)
			reset_response(p);
		return r < 0 ? -1 : 1;
	}
	*n = avail;
	return 0;
}

int
mt_imap_parser_feed(struct mt_imap_parser *p, const char *buf, size_t len,
    size_t *consumed, const struct mt_imap_event **ev)
{
	size_t off = 0, n;
	int r = 0;

	*consumed = 0;
	*ev = NULL;
	if (p->state == S_DEAD)
		return -1;
	while (off < len && r == 0) {
		n = 0;
		switch (p->state) {
		case S_LINE:
			r = line_step(p, buf + off, len - off, &n);
			break;
		case S_LITERAL:
			r = literal_step(p, buf + off, len - off, &n);
			break;
		case S_BODY:
			r = body_step(p, buf + off, len - off, &n);
			break;
		default:
			r = search_step(p, buf + off, len - off, &n);
			break;
		}
		off += n;
	}
	*consumed = off;
	if (r == -1) {
		p->state = S_DEAD;
		return -1;
	}
	if (r > 0)
		*ev = &p->ev;
	return r > 0 ? 1 : 0;
}

int
mt_imap_tag_format(char *buf, size_t size, uint32_t n)
{
	int r = snprintf(buf, size, "A%" PRIu32, n);

	return (r > 0 && (size_t)r < size) ? 0 : -1;
}

int
mt_imap_tag_parse(struct mt_imap_str tag, uint32_t *n)
{
	uint64_t v = 0;
	size_t i;

	if (tag.len < 2 || tag.len > 11 || tag.p[0] != 'A')
		return -1;
	for (i = 1; i < tag.len; i++) {
		if (tag.p[i] < '0' || tag.p[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(tag.p[i] - '0');
	}
	if (v > UINT32_MAX || (tag.p[1] == '0' && tag.len > 2))
		return -1;
	*n = (uint32_t)v;
	return 0;
}
