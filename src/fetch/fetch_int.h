/*
 * fetch_int: the job (struct mt_fetch) as the files of the fetcher share
 * it: fetch.c (API, configuration, result), fetch_run.c (the steps of a
 * run), fetch_msg.c (one message: delivery, batch, exactly-once order),
 * fetch_policy.c (what to fetch and what to delete), pop3_client.c and
 * imap_client*.c (the protocols, behind struct ft_proto).
 *
 * A protocol client talks to the server through j->conn and reports to
 * the job by calling the ft_job_* functions below; it never touches the
 * ledger or the target. Everything runs on the job's event loop; a step
 * that ends the job only marks it, and the job is torn down from its own
 * deferred event, so no callback returns into freed memory.
 */
#ifndef MAILTUNNEL_FETCH_INT_H
#define MAILTUNNEL_FETCH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fetch/fetch_conn.h"
#include "fetch/hdrscan.h"
#include "mailtunnel/deliver.h"
#include "mailtunnel/fetch.h"
#include "mailtunnel/ledger.h"
#include "mailtunnel/log.h"

struct ft_cmd;

/* Most messages one folder listing may hold. */
#define FT_MAX_MESSAGES 4000000
/* Deliveries ended before their intents are committed together. */
#define FT_BATCH_MAX 32
/* Delivery backpressure: pause above, resume at. */
#define FT_DELIVER_HIGH (1024 * 1024)
#define FT_DELIVER_LOW (256 * 1024)
/* A batch is committed at the latest this long after its first message. */
#define FT_BATCH_WAIT_MS 100

/* What happens to a listed message in this run. */
enum ft_msg_state {
	FT_M_DONE = 0,		/* delivered (or seen) before: nothing */
	FT_M_TODO,		/* to fetch */
	FT_M_SKIP,		/* too big */
	FT_M_GONE,		/* the server no longer has it */
	FT_M_FAILED,		/* the target refused it */
	FT_M_OK,		/* delivered in this run */
};

struct ft_msg {
	uint32_t uid;		/* IMAP UID */
	uint32_t num;		/* POP3 message number */
	char *uidl;		/* POP3 */
	uint64_t size;		/* announced; 0: unknown */
	time_t date;		/* IMAP INTERNALDATE; 0: unknown */
	uint64_t fp;		/* IMAP: fingerprint, when asked for */
	uint8_t state;		/* enum ft_msg_state */
	uint8_t dele;		/* to delete in this session */
	uint8_t have_fp;
	uint8_t got;		/* IMAP: its body came in this command */
};

/* The protocol clients; each step ends in a call to ft_job_step(). */
struct ft_proto {
	const char *name;
	int (*init)(struct mt_fetch *j);
	void (*free)(struct mt_fetch *j);
	/* The connection is up: greeting, capabilities, login. */
	void (*opened)(struct mt_fetch *j);
	void (*data)(struct mt_fetch *j);
	/* IMAP: open j->folder (SELECT when writable, else EXAMINE). */
	void (*select)(struct mt_fetch *j, int writable);
	/* List what the server holds: ft_job_listed_*() per message. */
	void (*list)(struct mt_fetch *j);
	/* IMAP: sizes (and with fp, fingerprints) of the TODO messages. */
	void (*details)(struct mt_fetch *j, int fp);
	/* Fetch the TODO messages in order: ft_job_msg_*() per message. */
	void (*fetch)(struct mt_fetch *j);
	/* Delete the messages marked dele (POP3: DELE; IMAP: STORE+EXPUNGE
	 * and then ft_job_expunged()). */
	void (*remove)(struct mt_fetch *j);
	/* Say goodbye; POP3 reports ft_job_expunged() on QUIT's +OK. */
	void (*logout)(struct mt_fetch *j);
};

extern const struct ft_proto ft_pop3_proto;
extern const struct ft_proto ft_imap_proto;

/* The message being received. */
struct ft_cur {
	struct ft_msg *m;
	struct mt_deliver_msg *dm;
	struct ft_hdrscan hs;
	uint64_t bytes;
	int dead;		/* the target failed it: discard the rest */
	int ending;		/* mt_deliver_end() is under way */
};

