/*
 * fetch_policy: what a run does with the messages a folder lists - which
 * are new, which are too big, which an earlier UIDVALIDITY already
 * delivered, which to delete - and the bookkeeping of the listing.
 *
 * POP3 keeps the whole listing (message numbers are needed for RETR and
 * DELE, and the UIDLs for forgetting what the server no longer has). IMAP
 * keeps only the UIDs that are not done; deletion works on UID ranges.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fetch/fetch_int.h"

void
ft_job_folder_reset(struct mt_fetch *j)
{
	size_t i;

	for (i = 0; i < j->nmsgs; i++)
		free(j->msgs[i].uidl);
	free(j->msgs);
	j->msgs = NULL;
	j->nmsgs = j->capmsgs = 0;
	free(j->redelete);
	j->redelete = NULL;
	j->nredelete = j->capredelete = 0;
	j->ntodo = j->idone = 0;
	j->todo_bytes = 0;
	j->folder_errors = 0;
	j->lf = NULL;
	j->uidvalidity = j->uidnext = j->exists = 0;
}

static struct ft_msg *
add_msg(struct mt_fetch *j)
{
	struct ft_msg *v;
	size_t cap;

	if (j->nmsgs == j->capmsgs) {
		if (j->capmsgs >= FT_MAX_MESSAGES) {
			ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "the server lists "
			    "more than %d messages", FT_MAX_MESSAGES);
			return NULL;
		}
		cap = j->capmsgs ? j->capmsgs * 2 : 256;
		if ((v = realloc(j->msgs, cap * sizeof(*v))) == NULL) {
			ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
			return NULL;
		}
		j->msgs = v;
		j->capmsgs = cap;
	}
	v = &j->msgs[j->nmsgs++];
	memset(v, 0, sizeof(*v));
	return v;
}

int
ft_range_add(struct ft_range **v, size_t *n, size_t *cap, uint32_t uid)
{
	struct ft_range *nv;

	if (*n > 0 && (*v)[*n - 1].hi + 1 == uid) {
		(*v)[*n - 1].hi = uid;
		return 0;
	}
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;

		if ((nv = realloc(*v, c * sizeof(*nv))) == NULL)
			return -1;
		*v = nv;
		*cap = c;
	}
	(*v)[*n].lo = (*v)[*n].hi = uid;
	(*n)++;
	return 0;
}

int
ft_job_listed_uidl(struct mt_fetch *j, uint32_t num, const char *uidl,
    size_t len)
{
	struct ft_msg *m;

	if ((m = add_msg(j)) == NULL)
		return -1;
	m->num = num;
	if ((m->uidl = strndup(uidl, len)) == NULL) {
		j->nmsgs--;
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return -1;
	}
	j->res.listed++;
	return 0;
}

static struct ft_msg *
find_num(struct mt_fetch *j, uint32_t num)
{
	size_t lo = 0, hi = j->nmsgs, mid;

	if (num >= 1 && num <= j->nmsgs && j->msgs[num - 1].num == num)
		return &j->msgs[num - 1];
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (j->msgs[mid].num == num)
			return &j->msgs[mid];
		if (j->msgs[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int
ft_job_listed_size(struct mt_fetch *j, uint32_t num, uint64_t size)
{
	struct ft_msg *m = find_num(j, num);

	if (m != NULL)
		m->size = size;
	return 0;
}

int
ft_job_listed_uid(struct mt_fetch *j, uint32_t uid)
{
	struct mt_ledger_entry e;
	struct ft_msg *m;
	char key[16];

	j->res.listed++;
	snprintf(key, sizeof(key), "%" PRIu32, uid);
	if (mt_ledger_lookup(j->lf, key, &e) == 1 &&
	    (e.flags & (MT_LEDGER_DELIVERED | MT_LEDGER_SEEN))) {
		/* Deleted by us, yet still there: the deletion did not
		 * take; do it again. */
		if ((e.flags & MT_LEDGER_DELETED) && j->c.delete &&
		    ft_range_add(&j->redelete, &j->nredelete,
		    &j->capredelete, uid) == -1) {
			ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
			return -1;
		}
		return 0;
	}
	if ((m = add_msg(j)) == NULL)
		return -1;
	m->uid = uid;
	m->state = FT_M_TODO;
	return 0;
}

