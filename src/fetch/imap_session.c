/*
 * imap_session: after the login - SELECT/EXAMINE, UID SEARCH, details
 * (RFC822.SIZE, INTERNALDATE, and the Message-ID and Date fields for
 * fingerprints), bodies in pipelined batches, deletion, LOGOUT. See
 * imap_client.h.
 *
 * Which message a body belongs to: the UID item, which we ask for first
 * and servers send before the body. A server that sends a body before its
 * UID in a batch loses that body (nothing is delivered) and the message is
 * asked for again alone, when the command itself names the UID.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/imap_client.h"
#include "fetch/imap_cmd.h"

#define BODY_ITEMS "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[])"
#define FP_ITEMS "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)])"

void
imc_select(struct mt_fetch *j, int writable)
{
	char box[2 * 4096];

	if (ft_imap_mailbox(box, sizeof(box), j->folder) == -1) {
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "folder name \"%.100s\" is "
		    "not valid UTF-8 or is too long", j->folder);
		return;
	}
	j->uidvalidity = j->uidnext = j->exists = 0;
	imc_send(j, IMC_SELECT, "%s %s", writable ? "SELECT" : "EXAMINE", box);
	ft_conn_flush(&j->conn);
}

void
imc_list(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);

	if (j->exists == 0) {
		ft_job_step(j);
		return;
	}
	imc_send(j, IMC_SEARCH, (p->caps & MT_IMAP_CAP_ESEARCH) ?
	    "UID SEARCH RETURN (ALL) ALL" : "UID SEARCH ALL");
	ft_conn_flush(&j->conn);
}

/* The next TODO messages from p->next into a UID set. */
static size_t
collect(struct mt_fetch *j, char *set, size_t size, size_t max_uids,
    uint64_t max_bytes)
{
	struct imc *p = imc_of(j);
	uint32_t uids[IMC_DETAILS_UIDS];
	uint64_t bytes = 0;
	size_t n = 0, start = p->next;

	if (max_uids > IMC_DETAILS_UIDS)
		max_uids = IMC_DETAILS_UIDS;
	while (p->next < j->nmsgs && n < max_uids && bytes < max_bytes) {
		struct ft_msg *m = &j->msgs[p->next];

		if (m->state == FT_M_TODO) {
			uids[n++] = m->uid;
			bytes += m->size;
		}
		p->next++;
	}
	/* A set that does not fit stops early; the rest comes next time. */
	if (n > 0 && ft_imap_uid_set(set, size, uids, n) < n) {
		size_t fit = ft_imap_uid_set(set, size, uids, n), k = 0;

		for (p->next = start; p->next < j->nmsgs && k < fit; p->next++)
			if (j->msgs[p->next].state == FT_M_TODO)
				k++;
		n = fit;
	}
	return n;
}

static void
details_more(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);
	struct imc_cmd *c;
	char set[IMC_SET_MAX];
	size_t first;

	while (p->outstanding < 4 && p->next < j->nmsgs) {
		first = p->next;
		if (collect(j, set, sizeof(set), IMC_DETAILS_UIDS,
		    UINT64_MAX) == 0)
			continue;
		c = imc_send(j, IMC_DETAILS, "UID FETCH %s %s", set,
		    p->want_fp ? FP_ITEMS : "(UID RFC822.SIZE)");
		if (c == NULL)
			return;
		c->first = first;
		c->end = p->next;
		p->outstanding++;
	}
	ft_conn_flush(&j->conn);
	if (p->outstanding == 0)
		ft_job_step(j);
}

void
imc_details(struct mt_fetch *j, int fp)
{
	struct imc *p = imc_of(j);

	p->want_fp = fp;
	p->next = 0;
	p->outstanding = 0;
	details_more(j);
}

static struct ft_msg *
find_index(struct mt_fetch *j, uint32_t uid, size_t *idx)
{
	struct ft_msg *m = ft_job_find_uid(j, uid);

	if (m != NULL)
		*idx = (size_t)(m - j->msgs);
	return m;
}

