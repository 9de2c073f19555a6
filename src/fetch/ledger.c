/*
 * ledger: the public calls. Each checks what the caller asks against the
 * state, then records it through lg_emit(). See include/mailtunnel/ledger.h.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fetch/ledger_priv.h"

#define DEFAULT_COMPACT (1024 * 1024)
#define DONE_FLAGS	(MT_LEDGER_DELIVERED | MT_LEDGER_SEEN)

const char *
mt_ledger_errstr(enum mt_ledger_err err)
{
	switch (err) {
	case MT_LEDGER_OK: return "success";
	case MT_LEDGER_EBUSY: return "account busy";
	case MT_LEDGER_EIO: return "input/output error";
	case MT_LEDGER_ECORRUPT: return "ledger damaged";
	case MT_LEDGER_EINVAL: return "invalid request";
	case MT_LEDGER_ENOMEM: return "out of memory";
	}
	return "unknown error";
}

static void
ledger_free(struct mt_ledger *l)
{
	size_t i;

	lg_file_close(l);
	for (i = 0; i < l->nfolders; i++)
		lg_folder_free(l->folders[i]);
	free(l->folders);
	free(l->wbuf);
	free(l->dir);
	free(l->account);
	free(l->log_service);
	free(l->log_peer);
	free(l);
}

static int
copy_log(struct mt_ledger *l, const struct mt_log_ctx *log)
{
	if (log == NULL)
		return 0;
	l->log.id = log->id;
	l->log.has_level = log->has_level;
	l->log.level = log->level;
	if (log->service != NULL &&
	    (l->log.service = l->log_service = strdup(log->service)) == NULL)
		return -1;
	if (log->peer != NULL &&
	    (l->log.peer = l->log_peer = strdup(log->peer)) == NULL)
		return -1;
	return 0;
}

struct mt_ledger *
mt_ledger_open(const char *state_dir, const char *account, int flags,
    unsigned timeout_ms, const struct mt_log_ctx *log, enum mt_ledger_err *err)
{
	struct mt_ledger *l;
	enum mt_ledger_err dummy;

	if (err == NULL)
		err = &dummy;
	*err = MT_LEDGER_ENOMEM;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->dir_fd = l->lock_fd = l->jfd = -1;
	l->compact_bytes = DEFAULT_COMPACT;
	if (copy_log(l, log) == -1 || (l->account = strdup(account)) == NULL)
		goto err1;
	if (account[0] == '\0' || strlen(account) > LG_NAME_MAX) {
		mt_log_c(&l->log, MT_LOG_ERR, "ledger: invalid account name");
		*err = MT_LEDGER_EINVAL;
		goto err1;
	}
	if (lg_file_open(l, state_dir, flags, timeout_ms, err) == -1)
		goto err1;

	/* Success! */
	*err = MT_LEDGER_OK;
	return l;

err1:
	ledger_free(l);
	return NULL;
}

int
mt_ledger_commit(struct mt_ledger *l)
{
	if (lg_file_sync(l) == -1)
		return -1;
	/* The records are durable now; compaction is housekeeping. */
	if (l->jsize >= (off_t)l->compact_bytes)
		lg_file_compact(l);
	return 0;
}

int
mt_ledger_close(struct mt_ledger *l)
{
	int rc;

	if (l == NULL)
		return 0;
	rc = mt_ledger_commit(l);
	if (rc == 0 && !l->failed && l->jsize >= (off_t)l->compact_bytes / 16)
		lg_file_compact(l);
	ledger_free(l);
	return rc;
}

int
mt_ledger_compact(struct mt_ledger *l)
{
	return lg_file_compact(l);
}

void
mt_ledger_set_compact_threshold(struct mt_ledger *l, size_t bytes)
{
	l->compact_bytes = bytes;
}

const char *
mt_ledger_dir(const struct mt_ledger *l)
{
	return l->dir;
}

/* ---- folders ---- */

static struct mt_ledger_folder *
find_folder(const struct mt_ledger *l, enum mt_ledger_kind kind,
    const char *name)
{
	size_t i;

	for (i = 0; i < l->nfolders; i++)
		if (l->folders[i]->kind == kind &&
		    strcmp(l->folders[i]->name, name) == 0)
			return l->folders[i];
	return NULL;
}

