/*
 * fetch_run: the steps of a run, in order. Each step starts work that
 * completes from the loop and then calls ft_job_step(), which starts the
 * next one:
 *
 *   lock the account (or wait for it) -> open the target and the TLS
 *   context -> settle interrupted deliveries (fetch_recover.c) -> get the
 *   secret -> connect, log in -> per folder: select, list, plan, details
 *   (IMAP, when sizes or fingerprints are needed), fetch, delete ->
 *   log out -> finish (fetch.c).
 *
 * Nothing talks to the server before the interrupted deliveries of the
 * last run are settled (doc/exactly-once.md).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "fetch/fetch_int.h"
#include "fetch/secret.h"
#include "mailtunnel/tls.h"
#include "mailtunnel/util.h"

enum {
	R_START = 0,
	R_LOCK_WAIT,
	R_RECOVER,
	R_SECRET,
	R_LOGIN,
	R_SELECT,
	R_LIST,
	R_DETAILS,
	R_FETCH,
	R_REMOVE,
	R_LOGOUT,
	R_END,
};

/* How often a waiting run looks at the lock again. */
#define LOCK_POLL_MS 200

static void begin_folder(struct mt_fetch *j);
static void after_fetch(struct mt_fetch *j);

void
ft_job_later(struct mt_fetch *j, unsigned ms)
{
	struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };

	evtimer_add(j->ev, &tv);
}

/* The ledger would not open: wait for the other run, or give up. */
static void
lock_busy(struct mt_fetch *j)
{
	struct timespec now;
	long waited;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!j->lock_logged) {
		mt_log_c(&j->log, MT_LOG_NOTICE, "%s: another fetch of this "
		    "account is running; waiting for it to finish", j->account);
		j->lock_logged = 1;
		j->lock_since = now;
	}
	waited = (long)(now.tv_sec - j->lock_since.tv_sec) * 1000 +
	    (now.tv_nsec - j->lock_since.tv_nsec) / 1000000;
	if (j->c.lock_wait_ms != MT_FETCH_WAIT_FOREVER &&
	    waited >= (long)j->c.lock_wait_ms) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "%s: gave up waiting for "
		    "another fetch of this account", j->account);
		return;
	}
	j->step = R_LOCK_WAIT;
	ft_job_later(j, LOCK_POLL_MS);
}

static int
open_tls(struct mt_fetch *j)
{
	struct mt_config_report report = { 0 };
	struct mt_service_conf svc;
	size_t i;

	if (j->c.tls_ctx != NULL) {
		j->tls = j->c.tls_ctx;
		return 0;
	}
	memset(&svc, 0, sizeof(svc));
	svc.name = (char *)(j->c.name != NULL ? j->c.name : "fetch");
	if (j->c.tls != NULL)
		svc.tls = *j->c.tls;
	else
		svc.tls.verify_chain = 1;
	j->own_tls = j->tls = mt_tls_ctx_new(&svc, &report);
	for (i = 0; i < report.n; i++)
		mt_log_c(&j->log, report.v[i].error ? MT_LOG_ERR :
		    MT_LOG_WARNING, "%s", report.v[i].msg);
	mt_config_report_free(&report);
	if (j->tls == NULL) {
		ft_job_fail(j, MT_FETCH_CONFIG, 1, "cannot set up TLS");
		return -1;
	}
	return 0;
}

static int
open_target(struct mt_fetch *j)
{
	struct mt_deliver_opts o;
	char err[512];
	unsigned n;

	ft_job_deliver_opts(&j->c, &o);
	j->target = mt_deliver_open_ex(j->c.deliver, j->base, &j->log, &o, err,
	    sizeof(err));
	if (j->target == NULL) {
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "%s", err);
		return -1;
	}
	n = mt_deliver_batch_max(j->target);
	j->batch_max = n < FT_BATCH_MAX ? n : FT_BATCH_MAX;
	return 0;
}

