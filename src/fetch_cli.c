/*
 * fetch_cli: "mailtunnel fetch URL --deliver TARGET ...", one fetch from
 * the command line without a configuration file. Parses the options into
 * a struct mt_fetch_conf, runs one job on an event loop of its own, shows
 * progress on a terminal, and returns the exit code for main() to exit
 * with.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/event.h>

#include "fetch_cli.h"
#include "mailtunnel/config.h"
#include "mailtunnel/fetch.h"
#include "mailtunnel/fetch_url.h"
#include "mailtunnel/log.h"
#include "mailtunnel/util.h"

static void
usage(FILE *out)
{
	fprintf(out,
"Usage: mailtunnel fetch URL --deliver TARGET [OPTIONS]\n"
"       mailtunnel fetch -c CONFIG [-v] [SERVICE...]\n"
"\n"
"Download the mail of one account over verified TLS and deliver each\n"
"message exactly once, then exit.\n"
"\n"
"URL:  pop3s://USER@HOST[:PORT]             POP3, TLS from the start (995)\n"
"      imaps://USER@HOST[:PORT][/MAILBOX]   IMAP, TLS from the start (993)\n"
"      pop3://... imap://...                STARTTLS (required; 110, 143)\n"
"      Write @ in a user name as %%40; ;AUTH=MECH may follow the user.\n"
"\n"
"TARGET: maildir:DIR, dir:DIR (one NAME.eml per message), mbox:FILE,\n"
"      mda:COMMAND (the message on its stdin), smtp://HOST[:PORT],\n"
"      smtps://..., lmtp:/SOCKET, lmtp://HOST[:PORT] (see mailtunnel(8)).\n"
"\n"
"Options:\n"
"  -d, --deliver TARGET       where the messages go (required)\n"
"      --password-file FILE   password on the first line (mode 0600)\n"
"      --password-command CMD the password is the first line CMD prints\n"
"      --token-command CMD    an OAuth access token (XOAUTH2, OAUTHBEARER)\n"
"      --ca-file FILE         trust these CAs instead of the system store\n"
"      --state DIR            fetch state (default: ~/.local/state/\n"
"                             mailtunnel, /var/lib/mailtunnel as mailtunnel)\n"
"      --delete               delete messages on the server once delivered\n"
"      --keep DURATION        delete them that long after delivery (30d)\n"
"      --max-size SIZE        skip bigger messages (10M; they stay)\n"
"      --first-run all|new    first run: fetch everything (default) or\n"
"                             only mail that arrives from now on\n"
"      --folder NAME          IMAP folder to fetch (repeat; default INBOX)\n"
"      --recipient ADDR       envelope recipient for mda, smtp and lmtp\n"
"      --recipient-header F   take it from these header fields instead\n"
"                             (Delivered-To,X-Envelope-To), ADDR if none\n"
"      --sender ADDR          envelope sender (default: Return-Path)\n"
"  -v, --verbose              more detail (twice: protocol traces)\n"
"  -h, --help                 show this help\n"
"\n"
"Exit: 0 done (also with nothing new), 75 try again later, 77 login\n"
"refused, 78 configuration, 65 bad data from the server, 73 a message was\n"
"refused by the target, 64 usage. See mailtunnel(8).\n");
}

struct cli {
	struct mt_fetch_conf c;
	struct mt_fetch_url url;
	struct mt_tls_conf tls;
	struct mt_deliver_opts dopts;
	const char *folders[MT_FETCH_MAX_FOLDERS + 1];
	size_t nfolders;
	char state[4096];
	int make_state;			/* the default: create it */
	int verbose;
	int progress;			/* stderr is a terminal */
	double last_shown;
	int shown;
	struct event_base *base;
	struct mt_fetch *job;
	struct mt_fetch_result res;
	int got_result;
	int interrupted;
};

enum {
	O_PASSWORD_FILE = 256, O_PASSWORD_COMMAND, O_TOKEN_COMMAND,
	O_CA_FILE, O_STATE, O_DELETE, O_KEEP, O_MAX_SIZE, O_FIRST_RUN,
	O_FOLDER, O_RECIPIENT, O_RECIPIENT_HEADER, O_SENDER,
};

static int config_error(const char *fmt, ...) MT_PRINTF(1, 2);

static int
config_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mailtunnel fetch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return EX_CONFIG;
}

