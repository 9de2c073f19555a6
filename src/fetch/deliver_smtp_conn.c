/*
 * deliver_smtp_conn: the one connection of an smtp/lmtp target - name
 * resolution (evdns, never blocking), a non-blocking connect to each
 * address in turn (or to the unix socket), TLS, reading replies, writing
 * commands, the timer of every wait, and what a failure means for the
 * message at the head of the queue.
 *
 * The socket is an edge-triggered mt_stream (stream.h), the same layer the
 * tunnel uses: it brings TLS, STARTTLS (mt_stream_set_ssl on a live
 * stream) and the handshake's reasons. Data to the server goes straight
 * from the message's buffer to the socket.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/x509_vfy.h>

#include "fetch/deliver_smtp.h"
#include "mailtunnel/starttls.h"
#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"

static void on_stream(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void try_next(struct rm_target *rt);
static void handshake(struct rm_target *rt);

const char *
rm_name(const struct rm_target *rt)
{
	return rt->spec.where;
}

void
rm_conn_wait(struct rm_target *rt, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ms == 0) {
		evtimer_del(rt->c.timer);
		return;
	}
	evtimer_add(rt->c.timer, &tv);
}

int
rm_conn_init(struct rm_target *rt)
{
	if ((rt->c.timer = evtimer_new(rt->t->base, on_timer, rt)) == NULL ||
	    (rt->c.in = evbuffer_new()) == NULL ||
	    (rt->c.out = evbuffer_new()) == NULL)
		return -1;
	return 0;
}

static void
free_addrs(struct rm_conn *c)
{
	if (c->dns_req != NULL)
		evdns_getaddrinfo_cancel(c->dns_req);
	c->dns_req = NULL;
	if (c->ai != NULL)
		evutil_freeaddrinfo(c->ai);
	c->ai = c->next_ai = NULL;
}

void
rm_conn_close(struct rm_target *rt, int quit)
{
	struct rm_conn *c = &rt->c;

	if (c->up && quit && c->state == RS_IDLE) {
		/* Best effort: the server logs a clean end. */
		evbuffer_add(c->out, "QUIT\r\n", 6);
		if (mt_stream_writable(&c->s))
			mt_stream_write(&c->s, c->out);
	}
	if (c->up)
		mt_stream_close(&c->s);
	c->up = 0;
	free_addrs(c);
	if (c->timer != NULL)
		evtimer_del(c->timer);
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	c->state = RS_DOWN;
	c->tls_on = c->starttls_tried = c->used = c->dirty = 0;
	c->caps = 0;
	c->size_max = 0;
}

/*
 * The connection is gone for reason. kind: as dl_fail()'s err (-1 try
 * again later, 0 fail). retry: a reused connection died under its first
 * command, so one fresh connection may still carry the message.
 */
void
rm_conn_fail(struct rm_target *rt, int kind, int retry, const char *fmt, ...)
{
	char reason[MT_DELIVER_REASON_MAX], why[MT_DELIVER_REASON_MAX + 100];
	enum rm_state was = rt->c.state;
	struct rm_msg *rm = rt->head;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	rm_conn_close(rt, 0);
	if (rm == NULL || was == RS_IDLE) {
		/* Connect again only for a message that is ready to go, so a
		   server that keeps hanging up is not called in a loop. */
		mt_log_c(&rt->t->log, MT_LOG_INFO, "%s", reason);
		rt->lazy = 1;
		if (rm != NULL)
			rm_kick(rt);
		return;
	}
	if (retry && !rm->retried && (was == RS_RSET || was == RS_MAIL)) {
		rm->retried = 1;
		mt_log_c(&rt->t->log, MT_LOG_INFO, "%s; connecting again",
		    reason);
		rm_kick(rt);
		return;
	}
	if (was == RS_PREPARED) {
		/* The caller holds a token; commit will say "not delivered". */
		rm->broken = 1;
		mt_log_c(&rt->t->log, MT_LOG_WARNING, "message %s: %s",
		    rm->m->uid, reason);
		return;
	}
	if (was == RS_DOT) {
		snprintf(why, sizeof(why), "%s; the server may have accepted "
		    "the message, which would then arrive twice", reason);
		rm_msg_fail(rm, -1, why);
		return;
	}
	rm_msg_fail(rm, kind, reason);
}