static void
lock(struct mt_fetch *j)
{
	enum mt_ledger_err err;
	int flags = MT_LEDGER_NOWAIT;

	if (j->c.lock_wait_ms > 0)
		flags |= MT_LEDGER_QUIET;
	j->ledger = mt_ledger_open(j->c.state_dir, j->account, flags, 0,
	    &j->log, &err);
	if (j->ledger == NULL) {
		if (err == MT_LEDGER_EBUSY && j->c.lock_wait_ms > 0) {
			lock_busy(j);
			return;
		}
		ft_job_fail(j, err == MT_LEDGER_ECORRUPT ||
		    err == MT_LEDGER_EINVAL ? MT_FETCH_CONFIG :
		    MT_FETCH_TEMPFAIL, 1, "%s: %s", j->account,
		    mt_ledger_errstr(err));
		return;
	}
	if (j->lock_logged)
		mt_log_c(&j->log, MT_LOG_INFO, "%s: the other fetch finished",
		    j->account);
	if (open_target(j) == -1 || open_tls(j) == -1)
		return;
	j->step = R_RECOVER;
	ft_job_recover(j);
}

static void
start(struct mt_fetch *j)
{
	char err[512];

	if (mt_fetch_conf_check(&j->c, err, sizeof(err)) == -1) {
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "%s", err);
		return;
	}
	j->proto = j->c.proto == MT_FETCH_POP3 ? &ft_pop3_proto :
	    &ft_imap_proto;
	mt_log_c(&j->log, MT_LOG_INFO, "fetching %s into %s", j->account,
	    j->c.deliver);
	lock(j);
}

void
ft_job_tick(struct mt_fetch *j)
{
	if (j->ending)
		return;
	if (j->step == R_START)
		start(j);
	else if (j->step == R_LOCK_WAIT)
		lock(j);
}

/* ---- the secret, the connection ---- */

static void
conn_open(void *arg)
{
	struct mt_fetch *j = arg;

	if (!j->ending)
		j->proto->opened(j);
}

static void
conn_data(void *arg)
{
	struct mt_fetch *j = arg;

	if (!j->ending)
		j->proto->data(j);
}

void
ft_job_conn_error(void *arg, enum mt_fetch_status st, const char *why)
{
	struct mt_fetch *j = arg;

	if (!j->ending)
		ft_job_fail(j, st, 1, "%s", why);
}

static void
connect_server(struct mt_fetch *j)
{
	struct ft_conn *c = &j->conn;

	memset(c, 0, sizeof(*c));
	c->base = j->base;
	c->dns = j->c.dns;
	c->tls = j->tls;
	c->ocsp = j->c.ocsp;
	c->ocsp_cache = j->c.ocsp_cache;
	c->log = &j->log;
	c->host = j->c.host;
	c->port = j->c.port;
	c->starttls = !j->c.starttls ? MT_PROTO_NONE :
	    j->c.proto == MT_FETCH_POP3 ? MT_PROTO_POP3 : MT_PROTO_IMAP;
	c->timeout_connect_s = j->c.timeout_connect_s;
	c->timeout_io_s = j->c.timeout_io_s;
	c->cb.open = conn_open;
	c->cb.data = conn_data;
	c->cb.error = ft_job_conn_error;
	c->arg = j;
	if (j->proto->init(j) == -1 || ft_conn_start(c) == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 0, "out of memory");
		return;
	}
	j->conn_started = 1;
	j->step = R_LOGIN;
}

static void
secret_done(void *arg, enum mt_fetch_status st, char *secret,
    const char *why)
{
	struct mt_fetch *j = arg;

	j->cmd = NULL;
	if (st != MT_FETCH_OK) {
		ft_job_fail(j, st, 0, "%s", why);
		return;
	}
	j->secret = secret;
	connect_server(j);
}

static void
get_secret(struct mt_fetch *j)
{
	const char *cmd = j->c.password_command;
	const char *what = "the password command";
	char why[512];

	j->step = R_SECRET;
	if (j->c.password_file != NULL) {
		if ((j->secret = ft_secret_read_file(j->c.password_file, why,
		    sizeof(why))) == NULL) {
			ft_job_fail(j, MT_FETCH_CONFIG, 0, "%s", why);
			return;
		}
		connect_server(j);
		return;
	}
	if (cmd == NULL) {
		cmd = j->c.token_command;
		what = "the token command";
	}
	j->cmd = ft_cmd_start(j->base, cmd, what, j->c.command_timeout_ms,
	    secret_done, j, why, sizeof(why));
	if (j->cmd == NULL)
		ft_job_fail(j, MT_FETCH_CONFIG, 0, "%s", why);
}

/* ---- folders ---- */

