/*
 * deliver_file: what maildir: and dir: share - a copy written under a
 * staging name, made durable, then renamed to its final name.
 *
 * The state machine of one delivery, and what recovery concludes from the
 * files it finds (token = "staging/final"):
 *   1. begin      open staging name (O_EXCL: a fresh name per attempt)
 *   2. write      data into it
 *   3. end        fdatasync(file), fsync(staging dir): the staging entry is
 *                 durable before any intent can name it; token handed out
 *   4. (caller)   ledger intent, fsync
 *   5. commit     rename(staging, final) without replacing   COMMIT POINT
 *   6. commit     fsync(final dir)
 *   7. (caller)   ledger done
 * Recovery of an intent without done:
 *   final exists (maildir: also cur/final:2,...)   delivered (step 5 passed)
 *   else staging exists                            not delivered (before 5)
 *   else                                           delivered: the rename
 *        happened and a reader took the file away (moved or deleted it);
 *        nothing else removes a staging copy whose intent may be durable.
 * Failures before step 3 completes remove the staging copy (no token can
 * exist); after it, only mt_deliver_discard() does, once the ledger has
 * durably recorded the abandon. A kill between any two syscalls therefore
 * leaves a state with one answer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/deliver_priv.h"

static atomic_uint stage_counter;

enum mt_deliver_status
dl_classify(int err)
{
	switch (err) {
	case ENOSPC: case EDQUOT: case EFBIG: case EIO: case EAGAIN:
	case EINTR: case ENOMEM: case EMFILE: case ENFILE: case EBUSY:
	case ETIMEDOUT: case ENOLCK: case ESTALE:
		return MT_DELIVER_TEMPFAIL;
	default:
		return MT_DELIVER_FAIL;
	}
}

/* fsync the directory holding path (its parent). */
static void
sync_parent(const char *path)
{
	char parent[4096];
	char *slash;
	int fd;

	snprintf(parent, sizeof(parent), "%s", path);
	while ((slash = strrchr(parent, '/')) != NULL && slash[1] == '\0')
		*slash = '\0';		/* trailing slashes */
	if ((slash = strrchr(parent, '/')) == NULL)
		strcpy(parent, ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(fd);
		close(fd);
	}
}

/*
 * Make directory path (0700) unless it exists; its parent must. Returns 0,
 * or -1 with errno (ENOENT: the parent is missing; ENOTDIR: path is not a
 * directory).
 */
int
dl_mkdir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0) {
		sync_parent(path);
		return 0;
	}
	if (errno != EEXIST)
		return -1;
	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int
dl_open_dir(const char *path, int *fd)
{
	if (*fd != -1)
		return 0;
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return *fd == -1 ? -1 : 0;
}

/* 1 when name exists in dfd, 0 when not, -1 on error (errno). */
int
dl_exists(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

static int
valid_name(const char *s, size_t n)
{
	return n >= 1 && n <= DL_NAME_MAX && !(n == 1 && s[0] == '.') &&
	    !(n == 2 && s[0] == '.' && s[1] == '.') && memchr(s, '/', n) == NULL;
}

/* "staging/final" into two names of at most DL_NAME_MAX bytes. */
int
dl_split_token(const char *token, char *tmp, char *final)
{
	const char *slash = strchr(token, '/');
	size_t a, b;

	if (slash == NULL)
		return -1;
	a = (size_t)(slash - token);
	b = strlen(slash + 1);
	if (!valid_name(token, a) || !valid_name(slash + 1, b))
		return -1;
	memcpy(tmp, token, a);
	tmp[a] = '\0';
	memcpy(final, slash + 1, b + 1);
	return 0;
}

/*
 * Open a fresh staging file prefix + "P<pid>Q<n>" + suffix in dfd (named
 * dir in messages); its name goes to tmp (DL_NAME_MAX + 1 bytes).
 */
int
dl_stage_open(struct mt_deliver_msg *m, int dfd, const char *dir,
    const char *prefix, const char *suffix, char *tmp)
{
	int tries, n;

	for (tries = 0; tries < 100; tries++) {
		n = snprintf(tmp, DL_NAME_MAX + 1, "%sP%ldQ%u%s", prefix,
		    (long)getpid(), atomic_fetch_add(&stage_counter, 1), suffix);
		if (n < 0 || n > DL_NAME_MAX) {
			dl_fail(m, 0, "%s: file name too long", dir);
			return -1;
		}
		snprintf(m->where, sizeof(m->where), "%s/%s", dir, tmp);
		m->fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC | O_NOFOLLOW, 0600);
		if (m->fd != -1)
			return 0;
		if (errno != EEXIST)
			break;
	}
	dl_fail(m, errno, "cannot create %s", m->where);
	return -1;
}

