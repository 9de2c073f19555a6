/*
 * worker: see include/mailtunnel/worker.h.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "mailtunnel/log.h"
#include "mailtunnel/service.h"
#include "mailtunnel/tunnel.h"
#include "mailtunnel/worker.h"

/* After running out of descriptors, wait this long before accepting. */
#define MT_WORKER_EMFILE_PAUSE_MS 500

struct listener {
	struct mt_worker *w;
	struct mt_service *svc;
	struct evconnlistener *lev;
};

struct mt_worker {
	unsigned index;
	pthread_t thread;
	int started;
	atomic_int finished;		/* the loop has ended */
	struct event_base *base;
	struct evdns_base *dns;
	struct mt_tunnel_env env;
	size_t max_conns;

	/* Commands from the control thread. */
	pthread_mutex_t lock;
	int wake_fd;
	struct event *wake_ev;
	int have_set;
	struct mt_listen_set pending;
	int drain, abort;

	/* Worker thread only. */
	struct mt_listen_set current;
	struct listener *listeners;
	size_t nlisteners;
	int paused;			/* accepting stopped */
	int paused_logged;		/* the cap pause was logged */
	int starved;			/* accept(2) failing (EMFILE...) */
	struct event *resume_ev;
	int draining;
};

static void
listeners_enable(struct mt_worker *w, int on)
{
	size_t i;

	for (i = 0; i < w->nlisteners; i++) {
		if (on)
			evconnlistener_enable(w->listeners[i].lev);
		else
			evconnlistener_disable(w->listeners[i].lev);
	}
	w->paused = !on;
}

static void
maybe_resume(struct mt_worker *w)
{
	if (!w->paused || w->draining || w->env.count >= w->max_conns)
		return;
	listeners_enable(w, 1);
	if (w->paused_logged)
		mt_log(MT_LOG_NOTICE, "worker %u: accepting clients again "
		    "(%zu open)", w->index, w->env.count);
	w->paused_logged = 0;
}

static void
tunnel_closed(void *arg)
{
	struct mt_worker *w = arg;

	if (w->draining && w->env.count == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	maybe_resume(w);
}

static void
accepted(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	struct listener *l = arg;
	struct mt_worker *w = l->w;

	if (w->starved) {
		mt_log(MT_LOG_NOTICE, "worker %u: accepting clients again (%zu "
		    "open)", w->index, w->env.count);
		w->starved = 0;
	}
	mt_tunnel_start(&w->env, l->svc, fd, sa, (socklen_t)socklen);
	if (w->env.count >= w->max_conns && !w->paused) {
		listeners_enable(w, 0);
		mt_log(MT_LOG_WARNING, "worker %u: connection limit reached (%zu "
		    "open); not accepting until one closes", w->index,
		    w->env.count);
		w->paused_logged = 1;
	}
}

static void
resume_fired(evutil_socket_t fd, short what, void *arg)
{
	struct mt_worker *w = arg;

	/* Try again quietly: one line per episode, not one per retry. */
	if (w->starved && !w->draining && w->env.count < w->max_conns)
		listeners_enable(w, 1);
	else
		maybe_resume(w);
}

/* accept(2) failed: out of descriptors or memory must not spin the loop. */
static void
accept_failed(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	struct mt_worker *w = l->w;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, MT_WORKER_EMFILE_PAUSE_MS * 1000 };

	if (!w->starved)
		mt_log(MT_LOG_ERR, "[%s] cannot accept clients: %s; pausing "
		    "(%zu connections open)", l->svc->conf->name, strerror(err),
		    w->env.count);
	w->starved = 1;
	listeners_enable(w, 0);
	evtimer_add(w->resume_ev, &tv);
}

static void
listeners_free(struct mt_worker *w)
{
	size_t i;

	for (i = 0; i < w->nlisteners; i++)
		evconnlistener_free(w->listeners[i].lev);
	free(w->listeners);
	w->listeners = NULL;
	w->nlisteners = 0;
	if (w->current.release != NULL)
		w->current.release(w->current.owner);
	memset(&w->current, 0, sizeof(w->current));
}

static void
listeners_install(struct mt_worker *w, const struct mt_listen_set *set)
{
	struct listener *v;
	size_t i, n = 0;

	listeners_free(w);
	w->current = *set;
	if (set->n == 0 || (v = calloc(set->n, sizeof(*v))) == NULL)
		return;
	for (i = 0; i < set->n; i++) {
		v[n].w = w;
		v[n].svc = set->specs[i].svc;
		v[n].lev = evconnlistener_new(w->base, accepted, &v[n],
		    LEV_OPT_CLOSE_ON_EXEC, 0, set->specs[i].fd);
		if (v[n].lev == NULL) {
			mt_log(MT_LOG_ERR, "[%s] worker %u: cannot watch the "
			    "listening socket", v[n].svc->conf->name, w->index);
			continue;
		}
		evconnlistener_set_error_cb(v[n].lev, accept_failed);
		n++;
	}
	w->listeners = v;
	w->nlisteners = n;
	if (w->paused)
		listeners_enable(w, 0);
	maybe_resume(w);
}

