/*
 * fetch: the job API (include/mailtunnel/fetch.h) - configuration checks
 * and copies, the life of a job, its result and summary line. The run
 * itself is in fetch_run.c.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include <event2/event.h>

#include "fetch/fetch_int.h"
#include "fetch/secret.h"
#include "mailtunnel/deliver.h"
#include "mailtunnel/fetch_url.h"
#include "mailtunnel/sasl.h"
#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"

#define FOLDER_NAME_MAX 1000

void
mt_fetch_conf_init(struct mt_fetch_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = -1;
	c->command_timeout_ms = 30000;
	c->timeout_connect_s = 30;
	c->timeout_io_s = 120;
}

void
mt_fetch_conf_from_url(struct mt_fetch_conf *c, const struct mt_fetch_url *u)
{
	c->proto = u->proto;
	c->starttls = u->starttls;
	c->host = u->host;
	c->port = u->port;
	c->user = u->user;
	c->auth = u->auth[0] != '\0' ? u->auth : NULL;
}

static int MT_PRINTF(3, 4)
bad(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

static int
check_auth(const struct mt_fetch_conf *c, char *err, size_t errsz)
{
	int secrets = (c->password_file != NULL) +
	    (c->password_command != NULL) + (c->token_command != NULL);
	int oauth;

	if (secrets != 1)
		return bad(err, errsz, secrets == 0 ? "no password: give a "
		    "password file, a password command or a token command" :
		    "give only one of password file, password command and "
		    "token command");
	if (c->auth == NULL || c->auth[0] == '\0')
		return 0;
	if (strcasecmp(c->auth, "PLAIN") != 0 &&
	    strcasecmp(c->auth, "LOGIN") != 0 &&
	    strcasecmp(c->auth, "XOAUTH2") != 0 &&
	    strcasecmp(c->auth, "OAUTHBEARER") != 0)
		return bad(err, errsz, "authentication mechanism %.24s is not "
		    "supported (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER)", c->auth);
	oauth = strcasecmp(c->auth, "XOAUTH2") == 0 ||
	    strcasecmp(c->auth, "OAUTHBEARER") == 0;
	if (oauth && c->token_command == NULL)
		return bad(err, errsz, "%s needs a token command", c->auth);
	if (!oauth && c->token_command != NULL)
		return bad(err, errsz, "a token command is for XOAUTH2 or "
		    "OAUTHBEARER, not %s", c->auth);
	return 0;
}

void
ft_job_deliver_opts(const struct mt_fetch_conf *c, struct mt_deliver_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (c->deliver_opts != NULL)
		*o = *c->deliver_opts;
	if (o->spool_dir == NULL)
		o->spool_dir = c->state_dir;
	if (o->dns == NULL)
		o->dns = c->dns;
}

static int
check_target(const struct mt_fetch_conf *c, char *err, size_t errsz)
{
	struct mt_deliver_opts o;
	struct event_base *base;
	struct mt_deliver *t;
	char why[512];

	if (c->deliver == NULL || c->deliver[0] == '\0')
		return bad(err, errsz, "no delivery target");
	/* Opening touches nothing on disk or on the network. */
	if ((base = event_base_new()) == NULL)
		return bad(err, errsz, "out of memory");
	ft_job_deliver_opts(c, &o);
	o.dns = NULL;			/* c->dns belongs to another base */
	t = mt_deliver_open_ex(c->deliver, base, NULL, &o, why, sizeof(why));
	mt_deliver_close(t);
	event_base_free(base);
	if (t == NULL)
		return bad(err, errsz, "%s", why);
	return 0;
}

