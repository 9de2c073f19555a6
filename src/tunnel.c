/*
 * tunnel: bridging an open tunnel, and tearing it down.
 *
 * What one side reads goes into the other side's pending buffer and is
 * written at once; only what the peer does not take stays buffered, and a
 * side stops being read when the other side's buffer passes the high
 * water mark. Each direction therefore holds at most MT_TUNNEL_HIGH_WATER
 * plus one read, whatever the peers do.
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

#include "mailtunnel/tls.h"
#include "tunnel_int.h"

/* After the last reply, how long a client may keep sending before close. */
#define MT_TUNNEL_LINGER_MS 5000

enum relay_result { RELAY_OK, RELAY_SRC_EOF, RELAY_SRC_ERROR, RELAY_DST_ERROR };

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

	t->timer_due = mt_tunnel_now(t) + (time_t)(ms / 1000);
	evtimer_add(&t->timer, &tv);
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
	    (unsigned long long)t->sent, (unsigned long long)t->received);
}

/* Say goodbye to the server; an unclean end would spoil the session. */
static void
close_server(struct mt_tunnel *t)
{
	if (!t->server_open)
		return;
	if (t->state >= MT_T_OPEN && !t->close_notify_sent)
		mt_stream_shutdown_write(&t->server);
	mt_stream_close(&t->server);
	t->server_open = 0;
}

void
mt_tunnel_free(struct mt_tunnel *t)
{
	struct mt_tunnel_env *env = t->env;

	mt_tunnel_connect_release(t);
	mt_tunnel_connect_cancel(t);
	close_server(t);
	mt_stream_close(&t->client);
	evtimer_del(&t->timer);
	evbuffer_free(t->up);
	evbuffer_free(t->down);
	free(t->replay);
	mt_starttls_watch_clear(&t->watch);
	env_unlink(t);
	log_closed(t);
	atomic_fetch_sub(&t->svc->active, 1);
	mt_service_unref(t->svc);
	free(t);
	env->closed(env->arg);
}

/* Re-arm the timer if a new deadline comes before the armed one. */
static void
deadline(struct mt_tunnel *t, time_t due)
{
	time_t now = mt_tunnel_now(t);

	if (due < t->timer_due)
		mt_tunnel_set_timer(t, due > now ?
		    (unsigned long long)(due - now) * 1000 : 0);
}

/*
 * Move data from src to dst: write what is pending, read more while dst
 * is not full, until neither side can make progress or the budget is
 * spent (then come back in the next loop turn).
 */
static enum relay_result
relay(struct mt_tunnel *t, struct mt_stream *src, struct mt_stream *dst,
    struct evbuffer **bufp, uint64_t *counter, time_t *blocked)
{
	struct evbuffer *buf = *bufp;
	int budget = MT_TUNNEL_BUDGET, again = 0;
	ssize_t n;

	for (;;) {
		if (evbuffer_get_length(buf) > 0 && mt_stream_writable(dst) &&
		    mt_stream_write(dst, buf) == MT_STREAM_ERROR)
			return RELAY_DST_ERROR;
		if (evbuffer_get_length(buf) == 0) {
			*blocked = 0;
		} else if (*blocked == 0 && !mt_stream_writable(dst)) {
			*blocked = mt_tunnel_now(t);
			deadline(t, *blocked +
			    (time_t)t->svc->conf->timeout_busy);
		}
		if (again || evbuffer_get_length(buf) >= MT_TUNNEL_HIGH_WATER ||
		    !mt_stream_readable(src))
			return RELAY_OK;
		if (budget-- == 0) {
			/* Fair to the other connections: resume next turn. */
			event_active(&src->ev, EV_READ, 0);
			return RELAY_OK;
		}
		n = mt_stream_read(src, buf, MT_TUNNEL_IO_CHUNK);
		if (n > 0) {
			*counter += (uint64_t)n;
			t->last_active = mt_tunnel_now(t);
		} else if (n == MT_STREAM_EOF) {
			return RELAY_SRC_EOF;
		} else if (n == MT_STREAM_ERROR) {
			return RELAY_SRC_ERROR;
		} else {
			/* Nothing: write what we have, then wait; an idle
			 * connection keeps no read space. */
			again = 1;
			mt_stream_buffer_release(bufp);
			buf = *bufp;
		}
	}
}

static void
start_linger(struct mt_tunnel *t)
{
	unsigned long long ms = t->svc->conf->timeout_close * 1000;

	if (t->client_eof) {
		mt_tunnel_free(t);
		return;
	}
	/* FIN after the data; read and drop whatever the client still sends. */
	shutdown(t->client.fd, SHUT_WR);
	t->state = MT_T_LINGER;
	mt_tunnel_set_timer(t, ms < MT_TUNNEL_LINGER_MS ? ms :
	    MT_TUNNEL_LINGER_MS);
}

/* The server is done: flush what it sent, then close. */
static void
start_flushing(struct mt_tunnel *t)
{
	t->server_eof = 1;
	close_server(t);
	t->state = MT_T_FLUSHING;
	mt_tunnel_set_timer(t, t->svc->conf->timeout_close * 1000);
}