static void
bodies_more(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);
	struct imc_cmd *c;
	char set[IMC_SET_MAX];
	size_t first, idx;
	uint32_t uid;

	while (p->outstanding < IMC_BATCHES && !ft_job_stop_fetching(j)) {
		first = p->next;
		if (p->next < j->nmsgs) {
			if (collect(j, set, sizeof(set), IMC_BATCH_UIDS,
			    IMC_BATCH_BYTES) == 0)
				continue;
			if ((c = imc_send(j, IMC_BODIES, "UID FETCH %s "
			    BODY_ITEMS, set)) == NULL)
				return;
			c->first = first;
			c->end = p->next;
		} else if (p->iagain < p->nagain) {
			uid = p->again[p->iagain++];
			if (find_index(j, uid, &idx) == NULL)
				continue;
			if ((c = imc_send(j, IMC_BODIES, "UID FETCH %" PRIu32
			    " " BODY_ITEMS, uid)) == NULL)
				return;
			c->single = uid;
			c->first = idx;
			c->end = idx + 1;
		} else {
			break;
		}
		p->outstanding++;
	}
	ft_conn_flush(&j->conn);
	if (p->outstanding == 0)
		ft_job_fetch_done(j);
}

void
imc_fetch(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);

	p->next = 0;
	p->outstanding = 0;
	p->nagain = p->iagain = 0;
	p->uid_late = 0;
	bodies_more(j);
}

/* ---- deleting ---- */

static void
remove_more(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);
	struct imc_cmd *c;
	char set[IMC_SET_MAX];
	size_t first = p->rnext, n;

	if (p->rnext >= j->nredelete) {
		ft_job_expunged(j);
		ft_job_step(j);
		return;
	}
	n = ft_imap_range_set(set, sizeof(set), j->redelete + first,
	    j->nredelete - first);
	p->rnext = first + (n > 0 ? n : 1);
	if ((c = imc_send(j, IMC_STORE, "UID STORE %s +FLAGS.SILENT "
	    "(\\Deleted)", set)) == NULL)
		return;
	c->first = first;
	c->end = p->rnext;
	if ((p->caps & MT_IMAP_CAP_UIDPLUS))
		c = imc_send(j, IMC_EXPUNGE, "UID EXPUNGE %s", set);
	else
		c = imc_send(j, IMC_EXPUNGE, "EXPUNGE");
	if (c == NULL)
		return;
	c->first = first;
	c->end = p->rnext;
	p->store_failed = 0;
	ft_conn_flush(&j->conn);
}

void
imc_remove(struct mt_fetch *j)
{
	struct imc *p = imc_of(j);

	p->rnext = 0;
	p->expunged = 0;
	remove_more(j);
}

void
imc_logout(struct mt_fetch *j)
{
	imc_of(j)->logging_out = 1;
	imc_send(j, IMC_LOGOUT, "LOGOUT");
	ft_conn_flush(&j->conn);
}

/* Ranges [first, end) were not deleted: keep them out of the ledger. */
static void
not_deleted(struct mt_fetch *j, const struct imc_cmd *c,
    const struct mt_imap_event *ev, const char *what)
{
	char text[300];
	size_t i;

	mt_log_c(&j->log, MT_LOG_WARNING, "%s refused %s in %s: %s", j->c.host,
	    what, j->folder, imc_text(ev, text, sizeof(text)));
	for (i = c->first; i < c->end && i < j->nredelete; i++)
		j->redelete[i].lo = j->redelete[i].hi = 0;
}

/* ---- bodies ---- */

/* The DETAILS or BODIES command the server is answering. */
static const struct imc_cmd *
answering(struct imc *p)
{
	size_t i;

	for (i = 0; i < p->nq; i++)
		if (p->q[i].kind == IMC_DETAILS || p->q[i].kind == IMC_BODIES)
			return &p->q[i];
	return NULL;
}

static void
take_items(struct ft_msg *m, const struct mt_imap_fetch *f)
{
	time_t t;

	if (f->have & MT_IMAP_FETCH_SIZE)
		m->size = f->size;
	if ((f->have & MT_IMAP_FETCH_INTERNALDATE) &&
	    ft_imap_internaldate(f->internaldate, &t) == 0)
		m->date = t;
}

