/*
 * deliver_mda: mda:COMMAND, the message on the standard input of
 * "/bin/sh -c COMMAND". Exit 0 is delivered, 75 (EX_TEMPFAIL) a temporary
 * failure, anything else - another status, a signal - a failure.
 *
 * A command cannot be made "durable but not visible", so the message is
 * spooled first, and the command runs on the spooled copy:
 *   begin   an unnamed file in the spool directory (O_TMPFILE; else a
 *           named "<base>.part")
 *   write   the message, LF line endings (as local mail tools expect)
 *   end     fdatasync, link it as "<base>.msg", fsync(dir); token = base
 *   (caller: ledger intent)
 *   commit  rename to "<base>.run", fsync(dir)      the command may start
 *           run the command, stdin = the spooled file (a regular,
 *           seekable file: MDAs that want one make no copy of their own)
 *           exit 0: unlink, fsync(dir), OK          COMMIT POINT
 *           else: rename back to "<base>.msg", TEMPFAIL or FAIL
 * Recovery: "<base>.msg" - not delivered (the command never ran, or
 * failed); "<base>.run" - the command was running when everything stopped:
 * whether it delivered cannot be known, so the message is delivered again
 * (at least once: losing mail is worse than a duplicate), with a warning,
 * and with MAILTUNNEL_REDELIVERY=1 in its environment so that a command
 * that can check (by MAILTUNNEL_KEY) may avoid the duplicate; neither -
 * delivered (the copy is removed only after exit 0).
 *
 * The spool directory must outlive a reboot (the fetcher's state
 * directory): a spool that vanished would read as "delivered".
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fetch/deliver_mda.h"
#include "mailtunnel/util.h"

#define PATH_CAP	3072
#define REDO_MAX	64		/* keys recovered from "<base>.run" */

extern char **environ;

struct mda {
	char *command;
	char spool[PATH_CAP];
	int dfd;
	unsigned timeout_ms;
	char redo[REDO_MAX][MT_DELIVER_KEY_MAX + 1];
	unsigned nredo;
};

struct mda_msg {
	char base[DL_NAME_MAX + 1];
	int named;			/* "<base>.part" exists (no O_TMPFILE) */
	int linked;			/* "<base>.msg" exists */
	struct dl_hdr hdr;
	struct dl_envelope env;
	struct mda_child *child;
};

static atomic_uint spool_counter;

