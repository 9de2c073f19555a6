#include "config.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "imap_events.h"

static void out(struct imap_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
out(struct imap_run *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(r->log + r->len, r->cap - r->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < r->cap - r->len)
			break;
		r->cap = (r->cap + (size_t)n) * 2;
		r->log = realloc(r->log, r->cap);
		assert_non_null(r->log);
	}
	r->len += (size_t)n;
}

static void
out_str(struct imap_run *r, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out(r, "%c", c);
		else
			out(r, "\\x%02x", c);
	}
}

static const char *const status_names[] = {
	"OK", "NO", "BAD", "BYE", "PREAUTH"
};

static void
out_code(struct imap_run *r, const struct mt_imap_code *c)
{
	if (c->kind == MT_IMAP_CODE_NONE)
		return;
	out(r, " [%s", mt_imap_code_name(c->kind));
	if (c->kind == MT_IMAP_CODE_OTHER) {
		out(r, " ");
		out_str(r, c->name.p, c->name.len);
	}
	if (c->number != 0)
		out(r, " n=%" PRIu32, c->number);
	if (c->kind == MT_IMAP_CODE_CAPABILITY)
		out(r, " caps=%" PRIx32 "/%x", c->caps.flags, c->caps.auth);
	if (c->arg.len > 0) {
		out(r, " arg=");
		out_str(r, c->arg.p, c->arg.len);
	}
	out(r, "]");
}

static void
out_fetch(struct imap_run *r, const struct mt_imap_fetch *f)
{
	static const char *const kinds[] = { "none", "streamed", "inline", "nil" };

	out(r, " seq=%" PRIu32 " have=%x", f->seq, f->have);
	if (f->have & MT_IMAP_FETCH_UID)
		out(r, " uid=%" PRIu32, f->uid);
	if (f->have & MT_IMAP_FETCH_SIZE)
		out(r, " size=%" PRIu64, f->size);
	if (f->have & MT_IMAP_FETCH_INTERNALDATE)
		out(r, " date=\"%s\"", f->internaldate);
	if (f->have & MT_IMAP_FETCH_FLAGS)
		out(r, " flags=%x kw=%u", f->flags, f->keywords);
	if (f->have & MT_IMAP_FETCH_MODSEQ)
		out(r, " modseq=%" PRIu64, f->modseq);
	if (f->have & MT_IMAP_FETCH_BODY) {
		out(r, " body=%s sec=\"%s\"%s len=%" PRIu64, kinds[f->body_kind],
		    f->section, f->binary ? " binary" : "", f->body_len);
		if (f->has_origin)
			out(r, " origin=%" PRIu64, f->origin);
		if (f->body_kind == MT_IMAP_BODY_INLINE) {
			out(r, " inline=");
			out_str(r, f->body_inline.p, f->body_inline.len);
		}
	}
}

static void
out_search(struct imap_run *r, const struct mt_imap_search *s, int done)
{
	size_t i;

	out(r, "%s%s", s->esearch ? "ESEARCH" : "SEARCH", done ? "_DONE" : "");
	for (i = 0; i < s->n; i++) {
		if (s->r[i].lo == s->r[i].hi)
			out(r, " %" PRIu32, s->r[i].lo);
		else
			out(r, " %" PRIu32 ":%" PRIu32, s->r[i].lo, s->r[i].hi);
	}
	if (done && s->esearch)
		out(r, " | tag=%s uid=%d have=%x min=%" PRIu32 " max=%" PRIu32
		    " count=%" PRIu32, s->tag, s->uid, s->have, s->min, s->max,
		    s->count);
}

