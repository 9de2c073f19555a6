/*
 * deliver_mda_run: one command run by the mda: target, watched from the
 * event loop without blocking it and without SIGCHLD, which belongs to
 * whoever embeds us.
 *
 * The end of the child is seen through a pidfd (pidfd_open, Linux 5.3),
 * readable once it has exited; where there is none, waitpid(WNOHANG) is
 * polled every MDA_POLL_MS. The child leads a process group of its own, so
 * a timeout kills everything it started: SIGTERM to the group, SIGKILL
 * MDA_KILL_GRACE later. Its stderr comes through a non-blocking pipe read
 * by the loop: the first MDA_ERR_CAP bytes are kept for the log, the rest
 * is read and dropped so the command never blocks on a full pipe. A
 * grandchild that keeps the pipe open does not hold us up: once the child
 * is reaped, what is in the pipe is read and the pipe closed.
 *
 * If the process ignores SIGCHLD (or reaps every child itself), the
 * kernel may have taken the exit status: that is reported as lost.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "fetch/deliver_mda.h"

struct mda_child {
	struct mt_deliver_msg *m;
	mda_exit_fn *done;
	pid_t pid;
	int pidfd;			/* -1: polling */
	int errfd;			/* -1: closed */
	struct event *exit_ev;		/* pidfd readable, or the poll timer */
	struct event *err_ev;
	struct event *kill_ev;		/* timeout, then the SIGKILL grace */
	int signalled;			/* 0, SIGTERM or SIGKILL sent */
	struct mda_exit x;
	size_t errlen;
};

static int
open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd != -1)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Read what the pipe holds now; keep the start. */
static void
read_err(struct mda_child *c)
{
	char buf[4096];
	ssize_t n;
	size_t k;

	while (c->errfd != -1) {
		n = read(c->errfd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				event_del(c->err_ev);
				close(c->errfd);
				c->errfd = -1;
			}
			return;
		}
		c->x.errtotal += (size_t)n;
		k = MDA_ERR_CAP - c->errlen;
		if (k > (size_t)n)
			k = (size_t)n;
		memcpy(c->x.err + c->errlen, buf, k);
		c->errlen += k;
		c->x.err[c->errlen] = '\0';
	}
}

static void
on_err(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_err(arg);
}

/* 1 when the child is reaped (or its status is lost), 0 if still running. */
static int
reap(struct mda_child *c)
{
	int status;
	pid_t r;

	while ((r = waitpid(c->pid, &status, WNOHANG)) == -1 && errno == EINTR)
		;
	if (r == 0)
		return 0;
	if (r == -1)
		c->x.lost = 1;		/* ECHILD: SIGCHLD ignored, or stolen */
	else
		c->x.status = status;
	c->pid = -1;
	return 1;
}

static void
on_exit_event(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, MDA_POLL_MS * 1000 };
	struct mda_child *c = arg;

	(void)fd;
	(void)what;
	if (!reap(c)) {
		if (c->pidfd == -1)
			evtimer_add(c->exit_ev, &tv);
		return;
	}
	event_del(c->exit_ev);
	event_del(c->kill_ev);
	read_err(c);			/* what it wrote before it ended */
	if (c->errfd != -1) {
		event_del(c->err_ev);
		close(c->errfd);
		c->errfd = -1;
	}
	c->done(c->m, &c->x);
}

static void
on_kill(evutil_socket_t fd, short what, void *arg)
{
	struct timeval grace = { MDA_KILL_GRACE / 1000,
	    (MDA_KILL_GRACE % 1000) * 1000 };
	struct mda_child *c = arg;

	(void)fd;
	(void)what;
	if (c->pid == -1)
		return;
	c->x.timed_out = 1;
	c->signalled = c->signalled == 0 ? SIGTERM : SIGKILL;
	kill(-c->pid, c->signalled);
	if (c->signalled == SIGTERM)
		evtimer_add(c->kill_ev, &grace);
}