/* One option; 0, or the exit code for a bad value. */
static int
option(struct cli *k, int opt, const char *arg)
{
	unsigned long long v;

	switch (opt) {
	case 'd': k->c.deliver = arg; return 0;
	case O_PASSWORD_FILE: k->c.password_file = arg; return 0;
	case O_PASSWORD_COMMAND: k->c.password_command = arg; return 0;
	case O_TOKEN_COMMAND: k->c.token_command = arg; return 0;
	case O_CA_FILE: k->tls.ca_file = (char *)arg; return 0;
	case O_STATE: k->c.state_dir = arg; return 0;
	case O_RECIPIENT: k->dopts.recipient = arg; return 0;
	case O_RECIPIENT_HEADER: k->dopts.recipient_header = arg; return 0;
	case O_SENDER: k->dopts.sender = arg; return 0;
	case O_DELETE: k->c.delete = 1; return 0;
	case 'v': k->verbose++; return 0;
	case O_KEEP:
		if (mt_parse_duration(arg, &v) == -1)
			return config_error("--keep %s: not a duration (30d, "
			    "12h, 1w)", arg);
		k->c.delete = 1;
		k->c.keep_seconds = v;
		return 0;
	case O_MAX_SIZE:
		if (mt_parse_size(arg, &v) == -1 || v == 0)
			return config_error("--max-size %s: not a size (10M, "
			    "512k)", arg);
		k->c.max_size = v;
		return 0;
	case O_FIRST_RUN:
		if (strcmp(arg, "all") != 0 && strcmp(arg, "new") != 0)
			return config_error("--first-run %s: use all or new",
			    arg);
		k->c.first_run = arg[0] == 'n' ? MT_FETCH_FIRST_NEW :
		    MT_FETCH_FIRST_ALL;
		return 0;
	case O_FOLDER:
		if (k->nfolders == MT_FETCH_MAX_FOLDERS)
			return config_error("too many folders (%s)", "64 at most");
		k->folders[k->nfolders++] = arg;
		return 0;
	default:
		return EX_USAGE;
	}
}

/* Returns -1 on success (go on), else an exit code. */
static int
parse_args(struct cli *k, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "deliver", required_argument, NULL, 'd' },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "password-command", required_argument, NULL,
		    O_PASSWORD_COMMAND },
		{ "token-command", required_argument, NULL, O_TOKEN_COMMAND },
		{ "ca-file", required_argument, NULL, O_CA_FILE },
		{ "state", required_argument, NULL, O_STATE },
		{ "delete", no_argument, NULL, O_DELETE },
		{ "keep", required_argument, NULL, O_KEEP },
		{ "max-size", required_argument, NULL, O_MAX_SIZE },
		{ "first-run", required_argument, NULL, O_FIRST_RUN },
		{ "folder", required_argument, NULL, O_FOLDER },
		{ "recipient", required_argument, NULL, O_RECIPIENT },
		{ "recipient-header", required_argument, NULL,
		    O_RECIPIENT_HEADER },
		{ "sender", required_argument, NULL, O_SENDER },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "d:vh", longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return EX_OK;
		}
		if (opt == '?' || opt == ':') {
			usage(stderr);
			return EX_USAGE;
		}
		if ((rc = option(k, opt, optarg)) != 0)
			return rc;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "mailtunnel fetch: %s\n", optind == argc ?
		    "which account? give a URL" : "one URL, please");
		usage(stderr);
		return EX_USAGE;
	}
	if (k->c.deliver == NULL) {
		fprintf(stderr, "mailtunnel fetch: where to? give --deliver "
		    "TARGET\n");
		usage(stderr);
		return EX_USAGE;
	}
	return -1;
}

/* mkdir -p, the last component 0700. */
static int
make_state_dir(char *path)
{
	char *p;

	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return mkdir(path, 0700) == -1 && errno != EEXIST ? -1 : 0;
}

static int
state_dir(struct cli *k)
{
	struct passwd *pw = getpwuid(geteuid());

	if (k->c.state_dir != NULL)
		return 0;
	if (mt_fetch_state_dir_default(k->state, sizeof(k->state),
	    pw != NULL ? pw->pw_name : NULL, getenv("XDG_STATE_HOME"),
	    getenv("HOME") != NULL ? getenv("HOME") :
	    pw != NULL ? pw->pw_dir : NULL) == -1)
		return config_error("no state directory: give --state DIR");
	k->c.state_dir = k->state;
	k->make_state = 1;
	return 0;
}

