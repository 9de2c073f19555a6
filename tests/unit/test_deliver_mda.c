/*
 * mda:COMMAND with real children: what the command gets (bytes, line ends,
 * environment), exit statuses, signals, stderr, timeouts, a command that
 * leaves a process behind, SIGCHLD ignored, recovery in every spool state,
 * and the memory a 20 MB message costs.
 *
 * Built a second time as test_deliver_mda_poll with MT_TEST_NO_PIDFD: then
 * pidfd_open() fails as on kernels before 5.3, and the children's ends are
 * found by polling waitpid(), for the tests that involve a child's end.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "test_deliver_util.h"

static const char msg_crlf[] =
    "Return-Path: <bounce@example.org>\r\n"
    "Delivered-To: box@example.net\r\n"
    "Subject: hi\r\n\r\nline one\r\n.dot\r\nFrom here\r\nend";
static const char msg_lf[] =
    "Return-Path: <bounce@example.org>\n"
    "Delivered-To: box@example.net\n"
    "Subject: hi\n\nline one\n.dot\nFrom here\nend";

static struct mt_deliver_opts opts;

#ifdef MT_TEST_NO_PIDFD
#include <dlfcn.h>
#include <sys/syscall.h>

static unsigned refused_pidfds;

/* Interposed on the library's syscall(): no pidfds on this "kernel". */
long
syscall(long n, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;
	int i;

	if (n == SYS_pidfd_open) {
		refused_pidfds++;
		errno = ENOSYS;
		return -1;
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "syscall");
	va_start(ap, n);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	return real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
#endif

#if defined(__SANITIZE_ADDRESS__)
static const int asan = 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
static const int asan = 1;
#else
static const int asan = 0;
#endif
#else
static const int asan = 0;
#endif

static struct mt_deliver *
mda(const char *fmt, ...) MT_PRINTF(1, 2);
static struct mt_deliver *
mda(const char *fmt, ...)
{
	char spec[2048], err[256] = "";
	struct mt_deliver *t;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(spec, sizeof(spec), fmt, ap);
	va_end(ap);
	opts.spool_dir = tpath("spool");
	t = mt_deliver_open_ex(spec, base, NULL, &opts, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	return t;
}

static int
mda_setup(void **state)
{
	memset(&opts, 0, sizeof(opts));
	return setup(state);
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Runs first: the process's peak RSS is still that of start-up. */
static void
test_big_message_memory(void **state)
{
	struct mt_deliver_meta meta;
	struct rusage before, after;
	struct mt_deliver *t;
	struct outcome o;
	struct mt_deliver_msg *m;
	static char chunk[65536];
	char *out;
	size_t i;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	for (i = 99; i < sizeof(chunk); i += 100) {
		chunk[i - 1] = '\r';
		chunk[i] = '\n';
	}
	t = mda("mda:wc -c > %s", tpath("count"));
	meta_init(&meta, "big", 0);
	getrusage(RUSAGE_SELF, &before);
	m = mt_deliver_begin(t, &meta);
	for (i = 0; i < 320; i++) {		/* 20 MiB */
		assert_int_equal(mt_deliver_write(m, chunk, sizeof(chunk)), 0);
		assert_int_equal(mt_deliver_pending(m), 0);
	}
	memset(&o, 0, sizeof(o));
	mt_deliver_end(m, on_result, &o);
	wait_for(&o);
	assert_int_equal(o.status, MT_DELIVER_OK);
	commit(m, &o);
	assert_int_equal(o.status, MT_DELIVER_OK);
	getrusage(RUSAGE_SELF, &after);
	/* 20 MiB went through; the process grew by less than 2 MiB. */
	if (!asan)
		assert_true(after.ru_maxrss - before.ru_maxrss < 2048);
	else
		print_message("RSS not checked: AddressSanitizer's quarantine "
		    "keeps freed memory (grew by %ld KiB)\n",
		    after.ru_maxrss - before.ru_maxrss);
	out = slurp(tpath("count"), NULL);
	assert_int_equal(strtoul(out, NULL, 10), 320 * (65536 - 655));
	free(out);
	mt_deliver_close(t);
}

static void
test_cat(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char *body, want[MT_DELIVER_TOKEN_MAX + 1];
	size_t len;

	(void)state;
	opts.recipient_header = "X-Envelope-To, Delivered-To";
	t = mda("mda:cat > %s; printf '%%s|' \"$SENDER\" \"$RECIPIENT\" "
	    "\"$MAILTUNNEL_KEY\" \"$MAILTUNNEL_UID\" \"$MAILTUNNEL_SIZE\" "
	    "\"${MAILTUNNEL_REDELIVERY-unset}\" > %s", tpath("out"),
	    tpath("env"));
	meta_init(&meta, "42-abc", 0);
	meta.uid = "42";
	assert_int_equal(deliver(t, &meta, msg_crlf, sizeof(msg_crlf) - 1, 3,
	    &o), MT_DELIVER_OK);
	body = slurp(tpath("out"), &len);
	assert_int_equal(len, sizeof(msg_lf) - 1);
	assert_memory_equal(body, msg_lf, len);	/* LF, no dot-stuffing */
	free(body);
	body = slurp(tpath("env"), NULL);
	snprintf(want, sizeof(want), "bounce@example.org|box@example.net|"
	    "42-abc|42|%zu|unset|", sizeof(msg_lf) - 1);
	assert_string_equal(body, want);
	free(body);
	/* The token names the spool copy, which is gone once delivered. */
	assert_int_equal(strncmp(o.token, "42-abc.", 7), 0);
	assert_int_equal(count_dir(tpath("spool")), 0);
	snprintf(want, sizeof(want), "%s", o.token);
	assert_int_equal(recover(t, "42-abc", want, &o),
	    MT_DELIVER_DELIVERED);
	mt_deliver_close(t);
}

/* Sender and recipient from the options; a header missing. */
static void
test_env_options(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char *body;

	(void)state;
	opts.sender = "Someone <me@example.com>";
	opts.recipient = "fallback@example.com";
	opts.recipient_header = "X-Envelope-To";
	t = mda("mda:printf '%%s|' \"$SENDER\" \"$RECIPIENT\" > %s",
	    tpath("env"));
	meta_init(&meta, "k", 0);
	assert_int_equal(deliver(t, &meta, msg_crlf, sizeof(msg_crlf) - 1, 0,
	    &o), MT_DELIVER_OK);
	body = slurp(tpath("env"), NULL);
	assert_string_equal(body, "me@example.com|fallback@example.com|");
	free(body);
	mt_deliver_close(t);

	/* No Return-Path, no option: the fetcher's sender, else <>. */
	memset(&opts, 0, sizeof(opts));
	t = mda("mda:printf '[%%s]' \"$SENDER\" \"$RECIPIENT\" > %s",
	    tpath("env"));
	meta.sender = "from@pop.example";
	assert_int_equal(deliver(t, &meta, "Subject: x\r\n\r\nbody", 18, 0,
	    &o), MT_DELIVER_OK);
	body = slurp(tpath("env"), NULL);
	assert_string_equal(body, "[from@pop.example][]");
	free(body);
	meta.sender = NULL;
	assert_int_equal(deliver(t, &meta, "Subject: x\r\n\r\nbody", 18, 0,
	    &o), MT_DELIVER_OK);
	body = slurp(tpath("env"), NULL);
	assert_string_equal(body, "[][]");
	free(body);
	mt_deliver_close(t);
}

static void
test_tempfail(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char token[MT_DELIVER_TOKEN_MAX + 1];

	(void)state;
	t = mda("mda:cat >/dev/null; exit 75");
	meta_init(&meta, "k75", 0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_TEMPFAIL);
	assert_string_equal(o.reason, "the command exited with status 75 "
	    "(temporary failure)");
	assert_non_null(strstr(logbuf, "message k75: the command exited with "
	    "status 75 (temporary failure) (will retry)"));
	/* The copy is back to "not delivered" until the ledger drops it. */
	snprintf(token, sizeof(token), "%s", o.token);
	assert_int_equal(recover(t, "k75", token, &o),
	    MT_DELIVER_NOT_DELIVERED);
	assert_string_equal(o.reason, "");
	assert_int_equal(count_dir(tpath("spool")), 1);
	assert_int_equal(mt_deliver_discard(t, token), 0);
	assert_int_equal(count_dir(tpath("spool")), 0);
	assert_int_equal(mt_deliver_discard(t, token), 0);
	mt_deliver_close(t);
}

static void
test_fail_with_stderr(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;

	(void)state;
	t = mda("mda:echo 'first problem' >&2; echo '' >&2; "
	    "printf 'second\\001\\n' >&2; exit 1");
	meta_init(&meta, "k1", 0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_FAIL);
	assert_string_equal(o.reason, "the command exited with status 1: "
	    "first problem");
	assert_non_null(strstr(logbuf, "3:message k1: command stderr: first "
	    "problem\n"));
	assert_non_null(strstr(logbuf, "3:message k1: command stderr: "
	    "second?\n"));
	assert_non_null(strstr(logbuf, "3:message k1: the command exited "
	    "with status 1: first problem\n"));
	assert_null(strstr(logbuf, "the rest is not shown"));
	mt_deliver_close(t);

	/* Not found: the shell says so on stderr. */
	logbuf[0] = '\0';
	t = mda("mda:/nonexistent/mda");
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_FAIL);
	assert_non_null(strstr(o.reason, "the command exited with status 127: "));
	assert_non_null(strstr(o.reason, "/nonexistent/mda: not found"));
	mt_deliver_close(t);
}

/* Much stderr: five lines logged, the rest counted, the command not held. */
static void
test_stderr_cap(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;

	(void)state;
	t = mda("mda:for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; "
	    "head -c 1000000 /dev/zero | tr '\\0' x >&2; exit 3");
	meta_init(&meta, "k3", 0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_FAIL);
	assert_string_equal(o.reason, "the command exited with status 3: line1");
	assert_non_null(strstr(logbuf, "command stderr: line5\n"));
	assert_null(strstr(logbuf, "command stderr: line6"));
	assert_non_null(strstr(logbuf, "command stderr: (1000042 bytes in "
	    "all; the rest is not shown)"));
	mt_deliver_close(t);
}

static void
test_signal(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;

	(void)state;
	t = mda("mda:kill -SEGV $$");
	meta_init(&meta, "ks", 0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_FAIL);
	assert_string_equal(o.reason, "the command was killed by signal 11 "
	    "(SEGV)");
	mt_deliver_close(t);
}

/*
 * A command that never reads its input and never ends: killed at the
 * timeout; the outcome is uncertain, so recovery delivers it again and
 * tells the command.
 */
static void
test_timeout(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	struct timespec t0;
	char token[MT_DELIVER_TOKEN_MAX + 1], *body;

	(void)state;
	opts.mda_timeout_ms = 300;
	t = mda("mda:if [ -n \"$MAILTUNNEL_REDELIVERY\" ]; then "
	    "echo $MAILTUNNEL_REDELIVERY > %s; else exec sleep 30; fi",
	    tpath("redo"));
	meta_init(&meta, "kt", 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_TEMPFAIL);
	assert_true(elapsed_ms(&t0) < 3000);
	assert_string_equal(o.reason, "the command did not finish within 300 "
	    "ms and was killed");
	snprintf(token, sizeof(token), "%s", o.token);
	logbuf[0] = '\0';
	assert_int_equal(recover(t, "kt", token, &o),
	    MT_DELIVER_NOT_DELIVERED);
	assert_string_equal(o.reason, "the command was running when the "
	    "delivery was interrupted; it may have delivered the message, "
	    "which is delivered again (a possible duplicate; the command sees "
	    "MAILTUNNEL_REDELIVERY=1)");
	assert_non_null(strstr(logbuf, "4:recovering kt: the command was "
	    "running"));
	assert_int_equal(mt_deliver_discard(t, token), 0);
	assert_int_equal(count_dir(tpath("spool")), 0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o), MT_DELIVER_OK);
	body = slurp(tpath("redo"), NULL);
	assert_string_equal(body, "1\n");
	free(body);
	mt_deliver_close(t);
}

/* SIGTERM ignored: SIGKILL after the grace period. */
static void
test_timeout_term_ignored(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	struct timespec t0;
	long ms;

	(void)state;
	opts.mda_timeout_ms = 200;
	t = mda("mda:trap '' TERM; while :; do sleep 0.05; done");
	meta_init(&meta, "kk", 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_TEMPFAIL);
	ms = elapsed_ms(&t0);
	assert_true(ms >= 5000 && ms < 8000);
	mt_deliver_close(t);
}

/* A process left behind holding stderr does not delay the result. */
static void
test_leftover_process(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	struct timespec t0;

	(void)state;
	t = mda("mda:cat >/dev/null; sleep 3 & echo bye >&2; exit 0");
	meta_init(&meta, "kl", 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o), MT_DELIVER_OK);
	assert_true(elapsed_ms(&t0) < 2000);
	mt_deliver_close(t);
}

