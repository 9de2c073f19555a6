/*
 * daemon: see include/mailtunnel/daemon.h.
 *
 * The main thread is the control thread: it owns the configuration, the
 * current generation (services and sockets) and the signal handlers, and
 * runs no tunnels. Start-up order matters: sockets are bound and resolvers
 * initialised (they read /etc/resolv.conf) before chroot and before giving
 * up root; worker threads start after the fork into the background.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "daemon_int.h"
#include "mailtunnel/daemon.h"
#include "mailtunnel/fetcher.h"
#include "mailtunnel/log.h"
#include "mailtunnel/privileges.h"
#include "mailtunnel/service.h"
#include "mailtunnel/util.h"

struct daemon {
	const struct mt_daemon_args *args;
	struct mt_config *cfg;		/* global options (services taken) */
	struct mt_generation *gen;
	struct mt_worker **workers;
	size_t nworkers;
	struct mt_fetcher *fetcher;	/* the fetch services' thread */
	size_t max_conns;
	struct event_base *base;
	struct event *signals[5];
	struct event *poll_ev;
	int foreground;
	int stopping;
	int ready_fd;			/* to the waiting parent; -1 when none */
	char *pid_path;
};

static void
notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

/* Problems go to the log; before the fork also to the terminal. */
static void
log_report(const struct mt_config_report *report, int to_stderr)
{
	const struct mt_config_problem *p;
	size_t i;

	if (to_stderr)
		mt_config_report_print(report, stderr);
	for (i = 0; i < report->n; i++) {
		p = &report->v[i];
		if (p->file != NULL && p->line > 0)
			mt_log(p->error ? MT_LOG_ERR : MT_LOG_WARNING,
			    "%s:%u: %s", p->file, p->line, p->msg);
		else if (p->file != NULL)
			mt_log(p->error ? MT_LOG_ERR : MT_LOG_WARNING, "%s: %s",
			    p->file, p->msg);
		else
			mt_log(p->error ? MT_LOG_ERR : MT_LOG_WARNING, "%s",
			    p->msg);
	}
}

static int
setup_log(const struct mt_config *cfg, int foreground)
{
	mt_log_set_level(cfg->debug_level);
	if (cfg->output == NULL && foreground == 1) {
		mt_log_to_stderr();
		return 0;
	}
	if (cfg->output != NULL) {
		if (mt_log_to_file(cfg->output) == -1) {
			fprintf(stderr, "mailtunnel: cannot open log file %s: "
			    "%s\n", cfg->output, strerror(errno));
			return -1;
		}
	} else if (cfg->syslog) {
		mt_log_to_syslog("mailtunnel", cfg->log_facility);
	} else if (mt_log_to_file("/dev/null") == -1) {
		return -1;
	}
	return 0;
}

/*
 * Use the hard limit. Each tunnel holds two descriptors; a quarter of the
 * limit (at most 128) stays for listeners, logs, resolvers and fetches, so
 * the connection cap is reached before descriptors run out.
 */
static size_t
raise_nofile(void)
{
	struct rlimit rl;
	rlim_t reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 256;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > (1 << 20) ? (1 << 20) : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	reserve = rl.rlim_cur / 4 < 128 ? rl.rlim_cur / 4 : 128;
	if (rl.rlim_cur <= reserve + 2)
		return 1;
	return (size_t)(rl.rlim_cur - reserve) / 2;
}

static size_t
worker_count(const struct mt_config *cfg)
{
	long n;

	if (cfg->workers > 0)
		return (size_t)cfg->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (size_t)n : 1;
}

/* Fork; the parent waits for the child to say how start-up went. */
static int
daemonize(struct daemon *d)
{
	int fds[2], null;
	unsigned char status = EX_OSERR;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		mt_log(MT_LOG_ERR, "cannot fork into the background: %s",
		    strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(fds[1]);
		if (read(fds[0], &status, 1) != 1)
			status = EX_OSERR;
		_exit(status);
	}
	close(fds[0]);
	d->ready_fd = fds[1];
	setsid();
	if (chdir("/") == -1)
		return -1;
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (d->ready_fd != STDERR_FILENO)
			dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return 0;
}

static void
tell_parent(struct daemon *d, unsigned char status)
{
	if (d->ready_fd == -1)
		return;
	while (write(d->ready_fd, &status, 1) == -1 && errno == EINTR)
		;
	close(d->ready_fd);
	d->ready_fd = -1;
}

