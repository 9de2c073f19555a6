/*
 * ledger: the exactly-once state of the fetcher. One ledger per account
 * (the fetch service or URL, "proto://user@host:port"); it remembers, per
 * folder, which messages are done, when they were delivered, whether they
 * were deleted on the server, and which deliveries are in flight.
 *
 * Files: STATE_DIR/<safe account name>/ (0700) holds "lock" (flock),
 * "snapshot" (the whole state, replaced by write-temp + fsync + rename +
 * fsync(dir)) and "journal" (records appended since the snapshot, each line
 * carrying a CRC-32; a torn last line after a crash is detected and
 * dropped). doc/exactly-once.md has the protocol the fetcher follows.
 *
 * Ownership: mt_ledger_open() returns a ledger the caller frees with
 * mt_ledger_close(). Folder handles belong to the ledger and live until it
 * is closed; strings passed in are copied. One ledger is used by one thread.
 *
 * Durability: every mutating call adds a record in memory (and to the
 * journal's write buffer). Nothing is durable until mt_ledger_commit()
 * returns 0; several records may share one commit. After a failed write or
 * fsync the ledger refuses every further change (the kernel may have dropped
 * the pages): close it and open it again.
 *
 * Keys: in a POP3 folder a message is its UIDL (1-70 characters 0x21-0x7e);
 * in an IMAP folder it is its UID in decimal ("1" .. "4294967295"), valid
 * within the folder's current UIDVALIDITY.
 *
 * UIDVALIDITY change (IMAP): the UIDs recorded so far no longer name
 * messages. The old generation is retired; what survives of it is the
 * fingerprint (Message-ID + Date + size) of every message delivered and not
 * deleted under it. Until mt_ledger_retire_old() drops them, the folder is
 * "revalidating": before delivering a message that is not done, the fetcher
 * asks mt_ledger_match() with that message's fingerprint; a match marks the
 * new UID done (keeping the original delivery time) and consumes the old
 * fingerprint, so each earlier delivery matches at most one new message.
 * Limits: a message without Message-ID has no fingerprint and is delivered
 * again (a possible duplicate, logged at warning); two different messages
 * with the same Message-ID, Date and size are taken for one (one of them is
 * not delivered, logged at info as a match). Neither case is silent.
 */
#ifndef MAILTUNNEL_LEDGER_H
#define MAILTUNNEL_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mailtunnel/log.h"

struct mt_ledger;
struct mt_ledger_folder;

enum mt_ledger_err {
	MT_LEDGER_OK = 0,
	MT_LEDGER_EBUSY,	/* another process holds the account */
	MT_LEDGER_EIO,		/* read/write/sync failed: try again later */
	MT_LEDGER_ECORRUPT,	/* state unreadable: refused, nothing guessed */
	MT_LEDGER_EINVAL,	/* bad argument or misuse (message logged) */
	MT_LEDGER_ENOMEM,
};
const char *mt_ledger_errstr(enum mt_ledger_err err);

enum mt_ledger_kind {
	MT_LEDGER_POP3 = 'p',	/* one folder per account; keys are UIDLs */
	MT_LEDGER_IMAP = 'i',	/* folders are mailboxes; keys are UIDs */
};

/* mt_ledger_open() flags. */
#define MT_LEDGER_NOWAIT 0x0	/* refuse at once when the account is busy */
#define MT_LEDGER_WAIT	 0x1	/* wait for the lock, up to timeout_ms */
#define MT_LEDGER_QUIET	 0x2	/* busy: set EBUSY but log nothing (the
				   caller polls from its event loop) */

/*
 * Open (creating when missing) the ledger of account under state_dir, which
 * must exist. With MT_LEDGER_WAIT the calling thread sleeps until the lock
 * is free or timeout_ms (0: forever) has passed; never call that from an
 * event loop. log (may be NULL) is copied for the prefix of every line the
 * ledger logs. On failure returns NULL, logs why and sets *err.
 */
struct mt_ledger *mt_ledger_open(const char *state_dir, const char *account,
    int flags, unsigned timeout_ms, const struct mt_log_ctx *log,
    enum mt_ledger_err *err);

/* Commit what is pending, compact when worth it, unlock, free. 0 or -1. */
int mt_ledger_close(struct mt_ledger *l);

/*
 * Write every record added since the last commit and fsync the journal.
 * Returns 0 only once they are durable. May compact the journal into the
 * snapshot afterwards (a failure there is logged; the journal stays valid).
 */
int mt_ledger_commit(struct mt_ledger *l);

/* Rewrite the snapshot now and start an empty journal. 0 or -1. */
int mt_ledger_compact(struct mt_ledger *l);

/* Compact once the journal grows past this many bytes (default 1 MiB). */
void mt_ledger_set_compact_threshold(struct mt_ledger *l, size_t bytes);

/* The directory holding this ledger's files (owned by the ledger). */
const char *mt_ledger_dir(const struct mt_ledger *l);

/*
 * The folder called name (POP3: pass NULL, there is one). For IMAP,
 * uidvalidity is the mailbox's current one; when it differs from the
 * recorded one the old generation is retired (see above; logged at warning)
 * - refused with MT_LEDGER_EINVAL while the folder has unresolved intents.
 * Returns NULL on failure (logged).
 */
struct mt_ledger_folder *mt_ledger_folder(struct mt_ledger *l,
    enum mt_ledger_kind kind, const char *name, uint32_t uidvalidity);
/*
 * 1 when the ledger has a record of the folder called name (POP3: NULL),
 * else 0: a fetch that meets it for the first time (first-run policy).
 */
int mt_ledger_folder_known(const struct mt_ledger *l, enum mt_ledger_kind kind,
    const char *name);
