/*
 * deliver_smtp: smtp://, smtp+starttls://, smtps://, lmtp://,
 * lmtp+starttls:// and lmtp:/SOCKET - delivery to an internal mail server.
 * This file holds the targets' operations, the queue of messages and
 * backpressure; the connection and the dialogue are in deliver_smtp_conn.c
 * and deliver_smtp_proto.c (see deliver_smtp.h).
 *
 * The two phases:
 *   begin/write  the header block is collected (64 KiB at most) while the
 *                message is dot-stuffed into the message's buffer; once
 *                the header is complete the transaction opens (MAIL FROM
 *                from Return-Path or the options, RCPT TO from the
 *                configured header or the options, DATA) and the bytes
 *                stream to the server as fast as it takes them
 *   end          everything has been written to the socket except the
 *                final ".": token = "<kind>:<where>#<pid>.<n>"
 *   (caller: ledger intent)
 *   commit       send ".", wait for the reply       COMMIT POINT
 *                (LMTP: one reply per recipient; there is one recipient)
 * Recovery: what happened to a token in this process is remembered
 * (RM_RECENT of them): the dot never left, or the server refused it - not
 * delivered; it left and no answer came - the server may have it. For
 * that case and for any token from before a restart, the verdict is "not
 * delivered", with a warning: the message is sent again and may arrive
 * twice. That window (between the final dot and the ledger's "done") is
 * the one every SMTP client has (RFC 1047); losing mail is worse.
 *
 * Every callback to the caller (settling end or commit, drain) runs from
 * an event of the message's own, never from inside the connection code.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "fetch/deliver_smtp.h"
#include "mailtunnel/net.h"
#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"

/* Per message: a deferred settle and a deferred drain. */
struct rm_defer {
	struct event *ev;
	int settle;			/* 1: settle with rc */
	int rc;
	int drain;
};

struct rm_msg_ex {
	struct rm_msg rm;
	struct rm_defer d;
	int dot_sent;
};

static struct rm_msg_ex *
ex_of(struct rm_msg *rm)
{
	return (struct rm_msg_ex *)rm;
}

/* ---- opening ---- */

/* A TLS context: verified for STARTTLS and implicit TLS, else not. */
static struct mt_tls_ctx *
tls_context(struct mt_deliver *t, const struct rm_spec *sp, char *err,
    size_t errsz)
{
	struct mt_config_report report = { 0 };
	struct mt_service_conf svc;
	struct mt_tls_ctx *ctx;
	char *names[1];

	memset(&svc, 0, sizeof(svc));
	svc.name = t->spec;
	svc.client = 1;
	svc.tls.verify_chain = (sp->tls != RM_TLS_MAY);
	svc.tls.ca_file = (char *)t->opts.tls_ca_file;
	if (t->opts.tls_check_host != NULL) {
		names[0] = (char *)t->opts.tls_check_host;
		svc.tls.check_host.v = names;
		svc.tls.check_host.n = 1;
	}
	if ((ctx = mt_tls_ctx_new(&svc, &report)) == NULL)
		snprintf(err, errsz, "%s: %s", t->spec, report.n > 0 ?
		    report.v[0].msg : "cannot set up TLS");
	mt_config_report_free(&report);
	return ctx;
}

/* The options smtp and lmtp need, checked now rather than per message. */
static int
check_opts(struct mt_deliver *t, char *err, size_t errsz)
{
	const struct mt_deliver_opts *o = &t->opts;
	char addr[DL_ADDR_MAX + 1];

	if (o->recipient == NULL && o->recipient_header == NULL) {
		snprintf(err, errsz, "%s: no envelope recipient: set a recipient "
		    "or a header to take it from (such as Delivered-To)",
		    t->spec);
		return -1;
	}
	if (o->recipient != NULL && (dl_addr_option(o->recipient, addr,
	    sizeof(addr)) == -1 || addr[0] == '\0')) {
		snprintf(err, errsz, "%s: invalid recipient \"%s\"", t->spec,
		    o->recipient);
		return -1;
	}
	if (o->sender != NULL && (dl_addr_option(o->sender, addr,
	    sizeof(addr)) == -1 || (addr[0] != '\0' && !strchr(addr, '@')))) {
		snprintf(err, errsz, "%s: invalid sender \"%s\"", t->spec,
		    o->sender);
		return -1;
	}
	if (o->helo_name != NULL && !mt_config_ehlo_name_valid(o->helo_name)) {
		snprintf(err, errsz, "%s: invalid EHLO name \"%s\"", t->spec,
		    o->helo_name);
		return -1;
	}
	return 0;
}

