/*
 * fetch/imap_search: SEARCH and ESEARCH results, streamed. "UID SEARCH ALL"
 * on a large mailbox answers with one line of several hundred kilobytes, so
 * these two responses are read byte by byte after their keyword and their
 * numbers leave in batches of MT_IMAP_SEARCH_BATCH; nothing is buffered but
 * one batch and one short word.
 *
 *   * SEARCH 2 3 6 (MODSEQ 917162500)
 *   * ESEARCH (TAG "A282") UID MIN 2 COUNT 3 ALL 2,10:11
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "imap_internal.h"

enum {
	SS_KEYWORD,			/* right after SEARCH/ESEARCH */
	SS_SP,				/* between items */
	SS_NUM,				/* SEARCH: in a number */
	SS_PAREN,			/* skipping a parenthesized value */
	SS_CORR,			/* ESEARCH: in "(TAG "...")" */
	SS_WORD,			/* ESEARCH: in a result name */
	SS_VALUE,			/* ESEARCH: first byte of a value */
	SS_SET,				/* ESEARCH: in ALL's sequence set */
	SS_NUMVAL,			/* ESEARCH: in MIN/MAX/COUNT's number */
	SS_SKIPWORD,			/* ESEARCH: in an unknown value */
	SS_CR				/* after "\r" */
};

enum { IT_OTHER, IT_MIN, IT_MAX, IT_COUNT, IT_ALL };

void
mt_imap_search_begin(struct mt_imap_parser *p, int esearch)
{
	struct imap_search_state *s = &p->ss;

	memset(s, 0, sizeof(*s));
	s->st = SS_KEYWORD;
	s->esearch = esearch;
	s->done.esearch = esearch;
}

static int
fail(struct mt_imap_parser *p, const char *what)
{
	mt_imap_set_error(p, what, p->resp_off);
	return -1;
}

/* Move the waiting ranges into the event. */
static void
emit_batch(struct mt_imap_parser *p, enum mt_imap_event_type type)
{
	struct imap_search_state *s = &p->ss;

	memset(&p->ev, 0, sizeof(p->ev));
	p->ev.type = type;
	if (type == MT_IMAP_EV_SEARCH_DONE)
		p->ev.search = s->done;
	p->ev.search.esearch = s->esearch;
	p->ev.search.n = s->n;
	memcpy(p->ev.search.r, s->r, s->n * sizeof(s->r[0]));
	s->n = 0;
}

/* Add a range; the caller made room (see after_number()). */
static void
push(struct imap_search_state *s, uint32_t lo, uint32_t hi)
{
	s->r[s->n].lo = lo < hi ? lo : hi;
	s->r[s->n].hi = lo < hi ? hi : lo;
	s->n++;
}

