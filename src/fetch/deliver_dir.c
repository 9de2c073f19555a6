/*
 * deliver_dir: dir:DIR, one NAME.eml per message for programs that poll a
 * folder and take (move or delete) what they find. NAME is
 * "YYYYMMDD-HHMMSS-<key>" from the message date in UTC (names sort by date
 * and do not jump with daylight saving time). The copy is written as
 * ".NAME.eml.P<pid>Q<n>.part" - a leading dot and another extension, which
 * such programs ignore - made durable, then renamed. Bytes are stored as
 * received: CRLF line endings, the native form of RFC 5322 and of .eml.
 * Recovery follows deliver_file.c: a file the program already took counts
 * as delivered.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch/deliver_priv.h"

#define PATH_CAP 3072

struct dirt {
	char path[PATH_CAP];
	int fd;
};

struct dir_msg {
	char tmp[DL_NAME_MAX + 1];
	char final[DL_NAME_MAX + 1];
};

static int
dir_open(struct mt_deliver *t, const char *arg, char *err, size_t errsz)
{
	struct dirt *d;
	size_t n = strlen(arg);

	while (n > 1 && arg[n - 1] == '/')
		n--;
	if (n >= PATH_CAP) {
		snprintf(err, errsz, "%s: path too long", t->spec);
		return -1;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	memcpy(d->path, arg, n);
	d->fd = -1;
	t->priv = d;
	return 0;
}

static void
dir_close(struct mt_deliver *t)
{
	struct dirt *d = t->priv;

	if (d->fd != -1)
		close(d->fd);
	free(d);
}

static int
dir_ready(struct mt_deliver_msg *m, struct dirt *d)
{
	if (d->fd != -1)
		return 0;
	if (dl_mkdir(d->path) == 0 && dl_open_dir(d->path, &d->fd) == 0)
		return 0;
	if (errno == ENOENT)
		dl_fail(m, 0, "folder %s: its parent directory does not exist",
		    d->path);
	else if (errno == ENOTDIR)
		dl_fail(m, 0, "folder %s: not a directory", d->path);
	else
		dl_fail(m, errno, "cannot create folder %s", d->path);
	return -1;
}

static int
dir_begin(struct mt_deliver_msg *m)
{
	struct dirt *d = m->t->priv;
	struct dir_msg *dm;
	char stamp[32], prefix[DL_NAME_MAX + 8];
	struct tm tm;

	if (dir_ready(m, d) == -1)
		return -1;
	if ((dm = calloc(1, sizeof(*dm))) == NULL) {
		dl_fail(m, ENOMEM, "folder %s", d->path);
		return -1;
	}
	m->priv = dm;
	if (gmtime_r(&m->date, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm) == 0)
		strcpy(stamp, "00000000-000000");
	snprintf(dm->final, sizeof(dm->final), "%s-%s.eml", stamp, m->key);
	snprintf(prefix, sizeof(prefix), ".%s.", dm->final);
	return dl_stage_open(m, d->fd, d->path, prefix, ".part", dm->tmp);
}

static int
dir_end(struct mt_deliver_msg *m)
{
	struct dirt *d = m->t->priv;
	struct dir_msg *dm = m->priv;

	if (dl_stage_prepare(m, d->fd, d->path) == -1)
		return -1;
	snprintf(m->token, sizeof(m->token), "%s/%s", dm->tmp, dm->final);
	return 0;
}

static int
dir_commit(struct mt_deliver_msg *m)
{
	struct dirt *d = m->t->priv;
	struct dir_msg *dm = m->priv;

	return dl_stage_commit(m, d->fd, dm->tmp, d->fd, d->path, dm->final);
}

static void
dir_release(struct mt_deliver_msg *m)
{
	struct dirt *d = m->t->priv;
	struct dir_msg *dm = m->priv;

	if (dm != NULL && dm->tmp[0] != '\0' && m->phase <= DL_ENDING)
		unlinkat(d->fd, dm->tmp, 0);
	free(dm);
	m->priv = NULL;
}

static int
dir_recover(struct dl_rec *r)
{
	struct dirt *d = r->t->priv;
	char tmp[DL_NAME_MAX + 1], final[DL_NAME_MAX + 1];
	int fin, stg = 0;

	if (dl_split_token(r->token, tmp, final) == -1) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, 0, "invalid token \"%s\"",
		    r->token);
		return 0;
	}
	if (dl_open_dir(d->path, &d->fd) == -1 ||
	    (fin = dl_exists(d->fd, final)) == -1 ||
	    (fin == 0 && (stg = dl_exists(d->fd, tmp)) == -1)) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, errno, "cannot look into "
		    "folder %s", d->path);
		return 0;
	}
	if (fin) {
		unlinkat(d->fd, tmp, 0);	/* a copy left by step 5 */
		dl_verdict(r, MT_DELIVER_DELIVERED, 0, NULL);
	} else if (stg) {
		dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, NULL);
	} else {
		dl_verdict(r, MT_DELIVER_DELIVERED, 0, "%s is no longer in %s: "
		    "the program reading the folder took it; counted as "
		    "delivered", final, d->path);
	}
	return 0;
}

static int
dir_discard(struct mt_deliver *t, const char *token)
{
	struct dirt *d = t->priv;
	char tmp[DL_NAME_MAX + 1], final[DL_NAME_MAX + 1];

	if (dl_split_token(token, tmp, final) == -1) {
		mt_log_c(&t->log, MT_LOG_ERR, "folder %s: invalid token \"%s\"",
		    d->path, token);
		return -1;
	}
	if (dl_open_dir(d->path, &d->fd) == -1 ||
	    (unlinkat(d->fd, tmp, 0) == -1 && errno != ENOENT)) {
		mt_log_c(&t->log, MT_LOG_ERR, "folder %s: cannot remove %s: %s",
		    d->path, tmp, strerror(errno));
		return -1;
	}
	return 0;
}

const struct dl_ops mt_deliver_dir_ops = {
	.scheme = "dir",
	.open = dir_open,
	.close = dir_close,
	.begin = dir_begin,
	.end = dir_end,
	.commit = dir_commit,
	.release = dir_release,
	.recover = dir_recover,
	.discard = dir_discard,
	.lf = 0,
	.quote = 0,
	.batch = 64,
	.group = 1,
};
