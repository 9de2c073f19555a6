#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sched.h>
#include <cmocka.h>

#include "test_deliver_util.h"

#define DATE 1700000000			/* 2023-11-14 22:13:20 UTC */

static const char msg_crlf[] =
    "From: a@example.org\r\nSubject: hi\r\n\r\nline one\r\nFrom here\r\n"
    "bare\rcr\r\n\r\nend";
static const char msg_lf[] =
    "From: a@example.org\nSubject: hi\n\nline one\nFrom here\n"
    "bare\rcr\n\nend";

static char host[256];

static void
test_spec(void **state)
{
	char err[256];
	struct mt_deliver *t;

	(void)state;
	assert_null(mt_deliver_open("pop3://x", base, NULL, err, sizeof(err)));
	assert_string_equal(err, "unknown delivery target \"pop3://x\" "
	    "(expected maildir:DIR, dir:DIR, mbox:FILE, mda:COMMAND, "
	    "smtp://HOST[:PORT] or lmtp:/SOCKET)");
	assert_null(mt_deliver_open("/var/mail/x", base, NULL, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "unknown delivery target"));
	assert_null(mt_deliver_open("maildir:", base, NULL, err, sizeof(err)));
	assert_string_equal(err, "maildir:: the path is missing");
	assert_null(mt_deliver_open("mbox:/tmp/", base, NULL, err,
	    sizeof(err)));
	assert_string_equal(err, "mbox:/tmp/: names a directory");
	t = mt_deliver_open("Maildir:/tmp/x", base, NULL, err, sizeof(err));
	assert_non_null(t);
	assert_string_equal(mt_deliver_spec(t), "Maildir:/tmp/x");
	mt_deliver_close(t);
}

static void
test_make_key(void **state)
{
	char a[MT_DELIVER_KEY_MAX + 1], b[MT_DELIVER_KEY_MAX + 1];
	char small[50], uid[200];

	(void)state;
	assert_int_equal(mt_deliver_make_key(a, sizeof(a), "imap://u@h",
	    "INBOX", 7, "42"), 0);
	assert_int_equal(strlen(a), 2 + 1 + 16);
	assert_int_equal(strncmp(a, "42-", 3), 0);
	assert_int_equal(mt_deliver_make_key(b, sizeof(b), "imap://u@h",
	    "INBOX", 7, "42"), 0);
	assert_string_equal(a, b);
	mt_deliver_make_key(b, sizeof(b), "imap://u@h", "INBOX", 8, "42");
	assert_string_not_equal(a, b);
	mt_deliver_make_key(b, sizeof(b), "imap://u@h", "Sent", 7, "42");
	assert_string_not_equal(a, b);
	mt_deliver_make_key(b, sizeof(b), "imap://v@h", "INBOX", 7, "42");
	assert_string_not_equal(a, b);
	mt_deliver_make_key(b, sizeof(b), "pop3://u@h", NULL, 0, "a/b.c:d");
	assert_int_equal(strncmp(b, "a_b_c_d-", 8), 0);
	memset(uid, 'x', sizeof(uid) - 1);
	uid[sizeof(uid) - 1] = '\0';
	assert_int_equal(mt_deliver_make_key(b, sizeof(b), "p", NULL, 0, uid),
	    0);
	assert_true(strlen(b) <= MT_DELIVER_KEY_MAX);
	assert_int_equal(mt_deliver_make_key(small, sizeof(small), "p", NULL,
	    0, "1"), -1);
}

