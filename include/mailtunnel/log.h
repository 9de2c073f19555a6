/*
 * log: one process-wide log with syslog levels and three sinks (stderr, a
 * file, syslog). Safe to call from every thread: each line leaves in a single
 * write(2). The sink is owned by this module; mt_log_reopen() swaps a file
 * sink in place (SIGUSR1) without a window where lines are lost.
 *
 * Lines about a connection carry a prefix "[service] #id peer: " built from a
 * struct mt_log_ctx that the caller owns and keeps alive for the call only.
 */
#ifndef MAILTUNNEL_LOG_H
#define MAILTUNNEL_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* The syslog levels, which are also stunnel's "debug = 0..7". */
enum mt_log_level {
	MT_LOG_EMERG = 0,
	MT_LOG_ALERT,
	MT_LOG_CRIT,
	MT_LOG_ERR,
	MT_LOG_WARNING,
	MT_LOG_NOTICE,
	MT_LOG_INFO,
	MT_LOG_DEBUG
};

#define MT_LOG_DEFAULT_LEVEL MT_LOG_NOTICE

struct mt_log_ctx {
	const char *service;		/* NULL: no "[service]" part */
	unsigned long long id;		/* 0: no "#id" part */
	const char *peer;		/* NULL: no peer part */
	int has_level;			/* 0: the process-wide level applies */
	int level;			/* else lines above this are dropped
					   (a service's own "debug") */
};

#if defined(__GNUC__)
#define MT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MT_PRINTF(a, b)
#endif

void mt_log(int level, const char *fmt, ...) MT_PRINTF(2, 3);
void mt_log_c(const struct mt_log_ctx *ctx, int level, const char *fmt, ...)
    MT_PRINTF(3, 4);
void mt_log_v(const struct mt_log_ctx *ctx, int level, const char *fmt,
    va_list ap) MT_PRINTF(3, 0);

/* Lines above this level are dropped before they are formatted. */
void mt_log_set_level(int level);
int mt_log_get_level(void);
int mt_log_enabled(int level);
/* Whether a line at level about ctx (NULL: none) would be written. */
int mt_log_enabled_c(const struct mt_log_ctx *ctx, int level);
/* Give ctx a level of its own; a negative level: the process-wide one. */
void mt_log_ctx_set_level(struct mt_log_ctx *ctx, int level);

/*
 * Sinks. Each replaces the current one. mt_log_to_file() returns -1 and keeps
 * the old sink when the file cannot be opened for appending.
 */
void mt_log_to_stderr(void);
int mt_log_to_file(const char *path);
void mt_log_to_syslog(const char *ident, int facility);
/* Reopen a file sink under its path (after logrotate moved it); 0 otherwise. */
int mt_log_reopen(void);

/*
 * A test hook: every formatted line (without timestamp and newline) is also
 * handed to fn. NULL removes it. Not for production sinks.
 */
typedef void mt_log_hook_fn(void *arg, int level, const char *line);
void mt_log_set_hook(mt_log_hook_fn *fn, void *arg);

/*
 * Parse stunnel's "debug = [facility.]level": level 0-7 or a syslog name
 * (emerg, alert, crit, err, warning, notice, info, debug). *facility is set
 * to a LOG_* facility (LOG_DAEMON when the value names none). 0 or -1.
 */
int mt_log_parse_level(const char *s, int *level, int *facility);
const char *mt_log_level_name(int level);

/*
 * Copy a protocol command line (POP3, IMAP, SMTP, as the client sends it) to
 * out for a trace, replacing what would reveal a secret with "<redacted>":
 * the argument of PASS, the credentials of IMAP LOGIN, and the initial
 * response of AUTH/AUTHENTICATE. The line need not be NUL-terminated; out
 * always is. Returns out.
 */
char *mt_log_redact(const char *line, size_t len, char *out, size_t outsz);

#endif
