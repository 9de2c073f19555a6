#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "mailtunnel/ledger.h"
#include "mailtunnel/log.h"

#define ACCOUNT "imap://alice@mail.example.org:993"
#define TD 1700000000		/* a fixed date for exact expectations */

static time_t T0;			/* recent: compaction keeps it exact */

static char tmpdir[64];
static char logbuf[16384];

static void
hook(void *arg, int level, const char *line)
{
	size_t n = strlen(logbuf);

	(void)arg;
	snprintf(logbuf + n, sizeof(logbuf) - n, "%d:%s\n", level, line);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/mt-ledger-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	logbuf[0] = '\0';
	mt_log_set_hook(hook, NULL);
	mt_log_set_level(MT_LOG_DEBUG);
	mt_log_to_file("/dev/null");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	mt_log_set_hook(NULL, NULL);
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct mt_ledger *
open_ok(const char *account)
{
	enum mt_ledger_err err = MT_LEDGER_EIO;
	struct mt_ledger *l;

	l = mt_ledger_open(tmpdir, account, MT_LEDGER_NOWAIT, 0, NULL, &err);
	assert_non_null(l);
	assert_int_equal(err, MT_LEDGER_OK);
	return l;
}

/* Path of one of the ledger's files. */
static const char *
lpath(struct mt_ledger *l, const char *file)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s", mt_ledger_dir(l), file);
	return buf;
}

static off_t
fsize(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return -1;
	return st.st_size;
}

static void
append_bytes(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static unsigned
flags(struct mt_ledger_folder *f, const char *key)
{
	struct mt_ledger_entry e;

	assert_int_not_equal(mt_ledger_lookup(f, key, &e), -1);
	return e.flags;
}

static time_t
delivered(struct mt_ledger_folder *f, const char *key)
{
	struct mt_ledger_entry e;

	assert_int_equal(mt_ledger_lookup(f, key, &e), 1);
	return e.delivered;
}

static void
deliver(struct mt_ledger_folder *f, const char *key, const char *token,
    uint64_t fp, time_t when)
{
	assert_int_equal(mt_ledger_intent(f, key, token, fp), 0);
	assert_int_equal(mt_ledger_done(f, key, when), 0);
}

/* ---- journal and snapshot ---- */

static void
check_roundtrip_state(struct mt_ledger *l)
{
	struct mt_ledger_folder *in, *pop, *odd;

	in = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 77);
	odd = mt_ledger_folder(l, MT_LEDGER_IMAP, "Sent Items/%\xc3\xa9", 5);
	pop = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	assert_non_null(in);
	assert_non_null(odd);
	assert_non_null(pop);
	assert_int_equal(flags(in, "1"), MT_LEDGER_DELIVERED);
	assert_int_equal(delivered(in, "1"), T0);
	assert_int_equal(flags(in, "2"), MT_LEDGER_DELIVERED);
	assert_int_equal(flags(in, "3"), MT_LEDGER_PENDING);
	assert_int_equal(flags(in, "4"), 0);
	assert_true(mt_ledger_is_done(in, "2"));
	assert_false(mt_ledger_is_done(in, "3"));
	assert_int_equal(flags(odd, "9"), MT_LEDGER_DELIVERED);
	assert_int_equal(flags(pop, "UID-%-1"), MT_LEDGER_DELIVERED);
	assert_int_equal(delivered(pop, "UID-%-1"), T0 + 5);
	assert_int_equal(flags(pop, "-"), MT_LEDGER_DELIVERED);
	assert_int_equal(flags(pop, "x"), 0);
	assert_string_equal(mt_ledger_folder_name(odd), "Sent Items/%\xc3\xa9");
}

static void
test_roundtrip(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *in, *pop, *odd;

	(void)state;
	l = open_ok(ACCOUNT);
	in = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 77);
	odd = mt_ledger_folder(l, MT_LEDGER_IMAP, "Sent Items/%\xc3\xa9", 5);
	pop = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	deliver(in, "1", "new/1.eml", 0, T0);
	deliver(in, "2", "token with spaces\nand a newline", 42, T0);
	assert_int_equal(mt_ledger_intent(in, "3", "t3", 0), 0);
	deliver(odd, "9", "-", 0, T0);
	deliver(pop, "UID-%-1", "%", 0, T0 + 5);
	deliver(pop, "-", "x", 0, T0 + 5);
	assert_int_equal(mt_ledger_commit(l), 0);
	check_roundtrip_state(l);
	assert_int_equal(mt_ledger_close(l), 0);
	/* From the journal alone. */
	assert_int_equal(fsize(lpath(l = open_ok(ACCOUNT), "snapshot")), -1);
	check_roundtrip_state(l);
	assert_int_equal(mt_ledger_compact(l), 0);
	assert_int_equal(mt_ledger_close(l), 0);
	/* From the snapshot alone. */
	l = open_ok(ACCOUNT);
	assert_true(fsize(lpath(l, "snapshot")) > 0);
	check_roundtrip_state(l);
	assert_int_equal(mt_ledger_close(l), 0);
}