/* A digit into s->num: 0, or -1 past 32 bits. */
static int
digit(struct imap_search_state *s, unsigned char c)
{
	s->num = s->num * 10 + (unsigned)(c - '0');
	s->digits++;
	return s->num > UINT32_MAX ? -1 : 0;
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* A line end or a space ends the current item. */
static int
end_of_item(struct mt_imap_parser *p, unsigned char c)
{
	if (c == ' ') {
		p->ss.st = SS_SP;
		return 0;
	}
	if (c == '\r') {
		p->ss.st = SS_CR;
		return 0;
	}
	emit_batch(p, MT_IMAP_EV_SEARCH_DONE);
	return 2;
}

/* Finish a number (the end of a range when one was open). */
static int
take_number(struct mt_imap_parser *p)
{
	struct imap_search_state *s = &p->ss;

	if (s->digits == 0)
		return fail(p, "expected a number in SEARCH results");
	if (s->num == 0)
		return fail(p, "0 in SEARCH results (numbers start at 1)");
	push(s, s->in_range ? s->lo : (uint32_t)s->num, (uint32_t)s->num);
	s->in_range = 0;
	s->num = 0;
	s->digits = 0;
	return 0;
}

/*
 * After a number ended with c. A full batch leaves at once, unless the line
 * ends here: then SEARCH_DONE carries it, so one byte never owes two events.
 */
static int
after_number(struct mt_imap_parser *p, unsigned char c)
{
	if (p->ss.n == MT_IMAP_SEARCH_BATCH && c != '\n') {
		emit_batch(p, MT_IMAP_EV_SEARCH);
		if (c != ',')
			(void)end_of_item(p, c);
		return 1;
	}
	return c == ',' ? 0 : end_of_item(p, c);
}

static int
skip_paren(struct mt_imap_parser *p, unsigned char c)
{
	struct imap_search_state *s = &p->ss;

	if (++s->skipped > p->lim.line_max)
		return fail(p, "SEARCH result item too long");
	if (c == '\r' || c == '\n')
		return fail(p, "expected ')' before the end of the line");
	if (c == '(' && ++s->depth > p->lim.depth_max)
		return fail(p, "lists nested too deeply");
	if (c == ')' && --s->depth == 0)
		s->st = SS_SKIPWORD;	/* a space or the line end follows */
	return 0;
}

/* "(TAG "A282")": keep the tag; other correlators are ignored. */
static void
correlator(struct imap_search_state *s)
{
	char *q, *e;
	size_t n;

	s->word[s->wlen] = '\0';
	if (strncasecmp(s->word, "(TAG \"", 6) != 0)
		return;
	q = s->word + 6;
	if ((e = strchr(q, '"')) == NULL)
		return;
	n = (size_t)(e - q);
	if (n >= sizeof(s->done.tag))
		n = sizeof(s->done.tag) - 1;
	memcpy(s->done.tag, q, n);
	s->done.tag[n] = '\0';
}

static int
word_byte(struct mt_imap_parser *p, unsigned char c)
{
	struct imap_search_state *s = &p->ss;
	static const char *const names[] = { "MIN", "MAX", "COUNT", "ALL" };
	size_t i;

	if (s->st == SS_CORR || (c != ' ' && c != '\r' && c != '\n')) {
		if (c == '\r' || c == '\n' || c == '\0')
			return fail(p, "expected ')' to end the search correlator");
		if (s->wlen + 1 >= sizeof(s->word))
			return fail(p, "ESEARCH item too long");
		s->word[s->wlen++] = (char)c;
		if (s->st == SS_CORR && c == ')') {
			correlator(s);
			s->st = SS_SKIPWORD;
		}
		return 0;
	}
	s->word[s->wlen] = '\0';
	if (strcasecmp(s->word, "UID") == 0) {
		s->done.uid = 1;
		return end_of_item(p, c);
	}
	if (c != ' ')
		return fail(p, "expected a value after an ESEARCH result name");
	s->item = IT_OTHER;
	for (i = 0; i < 4; i++) {
		if (strcasecmp(s->word, names[i]) == 0)
			s->item = IT_MIN + (int)i;
	}
	s->st = SS_VALUE;
	return 0;
}

static int
value_start(struct mt_imap_parser *p, unsigned char c)
{
	struct imap_search_state *s = &p->ss;

	if (c == ' ' || c == '\r' || c == '\n')
		return fail(p, "expected a value after an ESEARCH result name");
	if (s->item == IT_OTHER) {
		s->st = (c == '(') ? SS_PAREN : SS_SKIPWORD;
		s->depth = (c == '(');
		return 0;
	}
	if (!is_digit(c))
		return fail(p, "expected a number in ESEARCH results");
	s->st = (s->item == IT_ALL) ? SS_SET : SS_NUMVAL;
	if (s->item == IT_ALL)
		s->done.have |= MT_IMAP_ESEARCH_ALL;
	return digit(s, c) == -1 ?
	    fail(p, "number in SEARCH results too large") : 0;
}

static int
numval(struct mt_imap_parser *p, unsigned char c)
{
	struct imap_search_state *s = &p->ss;
	uint32_t v = (uint32_t)s->num;

	if (is_digit(c))
		return digit(s, c) == -1 ?
		    fail(p, "number in SEARCH results too large") : 0;
	if (c != ' ' && c != '\r' && c != '\n')
		return fail(p, "expected a space after a number in ESEARCH results");
	if (s->item == IT_MIN) {
		s->done.min = v;
		s->done.have |= MT_IMAP_ESEARCH_MIN;
	} else if (s->item == IT_MAX) {
		s->done.max = v;
		s->done.have |= MT_IMAP_ESEARCH_MAX;
	} else {
		s->done.count = v;
		s->done.have |= MT_IMAP_ESEARCH_COUNT;
	}
	s->num = 0;
	s->digits = 0;
	return end_of_item(p, c);
}

/* ESEARCH ALL: "2,10:11" into ranges. */
static int
set_byte(struct mt_imap_parser *p, unsigned char c)
{
	struct imap_search_state *s = &p->ss;

	if (is_digit(c))
		return digit(s, c) == -1 ?
		    fail(p, "number in SEARCH results too large") : 0;
	if (c == ':' && !s->in_range && s->digits > 0 && s->num > 0) {
		s->lo = (uint32_t)s->num;
		s->in_range = 1;
		s->num = 0;
		s->digits = 0;
		return 0;
	}
	if (c != ',' && c != ' ' && c != '\r' && c != '\n')
		return fail(p, "malformed sequence set in ESEARCH results");
	if (take_number(p) == -1)
		return -1;
	return after_number(p, c);
}

static int
search_num(struct mt_imap_parser *p, unsigned char c)
{
	struct imap_search_state *s = &p->ss;

	if (is_digit(c))
		return digit(s, c) == -1 ?
		    fail(p, "number in SEARCH results too large") : 0;
	if (c != ' ' && c != '\r' && c != '\n')
		return fail(p, "expected a space after a number in SEARCH results");
	if (take_number(p) == -1)
		return -1;
	return after_number(p, c);
}

static int
between(struct mt_imap_parser *p, unsigned char c)
{
	struct imap_search_state *s = &p->ss;

	if (c == ' ' || c == '\r' || c == '\n')
		return c == ' ' ? 0 : end_of_item(p, c);
	if (c == '(') {
		s->st = s->esearch ? SS_CORR : SS_PAREN;
		s->depth = 1;
		s->wlen = 0;
		return s->esearch ? word_byte(p, c) : 0;
	}
	if (s->esearch) {
		s->st = SS_WORD;
		s->wlen = 0;
		return word_byte(p, c);
	}
	if (!is_digit(c))
		return fail(p, "expected a number in SEARCH results");
	s->st = SS_NUM;
	return search_num(p, c);
}

int
mt_imap_search_byte(struct mt_imap_parser *p, unsigned char c)
{
	struct imap_search_state *s = &p->ss;

	p->resp_off++;
	switch (s->st) {
	case SS_KEYWORD:
		if (c != ' ' && c != '\r' && c != '\n')
			return fail(p, "expected a space after SEARCH");
		return end_of_item(p, c);
	case SS_SP:
		return between(p, c);
	case SS_NUM:
		return search_num(p, c);
	case SS_PAREN:
		return skip_paren(p, c);
	case SS_CORR:
	case SS_WORD:
		return word_byte(p, c);
	case SS_VALUE:
		return value_start(p, c);
	case SS_SET:
		return set_byte(p, c);
	case SS_NUMVAL:
		return numval(p, c);
	case SS_SKIPWORD:
		if (++s->skipped > p->lim.line_max)
			return fail(p, "SEARCH result item too long");
		if (c == ' ' || c == '\r' || c == '\n')
			return end_of_item(p, c);
		return c == '(' ? fail(p, "expected a space after ')'") : 0;
	default:
		if (c != '\n')
			return fail(p, "expected LF after CR");
		emit_batch(p, MT_IMAP_EV_SEARCH_DONE);
		return 2;
	}
}
