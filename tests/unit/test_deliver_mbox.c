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

#define DATE 1700000000			/* Tue Nov 14 22:13:20 2023 UTC */

/* Quoting cases, CRLF on the wire; the message ends without a newline. */
static const char quoting_in[] =
    "Subject: q\r\n\r\nFrom x\r\n>From y\r\n>>From z\r\nFrom\r\n>From\r\n"
    "Fromage\r\n> From\r\n>>\r\nx From y\r\n\r\nFrom end";
static const char quoting_out[] =
    "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n"
    "X-Mailtunnel-Id: q1\n"
    "Subject: q\n\n>From x\n>>From y\n>>>From z\nFrom\n>From\n"
    "Fromage\n> From\n>>\nx From y\n\n>From end\n\n";

static struct mt_deliver *
mbox(void)
{
	return target("mbox:%s/mail/box", tmpdir);
}

static void
mkmaildir(void)
{
	assert_int_equal(mkdir(tpath("mail"), 0700), 0);
}

static void
test_quoting(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	size_t step, len;
	char *body;

	(void)state;
	mkmaildir();
	t = mbox();
	meta_init(&meta, "q1", DATE);
	/* Every chunk size splits CRLF, '>' runs and "From " differently. */
	for (step = 1; step <= sizeof(quoting_in); step++) {
		assert_int_equal(unlink(tpath("mail/box")) == 0 || step == 1, 1);
		assert_int_equal(deliver(t, &meta, quoting_in,
		    sizeof(quoting_in) - 1, step, &o), MT_DELIVER_OK);
		body = slurp(tpath("mail/box"), &len);
		assert_string_equal(body, quoting_out);
		free(body);
	}
	assert_int_equal(count_dir(tpath("mail")), 1);	/* no box.lock left */
	mt_deliver_close(t);
}

static void
test_append_and_sender(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	struct stat st;
	char *body;
	int fd;

	(void)state;
	mkmaildir();
	/* Someone else's mailbox without a final newline. */
	fd = open(tpath("mail/box"), O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, "From a b\nold", 12), 12);
	close(fd);
	t = mbox();
	meta_init(&meta, "k2", DATE);
	meta.sender = "bob@example.org";
	assert_int_equal(deliver(t, &meta, "A\r\n", 3, 0, &o), MT_DELIVER_OK);
	assert_string_equal(o.token,
	    "13:69:bob@example.org Tue Nov 14 22:13:20 2023");
	meta_init(&meta, "k3", DATE + 86400 * 3);
	meta.sender = "with space\x01";
	assert_int_equal(deliver(t, &meta, "B\r\n\r\n", 5, 0, &o),
	    MT_DELIVER_OK);
	body = slurp(tpath("mail/box"), NULL);
	assert_string_equal(body, "From a b\nold\n"
	    "From bob@example.org Tue Nov 14 22:13:20 2023\n"
	    "X-Mailtunnel-Id: k2\nA\n\n"
	    "From with_space_ Fri Nov 17 22:13:20 2023\n"
	    "X-Mailtunnel-Id: k3\nB\n\n\n");
	free(body);
	assert_int_equal(stat(tpath("mail/box"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	mt_deliver_close(t);
}

/* A new mailbox is made 0600; its directory is never made. */
static void
test_create_and_missing(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	struct stat st;

	(void)state;
	t = mbox();
	meta_init(&meta, "k", DATE);
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_FAIL);
	assert_non_null(strstr(o.reason, "/mail/box: its parent directory "
	    "does not exist"));
	assert_int_equal(strncmp(o.reason, "mbox /tmp/", 10), 0);
	mkmaildir();
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_OK);
	assert_int_equal(stat(tpath("mail/box"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	mt_deliver_close(t);
}

static pid_t
dead_pid(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, &status, 0);
	return pid;
}

static void
write_lock(const char *content)
{
	int fd = open(tpath("mail/box.lock"), O_CREAT | O_WRONLY | O_TRUNC,
	    0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
	    (ssize_t)strlen(content));
	close(fd);
}

static void
test_dotlock(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	char pid[32];

	(void)state;
	mkmaildir();
	t = mbox();
	mt_deliver_set_lock_timeout(t, 300);
	meta_init(&meta, "k", DATE);
	/* Held by a live process (this one): wait, then give up. */
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	write_lock(pid);
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_TEMPFAIL);
	assert_non_null(strstr(o.reason, "/mail/box is locked by another "
	    "program (gave up after 0.3 s)"));
	assert_non_null(strstr(logbuf, "(will retry)"));
	assert_int_equal(access(tpath("mail/box.lock"), F_OK), 0);
	/* Recovery cannot look either: it says so, it does not guess. */
	assert_int_equal(recover(t, "k", "0:10:x", &o), MT_DELIVER_UNKNOWN);
	assert_non_null(strstr(o.reason, "/mail/box is locked by another "
	    "program"));
	/* Left by a process that is gone: stale, removed. */
	snprintf(pid, sizeof(pid), "%ld\n", (long)dead_pid());
	write_lock(pid);
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_OK);
	assert_non_null(strstr(logbuf, "/mail/box: removing the stale lock "));
	assert_int_equal(access(tpath("mail/box.lock"), F_OK), -1);
	mt_deliver_close(t);
}

