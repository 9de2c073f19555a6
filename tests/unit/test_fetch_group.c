/*
 * test_fetch_group: what the fetcher added to the delivery targets and the
 * ledger - group syncs (several ends and commits, one sync each), the
 * batch size of each target, a quiet lock for a fetch that waits, and
 * whether the ledger knows a folder (first-run policy).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_deliver_util.h"
#include "mailtunnel/ledger.h"

struct synced {
	int called;
	enum mt_deliver_status status;
};

static void
on_sync(void *arg, enum mt_deliver_status st, const char *reason)
{
	struct synced *s = arg;

	(void)reason;
	s->called++;
	s->status = st;
}

static void
group_sync(struct mt_deliver *t)
{
	struct synced s = { 0, MT_DELIVER_FAIL };
	int spins;

	mt_deliver_group_sync(t, on_sync, &s);
	assert_int_equal(s.called, 0);		/* from the loop, not inside */
	for (spins = 0; s.called == 0 && spins < 1000; spins++)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(s.called, 1);
	assert_int_equal(s.status, MT_DELIVER_OK);
}

static int
count(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void
group_of_three(const char *kind, const char *where, const char *staged,
    const char *final)
{
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	struct mt_deliver_msg *m[3];
	struct mt_deliver_meta meta;
	struct outcome o;
	char key[16];
	struct mt_deliver *t = target("%s:%s", kind, where);
	int i;

	assert_int_equal(mt_deliver_group_begin(t), 0);
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		meta_init(&meta, key, 1700000000 + i);
		m[i] = prepare(t, &meta, msg, sizeof(msg) - 1, 0, &o);
		assert_non_null(m[i]);
		assert_true(o.token[0] != '\0');
	}
	group_sync(t);
	assert_int_equal(count(staged), 3);
	assert_int_equal(mt_deliver_group_begin(t), 0);
	for (i = 0; i < 3; i++) {
		commit(m[i], &o);
		assert_int_equal(o.status, MT_DELIVER_OK);
	}
	group_sync(t);
	assert_int_equal(count(final), 3);
	mt_deliver_close(t);
}

static void
test_group_maildir(void **state)
{
	(void)state;
	group_of_three("maildir", tpath("md"), tpath("md/tmp"),
	    tpath("md/new"));
	assert_int_equal(count(tpath("md/tmp")), 0);
}

static void
test_group_dir(void **state)
{
	(void)state;
	/* dir: stages under dot names next to the final ones. */
	group_of_three("dir", tpath("eml"), tpath("eml"), tpath("eml"));
}

static void
test_batch_sizes(void **state)
{
	struct mt_deliver *t;

	(void)state;
	t = target("maildir:%s", tpath("md2"));
	assert_true(mt_deliver_batch_max(t) > 1);
	mt_deliver_close(t);
	t = target("mbox:%s", tpath("mbox"));
	assert_int_equal(mt_deliver_batch_max(t), 1);
	/* mbox holds its lock from end to commit: no groups. */
	assert_int_equal(mt_deliver_group_begin(t), -1);
	mt_deliver_close(t);
}

static void
test_ledger_quiet_and_known(void **state)
{
	struct mt_ledger *a, *b;
	struct mt_ledger_folder *f;
	enum mt_ledger_err err;

	(void)state;
	a = mt_ledger_open(tmpdir, "imap://u@h", MT_LEDGER_NOWAIT, 0, NULL,
	    &err);
	assert_non_null(a);
	assert_false(mt_ledger_folder_known(a, MT_LEDGER_IMAP, "INBOX"));
	assert_non_null(f = mt_ledger_folder(a, MT_LEDGER_IMAP, "INBOX", 7));
	assert_true(mt_ledger_folder_known(a, MT_LEDGER_IMAP, "INBOX"));
	assert_false(mt_ledger_folder_known(a, MT_LEDGER_IMAP, "Sent"));
	assert_false(mt_ledger_folder_known(a, MT_LEDGER_POP3, NULL));

	/* A second opener is refused; QUIET says nothing about it. */
	logbuf[0] = '\0';
	b = mt_ledger_open(tmpdir, "imap://u@h", MT_LEDGER_NOWAIT |
	    MT_LEDGER_QUIET, 0, NULL, &err);
	assert_null(b);
	assert_int_equal(err, MT_LEDGER_EBUSY);
	assert_string_equal(logbuf, "");
	b = mt_ledger_open(tmpdir, "imap://u@h", MT_LEDGER_NOWAIT, 0, NULL,
	    &err);
	assert_null(b);
	assert_non_null(strstr(logbuf, "account imap://u@h is busy"));
	assert_int_equal(mt_ledger_close(a), 0);

	a = mt_ledger_open(tmpdir, "imap://u@h", MT_LEDGER_NOWAIT, 0, NULL,
	    &err);
	assert_non_null(a);
	assert_true(mt_ledger_folder_known(a, MT_LEDGER_IMAP, "INBOX"));
	assert_int_equal(mt_ledger_close(a), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_maildir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_group_dir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_batch_sizes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ledger_quiet_and_known,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
