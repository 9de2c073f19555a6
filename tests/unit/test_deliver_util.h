/*
 * Helpers shared by the delivery tests: a scratch directory, a log hook,
 * and synchronous wrappers that run the event loop until a delivery
 * callback has run. Include after cmocka.h.
 */
#ifndef TEST_DELIVER_UTIL_H
#define TEST_DELIVER_UTIL_H

#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailtunnel/deliver.h"
#include "mailtunnel/log.h"

#define TU static __attribute__((unused))

static char tmpdir[64];
static char logbuf[32768];
static struct event_base *base;

TU void
log_hook(void *arg, int level, const char *line)
{
	size_t n = strlen(logbuf);

	(void)arg;
	snprintf(logbuf + n, sizeof(logbuf) - n, "%d:%s\n", level, line);
}

TU int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	return remove(path);
}

TU int
setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/mt-deliver-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	logbuf[0] = '\0';
	mt_log_set_hook(log_hook, NULL);
	mt_log_set_level(MT_LOG_DEBUG);
	mt_log_to_file("/dev/null");
	base = event_base_new();
	return base == NULL ? -1 : 0;
}

TU int
teardown(void **state)
{
	(void)state;
	mt_log_set_hook(NULL, NULL);
	event_base_free(base);
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A path under the scratch directory (rotating static buffers). */
TU const char *
tpath(const char *fmt, ...) MT_PRINTF(1, 2);
TU const char *
tpath(const char *fmt, ...)
{
	static char bufs[4][1024];
	static int i;
	char rel[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	i = (i + 1) % 4;
	snprintf(bufs[i], sizeof(bufs[i]), "%s/%s", tmpdir, rel);
	return bufs[i];
}

struct outcome {
	int called;
	int in_call;			/* set while the starting call runs */
	int reentered;			/* the callback ran inside it */
	enum mt_deliver_status status;
	enum mt_deliver_verdict verdict;
	char token[MT_DELIVER_TOKEN_MAX + 1];
	char reason[MT_DELIVER_REASON_MAX];
};

TU void
on_result(void *arg, enum mt_deliver_status st, const char *token,
    const char *reason)
{
	struct outcome *o = arg;

	o->called = 1;
	o->reentered |= o->in_call;
	o->status = st;
	snprintf(o->token, sizeof(o->token), "%s", token ? token : "");
	snprintf(o->reason, sizeof(o->reason), "%s", reason ? reason : "");
}

TU void
on_verdict(void *arg, enum mt_deliver_verdict v, const char *reason)
{
	struct outcome *o = arg;

	o->called = 1;
	o->reentered |= o->in_call;
	o->verdict = v;
	snprintf(o->reason, sizeof(o->reason), "%s", reason ? reason : "");
}

TU void
wait_for(struct outcome *o)
{
	int spins;

	for (spins = 0; !o->called && spins < 100000; spins++)
		event_base_loop(base, EVLOOP_ONCE);
	assert_true(o->called);
	assert_false(o->reentered);
}

TU struct mt_deliver *
target(const char *fmt, ...) MT_PRINTF(1, 2);
TU struct mt_deliver *
target(const char *fmt, ...)
{
	char spec[1024], err[256] = "";
	struct mt_deliver *t;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(spec, sizeof(spec), fmt, ap);
	va_end(ap);
	t = mt_deliver_open(spec, base, NULL, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	return t;
}

TU void
meta_init(struct mt_deliver_meta *m, const char *key, time_t date)
{
	memset(m, 0, sizeof(*m));
	m->account = "imap://u@h:993";
	m->folder = "INBOX";
	m->uid = key;
	m->key = key;
	m->date = date;
}

/* begin + write (in chunks of step bytes; 0: one) + end. */
TU struct mt_deliver_msg *
prepare(struct mt_deliver *t, const struct mt_deliver_meta *meta,
    const char *data, size_t len, size_t step, struct outcome *o)
{
	struct mt_deliver_msg *m = mt_deliver_begin(t, meta);
	size_t off, k;

	assert_non_null(m);
	assert_int_equal(mt_deliver_pending(m), 0);
	for (off = 0; off < len; off += k) {
		k = (step == 0 || len - off < step) ? len - off : step;
		if (mt_deliver_write(m, data + off, k) == -1)
			break;
		assert_int_equal(mt_deliver_pending(m), 0);
	}
	memset(o, 0, sizeof(*o));
	o->in_call = 1;
	mt_deliver_end(m, on_result, o);
	o->in_call = 0;
	wait_for(o);
	return o->status == MT_DELIVER_OK ? m : NULL;
}

TU void
commit(struct mt_deliver_msg *m, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->in_call = 1;
	mt_deliver_commit(m, on_result, o);
	o->in_call = 0;
	wait_for(o);
}

/* The whole delivery; o holds the last result, the token of end. */
TU enum mt_deliver_status
deliver(struct mt_deliver *t, const struct mt_deliver_meta *meta,
    const char *data, size_t len, size_t step, struct outcome *o)
{
	char token[MT_DELIVER_TOKEN_MAX + 1];
	struct mt_deliver_msg *m = prepare(t, meta, data, len, step, o);

	if (m == NULL)
		return o->status;
	snprintf(token, sizeof(token), "%s", o->token);
	commit(m, o);
	snprintf(o->token, sizeof(o->token), "%s", token);
	return o->status;
}

TU enum mt_deliver_verdict
recover(struct mt_deliver *t, const char *key, const char *token,
    struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->in_call = 1;
	assert_int_equal(mt_deliver_recover(t, key, token, on_verdict, o), 0);
	o->in_call = 0;
	wait_for(o);
	return o->verdict;
}

/* The contents of a file (malloc'ed, NUL-terminated); *len its size. */
TU char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	if (len != NULL)
		*len = (size_t)st.st_size;
	return buf;
}

/* Number of entries in a directory (without . and ..). */
TU int
count_dir(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The only entry of a directory. */
TU const char *
only_entry(const char *path)
{
	static char name[512];
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			snprintf(name, sizeof(name), "%s", de->d_name);
			n++;
		}
	closedir(d);
	assert_int_equal(n, 1);
	return name;
}

#endif
