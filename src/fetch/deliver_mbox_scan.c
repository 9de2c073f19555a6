/*
 * deliver_mbox_scan: recovery for mbox:FILE. The token says where our copy
 * was to start, how long it is, and its From line; the copy carries
 * "X-Mailtunnel-Id: <key>" as its first header. Since every copy is
 * >From-quoted, a line starting "From " inside it is always the start of
 * the next message: a copy is complete when at least its length passes
 * before the next From line or the end of the file (a mail reader adding a
 * Status: header only makes it longer).
 *
 *   our From line and header at offset:
 *     complete                         delivered
 *     incomplete, at the end           cut off -> not delivered
 *     incomplete, other mail after it  left (logged) -> not delivered
 *   otherwise (the file was rewritten): look for the header after any
 *   From line in the whole file - complete somewhere: delivered; else not.
 * Limit: a reader that shortened our copy, between our append and the
 * crash's recovery, makes it look incomplete.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/deliver_mbox.h"

#define SCAN_BUF 65536

struct scan {
	int fd;
	off_t size;
	const char *key;
	char *buf;			/* SCAN_BUF bytes */
};

/* The first From line at or after start (size when there is none). */
static off_t
next_from(struct scan *s, off_t start)
{
	off_t pos = start > 0 ? start - 1 : 0;
	ssize_t n;
	char *hit;

	if (start == 0 && pread(s->fd, s->buf, 5, 0) == 5 &&
	    memcmp(s->buf, "From ", 5) == 0)
		return 0;
	while (pos < s->size) {
		if ((n = pread(s->fd, s->buf, SCAN_BUF, pos)) < 6)
			break;
		if ((hit = memmem(s->buf, (size_t)n, "\nFrom ", 6)) != NULL)
			return pos + (hit - s->buf) + 1;
		pos += n - 5;		/* a match may straddle the reads */
	}
	return s->size;
}

/* 1 when the message at p starts "From ...\nX-Mailtunnel-Id: <key>\n". */
static int
ours(struct scan *s, off_t p)
{
	char want[MT_DELIVER_KEY_MAX + 24];
	ssize_t n = pread(s->fd, s->buf, 2048, p);
	char *nl;
	size_t wl;

	if (n < 5 || memcmp(s->buf, "From ", 5) != 0 ||
	    (nl = memchr(s->buf, '\n', (size_t)n)) == NULL)
		return 0;
	wl = (size_t)snprintf(want, sizeof(want), "X-Mailtunnel-Id: %s\n",
	    s->key);
	return (size_t)(s->buf + n - (nl + 1)) >= wl &&
	    memcmp(nl + 1, want, wl) == 0;
}

/*
 * Our preamble at off: 2 all of it, 1 the file ends inside it (a torn
 * append), 0 something else.
 */
static int
preamble_at(struct scan *s, off_t off, const char *from)
{
	char pre[DL_SENDER_MAX + MT_DELIVER_KEY_MAX + 80];
	size_t plen, have;

	plen = (size_t)snprintf(pre, sizeof(pre), "From %s\nX-Mailtunnel-Id: "
	    "%s\n", from, s->key);
	if (off >= s->size)
		return 0;
	have = (s->size - off < (off_t)plen) ? (size_t)(s->size - off) : plen;
	if (pread(s->fd, s->buf, have, off) != (ssize_t)have ||
	    memcmp(s->buf, pre, have) != 0)
		return 0;
	return have == plen ? 2 : 1;
}

/* Our copy where the token says: settle it. */
static void
at_offset(struct dl_rec *r, struct mbox *mb, struct scan *s, off_t off,
    uint64_t len)
{
	off_t end = next_from(s, off + 1);

	if ((uint64_t)(end - off) >= len) {
		dl_verdict(r, MT_DELIVER_DELIVERED, 0, NULL);
		return;
	}
	if (end < s->size) {
		dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, "mbox %s: an "
		    "incomplete copy at offset %lld is followed by other mail; "
		    "left in place", mb->path, (long long)off);
		return;
	}
	if (ftruncate(s->fd, off) == -1 || fsync(s->fd) == -1) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, errno, "mbox %s: cannot cut "
		    "off an incomplete copy at offset %lld", mb->path,
		    (long long)off);
		return;
	}
	dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, "mbox %s: cut off an "
	    "incomplete copy of %lld bytes at offset %lld", mb->path,
	    (long long)(s->size - off), (long long)off);
}

/* The file was rewritten: look everywhere. */
static void
anywhere(struct dl_rec *r, struct mbox *mb, struct scan *s, uint64_t len)
{
	off_t p, next;

	for (p = next_from(s, 0); p < s->size; p = next) {
		next = next_from(s, p + 1);
		if (ours(s, p) && (uint64_t)(next - p) >= len) {
			dl_verdict(r, MT_DELIVER_DELIVERED, 0, "mbox %s: found at "
			    "offset %lld (the mailbox was rewritten)", mb->path,
			    (long long)p);
			return;
		}
	}
	dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, NULL);
}

static int
parse_token(const char *token, off_t *off, uint64_t *len, const char **from)
{
	unsigned long long a, b;
	char *end;

	errno = 0;
	a = strtoull(token, &end, 10);
	if (end == token || *end != ':' || errno != 0 || a > INT64_MAX / 2)
		return -1;
	token = end + 1;
	b = strtoull(token, &end, 10);
	if (end == token || *end != ':' || errno != 0 || b == 0 ||
	    b > INT64_MAX / 2 || strlen(end + 1) > DL_SENDER_MAX + 32)
		return -1;
	*off = (off_t)a;
	*len = b;
	*from = end + 1;
	return 0;
}

int
mb_recover(struct dl_rec *r)
{
	struct mbox *mb = r->t->priv;
	struct scan s = { .key = r->key };
	struct stat st;
	const char *from;
	uint64_t len;
	off_t off;
	int rc;

	if (parse_token(r->token, &off, &len, &from) == -1) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, 0, "invalid token \"%s\"",
		    r->token);
		return 0;
	}
	if ((rc = mb_lock(r->t, mb, r, &r->started)) == DL_AGAIN)
		return DL_AGAIN;
	if (rc == -1 && errno == ETIMEDOUT) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, 0, "mbox %s is locked by "
		    "another program", mb->path);
		return 0;
	}
	if (rc == -1) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, errno, "cannot lock mbox %s",
		    mb->path);
		return 0;
	}
	s.fd = mb->fd;
	if (fstat(s.fd, &st) == -1 || (s.buf = malloc(SCAN_BUF)) == NULL) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, errno, "cannot read mbox %s",
		    mb->path);
	} else {
		s.size = st.st_size;
		if (preamble_at(&s, off, from) > 0)
			at_offset(r, mb, &s, off, len);
		else
			anywhere(r, mb, &s, len);
	}
	free(s.buf);
	mb_unlock(mb, r);
	return 0;
}