static void
test_pending(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *a, *b;
	struct mt_ledger_pending *p;
	long n;

	(void)state;
	l = open_ok(ACCOUNT);
	a = mt_ledger_folder(l, MT_LEDGER_IMAP, "A", 1);
	b = mt_ledger_folder(l, MT_LEDGER_IMAP, "B", 1);
	assert_int_equal(mt_ledger_intent(a, "5", "tok-a5", 0), 0);
	assert_int_equal(mt_ledger_intent(b, "6", "tok-b6", 0), 0);
	assert_int_equal(mt_ledger_intent(b, "7", "tok-b7", 0), 0);
	assert_int_equal(mt_ledger_close(l), 0);

	l = open_ok(ACCOUNT);
	n = mt_ledger_pending(l, &p);
	assert_int_equal(n, 3);
	assert_string_equal(mt_ledger_folder_name(p[0].folder), "A");
	assert_string_equal(p[0].key, "5");
	assert_string_equal(p[0].token, "tok-a5");
	assert_string_equal(mt_ledger_folder_name(p[2].folder), "B");
	assert_int_equal(mt_ledger_done(p[0].folder, p[0].key, T0), 0);
	assert_int_equal(mt_ledger_abandon(p[1].folder, p[1].key), 0);
	mt_ledger_pending_free(p, n);
	assert_int_equal(mt_ledger_compact(l), 0);
	assert_int_equal(mt_ledger_close(l), 0);

	l = open_ok(ACCOUNT);
	assert_int_equal(mt_ledger_pending(l, &p), 1);
	assert_string_equal(p[0].token, "tok-b7");
	mt_ledger_pending_free(p, 1);
	a = mt_ledger_folder(l, MT_LEDGER_IMAP, "A", 1);
	b = mt_ledger_folder(l, MT_LEDGER_IMAP, "B", 1);
	assert_int_equal(flags(a, "5"), MT_LEDGER_DELIVERED);
	assert_int_equal(flags(b, "6"), 0);
	/* Abandoned: it can be delivered again. */
	assert_int_equal(mt_ledger_intent(b, "6", "tok-b6-2", 0), 0);
	assert_int_equal(mt_ledger_close(l), 0);
}

/* A crash in the middle of an append leaves half a record. */
static void
test_torn_tail(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	char journal[512];
	off_t before;

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	deliver(f, "1", "a", 0, T0);
	deliver(f, "2", "b", 0, T0);
	snprintf(journal, sizeof(journal), "%s", lpath(l, "journal"));
	assert_int_equal(mt_ledger_close(l), 0);
	before = fsize(journal);
	append_bytes(journal, "1234abcd D 1 3 17000", 20);

	logbuf[0] = '\0';
	l = open_ok(ACCOUNT);
	assert_non_null(strstr(logbuf, "journal: dropped 20 bytes of an "
	    "incomplete record at its end (an interrupted write)"));
	assert_int_equal(fsize(lpath(l, "journal")), before);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	assert_true(mt_ledger_is_done(f, "2"));
	assert_false(mt_ledger_is_done(f, "3"));
	/* Appending after the cut works and survives. */
	deliver(f, "3", "c", 0, T0);
	assert_int_equal(mt_ledger_close(l), 0);
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	assert_true(mt_ledger_is_done(f, "3"));
	assert_int_equal(mt_ledger_close(l), 0);
}

/* A whole last line with a bad checksum, and zeros after a power loss. */
static void
test_torn_checksum_and_zeros(void **state)
{
	static const char zeros[300];
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	char journal[512];

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	deliver(f, "1", "a", 0, T0);
	snprintf(journal, sizeof(journal), "%s", lpath(l, "journal"));
	assert_int_equal(mt_ledger_close(l), 0);
	append_bytes(journal, "00000000 D 1 2 1700000000\n", 26);
	l = open_ok(ACCOUNT);
	assert_non_null(strstr(logbuf, "dropped 26 bytes"));
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	assert_false(mt_ledger_is_done(f, "2"));
	assert_int_equal(mt_ledger_close(l), 0);

	append_bytes(journal, zeros, sizeof(zeros));
	logbuf[0] = '\0';
	l = open_ok(ACCOUNT);
	assert_non_null(strstr(logbuf, "dropped 300 bytes"));
	assert_true(mt_ledger_is_done(mt_ledger_folder(l, MT_LEDGER_IMAP,
	    "INBOX", 1), "1"));
	assert_int_equal(mt_ledger_close(l), 0);
}

