/*
 * deliver_smtp_proto: the SMTP/LMTP dialogue of a target's connection,
 * one command at a time (a few round trips on a local network cost less
 * than the fsyncs around each message):
 *
 *   greeting 220 -> EHLO (LHLO) -> [STARTTLS -> 220 -> TLS -> EHLO again]
 *   -> idle; per message: [RSET] -> MAIL FROM -> RCPT TO -> DATA 354 ->
 *   the message -> (end) ... (commit) "." -> 2xx / 4xx / 5xx -> idle
 *
 * A reply of 4xx makes the message TEMPFAIL, 5xx FAIL; the session goes
 * on for the next message (RSET first when a transaction was left open).
 * STARTTLS: required and verified with smtp+starttls:// (not offered is a
 * failure); taken when offered with smtp:// and lmtp://HOST, without
 * verifying the certificate (it keeps out passive listeners only; a
 * refused STARTTLS goes on in plaintext, a failed handshake does not).
 * Bytes that follow the server's "220" to STARTTLS in the same read are
 * plaintext injection, and end the connection.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "fetch/deliver_smtp.h"
#include "mailtunnel/starttls.h"

/* 5xx fails a message for good; anything else is worth another try. */
static int
kind_of(int code)
{
	return code >= 500 ? 0 : -1;
}

static const char *
verb(const struct rm_target *rt)
{
	return rt->spec.kind == RM_LMTP ? "LHLO" : "EHLO";
}

const char *
rm_proto_waiting_for(const struct rm_target *rt)
{
	switch (rt->c.state) {
	case RS_RESOLVING:	return "the server's address";
	case RS_CONNECTING:	return "the connection";
	case RS_TLS:		return "the TLS handshake";
	case RS_GREETING:	return "the greeting";
	case RS_EHLO:		return rt->spec.kind == RM_LMTP ?
				    "the LHLO reply" : "the EHLO reply";
	case RS_HELO:		return "the HELO reply";
	case RS_STARTTLS:	return "the STARTTLS reply";
	case RS_RSET:		return "the RSET reply";
	case RS_MAIL:		return "the MAIL FROM reply";
	case RS_RCPT:		return "the RCPT TO reply";
	case RS_DATA:		return "the DATA reply";
	case RS_BODY:		return "room to send the message";
	case RS_DOT:		return "the reply to the end of the message";
	default:		return "the next command";
	}
}

static void
send_hello(struct rm_target *rt)
{
	rt->c.caps = 0;
	rt->c.size_max = 0;
	rm_send(rt, RS_EHLO, "%s %s\r\n", verb(rt), rt->helo);
}

static void
after_hello(struct rm_target *rt)
{
	struct rm_conn *c = &rt->c;

	if (!c->tls_on && (rt->spec.tls == RM_TLS_MAY ||
	    rt->spec.tls == RM_TLS_STARTTLS)) {
		if ((c->caps & RM_CAP_STARTTLS) && !c->starttls_tried) {
			c->starttls_tried = 1;
			rm_send(rt, RS_STARTTLS, "STARTTLS\r\n");
			return;
		}
		if (rt->spec.tls == RM_TLS_STARTTLS) {
			rm_conn_fail(rt, 0, 0, "%s does not offer STARTTLS, "
			    "which %s+starttls:// requires", rt->spec.where,
			    rt->spec.kind == RM_LMTP ? "lmtp" : "smtp");
			return;
		}
	}
	c->state = RS_IDLE;
	rm_conn_wait(rt, 0);
	rm_kick(rt);
}

void
rm_proto_tls_up(struct rm_target *rt)
{
	if (!rt->c.starttls_tried) {
		rt->c.state = RS_GREETING;	/* implicit TLS */
		rm_conn_wait(rt, rt->timeout_ms);
		return;
	}
	send_hello(rt);			/* RFC 3207: forget, ask again */
}

