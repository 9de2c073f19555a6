/*
 * ledger_snap: compaction - the whole state written as snapshot records
 * (see ledger_rec.c), then an empty journal. See ledger_file.c for the
 * order of renames that makes a crash at any point harmless.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch/ledger_priv.h"
#include "mailtunnel/util.h"

#define PACK_MAX 4000			/* bytes of fingerprints per line */

struct wr {
	int fd;
	int err;			/* first errno, 0: fine */
	uint64_t lines;
	off_t bytes;
	size_t n;
	char buf[65536];
};

static void
wr_flush(struct wr *w)
{
	if (w->err == 0 && w->n > 0 && mt_write_all(w->fd, w->buf, w->n) == -1)
		w->err = errno;
	w->bytes += (off_t)w->n;
	w->n = 0;
}

static void
wr_payload(struct wr *w, const char *p, size_t len)
{
	if (w->n + len + 16 > sizeof(w->buf))
		wr_flush(w);
	w->n += lg_frame(w->buf + w->n, p, len);
	w->lines++;
}

static void wr_rec(struct wr *w, const char *fmt, ...) MT_PRINTF(2, 3);

static void
wr_rec(struct wr *w, const char *fmt, ...)
{
	char p[LG_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(p)) {
		w->err = ENAMETOOLONG;
		return;
	}
	wr_payload(w, p, (size_t)n);
}

/* Fingerprint lists, packed many to a line. */
struct pack {
	struct wr *w;
	size_t start, n;
	char line[PACK_MAX + 64];
};

static void
pack_begin(struct pack *pk, struct wr *w, char type, unsigned fid)
{
	pk->w = w;
	pk->start = (size_t)snprintf(pk->line, sizeof(pk->line), "%c %u ",
	    type, fid);
	pk->n = pk->start;
}

static void
pack_end(struct pack *pk)
{
	if (pk->n > pk->start)
		wr_payload(pk->w, pk->line, pk->n - 1);	/* without ',' */
	pk->n = pk->start;
}

static void
pack_add(struct pack *pk, uint64_t a, uint64_t b, int fp_first)
{
	pk->n += (size_t)snprintf(pk->line + pk->n, sizeof(pk->line) - pk->n,
	    fp_first ? "%" PRIx64 ":%" PRIu64 "," : "%" PRIu64 ":%" PRIx64 ",",
	    a, b);
	if (pk->n > PACK_MAX)
		pack_end(pk);
}

static void
wr_imap(struct wr *w, const struct mt_ledger_folder *f)
{
	struct pack pk;
	size_t i;

	for (i = 0; i < f->ranges.n; i++)
		wr_rec(w, "r %u %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRId64,
		    f->id, f->ranges.v[i].lo, f->ranges.v[i].hi,
		    f->ranges.v[i].flags, f->ranges.v[i].time);
	pack_begin(&pk, w, 'f', f->id);
	for (i = 0; i < f->fps.n; i++)
		if (f->fps.v[i].fp != 0)
			pack_add(&pk, f->fps.v[i].uid, f->fps.v[i].fp, 0);
	pack_end(&pk);
	pack_begin(&pk, w, 'o', f->id);
	for (i = 0; i < f->olds.n; i++)
		if (f->olds.v[i].time >= 0)
			pack_add(&pk, f->olds.v[i].fp,
			    (uint64_t)f->olds.v[i].time, 1);
	pack_end(&pk);
}

static void
wr_pop3(struct wr *w, const struct mt_ledger_folder *f)
{
	const struct lg_pop *p;
	char esc[4 * LG_UIDL_MAX];
	size_t i;

	for (i = 0; i < f->pops.cap; i++) {
		p = &f->pops.slots[i];
		if (p->uidl == NULL)
			continue;
		if (lg_escape(esc, sizeof(esc), p->uidl) == -1) {
			w->err = ENAMETOOLONG;
			return;
		}
		wr_rec(w, "u %u %" PRIu32 " %" PRId64 " %" PRIx64 " %s", f->id,
		    p->flags, p->time, p->fp, esc);
	}
}

static void
wr_folder(struct wr *w, const struct mt_ledger_folder *f)
{
	char name[3 * LG_NAME_MAX + 4], key[4 * LG_UIDL_MAX];
	char token[3 * MT_LEDGER_TOKEN_MAX + 4];
	size_t i;

	if (lg_escape(name, sizeof(name), f->name) == -1) {
		w->err = ENAMETOOLONG;
		return;
	}
	wr_rec(w, "F %u %c %" PRIu32 " %s", f->id, (char)f->kind,
	    f->uidvalidity, name);
	if (f->kind == MT_LEDGER_IMAP)
		wr_imap(w, f);
	else
		wr_pop3(w, f);
	for (i = 0; i < f->nintents; i++) {
		if (lg_escape(key, sizeof(key), f->intents[i].key) == -1 ||
		    lg_escape(token, sizeof(token), f->intents[i].token) == -1) {
			w->err = ENAMETOOLONG;
			return;
		}
		wr_rec(w, "I %u %s %" PRIx64 " %s", f->id, key,
		    f->intents[i].fp, token);
	}
}

/* Write snapshot.tmp for epoch; 0 or -1 (logged, file removed). */
static int
write_snapshot(struct mt_ledger *l, uint64_t epoch, off_t *size)
{
	struct wr *w;
	char hdr[LG_LINE_MAX];
	size_t i, n;
	int rc = -1;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->fd = openat(l->dir_fd, "snapshot.tmp",
	    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd == -1) {
		lg_io_error(l, "create", "snapshot.tmp");
		goto err0;
	}
	if ((n = lg_header(l, epoch, hdr, sizeof(hdr))) == 0)
		w->err = ENAMETOOLONG;
	wr_payload(w, hdr, n);
	for (i = 0; i < l->nfolders && w->err == 0; i++)
		wr_folder(w, l->folders[i]);
	wr_rec(w, "Z %" PRIu64, w->lines);
	wr_flush(w);
	if (w->err == 0 && fsync(w->fd) == -1)
		w->err = errno;
	close(w->fd);
	if (w->err != 0) {
		errno = w->err;
		lg_io_error(l, "write", "snapshot.tmp");
		unlinkat(l->dir_fd, "snapshot.tmp", 0);
		goto err0;
	}
	*size = w->bytes;
	rc = 0;
err0:
	free(w);
	return rc;
}

int
lg_file_compact(struct mt_ledger *l)
{
	off_t size;
	time_t now = time(NULL);
	size_t i;

	if (lg_file_sync(l) == -1)
		return -1;
	for (i = 0; i < l->nfolders; i++) {
		lg_ranges_coarsen(&l->folders[i]->ranges, (int64_t)now);
		lg_fps_pack(&l->folders[i]->fps);
		lg_olds_pack(&l->folders[i]->olds);
	}
	if (write_snapshot(l, l->epoch + 1, &size) == -1)
		return -1;	/* the journal still holds everything */
	if (renameat(l->dir_fd, "snapshot.tmp", l->dir_fd, "snapshot") == -1) {
		lg_io_error(l, "rename", "snapshot.tmp");
		unlinkat(l->dir_fd, "snapshot.tmp", 0);
		return -1;
	}
	/*
	 * From here the old journal may already be superseded on disk:
	 * appending to it would write records the next open ignores.
	 */
	if (lg_sync_dir(l) == -1 || lg_journal_create(l, l->epoch + 1) == -1) {
		l->failed = 1;
		return -1;
	}
	l->epoch++;
	l->ssize = size;
	return 0;
}
