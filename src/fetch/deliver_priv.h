/*
 * deliver internals: the operations a target implements and the state the
 * common code (deliver.c) keeps for every target, message and recovery.
 * A target's private state hangs from t->priv and m->priv; the target frees
 * it in its close and release operations.
 */
#ifndef MAILTUNNEL_DELIVER_PRIV_H
#define MAILTUNNEL_DELIVER_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mailtunnel/deliver.h"

#define DL_OBUF		65536		/* output buffer per message */
#define DL_UID_MAX	80		/* UID shown in log lines */
#define DL_SENDER_MAX	256
#define DL_RETRY_MS	50		/* lock retry period */
#define DL_NAME_MAX	255		/* one file name */

/*
 * WRITING, ENDING: nothing can name the copy yet, so release removes it.
 * PREPARED, COMMITTING: a token is out; the copy stays for recover.
 * DONE: delivered.
 */
enum dl_phase { DL_WRITING, DL_ENDING, DL_PREPARED, DL_COMMITTING, DL_DONE };

/* Streaming CRLF -> LF and mboxrd ">From " quoting. */
struct dl_xform {
	int lf;				/* turn CRLF into LF */
	int quote;			/* quote ^>*From  lines */
	int cr;				/* a CR is held back */
	int bol;			/* at the start of a line */
	uint64_t gt;			/* '>' seen at the start of the line */
	unsigned fm;			/* bytes of "From " matched after them */
};

struct mt_deliver_msg {
	struct mt_deliver *t;
	struct mt_deliver_msg *next;	/* in t->msgs */
	struct event *ev;
	enum dl_phase phase;
	int failed;
	enum mt_deliver_status status;
	int terminal;			/* free after the callback */
	mt_deliver_result_fn *cb;
	void *cbarg;
	char reason[MT_DELIVER_REASON_MAX];
	char token[MT_DELIVER_TOKEN_MAX + 1];

	char key[MT_DELIVER_KEY_MAX + 1];
	char uid[DL_UID_MAX + 1];
	char sender[DL_SENDER_MAX + 1];
	uint64_t size;
	time_t date;

	struct dl_xform xf;
	int fd;				/* where output goes (-1: none) */
	uint64_t in_bytes;		/* as received (CRLF) */
	uint64_t out_bytes;		/* as stored */
	char last;			/* last byte stored */
	size_t olen;
	char *obuf;
	struct timespec started;	/* for lock timeouts */
	char where[3400];		/* the file written, for messages */
	size_t pending;			/* async targets: bytes not handed on */
	size_t lowat;
	mt_deliver_drain_fn *drain;
	void *drainarg;
	void *priv;
};

/* A recovery in progress. */
struct dl_rec {
	struct mt_deliver *t;
	struct dl_rec *next;		/* in t->recs */
	struct event *ev;
	mt_deliver_verdict_fn *cb;
	void *cbarg;
	enum mt_deliver_verdict verdict;
	char reason[MT_DELIVER_REASON_MAX];
	char key[MT_DELIVER_KEY_MAX + 1];
	char token[MT_DELIVER_TOKEN_MAX + 1];
	struct timespec started;
	void *priv;
};

/*
 * A target. Operations return 0 when done, DL_AGAIN to be called again
 * after DL_RETRY_MS (waiting for a lock), -1 when they failed (after
 * dl_fail()). end sets m->token; recover sets r->verdict. end and commit
 * may also return DL_WAIT: the target settles them later, from an event
 * of its own, with dl_settle(m, 0 or -1). write, when set, takes the bytes
 * of mt_deliver_write() instead of the transform into m->fd.
 */
#define DL_AGAIN 1
#define DL_WAIT 2
struct dl_ops {
	const char *scheme;
	int (*open)(struct mt_deliver *t, const char *arg, char *err,
	    size_t errsz);
	void (*close)(struct mt_deliver *t);
	int (*begin)(struct mt_deliver_msg *m);
	int (*end)(struct mt_deliver_msg *m);
	int (*commit)(struct mt_deliver_msg *m);
	void (*release)(struct mt_deliver_msg *m);	/* abort/free */
	int (*recover)(struct dl_rec *r);
	int (*discard)(struct mt_deliver *t, const char *token);
	int (*write)(struct mt_deliver_msg *m, const char *p, size_t n);
	int lf, quote;			/* the transform this target wants */
	/*
	 * How many messages may wait ended (between end and commit) at once;
	 * 0 means 1 (a target that holds a lock or a connection from end to
	 * commit).
	 */
	unsigned batch;
	int group;			/* supports mt_deliver_group_begin() */
};

