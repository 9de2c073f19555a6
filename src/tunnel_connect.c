/*
 * tunnel_connect: from an accepted client to an established TLS session
 * with one of the service's connect targets.
 *
 * Targets are tried in order (or from a rotating start with failover = rr);
 * each target's addresses are tried in the order DNS gave them. Each
 * address gets TIMEOUTconnect for TCP and the TLS handshake. A refused
 * certificate skips the target's other addresses (they are the same
 * server name), while network errors try the next address. When every
 * target has failed, retry = DELAY starts over until TIMEOUTconnect has
 * passed since the client arrived.
 *
 * With protocol = pop3|imap|smtp, the STARTTLS dialogue (tunnel_starttls.c)
 * comes between the TCP connect and the handshake, within the same
 * TIMEOUTconnect. A server that refuses STARTTLS, breaks the protocol or
 * injects plaintext is treated like a refused certificate (next target);
 * one that closes, times out or refuses the session like a network error
 * (next address). When every server has failed, such a client gets the
 * protocol's short error line for the last failure before it is closed.
 *
 * With OCSP options, the verified chain is checked for revocation (ocsp.c)
 * before the tunnel opens; revoked, or unclear with OCSPrequire, refuses
 * the server as a refused certificate does.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/util.h>
#include <openssl/x509.h>

#include "mailtunnel/tls.h"
#include "tunnel_int.h"

static void try_target(struct mt_tunnel *t);
static void try_address(struct mt_tunnel *t);
static void next_target(struct mt_tunnel *t);

static struct mt_target *
target_of(struct mt_tunnel *t)
{
	return &t->svc->targets[t->target];
}

struct mt_target *
mt_tunnel_target(struct mt_tunnel *t)
{
	return target_of(t);
}

/* Start connecting now, or wait in line for a slot. */
void
mt_tunnel_connect_begin(struct mt_tunnel *t)
{
	struct mt_tunnel_env *env = t->env;

	if (env->connecting < MT_TUNNEL_CONNECTING_MAX) {
		env->connecting++;
		t->has_slot = 1;
		mt_tunnel_connect_first(t);
		return;
	}
	t->state = MT_T_WAITING;
	t->queued = 1;
	if (env->wait_tail != NULL)
		env->wait_tail->wait_next = t;
	else
		env->wait_head = t;
	env->wait_tail = t;
	mt_tunnel_set_timer(t, t->svc->conf->timeout_connect * 1000);
}

static void
unqueue(struct mt_tunnel *t)
{
	struct mt_tunnel_env *env = t->env;
	struct mt_tunnel **pp;

	for (pp = &env->wait_head; *pp != NULL; pp = &(*pp)->wait_next) {
		if (*pp != t)
			continue;
		*pp = t->wait_next;
		if (env->wait_tail == t)
			env->wait_tail = NULL;
		break;
	}
	if (env->wait_tail == NULL)
		for (pp = &env->wait_head; *pp != NULL; pp = &(*pp)->wait_next)
			env->wait_tail = *pp;
	t->queued = 0;
	t->wait_next = NULL;
}

/*
 * Give up the slot (or the place in line). The next in line is started
 * from its own timer, never from here, so a chain of quick failures does
 * not recurse.
 */
void
mt_tunnel_connect_release(struct mt_tunnel *t)
{
	struct mt_tunnel_env *env = t->env;
	struct mt_tunnel *next;

	if (t->queued) {
		unqueue(t);
		return;
	}
	if (!t->has_slot)
		return;
	t->has_slot = 0;
	if ((next = env->wait_head) == NULL) {
		env->connecting--;
		return;
	}
	unqueue(next);
	next->has_slot = 1;		/* the slot passes on */
	next->slot_ready = 1;
	mt_tunnel_set_timer(next, 0);
}

void
mt_tunnel_connect_first(struct mt_tunnel *t)
{
	struct mt_service *svc = t->svc;

	t->tried = 0;
	t->target = svc->conf->failover_rr ?
	    atomic_fetch_add(&svc->rr, 1) % svc->ntargets : 0;
	try_target(t);
}

