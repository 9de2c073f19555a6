/*
 * fetch_msg: one message from the wire until it waits, ended, in the batch
 * (fetch_batch.c commits batches). A message is received into the target
 * (begin, write...), its header is watched for the fingerprint (IMAP), and
 * it is ended: the copy is complete, not visible, and carries a token.
 * While a message ends, the connection is paused, so at most one message
 * is received at a time. With a target that syncs in groups, the ends of a
 * batch form one group (mt_deliver_group_begin), synced when the batch is
 * committed.
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

void
ft_job_pause_for(struct mt_fetch *j, unsigned why, int on)
{
	static const unsigned all = FT_P_END | FT_P_FLUSH | FT_P_DRAIN;
	unsigned *mask = &j->pause_mask;

	*mask = on ? (*mask | why) : (*mask & ~why);
	if (j->conn_started && !j->ending && !j->failing)
		ft_conn_pause(&j->conn, (*mask & all) != 0);
}

void
ft_job_key(const struct mt_fetch *j, const struct ft_msg *m, char *buf,
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
	ft_job_key(j, m, uid, sizeof(uid));
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
	ft_job_pause_for(arg, FT_P_DRAIN, 0);
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
		ft_job_pause_for(j, FT_P_DRAIN, 1);
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
	ft_job_flush(j);
}

static void
arm_batch_timer(struct mt_fetch *j)
{
	struct timeval tv = { 0, FT_BATCH_WAIT_MS * 1000 };

	if (j->batch_timer == NULL &&
	    (j->batch_timer = evtimer_new(j->base, batch_timer_fired, j)) ==
	    NULL) {
		ft_job_flush(j);
		return;
	}
	if (!evtimer_pending(j->batch_timer, NULL))
		evtimer_add(j->batch_timer, &tv);
}

/* The target refused a message: count it, maybe stop. */
void
ft_job_refused(struct mt_fetch *j, struct ft_msg *m, enum mt_deliver_status st,
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
		ft_job_refused(j, cur->m, st, reason);
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
		ft_job_pause_for(j, FT_P_END, 0);
		ft_job_flush(j);
		return;
	}
	if (j->nbatch > 0)
		arm_batch_timer(j);
	ft_job_pause_for(j, FT_P_END, 0);
	if (j->fetched && !j->flushing)
		ft_job_flush(j);
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
	ft_job_pause_for(j, FT_P_END, 1);
	ft_job_pause_for(j, FT_P_DRAIN, 0);
	if (!j->no_group && !j->group_open) {
		if (mt_deliver_group_begin(j->target) == 0)
			j->group_open = 1;
		else
			j->no_group = 1;
	}
	cur->ending = 1;
	mt_deliver_end(cur->dm, ended, j);
}

int
ft_job_stop_fetching(const struct mt_fetch *j)
{
	return j->stop_fetching || j->ending;
}