struct mt_deliver {
	const struct dl_ops *ops;
	struct event_base *base;
	char *spec;
	char *log_service, *log_peer;
	struct mt_log_ctx log;
	unsigned lock_timeout_ms;
	struct mt_deliver_opts opts;	/* strings owned (deliver_envelope.c) */
	struct mt_deliver_msg *msgs;
	struct dl_rec *recs;
	void *priv;
	/* Group sync: what ends and commits left for one sync. */
	int grouping;
	int *gfds;			/* ended files: fdatasync, close */
	size_t ngfds, capgfds;
	int gdirs[4];			/* directories to fsync (not owned) */
	size_t ngdirs;
	struct event *gev;
	mt_deliver_group_fn *gcb;
	void *garg;
};

extern const struct dl_ops mt_deliver_maildir_ops;
extern const struct dl_ops mt_deliver_dir_ops;
extern const struct dl_ops mt_deliver_mbox_ops;
extern const struct dl_ops mt_deliver_mda_ops;
extern const struct dl_ops mt_deliver_smtp_ops;
extern const struct dl_ops mt_deliver_smtp_starttls_ops;
extern const struct dl_ops mt_deliver_smtps_ops;
extern const struct dl_ops mt_deliver_lmtp_ops;
extern const struct dl_ops mt_deliver_lmtp_starttls_ops;

/*
 * deliver.c. dl_fail(): the message failed because of errno err (its
 * kind decides TEMPFAIL or FAIL), 0 (FAIL) or -1 (TEMPFAIL); logged once.
 */
void dl_fail(struct mt_deliver_msg *m, int err, const char *fmt, ...)
    MT_PRINTF(3, 4);
void dl_verdict(struct dl_rec *r, enum mt_deliver_verdict v, int err,
    const char *fmt, ...) MT_PRINTF(4, 5);
/* End or commit that returned DL_WAIT is over: rc 0 or -1 (after dl_fail). */
void dl_settle(struct mt_deliver_msg *m, int rc);
int dl_put(struct mt_deliver_msg *m, const char *p, size_t n);
int dl_flush(struct mt_deliver_msg *m);
long dl_elapsed_ms(const struct timespec *since);

/* deliver_xform.c */
int dl_xform_write(struct mt_deliver_msg *m, const char *p, size_t n);
int dl_xform_finish(struct mt_deliver_msg *m);

/* deliver_envelope.c: options, and the envelope found in the header */
#define DL_HDR_MAX	65536		/* header bytes searched */
#define DL_ADDR_MAX	320		/* one address, without <> */
int dl_opts_copy(struct mt_deliver_opts *dst,
    const struct mt_deliver_opts *src);
void dl_opts_free(struct mt_deliver_opts *o);
/* The first DL_HDR_MAX bytes of a message, up to its empty line. */
struct dl_hdr {
	char *buf;			/* NULL until the first byte */
	size_t len;
	int done;			/* the empty line, or the cap, was seen */
};
int dl_hdr_feed(struct dl_hdr *h, const char *p, size_t n);
void dl_hdr_free(struct dl_hdr *h);
int dl_hdr_field(const char *hdr, size_t len, const char *name, char *out,
    size_t outsz);
int dl_addr_parse(const char *value, char *out, size_t outsz);
int dl_addr_option(const char *value, char *out, size_t outsz);
struct dl_envelope {
	char sender[DL_ADDR_MAX + 1];	/* "" is the null sender */
	char rcpt[DL_ADDR_MAX + 1];	/* "": none found */
	char rcpt_from[64];		/* "configuration" or a header name */
};
void dl_envelope_find(const struct mt_deliver_opts *o, const char *meta_sender,
    const struct dl_hdr *h, struct dl_envelope *e);

/* deliver_file.c: helpers shared by the file targets */
int dl_mkdir(const char *path);
int dl_open_dir(const char *path, int *fd);
enum mt_deliver_status dl_classify(int err);
int dl_split_token(const char *token, char *tmp, char *final);
int dl_exists(int dfd, const char *name);
int dl_stage_open(struct mt_deliver_msg *m, int dfd, const char *dir,
    const char *prefix, const char *suffix, char *tmp);
int dl_stage_prepare(struct mt_deliver_msg *m, int dfd, const char *dir);
int dl_stage_commit(struct mt_deliver_msg *m, int tmpdfd, const char *tmp,
    int finaldfd, const char *finaldir, const char *final);
/* Group sync: leave fd (ended) or a directory's fsync to the group. */
void dl_group_add_fd(struct mt_deliver *t, int fd);
void dl_group_add_dir(struct mt_deliver *t, int dfd);
/* Do the group's syncs now; MT_DELIVER_OK or a status with reason. */
enum mt_deliver_status dl_group_sync(struct mt_deliver *t, char *reason,
    size_t size);

#endif
