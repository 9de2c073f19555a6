/*
 * secret: the password or OAuth token of a fetch job, read from a file or
 * from the first line a command prints.
 *
 * Secrets live in buffers from ft_secret_alloc() (or the callbacks below),
 * and are wiped before they are freed with ft_secret_free(). Nothing here
 * logs a secret; messages (why) name the file or the option, never the
 * content.
 *
 * A command runs as "/bin/sh -c COMMAND" with stdin from /dev/null, stdout
 * a pipe that the event loop reads, stderr inherited (a helper's own
 * messages reach the log of a foreground run). It gets timeout_ms to print
 * its line and exit; after that it is killed. The callback runs once, from
 * the loop, unless the command is cancelled first.
 */
#ifndef MAILTUNNEL_FETCH_SECRET_H
#define MAILTUNNEL_FETCH_SECRET_H

#include <stddef.h>

#include "mailtunnel/fetch.h"

struct event_base;
struct ft_cmd;

/* Longest secret (OAuth tokens run to a few KiB). */
#define FT_SECRET_MAX 16384

/* Wipe and free (NULL is fine). */
void ft_secret_free(char *s);

/*
 * The first line of file path (without its line end), in a new buffer.
 * Refused when the file is not a regular file, may be read or written by
 * group or others, is empty, or its first line is longer than
 * FT_SECRET_MAX. NULL with the reason in why.
 */
char *ft_secret_read_file(const char *path, char *why, size_t whysz);

/*
 * Pure: the first line of buf[0..len) ("\n" or "\r\n" ends it; none: all
 * of it). 0 and *line_len, or -1 when it is empty.
 */
int ft_secret_first_line(const char *buf, size_t len, size_t *line_len);

/*
 * status: MT_FETCH_OK with the secret (the callee owns it: free with
 * ft_secret_free), else TEMPFAIL (the command failed or timed out) or
 * CONFIG (it could not be run, or printed nothing), with why.
 */
typedef void ft_cmd_done_fn(void *arg, enum mt_fetch_status status,
    char *secret, const char *why);

/*
 * Run command; what names it in messages ("passwordCommand"). NULL when
 * it could not be started (why says why; nothing will be called back).
 */
struct ft_cmd *ft_cmd_start(struct event_base *base, const char *command,
    const char *what, unsigned timeout_ms, ft_cmd_done_fn *done, void *arg,
    char *why, size_t whysz);
/* Kill the command if it still runs, reap it, free everything. */
void ft_cmd_cancel(struct ft_cmd *cmd);

#endif
