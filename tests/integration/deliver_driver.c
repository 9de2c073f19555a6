/*
 * deliver_driver: a small fetcher stand-in for the integration tests of
 * the delivery targets (tests/integration/test_deliver_remote*.py). It
 * delivers files through one target with the calls a fetcher makes, and
 * prints one line per event on stdout:
 *
 *   end KEY ok TOKEN | end KEY tempfail|fail REASON
 *   commit KEY ok | commit KEY tempfail|fail REASON
 *   recover KEY delivered|not_delivered|unknown [REASON]
 *   drained KEY N        (times on_drain ran for the message)
 *   rss_kib N            (peak RSS, VmHWM, at the end)
 *   asan 1               (built with AddressSanitizer: RSS means little)
 *
 * usage: deliver_driver [options] SPEC FILE...
 *   -r RCPT -H HEADERS -s SENDER -e EHLO -t TIMEOUT_MS -c CAFILE
 *   -n CHECKHOST -N (no STARTTLS) -S SPOOL
 *   -k CHUNK       write in chunks of this many bytes (default 65536)
 *   -w HIWAT       stop writing above this many pending bytes (default
 *                  262144), resume on drain at a quarter of it
 *   -a             abort each message after end (no commit), then recover
 *   -R             after a failed commit, ask recover (as a fetcher must)
 *   -p MS          let the loop run this long between end and commit
 *   -x TOKEN       only recover TOKEN for key "k" and exit
 *   -O             two small files, overlapped as a pipelining fetcher
 *                  might: both begun and written before the first ends;
 *                  prints "pending m2 N" (bytes held for m2) first
 * The message key is "m<N>" for the N-th file (from 1). Exit status: 0 all
 * committed, 1 some did not, 2 usage.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "mailtunnel/deliver.h"
#include "mailtunnel/log.h"

struct run {
	struct event_base *base;
	struct mt_deliver *t;
	struct mt_deliver_msg *m;
	char key[32];
	int fd;
	size_t chunk, hiwat;
	int drained, waiting, ended, done, status, abort_after_end;
	int recover_failed;
	unsigned pause_ms;
	char token[MT_DELIVER_TOKEN_MAX + 1];
	char *buf;
};

static const char *const status_names[] = { "ok", "tempfail", "fail" };
static const char *const verdict_names[] = { "not_delivered", "delivered",
	"unknown" };

static void
on_verdict(void *arg, enum mt_deliver_verdict v, const char *reason)
{
	struct run *r = arg;

	printf("recover %s %s%s%s\n", r->key, verdict_names[v], reason ? " " :
	    "", reason ? reason : "");
	fflush(stdout);
	r->done = 1;
}

static void
on_commit(void *arg, enum mt_deliver_status st, const char *token,
    const char *reason)
{
	struct run *r = arg;

	(void)token;
	printf("commit %s %s%s%s\n", r->key, status_names[st], reason ? " " : "",
	    reason ? reason : "");
	r->status = st;
	r->m = NULL;
	if (st != MT_DELIVER_OK && r->recover_failed) {
		mt_deliver_recover(r->t, r->key, r->token, on_verdict, r);
		return;
	}
	r->done = 1;
}

static void
commit_later(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)what;
	mt_deliver_commit(r->m, on_commit, r);
}

static void
on_end(void *arg, enum mt_deliver_status st, const char *token,
    const char *reason)
{
	struct run *r = arg;

	printf("end %s %s %s\n", r->key, status_names[st],
	    st == MT_DELIVER_OK ? token : reason);
	fflush(stdout);
	r->status = st;
	if (st != MT_DELIVER_OK) {
		r->m = NULL;
		r->done = 1;
		return;
	}
	snprintf(r->token, sizeof(r->token), "%s", token);
	if (r->abort_after_end) {
		mt_deliver_abort(r->m);
		r->m = NULL;
		mt_deliver_recover(r->t, r->key, r->token, on_verdict, r);
		return;
	}
	if (r->pause_ms > 0) {
		struct timeval tv = { r->pause_ms / 1000,
		    (r->pause_ms % 1000) * 1000 };

		event_base_once(r->base, -1, EV_TIMEOUT, commit_later, r, &tv);
		return;
	}
	mt_deliver_commit(r->m, on_commit, r);
}

/* Feed the file until the target's backlog is too high, or the end. */
static void
feed(void *arg)
{
	struct run *r = arg;
	ssize_t n;

	if (r->ended)
		return;
	if (r->waiting)
		r->drained++;
	r->waiting = 0;
	while (mt_deliver_pending(r->m) <= r->hiwat) {
		n = read(r->fd, r->buf, r->chunk);
		if (n <= 0 || mt_deliver_write(r->m, r->buf, (size_t)n) == -1) {
			r->ended = 1;
			mt_deliver_end(r->m, on_end, r);
			return;
		}
	}
	r->waiting = 1;
}

static int
deliver_file(struct run *r, const char *path, int i)
{
	struct mt_deliver_meta meta;

	memset(&meta, 0, sizeof(meta));
	snprintf(r->key, sizeof(r->key), "m%d", i);
	meta.key = meta.uid = r->key;
	meta.account = "driver";
	if ((r->fd = open(path, O_RDONLY)) == -1) {
		perror(path);
		return -1;
	}
	meta.size = (uint64_t)lseek(r->fd, 0, SEEK_END);
	lseek(r->fd, 0, SEEK_SET);
	r->done = r->drained = r->waiting = r->ended = 0;
	if ((r->m = mt_deliver_begin(r->t, &meta)) == NULL)
		return -1;
	mt_deliver_on_drain(r->m, r->hiwat / 4, feed, r);
	feed(r);
	while (!r->done)
		event_base_loop(r->base, EVLOOP_ONCE);
	close(r->fd);
	printf("drained %s %d\n", r->key, r->drained);
	return r->status == MT_DELIVER_OK && !r->abort_after_end ? 0 : -1;
}