/* Flip one byte of a record that has valid records after it. */
static void
test_damaged_middle(void **state)
{
	enum mt_ledger_err err;
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	char path[512];
	int fd;

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	deliver(f, "1", "a", 0, T0);
	deliver(f, "2", "b", 0, T0);
	snprintf(path, sizeof(path), "%s", lpath(l, "journal"));
	assert_int_equal(mt_ledger_close(l), 0);

	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "Q", 1, fsize(path) - 30), 1);
	close(fd);
	l = mt_ledger_open(tmpdir, ACCOUNT, 0, 0, NULL, &err);
	assert_null(l);
	assert_int_equal(err, MT_LEDGER_ECORRUPT);
	assert_non_null(strstr(logbuf, "/journal: damaged at offset"));
	assert_non_null(strstr(logbuf, "with records after the damage; "
	    "refusing to guess what was delivered (move the directory aside "
	    "to start over)"));
	assert_string_equal(mt_ledger_errstr(err), "ledger damaged");
}

static void
test_damaged_snapshot(void **state)
{
	enum mt_ledger_err err;
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	char path[512];

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	deliver(f, "1", "a", 0, T0);
	assert_int_equal(mt_ledger_compact(l), 0);
	snprintf(path, sizeof(path), "%s", lpath(l, "snapshot"));
	assert_int_equal(mt_ledger_close(l), 0);
	assert_int_equal(truncate(path, fsize(path) - 3), 0);
	l = mt_ledger_open(tmpdir, ACCOUNT, 0, 0, NULL, &err);
	assert_null(l);
	assert_int_equal(err, MT_LEDGER_ECORRUPT);
	assert_non_null(strstr(logbuf, "/snapshot: ends early, after line"));
	/* A ledger directory of another account (a name collision). */
	assert_int_equal(truncate(path, 0), 0);
	logbuf[0] = '\0';
	l = mt_ledger_open(tmpdir, ACCOUNT, 0, 0, NULL, &err);
	assert_null(l);
	assert_non_null(strstr(logbuf, "/snapshot: not the ledger of this "
	    "account"));
}