static void
test_maildir_delivery(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	struct stat st;
	char want[512], *body;
	size_t len;

	(void)state;
	t = target("maildir:%s/Mail/", tmpdir);
	meta_init(&meta, "42-abc", DATE);
	/* Chunks of 3 bytes split CRLF pairs everywhere. */
	assert_int_equal(deliver(t, &meta, msg_crlf, sizeof(msg_crlf) - 1, 3,
	    &o), MT_DELIVER_OK);
	assert_int_equal(stat(tpath("Mail"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(tpath("Mail/cur"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(count_dir(tpath("Mail/tmp")), 0);
	assert_int_equal(count_dir(tpath("Mail/cur")), 0);
	snprintf(want, sizeof(want), "1700000000.mt-42-abc.%s,S=%zu", host,
	    sizeof(msg_lf) - 1);
	assert_string_equal(only_entry(tpath("Mail/new")), want);
	body = slurp(tpath("Mail/new/%s", want), &len);
	assert_int_equal(len, sizeof(msg_lf) - 1);
	assert_memory_equal(body, msg_lf, len);
	free(body);
	/* The token names the staging copy and the final name. */
	assert_non_null(strstr(o.token, ".mt-42-abc.P"));
	assert_non_null(strstr(o.token, want));
	assert_non_null(strchr(o.token, '/'));
	mt_deliver_close(t);
}

static void
test_maildir_recovery(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver_msg *m;
	struct mt_deliver *t;
	struct outcome o;
	char token[MT_DELIVER_TOKEN_MAX + 1];

	(void)state;
	t = target("maildir:%s/Mail", tmpdir);
	meta_init(&meta, "k1", DATE);

	/* Prepared, not committed: not delivered; the copy waits. */
	m = prepare(t, &meta, "a\r\n", 3, 0, &o);
	assert_non_null(m);
	snprintf(token, sizeof(token), "%s", o.token);
	mt_deliver_abort(m);
	assert_int_equal(count_dir(tpath("Mail/tmp")), 1);
	assert_int_equal(recover(t, "k1", token, &o), MT_DELIVER_NOT_DELIVERED);
	assert_int_equal(count_dir(tpath("Mail/tmp")), 1);
	assert_int_equal(mt_deliver_discard(t, token), 0);
	assert_int_equal(count_dir(tpath("Mail/tmp")), 0);
	assert_int_equal(mt_deliver_discard(t, token), 0);	/* again: fine */

	/* Aborted before end: nothing is left. */
	m = mt_deliver_begin(t, &meta);
	assert_int_equal(mt_deliver_write(m, "x", 1), 0);
	mt_deliver_abort(m);
	assert_int_equal(count_dir(tpath("Mail/tmp")), 0);

	/* Staged more than a day ago and gone: a tmp/ cleaner, maybe. */
	snprintf(token, sizeof(token), "1600000000.mt-k1.P1Q1.h/1600000000."
	    "mt-k1.h,S=3");
	assert_int_equal(recover(t, "k1", token, &o), MT_DELIVER_UNKNOWN);
	assert_non_null(strstr(o.reason, "1600000000.mt-k1.h,S=3 is neither "
	    "in new/, cur/ nor tmp/ of "));
	assert_non_null(strstr(o.reason, "and it was staged more than a day "
	    "ago: a tmp/ cleaner may have removed it undelivered"));

	/* A broken token. */
	assert_int_equal(recover(t, "k1", "../x/y", &o), MT_DELIVER_UNKNOWN);
	assert_string_equal(o.reason, "invalid token \"../x/y\"");
	assert_int_equal(mt_deliver_discard(t, "no-slash"), -1);
	assert_non_null(strstr(logbuf, "invalid token \"no-slash\""));
	assert_int_equal(mt_deliver_recover(t, "bad key", "a/b", on_verdict,
	    &o), -1);
	assert_non_null(strstr(logbuf, "recovering bad key: invalid key or "
	    "token"));
	mt_deliver_close(t);
}

/* Committed: delivered, in new/, in cur/ with flags, or taken. */
static void
test_maildir_recovery_committed(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char token[MT_DELIVER_TOKEN_MAX + 1], final[300], cur[700];

	(void)state;
	t = target("maildir:%s/Mail", tmpdir);
	meta_init(&meta, "k1", DATE);
	assert_int_equal(deliver(t, &meta, "b\r\n", 3, 0, &o), MT_DELIVER_OK);
	snprintf(token, sizeof(token), "%s", o.token);
	snprintf(final, sizeof(final), "%s", strchr(token, '/') + 1);
	assert_int_equal(recover(t, "k1", token, &o), MT_DELIVER_DELIVERED);
	snprintf(cur, sizeof(cur), "%s:2,S", final);
	assert_int_equal(rename(tpath("Mail/new/%s", final),
	    tpath("Mail/cur/%s", cur)), 0);
	assert_int_equal(recover(t, "k1", token, &o), MT_DELIVER_DELIVERED);
	assert_int_equal(unlink(tpath("Mail/cur/%s", cur)), 0);
	logbuf[0] = '\0';
	assert_int_equal(recover(t, "k1", token, &o), MT_DELIVER_DELIVERED);
	assert_non_null(strstr(o.reason, " is no longer in "));
	assert_non_null(strstr(o.reason, "/Mail/new: a mail reader took it; "
	    "counted as delivered"));
	assert_non_null(strstr(logbuf, "recovering k1: "));

	mt_deliver_close(t);
}

/* The same message twice (the ledger lost): one file, a notice. */
static void
test_maildir_twice(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;

	(void)state;
	t = target("maildir:%s/M", tmpdir);
	meta_init(&meta, "same", DATE);
	assert_int_equal(deliver(t, &meta, "x\r\n", 3, 0, &o), MT_DELIVER_OK);
	logbuf[0] = '\0';
	assert_int_equal(deliver(t, &meta, "x\r\n", 3, 0, &o), MT_DELIVER_OK);
	assert_int_equal(count_dir(tpath("M/new")), 1);
	assert_int_equal(count_dir(tpath("M/tmp")), 0);
	assert_non_null(strstr(logbuf, "exists already; not delivering it "
	    "twice"));
	mt_deliver_close(t);
}

static void
test_dir_delivery(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char *body;
	size_t len;

	(void)state;
	t = target("dir:%s/scan", tmpdir);
	meta_init(&meta, "7-ff00", DATE);
	assert_int_equal(deliver(t, &meta, msg_crlf, sizeof(msg_crlf) - 1, 1,
	    &o), MT_DELIVER_OK);
	assert_string_equal(only_entry(tpath("scan")),
	    "20231114-221320-7-ff00.eml");
	body = slurp(tpath("scan/20231114-221320-7-ff00.eml"), &len);
	assert_int_equal(len, sizeof(msg_crlf) - 1);
	assert_memory_equal(body, msg_crlf, len);	/* CRLF kept */
	free(body);
	assert_int_equal(strncmp(o.token, ".20231114-221320-7-ff00.eml.P", 29),
	    0);
	assert_non_null(strstr(o.token, ".part/20231114-221320-7-ff00.eml"));
	mt_deliver_close(t);
}

static void
test_dir_recovery(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver_msg *m;
	struct mt_deliver *t;
	struct outcome o;
	char token[MT_DELIVER_TOKEN_MAX + 1];

	(void)state;
	t = target("dir:%s/scan", tmpdir);
	meta_init(&meta, "k", DATE);
	m = prepare(t, &meta, "x", 1, 0, &o);
	snprintf(token, sizeof(token), "%s", o.token);
	/* The staging copy is a dot file the scanner ignores. */
	assert_int_equal(only_entry(tpath("scan"))[0], '.');
	mt_deliver_abort(m);
	assert_int_equal(recover(t, "k", token, &o), MT_DELIVER_NOT_DELIVERED);
	assert_int_equal(mt_deliver_discard(t, token), 0);
	assert_int_equal(count_dir(tpath("scan")), 0);

	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_OK);
	snprintf(token, sizeof(token), "%s", o.token);
	assert_int_equal(recover(t, "k", token, &o), MT_DELIVER_DELIVERED);
	/* The launcher took the file: still delivered, never lost. */
	assert_int_equal(unlink(tpath("scan/20231114-221320-k.eml")), 0);
	assert_int_equal(recover(t, "k", token, &o), MT_DELIVER_DELIVERED);
	assert_non_null(strstr(o.reason, "20231114-221320-k.eml is no longer "
	    "in "));
	assert_non_null(strstr(o.reason, "/scan: the program reading the "
	    "folder took it; counted as delivered"));
	mt_deliver_close(t);
}

static void
test_missing_and_wrong(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver_msg *m;
	struct mt_deliver *t;
	struct outcome o;

	(void)state;
	meta_init(&meta, "k", DATE);
	t = target("maildir:%s/no/such/Maildir", tmpdir);
	m = mt_deliver_begin(t, &meta);
	assert_non_null(m);
	assert_int_equal(mt_deliver_write(m, "x", 1), -1);
	memset(&o, 0, sizeof(o));
	mt_deliver_end(m, on_result, &o);
	wait_for(&o);
	assert_int_equal(o.status, MT_DELIVER_FAIL);
	assert_int_equal(strncmp(o.reason, "maildir /tmp/", 13), 0);
	assert_non_null(strstr(o.reason, "/no/such/Maildir: its parent "
	    "directory does not exist"));
	mt_deliver_close(t);

	close(open(tpath("file"), O_CREAT | O_WRONLY, 0600));
	t = target("maildir:%s/file", tmpdir);
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_FAIL);
	assert_non_null(strstr(o.reason, "/file: not a directory"));
	assert_int_equal(strncmp(o.reason, "maildir ", 8), 0);
	mt_deliver_close(t);

	t = target("dir:%s/no/such", tmpdir);
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_FAIL);
	assert_non_null(strstr(o.reason, "/no/such: its parent directory does "
	    "not exist"));
	assert_int_equal(strncmp(o.reason, "folder ", 7), 0);
	mt_deliver_close(t);
	t = target("dir:%s/file", tmpdir);
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_FAIL);
	assert_non_null(strstr(o.reason, "/file: not a directory"));
	assert_non_null(strstr(logbuf, "3:message k: folder "));
	mt_deliver_close(t);
}

static void
test_misuse(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver_msg *m;
	struct mt_deliver *t;
	struct outcome o;

	(void)state;
	t = target("dir:%s", tmpdir);
	meta_init(&meta, "bad.key", DATE);
	assert_null(mt_deliver_begin(t, &meta));
	assert_non_null(strstr(logbuf, "message bad.key: invalid delivery key "
	    "(1-100 of A-Z a-z 0-9 _ -)"));
	meta_init(&meta, "bad\nkey", DATE);
	assert_null(mt_deliver_begin(t, &meta));
	assert_non_null(strstr(logbuf, "message bad?key: invalid delivery"));
	meta_init(&meta, "k", DATE);
	m = mt_deliver_begin(t, &meta);
	mt_deliver_commit(m, on_result, &o);
	assert_non_null(strstr(logbuf, "message k: commit before end "
	    "succeeded"));
	memset(&o, 0, sizeof(o));
	mt_deliver_end(m, on_result, &o);
	assert_int_equal(mt_deliver_write(m, "x", 1), -1);
	assert_non_null(strstr(logbuf, "message k: data after the end of the "
	    "message"));
	mt_deliver_end(m, on_result, &o);
	assert_non_null(strstr(logbuf, "message k: ended twice"));
	wait_for(&o);
	assert_int_equal(o.status, MT_DELIVER_OK);
	mt_deliver_abort(m);
	/* Closing with work outstanding frees it. */
	m = mt_deliver_begin(t, &meta);
	assert_int_equal(mt_deliver_recover(t, "k", "a/b", on_verdict, &o), 0);
	mt_deliver_close(t);
}

/* Run fn in a child (for privileges, mounts, limits); its exit code. */
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

/* Deliver 200 KiB into spec; 0 when the outcome matches the wants. */
static int
deliver_big(const char *spec, enum mt_deliver_status want, const char *reason)
{
	static char big[200 * 1024];
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char err[256];

	memset(big, 'a', sizeof(big));
	if (event_reinit(base) == -1 ||
	    (t = mt_deliver_open(spec, base, NULL, err, sizeof(err))) == NULL)
		return 10;
	meta_init(&meta, "big", DATE);
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
child_eacces(void)
{
	char spec[200];

	if (geteuid() == 0 && setresgid(65534, 65534, 65534) == -1)
		return 20;
	if (geteuid() == 0 && setresuid(65534, 65534, 65534) == -1)
		return 21;
	snprintf(spec, sizeof(spec), "maildir:%s/locked/M", tmpdir);
	return deliver_big(spec, MT_DELIVER_FAIL, "/locked/M: Permission denied");
}

static void
test_permission_denied(void **state)
{
	(void)state;
	assert_int_equal(mkdir(tpath("locked"), 0500), 0);
	assert_int_equal(in_child(child_eacces), 0);
}

static int
child_efbig(void)
{
	struct rlimit rl = { 64 * 1024, 64 * 1024 };
	char spec[200];

	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		return 20;
	snprintf(spec, sizeof(spec), "dir:%s", tmpdir);
	return deliver_big(spec, MT_DELIVER_TEMPFAIL, ".part: File too large");
}

/* A file size limit: temporary, and no half file left behind. */
static void
test_file_too_large(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_efbig), 0);
	assert_int_equal(count_dir(tmpdir), 0);
}

static int
child_enospc(void)
{
	char spec[200];
	int rc;

	if (unshare(CLONE_NEWNS) == -1 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, "") == -1 ||
	    mount("tmpfs", tmpdir, "tmpfs", 0, "size=64k") == -1)
		return 77;
	snprintf(spec, sizeof(spec), "maildir:%s/M", tmpdir);
	rc = deliver_big(spec, MT_DELIVER_TEMPFAIL, ": No space left on device");
	if (rc == 0 && count_dir(tpath("M/tmp")) != 0)
		rc = 13;
	return rc;
}

/* A full disk (a small tmpfs; needs root): temporary, tmp/ clean. */
static void
test_disk_full(void **state)
{
	int rc;

	(void)state;
	if (geteuid() != 0)
		skip();
	rc = in_child(child_enospc);
	if (rc == 77)
		skip();
	assert_int_equal(rc, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_make_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_delivery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_maildir_recovery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_maildir_recovery_committed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_twice, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_dir_delivery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_dir_recovery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_wrong, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permission_denied, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_too_large, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup,
		    teardown),
	};
	char *p;

	gethostname(host, sizeof(host) - 1);
	while ((p = strpbrk(host, "/:,")) != NULL)
		*p = '_';		/* the test hosts have none */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
