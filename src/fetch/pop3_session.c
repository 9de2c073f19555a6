/*
 * pop3_session: after the login - UIDL and LIST, RETR in a window of
 * pipelined commands, DELE, QUIT. See pop3_client.h.
 *
 * Deletion (RFC 1939): DELE only marks; the server removes the marked
 * messages when it answers QUIT with +OK, and only then does the ledger
 * record them deleted. A connection that ends another way deletes nothing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "fetch/pop3_client.h"

static int
pipelining(struct mt_fetch *j)
{
	struct p3 *p = p3_of(j);

	return p->capa_known && (p->capa.flags & MT_POP3_CAPA_PIPELINING);
}

/*
 * UIDL first, LIST only when something is new: sizes matter only for
 * messages still to fetch (maxSize, progress), and a server works out
 * every message's size for LIST, which would make a run with nothing new
 * pay for the whole mailbox.
 */
void
p3_list(struct mt_fetch *j)
{
	ft_queue(j, "UIDL");
	p3_push(j, P3_C_UIDL, 0);
	ft_conn_flush(&j->conn);
}

static int
any_new(struct mt_fetch *j)
{
	struct mt_ledger_entry e;
	size_t i;

	if (j->first_run && j->c.first_run == MT_FETCH_FIRST_NEW)
		return 0;
	for (i = 0; i < j->nmsgs; i++)
		if (mt_ledger_lookup(j->lf, j->msgs[i].uidl, &e) != 1 ||
		    !(e.flags & (MT_LEDGER_DELIVERED | MT_LEDGER_SEEN)))
			return 1;
	return 0;
}

int
p3_listing_line(struct mt_fetch *j, enum p3_cmd cmd, const char *line,
    size_t len)
{
	unsigned long num;
	uint64_t size;
	const char *uid, *why;
	size_t uidlen;

	if (cmd == P3_C_UIDL) {
		if (mt_pop3_uidl_parse(line, len, &num, &uid, &uidlen,
		    &why) == -1 || num == 0 || num > FT_MAX_MESSAGES)
			goto bad;
		return ft_job_listed_uidl(j, (uint32_t)num, uid, uidlen);
	}
	if (mt_pop3_list_parse(line, len, &num, &size, &why) == -1 ||
	    num == 0 || num > FT_MAX_MESSAGES)
		goto bad;
	return ft_job_listed_size(j, (uint32_t)num, size);

bad:
	ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "malformed %s line from %s: %s",
	    cmd == P3_C_UIDL ? "UIDL" : "LIST", j->c.host,
	    why != NULL ? why : "message number out of range");
	return -1;
}

static int
by_num(const void *a, const void *b)
{
	const struct ft_msg *x = a, *y = b;

	return x->num < y->num ? -1 : x->num > y->num;
}

void
p3_listing_end(struct mt_fetch *j, enum p3_cmd cmd)
{
	size_t i;

	if (cmd == P3_C_UIDL) {
		if (j->nmsgs > 1)
			qsort(j->msgs, j->nmsgs, sizeof(*j->msgs), by_num);
		for (i = 1; i < j->nmsgs; i++)
			if (j->msgs[i].num == j->msgs[i - 1].num) {
				ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "%s listed "
				    "message %u twice", j->c.host,
				    j->msgs[i].num);
				return;
			}
		if (any_new(j)) {
			ft_send(j, "LIST");
			p3_push(j, P3_C_LIST, 0);
			return;
		}
	}
	mt_log_c(&j->log, MT_LOG_DEBUG, "%s lists %zu messages", j->c.host,
	    j->nmsgs);
	ft_job_step(j);
}

/* ---- RETR ---- */

static int
emit(void *arg, const char *data, size_t len)
{
	struct mt_fetch *j = arg;

	if (!p3_of(j)->body_skip)
		ft_job_msg_data(j, data, len);
	return 0;
}

/* Keep the window of RETRs (or DELEs) full. */
static void
refill(struct mt_fetch *j, enum p3_cmd cmd)
{
	struct p3 *p = p3_of(j);
	size_t window = !pipelining(j) ? 1 : cmd == P3_C_RETR ?
	    P3_RETR_WINDOW : P3_DELE_WINDOW;
	struct ft_msg *m;
	int queued = 0;

	while (p->outstanding < window && p->next < j->nmsgs &&
	    !(cmd == P3_C_RETR && ft_job_stop_fetching(j))) {
		m = &j->msgs[p->next];
		if (cmd == P3_C_RETR ? m->state == FT_M_TODO : m->dele) {
			ft_queue(j, "%s %u", cmd == P3_C_RETR ? "RETR" : "DELE",
			    m->num);
			p3_push(j, cmd, (uint32_t)p->next);
			p->outstanding++;
			queued = 1;
		}
		p->next++;
	}
	if (queued)
		ft_conn_flush(&j->conn);
	if (p->outstanding > 0)
		return;
	if (cmd == P3_C_RETR)
		ft_job_fetch_done(j);
	else
		ft_job_step(j);
}

