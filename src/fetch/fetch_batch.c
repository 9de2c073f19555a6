/*
 * fetch_batch: committing a batch of ended messages, in the order
 * doc/exactly-once.md prescribes:
 *
 *   (group: one sync for the ends)   every copy durable, none visible
 *   ledger intent for each, ONE ledger commit
 *   target commit for each           each message's commit point
 *   (group: one sync for the commits)
 *   ledger done for each             durable with the next ledger commit
 *
 * Every intent is durable before its message's commit point, which is
 * all the argument needs; batching only shares the fsyncs. Nothing is
 * recorded from a group before its sync said OK: a token is not named by
 * an intent before its copy is durable, and a done is not recorded before
 * the rename is. A failed group sync ends the run: ended copies that no
 * intent names are discarded, committed ones are settled by the next run's
 * recovery from their intents. Outside a group, a commit that fails is not
 * guessed at: the target is asked (mt_deliver_recover) as after a crash.
 *
 * The connection is paused while a batch commits, so the batch never
 * changes under it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fetch/fetch_int.h"

static void commit_next(struct mt_fetch *j);
static void after_flush(struct mt_fetch *j);

static void
delivered(struct mt_fetch *j, struct ft_prep *p)
{
	char key[80];

	ft_job_key(j, p->m, key, sizeof(key));
	if (mt_ledger_done(j->lf, key, 0) == -1) {
		ft_job_stop(j, MT_FETCH_TEMPFAIL, 1, "cannot record a delivery");
		return;
	}
	p->m->state = FT_M_OK;
	j->res.delivered++;
	j->res.bytes += p->bytes;
	j->idone++;
	j->consecutive_failures = 0;
	ft_job_progress(j);
}

/* Nothing of the batch is recorded: drop it, copies included. */
static void
drop_batch(struct mt_fetch *j)
{
	size_t i;

	for (i = 0; i < j->nbatch; i++) {
		if (j->batch[i].dm != NULL) {
			mt_deliver_abort(j->batch[i].dm);
			j->batch[i].dm = NULL;
			if (!j->intents_out)
				mt_deliver_discard(j->target, j->batch[i].token);
		}
	}
	j->nbatch = j->icommit = 0;
}

static void
finish_batch(struct mt_fetch *j)
{
	j->nbatch = j->icommit = 0;
	j->intents_out = 0;
	after_flush(j);
}

static void
verdict(void *arg, enum mt_deliver_verdict v, const char *reason)
{
	struct mt_fetch *j = arg;
	struct ft_prep *p = &j->batch[j->icommit];
	char key[80], **nv;

	if (j->ending)
		return;
	ft_job_key(j, p->m, key, sizeof(key));
	if (v == MT_DELIVER_DELIVERED) {
		delivered(j, p);
	} else if (v == MT_DELIVER_NOT_DELIVERED) {
		nv = realloc(j->abandoned, (j->nabandoned + 1) * sizeof(*nv));
		if (nv != NULL)
			j->abandoned = nv;
		if (nv == NULL || mt_ledger_abandon(j->lf, key) == -1 ||
		    (j->abandoned[j->nabandoned] = strdup(p->token)) == NULL) {
			ft_job_stop(j, MT_FETCH_TEMPFAIL, 0, "cannot record an "
			    "abandoned delivery");
			return;
		}
		j->nabandoned++;
		ft_job_refused(j, p->m, MT_DELIVER_TEMPFAIL, reason);
	} else {
		ft_job_stop(j, MT_FETCH_TEMPFAIL, 1, "cannot tell whether a "
		    "delivery went through; trying again next time");
		return;
	}
	j->icommit++;
	commit_next(j);
}

static void
committed(void *arg, enum mt_deliver_status st, const char *token,
    const char *reason)
{
	struct mt_fetch *j = arg;
	struct ft_prep *p = &j->batch[j->icommit];
	char key[MT_DELIVER_KEY_MAX + 1], uid[80];

	(void)token;
	(void)reason;
	p->dm = NULL;			/* freed when this returns */
	if (j->ending)
		return;
	if (st == MT_DELIVER_OK) {
		if (j->commit_group)
			p->committed = 1;	/* recorded after the sync */
		else
			delivered(j, p);
		j->icommit++;
		commit_next(j);
		return;
	}
	if (j->commit_group) {
		ft_job_stop(j, MT_FETCH_TEMPFAIL, 1, "a delivery failed; the "
		    "next run checks what became of it");
		return;
	}
	/* Do not guess: ask the target, as after a crash. */
	ft_job_key(j, p->m, uid, sizeof(uid));
	if (mt_deliver_make_key(key, sizeof(key), j->account, j->folder,
	    j->uidvalidity, uid) == -1 ||
	    mt_deliver_recover(j->target, key, p->token, verdict, j) == -1)
		ft_job_stop(j, MT_FETCH_TEMPFAIL, 1, "cannot check a failed "
		    "delivery");
}

