/*
 * The crash proof at the level of ledger + targets. A workload plays the
 * fetcher: for each target (maildir, dir, mbox) it resolves what a crash
 * left pending, then delivers M messages with the two-phase protocol, and
 * "deletes on the server" what the ledger says is durably delivered. A
 * simulated server stops offering a message once it was deleted there.
 *
 * The workload is killed with SIGKILL:
 *   - at every Nth system call (ptrace stops it at syscall entry, so the
 *     kill lands between two syscalls), for N spread over the whole run;
 *   - at random times, so that some kills land inside a syscall.
 * Between the kill and the rerun, a "mail reader" sometimes takes files out
 * of new/ and the scanned folder. After the rerun every message must be
 * there exactly once (content checked), the ledger must say done with no
 * intent left, and every message deleted on the server must be delivered.
 *
 * "test_deliver_crash --bench [N [MAXKB]]" measures delivery speed instead
 * (N messages of 2 KB to MAXKB, next to plain fdatasync'ed files).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "mailtunnel/deliver.h"
#include "mailtunnel/ledger.h"
#include "mailtunnel/log.h"

#define NTARGETS	3
#define MAXMSG		64
#define DATE		1700000000

static const char *const kinds[NTARGETS] = { "maildir", "dir", "mbox" };
static char root[128];			/* scratch dir of one round */
static unsigned nmsg = 4;		/* messages per target */
static unsigned body_max = 6000;	/* bytes of body, at most */

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		return -1;						\
	}								\
} while (0)

/* ---- messages ---- */

/* Body lines to cut messages from (made once; some start with "From "). */
static const char *
body_lines(size_t *len)
{
	static char block[200 * 1024];
	static size_t n;
	unsigned line;

	for (line = 0; n == 0 || n + 100 < sizeof(block); line++)
		n += (size_t)snprintf(block + n, sizeof(block) - n, line % 7 == 3 ?
		    "From line %u, quoted in mbox\r\n" :
		    "line %u: lorem ipsum dolor sit amet, consectetur\r\n", line);
	*len = n;
	return block;
}

/* Message i as the wire gives it (CRLF); *len set. Static buffer. */
static const char *
message(unsigned i, size_t *len)
{
	static char buf[256 * 1024];
	size_t n, blen, body = 200 + (i * 7919u) % body_max;
	const char *block = body_lines(&blen), *end;

	if (nmsg > MAXMSG)		/* the speed test: 2 KB and up */
		body = 2048 + (i * 7919u) % body_max;
	n = (size_t)snprintf(buf, sizeof(buf), "Message-ID: <%u@crash.test>\r\n"
	    "Subject: message %u\r\n\r\n", i, i);
	if (body > blen)
		body = blen;
	end = memchr(block + body - 1, '\n', blen - body + 1);
	body = (size_t)(end + 1 - block);
	memcpy(buf + n, block, body);
	*len = n + body;
	return buf;
}

/* The same message as a target stores it (LF, maybe >From). */
static char *
stored(unsigned i, int lf, int quote, size_t *len)
{
	size_t n, k, o = 0;
	const char *w = message(i, &n);
	char *out = malloc(2 * n + 1);

	for (k = 0; out != NULL && k < n; k++) {
		if (lf && w[k] == '\r' && k + 1 < n && w[k + 1] == '\n')
			continue;
		if (quote && (k == 0 || w[k - 1] == '\n') &&
		    strncmp(w + k, "From ", 5) == 0)
			out[o++] = '>';
		out[o++] = w[k];
	}
	if (out != NULL)
		out[o] = '\0';
	*len = o;
	return out;
}

/* ---- the workload ---- */

struct job {
	struct event_base *base;
	struct mt_ledger *l;
	struct mt_ledger_folder *f;
	struct mt_deliver *t;
	int kind;
	int done;			/* callback flag */
	int status;
	char token[MT_DELIVER_TOKEN_MAX + 1];
};

static void
on_result(void *arg, enum mt_deliver_status st, const char *token,
    const char *reason)
{
	struct job *j = arg;

	(void)reason;
	j->done = 1;
	j->status = (int)st;
	snprintf(j->token, sizeof(j->token), "%s", token ? token : "");
}

