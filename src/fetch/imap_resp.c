/*
 * fetch/imap_resp: read one buffered IMAP response by recursive descent
 * (RFC 9051 section 9, the parts a fetcher meets) and turn it into an
 * event. Called by imap_parse.c; the tables of names and the FETCH items
 * live in imap_items.c.
 *
 * The buffer ends with a line end. In the final pass every literal's data is
 * in it and quoted strings are unescaped in place (they only shrink). In a
 * prefix pass the buffer ends right after a literal announcement, and
 * reading stops there with res->pending set; nothing is modified.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "imap_internal.h"
#include "imap_rd.h"

int
rd_fail(struct rd *r, const char *what)
{
	if (r->res->err == NULL) {
		r->res->err = what;
		r->res->err_pos = r->pos;
	}
	return -1;
}

int
rd_peek(const struct rd *r)
{
	return r->pos < r->len ? (unsigned char)r->b[r->pos] : -1;
}

int
rd_char(struct rd *r, char c, const char *what)
{
	if (rd_peek(r) != (unsigned char)c)
		return rd_fail(r, what);
	r->pos++;
	return 0;
}

/* ATOM-CHAR: printable ASCII except atom-specials. */
int
rd_is_atom_char(int c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

int
rd_eol(struct rd *r)
{
	if (rd_peek(r) == '\r')
		r->pos++;
	if (rd_peek(r) != '\n')
		return rd_fail(r, "expected the end of the line");
	r->pos++;
	if (r->pos != r->len)
		return rd_fail(r, "unexpected data after the end of the line");
	return 0;
}

int
rd_atom(struct rd *r, struct mt_imap_str *s, const char *what)
{
	size_t start = r->pos;

	while (rd_is_atom_char(rd_peek(r)))
		r->pos++;
	if (r->pos == start)
		return rd_fail(r, what);
	s->p = r->b + start;
	s->len = r->pos - start;
	return 0;
}

int
rd_is(const struct mt_imap_str *s, const char *word)
{
	return s->len == strlen(word) && strncasecmp(s->p, word, s->len) == 0;
}

int
rd_number(struct rd *r, uint64_t max, uint64_t *v, const char *what)
{
	uint64_t n = 0;
	size_t start = r->pos;
	int c;

	while ((c = rd_peek(r)) >= '0' && c <= '9') {
		unsigned d = (unsigned)(c - '0');
		if (n > (max - d) / 10)
			return rd_fail(r, "number too large");
		n = n * 10 + d;
		r->pos++;
	}
	if (r->pos == start)
		return rd_fail(r, what);
	*v = n;
	return 0;
}

int
rd_nz32(struct rd *r, uint32_t *v, const char *what)
{
	uint64_t n;

	if (rd_number(r, UINT32_MAX, &n, what) == -1)
		return -1;
	if (n == 0)
		return rd_fail(r, "0 where a non-zero number was expected");
	*v = (uint32_t)n;
	return 0;
}

int
rd_quoted(struct rd *r, struct mt_imap_str *s)
{
	size_t start, w;
	int c;

	if (rd_char(r, '"', "expected a quoted string") == -1)
		return -1;
	start = w = r->pos;
	while ((c = rd_peek(r)) != '"') {
		if (c == -1 || c == '\r' || c == '\n')
			return rd_fail(r, "expected '\"' to end a quoted string");
		if (c == '\\') {
			r->pos++;
			c = rd_peek(r);
			if (c != '"' && c != '\\')
				return rd_fail(r, "bad escape in a quoted string");
		}
		if (r->final)
			r->b[w] = (char)c;
		w++;
		r->pos++;
	}
	r->pos++;
	s->p = r->b + start;
	s->len = r->final ? w - start : r->pos - 1 - start;
	return 0;
}

/* "{n}", "{n+}" or "~{n}", a line end, then n bytes. */
int
rd_literal(struct rd *r, struct mt_imap_str *s, int body)
{
	uint64_t size;

	if (rd_peek(r) == '~')
		r->pos++;
	if (rd_char(r, '{', "expected '{' after '~'") == -1)
		return -1;
	if (rd_number(r, UINT64_MAX, &size,
	    "expected a literal size (digits) after '{'") == -1)
		return -1;
	if (rd_peek(r) == '+')
		r->pos++;
	if (rd_char(r, '}', "expected '}' after the literal size") == -1)
		return -1;
	if (rd_peek(r) == '\r')
		r->pos++;
	if (rd_char(r, '\n', "expected a line end after a literal size") == -1)
		return -1;
	/* A prefix pass ends with the announcement, even of {0}. */
	if (!r->final && r->pos == r->len) {
		r->res->pending = 1;
		r->res->pending_body = body;
		r->res->lit_size = size;
		return -1;
	}
	if (r->len - r->pos < size)
		return rd_fail(r, "literal data cut short");
	s->p = r->b + r->pos;
	s->len = (size_t)size;
	r->pos += (size_t)size;
	return 0;
}

int
rd_string(struct rd *r, struct mt_imap_str *s)
{
	int c = rd_peek(r);

	if (c == '{' || c == '~')
		return rd_literal(r, s, 0);
	return rd_quoted(r, s);
}

/* astring: an atom that may contain "]", or a string. */
int
rd_astring(struct rd *r, struct mt_imap_str *s, const char *what)
{
	size_t start = r->pos;
	int c = rd_peek(r);

	if (c == '"' || c == '{' || c == '~')
		return rd_string(r, s);
	while (rd_is_atom_char(c = rd_peek(r)) || c == ']')
		r->pos++;
	if (r->pos == start)
		return rd_fail(r, what);
	s->p = r->b + start;
	s->len = r->pos - start;
	return 0;
}

/* Any value, read and dropped: lists nest up to depth_max. */
int
rd_skip_value(struct rd *r)
{
	struct mt_imap_str s;
	int c = rd_peek(r);

	if (c == '"' || c == '{' || c == '~')
		return rd_string(r, &s);
	if (c != '(') {
		size_t start = r->pos;
		while (rd_is_atom_char(c = rd_peek(r)) || c == '\\' ||
		    c == ']' || c == '*' || c == '%')
			r->pos++;
		return r->pos > start ? 0 : rd_fail(r, "expected a value");
	}
	if (++r->depth > r->p->lim.depth_max)
		return rd_fail(r, "lists nested too deeply");
	r->pos++;
	if (rd_peek(r) != ')') {
		for (;;) {
			if (rd_skip_value(r) == -1)
				return -1;
			/* Multipart BODYSTRUCTURE: "(part)(part)", no space. */
			if (rd_peek(r) == '(' && r->b[r->pos - 1] == ')')
				continue;
			if (rd_peek(r) != ' ')
				break;
			r->pos++;
		}
	}
	r->depth--;
	return rd_char(r, ')', "expected a space or ')' in a list");
}

/* resp-text: ["[" code "]" SP] text, then the line end. */
static int
resp_text(struct rd *r, struct mt_imap_code *code, struct mt_imap_str *text)
{
	size_t start;
	int c;

	memset(code, 0, sizeof(*code));
	if (rd_peek(r) == '[') {
		r->pos++;
		if (rd_code(r, code) == -1)
			return -1;
		if (rd_char(r, ']', "expected ']' to end the response code") == -1)
			return -1;
		if (rd_peek(r) == ' ')
			r->pos++;
	}
	start = r->pos;
	while ((c = rd_peek(r)) != -1 && c != '\r' && c != '\n')
		r->pos++;
	text->p = r->b + start;
	text->len = r->pos - start;
	return rd_eol(r);
}

/* After "OK"/"NO"/...: a space and resp-text, or (leniently) nothing. */
static int
status_rest(struct rd *r)
{
	int c = rd_peek(r);

	if (c == '\r' || c == '\n') {
		memset(&r->ev->code, 0, sizeof(r->ev->code));
		r->ev->text.p = r->b + r->pos;
		r->ev->text.len = 0;
		return rd_eol(r);
	}
	if (rd_char(r, ' ', "expected a space after the status") == -1)
		return -1;
	return resp_text(r, &r->ev->code, &r->ev->text);
}

static int
status_word(const struct mt_imap_str *w, enum mt_imap_status *st)
{
	static const char *const names[] = { "OK", "NO", "BAD", "BYE", "PREAUTH" };
	size_t i;

	for (i = 0; i < 5; i++) {
		if (rd_is(w, names[i])) {
			*st = (enum mt_imap_status)i;
			return 0;
		}
	}
	return -1;
}

static int
tagged(struct rd *r)
{
	struct mt_imap_str w;
	size_t start = r->pos;
	int c;

	while (((c = rd_peek(r)) != '+' && rd_is_atom_char(c)) || c == ']')
		r->pos++;
	if (r->pos == start)
		return rd_fail(r, "expected a tag, '*' or '+' at the start of "
		    "a response");
	r->ev->type = MT_IMAP_EV_TAGGED;
	r->ev->tag.p = r->b + start;
	r->ev->tag.len = r->pos - start;
	if (rd_char(r, ' ', "expected a space after the tag") == -1)
		return -1;
	if (rd_atom(r, &w, "expected OK, NO or BAD after the tag") == -1)
		return -1;
	if (status_word(&w, &r->ev->status) == -1 ||
	    r->ev->status > MT_IMAP_BAD) {
		r->pos -= w.len;
		return rd_fail(r, "expected OK, NO or BAD after the tag");
	}
	return status_rest(r);
}

/* "* LIST (attrs) delimiter mailbox [extended data]". */
static int
list(struct rd *r)
{
	struct mt_imap_str s;

	r->ev->type = MT_IMAP_EV_LIST;
	if (rd_flag_list(r, 1, &r->ev->flags, &r->ev->keywords) == -1)
		return -1;
	if (rd_char(r, ' ', "expected a space after the mailbox attributes"))
		return -1;
	if (rd_peek(r) == '"') {
		if (rd_quoted(r, &s) == -1)
			return -1;
		if (s.len != 1)
			return rd_fail(r, "expected a one-character delimiter");
		r->ev->delimiter = s.p[0];
	} else if (rd_atom(r, &s, "expected a delimiter or NIL") == -1 ||
	    !rd_is(&s, "NIL")) {
		return rd_fail(r, "expected a delimiter or NIL");
	}
	if (rd_char(r, ' ', "expected a space before the mailbox name") == -1)
		return -1;
	if (rd_astring(r, &r->ev->mailbox, "expected a mailbox name") == -1)
		return -1;
	while (rd_peek(r) == ' ') {
		r->pos++;
		if (rd_skip_value(r) == -1)
			return -1;
	}
	return rd_eol(r);
}

/* "* keyword ..." after "* ". */
static int
untagged_word(struct rd *r)
{
	struct mt_imap_str w;

	if (rd_atom(r, &w, "expected a number or a keyword after '* '") == -1)
		return -1;
	if (status_word(&w, &r->ev->status) == 0) {
		r->ev->type = MT_IMAP_EV_STATUS;
		return status_rest(r);
	}
	if (rd_is(&w, "CAPABILITY")) {
		r->ev->type = MT_IMAP_EV_CAPABILITY;
		if (rd_char(r, ' ', "expected a space after CAPABILITY") == -1 ||
		    rd_caps(r, &r->ev->caps) == -1)
			return -1;
		return rd_eol(r);
	}
	if (rd_is(&w, "FLAGS")) {
		r->ev->type = MT_IMAP_EV_FLAGS;
		if (rd_char(r, ' ', "expected a space after FLAGS") == -1 ||
		    rd_flag_list(r, 0, &r->ev->flags, &r->ev->keywords) == -1)
			return -1;
		return rd_eol(r);
	}
	if (rd_is(&w, "LIST") || rd_is(&w, "LSUB")) {
		if (rd_char(r, ' ', "expected a space after LIST") == -1)
			return -1;
		return list(r);
	}
	/* Responses a fetcher does not use are passed up unread. */
	r->ev->type = MT_IMAP_EV_OTHER;
	r->ev->name = w;
	return 0;
}

/* "* n EXISTS", "* n RECENT", "* n EXPUNGE", "* n FETCH (...)". */
static int
untagged_number(struct rd *r)
{
	struct mt_imap_str w;
	uint64_t n;

	if (rd_number(r, UINT32_MAX, &n, "expected a number") == -1)
		return -1;
	if (rd_char(r, ' ', "expected a space after the number") == -1 ||
	    rd_atom(r, &w, "expected EXISTS, RECENT, EXPUNGE or FETCH") == -1)
		return -1;
	r->ev->number = (uint32_t)n;
	if (rd_is(&w, "EXISTS")) {
		r->ev->type = MT_IMAP_EV_EXISTS;
		return rd_eol(r);
	}
	if (rd_is(&w, "RECENT")) {
		r->ev->type = MT_IMAP_EV_RECENT;
		return rd_eol(r);
	}
	if (!rd_is(&w, "EXPUNGE") && !rd_is(&w, "FETCH")) {
		r->ev->type = MT_IMAP_EV_OTHER;
		r->ev->name = w;
		return 0;
	}
	/* Sequence numbers of messages start at 1. */
	if (n == 0) {
		r->pos = 2;
		return rd_fail(r, "message number 0 (numbers start at 1)");
	}
	if (rd_is(&w, "EXPUNGE")) {
		r->ev->type = MT_IMAP_EV_EXPUNGE;
		return rd_eol(r);
	}
	r->ev->type = MT_IMAP_EV_FETCH;
	r->res->fetch.seq = (uint32_t)n;
	if (rd_char(r, ' ', "expected a space after FETCH") == -1 ||
	    rd_msg_att(r, 0) == -1)
		return -1;
	r->ev->fetch = r->res->fetch;
	return rd_eol(r);
}

static int
response(struct rd *r)
{
	int c = rd_peek(r);

	if (r->p->in_fetch) {
		/* The rest of a FETCH after its streamed body. */
		r->ev->type = MT_IMAP_EV_FETCH;
		if (rd_msg_att(r, 1) == -1)
			return -1;
		r->ev->fetch = r->res->fetch;
		return rd_eol(r);
	}
	if (c == '+') {
		r->pos++;
		r->ev->type = MT_IMAP_EV_CONTINUE;
		c = rd_peek(r);
		if (c == ' ')
			r->pos++;
		return resp_text(r, &r->ev->code, &r->ev->text);
	}
	if (c != '*')
		return tagged(r);
	r->pos++;
	if (rd_char(r, ' ', "expected a space after '*'") == -1)
		return -1;
	c = rd_peek(r);
	if (c >= '0' && c <= '9')
		return untagged_number(r);
	return untagged_word(r);
}

int
mt_imap_resp_read(struct mt_imap_parser *p, int final,
    struct imap_resp_result *res)
{
	struct rd r;

	memset(res, 0, sizeof(*res));
	res->fetch = p->fetch;
	memset(&p->ev, 0, sizeof(p->ev));
	r.p = p;
	r.b = p->buf;
	r.len = p->blen;
	r.pos = 0;
	r.final = final;
	r.depth = 0;
	r.res = res;
	r.ev = &p->ev;
	return response(&r);
}
