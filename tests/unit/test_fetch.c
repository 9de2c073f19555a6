/*
 * test_fetch: the fetch job's configuration checks, names and defaults,
 * and its secrets (password files, password and token commands).
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "fetch/secret.h"
#include "mailtunnel/fetch.h"

static char dir[] = "/tmp/test_fetch.XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *
write_file(const char *name, const char *content, mode_t mode)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
	    (ssize_t)strlen(content));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void
base_conf(struct mt_fetch_conf *c)
{
	mt_fetch_conf_init(c);
	c->proto = MT_FETCH_IMAP;
	c->host = "mail.example.net";
	c->user = "alice@example.net";
	c->password_file = "/dev/null";
	c->deliver = "maildir:/tmp/x";
	c->state_dir = "/tmp";
}

static void
check_says(const struct mt_fetch_conf *c, const char *want)
{
	char err[512];

	if (want == NULL) {
		assert_int_equal(mt_fetch_conf_check(c, err, sizeof(err)), 0);
		return;
	}
	assert_int_equal(mt_fetch_conf_check(c, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", err, want);
}

static void
test_conf_check(void **state)
{
	const char *folders[] = { "INBOX", "" };
	struct mt_fetch_conf c;

	(void)state;
	base_conf(&c);
	check_says(&c, NULL);
	c.password_file = NULL;
	check_says(&c, "no password: give a password file");
	c.password_command = "pass show mail";
	c.token_command = "oauth2 token";
	check_says(&c, "give only one of");
	c.password_command = NULL;
	check_says(&c, NULL);
	c.auth = "PLAIN";
	check_says(&c, "a token command is for XOAUTH2 or OAUTHBEARER");
	c.auth = "CRAM-MD5";
	check_says(&c, "CRAM-MD5 is not supported");
	c.token_command = NULL;
	c.password_file = "/dev/null";
	c.auth = "XOAUTH2";
	check_says(&c, "XOAUTH2 needs a token command");
	c.auth = "login";
	check_says(&c, NULL);

	base_conf(&c);
	c.deliver = "pigeon:/roof";
	check_says(&c, "unknown delivery target \"pigeon:/roof\"");
	c.deliver = NULL;
	check_says(&c, "no delivery target");
	base_conf(&c);
	c.host = "";
	check_says(&c, "no server host name");
	base_conf(&c);
	c.user = NULL;
	check_says(&c, "no user name");
	base_conf(&c);
	c.state_dir = NULL;
	check_says(&c, "no state directory");
	base_conf(&c);
	c.keep_seconds = 86400;
	check_says(&c, "a keep time only makes sense with deletion");
	c.delete = 1;
	check_says(&c, NULL);
	base_conf(&c);
	c.port = 70000;
	check_says(&c, "port 70000 is out of range");
	base_conf(&c);
	c.folders = folders;
	c.nfolders = 2;
	check_says(&c, "folder names must have 1 to");
	c.nfolders = 1;
	check_says(&c, NULL);
	c.proto = MT_FETCH_POP3;
	check_says(&c, "POP3 has no folders");
	base_conf(&c);
	c.timeout_io_s = 0;
	check_says(&c, "timeouts must be positive");
}

static void
test_account(void **state)
{
	struct mt_fetch_conf c;
	char buf[256];

	(void)state;
	base_conf(&c);
	/* Implicit TLS and STARTTLS reach the same mailbox: one account. */
	assert_string_equal(mt_fetch_account(&c, buf, sizeof(buf)),
	    "imap://alice%40example.net@mail.example.net");
	c.starttls = 1;
	c.port = 143;
	assert_string_equal(mt_fetch_account(&c, buf, sizeof(buf)),
	    "imap://alice%40example.net@mail.example.net");
	c.starttls = 0;
	c.port = 993;
	assert_string_equal(mt_fetch_account(&c, buf, sizeof(buf)),
	    "imap://alice%40example.net@mail.example.net");
	c.port = 1993;
	assert_string_equal(mt_fetch_account(&c, buf, sizeof(buf)),
	    "imap://alice%40example.net@mail.example.net:1993");
	c.proto = MT_FETCH_POP3;
	c.port = 0;
	c.host = "2001:db8::1";
	assert_string_equal(mt_fetch_account(&c, buf, sizeof(buf)),
	    "pop3://alice%40example.net@[2001:db8::1]");
}

