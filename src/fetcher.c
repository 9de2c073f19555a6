/*
 * fetcher: see include/mailtunnel/fetcher.h.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "mailtunnel/fetch.h"
#include "mailtunnel/fetch_service.h"
#include "mailtunnel/fetcher.h"
#include "mailtunnel/log.h"
#include "mailtunnel/service.h"

/* Spread the first runs at start so accounts do not all begin at once. */
#define MT_FETCHER_STAGGER_S 2

struct sched {
	struct sched *next;
	struct mt_fetcher *f;
	struct mt_service *svc;		/* the settings of the next run */
	struct mt_fetch *job;		/* running, or NULL */
	struct mt_service *job_svc;	/* what the job borrows from (its TLS
					   context): kept until it ends, even
					   when a reload replaces svc */
	struct event *timer;
	int removed;			/* gone from the configuration */
};

struct mt_fetcher {
	pthread_t thread;
	int started;
	atomic_int finished;
	struct event_base *base;
	struct evdns_base *dns;
	struct sched *head;
	int stopping;

	/* Commands from the control thread. */
	pthread_mutex_t lock;
	int wake_fd;
	struct event *wake_ev;
	struct mt_service **pending;
	size_t npending;
	int have_pending;
	int stop;
};

static void run_now(evutil_socket_t fd, short what, void *arg);

static void
job_gone(struct sched *s)
{
	s->job = NULL;
	mt_service_unref(s->job_svc);
	s->job_svc = NULL;
}

static void
sched_free(struct sched *s)
{
	struct sched **pp;

	for (pp = &s->f->head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	if (s->timer != NULL)
		event_free(s->timer);
	mt_service_unref(s->svc);
	free(s);
}

static void
arm(struct sched *s, unsigned long long seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };

	evtimer_add(s->timer, &tv);
}

static void
done(void *arg, const struct mt_fetch_result *r)
{
	struct sched *s = arg;

	job_gone(s);
	if (s->removed || s->f->stopping) {
		sched_free(s);
		return;
	}
	/* The job logged its summary; the next run follows the interval
	 * whatever the result, so a failing account does not storm. */
	arm(s, s->svc->conf->interval);
}

static void
run_now(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct mt_fetch_service_conf fc;
	struct mt_log_ctx log = { s->svc->conf->name, 0, NULL, 0, 0 };
	char err[512];

	mt_log_ctx_set_level(&log, s->svc->conf->debug_level);

	if (s->job != NULL)
		return;
	if (mt_fetch_service_fill(&fc, s->svc, 0, s->f->dns, err,
	    sizeof(err)) == -1) {
		mt_log_c(&log, MT_LOG_ERR, "cannot start a fetch: %s", err);
		arm(s, s->svc->conf->interval);
		return;
	}
	if ((s->job = mt_fetch_start(s->f->base, &fc.c, done, s)) == NULL)
		arm(s, s->svc->conf->interval);
	else
		s->job_svc = mt_service_ref(s->svc);
}

static void
sched_add(struct mt_fetcher *f, struct mt_service *svc, unsigned nth)
{
	struct sched *s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->timer = evtimer_new(f->base, run_now, s)) == NULL) {
		mt_log(MT_LOG_ERR, "[%s] out of memory", svc->conf->name);
		free(s);
		mt_service_unref(svc);
		return;
	}
	s->f = f;
	s->svc = svc;
	s->next = f->head;
	f->head = s;
	arm(s, (unsigned long long)nth * MT_FETCHER_STAGGER_S);
}

/* Take over a new set of services (references included). */
static void
install(struct mt_fetcher *f, struct mt_service **v, size_t n)
{
	struct sched *s, *next;
	unsigned fresh = 0;
	size_t i;

	for (s = f->head; s != NULL; s = s->next)
		s->removed = 1;
	for (i = 0; i < n; i++) {
		for (s = f->head; s != NULL; s = s->next)
			if (s->removed && strcasecmp(s->svc->conf->name,
			    v[i]->conf->name) == 0)
				break;
		if (s == NULL) {
			sched_add(f, v[i], fresh++);
			continue;
		}
		/* The same service: new settings from the next run on. */
		s->removed = 0;
		mt_service_unref(s->svc);
		s->svc = v[i];
	}
	for (s = f->head; s != NULL; s = next) {
		next = s->next;
		if (!s->removed)
			continue;
		if (s->job == NULL) {
			sched_free(s);
			continue;
		}
		mt_log(MT_LOG_NOTICE, "[%s] removed from the configuration; "
		    "stopping its fetch", s->svc->conf->name);
		mt_fetch_cancel(s->job);
		job_gone(s);
		sched_free(s);
	}
	free(v);
}

