/*
 * fetch_conn: connecting - resolve, TCP, the STARTTLS opening, the TLS
 * handshake - and the one timer and one deferred event of a connection.
 * Reading and writing once open are in fetch_conn_io.c. See fetch_conn.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/x509.h>

#include "fetch/fetch_conn.h"
#include "fetch/fetch_conn_int.h"
#include "mailtunnel/tls.h"

static void try_address(struct ft_conn *c);

static void fail_v(struct ft_conn *c, enum mt_fetch_status st,
    const char *fmt, va_list ap) MT_PRINTF(3, 0);

/* Log once and report from the loop: the owner is never re-entered. */
static void
fail_v(struct ft_conn *c, enum mt_fetch_status st, const char *fmt,
    va_list ap)
{
	if (c->failed || c->state == FT_C_CLOSED)
		return;
	vsnprintf(c->fail_why, sizeof(c->fail_why), fmt, ap);
	mt_log_c(c->log, MT_LOG_ERR, "%s", c->fail_why);
	c->failed = 1;
	c->fail_status = st;
	event_active(c->kick, EV_TIMEOUT, 0);
}

void
ft_conn_fail(struct ft_conn *c, enum mt_fetch_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail_v(c, st, fmt, ap);
	va_end(ap);
}

void
ft_conn_set_timer(struct ft_conn *c, unsigned seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };

	evtimer_add(c->timer, &tv);
}

static void
close_stream(struct ft_conn *c)
{
	mt_ocsp_cancel(c->ocsp_check);
	c->ocsp_check = NULL;
	if (c->stream_open) {
		mt_starttls_watch_end(&c->watch, c->s.ssl);
		mt_stream_close(&c->s);
	}
	c->stream_open = 0;
	mt_starttls_watch_clear(&c->watch);
	if (c->st != NULL)
		mt_starttls_free(c->st);
	c->st = NULL;
	if (c->prelude != NULL)
		evbuffer_free(c->prelude);
	c->prelude = NULL;
}

void
ft_conn_close(struct ft_conn *c)
{
	if (c->dns_req != NULL)
		evdns_getaddrinfo_cancel(c->dns_req);
	c->dns_req = NULL;
	close_stream(c);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->kick != NULL)
		event_free(c->kick);
	c->timer = c->kick = NULL;
	if (c->own_dns != NULL)
		evdns_base_free(c->own_dns, 1);
	c->own_dns = NULL;
	if (c->in != NULL)
		evbuffer_free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	c->in = c->out = NULL;
	c->state = FT_C_CLOSED;
}

/* The next address, or the end of the attempt. */
static void
next_address(struct ft_conn *c, const char *what)
{
	close_stream(c);
	if (++c->cur < c->naddrs) {
		mt_log_c(c->log, MT_LOG_INFO, "%s; trying the next address",
		    what);
		try_address(c);
		return;
	}
	ft_conn_fail(c, MT_FETCH_TEMPFAIL, "%s", what);
}

static void
dns_done(int result, struct evutil_addrinfo *res, void *arg)
{
	struct ft_conn *c = arg;
	struct evutil_addrinfo *ai;

	if (result == EVUTIL_EAI_CANCEL)
		return;
	c->dns_req = NULL;
	if (result != 0) {
		ft_conn_fail(c, MT_FETCH_TEMPFAIL, "cannot resolve %s: %s",
		    c->host, evutil_gai_strerror(result));
		return;
	}
	for (ai = res; ai != NULL && c->naddrs < FT_CONN_MAX_ADDRS;
	    ai = ai->ai_next) {
		memcpy(&c->addrs[c->naddrs].ss, ai->ai_addr, ai->ai_addrlen);
		c->addrs[c->naddrs++].len = (socklen_t)ai->ai_addrlen;
	}
	evutil_freeaddrinfo(res);
	c->cur = 0;
	try_address(c);
}

/* An IP literal needs no resolver. 1 when it was one. */
static int
literal(struct ft_conn *c)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&c->addrs[0].ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->addrs[0].ss;

	memset(&c->addrs[0], 0, sizeof(c->addrs[0]));
	if (inet_pton(AF_INET, c->host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)c->port);
		c->addrs[0].len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, c->host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)c->port);
		c->addrs[0].len = sizeof(*in6);
	} else {
		return 0;
	}
	c->naddrs = 1;
	c->cur = 0;
	return 1;
}

