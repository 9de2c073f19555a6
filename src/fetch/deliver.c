/*
 * deliver: choosing a target from its spec, the life of a message (phases,
 * callbacks from the event loop, lock retries), the streaming transform
 * (CRLF -> LF, mboxrd quoting) and keys. See include/mailtunnel/deliver.h.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "fetch/deliver_priv.h"
#include "mailtunnel/util.h"

static const struct dl_ops *const targets[] = {
	&mt_deliver_maildir_ops,
	&mt_deliver_dir_ops,
	&mt_deliver_mbox_ops,
	&mt_deliver_mda_ops,
	&mt_deliver_smtp_ops,
	&mt_deliver_smtp_starttls_ops,
	&mt_deliver_smtps_ops,
	&mt_deliver_lmtp_ops,
	&mt_deliver_lmtp_starttls_ops,
};

static int
copy_log(struct mt_deliver *t, const struct mt_log_ctx *log)
{
	if (log == NULL)
		return 0;
	t->log.id = log->id;
	t->log.has_level = log->has_level;
	t->log.level = log->level;
	if (log->service != NULL &&
	    (t->log.service = t->log_service = strdup(log->service)) == NULL)
		return -1;
	if (log->peer != NULL &&
	    (t->log.peer = t->log_peer = strdup(log->peer)) == NULL)
		return -1;
	return 0;
}

static void
target_free(struct mt_deliver *t)
{
	free(t->spec);
	free(t->log_service);
	free(t->log_peer);
	dl_opts_free(&t->opts);
	free(t);
}

struct mt_deliver *
mt_deliver_open(const char *spec, struct event_base *base,
    const struct mt_log_ctx *log, char *err, size_t errsz)
{
	return mt_deliver_open_ex(spec, base, log, NULL, err, errsz);
}

struct mt_deliver *
mt_deliver_open_ex(const char *spec, struct event_base *base,
    const struct mt_log_ctx *log, const struct mt_deliver_opts *opts,
    char *err, size_t errsz)
{
	const char *colon = strchr(spec, ':');
	struct mt_deliver *t;
	size_t i, n;

	for (i = 0; colon != NULL && i < sizeof(targets) / sizeof(*targets);
	    i++) {
		n = strlen(targets[i]->scheme);
		if ((size_t)(colon - spec) == n &&
		    strncasecmp(spec, targets[i]->scheme, n) == 0)
			break;
	}
	if (colon == NULL || i == sizeof(targets) / sizeof(*targets)) {
		snprintf(err, errsz, "unknown delivery target \"%s\" (expected "
		    "maildir:DIR, dir:DIR, mbox:FILE, mda:COMMAND, "
		    "smtp://HOST[:PORT] or lmtp:/SOCKET)", spec);
		return NULL;
	}
	if (colon[1] == '\0') {
		snprintf(err, errsz, "%s: the path is missing", spec);
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->spec = strdup(spec)) == NULL || copy_log(t, log) == -1 ||
	    dl_opts_copy(&t->opts, opts) == -1) {
		snprintf(err, errsz, "out of memory");
		goto err1;
	}
	t->ops = targets[i];
	t->base = base;
	t->lock_timeout_ms = 30000;
	if (t->ops->open(t, colon + 1, err, errsz) == -1)
		goto err1;

	/* Success! */
	return t;

err1:
	if (t != NULL)
		target_free(t);
	return NULL;
}

static void msg_free(struct mt_deliver_msg *m);
static void rec_free(struct dl_rec *r);

void
mt_deliver_close(struct mt_deliver *t)
{
	if (t == NULL)
		return;
	/* The caller should have finished these; do not leak them. */
	while (t->msgs != NULL)
		msg_free(t->msgs);
	while (t->recs != NULL)
		rec_free(t->recs);
	while (t->ngfds > 0)
		close(t->gfds[--t->ngfds]);
	free(t->gfds);
	if (t->gev != NULL)
		event_free(t->gev);
	t->ops->close(t);
	target_free(t);
}

const char *
mt_deliver_spec(const struct mt_deliver *t)
{
	return t->spec;
}

void
mt_deliver_set_lock_timeout(struct mt_deliver *t, unsigned ms)
{
	t->lock_timeout_ms = ms;
}