/* Someone else reaps our children: we say the status was lost. */
static void
test_sigchld_ignored(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char token[MT_DELIVER_TOKEN_MAX + 1];

	(void)state;
	signal(SIGCHLD, SIG_IGN);
	t = mda("mda:true");
	meta_init(&meta, "kc", 0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_TEMPFAIL);
	signal(SIGCHLD, SIG_DFL);
	assert_string_equal(o.reason, "the command's exit status was lost (is "
	    "SIGCHLD ignored in this process?)");
	/* It may have run to the end: recovery warns of a duplicate. */
	snprintf(token, sizeof(token), "%s", o.token);
	assert_int_equal(recover(t, "kc", token, &o),
	    MT_DELIVER_NOT_DELIVERED);
	assert_non_null(strstr(o.reason, "may have delivered"));
	mt_deliver_close(t);
}

/* Aborted while the command runs: killed, and recovery says so. */
static void
test_abort_running(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver_msg *m;
	struct mt_deliver *t;
	struct outcome o;
	char token[MT_DELIVER_TOKEN_MAX + 1];
	int i;

	(void)state;
	t = mda("mda:touch %s; exec sleep 30", tpath("started"));
	meta_init(&meta, "ka", 0);
	m = prepare(t, &meta, "a\r\n", 3, 0, &o);
	assert_non_null(m);
	snprintf(token, sizeof(token), "%s", o.token);
	memset(&o, 0, sizeof(o));
	mt_deliver_commit(m, on_result, &o);
	for (i = 0; i < 400 && access(tpath("started"), F_OK) != 0; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(5000);
	}
	assert_int_equal(access(tpath("started"), F_OK), 0);
	mt_deliver_abort(m);
	assert_false(o.called);
	assert_int_equal(recover(t, "ka", token, &o),
	    MT_DELIVER_NOT_DELIVERED);
	assert_non_null(strstr(o.reason, "the command was running"));
	mt_deliver_close(t);
}