static void
resolve(struct ft_conn *c)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	struct evdns_base *dns = c->dns;

	if (literal(c)) {
		try_address(c);
		return;
	}
	if (dns == NULL) {
		c->own_dns = evdns_base_new(c->base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS);
		if ((dns = c->own_dns) == NULL) {
			ft_conn_fail(c, MT_FETCH_TEMPFAIL, "cannot resolve %s: "
			    "no resolver (/etc/resolv.conf)", c->host);
			return;
		}
	}
	c->state = FT_C_RESOLVING;
	ft_conn_set_timer(c, c->timeout_connect_s);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	req = evdns_getaddrinfo(dns, c->host, c->port_str, &hints, dns_done, c);
	if (req != NULL && c->state == FT_C_RESOLVING)
		c->dns_req = req;
}

static void
try_address(struct ft_conn *c)
{
	struct mt_sockaddr *a;
	char what[600];
	int fd;

	for (; c->cur < c->naddrs; c->cur++) {
		a = &c->addrs[c->cur];
		mt_net_format((struct sockaddr *)&a->ss, a->len, c->addr,
		    sizeof(c->addr));
		fd = mt_net_connect_start((struct sockaddr *)&a->ss, a->len,
		    NULL, 0);
		if (fd != -1 && mt_stream_init(&c->s, c->base, fd, NULL,
		    ft_conn_event, c) == 0) {
			c->stream_open = 1;
			c->state = FT_C_CONNECTING;
			ft_conn_set_timer(c, c->timeout_connect_s);
			return;
		}
		snprintf(what, sizeof(what), "cannot connect to %s [%s]: %s",
		    c->host, c->addr, strerror(errno));
		if (fd != -1)
			close(fd);
		if (c->cur + 1 == c->naddrs) {
			ft_conn_fail(c, MT_FETCH_TEMPFAIL, "%s", what);
			return;
		}
		mt_log_c(c->log, MT_LOG_INFO, "%s", what);
	}
}

/* TLS on the socket, then the handshake. */
static void
tls_begin(struct ft_conn *c)
{
	SSL *ssl = mt_tls_ssl_new(c->tls, c->host, c->port_str);

	if (ssl == NULL || mt_stream_set_ssl(&c->s, ssl) == -1) {
		SSL_free(ssl);
		ft_conn_fail(c, MT_FETCH_TEMPFAIL, "cannot create a TLS "
		    "session");
		return;
	}
	if (c->starttls != MT_PROTO_NONE)
		mt_starttls_watch_begin(&c->watch, c->s.ssl, c->starttls);
	c->state = FT_C_HANDSHAKE;
	ft_conn_handshake(c);
}

void
ft_conn_connected(struct ft_conn *c)
{
	struct mt_starttls_opts o = { c->starttls, MT_STARTTLS_FOR_SELF, NULL };
	int err = mt_net_connect_result(c->s.fd);
	char what[600];

	if (err != 0) {
		snprintf(what, sizeof(what), "cannot connect to %s [%s]: %s",
		    c->host, c->addr, strerror(err));
		next_address(c, what);
		return;
	}
	mt_log_c(c->log, MT_LOG_DEBUG, "connected to %s [%s]", c->host,
	    c->addr);
	if (c->starttls == MT_PROTO_NONE) {
		tls_begin(c);
		return;
	}
	if ((c->st = mt_starttls_new(&o)) == NULL ||
	    (c->prelude = evbuffer_new()) == NULL) {
		ft_conn_fail(c, MT_FETCH_TEMPFAIL, "out of memory");
		return;
	}
	c->state = FT_C_STARTTLS;
	ft_conn_starttls_step(c);
}

/* What a failed STARTTLS opening means for the job. */
static enum mt_fetch_status
starttls_status(enum mt_starttls_error e)
{
	switch (e) {
	case MT_STARTTLS_E_NOT_OFFERED:
	case MT_STARTTLS_E_REFUSED:
	case MT_STARTTLS_E_PREAUTH:
		return MT_FETCH_CONFIG;
	case MT_STARTTLS_E_PROTOCOL:
	case MT_STARTTLS_E_INJECTION:
		return MT_FETCH_PROTOCOL;
	default:
		return MT_FETCH_TEMPFAIL;
	}
}

