/*
 * deliver_maildir: maildir:DIR. Messages are staged in tmp/ as
 * "<now>.mt-<key>.P<pid>Q<n>.<host>" and renamed into new/ as
 * "<date>.mt-<key>.<host>,S=<size>" (size as stored, LF line endings), so
 * the final name is the same for every attempt at one message. Recovery
 * follows deliver_file.c, and also looks for cur/<final>:2,<flags>.
 *
 * One more case: tmp/ cleaners (Dovecot, some MDAs) delete tmp/ files that
 * are older than 36 hours. A copy staged, named by an intent, and then left
 * there by a crash for that long may have been removed without having been
 * delivered: recovery says "unknown" rather than "delivered" for it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch/deliver_priv.h"

#define PATH_CAP	3072
#define TMP_CLEANED	(24 * 3600)	/* younger than any tmp/ cleaner */

struct maildir {
	char path[PATH_CAP];
	char sub[3][PATH_CAP + 8];	/* DIR/tmp, DIR/new, DIR/cur */
	char host[80];
	int fd[3];
};

enum { TMP, NEW, CUR };
static const char *const subs[3] = { "tmp", "new", "cur" };

struct md_msg {
	char tmp[DL_NAME_MAX + 1];
	char final[DL_NAME_MAX + 1];
};

/* The host name as the Maildir convention writes it. */
static void
host_part(char *out, size_t size)
{
	char host[256] = "localhost", *p;
	size_t n = 0;

	if (gethostname(host, sizeof(host) - 1) == -1 || host[0] == '\0')
		strcpy(host, "localhost");
	host[64] = '\0';
	for (p = host; *p != '\0' && n + 5 < size; p++) {
		if (*p == '/' || *p == ':' || *p == ',')
			n += (size_t)snprintf(out + n, size - n, "\\%03o",
			    (unsigned char)*p);
		else if ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
			out[n++] = *p;
	}
	out[n] = '\0';
}

