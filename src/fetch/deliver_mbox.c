/*
 * deliver_mbox: mbox:FILE in mboxrd form. A message is spooled first (an
 * O_TMPFILE next to FILE, gone by itself after a crash) as
 *   From <sender> <date>\n X-Mailtunnel-Id: <key>\n <message, LF, >From>\n\n
 * so the mailbox is locked only while the copy is appended, never while a
 * message trickles in from the network.
 *
 * end: lock (FILE.lock, then fcntl - the order of Dovecot and procmail;
 *      a lock held by someone else is released and retried from the loop)
 *      and note the size: token = "offset:length:<From line>".
 * (caller records the intent)
 * commit: append at offset (copy_file_range), fsync, unlock. On failure the
 *      file is cut back to its old size before unlocking.
 * Recovery (deliver_mbox_scan.c) looks for our copy at offset, then in the
 * whole file (a mail reader may have rewritten it): a complete copy is
 * "delivered"; an incomplete one at the end of the file is cut off.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch/deliver_priv.h"
#include "fetch/deliver_mbox.h"
#include "mailtunnel/util.h"

#define STALE_LOCK	300		/* seconds: a dotlock older is stale */

struct mb_msg {
	off_t orig;			/* file size before our append */
	off_t off;			/* where our copy starts */
	int nl;				/* the file lacked a final newline */
	int sealed;			/* the closing blank line is spooled */
	int locked;
	char from[DL_SENDER_MAX + 40];	/* the From line, without "From " */
};