static void
stop_all(struct mt_fetcher *f)
{
	struct sched *s;

	f->stopping = 1;
	while ((s = f->head) != NULL) {
		if (s->job != NULL) {
			mt_log(MT_LOG_INFO, "[%s] shutting down: stopping its "
			    "fetch", s->svc->conf->name);
			mt_fetch_cancel(s->job);
			job_gone(s);
		}
		sched_free(s);
	}
	event_base_loopexit(f->base, NULL);
}

static void
woken(evutil_socket_t fd, short what, void *arg)
{
	struct mt_fetcher *f = arg;
	struct mt_service **v;
	uint64_t n;
	size_t count;
	int have, stop;

	while (read(f->wake_fd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	pthread_mutex_lock(&f->lock);
	have = f->have_pending;
	v = f->pending;
	count = f->npending;
	f->have_pending = 0;
	f->pending = NULL;
	f->npending = 0;
	stop = f->stop;
	pthread_mutex_unlock(&f->lock);
	if (have && !f->stopping)
		install(f, v, count);
	else if (have) {
		while (count > 0)
			mt_service_unref(v[--count]);
		free(v);
	}
	if (stop && !f->stopping)
		stop_all(f);
}

static void
wake(struct mt_fetcher *f)
{
	uint64_t one = 1;

	while (write(f->wake_fd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

struct mt_fetcher *
mt_fetcher_new(void)
{
	struct mt_fetcher *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->wake_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	/* Resolver files are read now, before any chroot. */
	if ((f->base = event_base_new()) == NULL ||
	    (f->dns = evdns_base_new(f->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL ||
	    (f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (f->wake_ev = event_new(f->base, f->wake_fd, EV_READ | EV_PERSIST,
	    woken, f)) == NULL || event_add(f->wake_ev, NULL) == -1) {
		mt_fetcher_free(f);
		return NULL;
	}
	return f;
}

static void *
fetcher_main(void *arg)
{
	struct mt_fetcher *f = arg;

	event_base_dispatch(f->base);
	atomic_store(&f->finished, 1);
	return NULL;
}

int
mt_fetcher_start(struct mt_fetcher *f)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&f->thread, NULL, fetcher_main, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		mt_log(MT_LOG_ERR, "cannot start the fetch thread: %s",
		    strerror(rc));
		return -1;
	}
	f->started = 1;
	return 0;
}

void
mt_fetcher_set_services(struct mt_fetcher *f, struct mt_service **v, size_t n)
{
	struct mt_service **mine = NULL, **old;
	size_t i, k = 0, nold;

	if (n > 0 && (mine = calloc(n, sizeof(*mine))) == NULL) {
		mt_log(MT_LOG_ERR, "out of memory: fetch services not updated");
		return;
	}
	for (i = 0; i < n; i++)
		if (v[i]->conf->kind == MT_SERVICE_FETCH)
			mine[k++] = mt_service_ref(v[i]);
	pthread_mutex_lock(&f->lock);
	old = f->pending;
	nold = f->npending;
	f->pending = mine;
	f->npending = k;
	f->have_pending = 1;
	pthread_mutex_unlock(&f->lock);
	/* A set the thread has not picked up yet is superseded. */
	while (nold > 0)
		mt_service_unref(old[--nold]);
	free(old);
	wake(f);
}

void
mt_fetcher_stop(struct mt_fetcher *f)
{
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_mutex_unlock(&f->lock);
	wake(f);
}

int
mt_fetcher_finished(struct mt_fetcher *f)
{
	return atomic_load(&f->finished);
}

void
mt_fetcher_free(struct mt_fetcher *f)
{
	if (f == NULL)
		return;
	if (f->started) {
		mt_fetcher_stop(f);
		pthread_join(f->thread, NULL);
	}
	while (f->head != NULL)
		sched_free(f->head);
	while (f->npending > 0)
		mt_service_unref(f->pending[--f->npending]);
	free(f->pending);
	if (f->wake_ev != NULL)
		event_free(f->wake_ev);
	if (f->wake_fd != -1)
		close(f->wake_fd);
	if (f->dns != NULL)
		evdns_base_free(f->dns, 1);
	if (f->base != NULL)
		event_base_free(f->base);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