static void
test_compaction(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	char key[16], tok[32], jsave[512], jpath[512], cmd[1200];
	int i;

	(void)state;
	l = open_ok(ACCOUNT);
	mt_ledger_set_compact_threshold(l, 4096);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	for (i = 1; i <= 400; i++) {
		snprintf(key, sizeof(key), "%d", i);
		snprintf(tok, sizeof(tok), "1700000000.mt%d.host", i);
		deliver(f, key, tok, (uint64_t)i, T0 + i / 100);
		assert_int_equal(mt_ledger_commit(l), 0);
		assert_true(fsize(lpath(l, "journal")) < 4096 + 200);
	}
	assert_true(fsize(lpath(l, "snapshot")) > 0);
	assert_int_equal(mt_ledger_close(l), 0);
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	for (i = 1; i <= 400; i++) {
		snprintf(key, sizeof(key), "%d", i);
		assert_int_equal(flags(f, key), MT_LEDGER_DELIVERED);
		assert_int_equal(delivered(f, key), T0 + i / 100);
	}

	/*
	 * A crash between the snapshot's rename and the journal's: the old
	 * journal (whose records the snapshot holds) is found next to it.
	 */
	deliver(f, "401", "t", 0, T0);
	assert_int_equal(mt_ledger_commit(l), 0);
	snprintf(jpath, sizeof(jpath), "%s", lpath(l, "journal"));
	snprintf(jsave, sizeof(jsave), "%s/journal.save", tmpdir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", jpath, jsave);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(mt_ledger_compact(l), 0);
	assert_int_equal(mt_ledger_close(l), 0);
	assert_int_equal(rename(jsave, jpath), 0);
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	assert_true(mt_ledger_is_done(f, "401"));
	assert_true(mt_ledger_is_done(f, "1"));
	deliver(f, "402", "t", 0, T0);
	assert_int_equal(mt_ledger_close(l), 0);
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	assert_true(mt_ledger_is_done(f, "402"));
	assert_int_equal(mt_ledger_close(l), 0);
}

/* An epoch that fits neither case, and a missing journal. */
static void
test_journal_epochs(void **state)
{
	enum mt_ledger_err err;
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	char old[512], jpath[512];

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	deliver(f, "1", "t", 0, T0);
	snprintf(jpath, sizeof(jpath), "%s", lpath(l, "journal"));
	snprintf(old, sizeof(old), "%s/journal.e0", tmpdir);
	assert_int_equal(link(jpath, old), 0);
	assert_int_equal(mt_ledger_compact(l), 0);	/* epoch 1 */
	assert_int_equal(mt_ledger_compact(l), 0);	/* epoch 2 */
	assert_int_equal(mt_ledger_close(l), 0);
	assert_int_equal(rename(old, jpath), 0);
	l = mt_ledger_open(tmpdir, ACCOUNT, 0, 0, NULL, &err);
	assert_null(l);
	assert_int_equal(err, MT_LEDGER_ECORRUPT);
	assert_non_null(strstr(logbuf, "/journal: epoch 0 does not follow "
	    "the snapshot's epoch 2"));
	assert_int_equal(unlink(jpath), 0);
	logbuf[0] = '\0';
	l = open_ok(ACCOUNT);
	assert_non_null(strstr(logbuf, ": the journal is missing; starting a "
	    "new one"));
	assert_true(mt_ledger_is_done(mt_ledger_folder(l, MT_LEDGER_IMAP,
	    "INBOX", 1), "1"));
	assert_int_equal(mt_ledger_close(l), 0);
}

/* ---- locking ---- */

static void
test_lock(void **state)
{
	enum mt_ledger_err err;
	struct mt_ledger *l;
	struct timespec t0, t1;
	int go[2], done[2], status;
	char c = 0, expect[128];
	pid_t pid;
	long ms;

	(void)state;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	if ((pid = fork()) == 0) {
		l = mt_ledger_open(tmpdir, ACCOUNT, 0, 0, NULL, &err);
		if (write(go[1], "x", 1) != 1 || l == NULL)
			_exit(1);
		if (read(done[0], &c, 1) != 1)
			_exit(2);
		usleep(150 * 1000);
		_exit(mt_ledger_close(l) == 0 ? 0 : 3);
	}
	assert_int_equal(read(go[0], &c, 1), 1);

	l = mt_ledger_open(tmpdir, ACCOUNT, MT_LEDGER_NOWAIT, 0, NULL, &err);
	assert_null(l);
	assert_int_equal(err, MT_LEDGER_EBUSY);
	snprintf(expect, sizeof(expect), "account " ACCOUNT " is busy: "
	    "another fetch (pid %ld) holds ", (long)pid);
	assert_non_null(strstr(logbuf, expect));

	logbuf[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	l = mt_ledger_open(tmpdir, ACCOUNT, MT_LEDGER_WAIT, 100, NULL, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_null(l);
	assert_int_equal(err, MT_LEDGER_EBUSY);
	assert_true(ms >= 100);
	assert_non_null(strstr(logbuf, "/lock (gave up waiting)"));

	/* The holder lets go after 150 ms; a waiter gets in. */
	assert_int_equal(write(done[1], "x", 1), 1);
	l = mt_ledger_open(tmpdir, ACCOUNT, MT_LEDGER_WAIT, 5000, NULL, &err);
	assert_non_null(l);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(mt_ledger_close(l), 0);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

/* ---- UIDVALIDITY ---- */

static void
test_fingerprint(void **state)
{
	uint64_t fp1;

	(void)state;
	fp1 = mt_ledger_fingerprint(" <a@x> ", "Mon, 1 Jan 2024 10:00:00 +0000",
	    1000);
	assert_int_equal(fp1, mt_ledger_fingerprint("<a@x>",
	    "\tMon, 1 Jan 2024 10:00:00 +0000\r\n", 1000));
	assert_int_not_equal(fp1, mt_ledger_fingerprint("<a@x>",
	    "Mon, 1 Jan 2024 10:00:00 +0000", 1001));
	assert_int_not_equal(fp1, mt_ledger_fingerprint("<b@x>",
	    "Mon, 1 Jan 2024 10:00:00 +0000", 1000));
	assert_int_not_equal(fp1, mt_ledger_fingerprint("<a@x>", NULL, 1000));
	assert_int_equal(mt_ledger_fingerprint(NULL, "x", 5), 0);
	assert_int_equal(mt_ledger_fingerprint("  ", "x", 5), 0);
}

static void
test_uidvalidity(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	uint64_t fp1 = 0x1111, fp2 = 0x2222, fp3 = 0x3333;

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 100);
	deliver(f, "1", "t1", fp1, T0 + 1);
	deliver(f, "2", "t2", fp2, T0 + 2);
	deliver(f, "3", "t3", fp3, T0 + 3);
	deliver(f, "4", "t4", fp1, T0 + 4);	/* a second copy of <a@x> */
	assert_int_equal(mt_ledger_mark_deleted(f, "3"), 0);
	assert_int_equal(mt_ledger_compact(l), 0);	/* drops 3's print */
	assert_false(mt_ledger_revalidating(f));
	assert_int_equal(mt_ledger_close(l), 0);

	l = open_ok(ACCOUNT);
	logbuf[0] = '\0';
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 200);
	assert_non_null(f);
	assert_int_equal(mt_ledger_folder_uidvalidity(f), 200);
	assert_non_null(strstr(logbuf, "4:folder INBOX: UIDVALIDITY changed; "
	    "3 messages delivered before will be recognised by Message-ID, "
	    "Date and size, messages without Message-ID will be delivered "
	    "again"));
	assert_true(mt_ledger_revalidating(f));
	assert_false(mt_ledger_is_done(f, "1"));

	assert_int_equal(mt_ledger_match(f, "10", fp2), 1);
	assert_non_null(strstr(logbuf, "folder INBOX: UID 10 has the "
	    "Message-ID, Date and size of a message delivered before the "
	    "UIDVALIDITY change; not delivering it again"));
	assert_int_equal(delivered(f, "10"), T0 + 2);
	assert_int_equal(mt_ledger_match(f, "11", fp2), 0);  /* used up */
	assert_int_equal(mt_ledger_match(f, "12", fp3), 0);  /* was deleted */
	assert_int_equal(mt_ledger_match(f, "13", fp1), 1);
	assert_int_equal(delivered(f, "13"), T0 + 1);
	assert_int_equal(mt_ledger_close(l), 0);

	/* Matches persist; one copy of <a@x> is still unmatched. */
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 200);
	assert_true(mt_ledger_is_done(f, "10"));
	assert_true(mt_ledger_revalidating(f));
	logbuf[0] = '\0';
	assert_int_equal(mt_ledger_match(f, "14", 0), 0);
	assert_non_null(strstr(logbuf, "4:folder INBOX: UID 14 has no "
	    "Message-ID to compare with the messages delivered before the "
	    "UIDVALIDITY change; delivering it (it may be one of them)"));
	assert_int_equal(mt_ledger_compact(l), 0);
	assert_int_equal(mt_ledger_close(l), 0);
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 200);
	assert_int_equal(mt_ledger_match(f, "15", fp1), 1);
	assert_int_equal(delivered(f, "15"), T0 + 4);
	assert_false(mt_ledger_revalidating(f));
	assert_int_equal(mt_ledger_retire_old(f), 0);
	assert_int_equal(mt_ledger_close(l), 0);
}