/* Begin a message and write the whole (small) file at once. */
static struct mt_deliver_msg *
begin_all(struct run *r, const char *path, const char *key)
{
	struct mt_deliver_meta meta = { 0 };
	struct mt_deliver_msg *m;
	ssize_t n;
	int fd;

	snprintf(r->key, sizeof(r->key), "%s", key);
	meta.key = meta.uid = r->key;
	if ((fd = open(path, O_RDONLY)) == -1 ||
	    (m = mt_deliver_begin(r->t, &meta)) == NULL)
		return NULL;
	while ((n = read(fd, r->buf, r->chunk)) > 0)
		mt_deliver_write(m, r->buf, (size_t)n);
	close(fd);
	return m;
}

static int
overlap(struct run *r1, const char *a, const char *b)
{
	struct run r2 = *r1;

	if ((r1->m = begin_all(r1, a, "m1")) == NULL ||
	    (r2.m = begin_all(&r2, b, "m2")) == NULL)
		return -1;
	/* Let the loop run: m1 goes out, m2 must wait for the connection. */
	event_base_loop(r1->base, EVLOOP_NONBLOCK);
	printf("pending m2 %zu\n", mt_deliver_pending(r2.m));
	mt_deliver_end(r1->m, on_end, r1);
	while (!r1->done)
		event_base_loop(r1->base, EVLOOP_ONCE);
	mt_deliver_end(r2.m, on_end, &r2);
	while (!r2.done)
		event_base_loop(r2.base, EVLOOP_ONCE);
	return r1->status == MT_DELIVER_OK && r2.status == MT_DELIVER_OK ?
	    0 : -1;
}

static int
options(int argc, char **argv, struct mt_deliver_opts *o, struct run *r,
    const char **only, int *two)
{
	int c;

	while ((c = getopt(argc, argv, "r:H:s:e:t:c:n:NS:k:w:aRp:x:O")) != -1) {
		switch (c) {
		case 'r': o->recipient = optarg; break;
		case 'H': o->recipient_header = optarg; break;
		case 's': o->sender = optarg; break;
		case 'e': o->helo_name = optarg; break;
		case 't': o->smtp_timeout_ms = o->mda_timeout_ms =
		    (unsigned)atoi(optarg); break;
		case 'c': o->tls_ca_file = optarg; break;
		case 'n': o->tls_check_host = optarg; break;
		case 'N': o->no_starttls = 1; break;
		case 'S': o->spool_dir = optarg; break;
		case 'k': r->chunk = (size_t)atol(optarg); break;
		case 'w': r->hiwat = (size_t)atol(optarg); break;
		case 'a': r->abort_after_end = 1; break;
		case 'R': r->recover_failed = 1; break;
		case 'p': r->pause_ms = (unsigned)atoi(optarg); break;
		case 'x': *only = optarg; break;
		case 'O': *two = 1; break;
		default: return -1;
		}
	}
	return optind < argc ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct mt_deliver_opts o = { 0 };
	struct run r = { .chunk = 65536, .hiwat = 262144 };
	const char *only = NULL;
	int two = 0;
	char line[128];
	long hwm = -1;
	FILE *f;
	char err[512];
	int i, bad = 0;

	if (options(argc, argv, &o, &r, &only, &two) == -1 ||
	    (two && argc - optind != 3)) {
		fprintf(stderr, "usage: deliver_driver [options] SPEC FILE...\n");
		return 2;
	}
	/* Line by line: a sanitizer that ends the process at exit must not
	   take buffered lines with it. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* As the daemon does: a server that hangs up is an error, not a
	   signal. */
	signal(SIGPIPE, SIG_IGN);
	mt_log_set_level(getenv("MT_DEBUG") ? MT_LOG_DEBUG : MT_LOG_INFO);
	if ((r.base = event_base_new()) == NULL ||
	    (r.buf = malloc(r.chunk)) == NULL)
		return 1;
	r.t = mt_deliver_open_ex(argv[optind], r.base, NULL, &o, err,
	    sizeof(err));
	if (r.t == NULL) {
		printf("open failed: %s\n", err);
		event_base_free(r.base);
		free(r.buf);
		return 1;
	}
	if (only != NULL) {
		snprintf(r.key, sizeof(r.key), "k");
		if (mt_deliver_recover(r.t, "k", only, on_verdict, &r) == 0)
			while (!r.done)
				event_base_loop(r.base, EVLOOP_ONCE);
	}
	if (two)
		bad = overlap(&r, argv[optind + 1], argv[optind + 2]) == -1;
	for (i = optind + 1; only == NULL && !two && i < argc; i++)
		bad |= deliver_file(&r, argv[i], i - optind) == -1;
	mt_deliver_close(r.t);
	event_base_free(r.base);
	free(r.buf);
	/* Not getrusage(): its peak survives exec, so it would be the
	   parent's. VmHWM is this program's own. */
	if ((f = fopen("/proc/self/status", "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "VmHWM: %ld", &hwm) == 1)
				break;
		fclose(f);
	}
	printf("rss_kib %ld\n", hwm);
#if defined(__SANITIZE_ADDRESS__)
	printf("asan 1\n");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	printf("asan 1\n");
#endif
#endif
	return bad;
}