static void
test_state_dir(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(mt_fetch_state_dir_default(buf, sizeof(buf), "alice",
	    "/home/alice/.state", "/home/alice"), 0);
	assert_string_equal(buf, "/home/alice/.state/mailtunnel");
	assert_int_equal(mt_fetch_state_dir_default(buf, sizeof(buf), "alice",
	    NULL, "/home/alice"), 0);
	assert_string_equal(buf, "/home/alice/.local/state/mailtunnel");
	/* A relative XDG_STATE_HOME is ignored, as the spec says. */
	assert_int_equal(mt_fetch_state_dir_default(buf, sizeof(buf), "alice",
	    "state", "/home/alice"), 0);
	assert_string_equal(buf, "/home/alice/.local/state/mailtunnel");
	assert_int_equal(mt_fetch_state_dir_default(buf, sizeof(buf), "root",
	    NULL, "/"), 0);
	assert_string_equal(buf, "/.local/state/mailtunnel");
	assert_int_equal(mt_fetch_state_dir_default(buf, sizeof(buf),
	    "mailtunnel", "/x", "/nonexistent"), 0);
	assert_string_equal(buf, MT_LOCALSTATEDIR "/lib/mailtunnel");
	assert_int_equal(mt_fetch_state_dir_default(buf, sizeof(buf), "alice",
	    NULL, NULL), -1);
	assert_int_equal(mt_fetch_state_dir_default(buf, 10, "alice", NULL,
	    "/home/alice"), -1);
}

static void
test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(mt_fetch_exit_code(MT_FETCH_OK), 0);
	assert_int_equal(mt_fetch_exit_code(MT_FETCH_TEMPFAIL), EX_TEMPFAIL);
	assert_int_equal(mt_fetch_exit_code(MT_FETCH_AUTH), 77);
	assert_int_equal(mt_fetch_exit_code(MT_FETCH_CONFIG), 78);
	assert_int_equal(mt_fetch_exit_code(MT_FETCH_PROTOCOL), 65);
	assert_int_equal(mt_fetch_exit_code(MT_FETCH_DELIVERY), 73);
	assert_string_equal(mt_fetch_status_name(MT_FETCH_AUTH),
	    "authentication failed");
}

static void
test_password_file(void **state)
{
	char why[512], *s;
	const char *p;

	(void)state;
	p = write_file("pw", "s3cret pass\r\nsecond line\n", 0600);
	s = ft_secret_read_file(p, why, sizeof(why));
	assert_non_null(s);
	assert_string_equal(s, "s3cret pass");
	ft_secret_free(s);
	p = write_file("pw-noeol", "tok", 0400);
	assert_non_null(s = ft_secret_read_file(p, why, sizeof(why)));
	assert_string_equal(s, "tok");
	ft_secret_free(s);

	p = write_file("pw-open", "s3cret\n", 0640);
	assert_null(ft_secret_read_file(p, why, sizeof(why)));
	assert_non_null(strstr(why, "may be read by group or others (mode "
	    "0640): refusing it; chmod 600"));
	assert_null(strstr(why, "s3cret"));
	p = write_file("pw-world", "s3cret\n", 0604);
	assert_null(ft_secret_read_file(p, why, sizeof(why)));
	assert_non_null(strstr(why, "mode 0604"));
	p = write_file("pw-empty", "\nsecond\n", 0600);
	assert_null(ft_secret_read_file(p, why, sizeof(why)));
	assert_non_null(strstr(why, "is empty"));
	assert_null(ft_secret_read_file(dir, why, sizeof(why)));
	assert_non_null(strstr(why, "is not a regular file"));
	assert_null(ft_secret_read_file("/nonexistent/pw", why, sizeof(why)));
	assert_non_null(strstr(why, "cannot open password file "
	    "/nonexistent/pw: No such file"));
}