static void
test_uidvalidity_pending(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *f;

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 100);
	deliver(f, "1", "t1", 11, T0);
	assert_int_equal(mt_ledger_intent(f, "2", "t2", 22), 0);
	assert_null(mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 101));
	assert_non_null(strstr(logbuf, "folder INBOX: UIDVALIDITY changed "
	    "from 100 to 101 while 1 deliveries are unresolved; recover them "
	    "first"));
	/* Resolved, the change goes through; the fingerprint came along. */
	assert_int_equal(mt_ledger_done(f, "2", T0 + 9), 0);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 101);
	assert_non_null(f);
	assert_int_equal(mt_ledger_match(f, "7", 22), 1);
	assert_int_equal(delivered(f, "7"), T0 + 9);
	assert_int_equal(mt_ledger_retire_old(f), 0);
	assert_false(mt_ledger_revalidating(f));
	assert_int_equal(mt_ledger_match(f, "8", 11), 0);
	assert_int_equal(mt_ledger_close(l), 0);
}

/* ---- sizes ---- */

static void
test_range_compression(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	char key[16], line[256];
	struct timespec t0, t1;
	unsigned ranges = 0, lines = 0;
	FILE *fp;
	long ms;
	int i;

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	for (i = 1; i <= 100000; i++) {
		snprintf(key, sizeof(key), "%d", i);
		assert_int_equal(mt_ledger_done(f, key, T0 + i / 1000), 0);
	}
	assert_int_equal(mt_ledger_mark_deleted_uids(f, 20001, 30000), 0);
	assert_int_equal(mt_ledger_mark_deleted(f, "50000"), 0);
	assert_int_equal(mt_ledger_compact(l), 0);
	assert_int_equal(mt_ledger_close(l), 0);

	assert_non_null(fp = fopen(lpath(l = open_ok(ACCOUNT), "snapshot"),
	    "r"));
	while (fgets(line, sizeof(line), fp) != NULL) {
		lines++;
		ranges += (strncmp(line + 9, "r ", 2) == 0);
	}
	fclose(fp);
	/* 100 seconds of delivery times, one cut for the deletions. */
	assert_true(ranges <= 104);
	assert_true(lines < 150);
	assert_int_equal(mt_ledger_close(l), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 200);
	assert_int_equal(flags(f, "1"), MT_LEDGER_DELIVERED);
	assert_int_equal(flags(f, "20000"), MT_LEDGER_DELIVERED);
	assert_int_equal(flags(f, "20001"),
	    MT_LEDGER_DELIVERED | MT_LEDGER_DELETED);
	assert_int_equal(flags(f, "30000"),
	    MT_LEDGER_DELIVERED | MT_LEDGER_DELETED);
	assert_int_equal(flags(f, "30001"), MT_LEDGER_DELIVERED);
	assert_int_equal(delivered(f, "30001"), T0 + 30);
	assert_int_equal(flags(f, "50000"),
	    MT_LEDGER_DELIVERED | MT_LEDGER_DELETED);
	assert_int_equal(delivered(f, "50001"), T0 + 50);
	assert_int_equal(flags(f, "100000"), MT_LEDGER_DELIVERED);
	assert_int_equal(flags(f, "100001"), 0);
	assert_int_equal(mt_ledger_close(l), 0);
}

