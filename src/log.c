/*
 * log: formatting, sinks and redaction. See include/mailtunnel/log.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mailtunnel/log.h"

enum sink { SINK_STDERR, SINK_FILE, SINK_SYSLOG };

static atomic_int log_level = MT_LOG_DEFAULT_LEVEL;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum sink log_sink = SINK_STDERR;
static int log_fd = -1;			/* file sink; stable fd number */
static char *log_path;
static mt_log_hook_fn *log_hook;
static void *log_hook_arg;

static const char *const level_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"
};

const char *
mt_log_level_name(int level)
{
	if (level < 0 || level > MT_LOG_DEBUG)
		return "?";
	return level_names[level];
}

void
mt_log_set_level(int level)
{
	if (level < MT_LOG_EMERG)
		level = MT_LOG_EMERG;
	if (level > MT_LOG_DEBUG)
		level = MT_LOG_DEBUG;
	atomic_store(&log_level, level);
}

int
mt_log_get_level(void)
{
	return atomic_load(&log_level);
}

int
mt_log_enabled(int level)
{
	return level <= atomic_load(&log_level);
}

int
mt_log_enabled_c(const struct mt_log_ctx *ctx, int level)
{
	if (ctx != NULL && ctx->has_level)
		return level <= ctx->level;
	return mt_log_enabled(level);
}

void
mt_log_ctx_set_level(struct mt_log_ctx *ctx, int level)
{
	ctx->has_level = level >= 0;
	ctx->level = level;
}

void
mt_log_set_hook(mt_log_hook_fn *fn, void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_hook = fn;
	log_hook_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

/* Close what the current sink holds; called with the lock held. */
static void
sink_release(void)
{
	if (log_sink == SINK_FILE && log_fd >= 0)
		close(log_fd);
	if (log_sink == SINK_SYSLOG)
		closelog();
	log_fd = -1;
	free(log_path);
	log_path = NULL;
	log_sink = SINK_STDERR;
}

void
mt_log_to_stderr(void)
{
	pthread_mutex_lock(&log_lock);
	sink_release();
	pthread_mutex_unlock(&log_lock);
}

static int
open_log_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	    0640);
}

int
mt_log_to_file(const char *path)
{
	char *copy;
	int fd;

	if ((fd = open_log_file(path)) == -1)
		goto err0;
	if ((copy = strdup(path)) == NULL)
		goto err1;
	pthread_mutex_lock(&log_lock);
	sink_release();
	log_sink = SINK_FILE;
	log_fd = fd;
	log_path = copy;
	pthread_mutex_unlock(&log_lock);

	/* Success! */
	return 0;

err1:
	close(fd);
err0:
	return -1;
}

void
mt_log_to_syslog(const char *ident, int facility)
{
	pthread_mutex_lock(&log_lock);
	sink_release();
	openlog(ident, LOG_PID | LOG_NDELAY, facility);
	log_sink = SINK_SYSLOG;
	pthread_mutex_unlock(&log_lock);
}

int
mt_log_reopen(void)
{
	int fd, rc = 0;

	pthread_mutex_lock(&log_lock);
	if (log_sink == SINK_FILE) {
		/* dup2 keeps the fd number: no thread ever sees a closed fd. */
		if ((fd = open_log_file(log_path)) == -1) {
			rc = -1;
		} else {
			if (dup3(fd, log_fd, O_CLOEXEC) == -1)
				rc = -1;
			close(fd);
		}
	}
	pthread_mutex_unlock(&log_lock);
	return rc;
}

