/*
 * fetch_recover: step 1 of doc/exactly-once.md. Before the server is
 * contacted, every intent a crash left without "done" or "abandoned" is
 * settled by asking the target whether its commit point was passed:
 * delivered -> done, not delivered -> abandoned (and the prepared copy
 * discarded once that is durable), unknown -> stop and try next time.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fetch/fetch_int.h"

static void next_pending(struct mt_fetch *j);

/* The delivery key the message was delivered under. */
static int
key_of(struct mt_fetch *j, const struct mt_ledger_pending *p, char *key,
    size_t size)
{
	const char *folder = mt_ledger_folder_name(p->folder);

	if (j->c.proto == MT_FETCH_POP3)
		folder = NULL;
	return mt_deliver_make_key(key, size, j->account, folder,
	    mt_ledger_folder_uidvalidity(p->folder), p->key);
}

static void
verdict(void *arg, enum mt_deliver_verdict v, const char *reason)
{
	struct mt_fetch *j = arg;
	struct mt_ledger_pending *p = &j->pend[j->ipend];
	char **nv;
	int rc;

	(void)reason;
	if (v == MT_DELIVER_UNKNOWN) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot tell whether an "
		    "interrupted delivery went through; trying again next time");
		return;
	}
	if (v == MT_DELIVER_DELIVERED) {
		rc = mt_ledger_done(p->folder, p->key, 0);
	} else {
		rc = mt_ledger_abandon(p->folder, p->key);
		nv = realloc(j->abandoned, (j->nabandoned + 1) * sizeof(*nv));
		if (nv == NULL) {
			rc = -1;
		} else {
			j->abandoned = nv;
			j->abandoned[j->nabandoned++] = p->token;
			p->token = NULL;
		}
	}
	if (rc == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "cannot record a settled "
		    "delivery");
		return;
	}
	j->res.recovered++;
	j->ipend++;
	next_pending(j);
}

static void
settled(struct mt_fetch *j)
{
	size_t i;

	if (mt_ledger_commit(j->ledger) == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot save the fetch "
		    "state");
		return;
	}
	/* Only now: the abandon records are durable. */
	for (i = 0; i < j->nabandoned; i++) {
		mt_deliver_discard(j->target, j->abandoned[i]);
		free(j->abandoned[i]);
	}
	j->nabandoned = 0;
	mt_ledger_pending_free(j->pend, j->npend);
	j->pend = NULL;
	j->npend = 0;
	ft_job_step(j);
}

static void
next_pending(struct mt_fetch *j)
{
	struct mt_ledger_pending *p;
	char key[MT_DELIVER_KEY_MAX + 1];

	if (j->ending)
		return;
	if (j->ipend == j->npend) {
		settled(j);
		return;
	}
	p = &j->pend[j->ipend];
	if (key_of(j, p, key, sizeof(key)) == -1 ||
	    mt_deliver_recover(j->target, key, p->token, verdict, j) == -1)
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot settle an "
		    "interrupted delivery");
}

void
ft_job_recover(struct mt_fetch *j)
{
	j->npend = mt_ledger_pending(j->ledger, &j->pend);
	if (j->npend < 0) {
		j->npend = 0;
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return;
	}
	if (j->npend > 0)
		mt_log_c(&j->log, MT_LOG_NOTICE, "%s: settling %ld %s "
		    "interrupted in an earlier run", j->account, j->npend,
		    j->npend == 1 ? "delivery" : "deliveries");
	j->ipend = 0;
	next_pending(j);
}
