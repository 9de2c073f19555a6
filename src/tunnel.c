/*
 * tunnel: bridging an open tunnel, and tearing it down.
 *
 * The shape is libevent's le-proxy: what one side reads is moved (not
 * copied) to the other side's output; when that output passes the high
 * water mark, the source stops reading until the output has drained to
 * half. Each direction therefore buffers at most MT_TUNNEL_HIGH_WATER plus
 * one read, whatever the peers do.
 *
 * Closing follows the data: a client EOF becomes a TLS close_notify and a
 * TCP FIN towards the server once everything before it was written, and
 * the tunnel keeps relaying the server's answer. A server EOF (with or
 * without close_notify) or error ends reading from the client; what the
 * server sent is flushed to the client, then the client socket is shut
 * down for writing and drained briefly before it is closed, so that
 * unread client bytes do not turn the close into a reset that could
 * destroy the last reply.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "mailtunnel/tls.h"
#include "tunnel_int.h"

/* After the last reply, how long a client may keep sending before close. */
#define MT_TUNNEL_LINGER_MS 5000

static void client_read(struct bufferevent *bev, void *arg);
static void client_write(struct bufferevent *bev, void *arg);
static void client_event(struct bufferevent *bev, short what, void *arg);

time_t
mt_tunnel_now(struct mt_tunnel *t)
{
	struct timeval tv;

	event_base_gettimeofday_cached(t->env->base, &tv);
	return tv.tv_sec;
}

void
mt_tunnel_set_timer(struct mt_tunnel *t, unsigned long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000 };

	evtimer_add(t->timer, &tv);
}

static void
env_link(struct mt_tunnel *t)
{
	struct mt_tunnel_env *env = t->env;

	t->next = env->head;
	if (env->head != NULL)
		env->head->prev = t;
	env->head = t;
	env->count++;
}

static void
env_unlink(struct mt_tunnel *t)
{
	struct mt_tunnel_env *env = t->env;

	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		env->head = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	env->count--;
}

static void
log_closed(struct mt_tunnel *t)
{
	struct timespec now;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - t->started.tv_sec) +
	    (double)(now.tv_nsec - t->started.tv_nsec) / 1e9;
	mt_log_c(&t->log, MT_LOG_INFO, "closed after %.1fs: %llu bytes to the "
	    "server, %llu bytes to the client", secs,
	    (unsigned long long)t->up, (unsigned long long)t->down);
}

void
mt_tunnel_free(struct mt_tunnel *t)
{
	struct mt_tunnel_env *env = t->env;

	mt_tunnel_connect_cancel(t);
	if (t->server != NULL) {
		/* Say goodbye properly: a session closed without close_notify
		 * would not be resumed. */
		if (t->state >= MT_T_OPEN && !t->close_notify_sent)
			SSL_shutdown(t->ssl);
		bufferevent_free(t->server);
	}
	if (t->client != NULL)
		bufferevent_free(t->client);
	if (t->timer != NULL)
		event_free(t->timer);
	free(t->replay);
	free(t->injection);
	env_unlink(t);
	log_closed(t);
	atomic_fetch_sub(&t->svc->active, 1);
	mt_service_unref(t->svc);
	free(t);
	env->closed(env->arg);
}

/* Move what src has read into dst's output; pause src if dst is full. */
static void
pump(struct mt_tunnel *t, struct bufferevent *src, struct bufferevent *dst,
    uint64_t *counter)
{
	struct evbuffer *in = bufferevent_get_input(src);
	struct evbuffer *out = bufferevent_get_output(dst);

	*counter += evbuffer_get_length(in);
	evbuffer_add_buffer(out, in);
	t->last_active = mt_tunnel_now(t);
	if (evbuffer_get_length(out) >= MT_TUNNEL_HIGH_WATER)
		bufferevent_disable(src, EV_READ);
}

/* Tell the server the client is done: close_notify, then a TCP FIN. */
static void
forward_client_eof(struct mt_tunnel *t)
{
	if (t->close_notify_sent ||
	    evbuffer_get_length(bufferevent_get_output(t->server)) > 0)
		return;
	t->close_notify_sent = 1;
	SSL_shutdown(t->ssl);
	shutdown(bufferevent_getfd(t->server), SHUT_WR);
	mt_log_c(&t->log, MT_LOG_DEBUG, "client finished sending; told the "
	    "server");
}

/* Everything is written: FIN to the client, then drop what it still sends. */
static void
start_linger(struct mt_tunnel *t)
{
	unsigned long long ms = t->svc->conf->timeout_close * 1000;

	if (t->client_eof) {
		mt_tunnel_free(t);
		return;
	}
	shutdown(bufferevent_getfd(t->client), SHUT_WR);
	t->state = MT_T_LINGER;
	bufferevent_enable(t->client, EV_READ);
	mt_tunnel_set_timer(t, ms < MT_TUNNEL_LINGER_MS ? ms :
	    MT_TUNNEL_LINGER_MS);
}