static void
starttls_failed(struct ft_conn *c, enum mt_starttls_error e, const char *why)
{
	char what[700];

	snprintf(what, sizeof(what), "STARTTLS with %s [%s] failed: %s%s",
	    c->host, c->addr, why, e == MT_STARTTLS_E_NOT_OFFERED ||
	    e == MT_STARTTLS_E_REFUSED ? " (not logging in without TLS)" : "");
	if (e == MT_STARTTLS_E_CLOSED || e == MT_STARTTLS_E_SESSION)
		next_address(c, what);
	else
		ft_conn_fail(c, starttls_status(e), "%s", what);
}

/* The server accepted STARTTLS: check for stray bytes, then TLS. */
static void
switch_to_tls(struct ft_conn *c)
{
	char why[256];
	int closed;

	if (mt_starttls_switch_check(c->s.fd, c->starttls,
	    evbuffer_get_length(c->prelude), &closed, why, sizeof(why)) == -1) {
		starttls_failed(c, closed ? MT_STARTTLS_E_CLOSED :
		    MT_STARTTLS_E_INJECTION, why);
		return;
	}
	mt_log_c(c->log, MT_LOG_DEBUG, "%s accepted; starting TLS",
	    mt_starttls_command_name(c->starttls));
	mt_starttls_free(c->st);
	c->st = NULL;
	evbuffer_free(c->prelude);
	c->prelude = NULL;
	c->via_starttls = 1;
	tls_begin(c);
}

/* Feed one read to the machine; -1 when the dialogue is over. */
static int
prelude_batch(struct ft_conn *c)
{
	size_t len = evbuffer_get_length(c->prelude), used, olen;
	enum mt_starttls_status s;
	const char *out;
	ssize_t n;

	s = mt_starttls_feed(c->st, evbuffer_pullup(c->prelude, -1), len,
	    &used);
	evbuffer_drain(c->prelude, used);
	if (s == MT_STARTTLS_FAILED) {
		starttls_failed(c, mt_starttls_error(c->st),
		    mt_starttls_reason(c->st));
		return -1;
	}
	if (s == MT_STARTTLS_READY) {
		switch_to_tls(c);
		return -1;
	}
	out = mt_starttls_output(c->st, &olen);
	if (olen == 0)
		return 0;
	/* Sent at once: a reply can then only come after it. */
	n = send(c->s.fd, out, olen, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != (ssize_t)olen) {
		starttls_failed(c, MT_STARTTLS_E_CLOSED, n < 0 ?
		    strerror(errno) : "the socket took only part of a command");
		return -1;
	}
	mt_log_c(c->log, MT_LOG_DEBUG, "C: %.*s", (int)olen - 2, out);
	return 0;
}

void
ft_conn_starttls_step(struct ft_conn *c)
{
	ssize_t n;

	while (c->state == FT_C_STARTTLS && mt_stream_readable(&c->s)) {
		n = mt_stream_read(&c->s, c->prelude, 16384);
		if (n > 0) {
			if (prelude_batch(c) == -1)
				return;
		} else if (n == MT_STREAM_EOF) {
			mt_starttls_eof(c->st);
			starttls_failed(c, mt_starttls_error(c->st),
			    mt_starttls_reason(c->st));
			return;
		} else if (n == MT_STREAM_ERROR) {
			starttls_failed(c, MT_STARTTLS_E_CLOSED,
			    mt_stream_why(&c->s));
			return;
		} else {
			return;
		}
	}
}

static void
ocsp_done(void *arg, enum mt_ocsp_result result, const char *why)
{
	struct ft_conn *c = arg;
	char err[1024];

	c->ocsp_check = NULL;
	if (mt_ocsp_verdict(c->ocsp, c->log, c->host, c->addr, result, why,
	    err, sizeof(err)))
		ft_conn_opened(c);
	else
		ft_conn_fail(c, MT_FETCH_TEMPFAIL, "%s", err);
}