/* Another process holds fcntl on the mailbox for a while. */
static void
test_fcntl_lock(void **state)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct mt_deliver_meta meta;
	struct mt_deliver *t;
	struct outcome o;
	int go[2], status, fd;
	char c;
	pid_t pid;

	(void)state;
	mkmaildir();
	assert_int_equal(pipe(go), 0);
	if ((pid = fork()) == 0) {
		fd = open(tpath("mail/box"), O_CREAT | O_RDWR, 0600);
		if (fd < 0 || fcntl(fd, F_SETLK, &fl) == -1 ||
		    write(go[1], "x", 1) != 1)
			_exit(1);
		usleep(400 * 1000);
		_exit(0);
	}
	assert_int_equal(read(go[0], &c, 1), 1);
	t = mbox();
	mt_deliver_set_lock_timeout(t, 100);
	meta_init(&meta, "k", DATE);
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_TEMPFAIL);
	/* The dotlock was given back while waiting on fcntl. */
	assert_int_equal(access(tpath("mail/box.lock"), F_OK), -1);
	mt_deliver_set_lock_timeout(t, 5000);
	assert_int_equal(deliver(t, &meta, "x", 1, 0, &o), MT_DELIVER_OK);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	mt_deliver_close(t);
	close(go[0]);
	close(go[1]);
}

/* Append a complete message of our own making to the box. */
static void
deliver_ok(struct mt_deliver *t, const char *key, const char *data,
    char *token)
{
	struct mt_deliver_meta meta;
	struct outcome o;

	meta_init(&meta, key, DATE);
	assert_int_equal(deliver(t, &meta, data, strlen(data), 0, &o),
	    MT_DELIVER_OK);
	snprintf(token, MT_DELIVER_TOKEN_MAX + 1, "%s", o.token);
}

