/*
 * check: mailtunnel -t. Everything start-up does except binding, forking
 * and talking to servers: parse the file, build the TLS contexts, resolve
 * the listening addresses, open the delivery targets, look at state
 * folders and password files. Prints every problem to stderr.
 */
#ifndef MAILTUNNEL_CHECK_H
#define MAILTUNNEL_CHECK_H

/* Returns a sysexits code: 0 when usable, 78 when not. */
int mt_check_config(const char *path, int verbose);

#endif
