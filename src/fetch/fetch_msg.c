/*
 * fetch_msg: one message from the wire to "done", in the order
 * doc/exactly-once.md prescribes, with intents grouped:
 *
 *   begin, write..., end     the copy is durable, not visible (a token)
 *   ... up to batch_max messages ended this way, then together:
 *   ledger intent for each, ONE ledger commit
 *   target commit, one by one  (each the commit point of its message)
 *   ledger done for each       (durable with the next commit)
 *
 * Every intent is durable before its message's commit point, which is
 * all the argument needs; grouping only shares the fsync. A commit that
 * fails is not guessed at: the target is asked (mt_deliver_recover) as
 * after a crash. While a message ends or a batch commits, the connection
 * is paused, so at most one message is being received at a time and the
 * batch is never changed while it is committed.
 *
 * A batch is committed when it is full, when the protocol has fetched
 * everything, or FT_BATCH_WAIT_MS after its first message (a slow server
 * must not hold finished messages back).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fetch/fetch_int.h"

/* Why the connection is paused: any of these. */
#define P_END	0x1
#define P_FLUSH	0x2
#define P_DRAIN	0x4

static void flush(struct mt_fetch *j);

static void
pause_for(struct mt_fetch *j, unsigned why, int on)
{
	static const unsigned all = P_END | P_FLUSH | P_DRAIN;
	unsigned *mask = &j->pause_mask;

	*mask = on ? (*mask | why) : (*mask & ~why);
	if (j->conn_started && !j->ending)
		ft_conn_pause(&j->conn, (*mask & all) != 0);
}

static void
key_of(const struct mt_fetch *j, const struct ft_msg *m, char *buf,
    size_t size)
{
	if (j->c.proto == MT_FETCH_POP3)
		snprintf(buf, size, "%s", m->uidl);
	else
		snprintf(buf, size, "%" PRIu32, m->uid);
}

int
ft_job_msg_begin(struct mt_fetch *j, struct ft_msg *m)
{
	struct mt_deliver_meta meta;
	char uid[80], key[MT_DELIVER_KEY_MAX + 1];

	if (j->ending)
		return -1;
	if (j->stop_fetching || m->state != FT_M_TODO)
		return 1;
	key_of(j, m, uid, sizeof(uid));
	if (mt_deliver_make_key(key, sizeof(key), j->account, j->folder,
	    j->uidvalidity, uid) == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "cannot make a delivery "
		    "key");
		return -1;
	}
	memset(&meta, 0, sizeof(meta));
	meta.account = j->account;
	meta.folder = j->folder;
	meta.uid = uid;
	meta.key = key;
	meta.size = m->size;
	meta.date = m->date;
	memset(&j->cur, 0, sizeof(j->cur));
	if ((j->cur.dm = mt_deliver_begin(j->target, &meta)) == NULL) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot start a delivery");
		return -1;
	}
	j->cur.m = m;
	ft_hdrscan_init(&j->cur.hs);
	return 0;
}

static void
drained(void *arg)
{
	pause_for(arg, P_DRAIN, 0);
}

void
ft_job_msg_data(struct mt_fetch *j, const char *p, size_t n)
{
	struct ft_cur *cur = &j->cur;

	if (cur->m == NULL || n == 0)
		return;
	cur->bytes += n;
	if (j->c.proto == MT_FETCH_IMAP && !ft_hdrscan_done(&cur->hs))
		ft_hdrscan_feed(&cur->hs, p, n);
	if (cur->dead)
		return;
	if (mt_deliver_write(cur->dm, p, n) == -1) {
		cur->dead = 1;		/* end reports why */
		return;
	}
	if (mt_deliver_pending(cur->dm) > FT_DELIVER_HIGH) {
		pause_for(j, P_DRAIN, 1);
		mt_deliver_on_drain(cur->dm, FT_DELIVER_LOW, drained, j);
	}
}