static void
test_first_line(void **state)
{
	size_t n;

	(void)state;
	assert_int_equal(ft_secret_first_line("abc\r\nx", 6, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ft_secret_first_line("abc", 3, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ft_secret_first_line("\r\nabc", 5, &n), -1);
	assert_int_equal(ft_secret_first_line("", 0, &n), -1);
}

struct cmd_result {
	int called;
	enum mt_fetch_status st;
	char secret[64];
	char why[256];
	struct event_base *base;
};

static void
cmd_done(void *arg, enum mt_fetch_status st, char *secret, const char *why)
{
	struct cmd_result *r = arg;

	r->called++;
	r->st = st;
	snprintf(r->secret, sizeof(r->secret), "%s", secret ? secret : "");
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
	ft_secret_free(secret);
	event_base_loopexit(r->base, NULL);
}

static void
run_cmd(const char *command, unsigned timeout_ms, struct cmd_result *r)
{
	char why[256];
	struct ft_cmd *c;

	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	c = ft_cmd_start(r->base, command, "the token command", timeout_ms,
	    cmd_done, r, why, sizeof(why));
	assert_non_null(c);
	/* Never from inside the start. */
	assert_int_equal(r->called, 0);
	event_base_dispatch(r->base);
	event_base_free(r->base);
	assert_int_equal(r->called, 1);
}

static void
test_commands(void **state)
{
	struct cmd_result r;

	(void)state;
	run_cmd("printf 'ya29.token\\nrefresh\\n'", 5000, &r);
	assert_int_equal(r.st, MT_FETCH_OK);
	assert_string_equal(r.secret, "ya29.token");
	run_cmd("echo tok; exit 3", 5000, &r);
	assert_int_equal(r.st, MT_FETCH_TEMPFAIL);
	assert_string_equal(r.why, "the token command exited with status 3");
	run_cmd("/nonexistent/helper", 5000, &r);
	assert_int_equal(r.st, MT_FETCH_CONFIG);
	assert_string_equal(r.why, "the token command could not be run (the "
	    "shell said 127)");
	run_cmd("true", 5000, &r);
	assert_int_equal(r.st, MT_FETCH_CONFIG);
	assert_string_equal(r.why, "the token command printed nothing on its "
	    "first line");
	run_cmd("sleep 10", 200, &r);
	assert_int_equal(r.st, MT_FETCH_TEMPFAIL);
	assert_string_equal(r.why, "the token command did not finish in "
	    "time; killed it");
	run_cmd("kill -TERM $$", 5000, &r);
	assert_int_equal(r.st, MT_FETCH_TEMPFAIL);
	assert_string_equal(r.why, "the token command was killed by signal 15");
	/* Output past the cap is drained, not stored. */
	run_cmd("head -c 100000 /dev/zero | tr '\\0' x", 5000, &r);
	assert_int_equal(r.st, MT_FETCH_CONFIG);
	assert_string_equal(r.why, "the token command printed a line that is "
	    "too long");
}

static void
test_command_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct cmd_result r;
	char why[256];
	struct ft_cmd *c;

	(void)state;
	memset(&r, 0, sizeof(r));
	c = ft_cmd_start(base, "sleep 30", "the password command", 60000,
	    cmd_done, &r, why, sizeof(why));
	assert_non_null(c);
	ft_cmd_cancel(c);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(r.called, 0);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_check),
		cmocka_unit_test(test_account),
		cmocka_unit_test(test_state_dir),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_first_line),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_command_cancel),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