static int
check_folders(const struct mt_fetch_conf *c, char *err, size_t errsz)
{
	size_t i;

	if (c->nfolders > 0 && c->proto == MT_FETCH_POP3)
		return bad(err, errsz, "POP3 has no folders (only IMAP has)");
	if (c->nfolders > MT_FETCH_MAX_FOLDERS)
		return bad(err, errsz, "more than %d folders",
		    MT_FETCH_MAX_FOLDERS);
	for (i = 0; i < c->nfolders; i++)
		if (c->folders[i] == NULL || c->folders[i][0] == '\0' ||
		    strlen(c->folders[i]) > FOLDER_NAME_MAX)
			return bad(err, errsz, "folder names must have 1 to "
			    "%d bytes", FOLDER_NAME_MAX);
	return 0;
}

int
mt_fetch_conf_check(const struct mt_fetch_conf *c, char *err, size_t errsz)
{
	if (c->proto != MT_FETCH_POP3 && c->proto != MT_FETCH_IMAP)
		return bad(err, errsz, "unknown protocol");
	if (c->host == NULL || c->host[0] == '\0' || strlen(c->host) > 253)
		return bad(err, errsz, "no server host name");
	if (c->port > 65535)
		return bad(err, errsz, "port %u is out of range", c->port);
	if (c->user == NULL || c->user[0] == '\0' || strlen(c->user) > 255)
		return bad(err, errsz, "no user name");
	if (c->state_dir == NULL || c->state_dir[0] == '\0')
		return bad(err, errsz, "no state directory");
	if (c->keep_seconds > 0 && !c->delete)
		return bad(err, errsz, "a keep time only makes sense with "
		    "deletion");
	if (c->timeout_connect_s == 0 || c->timeout_io_s == 0 ||
	    c->command_timeout_ms == 0)
		return bad(err, errsz, "timeouts must be positive");
	if (check_folders(c, err, errsz) == -1 ||
	    check_auth(c, err, errsz) == -1)
		return -1;
	return check_target(c, err, errsz);
}

#ifndef MT_LOCALSTATEDIR
#define MT_LOCALSTATEDIR "/var"
#endif