static void
batch_timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct mt_fetch *j = arg;
	struct timeval tv = { 0, FT_BATCH_WAIT_MS * 1000 };

	(void)fd;
	(void)what;
	if (j->ending || j->flushing || j->nbatch == 0)
		return;
	if (j->cur.ending) {
		evtimer_add(j->batch_timer, &tv);
		return;
	}
	flush(j);
}

static void
arm_batch_timer(struct mt_fetch *j)
{
	struct timeval tv = { 0, FT_BATCH_WAIT_MS * 1000 };

	if (j->batch_timer == NULL &&
	    (j->batch_timer = evtimer_new(j->base, batch_timer_fired, j)) ==
	    NULL) {
		flush(j);
		return;
	}
	if (!evtimer_pending(j->batch_timer, NULL))
		evtimer_add(j->batch_timer, &tv);
}

/* The target refused a message: count it, maybe stop. */
static void
refused(struct mt_fetch *j, struct ft_msg *m, enum mt_deliver_status st,
    const char *reason)
{
	m->state = FT_M_FAILED;
	j->folder_errors = 1;
	j->idone++;
	if (st == MT_DELIVER_TEMPFAIL) {
		ft_job_note(j, MT_FETCH_TEMPFAIL, reason ? reason :
		    "delivery failed");
		j->stop_fetching = 1;
		return;
	}
	j->res.failed++;
	ft_job_note(j, MT_FETCH_DELIVERY, reason ? reason : "delivery failed");
	if (++j->consecutive_failures >= 3 && !j->stop_fetching) {
		mt_log_c(&j->log, MT_LOG_ERR, "the target refused %u messages "
		    "in a row; not fetching more in this run",
		    j->consecutive_failures);
		j->stop_fetching = 1;
	}
}

static void
ended(void *arg, enum mt_deliver_status st, const char *token,
    const char *reason)
{
	struct mt_fetch *j = arg;
	struct ft_cur *cur = &j->cur;
	struct ft_prep *p;
	const char *id, *date;

	cur->ending = 0;
	if (st != MT_DELIVER_OK) {
		refused(j, cur->m, st, reason);
		memset(cur, 0, sizeof(*cur));
	} else {
		p = &j->batch[j->nbatch++];
		p->m = cur->m;
		p->dm = cur->dm;
		p->bytes = cur->bytes;
		p->fp = 0;
		id = ft_hdrscan_message_id(&cur->hs);
		date = ft_hdrscan_date(&cur->hs);
		if (j->c.proto == MT_FETCH_IMAP)
			p->fp = mt_ledger_fingerprint(id, date, cur->m->size);
		snprintf(p->token, sizeof(p->token), "%s", token);
		memset(cur, 0, sizeof(*cur));
	}
	if (j->nbatch > 0 && (j->nbatch >= j->batch_max || j->fetched)) {
		pause_for(j, P_END, 0);
		flush(j);
		return;
	}
	if (j->nbatch > 0)
		arm_batch_timer(j);
	pause_for(j, P_END, 0);
	if (j->fetched && !j->flushing)
		flush(j);
}

void
ft_job_msg_end(struct mt_fetch *j, int complete)
{
	struct ft_cur *cur = &j->cur;

	if (cur->m == NULL)
		return;
	if (!complete) {
		mt_deliver_abort(cur->dm);
		cur->m->state = FT_M_GONE;
		j->idone++;
		memset(cur, 0, sizeof(*cur));
		return;
	}
	pause_for(j, P_END, 1);
	pause_for(j, P_DRAIN, 0);
	cur->ending = 1;
	mt_deliver_end(cur->dm, ended, j);
}

/* ---- the batch ---- */

static void after_flush(struct mt_fetch *j);
static void commit_next(struct mt_fetch *j);

static void
delivered(struct mt_fetch *j, struct ft_prep *p)
{
	char key[80];

	key_of(j, p->m, key, sizeof(key));
	if (mt_ledger_done(j->lf, key, 0) == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot record a delivery");
		return;
	}
	p->m->state = FT_M_OK;
	j->res.delivered++;
	j->res.bytes += p->bytes;
	j->idone++;
	j->consecutive_failures = 0;
	ft_job_progress(j);
}