static int
body_begin(struct mt_fetch *j, const struct mt_imap_fetch *f)
{
	struct imc *p = imc_of(j);
	const struct imc_cmd *c = answering(p);
	struct ft_msg *m = NULL;
	uint32_t uid = 0;
	int r;

	p->bm = NULL;
	p->b_details = p->b_deliver = 0;
	if (c == NULL)
		return 0;		/* unsolicited: let it pass */
	if (f->have & MT_IMAP_FETCH_UID)
		uid = f->uid;
	else if (c->single != 0)
		uid = c->single;
	else
		p->uid_late = 1;
	if (uid == 0 || (m = ft_job_find_uid(j, uid)) == NULL || m->got ||
	    m->state != FT_M_TODO)
		return 0;
	p->bm = m;
	take_items(m, f);
	if (c->kind == IMC_DETAILS) {
		p->b_details = 1;
		ft_hdrscan_init(&p->hs);
		return 0;
	}
	m->got = 1;
	if ((r = ft_job_msg_begin(j, m)) == -1)
		return -1;
	p->b_deliver = r == 0;
	return 0;
}

static void
body_data(struct mt_fetch *j, const char *data, size_t len)
{
	struct imc *p = imc_of(j);

	if (p->bm == NULL)
		return;
	if (p->b_details)
		ft_hdrscan_feed(&p->hs, data, len);
	else if (p->b_deliver)
		ft_job_msg_data(j, data, len);
}

/* A tiny body sent as a quoted string rather than a literal. */
static int
inline_body(struct mt_fetch *j, struct ft_msg *m,
    const struct mt_imap_fetch *f)
{
	int r;

	m->got = 1;
	take_items(m, f);
	if ((r = ft_job_msg_begin(j, m)) != 0)
		return r == -1 ? -1 : 0;
	ft_job_msg_data(j, f->body_inline.p, f->body_inline.len);
	ft_job_msg_end(j, 1);
	return 0;
}

static int
fetch_complete(struct mt_fetch *j, const struct mt_imap_fetch *f)
{
	struct imc *p = imc_of(j);
	const struct imc_cmd *c = answering(p);
	struct ft_msg *m = p->bm;

	p->bm = NULL;
	if (m != NULL) {
		take_items(m, f);
		if (p->b_details) {
			m->fp = mt_ledger_fingerprint(
			    ft_hdrscan_message_id(&p->hs),
			    ft_hdrscan_date(&p->hs), m->size);
			m->have_fp = 1;
		} else if (p->b_deliver) {
			ft_job_msg_end(j, 1);
		}
		p->b_details = p->b_deliver = 0;
		return 0;
	}
	if (c == NULL || !(f->have & MT_IMAP_FETCH_UID) ||
	    (m = ft_job_find_uid(j, f->uid)) == NULL || m->state != FT_M_TODO)
		return 0;
	if (c->kind == IMC_DETAILS)
		take_items(m, f);
	else if (f->body_kind == MT_IMAP_BODY_INLINE && !m->got)
		return inline_body(j, m, f);
	return 0;
}

int
imc_session_event(struct mt_fetch *j, const struct mt_imap_event *ev)
{
	size_t i;
	uint32_t u;

	switch (ev->type) {
	case MT_IMAP_EV_STATUS:
		if (ev->code.kind == MT_IMAP_CODE_UIDVALIDITY)
			j->uidvalidity = ev->code.number;
		else if (ev->code.kind == MT_IMAP_CODE_UIDNEXT)
			j->uidnext = ev->code.number;
		return 0;
	case MT_IMAP_EV_EXISTS:
		j->exists = ev->number;
		return 0;
	case MT_IMAP_EV_EXPUNGE:
		imc_of(j)->expunged++;
		return 0;
	case MT_IMAP_EV_SEARCH:
	case MT_IMAP_EV_SEARCH_DONE:
		for (i = 0; i < ev->search.n; i++) {
			for (u = ev->search.r[i].lo; u != 0 &&
			    u <= ev->search.r[i].hi; u++) {
				if (j->res.listed >= FT_MAX_MESSAGES) {
					ft_job_fail(j, MT_FETCH_PROTOCOL, 0,
					    "%s lists more than %d messages",
					    j->c.host, FT_MAX_MESSAGES);
					return -1;
				}
				if (ft_job_listed_uid(j, u) == -1)
					return -1;
				if (u == UINT32_MAX)
					break;
			}
		}
		return 0;
	case MT_IMAP_EV_FETCH_BODY:
		return body_begin(j, &ev->fetch);
	case MT_IMAP_EV_FETCH_DATA:
		body_data(j, ev->data.p, ev->data.len);
		return 0;
	case MT_IMAP_EV_FETCH:
		return fetch_complete(j, &ev->fetch);
	default:
		return 0;
	}
}

