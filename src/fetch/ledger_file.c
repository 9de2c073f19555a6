/*
 * ledger_file: the ledger on disk - the lock, group commit, and the
 * journal's creation (loading: ledger_load.c; compaction: ledger_snap.c).
 *
 * Every line is "crc32 payload\n" (crc32 of the payload, 8 lowercase hex
 * digits). Both files start with "H 1 epoch account"; the snapshot ends with
 * "Z lines". Compaction writes snapshot epoch E+1 (temp, fsync, rename,
 * fsync dir), then a new empty journal of epoch E+1 the same way: a journal
 * of epoch E found next to a snapshot of epoch E+1 is one whose records the
 * snapshot already holds (a crash between the two renames).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch/ledger_priv.h"
#include "mailtunnel/util.h"

#define WBUF_FLUSH	65536		/* write out records past this */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	uint32_t c, i, k;

	for (i = 0; i < 256; i++) {
		for (c = i, k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t
lg_crc32(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t c = 0xffffffffu;

	pthread_once(&crc_once, crc_init);
	while (len-- > 0)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* Format "crc payload\n" into out (room for len + 10 bytes). */
size_t
lg_frame(char *out, const char *payload, size_t len)
{
	snprintf(out, 10, "%08" PRIx32 " ", lg_crc32(payload, len));
	memcpy(out + 9, payload, len);
	out[9 + len] = '\n';
	return len + 10;
}

/* ---- writing ---- */

void
lg_io_error(struct mt_ledger *l, const char *what, const char *file)
{
	mt_log_c(&l->log, MT_LOG_ERR, "ledger: cannot %s %s/%s: %s", what,
	    l->dir, file, strerror(errno));
}

int
lg_file_reserve(struct mt_ledger *l, size_t len)
{
	char *nb;
	size_t need = l->wlen + len + 16, ncap;

	if (l->wlen >= WBUF_FLUSH && lg_file_flush(l) == -1)
		return -1;
	need = l->wlen + len + 16;
	if (need <= l->wcap)
		return 0;
	ncap = l->wcap ? l->wcap : 4096;
	while (ncap < need)
		ncap *= 2;
	if ((nb = realloc(l->wbuf, ncap)) == NULL) {
		mt_log_c(&l->log, MT_LOG_ERR, "ledger %s: out of memory",
		    l->dir);
		return -1;
	}
	l->wbuf = nb;
	l->wcap = ncap;
	return 0;
}

void
lg_file_append(struct mt_ledger *l, const char *payload, size_t len)
{
	l->wlen += lg_frame(l->wbuf + l->wlen, payload, len);
}

int
lg_file_flush(struct mt_ledger *l)
{
	if (l->failed)
		return -1;
	if (l->wlen == 0)
		return 0;
	if (mt_write_all(l->jfd, l->wbuf, l->wlen) == -1) {
		/* A part may be on disk: it is a torn tail for the next open. */
		lg_io_error(l, "write", "journal");
		l->failed = 1;
		return -1;
	}
	l->jsize += (off_t)l->wlen;
	l->wlen = 0;
	l->dirty = 1;
	return 0;
}

int
lg_file_sync(struct mt_ledger *l)
{
	if (lg_file_flush(l) == -1)
		return -1;
	if (!l->dirty)
		return 0;
	if (fdatasync(l->jfd) == -1) {
		/* After a failed fsync the pages may be gone: stop here. */
		lg_io_error(l, "sync", "journal");
		l->failed = 1;
		return -1;
	}
	l->dirty = 0;
	return 0;
}

int
lg_sync_dir(struct mt_ledger *l)
{
	if (fsync(l->dir_fd) == -1) {
		lg_io_error(l, "sync", "");
		return -1;
	}
	return 0;
}

/* The payload "H 1 epoch account"; its length, or 0 when too long. */
size_t
lg_header(const struct mt_ledger *l, uint64_t epoch, char *out, size_t size)
{
	char esc[3 * LG_NAME_MAX + 4];
	int n;

	if (lg_escape(esc, sizeof(esc), l->account) == -1)
		return 0;
	n = snprintf(out, size, "H 1 %" PRIu64 " %s", epoch, esc);
	if (n < 0 || (size_t)n >= size)
		return 0;
	return (size_t)n;
}

/*
 * Replace the journal by an empty one of the given epoch: temp, fsync,
 * rename, fsync(dir). The new descriptor replaces l->jfd.
 */
int
lg_journal_create(struct mt_ledger *l, uint64_t epoch)
{
	char payload[LG_LINE_MAX], hdr[LG_LINE_MAX + 16];
	size_t n = lg_header(l, epoch, payload, sizeof(payload));
	int fd;

	if (n > 0)
		n = lg_frame(hdr, payload, n);

	fd = openat(l->dir_fd, "journal.tmp",
	    O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd == -1) {
		lg_io_error(l, "create", "journal.tmp");
		return -1;
	}
	if (n == 0 || mt_write_all(fd, hdr, n) == -1 || fdatasync(fd) == -1) {
		lg_io_error(l, "write", "journal.tmp");
		goto err1;
	}
	if (renameat(l->dir_fd, "journal.tmp", l->dir_fd, "journal") == -1) {
		lg_io_error(l, "rename", "journal.tmp");
		goto err1;
	}
	if (lg_sync_dir(l) == -1)
		goto err1;
	if (l->jfd != -1)
		close(l->jfd);
	l->jfd = fd;
	l->jsize = (off_t)n;
	l->dirty = 0;

	/* Success! */
	return 0;

err1:
	close(fd);
	unlinkat(l->dir_fd, "journal.tmp", 0);
	return -1;
}

/* ---- opening ---- */

/*
 * The account as a file name: bytes outside [A-Za-z0-9._@+-] as %XX, a
 * leading dot escaped; a long result keeps a prefix and a digest of the
 * whole (the snapshot's header holds the account to catch collisions).
 */
static void
safe_name(const char *account, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;
	size_t n = 0;

	for (p = (const unsigned char *)account; *p != '\0'; p++) {
		if (n + 4 >= size)
			break;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("_@+-", *p) != NULL ||
		    (*p == '.' && n > 0)) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
	if (*p != '\0' || n > 120) {
		for (p = (const unsigned char *)account; *p != '\0'; p++)
			h = (h ^ *p) * 0x100000001b3ULL;
		snprintf(out + 100, size - 100, "~%016" PRIx64, h);
	}
}

static long
lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int
lock_account(struct mt_ledger *l, int flags, unsigned timeout_ms,
    enum mt_ledger_err *err)
{
	struct timespec t0, t1, nap = { 0, 20 * 1000 * 1000 };
	char pid[32];
	long waited;

	if ((l->lock_fd = openat(l->dir_fd, "lock",
	    O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		goto err_io;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (flock(l->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			goto err_io;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (!(flags & MT_LEDGER_WAIT) ||
		    (timeout_ms > 0 && waited >= (long)timeout_ms)) {
			if (!(flags & MT_LEDGER_QUIET))
				mt_log_c(&l->log, MT_LOG_ERR, "account %s is busy: "
				    "another fetch (pid %ld) holds %s/lock%s",
				    l->account, lock_holder(l->lock_fd), l->dir,
				    (flags & MT_LEDGER_WAIT) ?
				    " (gave up waiting)" : "");
			*err = MT_LEDGER_EBUSY;
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(l->lock_fd, 0) == -1 ||
	    pwrite(l->lock_fd, pid, strlen(pid), 0) == -1)
		goto err_io;
	return 0;
err_io:
	lg_io_error(l, "lock", "lock");
	*err = MT_LEDGER_EIO;
	return -1;
}

/* Create STATE_DIR/<safe name> (0700) and open it. */
static int
make_dir(struct mt_ledger *l, const char *state_dir, enum mt_ledger_err *err)
{
	char name[256];
	struct stat st;
	int pfd;

	*err = MT_LEDGER_EIO;
	if (stat(state_dir, &st) == -1) {
		mt_log_c(&l->log, MT_LOG_ERR, "state directory %s: %s",
		    state_dir, (errno == ENOENT) ? "does not exist" :
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		mt_log_c(&l->log, MT_LOG_ERR, "state directory %s: not a "
		    "directory", state_dir);
		return -1;
	}
	safe_name(l->account, name, sizeof(name));
	if ((l->dir = malloc(strlen(state_dir) + strlen(name) + 2)) == NULL) {
		*err = MT_LEDGER_ENOMEM;
		return -1;
	}
	sprintf(l->dir, "%s/%s", state_dir, name);
	if (mkdir(l->dir, 0700) == 0) {
		/* Make the new directory's entry durable. */
		if ((pfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC))
		    != -1) {
			fsync(pfd);
			close(pfd);
		}
	} else if (errno != EEXIST) {
		mt_log_c(&l->log, MT_LOG_ERR, "cannot create %s: %s", l->dir,
		    strerror(errno));
		return -1;
	}
	if ((l->dir_fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC))
	    == -1) {
		mt_log_c(&l->log, MT_LOG_ERR, "cannot open %s: %s", l->dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
lg_file_open(struct mt_ledger *l, const char *state_dir, int flags,
    unsigned timeout_ms, enum mt_ledger_err *err)
{
	if (make_dir(l, state_dir, err) == -1 ||
	    lock_account(l, flags, timeout_ms, err) == -1 ||
	    lg_load(l, err) == -1)
		return -1;
	return 0;
}

void
lg_file_close(struct mt_ledger *l)
{
	if (l->jfd != -1)
		close(l->jfd);
	if (l->lock_fd != -1)
		close(l->lock_fd);
	if (l->dir_fd != -1)
		close(l->dir_fd);
	l->jfd = l->lock_fd = l->dir_fd = -1;
}