static int
md_open(struct mt_deliver *t, const char *arg, char *err, size_t errsz)
{
	struct maildir *md;
	size_t n = strlen(arg);
	int i;

	while (n > 1 && arg[n - 1] == '/')
		n--;
	if (n >= PATH_CAP) {
		snprintf(err, errsz, "%s: path too long", t->spec);
		return -1;
	}
	if ((md = calloc(1, sizeof(*md))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	memcpy(md->path, arg, n);
	for (i = 0; i < 3; i++) {
		snprintf(md->sub[i], sizeof(md->sub[i]), "%s/%s", md->path,
		    subs[i]);
		md->fd[i] = -1;
	}
	host_part(md->host, 72);	/* names stay under 255 bytes */
	t->priv = md;
	return 0;
}

static void
md_close(struct mt_deliver *t)
{
	struct maildir *md = t->priv;
	int i;

	for (i = 0; i < 3; i++)
		if (md->fd[i] != -1)
			close(md->fd[i]);
	free(md);
}

/* Create what is missing of DIR/{tmp,new,cur} and open them. */
static int
md_ready(struct mt_deliver_msg *m, struct maildir *md)
{
	int i;

	if (md->fd[CUR] != -1)
		return 0;
	if (dl_mkdir(md->path) == -1) {
		if (errno == ENOENT)
			dl_fail(m, 0, "maildir %s: its parent directory does "
			    "not exist", md->path);
		else if (errno == ENOTDIR)
			dl_fail(m, 0, "maildir %s: not a directory", md->path);
		else
			dl_fail(m, errno, "cannot create maildir %s", md->path);
		return -1;
	}
	for (i = 0; i < 3; i++) {
		if (dl_mkdir(md->sub[i]) == -1 ||
		    dl_open_dir(md->sub[i], &md->fd[i]) == -1) {
			dl_fail(m, errno, "cannot create %s", md->sub[i]);
			return -1;
		}
	}
	return 0;
}

static int
md_begin(struct mt_deliver_msg *m)
{
	struct maildir *md = m->t->priv;
	struct md_msg *mm;
	char prefix[160], suffix[210];

	if (md_ready(m, md) == -1)
		return -1;
	if ((mm = calloc(1, sizeof(*mm))) == NULL) {
		dl_fail(m, ENOMEM, "maildir %s", md->path);
		return -1;
	}
	m->priv = mm;
	snprintf(prefix, sizeof(prefix), "%lld.mt-%s.", (long long)time(NULL),
	    m->key);
	snprintf(suffix, sizeof(suffix), ".%s", md->host);
	return dl_stage_open(m, md->fd[TMP], md->sub[TMP], prefix, suffix,
	    mm->tmp);
}

static int
md_end(struct mt_deliver_msg *m)
{
	struct maildir *md = m->t->priv;
	struct md_msg *mm = m->priv;
	int n;

	if (dl_stage_prepare(m, md->fd[TMP], md->sub[TMP]) == -1)
		return -1;
	n = snprintf(mm->final, sizeof(mm->final), "%lld.mt-%s.%s,S=%" PRIu64,
	    (long long)m->date, m->key, md->host, m->out_bytes);
	if (n < 0 || (size_t)n >= sizeof(mm->final)) {
		dl_fail(m, 0, "maildir %s: file name too long", md->path);
		return -1;
	}
	snprintf(m->token, sizeof(m->token), "%s/%s", mm->tmp, mm->final);
	return 0;
}

static int
md_commit(struct mt_deliver_msg *m)
{
	struct maildir *md = m->t->priv;
	struct md_msg *mm = m->priv;

	return dl_stage_commit(m, md->fd[TMP], mm->tmp, md->fd[NEW],
	    md->sub[NEW], mm->final);
}

static void
md_release(struct mt_deliver_msg *m)
{
	struct maildir *md = m->t->priv;
	struct md_msg *mm = m->priv;

	if (mm != NULL && mm->tmp[0] != '\0' && m->phase <= DL_ENDING)
		unlinkat(md->fd[TMP], mm->tmp, 0);
	free(mm);
	m->priv = NULL;
}

/* 1 when cur/ holds final with an info suffix (":2,FLAGS"). */
static int
in_cur(int curfd, const char *final)
{
	struct dirent *de;
	size_t n = strlen(final);
	DIR *d;
	int fd, found = 0;

	if ((fd = dup(curfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while (!found && (de = readdir(d)) != NULL)
		found = strncmp(de->d_name, final, n) == 0 &&
		    (de->d_name[n] == ':' || de->d_name[n] == ';');
	closedir(d);
	return found;
}

static int
md_recover(struct dl_rec *r)
{
	struct maildir *md = r->t->priv;
	char tmp[DL_NAME_MAX + 1], final[DL_NAME_MAX + 1];
	int i, rc;

	if (dl_split_token(r->token, tmp, final) == -1) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, 0, "invalid token \"%s\"",
		    r->token);
		return 0;
	}
	for (i = 0; i < 3; i++)
		if (dl_open_dir(md->sub[i], &md->fd[i]) == -1) {
			dl_verdict(r, MT_DELIVER_UNKNOWN, errno, "cannot open "
			    "%s", md->sub[i]);
			return 0;
		}
	if ((rc = dl_exists(md->fd[NEW], final)) == 0)
		rc = in_cur(md->fd[CUR], final);
	if (rc == 1) {
		unlinkat(md->fd[TMP], tmp, 0);	/* a copy left by step 5 */
		dl_verdict(r, MT_DELIVER_DELIVERED, 0, NULL);
		return 0;
	}
	if (rc == 0)
		rc = dl_exists(md->fd[TMP], tmp);
	if (rc == -1) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, errno, "cannot look into %s",
		    md->path);
		return 0;
	}
	if (rc == 1) {
		dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, NULL);
		return 0;
	}
	if (time(NULL) - strtoll(tmp, NULL, 10) > TMP_CLEANED)
		dl_verdict(r, MT_DELIVER_UNKNOWN, 0, "%s is neither in new/, cur/ "
		    "nor tmp/ of %s, and it was staged more than a day ago: a "
		    "tmp/ cleaner may have removed it undelivered", final,
		    md->path);
	else
		dl_verdict(r, MT_DELIVER_DELIVERED, 0, "%s is no longer in "
		    "%s: a mail reader took it; counted as delivered", final,
		    md->sub[NEW]);
	return 0;
}

static int
md_discard(struct mt_deliver *t, const char *token)
{
	struct maildir *md = t->priv;
	char tmp[DL_NAME_MAX + 1], final[DL_NAME_MAX + 1];

	if (dl_split_token(token, tmp, final) == -1) {
		mt_log_c(&t->log, MT_LOG_ERR, "maildir %s: invalid token "
		    "\"%s\"", md->path, token);
		return -1;
	}
	if (dl_open_dir(md->sub[TMP], &md->fd[TMP]) == -1 ||
	    (unlinkat(md->fd[TMP], tmp, 0) == -1 && errno != ENOENT)) {
		mt_log_c(&t->log, MT_LOG_ERR, "maildir %s: cannot remove "
		    "tmp/%s: %s", md->path, tmp, strerror(errno));
		return -1;
	}
	return 0;
}

const struct dl_ops mt_deliver_maildir_ops = {
	.scheme = "maildir",
	.open = md_open,
	.close = md_close,
	.begin = md_begin,
	.end = md_end,
	.commit = md_commit,
	.release = md_release,
	.recover = md_recover,
	.discard = md_discard,
	.lf = 1,
	.quote = 0,
	.batch = 64,
	.group = 1,
};