int
mt_fetch_state_dir_default(char *buf, size_t size, const char *user,
    const char *xdg_state_home, const char *home)
{
	int n;

	if (user != NULL && strcmp(user, "mailtunnel") == 0)
		n = snprintf(buf, size, "%s/lib/mailtunnel", MT_LOCALSTATEDIR);
	else if (xdg_state_home != NULL && xdg_state_home[0] == '/')
		n = snprintf(buf, size, "%s/mailtunnel", xdg_state_home);
	else if (home != NULL && home[0] == '/')
		n = snprintf(buf, size, "%s/.local/state/mailtunnel",
		    strcmp(home, "/") == 0 ? "" : home);
	else
		return -1;
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

char *
mt_fetch_account(const struct mt_fetch_conf *c, char *buf, size_t size)
{
	struct mt_fetch_url u;
	unsigned def;

	memset(&u, 0, sizeof(u));
	u.proto = c->proto;
	/* The mailbox is the same whether TLS starts at once or after
	 * STARTTLS: one account, one ledger. */
	u.starttls = 1;
	mt_strlcpy(u.user, c->user ? c->user : "", sizeof(u.user));
	mt_strlcpy(u.host, c->host ? c->host : "", sizeof(u.host));
	u.ipv6 = strchr(u.host, ':') != NULL;
	u.port = c->port;
	def = mt_fetch_url_default_port(c->proto, c->starttls);
	u.port_given = c->port != 0 && c->port != def;
	return mt_fetch_url_format(&u, buf, size);
}

int
mt_fetch_exit_code(enum mt_fetch_status status)
{
	switch (status) {
	case MT_FETCH_OK: return EX_OK;
	case MT_FETCH_TEMPFAIL: return EX_TEMPFAIL;
	case MT_FETCH_AUTH: return EX_NOPERM;
	case MT_FETCH_CONFIG: return EX_CONFIG;
	case MT_FETCH_PROTOCOL: return EX_DATAERR;
	case MT_FETCH_DELIVERY: return EX_CANTCREAT;
	}
	return EX_SOFTWARE;
}

const char *
mt_fetch_status_name(enum mt_fetch_status status)
{
	switch (status) {
	case MT_FETCH_OK: return "ok";
	case MT_FETCH_TEMPFAIL: return "temporary failure";
	case MT_FETCH_AUTH: return "authentication failed";
	case MT_FETCH_CONFIG: return "configuration error";
	case MT_FETCH_PROTOCOL: return "bad data from the server";
	case MT_FETCH_DELIVERY: return "delivery failed";
	}
	return "?";
}

/* ---- the copy of the configuration ---- */

static int
dup_str(const char **dst, const char *src)
{
	if (src == NULL)
		return 0;
	return (*dst = strdup(src)) == NULL ? -1 : 0;
}

static void
free_conf(struct mt_fetch *j)
{
	size_t i;

	free((char *)j->dopts.recipient);
	free((char *)j->dopts.recipient_header);
	free((char *)j->dopts.sender);
	free((char *)j->dopts.helo_name);
	free((char *)j->dopts.spool_dir);
	free((char *)j->dopts.tls_ca_file);
	free((char *)j->dopts.tls_check_host);

	free((char *)j->c.name);
	free((char *)j->c.host);
	free((char *)j->c.user);
	free((char *)j->c.auth);
	free((char *)j->c.password_file);
	free((char *)j->c.password_command);
	free((char *)j->c.token_command);
	free((char *)j->c.deliver);
	free((char *)j->c.state_dir);
	for (i = 0; i < j->nfolders; i++)
		free((char *)j->folders[i]);
	free(j->folders);
}

static int
copy_deliver_opts(struct mt_fetch *j, const struct mt_deliver_opts *o)
{
	struct mt_deliver_opts *d = &j->dopts;

	j->c.deliver_opts = d;
	if (o == NULL)
		return 0;
	*d = *o;
	d->recipient = d->recipient_header = d->sender = d->helo_name = NULL;
	d->spool_dir = d->tls_ca_file = d->tls_check_host = NULL;
	return dup_str(&d->recipient, o->recipient) == -1 ||
	    dup_str(&d->recipient_header, o->recipient_header) == -1 ||
	    dup_str(&d->sender, o->sender) == -1 ||
	    dup_str(&d->helo_name, o->helo_name) == -1 ||
	    dup_str(&d->spool_dir, o->spool_dir) == -1 ||
	    dup_str(&d->tls_ca_file, o->tls_ca_file) == -1 ||
	    dup_str(&d->tls_check_host, o->tls_check_host) == -1 ? -1 : 0;
}

static int
copy_conf(struct mt_fetch *j, const struct mt_fetch_conf *c)
{
	size_t i;

	j->c = *c;
	j->c.name = j->c.host = j->c.user = j->c.auth = NULL;
	j->c.password_file = j->c.password_command = j->c.token_command = NULL;
	j->c.deliver = j->c.state_dir = NULL;
	j->c.folders = NULL;
	j->c.nfolders = 0;
	if (dup_str(&j->c.name, c->name) == -1 ||
	    dup_str(&j->c.host, c->host) == -1 ||
	    dup_str(&j->c.user, c->user) == -1 ||
	    dup_str(&j->c.auth, c->auth) == -1 ||
	    dup_str(&j->c.password_file, c->password_file) == -1 ||
	    dup_str(&j->c.password_command, c->password_command) == -1 ||
	    dup_str(&j->c.token_command, c->token_command) == -1 ||
	    dup_str(&j->c.deliver, c->deliver) == -1 ||
	    dup_str(&j->c.state_dir, c->state_dir) == -1)
		return -1;
	if (copy_deliver_opts(j, c->deliver_opts) == -1)
		return -1;
	if (c->nfolders > 0 &&
	    (j->folders = calloc(c->nfolders, sizeof(char *))) == NULL)
		return -1;
	for (i = 0; i < c->nfolders; i++, j->nfolders++)
		if ((j->folders[i] = strdup(c->folders[i])) == NULL)
			return -1;
	if (j->c.port == 0)
		j->c.port = mt_fetch_url_default_port(c->proto, c->starttls);
	return 0;
}

/* ---- life of a job ---- */

static void
job_free(struct mt_fetch *j)
{
	if (j->ev != NULL)
		event_free(j->ev);
	if (j->fin != NULL)
		event_free(j->fin);
	if (j->batch_timer != NULL)
		event_free(j->batch_timer);
	free_conf(j);
	free(j);
}

static void finished(evutil_socket_t fd, short what, void *arg);

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ft_job_tick(arg);
}