static void
on_verdict(void *arg, enum mt_deliver_verdict v, const char *reason)
{
	struct job *j = arg;

	(void)reason;
	j->done = 1;
	j->status = (int)v;
}

static void
spin(struct job *j)
{
	while (!j->done)
		event_base_loop(j->base, EVLOOP_ONCE);
	j->done = 0;
}

static const char *
spath(const char *name, int kind)
{
	static char buf[2][256];
	static int i;

	i ^= 1;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s-%s", root, name, kinds[kind]);
	return buf[i];
}

/* The server: a message is gone once its UID is in the deleted file. */
static int
server_has(int kind, unsigned uid)
{
	char line[32];
	FILE *fp = fopen(spath("server-deleted", kind), "r");
	int gone = 0;

	while (fp != NULL && !gone && fgets(line, sizeof(line), fp) != NULL)
		gone = (unsigned)atoi(line) == uid;
	if (fp != NULL)
		fclose(fp);
	return !gone;
}

static int
server_delete(void *arg, const char *uidl, uint32_t lo, uint32_t hi,
    time_t when)
{
	struct job *j = arg;
	char line[32];
	uint32_t u;
	int fd;

	(void)uidl;
	(void)when;
	fd = open(spath("server-deleted", j->kind), O_WRONLY | O_APPEND |
	    O_CREAT, 0600);
	for (u = lo; fd >= 0 && u <= hi; u++) {
		snprintf(line, sizeof(line), "%u\n", u);
		if (write(fd, line, strlen(line)) < 0)
			return -1;
	}
	if (fd < 0 || fsync(fd) == -1 || close(fd) == -1)
		return -1;
	/* Deleted there for sure: now the ledger may say so. */
	return mt_ledger_mark_deleted_uids(j->f, lo, hi) == -1 ? -1 : 0;
}

/* Settle what a crash left: 0 or an exit code. */
static int
resolve(struct job *j)
{
	struct mt_ledger_pending *p;
	char key[MT_DELIVER_KEY_MAX + 1];
	int verdict[MAXMSG];
	long n, i;
	int rc = 0;

	if ((n = mt_ledger_pending(j->l, &p)) < 0 || n > MAXMSG)
		return 20;
	for (i = 0; i < n && rc == 0; i++) {
		snprintf(key, sizeof(key), "m%s", p[i].key);
		if (mt_deliver_recover(j->t, key, p[i].token, on_verdict, j)
		    == -1)
			return 21;
		spin(j);
		verdict[i] = j->status;
		if (j->status == MT_DELIVER_DELIVERED)
			rc = mt_ledger_done(p[i].folder, p[i].key, 0) ? 22 : 0;
		else if (j->status == MT_DELIVER_NOT_DELIVERED)
			rc = mt_ledger_abandon(p[i].folder, p[i].key) ? 23 : 0;
		else
			rc = 24;
	}
	/* Leftovers go only once the abandon is durable. */
	if (rc == 0 && mt_ledger_commit(j->l) == -1)
		rc = 25;
	for (i = 0; i < n && rc == 0; i++)
		if (verdict[i] == MT_DELIVER_NOT_DELIVERED)
			mt_deliver_discard(j->t, p[i].token);
	mt_ledger_pending_free(p, n);
	return rc;
}