/* The server is done (EOF or error): flush to the client, then close. */
static void
start_flushing(struct mt_tunnel *t)
{
	if (t->server != NULL) {
		pump(t, t->server, t->client, &t->down);
		if (SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN)
			SSL_shutdown(t->ssl);	/* answer close_notify */
		t->close_notify_sent = 1;
		bufferevent_free(t->server);
		t->server = NULL;
		t->ssl = NULL;
	}
	t->state = MT_T_FLUSHING;
	bufferevent_disable(t->client, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(t->client)) == 0) {
		start_linger(t);
		return;
	}
	mt_tunnel_set_timer(t, t->svc->conf->timeout_close * 1000);
}

void
mt_tunnel_refuse(struct mt_tunnel *t, const char *line)
{
	struct evbuffer *in = bufferevent_get_input(t->client);

	mt_tunnel_connect_cancel(t);
	/* What the client sent early goes nowhere. */
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_write(t->client, line, strlen(line));
	t->down += strlen(line);
	start_flushing(t);
}

static void
server_read(struct bufferevent *bev, void *arg)
{
	struct mt_tunnel *t = arg;

	pump(t, bev, t->client, &t->down);
}

static void
server_write(struct bufferevent *bev, void *arg)
{
	struct mt_tunnel *t = arg;

	if (t->client_eof) {
		forward_client_eof(t);
		return;
	}
	if (!(bufferevent_get_enabled(t->client) & EV_READ))
		bufferevent_enable(t->client, EV_READ);
}

static void
server_event(struct bufferevent *bev, short what, void *arg)
{
	struct mt_tunnel *t = arg;
	int err = EVUTIL_SOCKET_ERROR();
	char why[512];

	if (what & BEV_EVENT_TIMEOUT) {
		mt_log_c(&t->log, MT_LOG_NOTICE, "the server accepted no data "
		    "for %llus (TIMEOUTbusy); closing", t->svc->conf->timeout_busy);
		mt_tunnel_free(t);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		mt_log_c(&t->log, MT_LOG_DEBUG, "server closed the connection%s",
		    (SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN) ? "" :
		    " without close_notify");
	} else {
		mt_tls_reason_bufferevent(bev, err, why, sizeof(why));
		mt_log_c(&t->log, MT_LOG_NOTICE, "server connection failed: %s",
		    why);
	}
	t->server_eof = 1;
	start_flushing(t);
}

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct mt_tunnel *t = arg;

	if (t->state == MT_T_OPEN)
		pump(t, bev, t->server, &t->up);
	else if (t->state == MT_T_LINGER)
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
	/* Before the server is ready, input waits (capped by watermark). */
}

static void
client_write(struct bufferevent *bev, void *arg)
{
	struct mt_tunnel *t = arg;

	if (t->state == MT_T_FLUSHING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			start_linger(t);
		return;
	}
	if (t->server != NULL && !t->server_eof &&
	    !(bufferevent_get_enabled(t->server) & EV_READ))
		bufferevent_enable(t->server, EV_READ);
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	struct mt_tunnel *t = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		mt_log_c(&t->log, MT_LOG_NOTICE, "the client accepted no data "
		    "for %llus (TIMEOUTbusy); closing", t->svc->conf->timeout_busy);
		mt_tunnel_free(t);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		mt_log_c(&t->log, MT_LOG_INFO, "client connection lost: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		mt_tunnel_free(t);
		return;
	}
	/* EOF: the client shut down its sending side. */
	t->client_eof = 1;
	bufferevent_disable(bev, EV_READ);
	if (t->state == MT_T_LINGER) {
		mt_tunnel_free(t);
		return;
	}
	if (t->state == MT_T_OPEN) {
		pump(t, bev, t->server, &t->up);
		forward_client_eof(t);
	}
}

static void
arm_idle_timer(struct mt_tunnel *t)
{
	unsigned long long idle = t->svc->conf->timeout_idle;
	time_t now = mt_tunnel_now(t);
	time_t due = t->last_active + (time_t)idle;

	mt_tunnel_set_timer(t, due > now ? (unsigned long long)(due - now) *
	    1000 : 0);
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct mt_tunnel *t = arg;

	switch (t->state) {
	case MT_T_OPEN:
		if (t->draining) {
			mt_log_c(&t->log, MT_LOG_NOTICE, "still open at the end "
			    "of TIMEOUTclose while shutting down; closing");
			mt_tunnel_free(t);
		} else if (mt_tunnel_now(t) - t->last_active >=
		    (time_t)t->svc->conf->timeout_idle) {
			mt_log_c(&t->log, MT_LOG_INFO, "idle for %llus "
			    "(TIMEOUTidle); closing", t->svc->conf->timeout_idle);
			mt_tunnel_free(t);
		} else {
			arm_idle_timer(t);
		}
		return;
	case MT_T_FLUSHING:
		mt_log_c(&t->log, MT_LOG_NOTICE, "the client did not take the "
		    "last %zu bytes within TIMEOUTclose; closing",
		    evbuffer_get_length(bufferevent_get_output(t->client)));
		mt_tunnel_free(t);
		return;
	case MT_T_LINGER:
		mt_tunnel_free(t);
		return;
	default:
		mt_tunnel_connect_timeout(t);
		return;
	}
}