struct mt_fetch *
mt_fetch_start(struct event_base *base, const struct mt_fetch_conf *c,
    mt_fetch_done_fn *done, void *arg)
{
	struct mt_fetch *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		goto err0;
	j->base = base;
	j->done = done;
	j->done_arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &j->started);
	if (copy_conf(j, c) == -1 ||
	    (j->ev = event_new(base, -1, 0, tick, j)) == NULL ||
	    (j->fin = event_new(base, -1, 0, finished, j)) == NULL)
		goto err1;
	j->log.service = j->c.name;
	mt_log_ctx_set_level(&j->log, j->c.log_level);
	mt_fetch_account(&j->c, j->account, sizeof(j->account));
	event_active(j->ev, EV_TIMEOUT, 0);

	/* Success! */
	return j;

err1:
	job_free(j);
err0:
	mt_log(MT_LOG_ERR, "cannot start a fetch: out of memory");
	return NULL;
}

double
ft_job_seconds(const struct mt_fetch *j)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - j->started.tv_sec) +
	    (double)(now.tv_nsec - j->started.tv_nsec) / 1e9;
}

void
ft_job_note(struct mt_fetch *j, enum mt_fetch_status st, const char *reason)
{
	if (st == MT_FETCH_OK || j->res.status != MT_FETCH_OK)
		return;
	j->res.status = st;
	mt_strlcpy(j->res.reason, reason, sizeof(j->res.reason));
}

static void record_failure(struct mt_fetch *j, enum mt_fetch_status st,
    int logged, const char *fmt, va_list ap) MT_PRINTF(4, 0);

static void
record_failure(struct mt_fetch *j, enum mt_fetch_status st, int logged,
    const char *fmt, va_list ap)
{
	char why[sizeof(j->res.reason)];

	vsnprintf(why, sizeof(why), fmt, ap);
	if (!logged && !j->ending)
		mt_log_c(&j->log, st == MT_FETCH_TEMPFAIL ? MT_LOG_WARNING :
		    MT_LOG_ERR, "%s", why);
	ft_job_note(j, st, why);
}

void
ft_job_stop(struct mt_fetch *j, enum mt_fetch_status st, int logged,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record_failure(j, st, logged, fmt, ap);
	va_end(ap);
	ft_job_finish(j);
}

void
ft_job_fail(struct mt_fetch *j, enum mt_fetch_status st, int logged,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record_failure(j, st, logged, fmt, ap);
	va_end(ap);
	if (j->ending || j->failing)
		return;
	/* Complete messages waiting in the batch are kept: commit them
	 * first, then end (after_flush finishes the job). */
	if (j->nbatch > 0) {
		j->failing = 1;
		if (j->conn_started)
			ft_conn_pause(&j->conn, 1);
		if (j->cur.dm != NULL)
			mt_deliver_abort(j->cur.dm);
		memset(&j->cur, 0, sizeof(j->cur));
		if (!j->flushing)
			ft_job_flush(j);
		return;
	}
	ft_job_finish(j);
}

void
ft_job_progress(struct mt_fetch *j)
{
	struct mt_fetch_progress p;

	if (j->c.progress == NULL)
		return;
	p.folder = j->folder;
	p.done = j->idone;
	p.total = j->ntodo;
	p.bytes = j->res.bytes;
	p.total_bytes = j->todo_bytes;
	p.seconds = ft_job_seconds(j);
	p.finished = j->progress_final;
	j->c.progress(j->c.progress_arg, &p);
}