static void
on_dns(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct rm_target *rt = arg;

	/* Cancelled by rm_conn_close(): rt may be gone already. */
	if (result == EVUTIL_EAI_CANCEL)
		return;
	rt->c.dns_req = NULL;
	if (result != 0) {
		rm_conn_fail(rt, -1, 0, "cannot resolve %s: %s", rt->spec.host,
		    evutil_gai_strerror(result));
		return;
	}
	rt->c.ai = rt->c.next_ai = ai;
	try_next(rt);
}

static int
connect_unix(struct rm_target *rt)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	mt_strlcpy(sun.sun_path, rt->spec.path, sizeof(sun.sun_path));
	fd = mt_net_connect_start((struct sockaddr *)&sun, sizeof(sun), NULL, 0);
	if (fd == -1) {
		rm_conn_fail(rt, -1, 0, "cannot connect to %s: %s",
		    rt->spec.path, strerror(errno));
		return -1;
	}
	if (mt_stream_init(&rt->c.s, rt->t->base, fd, NULL, on_stream,
	    rt) == -1) {
		close(fd);
		rm_conn_fail(rt, -1, 0, "cannot watch a socket: out of memory");
		return -1;
	}
	rt->c.up = 1;
	mt_strlcpy(rt->c.addr, rt->spec.path, sizeof(rt->c.addr));
	rt->c.state = RS_CONNECTING;
	rm_conn_wait(rt, rt->timeout_ms);
	return 0;
}

int
rm_conn_start(struct rm_target *rt)
{
	struct evutil_addrinfo hints;

	if (rt->spec.path[0] != '\0')
		return connect_unix(rt);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	rt->c.state = RS_RESOLVING;
	rm_conn_wait(rt, rt->timeout_ms);
	mt_strlcpy(rt->c.last_err, "no address", sizeof(rt->c.last_err));
	if (rt->dns == NULL) {
		/* An address literal: nothing to look up. */
		hints.ai_flags = EVUTIL_AI_NUMERICHOST;
		if (evutil_getaddrinfo(rt->spec.host, rt->spec.port, &hints,
		    &rt->c.ai) != 0) {
			rm_conn_fail(rt, 0, 0, "invalid address %s", rt->spec.host);
			return -1;
		}
		rt->c.next_ai = rt->c.ai;
		try_next(rt);
		return 0;
	}
	/* The callback may run before this returns (e.g. /etc/hosts). */
	rt->c.dns_req = evdns_getaddrinfo(rt->dns, rt->spec.host, rt->spec.port,
	    &hints, on_dns, rt);
	return 0;
}

/* Connect to the next address, or give up with the last error. */
static void
try_next(struct rm_target *rt)
{
	struct rm_conn *c = &rt->c;
	struct evutil_addrinfo *ai;
	int fd;

	while ((ai = c->next_ai) != NULL) {
		c->next_ai = ai->ai_next;
		mt_net_format(ai->ai_addr, ai->ai_addrlen, c->addr,
		    sizeof(c->addr));
		fd = mt_net_connect_start(ai->ai_addr, ai->ai_addrlen, NULL, 0);
		if (fd == -1) {
			snprintf(c->last_err, sizeof(c->last_err), "%s: %s",
			    c->addr, strerror(errno));
			continue;
		}
		if (mt_stream_init(&c->s, rt->t->base, fd, NULL, on_stream,
		    rt) == -1) {
			close(fd);
			continue;
		}
		c->up = 1;
		c->state = RS_CONNECTING;
		rm_conn_wait(rt, rt->timeout_ms);
		return;
	}
	rm_conn_fail(rt, -1, 0, "cannot connect to %s (%s)", rt->spec.where,
	    c->last_err);
}