static int
mb_open(struct mt_deliver *t, const char *arg, char *err, size_t errsz)
{
	struct mbox *mb;
	char *slash;

	if (strlen(arg) >= MB_PATH_CAP || arg[strlen(arg) - 1] == '/') {
		snprintf(err, errsz, "%s: %s", t->spec, strlen(arg) >=
		    MB_PATH_CAP ? "path too long" : "names a directory");
		return -1;
	}
	if ((mb = calloc(1, sizeof(*mb))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	strcpy(mb->path, arg);
	snprintf(mb->lockpath, sizeof(mb->lockpath), "%s.lock", arg);
	strcpy(mb->dir, arg);
	if ((slash = strrchr(mb->dir, '/')) == NULL)
		strcpy(mb->dir, ".");
	else if (slash == mb->dir)
		mb->dir[1] = '\0';
	else
		*slash = '\0';
	mb->fd = -1;
	t->priv = mb;
	return 0;
}

static void
mb_close(struct mt_deliver *t)
{
	struct mbox *mb = t->priv;

	mb_unlock(mb, mb->holder);
	free(mb);
}

/* A dotlock left by a dead process (same host) or older than 5 minutes. */
static int
stale(const char *lockpath)
{
	struct stat st;
	char buf[32];
	ssize_t n;
	long pid;
	int fd;

	if ((fd = open(lockpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	if (fstat(fd, &st) == -1)
		st.st_mtime = time(NULL);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	pid = strtol(buf, NULL, 10);
	if (pid > 0 && kill((pid_t)pid, 0) == -1 && errno == ESRCH)
		return 1;
	return time(NULL) - st.st_mtime > STALE_LOCK;
}

/*
 * Make FILE.lock holding our pid, all at once: written as an unnamed file
 * and linked into place, so a crash never leaves an empty lock that others
 * could not tell from a live one. 0, or -1 with errno (EEXIST: held).
 */
static int
make_lock(struct mbox *mb)
{
	char pid[32], proc[64];
	int fd, err;

	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if ((fd = open(mb->dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644)) != -1) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (mt_write_all(fd, pid, strlen(pid)) == 0 &&
		    linkat(AT_FDCWD, proc, AT_FDCWD, mb->lockpath,
		    AT_SYMLINK_FOLLOW) == 0)
			return close(fd);
		err = errno;
		close(fd);
		if (err != ENOENT && err != EXDEV && err != EOPNOTSUPP) {
			errno = err;
			return -1;
		}
	}
	/* No O_TMPFILE (or no /proc): create it in place. */
	fd = open(mb->lockpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0644);
	if (fd == -1)
		return -1;
	if (mt_write_all(fd, pid, strlen(pid)) == -1 || close(fd) == -1) {
		err = errno;
		unlink(mb->lockpath);
		errno = err;
		return -1;
	}
	return 0;
}

/* FILE.lock: 0 held (or impossible here), 1 busy, -1 error. */
static int
dotlock(struct mt_deliver *t, struct mbox *mb)
{
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (make_lock(mb) == 0) {
			mb->dotlocked = 1;
			return 0;
		}
		if (errno == EACCES || errno == EPERM || errno == EROFS) {
			if (!mb->warned)
				mt_log_c(&t->log, MT_LOG_WARNING, "mbox %s: cannot "
				    "create %s (%s); locking with fcntl() only",
				    mb->path, mb->lockpath, strerror(errno));
			mb->warned = 1;
			return 0;
		}
		if (errno != EEXIST)
			return -1;
		if (!stale(mb->lockpath))
			return 1;
		mt_log_c(&t->log, MT_LOG_NOTICE, "mbox %s: removing the stale "
		    "lock %s", mb->path, mb->lockpath);
		unlink(mb->lockpath);
	}
	return 1;
}

void
mb_unlock(struct mbox *mb, const void *holder)
{
	if (mb->holder == NULL || mb->holder != holder)
		return;
	if (mb->fd != -1)
		close(mb->fd);		/* drops the fcntl lock */
	mb->fd = -1;
	if (mb->dotlocked)
		unlink(mb->lockpath);
	mb->dotlocked = 0;
	mb->holder = NULL;
}

/*
 * Take both locks for holder: 0 held, DL_AGAIN busy, -1 error (errno; a
 * timeout gives ETIMEDOUT).
 */
int
mb_lock(struct mt_deliver *t, struct mbox *mb, const void *holder,
    const struct timespec *since)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int rc = 1, created;

	if (mb->holder == holder)
		return 0;
	if (mb->holder == NULL && (rc = dotlock(t, mb)) == -1)
		return -1;
	if (rc == 0) {
		mb->holder = holder;
		created = access(mb->path, F_OK) == -1;
		mb->fd = open(mb->path, O_RDWR | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (mb->fd == -1) {
			rc = errno;
			mb_unlock(mb, holder);
			errno = rc;
			return -1;
		}
		if (created)
			mb_sync_dir(mb);
		if (fcntl(mb->fd, F_SETLK, &fl) == 0)
			return 0;
		rc = errno;
		mb_unlock(mb, holder);	/* let the other program finish */
		if (rc != EAGAIN && rc != EACCES) {
			errno = rc;
			return -1;
		}
	}
	if (dl_elapsed_ms(since) >= (long)t->lock_timeout_ms) {
		errno = ETIMEDOUT;
		return -1;
	}
	return DL_AGAIN;
}

void
mb_sync_dir(struct mbox *mb)
{
	int fd = open(mb->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd != -1) {
		fsync(fd);
		close(fd);
	}
}

/* A spool file next to the mailbox (same file system), else in TMPDIR. */
static int
spool_open(struct mbox *mb)
{
	const char *dirs[2] = { mb->dir, getenv("TMPDIR") };
	char path[MB_PATH_CAP + 32];
	int i, fd;

	if (dirs[1] == NULL)
		dirs[1] = "/tmp";
	for (i = 0; i < 2; i++) {
		fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd != -1)
			return fd;
		snprintf(path, sizeof(path), "%s/.mt-spool-XXXXXX", dirs[i]);
		if ((fd = mkostemp(path, O_CLOEXEC)) != -1) {
			unlink(path);
			return fd;
		}
	}
	return -1;
}

static int
mb_begin(struct mt_deliver_msg *m)
{
	struct mbox *mb = m->t->priv;
	struct mb_msg *mm;
	char date[64], hdr[DL_SENDER_MAX + MT_DELIVER_KEY_MAX + 80];
	struct stat st;
	struct tm tm;

	if (stat(mb->dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		dl_fail(m, 0, "mbox %s: its parent directory does not exist",
		    mb->path);
		return -1;
	}
	if ((mm = calloc(1, sizeof(*mm))) == NULL) {
		dl_fail(m, ENOMEM, "mbox %s", mb->path);
		return -1;
	}
	m->priv = mm;
	snprintf(m->where, sizeof(m->where), "a spool file for %s", mb->path);
	if ((m->fd = spool_open(mb)) == -1) {
		dl_fail(m, errno, "cannot create %s", m->where);
		return -1;
	}
	if (localtime_r(&m->date, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		strcpy(date, "Thu Jan  1 00:00:00 1970");
	snprintf(mm->from, sizeof(mm->from), "%s %s", m->sender, date);
	snprintf(hdr, sizeof(hdr), "From %s\nX-Mailtunnel-Id: %s\n", mm->from,
	    m->key);
	return dl_put(m, hdr, strlen(hdr));
}

/* Spool complete; lock and find where the copy goes. */
static int
mb_end(struct mt_deliver_msg *m)
{
	struct mbox *mb = m->t->priv;
	struct mb_msg *mm = m->priv;
	struct stat st;
	char last = '\n';
	int rc;

	if (!mm->sealed) {
		/* mboxrd: the message ends with a newline, then a blank line. */
		if ((m->last != '\n' && dl_put(m, "\n", 1) == -1) ||
		    dl_put(m, "\n", 1) == -1 || dl_flush(m) == -1)
			return -1;
		mm->sealed = 1;
	}
	if ((rc = mb_lock(m->t, mb, m, &m->started)) == DL_AGAIN)
		return DL_AGAIN;
	if (rc == -1) {
		if (errno == ETIMEDOUT)
			dl_fail(m, -1, "mbox %s is locked by another program "
			    "(gave up after %u.%u s)", mb->path,
			    m->t->lock_timeout_ms / 1000,
			    m->t->lock_timeout_ms % 1000 / 100);
		else
			dl_fail(m, errno, "cannot lock mbox %s", mb->path);
		return -1;
	}
	mm->locked = 1;
	if (fstat(mb->fd, &st) == -1 || (st.st_size > 0 &&
	    pread(mb->fd, &last, 1, st.st_size - 1) != 1)) {
		dl_fail(m, errno, "cannot read mbox %s", mb->path);
		return -1;
	}
	mm->orig = st.st_size;
	mm->nl = (last != '\n');
	mm->off = st.st_size + mm->nl;
	snprintf(m->token, sizeof(m->token), "%lld:%" PRIu64 ":%s",
	    (long long)mm->off, m->out_bytes, mm->from);
	return 0;
}

/* Append the spool at mm->off. */
static int
append(struct mt_deliver_msg *m, struct mbox *mb, struct mb_msg *mm)
{
	loff_t in = 0, out = mm->off;
	uint64_t left = m->out_bytes;
	ssize_t n;

	if (mm->nl && pwrite(mb->fd, "\n", 1, mm->orig) != 1)
		return -1;
	while (left > 0) {
		n = copy_file_range(m->fd, &in, mb->fd, &out, left, 0);
		if (n > 0) {
			left -= (uint64_t)n;
			continue;
		}
		if (n == 0 || (errno != EXDEV && errno != EINVAL &&
		    errno != ENOSYS && errno != EOPNOTSUPP))
			return n == 0 ? (errno = EIO, -1) : -1;
		/* Another file system: copy through the buffer. */
		n = pread(m->fd, m->obuf, left < DL_OBUF ? left : DL_OBUF, in);
		if (n <= 0 || pwrite(mb->fd, m->obuf, (size_t)n, out) != n)
			return n == 0 ? (errno = EIO, -1) : -1;
		in += n;
		out += n;
		left -= (uint64_t)n;
	}
	return fdatasync(mb->fd);
}

static int
mb_commit(struct mt_deliver_msg *m)
{
	struct mbox *mb = m->t->priv;
	struct mb_msg *mm = m->priv;
	int err;

	if (append(m, mb, mm) == -1) {
		err = errno;
		/* Leave the mailbox as it was, then unlock. */
		if (ftruncate(mb->fd, mm->orig) == 0)
			fsync(mb->fd);
		dl_fail(m, err, "cannot write mbox %s", mb->path);
		return -1;
	}
	mb_unlock(mb, m);
	mm->locked = 0;
	return 0;
}

static void
mb_release(struct mt_deliver_msg *m)
{
	struct mbox *mb = m->t->priv;
	struct mb_msg *mm = m->priv;

	if (mm != NULL && mm->locked)
		mb_unlock(mb, m);
	free(mm);
	m->priv = NULL;
}

static int
mb_discard(struct mt_deliver *t, const char *token)
{
	(void)t;
	(void)token;
	return 0;			/* the spool vanished with its handle */
}

const struct dl_ops mt_deliver_mbox_ops = {
	.scheme = "mbox",
	.open = mb_open,
	.close = mb_close,
	.begin = mb_begin,
	.end = mb_end,
	.commit = mb_commit,
	.release = mb_release,
	.recover = mb_recover,
	.discard = mb_discard,
	.lf = 1,
	.quote = 1,
};
