/*
 * ledger_ops: the calls about the server side - first-run marking,
 * deletions, forgetting, and matching across a UIDVALIDITY change. See
 * include/mailtunnel/ledger.h.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fetch/ledger_priv.h"

#define MARK		0x100u		/* forget_missing: listed */

static int
want_kind(const struct mt_ledger_folder *f, enum mt_ledger_kind kind,
    const char *call)
{
	if (f->kind == kind)
		return 0;
	mt_log_c(&f->l->log, MT_LOG_ERR, "ledger: %s is for %s folders", call,
	    kind == MT_LEDGER_IMAP ? "IMAP" : "POP3");
	return -1;
}

int
mt_ledger_mark_seen_uids(struct mt_ledger_folder *f,
    const struct mt_ledger_range *r, size_t n)
{
	size_t i;

	if (want_kind(f, MT_LEDGER_IMAP, "mark_seen_uids") == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (r[i].lo == 0 || r[i].lo > r[i].hi) {
			mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: invalid "
			    "UID range %" PRIu32 ":%" PRIu32, f->name, r[i].lo,
			    r[i].hi);
			return -1;
		}
		if (lg_emit(f->l, "S %u %" PRIu32 ":%" PRIu32, f->id, r[i].lo,
		    r[i].hi) == -1)
			return -1;
	}
	return 0;
}

int
mt_ledger_mark_seen_uidls(struct mt_ledger_folder *f,
    const char *const *uidls, size_t n)
{
	char rec[4 * LG_UIDL_MAX];
	size_t i;

	if (want_kind(f, MT_LEDGER_POP3, "mark_seen_uidls") == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (lg_key_uidl(uidls[i]) == -1) {
			mt_log_c(&f->l->log, MT_LOG_ERR, "POP3: invalid UIDL "
			    "in the listing (1-70 printable characters)");
			return -1;
		}
		if (lg_pops_find(&f->pops, uidls[i]) != NULL)
			continue;
		if (lg_escape(rec, sizeof(rec), uidls[i]) == -1 ||
		    lg_emit(f->l, "S %u %s", f->id, rec) == -1)
			return -1;
	}
	return 0;
}

int
mt_ledger_mark_deleted(struct mt_ledger_folder *f, const char *key)
{
	char rec[4 * LG_UIDL_MAX];
	struct lg_pop *p;
	uint32_t uid;

	if (f->kind == MT_LEDGER_IMAP) {
		if (lg_key_uid(key, &uid) == -1) {
			mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: invalid "
			    "UID \"%.20s\"", f->name, key);
			return -1;
		}
		return mt_ledger_mark_deleted_uids(f, uid, uid);
	}
	if (lg_key_uidl(key) == -1 || lg_escape(rec, sizeof(rec), key) == -1) {
		mt_log_c(&f->l->log, MT_LOG_ERR, "POP3: invalid UIDL");
		return -1;
	}
	p = lg_pops_find(&f->pops, key);
	if (p == NULL || (p->flags & MT_LEDGER_DELETED))
		return 0;
	return lg_emit(f->l, "X %u %s", f->id, rec);
}

int
mt_ledger_mark_deleted_uids(struct mt_ledger_folder *f, uint32_t lo,
    uint32_t hi)
{
	if (want_kind(f, MT_LEDGER_IMAP, "mark_deleted_uids") == -1)
		return -1;
	if (lo == 0 || lo > hi) {
		mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: invalid UID range",
		    f->name);
		return -1;
	}
	return lg_emit(f->l, "X %u %" PRIu32 ":%" PRIu32, f->id, lo, hi);
}

static int
is_due(uint32_t flags, int64_t when, time_t now, uint64_t keep)
{
	return flags == MT_LEDGER_DELIVERED && (int64_t)now >= when &&
	    (uint64_t)((int64_t)now - when) >= keep;
}

int
mt_ledger_due_for_deletion(struct mt_ledger_folder *f, time_t now,
    uint64_t keep_seconds, mt_ledger_due_fn *fn, void *arg)
{
	const struct lg_range *r;
	const struct lg_pop *p;
	size_t i;
	int rc;

	/* Never hand out a delivery that is not durable yet. */
	if (mt_ledger_commit(f->l) == -1)
		return -1;
	for (i = 0; f->kind == MT_LEDGER_IMAP && i < f->ranges.n; i++) {
		r = &f->ranges.v[i];
		if (is_due(r->flags, r->time, now, keep_seconds) &&
		    (rc = fn(arg, NULL, r->lo, r->hi, (time_t)r->time)) != 0)
			return rc;
	}
	for (i = 0; f->kind == MT_LEDGER_POP3 && i < f->pops.cap; i++) {
		p = &f->pops.slots[i];
		if (p->uidl != NULL && is_due(p->flags, p->time, now,
		    keep_seconds) &&
		    (rc = fn(arg, p->uidl, 0, 0, (time_t)p->time)) != 0)
			return rc;
	}
	return 0;
}