/* TLS from now on: implicit at connect, or after "220" to STARTTLS. */
int
rm_conn_tls(struct rm_target *rt)
{
	SSL *ssl = mt_tls_ssl_new(rt->tls, rt->spec.host, rt->spec.port);

	if (ssl == NULL || mt_stream_set_ssl(&rt->c.s, ssl) == -1) {
		if (ssl != NULL)
			SSL_free(ssl);
		rm_conn_fail(rt, -1, 0, "cannot start TLS with %s: out of "
		    "memory", rt->spec.where);
		return -1;
	}
	rt->c.state = RS_TLS;
	rm_conn_wait(rt, rt->timeout_ms);
	/* The socket is writable already: no edge would start it. */
	handshake(rt);
	return 0;
}

static void
connected(struct rm_target *rt)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[256] = "";
	int err = mt_net_connect_result(rt->c.s.fd);

	if (err != 0) {
		snprintf(rt->c.last_err, sizeof(rt->c.last_err), "%s: %s",
		    rt->c.addr, strerror(err));
		mt_stream_close(&rt->c.s);
		rt->c.up = 0;
		if (rt->spec.path[0] != '\0')
			rm_conn_fail(rt, -1, 0, "cannot connect to %s", rt->c.last_err);
		else
			try_next(rt);
		return;
	}
	free_addrs(&rt->c);
	mt_log_c(&rt->t->log, MT_LOG_DEBUG, "connected to %s (%s)",
	    rt->spec.where, rt->c.addr);
	if (rt->t->opts.helo_name == NULL) {
		gethostname(host, sizeof(host) - 1);
		if (getsockname(rt->c.s.fd, (struct sockaddr *)&ss, &len) == -1)
			len = 0;
		mt_starttls_default_ehlo(host, len ? (struct sockaddr *)&ss :
		    NULL, len, rt->helo, sizeof(rt->helo));
	}
	if (rt->spec.tls == RM_TLS_IMPLICIT) {
		rm_conn_tls(rt);
		return;
	}
	rt->c.state = RS_GREETING;
	rm_conn_wait(rt, rt->timeout_ms);
}

static void
handshake(struct rm_target *rt)
{
	char desc[160];
	long v;
	int rc = mt_stream_handshake(&rt->c.s);

	if (rc == 0)
		return;
	if (rc == -1) {
		v = SSL_get_verify_result(rt->c.s.ssl);
		rm_conn_fail(rt, (rt->spec.tls != RM_TLS_MAY && v != X509_V_OK) ?
		    0 : -1, 0, "TLS with %s failed: %s", rt->spec.where,
		    mt_stream_why(&rt->c.s));
		return;
	}
	rt->c.tls_on = 1;
	mt_log_c(&rt->t->log, MT_LOG_INFO, "TLS with %s: %s%s", rt->spec.where,
	    mt_tls_describe(rt->c.s.ssl, desc, sizeof(desc)),
	    rt->spec.tls == RM_TLS_MAY ? " (certificate not verified)" : "");
	rm_proto_tls_up(rt);
}

int
rm_conn_flush(struct rm_target *rt)
{
	struct rm_conn *c = &rt->c;

	while (c->up && evbuffer_get_length(c->out) > 0 &&
	    mt_stream_writable(&c->s)) {
		if (mt_stream_write(&c->s, c->out) == MT_STREAM_ERROR) {
			rm_conn_fail(rt, -1, c->used, "cannot send to %s: %s",
			    rt->spec.where, mt_stream_why(&c->s));
			return -1;
		}
	}
	return 0;
}

int
rm_send(struct rm_target *rt, enum rm_state next, const char *fmt, ...)
{
	size_t before = evbuffer_get_length(rt->c.out);
	unsigned char *line;
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(rt->c.out, fmt, ap);
	va_end(ap);
	line = evbuffer_pullup(rt->c.out, -1) + before;
	mt_log_c(&rt->t->log, MT_LOG_DEBUG, "%s > %.*s", rt->spec.where,
	    (int)(evbuffer_get_length(rt->c.out) - before - 2), line);
	rt->c.state = next;
	rm_conn_wait(rt, rt->timeout_ms);
	return rm_conn_flush(rt);
}

