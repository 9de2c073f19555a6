/*
 * deliver: delivery targets of the fetcher, named by a string:
 *   maildir:DIR   a Maildir (DIR/{tmp,new,cur} made 0700 when missing)
 *   dir:DIR       one NAME.eml per message, for programs that poll a folder
 *   mbox:FILE     an mboxrd file, locked with FILE.lock and fcntl()
 *   mda:COMMAND   /bin/sh -c COMMAND with the message on stdin
 *   smtp://HOST[:PORT], smtp+starttls://..., smtps://...
 *   lmtp:/PATH (unix socket), lmtp://HOST[:PORT], lmtp+starttls://...
 *                 an internal mail server (doc/delivery-targets.md)
 * The last two need options (struct mt_deliver_opts, mt_deliver_open_ex).
 *
 * A message goes through two phases so that the ledger can record an
 * intent between them (doc/exactly-once.md):
 *   begin -> write... -> end    the copy is complete and durable but not
 *                               visible; the result carries a token
 *   ledger intent + commit      (the caller)
 *   commit                      the copy becomes visible (the commit point)
 *   ledger done                 (the caller)
 * After a crash, mt_deliver_recover() tells from the token whether the
 * commit point was passed. A copy whose intent may be durable is removed
 * only by mt_deliver_discard(), once the ledger durably says "abandoned".
 *
 * Lifetimes: mt_deliver_open() returns a target the caller closes with
 * mt_deliver_close() after every message and recovery on it has finished
 * or been aborted. A message handle lives from mt_deliver_begin() until
 * the callback that ends it returns (an end that fails, or any commit) or
 * until mt_deliver_abort(). Strings in meta are copied.
 *
 * Callbacks always run from the event loop (event_base), never from inside
 * the call that started the work, so callers see no reentrancy. File
 * targets do each step's file work in one go when the loop runs it; only
 * waiting for another program's mbox lock spans several loop turns. An
 * mbox target holds its lock from a successful end until commit or abort:
 * commit (or abort) one message before ending the next. So does an smtp
 * or lmtp target, whose one connection carries a message's transaction
 * from its end until its commit: another message's end waits until then.
 *
 * Input is the message as decoded from the wire (CRLF line endings, dots
 * unstuffed). Maildir and mbox store LF line endings, as local mail tools
 * expect; dir: stores the bytes as received (CRLF, RFC 5322 native), since
 * .eml readers accept that and it keeps the file byte-exact. mda: spools
 * LF, like maildir; SMTP and LMTP send CRLF, dot-stuffed. No target holds a
 * message in memory: files stream to disk through a 64 KiB buffer, SMTP
 * and LMTP to the socket, holding at most what the caller feeds beyond its
 * high-water mark (see mt_deliver_pending()) plus 64 KiB of header.
 */
#ifndef MAILTUNNEL_DELIVER_H
#define MAILTUNNEL_DELIVER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mailtunnel/log.h"

struct event_base;
struct evdns_base;
struct mt_deliver;
struct mt_deliver_msg;

enum mt_deliver_status {
	MT_DELIVER_OK = 0,
	MT_DELIVER_TEMPFAIL,	/* may work later (disk full, lock busy, I/O) */
	MT_DELIVER_FAIL,	/* will not work until someone changes something */
};

enum mt_deliver_verdict {
	MT_DELIVER_NOT_DELIVERED = 0,	/* commit point not passed */
	MT_DELIVER_DELIVERED,		/* passed: record it done */
	MT_DELIVER_UNKNOWN,		/* cannot tell now (reason given) */
};

#define MT_DELIVER_KEY_MAX	100
#define MT_DELIVER_TOKEN_MAX	512	/* == MT_LEDGER_TOKEN_MAX */
#define MT_DELIVER_REASON_MAX	512

struct mt_deliver_meta {
	const char *account;	/* for log lines (may be NULL) */
	const char *folder;	/* for log lines (NULL for POP3) */
	const char *uid;	/* UID or UIDL, for log lines */
	const char *key;	/* unique, stable: 1-100 of [A-Za-z0-9_-] */
	const char *sender;	/* envelope sender for mbox; NULL: MAILER-DAEMON */
	uint64_t size;		/* announced size on the wire; 0: unknown
				   (for targets that can use it) */
	time_t date;		/* internal date; 0: now */
};

