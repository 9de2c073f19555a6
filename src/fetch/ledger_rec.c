/*
 * ledger_rec: the records of the journal and snapshot, and their effect on
 * the in-memory state. A live call formats a record and applies it through
 * the same lg_apply() that replays it after a restart, so replay cannot
 * disagree with what was done live.
 *
 * A record is one line of space-separated fields; strings are escaped
 * (bytes outside 0x21-0x7e and '%' as %XX, the empty string as "-"):
 *   F fid kind uidvalidity name     a folder (ids count up from 1)
 *   V fid uidvalidity               new UIDVALIDITY: retire the generation
 *   I fid key fp token              intent: about to deliver key as token
 *   D fid key time                  done: delivered at time
 *   M fid key fp time               matched a retired generation's delivery
 *   S fid keyset                    seen: done without delivery
 *   X fid keyset                    deleted on the server
 *   C fid key                       intent abandoned: not delivered
 *   R fid uidl                      forgotten (POP3)
 *   G fid                           retired generations dropped
 * and, in snapshots only, the state written compactly:
 *   r fid lo hi flags time          a UID range
 *   u fid flags time fp uidl        a POP3 message
 *   f fid uid:fp,uid:fp,...         fingerprints of the generation
 *   o fid fp:time,fp:time,...       fingerprints of retired generations
 * A keyset is "lo:hi" in an IMAP folder and a UIDL in a POP3 folder; fp is
 * hexadecimal, times are seconds since the epoch.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/ledger_priv.h"

#define MAXF 8

static const char hexdig[] = "0123456789ABCDEF";

int
lg_escape(char *out, size_t outsz, const char *s)
{
	size_t n = 0;
	unsigned char c;

	if (*s == '\0' || strcmp(s, "-") == 0) {
		if (outsz < 4)
			return -1;
		strcpy(out, *s == '\0' ? "-" : "%2D");
		return 0;
	}
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (n + 4 > outsz)
			return -1;
		if (c < 0x21 || c > 0x7e || c == '%') {
			out[n++] = '%';
			out[n++] = hexdig[c >> 4];
			out[n++] = hexdig[c & 15];
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Undo lg_escape() in place. */
static int
unescape(char *s)
{
	char *w = s;
	int hi, lo;

	if (strcmp(s, "-") == 0) {
		*s = '\0';
		return 0;
	}
	for (; *s != '\0'; s++) {
		if (*s != '%') {
			*w++ = *s;
			continue;
		}
		if ((hi = hexval(s[1])) < 0 || (lo = hexval(s[2])) < 0 ||
		    (hi == 0 && lo == 0))
			return -1;
		*w++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*w = '\0';
	return 0;
}

/* Digits only; base 10 or 16; no overflow. */
static int
parse_u64(const char *s, int base, uint64_t *out)
{
	uint64_t v = 0;
	int d;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if ((d = hexval(*s)) < 0 || d >= base)
			return -1;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -1;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	*out = v;
	return 0;
}

static int
parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, 10, &v) == -1 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
parse_time(const char *s, int64_t *out)
{
	uint64_t v;

	if (parse_u64(s, 10, &v) == -1 || v > INT64_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

int
lg_key_uid(const char *key, uint32_t *uid)
{
	/* Canonical decimal only: "42" and "042" must not be two keys. */
	if (key[0] == '0' || strlen(key) > 10 || parse_u32(key, uid) == -1 ||
	    *uid == 0)
		return -1;
	return 0;
}

int
lg_key_uidl(const char *key)
{
	size_t n;

	for (n = 0; key[n] != '\0'; n++)
		if ((unsigned char)key[n] < 0x21 || (unsigned char)key[n] > 0x7e)
			return -1;
	return (n >= 1 && n <= LG_UIDL_MAX) ? 0 : -1;
}

/* "lo:hi" with 1 <= lo <= hi. */
static int
parse_uidset(char *s, uint32_t *lo, uint32_t *hi)
{
	char *colon = strchr(s, ':');

	if (colon == NULL)
		return -1;
	*colon = '\0';
	if (parse_u32(s, lo) == -1 || parse_u32(colon + 1, hi) == -1 ||
	    *lo == 0 || *lo > *hi)
		return -1;
	return 0;
}

/* A record key for folder f, unescaped in place; *uid set for IMAP. */
static int
parse_key(const struct mt_ledger_folder *f, char *key, uint32_t *uid)
{
	if (f->kind == MT_LEDGER_IMAP)
		return lg_key_uid(key, uid);
	if (unescape(key) == -1)
		return -1;
	return lg_key_uidl(key);
}

struct lg_intent *
lg_intent_find(const struct mt_ledger_folder *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->nintents; i++)
		if (strcmp(f->intents[i].key, key) == 0)
			return &f->intents[i];
	return NULL;
}

static void
intent_remove(struct mt_ledger_folder *f, struct lg_intent *in)
{
	free(in->key);
	free(in->token);
	*in = f->intents[--f->nintents];
}

static void
intents_free(struct mt_ledger_folder *f)
{
	while (f->nintents > 0)
		intent_remove(f, &f->intents[f->nintents - 1]);
}

void
lg_folder_free(struct mt_ledger_folder *f)
{
	if (f == NULL)
		return;
	intents_free(f);
	free(f->intents);
	lg_ranges_free(&f->ranges);
	lg_fps_free(&f->fps);
	lg_pops_free(&f->pops);
	lg_olds_free(&f->olds);
	free(f->name);
	free(f);
}

/* F fid kind uidvalidity name */
static int
rec_folder(struct mt_ledger *l, char **argv)
{
	struct mt_ledger_folder *f, **nv;
	uint32_t fid, uv;

	if (parse_u32(argv[1], &fid) == -1 || fid != l->nfolders + 1 ||
	    (strcmp(argv[2], "p") != 0 && strcmp(argv[2], "i") != 0) ||
	    parse_u32(argv[3], &uv) == -1 || unescape(argv[4]) == -1 ||
	    strlen(argv[4]) > LG_NAME_MAX)
		return -1;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	f->l = l;
	f->id = fid;
	f->kind = (argv[2][0] == 'p') ? MT_LEDGER_POP3 : MT_LEDGER_IMAP;
	f->uidvalidity = uv;
	if ((f->name = strdup(argv[4])) == NULL)
		goto err1;
	if ((nv = realloc(l->folders, (l->nfolders + 1) * sizeof(*nv))) == NULL)
		goto err1;
	l->folders = nv;
	l->folders[l->nfolders++] = f;

	/* Success! */
	return 0;

err1:
	lg_folder_free(f);
	return -1;
}

/* V: the fingerprints of what is delivered and not deleted survive. */
static int
rec_uidvalidity(struct mt_ledger_folder *f, char **argv)
{
	const struct lg_range *r;
	uint32_t uv;
	size_t i;

	if (f->kind != MT_LEDGER_IMAP || parse_u32(argv[2], &uv) == -1)
		return -1;
	for (i = 0; i < f->fps.n; i++) {
		if (f->fps.v[i].fp == 0)
			continue;
		r = lg_ranges_find(&f->ranges, f->fps.v[i].uid);
		if (r == NULL || r->flags != MT_LEDGER_DELIVERED)
			continue;
		if (lg_olds_add(&f->olds, f->fps.v[i].fp, r->time) == -1)
			return -1;
	}
	lg_ranges_free(&f->ranges);
	lg_fps_free(&f->fps);
	intents_free(f);
	f->uidvalidity = uv;
	return 0;
}

/* I fid key fp token */
static int
rec_intent(struct mt_ledger_folder *f, char **argv)
{
	struct lg_intent *in, *nv;
	char *key, *token;
	uint64_t fp;
	uint32_t uid;

	if (parse_key(f, argv[2], &uid) == -1 ||
	    parse_u64(argv[3], 16, &fp) == -1 || unescape(argv[4]) == -1 ||
	    argv[4][0] == '\0' || strlen(argv[4]) > MT_LEDGER_TOKEN_MAX)
		return -1;
	if ((key = strdup(argv[2])) == NULL)
		return -1;
	if ((token = strdup(argv[4])) == NULL)
		goto err1;
	if ((in = lg_intent_find(f, key)) != NULL) {
		intent_remove(f, in);
	} else if (f->nintents == f->capintents) {
		nv = realloc(f->intents, (f->capintents * 2 + 4) * sizeof(*nv));
		if (nv == NULL)
			goto err2;
		f->intents = nv;
		f->capintents = f->capintents * 2 + 4;
	}
	in = &f->intents[f->nintents++];
	in->key = key;
	in->token = token;
	in->fp = fp;

	/* Success! */
	return 0;

err2:
	free(token);
err1:
	free(key);
	return -1;
}

/* Mark key delivered at time with fingerprint fp. */
static int
set_delivered(struct mt_ledger_folder *f, const char *key, uint32_t uid,
    uint64_t fp, int64_t when)
{
	struct lg_pop *p;
	int64_t old;

	if (f->kind == MT_LEDGER_IMAP) {
		if (lg_ranges_set(&f->ranges, uid, uid, MT_LEDGER_DELIVERED,
		    when) == -1 || lg_fps_add(&f->fps, uid, fp) == -1)
			return -1;
		/* Each earlier delivery stands for one message only. */
		lg_olds_take(&f->olds, fp, &old, 1);
		return 0;
	}
	if ((p = lg_pops_find(&f->pops, key)) == NULL &&
	    (p = lg_pops_add(&f->pops, key)) == NULL)
		return -1;
	p->flags = MT_LEDGER_DELIVERED;
	p->time = when;
	p->fp = fp;
	return 0;
}

/* D fid key time, M fid key fp time */
static int
rec_done(struct mt_ledger_folder *f, int argc, char **argv)
{
	struct lg_intent *in;
	uint64_t fp = 0;
	int64_t when;
	uint32_t uid = 0;

	if (parse_key(f, argv[2], &uid) == -1)
		return -1;
	if (argv[0][0] == 'M') {
		if (argc != 5 || f->kind != MT_LEDGER_IMAP ||
		    parse_u64(argv[3], 16, &fp) == -1)
			return -1;
	} else if (argc != 4) {
		return -1;
	}
	if (parse_time(argv[argc - 1], &when) == -1)
		return -1;
	if ((in = lg_intent_find(f, argv[2])) != NULL) {
		if (fp == 0)
			fp = in->fp;
		intent_remove(f, in);
	}
	return set_delivered(f, argv[2], uid, fp, when);
}

/* S fid keyset, X fid keyset */
static int
rec_seen_deleted(struct mt_ledger_folder *f, char **argv)
{
	struct lg_pop *p;
	uint32_t lo, hi;

	if (f->kind == MT_LEDGER_IMAP) {
		if (parse_uidset(argv[2], &lo, &hi) == -1)
			return -1;
		if (argv[0][0] == 'S')
			return lg_ranges_fill(&f->ranges, lo, hi, MT_LEDGER_SEEN,
			    0);
		lg_fps_drop(&f->fps, lo, hi);
		return lg_ranges_mark_deleted(&f->ranges, lo, hi);
	}
	if (parse_key(f, argv[2], &lo) == -1)
		return -1;
	p = lg_pops_find(&f->pops, argv[2]);
	if (argv[0][0] == 'S') {
		if (p == NULL && (p = lg_pops_add(&f->pops, argv[2])) == NULL)
			return -1;
		if (p->flags == 0)
			p->flags = MT_LEDGER_SEEN;
	} else if (p != NULL) {
		p->flags |= MT_LEDGER_DELETED;
		p->time = 0;
		p->fp = 0;
	}
	return 0;
}

/* C fid key, R fid uidl */
static int
rec_cancel_forget(struct mt_ledger_folder *f, char **argv)
{
	struct lg_intent *in;
	struct lg_pop *p;
	uint32_t uid;

	if (parse_key(f, argv[2], &uid) == -1)
		return -1;
	if (argv[0][0] == 'C') {
		if ((in = lg_intent_find(f, argv[2])) != NULL)
			intent_remove(f, in);
		return 0;
	}
	if (f->kind != MT_LEDGER_POP3)
		return -1;
	if ((p = lg_pops_find(&f->pops, argv[2])) != NULL)
		lg_pops_remove(&f->pops, p);
	return 0;
}

/* r fid lo hi flags time */
static int
rec_range(struct mt_ledger_folder *f, char **argv)
{
	uint32_t lo, hi, flags;
	int64_t when;

	if (f->kind != MT_LEDGER_IMAP || parse_u32(argv[2], &lo) == -1 ||
	    parse_u32(argv[3], &hi) == -1 || lo == 0 || lo > hi ||
	    parse_u32(argv[4], &flags) == -1 || flags == 0 ||
	    (flags & ~7u) != 0 || parse_time(argv[5], &when) == -1)
		return -1;
	return lg_ranges_set(&f->ranges, lo, hi, flags, when);
}

/* u fid flags time fp uidl */
static int
rec_pop(struct mt_ledger_folder *f, char **argv)
{
	struct lg_pop *p;
	uint32_t flags;
	int64_t when;
	uint64_t fp;

	if (f->kind != MT_LEDGER_POP3 || parse_u32(argv[2], &flags) == -1 ||
	    flags == 0 || (flags & ~7u) != 0 ||
	    parse_time(argv[3], &when) == -1 ||
	    parse_u64(argv[4], 16, &fp) == -1 || unescape(argv[5]) == -1 ||
	    lg_key_uidl(argv[5]) == -1 || lg_pops_find(&f->pops, argv[5]))
		return -1;
	if ((p = lg_pops_add(&f->pops, argv[5])) == NULL)
		return -1;
	p->flags = flags;
	p->time = when;
	p->fp = fp;
	return 0;
}

/* f fid uid:fp,...  o fid fp:time,... */
static int
rec_fplist(struct mt_ledger_folder *f, char **argv)
{
	char *item, *colon, *save = NULL;
	uint64_t a, b;

	if (f->kind != MT_LEDGER_IMAP)
		return -1;
	for (item = strtok_r(argv[2], ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		if ((colon = strchr(item, ':')) == NULL)
			return -1;
		*colon = '\0';
		if (argv[0][0] == 'f') {
			if (parse_u64(item, 10, &a) == -1 || a == 0 ||
			    a > UINT32_MAX ||
			    parse_u64(colon + 1, 16, &b) == -1 ||
			    lg_fps_add(&f->fps, (uint32_t)a, b) == -1)
				return -1;
		} else if (parse_u64(item, 16, &a) == -1 ||
		    parse_u64(colon + 1, 10, &b) == -1 || b > INT64_MAX ||
		    lg_olds_add(&f->olds, a, (int64_t)b) == -1) {
			return -1;
		}
	}
	return 0;
}

static int
split(char *p, char **argv)
{
	int argc = 0;

	while (argc < MAXF) {
		argv[argc++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			return argc;
		*p++ = '\0';
	}
	return -1;
}

static struct mt_ledger_folder *
folder_by_id(struct mt_ledger *l, const char *s)
{
	uint32_t fid;

	if (parse_u32(s, &fid) == -1 || fid == 0 || fid > l->nfolders)
		return NULL;
	return l->folders[fid - 1];
}

/* Apply one record (modified in place). 0, or -1 when it makes no sense. */
int
lg_apply(struct mt_ledger *l, char *payload)
{
	static const char types[] = "VIDMSXCRGrufo";
	static const int nargs[] = { 3, 5, 4, 5, 3, 3, 3, 3, 2, 6, 6, 3, 3 };
	struct mt_ledger_folder *f;
	char *argv[MAXF];
	const char *t;
	int argc = split(payload, argv);

	if (argc < 2 || argv[0][0] == '\0' || argv[0][1] != '\0')
		return -1;
	if (argv[0][0] == 'F')
		return argc == 5 ? rec_folder(l, argv) : -1;
	if ((t = strchr(types, argv[0][0])) == NULL ||
	    argc != nargs[t - types] || (f = folder_by_id(l, argv[1])) == NULL)
		return -1;
	switch (*t) {
	case 'V': return rec_uidvalidity(f, argv);
	case 'I': return rec_intent(f, argv);
	case 'D': case 'M': return rec_done(f, argc, argv);
	case 'S': case 'X': return rec_seen_deleted(f, argv);
	case 'C': case 'R': return rec_cancel_forget(f, argv);
	case 'G': lg_olds_free(&f->olds); return 0;
	case 'r': return rec_range(f, argv);
	case 'u': return rec_pop(f, argv);
	default: return rec_fplist(f, argv);
	}
}

/*
 * Format a record, apply it, and queue it for the journal. Room is made in
 * the write buffer first, so a record is applied only when it will be
 * written, and written only when it was applied.
 */
int
lg_emit(struct mt_ledger *l, const char *fmt, ...)
{
	char rec[LG_LINE_MAX], work[LG_LINE_MAX];
	va_list ap;
	int n;

	if (l->failed)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(rec, sizeof(rec) - 16, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(rec) - 16) {
		mt_log_c(&l->log, MT_LOG_ERR, "ledger %s: record too long",
		    l->dir);
		return -1;
	}
	if (lg_file_reserve(l, (size_t)n) == -1)
		return -1;
	memcpy(work, rec, (size_t)n + 1);
	if (lg_apply(l, work) == -1) {
		/* Live records are well-formed: this is memory running out. */
		mt_log_c(&l->log, MT_LOG_ERR, "ledger %s: out of memory",
		    l->dir);
		l->failed = 1;
		return -1;
	}
	lg_file_append(l, rec, (size_t)n);
	return 0;
}