static void
dns_done(int result, struct evutil_addrinfo *res, void *arg)
{
	struct mt_tunnel *t = arg;
	struct mt_tunnel_addrs *a = t->addrs;
	struct evutil_addrinfo *ai;

	if (result == EVUTIL_EAI_CANCEL)
		return;		/* the tunnel is going away */
	t->dns_req = NULL;
	if (result != 0) {
		mt_log_c(&t->log, MT_LOG_WARNING, "cannot resolve %s: %s",
		    target_of(t)->host, evutil_gai_strerror(result));
		next_target(t);
		return;
	}
	for (ai = res; ai != NULL && a->n < MT_TARGET_MAX_ADDRS;
	    ai = ai->ai_next) {
		memcpy(&a->v[a->n].ss, ai->ai_addr, ai->ai_addrlen);
		a->v[a->n++].len = (socklen_t)ai->ai_addrlen;
	}
	evutil_freeaddrinfo(res);
	if (!t->svc->conf->delay)
		mt_target_cache_store(target_of(t), a->v, a->n);
	try_address(t);
}

static void
try_target(struct mt_tunnel *t)
{
	struct mt_target *tg = target_of(t);
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;

	if (t->addrs == NULL &&
	    (t->addrs = malloc(sizeof(*t->addrs))) == NULL) {
		mt_log_c(&t->log, MT_LOG_ERR, "out of memory");
		mt_tunnel_free(t);
		return;
	}
	t->addrs->n = t->addrs->cur = 0;
	if (tg->is_ip) {
		t->addrs->v[0] = tg->literal;
		t->addrs->n = 1;
		try_address(t);
		return;
	}
	if (!t->svc->conf->delay && (t->addrs->n = mt_target_cached(tg,
	    t->addrs->v, MT_TARGET_MAX_ADDRS)) > 0) {
		try_address(t);
		return;
	}
	t->state = MT_T_RESOLVING;
	mt_tunnel_set_timer(t, t->svc->conf->timeout_connect * 1000);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	/* NULL means dns_done already ran (and t may be gone). */
	req = evdns_getaddrinfo(t->env->dns, tg->host, tg->port, &hints,
	    dns_done, t);
	if (req != NULL)
		t->dns_req = req;
}

static void
close_server(struct mt_tunnel *t)
{
	mt_tunnel_starttls_cancel(t);
	if (t->server_open)
		mt_stream_close(&t->server);
	t->server_open = 0;
}

static void
try_address(struct mt_tunnel *t)
{
	struct mt_service_conf *conf = t->svc->conf;
	struct mt_sockaddr *a;
	int fd;

	for (; t->addrs->cur < t->addrs->n; t->addrs->cur++) {
		a = &t->addrs->v[t->addrs->cur];
		mt_net_format((struct sockaddr *)&a->ss, a->len,
		    t->server_addr, sizeof(t->server_addr));
		fd = mt_net_connect_start((struct sockaddr *)&a->ss, a->len,
		    conf->sockopts, conf->nsockopts);
		if (fd == -1) {
			mt_log_c(&t->log, MT_LOG_WARNING, "cannot connect to %s "
			    "[%s]: %s", target_of(t)->name, t->server_addr,
			    strerror(errno));
			continue;
		}
		if (mt_stream_init(&t->server, t->env->base, fd, NULL,
		    mt_tunnel_server_event, t) == -1) {
			close(fd);
			continue;
		}
		t->server_open = 1;
		t->state = MT_T_CONNECTING;
		mt_tunnel_set_timer(t, conf->timeout_connect * 1000);
		return;
	}
	/* Every address failed: the cached ones may be stale. */
	if (!target_of(t)->is_ip)
		mt_target_cache_forget(target_of(t));
	next_target(t);
}

static void
next_address(struct mt_tunnel *t)
{
	close_server(t);
	t->addrs->cur++;
	try_address(t);
}

static long long
elapsed_ms(struct mt_tunnel *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->started.tv_sec) * 1000LL +
	    (now.tv_nsec - t->started.tv_nsec) / 1000000;
}