static void on_kick(evutil_socket_t fd, short what, void *arg);

static void rm_close(struct mt_deliver *t);

static int
rm_open_parts(struct mt_deliver *t, const char *arg, char *err, size_t errsz)
{
	struct rm_target *rt;

	if ((rt = calloc(1, sizeof(*rt))) == NULL)
		goto oom;
	t->priv = rt;
	rt->t = t;
	if (rm_spec_parse(t->ops->scheme, arg, &rt->spec, err, errsz) == -1 ||
	    check_opts(t, err, errsz) == -1)
		return -1;
	if (t->opts.no_starttls && rt->spec.tls == RM_TLS_MAY)
		rt->spec.tls = RM_TLS_NONE;
	rt->timeout_ms = t->opts.smtp_timeout_ms ? t->opts.smtp_timeout_ms :
	    RM_TIMEOUT_MS;
	if (t->opts.helo_name != NULL)
		mt_strlcpy(rt->helo, t->opts.helo_name, sizeof(rt->helo));
	if (rt->spec.tls != RM_TLS_NONE &&
	    (rt->tls = tls_context(t, &rt->spec, err, errsz)) == NULL)
		return -1;
	rt->dns = t->opts.dns;
	if (rt->dns == NULL && rt->spec.host[0] != '\0' &&
	    !mt_net_is_ip(rt->spec.host)) {
		rt->dns = evdns_base_new(t->base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS |
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		rt->own_dns = 1;
		if (rt->dns == NULL) {
			snprintf(err, errsz, "%s: cannot set up the resolver",
			    t->spec);
			return -1;
		}
	}
	if ((rt->kick = event_new(t->base, -1, 0, on_kick, rt)) == NULL ||
	    rm_conn_init(rt) == -1)
		goto oom;
	return 0;

oom:
	snprintf(err, errsz, "out of memory");
	return -1;
}

static int
rm_open(struct mt_deliver *t, const char *arg, char *err, size_t errsz)
{
	if (rm_open_parts(t, arg, err, errsz) == 0)
		return 0;
	rm_close(t);
	t->priv = NULL;
	return -1;
}

static void
rm_close(struct mt_deliver *t)
{
	struct rm_target *rt = t->priv;

	if (rt == NULL)
		return;
	if (rt->c.in != NULL && rt->c.out != NULL)
		rm_conn_close(rt, 1);
	if (rt->kick != NULL)
		event_free(rt->kick);
	if (rt->c.timer != NULL)
		event_free(rt->c.timer);
	if (rt->c.in != NULL)
		evbuffer_free(rt->c.in);
	if (rt->c.out != NULL)
		evbuffer_free(rt->c.out);
	if (rt->own_dns)
		evdns_base_free(rt->dns, 1);
	mt_tls_ctx_free(rt->tls);
	free(rt);
}

/* ---- the queue and the caller's callbacks ---- */

void
rm_kick(struct rm_target *rt)
{
	event_active(rt->kick, 0, 0);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct rm_target *rt = arg;
	struct rm_msg *rm = rt->head;

	(void)fd;
	(void)what;
	if (rm == NULL)
		return;
	switch (rt->c.state) {
	case RS_DOWN:
		if (!rm->broken && (rm->ready || !rt->lazy))
			rm_conn_start(rt);
		break;
	case RS_IDLE:
		if (rm->ready) {
			rt->lazy = 0;
			rm_proto_begin(rt, rm);
		}
		break;
	case RS_BODY:
		rm_proto_body(rt);
		break;
	default:
		break;
	}
}

size_t
rm_pending(const struct rm_msg *rm)
{
	return evbuffer_get_length(rm->data);
}

static void
on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct rm_msg_ex *x = arg;
	struct mt_deliver_msg *m = x->rm.m;

	(void)fd;
	(void)what;
	if (x->d.settle) {
		x->d.settle = 0;
		x->d.drain = 0;
		dl_settle(m, x->d.rc);	/* may free x */
		return;
	}
	if (x->d.drain && m->drain != NULL) {
		x->d.drain = 0;
		m->drain(m->drainarg);	/* may free x */
	}
}

static void
settle_later(struct rm_msg *rm, int rc)
{
	struct rm_msg_ex *x = ex_of(rm);

	x->d.settle = 1;
	x->d.rc = rc;
	event_active(x->d.ev, 0, 0);
}

void
rm_drain_check(struct rm_msg *rm)
{
	struct mt_deliver_msg *m = rm->m;

	m->pending = rm_pending(rm);
	if (!rm->armed || m->drain == NULL || m->pending > m->lowat)
		return;
	rm->armed = 0;
	ex_of(rm)->d.drain = 1;
	event_active(ex_of(rm)->d.ev, 0, 0);
}