long
dl_elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - since->tv_sec) * 1000 +
	    (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* ---- errors ---- */

/* "what: strerror(err)" (or what alone) into a reason buffer, cut to fit. */
static void
join_reason(char out[MT_DELIVER_REASON_MAX], const char *what, int err)
{
	size_t n = mt_strlcpy(out, what, MT_DELIVER_REASON_MAX);

	if (err == 0 || n >= MT_DELIVER_REASON_MAX - 3)
		return;
	memcpy(out + n, ": ", 3);
	mt_strlcpy(out + n + 2, strerror(err), MT_DELIVER_REASON_MAX - n - 2);
}

void
dl_fail(struct mt_deliver_msg *m, int err, const char *fmt, ...)
{
	char what[MT_DELIVER_REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (m->failed)
		return;			/* the first cause is the one to tell */
	m->failed = 1;
	m->status = err < 0 ? MT_DELIVER_TEMPFAIL :
	    err > 0 ? dl_classify(err) : MT_DELIVER_FAIL;
	join_reason(m->reason, what, err > 0 ? err : 0);
	mt_log_c(&m->t->log, m->status == MT_DELIVER_TEMPFAIL ?
	    MT_LOG_WARNING : MT_LOG_ERR, "message %s: %s%s", m->uid, m->reason,
	    m->status == MT_DELIVER_TEMPFAIL ? " (will retry)" : "");
}

void
dl_verdict(struct dl_rec *r, enum mt_deliver_verdict v, int err,
    const char *fmt, ...)
{
	char what[MT_DELIVER_REASON_MAX];
	va_list ap;

	r->verdict = v;
	if (fmt == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	join_reason(r->reason, what, err);
	mt_log_c(&r->t->log, v == MT_DELIVER_UNKNOWN ? MT_LOG_WARNING :
	    MT_LOG_NOTICE, "recovering %s: %s", r->key, r->reason);
}

/* ---- messages ---- */

static int
valid_key(const char *key)
{
	size_t n = strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_-");

	return key[n] == '\0' && n >= 1 && n <= MT_DELIVER_KEY_MAX;
}

/* A string from the server made safe for a log line, cut to fit. */
static void
printable(char *out, size_t size, const char *in)
{
	char *p;

	mt_strlcpy(out, in ? in : "?", size);
	for (p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

/* Printable, without spaces: what may follow "From " in mbox. */
static void
copy_sender(char *out, const char *sender)
{
	size_t n;

	if (sender == NULL || sender[0] == '\0' || strlen(sender) > DL_SENDER_MAX)
		sender = "MAILER-DAEMON";
	for (n = 0; sender[n] != '\0'; n++)
		out[n] = ((unsigned char)sender[n] > 0x20 &&
		    (unsigned char)sender[n] < 0x7f) ? sender[n] : '_';
	out[n] = '\0';
}

static void fire(evutil_socket_t fd, short what, void *arg);

struct mt_deliver_msg *
mt_deliver_begin(struct mt_deliver *t, const struct mt_deliver_meta *meta)
{
	struct mt_deliver_msg *m;
	char shown[DL_UID_MAX + 1];

	if (meta->key == NULL || !valid_key(meta->key)) {
		printable(shown, sizeof(shown), meta->key);
		mt_log_c(&t->log, MT_LOG_ERR, "message %s: invalid delivery "
		    "key (1-%d of A-Z a-z 0-9 _ -)", shown, MT_DELIVER_KEY_MAX);
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if ((m->obuf = malloc(DL_OBUF)) == NULL ||
	    (m->ev = evtimer_new(t->base, fire, m)) == NULL) {
		free(m->obuf);
		free(m);
		return NULL;
	}
	m->t = t;
	m->fd = -1;
	strcpy(m->key, meta->key);
	printable(m->uid, sizeof(m->uid), meta->uid ? meta->uid : m->key);
	copy_sender(m->sender, meta->sender);
	m->size = meta->size;
	m->date = meta->date > 0 ? meta->date : time(NULL);
	m->xf.lf = t->ops->lf;
	m->xf.quote = t->ops->quote;
	m->xf.bol = t->ops->quote;
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	m->next = t->msgs;
	t->msgs = m;
	/* A failure here is reported by end, like any other. */
	t->ops->begin(m);
	return m;
}

static void
msg_free(struct mt_deliver_msg *m)
{
	struct mt_deliver_msg **pp;

	for (pp = &m->t->msgs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	m->t->ops->release(m);
	if (m->fd != -1)
		close(m->fd);
	event_free(m->ev);
	free(m->obuf);
	free(m);
}

size_t
mt_deliver_pending(const struct mt_deliver_msg *m)
{
	return m->pending;
}

void
mt_deliver_on_drain(struct mt_deliver_msg *m, size_t lowat,
    mt_deliver_drain_fn *fn, void *arg)
{
	m->lowat = lowat;
	m->drain = fn;
	m->drainarg = arg;
}

int
dl_flush(struct mt_deliver_msg *m)
{
	if (m->failed)
		return -1;
	if (m->olen > 0 && mt_write_all(m->fd, m->obuf, m->olen) == -1) {
		dl_fail(m, errno, "cannot write %s", m->where);
		return -1;
	}
	m->olen = 0;
	return 0;
}

int
dl_put(struct mt_deliver_msg *m, const char *p, size_t n)
{
	size_t k;

	if (n == 0)
		return 0;
	m->out_bytes += n;
	m->last = p[n - 1];
	while (n > 0) {
		k = DL_OBUF - m->olen;
		if (k > n)
			k = n;
		memcpy(m->obuf + m->olen, p, k);
		m->olen += k;
		p += k;
		n -= k;
		if (m->olen == DL_OBUF && dl_flush(m) == -1)
			return -1;
	}
	return 0;
}

int
mt_deliver_write(struct mt_deliver_msg *m, const void *buf, size_t len)
{
	if (m->failed)
		return -1;
	if (m->phase != DL_WRITING) {
		mt_log_c(&m->t->log, MT_LOG_ERR, "message %s: data after the "
		    "end of the message", m->uid);
		return -1;
	}
	m->in_bytes += len;
	if (m->t->ops->write != NULL)
		return m->t->ops->write(m, buf, len);
	return dl_xform_write(m, buf, len);
}

/* Run the callback (or a retry) from the loop after delay_ms. */
static void
schedule(struct mt_deliver_msg *m, long delay_ms)
{
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };

	evtimer_add(m->ev, &tv);
}

/* What an end or commit that returned rc means for the message. */
static void
settle(struct mt_deliver_msg *m, int rc)
{
	if (rc == -1) {
		m->terminal = 1;
		if (!m->failed)
			dl_fail(m, 0, "delivery failed");
	} else if (m->phase == DL_ENDING) {
		m->phase = DL_PREPARED;
		m->status = MT_DELIVER_OK;
		/* A file target's commit is a rename: the output buffer is not
		 * needed any more, and a batch of prepared messages should
		 * not hold 64 KiB each. */
		if (m->t->ops->group) {
			free(m->obuf);
			m->obuf = NULL;
		}
	} else {
		m->phase = DL_DONE;
		m->status = MT_DELIVER_OK;
		m->terminal = 1;
	}
}

/* Call the target's end or commit; 0 when it is settled. */
static int
run_op(struct mt_deliver_msg *m)
{
	int rc;

	if (m->failed)
		rc = -1;
	else if (m->phase == DL_ENDING)
		rc = m->t->ops->end(m);
	else
		rc = m->t->ops->commit(m);
	if (rc == DL_AGAIN) {
		schedule(m, DL_RETRY_MS);
		return DL_AGAIN;
	}
	if (rc == DL_WAIT)
		return DL_WAIT;
	settle(m, rc);
	return 0;
}

/* Hand the settled result to the caller. */
static void
report(struct mt_deliver_msg *m)
{
	mt_deliver_result_fn *cb = m->cb;
	void *cbarg = m->cbarg;
	int ok = (m->status == MT_DELIVER_OK), terminal = m->terminal;

	m->cb = NULL;
	/* After a non-terminal callback the handle is the caller's again. */
	cb(cbarg, m->status, (ok && !terminal) ? m->token : NULL,
	    ok ? NULL : m->reason);
	if (terminal)
		msg_free(m);
}

static void
fire(evutil_socket_t fd, short what, void *arg)
{
	struct mt_deliver_msg *m = arg;

	(void)fd;
	(void)what;
	if (m->cb == NULL || run_op(m) != 0)
		return;
	report(m);
}

void
dl_settle(struct mt_deliver_msg *m, int rc)
{
	if (m->cb == NULL)
		return;
	if (rc == -1 && !m->failed)
		dl_fail(m, 0, "delivery failed");
	settle(m, m->failed ? -1 : rc);
	report(m);
}

void
mt_deliver_end(struct mt_deliver_msg *m, mt_deliver_result_fn *cb, void *arg)
{
	if (m->phase != DL_WRITING) {
		mt_log_c(&m->t->log, MT_LOG_ERR, "message %s: ended twice",
		    m->uid);
		return;
	}
	m->phase = DL_ENDING;
	m->cb = cb;
	m->cbarg = arg;
	if (!m->failed && dl_xform_finish(m) == 0)
		dl_flush(m);
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	schedule(m, 0);
}

void
mt_deliver_commit(struct mt_deliver_msg *m, mt_deliver_result_fn *cb,
    void *arg)
{
	if (m->phase != DL_PREPARED || m->cb != NULL) {
		mt_log_c(&m->t->log, MT_LOG_ERR, "message %s: commit before "
		    "end succeeded", m->uid);
		return;
	}
	m->phase = DL_COMMITTING;
	m->cb = cb;
	m->cbarg = arg;
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	schedule(m, 0);
}

void
mt_deliver_abort(struct mt_deliver_msg *m)
{
	if (m == NULL)
		return;
	evtimer_del(m->ev);
	msg_free(m);
}

/* ---- recovery ---- */

static int
valid_token(const char *token)
{
	size_t n;

	for (n = 0; token[n] != '\0'; n++)
		if ((unsigned char)token[n] < 0x20 ||
		    (unsigned char)token[n] > 0x7e)
			return 0;
	return n >= 1 && n <= MT_DELIVER_TOKEN_MAX;
}

static void
rec_free(struct dl_rec *r)
{
	struct dl_rec **pp;

	for (pp = &r->t->recs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	event_free(r->ev);
	free(r->priv);
	free(r);
}

static void
rec_fire(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, DL_RETRY_MS * 1000 };
	struct dl_rec *r = arg;

	(void)fd;
	(void)what;
	if (r->t->ops->recover(r) == DL_AGAIN) {
		evtimer_add(r->ev, &tv);
		return;
	}
	r->cb(r->cbarg, r->verdict, r->reason[0] ? r->reason : NULL);
	rec_free(r);
}

int
mt_deliver_recover(struct mt_deliver *t, const char *key, const char *token,
    mt_deliver_verdict_fn *cb, void *arg)
{
	struct timeval zero = { 0, 0 };
	struct dl_rec *r;

	if (!valid_key(key) || !valid_token(token)) {
		mt_log_c(&t->log, MT_LOG_ERR, "recovering %.100s: invalid key or "
		    "token", key);
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	if ((r->ev = evtimer_new(t->base, rec_fire, r)) == NULL) {
		free(r);
		return -1;
	}
	r->t = t;
	r->cb = cb;
	r->cbarg = arg;
	r->verdict = MT_DELIVER_UNKNOWN;
	strcpy(r->key, key);
	strcpy(r->token, token);
	clock_gettime(CLOCK_MONOTONIC, &r->started);
	r->next = t->recs;
	t->recs = r;
	evtimer_add(r->ev, &zero);
	return 0;
}

int
mt_deliver_discard(struct mt_deliver *t, const char *token)
{
	if (!valid_token(token)) {
		mt_log_c(&t->log, MT_LOG_ERR, "discard: invalid token");
		return -1;
	}
	return t->ops->discard(t, token);
}

/* ---- keys ---- */

int
mt_deliver_make_key(char *buf, size_t size, const char *account,
    const char *folder, uint32_t uidvalidity, const char *uid)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char uv[16];
	unsigned mdlen = 0, i;
	size_t n = 0;
	EVP_MD_CTX *ctx;
	int ok;

	if (size < MT_DELIVER_KEY_MAX + 1 || (ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	snprintf(uv, sizeof(uv), "%" PRIu32, uidvalidity);
	/* Each part ends in a NUL, so no two tuples hash the same input. */
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, account, strlen(account) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, folder ? folder : "", folder ? strlen(folder) + 1 : 0) == 1 &&
	    EVP_DigestUpdate(ctx, uv, strlen(uv) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, uid, strlen(uid) + 1) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen < 8)
		return -1;
	for (; uid[n] != '\0' && n < 64; n++)
		buf[n] = (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvw"
		    "xyz0123456789-", uid[n]) != NULL) ? uid[n] : '_';
	buf[n++] = '-';
	for (i = 0; i < 8; i++, n += 2)
		snprintf(buf + n, 3, "%02x", md[i]);
	return 0;
}

unsigned
mt_deliver_batch_max(const struct mt_deliver *t)
{
	return t->ops->batch > 0 ? t->ops->batch : 1;
}

static void
group_fire(evutil_socket_t fd, short what, void *arg)
{
	struct mt_deliver *t = arg;
	char reason[MT_DELIVER_REASON_MAX] = "";
	enum mt_deliver_status st;
	mt_deliver_group_fn *cb = t->gcb;

	(void)fd;
	(void)what;
	st = dl_group_sync(t, reason, sizeof(reason));
	if (st != MT_DELIVER_OK)
		mt_log_c(&t->log, st == MT_DELIVER_TEMPFAIL ? MT_LOG_WARNING :
		    MT_LOG_ERR, "%s", reason);
	t->gcb = NULL;
	cb(t->garg, st, st == MT_DELIVER_OK ? NULL : reason);
}

int
mt_deliver_group_begin(struct mt_deliver *t)
{
	if (!t->ops->group || (t->gev == NULL &&
	    (t->gev = evtimer_new(t->base, group_fire, t)) == NULL))
		return -1;
	t->grouping = 1;
	return 0;
}

void
mt_deliver_group_sync(struct mt_deliver *t, mt_deliver_group_fn *cb,
    void *arg)
{
	struct timeval zero = { 0, 0 };

	t->grouping = 0;
	t->gcb = cb;
	t->garg = arg;
	evtimer_add(t->gev, &zero);
}