/* One message through both phases: 0 or an exit code. */
static int
deliver_one(struct job *j, unsigned i)
{
	struct mt_deliver_meta meta = { 0 };
	struct mt_deliver_msg *m;
	char uid[16], key[16], id[32];
	const char *w;
	size_t len, off, k;

	snprintf(uid, sizeof(uid), "%u", i);
	snprintf(key, sizeof(key), "m%u", i);
	snprintf(id, sizeof(id), "<%u@crash.test>", i);
	meta.uid = uid;
	meta.key = key;
	meta.date = DATE + (time_t)i * 60;
	w = message(i, &len);
	if ((m = mt_deliver_begin(j->t, &meta)) == NULL)
		return 30;
	for (off = 0; off < len; off += k) {
		k = len - off < 16384 ? len - off : 16384;
		if (mt_deliver_write(m, w + off, k) == -1)
			break;
	}
	mt_deliver_end(m, on_result, j);
	spin(j);
	if (j->status != MT_DELIVER_OK)
		return 31;
	if (mt_ledger_intent(j->f, uid, j->token,
	    mt_ledger_fingerprint(id, NULL, len)) == -1 ||
	    mt_ledger_commit(j->l) == -1) {
		mt_deliver_abort(m);
		return 32;
	}
	mt_deliver_commit(m, on_result, j);
	spin(j);
	if (j->status != MT_DELIVER_OK)
		return 33;
	/* done is made durable by the next commit (group commit). */
	return mt_ledger_done(j->f, uid, 0) == -1 ? 34 : 0;
}

/* The target alone, for the speed measurement. */
static int
deliver_bare(struct job *j, unsigned i)
{
	struct mt_deliver_meta meta = { 0 };
	struct mt_deliver_msg *m;
	char key[16];
	const char *w;
	size_t len;

	snprintf(key, sizeof(key), "m%u", i);
	meta.key = key;
	meta.date = DATE + (time_t)i * 60;
	w = message(i, &len);
	if ((m = mt_deliver_begin(j->t, &meta)) == NULL ||
	    mt_deliver_write(m, w, len) == -1)
		return 30;
	mt_deliver_end(m, on_result, j);
	spin(j);
	if (j->status != MT_DELIVER_OK)
		return 31;
	mt_deliver_commit(m, on_result, j);
	spin(j);
	return j->status == MT_DELIVER_OK ? 0 : 33;
}

static int
run_target(struct event_base *base, int kind)
{
	char spec[300], account[64], err[200], uid[16];
	struct job j = { .base = base, .kind = kind };
	unsigned i;
	int rc;

	snprintf(account, sizeof(account), "imap://crash@test:993/%s",
	    kinds[kind]);
	snprintf(spec, sizeof(spec), "%s:%s", kinds[kind],
	    spath(kind == 2 ? "box" : "target", kind));
	j.l = mt_ledger_open(root, account, MT_LEDGER_WAIT, 10000, NULL, NULL);
	if (j.l == NULL)
		return 10;
	mt_ledger_set_compact_threshold(j.l, 400);
	if ((j.t = mt_deliver_open(spec, base, NULL, err, sizeof(err))) == NULL)
		return 11;
	j.f = mt_ledger_folder(j.l, MT_LEDGER_IMAP, "INBOX", 7);
	if (j.f == NULL || (rc = resolve(&j)) != 0)
		return j.f == NULL ? 12 : rc;
	for (i = 1, rc = 0; i <= nmsg && rc == 0; i++) {
		snprintf(uid, sizeof(uid), "%u", i);
		if (!server_has(kind, i) || mt_ledger_is_done(j.f, uid))
			continue;
		rc = deliver_one(&j, i);
		if (rc == 0 && i % 2 == 0 &&
		    mt_ledger_due_for_deletion(j.f, time(NULL), 0,
		    server_delete, &j) != 0)
			rc = 40;
	}
	if (rc == 0 && mt_ledger_close(j.l) == -1)
		rc = 41;
	mt_deliver_close(j.t);
	return rc;
}

/* The whole workload, in a child: returns its exit code. */
static int
workload(void)
{
	struct event_base *base;
	int kind, rc = 0;

	mt_log_set_level(getenv("MT_CRASH_DEBUG") ? MT_LOG_DEBUG : MT_LOG_ERR);
	if ((base = event_base_new()) == NULL)
		return 2;
	for (kind = 0; kind < NTARGETS && rc == 0; kind++)
		rc = run_target(base, kind);
	event_base_free(base);
	return rc;
}

/* ---- checking a round ---- */

static int consumed[NTARGETS][MAXMSG + 1];	/* taken by a "reader" */