static void
starttls_reply(struct rm_target *rt, const struct rm_reply *r)
{
	size_t n = evbuffer_get_length(rt->c.in);
	char phrase[400];

	if (r->code == 220 && n > 0) {
		mt_starttls_injection_phrase(MT_PROTO_SMTP,
		    evbuffer_pullup(rt->c.in, -1), n, 0, phrase, sizeof(phrase));
		rm_conn_fail(rt, 0, 0, "%s: %s", rt->spec.where, phrase);
		return;
	}
	if (r->code == 220) {
		rm_conn_tls(rt);
		return;
	}
	if (rt->spec.tls == RM_TLS_MAY) {
		mt_log_c(&rt->t->log, MT_LOG_NOTICE, "%s refused STARTTLS (%d "
		    "%s); going on without TLS", rt->spec.where, r->code,
		    r->text);
		after_hello(rt);
		return;
	}
	rm_conn_fail(rt, kind_of(r->code), 0, "%s refused STARTTLS: %d %s",
	    rt->spec.where, r->code, r->text);
}

static void
send_mail(struct rm_target *rt, struct rm_msg *rm)
{
	char size[40] = "";

	if ((rt->c.caps & RM_CAP_SIZE) && rm->m->size > 0)
		snprintf(size, sizeof(size), " SIZE=%" PRIu64, rm->m->size);
	rm_send(rt, RS_MAIL, "MAIL FROM:<%s>%s%s\r\n", rm->env.sender, size,
	    (rt->c.caps & RM_CAP_8BITMIME) ? " BODY=8BITMIME" : "");
}

/* The transaction of rm may open: the header is known. */
void
rm_proto_begin(struct rm_target *rt, struct rm_msg *rm)
{
	char why[1280];
	const struct mt_deliver_opts *o = &rt->t->opts;

	dl_envelope_find(o, rm->m->sender, &rm->hdr, &rm->env);
	dl_hdr_free(&rm->hdr);
	if (rm->env.rcpt[0] == '\0') {
		snprintf(why, sizeof(why), "no envelope recipient: the message "
		    "has no usable %s header%s", o->recipient_header ?
		    o->recipient_header : "recipient", o->recipient_header &&
		    strchr(o->recipient_header, ',') ? "s" : "");
		rm_msg_fail(rm, 0, why);
		return;
	}
	if (rt->c.size_max > 0 && rm->m->size > rt->c.size_max) {
		snprintf(why, sizeof(why), "the message (%" PRIu64 " bytes) is "
		    "larger than %s accepts (%" PRIu64 " bytes)", rm->m->size,
		    rt->spec.where, rt->c.size_max);
		rm_msg_fail(rm, 0, why);
		return;
	}
	if (rt->c.dirty)
		rm_send(rt, RS_RSET, "RSET\r\n");
	else
		send_mail(rt, rm);
}

/* The server said no to a step of the transaction; the session goes on. */
static void
refused(struct rm_target *rt, struct rm_msg *rm, const struct rm_reply *r,
    const char *what)
{
	char why[1280];

	rt->c.dirty = 1;
	rt->c.state = RS_IDLE;
	rm_conn_wait(rt, 0);
	snprintf(why, sizeof(why), "%s refused %s: %d %s", rt->spec.where,
	    what, r->code, r->text);
	rm_msg_fail(rm, kind_of(r->code), why);
}

void
rm_proto_body(struct rm_target *rt)
{
	struct rm_conn *c = &rt->c;
	struct rm_msg *rm = rt->head;
	int progress = 0;
	ssize_t n;

	while (c->up && evbuffer_get_length(rm->data) > 0 &&
	    mt_stream_writable(&c->s)) {
		n = mt_stream_write(&c->s, rm->data);
		if (n == MT_STREAM_ERROR) {
			rm_conn_fail(rt, -1, 0, "cannot send the message to %s: "
			    "%s", rt->spec.where, mt_stream_why(&c->s));
			return;
		}
		if (n <= 0)
			break;
		progress = 1;
	}
	/* Time only the server's slowness, never the source's. */
	if (evbuffer_get_length(rm->data) == 0)
		rm_conn_wait(rt, 0);
	else if (progress || !evtimer_pending(c->timer, NULL))
		rm_conn_wait(rt, rt->timeout_ms);
	if (rm->ended && evbuffer_get_length(rm->data) == 0) {
		c->state = RS_PREPARED;
		rm_prepared(rm);
		return;
	}
	rm_drain_check(rm);
}

