/*
 * fetch/pop3_multiline: the streaming decoder for POP3 multi-line replies.
 * See include/mailtunnel/pop3_parse.h.
 *
 * Output is built from two kinds of pieces: runs of input bytes (kept as one
 * pending span while they stay contiguous, so an unchanged message goes out
 * in chunk-sized pieces without a copy) and short pieces that are copied
 * into the scratch buffer to be passed on together (the rewritten line ends
 * of MT_POP3_EOL_LF turn every line into its own span). Nothing survives a
 * call except the state byte: every span is flushed before feed returns.
 */
#include "config.h"

#include <string.h>

#include "mailtunnel/pop3_parse.h"

enum {
	ST_BOL,				/* at the start of a line */
	ST_DOT,				/* "." at the start of a line */
	ST_DOT_CR,			/* ".\r" at the start of a line */
	ST_MID,				/* inside a line */
	ST_CR				/* inside a line, after a withheld "\r" */
};

/* Pieces up to this size are copied into scratch rather than emitted. */
#define SMALL_PIECE 256

static int
emit(struct mt_pop3_ml *ml, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	ml->bytes_out += n;
	return ml->emit(ml->arg, p, n);
}

static int
flush_scratch(struct mt_pop3_ml *ml)
{
	size_t n = ml->scratch_len;

	ml->scratch_len = 0;
	return emit(ml, ml->scratch, n);
}

static int
out_piece(struct mt_pop3_ml *ml, const char *p, size_t n)
{
	if (n <= SMALL_PIECE) {
		if (ml->scratch_len + n > sizeof(ml->scratch) &&
		    flush_scratch(ml) == -1)
			return -1;
		memcpy(ml->scratch + ml->scratch_len, p, n);
		ml->scratch_len += n;
		return 0;
	}
	if (flush_scratch(ml) == -1)
		return -1;
	return emit(ml, p, n);
}

static int
flush_span(struct mt_pop3_ml *ml)
{
	const char *p = ml->span;
	size_t n = ml->span_len;

	ml->span = NULL;
	ml->span_len = 0;
	return n > 0 ? out_piece(ml, p, n) : 0;
}

/* Queue input bytes for output, merging with the pending span if adjacent. */
static int
add_span(struct mt_pop3_ml *ml, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (ml->span != NULL && ml->span + ml->span_len == p) {
		ml->span_len += n;
		return 0;
	}
	if (flush_span(ml) == -1)
		return -1;
	ml->span = p;
	ml->span_len = n;
	return 0;
}

/* Bytes that are not in the input (rewritten line ends, withheld CRs). */
static int
add_const(struct mt_pop3_ml *ml, const char *s)
{
	if (flush_span(ml) == -1)
		return -1;
	return out_piece(ml, s, strlen(s));
}

static int
flush_all(struct mt_pop3_ml *ml)
{
	if (flush_span(ml) == -1)
		return -1;
	return flush_scratch(ml);
}

void
mt_pop3_ml_init(struct mt_pop3_ml *ml, enum mt_pop3_eol eol,
    mt_pop3_emit_fn *emit_fn, void *arg)
{
	memset(ml, 0, sizeof(*ml));
	ml->eol = eol;
	ml->state = ST_BOL;
	ml->emit = emit_fn;
	ml->arg = arg;
}

int
mt_pop3_ml_done(const struct mt_pop3_ml *ml)
{
	return ml->done == 1;
}

/*
 * A rewritten line end (LF and CRLF modes; as-is lines never get here),
 * for a line whose "\n" is at nl.
 */
static int
line_end(struct mt_pop3_ml *ml, const char *nl)
{
	ml->lines++;
	ml->state = ST_BOL;
	if (ml->eol == MT_POP3_EOL_LF)
		return add_span(ml, nl, 1);
	return add_const(ml, "\r\n");
}

/* Inside a line: take everything up to and including the next "\n". */
static int
mid_line(struct mt_pop3_ml *ml, const char **pp, const char *end)
{
	const char *p = *pp, *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n;

	if (nl == NULL) {
		n = (size_t)(end - p);
		*pp = end;
		/* A trailing "\r" may be half of a line end: hold it back. */
		if (ml->eol != MT_POP3_EOL_ASIS && p[n - 1] == '\r') {
			ml->state = ST_CR;
			n--;
		}
		return add_span(ml, p, n);
	}
	*pp = nl + 1;
	n = (size_t)(nl - p);
	if (ml->eol == MT_POP3_EOL_ASIS || (ml->eol == MT_POP3_EOL_CRLF &&
	    n > 0 && nl[-1] == '\r')) {
		ml->lines++;
		ml->state = ST_BOL;
		return add_span(ml, p, n + 1);
	}
	if (n > 0 && nl[-1] == '\r') {
		if (add_span(ml, p, n - 1) == -1)
			return -1;
		return line_end(ml, nl);
	}
	if (add_span(ml, p, n) == -1)
		return -1;
	return line_end(ml, nl);
}

/*
 * One step of the state machine at *pp; 1 when the terminator ended at
 * *pp, 0 to go on, -1 when output failed.
 */
static int
step(struct mt_pop3_ml *ml, const char **pp, const char *end)
{
	char c = **pp;

	switch (ml->state) {
	case ST_BOL:
		if (c == '.') {
			ml->state = ST_DOT;
			(*pp)++;
			return 0;
		}
		ml->state = ST_MID;
		return 0;
	case ST_DOT:
		(*pp)++;
		if (c == '\n')
			return 1;
		if (c == '\r') {
			ml->state = ST_DOT_CR;
			return 0;
		}
		/* A stuffed dot: drop it, the byte after it is content. */
		(*pp)--;
		ml->state = ST_MID;
		return 0;
	case ST_DOT_CR:
		if (c == '\n') {
			(*pp)++;
			return 1;
		}
		ml->state = ST_MID;
		return add_const(ml, "\r");
	case ST_CR:
		if (c == '\n') {
			(*pp)++;
			return line_end(ml, *pp - 1);
		}
		ml->state = ST_MID;
		return add_const(ml, "\r");
	default:
		return mid_line(ml, pp, end);
	}
}

int
mt_pop3_ml_feed(struct mt_pop3_ml *ml, const char *in, size_t len,
    size_t *consumed, const char **why)
{
	const char *p = in, *end = in + len;
	int r = 0;

	*consumed = 0;
	if (ml->done == 1)
		return 1;
	if (ml->done == -1) {
		*why = "the message content could not be passed on";
		return -1;
	}
	while (p < end && (r = step(ml, &p, end)) == 0)
		;
	if (r == -1 || flush_all(ml) == -1) {
		ml->done = -1;
		*why = "the message content could not be passed on";
		return -1;
	}
	*consumed = (size_t)(p - in);
	if (r == 1) {
		ml->done = 1;
		return 1;
	}
	return 0;
}