static int
check_content(int kind, unsigned i, const char *got, size_t glen)
{
	size_t wlen;
	char *want = stored(i, kind != 1, kind == 2, &wlen);
	int ok = want != NULL && glen == wlen + (kind == 2) &&
	    memcmp(got, want, wlen) == 0;

	free(want);
	CHECK(ok, "%s: message %u differs from what was sent", kinds[kind], i);
	return 0;
}

static char *
read_all(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY);

	if (fd >= 0 && fstat(fd, &st) == 0 &&
	    (buf = malloc((size_t)st.st_size + 1)) != NULL &&
	    read(fd, buf, (size_t)st.st_size) == st.st_size) {
		buf[st.st_size] = '\0';
		*len = (size_t)st.st_size;
	} else {
		free(buf);
		buf = NULL;
	}
	if (fd >= 0)
		close(fd);
	return buf;
}

/* Count the messages of a maildir (new/, cur/) or dir: folder. */
static int
count_files(int kind, const char *dir, const char *pat, int *count)
{
	char path[600], *body;
	struct dirent *de;
	unsigned i;
	size_t len;
	DIR *d = opendir(dir);
	int rc = 0;

	CHECK(d != NULL, "cannot open %s", dir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strstr(de->d_name, pat) == NULL)
			continue;
		i = (unsigned)atoi(strstr(de->d_name, pat) + strlen(pat));
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (i < 1 || i > nmsg || (body = read_all(path, &len)) == NULL) {
			rc = -1;
			break;
		}
		count[i]++;
		rc = check_content(kind, i, body, len);
		free(body);
	}
	closedir(d);
	return rc;
}

static int
count_mbox(int *count)
{
	size_t len, hl;
	char *box = read_all(spath("box", 2), &len), *p, *next, *hdr;
	unsigned i;
	int rc = 0;

	if (box == NULL)
		return 0;		/* nothing delivered yet */
	for (p = box; rc == 0 && p < box + len; p = next) {
		CHECK(strncmp(p, "From ", 5) == 0, "mbox: garbage at %ld",
		    (long)(p - box));
		next = strstr(p, "\nFrom ");
		next = next ? next + 1 : box + len;
		hdr = strchr(p, '\n') + 1;
		CHECK(strncmp(hdr, "X-Mailtunnel-Id: m", 18) == 0,
		    "mbox: a message without our header");
		i = (unsigned)atoi(hdr + 18);
		hl = (size_t)(strchr(hdr, '\n') + 1 - p);
		CHECK(i >= 1 && i <= nmsg, "mbox: bad key");
		count[i]++;
		rc = check_content(2, i, p + hl, (size_t)(next - p) - hl);
	}
	free(box);
	return rc;
}

static int
check_ledger(int kind)
{
	struct mt_ledger_pending *p;
	struct mt_ledger_folder *f;
	struct mt_ledger *l;
	char account[64], uid[16];
	unsigned i;
	long n;

	snprintf(account, sizeof(account), "imap://crash@test:993/%s",
	    kinds[kind]);
	l = mt_ledger_open(root, account, MT_LEDGER_NOWAIT, 0, NULL, NULL);
	CHECK(l != NULL, "%s: ledger does not open", kinds[kind]);
	f = mt_ledger_folder(l, MT_LEDGER_IMAP, "INBOX", 7);
	n = mt_ledger_pending(l, &p);
	mt_ledger_pending_free(p, n);
	for (i = 1; i <= nmsg && n == 0; i++) {
		snprintf(uid, sizeof(uid), "%u", i);
		if (!mt_ledger_is_done(f, uid))
			n = -1;
	}
	mt_ledger_close(l);
	CHECK(n == 0, "%s: the ledger disagrees", kinds[kind]);
	return 0;
}