/* The chain is verified: the OCSP check when configured, then open. */
static void
verified(struct ft_conn *c)
{
	if (c->ocsp == NULL) {
		ft_conn_opened(c);
		return;
	}
	if (c->dns == NULL && c->own_dns == NULL &&
	    (c->own_dns = evdns_base_new(c->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL) {
		ft_conn_fail(c, MT_FETCH_TEMPFAIL, "cannot ask OCSP responders: "
		    "no resolver (/etc/resolv.conf)");
		return;
	}
	c->state = FT_C_OCSP;
	if ((c->ocsp_check = mt_ocsp_start(c->base, c->dns != NULL ? c->dns :
	    c->own_dns, c->s.ssl, c->ocsp, c->ocsp_cache, c->log, ocsp_done,
	    c)) == NULL)
		ft_conn_fail(c, MT_FETCH_TEMPFAIL, "cannot start the OCSP check: "
		    "out of memory");
}

void
ft_conn_handshake(struct ft_conn *c)
{
	const char *inj;
	char what[700], desc[128];
	int rc = mt_stream_handshake(&c->s);

	if (rc == 0)
		return;
	if (rc == 1) {
		mt_starttls_watch_end(&c->watch, c->s.ssl);
		mt_log_c(c->log, MT_LOG_INFO, "TLS with %s [%s]: %s", c->host,
		    c->addr, mt_tls_describe(c->s.ssl, desc, sizeof(desc)));
		verified(c);
		return;
	}
	if ((inj = mt_starttls_watch_injection(&c->watch)) != NULL) {
		starttls_failed(c, MT_STARTTLS_E_INJECTION, inj);
		return;
	}
	snprintf(what, sizeof(what), "TLS handshake with %s [%s] failed: %s",
	    c->host, c->addr, mt_stream_why(&c->s));
	/* A refused certificate is the same on every address. */
	if (SSL_get_verify_result(c->s.ssl) != X509_V_OK)
		ft_conn_fail(c, MT_FETCH_TEMPFAIL, "%s", what);
	else
		next_address(c, what);
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct ft_conn *c = arg;
	char msg[600];

	(void)fd;
	(void)what;
	switch (c->state) {
	case FT_C_RESOLVING:
		ft_conn_fail(c, MT_FETCH_TEMPFAIL, "resolving %s timed out "
		    "after %us", c->host, c->timeout_connect_s);
		return;
	case FT_C_CONNECTING:
	case FT_C_STARTTLS:
	case FT_C_HANDSHAKE:
	case FT_C_OCSP:
		snprintf(msg, sizeof(msg), "%s %s [%s] timed out after %us",
		    c->state == FT_C_CONNECTING ? "connecting to" :
		    c->state == FT_C_STARTTLS ? "the STARTTLS dialogue with" :
		    c->state == FT_C_OCSP ? "the OCSP check of" :
		    "the TLS handshake with", c->host, c->addr,
		    c->timeout_connect_s);
		next_address(c, msg);
		return;
	case FT_C_OPEN:
		ft_conn_idle_check(c);
		return;
	default:
		return;
	}
}

static void
kick_fired(evutil_socket_t fd, short what, void *arg)
{
	struct ft_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->failed) {
		c->failed = 0;
		if (c->dns_req != NULL)
			evdns_getaddrinfo_cancel(c->dns_req);
		c->dns_req = NULL;
		close_stream(c);
		c->state = FT_C_CLOSED;
		evtimer_del(c->timer);
		c->cb.error(c->arg, c->fail_status, c->fail_why);
		return;
	}
	if (c->state == FT_C_OPEN)
		ft_conn_pump(c);
}

int
ft_conn_start(struct ft_conn *c)
{
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->timer = evtimer_new(c->base, timer_fired, c);
	c->kick = event_new(c->base, -1, 0, kick_fired, c);
	if (c->in == NULL || c->out == NULL || c->timer == NULL ||
	    c->kick == NULL) {
		ft_conn_close(c);
		return -1;
	}
	snprintf(c->port_str, sizeof(c->port_str), "%u", c->port);
	c->state = FT_C_IDLE;
	resolve(c);
	return 0;
}

void
ft_conn_kick(struct ft_conn *c)
{
	event_active(c->kick, EV_TIMEOUT, 0);
}