/* Old delivery times are rounded up at compaction, so ranges merge. */
static void
test_coarse_times(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	time_t now = time(NULL), t1 = now - 10 * 86400 - 1234;
	time_t t2 = t1 + 60, t3 = now - 100 * 86400 - 77, t5 = now - 50;

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	assert_int_equal(mt_ledger_done(f, "1", t3), 0);
	assert_int_equal(mt_ledger_done(f, "2", t1), 0);
	assert_int_equal(mt_ledger_done(f, "3", t2), 0);
	assert_int_equal(mt_ledger_done(f, "4", t5), 0);
	assert_int_equal(mt_ledger_done(f, "5", t5 + 1), 0);
	assert_int_equal(mt_ledger_compact(l), 0);
	assert_int_equal(mt_ledger_close(l), 0);
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	assert_true(delivered(f, "1") >= t3 && delivered(f, "1") < t3 + 86400);
	assert_int_equal(delivered(f, "1") % 86400, 0);
	assert_true(delivered(f, "2") >= t1 && delivered(f, "2") < t1 + 3600);
	assert_int_equal(delivered(f, "2") % 3600, 0);
	assert_int_equal(delivered(f, "4"), t5);	/* recent: exact */
	assert_int_equal(delivered(f, "5"), t5 + 1);
	assert_int_equal(mt_ledger_close(l), 0);
}

static void
test_bulk_mark(void **state)
{
	static const char *const listing[] = { "u1", "u2", "u3" };
	struct mt_ledger_range r[2] = { { 1, 5000 }, { 7000, 7000 } };
	struct mt_ledger_range bad = { 5, 4 };
	struct mt_ledger *l;
	struct mt_ledger_folder *f, *p;
	struct mt_ledger_entry e;

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	p = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	deliver(f, "4000", "t", 0, T0);
	deliver(p, "u2", "t", 0, T0);
	assert_int_equal(mt_ledger_mark_seen_uids(f, r, 2), 0);
	assert_int_equal(mt_ledger_mark_seen_uidls(p, listing, 3), 0);
	assert_int_equal(mt_ledger_mark_seen_uids(f, &bad, 1), -1);
	assert_non_null(strstr(logbuf, "folder INBOX: invalid UID range 5:4"));
	assert_int_equal(mt_ledger_mark_seen_uidls(f, listing, 1), -1);
	assert_non_null(strstr(logbuf, "ledger: mark_seen_uidls is for POP3 "
	    "folders"));
	assert_int_equal(mt_ledger_close(l), 0);

	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	p = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	assert_int_equal(flags(f, "1"), MT_LEDGER_SEEN);
	assert_int_equal(flags(f, "5000"), MT_LEDGER_SEEN);
	assert_int_equal(flags(f, "5001"), 0);
	assert_int_equal(flags(f, "7000"), MT_LEDGER_SEEN);
	assert_int_equal(flags(f, "4000"), MT_LEDGER_DELIVERED);
	assert_int_equal(mt_ledger_lookup(f, "1", &e), 1);
	assert_int_equal(e.delivered, 0);
	assert_true(mt_ledger_is_done(f, "4999"));
	assert_int_equal(flags(p, "u1"), MT_LEDGER_SEEN);
	assert_int_equal(flags(p, "u2"), MT_LEDGER_DELIVERED);
	/* Seen messages are not delivered: refuse an intent for them. */
	assert_int_equal(mt_ledger_intent(p, "u3", "t", 0), -1);
	assert_non_null(strstr(logbuf, "folder POP3: message u3 is already done; "
	    "not delivering it again"));
	assert_int_equal(mt_ledger_close(l), 0);
}

struct due {
	char seen[32][80];
	int n;
};

