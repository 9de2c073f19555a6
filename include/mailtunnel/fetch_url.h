/*
 * fetch_url: the URLs that name a mailbox to fetch from, as given on the
 * command line ("mailtunnel fetch URL") or in a fetch service.
 *
 *   pop3s://USER@HOST[:PORT]             TLS from the start, default 995
 *   imaps://USER@HOST[:PORT][/MAILBOX]   TLS from the start, default 993
 *   pop3://USER@HOST[:PORT]              STARTTLS (required), default 110
 *   imap://USER@HOST[:PORT][/MAILBOX]    STARTTLS (required), default 143
 *
 * USER and MAILBOX are percent-decoded ("alice%40example.com"); HOST may be
 * an IPv6 literal in brackets; ";AUTH=MECH" may follow USER (RFC 5092).
 * A password in the URL is refused: it belongs in a password file.
 *
 * The parsed URL is a plain struct with fixed-size fields: nothing to free.
 * Error messages are written to a caller's buffer. They may quote what
 * the user wrote as a scheme (only when it has scheme syntax), port,
 * mechanism name, parameter name or IPv6 address; never the user name, the
 * mailbox, a parameter value or anything after a ':' in the user part.
 */
#ifndef MAILTUNNEL_FETCH_URL_H
#define MAILTUNNEL_FETCH_URL_H

#include <stddef.h>

enum mt_fetch_proto {
	MT_FETCH_POP3,
	MT_FETCH_IMAP
};

#define MT_FETCH_URL_MAX 2048		/* longest URL accepted */

struct mt_fetch_url {
	enum mt_fetch_proto proto;
	int starttls;			/* pop3://, imap:// */
	char user[256];			/* decoded */
	char auth[24];			/* ";AUTH=" mechanism, upper case;
					   "" means choose automatically */
	char host[254];			/* without brackets */
	int ipv6;			/* host was "[...]" */
	unsigned port;			/* as given, or the scheme's default */
	int port_given;
	char mailbox[512];		/* decoded; "" means INBOX (and is the
					   only value for POP3) */
};

/*
 * Parse a NUL-terminated URL. 0, or -1 with a one-line message in err
 * (always NUL-terminated when errsz > 0).
 */
int mt_fetch_url_parse(const char *s, struct mt_fetch_url *u, char *err,
    size_t errsz);

/*
 * Render u for a log line (it parses back to the same u): scheme, user and
 * mailbox percent-encoded, the port when it was given. Writes at most size
 * bytes, NUL-terminated; returns buf.
 */
char *mt_fetch_url_format(const struct mt_fetch_url *u, char *buf,
    size_t size);

/* The scheme's default port. */
unsigned mt_fetch_url_default_port(enum mt_fetch_proto proto, int starttls);

#endif