void
dl_group_add_dir(struct mt_deliver *t, int dfd)
{
	size_t i;

	for (i = 0; i < t->ngdirs; i++)
		if (t->gdirs[i] == dfd)
			return;
	if (t->ngdirs < sizeof(t->gdirs) / sizeof(t->gdirs[0]))
		t->gdirs[t->ngdirs++] = dfd;
	else
		fsync(dfd);	/* not expected: targets have few folders */
}

void
dl_group_add_fd(struct mt_deliver *t, int fd)
{
	int *v;

	if (t->ngfds == t->capgfds) {
		size_t cap = t->capgfds ? 2 * t->capgfds : 16;

		if ((v = realloc(t->gfds, cap * sizeof(*v))) == NULL) {
			/* No room to wait: sync it now (the group still
			 * reports errors through close). */
			fdatasync(fd);
			close(fd);
			return;
		}
		t->gfds = v;
		t->capgfds = cap;
	}
	t->gfds[t->ngfds++] = fd;
}

enum mt_deliver_status
dl_group_sync(struct mt_deliver *t, char *reason, size_t size)
{
	enum mt_deliver_status st = MT_DELIVER_OK;
	size_t i;

	for (i = 0; i < t->ngfds; i++) {
		if ((fdatasync(t->gfds[i]) == -1 || close(t->gfds[i]) == -1) &&
		    st == MT_DELIVER_OK) {
			st = dl_classify(errno);
			snprintf(reason, size, "%s: cannot sync a message file: "
			    "%s", t->spec, strerror(errno));
		}
	}
	for (i = 0; i < t->ngdirs; i++) {
		if (fsync(t->gdirs[i]) == -1 && st == MT_DELIVER_OK) {
			st = dl_classify(errno);
			snprintf(reason, size, "%s: cannot sync a folder: %s",
			    t->spec, strerror(errno));
		}
	}
	t->ngfds = t->ngdirs = 0;
	return st;
}

/* Steps 3: data and staging entry durable (or left to the group). */
int
dl_stage_prepare(struct mt_deliver_msg *m, int dfd, const char *dir)
{
	int fd = m->fd;

	if (dl_flush(m) == -1)
		return -1;
	m->fd = -1;
	if (m->t->grouping) {
		/* Start the write-back now; the group waits for it once. */
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		dl_group_add_fd(m->t, fd);
		dl_group_add_dir(m->t, dfd);
		return 0;
	}
	if (fdatasync(fd) == -1) {
		dl_fail(m, errno, "cannot sync %s", m->where);
		close(fd);
		return -1;
	}
	/* close() reports write-back errors on network file systems. */
	if (close(fd) == -1) {
		dl_fail(m, errno, "cannot write %s", m->where);
		return -1;
	}
	if (fsync(dfd) == -1) {
		dl_fail(m, errno, "cannot sync %s", dir);
		return -1;
	}
	return 0;
}

/* rename without replacing; 1 when final existed already. */
static int
rename_noreplace(int tmpdfd, const char *tmp, int finaldfd, const char *final)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(tmpdfd, tmp, finaldfd, final, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST)
		return 1;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	/* No renameat2 here: link + unlink keeps "never replace". */
	if (linkat(tmpdfd, tmp, finaldfd, final, 0) == 0) {
		unlinkat(tmpdfd, tmp, 0);
		return 0;
	}
	return errno == EEXIST ? 1 : -1;
}

/* Steps 5 and 6. */
int
dl_stage_commit(struct mt_deliver_msg *m, int tmpdfd, const char *tmp,
    int finaldfd, const char *finaldir, const char *final)
{
	int rc = rename_noreplace(tmpdfd, tmp, finaldfd, final);

	if (rc == -1) {
		/* The staging copy stays: recovery must see "not delivered". */
		dl_fail(m, errno, "cannot rename %s to %s/%s", m->where,
		    finaldir, final);
		return -1;
	}
	if (rc == 1) {
		/* Same key, date and size: this message, delivered before. */
		mt_log_c(&m->t->log, MT_LOG_NOTICE, "message %s: %s/%s exists "
		    "already; not delivering it twice", m->uid, finaldir, final);
		unlinkat(tmpdfd, tmp, 0);
	}
	if (m->t->grouping) {
		dl_group_add_dir(m->t, finaldfd);
		return 0;
	}
	if (fsync(finaldfd) == -1) {
		dl_fail(m, errno, "cannot sync %s", finaldir);
		return -1;
	}
	return 0;
}