/* ---- tagged completions ---- */

static int
by_uid(const void *a, const void *b)
{
	const struct ft_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static void
searched(struct mt_fetch *j)
{
	size_t i, n = 0;

	if (j->nmsgs > 1)
		qsort(j->msgs, j->nmsgs, sizeof(*j->msgs), by_uid);
	for (i = 0; i < j->nmsgs; i++)
		if (n == 0 || j->msgs[i].uid != j->msgs[n - 1].uid)
			j->msgs[n++] = j->msgs[i];
	j->nmsgs = n;
	ft_job_step(j);
}

/* A BODIES command ended: what it did not bring is gone, or asked again. */
static void
bodies_done(struct mt_fetch *j, const struct imc_cmd *c)
{
	struct imc *p = imc_of(j);
	uint32_t *nv;
	size_t i;

	for (i = c->first; i < c->end && i < j->nmsgs; i++) {
		struct ft_msg *m = &j->msgs[i];

		if (m->state != FT_M_TODO || m->got)
			continue;
		if (p->uid_late && c->single == 0) {
			if (p->nagain == p->capagain) {
				size_t cap = p->capagain ? 2 * p->capagain : 64;

				if ((nv = realloc(p->again, cap *
				    sizeof(*nv))) == NULL) {
					ft_job_fail(j, MT_FETCH_TEMPFAIL, 0,
					    "out of memory");
					return;
				}
				p->again = nv;
				p->capagain = cap;
			}
			p->again[p->nagain++] = m->uid;
			continue;
		}
		if (ft_job_stop_fetching(j))
			continue;
		mt_log_c(&j->log, MT_LOG_INFO, "UID %" PRIu32 " in %s is gone "
		    "from the server", m->uid, j->folder);
		m->state = FT_M_GONE;
		j->idone++;
	}
	p->outstanding--;
	bodies_more(j);
}

int
imc_session_done(struct mt_fetch *j, const struct imc_cmd *c,
    const struct mt_imap_event *ev)
{
	struct imc *p = imc_of(j);
	int ok = ev->status == MT_IMAP_OK;
	char text[300];

	if (ev->status == MT_IMAP_BAD && c->kind != IMC_STORE &&
	    c->kind != IMC_EXPUNGE && c->kind != IMC_LOGOUT) {
		ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "%s rejected a command: %s",
		    j->c.host, imc_text(ev, text, sizeof(text)));
		return -1;
	}
	switch (c->kind) {
	case IMC_SELECT:
		if (!ok) {
			ft_job_fail(j, imc_failure(ev, MT_FETCH_CONFIG), 0,
			    "cannot open folder %s: %s", j->folder,
			    imc_text(ev, text, sizeof(text)));
			return -1;
		}
		if (j->uidvalidity == 0) {
			ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "%s gave no "
			    "UIDVALIDITY for %s", j->c.host, j->folder);
			return -1;
		}
		mt_log_c(&j->log, MT_LOG_DEBUG, "%s: %" PRIu32 " messages, "
		    "UIDVALIDITY %" PRIu32 ", UIDNEXT %" PRIu32, j->folder,
		    j->exists, j->uidvalidity, j->uidnext);
		ft_job_step(j);
		return 0;
	case IMC_SEARCH:
		if (!ok) {
			ft_job_fail(j, imc_failure(ev, MT_FETCH_PROTOCOL), 0,
			    "%s refused UID SEARCH: %s", j->c.host,
			    imc_text(ev, text, sizeof(text)));
			return -1;
		}
		searched(j);
		return 0;
	case IMC_DETAILS:
		p->outstanding--;
		details_more(j);
		return 0;
	case IMC_BODIES:
		bodies_done(j, c);
		return 0;
	case IMC_STORE:
		if (!ok) {
			not_deleted(j, c, ev, "to flag messages \\Deleted");
			p->store_failed = 1;
		}
		return 0;
	case IMC_EXPUNGE:
		if (!ok && !p->store_failed)
			not_deleted(j, c, ev, "EXPUNGE");
		j->res.deleted += p->expunged;
		p->expunged = 0;
		remove_more(j);
		return 0;
	case IMC_LOGOUT:
		ft_job_step(j);
		return 0;
	default:
		return 0;
	}
}
