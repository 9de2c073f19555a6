/*
 * fetch: one fetch job. It downloads the mail of one account over verified
 * TLS (POP3 or IMAP, TLS from the start or STARTTLS), delivers every
 * message it has not delivered before to one target, exactly once across
 * crashes (doc/exactly-once.md), applies the deletion policy, and reports.
 *
 * Use:
 *   struct mt_fetch_conf c;
 *   mt_fetch_conf_init(&c);           defaults for every field
 *   c.host = ...; c.deliver = ...;    fill in the account
 *   job = mt_fetch_start(base, &c, done, arg);
 *   ... event_base_dispatch(base) ... done(arg, &result) runs once
 *
 * Everything runs on the given event base and never blocks it, except the
 * fsyncs of the ledger and the file targets (each a fraction of a
 * millisecond on a local disk; a daemon runs jobs on a thread of their
 * own). Commands (passwordCommand, tokenCommand) run as children whose
 * output the loop reads. No global state: jobs on different bases (and
 * threads) are independent; two jobs of the same account are kept apart
 * by the ledger's lock (the second one waits or is refused, see
 * lock_wait_ms).
 *
 * Threads: every call for a job (start, cancel) is made on the thread
 * that runs its event base; done runs there too.
 *
 * Ownership: mt_fetch_start() copies the configuration (strings, folder
 * list and delivery options included) except tls_ctx and dns, which are
 * borrowed and must outlive the job; dns must belong to the same base.
 * The handle lives until done has returned (the job frees itself then),
 * or until mt_fetch_cancel().
 *
 * Results: done runs exactly once, from the loop (never from inside
 * mt_fetch_start()), unless the job was cancelled. The result points to
 * memory that is valid during the call only. The job logs every problem
 * itself, once, with "[name]" as the prefix, and one summary line at
 * notice level at the end; result.reason repeats the first problem for a
 * status display.
 */
#ifndef MAILTUNNEL_FETCH_H
#define MAILTUNNEL_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "mailtunnel/config.h"
#include "mailtunnel/deliver.h"
#include "mailtunnel/fetch_url.h"

struct event_base;
struct evdns_base;
struct mt_tls_ctx;
struct mt_fetch;
struct mt_fetch_progress;

enum mt_fetch_first_run {
	MT_FETCH_FIRST_ALL = 0,		/* the first run delivers everything */
	MT_FETCH_FIRST_NEW,		/* it marks what is there as seen */
};

/* lock_wait_ms: wait as long as it takes. */
#define MT_FETCH_WAIT_FOREVER 0xffffffffu

#define MT_FETCH_MAX_FOLDERS 64

struct mt_fetch_conf {
	const char *name;		/* log prefix "[name]"; NULL: none */
	int log_level;			/* the service's own "debug"; -1 (set
					   by mt_fetch_conf_init): the
					   process-wide level */

	/* The account (see fetch_url.h for a URL that fills these). */
	enum mt_fetch_proto proto;
	int starttls;			/* plaintext port, STARTTLS required */
	const char *host;
	unsigned port;			/* 0: the protocol's default */
	const char *user;
	/*
	 * NULL or "": choose (OAuth with a token command, else PLAIN, else
	 * USER/PASS or LOGIN). "PLAIN", "LOGIN" (POP3 USER/PASS, IMAP
	 * LOGIN), "XOAUTH2", "OAUTHBEARER".
	 */
	const char *auth;
	const char *const *folders;	/* IMAP mailboxes; none: INBOX */
	size_t nfolders;

	/* The secret: exactly one of these. */
	const char *password_file;	/* refused if group/other may read */
	const char *password_command;	/* first line of its stdout */
	const char *token_command;	/* OAuth access token, first line */
	unsigned command_timeout_ms;	/* default 30 s */

	/* Where the mail goes and where the state is kept. */
	const char *deliver;		/* maildir:DIR, dir:DIR, mbox:FILE ... */
	/*
	 * Options of the command and server targets (deliver.h), copied;
	 * NULL: none. Their spool_dir defaults to state_dir, their dns to
	 * the job's.
	 */
	const struct mt_deliver_opts *deliver_opts;
	const char *state_dir;		/* must exist */

	/* Policies. */
	int delete;			/* delete on the server ... */
	unsigned long long keep_seconds; /* ... this long after delivery */
	uint64_t max_size;		/* bigger messages are skipped; 0: any */
	enum mt_fetch_first_run first_run;
	unsigned lock_wait_ms;		/* account busy: 0 refuse, else wait */