static void
progress(void *arg, const struct mt_fetch_progress *p)
{
	struct cli *k = arg;
	double rate;

	if (p->finished) {
		if (k->shown)
			fprintf(stderr, "\033[K");
		k->shown = 0;
		return;
	}
	if (p->seconds - k->last_shown < 0.2 && p->done < p->total)
		return;
	k->last_shown = p->seconds;
	rate = p->seconds > 0 ? (double)p->bytes / p->seconds / 1e6 : 0;
	/* Printed, then back to the start: a log line overwrites it. */
	fprintf(stderr, "\033[K  %s%s%lu/%lu messages, %.1f MB, %.1f MB/s\r",
	    p->folder != NULL ? p->folder : "", p->folder != NULL ? ": " : "",
	    p->done, p->total, (double)p->bytes / 1e6, rate);
	k->shown = 1;
}

static void
done(void *arg, const struct mt_fetch_result *r)
{
	struct cli *k = arg;

	k->res = *r;
	k->got_result = 1;
	k->job = NULL;
	event_base_loopexit(k->base, NULL);
}

static void
interrupted(evutil_socket_t sig, short what, void *arg)
{
	struct cli *k = arg;

	(void)what;
	mt_log(MT_LOG_WARNING, "interrupted (signal %d); what was delivered "
	    "is recorded", (int)sig);
	k->interrupted = 1;
	mt_fetch_cancel(k->job);
	k->job = NULL;
	event_base_loopexit(k->base, NULL);
}

static int
run(struct cli *k)
{
	struct event *sigint, *sigterm;

	if ((k->base = event_base_new()) == NULL) {
		fprintf(stderr, "mailtunnel fetch: out of memory\n");
		return EX_TEMPFAIL;
	}
	sigint = evsignal_new(k->base, SIGINT, interrupted, k);
	sigterm = evsignal_new(k->base, SIGTERM, interrupted, k);
	if (sigint != NULL)
		evsignal_add(sigint, NULL);
	if (sigterm != NULL)
		evsignal_add(sigterm, NULL);
	if ((k->job = mt_fetch_start(k->base, &k->c, done, k)) != NULL)
		event_base_dispatch(k->base);
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	event_base_free(k->base);
	if (k->interrupted || !k->got_result)
		return EX_TEMPFAIL;
	return mt_fetch_exit_code(k->res.status);
}

int
mt_fetch_cli_main(int argc, char **argv)
{
	struct cli k;
	char err[512];
	int rc;

	/* With a configuration file: its fetch services, not a URL. */
	if (argc > 1 && (strcmp(argv[1], "-c") == 0 ||
	    strncmp(argv[1], "--config", 8) == 0))
		return mt_fetch_config_main(argc, argv);
	memset(&k, 0, sizeof(k));
	mt_fetch_conf_init(&k.c);
	k.tls.verify_chain = 1;
	k.c.tls = &k.tls;
	k.c.deliver_opts = &k.dopts;
	k.c.lock_wait_ms = MT_FETCH_WAIT_FOREVER;
	if ((rc = parse_args(&k, argc, argv)) >= 0)
		return rc;
	mt_log_set_level(k.verbose >= 2 ? MT_LOG_DEBUG : k.verbose == 1 ?
	    MT_LOG_INFO : MT_LOG_NOTICE);
	if (mt_fetch_url_parse(argv[optind], &k.url, err, sizeof(err)) == -1)
		return config_error("%s", err);
	mt_fetch_conf_from_url(&k.c, &k.url);
	if (k.url.mailbox[0] != '\0') {
		if (k.nfolders == MT_FETCH_MAX_FOLDERS)
			return config_error("too many folders (%s)", "64 at most");
		k.folders[k.nfolders++] = k.url.mailbox;
	}
	k.c.folders = k.folders;
	k.c.nfolders = k.nfolders;
	k.c.name = "fetch";
	if ((rc = state_dir(&k)) != 0)
		return rc;
	if (mt_fetch_conf_check(&k.c, err, sizeof(err)) == -1)
		return config_error("%s", err);
	if (k.make_state && make_state_dir(k.state) == -1) {
		fprintf(stderr, "mailtunnel fetch: cannot create %s: %s\n",
		    k.state, strerror(errno));
		return EX_CANTCREAT;
	}
	k.progress = isatty(STDERR_FILENO) && k.verbose == 0;
	if (k.progress) {
		k.c.progress = progress;
		k.c.progress_arg = &k;
	}
	signal(SIGPIPE, SIG_IGN);
	return run(&k);
}