struct ft_msg *
ft_job_find_uid(struct mt_fetch *j, uint32_t uid)
{
	size_t lo = 0, hi = j->nmsgs, mid;

	/* UIDs are listed in ascending order. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (j->msgs[mid].uid == uid)
			return &j->msgs[mid];
		if (j->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const char *
msg_name(const struct mt_fetch *j, const struct ft_msg *m, char *buf,
    size_t size)
{
	if (j->c.proto == MT_FETCH_POP3)
		snprintf(buf, size, "%u (UIDL %s)", m->num, m->uidl);
	else
		snprintf(buf, size, "UID %" PRIu32 " in %s", m->uid, j->folder);
	return buf;
}

/* Skip what is too big; count what is left to fetch. */
static void
count_todo(struct mt_fetch *j)
{
	char name[128];
	size_t i;

	j->ntodo = 0;
	j->todo_bytes = 0;
	for (i = 0; i < j->nmsgs; i++) {
		struct ft_msg *m = &j->msgs[i];

		if (m->state != FT_M_TODO)
			continue;
		if (j->c.max_size > 0 && m->size > j->c.max_size) {
			m->state = FT_M_SKIP;
			j->res.skipped++;
			mt_log_c(&j->log, MT_LOG_NOTICE, "message %s has %" PRIu64
			    " bytes, more than the maximum of %" PRIu64 ": "
			    "skipped (it stays on the server)", msg_name(j, m,
			    name, sizeof(name)), m->size, j->c.max_size);
			continue;
		}
		j->ntodo++;
		j->todo_bytes += m->size;
	}
}

static int
plan_pop3(struct mt_fetch *j)
{
	const char **uidls;
	size_t i;

	if ((uidls = calloc(j->nmsgs + 1, sizeof(*uidls))) == NULL) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return -1;
	}
	for (i = 0; i < j->nmsgs; i++)
		uidls[i] = j->msgs[i].uidl;
	if (j->first_run && j->c.first_run == MT_FETCH_FIRST_NEW) {
		if (mt_ledger_mark_seen_uidls(j->lf, uidls, j->nmsgs) == -1)
			goto fail;
		mt_log_c(&j->log, MT_LOG_NOTICE, "%s: first run: the %zu "
		    "messages on the server are taken as seen; only new mail "
		    "will be fetched", j->account, j->nmsgs);
	}
	for (i = 0; i < j->nmsgs; i++) {
		struct mt_ledger_entry e;
		struct ft_msg *m = &j->msgs[i];

		if (mt_ledger_lookup(j->lf, m->uidl, &e) == 1 &&
		    (e.flags & (MT_LEDGER_DELIVERED | MT_LEDGER_SEEN))) {
			m->dele = (e.flags & MT_LEDGER_DELETED) && j->c.delete;
			continue;
		}
		m->state = FT_M_TODO;
		j->res.fresh++;
	}
	if (mt_ledger_forget_missing(j->lf, uidls, j->nmsgs) == -1)
		goto fail;
	free(uidls);
	count_todo(j);
	return 0;

fail:
	free(uidls);
	ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot record the listing");
	return -1;
}

int
ft_job_plan(struct mt_fetch *j)
{
	if (j->c.proto == MT_FETCH_POP3)
		return plan_pop3(j) == -1 ? -1 : 0;
	j->res.fresh += j->nmsgs;
	if (j->nmsgs > 0 && (j->c.max_size > 0 ||
	    mt_ledger_revalidating(j->lf)))
		return 1;
	count_todo(j);
	return 0;
}

int
ft_job_plan_details(struct mt_fetch *j)
{
	char key[16];
	size_t i;
	int r, revalidating = mt_ledger_revalidating(j->lf);

	/* Asked once: matching the last old fingerprint ends revalidation,
	 * and what comes after it is still worth the warning. */
	for (i = 0; i < j->nmsgs && revalidating; i++) {
		struct ft_msg *m = &j->msgs[i];

		if (m->state != FT_M_TODO)
			continue;
		if (m->fp == 0) {
			mt_log_c(&j->log, MT_LOG_WARNING, "UID %" PRIu32 " in "
			    "%s has no Message-ID: after the UIDVALIDITY change "
			    "it is delivered again and may be a duplicate",
			    m->uid, j->folder);
			continue;
		}
		snprintf(key, sizeof(key), "%" PRIu32, m->uid);
		if (!mt_ledger_revalidating(j->lf))
			continue;
		if ((r = mt_ledger_match(j->lf, key, m->fp)) == -1) {
			ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot record "
			    "a recognised message");
			return -1;
		}
		if (r == 1) {
			m->state = FT_M_DONE;
			j->res.matched++;
			j->res.fresh--;
		}
	}
	count_todo(j);
	return 0;
}

