/*
 * libFuzzer harness for the IMAP response parser.
 *
 * Input: bytes 0-2 choose the limits (small ones, so the caps are reached),
 * byte 3 seeds the chunk sizes, the rest is what a server sent. The input
 * is parsed in one chunk and in pieces; both runs must produce the same
 * events (body data compared as one stream, since its pieces depend on the
 * chunks), the same error and the same consumption, and every event must
 * respect its invariants.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailtunnel/imap_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* FNV-1a over everything an event says, in order. */
struct digest {
	uint64_t h;
	uint64_t data_h;		/* body data, independent of chunking */
	uint64_t data_len;
	int in_data;
};

static void
mix(struct digest *d, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		d->h = (d->h ^ b[i]) * 1099511628211ULL;
}

static void
mix_str(struct digest *d, struct mt_imap_str s)
{
	CHECK(s.len == 0 || s.p != NULL);
	mix(d, &s.len, sizeof(s.len));
	if (s.len > 0)
		mix(d, s.p, s.len);
}

static void
mix_fetch(struct digest *d, const struct mt_imap_fetch *f)
{
	CHECK(memchr(f->internaldate, 0, sizeof(f->internaldate)) != NULL);
	CHECK(memchr(f->section, 0, sizeof(f->section)) != NULL);
	mix(d, &f->seq, sizeof(f->seq));
	mix(d, &f->have, sizeof(f->have));
	mix(d, &f->uid, sizeof(f->uid));
	mix(d, &f->size, sizeof(f->size));
	mix(d, f->internaldate, strlen(f->internaldate));
	mix(d, &f->flags, sizeof(f->flags));
	mix(d, &f->keywords, sizeof(f->keywords));
	mix(d, &f->body_kind, sizeof(f->body_kind));
	mix(d, f->section, strlen(f->section));
	mix(d, &f->body_len, sizeof(f->body_len));
	mix(d, &f->origin, sizeof(f->origin));
}

static void
mix_event(struct digest *d, const struct mt_imap_event *ev, const char *in,
    size_t n)
{
	size_t i;

	if (ev->type == MT_IMAP_EV_FETCH_DATA) {
		CHECK(ev->data.len > 0);
		CHECK(ev->data.p >= in && ev->data.p + ev->data.len <= in + n);
		for (i = 0; i < ev->data.len; i++)
			d->data_h = (d->data_h ^ (unsigned char)ev->data.p[i]) *
			    1099511628211ULL;
		d->data_len += ev->data.len;
		return;
	}
	mix(d, &d->data_h, sizeof(d->data_h));
	mix(d, &ev->type, sizeof(ev->type));
	mix_str(d, ev->tag);
	mix(d, &ev->status, sizeof(ev->status));
	mix(d, &ev->code.kind, sizeof(ev->code.kind));
	mix(d, &ev->code.number, sizeof(ev->code.number));
	mix_str(d, ev->code.arg);
	mix_str(d, ev->text);
	mix(d, &ev->number, sizeof(ev->number));
	mix(d, &ev->caps.flags, sizeof(ev->caps.flags));
	mix(d, &ev->flags, sizeof(ev->flags));
	mix_str(d, ev->mailbox);
	mix_str(d, ev->name);
	CHECK(ev->search.n <= MT_IMAP_SEARCH_BATCH);
	for (i = 0; i < ev->search.n; i++)
		CHECK(ev->search.r[i].lo <= ev->search.r[i].hi &&
		    ev->search.r[i].lo > 0);
	mix(d, &ev->search.n, sizeof(ev->search.n));
	mix(d, ev->search.r, ev->search.n * sizeof(ev->search.r[0]));
	mix(d, ev->search.tag, strnlen(ev->search.tag, sizeof(ev->search.tag)));
	mix_fetch(d, &ev->fetch);
	if (ev->type == MT_IMAP_EV_FETCH &&
	    ev->fetch.body_kind == MT_IMAP_BODY_INLINE)
		mix_str(d, ev->fetch.body_inline);
}

struct run {
	struct digest d;
	int rc;
	size_t consumed;
	int idle;
	char err[256];
};

static void
run(const char *in, size_t n, const struct mt_imap_limits *lim,
    unsigned seed, struct run *r)
{
	struct mt_imap_parser *p = mt_imap_parser_new(lim);
	const struct mt_imap_event *ev;
	size_t off = 0, chunk, used, end;
	int rc = 0;

	CHECK(p != NULL);
	memset(r, 0, sizeof(*r));
	r->d.h = 14695981039346656037ULL;
	while (off < n && rc != -1) {
		chunk = seed == 0 ? n - off : 1 + (seed = seed * 1103515245 +
		    12345) % 61;
		end = off + (chunk < n - off ? chunk : n - off);
		while (off < end) {
			rc = mt_imap_parser_feed(p, in + off, end - off, &used, &ev);
			CHECK(used <= end - off);
			off += used;
			if (rc != 1) {
				CHECK(rc == -1 || off == end);
				CHECK(rc == 0 || ev == NULL);
				break;
			}
			mix_event(&r->d, ev, in, n);
		}
	}
	r->rc = rc == -1 ? -1 : 0;
	if (rc == -1)
		strncpy(r->err, mt_imap_parser_error(p), sizeof(r->err) - 1);
	r->consumed = off;
	r->idle = mt_imap_parser_idle(p);
	mt_imap_parser_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mt_imap_limits lim;
	struct run a, b;

	if (size < 4)
		return 0;
	lim.line_max = 64 + (size_t)data[0] * 16;
	lim.literal_max = (size_t)data[1] * 4;
	lim.body_max = (uint64_t)data[1] * 64;
	lim.depth_max = 1 + data[2] % 16;
	run((const char *)data + 4, size - 4, &lim, 0, &a);
	run((const char *)data + 4, size - 4, &lim, data[3] | 1, &b);
	CHECK(a.d.h == b.d.h && a.d.data_h == b.d.data_h);
	CHECK(a.d.data_len == b.d.data_len);
	CHECK(a.rc == b.rc && a.idle == b.idle);
	/* After an error the two runs may have stopped in different chunks. */
	CHECK(a.rc == -1 || a.consumed == b.consumed);
	CHECK(strcmp(a.err, b.err) == 0);
	return 0;
}