void
rm_dequeue(struct rm_msg *rm)
{
	struct rm_msg **pp;

	if (!rm->queued)
		return;
	for (pp = &rm->rt->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == rm) {
			*pp = rm->next;
			break;
		}
	rm->queued = 0;
	rm->next = NULL;
	evbuffer_drain(rm->data, evbuffer_get_length(rm->data));
	if (rm->rt->head != NULL)
		rm_kick(rm->rt);
}

void
rm_remember(struct rm_target *rt, const char *token,
    enum rm_outcome_kind kind)
{
	struct rm_outcome *o = NULL;
	unsigned i, n = rt->nrecent < RM_RECENT ? rt->nrecent : RM_RECENT;

	if (token == NULL || token[0] == '\0')
		return;
	for (i = 0; i < n && o == NULL; i++)
		if (strcmp(rt->recent[i].token, token) == 0)
			o = &rt->recent[i];
	if (o == NULL) {
		o = &rt->recent[rt->nrecent++ % RM_RECENT];
		mt_strlcpy(o->token, token, sizeof(o->token));
	}
	o->kind = kind;
}

void
rm_msg_fail(struct rm_msg *rm, int kind, const char *reason)
{
	struct mt_deliver_msg *m = rm->m;

	dl_fail(m, kind, "%s", reason);
	rm_dequeue(rm);
	if (m->token[0] != '\0' && !ex_of(rm)->dot_sent)
		rm_remember(rm->rt, m->token, RO_NOT_SENT);
	m->pending = 0;
	if (m->phase == DL_ENDING || m->phase == DL_COMMITTING)
		settle_later(rm, -1);
	else
		rm_drain_check(rm);
}

/* ---- operations ---- */

static int
rm_begin(struct mt_deliver_msg *m)
{
	struct rm_target *rt = m->t->priv;
	struct rm_msg_ex *x;
	struct rm_msg **pp;

	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (x->rm.data = evbuffer_new()) == NULL ||
	    (x->d.ev = event_new(m->t->base, -1, 0, on_defer, x)) == NULL) {
		if (x != NULL && x->rm.data != NULL)
			evbuffer_free(x->rm.data);
		free(x);
		dl_fail(m, ENOMEM, "%s", rt->spec.where);
		return -1;
	}
	x->rm.m = m;
	x->rm.rt = rt;
	m->priv = x;
	for (pp = &rt->head; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = &x->rm;
	x->rm.queued = 1;
	rm_kick(rt);			/* connect while the message comes */
	return 0;
}

static int
rm_write(struct mt_deliver_msg *m, const char *p, size_t n)
{
	struct rm_msg *rm = m->priv;
	int rc;

	if (rm == NULL || !rm->queued)
		return -1;
	if (!rm->ready && (rc = dl_hdr_feed(&rm->hdr, p, n)) != 0) {
		if (rc == -1) {
			rm_msg_fail(rm, ENOMEM, "out of memory for the header");
			return -1;
		}
		rm->ready = 1;
		rm_kick(rm->rt);
	}
	if (rm_dot_write(&rm->dot, rm->data, p, n) == -1) {
		rm_msg_fail(rm, ENOMEM, "out of memory");
		return -1;
	}
	m->pending = rm_pending(rm);
	if (m->pending > RM_PENDING_MAX) {
		rm_msg_fail(rm, -1, "more than 16 MiB waiting for the server: "
		    "the fetcher does not wait for it to drain");
		return -1;
	}
	if (m->pending > m->lowat)
		rm->armed = 1;
	if (rm == rm->rt->head && rm->rt->c.state == RS_BODY)
		rm_kick(rm->rt);
	return 0;
}

static int
rm_end(struct mt_deliver_msg *m)
{
	struct rm_msg *rm = m->priv;

	if (rm == NULL || !rm->queued)
		return -1;
	rm->ready = 1;
	rm->ended = 1;
	if (rm_dot_finish(&rm->dot, rm->data) == -1) {
		dl_fail(m, ENOMEM, "out of memory");
		return -1;
	}
	rm_kick(rm->rt);
	return DL_WAIT;
}

/* From deliver_smtp_proto.c once everything but the dot is out. */
void
rm_prepared(struct rm_msg *rm)
{
	struct rm_target *rt = rm->rt;

	snprintf(rm->m->token, sizeof(rm->m->token), "%s:%s#%ld.%llu",
	    rt->spec.kind == RM_LMTP ? "lmtp" : "smtp", rt->spec.where,
	    (long)getpid(), ++rt->seq);
	settle_later(rm, 0);
}