static int
mda_open(struct mt_deliver *t, const char *arg, char *err, size_t errsz)
{
	const struct mt_deliver_opts *o = &t->opts;
	char addr[DL_ADDR_MAX + 1];
	struct mda *md;

	if (o->spool_dir == NULL || o->spool_dir[0] == '\0' ||
	    strlen(o->spool_dir) >= PATH_CAP) {
		snprintf(err, errsz, "%s: %s", t->spec, o->spool_dir == NULL ||
		    o->spool_dir[0] == '\0' ? "needs a spool directory (the "
		    "fetcher's state directory)" : "spool path too long");
		return -1;
	}
	if ((o->recipient != NULL &&
	    dl_addr_option(o->recipient, addr, sizeof(addr)) == -1) ||
	    (o->sender != NULL &&
	    dl_addr_option(o->sender, addr, sizeof(addr)) == -1)) {
		snprintf(err, errsz, "%s: invalid envelope address \"%s\"",
		    t->spec, o->recipient != NULL && dl_addr_option(o->recipient,
		    addr, sizeof(addr)) == -1 ? o->recipient : o->sender);
		return -1;
	}
	if ((md = calloc(1, sizeof(*md))) == NULL ||
	    (md->command = strdup(arg)) == NULL) {
		free(md);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	mt_strlcpy(md->spool, o->spool_dir, sizeof(md->spool));
	md->dfd = -1;
	md->timeout_ms = o->mda_timeout_ms ? o->mda_timeout_ms : MDA_TIMEOUT_MS;
	t->priv = md;
	return 0;
}

static void
mda_close(struct mt_deliver *t)
{
	struct mda *md = t->priv;

	if (md->dfd != -1)
		close(md->dfd);
	free(md->command);
	free(md);
}

static int
spool_ready(struct mt_deliver_msg *m, struct mda *md)
{
	if (md->dfd != -1)
		return 0;
	if (dl_mkdir(md->spool) == 0 && dl_open_dir(md->spool, &md->dfd) == 0)
		return 0;
	if (errno == ENOENT)
		dl_fail(m, 0, "spool directory %s: its parent directory does "
		    "not exist", md->spool);
	else
		dl_fail(m, errno, "cannot create spool directory %s",
		    md->spool);
	return -1;
}

/* "<base><suffix>" into buf. */
static const char *
spool_name(char *buf, size_t size, const char *base, const char *suffix)
{
	size_t n = mt_strlcpy(buf, base, size);

	if (n < size)
		mt_strlcpy(buf + n, suffix, size - n);
	return buf;
}

static int
mda_begin(struct mt_deliver_msg *m)
{
	struct mda *md = m->t->priv;
	struct mda_msg *mm;
	char name[DL_NAME_MAX + 8];

	if (spool_ready(m, md) == -1)
		return -1;
	if ((mm = calloc(1, sizeof(*mm))) == NULL) {
		dl_fail(m, ENOMEM, "spool directory %s", md->spool);
		return -1;
	}
	m->priv = mm;
	snprintf(mm->base, sizeof(mm->base), "%s.%lld.P%ldQ%u", m->key,
	    (long long)time(NULL), (long)getpid(),
	    atomic_fetch_add(&spool_counter, 1));
	snprintf(m->where, sizeof(m->where), "spool file %s/%s", md->spool,
	    mm->base);
	m->fd = openat(md->dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (m->fd == -1) {
		m->fd = openat(md->dfd, spool_name(name, sizeof(name), mm->base,
		    ".part"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		mm->named = (m->fd != -1);
	}
	if (m->fd == -1) {
		dl_fail(m, errno, "cannot create %s", m->where);
		return -1;
	}
	return 0;
}

static int
mda_write(struct mt_deliver_msg *m, const char *p, size_t n)
{
	struct mda_msg *mm = m->priv;

	if (mm != NULL && !mm->hdr.done && dl_hdr_feed(&mm->hdr, p, n) == -1) {
		dl_fail(m, ENOMEM, "message header");
		return -1;
	}
	return dl_xform_write(m, p, n);
}

/* Give the durable spool copy its name "<base>.msg". */
static int
link_spool(struct mda *md, struct mda_msg *mm, int fd)
{
	char proc[64], part[DL_NAME_MAX + 8], msg[DL_NAME_MAX + 8];

	spool_name(msg, sizeof(msg), mm->base, ".msg");
	if (mm->named)
		return renameat(md->dfd, spool_name(part, sizeof(part),
		    mm->base, ".part"), md->dfd, msg);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, md->dfd, msg, AT_SYMLINK_FOLLOW);
}

static int
mda_end(struct mt_deliver_msg *m)
{
	struct mda *md = m->t->priv;
	struct mda_msg *mm = m->priv;
	int fd = m->fd;

	if (dl_flush(m) == -1)
		return -1;
	if (fdatasync(fd) == -1) {
		dl_fail(m, errno, "cannot sync %s", m->where);
		return -1;
	}
	if (link_spool(md, mm, fd) == -1) {
		dl_fail(m, errno, "cannot name %s", m->where);
		return -1;
	}
	mm->named = 0;
	mm->linked = 1;
	m->fd = -1;
	if (close(fd) == -1 || fsync(md->dfd) == -1) {
		dl_fail(m, errno, "cannot write %s", m->where);
		return -1;
	}
	dl_envelope_find(&m->t->opts, m->sender, &mm->hdr, &mm->env);
	dl_hdr_free(&mm->hdr);
	mt_strlcpy(m->token, mm->base, sizeof(m->token));
	return 0;
}

static int
redo_has(const struct mda *md, const char *key)
{
	unsigned i, n = md->nredo < REDO_MAX ? md->nredo : REDO_MAX;

	for (i = 0; i < n; i++)
		if (strcmp(md->redo[i], key) == 0)
			return 1;
	return 0;
}

/* The environment: ours, then the inherited one without our names. */
static char **
make_env(struct mt_deliver_msg *m, struct mda *md, struct mda_msg *mm)
{
	static const char *const ours[] = { "SENDER=", "RECIPIENT=",
	    "MAILTUNNEL_KEY=", "MAILTUNNEL_UID=", "MAILTUNNEL_SIZE=",
	    "MAILTUNNEL_REDELIVERY=" };
	size_t n = 0, k = 0, i, j;
	char **env;

	while (environ != NULL && environ[n] != NULL)
		n++;
	if ((env = calloc(n + 7, sizeof(*env))) == NULL)
		return NULL;
	if (asprintf(&env[k++], "SENDER=%s", mm->env.sender) < 0 ||
	    asprintf(&env[k++], "RECIPIENT=%s", mm->env.rcpt) < 0 ||
	    asprintf(&env[k++], "MAILTUNNEL_KEY=%s", m->key) < 0 ||
	    asprintf(&env[k++], "MAILTUNNEL_UID=%s", m->uid) < 0 ||
	    asprintf(&env[k++], "MAILTUNNEL_SIZE=%" PRIu64, m->out_bytes) < 0 ||
	    (redo_has(md, m->key) &&
	    asprintf(&env[k++], "MAILTUNNEL_REDELIVERY=1") < 0)) {
		env[k - 1] = NULL;
		goto err;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < sizeof(ours) / sizeof(*ours); j++)
			if (strncmp(environ[i], ours[j], strlen(ours[j])) == 0)
				break;
		if (j == sizeof(ours) / sizeof(*ours) &&
		    (env[k++] = strdup(environ[i])) == NULL)
			goto err;
	}
	return env;

err:
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	free(env);
	return NULL;
}

static void
free_env(char **env)
{
	size_t i;

	for (i = 0; env != NULL && env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

static void on_done(struct mt_deliver_msg *m, const struct mda_exit *x);

static int
mda_commit(struct mt_deliver_msg *m)
{
	struct mda *md = m->t->priv;
	struct mda_msg *mm = m->priv;
	char msg[DL_NAME_MAX + 8], run[DL_NAME_MAX + 8];
	char **env;
	int fd, err;

	spool_name(msg, sizeof(msg), mm->base, ".msg");
	spool_name(run, sizeof(run), mm->base, ".run");
	if (renameat(md->dfd, msg, md->dfd, run) == -1 || fsync(md->dfd) == -1) {
		dl_fail(m, errno, "cannot rename %s/%s", md->spool, msg);
		return -1;
	}
	if ((fd = openat(md->dfd, run, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (env = make_env(m, md, mm)) == NULL) {
		err = fd == -1 ? errno : ENOMEM;
		if (fd != -1)
			close(fd);
		goto fail;
	}
	mm->child = mda_child_start(m, md->command, fd, env, md->timeout_ms,
	    on_done);
	err = errno;
	free_env(env);
	if (mm->child == NULL)
		goto fail;
	mt_log_c(&m->t->log, MT_LOG_DEBUG, "message %s: running the command",
	    m->uid);
	return DL_WAIT;

fail:
	/* It never ran: the copy is "not delivered" again. */
	renameat(md->dfd, run, md->dfd, msg);
	dl_fail(m, err, "cannot run the command");
	return -1;
}

/* The start of stderr, to the log line by line; the first into reason. */
static void
log_stderr(struct mt_deliver_msg *m, const struct mda_exit *x, int level,
    char *first, size_t firstsz)
{
	char line[MDA_ERR_CAP + 1];
	const char *p = x->err;
	size_t n, i;
	int shown = 0;

	first[0] = '\0';
	while (*p != '\0' && shown < MDA_ERR_LINES) {
		n = strcspn(p, "\n");
		memcpy(line, p, n);
		line[n] = '\0';
		for (i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 ||
			    (unsigned char)line[i] > 0x7e)
				line[i] = line[i] == '\r' || line[i] == '\t' ?
				    ' ' : '?';
		p += n + (p[n] == '\n');
		if (mt_str_trim(line)[0] == '\0')
			continue;
		if (first[0] == '\0')
			mt_strlcpy(first, mt_str_trim(line), firstsz);
		mt_log_c(&m->t->log, level, "message %s: command stderr: %s",
		    m->uid, mt_str_trim(line));
		shown++;
	}
	if (*p != '\0' || x->errtotal > strlen(x->err))
		mt_log_c(&m->t->log, level, "message %s: command stderr: (%zu "
		    "bytes in all; the rest is not shown)", m->uid, x->errtotal);
}

/* Why it failed, without the stderr part; status for dl_fail(). */
static int
failure(const struct mda_exit *x, unsigned timeout_ms, char *why, size_t n)
{
	int sig;

	if (x->lost) {
		snprintf(why, n, "the command's exit status was lost (is SIGCHLD "
		    "ignored in this process?)");
		return -1;
	}
	if (x->timed_out) {
		if (timeout_ms % 1000 == 0)
			snprintf(why, n, "the command did not finish within %u s "
			    "and was killed", timeout_ms / 1000);
		else
			snprintf(why, n, "the command did not finish within %u ms "
			    "and was killed", timeout_ms);
		return -1;
	}
	if (WIFEXITED(x->status) && WEXITSTATUS(x->status) == 75) {
		snprintf(why, n, "the command exited with status 75 (temporary "
		    "failure)");
		return -1;
	}
	if (WIFEXITED(x->status)) {
		snprintf(why, n, "the command exited with status %d",
		    WEXITSTATUS(x->status));
		return 0;
	}
	sig = WIFSIGNALED(x->status) ? WTERMSIG(x->status) : 0;
	snprintf(why, n, "the command was killed by signal %d (%s)", sig,
	    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	return 0;
}

static void
on_done(struct mt_deliver_msg *m, const struct mda_exit *xp)
{
	struct mda *md = m->t->priv;
	struct mda_msg *mm = m->priv;
	char msg[DL_NAME_MAX + 8], run[DL_NAME_MAX + 8];
	char why[200], first[300];
	struct mda_exit ex = *xp, *x = &ex;	/* xp goes with the child */
	int kind, ok = !x->lost && !x->timed_out && WIFEXITED(x->status) &&
	    WEXITSTATUS(x->status) == 0;

	mda_child_free(mm->child);
	mm->child = NULL;
	spool_name(msg, sizeof(msg), mm->base, ".msg");
	spool_name(run, sizeof(run), mm->base, ".run");
	if (ok) {
		log_stderr(m, x, MT_LOG_INFO, first, sizeof(first));
		if (unlinkat(md->dfd, run, 0) == -1 || fsync(md->dfd) == -1)
			mt_log_c(&m->t->log, MT_LOG_WARNING, "message %s: cannot "
			    "remove %s/%s: %s; after a crash now it would be "
			    "delivered again", m->uid, md->spool, run,
			    strerror(errno));
		dl_settle(m, 0);
		return;
	}
	kind = failure(x, md->timeout_ms, why, sizeof(why));
	log_stderr(m, x, kind == -1 ? MT_LOG_WARNING : MT_LOG_ERR, first,
	    sizeof(first));
	/* A command stopped half-way (or unseen) may have delivered: leave
	   "<base>.run" so recovery says so. A status of its own is final. */
	if (!x->lost && !x->timed_out)
		renameat(md->dfd, run, md->dfd, msg);
	if (first[0] != '\0')
		dl_fail(m, kind, "%s: %s", why, first);
	else
		dl_fail(m, kind, "%s", why);
	dl_settle(m, -1);
}

static void
mda_release(struct mt_deliver_msg *m)
{
	struct mda *md = m->t->priv;
	struct mda_msg *mm = m->priv;
	char name[DL_NAME_MAX + 8];

	if (mm == NULL)
		return;
	/* Killed half-way: "<base>.run" stays, and recovery says why. */
	mda_child_kill(mm->child);
	if (m->phase <= DL_ENDING && mm->named)
		unlinkat(md->dfd, spool_name(name, sizeof(name), mm->base,
		    ".part"), 0);
	if (m->phase <= DL_ENDING && mm->linked)
		unlinkat(md->dfd, spool_name(name, sizeof(name), mm->base,
		    ".msg"), 0);
	dl_hdr_free(&mm->hdr);
	free(mm);
	m->priv = NULL;
}

static int
valid_base(const char *token)
{
	size_t n = strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
	    "tuvwxyz0123456789_-.");

	return token[n] == '\0' && n >= 1 && n + 4 <= DL_NAME_MAX &&
	    token[0] != '.';
}

static void
remember_redo(struct mda *md, const char *key)
{
	if (!redo_has(md, key))
		mt_strlcpy(md->redo[md->nredo++ % REDO_MAX], key,
		    sizeof(md->redo[0]));
}

static int
mda_recover(struct dl_rec *r)
{
	struct mda *md = r->t->priv;
	char msg[DL_NAME_MAX + 8], run[DL_NAME_MAX + 8];
	int rc;

	if (!valid_base(r->token)) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, 0, "invalid token \"%s\"",
		    r->token);
		return 0;
	}
	spool_name(msg, sizeof(msg), r->token, ".msg");
	spool_name(run, sizeof(run), r->token, ".run");
	if (dl_open_dir(md->spool, &md->dfd) == -1 ||
	    (rc = dl_exists(md->dfd, msg)) == -1 ||
	    (rc == 0 && (rc = 2 * dl_exists(md->dfd, run)) < 0)) {
		dl_verdict(r, MT_DELIVER_UNKNOWN, errno, "cannot look into "
		    "spool directory %s", md->spool);
		return 0;
	}
	if (rc == 1) {
		dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, NULL);
	} else if (rc == 2) {
		remember_redo(md, r->key);
		snprintf(r->reason, sizeof(r->reason), "the command was running "
		    "when the delivery was interrupted; it may have delivered "
		    "the message, which is delivered again (a possible "
		    "duplicate; the command sees MAILTUNNEL_REDELIVERY=1)");
		mt_log_c(&r->t->log, MT_LOG_WARNING, "recovering %s: %s",
		    r->key, r->reason);
		dl_verdict(r, MT_DELIVER_NOT_DELIVERED, 0, NULL);
	} else {
		dl_verdict(r, MT_DELIVER_DELIVERED, 0, NULL);
	}
	return 0;
}

static int
mda_discard(struct mt_deliver *t, const char *token)
{
	struct mda *md = t->priv;
	char name[DL_NAME_MAX + 8];

	if (!valid_base(token)) {
		mt_log_c(&t->log, MT_LOG_ERR, "spool directory %s: invalid "
		    "token \"%s\"", md->spool, token);
		return -1;
	}
	if (dl_open_dir(md->spool, &md->dfd) == -1 ||
	    (unlinkat(md->dfd, spool_name(name, sizeof(name), token, ".msg"),
	    0) == -1 && errno != ENOENT) ||
	    (unlinkat(md->dfd, spool_name(name, sizeof(name), token, ".run"),
	    0) == -1 && errno != ENOENT)) {
		mt_log_c(&t->log, MT_LOG_ERR, "spool directory %s: cannot "
		    "remove %s: %s", md->spool, name, strerror(errno));
		return -1;
	}
	return 0;
}

const struct dl_ops mt_deliver_mda_ops = {
	.scheme = "mda",
	.open = mda_open,
	.close = mda_close,
	.begin = mda_begin,
	.end = mda_end,
	.commit = mda_commit,
	.release = mda_release,
	.recover = mda_recover,
	.discard = mda_discard,
	.write = mda_write,
	.lf = 1,
	.quote = 0,
};