static void flushing(struct mt_tunnel *t);

void
mt_tunnel_refuse(struct mt_tunnel *t, const char *line)
{
	mt_tunnel_connect_release(t);
	mt_tunnel_connect_cancel(t);
	/* What the client sent early goes nowhere. */
	evbuffer_drain(t->up, evbuffer_get_length(t->up));
	evbuffer_add(t->down, line, strlen(line));
	t->received += strlen(line);
	start_flushing(t);
	flushing(t);
}

static void
flushing(struct mt_tunnel *t)
{
	if (evbuffer_get_length(t->down) > 0 && mt_stream_writable(&t->client) &&
	    mt_stream_write(&t->client, t->down) == MT_STREAM_ERROR) {
		mt_log_c(&t->log, MT_LOG_INFO, "client connection lost: %s",
		    mt_stream_why(&t->client));
		mt_tunnel_free(t);
		return;
	}
	if (evbuffer_get_length(t->down) == 0)
		start_linger(t);
}

static void
lingering(struct mt_tunnel *t)
{
	ssize_t n;

	while (mt_stream_readable(&t->client)) {
		n = mt_stream_read(&t->client, t->up, MT_TUNNEL_IO_CHUNK);
		evbuffer_drain(t->up, evbuffer_get_length(t->up));
		if (n == MT_STREAM_EOF || n == MT_STREAM_ERROR) {
			mt_tunnel_free(t);
			return;
		}
	}
}

/* Client -> server. Returns -1 when the tunnel is gone or leaving OPEN. */
static int
run_up(struct mt_tunnel *t)
{
	switch (relay(t, &t->client, &t->server, &t->up, &t->sent,
	    &t->up_blocked)) {
	case RELAY_SRC_EOF:
		t->client_eof = 1;
		break;
	case RELAY_SRC_ERROR:
		mt_log_c(&t->log, MT_LOG_INFO, "client connection lost: %s",
		    mt_stream_why(&t->client));
		mt_tunnel_free(t);
		return -1;
	case RELAY_DST_ERROR:
		mt_log_c(&t->log, MT_LOG_NOTICE, "server connection failed: %s",
		    mt_stream_why(&t->server));
		start_flushing(t);
		return -1;
	case RELAY_OK:
		break;
	}
	/* Tell the server once everything the client sent is written. */
	if (t->client_eof && !t->close_notify_sent &&
	    evbuffer_get_length(t->up) == 0) {
		mt_stream_shutdown_write(&t->server);
		t->close_notify_sent = 1;
		mt_log_c(&t->log, MT_LOG_DEBUG, "client finished sending; told "
		    "the server");
	}
	return 0;
}

/* Server -> client. Returns -1 when the tunnel is gone or leaving OPEN. */
static int
run_down(struct mt_tunnel *t)
{
	switch (relay(t, &t->server, &t->client, &t->down, &t->received,
	    &t->down_blocked)) {
	case RELAY_SRC_EOF:
		mt_log_c(&t->log, MT_LOG_DEBUG, "server closed the connection%s",
		    mt_stream_clean_eof(&t->server) ? "" :
		    " without close_notify");
		start_flushing(t);
		flushing(t);
		return -1;
	case RELAY_SRC_ERROR:
		mt_log_c(&t->log, MT_LOG_NOTICE, "server connection failed: %s",
		    mt_stream_why(&t->server));
		start_flushing(t);
		flushing(t);
		return -1;
	case RELAY_DST_ERROR:
		mt_log_c(&t->log, MT_LOG_INFO, "client connection lost: %s",
		    mt_stream_why(&t->client));
		mt_tunnel_free(t);
		return -1;
	case RELAY_OK:
		break;
	}
	return 0;
}

/* Before the server is ready, keep what the client sends (capped). */
static void
early_client(struct mt_tunnel *t)
{
	ssize_t n;

	while (!t->client_eof && mt_stream_readable(&t->client) &&
	    evbuffer_get_length(t->up) < MT_TUNNEL_EARLY_MAX) {
		n = mt_stream_read(&t->client, t->up, MT_TUNNEL_EARLY_MAX -
		    evbuffer_get_length(t->up));
		if (n > 0) {
			t->sent += (uint64_t)n;
		} else if (n == MT_STREAM_AGAIN) {
			mt_stream_buffer_release(&t->up);
		} else if (n == MT_STREAM_EOF) {
			t->client_eof = 1;
		} else if (n == MT_STREAM_ERROR) {
			mt_log_c(&t->log, MT_LOG_INFO, "client connection lost "
			    "before the server was reached: %s",
			    mt_stream_why(&t->client));
			mt_tunnel_free(t);
			return;
		}
	}
}

static void
run(struct mt_tunnel *t)
{
	switch (t->state) {
	case MT_T_OPEN:
		if (run_up(t) == 0)
			run_down(t);
		return;
	case MT_T_FLUSHING:
		flushing(t);
		return;
	case MT_T_LINGER:
		lingering(t);
		return;
	default:
		early_client(t);
		return;
	}
}

