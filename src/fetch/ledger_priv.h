/*
 * ledger internals shared by ledger.c (API and records), ledger_set.c (the
 * in-memory sets) and ledger_file.c (lock, journal, snapshot). Everything
 * here is owned by the struct mt_ledger it hangs from.
 */
#ifndef MAILTUNNEL_LEDGER_PRIV_H
#define MAILTUNNEL_LEDGER_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mailtunnel/ledger.h"

#define LG_UIDL_MAX	70
#define LG_NAME_MAX	1024		/* folder names, raw bytes */
#define LG_LINE_MAX	8192		/* one record, escaped, with CRC */

/* IMAP: UIDs lo..hi share flags and time; sorted, disjoint. */
struct lg_range {
	uint32_t lo, hi;
	uint32_t flags;
	int64_t time;
};
struct lg_ranges {
	struct lg_range *v;
	size_t n, cap;
};

/* POP3: one entry per UIDL in an open-addressing table. */
struct lg_pop {
	char *uidl;			/* NULL: free slot */
	uint32_t hash;
	uint32_t flags;
	int64_t time;
	uint64_t fp;
};
struct lg_pops {
	struct lg_pop *slots;
	size_t n, cap;			/* cap: 0 or a power of two */
};

/* IMAP: fingerprint of each delivered, not deleted UID (fp 0: dropped). */
struct lg_fp {
	uint32_t uid;
	uint64_t fp;
};
struct lg_fps {
	struct lg_fp *v;
	size_t n, cap;
	int sorted;
};

/* Retired generations: a multiset of fingerprints (time -1: consumed). */
struct lg_old {
	uint64_t fp;
	int64_t time;
};
struct lg_olds {
	struct lg_old *v;
	size_t n, cap, live;
	int sorted;
};

struct lg_intent {
	char *key;
	char *token;
	uint64_t fp;
};

struct mt_ledger_folder {
	struct mt_ledger *l;
	unsigned id;
	enum mt_ledger_kind kind;
	char *name;			/* "" for POP3 */
	uint32_t uidvalidity;
	struct lg_ranges ranges;	/* IMAP */
	struct lg_fps fps;		/* IMAP */
	struct lg_pops pops;		/* POP3 */
	struct lg_olds olds;		/* IMAP, retired generations */
	struct lg_intent *intents;
	size_t nintents, capintents;
};

struct mt_ledger {
	char *dir;			/* STATE_DIR/<safe name> */
	char *account;
	char *log_service, *log_peer;
	struct mt_log_ctx log;
	int dir_fd, lock_fd, jfd;
	uint64_t epoch;
	struct mt_ledger_folder **folders;
	size_t nfolders;
	char *wbuf;			/* records not yet written */
	size_t wlen, wcap;
	off_t jsize;			/* journal bytes written */
	off_t ssize;			/* snapshot bytes */
	size_t compact_bytes;
	int dirty;			/* written but not yet fsynced */
	int failed;
};

/* How a folder is called in log lines. */
static inline const char *
lg_label(const struct mt_ledger_folder *f)
{
	return f->kind == MT_LEDGER_POP3 ? "POP3" : f->name;
}

/* ledger_set.c */
const struct lg_range *lg_ranges_find(const struct lg_ranges *r, uint32_t uid);
int lg_ranges_set(struct lg_ranges *r, uint32_t lo, uint32_t hi,
    uint32_t flags, int64_t time);
int lg_ranges_fill(struct lg_ranges *r, uint32_t lo, uint32_t hi,
    uint32_t flags, int64_t time);
int lg_ranges_mark_deleted(struct lg_ranges *r, uint32_t lo, uint32_t hi);
void lg_ranges_coarsen(struct lg_ranges *r, int64_t now);
void lg_ranges_free(struct lg_ranges *r);

struct lg_pop *lg_pops_find(const struct lg_pops *t, const char *uidl);
struct lg_pop *lg_pops_add(struct lg_pops *t, const char *uidl);
void lg_pops_remove(struct lg_pops *t, struct lg_pop *p);
void lg_pops_free(struct lg_pops *t);

int lg_fps_add(struct lg_fps *s, uint32_t uid, uint64_t fp);
void lg_fps_drop(struct lg_fps *s, uint32_t lo, uint32_t hi);
void lg_fps_pack(struct lg_fps *s);
void lg_fps_free(struct lg_fps *s);

int lg_olds_add(struct lg_olds *s, uint64_t fp, int64_t time);
int lg_olds_take(struct lg_olds *s, uint64_t fp, int64_t *time, int take);
void lg_olds_pack(struct lg_olds *s);
void lg_olds_free(struct lg_olds *s);

int64_t lg_coarsen_time(int64_t t, int64_t now);

/* ledger_rec.c: records, shared by live calls, replay and snapshots */
int lg_apply(struct mt_ledger *l, char *payload);
int lg_emit(struct mt_ledger *l, const char *fmt, ...) MT_PRINTF(2, 3);
int lg_escape(char *out, size_t outsz, const char *s);
int lg_key_uid(const char *key, uint32_t *uid);
int lg_key_uidl(const char *key);
void lg_folder_free(struct mt_ledger_folder *f);
struct lg_intent *lg_intent_find(const struct mt_ledger_folder *f,
    const char *key);

/* ledger_file.c */
uint32_t lg_crc32(const void *buf, size_t len);
size_t lg_frame(char *out, const char *payload, size_t len);
size_t lg_header(const struct mt_ledger *l, uint64_t epoch, char *out,
    size_t size);
void lg_io_error(struct mt_ledger *l, const char *what, const char *file);
int lg_sync_dir(struct mt_ledger *l);
int lg_journal_create(struct mt_ledger *l, uint64_t epoch);
int lg_file_open(struct mt_ledger *l, const char *state_dir, int flags,
    unsigned timeout_ms, enum mt_ledger_err *err);
int lg_file_reserve(struct mt_ledger *l, size_t len);
void lg_file_append(struct mt_ledger *l, const char *payload, size_t len);
int lg_file_flush(struct mt_ledger *l);
int lg_file_sync(struct mt_ledger *l);
void lg_file_close(struct mt_ledger *l);

/* ledger_load.c */
int lg_load(struct mt_ledger *l, enum mt_ledger_err *err);

/* ledger_snap.c */
int lg_file_compact(struct mt_ledger *l);

#endif