/* The deleted UIDLs not marked listed, as a copy; clears the marks. */
static char **
unlisted(struct mt_ledger_folder *f, size_t *count)
{
	struct lg_pop *p;
	char **v;
	size_t i, n = 0;

	if ((v = calloc(f->pops.n + 1, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < f->pops.cap; i++) {
		p = &f->pops.slots[i];
		if (p->uidl == NULL)
			continue;
		if ((p->flags & (MT_LEDGER_DELETED | MARK)) == MT_LEDGER_DELETED &&
		    (v[n++] = strdup(p->uidl)) == NULL)
			n--;
		p->flags &= ~MARK;
	}
	*count = n;
	return v;
}

long
mt_ledger_forget_missing(struct mt_ledger_folder *f,
    const char *const *present, size_t n)
{
	struct lg_pop *p;
	char rec[4 * LG_UIDL_MAX], **gone;
	size_t i, ngone = 0;
	long rc = 0;

	if (want_kind(f, MT_LEDGER_POP3, "forget_missing") == -1)
		return -1;
	for (i = 0; i < n; i++)
		if ((p = lg_pops_find(&f->pops, present[i])) != NULL)
			p->flags |= MARK;
	if ((gone = unlisted(f, &ngone)) == NULL)
		return -1;
	for (i = 0; i < ngone; i++) {
		if (rc >= 0 && (lg_escape(rec, sizeof(rec), gone[i]) == -1 ||
		    lg_emit(f->l, "R %u %s", f->id, rec) == -1))
			rc = -1;
		else if (rc >= 0)
			rc++;
		free(gone[i]);
	}
	free(gone);
	return rc;
}

/* Trim ASCII white space at both ends: *p and *len are adjusted. */
static void
trim(const char **p, size_t *len)
{
	while (*len > 0 && strchr(" \t\r\n", (*p)[0]) != NULL) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && strchr(" \t\r\n", (*p)[*len - 1]) != NULL)
		(*len)--;
}

uint64_t
mt_ledger_fingerprint(const char *message_id, const char *date,
    uint64_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char sz[24];
	const char *m = message_id, *d = date ? date : "";
	size_t mlen = m ? strlen(m) : 0, dlen = strlen(d);
	uint64_t fp = 0;
	unsigned mdlen, i;
	EVP_MD_CTX *ctx;

	trim(&m, &mlen);
	trim(&d, &dlen);
	if (mlen == 0 || (ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	snprintf(sz, sizeof(sz), "%" PRIu64, size);
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, m, mlen) == 1 &&
	    EVP_DigestUpdate(ctx, "", 1) == 1 &&
	    EVP_DigestUpdate(ctx, d, dlen) == 1 &&
	    EVP_DigestUpdate(ctx, "", 1) == 1 &&
	    EVP_DigestUpdate(ctx, sz, strlen(sz)) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1)
		for (i = 0; i < 8; i++)
			fp = fp << 8 | md[i];
	EVP_MD_CTX_free(ctx);
	return fp != 0 ? fp : 1;
}

int
mt_ledger_revalidating(const struct mt_ledger_folder *f)
{
	return f->olds.live > 0;
}

int
mt_ledger_match(struct mt_ledger_folder *f, const char *key, uint64_t fp)
{
	struct mt_ledger_entry e;
	int64_t when;

	if (want_kind(f, MT_LEDGER_IMAP, "match") == -1 ||
	    mt_ledger_lookup(f, key, &e) == -1)
		return -1;
	if (e.flags & (MT_LEDGER_DELIVERED | MT_LEDGER_SEEN))
		return 1;
	if (e.flags & MT_LEDGER_PENDING) {
		mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: message %s has an "
		    "unresolved delivery; recover it first", f->name, key);
		return -1;
	}
	if (f->olds.live == 0)
		return 0;
	if (fp == 0) {
		mt_log_c(&f->l->log, MT_LOG_WARNING, "folder %s: UID %s has no "
		    "Message-ID to compare with the messages delivered before "
		    "the UIDVALIDITY change; delivering it (it may be one of "
		    "them)", f->name, key);
		return 0;
	}
	if (!lg_olds_take(&f->olds, fp, &when, 0))
		return 0;
	if (lg_emit(f->l, "M %u %s %" PRIx64 " %" PRId64, f->id, key, fp,
	    when) == -1)
		return -1;
	mt_log_c(&f->l->log, MT_LOG_INFO, "folder %s: UID %s has the Message-ID, "
	    "Date and size of a message delivered before the UIDVALIDITY "
	    "change; not delivering it again", f->name, key);
	return 1;
}

int
mt_ledger_retire_old(struct mt_ledger_folder *f)
{
	if (f->olds.n == 0)
		return 0;
	return lg_emit(f->l, "G %u", f->id);
}
