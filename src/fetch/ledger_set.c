/*
 * ledger_set: the in-memory sets behind a ledger folder. IMAP UIDs live in
 * sorted disjoint ranges (a mailbox of 100k messages fetched in a few
 * sessions is a handful of ranges); POP3 UIDLs in an open-addressing hash
 * table; fingerprints in flat arrays sorted on demand. See ledger_priv.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fetch/ledger_priv.h"

/* ---- IMAP UID ranges ---- */

/* Index of the first range whose hi >= uid (r->n when none). */
static size_t
lower(const struct lg_ranges *r, uint32_t uid)
{
	size_t a = 0, b = r->n, m;

	while (a < b) {
		m = a + (b - a) / 2;
		if (r->v[m].hi < uid)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

const struct lg_range *
lg_ranges_find(const struct lg_ranges *r, uint32_t uid)
{
	size_t i = lower(r, uid);

	if (i < r->n && r->v[i].lo <= uid)
		return &r->v[i];
	return NULL;
}

/* Insert k slots at index i. */
static int
open_gap(struct lg_ranges *r, size_t i, size_t k)
{
	struct lg_range *nv;
	size_t ncap;

	if (r->n + k > r->cap) {
		ncap = r->cap ? r->cap * 2 : 16;
		while (ncap < r->n + k)
			ncap *= 2;
		if ((nv = realloc(r->v, ncap * sizeof(*nv))) == NULL)
			return -1;
		r->v = nv;
		r->cap = ncap;
	}
	memmove(&r->v[i + k], &r->v[i], (r->n - i) * sizeof(*r->v));
	r->n += k;
	return 0;
}

static void
close_gap(struct lg_ranges *r, size_t i, size_t k)
{
	memmove(&r->v[i], &r->v[i + k], (r->n - i - k) * sizeof(*r->v));
	r->n -= k;
}

/* Make uid the first UID of a range when it falls inside one. */
static int
split_at(struct lg_ranges *r, uint32_t uid)
{
	size_t i = lower(r, uid);

	if (i == r->n || r->v[i].lo >= uid)
		return 0;
	if (open_gap(r, i + 1, 1) == -1)
		return -1;
	r->v[i + 1] = r->v[i];
	r->v[i].hi = uid - 1;
	r->v[i + 1].lo = uid;
	return 0;
}

/* Merge equal neighbours among ranges from-1 .. to+1. */
static void
merge_around(struct lg_ranges *r, size_t from, size_t to)
{
	size_t w, k;

	if (r->n < 2)
		return;
	from = from > 0 ? from - 1 : 0;
	to = (to + 1 < r->n) ? to + 1 : r->n - 1;
	for (w = from, k = from + 1; k <= to; k++) {
		if ((uint64_t)r->v[w].hi + 1 == r->v[k].lo &&
		    r->v[w].flags == r->v[k].flags &&
		    r->v[w].time == r->v[k].time)
			r->v[w].hi = r->v[k].hi;
		else
			r->v[++w] = r->v[k];
	}
	if (to > w)
		close_gap(r, w + 1, to - w);
}

/* Cut range boundaries at lo and hi+1; *i..*j-1 then cover lo..hi. */
static int
isolate(struct lg_ranges *r, uint32_t lo, uint32_t hi, size_t *i, size_t *j)
{
	if (split_at(r, lo) == -1)
		return -1;
	if (hi < UINT32_MAX && split_at(r, hi + 1) == -1)
		return -1;
	*i = lower(r, lo);
	*j = (hi < UINT32_MAX) ? lower(r, hi + 1) : r->n;
	return 0;
}

int
lg_ranges_set(struct lg_ranges *r, uint32_t lo, uint32_t hi, uint32_t flags,
    int64_t when)
{
	size_t i, j;

	if (isolate(r, lo, hi, &i, &j) == -1)
		return -1;
	if (j == i) {
		if (open_gap(r, i, 1) == -1)
			return -1;
	} else if (j - i > 1) {
		close_gap(r, i + 1, j - i - 1);
	}
	r->v[i].lo = lo;
	r->v[i].hi = hi;
	r->v[i].flags = flags;
	r->v[i].time = when;
	merge_around(r, i, i);
	return 0;
}

/* Give flags and time to the UIDs of lo..hi that no range covers yet. */
int
lg_ranges_fill(struct lg_ranges *r, uint32_t lo, uint32_t hi, uint32_t flags,
    int64_t when)
{
	uint64_t cur = lo;
	uint32_t glo, ghi;
	size_t i;

	while (cur <= hi) {
		i = lower(r, (uint32_t)cur);
		if (i == r->n || r->v[i].lo > hi)
			return lg_ranges_set(r, (uint32_t)cur, hi, flags, when);
		glo = r->v[i].lo;
		ghi = r->v[i].hi;
		if (glo > cur &&
		    lg_ranges_set(r, (uint32_t)cur, glo - 1, flags, when) == -1)
			return -1;
		cur = (uint64_t)ghi + 1;
	}
	return 0;
}

int
lg_ranges_mark_deleted(struct lg_ranges *r, uint32_t lo, uint32_t hi)
{
	size_t i, j, k;

	if (isolate(r, lo, hi, &i, &j) == -1)
		return -1;
	for (k = i; k < j; k++) {
		r->v[k].flags |= MT_LEDGER_DELETED;
		r->v[k].time = 0;
	}
	if (j > i)
		merge_around(r, i, j - 1);
	return 0;
}

int64_t
lg_coarsen_time(int64_t t, int64_t now)
{
	int64_t age = now - t, g;

	/*
	 * Round old delivery times up, never down: a message is deleted a
	 * little late, never early, and the error stays small next to its
	 * age (any keep that has not expired yet is at least that long).
	 */
	if (t <= 0 || age < 2 * 86400)
		return t;
	g = (age < 60 * 86400) ? 3600 : 86400;
	return (t + g - 1) / g * g;
}

void
lg_ranges_coarsen(struct lg_ranges *r, int64_t now)
{
	size_t k;

	for (k = 0; k < r->n; k++)
		if (r->v[k].flags == MT_LEDGER_DELIVERED)
			r->v[k].time = lg_coarsen_time(r->v[k].time, now);
	if (r->n > 0)
		merge_around(r, 0, r->n - 1);
}

void
lg_ranges_free(struct lg_ranges *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* ---- POP3 UIDL table ---- */

static uint32_t
hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct lg_pop *
lg_pops_find(const struct lg_pops *t, const char *uidl)
{
	uint32_t h = hash_str(uidl);
	size_t i, mask = t->cap - 1;

	if (t->cap == 0)
		return NULL;
	for (i = h & mask; t->slots[i].uidl != NULL; i = (i + 1) & mask)
		if (t->slots[i].hash == h && strcmp(t->slots[i].uidl, uidl) == 0)
			return &t->slots[i];
	return NULL;
}

static struct lg_pop *
place(struct lg_pops *t, const struct lg_pop *p)
{
	size_t i, mask = t->cap - 1;

	for (i = p->hash & mask; t->slots[i].uidl != NULL; i = (i + 1) & mask)
		;
	t->slots[i] = *p;
	return &t->slots[i];
}

static int
grow(struct lg_pops *t)
{
	struct lg_pop *old = t->slots;
	size_t oldcap = t->cap, i;

	t->cap = oldcap ? oldcap * 2 : 64;
	if ((t->slots = calloc(t->cap, sizeof(*t->slots))) == NULL) {
		t->slots = old;
		t->cap = oldcap;
		return -1;
	}
	for (i = 0; i < oldcap; i++)
		if (old[i].uidl != NULL)
			place(t, &old[i]);
	free(old);
	return 0;
}

/* Add uidl (not present) with zeroed fields; pointers into t go stale. */
struct lg_pop *
lg_pops_add(struct lg_pops *t, const char *uidl)
{
	struct lg_pop p = { 0 };

	if ((t->n + 1) * 10 > t->cap * 7 && grow(t) == -1)
		return NULL;
	if ((p.uidl = strdup(uidl)) == NULL)
		return NULL;
	p.hash = hash_str(uidl);
	t->n++;
	return place(t, &p);
}

/* Linear probing without tombstones: shift the cluster back. */
void
lg_pops_remove(struct lg_pops *t, struct lg_pop *p)
{
	size_t mask = t->cap - 1, i = (size_t)(p - t->slots), j = i, k;

	free(p->uidl);
	for (;;) {
		j = (j + 1) & mask;
		if (t->slots[j].uidl == NULL)
			break;
		k = t->slots[j].hash & mask;
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i].uidl = NULL;
	t->n--;
}

void
lg_pops_free(struct lg_pops *t)
{
	size_t i;

	for (i = 0; i < t->cap; i++)
		free(t->slots[i].uidl);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---- fingerprints ---- */

static int
reserve(void **v, size_t *cap, size_t n, size_t size)
{
	void *nv;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	if ((nv = realloc(*v, ncap * size)) == NULL)
		return -1;
	*v = nv;
	*cap = ncap;
	return 0;
}

int
lg_fps_add(struct lg_fps *s, uint32_t uid, uint64_t fp)
{
	if (fp == 0)
		return 0;
	if (reserve((void **)&s->v, &s->cap, s->n, sizeof(*s->v)) == -1)
		return -1;
	if (s->n == 0)
		s->sorted = 1;
	else if (s->v[s->n - 1].uid >= uid)
		s->sorted = 0;
	s->v[s->n].uid = uid;
	s->v[s->n].fp = fp;
	s->n++;
	return 0;
}

static int
cmp_fp_uid(const void *a, const void *b)
{
	const struct lg_fp *x = a, *y = b;

	return (x->uid > y->uid) - (x->uid < y->uid);
}

void
lg_fps_drop(struct lg_fps *s, uint32_t lo, uint32_t hi)
{
	size_t a = 0, b = s->n, m;

	if (s->n == 0)
		return;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_fp_uid);
		s->sorted = 1;
	}
	while (a < b) {
		m = a + (b - a) / 2;
		if (s->v[m].uid < lo)
			a = m + 1;
		else
			b = m;
	}
	for (; a < s->n && s->v[a].uid <= hi; a++)
		s->v[a].fp = 0;
}

/* Drop the entries lg_fps_drop() cleared. */
void
lg_fps_pack(struct lg_fps *s)
{
	size_t r, w = 0;

	for (r = 0; r < s->n; r++)
		if (s->v[r].fp != 0)
			s->v[w++] = s->v[r];
	s->n = w;
}

void
lg_fps_free(struct lg_fps *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int
lg_olds_add(struct lg_olds *s, uint64_t fp, int64_t when)
{
	if (fp == 0)
		return 0;
	if (reserve((void **)&s->v, &s->cap, s->n, sizeof(*s->v)) == -1)
		return -1;
	s->v[s->n].fp = fp;
	s->v[s->n].time = when;
	s->n++;
	s->live++;
	s->sorted = 0;
	return 0;
}

static int
cmp_old(const void *a, const void *b)
{
	const struct lg_old *x = a, *y = b;

	if (x->fp != y->fp)
		return (x->fp > y->fp) - (x->fp < y->fp);
	return (x->time > y->time) - (x->time < y->time);
}

/* The live entry for fp with the earliest time, or NULL. */
static struct lg_old *
olds_find(struct lg_olds *s, uint64_t fp)
{
	size_t a = 0, b = s->n, m;

	if (s->live == 0 || fp == 0)
		return NULL;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_old);
		s->sorted = 1;
	}
	while (a < b) {
		m = a + (b - a) / 2;
		if (s->v[m].fp < fp)
			a = m + 1;
		else
			b = m;
	}
	for (; a < s->n && s->v[a].fp == fp; a++)
		if (s->v[a].time >= 0)
			return &s->v[a];
	return NULL;
}

/*
 * take != 0 consumes the entry. Returns 1 and its delivery time when fp is
 * there, else 0.
 */
int
lg_olds_take(struct lg_olds *s, uint64_t fp, int64_t *when, int take)
{
	struct lg_old *o = olds_find(s, fp);

	if (o == NULL)
		return 0;
	*when = o->time;
	if (take) {
		o->time = -1;
		s->live--;
	}
	return 1;
}

/* Drop the consumed entries (order, and so sortedness, is kept). */
void
lg_olds_pack(struct lg_olds *s)
{
	size_t r, w = 0;

	for (r = 0; r < s->n; r++)
		if (s->v[r].time >= 0)
			s->v[w++] = s->v[r];
	s->n = w;
}

void
lg_olds_free(struct lg_olds *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