/* A message ended (durable, not visible) waiting for its commit. */
struct ft_prep {
	struct ft_msg *m;
	struct mt_deliver_msg *dm;
	uint64_t fp;
	uint64_t bytes;
	int committed;		/* its commit said OK (group: provisional) */
	char token[MT_DELIVER_TOKEN_MAX + 1];
};

struct ft_range {
	uint32_t lo, hi;
};

struct mt_fetch {
	struct event_base *base;
	struct mt_fetch_conf c;		/* deep copy; strings below */
	struct mt_deliver_opts dopts;	/* c.deliver_opts points here */
	char *strs;			/* the copied strings */
	const char **folders;
	size_t nfolders;
	struct mt_log_ctx log;
	char account[600];
	mt_fetch_done_fn *done;
	void *done_arg;
	struct mt_fetch_result res;
	struct timespec started;
	int step;			/* enum in fetch_run.c */
	int ending;			/* finish scheduled */
	int progress_final;
	struct event *ev;		/* deferred steps, lock retries */
	struct event *fin;		/* the end of the job */
	struct event *batch_timer;
	struct timespec lock_since;
	int lock_logged;

	struct mt_ledger *ledger;
	struct mt_deliver *target;
	struct mt_tls_ctx *tls;		/* borrowed or own_tls */
	struct mt_tls_ctx *own_tls;
	char *secret;
	struct ft_cmd *cmd;
	struct ft_conn conn;
	int conn_started;
	const struct ft_proto *proto;
	void *ps;			/* the protocol's state */

	/* Recovery of interrupted deliveries. */
	struct mt_ledger_pending *pend;
	long npend, ipend;
	char **abandoned;		/* tokens to discard once durable */
	size_t nabandoned;

	/* The folder being worked on. */
	size_t ifolder;
	const char *folder;		/* NULL for POP3 */
	struct mt_ledger_folder *lf;
	uint32_t uidvalidity, uidnext, exists;
	int first_run;
	struct ft_msg *msgs;
	size_t nmsgs, capmsgs;
	size_t ntodo, idone;		/* for progress */
	uint64_t todo_bytes;
	struct ft_range *redelete;	/* IMAP: marked deleted, still there */
	size_t nredelete, capredelete;
	int folder_errors;		/* a message of this folder failed */
	int fetching;			/* proto->fetch is running */

	/* Messages. */
	struct ft_cur cur;
	struct ft_prep batch[FT_BATCH_MAX];
	size_t nbatch, batch_max, icommit;
	int flushing;			/* committing the batch */
	int intents_out;		/* intents of the batch may be durable */
	int group_open;			/* ends go into a sync group */
	int commit_group;		/* commits go into a sync group */
	int no_group;			/* the target cannot group */
	unsigned pause_mask;		/* why the connection is paused */
	int fetched;			/* the protocol finished the fetch */
	int stop_fetching;		/* a temporary target failure */
	unsigned consecutive_failures;
	int deleting;			/* deletions were sent this session */
};

/* ---- fetch.c ---- */
/* Record the first problem (logged here unless already logged) and end. */
void ft_job_fail(struct mt_fetch *j, enum mt_fetch_status st, int logged,
    const char *fmt, ...) MT_PRINTF(4, 5);
/* Remember a status without ending the run (the worst one wins). */
void ft_job_note(struct mt_fetch *j, enum mt_fetch_status st,
    const char *reason);
/* End the job from the loop: close everything, report, free. */
void ft_job_finish(struct mt_fetch *j);
double ft_job_seconds(const struct mt_fetch *j);
void ft_job_progress(struct mt_fetch *j);

/* ---- fetch_run.c ---- */
/* The protocol finished the step it was asked for: go on. */
void ft_job_step(struct mt_fetch *j);
/* j->ev fired: start the run, or retry what waits (the lock). */
void ft_job_tick(struct mt_fetch *j);
/* Run ft_job_tick() from the loop after ms milliseconds. */
void ft_job_later(struct mt_fetch *j, unsigned ms);
void ft_job_conn_error(void *arg, enum mt_fetch_status st, const char *why);

/* ---- fetch_policy.c ---- */
/* Listing: one message on the server. 0, or -1 (job failed). */
int ft_job_listed_uidl(struct mt_fetch *j, uint32_t num, const char *uidl,
    size_t len);