static int
verify(void)
{
	int count[NTARGETS][MAXMSG + 1] = { { 0 } };
	char dir[300];
	unsigned i;
	int kind;

	snprintf(dir, sizeof(dir), "%s/new", spath("target", 0));
	if (count_files(0, dir, ".mt-m", count[0]) == -1)
		return -1;
	snprintf(dir, sizeof(dir), "%s/cur", spath("target", 0));
	if (count_files(0, dir, ".mt-m", count[0]) == -1 ||
	    count_files(1, spath("target", 1), "-m", count[1]) == -1 ||
	    count_mbox(count[2]) == -1)
		return -1;
	for (kind = 0; kind < NTARGETS; kind++) {
		for (i = 1; i <= nmsg; i++)
			CHECK(count[kind][i] + consumed[kind][i] == 1,
			    "%s: message %u is there %d times", kinds[kind], i,
			    count[kind][i] + consumed[kind][i]);
		if (check_ledger(kind) == -1)
			return -1;
	}
	return 0;
}

/* A mail reader at work while the fetcher is down. */
static void
reader(unsigned *seed)
{
	char dir[300], from[600], to[700];
	struct dirent *de;
	const char *pat[2] = { ".mt-m", "-m" };
	int kind, r;
	DIR *d;

	for (kind = 0; kind < 2; kind++) {
		snprintf(dir, sizeof(dir), kind == 0 ? "%s/new" : "%s",
		    spath("target", kind));
		if ((d = opendir(dir)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' || (r = rand_r(seed) % 3) == 0 ||
			    strstr(de->d_name, pat[kind]) == NULL)
				continue;
			snprintf(from, sizeof(from), "%s/%s", dir, de->d_name);
			snprintf(to, sizeof(to), "%s/cur/%s:2,S",
			    spath("target", 0), de->d_name);
			if (kind == 0 && r == 1) {
				rename(from, to);
			} else if (unlink(from) == 0) {
				consumed[kind][atoi(strstr(de->d_name,
				    pat[kind]) + strlen(pat[kind]))] = 1;
			}
		}
		closedir(d);
	}
}

/* ---- rounds ---- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
round_begin(void)
{
	strcpy(root, "/tmp/mt-crash-XXXXXX");
	memset(consumed, 0, sizeof(consumed));
	return mkdtemp(root) == NULL ? -1 : 0;
}

static void
round_end(void)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int
run_child(void)
{
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0)
		_exit(workload());
	return wait_child(pid);
}

/*
 * Run the workload under ptrace and kill it at the entry of its n-th
 * system call. Returns 1 when killed, 0 when it ended first (its exit code
 * in *code, its number of system calls in *calls), -2 when ptrace is not
 * allowed here, -1 on trouble.
 */
#define NO_PTRACE 77
static int
traced(long n, long *calls, int *code)
{
	long entries = 0;
	int status, entering = 1, sig = 0;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == -1)
			_exit(NO_PTRACE);
		raise(SIGSTOP);
		_exit(workload());
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == NO_PTRACE)
		return -2;
	if (ptrace(PTRACE_SETOPTIONS, pid,
	    NULL, (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)))
		return -1;
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig) == -1 ||
		    waitpid(pid, &status, 0) != pid)
			return -1;
		sig = 0;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			*code = WIFEXITED(status) ? WEXITSTATUS(status) : 99;
			*calls = entries;
			return 0;
		}
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			sig = WSTOPSIG(status);		/* pass it on */
			continue;
		}
		if (entering && ++entries == n) {
			kill(pid, SIGKILL);
			wait_child(pid);
			return 1;
		}
		entering = !entering;
	}
}

