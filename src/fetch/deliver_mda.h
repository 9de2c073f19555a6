/*
 * deliver_mda internals: the spool of deliver_mda.c and the child process
 * of deliver_mda_run.c. A struct mda_child belongs to the message whose
 * command it runs; mda_child_kill() is the only way to drop it early.
 */
#ifndef MAILTUNNEL_DELIVER_MDA_H
#define MAILTUNNEL_DELIVER_MDA_H

#include <sys/types.h>

#include "fetch/deliver_priv.h"

#define MDA_TIMEOUT_MS	600000		/* default run time of a command */
#define MDA_KILL_GRACE	5000		/* SIGTERM, then SIGKILL after this */
#define MDA_ERR_CAP	2048		/* stderr bytes kept for the log */
#define MDA_ERR_LINES	5		/* ... and lines logged */
#define MDA_POLL_MS	50		/* waitpid() polling without a pidfd */

struct mda_child;

/* How the command ended. */
struct mda_exit {
	int lost;			/* no status: someone else reaped it */
	int status;			/* from waitpid() */
	int timed_out;			/* we killed it */
	char err[MDA_ERR_CAP + 1];	/* the start of its stderr */
	size_t errtotal;		/* stderr bytes in all */
};

typedef void mda_exit_fn(struct mt_deliver_msg *m,
    const struct mda_exit *x);

/*
 * Run /bin/sh -c command with stdin from infd (taken over and closed),
 * stdout to /dev/null, stderr captured, envp as its environment, in a
 * process group of its own. done runs from the loop once it has exited
 * (after a kill at timeout_ms). NULL with errno when it could not start.
 */
struct mda_child *mda_child_start(struct mt_deliver_msg *m,
    const char *command, int infd, char *const envp[], unsigned timeout_ms,
    mda_exit_fn *done);
/* Kill the group with SIGKILL, reap, free (no callback). NULL is fine. */
void mda_child_kill(struct mda_child *c);
/* After done ran: free. */
void mda_child_free(struct mda_child *c);

#endif