/* From deliver_smtp_proto.c: the reply to the dot. */
void
rm_committed(struct rm_msg *rm, int kind, const char *reason)
{
	struct mt_deliver_msg *m = rm->m;

	rm_remember(rm->rt, m->token, reason == NULL ? RO_ACCEPTED :
	    RO_REFUSED);
	if (reason != NULL) {
		rm_msg_fail(rm, kind, reason);
		return;
	}
	rm_dequeue(rm);
	settle_later(rm, 0);
}

static int
rm_commit(struct mt_deliver_msg *m)
{
	struct rm_msg *rm = m->priv;
	struct rm_target *rt = m->t->priv;

	/* A close seen but not yet handled: do not send the dot into it. */
	if (rm != NULL && !rm->broken && rt->c.up &&
	    (rt->c.s.at_eof || rt->c.s.rdhup))
		rm->broken = 1;
	if (rm == NULL || rm->broken || !rm->queued || rt->head != rm ||
	    rt->c.state != RS_PREPARED) {
		rm_remember(rt, m->token, RO_NOT_SENT);
		if (rm != NULL)
			rm_dequeue(rm);
		dl_fail(m, -1, "the connection to %s was lost before the end "
		    "of the message was sent; not delivered", rt->spec.where);
		return -1;
	}
	ex_of(rm)->dot_sent = 1;
	rm_remember(rt, m->token, RO_UNCERTAIN);
	if (rm_send(rt, RS_DOT, ".\r\n") == -1)
		return DL_WAIT;		/* rm_conn_fail() settles it */
	rm_conn_wait(rt, rt->timeout_ms * 2);
	return DL_WAIT;
}

static void
rm_release(struct mt_deliver_msg *m)
{
	struct rm_msg_ex *x = m->priv;
	struct rm_target *rt = m->t->priv;

	if (x == NULL)
		return;
	if (x->rm.queued && rt->head == &x->rm && rt->c.state >= RS_RSET) {
		/* A transaction cannot be taken back half-way. */
		if (!x->dot_sent)
			rm_remember(rt, m->token, RO_NOT_SENT);
		rm_conn_close(rt, 0);
	} else if (m->token[0] != '\0' && !x->dot_sent) {
		rm_remember(rt, m->token, RO_NOT_SENT);
	}
	rm_dequeue(&x->rm);
	dl_hdr_free(&x->rm.hdr);
	evbuffer_free(x->rm.data);
	event_free(x->d.ev);
	free(x);
	m->priv = NULL;
}

static int
rm_recover(struct dl_rec *r)
{
	struct rm_target *rt = r->t->priv;
	unsigned i, n = rt->nrecent < RM_RECENT ? rt->nrecent : RM_RECENT;

	for (i = 0; i < n; i++) {
		if (strcmp(rt->recent[i].token, r->token) != 0)
			continue;
		if (rt->recent[i].kind == RO_ACCEPTED) {
			dl_verdict(r, MT_DELIVER_DELIVERED, 0, NULL);
			return 0;
		}
		if (rt->recent[i].kind != RO_UNCERTAIN) {
			dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, NULL);
			return 0;
		}
		break;
	}
	snprintf(r->reason, sizeof(r->reason), "%s: the server may have "
	    "accepted the message before %s; it is sent again and may "
	    "arrive twice", rt->spec.where, i < n ? "the connection was lost" :
	    "mailtunnel stopped");
	mt_log_c(&r->t->log, MT_LOG_WARNING, "recovering %s: %s", r->key,
	    r->reason);
	dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, NULL);
	return 0;
}

static int
rm_discard(struct mt_deliver *t, const char *token)
{
	(void)t;
	(void)token;
	return 0;			/* nothing of ours is left anywhere */
}

#define RM_OPS(name, sch) \
const struct dl_ops name = { \
	.scheme = sch, \
	.open = rm_open, \
	.close = rm_close, \
	.begin = rm_begin, \
	.end = rm_end, \
	.commit = rm_commit, \
	.release = rm_release, \
	.recover = rm_recover, \
	.discard = rm_discard, \
	.write = rm_write, \
	.lf = 0, \
	.quote = 0, \
}

RM_OPS(mt_deliver_smtp_ops, "smtp");
RM_OPS(mt_deliver_smtp_starttls_ops, "smtp+starttls");
RM_OPS(mt_deliver_smtps_ops, "smtps");
RM_OPS(mt_deliver_lmtp_ops, "lmtp");
RM_OPS(mt_deliver_lmtp_starttls_ops, "lmtp+starttls");