/*
 * Result of end or commit. token: set with OK from end (at most
 * MT_DELIVER_TOKEN_MAX bytes, printable ASCII), else NULL. reason: set
 * unless OK, a sentence for people (already logged; do not log it again).
 */
typedef void mt_deliver_result_fn(void *arg, enum mt_deliver_status status,
    const char *token, const char *reason);
typedef void mt_deliver_verdict_fn(void *arg, enum mt_deliver_verdict verdict,
    const char *reason);
typedef void mt_deliver_drain_fn(void *arg);

/*
 * What the command and server targets need from the job's configuration.
 * Zero (or NULL) means the default given; strings are copied at open. File
 * targets ignore all of it.
 */
struct mt_deliver_opts {
	/*
	 * Envelope recipient (mda: $RECIPIENT; smtp/lmtp: RCPT TO), one
	 * address. Used as is when recipient_header is NULL, else as the
	 * fallback when none of those headers is in the message.
	 */
	const char *recipient;
	/*
	 * Header fields to take the recipient from, in order of preference,
	 * separated by commas: "Delivered-To" or "X-Envelope-To,Delivered-To".
	 * The first field found wins (the topmost, i.e. the latest, of its
	 * name); only the first 64 KiB of the header block is searched.
	 * smtp/lmtp refuse to open with neither this nor recipient.
	 */
	const char *recipient_header;
	/*
	 * Envelope sender (mda: $SENDER; smtp/lmtp: MAIL FROM). NULL: the
	 * message's Return-Path, else meta->sender, else the null sender <>.
	 */
	const char *sender;
	/* EHLO/LHLO name; NULL: the host name when fully qualified, else an
	   address literal of our end (mt_starttls_default_ehlo()). */
	const char *helo_name;
	/*
	 * mda: where messages wait before and while the command runs; must
	 * survive reboots (the fetcher's state directory, not /tmp). Made
	 * 0700 when missing. Required by mda.
	 */
	const char *spool_dir;
	unsigned mda_timeout_ms;	/* the command's run time; 600000 */
	/* smtp/lmtp: each wait for the server (connect, a reply, socket
	   space); 300000. The final reply gets twice that (RFC 5321). */
	unsigned smtp_timeout_ms;
	/* smtp+starttls, smtps, lmtp+starttls: trust anchors (PEM); NULL:
	   the system store. The name checked is the spec's host, or: */
	const char *tls_ca_file;
	const char *tls_check_host;
	/* smtp://, lmtp://HOST: do not use STARTTLS even when offered. */
	int no_starttls;
	/* smtp/lmtp: the resolver to use (borrowed; it must outlive the
	   target); NULL: one of the target's own, made at open when the
	   host is a name (/etc/resolv.conf and /etc/hosts are read then). */
	struct evdns_base *dns;
};

/*
 * Parse spec and prepare the target; nothing on disk or on the network is
 * touched yet (a missing folder is made, or reported, and a server
 * connected, at the first message). On a bad spec (or options it lacks)
 * returns NULL with the reason in err. log and opts (either may be NULL)
 * are copied.
 */
struct mt_deliver *mt_deliver_open_ex(const char *spec,
    struct event_base *base, const struct mt_log_ctx *log,
    const struct mt_deliver_opts *opts, char *err, size_t errsz);
/* mt_deliver_open_ex() without options. */
struct mt_deliver *mt_deliver_open(const char *spec, struct event_base *base,
    const struct mt_log_ctx *log, char *err, size_t errsz);
void mt_deliver_close(struct mt_deliver *t);
/* The spec as given at open. */
const char *mt_deliver_spec(const struct mt_deliver *t);
/* How long mbox waits for other programs' locks (default 30000 ms). */
void mt_deliver_set_lock_timeout(struct mt_deliver *t, unsigned ms);

/*
 * Start a message. Returns NULL only for an invalid meta (logged) or out of
 * memory. Trouble with the target itself makes the message fail: writes
 * return -1 and end reports why.
 */
struct mt_deliver_msg *mt_deliver_begin(struct mt_deliver *t,
    const struct mt_deliver_meta *meta);