static int
due_cb(void *arg, const char *uidl, uint32_t lo, uint32_t hi, time_t when)
{
	struct due *d = arg;

	if (uidl != NULL)
		snprintf(d->seen[d->n++], 80, "%s@%lld", uidl, (long long)when);
	else
		snprintf(d->seen[d->n++], 80, "%u-%u@%lld", lo, hi,
		    (long long)when);
	return d->n == 32;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_due_for_deletion(void **state)
{
	const time_t day = 86400, now = TD + 100 * day;
	struct mt_ledger *l;
	struct mt_ledger_folder *f, *p;
	struct due d = { .n = 0 };

	(void)state;
	l = open_ok(ACCOUNT);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	p = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	deliver(f, "1", "t", 0, now - 40 * day);
	deliver(f, "2", "t", 0, now - 40 * day);
	deliver(f, "3", "t", 0, now - 30 * day);	/* exactly due */
	deliver(f, "4", "t", 0, now - 30 * day + 1);
	assert_int_equal(mt_ledger_mark_seen_uids(f,
	    &(struct mt_ledger_range){ 5, 9 }, 1), 0);
	deliver(p, "old", "t", 0, now - 31 * day);
	deliver(p, "new", "t", 0, now - 1);
	/* Not committed yet: due_for_deletion commits first. */
	assert_int_equal(mt_ledger_due_for_deletion(f, now, 30 * day, due_cb,
	    &d), 0);
	assert_int_equal(mt_ledger_due_for_deletion(p, now, 30 * day, due_cb,
	    &d), 0);
	assert_int_equal(d.n, 3);
	qsort(d.seen, (size_t)d.n, sizeof(d.seen[0]), cmp_str);
	assert_string_equal(d.seen[0], "1-2@1705184000");
	assert_string_equal(d.seen[1], "3-3@1706048000");
	assert_string_equal(d.seen[2], "old@1705961600");

	assert_int_equal(mt_ledger_mark_deleted_uids(f, 1, 3), 0);
	assert_int_equal(mt_ledger_mark_deleted(p, "old"), 0);
	assert_int_equal(mt_ledger_mark_deleted(p, "never-seen"), 0);
	d.n = 0;
	assert_int_equal(mt_ledger_due_for_deletion(f, now, 30 * day, due_cb,
	    &d), 0);
	assert_int_equal(mt_ledger_due_for_deletion(p, now, 0, due_cb, &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.seen[0], "new@1708639999");
	/* The callback's non-zero value stops the walk and comes back. */
	d.n = 31;
	assert_int_equal(mt_ledger_due_for_deletion(p, now, 0, due_cb, &d), 1);
	assert_int_equal(mt_ledger_close(l), 0);
}

static void
test_forget_missing(void **state)
{
	static const char *const listing[] = { "a", "c" };
	struct mt_ledger *l;
	struct mt_ledger_folder *p;

	(void)state;
	l = open_ok(ACCOUNT);
	p = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	deliver(p, "a", "t", 0, T0);
	deliver(p, "b", "t", 0, T0);
	deliver(p, "c", "t", 0, T0);
	deliver(p, "d", "t", 0, T0);
	assert_int_equal(mt_ledger_mark_deleted(p, "a"), 0);
	assert_int_equal(mt_ledger_mark_deleted(p, "b"), 0);
	/* b: deleted and gone; a: deleted, still listed (ask again); d:
	 * gone but never deleted by us: kept. */
	assert_int_equal(mt_ledger_forget_missing(p, listing, 2), 1);
	assert_int_equal(mt_ledger_close(l), 0);
	l = open_ok(ACCOUNT);
	p = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	assert_int_equal(flags(p, "a"), MT_LEDGER_DELIVERED | MT_LEDGER_DELETED);
	assert_int_equal(flags(p, "b"), 0);
	assert_int_equal(flags(p, "d"), MT_LEDGER_DELIVERED);
	assert_int_equal(mt_ledger_forget_missing(p, listing, 2), 0);
	assert_int_equal(mt_ledger_close(l), 0);
}

/* Many POP3 UIDLs: the table grows and survives removals. */
static void
test_pop3_many(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *p;
	char uidl[32];
	const char **list;
	int i;

	(void)state;
	list = calloc(20000, sizeof(*list));
	assert_non_null(list);
	l = open_ok("pop3://bob@pop.example.org:995");
	p = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	for (i = 0; i < 20000; i++) {
		snprintf(uidl, sizeof(uidl), "UID%08d", i);
		assert_int_equal(mt_ledger_done(p, uidl, T0), 0);
		if (i % 2 == 0)
			assert_int_equal(mt_ledger_mark_deleted(p, uidl), 0);
		list[i] = NULL;
	}
	for (i = 0; i < 10000; i++) {
		snprintf(uidl, sizeof(uidl), "UID%08d", i + 10000);
		assert_non_null(list[i] = strdup(uidl));
	}
	assert_int_equal(mt_ledger_forget_missing(p, list, 10000), 5000);
	assert_int_equal(mt_ledger_compact(l), 0);
	assert_int_equal(mt_ledger_close(l), 0);
	l = open_ok("pop3://bob@pop.example.org:995");
	p = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	for (i = 0; i < 20000; i++) {
		snprintf(uidl, sizeof(uidl), "UID%08d", i);
		if (i < 10000 && i % 2 == 0)
			assert_int_equal(flags(p, uidl), 0);
		else
			assert_true(flags(p, uidl) & MT_LEDGER_DELIVERED);
	}
	assert_int_equal(mt_ledger_close(l), 0);
	for (i = 0; i < 10000; i++)
		free((char *)list[i]);
	free(list);
}

/* ---- misuse and user-visible errors ---- */

static void
test_open_errors(void **state)
{
	enum mt_ledger_err err;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	assert_null(mt_ledger_open(path, ACCOUNT, 0, 0, NULL, &err));
	assert_int_equal(err, MT_LEDGER_EIO);
	assert_non_null(strstr(logbuf, "state directory /tmp/mt-ledger-"));
	assert_non_null(strstr(logbuf, "/missing: does not exist"));
	snprintf(path, sizeof(path), "%s/file", tmpdir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	assert_null(mt_ledger_open(path, ACCOUNT, 0, 0, NULL, &err));
	assert_non_null(strstr(logbuf, "/file: not a directory"));
	assert_null(mt_ledger_open(tmpdir, "", 0, 0, NULL, &err));
	assert_int_equal(err, MT_LEDGER_EINVAL);
	assert_non_null(strstr(logbuf, "ledger: invalid account name"));
}

static void
test_errors(void **state)
{
	struct mt_ledger *l;
	struct mt_ledger_folder *f, *p;
	struct mt_ledger_entry e;
	char longtok[600];

	(void)state;
	l = open_ok(ACCOUNT);
	assert_null(mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 0));
	assert_non_null(strstr(logbuf, "ledger: invalid folder"));
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 1);
	p = mt_ledger_folder(l, MT_LEDGER_POP3, NULL, 0);
	logbuf[0] = '\0';
	assert_int_equal(mt_ledger_lookup(f, "042", &e), -1);
	assert_int_equal(mt_ledger_lookup(f, "0", &e), -1);
	assert_int_equal(mt_ledger_lookup(f, "4294967296", &e), -1);
	assert_int_equal(mt_ledger_lookup(f, "4294967295", &e), 0);
	assert_non_null(strstr(logbuf, "folder INBOX: invalid UID \"042\""));
	assert_int_equal(mt_ledger_lookup(p, "with space", &e), -1);
	assert_non_null(strstr(logbuf, "folder POP3: invalid UIDL (1-70 "
	    "printable characters) \"with%20space\""));
	assert_int_equal(mt_ledger_lookup(p, "", &e), -1);
	memset(longtok, 'x', 71);
	longtok[71] = '\0';
	assert_int_equal(mt_ledger_lookup(p, longtok, &e), -1);
	longtok[70] = '\0';
	assert_int_equal(mt_ledger_lookup(p, longtok, &e), 0);
	assert_false(mt_ledger_is_done(p, "bad uidl"));

	assert_int_equal(mt_ledger_intent(f, "1", "", 0), -1);
	assert_non_null(strstr(logbuf, "folder INBOX: message 1: invalid "
	    "delivery token"));
	memset(longtok, 'x', 513);
	longtok[513] = '\0';
	assert_int_equal(mt_ledger_intent(f, "1", longtok, 0), -1);
	longtok[512] = '\0';
	assert_int_equal(mt_ledger_intent(f, "1", longtok, 0), 0);
	assert_int_equal(mt_ledger_intent(f, "1", "again", 0), -1);
	assert_non_null(strstr(logbuf, "folder INBOX: message 1 has an "
	    "unresolved delivery; recover it first"));
	assert_int_equal(mt_ledger_done(f, "1", T0), 0);
	assert_int_equal(mt_ledger_done(f, "1", T0), -1);
	assert_non_null(strstr(logbuf, "folder INBOX: message 1 is already "
	    "done\n"));
	assert_int_equal(mt_ledger_abandon(f, "2"), 0);	/* nothing to do */
	assert_int_equal(mt_ledger_forget_missing(f, NULL, 0), -1);
	assert_non_null(strstr(logbuf, "ledger: forget_missing is for POP3 "
	    "folders"));
	assert_int_equal(mt_ledger_mark_deleted_uids(f, 0, 3), -1);
	assert_non_null(strstr(logbuf, "folder INBOX: invalid UID range\n"));
	assert_int_equal(mt_ledger_mark_deleted(f, "x"), -1);
	assert_int_equal(mt_ledger_mark_deleted(p, "a b"), -1);
	assert_non_null(strstr(logbuf, "POP3: invalid UIDL\n"));
	assert_int_equal(mt_ledger_mark_seen_uidls(p,
	    (const char *const[]){ "ok", "not ok" }, 2), -1);
	assert_non_null(strstr(logbuf, "POP3: invalid UIDL in the listing "
	    "(1-70 printable characters)"));
	assert_int_equal(mt_ledger_match(p, "x", 5), -1);
	assert_int_equal(mt_ledger_close(l), 0);

	assert_string_equal(mt_ledger_errstr(MT_LEDGER_EBUSY), "account busy");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_checksum_and_zeros,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_middle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_damaged_snapshot, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_journal_epochs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fingerprint, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_uidvalidity, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_uidvalidity_pending, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_range_compression, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_coarse_times, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bulk_mark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_due_for_deletion, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_forget_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pop3_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	T0 = time(NULL) - 3600;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