/* Every target failed: say so to a client that expects a reply. */
static void
give_up(struct mt_tunnel *t)
{
	enum mt_protocol proto = t->svc->conf->protocol;
	const char *line;

	if (proto == MT_PROTO_NONE) {
		mt_log_c(&t->log, MT_LOG_ERR, "no server reachable (%zu "
		    "connect target%s tried); closing the client",
		    t->svc->ntargets, t->svc->ntargets == 1 ? "" : "s");
		/* A lingering close: unread client bytes must not turn it
		 * into a reset. */
		mt_tunnel_refuse(t, "");
		return;
	}
	/* The last failure that was more than "cannot connect" says most. */
	line = mt_starttls_client_line(proto, t->fail != MT_STARTTLS_E_NONE ?
	    t->fail : MT_STARTTLS_E_UNREACHABLE);
	mt_log_c(&t->log, MT_LOG_ERR, "no usable server (%zu connect target%s "
	    "tried); telling the client \"%.*s\" and closing",
	    t->svc->ntargets, t->svc->ntargets == 1 ? "" : "s",
	    (int)strlen(line) - 2, line);
	mt_tunnel_refuse(t, line);
}

static void
next_target(struct mt_tunnel *t)
{
	struct mt_service_conf *conf = t->svc->conf;

	close_server(t);
	if (++t->tried < t->svc->ntargets) {
		t->target = (t->target + 1) % t->svc->ntargets;
		try_target(t);
		return;
	}
	if (conf->retry_ms > 0 && elapsed_ms(t) + (long long)conf->retry_ms <
	    (long long)conf->timeout_connect * 1000) {
		mt_log_c(&t->log, MT_LOG_INFO, "no server reachable; retrying "
		    "in %llu ms", conf->retry_ms);
		t->state = MT_T_RETRY_WAIT;
		mt_tunnel_set_timer(t, conf->retry_ms);
		return;
	}
	give_up(t);
}

void
mt_tunnel_server_failed(struct mt_tunnel *t, int whole_target)
{
	if (whole_target)
		next_target(t);
	else
		next_address(t);
}

void
mt_tunnel_tls_begin(struct mt_tunnel *t)
{
	SSL *ssl = mt_tls_ssl_new(t->svc->tls, target_of(t)->host,
	    target_of(t)->port);

	if (ssl == NULL || mt_stream_set_ssl(&t->server, ssl) == -1) {
		SSL_free(ssl);
		mt_log_c(&t->log, MT_LOG_ERR, "cannot create a TLS session");
		next_address(t);
		return;
	}
	t->state = MT_T_HANDSHAKE;
	if (t->svc->conf->protocol != MT_PROTO_NONE)
		mt_tunnel_starttls_watch(t);
	mt_tunnel_connect_step(t);
}

/* TCP is up: the STARTTLS dialogue, or TLS right away. */
static void
connected(struct mt_tunnel *t)
{
	int err = mt_net_connect_result(t->server.fd);

	if (err != 0) {
		mt_log_c(&t->log, MT_LOG_WARNING, "cannot connect to %s [%s]: "
		    "%s", target_of(t)->name, t->server_addr, strerror(err));
		next_address(t);
		return;
	}
	if (t->svc->conf->protocol != MT_PROTO_NONE)
		mt_tunnel_starttls_begin(t);
	else
		mt_tunnel_tls_begin(t);
}

static void
ocsp_done(void *arg, enum mt_ocsp_result result, const char *why)
{
	struct mt_tunnel *t = arg;
	char err[1024];

	t->ocsp = NULL;
	if (mt_ocsp_verdict(&t->svc->conf->ocsp, &t->log, target_of(t)->name,
	    t->server_addr, result, why, err, sizeof(err))) {
		mt_tunnel_open(t);
		return;
	}
	mt_log_c(&t->log, MT_LOG_ERR, "%s", err);
	t->fail = MT_STARTTLS_E_TLS;
	mt_tunnel_server_failed(t, 1);
}

/* The chain is verified: ask OCSP responders, when configured, first. */
static void
verified(struct mt_tunnel *t)
{
	const struct mt_ocsp_conf *oc = &t->svc->conf->ocsp;

	mt_tunnel_starttls_unwatch(t);
	if (!mt_ocsp_wanted(oc)) {
		mt_tunnel_open(t);
		return;
	}
	t->state = MT_T_OCSP;
	t->ocsp = mt_ocsp_start(t->env->base, t->env->dns, t->server.ssl, oc,
	    t->svc->ocsp_cache, &t->log, ocsp_done, t);
	if (t->ocsp == NULL) {
		mt_log_c(&t->log, MT_LOG_ERR, "cannot start the OCSP check: "
		    "out of memory");
		next_address(t);
	}
}