/* Replies in c->in, one at a time, while the connection lasts. */
static int
parse_replies(struct rm_target *rt)
{
	struct rm_conn *c = &rt->c;
	struct rm_reply r;
	char err[160];
	size_t len, used;
	int rc;

	while (c->up && (len = evbuffer_get_length(c->in)) > 0) {
		if (len > RM_REPLY_CAP + 1)
			len = RM_REPLY_CAP + 1;
		rc = rm_reply_parse((char *)evbuffer_pullup(c->in, (ev_ssize_t)len),
		    len, &r, &used, err, sizeof(err));
		if (rc == RM_REPLY_MORE)
			return 0;
		if (rc == RM_REPLY_BAD) {
			rm_conn_fail(rt, -1, 0, "%s sent %s", rt->spec.where,
			    err);
			return -1;
		}
		evbuffer_drain(c->in, used);
		mt_log_c(&rt->t->log, MT_LOG_DEBUG, "%s < %d %s", rt->spec.where,
		    r.code, r.text);
		rm_proto_reply(rt, &r);
	}
	return 0;
}

static void
read_all(struct rm_target *rt)
{
	struct rm_conn *c = &rt->c;
	ssize_t n;

	while (c->up && mt_stream_readable(&c->s)) {
		n = mt_stream_read(&c->s, c->in, 16384);
		if (n > 0) {
			if (parse_replies(rt) == -1)
				return;
			continue;
		}
		if (n == MT_STREAM_AGAIN)
			return;
		if (n == MT_STREAM_EOF && c->state == RS_IDLE)
			rm_conn_fail(rt, -1, 0, "%s closed the connection",
			    rt->spec.where);
		else if (n == MT_STREAM_EOF && (c->state == RS_BODY ||
		    c->state == RS_PREPARED))
			rm_conn_fail(rt, -1, 0, "%s closed the connection in "
			    "the middle of the message", rt->spec.where);
		else if (n == MT_STREAM_EOF)
			rm_conn_fail(rt, -1, c->used, "%s closed the connection "
			    "while mailtunnel waited for %s", rt->spec.where,
			    rm_proto_waiting_for(rt));
		else
			rm_conn_fail(rt, -1, c->used, "connection to %s failed: "
			    "%s", rt->spec.where, mt_stream_why(&c->s));
		return;
	}
}

static void
on_stream(evutil_socket_t fd, short what, void *arg)
{
	struct rm_target *rt = arg;

	(void)fd;
	(void)what;
	if (rt->c.state == RS_CONNECTING) {
		if (!mt_stream_writable(&rt->c.s))
			return;
		connected(rt);
	}
	if (rt->c.up && rt->c.state == RS_TLS)
		handshake(rt);
	if (!rt->c.up || rt->c.state == RS_TLS || rm_conn_flush(rt) == -1)
		return;
	read_all(rt);
	if (rt->c.up && rt->c.state == RS_BODY)
		rm_proto_body(rt);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rm_target *rt = arg;
	char dur[32];
	unsigned ms = rt->c.state == RS_DOT ? rt->timeout_ms * 2 :
	    rt->timeout_ms;

	(void)fd;
	(void)what;
	if (ms % 1000 == 0)
		mt_format_duration(ms / 1000, dur, sizeof(dur));
	else
		snprintf(dur, sizeof(dur), "%u ms", ms);
	if (rt->c.state == RS_BODY)
		rm_conn_fail(rt, -1, 0, "%s took no data for %s in the middle "
		    "of the message", rt->spec.where, dur);
	else
		rm_conn_fail(rt, -1, 0, "%s: no answer within %s while "
		    "mailtunnel waited for %s", rt->spec.where, dur,
		    rm_proto_waiting_for(rt));
}