static void
verdict(void *arg, enum mt_deliver_verdict v, const char *reason)
{
	struct mt_fetch *j = arg;
	struct ft_prep *p = &j->batch[j->icommit];
	char key[80], **nv;

	key_of(j, p->m, key, sizeof(key));
	if (v == MT_DELIVER_DELIVERED) {
		delivered(j, p);
	} else if (v == MT_DELIVER_NOT_DELIVERED) {
		nv = realloc(j->abandoned, (j->nabandoned + 1) * sizeof(*nv));
		if (nv != NULL)
			j->abandoned = nv;
		if (nv == NULL || mt_ledger_abandon(j->lf, key) == -1) {
			ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "cannot record an "
			    "abandoned delivery");
			return;
		}
		j->abandoned[j->nabandoned++] = strdup(p->token);
		refused(j, p->m, MT_DELIVER_TEMPFAIL, reason);
	} else {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot tell whether a "
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
		delivered(j, p);
		j->icommit++;
		commit_next(j);
		return;
	}
	/* Do not guess: ask the target, as after a crash. */
	key_of(j, p->m, uid, sizeof(uid));
	if (mt_deliver_make_key(key, sizeof(key), j->account, j->folder,
	    j->uidvalidity, uid) == -1 ||
	    mt_deliver_recover(j->target, key, p->token, verdict, j) == -1)
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot check a failed "
		    "delivery");
}

static void
commit_next(struct mt_fetch *j)
{
	if (j->ending)
		return;
	if (j->icommit == j->nbatch) {
		j->nbatch = j->icommit = 0;
		after_flush(j);
		return;
	}
	mt_deliver_commit(j->batch[j->icommit].dm, committed, j);
}

static void
flush(struct mt_fetch *j)
{
	char key[80];
	size_t i;

	if (j->flushing || j->ending)
		return;
	if (j->batch_timer != NULL)
		evtimer_del(j->batch_timer);
	j->flushing = 1;
	pause_for(j, P_FLUSH, 1);
	for (i = 0; i < j->nbatch; i++) {
		key_of(j, j->batch[i].m, key, sizeof(key));
		if (mt_ledger_intent(j->lf, key, j->batch[i].token,
		    j->batch[i].fp) == -1) {
			ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot record a "
			    "delivery");
			return;
		}
	}
	/* One fsync for the intents of the batch (and the last dones). */
	if (mt_ledger_commit(j->ledger) == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot save the fetch "
		    "state");
		return;
	}
	j->icommit = 0;
	commit_next(j);
}

/* Discard what was abandoned, once the abandon is durable. */
static int
discard_abandoned(struct mt_fetch *j)
{
	if (j->nabandoned == 0)
		return 0;
	if (mt_ledger_commit(j->ledger) == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot save the fetch "
		    "state");
		return -1;
	}
	while (j->nabandoned > 0) {
		char *t = j->abandoned[--j->nabandoned];

		if (t != NULL)
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
	pause_for(j, P_FLUSH, 0);
	if (j->fetched && j->cur.m == NULL) {
		ft_job_step(j);
		return;
	}
}

void
ft_job_fetch_done(struct mt_fetch *j)
{
	j->fetched = 1;
	if (j->cur.m != NULL || j->flushing)
		return;			/* ended() or after_flush() goes on */
	if (j->nbatch > 0) {
		flush(j);
		return;
	}
	ft_job_step(j);
}

int
ft_job_stop_fetching(const struct mt_fetch *j)
{
	return j->stop_fetching || j->ending;
}

void
ft_job_msg_abort_all(struct mt_fetch *j)
{
	size_t i;

	if (j->batch_timer != NULL)
		evtimer_del(j->batch_timer);
	if (j->cur.dm != NULL)
		mt_deliver_abort(j->cur.dm);
	memset(&j->cur, 0, sizeof(j->cur));
	for (i = 0; i < j->nbatch; i++)
		if (j->batch[i].dm != NULL)
			mt_deliver_abort(j->batch[i].dm);
	j->nbatch = j->icommit = 0;
	j->flushing = 0;
}