static void
human_bytes(uint64_t n, char *buf, size_t size)
{
	if (n >= 10 * 1000 * 1000)
		snprintf(buf, size, "%.1f MB", (double)n / 1e6);
	else if (n >= 10 * 1000)
		snprintf(buf, size, "%.1f kB", (double)n / 1e3);
	else
		snprintf(buf, size, "%llu bytes", (unsigned long long)n);
}

static void
summary(struct mt_fetch *j)
{
	const struct mt_fetch_result *r = &j->res;
	char bytes[32], extra[256] = "";
	size_t n = 0;

	human_bytes(r->bytes, bytes, sizeof(bytes));
	if (r->matched > 0)
		n += (size_t)snprintf(extra + n, sizeof(extra) - n,
		    ", %lu recognised", r->matched);
	if (r->skipped > 0 && n < sizeof(extra))
		n += (size_t)snprintf(extra + n, sizeof(extra) - n,
		    ", %lu skipped (too big)", r->skipped);
	if (r->failed > 0 && n < sizeof(extra))
		n += (size_t)snprintf(extra + n, sizeof(extra) - n,
		    ", %lu refused by the target", r->failed);
	if (r->deleted > 0 && n < sizeof(extra))
		snprintf(extra + n, sizeof(extra) - n, ", %lu deleted on the "
		    "server", r->deleted);
	mt_log_c(&j->log, MT_LOG_NOTICE, "%s: %lu message%s delivered (%s) "
	    "in %.2f s, %lu new of %lu on the server%s%s%s", j->account,
	    r->delivered, r->delivered == 1 ? "" : "s", bytes, r->seconds,
	    r->fresh, r->listed, extra, r->status == MT_FETCH_OK ? "" :
	    "; stopped: ", r->status == MT_FETCH_OK ? "" :
	    mt_fetch_status_name(r->status));
}

/* Close everything the run holds; no callback. */
static void
teardown(struct mt_fetch *j)
{
	ft_job_msg_abort_all(j);
	ft_cmd_cancel(j->cmd);
	j->cmd = NULL;
	if (j->conn_started)
		ft_conn_close(&j->conn);
	j->conn_started = 0;
	if (j->proto != NULL && j->ps != NULL)
		j->proto->free(j);
	ft_job_folder_reset(j);
	if (j->pend != NULL)
		mt_ledger_pending_free(j->pend, j->npend);
	j->pend = NULL;
	while (j->nabandoned > 0)
		free(j->abandoned[--j->nabandoned]);
	free(j->abandoned);
	j->abandoned = NULL;
	if (j->ledger != NULL && mt_ledger_close(j->ledger) == -1)
		ft_job_note(j, MT_FETCH_TEMPFAIL, "cannot save the fetch state");
	j->ledger = NULL;
	mt_deliver_close(j->target);
	j->target = NULL;
	mt_tls_ctx_free(j->own_tls);
	j->own_tls = NULL;
	ft_secret_free(j->secret);
	j->secret = NULL;
}

static void
finished(evutil_socket_t fd, short what, void *arg)
{
	struct mt_fetch *j = arg;

	(void)fd;
	(void)what;
	teardown(j);
	j->res.seconds = ft_job_seconds(j);
	j->progress_final = 1;
	ft_job_progress(j);
	summary(j);
	j->done(j->done_arg, &j->res);
	job_free(j);
}

void
ft_job_finish(struct mt_fetch *j)
{
	if (j->ending)
		return;
	j->ending = 1;
	if (j->conn_started)
		ft_conn_pause(&j->conn, 1);
	event_del(j->ev);
	event_active(j->fin, EV_TIMEOUT, 0);
}

void
mt_fetch_cancel(struct mt_fetch *j)
{
	if (j == NULL)
		return;
	j->ending = 1;
	teardown(j);
	job_free(j);
}
