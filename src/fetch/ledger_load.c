/*
 * ledger_load: reading the ledger at open - the snapshot, then the journal
 * on top of it (see ledger_file.c for the format). A torn last record is
 * cut off; anything else that does not read back is refused, never guessed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/ledger_priv.h"

/* The payload of a framed line (NUL-terminated, no newline), or NULL. */
static char *
unframe(char *line, size_t len)
{
	char *end;
	unsigned long crc;

	if (len < 10 || line[8] != ' ')
		return NULL;
	line[8] = '\0';
	crc = strtoul(line, &end, 16);
	line[8] = ' ';
	if (end != line + 8 || crc != lg_crc32(line + 9, len - 9))
		return NULL;
	return line + 9;
}

/* ---- reading lines with a cap ---- */

struct rd {
	int fd;
	char buf[2 * LG_LINE_MAX];
	size_t start, end;
	off_t off;			/* file offset of buf[start] */
	int eof;
};

enum { RD_LINE = 1, RD_EOF = 0, RD_ERR = -1, RD_TORN = -2 };

/* Next line, NUL-terminated without its newline. RD_TORN: no newline. */
static int
rd_line(struct rd *r, char **line, size_t *len)
{
	char *nl;
	ssize_t got;

	for (;;) {
		nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl != NULL) {
			*line = r->buf + r->start;
			*len = (size_t)(nl - *line);
			*nl = '\0';
			r->off += (off_t)(*len + 1);
			r->start += *len + 1;
			return RD_LINE;
		}
		if (r->eof || r->end - r->start >= LG_LINE_MAX)
			return (r->end == r->start) ? RD_EOF : RD_TORN;
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
		got = read(r->fd, r->buf + r->end, sizeof(r->buf) - r->end);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return RD_ERR;
		if (got == 0)
			r->eof = 1;
		r->end += (size_t)got;
	}
}

/* Drop the rest of an over-long line. 1: skipped, 0: EOF, -1: error. */
static int
rd_skip(struct rd *r)
{
	char *nl;
	ssize_t got;

	while ((nl = memchr(r->buf + r->start, '\n', r->end - r->start))
	    == NULL) {
		r->off += (off_t)(r->end - r->start);
		r->start = r->end = 0;
		if (r->eof)
			return 0;
		if ((got = read(r->fd, r->buf, sizeof(r->buf))) < 0 &&
		    errno != EINTR)
			return -1;
		if (got == 0)
			r->eof = 1;
		r->end = got > 0 ? (size_t)got : 0;
	}
	r->off += (off_t)(nl + 1 - (r->buf + r->start));
	r->start = (size_t)(nl + 1 - r->buf);
	return 1;
}

/* ---- loading ---- */

static void corrupt(struct mt_ledger *l, enum mt_ledger_err *err,
    const char *file, const char *fmt, ...) MT_PRINTF(4, 5);

static void
corrupt(struct mt_ledger *l, enum mt_ledger_err *err, const char *file,
    const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	mt_log_c(&l->log, MT_LOG_ERR, "ledger %s/%s: %s; refusing to guess "
	    "what was delivered (move the directory aside to start over)",
	    l->dir, file, what);
	*err = MT_LEDGER_ECORRUPT;
}

/* Check a header payload against this account; *epoch from it. */
static int
check_header(struct mt_ledger *l, char *payload, uint64_t *epoch)
{
	char want[LG_LINE_MAX], *sp;
	size_t n = lg_header(l, 0, want, sizeof(want));

	/* Compare "H 1 " and the account; the epoch sits between. */
	if (n == 0 || strncmp(payload, "H 1 ", 4) != 0)
		return -1;
	*epoch = strtoull(payload + 4, &sp, 10);
	if (sp == payload + 4 || *sp != ' ' || !(payload[4] >= '0' &&
	    payload[4] <= '9'))
		return -1;
	return strcmp(sp, want + 5) == 0 ? 0 : -1;
}

static int
load_snapshot_lines(struct mt_ledger *l, struct rd *r, enum mt_ledger_err *err)
{
	unsigned long long lineno = 1, count;
	char *line, *p, *end;
	size_t len;
	int rc;

	while ((rc = rd_line(r, &line, &len)) == RD_LINE) {
		lineno++;
		if ((p = unframe(line, len)) == NULL)
			goto bad;
		if (p[0] == 'Z' && p[1] == ' ') {
			count = strtoull(p + 2, &end, 10);
			if (*end != '\0' || count != lineno - 1 ||
			    rd_line(r, &line, &len) != RD_EOF)
				goto bad;
			return 0;
		}
		if (lg_apply(l, p) == -1)
			goto bad;
	}
	if (rc == RD_ERR) {
		lg_io_error(l, "read", "snapshot");
		*err = MT_LEDGER_EIO;
		return -1;
	}
	corrupt(l, err, "snapshot", "ends early, after line %llu",
	    lineno);
	return -1;
bad:
	corrupt(l, err, "snapshot", "damaged at line %llu", lineno);
	return -1;
}

