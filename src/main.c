/*
 * main: the command line. Everything else lives in the modules; this file
 * parses arguments, maps results to sysexits codes, and is the only place
 * that exits.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "fetch_cli.h"
#include "mailtunnel/check.h"
#include "mailtunnel/config.h"
#include "mailtunnel/daemon.h"
#include "mailtunnel/log.h"

static void
usage(FILE *out)
{
	fprintf(out,
"Usage: mailtunnel [OPTIONS] [CONFIG]\n"
"       mailtunnel fetch URL --deliver TARGET [OPTIONS]   (see fetch --help)\n"
"\n"
"Accept plaintext POP3, IMAP and SMTP clients on this machine and bridge\n"
"them to mail servers over verified TLS. CONFIG is a stunnel-style file\n"
"(default " MT_CONFIG_DEFAULT_PATH ").\n"
"\n"
"Options:\n"
"  -c, --config FILE     read FILE (same as giving it as CONFIG)\n"
"  -f, --foreground      stay in the foreground; log to stderr (or output)\n"
"  -t, --check-config    check the configuration (TLS files included),\n"
"                        print every problem, exit 0 if usable, else 78\n"
"  -v, --verbose         with -t: also print the effective configuration\n"
"  -h, --help            show this help\n"
"  -V, --version         show the versions of mailtunnel, OpenSSL, libevent\n"
"\n"
"Signals: HUP reloads the configuration, USR1 reopens the log file,\n"
"TERM and INT stop accepting and let connections finish (TIMEOUTclose).\n"
"\n"
"See mailtunnel(8) and mailtunnel.conf(5).\n");
}

static void
version(void)
{
	printf("mailtunnel %s\n", PACKAGE_VERSION);
	printf("built with %s, running %s\n", OPENSSL_VERSION_TEXT,
	    OpenSSL_version(OPENSSL_VERSION));
	printf("libevent %s\n", event_get_version());
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct mt_daemon_args args = { MT_CONFIG_DEFAULT_PATH, 0 };
	const char *config = NULL;
	char *absolute = NULL;
	int c, rc, check = 0, verbose = 0;

	if (argc > 1 && strcmp(argv[1], "fetch") == 0)
		return mt_fetch_cli_main(argc - 1, argv + 1);

	while ((c = getopt_long(argc, argv, "c:ftvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'f': args.force_foreground = 1; break;
		case 't': check = 1; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return EX_OK;
		case 'V': version(); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind < argc) {
		if (config != NULL || optind + 1 < argc) {
			fprintf(stderr, "mailtunnel: one configuration file, "
			    "please\n");
			usage(stderr);
			return EX_USAGE;
		}
		config = argv[optind];
	}
	if (config != NULL)
		args.config_path = config;
	if (check)
		return mt_check_config(args.config_path, verbose);
	/* The daemon changes to / and rereads the file on SIGHUP. */
	if ((absolute = realpath(args.config_path, NULL)) != NULL)
		args.config_path = absolute;
	rc = mt_daemon_run(&args);
	free(absolute);
	return rc;
}