/* Each state the spool can be left in, and broken tokens. */
static void
test_recovery(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver_msg *m;
	struct mt_deliver *t;
	struct outcome o;
	char token[MT_DELIVER_TOKEN_MAX + 1];

	(void)state;
	t = mda("mda:cat > /dev/null");
	meta_init(&meta, "kr", 0);
	/* Aborted before end: nothing left. */
	m = mt_deliver_begin(t, &meta);
	assert_int_equal(mt_deliver_write(m, "x", 1), 0);
	mt_deliver_abort(m);
	assert_int_equal(count_dir(tpath("spool")), 0);
	/* Prepared, never committed: not delivered. */
	m = prepare(t, &meta, "a\r\n", 3, 0, &o);
	snprintf(token, sizeof(token), "%s", o.token);
	mt_deliver_abort(m);
	assert_int_equal(count_dir(tpath("spool")), 1);
	assert_int_equal(recover(t, "kr", token, &o),
	    MT_DELIVER_NOT_DELIVERED);
	assert_int_equal(mt_deliver_discard(t, token), 0);
	/* Gone: the command had succeeded. */
	assert_int_equal(recover(t, "kr", token, &o), MT_DELIVER_DELIVERED);
	/* Broken tokens. */
	assert_int_equal(recover(t, "kr", "../x", &o), MT_DELIVER_UNKNOWN);
	assert_string_equal(o.reason, "invalid token \"../x\"");
	assert_int_equal(mt_deliver_discard(t, ".hidden"), -1);
	assert_non_null(strstr(logbuf, "/spool: invalid token \".hidden\""));
	mt_deliver_close(t);
	/* A spool directory that vanished cannot vouch for anything. */
	t = mda("mda:cat > /dev/null");
	assert_int_equal(rmdir(tpath("spool")), 0);
	assert_int_equal(recover(t, "kr", token, &o), MT_DELIVER_UNKNOWN);
	assert_non_null(strstr(o.reason, "cannot look into spool directory "));
	assert_non_null(strstr(o.reason, "/spool: No such file or directory"));
	mt_deliver_close(t);
}

