/*
 * daemon: the life of the mailtunnel process: load the configuration,
 * bind, daemonize, drop privileges, run the workers, reload on SIGHUP,
 * reopen the log on SIGUSR1, drain and exit on SIGTERM/SIGINT.
 */
#ifndef MAILTUNNEL_DAEMON_H
#define MAILTUNNEL_DAEMON_H

struct mt_daemon_args {
	const char *config_path;
	int force_foreground;		/* -f on the command line */
};

/* Runs until told to stop; returns a sysexits code. */
int mt_daemon_run(const struct mt_daemon_args *args);

#endif