int ft_job_listed_size(struct mt_fetch *j, uint32_t num, uint64_t size);
int ft_job_listed_uid(struct mt_fetch *j, uint32_t uid);
/* IMAP: the message with this UID (TODO) has this size, date, fp. */
struct ft_msg *ft_job_find_uid(struct mt_fetch *j, uint32_t uid);
/* After listing: decide what to fetch (first run, done, max size). */
int ft_job_plan(struct mt_fetch *j);
/* After details: revalidation matches, size limits. */
int ft_job_plan_details(struct mt_fetch *j);
/* Choose what to delete; the number of messages marked dele. */
long ft_job_plan_deletion(struct mt_fetch *j);
/* The deletions sent were done (IMAP EXPUNGE, POP3 QUIT). */
void ft_job_expunged(struct mt_fetch *j);
void ft_job_folder_reset(struct mt_fetch *j);
int ft_range_add(struct ft_range **v, size_t *n, size_t *cap, uint32_t uid);

/* ---- fetch_msg.c ---- */
/* Why the connection is paused: any of these. */
#define FT_P_END	0x1	/* a message is ending */
#define FT_P_FLUSH	0x2	/* the batch is being committed */
#define FT_P_DRAIN	0x4	/* the target has too much pending */
void ft_job_pause_for(struct mt_fetch *j, unsigned why, int on);
/* The ledger key of m: its UIDL, or its UID in decimal. */
void ft_job_key(const struct mt_fetch *j, const struct ft_msg *m, char *buf,
    size_t size);
/* The target refused m (its end or its commit failed). */
void ft_job_refused(struct mt_fetch *j, struct ft_msg *m,
    enum mt_deliver_status st, const char *reason);
/* A message starts; 0, or -1 when the job cannot take it (failed). */
int ft_job_msg_begin(struct mt_fetch *j, struct ft_msg *m);
/* Content; the client pauses the connection if j->conn.paused is set. */
void ft_job_msg_data(struct mt_fetch *j, const char *p, size_t n);
/* The message is complete (complete 1) or the server lost it (0). */
void ft_job_msg_end(struct mt_fetch *j, int complete);
/* Whether the protocol should stop asking for more messages. */
int ft_job_stop_fetching(const struct mt_fetch *j);

/* ---- fetch_batch.c ---- */
/* Commit the batch: sync, intents, one ledger commit, commits, dones. */
void ft_job_flush(struct mt_fetch *j);
/* The protocol has fetched everything it was asked for. */
void ft_job_fetch_done(struct mt_fetch *j);
/* Abort what is in flight (job ending). */
void ft_job_msg_abort_all(struct mt_fetch *j);

/* ---- fetch_recover.c ---- */
void ft_job_recover(struct mt_fetch *j);

/* ---- protocol helpers (fetch_proto.c) ---- */
/* Queue a command line (CRLF added) and send; trace it, redacted. */
void ft_send(struct mt_fetch *j, const char *fmt, ...) MT_PRINTF(2, 3);
/* Queue a line holding a secret: traced as "<redacted>", wiped after. */
void ft_send_secret(struct mt_fetch *j, const char *shown, const char *line);
/* Queue a command line without sending it yet (pipelining). */
void ft_queue(struct mt_fetch *j, const char *fmt, ...) MT_PRINTF(2, 3);
/*
 * The next line in conn.in (without its line end), of at most max bytes:
 * 1 and *line, *len, *consumed (with the line end; drain it when done),
 * 0 when no whole line is there yet, -1 when it is too long (job failed).
 */
int ft_line(struct mt_fetch *j, size_t max, const char **line, size_t *len,
    size_t *consumed);
/* A server line made printable for a log line (cut at 200 bytes). */
const char *ft_printable(const char *s, size_t n, char *buf, size_t size);
/* The login command (POP3 USER/PASS, IMAP LOGIN) as a mechanism. */
#define FT_AUTH_LOGIN (1u << 30)
/* Which auth mechanism to use given what the server offers (MT_SASL_*
 * bits; offered 0 means unknown): 0 with *mech (an MT_SASL_* bit or
 * FT_AUTH_LOGIN), or -1 (job failed). */
int ft_choose_auth(struct mt_fetch *j, unsigned offered, int can_login,
    unsigned *mech);

#endif