static int
due_imap(void *arg, const char *uidl, uint32_t lo, uint32_t hi,
    time_t delivered)
{
	struct mt_fetch *j = arg;

	(void)uidl;
	(void)delivered;
	if (ft_range_add(&j->redelete, &j->nredelete, &j->capredelete,
	    lo) == -1)
		return 1;
	if (hi > j->redelete[j->nredelete - 1].hi)
		j->redelete[j->nredelete - 1].hi = hi;
	return 0;
}

static int
by_uidl(const void *a, const void *b)
{
	const struct ft_msg *const *x = a, *const *y = b;

	return strcmp((*x)->uidl, (*y)->uidl);
}

struct due_pop3 {
	struct ft_msg **index;
	size_t n;
};

static int
due_pop3(void *arg, const char *uidl, uint32_t lo, uint32_t hi,
    time_t delivered)
{
	struct due_pop3 *d = arg;
	struct ft_msg key, *kp = &key, **hit;

	(void)lo;
	(void)hi;
	(void)delivered;
	key.uidl = (char *)uidl;
	hit = bsearch(&kp, d->index, d->n, sizeof(*d->index), by_uidl);
	if (hit != NULL)
		(*hit)->dele = 1;
	return 0;
}

static long
deletion_pop3(struct mt_fetch *j, time_t now)
{
	struct due_pop3 d;
	size_t i;
	long n = 0;
	int rc;

	if ((d.index = calloc(j->nmsgs + 1, sizeof(*d.index))) == NULL) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return -1;
	}
	for (i = 0; i < j->nmsgs; i++)
		d.index[i] = &j->msgs[i];
	d.n = j->nmsgs;
	if (d.n > 1)
		qsort(d.index, d.n, sizeof(*d.index), by_uidl);
	rc = mt_ledger_due_for_deletion(j->lf, now, j->c.keep_seconds,
	    due_pop3, &d);
	free(d.index);
	if (rc != 0) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot read the fetch "
		    "state");
		return -1;
	}
	for (i = 0; i < j->nmsgs; i++)
		n += j->msgs[i].dele;
	return n;
}

long
ft_job_plan_deletion(struct mt_fetch *j)
{
	time_t now = time(NULL);
	size_t i;
	long n = 0;
	int rc;

	if (j->c.proto == MT_FETCH_POP3)
		return deletion_pop3(j, now);
	/* Commits first: only durable deliveries are listed. */
	rc = mt_ledger_due_for_deletion(j->lf, now, j->c.keep_seconds,
	    due_imap, j);
	if (rc != 0) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, rc == -1, "%s", rc == -1 ?
		    "cannot read the fetch state" : "out of memory");
		return -1;
	}
	for (i = 0; i < j->nredelete; i++)
		n += (long)(j->redelete[i].hi - j->redelete[i].lo) + 1;
	return n;
}

void
ft_job_expunged(struct mt_fetch *j)
{
	size_t i;
	int rc = 0;

	if (j->lf == NULL)
		return;
	if (j->c.proto == MT_FETCH_POP3) {
		for (i = 0; i < j->nmsgs && rc == 0; i++)
			if (j->msgs[i].dele) {
				rc = mt_ledger_mark_deleted(j->lf,
				    j->msgs[i].uidl);
				j->res.deleted++;
			}
	} else {
		for (i = 0; i < j->nredelete && rc == 0; i++)
			rc = mt_ledger_mark_deleted_uids(j->lf,
			    j->redelete[i].lo, j->redelete[i].hi);
	}
	if (rc == -1 || mt_ledger_commit(j->ledger) == -1)
		ft_job_note(j, MT_FETCH_TEMPFAIL, "cannot save the fetch state");
}
