/*
 * secret: password files and password/token commands. See secret.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "fetch/secret.h"

/* What a command may print in all before it is cut off. */
#define CMD_OUTPUT_MAX (FT_SECRET_MAX + 2)
/* How often an exited-or-not child is looked at after its EOF. */
#define REAP_POLL_MS 5

extern char **environ;

void
ft_secret_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

int
ft_secret_first_line(const char *buf, size_t len, size_t *line_len)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - buf) : len;

	if (n > 0 && buf[n - 1] == '\r')
		n--;
	*line_len = n;
	return n == 0 ? -1 : 0;
}

/* A copy of buf[0..n) as a string; NULL when memory runs out. */
static char *
dup_secret(const char *buf, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		return NULL;
	memcpy(s, buf, n);
	s[n] = '\0';
	return s;
}

/* Read up to cap bytes of fd into buf; bytes read, or -1. */
static ssize_t
read_upto(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap) {
		n = read(fd, buf + got, cap - got);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int
check_file(int fd, const char *path, char *why, size_t whysz)
{
	struct stat st;

	if (fstat(fd, &st) == -1) {
		snprintf(why, whysz, "cannot read password file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whysz, "password file %s is not a regular file",
		    path);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(why, whysz, "password file %s may be read by group or "
		    "others (mode %04o): refusing it; chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

char *
ft_secret_read_file(const char *path, char *why, size_t whysz)
{
	char *buf = NULL, *s = NULL;
	size_t n;
	ssize_t got;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(why, whysz, "cannot open password file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (check_file(fd, path, why, whysz) == -1)
		goto err1;
	if ((buf = malloc(FT_SECRET_MAX + 2)) == NULL) {
		snprintf(why, whysz, "out of memory");
		goto err1;
	}
	if ((got = read_upto(fd, buf, FT_SECRET_MAX + 2)) < 0) {
		snprintf(why, whysz, "cannot read password file %s: %s", path,
		    strerror(errno));
		goto err2;
	}
	if (ft_secret_first_line(buf, (size_t)got, &n) == -1) {
		snprintf(why, whysz, "password file %s is empty", path);
		goto err2;
	}
	if (n > FT_SECRET_MAX) {
		snprintf(why, whysz, "the first line of password file %s is "
		    "longer than %d bytes", path, FT_SECRET_MAX);
		goto err2;
	}
	if ((s = dup_secret(buf, n)) == NULL)
		snprintf(why, whysz, "out of memory");

err2:
	OPENSSL_cleanse(buf, FT_SECRET_MAX + 2);
	free(buf);
err1:
	close(fd);
	return s;
}

/* ---- commands ---- */

struct ft_cmd {
	struct event_base *base;
	char what[32];
	pid_t pid;
	int fd;				/* read end; -1 after EOF */
	struct event *rd, *timer;
	struct timespec deadline;
	char *out;			/* CMD_OUTPUT_MAX */
	size_t len;
	int eof;
	ft_cmd_done_fn *done;
	void *arg;
};

static void
cmd_free(struct ft_cmd *c)
{
	if (c->rd != NULL)
		event_free(c->rd);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->fd != -1)
		close(c->fd);
	if (c->out != NULL) {
		OPENSSL_cleanse(c->out, CMD_OUTPUT_MAX);
		free(c->out);
	}
	free(c);
}

static void
kill_and_reap(struct ft_cmd *c)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGKILL);
	while (waitpid(c->pid, NULL, 0) == -1 && errno == EINTR)
		;
	c->pid = 0;
}

void
ft_cmd_cancel(struct ft_cmd *c)
{
	if (c == NULL)
		return;
	kill_and_reap(c);
	cmd_free(c);
}

static void
finish(struct ft_cmd *c, enum mt_fetch_status st, char *secret,
    const char *why)
{
	ft_cmd_done_fn *done = c->done;
	void *arg = c->arg;

	kill_and_reap(c);
	cmd_free(c);
	done(arg, st, secret, why);
}

/* The child exited with status ws: hand over the first line, or why not. */
static void
exited(struct ft_cmd *c, int ws)
{
	char why[256];
	char *s;
	size_t n;

	c->pid = 0;
	if (WIFSIGNALED(ws) || (WIFEXITED(ws) && WEXITSTATUS(ws) != 0)) {
		if (WIFEXITED(ws) && (WEXITSTATUS(ws) == 126 ||
		    WEXITSTATUS(ws) == 127)) {
			snprintf(why, sizeof(why), "%s could not be run (the "
			    "shell said %d)", c->what, WEXITSTATUS(ws));
			finish(c, MT_FETCH_CONFIG, NULL, why);
			return;
		}
		if (WIFSIGNALED(ws))
			snprintf(why, sizeof(why), "%s was killed by signal "
			    "%d", c->what, WTERMSIG(ws));
		else
			snprintf(why, sizeof(why), "%s exited with status %d",
			    c->what, WEXITSTATUS(ws));
		finish(c, MT_FETCH_TEMPFAIL, NULL, why);
		return;
	}
	if (ft_secret_first_line(c->out, c->len, &n) == -1 ||
	    n > FT_SECRET_MAX) {
		snprintf(why, sizeof(why), "%s printed %s", c->what,
		    n > FT_SECRET_MAX ? "a line that is too long" :
		    "nothing on its first line");
		finish(c, MT_FETCH_CONFIG, NULL, why);
		return;
	}
	if ((s = dup_secret(c->out, n)) == NULL) {
		finish(c, MT_FETCH_TEMPFAIL, NULL, "out of memory");
		return;
	}
	finish(c, MT_FETCH_OK, s, NULL);
}

static long
ms_left(const struct ft_cmd *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(c->deadline.tv_sec - now.tv_sec) * 1000 +
	    (c->deadline.tv_nsec - now.tv_nsec) / 1000000;
}

static void
arm(struct ft_cmd *c, long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

/* After EOF (or at the deadline): has the child exited? */
static void
try_reap(struct ft_cmd *c)
{
	char why[128];
	pid_t r;
	int ws;

	while ((r = waitpid(c->pid, &ws, WNOHANG)) == -1 && errno == EINTR)
		;
	if (r == c->pid) {
		exited(c, ws);
		return;
	}
	if (r == -1) {
		/* Reaped behind our back (SIGCHLD ignored): trust the output. */
		exited(c, 0);
		return;
	}
	if (ms_left(c) <= 0) {
		snprintf(why, sizeof(why), "%s did not finish in time; killed "
		    "it", c->what);
		finish(c, MT_FETCH_TEMPFAIL, NULL, why);
		return;
	}
	arm(c, ms_left(c) < REAP_POLL_MS ? ms_left(c) : REAP_POLL_MS);
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	try_reap(arg);
}

static void
readable(evutil_socket_t fd, short what, void *arg)
{
	struct ft_cmd *c = arg;
	char sink[4096];
	ssize_t n;

	(void)what;
	for (;;) {
		if (c->len < CMD_OUTPUT_MAX)
			n = read(fd, c->out + c->len, CMD_OUTPUT_MAX - c->len);
		else
			n = read(fd, sink, sizeof(sink));	/* past the cap */
		if (n > 0) {
			if (c->len < CMD_OUTPUT_MAX)
				c->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		break;			/* EOF or an error: the end of it */
	}
	OPENSSL_cleanse(sink, sizeof(sink));
	event_del(c->rd);
	close(c->fd);
	c->fd = -1;
	try_reap(c);
}

static int
spawn(struct ft_cmd *c, const char *command, int wfd)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { "sh", "-c", (char *)command, NULL };
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, wfd, 1);
	if (rc == 0)
		rc = posix_spawn(&c->pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

struct ft_cmd *
ft_cmd_start(struct event_base *base, const char *command, const char *what,
    unsigned timeout_ms, ft_cmd_done_fn *done, void *arg, char *why,
    size_t whysz)
{
	struct ft_cmd *c;
	int p[2] = { -1, -1 }, rc;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->out = malloc(CMD_OUTPUT_MAX)) == NULL) {
		free(c);
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->base = base;
	c->done = done;
	c->arg = arg;
	snprintf(c->what, sizeof(c->what), "%s", what);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1) {
		snprintf(why, whysz, "cannot run %s: %s", what, strerror(errno));
		goto err1;
	}
	c->fd = p[0];
	/* The child's end must block: a helper may not expect EAGAIN. */
	fcntl(p[1], F_SETFL, 0);
	rc = spawn(c, command, p[1]);
	close(p[1]);
	if (rc != 0) {
		snprintf(why, whysz, "cannot run %s: %s", what, strerror(rc));
		goto err1;
	}
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += timeout_ms / 1000;
	c->deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (c->deadline.tv_nsec >= 1000000000) {
		c->deadline.tv_sec++;
		c->deadline.tv_nsec -= 1000000000;
	}
	c->rd = event_new(base, c->fd, EV_READ | EV_PERSIST, readable, c);
	c->timer = evtimer_new(base, timer_fired, c);
	if (c->rd == NULL || c->timer == NULL || event_add(c->rd, NULL) == -1) {
		snprintf(why, whysz, "out of memory");
		goto err1;
	}
	arm(c, (long)timeout_ms);

	/* Success! */
	return c;

err1:
	ft_cmd_cancel(c);
	return NULL;
}