static void
client_event(evutil_socket_t fd, short what, void *arg)
{
	run(arg);
}

void
mt_tunnel_server_event(evutil_socket_t fd, short what, void *arg)
{
	struct mt_tunnel *t = arg;

	if (t->state < MT_T_OPEN)
		mt_tunnel_connect_step(t);
	else
		run(t);
}

/* The earliest of the deadlines that apply to an open tunnel. */
static time_t
open_deadline(struct mt_tunnel *t)
{
	const struct mt_service_conf *conf = t->svc->conf;
	time_t due = t->last_active + (time_t)conf->timeout_idle;

	if (t->up_blocked && t->up_blocked + (time_t)conf->timeout_busy < due)
		due = t->up_blocked + (time_t)conf->timeout_busy;
	if (t->down_blocked &&
	    t->down_blocked + (time_t)conf->timeout_busy < due)
		due = t->down_blocked + (time_t)conf->timeout_busy;
	return due;
}

static void
open_timeout(struct mt_tunnel *t)
{
	const struct mt_service_conf *conf = t->svc->conf;
	time_t now = mt_tunnel_now(t), due = open_deadline(t);

	if (t->draining) {
		mt_log_c(&t->log, MT_LOG_NOTICE, "still open at the end of "
		    "TIMEOUTclose while shutting down; closing");
	} else if (due > now) {
		t->timer_due = MT_TUNNEL_NEVER;
		deadline(t, due);
		return;
	} else if (due == t->last_active + (time_t)conf->timeout_idle) {
		mt_log_c(&t->log, MT_LOG_INFO, "idle for %llus (TIMEOUTidle); "
		    "closing", conf->timeout_idle);
	} else {
		mt_log_c(&t->log, MT_LOG_NOTICE, "the %s accepted no data for "
		    "%llus (TIMEOUTbusy); closing", (t->up_blocked &&
		    t->up_blocked + (time_t)conf->timeout_busy <= now) ?
		    "server" : "client", conf->timeout_busy);
	}
	mt_tunnel_free(t);
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct mt_tunnel *t = arg;

	t->timer_due = MT_TUNNEL_NEVER;
	switch (t->state) {
	case MT_T_OPEN:
		open_timeout(t);
		return;
	case MT_T_FLUSHING:
		mt_log_c(&t->log, MT_LOG_NOTICE, "the client did not take the "
		    "last %zu bytes within TIMEOUTclose; closing",
		    evbuffer_get_length(t->down));
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
	enum mt_protocol proto = t->svc->conf->protocol;
	char desc[256];

	mt_tunnel_connect_cancel(t);	/* frees the address list */
	mt_tunnel_connect_release(t);
	t->state = MT_T_OPEN;
	mt_tls_describe(t->server.ssl, desc, sizeof(desc));
	mt_log_c(&t->log, MT_LOG_INFO, "connected to %s [%s]%s%s: %s",
	    t->svc->targets[t->target].name, t->server_addr, proto ? " with " :
	    "", proto ? mt_starttls_command_name(proto) : "", desc);
	/* STARTTLS: the client reads the server's greeting first. */
	if (t->replay != NULL) {
		evbuffer_add(t->down, t->replay, t->replay_len);
		t->received += t->replay_len;
		free(t->replay);
		t->replay = NULL;
	}
	t->last_active = mt_tunnel_now(t);
	t->timer_due = MT_TUNNEL_NEVER;
	if (t->draining)
		mt_tunnel_set_timer(t, t->svc->conf->timeout_close * 1000);
	else
		deadline(t, open_deadline(t));
	/* What the client sent while we were connecting goes first. */
	run(t);
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
	mt_net_format(peer, peerlen, t->peer, sizeof(t->peer));
	t->log.service = conf->name;
	t->log.id = mt_service_next_id();
	t->log.peer = t->peer;
	mt_log_ctx_set_level(&t->log, conf->debug_level);
	mt_net_nodelay(fd);
	if (mt_net_apply_sockopts(fd, 'l', conf->sockopts, conf->nsockopts,
	    err, sizeof(err)) == -1) {
		mt_log_c(&t->log, MT_LOG_ERR, "%s", err);
		goto err1;
	}
	if ((t->up = evbuffer_new()) == NULL ||
	    (t->down = evbuffer_new()) == NULL ||
	    evtimer_assign(&t->timer, env->base, timer_fired, t) == -1 ||
	    mt_stream_init(&t->client, env->base, fd, NULL, client_event,
	    t) == -1)
		goto err1;
	t->svc = mt_service_ref(svc);
	atomic_fetch_add(&svc->active, 1);
	atomic_fetch_add(&svc->total, 1);
	clock_gettime(CLOCK_MONOTONIC, &t->started);
	env_link(t);
	mt_log_c(&t->log, MT_LOG_INFO, "accepted");

	/* Success! (t may be gone already if every target failed at once.) */
	mt_tunnel_connect_begin(t);
	return 0;

err1:
	if (t->up != NULL)
		evbuffer_free(t->up);
	if (t->down != NULL)
		evbuffer_free(t->down);
	free(t);
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