static void
woken(evutil_socket_t fd, short what, void *arg)
{
	struct mt_worker *w = arg;
	struct mt_listen_set set;
	uint64_t v;
	int have_set, drain, abort_now;

	while (read(w->wake_fd, &v, sizeof(v)) == -1 && errno == EINTR)
		;
	pthread_mutex_lock(&w->lock);
	have_set = w->have_set;
	set = w->pending;
	w->have_set = 0;
	drain = w->drain;
	abort_now = w->abort;
	pthread_mutex_unlock(&w->lock);

	if (have_set && !w->draining)
		listeners_install(w, &set);
	else if (have_set && set.release != NULL)
		set.release(set.owner);
	if ((drain || abort_now) && !w->draining) {
		w->draining = 1;
		listeners_free(w);
		mt_tunnel_drain_all(&w->env);
	}
	if (abort_now)
		mt_tunnel_abort_all(&w->env);
	if (w->draining && w->env.count == 0)
		event_base_loopexit(w->base, NULL);
}

static void
wake(struct mt_worker *w)
{
	uint64_t one = 1;

	while (write(w->wake_fd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

struct mt_worker *
mt_worker_new(unsigned index, size_t max_conns)
{
	struct mt_worker *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto err0;
	w->index = index;
	w->max_conns = max_conns > 0 ? max_conns : 1;
	w->wake_fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	if ((w->base = event_base_new()) == NULL)
		goto err1;
	/* Reads /etc/resolv.conf and /etc/hosts now, before any chroot. */
	w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (w->dns == NULL)
		goto err1;
	if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST,
	    woken, w)) == NULL || event_add(w->wake_ev, NULL) == -1 ||
	    (w->resume_ev = evtimer_new(w->base, resume_fired, w)) == NULL)
		goto err1;
	w->env.base = w->base;
	w->env.dns = w->dns;
	w->env.closed = tunnel_closed;
	w->env.arg = w;

	/* Success! */
	return w;

err1:
	mt_worker_free(w);
err0:
	return NULL;
}

static void *
worker_main(void *arg)
{
	struct mt_worker *w = arg;

	event_base_dispatch(w->base);
	listeners_free(w);
	atomic_store(&w->finished, 1);
	return NULL;
}

int
mt_worker_start(struct mt_worker *w)
{
	sigset_t all, old;
	int rc;

	/* Signals belong to the control thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		mt_log(MT_LOG_ERR, "cannot start worker thread: %s",
		    strerror(rc));
		return -1;
	}
	w->started = 1;
	return 0;
}

void
mt_worker_set_listeners(struct mt_worker *w, const struct mt_listen_set *set)
{
	struct mt_listen_set old = { 0 };

	pthread_mutex_lock(&w->lock);
	/* A set the worker has not picked up yet is superseded. */
	if (w->have_set)
		old = w->pending;
	w->pending = *set;
	w->have_set = 1;
	pthread_mutex_unlock(&w->lock);
	if (old.release != NULL)
		old.release(old.owner);
	wake(w);
}

void
mt_worker_drain(struct mt_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->drain = 1;
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

void
mt_worker_abort(struct mt_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->abort = 1;
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

void
mt_worker_join(struct mt_worker *w)
{
	if (w->started) {
		pthread_join(w->thread, NULL);
		w->started = 0;
	}
}

int
mt_worker_finished(struct mt_worker *w)
{
	return atomic_load(&w->finished);
}

size_t
mt_worker_connections(const struct mt_worker *w)
{
	return w->env.count;
}

void
mt_worker_free(struct mt_worker *w)
{
	if (w == NULL)
		return;
	mt_worker_join(w);
	if (w->have_set && w->pending.release != NULL)
		w->pending.release(w->pending.owner);
	listeners_free(w);
	if (w->resume_ev != NULL)
		event_free(w->resume_ev);
	if (w->wake_ev != NULL)
		event_free(w->wake_ev);
	if (w->wake_fd != -1)
		close(w->wake_fd);
	if (w->dns != NULL)
		evdns_base_free(w->dns, 1);
	if (w->base != NULL)
		event_base_free(w->base);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