static void
next_folder(struct mt_fetch *j)
{
	/* POP3 keeps its listing: QUIT makes the deletions happen. */
	if (j->c.proto == MT_FETCH_IMAP && ++j->ifolder < j->nfolders) {
		ft_job_folder_reset(j);
		begin_folder(j);
		return;
	}
	j->step = R_LOGOUT;
	j->proto->logout(j);
}

static void
begin_folder(struct mt_fetch *j)
{
	if (j->c.proto == MT_FETCH_POP3) {
		j->folder = NULL;
		j->step = R_SELECT;
		ft_job_step(j);
		return;
	}
	j->folder = j->nfolders > 0 ? j->folders[j->ifolder] : "INBOX";
	j->step = R_SELECT;
	j->proto->select(j, j->c.delete);
}

/* The folder is open: find it in the ledger, then list it. */
static void
selected(struct mt_fetch *j)
{
	enum mt_ledger_kind kind = j->c.proto == MT_FETCH_POP3 ?
	    MT_LEDGER_POP3 : MT_LEDGER_IMAP;
	struct mt_ledger_range all;

	j->first_run = !mt_ledger_folder_known(j->ledger, kind, j->folder);
	j->lf = mt_ledger_folder(j->ledger, kind, j->folder, j->uidvalidity);
	if (j->lf == NULL) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot record the state "
		    "of folder %s", j->folder ? j->folder : "INBOX");
		return;
	}
	if (kind == MT_LEDGER_IMAP && j->first_run &&
	    j->c.first_run == MT_FETCH_FIRST_NEW && j->uidnext > 1) {
		all.lo = 1;
		all.hi = j->uidnext - 1;
		if (mt_ledger_mark_seen_uids(j->lf, &all, 1) == -1) {
			ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot record "
			    "the first run");
			return;
		}
		mt_log_c(&j->log, MT_LOG_NOTICE, "%s: first run: the %lu "
		    "messages in %s are taken as seen; only new mail will be "
		    "fetched", j->account, (unsigned long)j->exists, j->folder);
	}
	j->step = R_LIST;
	j->proto->list(j);
}

static void
listed(struct mt_fetch *j)
{
	int details = ft_job_plan(j);

	if (details == -1)
		return;
	if (details) {
		j->step = R_DETAILS;
		j->proto->details(j, mt_ledger_revalidating(j->lf));
		return;
	}
	j->step = R_FETCH;
	if (j->ntodo == 0) {
		after_fetch(j);
		return;
	}
	j->fetched = 0;
	j->proto->fetch(j);
}

static void
detailed(struct mt_fetch *j)
{
	if (ft_job_plan_details(j) == -1)
		return;
	j->step = R_FETCH;
	if (j->ntodo == 0) {
		after_fetch(j);
		return;
	}
	j->fetched = 0;
	j->proto->fetch(j);
}

/* Every message of the folder was handled: retire, then delete. */
static void
after_fetch(struct mt_fetch *j)
{
	if (mt_ledger_commit(j->ledger) == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot save the fetch "
		    "state");
		return;
	}
	if (j->c.proto == MT_FETCH_IMAP && !j->folder_errors &&
	    !j->stop_fetching && mt_ledger_revalidating(j->lf) &&
	    mt_ledger_retire_old(j->lf) == -1) {
		ft_job_fail(j, MT_FETCH_TEMPFAIL, 1, "cannot save the fetch "
		    "state");
		return;
	}
	if (j->c.delete) {
		long n = ft_job_plan_deletion(j);

		if (n < 0)
			return;
		if (n > 0) {
			j->step = R_REMOVE;
			j->proto->remove(j);
			return;
		}
	}
	next_folder(j);
}

void
ft_job_step(struct mt_fetch *j)
{
	if (j->ending)
		return;
	switch (j->step) {
	case R_RECOVER:
		get_secret(j);
		return;
	case R_LOGIN:
		j->ifolder = 0;
		begin_folder(j);
		return;
	case R_SELECT:
		selected(j);
		return;
	case R_LIST:
		listed(j);
		return;
	case R_DETAILS:
		detailed(j);
		return;
	case R_FETCH:
		after_fetch(j);
		return;
	case R_REMOVE:
		next_folder(j);
		return;
	case R_LOGOUT:
		j->step = R_END;
		ft_job_finish(j);
		return;
	default:
		return;
	}
}