/* Both sides are up: set the data path in motion. */
void
mt_tunnel_open(struct mt_tunnel *t)
{
	struct timeval busy = { (time_t)t->svc->conf->timeout_busy, 0 };
	enum mt_protocol proto = t->svc->conf->protocol;
	char desc[256];

	t->state = MT_T_OPEN;
	mt_tls_describe(t->ssl, desc, sizeof(desc));
	mt_log_c(&t->log, MT_LOG_INFO, "connected to %s [%s]%s%s: %s",
	    t->svc->targets[t->target].name, t->server_addr, proto ? " with " :
	    "", proto ? mt_starttls_command_name(proto) : "", desc);
	bufferevent_setcb(t->server, server_read, server_write, server_event, t);
	bufferevent_set_max_single_read(t->server, MT_TUNNEL_IO_CHUNK);
	bufferevent_set_max_single_write(t->server, MT_TUNNEL_IO_CHUNK);
	/* A read high mark makes bufferevent_openssl read in big chunks. */
	bufferevent_setwatermark(t->server, EV_READ, 0, MT_TUNNEL_HIGH_WATER);
	bufferevent_setwatermark(t->server, EV_WRITE, MT_TUNNEL_HIGH_WATER / 2,
	    0);
	bufferevent_setwatermark(t->client, EV_READ, 0, MT_TUNNEL_HIGH_WATER);
	bufferevent_setwatermark(t->client, EV_WRITE, MT_TUNNEL_HIGH_WATER / 2,
	    0);
	bufferevent_set_timeouts(t->server, NULL, &busy);
	bufferevent_set_timeouts(t->client, NULL, &busy);
	bufferevent_enable(t->server, EV_READ | EV_WRITE);

	/* The client reads the greeting first (STARTTLS); then what it sent
	 * while we were connecting goes to the server, over TLS. */
	if (t->replay != NULL) {
		bufferevent_write(t->client, t->replay, t->replay_len);
		t->down += t->replay_len;
		free(t->replay);
		t->replay = NULL;
	}
	pump(t, t->client, t->server, &t->up);
	if (t->client_eof)
		forward_client_eof(t);
	else
		bufferevent_enable(t->client, EV_READ);
	t->last_active = mt_tunnel_now(t);
	if (t->draining)
		mt_tunnel_set_timer(t, t->svc->conf->timeout_close * 1000);
	else
		arm_idle_timer(t);
}

int
mt_tunnel_start(struct mt_tunnel_env *env, struct mt_service *svc, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct mt_service_conf *conf = svc->conf;
	struct mt_tunnel *t;
	char err[256];

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto err0;
	t->env = env;
	t->server_fd = -1;
	mt_net_format(peer, peerlen, t->peer, sizeof(t->peer));
	t->log.service = conf->name;
	t->log.id = mt_service_next_id();
	t->log.peer = t->peer;
	mt_net_nodelay(fd);
	if (mt_net_apply_sockopts(fd, 'l', conf->sockopts, conf->nsockopts,
	    err, sizeof(err)) == -1) {
		mt_log_c(&t->log, MT_LOG_ERR, "%s", err);
		goto err1;
	}
	t->client = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (t->client == NULL || (t->timer = evtimer_new(env->base,
	    timer_fired, t)) == NULL)
		goto err2;
	t->svc = mt_service_ref(svc);
	atomic_fetch_add(&svc->active, 1);
	atomic_fetch_add(&svc->total, 1);
	clock_gettime(CLOCK_MONOTONIC, &t->started);
	env_link(t);
	bufferevent_set_max_single_read(t->client, MT_TUNNEL_IO_CHUNK);
	bufferevent_set_max_single_write(t->client, MT_TUNNEL_IO_CHUNK);
	bufferevent_setwatermark(t->client, EV_READ, 0, MT_TUNNEL_EARLY_MAX);
	bufferevent_setcb(t->client, client_read, client_write, client_event, t);
	bufferevent_enable(t->client, EV_READ);
	mt_log_c(&t->log, MT_LOG_INFO, "accepted");

	/* Success! (t may be gone already if every target failed at once.) */
	mt_tunnel_connect_first(t);
	return 0;

err2:
	if (t->client != NULL) {
		bufferevent_free(t->client);
		fd = -1;
	}
err1:
	if (fd != -1)
		close(fd);
	free(t);
	return -1;
err0:
	close(fd);
	return -1;
}

void
mt_tunnel_drain_all(struct mt_tunnel_env *env)
{
	struct mt_tunnel *t, *next;

	for (t = env->head; t != NULL; t = next) {
		next = t->next;
		t->draining = 1;
		if (t->state == MT_T_OPEN)
			mt_tunnel_set_timer(t, t->svc->conf->timeout_close * 1000);
		else if (t->state < MT_T_OPEN)
			mt_tunnel_free(t);
	}
}

void
mt_tunnel_abort_all(struct mt_tunnel_env *env)
{
	while (env->head != NULL)
		mt_tunnel_free(env->head);
}
