/*
 * fetch_proto: what the POP3 and IMAP clients share - sending commands
 * (with traces that never show a secret), reading lines with a cap, and
 * choosing how to authenticate.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "fetch/fetch_int.h"
#include "mailtunnel/sasl.h"

/* Longest command line we build (UID sets are cut to fit). */
#define CMD_MAX 8192

static void queue_v(struct mt_fetch *j, const char *fmt, va_list ap)
    MT_PRINTF(2, 0);

static void
queue_v(struct mt_fetch *j, const char *fmt, va_list ap)
{
	char line[CMD_MAX + 3], shown[256];
	int n;

	n = vsnprintf(line, CMD_MAX + 1, fmt, ap);
	if (n < 0 || n > CMD_MAX) {
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "a command would be longer "
		    "than %d bytes", CMD_MAX);
		return;
	}
	if (mt_log_enabled_c(&j->log, MT_LOG_DEBUG))
		mt_log_c(&j->log, MT_LOG_DEBUG, "C: %s",
		    mt_log_redact(line, (size_t)n, shown, sizeof(shown)));
	memcpy(line + n, "\r\n", 2);
	evbuffer_add(j->conn.out, line, (size_t)n + 2);
}

void
ft_queue(struct mt_fetch *j, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	queue_v(j, fmt, ap);
	va_end(ap);
}

void
ft_send(struct mt_fetch *j, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	queue_v(j, fmt, ap);
	va_end(ap);
	ft_conn_flush(&j->conn);
}

static void
wipe(const void *data, size_t len, void *arg)
{
	(void)arg;
	OPENSSL_cleanse((void *)data, len);
	free((void *)data);
}

void
ft_send_secret(struct mt_fetch *j, const char *shown, const char *line)
{
	size_t n = strlen(line);
	char *copy;

	/* Alone in the buffer, so no merge copies it elsewhere. */
	ft_conn_flush(&j->conn);
	if ((copy = malloc(n + 2)) == NULL) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return;
	}
	memcpy(copy, line, n);
	memcpy(copy + n, "\r\n", 2);
	if (evbuffer_add_reference(j->conn.out, copy, n + 2, wipe, NULL) == -1) {
		wipe(copy, n + 2, NULL);
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return;
	}
	mt_log_c(&j->log, MT_LOG_DEBUG, "C: %s", shown);
	ft_conn_flush(&j->conn);
}

int
ft_line(struct mt_fetch *j, size_t max, const char **line, size_t *len,
    size_t *consumed)
{
	struct evbuffer *in = j->conn.in;
	struct evbuffer_ptr p;
	size_t eol = 0, avail = evbuffer_get_length(in), n;
	char *s;

	p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_LF);
	if (p.pos < 0) {
		if (avail > max + 2) {
			ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "the server sent a "
			    "line longer than %zu bytes", max);
			return -1;
		}
		return 0;
	}
	n = (size_t)p.pos;
	if (n > max + 1) {
		ft_job_fail(j, MT_FETCH_PROTOCOL, 0, "the server sent a line "
		    "longer than %zu bytes", max);
		return -1;
	}
	if ((s = (char *)evbuffer_pullup(in, (ev_ssize_t)(n + eol))) == NULL) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return -1;
	}
	*consumed = n + eol;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	*line = s;
	*len = n;
	return 1;
}

const char *
ft_printable(const char *s, size_t n, char *buf, size_t size)
{
	size_t i;

	if (size == 0)
		return buf;
	if (n > 200)
		n = 200;
	for (i = 0; i < n && i + 1 < size; i++)
		buf[i] = ((unsigned char)s[i] >= 0x20 &&
		    (unsigned char)s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static unsigned
named(const char *auth)
{
	if (strcasecmp(auth, "LOGIN") == 0)
		return FT_AUTH_LOGIN;
	return mt_sasl_mech_bit(auth, strlen(auth));
}

int
ft_choose_auth(struct mt_fetch *j, unsigned offered, int can_login,
    unsigned *mech)
{
	if (j->c.auth != NULL && j->c.auth[0] != '\0') {
		*mech = named(j->c.auth);
		if (*mech != FT_AUTH_LOGIN && offered != 0 &&
		    !(offered & *mech)) {
			ft_job_fail(j, MT_FETCH_CONFIG, 0, "the server does not "
			    "offer authentication with %s", j->c.auth);
			return -1;
		}
		return 0;
	}
	if (j->c.token_command != NULL) {
		if (offered & MT_SASL_OAUTHBEARER)
			*mech = MT_SASL_OAUTHBEARER;
		else if (offered == 0 || (offered & MT_SASL_XOAUTH2))
			*mech = MT_SASL_XOAUTH2;
		else {
			ft_job_fail(j, MT_FETCH_CONFIG, 0, "the server offers "
			    "neither XOAUTH2 nor OAUTHBEARER for a token");
			return -1;
		}
		return 0;
	}
	if (offered & MT_SASL_PLAIN)
		*mech = MT_SASL_PLAIN;
	else if (can_login)
		*mech = FT_AUTH_LOGIN;
	else {
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "the server offers no way to "
		    "log in with a password that mailtunnel knows (PLAIN, "
		    "USER/PASS, LOGIN)");
		return -1;
	}
	return 0;
}