static void
handshake(struct mt_tunnel *t)
{
	int rc = mt_stream_handshake(&t->server), refused;

	if (rc == 0)
		return;
	if (rc == 1) {
		verified(t);
		return;
	}
	/* A refused certificate is the same on every address of a name. */
	refused = SSL_get_verify_result(t->server.ssl) != X509_V_OK;
	if (mt_starttls_watch_injection(&t->watch) != NULL) {
		/* Plaintext where the first TLS record belongs. */
		mt_log_c(&t->log, MT_LOG_ERR, "STARTTLS with %s [%s] failed: "
		    "%s", target_of(t)->name, t->server_addr,
		    mt_starttls_watch_injection(&t->watch));
		mt_starttls_watch_clear(&t->watch);
		t->fail = MT_STARTTLS_E_INJECTION;
		refused = 1;
	} else {
		mt_log_c(&t->log, MT_LOG_ERR, "TLS handshake with %s [%s] "
		    "failed: %s", target_of(t)->name, t->server_addr,
		    mt_stream_why(&t->server));
		t->fail = MT_STARTTLS_E_TLS;
	}
	mt_tunnel_server_failed(t, refused);
}

/* An edge on the server socket before the tunnel is open. */
void
mt_tunnel_connect_step(struct mt_tunnel *t)
{
	switch (t->state) {
	case MT_T_CONNECTING:
		if (t->server.can_write || t->server.can_read)
			connected(t);
		return;
	case MT_T_STARTTLS:
		mt_tunnel_starttls_step(t);
		return;
	case MT_T_HANDSHAKE:
		if (mt_stream_readable(&t->server) ||
		    mt_stream_writable(&t->server))
			handshake(t);
		return;
	default:
		return;
	}
}

void
mt_tunnel_connect_timeout(struct mt_tunnel *t)
{
	unsigned long long secs = t->svc->conf->timeout_connect;

	switch (t->state) {
	case MT_T_RESOLVING:
		mt_log_c(&t->log, MT_LOG_WARNING, "resolving %s timed out "
		    "after %llus", target_of(t)->host, secs);
		mt_tunnel_connect_cancel(t);
		next_target(t);
		return;
	case MT_T_CONNECTING:
	case MT_T_HANDSHAKE:
		mt_log_c(&t->log, MT_LOG_WARNING, "%s %s [%s] timed out after "
		    "%llus (TIMEOUTconnect)", t->state == MT_T_CONNECTING ?
		    "connecting to" : "TLS handshake with", target_of(t)->name,
		    t->server_addr, secs);
		if (t->state == MT_T_HANDSHAKE)
			t->fail = MT_STARTTLS_E_TIMEOUT;
		next_address(t);
		return;
	case MT_T_STARTTLS:
		mt_tunnel_starttls_timeout(t);
		return;
	case MT_T_OCSP:
		mt_log_c(&t->log, MT_LOG_WARNING, "OCSP check of %s [%s] timed "
		    "out after %llus (TIMEOUTconnect)", target_of(t)->name,
		    t->server_addr, secs);
		mt_ocsp_cancel(t->ocsp);
		t->ocsp = NULL;
		t->fail = MT_STARTTLS_E_TIMEOUT;
		next_address(t);
		return;
	case MT_T_RETRY_WAIT:
		mt_tunnel_connect_first(t);
		return;
	case MT_T_WAITING:
		if (t->slot_ready) {
			t->slot_ready = 0;
			mt_tunnel_connect_first(t);
			return;
		}
		mt_log_c(&t->log, MT_LOG_WARNING, "too many connections being "
		    "set up: no turn within %llus (TIMEOUTconnect); closing",
		    secs);
		mt_tunnel_free(t);
		return;
	default:
		return;
	}
}

void
mt_tunnel_connect_cancel(struct mt_tunnel *t)
{
	if (t->dns_req != NULL) {
		evdns_getaddrinfo_cancel(t->dns_req);
		t->dns_req = NULL;
	}
	mt_ocsp_cancel(t->ocsp);
	t->ocsp = NULL;
	free(t->addrs);
	t->addrs = NULL;
}