static int
new_generation(struct mt_ledger_folder *f, uint32_t uidvalidity)
{
	struct mt_ledger *l = f->l;

	if (f->nintents > 0) {
		mt_log_c(&l->log, MT_LOG_ERR, "folder %s: UIDVALIDITY changed "
		    "from %" PRIu32 " to %" PRIu32 " while %zu deliveries are "
		    "unresolved; recover them first", f->name, f->uidvalidity,
		    uidvalidity, f->nintents);
		return -1;
	}
	if (lg_emit(l, "V %u %" PRIu32, f->id, uidvalidity) == -1)
		return -1;
	mt_log_c(&l->log, MT_LOG_WARNING, "folder %s: UIDVALIDITY changed; "
	    "%zu messages delivered before will be recognised by Message-ID, "
	    "Date and size, messages without Message-ID will be delivered "
	    "again", f->name, f->olds.live);
	return 0;
}

struct mt_ledger_folder *
mt_ledger_folder(struct mt_ledger *l, enum mt_ledger_kind kind,
    const char *name, uint32_t uidvalidity)
{
	struct mt_ledger_folder *f;
	char esc[3 * LG_NAME_MAX + 4];

	if (kind == MT_LEDGER_POP3) {
		name = "";
		uidvalidity = 0;
	} else if (kind != MT_LEDGER_IMAP || name == NULL || uidvalidity == 0 ||
	    strlen(name) > LG_NAME_MAX) {
		mt_log_c(&l->log, MT_LOG_ERR, "ledger: invalid folder");
		return NULL;
	}
	if ((f = find_folder(l, kind, name)) == NULL) {
		if (lg_escape(esc, sizeof(esc), name) == -1 ||
		    lg_emit(l, "F %zu %c %" PRIu32 " %s", l->nfolders + 1,
		    (char)kind, uidvalidity, esc) == -1)
			return NULL;
		return l->folders[l->nfolders - 1];
	}
	if (f->uidvalidity != uidvalidity &&
	    new_generation(f, uidvalidity) == -1)
		return NULL;
	return f;
}

int
mt_ledger_folder_known(const struct mt_ledger *l, enum mt_ledger_kind kind,
    const char *name)
{
	return find_folder(l, kind, kind == MT_LEDGER_POP3 || name == NULL ?
	    "" : name) != NULL;
}

const char *
mt_ledger_folder_name(const struct mt_ledger_folder *f)
{
	return f->name;
}

uint32_t
mt_ledger_folder_uidvalidity(const struct mt_ledger_folder *f)
{
	return f->uidvalidity;
}

/* ---- messages ---- */

/* Validate key; put its record form in rec (escaped UIDL or the UID). */
static int
check_key(const struct mt_ledger_folder *f, const char *key, char *rec,
    size_t size, uint32_t *uid)
{
	char shown[64];

	*uid = 0;
	if (f->kind == MT_LEDGER_IMAP ? lg_key_uid(key, uid) == 0 :
	    lg_key_uidl(key) == 0)
		return lg_escape(rec, size, key);
	if (lg_escape(shown, sizeof(shown), key) == -1)
		strcpy(shown, "(too long)");
	mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: invalid %s \"%s\"",
	    lg_label(f),
	    f->kind == MT_LEDGER_IMAP ? "UID" : "UIDL (1-70 printable "
	    "characters)", shown);
	return -1;
}

static unsigned
flags_of(const struct mt_ledger_folder *f, const char *key, uint32_t uid,
    int64_t *when)
{
	const struct lg_range *r;
	const struct lg_pop *p;

	*when = 0;
	if (f->kind == MT_LEDGER_IMAP) {
		if ((r = lg_ranges_find(&f->ranges, uid)) == NULL)
			return 0;
		*when = r->time;
		return r->flags;
	}
	if ((p = lg_pops_find(&f->pops, key)) == NULL)
		return 0;
	*when = p->time;
	return p->flags;
}

int
mt_ledger_lookup(const struct mt_ledger_folder *f, const char *key,
    struct mt_ledger_entry *e)
{
	char rec[4 * LG_UIDL_MAX];
	uint32_t uid;
	int64_t when;