/* The attributes: own process group, default signals, nothing blocked. */
static int
spawn_attr(posix_spawnattr_t *at)
{
	static const int sigs[] = { SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGQUIT,
	    SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ, SIGTTIN, SIGTTOU };
	sigset_t def, none;
	size_t i;

	sigemptyset(&def);
	sigemptyset(&none);
	for (i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		sigaddset(&def, sigs[i]);
	if (posix_spawnattr_init(at) != 0)
		return -1;
	if (posix_spawnattr_setflags(at, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) != 0 ||
	    posix_spawnattr_setpgroup(at, 0) != 0 ||
	    posix_spawnattr_setsigdefault(at, &def) != 0 ||
	    posix_spawnattr_setsigmask(at, &none) != 0) {
		posix_spawnattr_destroy(at);
		return -1;
	}
	return 0;
}

static int
spawn(struct mda_child *c, const char *command, int infd, int errw,
    char *const envp[])
{
	char *argv[] = { "/bin/sh", "-c", (char *)command, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int rc;

	if (spawn_attr(&at) == -1)
		return ENOMEM;
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
		posix_spawnattr_destroy(&at);
		return rc;
	}
	if ((rc = posix_spawn_file_actions_adddup2(&fa, infd, 0)) == 0 &&
	    (rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null",
	    O_WRONLY, 0)) == 0 &&
	    (rc = posix_spawn_file_actions_adddup2(&fa, errw, 2)) == 0)
		rc = posix_spawn(&c->pid, "/bin/sh", &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return rc;
}

static int
watch(struct mda_child *c, struct event_base *base, unsigned timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct timeval poll = { 0, MDA_POLL_MS * 1000 };

	c->pidfd = open_pidfd(c->pid);
	if (c->pidfd != -1)
		c->exit_ev = event_new(base, c->pidfd, EV_READ | EV_PERSIST,
		    on_exit_event, c);
	else
		c->exit_ev = evtimer_new(base, on_exit_event, c);
	c->err_ev = event_new(base, c->errfd, EV_READ | EV_PERSIST, on_err, c);
	c->kill_ev = evtimer_new(base, on_kill, c);
	if (c->exit_ev == NULL || c->err_ev == NULL || c->kill_ev == NULL)
		return -1;
	if (event_add(c->exit_ev, c->pidfd != -1 ? NULL : &poll) == -1 ||
	    event_add(c->err_ev, NULL) == -1 ||
	    evtimer_add(c->kill_ev, &tv) == -1)
		return -1;
	return 0;
}

struct mda_child *
mda_child_start(struct mt_deliver_msg *m, const char *command, int infd,
    char *const envp[], unsigned timeout_ms, mda_exit_fn *done)
{
	struct mda_child *c;
	int p[2] = { -1, -1 }, err;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto err0;
	c->m = m;
	c->done = done;
	c->pid = -1;
	c->pidfd = -1;
	c->errfd = -1;
	if (pipe2(p, O_CLOEXEC) == -1)
		goto err1;
	if ((err = spawn(c, command, infd, p[1], envp)) != 0) {
		errno = err;
		goto err1;
	}
	close(p[1]);
	p[1] = -1;
	close(infd);
	infd = -1;
	c->errfd = p[0];
	fcntl(c->errfd, F_SETFL, fcntl(c->errfd, F_GETFL) | O_NONBLOCK);
	if (watch(c, m->t->base, timeout_ms) == -1) {
		mda_child_kill(c);
		errno = ENOMEM;
		return NULL;
	}

	/* Success! */
	return c;

err1:
	err = errno;
	if (p[0] != -1)
		close(p[0]);
	if (p[1] != -1)
		close(p[1]);
	free(c);
	errno = err;
err0:
	if (infd != -1)
		close(infd);
	return NULL;
}

void
mda_child_free(struct mda_child *c)
{
	if (c == NULL)
		return;
	if (c->exit_ev != NULL)
		event_free(c->exit_ev);
	if (c->err_ev != NULL)
		event_free(c->err_ev);
	if (c->kill_ev != NULL)
		event_free(c->kill_ev);
	if (c->errfd != -1)
		close(c->errfd);
	if (c->pidfd != -1)
		close(c->pidfd);
	free(c);
}

void
mda_child_kill(struct mda_child *c)
{
	if (c == NULL)
		return;
	if (c->pid > 0) {
		kill(-c->pid, SIGKILL);
		/* SIGKILL cannot be caught: this wait is short. */
		while (waitpid(c->pid, NULL, 0) == -1 && errno == EINTR)
			;
	}
	mda_child_free(c);
}