const char *mt_ledger_folder_name(const struct mt_ledger_folder *f);
uint32_t mt_ledger_folder_uidvalidity(const struct mt_ledger_folder *f);

/* Entry flags. */
#define MT_LEDGER_DELIVERED 0x1	/* delivered by us (or matched, see above) */
#define MT_LEDGER_SEEN	    0x2	/* marked done without delivery (first run) */
#define MT_LEDGER_DELETED   0x4	/* we asked the server to delete it */
#define MT_LEDGER_PENDING   0x8	/* an intent without done: recover it */

struct mt_ledger_entry {
	unsigned flags;
	time_t delivered;		/* delivery time; 0 unless DELIVERED */
};

/*
 * What the ledger knows of key: 1 and *e filled, 0 when nothing, -1 when
 * key is not valid for the folder's kind (logged).
 */
int mt_ledger_lookup(const struct mt_ledger_folder *f, const char *key,
    struct mt_ledger_entry *e);
/* 1 when key is DELIVERED or SEEN, else 0 (also for invalid keys). */
int mt_ledger_is_done(const struct mt_ledger_folder *f, const char *key);

/*
 * Two-phase delivery. mt_ledger_intent() records that key is about to
 * become visible in the target under token (the target's own proof of
 * delivery: a file name, an mbox offset) and fingerprint fp
 * (mt_ledger_fingerprint(), 0: none); it must be committed before the
 * target's commit point. mt_ledger_done() records the delivery at time
 * when; mt_ledger_abandon() records that it did not happen. A key that is
 * done, or already has an intent, is refused (MT_LEDGER_EINVAL).
 * Tokens are 1-512 bytes. All return 0 or -1.
 */
#define MT_LEDGER_TOKEN_MAX 512
int mt_ledger_intent(struct mt_ledger_folder *f, const char *key,
    const char *token, uint64_t fp);
int mt_ledger_done(struct mt_ledger_folder *f, const char *key, time_t when);
int mt_ledger_abandon(struct mt_ledger_folder *f, const char *key);

/*
 * The unresolved intents of every folder, as a copy the caller frees with
 * mt_ledger_pending_free(). For each, ask the target (mt_deliver_recover())
 * and record done or abandon. Returns the count, or -1 (out of memory).
 */
struct mt_ledger_pending {
	struct mt_ledger_folder *folder;
	char *key;
	char *token;
};
long mt_ledger_pending(struct mt_ledger *l, struct mt_ledger_pending **out);
void mt_ledger_pending_free(struct mt_ledger_pending *p, long n);

/*
 * First run with "only new mail": mark what the server holds now as done
 * without delivering it (SEEN; never deleted by keep). IMAP takes UID
 * ranges; passing [1, UIDNEXT-1] is right and compact, since a UID that is
 * not on the server now never will be. POP3 takes the UIDL list.
 */
struct mt_ledger_range {
	uint32_t lo, hi;		/* inclusive, 1 <= lo <= hi */
};
int mt_ledger_mark_seen_uids(struct mt_ledger_folder *f,
    const struct mt_ledger_range *r, size_t n);
int mt_ledger_mark_seen_uidls(struct mt_ledger_folder *f,
    const char *const *uidls, size_t n);

/*
 * Record that these messages were deleted on the server (POP3: once the
 * QUIT that makes the DELEs take effect got +OK; IMAP: once UID STORE
 * \Deleted and the EXPUNGE succeeded). Only done messages are affected.
 * A message marked deleted that the server still lists was not deleted
 * after all: delete it again.
 */
int mt_ledger_mark_deleted(struct mt_ledger_folder *f, const char *key);
int mt_ledger_mark_deleted_uids(struct mt_ledger_folder *f, uint32_t lo,
    uint32_t hi);

/*
 * Call fn for every message delivered at least keep_seconds before now and
 * not deleted: POP3 with uidl set (lo = hi = 0), IMAP once per UID range
 * (uidl NULL). Commits first, so only durable deliveries are listed. fn
 * returns 0 to go on, anything else stops the walk and is returned.
 * Returns 0, fn's value, or -1. fn must not change the ledger.
 */
typedef int mt_ledger_due_fn(void *arg, const char *uidl, uint32_t lo,
    uint32_t hi, time_t delivered);
int mt_ledger_due_for_deletion(struct mt_ledger_folder *f, time_t now,
    uint64_t keep_seconds, mt_ledger_due_fn *fn, void *arg);

/*
 * POP3: forget the messages marked deleted that the server no longer lists
 * (present is the full UIDL listing, n entries). Done messages that were
 * not deleted by us stay, so a server that lists a message again later
 * does not get it delivered twice. Returns the number forgotten, or -1.
 */
long mt_ledger_forget_missing(struct mt_ledger_folder *f,
    const char *const *present, size_t n);

/*
 * Fingerprint of a message for UIDVALIDITY changes: Message-ID and Date
 * header values (surrounding white space ignored) and the size the server
 * announces (RFC822.SIZE). Returns 0 (no fingerprint) when message_id is
 * NULL or blank.
 */
uint64_t mt_ledger_fingerprint(const char *message_id, const char *date,
    uint64_t size);

/* 1 while fingerprints of a retired generation wait to be matched. */
int mt_ledger_revalidating(const struct mt_ledger_folder *f);
/*
 * During revalidation: 1 when key (not done) carries the fingerprint of a
 * message delivered under an earlier UIDVALIDITY - it is recorded done with
 * that delivery's time and must not be delivered again; 0 when it must be
 * delivered; -1 on error.
 */
int mt_ledger_match(struct mt_ledger_folder *f, const char *key, uint64_t fp);
/*
 * Drop the retired generations: call once every message the mailbox holds
 * now has been matched or delivered. 0 or -1.
 */
int mt_ledger_retire_old(struct mt_ledger_folder *f);

#endif