/* Feed len bytes. 0, or -1 once the message has failed (stop feeding). */
int mt_deliver_write(struct mt_deliver_msg *m, const void *buf, size_t len);
/*
 * Backpressure: bytes accepted but not yet handed on. Stop feeding above
 * your high-water mark; fn runs from the loop once pending falls to lowat
 * (and, with pending 0, when the message fails meanwhile: the next write
 * says so). The registration stays until replaced; fn runs once each time
 * pending has risen above lowat and fallen back. File targets and mda
 * never leave bytes pending; smtp/lmtp do while the server is slower than
 * the source or the transaction is not open yet, and fail a message whose
 * caller lets more than 16 MiB pile up.
 */
size_t mt_deliver_pending(const struct mt_deliver_msg *m);
void mt_deliver_on_drain(struct mt_deliver_msg *m, size_t lowat,
    mt_deliver_drain_fn *fn, void *arg);
/*
 * No more data. cb gets OK and a token (record the intent, then call
 * mt_deliver_commit() or mt_deliver_abort()), or TEMPFAIL/FAIL (the handle
 * is freed when cb returns; nothing was left behind).
 */
void mt_deliver_end(struct mt_deliver_msg *m, mt_deliver_result_fn *cb,
    void *arg);
/*
 * Make the message visible. cb gets OK (delivered: record done) or
 * TEMPFAIL/FAIL - then do not guess: ask mt_deliver_recover() with the
 * token, as after a crash. The handle is freed when cb returns.
 */
void mt_deliver_commit(struct mt_deliver_msg *m, mt_deliver_result_fn *cb,
    void *arg);
/*
 * Drop a message before its commit; no callback follows. Before end's OK
 * everything is cleaned up; after it, the prepared copy is left for
 * mt_deliver_recover()/mt_deliver_discard(), since an intent naming it may
 * be durable.
 */
void mt_deliver_abort(struct mt_deliver_msg *m);

/*
 * Did the delivery of key with this token pass its commit point? cb runs
 * from the loop with the verdict. Returns 0, or -1 (invalid token, out of
 * memory: logged, no callback). mbox truncates an incomplete copy here.
 */
int mt_deliver_recover(struct mt_deliver *t, const char *key,
    const char *token, mt_deliver_verdict_fn *cb, void *arg);
/*
 * Remove what a prepared delivery left behind, once the ledger has durably
 * recorded that it was abandoned. 0, or -1 (logged).
 */
int mt_deliver_discard(struct mt_deliver *t, const char *token);

/*
 * How many messages may be ended (prepared) at once before the first of
 * them is committed: the fetcher records their intents in one ledger
 * commit. 1 for targets that hold a resource (a lock, a transaction) from
 * end to commit, such as mbox.
 */
unsigned mt_deliver_batch_max(const struct mt_deliver *t);

/*
 * Group sync, for targets whose copies are files (maildir:, dir:). After
 * mt_deliver_group_begin(), ends and commits do their file work but leave
 * the fsyncs to mt_deliver_group_sync(), which makes every file ended and
 * every directory changed since the begin durable - each file and each
 * directory once - and then calls cb from the loop. Until cb has said OK
 * the outcome of those ends and commits is provisional: record no intent
 * for an end's token and no done for a commit before it. If the sync
 * fails, nothing in the group is known to be durable: abort its ended
 * messages and discard their tokens (no intent names them), and leave
 * committed ones to mt_deliver_recover() after their intents. begin
 * returns -1 for targets that cannot group (each end and commit then syncs
 * on its own, as usual). One group at a time; sync ends it.
 */
typedef void mt_deliver_group_fn(void *arg, enum mt_deliver_status status,
    const char *reason);
int mt_deliver_group_begin(struct mt_deliver *t);
void mt_deliver_group_sync(struct mt_deliver *t, mt_deliver_group_fn *cb,
    void *arg);

/*
 * A key for meta: the UID (UIDL) made file-name safe and shortened, a dash,
 * and 16 hex digits of a SHA-256 over account, folder, UIDVALIDITY and UID,
 * so keys differ across accounts and folders. folder is NULL for POP3.
 * Returns 0, or -1 when size is below MT_DELIVER_KEY_MAX + 1.
 */
int mt_deliver_make_key(char *buf, size_t size, const char *account,
    const char *folder, uint32_t uidvalidity, const char *uid);

#endif