static int
write_pid(struct daemon *d, const char *path)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd == -1) {
		mt_log(MT_LOG_ERR, "cannot write pid file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	close(fd);
	d->pid_path = strdup(path);
	return 0;
}

static void
install_all(struct daemon *d)
{
	size_t i;

	for (i = 0; i < d->nworkers; i++)
		mt_generation_install(d->gen, d->workers[i], i);
	mt_fetcher_set_services(d->fetcher, d->gen->services,
	    d->gen->nservices);
}

/* Global options that cannot change while running. */
static void
warn_restart_only(const struct mt_config *old, const struct mt_config *new)
{
	static const char *const names[] = {
		"pid", "setuid", "setgid", "chroot"
	};
	const char *const a[] = { old->pid_file, old->setuid_user,
	    old->setgid_group, old->chroot_dir };
	const char *const b[] = { new->pid_file, new->setuid_user,
	    new->setgid_group, new->chroot_dir };
	size_t i;

	for (i = 0; i < 4; i++)
		if ((a[i] == NULL) != (b[i] == NULL) ||
		    (a[i] != NULL && strcmp(a[i], b[i]) != 0))
			mt_log(MT_LOG_WARNING, "reload: '%s' changed; that takes "
			    "effect when mailtunnel is restarted", names[i]);
	if (old->workers != new->workers || old->foreground != new->foreground)
		mt_log(MT_LOG_WARNING, "reload: '%s' changed; that takes effect "
		    "when mailtunnel is restarted", old->workers != new->workers ?
		    "workers" : "foreground");
}

static void
log_changes(const struct mt_generation *old, const struct mt_generation *new)
{
	size_t i, added = 0, removed = 0;

	for (i = 0; i < new->nservices; i++)
		if (mt_generation_find(old, new->services[i]->conf->name) == NULL)
			added++;
	for (i = 0; i < old->nservices; i++)
		if (mt_generation_find(new, old->services[i]->conf->name) == NULL)
			removed++;
	mt_log(MT_LOG_NOTICE, "configuration reloaded: %zu service%s (%zu new, "
	    "%zu removed); open connections keep their old settings",
	    new->nservices, new->nservices == 1 ? "" : "s", added, removed);
}

static void
reload(struct daemon *d)
{
	struct mt_config_report report = { 0 };
	struct mt_generation *gen;
	struct mt_config *cfg;
	int bind_failed;

	mt_log(MT_LOG_NOTICE, "reloading %s", d->args->config_path);
	notify("RELOADING=1");
	if ((cfg = mt_config_load(d->args->config_path, &report)) == NULL)
		goto fail;
	gen = mt_generation_build(cfg, d->gen, d->nworkers, &report, &bind_failed);
	if (gen == NULL) {
		mt_config_free(cfg);
		goto fail;
	}
	log_report(&report, 0);
	warn_restart_only(d->cfg, cfg);
	if (cfg->debug_level != d->cfg->debug_level ||
	    cfg->syslog != d->cfg->syslog || (cfg->output == NULL) !=
	    (d->cfg->output == NULL) || (cfg->output != NULL &&
	    strcmp(cfg->output, d->cfg->output) != 0))
		setup_log(cfg, d->foreground);
	log_changes(d->gen, gen);
	mt_generation_unref(d->gen);
	d->gen = gen;
	install_all(d);
	mt_config_free(d->cfg);
	d->cfg = cfg;
	mt_config_report_free(&report);
	notify("READY=1");
	return;

fail:
	log_report(&report, 0);
	mt_log(MT_LOG_ERR, "reload failed (%zu error%s); the running "
	    "configuration stays in use", report.errors,
	    report.errors == 1 ? "" : "s");
	mt_config_report_free(&report);
	notify("READY=1");
}

static void
poll_workers(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	size_t i;

	for (i = 0; i < d->nworkers; i++)
		if (!mt_worker_finished(d->workers[i]))
			return;
	if (!mt_fetcher_finished(d->fetcher))
		return;
	event_base_loopexit(d->base, NULL);
}

static void
begin_stop(struct daemon *d, int sig)
{
	struct timeval tv = { 0, 100000 };
	size_t i, open = 0;

	if (d->stopping) {
		mt_log(MT_LOG_NOTICE, "%s again: closing every connection now",
		    strsignal(sig));
		for (i = 0; i < d->nworkers; i++)
			mt_worker_abort(d->workers[i]);
		return;
	}
	d->stopping = 1;
	notify("STOPPING=1");
	for (i = 0; i < d->nworkers; i++)
		open += mt_worker_connections(d->workers[i]);
	mt_log(MT_LOG_NOTICE, "%s: no longer accepting; %zu connection%s "
	    "may finish within TIMEOUTclose", strsignal(sig), open,
	    open == 1 ? "" : "s");
	for (i = 0; i < d->nworkers; i++)
		mt_worker_drain(d->workers[i]);
	/* Fetches stop at once: what they delivered is recorded. */
	mt_fetcher_stop(d->fetcher);
	/* The sockets close once the workers let go of them too, so new
	 * clients are refused instead of queueing where nobody accepts. */
	mt_generation_unref(d->gen);
	d->gen = NULL;
	event_add(d->poll_ev, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	switch (sig) {
	case SIGHUP:
		if (!d->stopping)
			reload(d);
		break;
	case SIGUSR1:
		if (mt_log_reopen() == -1)
			mt_log(MT_LOG_ERR, "cannot reopen the log file: %s",
			    strerror(errno));
		else
			mt_log(MT_LOG_NOTICE, "log file reopened");
		break;
	default:
		begin_stop(d, (int)sig);
		break;
	}
}

static void
libevent_log(int severity, const char *msg)
{
	mt_log(severity >= EVENT_LOG_ERR ? MT_LOG_ERR : severity ==
	    EVENT_LOG_WARN ? MT_LOG_WARNING : MT_LOG_DEBUG, "libevent: %s", msg);
}

static const char *
default_pid_path(const struct daemon *d)
{
	const struct mt_config *cfg = d->cfg;

	/* "pid =" (set, empty) means none; unset means the default. */
	if (cfg->pid_file != NULL)
		return cfg->pid_file;
	if (mt_config_global_is_set(cfg, "pid") || d->foreground)
		return NULL;
	return MT_RUNSTATEDIR "/mailtunnel.pid";
}

static int
control_setup(struct daemon *d)
{
	static const int sigs[] = { SIGHUP, SIGUSR1, SIGTERM, SIGINT };
	size_t i;

	if ((d->base = event_base_new()) == NULL)
		return -1;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		d->signals[i] = evsignal_new(d->base, sigs[i], on_signal, d);
		if (d->signals[i] == NULL || evsignal_add(d->signals[i], NULL))
			return -1;
	}
	d->poll_ev = event_new(d->base, -1, EV_PERSIST, poll_workers, d);
	return d->poll_ev == NULL ? -1 : 0;
}

static int
workers_start(struct daemon *d)
{
	size_t i, share = d->max_conns / d->nworkers;

	if ((d->workers = calloc(d->nworkers, sizeof(*d->workers))) == NULL)
		return -1;
	for (i = 0; i < d->nworkers; i++)
		if ((d->workers[i] = mt_worker_new((unsigned)i, share)) == NULL)
			return -1;
	return (d->fetcher = mt_fetcher_new()) == NULL ? -1 : 0;
}

static void
teardown(struct daemon *d)
{
	size_t i;

	for (i = 0; d->workers != NULL && i < d->nworkers; i++) {
		if (d->workers[i] != NULL)
			mt_worker_abort(d->workers[i]);
		mt_worker_free(d->workers[i]);
	}
	free(d->workers);
	mt_fetcher_free(d->fetcher);
	mt_generation_unref(d->gen);
	for (i = 0; i < sizeof(d->signals) / sizeof(d->signals[0]); i++)
		if (d->signals[i] != NULL)
			event_free(d->signals[i]);
	if (d->poll_ev != NULL)
		event_free(d->poll_ev);
	if (d->base != NULL)
		event_base_free(d->base);
	if (d->pid_path != NULL) {
		unlink(d->pid_path);
		free(d->pid_path);
	}
	mt_config_free(d->cfg);
}

/* Everything up to the fork: config, log, TLS contexts, sockets. */
static int
prepare(struct daemon *d)
{
	struct mt_config_report report = { 0 };
	int rc = EX_CONFIG, bind_failed;

	d->cfg = mt_config_load(d->args->config_path, &report);
	if (d->cfg == NULL) {
		mt_config_report_print(&report, stderr);
		goto out;
	}
	d->foreground = d->args->force_foreground ? 1 : d->cfg->foreground;
	if (setup_log(d->cfg, d->foreground) == -1) {
		rc = EX_CANTCREAT;
		goto out;
	}
	d->max_conns = raise_nofile();
	d->nworkers = worker_count(d->cfg);
	d->gen = mt_generation_build(d->cfg, NULL, d->nworkers, &report,
	    &bind_failed);
	/* Before the fork the terminal hears every problem, whatever the log. */
	log_report(&report, d->cfg->output != NULL || d->foreground != 1);
	if (d->gen == NULL) {
		rc = bind_failed ? EX_OSERR : EX_CONFIG;
		goto out;
	}
	rc = EX_OK;
out:
	mt_config_report_free(&report);
	return rc;
}

int
mt_daemon_run(const struct mt_daemon_args *args)
{
	struct daemon d = { .args = args, .ready_fd = -1 };
	const char *pid;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(libevent_log);
	if ((rc = prepare(&d)) != EX_OK)
		goto out;
	rc = EX_OSERR;
	if (!d.foreground && daemonize(&d) == -1)
		goto out;
	if ((pid = default_pid_path(&d)) != NULL && write_pid(&d, pid) == -1)
		goto out;
	if (workers_start(&d) == -1 || control_setup(&d) == -1) {
		mt_log(MT_LOG_ERR, "cannot set up the event loops");
		goto out;
	}
	if (mt_privileges_drop(d.cfg) == -1)
		goto out;
	for (size_t i = 0; i < d.nworkers; i++)
		if (mt_worker_start(d.workers[i]) == -1)
			goto out;
	if (mt_fetcher_start(d.fetcher) == -1)
		goto out;
	install_all(&d);
	mt_log(MT_LOG_NOTICE, "mailtunnel %s started: %zu service%s, %zu "
	    "worker%s, up to %zu connections", PACKAGE_VERSION,
	    d.gen->nservices, d.gen->nservices == 1 ? "" : "s", d.nworkers,
	    d.nworkers == 1 ? "" : "s", d.max_conns);
	notify("READY=1");
	tell_parent(&d, EX_OK);
	event_base_dispatch(d.base);
	mt_log(MT_LOG_NOTICE, "stopped");
	rc = EX_OK;
out:
	tell_parent(&d, (unsigned char)rc);
	teardown(&d);
	return rc;
}
