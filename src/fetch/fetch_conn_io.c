/*
 * fetch_conn_io: an open connection - writes from `out`, reads into `in`
 * in large chunks while the owner wants them, the silence timeout. See
 * fetch_conn.h.
 */
#include "config.h"

#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fetch/fetch_conn.h"
#include "fetch/fetch_conn_int.h"

/* Reads per loop turn before other events get their turn. */
#define PUMP_BUDGET 32

static void
now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC_COARSE, ts);
}

void
ft_conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct ft_conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case FT_C_CONNECTING:
		if (c->s.can_write || c->s.can_read)
			ft_conn_connected(c);
		return;
	case FT_C_STARTTLS:
		ft_conn_starttls_step(c);
		return;
	case FT_C_HANDSHAKE:
		if (mt_stream_readable(&c->s) || mt_stream_writable(&c->s))
			ft_conn_handshake(c);
		return;
	case FT_C_OPEN:
		ft_conn_pump(c);
		return;
	default:
		return;
	}
}

void
ft_conn_opened(struct ft_conn *c)
{
	c->state = FT_C_OPEN;
	now(&c->last);
	ft_conn_set_timer(c, c->timeout_io_s);
	c->cb.open(c->arg);
	if (c->state == FT_C_OPEN && !c->failed)
		ft_conn_pump(c);
}

/* 0, or -1 when the connection failed. */
static int
flush_out(struct ft_conn *c)
{
	ssize_t n;

	while (evbuffer_get_length(c->out) > 0 && mt_stream_writable(&c->s)) {
		n = mt_stream_write(&c->s, c->out);
		if (n == MT_STREAM_ERROR) {
			ft_conn_fail(c, MT_FETCH_TEMPFAIL, "cannot send to %s "
			    "[%s]: %s", c->host, c->addr, mt_stream_why(&c->s));
			return -1;
		}
		if (n <= 0)
			break;
	}
	return 0;
}

void
ft_conn_flush(struct ft_conn *c)
{
	if (c->state == FT_C_OPEN && !c->failed)
		flush_out(c);
}

/* The server hung up; the owner has seen eof and did not close. */
static void
lost(struct ft_conn *c, const char *why)
{
	ft_conn_fail(c, MT_FETCH_TEMPFAIL, "connection to %s [%s] lost: %s",
	    c->host, c->addr, why);
}

/* One read; 1 to go on, 0 to stop. */
static int
read_once(struct ft_conn *c)
{
	ssize_t n = mt_stream_read(&c->s, c->in, FT_CONN_READ);

	if (n > 0) {
		c->bytes_in += (uint64_t)n;
		now(&c->last);
		c->cb.data(c->arg);
		return 1;
	}
	if (n == MT_STREAM_AGAIN)
		return 0;
	if (n == MT_STREAM_EOF) {
		c->eof = 1;
		c->cb.data(c->arg);
		if (c->state == FT_C_OPEN)
			lost(c, "the server closed the connection");
		return 0;
	}
	lost(c, mt_stream_why(&c->s));
	return 0;
}

void
ft_conn_pump(struct ft_conn *c)
{
	int budget = PUMP_BUDGET;

	if (c->failed || flush_out(c) == -1)
		return;
	if (c->paused)
		return;
	if (evbuffer_get_length(c->in) > 0) {
		/* Bytes left while paused come first. */
		c->cb.data(c->arg);
		if (c->state != FT_C_OPEN || c->failed || c->paused)
			return;
	}
	while (budget-- > 0) {
		if (evbuffer_get_length(c->in) >= FT_CONN_IN_HIGH) {
			/* The owner caps what it waits for below this. */
			ft_conn_fail(c, MT_FETCH_PROTOCOL, "%s [%s] sent more "
			    "than %u bytes that could not be used", c->host,
			    c->addr, FT_CONN_IN_HIGH);
			return;
		}
		if (!mt_stream_readable(&c->s) || !read_once(c))
			return;
		if (c->state != FT_C_OPEN || c->failed || c->paused)
			return;
	}
	/* More may wait: come back after the other events. */
	ft_conn_kick(c);
}

void
ft_conn_pause(struct ft_conn *c, int on)
{
	if (c->state != FT_C_OPEN || c->paused == !!on)
		return;
	c->paused = !!on;
	if (!on) {
		now(&c->last);
		ft_conn_kick(c);
	}
}

void
ft_conn_idle_check(struct ft_conn *c)
{
	struct timespec t;
	long elapsed;

	now(&t);
	elapsed = (long)(t.tv_sec - c->last.tv_sec);
	if (c->paused || elapsed < (long)c->timeout_io_s) {
		ft_conn_set_timer(c, c->paused ? c->timeout_io_s :
		    c->timeout_io_s - (unsigned)elapsed + 1);
		return;
	}
	ft_conn_fail(c, MT_FETCH_TEMPFAIL, "%s [%s] sent nothing for %us",
	    c->host, c->addr, c->timeout_io_s);
}