void
p3_fetch(struct mt_fetch *j)
{
	struct p3 *p = p3_of(j);

	p->next = 0;
	p->outstanding = 0;
	refill(j, P3_C_RETR);
}

void
p3_remove(struct mt_fetch *j)
{
	struct p3 *p = p3_of(j);

	j->deleting = 1;
	p->next = 0;
	p->outstanding = 0;
	refill(j, P3_C_DELE);
}

void
p3_logout(struct mt_fetch *j)
{
	p3_of(j)->quitting = 1;
	ft_send(j, "QUIT");
	p3_push(j, P3_C_QUIT, 0);
}

int
p3_retr_body(struct mt_fetch *j)
{
	struct p3 *p = p3_of(j);
	struct evbuffer_iovec v;
	const char *why;
	size_t used;
	int r;

	while (!j->conn.paused && !j->ending) {
		if (evbuffer_peek(j->conn.in, -1, NULL, &v, 1) < 1 ||
		    v.iov_len == 0)
			return 0;
		r = mt_pop3_ml_feed(&p->ml, v.iov_base, v.iov_len, &used, &why);
		evbuffer_drain(j->conn.in, used);
		if (r == 1)
			return 1;
		if (r == -1) {
			ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "cannot read a "
			    "message from %s: %s", j->c.host, why);
			return -1;
		}
	}
	return 0;
}

void
p3_retr_ended(struct mt_fetch *j, const struct p3_out *o)
{
	struct p3 *p = p3_of(j);

	(void)o;
	p->outstanding--;
	if (!p->body_skip)
		ft_job_msg_end(j, 1);
	if (!j->ending)
		refill(j, P3_C_RETR);
}

static void
retr_refused(struct mt_fetch *j, struct ft_msg *m,
    const struct mt_pop3_status_line *st)
{
	char text[256];

	mt_log_c(&j->log, MT_LOG_WARNING, "%s would not send message %u "
	    "(UIDL %s): %s; it is tried again next time", j->c.host, m->num,
	    m->uidl, ft_printable(st->text, st->text_len, text, sizeof(text)));
	m->state = FT_M_GONE;
	j->folder_errors = 1;
	j->idone++;
	if (p3_failure(st, MT_FETCH_OK) == MT_FETCH_TEMPFAIL)
		ft_job_note(j, MT_FETCH_TEMPFAIL, "the server would not send a "
		    "message");
}

static int
retr_reply(struct mt_fetch *j, const struct p3_out *o,
    const struct mt_pop3_status_line *st)
{
	struct p3 *p = p3_of(j);
	struct ft_msg *m = &j->msgs[o->idx];
	int r;

	if (st->status != MT_POP3_OK) {
		retr_refused(j, m, st);
		p->outstanding--;
		refill(j, P3_C_RETR);
		return 0;
	}
	if ((r = ft_job_msg_begin(j, m)) == -1)
		return -1;
	p->body_skip = r == 1;
	mt_pop3_ml_init(&p->ml, MT_POP3_EOL_ASIS, emit, j);
	return 0;
}

int
p3_session_reply(struct mt_fetch *j, const struct p3_out *o,
    const struct mt_pop3_status_line *st, const char *line, size_t len)
{
	struct p3 *p = p3_of(j);
	int ok = st->status == MT_POP3_OK;
	char text[256];

	switch (o->cmd) {
	case P3_C_UIDL:
	case P3_C_LIST:
		if (ok)
			return 0;
		ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "%s refused %s (%s); "
		    "mailtunnel needs it to fetch each message once",
		    j->c.host, o->cmd == P3_C_UIDL ? "UIDL" : "LIST",
		    ft_printable(line, len, text, sizeof(text)));
		return -1;
	case P3_C_RETR:
		return retr_reply(j, o, st);
	case P3_C_DELE:
		if (!ok) {
			mt_log_c(&j->log, MT_LOG_WARNING, "%s would not delete "
			    "message %u: %s", j->c.host, j->msgs[o->idx].num,
			    ft_printable(line, len, text, sizeof(text)));
			j->msgs[o->idx].dele = 0;
		}
		p->outstanding--;
		refill(j, P3_C_DELE);
		return 0;
	case P3_C_QUIT:
		if (ok && j->deleting)
			ft_job_expunged(j);
		else if (!ok && j->deleting)
			mt_log_c(&j->log, MT_LOG_WARNING, "%s answered QUIT with "
			    "an error; the messages marked for deletion may "
			    "still be there: %s", j->c.host,
			    ft_printable(line, len, text, sizeof(text)));
		ft_job_step(j);
		return 0;
	default:
		return 0;
	}
}