static void
commits_synced(void *arg, enum mt_deliver_status st, const char *reason)
{
	struct mt_fetch *j = arg;
	size_t i;

	if (j->ending)
		return;
	if (st != MT_DELIVER_OK) {
		ft_job_stop(j, MT_FETCH_TEMPFAIL, 1, "%s; the next run checks "
		    "what became of the last deliveries", reason);
		return;
	}
	for (i = 0; i < j->nbatch && !j->ending; i++)
		if (j->batch[i].committed)
			delivered(j, &j->batch[i]);
	if (!j->ending)
		finish_batch(j);
}

static void
commit_next(struct mt_fetch *j)
{
	if (j->ending)
		return;
	if (j->icommit < j->nbatch) {
		mt_deliver_commit(j->batch[j->icommit].dm, committed, j);
		return;
	}
	if (j->commit_group) {
		j->commit_group = 0;
		mt_deliver_group_sync(j->target, commits_synced, j);
		return;
	}
	finish_batch(j);
}

static void
record_intents(struct mt_fetch *j)
{
	char key[80];
	size_t i;

	j->intents_out = 1;
	for (i = 0; i < j->nbatch; i++) {
		ft_job_key(j, j->batch[i].m, key, sizeof(key));
		if (mt_ledger_intent(j->lf, key, j->batch[i].token,
		    j->batch[i].fp) == -1) {
			ft_job_stop(j, MT_FETCH_TEMPFAIL, 1, "cannot record a "
			    "delivery");
			return;
		}
	}
	/* One fsync for the intents of the batch (and the last dones). */
	if (mt_ledger_commit(j->ledger) == -1) {
		ft_job_stop(j, MT_FETCH_TEMPFAIL, 1, "cannot save the fetch "
		    "state");
		return;
	}
	j->commit_group = !j->no_group && j->nbatch > 0 &&
	    mt_deliver_group_begin(j->target) == 0;
	j->icommit = 0;
	commit_next(j);
}

static void
ends_synced(void *arg, enum mt_deliver_status st, const char *reason)
{
	struct mt_fetch *j = arg;

	if (j->ending)
		return;
	if (st != MT_DELIVER_OK) {
		drop_batch(j);
		ft_job_stop(j, st == MT_DELIVER_TEMPFAIL ? MT_FETCH_TEMPFAIL :
		    MT_FETCH_DELIVERY, 1, "%s", reason);
		return;
	}
	record_intents(j);
}

void
ft_job_flush(struct mt_fetch *j)
{
	if (j->flushing || j->ending)
		return;
	if (j->batch_timer != NULL)
		evtimer_del(j->batch_timer);
	j->flushing = 1;
	ft_job_pause_for(j, FT_P_FLUSH, 1);
	if (j->group_open) {
		j->group_open = 0;
		mt_deliver_group_sync(j->target, ends_synced, j);
		return;
	}
	record_intents(j);
}

/* Discard what was abandoned, once the abandon is durable. */
static int
discard_abandoned(struct mt_fetch *j)
{
	if (j->nabandoned == 0)
		return 0;
	if (mt_ledger_commit(j->ledger) == -1) {
		ft_job_stop(j, MT_FETCH_TEMPFAIL, 1, "cannot save the fetch "
		    "state");
		return -1;
	}
	while (j->nabandoned > 0) {
		char *t = j->abandoned[--j->nabandoned];

		mt_deliver_discard(j->target, t);
		free(t);
	}
	return 0;
}

static void
after_flush(struct mt_fetch *j)
{
	j->flushing = 0;
	if (discard_abandoned(j) == -1)
		return;
	if (j->failing) {
		ft_job_finish(j);
		return;
	}
	ft_job_pause_for(j, FT_P_FLUSH, 0);
	if (j->fetched && j->cur.m == NULL)
		ft_job_step(j);
}

void
ft_job_fetch_done(struct mt_fetch *j)
{
	j->fetched = 1;
	if (j->cur.m != NULL || j->flushing)
		return;			/* ended() or after_flush() goes on */
	if (j->nbatch > 0) {
		ft_job_flush(j);
		return;
	}
	ft_job_step(j);
}

void
ft_job_msg_abort_all(struct mt_fetch *j)
{
	if (j->batch_timer != NULL)
		evtimer_del(j->batch_timer);
	if (j->cur.dm != NULL)
		mt_deliver_abort(j->cur.dm);
	memset(&j->cur, 0, sizeof(j->cur));
	/* Ended copies no intent can name go; the others wait for the
	 * next run's recovery. */
	drop_batch(j);
	j->flushing = 0;
	j->intents_out = 0;
	j->group_open = 0;
}