static void
test_open_errors(void **state)
{
	char err[256];

	(void)state;
	assert_null(mt_deliver_open("mda:cat", base, NULL, err, sizeof(err)));
	assert_string_equal(err, "mda:cat: needs a spool directory (the "
	    "fetcher's state directory)");
	opts.spool_dir = "/tmp";
	opts.recipient = "a b@c";
	assert_null(mt_deliver_open_ex("mda:cat", base, NULL, &opts, err,
	    sizeof(err)));
	assert_string_equal(err, "mda:cat: invalid envelope address \"a b@c\"");
	assert_null(mt_deliver_open_ex("mda:", base, NULL, &opts, err,
	    sizeof(err)));
	assert_string_equal(err, "mda:: the path is missing");
}

static void
test_spool_errors(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char err[256];

	(void)state;
	opts.spool_dir = tpath("missing/spool");
	t = mt_deliver_open_ex("mda:cat", base, NULL, &opts, err, sizeof(err));
	assert_non_null(t);
	meta_init(&meta, "ke", 0);
	assert_int_equal(deliver(t, &meta, "a", 1, 0, &o), MT_DELIVER_FAIL);
	assert_non_null(strstr(o.reason, "/missing/spool: its parent "
	    "directory does not exist"));
	mt_deliver_close(t);
}