static void
dot_reply(struct rm_target *rt, struct rm_msg *rm, const struct rm_reply *r)
{
	char why[1280];

	rt->c.state = RS_IDLE;
	rt->c.used = 1;
	rm_conn_wait(rt, 0);
	if (r->code / 100 == 2) {
		mt_log_c(&rt->t->log, MT_LOG_INFO, "message %s: delivered to %s "
		    "for <%s>: %d %s", rm->m->uid, rt->spec.where, rm->env.rcpt,
		    r->code, r->text);
		rm_committed(rm, 0, NULL);
		return;
	}
	snprintf(why, sizeof(why), "%s refused the message for <%s>: %d %s",
	    rt->spec.where, rm->env.rcpt, r->code, r->text);
	rm_committed(rm, kind_of(r->code), why);
}

/* A reply when none was asked for. */
static void
unexpected(struct rm_target *rt, const struct rm_reply *r)
{
	if (rt->c.state == RS_IDLE)
		rm_conn_fail(rt, -1, 0, "%s ended the session: %d %s",
		    rt->spec.where, r->code, r->text);
	else
		rm_conn_fail(rt, kind_of(r->code), 0, "%s interrupted the "
		    "message: %d %s", rt->spec.where, r->code, r->text);
}

static void
transaction_reply(struct rm_target *rt, struct rm_msg *rm,
    const struct rm_reply *r)
{
	char what[DL_ADDR_MAX + 100];

	switch (rt->c.state) {
	case RS_RSET:
		if (r->code / 100 != 2) {
			rm_conn_fail(rt, -1, 0, "%s refused RSET: %d %s",
			    rt->spec.where, r->code, r->text);
			return;
		}
		rt->c.dirty = 0;
		send_mail(rt, rm);
		return;
	case RS_MAIL:
		if (r->code / 100 == 2) {
			rm_send(rt, RS_RCPT, "RCPT TO:<%s>\r\n", rm->env.rcpt);
			return;
		}
		snprintf(what, sizeof(what), "the sender <%s>", rm->env.sender);
		break;
	case RS_RCPT:
		if (r->code / 100 == 2) {
			rm_send(rt, RS_DATA, "DATA\r\n");
			return;
		}
		snprintf(what, sizeof(what), "the recipient <%s> (from %s)",
		    rm->env.rcpt, rm->env.rcpt_from);
		break;
	case RS_DATA:
		if (r->code == 354) {
			rt->c.state = RS_BODY;
			rm_conn_wait(rt, 0);
			rm_proto_body(rt);
			return;
		}
		snprintf(what, sizeof(what), "DATA");
		break;
	default:
		dot_reply(rt, rm, r);
		return;
	}
	refused(rt, rm, r, what);
}

void
rm_proto_reply(struct rm_target *rt, const struct rm_reply *r)
{
	struct rm_conn *c = &rt->c;

	switch (c->state) {
	case RS_GREETING:
		if (r->code == 220)
			send_hello(rt);
		else
			rm_conn_fail(rt, kind_of(r->code), 0, "%s refused the "
			    "session: %d %s", rt->spec.where, r->code, r->text);
		return;
	case RS_EHLO:
	case RS_HELO:
		if (r->code == 250) {
			c->caps = c->state == RS_EHLO ? r->caps : 0;
			c->size_max = c->state == RS_EHLO ? r->size_max : 0;
			after_hello(rt);
		} else if (c->state == RS_EHLO && rt->spec.kind == RM_SMTP &&
		    (r->code == 500 || r->code == 502)) {
			rm_send(rt, RS_HELO, "HELO %s\r\n", rt->helo);
		} else {
			rm_conn_fail(rt, kind_of(r->code), 0, "%s refused %s "
			    "%s: %d %s", rt->spec.where, c->state == RS_EHLO ?
			    verb(rt) : "HELO", rt->helo, r->code, r->text);
		}
		return;
	case RS_STARTTLS:
		starttls_reply(rt, r);
		return;
	case RS_RSET: case RS_MAIL: case RS_RCPT: case RS_DATA: case RS_DOT:
		if (rt->head == NULL)
			rm_conn_close(rt, 0);
		else
			transaction_reply(rt, rt->head, r);
		return;
	default:
		unexpected(rt, r);
		return;
	}
}