	/* TLS: a context of the caller's (borrowed), else one built from tls
	 * (CAfile, checkHost, ...) for this job; neither: the defaults
	 * (system store, verify the URL host). */
	struct mt_tls_ctx *tls_ctx;
	const struct mt_tls_conf *tls;
	/* Revocation checks after the handshake (borrowed, like tls_ctx);
	 * NULL: none. The cache may be NULL. */
	const struct mt_ocsp_conf *ocsp;
	struct mt_ocsp_cache *ocsp_cache;

	unsigned timeout_connect_s;	/* DNS, TCP, STARTTLS, TLS: default 30 */
	unsigned timeout_io_s;		/* a silent server: default 120 */
	struct evdns_base *dns;		/* NULL: the job makes its own */

	/* Progress, for a terminal display (may be NULL). */
	void (*progress)(void *arg, const struct mt_fetch_progress *p);
	void *progress_arg;
};

struct mt_fetch_progress {
	const char *folder;		/* NULL for POP3 */
	unsigned long done;		/* messages handled in this folder */
	unsigned long total;		/* messages to fetch in this folder */
	uint64_t bytes;			/* delivered by the job so far */
	uint64_t total_bytes;		/* announced sizes in this folder */
	double seconds;			/* since the job started */
	int finished;			/* the last call: the run is over */
};

/* What went wrong; each maps to one exit code (mt_fetch_exit_code). */
enum mt_fetch_status {
	MT_FETCH_OK = 0,		/* 0: done, maybe with nothing new */
	MT_FETCH_TEMPFAIL,		/* 75: network, busy, try again */
	MT_FETCH_AUTH,			/* 77: the server refused the login */
	MT_FETCH_CONFIG,		/* 78: options, secrets, state, TLS mode */
	MT_FETCH_PROTOCOL,		/* 65: the server sent bad data */
	MT_FETCH_DELIVERY,		/* 73: the target refused a message */
};

struct mt_fetch_result {
	enum mt_fetch_status status;
	char reason[512];		/* the first problem; "" when OK */
	unsigned long listed;		/* messages on the server */
	unsigned long fresh;		/* of those, not delivered before */
	unsigned long delivered;
	unsigned long matched;		/* recognised after UIDVALIDITY change */
	unsigned long skipped;		/* bigger than max_size */
	unsigned long failed;		/* refused by the target (kept) */
	unsigned long deleted;		/* deleted on the server */
	unsigned long recovered;	/* interrupted deliveries settled */
	uint64_t bytes;			/* bytes delivered (as received) */
	double seconds;
};

typedef void mt_fetch_done_fn(void *arg, const struct mt_fetch_result *r);

/* Defaults: everything zero or NULL except the timeouts. */
void mt_fetch_conf_init(struct mt_fetch_conf *c);

/*
 * Check c without touching the network or the disk (the target's spec,
 * the auth choice, exactly one secret, sizes). 0, or -1 with a one-line
 * message in err. mt_fetch_start() runs the same check.
 */
int mt_fetch_conf_check(const struct mt_fetch_conf *c, char *err,
    size_t errsz);

/*
 * Fill the account part of c (protocol, TLS mode, host, port, user, auth)
 * from a parsed URL; the mailbox is left to the caller (folders). Pointers
 * into u are stored: u must outlive c's use (mt_fetch_start() copies).
 */
void mt_fetch_conf_from_url(struct mt_fetch_conf *c,
    const struct mt_fetch_url *u);

/* Start; NULL only when memory runs out (logged). */
struct mt_fetch *mt_fetch_start(struct event_base *base,
    const struct mt_fetch_conf *c, mt_fetch_done_fn *done, void *arg);

/*
 * Stop now: connections are dropped, deliveries in progress are aborted,
 * the ledger is committed and closed. What was recorded stays true; what
 * was not is fetched again next time. done is not called. Not from
 * inside done.
 */
void mt_fetch_cancel(struct mt_fetch *job);

/* sysexits code of a status (0, 75, 77, 78, 65, 73). */
int mt_fetch_exit_code(enum mt_fetch_status status);
/* "ok", "temporary failure", ...: for status lines. */
const char *mt_fetch_status_name(enum mt_fetch_status status);

/*
 * The default state directory of a user: /var/lib/mailtunnel (from the
 * build's localstatedir) for the service user "mailtunnel", else
 * $XDG_STATE_HOME/mailtunnel when that is an absolute path, else
 * $HOME/.local/state/mailtunnel. Pure: the caller passes the
 * environment. 0, or -1 when none applies (no usable HOME) or it does not
 * fit.
 */
int mt_fetch_state_dir_default(char *buf, size_t size, const char *user,
    const char *xdg_state_home, const char *home);

/*
 * The ledger's account name for this configuration:
 * "proto://user@host:port" (user percent-encoded). Always NUL-terminated.
 */
char *mt_fetch_account(const struct mt_fetch_conf *c, char *buf,
    size_t size);

#endif