static void
log_event(struct imap_run *r, const struct mt_imap_event *ev,
    const char *in, size_t n)
{
	if (ev->type == MT_IMAP_EV_FETCH_DATA) {
		r->data_events++;
		if (ev->data.p >= in && ev->data.p + ev->data.len <= in + n)
			r->data_by_ref++;
		if (!r->in_data)
			out(r, "DATA ");
		r->in_data = 1;
		out_str(r, ev->data.p, ev->data.len);
		return;
	}
	if (r->in_data)
		out(r, "\n");
	r->in_data = 0;
	switch (ev->type) {
	case MT_IMAP_EV_TAGGED:
		out(r, "TAGGED ");
		out_str(r, ev->tag.p, ev->tag.len);
		out(r, " %s", status_names[ev->status]);
		goto text;
	case MT_IMAP_EV_STATUS:
		out(r, "STATUS %s", status_names[ev->status]);
		goto text;
	case MT_IMAP_EV_CONTINUE:
		out(r, "CONTINUE");
	text:
		out_code(r, &ev->code);
		out(r, " ");
		out_str(r, ev->text.p, ev->text.len);
		break;
	case MT_IMAP_EV_CAPABILITY:
		out(r, "CAPABILITY %" PRIx32 "/%x ", ev->caps.flags, ev->caps.auth);
		out_str(r, ev->caps.raw.p, ev->caps.raw.len);
		break;
	case MT_IMAP_EV_EXISTS:
	case MT_IMAP_EV_RECENT:
	case MT_IMAP_EV_EXPUNGE:
		out(r, "%s %" PRIu32, ev->type == MT_IMAP_EV_EXISTS ? "EXISTS" :
		    ev->type == MT_IMAP_EV_RECENT ? "RECENT" : "EXPUNGE",
		    ev->number);
		break;
	case MT_IMAP_EV_FLAGS:
		out(r, "FLAGS %x kw=%u", ev->flags, ev->keywords);
		break;
	case MT_IMAP_EV_LIST:
		out(r, "LIST %x %c ", ev->flags,
		    ev->delimiter ? ev->delimiter : '-');
		out_str(r, ev->mailbox.p, ev->mailbox.len);
		break;
	case MT_IMAP_EV_SEARCH:
	case MT_IMAP_EV_SEARCH_DONE:
		out_search(r, &ev->search, ev->type == MT_IMAP_EV_SEARCH_DONE);
		break;
	case MT_IMAP_EV_FETCH_BODY:
		out(r, "BODY");
		out_fetch(r, &ev->fetch);
		break;
	case MT_IMAP_EV_FETCH:
		out(r, "FETCH");
		out_fetch(r, &ev->fetch);
		break;
	case MT_IMAP_EV_OTHER:
		out(r, "OTHER ");
		out_str(r, ev->name.p, ev->name.len);
		break;
	default:
		fail_msg("unknown event type %d", (int)ev->type);
	}
	out(r, "\n");
}

void
imap_run(struct imap_run *r, const char *in, size_t n, const size_t *cuts,
    size_t ncuts, const struct mt_imap_limits *lim)
{
	struct mt_imap_parser *p = mt_imap_parser_new(lim);
	const struct mt_imap_event *ev;
	size_t off = 0, k, end, used;
	int rc = 0;

	assert_non_null(p);
	memset(r, 0, sizeof(*r));
	r->cap = 256;
	r->log = malloc(r->cap);
	assert_non_null(r->log);
	r->log[0] = '\0';
	for (k = 0; k <= ncuts && rc != -1; k++) {
		end = k < ncuts ? cuts[k] : n;
		while (off < end) {
			rc = mt_imap_parser_feed(p, in + off, end - off, &used, &ev);
			assert_true(used <= end - off);
			off += used;
			if (rc == -1)
				break;
			if (rc == 0) {
				assert_int_equal(off, end);
				break;
			}
			log_event(r, ev, in, n);
		}
	}
	if (r->in_data)
		out(r, "\n");
	r->rc = rc == -1 ? -1 : 0;
	if (rc == -1)
		snprintf(r->error, sizeof(r->error), "%s", mt_imap_parser_error(p));
	r->consumed = off;
	r->idle = mt_imap_parser_idle(p);
	mt_imap_parser_free(p);
}

void
imap_run_free(struct imap_run *r)
{
	free(r->log);
	r->log = NULL;
}

static void
same_run(const struct imap_run *a, const struct imap_run *b)
{
	assert_string_equal(a->log, b->log);
	assert_int_equal(a->rc, b->rc);
	assert_string_equal(a->error, b->error);
	assert_int_equal(a->idle, b->idle);
}

void
imap_run_all_splits(struct imap_run *r, const char *in, size_t n,
    const struct mt_imap_limits *lim)
{
	struct imap_run s;
	size_t i, *cuts;

	imap_run(r, in, n, NULL, 0, lim);
	for (i = 1; i < n; i++) {
		imap_run(&s, in, n, &i, 1, lim);
		same_run(r, &s);
		imap_run_free(&s);
	}
	cuts = malloc(n * sizeof(*cuts) + 1);
	assert_non_null(cuts);
	for (i = 0; i + 1 < n; i++)
		cuts[i] = i + 1;
	imap_run(&s, in, n, cuts, n > 0 ? n - 1 : 0, lim);
	same_run(r, &s);
	imap_run_free(&s);
	free(cuts);
}

char *
imap_expand(const char *t, size_t *n)
{
	size_t tl = strlen(t), o = 0, i;
	char *s = malloc(tl * 2 + 64);
	const char *end;

	assert_non_null(s);
	for (i = 0; i < tl; i++) {
		if (t[i] != '\001' && t[i] != '\003') {
			s[o++] = t[i];
			continue;
		}
		end = strchr(t + i, '\002');
		assert_non_null(end);
		o += (size_t)sprintf(s + o, "{%zu%s}\r\n", (size_t)(end - t - i - 1),
		    t[i] == '\003' ? "+" : "");
		memcpy(s + o, t + i + 1, (size_t)(end - t - i - 1));
		o += (size_t)(end - t - i - 1);
		i = (size_t)(end - t);
	}
	s[o] = '\0';
	*n = o;
	return s;
}