/* Append the "[service] #id peer: " prefix; returns the length written. */
static size_t
format_prefix(char *buf, size_t size, const struct mt_log_ctx *ctx)
{
	size_t n = 0;
	int r;

	if (ctx == NULL)
		return 0;
	if (ctx->service != NULL) {
		r = snprintf(buf + n, size - n, "[%s] ", ctx->service);
		n += (r > 0) ? (size_t)r : 0;
	}
	if (ctx->id != 0 && n < size) {
		r = snprintf(buf + n, size - n, "#%llu ", ctx->id);
		n += (r > 0) ? (size_t)r : 0;
	}
	if (ctx->peer != NULL && n < size) {
		r = snprintf(buf + n, size - n, "%s: ", ctx->peer);
		n += (r > 0) ? (size_t)r : 0;
	}
	return n < size ? n : size - 1;
}

static size_t
format_time(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	return strftime(buf, size, "%Y-%m-%d %H:%M:%S ", &tm);
}

/* One write per line, so lines from several threads never interleave. */
static void
emit(int level, const char *msg, size_t msglen)
{
	char line[4200];
	size_t n = 0;
	int fd;

	if (log_sink == SINK_SYSLOG) {
		syslog(level, "%.*s", (int)msglen, msg);
		return;
	}
	fd = (log_sink == SINK_FILE) ? log_fd : STDERR_FILENO;
	if (log_sink == SINK_FILE || getenv("JOURNAL_STREAM") == NULL)
		n = format_time(line, sizeof(line));
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ",
	    mt_log_level_name(level));
	if (msglen > sizeof(line) - n - 1)
		msglen = sizeof(line) - n - 1;
	memcpy(line + n, msg, msglen);
	n += msglen;
	line[n++] = '\n';
	while (write(fd, line, n) == -1 && errno == EINTR)
		;
}

void
mt_log_v(const struct mt_log_ctx *ctx, int level, const char *fmt, va_list ap)
{
	char msg[4096];
	size_t n;
	int r;

	if (!mt_log_enabled_c(ctx, level))
		return;
	n = format_prefix(msg, sizeof(msg), ctx);
	r = vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;

	pthread_mutex_lock(&log_lock);
	emit(level, msg, n);
	if (log_hook != NULL)
		log_hook(log_hook_arg, level, msg);
	pthread_mutex_unlock(&log_lock);
}

void
mt_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mt_log_v(NULL, level, fmt, ap);
	va_end(ap);
}

void
mt_log_c(const struct mt_log_ctx *ctx, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mt_log_v(ctx, level, fmt, ap);
	va_end(ap);
}

static const struct {
	const char *name;
	int facility;
} facilities[] = {
	{ "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV }, { "cron", LOG_CRON },
	{ "daemon", LOG_DAEMON }, { "ftp", LOG_FTP }, { "kern", LOG_KERN },
	{ "lpr", LOG_LPR }, { "mail", LOG_MAIL }, { "news", LOG_NEWS },
	{ "syslog", LOG_SYSLOG }, { "user", LOG_USER }, { "uucp", LOG_UUCP },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static int
parse_level_word(const char *s, int *level)
{
	size_t i;

	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0') {
		*level = s[0] - '0';
		return 0;
	}
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*level = (int)i;
			return 0;
		}
	}
	/* The long spellings syslog.conf users write. */
	if (strcasecmp(s, "error") == 0)
		*level = MT_LOG_ERR;
	else if (strcasecmp(s, "warn") == 0)
		*level = MT_LOG_WARNING;
	else if (strcasecmp(s, "emergency") == 0)
		*level = MT_LOG_EMERG;
	else if (strcasecmp(s, "critical") == 0)
		*level = MT_LOG_CRIT;
	else
		return -1;
	return 0;
}

int
mt_log_parse_level(const char *s, int *level, int *facility)
{
	const char *dot = strchr(s, '.');
	size_t i, flen;

	*facility = LOG_DAEMON;
	if (dot == NULL)
		return parse_level_word(s, level);
	flen = (size_t)(dot - s);
	for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++) {
		if (strlen(facilities[i].name) == flen &&
		    strncasecmp(s, facilities[i].name, flen) == 0) {
			*facility = facilities[i].facility;
			return parse_level_word(dot + 1, level);
		}
	}
	return -1;
}