static int
load_snapshot(struct mt_ledger *l, enum mt_ledger_err *err)
{
	struct rd *r;
	struct stat st;
	char *line, *p;
	size_t len;
	int rc = -1;

	l->epoch = 0;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		*err = MT_LEDGER_ENOMEM;
		return -1;
	}
	if ((r->fd = openat(l->dir_fd, "snapshot", O_RDONLY | O_CLOEXEC)) == -1) {
		free(r);
		if (errno == ENOENT)
			return 0;
		lg_io_error(l, "open", "snapshot");
		*err = MT_LEDGER_EIO;
		return -1;
	}
	if (rd_line(r, &line, &len) != RD_LINE ||
	    (p = unframe(line, len)) == NULL ||
	    check_header(l, p, &l->epoch) == -1 || l->epoch == 0)
		corrupt(l, err, "snapshot", "not the ledger of this account");
	else
		rc = load_snapshot_lines(l, r, err);
	if (rc == 0 && fstat(r->fd, &st) == 0)
		l->ssize = st.st_size;
	close(r->fd);
	free(r);
	return rc;
}

/*
 * A bad line in the journal. A crash while appending leaves a torn last
 * record (or, after a power loss, a run of zeros): drop it. Valid records
 * after damage mean something else broke the file: refuse.
 */
static int
journal_tail(struct mt_ledger *l, struct rd *r, off_t good, int zeros,
    enum mt_ledger_err *err)
{
	char *line;
	size_t len;
	int rc;

	while (!zeros && (rc = rd_line(r, &line, &len)) != RD_EOF &&
	    rc != RD_ERR) {
		if (rc == RD_LINE && unframe(line, len) != NULL) {
			corrupt(l, err, "journal", "damaged at offset %llu, "
			    "with records after the damage",
			    (unsigned long long)good);
			return -1;
		}
		if (rc == RD_TORN && rd_skip(r) != 1)
			break;
	}
	mt_log_c(&l->log, MT_LOG_WARNING, "ledger %s/journal: dropped %lld "
	    "bytes of an incomplete record at its end (an interrupted write)",
	    l->dir, (long long)(lseek(l->jfd, 0, SEEK_END) - good));
	if (ftruncate(l->jfd, good) == -1 || fdatasync(l->jfd) == -1) {
		lg_io_error(l, "truncate", "journal");
		*err = MT_LEDGER_EIO;
		return -1;
	}
	l->jsize = good;
	return 0;
}

static int
replay(struct mt_ledger *l, struct rd *r, enum mt_ledger_err *err)
{
	unsigned long long lineno = 1;
	off_t good = r->off;
	char *line, *p;
	size_t len;
	int rc;

	while ((rc = rd_line(r, &line, &len)) == RD_LINE) {
		lineno++;
		if ((p = unframe(line, len)) == NULL)
			return journal_tail(l, r, good, line[0] == '\0', err);
		if (lg_apply(l, p) == -1) {
			corrupt(l, err, "journal", "line %llu is not a valid "
			    "record", lineno);
			return -1;
		}
		good = r->off;
	}
	if (rc == RD_TORN)
		return journal_tail(l, r, good, r->buf[r->start] == '\0', err);
	if (rc == RD_ERR) {
		lg_io_error(l, "read", "journal");
		*err = MT_LEDGER_EIO;
		return -1;
	}
	l->jsize = good;
	return 0;
}

static int
load_journal(struct mt_ledger *l, enum mt_ledger_err *err)
{
	struct rd *r;
	uint64_t je;
	char *line, *p;
	size_t len;
	int rc = -1;

	*err = MT_LEDGER_EIO;
	l->jfd = openat(l->dir_fd, "journal", O_RDWR | O_APPEND | O_CLOEXEC);
	if (l->jfd == -1 && errno != ENOENT) {
		lg_io_error(l, "open", "journal");
		return -1;
	}
	if (l->jfd == -1) {
		if (l->epoch > 0)
			mt_log_c(&l->log, MT_LOG_WARNING, "ledger %s: the "
			    "journal is missing; starting a new one", l->dir);
		return lg_journal_create(l, l->epoch);
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		*err = MT_LEDGER_ENOMEM;
		return -1;
	}
	r->fd = l->jfd;
	if (rd_line(r, &line, &len) != RD_LINE ||
	    (p = unframe(line, len)) == NULL || check_header(l, p, &je) == -1)
		corrupt(l, err, "journal", "not the ledger of this account");
	else if (je + 1 == l->epoch)
		/* Compaction stopped between its two renames. */
		rc = lg_journal_create(l, l->epoch);
	else if (je != l->epoch)
		corrupt(l, err, "journal", "epoch %llu does not follow the "
		    "snapshot's epoch %llu", (unsigned long long)je,
		    (unsigned long long)l->epoch);
	else
		rc = replay(l, r, err);
	free(r);
	return rc;
}

int
lg_load(struct mt_ledger *l, enum mt_ledger_err *err)
{
	if (load_snapshot(l, err) == -1 || load_journal(l, err) == -1)
		return -1;
	return 0;
}