/* Run fn in a child (for privileges and limits); its exit code. */
static int
in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Deliver 200 KiB with spool dir; 0 when the outcome is as wanted. */
static int
deliver_big(const char *spool, enum mt_deliver_status want,
    const char *reason)
{
	static char big[200 * 1024];
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char err[256];

	memset(big, 'a', sizeof(big));
	opts.spool_dir = spool;
	if (event_reinit(base) == -1 || (t = mt_deliver_open_ex("mda:cat "
	    ">/dev/null", base, NULL, &opts, err, sizeof(err))) == NULL)
		return 10;
	meta_init(&meta, "big", 0);
	memset(&o, 0, sizeof(o));
	deliver(t, &meta, big, sizeof(big), 4096, &o);
	mt_deliver_close(t);
	if (o.status != want)
		return 11;
	if (strstr(o.reason, reason) == NULL) {
		fprintf(stderr, "reason: %s\n", o.reason);
		return 12;
	}
	return 0;
}

static int
become_nobody(void)
{
	if (geteuid() == 0 && (setresgid(65534, 65534, 65534) == -1 ||
	    setresuid(65534, 65534, 65534) == -1))
		return -1;
	return 0;
}

static int
child_eacces(void)
{
	if (become_nobody() == -1)
		return 20;
	return deliver_big(tpath("locked/spool"), MT_DELIVER_FAIL,
	    "/locked/spool: Permission denied");
}

static void
test_spool_permission_denied(void **state)
{
	(void)state;
	assert_int_equal(chmod(tmpdir, 0711), 0);
	assert_int_equal(mkdir(tpath("locked"), 0500), 0);
	assert_int_equal(in_child(child_eacces), 0);
}

static int
child_efbig(void)
{
	struct rlimit rl = { 64 * 1024, 64 * 1024 };

	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		return 20;
	return deliver_big(tpath("spool"), MT_DELIVER_TEMPFAIL,
	    "/spool/big.");
}

/* A file size limit: temporary, and nothing left in the spool. */
static void
test_spool_too_large(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_efbig), 0);
	assert_int_equal(count_dir(tpath("spool")), 0);
}

static int
child_nproc(void)
{
	struct rlimit rl = { 0, 0 };
	int rc;

	if (become_nobody() == -1 || setrlimit(RLIMIT_NPROC, &rl) == -1)
		return 20;
	rc = deliver_big(tpath("open/spool"), MT_DELIVER_TEMPFAIL,
	    "cannot run the command: Resource temporarily unavailable");
	/* Never started: the copy is "not delivered", not "was running". */
	if (rc == 0 && count_dir(tpath("open/spool")) != 1)
		rc = 13;
	return rc;
}

/* No process can be made: temporary, and the spool copy is intact. */
static void
test_cannot_run(void **state)
{
	(void)state;
	assert_int_equal(chmod(tmpdir, 0711), 0);
	assert_int_equal(mkdir(tpath("open"), 0777), 0);
	assert_int_equal(chmod(tpath("open"), 0777), 0);
	assert_int_equal(in_child(child_nproc), 0);
}

/* The timeout in whole seconds reads as seconds. */
static void
test_timeout_seconds(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;

	(void)state;
	opts.mda_timeout_ms = 1000;
	t = mda("mda:exec sleep 30");
	meta_init(&meta, "k1s", 0);
	assert_int_equal(deliver(t, &meta, "a\r\n", 3, 0, &o),
	    MT_DELIVER_TEMPFAIL);
	assert_string_equal(o.reason, "the command did not finish within 1 s "
	    "and was killed");
	mt_deliver_close(t);
}

#ifdef MT_TEST_NO_PIDFD
static void
test_polled(void **state)
{
	(void)state;
	/* The tests before this one ran children: none got a pidfd. */
	assert_true(refused_pidfds >= 10);
}
#endif

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_big_message_memory,
		    mda_setup, teardown),
		cmocka_unit_test_setup_teardown(test_cat, mda_setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_options, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tempfail, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fail_with_stderr, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stderr_cap, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_signal, mda_setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_timeout_term_ignored,
		    mda_setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftover_process, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sigchld_ignored, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_abort_running, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recovery, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_spool_errors, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_spool_permission_denied,
		    mda_setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_too_large, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cannot_run, mda_setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_timeout_seconds, mda_setup,
		    teardown),
#ifdef MT_TEST_NO_PIDFD
		cmocka_unit_test(test_polled),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