	if (check_key(f, key, rec, sizeof(rec), &uid) == -1)
		return -1;
	e->flags = flags_of(f, key, uid, &when);
	e->delivered = (e->flags == MT_LEDGER_DELIVERED) ? (time_t)when : 0;
	if (lg_intent_find(f, key) != NULL)
		e->flags |= MT_LEDGER_PENDING;
	return e->flags != 0;
}

int
mt_ledger_is_done(const struct mt_ledger_folder *f, const char *key)
{
	struct mt_ledger_entry e;

	return mt_ledger_lookup(f, key, &e) == 1 && (e.flags & DONE_FLAGS);
}

/* Refuse to start a delivery of a message that is done or in flight. */
static int
check_new(const struct mt_ledger_folder *f, const char *key, uint32_t uid,
    const char *what)
{
	int64_t when;

	if (flags_of(f, key, uid, &when) & DONE_FLAGS) {
		mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: message %s is "
		    "already done; not %s it again", lg_label(f), key, what);
		return -1;
	}
	if (lg_intent_find(f, key) != NULL) {
		mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: message %s has an "
		    "unresolved delivery; recover it first", lg_label(f), key);
		return -1;
	}
	return 0;
}

int
mt_ledger_intent(struct mt_ledger_folder *f, const char *key,
    const char *token, uint64_t fp)
{
	char rec[4 * LG_UIDL_MAX], tok[3 * MT_LEDGER_TOKEN_MAX + 4];
	uint32_t uid;

	if (check_key(f, key, rec, sizeof(rec), &uid) == -1)
		return -1;
	if (token == NULL || token[0] == '\0' ||
	    strlen(token) > MT_LEDGER_TOKEN_MAX ||
	    lg_escape(tok, sizeof(tok), token) == -1) {
		mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: message %s: "
		    "invalid delivery token", lg_label(f), key);
		return -1;
	}
	if (check_new(f, key, uid, "delivering") == -1)
		return -1;
	return lg_emit(f->l, "I %u %s %" PRIx64 " %s", f->id, rec, fp, tok);
}

int
mt_ledger_done(struct mt_ledger_folder *f, const char *key, time_t when)
{
	char rec[4 * LG_UIDL_MAX];
	uint32_t uid;
	int64_t t;

	if (check_key(f, key, rec, sizeof(rec), &uid) == -1)
		return -1;
	if (flags_of(f, key, uid, &t) & DONE_FLAGS) {
		mt_log_c(&f->l->log, MT_LOG_ERR, "folder %s: message %s is "
		    "already done", lg_label(f), key);
		return -1;
	}
	if (when <= 0)
		when = time(NULL);
	return lg_emit(f->l, "D %u %s %" PRId64, f->id, rec, (int64_t)when);
}

int
mt_ledger_abandon(struct mt_ledger_folder *f, const char *key)
{
	char rec[4 * LG_UIDL_MAX];
	uint32_t uid;

	if (check_key(f, key, rec, sizeof(rec), &uid) == -1)
		return -1;
	if (lg_intent_find(f, key) == NULL)
		return 0;
	return lg_emit(f->l, "C %u %s", f->id, rec);
}

long
mt_ledger_pending(struct mt_ledger *l, struct mt_ledger_pending **out)
{
	struct mt_ledger_pending *p;
	size_t i, j, n = 0;

	for (i = 0; i < l->nfolders; i++)
		n += l->folders[i]->nintents;
	*out = NULL;
	if (n == 0)
		return 0;
	if ((p = calloc(n, sizeof(*p))) == NULL)
		return -1;
	for (n = 0, i = 0; i < l->nfolders; i++) {
		for (j = 0; j < l->folders[i]->nintents; j++, n++) {
			p[n].folder = l->folders[i];
			p[n].key = strdup(l->folders[i]->intents[j].key);
			p[n].token = strdup(l->folders[i]->intents[j].token);
			if (p[n].key == NULL || p[n].token == NULL) {
				mt_ledger_pending_free(p, (long)n + 1);
				return -1;
			}
		}
	}
	*out = p;
	return (long)n;
}

void
mt_ledger_pending_free(struct mt_ledger_pending *p, long n)
{
	long i;

	for (i = 0; p != NULL && i < n; i++) {
		free(p[i].key);
		free(p[i].token);
	}
	free(p);
}