/* After a kill: maybe a reader, then the rerun, then the checks. */
static int
rerun_and_verify(unsigned *seed)
{
	int code;

	if (rand_r(seed) % 3 == 0)
		reader(seed);
	if ((code = run_child()) != 0) {
		fprintf(stderr, "FAIL: the rerun after the kill exited %d\n",
		    code);
		return -1;
	}
	return verify();
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run fn in nw worker processes at once (the work waits on fsync). */
static int
parallel(int nw, int (*fn)(int w, int nw, int *kills), int *kills)
{
	int *cnt, w, failed = 0;
	pid_t pids[8];

	cnt = mmap(NULL, sizeof(int) * (size_t)nw, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (cnt == MAP_FAILED || nw > 8)
		return -1;
	fflush(NULL);
	for (w = 0; w < nw; w++) {
		cnt[w] = 0;
		if ((pids[w] = fork()) == 0)
			_exit(fn(w, nw, &cnt[w]) == 0 ? 0 : 1);
	}
	for (w = 0; w < nw; w++) {
		failed |= wait_child(pids[w]) != 0;
		*kills += cnt[w];
	}
	munmap(cnt, sizeof(int) * (size_t)nw);
	return failed ? -1 : 0;
}

static unsigned base_seed;
static long total_calls;
static int syscall_points = 150, timed_rounds = 24;
static double full_run;

/* Worker w kills at every nw-th of the chosen system calls. */
static int
syscall_worker(int w, int nw, int *kills)
{
	long n, step, calls;
	unsigned seed = base_seed + (unsigned)w;
	int code, rc, k = 0;

	step = (total_calls + syscall_points - 1) / syscall_points;
	for (n = 1; n <= total_calls; n += step, k++) {
		if (k % nw != w)
			continue;
		if (round_begin() == -1)
			return -1;
		rc = traced(n + (long)(rand_r(&seed) % (unsigned long)step),
		    &calls, &code);
		if (rc == 1)
			(*kills)++;
		if (rc == -1 || (rc == 0 && code != 0) ||
		    rerun_and_verify(&seed) == -1) {
			fprintf(stderr, "FAIL: killed near system call %ld "
			    "(seed %u, left in %s)\n", n, base_seed, root);
			return -1;
		}
		round_end();
	}
	return 0;
}

/* Worker w: kills at random times, so some land inside a write. */
static int
timed_worker(int w, int nw, int *kills)
{
	unsigned seed = base_seed + 100 + (unsigned)w;
	pid_t pid;
	int r;

	for (r = w; r < timed_rounds; r += nw) {
		if (round_begin() == -1)
			return -1;
		fflush(NULL);
		if ((pid = fork()) == 0)
			_exit(workload());
		usleep((useconds_t)(full_run * 1e6 * (rand_r(&seed) % 1000) /
		    1000));
		if (kill(pid, SIGKILL) == 0 && wait_child(pid) == 128 + SIGKILL)
			(*kills)++;
		if (rerun_and_verify(&seed) == -1) {
			fprintf(stderr, "FAIL: in timed round %d (seed %u, left "
			    "in %s)\n", r, base_seed, root);
			return -1;
		}
		round_end();
	}
	return 0;
}

/* A clean run first: it must pass, and it sizes the kill points. */
static int
clean_run(int use_ptrace)
{
	double t0 = now_s();
	int code = -1, rc;

	if (round_begin() == -1)
		return -1;
	if (use_ptrace && (rc = traced(-1, &total_calls, &code)) != 0)
		code = rc == -2 ? (round_end(), -2) : -1;
	else if (!use_ptrace)
		code = run_child();
	if (code == -2)
		return -2;
	full_run = now_s() - t0;
	if (code != 0 || verify() == -1) {
		fprintf(stderr, "FAIL: the workload does not run cleanly\n");
		return -1;
	}
	round_end();
	return 0;
}

/* ---- speed ---- */

/* Processor time in user space (the kernel's share is mostly fsync). */
static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
}

/*
 * n messages into one target; messages per second, *mbs the bytes per
 * second, *cpu_us the processor time per message (what is left when
 * fsync costs nothing).
 */
static double
bench_one(int kind, unsigned n, int with_ledger, double *mbs, double *cpu_us)
{
	struct event_base *base = event_base_new();
	struct job j = { .base = base, .kind = kind };
	char spec[300], err[200];
	size_t len, bytes = 0;
	double t0, c0, dt;
	unsigned i;

	snprintf(spec, sizeof(spec), "%s:%s", kinds[kind],
	    spath(kind == 2 ? "box" : "target", kind));
	j.l = mt_ledger_open(root, kinds[kind], MT_LEDGER_NOWAIT, 0, NULL,
	    NULL);
	j.t = mt_deliver_open(spec, base, NULL, err, sizeof(err));
	j.f = j.l ? mt_ledger_folder(j.l, MT_LEDGER_IMAP, "INBOX", 1) : NULL;
	if (j.f == NULL || j.t == NULL)
		return -1;
	t0 = now_s();
	c0 = cpu_s();
	for (i = 1; i <= n; i++) {
		message(i, &len);
		bytes += len;
		if (with_ledger ? deliver_one(&j, i) != 0 :
		    deliver_bare(&j, i) != 0)
			return -1;
	}
	if (mt_ledger_close(j.l) == -1)
		return -1;
	dt = now_s() - t0;
	*cpu_us = (cpu_s() - c0) * 1e6 / n;
	mt_deliver_close(j.t);
	event_base_free(base);
	*mbs = (double)bytes / dt / 1e6;
	return n / dt;
}

/*
 * The floor: the same messages written to plain files, each fdatasync'ed,
 * nothing else. Messages per second.
 */
static double
floor_rate(unsigned n)
{
	double t0;
	char path[200];
	const char *w;
	size_t len;
	unsigned i;
	int fd;

	if (round_begin() == -1)
		return -1;
	t0 = now_s();
	for (i = 1; i <= n; i++) {
		w = message(i, &len);
		snprintf(path, sizeof(path), "%s/f%u", root, i);
		if ((fd = open(path, O_CREAT | O_WRONLY, 0600)) == -1 ||
		    write(fd, w, len) != (ssize_t)len || fdatasync(fd) == -1 ||
		    close(fd) == -1)
			return -1;
	}
	round_end();
	return n / (now_s() - t0);
}

static int
bench(unsigned n, unsigned max_kb)
{
	double rate, mbs, cpu;
	int kind, led;

	nmsg = n;
	body_max = max_kb * 1024 - 2048;
	printf("%u messages of 2-%u KB, each durable before the next\n", n,
	    max_kb);
	printf("  floor: plain files, fdatasync each: %.0f messages/s\n",
	    floor_rate(n));
	for (kind = 0; kind < NTARGETS; kind++) {
		for (led = 0; led < 2; led++) {
			if (round_begin() == -1)
				return 1;
			rate = bench_one(kind, n, led, &mbs, &cpu);
			round_end();
			if (rate < 0)
				return 1;
			printf("  %-8s %-12s %6.0f messages/s %6.1f MB/s, "
			    "user cpu %3.0f us/message\n", kinds[kind],
			    led ? "+ ledger" : "target only", rate, mbs, cpu);
		}
	}
	printf("  floor again: %.0f messages/s\n", floor_rate(n));
	return 0;
}

int
main(int argc, char **argv)
{
	int kills = 0, timed = 0, rc;
	double t0 = now_s();

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "--bench") == 0)
		return bench(argc > 2 ? (unsigned)atoi(argv[2]) : 2000,
		    argc > 3 ? (unsigned)atoi(argv[3]) : 120);
	/* test_deliver_crash [points [rounds [seed]]] */
	if (argc > 1)
		syscall_points = atoi(argv[1]);
	if (argc > 2)
		timed_rounds = atoi(argv[2]);
	base_seed = argc > 3 ? (unsigned)atoi(argv[3]) : (unsigned)time(NULL);
	printf("seed %u\n", base_seed);
	if ((rc = clean_run(1)) == -2) {
		/* Yama or seccomp forbids ptrace: random times only, more. */
		printf("ptrace is not allowed here; killing at random times "
		    "only\n");
		timed_rounds += syscall_points;
	} else if (rc == -1 || parallel(3, syscall_worker, &kills) == -1) {
		return 1;
	} else {
		printf("%d kills at system call boundaries (of %ld calls)\n",
		    kills, total_calls);
	}
	nmsg = 5;
	body_max = 40 * 1024;
	if (clean_run(0) == -1 || parallel(3, timed_worker, &timed) == -1)
		return 1;
	printf("%d kills at random times (a full run takes %.0f ms)\n", timed,
	    full_run * 1e3);
	printf("%d kills in all, every message there exactly once; %.1f s\n",
	    kills + timed, now_s() - t0);
	return 0;
}