static off_t
fsize(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void
append_raw(const char *data)
{
	int fd = open(tpath("mail/box"), O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void
test_recover_states(void **state)
{
	struct mt_deliver_meta meta;
	struct mt_deliver_msg *m;
	struct mt_deliver *t;
	struct outcome o;
	char tok1[MT_DELIVER_TOKEN_MAX + 1], tok2[MT_DELIVER_TOKEN_MAX + 1];
	off_t full;

	(void)state;
	mkmaildir();
	t = mbox();
	deliver_ok(t, "m1", "Subject: one\r\n\r\nbody one\r\n", tok1);
	assert_int_equal(recover(t, "m1", tok1, &o), MT_DELIVER_DELIVERED);
	assert_int_equal(recover(t, "m2", tok1, &o), MT_DELIVER_NOT_DELIVERED);

	/* Prepared and dropped: never appended. */
	meta_init(&meta, "m2", DATE);
	m = prepare(t, &meta, "Subject: two\r\n\r\nbody two\r\n", 26, 0, &o);
	snprintf(tok2, sizeof(tok2), "%s", o.token);
	mt_deliver_abort(m);
	full = fsize(tpath("mail/box"));
	assert_int_equal(recover(t, "m2", tok2, &o), MT_DELIVER_NOT_DELIVERED);
	assert_int_equal(fsize(tpath("mail/box")), full);

	/* A torn append: cut back to where it started. */
	deliver_ok(t, "m2", "Subject: two\r\n\r\nbody two\r\n", tok2);
	assert_int_equal(truncate(tpath("mail/box"), fsize(tpath("mail/box"))
	    - 7), 0);
	assert_int_equal(recover(t, "m2", tok2, &o), MT_DELIVER_NOT_DELIVERED);
	assert_non_null(strstr(o.reason, "/mail/box: cut off an incomplete "
	    "copy of "));
	assert_int_equal(fsize(tpath("mail/box")), full);
	/* Torn inside the From line itself. */
	deliver_ok(t, "m2", "Subject: two\r\n\r\nbody two\r\n", tok2);
	assert_int_equal(truncate(tpath("mail/box"), full + 9), 0);
	assert_int_equal(recover(t, "m2", tok2, &o), MT_DELIVER_NOT_DELIVERED);
	assert_int_equal(fsize(tpath("mail/box")), full);

	/* Torn, and another program appended after it: left alone. */
	deliver_ok(t, "m2", "Subject: two\r\n\r\nbody two\r\n", tok2);
	assert_int_equal(truncate(tpath("mail/box"), fsize(tpath("mail/box"))
	    - 7), 0);
	append_raw("\nFrom other Tue Nov 14 22:13:20 2023\nSubject: o\n\nlong "
	    "enough to pass the length of ours\n\n");
	assert_int_equal(recover(t, "m2", tok2, &o), MT_DELIVER_NOT_DELIVERED);
	assert_non_null(strstr(o.reason, "an incomplete copy at offset "));
	assert_non_null(strstr(o.reason, " is followed by other mail; left in "
	    "place"));
	mt_deliver_close(t);
}

/* A mail reader rewrote the box: ours is found where it went. */
static void
test_recover_rewritten(void **state)
{
	struct mt_deliver *t;
	struct outcome o;
	char tok[MT_DELIVER_TOKEN_MAX + 1], *body;
	int fd;

	(void)state;
	mkmaildir();
	t = mbox();
	deliver_ok(t, "r1", "Subject: one\r\n\r\nbody\r\n", tok);
	body = slurp(tpath("mail/box"), NULL);
	fd = open(tpath("mail/box"), O_WRONLY | O_TRUNC);
	/* Shorter before ours: our offset now points past the end. */
	assert_int_equal(write(fd, body + 30, strlen(body) - 30),
	    (ssize_t)strlen(body) - 30);
	close(fd);
	assert_int_equal(recover(t, "r1", tok, &o), MT_DELIVER_NOT_DELIVERED);
	fd = open(tpath("mail/box"), O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "From x y\nStatus: RO\n\nhi\n\n", 25), 25);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	assert_int_equal(recover(t, "r1", tok, &o), MT_DELIVER_DELIVERED);
	assert_non_null(strstr(o.reason, "/mail/box: found at offset 25 (the "
	    "mailbox was rewritten)"));
	free(body);
	assert_int_equal(recover(t, "r1", "x:1:y", &o), MT_DELIVER_UNKNOWN);
	assert_string_equal(o.reason, "invalid token \"x:1:y\"");
	assert_int_equal(mt_deliver_discard(t, "1:2:x"), 0);
	mt_deliver_close(t);
}

/* Commit fails (file size limit): the box is as before, unlocked. */
static int
child_efbig(void)
{
	static char big[100 * 1024];
	struct rlimit rl = { 64 * 1024, 64 * 1024 };
	struct mt_deliver_meta meta;
	struct mt_deliver_msg *m;
	struct mt_deliver *t;
	struct outcome o;
	char err[256], spec[200];
	size_t len;

	signal(SIGXFSZ, SIG_IGN);
	memset(big, 'b', sizeof(big));
	snprintf(spec, sizeof(spec), "mbox:%s/mail/box", tmpdir);
	if (event_reinit(base) == -1 ||
	    (t = mt_deliver_open(spec, base, NULL, err, sizeof(err))) == NULL)
		return 10;
	meta_init(&meta, "big", DATE);
	if ((m = prepare(t, &meta, big, sizeof(big), 8192, &o)) == NULL)
		return 11;
	/* Only the append meets the limit. */
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		return 12;
	commit(m, &o);
	mt_deliver_close(t);
	if (o.status != MT_DELIVER_TEMPFAIL ||
	    strstr(o.reason, "cannot write mbox ") == NULL ||
	    strstr(o.reason, "File too large") == NULL)
		return 13;
	free(slurp(tpath("mail/box"), &len));
	return (len == 20 && access(tpath("mail/box.lock"), F_OK) == -1) ? 0 :
	    14;
}

static void
test_append_fails(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	mkmaildir();
	close(open(tpath("mail/box"), O_CREAT | O_WRONLY, 0600));
	append_raw("From a b\nSubject: x\n");
	if ((pid = fork()) == 0)
		_exit(child_efbig());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_and_sender, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_create_and_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_dotlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fcntl_lock, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover_states, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover_rewritten, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_append_fails, setup,
		    teardown),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
